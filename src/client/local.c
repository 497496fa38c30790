/*
 * local.c - the local case database (see local.h).
 *
 * Keys: master = BLAKE2b-256 keyed with the caseworker's X25519 secret key
 * over "refuge-local-db-master-v1"; row key = crypto_kdf_derive_from_key(
 * master, id 1, context "rflocal1"). Both live in sodium_malloc memory. A
 * sealed row is nonce(24) || XChaCha20-Poly1305(plaintext, ad = row name).
 *
 * Digest plaintexts (JSON): {"k":"message","type","text","need","urgency"},
 * {"k":"reply","author","text"}, {"k":"file"}, {"k":"event","ev":{..}},
 * {"k":"event","error":".."} (refused: not counted), {"k":"broken","error"}.
 * A summary is the materialized state (state.h) without the notes' text,
 * plus counts, days, the intake's need/urgency and "search", the folded
 * text of messages, replies, notes and tags.
 *
 * Invariant: plaintext exists only in secure bufs and jansson values (which
 * out.c wipes on free); what reaches SQLite is sealed.
 */
#include "client/local.h"
#include "client/local_rows.h"
#include "client/cmd.h"
#include "client/lckpt.h"
#include "client/out.h"
#include "client/replysig.h"
#include "lib/boardrow.h"
#include "lib/casekey.h"
#include "lib/crew.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"
#include "lib/evrow.h"

#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_MAX (4 * 1024 * 1024)
#define ROW_MAX (8 * 1024 * 1024)
#define AEAD_N crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_A crypto_aead_xchacha20poly1305_ietf_ABYTES

struct rf_local {
    struct rf_cache *c;
    const struct rf_staff_keys *k;
    uint8_t *key; /* sodium_malloc, 32 bytes */
    struct rf_roster **rosters;
    size_t nrosters;
    /* checkpoints (lckpt.h): the one the next update may use, the running
     * chain of the pass in progress, what the last update did with it */
    struct rf_ckpt use;
    int use_set;
    struct rf_lckpt_run run;
    struct rf_local_ckpt_result res;
    struct rf_ckmemo *ckmemo; /* the case keys in memory, during a large pass */
    int64_t first_left;       /* the pass's first object left without a digest */
};

static void free_rosters(struct rf_local *l)
{
    for (size_t i = 0; i < l->nrosters; i++)
        free(l->rosters[i]);
    free(l->rosters);
    l->rosters = NULL;
    l->nrosters = 0;
}

int rf_local_reload(struct rf_local *l)
{
    uint32_t max = 0;
    struct rf_buf raw;
    free_rosters(l);
    int rc = rf_cache_roster_max(l->c, &max);
    if (rc != 0 || max == 0)
        return rc;
    l->rosters = calloc(max, sizeof(*l->rosters));
    if (!l->rosters)
        return RF_ERR_NOMEM;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    for (uint32_t v = 1; rc == 0 && v <= max; v++) {
        rf_buf_reset(&raw);
        l->rosters[v - 1] = malloc(sizeof(struct rf_roster));
        l->nrosters = v;
        rc = l->rosters[v - 1] ? rf_cache_roster_get(l->c, v, &raw) : RF_ERR_NOMEM;
        /* stored only after trust.c verified the chain */
        if (rc == 0)
            rc = rf_roster_parse(l->rosters[v - 1], raw.data, raw.len);
    }
    rf_buf_free(&raw);
    return rc;
}

int rf_local_new(struct rf_local **out, struct rf_cache *c, const struct rf_staff_keys *k)
{
    static const char msg[] = "refuge-local-db-master-v1";
    *out = NULL;
    struct rf_local *l = calloc(1, sizeof(*l));
    uint8_t *master = sodium_malloc(32);
    if (!l || !master) {
        free(l);
        sodium_free(master);
        return RF_ERR_NOMEM;
    }
    l->c = c;
    l->k = k;
    l->key = sodium_malloc(32);
    int rc = l->key ? 0 : RF_ERR_NOMEM;
    if (rc == 0 &&
        crypto_generichash(master, 32, (const uint8_t *)msg, sizeof(msg) - 1, k->box_sk, 32) != 0)
        rc = RF_ERR_CRYPTO;
    if (rc == 0 && crypto_kdf_derive_from_key(l->key, 32, 1, "rflocal1", master) != 0)
        rc = RF_ERR_CRYPTO;
    sodium_free(master);
    if (rc == 0)
        rc = rf_local_reload(l);
    if (rc == 0) /* a home from before the board rows gets them, once */
        rc = rf_local_board_fill(l, NULL);
    if (rc != 0) {
        rf_local_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void rf_local_free(struct rf_local *l)
{
    if (!l)
        return;
    free_rosters(l);
    sodium_free(l->key);
    free(l);
}

struct rf_cache *rf_local_cache(const struct rf_local *l)
{
    return l->c;
}

const struct rf_staff_keys *rf_local_keys(const struct rf_local *l)
{
    return l->k;
}

void rf_local_rosters(const struct rf_local *l, const struct rf_roster *const **out, size_t *n)
{
    *out = (const struct rf_roster *const *)l->rosters;
    *n = l->nrosters;
}

int rf_local_seal(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                  struct rf_buf *out)
{
    int rc = rf_buf_reserve(out, AEAD_N + n + AEAD_A);
    if (rc != 0)
        return rc;
    uint8_t *dst = out->data + out->len;
    unsigned long long clen = 0;
    randombytes_buf(dst, AEAD_N);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(dst + AEAD_N, &clen, p, n, (const uint8_t *)ad,
                                                   strlen(ad), NULL, dst, l->key) != 0)
        return RF_ERR_CRYPTO;
    out->len += AEAD_N + (size_t)clen;
    return 0;
}

int rf_local_open(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                  struct rf_buf *out)
{
    if (n < AEAD_N + AEAD_A)
        return RF_ERR_FORMAT;
    int rc = rf_buf_reserve(out, n - AEAD_N - AEAD_A + 1);
    if (rc != 0)
        return rc;
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out->data + out->len, &mlen, NULL, p + AEAD_N,
                                                   n - AEAD_N, (const uint8_t *)ad, strlen(ad), p,
                                                   l->key) != 0)
        return RF_ERR_DECRYPT;
    out->len += (size_t)mlen;
    return 0;
}

