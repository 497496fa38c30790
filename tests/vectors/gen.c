/*
 * gen.c - produces the test vectors of docs/protocol.md and the seed corpora
 * of fuzz/corpus/{envelope,keyfile,roster,apisig,filemeta,event,audit,reply,casekey,
 * checkpoint}/.
 *
 * Sealing, key files and API signatures are randomized, so vectors are made
 * once and committed; tests/unit/vectors_test.c holds the same hex and checks
 * both that it opens/verifies and that docs/protocol.md carries it verbatim.
 * Keys are derived from fixed seeds so a reader can recreate them.
 *
 * Build and run from the repository root (not part of the build):
 *   cc -std=c17 -D_GNU_SOURCE -Isrc -o /tmp/gen tests/vectors/gen.c \
 *      build-X/src/lib/librefuge_lib.a -lsodium -lunistring
 *   /tmp/gen vectors    # prints the C and Markdown text of the vectors
 *   /tmp/gen corpus     # (re)writes the seed corpora
 *   /tmp/gen corpus-checkpoint  # only fuzz/corpus/checkpoint/ (deterministic)
 */
#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/buf.h"
#include "lib/casekey.h"
#include "lib/checkpoint.h"
#include "lib/envelope.h"
#include "lib/event.h"
#include "lib/keyfile.h"
#include "lib/reply.h"
#include "lib/roster.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct keys {
    uint8_t pk[32], sk[32];
};

static void box_from_seed(struct keys *k, uint8_t fill)
{
    uint8_t seed[32];
    memset(seed, fill, sizeof(seed));
    crypto_box_seed_keypair(k->pk, k->sk, seed);
}

static void staff_from_seeds(struct rf_staff_keys *s, const char *name, uint8_t sign_fill,
                             uint8_t box_fill)
{
    uint8_t seed[32];
    memset(s, 0, sizeof(*s));
    strcpy(s->name, name);
    memset(seed, sign_fill, sizeof(seed));
    crypto_sign_seed_keypair(s->sign_pk, s->sign_sk, seed);
    memset(seed, box_fill, sizeof(seed));
    crypto_box_seed_keypair(s->box_pk, s->box_sk, seed);
}

static void hex(const char *label, const uint8_t *p, size_t n)
{
    char *h = malloc(2 * n + 1);
    sodium_bin2hex(h, 2 * n + 1, p, n);
    printf("%s %s\n", label, h);
    free(h);
}

static void put_file(const char *dir, const char *name, const uint8_t *p, size_t n)
{
    char path[512];
    mkdir(dir, 0755);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        perror(path);
        exit(1);
    }
    fclose(f);
}

static void seal(struct rf_buf *b, uint8_t kind, const struct keys *k, size_t nk, const uint8_t *p,
                 size_t n)
{
    uint8_t pks[4][32];
    for (size_t i = 0; i < nk; i++)
        memcpy(pks[i], k[i].pk, 32);
    rf_buf_init(b, 1 << 24);
    if (rf_envelope_seal(b, kind, (const uint8_t(*)[32])pks, nk, p, n) != 0)
        exit(1);
}

static void roster_add(struct rf_roster *r, const struct rf_staff_keys *k, uint8_t role)
{
    struct rf_member *m = &r->members[r->n++];
    strcpy(m->name, k->name);
    m->role = role;
    memcpy(m->box_pk, k->box_pk, 32);
    memcpy(m->sign_pk, k->sign_pk, 32);
}

static void rosters(struct rf_buf *r1, struct rf_buf *r2, const struct rf_staff_keys *admin,
                    const struct rf_staff_keys *bob)
{
    struct rf_roster *r = calloc(1, sizeof(*r));
    r->version = 1;
    roster_add(r, admin, RF_ROLE_ADMIN);
    rf_buf_init(r1, RF_ROSTER_MAX_BYTES);
    rf_buf_init(r2, RF_ROSTER_MAX_BYTES);
    if (rf_roster_sign(r1, r, admin) != 0)
        exit(1);
    memset(r, 0, sizeof(*r));
    r->version = 2;
    rf_roster_hash(r->prev_hash, r1->data, r1->len);
    roster_add(r, admin, RF_ROLE_ADMIN);
    roster_add(r, bob, RF_ROLE_MEMBER);
    if (rf_roster_sign(r2, r, admin) != 0)
        exit(1);
    free(r);
}