json_t *rf_local_open_summary(const struct rf_local *l, const char *case_id, const uint8_t *blob,
                              size_t n, struct rf_buf *plain)
{
    char ad[48];
    json_t *s = NULL;
    snprintf(ad, sizeof(ad), "summary:%s", case_id);
    rf_buf_reset(plain);
    if (rf_local_open(l, ad, blob, n, plain) == 0) {
        json_error_t e;
        s = json_loadb((const char *)plain->data, plain->len, 0, &e);
    }
    rf_buf_reset(plain); /* wiped */
    return s;
}

/* Seals the JSON j as row ad; calls put(blob). */
static int seal_json(const struct rf_local *l, const char *ad, json_t *j, struct rf_buf *out)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        return RF_ERR_NOMEM;
    int rc = rf_local_seal(l, ad, (const uint8_t *)s, strlen(s), out);
    rf_out_json_free(s);
    return rc;
}

static int open_json(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                     json_t **out)
{
    struct rf_buf plain;
    rf_buf_init_secure(&plain, ROW_MAX);
    *out = NULL;
    int rc = rf_local_open(l, ad, p, n, &plain);
    if (rc == 0) {
        json_error_t e;
        *out = json_loadb((const char *)plain.data, plain.len, 0, &e);
        if (!*out)
            rc = RF_ERR_FORMAT;
    }
    rf_buf_free(&plain);
    return rc;
}

/* ---- digesting objects ---- */

static int to_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* The intake answer with this id (borrowed), or NULL. */
static json_t *answer(json_t *msg, const char *id)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(msg, "answers"), i, a)
    {
        const char *aid = json_string_value(json_object_get(a, "id"));
        if (aid && strcmp(aid, id) == 0)
            return json_object_get(a, "value");
    }
    return NULL;
}