/* ---- grants, events, audit (the team milestone) ---- */

#define EVENT_CASE "q4mz7k2xea"
static const char EVENT_BODY[] =
    "{\"v\":1,\"id\":\"00112233445566778899aabbccddeeff\",\"lamport\":1,\"roster\":2,"
    "\"author\":\"Admin\",\"day\":20000,\"op\":\"stage\",\"value\":\"verifying\"}";

static void event_sign(struct rf_buf *b, const struct rf_staff_keys *k, const char *case_id,
                       const char *body, size_t n)
{
    rf_buf_init(b, 1 << 20);
    if (rf_event_sign(b, k, case_id, (const uint8_t *)body, n) != 0)
        exit(1);
}

/* The three entries of the audit vector: enroll by the server, roster by
 * Admin, fetch by Admin; each linked to the one before. */
static void audit_entries(struct rf_audit_entry e[3], const struct rf_staff_keys *admin)
{
    static const struct {
        uint32_t day;
        int by_admin;
        const char *action, *target;
    } rows[3] = {{20000, 0, "enroll", ""}, {20000, 1, "roster", "2"}, {20001, 1, "fetch", "17"}};
    memset(e, 0, 3 * sizeof(*e));
    for (int i = 0; i < 3; i++) {
        e[i].id = (uint64_t)i + 1;
        e[i].day = rows[i].day;
        if (rows[i].by_admin)
            memcpy(e[i].actor, admin->sign_pk, 32);
        strcpy(e[i].action, rows[i].action);
        strcpy(e[i].target, rows[i].target);
        if (i > 0)
            memcpy(e[i].prev, e[i - 1].hash, 32);
        if (rf_audit_hash(e[i].hash, &e[i]) != 0)
            exit(1);
    }
}

/* The audit harness's input encoding (fuzz/audit.c): per entry
 * id u64 | day u32 | actor[32] | action_len u8 | action | target_len u8 |
 * target | prev[32] | hash[32]. */
static void audit_encode(struct rf_buf *b, const struct rf_audit_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rf_buf_put_u64(b, e[i].id);
        rf_buf_put_u32(b, e[i].day);
        rf_buf_put(b, e[i].actor, 32);
        rf_buf_put_u8(b, (uint8_t)strlen(e[i].action));
        rf_buf_put_str(b, e[i].action);
        rf_buf_put_u8(b, (uint8_t)strlen(e[i].target));
        rf_buf_put_str(b, e[i].target);
        rf_buf_put(b, e[i].prev, 32);
        rf_buf_put(b, e[i].hash, 32);
    }
}

static void audit_chain(struct rf_audit_entry *e, size_t n)
{
    static const char *actions[] = {"fetch", "reply", "event", "grant", "roster"};
    memset(e, 0, n * sizeof(*e));
    for (size_t i = 0; i < n; i++) {
        e[i].id = i + 1;
        e[i].day = 20000 + (uint32_t)(i / 4);
        e[i].actor[0] = (uint8_t)(i % 3);
        strcpy(e[i].action, actions[i % 5]);
        snprintf(e[i].target, sizeof(e[i].target), "%zu", 100 + i);
        if (i > 0)
            memcpy(e[i].prev, e[i - 1].hash, 32);
        rf_audit_hash(e[i].hash, &e[i]);
    }
}

static void team_corpus(const struct keys *a, const struct keys *b,
                        const struct rf_staff_keys *admin, const struct rf_staff_keys *bob)
{
    /* event: verified by the harness for case EVENT_CASE */
    const char *V = "fuzz/corpus/event";
    struct rf_buf ev;
    event_sign(&ev, admin, EVENT_CASE, EVENT_BODY, strlen(EVENT_BODY));
    put_file(V, "valid", ev.data, ev.len);
    ev.data[ev.len - 3] ^= 1;
    put_file(V, "tampered-body", ev.data, ev.len);
    ev.data[ev.len - 3] ^= 1;
    put_file(V, "header-only", ev.data, RF_EVENT_HEADER_BYTES);
    ev.data[4] = 2;
    put_file(V, "bad-version", ev.data, ev.len);
    rf_buf_free(&ev);
    event_sign(&ev, bob, "q4mz7k2xeb", EVENT_BODY, strlen(EVENT_BODY));
    put_file(V, "other-case", ev.data, ev.len);
    rf_buf_free(&ev);
    const char *note = "{\"v\":1,\"op\":\"note\",\"value\":\"Паспорт получен\"}";
    event_sign(&ev, admin, EVENT_CASE, note, strlen(note));
    put_file(V, "cyrillic", ev.data, ev.len);
    ev.data[ev.len - 4] = 0xff;
    put_file(V, "bad-utf8", ev.data, ev.len);
    rf_buf_free(&ev);
    /* audit: decoded by the harness, verified from genesis and against the
     * anchor the stream names (its first entry) */
    const char *A = "fuzz/corpus/audit";
    struct rf_audit_entry e[12];
    struct rf_buf au;
    audit_chain(e, 12);
    rf_buf_init(&au, 1 << 20);
    audit_encode(&au, e, 12);
    put_file(A, "honest-12", au.data, au.len);
    rf_buf_reset(&au);
    audit_encode(&au, e, 5);
    audit_encode(&au, e + 6, 6);
    put_file(A, "deleted-6", au.data, au.len);
    rf_buf_reset(&au);
    struct rf_audit_entry t = e[4];
    e[4] = e[5];
    e[5] = t;
    audit_encode(&au, e, 12);
    put_file(A, "swapped-5-6", au.data, au.len);
    rf_buf_reset(&au);
    audit_chain(e, 12);
    e[7].target[0] = '9';
    audit_encode(&au, e, 12);
    put_file(A, "modified-8", au.data, au.len);
    rf_buf_reset(&au);
    audit_entries(e, admin);
    audit_encode(&au, e, 3);
    put_file(A, "vector-3", au.data, au.len);
    put_file(A, "short", au.data, 50);
    rf_buf_free(&au);
    (void)a;
    (void)b;
}

/* ---- the trust review's format versions: envelope 2 (key commitment),
 * signed replies (reply plaintext 2), audit entries with their signed
 * request (audit 2). Printed by "vectors", seeds written by "corpus". ---- */

#define REPLY_BODY "{\"v\":2,\"type\":\"reply\",\"text\":\"We have read your message.\"}"
#define AUDIT2_TS 1728090000 /* 20001 days and one hour */

/* Entry 4 of the audit vector: Admin's fetch of object 17, with the signed
 * request GET /api/v1/objects/17, linked to entry 3. */
static void audit_v2_entry(struct rf_audit_entry *e4, const struct rf_audit_entry e[3],
                           const struct rf_staff_keys *admin)
{
    char hdr[RF_APISIG_HEADER_MAX];
    uint8_t body[32];
    struct rf_apisig as;
    size_t len = 0;
    crypto_generichash(body, 32, (const uint8_t *)"", 0, NULL, 0);
    memset(e4, 0, sizeof(*e4));
    e4->id = 4;
    e4->day = AUDIT2_TS / 86400;
    memcpy(e4->actor, admin->sign_pk, 32);
    strcpy(e4->action, "fetch");
    strcpy(e4->target, "17");
    memcpy(e4->prev, e[2].hash, 32);
    if (rf_apisig_sign(hdr, sizeof(hdr), admin, "GET", "/api/v1/objects/17", AUDIT2_TS, body) ||
        rf_apisig_parse(&as, hdr, strlen(hdr)) ||
        rf_audit_req_encode(e4->req, &len, "GET", "/api/v1/objects/17", as.ts, as.nonce,
                            as.body_hash, as.sig) ||
        (e4->req_len = (uint16_t)len, rf_audit_hash(e4->hash, e4)) != 0)
        exit(1);
}