static const char *str_or(json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

/* Whether the signed event p names a roster version this client has not
 * verified yet (published while it synced): retried at the next sync. */
static int names_future_roster(const struct rf_local *l, const struct rf_buf *p)
{
    json_error_t e;
    if (p->len <= RF_EVENT_HEADER_BYTES)
        return 0;
    json_t *j = json_loadb((const char *)p->data + RF_EVENT_HEADER_BYTES,
                           p->len - RF_EVENT_HEADER_BYTES, 0, &e);
    json_t *v = json_object_get(j, "roster");
    int future = json_is_integer(v) && json_integer_value(v) > (json_int_t)l->nrosters &&
                 json_integer_value(v) <= (json_int_t)l->nrosters + 16;
    json_decref(j);
    return future;
}

/* A reply's digest: its text, and an author only from a verified signature
 * and roster (replysig.h); the name inside a version 1 reply is ignored. */
static json_t *reply_digest(struct rf_local *l, const struct rf_cobj *o, const struct rf_buf *plain)
{
    json_t *r = NULL;
    if (rf_replysig_read(&r, plain->data, plain->len, o->case_id,
                         (const struct rf_roster *const *)l->rosters, l->nrosters) != 0)
        return json_pack("{ssss}", "k", "broken", "error", "not a reply");
    json_t *d =
        json_pack("{ssssss}", "k", "reply", "author", str_or(json_object_get(r, "author"), ""),
                  "text", str_or(json_object_get(r, "text"), ""));
    json_decref(r);
    return d;
}

/* What a digest says about one opened object; NULL with *skip set for an
 * event that names a roster not verified yet (looked at again after the
 * next roster check). Such an event never verifies (its roster is past
 * those known), so it is looked for only when the verify fails: one JSON
 * parse of every event saved. */
static json_t *digest_of(struct rf_local *l, const struct rf_cobj *o, uint8_t kind,
                         const struct rf_buf *plain, int nosig, int *skip, uint8_t hash[32],
                         int *verified, struct rf_buf *packed)
{
    json_error_t e;
    if (kind == RF_KIND_EVENT) {
        struct rf_ev ev;
        int rc = rf_state_event_check(&ev, plain->data, plain->len, o->case_id,
                                      (const struct rf_roster *const *)l->rosters, l->nrosters,
                                      o->roster, !nosig);
        if (rc != 0 && names_future_roster(l, plain)) {
            *skip = 1;
            return NULL;
        }
        if (rc != 0)
            return json_pack(
                "{ssss}", "k", "event", "error",
                rc == RF_ERR_ROSTER ? "the author was not on every roster version from the one "
                                      "it names to the one in force when the server stored it"
                : rc == RF_ERR_PROTOCOL
                    ? "the server claims it was stored under a roster older than the one it "
                      "names, or one this computer has not verified"
                : rc == RF_ERR_SIGNATURE ? "bad signature or moved from another case"
                                         : "malformed event");
        ev.seq = o->seq;
        /* the signed bytes' hash (checkpoint.h): what this client verified;
         * the row packed (lib/evrow.h), NULL returned */
        rf_ckpt_obj_hash(hash, plain->data, plain->len);
        *verified = rf_local_ev_pack(packed, &ev, hash) == 0;
        rf_ev_clear(&ev);
        return NULL;
    }
    if (kind == RF_KIND_REPLY)
        return reply_digest(l, o, plain);
    if (kind != RF_KIND_MESSAGE)
        return json_pack("{ss}", "k", "other");
    json_t *m = json_loadb((const char *)plain->data, plain->len, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(m)) {
        json_decref(m);
        return json_pack("{ssss}", "k", "broken", "error", "not a JSON object");
    }
    json_t *d;
    {
        const char *type = str_or(json_object_get(m, "type"), "message");
        d = json_pack("{ssssss}", "k", "message", "type", type, "text",
                      str_or(json_object_get(m, "text"), ""));
        if (d && strcmp(type, "intake") == 0) {
            json_t *need = answer(m, "need"), *urg = answer(m, "urgency");
            if (need)
                json_object_set(d, "need", need);
            if (urg)
                json_object_set(d, "urgency", urg);
            /* answers' values are searchable too */
            json_t *all = json_array();
            size_t i;
            json_t *a;
            json_array_foreach(json_object_get(m, "answers"), i, a)
            {
                json_t *v = json_object_get(a, "value");
                if (json_is_string(v))
                    json_array_append(all, v);
                size_t j;
                json_t *x;
                json_array_foreach(v, j, x)
                {
                    if (json_is_string(x))
                        json_array_append(all, x);
                }
            }
            json_object_set_new(d, "answers", all);
        }
    }
    json_decref(m);
    (void)o;
    return d;
}

/* ---- digesting new objects, on every core ----
 *
 * An object's digest is made in two halves. The first, on the calling
 * thread, reads what SQLite holds: its ciphertext and, for an object sealed
 * before this caseworker joined, the grant that opens it (rf_thread_pick).
 * The second, which any thread may run, opens the envelope, verifies the
 * event's signature and roster claims, and seals the digest row: that is
 * nearly all of the work (one X25519 open and one Ed25519 verify per
 * event). The rows are then written on the calling thread, in seq order, in
 * the caller's transaction: the database is the same as when one thread
 * does it all. Each digester keeps one secure plaintext buffer for all its
 * objects (no locked memory allocated per object), wiped between them. */
#define DIGEST_BATCH_MAX 1024
size_t rf_local_digest_batch; /* tests: a smaller batch (0: DIGEST_BATCH_MAX) */
#define DIGEST_BATCH                                                                               \
    (rf_local_digest_batch > 0 && rf_local_digest_batch < DIGEST_BATCH_MAX ? rf_local_digest_batch \
                                                                           : DIGEST_BATCH_MAX)
#define DIGEST_BATCH_BYTES (64u * 1024 * 1024)
#define DIGESTERS_MAX 16

int rf_local_digest_threads;

enum { PRE_OPEN, PRE_FILE, PRE_LARGE, PRE_FAILED };

struct dslot {
    const struct rf_cobj *o;
    int pre, prerc;
    uint8_t grant[RF_GRANT_BYTES];
    int use_grant;
    struct rf_buf ct;
    int nosig; /* an event checked by the checkpoint's chain, not its signature */
    int v2;    /* an event version 2: ks holds its keys' sealed rows */
    int moved; /* ... naming a key of another case */
    struct rf_buf ks;
    /* results */
    int rc;         /* fatal (out of memory): the update stops */
    int skip;       /* names a roster not verified yet: no digest now */
    int notrecip;   /* not sealed to this caseworker: an unreadable row */
    int unverified; /* a refused event */
    int verified;   /* an event verified: hash is its signed bytes' (lckpt.h) */
    uint8_t hash[32];
    struct rf_buf row;
    int ckey; /* a CASEKEY that checked out: ck and its sealed row krow to store */
    struct rf_ccasekey ck;
    struct rf_buf krow;
};

struct dpool {
    struct rf_local *l;
    struct dslot *slots;
    size_t n, next; /* next under mu */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen; /* a new batch handed out (under mu) */
    int nworkers; /* the digesters on threads of their own */
    int finished; /* ... that finished the batch of gen */
    int stop;
};

struct digester {
    struct dpool *p;
    struct rf_buf plain;  /* secure, reused */
    struct rf_buf packed; /* secure, reused: a verified event's row */
    struct rf_ckeys keys; /* secure, reused: an event v2's keys */
};

/* The first half, on the thread that owns the database. */
static void digest_read(struct rf_local *l, struct dslot *sl)
{
    const struct rf_cobj *o = sl->o;
    rf_buf_reset(&sl->ct);
    sl->use_grant = 0;
    sl->prerc = 0;
    /* decided here, on this thread: the run moves on as earlier batches are
     * written, meanwhile (their seqs are all below this one's, so the
     * answer is the one it would be once they are written) */
    sl->nosig = rf_lckpt_skip_sig(&l->run, o->kind, o->seq);
    if (o->kind == RF_KIND_FILE) {
        sl->pre = PRE_FILE; /* files are opened when saved (refuge files); nothing to index */
        return;
    }
    if (o->size > PLAIN_MAX * 2) {
        sl->pre = PRE_LARGE;
        return;
    }
    sl->pre = PRE_OPEN;
    int rc = rf_cache_object_stream_at(l->c, o, to_buf, &sl->ct);
    sl->v2 = rc == 0 && o->kind == RF_KIND_EVENT && sl->ct.len >= 3 &&
             memcmp(sl->ct.data, "RFE", 3) == 0;
    if (sl->v2) /* its case's keys with its key id, opened by the digester */
        rc = rf_local_ev2_keys_read(l, o->case_id, &sl->ct, &sl->ks, &sl->moved);
    else if (rc == 0)
        rc = rf_thread_pick(l->c, l->k, o->seq, sl->grant, &sl->use_grant);
    if (rc != 0) {
        sl->pre = PRE_FAILED;
        sl->prerc = rc;
    }
}

/* The second half: any thread. */
static void digest_work(struct rf_local *l, struct dslot *sl, struct rf_buf *plain,
                        struct rf_buf *packed, struct rf_ckeys *keys)
{
    const struct rf_cobj *o = sl->o;
    char ad[48];
    uint8_t kind = 0;
    json_t *d = NULL;
    int rc = sl->prerc;
    sl->rc = sl->skip = sl->notrecip = sl->unverified = sl->verified = sl->ckey = 0;
    rf_buf_reset(&sl->row);
    if (sl->pre == PRE_FILE) {
        d = json_pack("{ss}", "k", "file");
        goto seal;
    }
    if (sl->pre == PRE_LARGE) {
        d = json_pack("{ssss}", "k", "broken", "error", "too large");
        goto seal;
    }
    rf_buf_reset(plain);
    if (sl->pre == PRE_OPEN && sl->v2) { /* a moved one: refused below, as a v1 one is */
        rc = sl->moved
                 ? RF_ERR_DECRYPT
                 : rf_local_ev2_open(l, o->case_id, &sl->ks, keys, sl->ct.data, sl->ct.len, plain);
        kind = RF_KIND_EVENT;
    } else if (sl->pre == PRE_OPEN) {
        struct rf_open *op = NULL;
        rc = sl->use_grant
                 ? rf_open_new_grant(&op, sl->grant, l->k->box_pk, l->k->box_sk, to_buf, plain)
                 : rf_open_new(&op, l->k->box_pk, l->k->box_sk, to_buf, plain);
        if (rc == 0 && sl->ct.len > 0)
            rc = rf_open_write(op, sl->ct.data, sl->ct.len);
        if (rc == 0)
            rc = rf_open_finish(op);
        if (rc == 0)
            kind = rf_open_kind(op);
        rf_open_free(op);
    }
    if (rc == RF_ERR_NOT_RECIPIENT) {
        sl->notrecip = 1;
        rf_buf_reset(plain);
        return;
    }
    if (rc != 0 && sl->v2) /* the case's key does not open it: counted as a refused event */
        d = json_pack("{ssss}", "k", "event", "error",
                      "does not open with the case's key: moved from another case or altered");
    else if (rc != 0)
        d = json_pack("{ssss}", "k", "broken", "error", rf_strerror(rc));
    else if (kind == RF_KIND_CASEKEY)
        d = rf_local_casekey_digest(l, o, plain, &sl->ck, &sl->krow, &sl->ckey);
    else
        d = digest_of(l, o, kind, plain, sl->nosig, &sl->skip, sl->hash, &sl->verified, packed);
    rf_buf_reset(plain);
    if (sl->skip)
        return;               /* no digest yet: looked at again after the next roster check */
    if (!d && sl->verified) { /* a verified event: its packed row */
        snprintf(ad, sizeof(ad), "digest:%lld", (long long)o->seq);
        sl->rc = rf_local_seal(l, ad, packed->data, packed->len, &sl->row);
        rf_buf_reset(packed);
        return;
    }
    rf_buf_reset(packed);
seal:
    if (!d) {
        sl->rc = RF_ERR_NOMEM;
        return;
    }
    sl->unverified =
        json_object_get(d, "error") && strcmp(str_or(json_object_get(d, "k"), ""), "event") == 0;
    snprintf(ad, sizeof(ad), "digest:%lld", (long long)o->seq);
    sl->rc = seal_json(l, ad, d, &sl->row);
    json_decref(d);
}

/* Digests the batch's objects not claimed yet (a round of the crew, or
 * the leader's share). */
static void digester_run(void *arg)
{
    struct digester *w = arg;
    struct dpool *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            break;
        digest_work(p->l, &p->slots[i], &w->plain, &w->packed, &w->keys);
    }
}

static void digester_end(void *arg)
{
    (void)arg;
    rf_envelope_thread_done(); /* its kept open state (envelope.c) */
}

static int digest_cpus(void)
{
    cpu_set_t set;
    int n = 1;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > DIGESTERS_MAX ? DIGESTERS_MAX : n;
}

/* Reads the first half of objs[first..] into slots: *k objects, at most
 * DIGEST_BATCH and DIGEST_BATCH_BYTES of ciphertext held at once. */
static void read_batch(struct rf_local *l, const struct rf_cobj *objs, size_t n, size_t first,
                       struct dslot *slots, size_t *k)
{
    size_t bytes = 0;
    *k = 0;
    while (first + *k < n && *k < DIGEST_BATCH && bytes < DIGEST_BATCH_BYTES) {
        slots[*k].o = &objs[first + *k];
        digest_read(l, &slots[*k]);
        bytes += slots[*k].ct.len;
        (*k)++;
    }
}

/* Writes a digested batch into the open transaction, in order, on the
 * thread that owns the database. */
static int write_batch(struct rf_local *l, struct dslot *batch, size_t k, unsigned *unverified)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        struct dslot *sl = &batch[i];
        rc = sl->rc;
        if (rc == 0)
            rf_lckpt_obj(&l->run, sl->o->seq, sl->o->kind, sl->o->case_id,
                         sl->o->kind != RF_KIND_EVENT ? RF_LCKPT_OTHER
                         : sl->skip                   ? RF_LCKPT_LATER
                         : sl->verified               ? RF_LCKPT_VERIFIED
                                                      : RF_LCKPT_FAILED,
                         sl->hash);
        if (rc == 0 && sl->skip && sl->o->seq < l->first_left)
            l->first_left = sl->o->seq;
        if (rc != 0 || sl->skip)
            continue;
        if (sl->notrecip) {
            rc = rf_cache_digest_put(l->c, sl->o->seq, sl->o->case_id, 0, NULL, 0);
            continue;
        }
        if (unverified && sl->unverified)
            (*unverified)++;
        if (sl->ckey)
            rc = rf_cache_casekey_put(l->c, &sl->ck, sl->krow.data, sl->krow.len);
        if (rc == 0)
            rc =
                rf_cache_digest_put(l->c, sl->o->seq, sl->o->case_id, 1, sl->row.data, sl->row.len);
    }
    return rc;
}

/* Digests objs[0..n) into the open transaction, on up to nthreads threads
 * (1: all on this one). A pipeline of three batches: while the digesters
 * work on batch i, this thread writes batch i-1 (in order) and reads batch
 * i+1's ciphertext (SQLite), then digests too. Batch i+1 is read after
 * batch i-1 is written, as when one thread does it all one batch at a
 * time: a CASEKEY written in i-1 opens the events of i+1 (CASEKEY objects
 * have a pass of their own before the events anyway). */