static void formats_v2(int corpus, const struct keys *a, const struct keys *b,
                       const struct rf_staff_keys *admin)
{
    struct keys ab[2] = {*a, *b};
    const char *msg = "Hello from Refuge";
    struct rf_buf env, two, rp, au;
    seal(&env, RF_KIND_MESSAGE, a, 1, (const uint8_t *)msg, strlen(msg));
    seal(&two, RF_KIND_NOTE, ab, 2, (const uint8_t *)"two", 3);
    rf_buf_init(&rp, 1 << 20);
    if (rf_reply_sign(&rp, admin, EVENT_CASE, (const uint8_t *)REPLY_BODY, strlen(REPLY_BODY)))
        exit(1);
    struct rf_audit_entry e[4];
    audit_entries(e, admin);
    audit_v2_entry(&e[3], e, admin);
    if (!corpus) {
        hex("envelope_v2", env.data, env.len);
        size_t h = 8 + 88 + 24;
        hex("envelope_v2_commit", env.data + h, 32);
        printf("reply_case %s\nreply_body %s\n", EVENT_CASE, REPLY_BODY);
        hex("reply_v2", rp.data, rp.len);
        hex("audit_v2_request", e[3].req, e[3].req_len);
        hex("audit_v2_hash", e[3].hash, 32);
        return;
    }
    const char *E = "fuzz/corpus/envelope";
    put_file(E, "v2-msg-1recip", env.data, env.len);
    put_file(E, "v2-note-2recip", two.data, two.len);
    env.data[8 + 88 + 24 + 3] ^= 1; /* the commitment */
    put_file(E, "v2-bad-commit", env.data, env.len);
    put_file(E, "v2-header-only", env.data, 8 + 88 + 24 + 32);
    put_file(E, "v2-header-short", env.data, 8 + 88 + 24 + 31);
    const char *R = "fuzz/corpus/reply";
    put_file(R, "valid", rp.data, rp.len);
    rp.data[rp.len - 3] ^= 1;
    put_file(R, "tampered-body", rp.data, rp.len);
    rp.data[rp.len - 3] ^= 1;
    put_file(R, "header-only", rp.data, RF_REPLY_HEADER_BYTES);
    rp.data[4] = 1;
    put_file(R, "bad-version", rp.data, rp.len);
    const char *v1 = "{\"v\":1,\"type\":\"reply\",\"author\":\"Admin\",\"text\":\"hi\"}";
    put_file(R, "v1-json", (const uint8_t *)v1, strlen(v1));
    const char *A = "fuzz/corpus/audit";
    put_file(A, "v2-request", e[3].req, e[3].req_len);
    rf_buf_init(&au, 1 << 20);
    audit_encode(&au, e, 4);
    put_file(A, "v2-vector-4", au.data, au.len);
    rf_buf_free(&au);
    rf_buf_free(&env);
    rf_buf_free(&two);
    rf_buf_free(&rp);
}

/* ---- case keys and events version 2 (docs/protocol.md 12.1) ----
 * Deterministic: K = 00 01 .. 1f, nonce = 40 41 .. 57, the CASEKEY signed by
 * Admin (Ed25519 is deterministic), the event of 8.1 inside. */
static void casekey_vectors(int corpus, const struct rf_staff_keys *admin)
{
    uint8_t k[32], k2[32], nonce[24], id[8], id2[8];
    for (int i = 0; i < 32; i++) {
        k[i] = (uint8_t)i;
        k2[i] = (uint8_t)(0x20 + i);
    }
    for (int i = 0; i < 24; i++)
        nonce[i] = (uint8_t)(0x40 + i);
    rf_casekey_id(id, k);
    rf_casekey_id(id2, k2);
    struct rf_buf ck, ev, v2;
    rf_buf_init(&ck, 4096);
    if (rf_casekey_encode(&ck, admin, EVENT_CASE, 2, k) != 0)
        exit(1);
    event_sign(&ev, admin, EVENT_CASE, EVENT_BODY, strlen(EVENT_BODY));
    rf_buf_init(&v2, 1 << 20);
    if (rf_casekey_event_seal_nonce(&v2, k, EVENT_CASE, ev.data, ev.len, nonce) != 0)
        exit(1);
    if (!corpus) {
        hex("casekey_key", k, 32);
        hex("casekey_keyid", id, 8);
        hex("casekey_key2", k2, 32);
        hex("casekey_key2id", id2, 8);
        hex("casekey_plain", ck.data, ck.len);
        hex("ev2_nonce", nonce, 24);
        hex("ev2", v2.data, v2.len);
    } else {
        /* the harness opens with K for case EVENT_CASE */
        const char *C = "fuzz/corpus/casekey";
        put_file(C, "casekey-valid", ck.data, ck.len);
        put_file(C, "casekey-short", ck.data, ck.len - 1);
        ck.data[4] = 2;
        put_file(C, "casekey-version-2", ck.data, ck.len);
        put_file(C, "ev2-valid", v2.data, v2.len);
        put_file(C, "ev2-header-only", v2.data, RF_EV2_HEADER_BYTES);
        v2.data[v2.len - 1] ^= 1;
        put_file(C, "ev2-tampered", v2.data, v2.len);
        v2.data[v2.len - 1] ^= 1;
        memcpy(v2.data + 4, id2, 8);
        put_file(C, "ev2-other-keyid", v2.data, v2.len);
        put_file(C, "ev3", (const uint8_t *)"RFE3", 4);
    }
    rf_buf_free(&ck);
    rf_buf_free(&ev);
    rf_buf_free(&v2);
}