static int digest_all(struct rf_local *l, const struct rf_cobj *objs, size_t n, int nthreads,
                      unsigned *unverified)
{
    const size_t batch_max = DIGEST_BATCH;
    struct dslot *slots = calloc(3 * batch_max, sizeof(*slots));
    struct digester ws[DIGESTERS_MAX];
    struct dpool p = {.l = l};
    struct rf_crew crew;
    if (!slots)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&p.mu, NULL);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > DIGESTERS_MAX)
        nthreads = DIGESTERS_MAX;
    if ((size_t)nthreads > n)
        nthreads = n > 0 ? (int)n : 1;
    for (size_t i = 0; i < 3 * batch_max; i++) {
        rf_buf_init(&slots[i].ct, PLAIN_MAX * 2);
        rf_buf_init(&slots[i].row, ROW_MAX);
        rf_buf_init(&slots[i].ks, 16 * 4096);
        rf_buf_init(&slots[i].krow, 4096);
    }
    int nomem = 0;
    for (int t = 0; t < nthreads; t++) {
        ws[t].p = &p;
        rf_buf_init_secure(&ws[t].plain, PLAIN_MAX);
        rf_buf_init_secure(&ws[t].packed, PLAIN_MAX + 1024);
        nomem |= rf_ckeys_init(&ws[t].keys, 16) != 0;
    }
    rf_crew_start(&crew, nomem ? 1 : nthreads, digester_run, ws, sizeof(ws[0]), digester_end);
    int rc =
        nomem ? RF_ERR_NOMEM : rf_lckpt_begin(&l->run, l->c, l->use_set ? &l->use : NULL, objs, n);
    size_t first = 0, k = 0, kprev = 0;
    struct dslot *prev = NULL;
    int cur = 0;
    if (rc == 0)
        read_batch(l, objs, n, 0, slots, &k);
    while (rc == 0 && (k > 0 || kprev > 0)) {
        struct dslot *batch = slots + (size_t)cur * batch_max;
        if (k > 0) {
            p.slots = batch;
            p.n = k;
            p.next = 0;
            rf_crew_go(&crew);
        }
        if (kprev > 0)
            rc = write_batch(l, prev, kprev, unverified);
        size_t knext = 0;
        if (rc == 0 && !l->run.mismatch && k > 0)
            read_batch(l, objs, n, first + k, slots + (size_t)((cur + 1) % 3) * batch_max, &knext);
        if (k > 0) {
            digester_run(&ws[0]); /* this thread digests too */
            rf_crew_wait(&crew);
        }
        if (l->run.mismatch)
            break; /* rolled back and digested again (rf_local_update_after) */
        prev = batch;
        kprev = k;
        first += k;
        k = knext;
        cur = (cur + 1) % 3;
    }
    rf_crew_stop(&crew);
    for (int t = 0; t < nthreads; t++) {
        rf_buf_free(&ws[t].plain);
        rf_buf_free(&ws[t].packed);
        rf_ckeys_free(&ws[t].keys);
    }
    for (size_t i = 0; i < 3 * batch_max; i++) {
        rf_buf_free(&slots[i].ct);
        rf_buf_free(&slots[i].row);
        rf_buf_free(&slots[i].ks);
        rf_buf_free(&slots[i].krow);
    }
    free(slots);
    pthread_mutex_destroy(&p.mu);
    if (rc == 0)
        rc = rf_lckpt_end(&l->run, l->c);
    return rc;
}

/* The CASEKEY objects objs[0..nkeys) first (their keys stored), then the
 * rest, whose events version 2 open with them (rf_local_casekey_order). */
#define CKMEMO_MIN 4096 /* objects in a pass from which the case keys are held in memory */
int rf_local_ckmemo_min;

const struct rf_ckmemo *rf_local_ckmemo(const struct rf_local *l)
{
    return l->ckmemo;
}

static int digest_passes(struct rf_local *l, const struct rf_cobj *objs, size_t n, size_t nkeys,
                         int threads, unsigned *unv)
{
    l->first_left = INT64_MAX;
    int rc = nkeys > 0 ? digest_all(l, objs, nkeys, threads, unv) : 0; /* no event: no mismatch */
    if (rc == 0 && n > nkeys) {
        size_t min = rf_local_ckmemo_min > 0 ? (size_t)rf_local_ckmemo_min : CKMEMO_MIN;
        if (n - nkeys >= min && rf_ckmemo_load(l, &l->ckmemo) != 0)
            l->ckmemo = NULL; /* looked up one by one: slower, not wrong */
        rc = digest_all(l, objs + nkeys, n - nkeys, threads, unv);
        rf_ckmemo_free(l->ckmemo);
        l->ckmemo = NULL;
    }
    return rc;
}

/* ---- materializing a case ---- */

struct gather {
    struct rf_local *l;
    struct rf_ev *ev;
    size_t nev, cap;
    json_t *bad;        /* [{"seq","error"}] or NULL */
    struct rf_buf *txt; /* search text (secure) or NULL */
    json_t *need, *urgency;
    int have_intake;
    struct rf_buf plain; /* secure: a digest row opened (gather_init) */
};

static void gather_init(struct gather *g, struct rf_local *l)
{
    memset(g, 0, sizeof(*g));
    g->l = l;
    rf_buf_init_secure(&g->plain, ROW_MAX);
}

static int push_ev(struct gather *g, struct rf_ev *e)
{
    if (rf_array_grow(&g->ev, &g->cap, g->nev + 1, sizeof(*g->ev), 16) != 0)
        return RF_ERR_NOMEM;
    g->ev[g->nev++] = *e;
    return 0;
}

static void add_text(struct gather *g, const char *s)
{
    if (!g->txt || !s || !s[0])
        return;
    char *f = rf_local_fold(s);
    if (f) {
        rf_buf_put(g->txt, f, strlen(f));
        rf_buf_put(g->txt, "\n", 1);
        sodium_memzero(f, strlen(f));
        free(f);
    }
}

static int on_digest(void *ctx, int64_t seq, const uint8_t *blob, size_t n)
{
    struct gather *g = ctx;
    char ad[48];
    json_t *d = NULL;
    json_error_t err;
    snprintf(ad, sizeof(ad), "digest:%lld", (long long)seq);
    rf_buf_reset(&g->plain);
    if (rf_local_open(g->l, ad, blob, n, &g->plain) != 0)
        return 0; /* a damaged row counts as nothing; resync rebuilds it */
    if (rf_evrow_is(g->plain.data, g->plain.len)) { /* a verified event, packed */
        struct rf_ev e;
        int bad = rf_local_ev_unpack(&e, NULL, g->plain.data, g->plain.len);
        rf_buf_reset(&g->plain);
        if (bad)
            return 0; /* damaged, as above */
        int rc = push_ev(g, &e);
        if (rc != 0)
            rf_ev_clear(&e);
        return rc;
    }
    d = json_loadb((const char *)g->plain.data, g->plain.len, 0, &err);
    rf_buf_reset(&g->plain);
    if (!d)
        return 0;
    const char *k = str_or(json_object_get(d, "k"), "");
    int rc = 0;
    if (strcmp(k, "event") == 0) {
        json_t *ej = json_object_get(d, "ev");
        struct rf_ev e;
        if (ej && rf_local_ev_from_json(&e, ej) == 0) {
            rc = push_ev(g, &e);
            if (rc != 0)
                rf_ev_clear(&e);
        } else if (g->bad) {
            json_array_append_new(g->bad,
                                  json_pack("{sIss}", "seq", (json_int_t)seq, "error",
                                            str_or(json_object_get(d, "error"), "unverified")));
        }
    } else if (strcmp(k, "message") == 0 || strcmp(k, "reply") == 0) {
        add_text(g, json_string_value(json_object_get(d, "text")));
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(d, "answers"), i, a) add_text(g, json_string_value(a));
        if (strcmp(k, "message") == 0 && !g->have_intake &&
            strcmp(str_or(json_object_get(d, "type"), ""), "intake") == 0) {
            g->have_intake = 1;
            g->need = json_incref(json_object_get(d, "need"));
            g->urgency = json_incref(json_object_get(d, "urgency"));
        }
    }
    json_decref(d);
    return rc;
}

/* The outbox's events for the case (this client's own, opened with its key). */
static int gather_outbox(struct gather *g, const char *case_id)
{
    struct rf_coutbox *ob = NULL;
    size_t n = 0;
    struct rf_buf env, plain;
    int rc = rf_cache_outbox_list(g->l->c, case_id, &ob, &n);
    if (rc != 0)
        return rc;
    rf_buf_init(&env, PLAIN_MAX);
    rf_buf_init_secure(&plain, PLAIN_MAX);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t kind = 0;
        struct rf_ev e;
        rf_buf_reset(&env);
        rf_buf_reset(&plain);
        rc = rf_cache_outbox_get(g->l->c, ob[i].id, &env);
        if (rc != 0)
            break;
        if (rf_local_outbox_open(g->l, case_id, env.data, env.len, &kind, &plain) != 0 ||
            kind != RF_KIND_EVENT ||
            rf_state_event_verify(&e, plain.data, plain.len, case_id,
                                  (const struct rf_roster *const *)g->l->rosters, g->l->nrosters,
                                  (uint32_t)g->l->nrosters) != 0)
            continue;
        rc = push_ev(g, &e);
        if (rc != 0)
            rf_ev_clear(&e);
    }
    rf_buf_free(&env);
    rf_buf_free(&plain);
    free(ob);
    return rc;
}

void rf_local_events_free(struct rf_ev *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rf_ev_clear(&ev[i]);
    free(ev);
}

static void gather_free(struct gather *g)
{
    rf_buf_free(&g->plain);
    rf_local_events_free(g->ev, g->nev);
    json_decref(g->need);
    json_decref(g->urgency);
    json_decref(g->bad);
}

/* Drops the events beyond the lamport bound (state.h), listing them in
 * g->bad: they do not count, and the next event's lamport ignores them. */
static int drop_unbounded(struct gather *g)
{
    unsigned char *keep = malloc(g->nev ? g->nev : 1);
    if (!keep)
        return RF_ERR_NOMEM;
    int rc = rf_state_bound(g->ev, g->nev, keep);
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < g->nev; i++) {
        if (keep[i]) {
            g->ev[k++] = g->ev[i];
            continue;
        }
        if (g->bad)
            json_array_append_new(
                g->bad, json_pack("{sIss}", "seq", (json_int_t)g->ev[i].seq, "error",
                                  "its lamport jumps too far ahead of the case's events"));
        rf_ev_clear(&g->ev[i]);
    }
    if (rc == 0)
        g->nev = k;
    free(keep);
    return rc;
}

static int gather_case(struct gather *g, const char *case_id)
{
    int rc = rf_cache_digests(g->l->c, case_id, on_digest, g);
    if (rc == 0)
        rc = gather_outbox(g, case_id);
    if (rc == 0)
        rc = drop_unbounded(g);
    return rc;
}

int rf_local_events(struct rf_local *l, const char *case_id, struct rf_ev **ev, size_t *n,
                    json_t **bad)
{
    struct gather g;
    gather_init(&g, l);
    g.bad = bad ? json_array() : NULL;
    *ev = NULL;
    *n = 0;
    if (bad)
        *bad = NULL;
    int rc = gather_case(&g, case_id);
    if (rc == 0) {
        *ev = g.ev;
        *n = g.nev;
        g.ev = NULL;
        g.nev = 0;
        if (bad) {
            *bad = g.bad;
            g.bad = NULL;
        }
    }
    gather_free(&g);
    return rc;
}

/* A case's board row (what the desk's board and `refuge cases` show and
 * filter on) from its summary, packed (lib/boardrow.h, cache version 6):
 * no search text, nothing of the intake beyond "need" and "urgency". */
static int seal_board(struct rf_local *l, const char *case_id, json_t *s, struct rf_buf *out)
{
    char ad[48];
    struct rf_buf plain;
    snprintf(ad, sizeof(ad), "board:%s", case_id);
    rf_buf_init_secure(&plain, RF_BOARDROW_MAX); /* rf_secmem: reused, no system call */
    int rc = rf_boardrow_encode(&plain, s);
    if (rc == 0)
        rc = rf_local_seal(l, ad, plain.data, plain.len, out);
    rf_buf_free(&plain); /* wiped */
    return rc;
}

/* The board rows of the summaries written before there were board rows
 * (a home from before cache version 3), or before they carried what
 * `refuge cases` lists (version 4), or while they were JSON (version 6
 * packs them): each summary opened once. */
struct fill {
    struct rf_local *l;
    struct rf_buf plain, board;
    size_t n;
};