/* ---- checkpoints (docs/protocol.md 13): deterministic, Ed25519 and
 * BLAKE2b only. The event of 8.1 at seq 5 and a second one at seq 7, both
 * for case EVENT_CASE, and Admin's checkpoint over them at roster 2. ---- */

#define CKPT_BODY2                                                                                 \
    "{\"v\":1,\"id\":\"ffeeddccbbaa99887766554433221100\",\"lamport\":2,\"roster\":2,"             \
    "\"author\":\"Admin\",\"day\":20001,\"op\":\"note\",\"value\":\"called back\"}"

static void checkpoint_vectors(int corpus, const struct rf_staff_keys *admin,
                               const struct rf_staff_keys *bob)
{
    struct rf_buf ev[2];
    event_sign(&ev[0], admin, EVENT_CASE, EVENT_BODY, strlen(EVENT_BODY));
    event_sign(&ev[1], admin, EVENT_CASE, CKPT_BODY2, strlen(CKPT_BODY2));
    const uint64_t seq[2] = {5, 7};
    struct rf_ckpt_chain c;
    uint8_t h[2][32], link[2][32], ck[RF_CKPT_BYTES + 1], other[RF_CKPT_BYTES];
    rf_ckpt_chain_init(&c);
    for (int i = 0; i < 2; i++) {
        rf_ckpt_obj_hash(h[i], ev[i].data, ev[i].len);
        if (rf_ckpt_chain_add(&c, seq[i], RF_KIND_EVENT, EVENT_CASE, ev[i].data, ev[i].len))
            exit(1);
        memcpy(link[i], c.chain, 32);
    }
    if (rf_ckpt_make(ck, &c, 2, admin) != 0 || rf_ckpt_make(other, &c, 2, bob) != 0)
        exit(1);
    if (!corpus) {
        printf("ckpt_event2_body %s\n", CKPT_BODY2);
        hex("ckpt_event2", ev[1].data, ev[1].len);
        hex("ckpt_event1_hash", h[0], 32);
        hex("ckpt_event2_hash", h[1], 32);
        hex("ckpt_chain1", link[0], 32);
        hex("ckpt_chain2", link[1], 32);
        hex("ckpt", ck, RF_CKPT_BYTES);
    } else {
        /* fuzz/checkpoint.c verifies against rosters 1 and 2 of 6.5 */
        const char *C = "fuzz/corpus/checkpoint";
        put_file(C, "valid", ck, RF_CKPT_BYTES);
        put_file(C, "by-member", other, RF_CKPT_BYTES);
        put_file(C, "truncated", ck, RF_CKPT_BYTES - 1);
        put_file(C, "magic-only", ck, 4);
        ck[RF_CKPT_BYTES] = 0;
        put_file(C, "trailing", ck, RF_CKPT_BYTES + 1);
        ck[30] ^= 1;
        put_file(C, "chain-flipped", ck, RF_CKPT_BYTES);
        ck[30] ^= 1;
        ck[4] = 2;
        put_file(C, "version-2", ck, RF_CKPT_BYTES);
        ck[4] = 1;
        ck[8] = 3; /* roster 3: not one the harness verified */
        put_file(C, "roster-3", ck, RF_CKPT_BYTES);
        /* chain records: seq u64 | kind u8 | case 10 | len u8 | bytes */
        static const struct {
            uint64_t seq;
            uint8_t kind;
            const char *case_id, *obj;
        } rec[] = {{5, 4, EVENT_CASE, "abc"}, {7, 4, EVENT_CASE, "de"},  {7, 4, EVENT_CASE, "f"},
                   {9, 0, EVENT_CASE, "g"},   {9, 3, "q4mz-k2xea", "h"}, {9, 3, "teamconfig", "i"},
                   {11, 4, EVENT_CASE, ""}};
        struct rf_buf rb;
        rf_buf_init(&rb, 4096);
        for (size_t i = 0; i < sizeof(rec) / sizeof(rec[0]); i++) {
            rf_buf_put_u64(&rb, rec[i].seq);
            rf_buf_put_u8(&rb, rec[i].kind);
            rf_buf_put(&rb, rec[i].case_id, 10);
            rf_buf_put_u8(&rb, (uint8_t)strlen(rec[i].obj));
            rf_buf_put_str(&rb, rec[i].obj);
        }
        put_file(C, "chain-records", rb.data, rb.len);
        rf_buf_free(&rb);
    }
    rf_buf_free(&ev[0]);
    rf_buf_free(&ev[1]);
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0 || argc != 2)
        return 2;
    struct keys a, b;
    box_from_seed(&a, 0x01);
    box_from_seed(&b, 0x02);
    struct rf_staff_keys admin, bob;
    staff_from_seeds(&admin, "Admin", 0x03, 0x04);
    staff_from_seeds(&bob, "Bob", 0x05, 0x06);
    struct keys ab[2] = {a, b};

    const char *msg = "Hello from Refuge";
    struct rf_buf env1, env2, meta, kf, ro1, ro2;
    seal(&env1, RF_KIND_MESSAGE, &a, 1, (const uint8_t *)msg, strlen(msg));
    rf_buf_init(&meta, 4096);
    rf_filemeta_encode(&meta, "scan.txt", 8, "text/plain", 10);
    rf_buf_put(&meta, "hi\n", 3);
    seal(&env2, RF_KIND_FILE, ab, 2, meta.data, meta.len);
    rf_buf_init(&kf, RF_KEYFILE_MAX);
    const char *pass = "correct horse battery staple";
    if (rf_keyfile_write(&kf, &admin, pass, strlen(pass), 1, 8192) != 0)
        return 1;
    rosters(&ro1, &ro2, &admin, &bob);
    uint8_t body[32];
    crypto_generichash(body, 32, (const uint8_t *)"", 0, NULL, 0);
    char auth[RF_APISIG_HEADER_MAX];
    if (rf_apisig_sign(auth, sizeof(auth), &admin, "POST", "/api/v1/roster", 1700000000, body))
        return 1;

    if (strcmp(argv[1], "vectors") == 0) {
        hex("recipient_a_sk", a.sk, 32);
        hex("recipient_a_pk", a.pk, 32);
        uint8_t id[8];
        rf_keyid(id, a.pk);
        hex("recipient_a_keyid", id, 8);
        hex("recipient_b_sk", b.sk, 32);
        hex("recipient_b_pk", b.pk, 32);
        hex("envelope1", env1.data, env1.len);
        hex("envelope2", env2.data, env2.len);
        hex("envelope2_plain", meta.data, meta.len);
        hex("admin_sign_sk", admin.sign_sk, 64);
        hex("admin_sign_pk", admin.sign_pk, 32);
        hex("admin_box_sk", admin.box_sk, 32);
        hex("admin_box_pk", admin.box_pk, 32);
        hex("bob_sign_pk", bob.sign_pk, 32);
        hex("bob_box_pk", bob.box_pk, 32);
        char fp[48];
        rf_fingerprint(fp, sizeof(fp), admin.sign_pk, admin.box_pk);
        printf("admin_fingerprint %s\n", fp);
        hex("keyfile", kf.data, kf.len);
        hex("roster1", ro1.data, ro1.len);
        hex("roster2", ro2.data, ro2.len);
        uint8_t h[32];
        rf_roster_hash(h, ro1.data, ro1.len);
        hex("roster1_hash", h, 32);
        printf("apisig %s\n", auth);
        /* grant: an envelope to recipient A only, and a grant of its key to B */
        struct rf_buf genv;
        const char *gmsg = "Granted later";
        seal(&genv, RF_KIND_REPLY, &a, 1, (const uint8_t *)gmsg, strlen(gmsg));
        uint8_t *ckey = sodium_malloc(32), grant[RF_GRANT_BYTES];
        if (rf_envelope_content_key(ckey, genv.data, genv.len, a.pk, a.sk) != 0 ||
            rf_grant_make(grant, ckey, b.pk) != 0)
            return 1;
        sodium_free(ckey);
        hex("grant_envelope", genv.data, genv.len);
        hex("grant", grant, sizeof(grant));
        /* event */
        struct rf_buf ev;
        event_sign(&ev, &admin, EVENT_CASE, EVENT_BODY, strlen(EVENT_BODY));
        printf("event_case %s\nevent_body %s\n", EVENT_CASE, EVENT_BODY);
        hex("event", ev.data, ev.len);
        /* audit */
        struct rf_audit_entry e[3];
        audit_entries(e, &admin);
        for (int i = 0; i < 3; i++)
            hex("audit_hash", e[i].hash, 32);
        formats_v2(0, &a, &b, &admin);
        casekey_vectors(0, &admin);
        checkpoint_vectors(0, &admin, &bob);
        return 0;
    }
    if (strcmp(argv[1], "corpus-checkpoint") == 0) {
        checkpoint_vectors(1, &admin, &bob);
        return 0;
    }
    if (strcmp(argv[1], "corpus") != 0)
        return 2;
    team_corpus(&a, &b, &admin, &bob);
    checkpoint_vectors(1, &admin, &bob);
    formats_v2(1, &a, &b, &admin);
    casekey_vectors(1, &admin);
    /* envelope: opened by the harness with recipient a's keys */
    const char *E = "fuzz/corpus/envelope";
    put_file(E, "msg-1recip", env1.data, env1.len);
    put_file(E, "file-2recip", env2.data, env2.len);
    struct rf_buf big;
    uint8_t *p = calloc(1, 70000);
    seal(&big, RF_KIND_NOTE, ab, 2, p, 70000);
    put_file(E, "note-2chunks", big.data, big.len);
    put_file(E, "truncated", big.data, big.len - 100);
    struct rf_buf other;
    seal(&other, RF_KIND_REPLY, &b, 1, (const uint8_t *)"x", 1);
    put_file(E, "not-recipient", other.data, other.len);
    env1.data[env1.len - 5] ^= 1;
    put_file(E, "tampered", env1.data, env1.len);
    env1.data[env1.len - 5] ^= 1;
    put_file(E, "bad-version", (const uint8_t *)"RFGE\x02\x01\x00\x01", 8);
    /* keyfile: the harness reads with passphrase "fuzz" and cheap params */
    const char *K = "fuzz/corpus/keyfile";
    struct rf_buf kf2;
    rf_buf_init(&kf2, RF_KEYFILE_MAX);
    rf_keyfile_write(&kf2, &bob, "fuzz", 4, 1, 8192);
    put_file(K, "valid", kf2.data, kf2.len);
    put_file(K, "other-pass", kf.data, kf.len);
    kf2.data[5] = 0xff;
    put_file(K, "hostile-ops", kf2.data, kf2.len);
    put_file(K, "short", kf2.data, 30);
    /* roster: the harness pins admin's key */
    const char *R = "fuzz/corpus/roster";
    put_file(R, "v1", ro1.data, ro1.len);
    put_file(R, "v2", ro2.data, ro2.len);
    ro2.data[50] ^= 1;
    put_file(R, "v2-tampered", ro2.data, ro2.len);
    put_file(R, "short", ro1.data, 20);
    /* apisig */
    const char *A = "fuzz/corpus/apisig";
    put_file(A, "valid", (const uint8_t *)auth, strlen(auth));
    put_file(A, "missing-sig", (const uint8_t *)auth, (size_t)(strstr(auth, ", sig=") - auth));
    put_file(A, "garbage", (const uint8_t *)"Refuge key=, ts=1", 17);
    /* filemeta */
    const char *F = "fuzz/corpus/filemeta";
    put_file(F, "valid", meta.data, meta.len);
    put_file(F, "slash",
             (const uint8_t *)"RFGF\x00\x03"
                              "a/b\x00",
             10);
    put_file(F, "dots", (const uint8_t *)"RFGF\x00\x02..\x00", 9);
    put_file(F, "bidi",
             (const uint8_t *)"RFGF\x00\x0a"
                              "a\xe2\x80\xaegpj.exe\x00",
             16);
    return 0;
}