static int fill_one(void *ctx, const char *case_id, int64_t last_seq, const uint8_t *blob, size_t n)
{
    struct fill *f = ctx;
    if (strcmp(case_id, RF_STATE_TEAMCONFIG) == 0)
        return 0;
    json_t *s = rf_local_open_summary(f->l, case_id, blob, n, &f->plain);
    if (!s)
        return 0; /* a damaged summary gets its row when it is built again */
    rf_buf_reset(&f->board);
    int rc = seal_board(f->l, case_id, s, &f->board);
    json_decref(s);
    if (rc == 0)
        rc = rf_cache_board_put(f->l->c, case_id, last_seq, f->board.data, f->board.len);
    f->n++;
    return rc;
}

int rf_local_board_open(const struct rf_local *l, const char *case_id, const uint8_t *p, size_t n,
                        struct rf_buf *out)
{
    char ad[48] = "board:"; /* once a row for `refuge cases`: no snprintf */
    size_t k = strlen(case_id);
    if (k > sizeof(ad) - 7)
        return RF_ERR_LIMIT;
    memcpy(ad + 6, case_id, k + 1);
    return rf_local_open(l, ad, p, n, out);
}

int rf_local_board_fill(struct rf_local *l, size_t *built)
{
    int64_t need = 0;
    if (built)
        *built = 0;
    int rc = rf_cache_meta_get(l->c, "board_fill", &need);
    if (rc != 0 || need == 0)
        return rc;
    struct fill f = {.l = l};
    rf_buf_init_secure(&f.plain, ROW_MAX);
    rf_buf_init(&f.board, ROW_MAX);
    rc = rf_cache_begin(l->c);
    if (rc == 0)
        rc = rf_cache_summaries_seq(l->c, fill_one, &f);
    if (rc == 0)
        rc = rf_cache_meta_set(l->c, "board_fill", 0);
    if (rc == 0)
        rc = rf_cache_commit(l->c);
    else
        rf_cache_rollback(l->c);
    rf_buf_free(&f.plain);
    rf_buf_free(&f.board);
    if (rc == 0 && built)
        *built = f.n;
    return rc;
}

int rf_local_case_read_outbox(struct rf_local *l, const char *case_id, struct rf_case_rows *r)
{
    rf_case_rows_reset(r);
    r->case_id = case_id;
    struct gather go = {.l = l};
    int rc = gather_outbox(&go, case_id);
    r->outbox = go.ev;
    r->nout = go.nev;
    go.ev = NULL;
    go.nev = 0;
    gather_free(&go);
    return rc;
}

int rf_local_case_read(struct rf_local *l, const char *case_id, struct rf_case_rows *r)
{
    int rc = rf_local_case_read_outbox(l, case_id, r);
    if (rc == 0)
        rc = rf_cache_digests(l->c, case_id, rf_case_rows_keep_digest, r);
    if (rc == 0 && strcmp(case_id, RF_STATE_TEAMCONFIG) != 0) {
        rc = rf_cache_case_objects(l->c, case_id, &r->objs, &r->nobj);
        if (rc == RF_ERR_NOT_FOUND)
            rc = 0;
    }
    return rc;
}

/* The case's summary from r's rows, sealed into r->sealed (and r->board). */
static int case_build(struct rf_local *l, struct rf_case_rows *r, struct gather *g, json_t **state,
                      json_t **sum)
{
    const char *case_id = r->case_id;
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < r->digests.len;) {
        int64_t seq;
        uint64_t n;
        memcpy(&seq, r->digests.data + off, sizeof(seq));
        memcpy(&n, r->digests.data + off + sizeof(seq), sizeof(n));
        off += sizeof(seq) + sizeof(n);
        rc = on_digest(g, seq, r->digests.data + off, (size_t)n);
        off += (size_t)n;
    }
    for (size_t i = 0; rc == 0 && i < r->nout; i++) { /* the outbox's events, after */
        rc = push_ev(g, &r->outbox[i]);
        if (rc == 0)
            memset(&r->outbox[i], 0, sizeof(r->outbox[i])); /* moved into g */
    }
    if (rc == 0)
        rc = drop_unbounded(g);
    if (rc != 0)
        return rc;
    char ad[48];
    snprintf(ad, sizeof(ad), "summary:%s", case_id);
    if (strcmp(case_id, RF_STATE_TEAMCONFIG) == 0) {
        *state = rf_state_team(g->ev, g->nev);
        return *state ? seal_json(l, ad, *state, &r->sealed) : RF_ERR_NOMEM;
    }
    unsigned counts[RF_KIND_MAX + 1] = {0};
    uint32_t first = 0, last = 0;
    for (size_t i = 0; i < r->nobj; i++) {
        const struct rf_cobj *o = &r->objs[i];
        if (o->kind <= RF_KIND_MAX)
            counts[o->kind]++;
        if (i == 0 || o->day < first)
            first = o->day;
        if (o->day > last)
            last = o->day;
        r->last_seq = o->seq;
    }
    unsigned pending = 0;
    for (size_t i = 0; i < g->nev; i++)
        pending += g->ev[i].seq == 0;
    *state = rf_state_case(g->ev, g->nev);
    if (!*state)
        return RF_ERR_NOMEM;
    json_t *notes = json_object_get(*state, "notes");
    size_t i;
    json_t *v;
    json_array_foreach(notes, i, v) add_text(g, json_string_value(json_object_get(v, "text")));
    json_array_foreach(json_object_get(*state, "tags"), i, v) add_text(g, json_string_value(v));
    rf_buf_cstr(g->txt);
    json_t *st = *state;
    *sum = json_pack("{sssOsOsOsOsOsIsIsIsIsIsIsIsIsO?sO?ss}", "case", case_id, "stage",
                     json_object_get(st, "stage"), "assigned", json_object_get(st, "assigned"),
                     "tags", json_object_get(st, "tags"), "due", json_object_get(st, "due"),
                     "checklist", json_object_get(st, "checklist"), "notes",
                     (json_int_t)json_array_size(notes), "messages",
                     (json_int_t)counts[RF_KIND_MESSAGE], "files", (json_int_t)counts[RF_KIND_FILE],
                     "replies", (json_int_t)counts[RF_KIND_REPLY], "first_day", (json_int_t)first,
                     "last_day", (json_int_t)last, "pending", (json_int_t)pending, "lamport",
                     json_integer_value(json_object_get(st, "lamport")), "need", g->need, "urgency",
                     g->urgency, "search", g->txt->data ? (const char *)g->txt->data : "");
    if (!*sum)
        return RF_ERR_NOMEM;
    rc = seal_json(l, ad, *sum, &r->sealed);
    if (rc == 0)
        rc = seal_board(l, case_id, *sum, &r->board);
    return rc;
}

void rf_local_case_build(struct rf_local *l, struct rf_case_rows *r)
{
    struct rf_buf txt;
    json_t *state = NULL, *sum = NULL;
    rf_buf_init_secure(&txt, ROW_MAX);
    struct gather g;
    gather_init(&g, l);
    g.txt = &txt;
    r->rc = case_build(l, r, &g, &state, &sum);
    json_decref(sum);
    json_decref(state);
    gather_free(&g);
    rf_buf_free(&txt);
}

int rf_local_case_write(struct rf_local *l, const struct rf_case_rows *r)
{
    if (r->rc != 0)
        return r->rc;
    int team = strcmp(r->case_id, RF_STATE_TEAMCONFIG) == 0;
    return rf_cache_summary_put(l->c, r->case_id, team ? 0 : r->last_seq, r->sealed.data,
                                r->sealed.len, team ? NULL : r->board.data, r->board.len);
}

int rf_local_refresh(struct rf_local *l, const char *case_id)
{
    struct rf_case_rows r;
    rf_case_rows_init(&r);
    int rc = rf_local_case_read(l, case_id, &r);
    if (rc == 0) {
        rf_local_case_build(l, &r);
        rc = rf_local_case_write(l, &r);
    }
    rf_case_rows_free(&r);
    return rc;
}

static int cmp_case(const void *a, const void *b)
{
    return strcmp(a, b);
}

int rf_local_update(struct rf_local *l, unsigned *unverified)
{
    return rf_local_update_after(l, INT64_MIN, unverified);
}

void rf_local_use_checkpoint(struct rf_local *l, const struct rf_ckpt *ck)
{
    l->use_set = ck != NULL;
    if (ck)
        l->use = *ck;
}

void rf_local_ckpt_result(const struct rf_local *l, struct rf_local_ckpt_result *out)
{
    *out = l->res;
}

int rf_local_update_after(struct rf_local *l, int64_t after, unsigned *unverified)
{
    memset(&l->res, 0, sizeof(l->res));
    struct rf_cobj *objs = NULL;
    size_t n = 0;
    char(*dirty)[RF_CASE_ID_LEN + 1] = NULL;
    size_t nd = 0;
    int64_t listed_max = 0; /* read before the listing */
    int rc = rf_cache_objects_max(l->c, &listed_max);
    if (rc == 0)
        rc = rf_cache_undigested_after(l->c, after, &objs, &n);
    if (rc != 0)
        return rc;
    if (n == 0) { /* the mark may still move up (objects another process digested) */
        rc = rf_cache_digested_advance(l->c, NULL);
        goto out;
    }
    size_t nkeys = 0; /* CASEKEY objects first: the events after them use their keys */
    rc = rf_local_casekey_order(l, &objs, &n, &nkeys);
    if (rc != 0)
        goto out;
    dirty = malloc(n * sizeof(*dirty));
    if (!dirty) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        memcpy(dirty[i], objs[i].case_id, sizeof(dirty[0]));
    qsort(dirty, n, sizeof(dirty[0]), cmp_case);
    for (size_t i = 0; i < n; i++)
        if (nd == 0 || strcmp(dirty[nd - 1], dirty[i]) != 0)
            memmove(dirty[nd++], dirty[i], sizeof(dirty[0]));
    unsigned unv = 0;
    rf_out_phase("grants, list the objects to digest");
    rc = rf_cache_begin(l->c);
    int threads = rf_local_digest_threads ? rf_local_digest_threads : digest_cpus();
    if (rc == 0)
        rc = digest_passes(l, objs, n, nkeys, threads, &unv);
    if (rc == 0 && l->run.mismatch) {
        /* nothing digested on the checkpoint's word stays: all again, every
         * signature verified */
        rf_cache_rollback(l->c);
        l->use_set = 0;
        l->res.fell_back = 1;
        l->res.diff = l->run.diff;
        unv = 0;
        rc = rf_cache_begin(l->c);
        if (rc == 0)
            rc = digest_passes(l, objs, n, nkeys, threads, &unv);
    }
    rf_out_phase("digest");
    if (rc == 0 && l->run.use)
        l->res.by_ckpt = l->run.by_ckpt;
    if (unverified)
        *unverified += unv;
    if (rc == 0)
        rc = rf_cache_summaries_bulk(l->c, 1);
    if (rc == 0)
        rc = rf_local_refresh_all(l, (const char(*)[RF_CASE_ID_LEN + 1]) dirty, nd, threads);
    rf_cache_summaries_bulk(l->c, 0);
    rf_out_phase("summaries");
    if (rc == 0 && after == INT64_MIN) {
        /* the pass took every object above the mark that had no digest when
         * it was listed (none between the mark and after left out): up to
         * the first it left without one, every object listed then has one
         * now (one stored since is above listed_max: seqs only grow) */
        int64_t upto = listed_max;
        if (l->first_left != INT64_MAX && l->first_left - 1 < upto)
            upto = l->first_left - 1;
        rc = rf_cache_digested_advance_to(l->c, upto);
    } else if (rc == 0) {
        rc = rf_cache_digested_advance(l->c, NULL);
    }
    rf_out_phase("the digested mark");
    if (rc == 0)
        rc = rf_cache_commit(l->c);
    else
        rf_cache_rollback(l->c);
    rf_out_phase("commit");
out:
    l->use_set = 0; /* one update only */
    free(dirty);
    free(objs);
    return rc;
}

int rf_local_summary(struct rf_local *l, const char *case_id, json_t **out)
{
    struct rf_buf b;
    char ad[48];
    *out = NULL;
    snprintf(ad, sizeof(ad), "summary:%s", case_id);
    rf_buf_init(&b, ROW_MAX);
    int rc = rf_cache_summary_get(l->c, case_id, &b);
    if (rc == 0)
        rc = open_json(l, ad, b.data, b.len, out);
    rf_buf_free(&b);
    return rc;
}
