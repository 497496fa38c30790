/* client_test.c - the staff client's local pieces and the API's replay
 * cache: a nonce is refused while it could be replayed and the cache refuses
 * rather than forgets when full; text from a stranger cannot reach the
 * terminal with escapes; the roster chain is accepted only from the pinned
 * admin and only when each link is signed by an admin of the one before; the
 * ciphertext cache groups objects into cases and streams them back, and
 * keeps every grant received for an object (bounded), opening it with the
 * one that works however many junk ones came first; the CLI
 * answers usage errors with exit code 2. */
#include "client/cache.h"
#include "client/client.h"
#include "client/cmd.h"
#include "client/local.h"
#include "client/local_rows.h"
#include "lib/event.h"
#include "lib/evrow.h"
#include "client/out.h"
#include "client/trust.h"
#include "lib/boardrow.h"
#include "lib/err.h"
#include "lib/roster.h"
#include "client/net.h"
#include "lib/apisig.h"
#include "lib/casekey.h"
#include "lib/envelope.h"
#include "server/api_nonce.h"
#include "server/httpd.h"
#include "server/routes.h"
#include "server/session.h"
#include "server/srv.h"
#include "store/commit.h"
#include "store/store.h"

#include <curl/curl.h>
#include <sqlite3.h>
#include <time.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_local.h"
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void nonce_replay_refused_until_expiry(void **state)
{
    (void)state;
    struct rf_nonces *n;
    uint8_t a[RF_APISIG_NONCE_BYTES], b[RF_APISIG_NONCE_BYTES];
    randombytes_buf(a, sizeof(a));
    randombytes_buf(b, sizeof(b));
    assert_int_equal(rf_nonces_new(&n, 2), 0);
    assert_int_equal(rf_nonces_check(n, a, 1000), 0);
    assert_int_equal(rf_nonces_check(n, a, 1001), RF_ERR_EXISTS);
    assert_int_equal(rf_nonces_check(n, a, 1000 + 2 * RF_APISIG_MAX_SKEW), RF_ERR_EXISTS);
    assert_int_equal(rf_nonces_check(n, b, 1002), 0);
    /* full of live entries: refuse, do not forget */
    uint8_t c[RF_APISIG_NONCE_BYTES];
    randombytes_buf(c, sizeof(c));
    assert_int_equal(rf_nonces_check(n, c, 1003), RF_ERR_BUSY);
    assert_int_equal(rf_nonces_check(n, a, 1003), RF_ERR_EXISTS);
    /* once a and b are past the window, room again */
    int64_t later = 1002 + 2 * RF_APISIG_MAX_SKEW + 1;
    assert_int_equal(rf_nonces_check(n, c, later), 0);
    assert_int_equal(rf_nonces_check(n, c, later), RF_ERR_EXISTS);
    rf_nonces_free(n);
}

static void stranger_text_is_sanitised(void **state)
{
    (void)state;
    char out[128];
    rf_out_safe_copy(out, sizeof(out),
                     "ok\x1b]0;pwned\x07 \xe2\x80\xae"
                     "evil\r\nnext\xff");
    assert_null(strchr(out, '\x1b'));
    assert_null(strchr(out, '\x07'));
    assert_null(strchr(out, '\r'));
    assert_null(strchr(out, '\n'));
    assert_null(strstr(out, "\xe2\x80\xae")); /* right-to-left override */
    assert_non_null(strstr(out, "ok"));
    assert_non_null(strstr(out, "evil"));
    assert_non_null(strstr(out, "\xef\xbf\xbd")); /* invalid byte shown as U+FFFD */
    char day[16];
    rf_out_day(day, sizeof(day), 19723);
    assert_string_equal(day, "2024-01-01");
}

static void roster_chain_from_pinned_admin_only(void **state)
{
    (void)state;
    struct rf_staff_keys *admin = sodium_malloc(sizeof(*admin));
    struct rf_staff_keys *member = sodium_malloc(sizeof(*member));
    struct rf_roster *r = malloc(sizeof(*r)), *out = NULL;
    struct rf_buf v1, v2, v3;
    uint8_t h[32];
    assert_int_equal(rf_staff_keys_generate(admin, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(member, "Boris"), 0);
    rf_buf_init(&v1, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&v2, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&v3, RF_ROSTER_MAX_BYTES);

    make_roster(r, 1, NULL);
    add_member(r, admin, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&v1, r, admin), 0);
    rf_roster_hash(h, v1.data, v1.len);
    make_roster(r, 2, h);
    add_member(r, admin, RF_ROLE_ADMIN);
    add_member(r, member, RF_ROLE_MEMBER);
    assert_int_equal(rf_roster_sign(&v2, r, admin), 0);
    /* a member may not sign the next version */
    rf_roster_hash(h, v2.data, v2.len);
    make_roster(r, 3, h);
    add_member(r, member, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&v3, r, member), 0);

    const uint8_t *raw[3] = {v1.data, v2.data, v3.data};
    size_t len[3] = {v1.len, v2.len, v3.len};
    assert_int_equal(rf_trust_verify_chain(raw, len, 2, admin->sign_pk, &out), 0);
    assert_int_equal(out->version, 2);
    assert_int_equal(out->n, 2);
    free(out);
    out = NULL;
    assert_int_not_equal(rf_trust_verify_chain(raw, len, 2, member->sign_pk, &out), 0);
    assert_null(out);
    assert_int_not_equal(rf_trust_verify_chain(raw, len, 3, admin->sign_pk, &out), 0);
    assert_null(out);
    const uint8_t *skip[1] = {v2.data};
    size_t skiplen[1] = {v2.len};
    assert_int_not_equal(rf_trust_verify_chain(skip, skiplen, 1, admin->sign_pk, &out), 0);

    rf_buf_free(&v1);
    rf_buf_free(&v2);
    rf_buf_free(&v3);
    free(r);
    sodium_free(admin);
    sodium_free(member);
}

static int collect(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

static void cache_groups_cases_and_streams(void **state)
{
    (void)state;
    const char *tmp = getenv("REFUGE_TEST_TMP");
    struct rf_home h;
    memset(&h, 0, sizeof(h));
    snprintf(h.dir, sizeof(h.dir), "%s/client_test_home.%d", tmp ? tmp : "/tmp", (int)getpid());
    assert_int_equal(rf_home_create(&h), 0);
    struct rf_cache *c;
    assert_int_equal(rf_cache_open(&c, &h), 0);
    struct rf_cobj o[4] = {
        {1, "aaaa", RF_KIND_MESSAGE, 300, 20000, 1, 0},
        {2, "bbbb", RF_KIND_MESSAGE, 300, 20001, 1, 0},
        {3, "aaaa", RF_KIND_FILE, 5, 20002, 2, 0},
        {4, "aaaa", RF_KIND_REPLY, 300, 20003, 2, 0},
    };
    uint8_t big[200000];
    randombytes_buf(big, sizeof(big));
    assert_int_equal(rf_cache_begin(c), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(rf_cache_object_put(c, &o[i], big, i == 0 ? sizeof(big) : 10), 0);
    assert_int_equal(rf_cache_set_last_seq(c, 4), 0);
    assert_int_equal(rf_cache_commit(c), 0);

    int64_t last;
    assert_int_equal(rf_cache_last_seq(c, &last), 0);
    assert_int_equal(last, 4);
    struct rf_ccase *cs;
    size_t n;
    assert_int_equal(rf_cache_cases(c, &cs, &n), 0);
    assert_int_equal(n, 2);
    assert_string_equal(cs[0].case_id, "aaaa"); /* most recent activity first */
    assert_int_equal(cs[0].messages, 1);
    assert_int_equal(cs[0].files, 1);
    assert_int_equal(cs[0].replies, 1);
    assert_int_equal(cs[0].first_day, 20000);
    assert_int_equal(cs[0].last_day, 20003);
    assert_int_equal(cs[0].first_message_seq, 1);
    free(cs);
    struct rf_cobj *objs;
    assert_int_equal(rf_cache_case_objects(c, "bbbb", &objs, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(objs[0].seq, 2);
    free(objs);
    assert_int_equal(rf_cache_case_objects(c, "zzzz", &objs, &n), RF_ERR_NOT_FOUND);

    struct rf_buf back;
    rf_buf_init(&back, sizeof(big));
    assert_int_equal(rf_cache_object_stream(c, 1, collect, &back), 0);
    assert_int_equal(back.len, sizeof(big));
    assert_memory_equal(back.data, big, sizeof(big));
    rf_buf_free(&back);
    rf_cache_close(c);
}

/* Trust review finding 12, the client's half: every grant received for an
 * object is kept (bounded), the one whose key opens the object is used
 * whatever came first, a junk grant is skipped, and the one grant a cache of
 * before kept is still there after an upgrade. */
static void grants_kept_and_the_one_that_opens_is_used(void **state)
{
    (void)state;
    const char *tmp = getenv("REFUGE_TEST_TMP");
    struct rf_home h;
    char path[PATH_MAX];
    memset(&h, 0, sizeof(h));
    snprintf(h.dir, sizeof(h.dir), "%s/client_test_grants.%d", tmp ? tmp : "/tmp", (int)getpid());
    assert_int_equal(rf_home_create(&h), 0);
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    assert_int_equal(rf_staff_keys_generate(k, "Vera"), 0);
    uint8_t apk[1][32], ask[32];
    crypto_box_keypair(apk[0], ask);
    const char *text = "sealed before Vera joined";
    struct rf_buf ct;
    rf_buf_init(&ct, 1 << 20);
    assert_int_equal(rf_envelope_seal(&ct, RF_KIND_MESSAGE, (const uint8_t(*)[32])apk, 1,
                                      (const uint8_t *)text, strlen(text)),
                     0);
    uint8_t *key = sodium_malloc(32);
    uint8_t junk[RF_GRANT_BYTES], honest[RF_GRANT_BYTES], got[RF_GRANT_BYTES];
    randombytes_buf(key, 32);
    assert_int_equal(rf_grant_make(junk, key, k->box_pk), 0);
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, apk[0], ask), 0);
    assert_int_equal(rf_grant_make(honest, key, k->box_pk), 0);
    sodium_free(key);

    /* a cache of before: one grant per object, in the old table */
    struct rf_cache *c;
    assert_int_equal(rf_cache_open(&c, &h), 0);
    struct rf_cobj o = {
        .seq = 1, .case_id = "aaaa", .kind = RF_KIND_MESSAGE, .size = ct.len, .day = 20000};
    assert_int_equal(rf_cache_object_put(c, &o, ct.data, ct.len), 0);
    rf_cache_close(c);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(rf_home_path(&h, "cache.db", path, sizeof(path)), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_prepare_v2(db, "INSERT INTO grants(seq, grant) VALUES (1, ?)", -1, &st, NULL),
        SQLITE_OK);
    sqlite3_bind_blob(st, 1, junk, sizeof(junk), SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);

    /* upgraded: the old grant (junk) is kept, the honest one arrives after */
    assert_int_equal(rf_cache_open(&c, &h), 0);
    assert_int_equal(rf_cache_grant_put(c, 1, honest), 0);
    assert_int_equal(rf_cache_grant_put(c, 1, honest), 0); /* twice: kept once */
    uint8_t(*all)[RF_GRANT_BYTES] = calloc(RF_GRANTS_PER_KEY_MAX + 1, RF_GRANT_BYTES);
    size_t n = 0;
    assert_int_equal(rf_cache_grants_get(c, 1, all, RF_GRANTS_PER_KEY_MAX + 1, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(all[0], junk, RF_GRANT_BYTES);
    assert_memory_equal(all[1], honest, RF_GRANT_BYTES);
    int use_grant = 0;
    assert_int_equal(rf_thread_pick(c, k, 1, got, &use_grant), 0);
    assert_int_equal(use_grant, 1);
    assert_memory_equal(got, honest, RF_GRANT_BYTES);
    struct rf_buf plain;
    uint8_t kind = 0;
    rf_buf_init(&plain, 4096);
    assert_int_equal(rf_thread_open(c, k, 1, collect, &plain, &kind), 0);
    assert_int_equal(kind, RF_KIND_MESSAGE);
    assert_int_equal(plain.len, strlen(text));
    assert_memory_equal(plain.data, text, plain.len);
    rf_buf_free(&plain);

    /* junk only: refused, nothing crashes, nothing is shown */
    struct rf_cobj o2 = {
        .seq = 2, .case_id = "aaaa", .kind = RF_KIND_MESSAGE, .size = ct.len, .day = 20000};
    assert_int_equal(rf_cache_object_put(c, &o2, ct.data, ct.len), 0);
    assert_int_equal(rf_cache_grant_put(c, 2, junk), 0);
    assert_int_not_equal(rf_thread_pick(c, k, 2, got, &use_grant), 0);
    rf_buf_init(&plain, 4096);
    assert_int_not_equal(rf_thread_open(c, k, 2, collect, &plain, &kind), 0);
    assert_int_equal(plain.len, 0);
    rf_buf_free(&plain);

    /* a server flooding grants: at most RF_GRANTS_PER_KEY_MAX kept */
    for (int i = 0; i < RF_GRANTS_PER_KEY_MAX + 20; i++) {
        uint8_t g[RF_GRANT_BYTES];
        randombytes_buf(g, sizeof(g));
        assert_int_equal(rf_cache_grant_put(c, 3, g), 0);
    }
    assert_int_equal(rf_cache_grants_get(c, 3, all, RF_GRANTS_PER_KEY_MAX + 1, &n), 0);
    assert_int_equal(n, RF_GRANTS_PER_KEY_MAX);
    free(all);
    rf_cache_close(c);
    rf_buf_free(&ct);
    sodium_free(k);
}

/* ---- the local case database: verified, materialized, sealed at rest ---- */

static void local_db_verified_and_sealed_at_rest(void **state)
{
    (void)state;
    const char *tmp = getenv("REFUGE_TEST_TMP");
    struct rf_home h;
    memset(&h, 0, sizeof(h));
    snprintf(h.dir, sizeof(h.dir), "%s/client_test_local.%d", tmp ? tmp : "/tmp", (int)getpid());
    assert_int_equal(rf_home_create(&h), 0);
    struct rf_staff_keys *anna = sodium_malloc(sizeof(*anna));
    struct rf_staff_keys *boris = sodium_malloc(sizeof(*boris));
    struct rf_staff_keys *eve = sodium_malloc(sizeof(*eve));
    assert_int_equal(rf_staff_keys_generate(anna, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(boris, "Boris"), 0);
    assert_int_equal(rf_staff_keys_generate(eve, "Eve"), 0);
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw, env;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&env, 1 << 20);
    make_roster(r, 1, NULL);
    add_member(r, anna, RF_ROLE_ADMIN);
    add_member(r, boris, RF_ROLE_MEMBER);
    assert_int_equal(rf_roster_sign(&raw, r, anna), 0);
    uint8_t pks[3][32];
    memcpy(pks[0], anna->box_pk, 32);
    memcpy(pks[1], boris->box_pk, 32);
    memcpy(pks[2], eve->box_pk, 32);

    struct rf_cache *c;
    assert_int_equal(rf_cache_open(&c, &h), 0);
    assert_int_equal(rf_cache_roster_put(c, 1, raw.data, raw.len), 0);
    const char *intake =
        "{\"v\":1,\"type\":\"intake\",\"lang\":\"ru\",\"answers\":[{\"id\":\"need\","
        "\"label\":\"Need\",\"value\":\"asylum\"}],\"text\":\"CanaryMsg Ереван\"}";
    seal_obj(c, 1, "abcde23456", RF_KIND_MESSAGE, (const uint8_t(*)[32])pks, 2,
             (const uint8_t *)intake, strlen(intake));
    event_obj(c, 2, boris, (const uint8_t(*)[32])pks, 2, 1, "stage", "verifying", NULL);
    event_obj(c, 3, anna, (const uint8_t(*)[32])pks, 2, 2, "note", "CanaryNote", NULL);
    /* Eve is not on the roster: her event is refused */
    event_obj(c, 4, eve, (const uint8_t(*)[32])pks, 3, 9, "stage", "closed", NULL);

    struct rf_local *l;
    unsigned unverified = 0;
    json_t *s = NULL;
    assert_int_equal(rf_local_new(&l, c, anna), 0);
    assert_int_equal(rf_local_update(l, &unverified), 0);
    assert_int_equal(unverified, 1);
    assert_int_equal(rf_local_summary(l, "abcde23456", &s), 0);
    assert_string_equal(json_string_value(json_object_get(s, "stage")), "verifying");
    assert_int_equal(json_integer_value(json_object_get(s, "notes")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "messages")), 1);
    assert_string_equal(json_string_value(json_object_get(s, "need")), "asylum");
    const char *search = json_string_value(json_object_get(s, "search"));
    assert_non_null(strstr(search, "canarynote"));
    assert_non_null(strstr(search, "ереван")); /* folded for search */
    json_decref(s);

    /* an event queued offline counts, marked as not sent (seq 0) */
    event_obj(c, 0, anna, (const uint8_t(*)[32])pks, 2, 3, "stage", "planning", &env);
    assert_int_equal(rf_cache_outbox_add(c, "abcde23456", -1, 20100, env.data, env.len), 0);
    assert_int_equal(rf_local_refresh(l, "abcde23456"), 0);
    assert_int_equal(rf_local_summary(l, "abcde23456", &s), 0);
    assert_string_equal(json_string_value(json_object_get(s, "stage")), "planning");
    assert_int_equal(json_integer_value(json_object_get(s, "pending")), 1);
    json_decref(s);
    uint64_t lamport = 0;
    assert_int_equal(rf_local_lamport(l, "abcde23456", &lamport), 0);
    assert_int_equal(lamport, 3);

    /* rows are bound to their name: a summary does not open as another row */
    struct rf_buf sealed, back;
    rf_buf_init(&sealed, 4096);
    rf_buf_init(&back, 4096);
    assert_int_equal(rf_local_seal(l, "summary:aaaa", (const uint8_t *)"x", 1, &sealed), 0);
    assert_int_equal(rf_local_open(l, "summary:bbbb", sealed.data, sealed.len, &back),
                     RF_ERR_DECRYPT);
    rf_local_free(l);
    /* another caseworker's key file does not open this computer's rows */
    assert_int_equal(rf_local_new(&l, c, boris), 0);
    assert_int_equal(rf_local_summary(l, "abcde23456", &s), RF_ERR_DECRYPT);
    rf_local_free(l);
    rf_cache_close(c);

    /* nothing of it in plaintext on disk */
    const char *files[] = {"cache.db", "cache.db-wal"};
    for (size_t i = 0; i < 2; i++) {
        char path[PATH_MAX];
        assert_int_equal(rf_home_path(&h, files[i], path, sizeof(path)), 0);
        assert_false(file_has(path, "CanaryNote"));
        assert_false(file_has(path, "canarynote"));
        assert_false(file_has(path, "CanaryMsg"));
        assert_false(file_has(path, "verifying"));
        assert_false(file_has(path, "asylum"));
    }
    rf_buf_free(&sealed);
    rf_buf_free(&back);
    rf_buf_free(&raw);
    rf_buf_free(&env);
    free(r);
    sodium_free(anna);
    sodium_free(boris);
    sodium_free(eve);
}

/* Digesting on every core (local.c digest_all) leaves the same local case
 * database as one thread: the same digests (opened: the same plaintext;
 * the same readable flags; the same objects left for later), the same
 * summaries and the same count of refused events, over more objects than
 * one batch holds and with every kind of outcome mixed in: valid events,
 * a non-member's event, a tampered envelope, an object not sealed to this
 * caseworker, a file, an event naming a roster not verified yet; and
 * events version 2 under case keys whose CASEKEY objects come batches
 * after them (digested first), a case whose key is sealed to someone else
 * (its v2 events unreadable), a case without any key, a CASEKEY moved to
 * another case (broken) and a tampered v2 event. */
struct digest_seen {
    const struct rf_local *l;
    json_t *out; /* {"seq": plaintext or null} */
};

static int collect_digest(void *ctx, int64_t seq, const uint8_t *blob, size_t n)
{
    struct digest_seen *d = ctx;
    char key[32], ad[48];
    snprintf(key, sizeof(key), "%lld", (long long)seq);
    if (!blob) {
        json_object_set_new(d->out, key, json_null());
        return 0;
    }
    struct rf_buf plain;
    rf_buf_init_secure(&plain, 1 << 20);
    snprintf(ad, sizeof(ad), "digest:%lld", (long long)seq);
    int rc = rf_local_open(d->l, ad, blob, n, &plain);
    if (rc == 0 && rf_evrow_is(plain.data, plain.len)) {
        /* a verified event's packed row: shown as the JSON row it replaces */
        struct rf_ev e;
        uint8_t h[32];
        char hx[65];
        assert_int_equal(rf_local_ev_unpack(&e, h, plain.data, plain.len), 0);
        sodium_bin2hex(hx, sizeof(hx), h, 32);
        json_t *row = json_pack("{sssoss}", "k", "event", "ev", rf_local_ev_to_json(&e), "h", hx);
        char *s = json_dumps(row, JSON_COMPACT);
        assert_non_null(s);
        json_object_set_new(d->out, key, json_string(s));
        rf_out_json_free(s);
        json_decref(row);
        rf_ev_clear(&e);
    } else if (rc == 0) {
        json_object_set_new(d->out, key, json_stringn((const char *)plain.data, plain.len));
    }
    rf_buf_free(&plain);
    return rc;
}

static json_t *local_db_dump(struct rf_local *l, struct rf_cache *c, int ncases)
{
    json_t *all = json_object();
    for (int i = 0; i < ncases; i++) {
        char cid[16];
        snprintf(cid, sizeof(cid), "case%06d", i);
        struct digest_seen d = {l, json_object()};
        assert_int_equal(rf_cache_digests(c, cid, collect_digest, &d), 0);
        json_t *sum = NULL;
        int rc = rf_local_summary(l, cid, &sum);
        assert_true(rc == 0 || rc == RF_ERR_NOT_FOUND);
        json_object_set_new(all, cid, json_pack("{soso*}", "digests", d.out, "summary", sum));
    }
    return all;
}

static void local_db_parallel_digest_same_as_serial(void **state)
{
    (void)state;
    const char *tmp = getenv("REFUGE_TEST_TMP");
    struct rf_staff_keys *anna = sodium_malloc(sizeof(*anna));
    struct rf_staff_keys *eve = sodium_malloc(sizeof(*eve));
    assert_int_equal(rf_staff_keys_generate(anna, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(eve, "Eve"), 0);
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw, ct, ev;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&ct, 1 << 20);
    rf_buf_init(&ev, 1 << 16);
    make_roster(r, 1, NULL);
    add_member(r, anna, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&raw, r, anna), 0);
    uint8_t pks[1][32], evepk[1][32];
    memcpy(pks[0], anna->box_pk, 32);
    memcpy(evepk[0], eve->box_pk, 32);

    /* more than two digest batches (DIGEST_BATCH 1024) and two summary
     * batches (REFRESH_BATCH 256, local_refresh.c) */
    enum { NCASES = 600, NOBJ = 2600, NALL = NOBJ + NCASES };
    uint8_t(*ckeys)[RF_CASEKEY_BYTES] = sodium_malloc((size_t)NCASES * RF_CASEKEY_BYTES);
    assert_non_null(ckeys);
    for (int ci = 0; ci < NCASES; ci++)
        rf_casekey_new(ckeys[ci]);
    int v2 = 0;
    struct rf_home h[2];
    struct rf_cache *c[2];
    for (int k = 0; k < 2; k++) {
        memset(&h[k], 0, sizeof(h[k]));
        snprintf(h[k].dir, sizeof(h[k].dir), "%s/client_test_pdigest%d.%d", tmp ? tmp : "/tmp", k,
                 (int)getpid());
        assert_int_equal(rf_home_create(&h[k]), 0);
        assert_int_equal(rf_cache_open(&c[k], &h[k]), 0);
        assert_int_equal(rf_cache_roster_put(c[k], 1, raw.data, raw.len), 0);
        assert_int_equal(rf_cache_begin(c[k]), 0);
    }
    unsigned lamport[NCASES] = {0};
    int refused = 0;
    for (int64_t seq = 1; seq <= NALL; seq++) {
        int ci = (int)(seq % NCASES);
        char cid[RF_CASE_ID_LEN + 1], body[512], id[33];
        uint8_t rid[16];
        snprintf(cid, sizeof(cid), "case%06d", ci % 1000000);
        uint8_t kind = RF_KIND_EVENT;
        const struct rf_staff_keys *author = anna;
        rf_buf_reset(&ct);
        rf_buf_reset(&ev);
        randombytes_buf(rid, sizeof(rid));
        sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
        unsigned roster = seq % 997 == 0 ? 5 : 1; /* 5: not verified yet */
        if (seq % 101 == 0) {
            author = eve; /* not on the roster: refused */
            refused++;
        }
        if (seq > NOBJ) {
            /* the case keys, after every event: one per case but case 3 mod
             * 7 (none), sealed to Eve for 5 mod 7, moved from the next case
             * for 6 mod 7 */
            kind = RF_KIND_CASEKEY;
            char kcid[RF_CASE_ID_LEN + 1];
            snprintf(kcid, sizeof(kcid), "case%06d", (ci % 7 == 6 ? ci + 1 : ci) % 1000000);
            rf_buf_reset(&ev);
            assert_int_equal(rf_casekey_encode(&ev, anna, kcid, 1, ckeys[ci]), 0);
            assert_int_equal(rf_envelope_seal(&ct, kind,
                                              (const uint8_t(*)[32])(ci % 7 == 5 ? evepk : pks), 1,
                                              ev.data, ev.len),
                             0);
            if (ci % 7 == 3)
                continue;
        } else if (seq <= NCASES) {
            kind = RF_KIND_MESSAGE;
            snprintf(body, sizeof(body),
                     "{\"v\":1,\"type\":\"intake\",\"answers\":[{\"id\":\"need\",\"value\":"
                     "\"legal\"}],\"text\":\"help %d\"}",
                     ci);
            assert_int_equal(rf_envelope_seal(&ct, kind, (const uint8_t(*)[32])pks, 1,
                                              (const uint8_t *)body, strlen(body)),
                             0);
        } else if (seq % 211 == 0) {
            kind = RF_KIND_FILE; /* indexed as a file, never opened */
            assert_int_equal(
                rf_envelope_seal(&ct, kind, (const uint8_t(*)[32])pks, 1, (const uint8_t *)"x", 1),
                0);
        } else {
            snprintf(body, sizeof(body),
                     "{\"v\":1,\"id\":\"%s\",\"lamport\":%u,\"roster\":%u,\"author\":\"%s\","
                     "\"day\":20100,\"op\":\"%s\",\"value\":\"%s\"}",
                     id, ++lamport[ci], roster, author->name, seq % 3 ? "note" : "tag",
                     seq % 3 ? "called back" : "family");
            assert_int_equal(rf_event_sign(&ev, author, cid, (const uint8_t *)body, strlen(body)),
                             0);
            if (seq % 2 == 0 && seq % 53 == 0) { /* moved here from case ci + 7 */
                int from = (ci + 7) % NCASES;
                char fcid[RF_CASE_ID_LEN + 1];
                snprintf(fcid, sizeof(fcid), "case%06d", from % 1000000);
                rf_buf_reset(&ev);
                assert_int_equal(
                    rf_event_sign(&ev, author, fcid, (const uint8_t *)body, strlen(body)), 0);
                assert_int_equal(rf_casekey_event_seal(&ct, ckeys[from], fcid, ev.data, ev.len), 0);
            } else if (seq % 2 == 0) { /* version 2, under the case's key */
                assert_int_equal(rf_casekey_event_seal(&ct, ckeys[ci], cid, ev.data, ev.len), 0);
                v2++;
            } else { /* one in 151 sealed to Eve only (not this caseworker's) */
                assert_int_equal(rf_envelope_seal(&ct, kind,
                                                  (const uint8_t(*)[32])(seq % 151 ? pks : evepk),
                                                  1, ev.data, ev.len),
                                 0);
            }
            if (seq % 307 == 0 || seq % 614 == 0)
                ct.data[ct.len - 5] ^= 1; /* tampered: broken */
        }
        struct rf_cobj o = {seq, "", kind, ct.len, 20100, 1, 0};
        memcpy(o.case_id, cid, sizeof(o.case_id));
        for (int k = 0; k < 2; k++)
            assert_int_equal(rf_cache_object_put(c[k], &o, ct.data, ct.len), 0);
    }
    json_t *dump[2];
    unsigned unverified[2] = {0, 0};
    for (int k = 0; k < 2; k++) {
        assert_int_equal(rf_cache_commit(c[k]), 0);
        struct rf_local *l;
        assert_int_equal(rf_local_new(&l, c[k], anna), 0);
        rf_local_digest_threads = k == 0 ? 1 : 4;
        rf_local_refresh_scan_min = k == 0 ? 0 : 1; /* home 1's rows read in scans */
        rf_local_ckmemo_min = k == 0 ? 0 : 1;       /* and its case keys held in memory */
        assert_int_equal(rf_local_update(l, &unverified[k]), 0);
        dump[k] = local_db_dump(l, c[k], NCASES);
        if (k == 0) { /* each summary built again alone (rf_local_refresh): the same rows */
            for (int ci = 0; ci < NCASES; ci++) {
                char cid[RF_CASE_ID_LEN + 1];
                snprintf(cid, sizeof(cid), "case%06d", ci);
                assert_int_equal(rf_local_refresh(l, cid), 0);
            }
            json_t *again = local_db_dump(l, c[k], NCASES);
            char *x = json_dumps(dump[k], JSON_SORT_KEYS | JSON_COMPACT);
            char *y = json_dumps(again, JSON_SORT_KEYS | JSON_COMPACT);
            assert_non_null(x);
            assert_string_equal(x, y);
            rf_out_json_free(x);
            rf_out_json_free(y);
            json_decref(again);
        }
        rf_local_free(l);
        rf_cache_close(c[k]);
    }
    rf_local_digest_threads = 0;
    rf_local_refresh_scan_min = 0;
    rf_local_ckmemo_min = 0;
    /* Eve's (some sealed to her only, some v2 in a case without a readable key) */
    assert_true(unverified[0] >= (unsigned)refused / 4);
    assert_int_equal(unverified[0], unverified[1]);
    char *a = json_dumps(dump[0], JSON_SORT_KEYS | JSON_COMPACT);
    char *b = json_dumps(dump[1], JSON_SORT_KEYS | JSON_COMPACT);
    assert_non_null(a);
    assert_string_equal(a, b);
    /* every outcome is in there */
    assert_non_null(strstr(a, "\"k\\\":\\\"file\\\""));
    assert_non_null(strstr(a, "\"k\\\":\\\"broken\\\""));
    assert_non_null(strstr(a, ":null")); /* not sealed to Anna: an unreadable row */
    assert_non_null(strstr(a, "{\\\"k\\\":\\\"event\\\",\\\"error\\\"")); /* refused */
    assert_non_null(strstr(a, "\"k\\\":\\\"casekey\\\""));
    assert_non_null(strstr(a, "a case key of another case"));
    { /* v2 events read: case 2's events at even seqs are digested as events */
        json_t *c2 = json_object_get(json_object_get(dump[0], "case000002"), "digests");
        const char *e2 = json_string_value(json_object_get(c2, "602"));
        assert_non_null(e2);
        assert_non_null(strstr(e2, "\"k\":\"event\",\"ev\""));
        /* case 10 (no key), case 12 (its key sealed to Eve), case 6 (its
         * key moved from case 7): no readable digest of their v2 events */
        json_t *c10 = json_object_get(json_object_get(dump[0], "case000010"), "digests");
        json_t *c12 = json_object_get(json_object_get(dump[0], "case000012"), "digests");
        json_t *c6 = json_object_get(json_object_get(dump[0], "case000006"), "digests");
        assert_null(json_object_get(c10, "610"));
        assert_null(json_object_get(c12, "612"));
        assert_non_null(json_object_get(c12, "12")); /* its intake reads */
        assert_null(json_object_get(c6, "606"));
        const char *moved = json_string_value(json_object_get(c6, "3006"));
        assert_non_null(moved);
        assert_non_null(strstr(moved, "a case key of another case"));
        /* an event v2 moved from case 43 (whose key is held): refused */
        json_t *c36 = json_object_get(json_object_get(dump[0], "case000036"), "digests");
        const char *ev36 = json_string_value(json_object_get(c36, "636"));
        assert_non_null(ev36);
        assert_non_null(strstr(ev36, "moved from another case"));
    }
    assert_true(v2 > 900);
    json_t *d0 =
        json_object_get(json_object_get(json_object_get(dump[0], "case000037"), "digests"), "997");
    assert_null(d0); /* names roster 5: no digest yet, on both */
    rf_out_json_free(a);
    rf_out_json_free(b);
    json_decref(dump[0]);
    json_decref(dump[1]);
    rf_buf_free(&raw);
    rf_buf_free(&ct);
    rf_buf_free(&ev);
    free(r);
    sodium_free(ckeys);
    sodium_free(anna);
    sodium_free(eve);
}

/* The board rows (cache.h "board"): written with each summary, sealed
 * under their case's name, read back only where written since a
 * generation, deleted with their summary, and built for the summaries of a
 * home from before them (cache version 2 -> 3). */
struct board_seen {
    const struct rf_local *l;
    char ids[8][RF_CASE_ID_LEN + 1];
    char stage[8][32];
    int64_t gen[8];
    size_t n;
};

static int board_collect(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                         const uint8_t *blob, size_t n)
{
    struct board_seen *b = ctx;
    (void)last_seq;
    assert_true(b->n < 8);
    snprintf(b->ids[b->n], sizeof(b->ids[0]), "%s", case_id);
    b->gen[b->n] = gen;
    struct rf_buf plain;
    rf_buf_init_secure(&plain, 1 << 16);
    assert_int_equal(rf_local_board_open(b->l, case_id, blob, n, &plain), 0);
    struct rf_boardrow br; /* packed (cache version 6) */
    assert_int_equal(rf_boardrow_parse(&br, plain.data, plain.len), 0);
    json_t *row = rf_boardrow_to_json(&br);
    assert_non_null(row);
    assert_null(json_object_get(row, "search")); /* no text of the case */
    assert_true(json_is_integer(json_object_get(row, "messages")));
    const char *st = json_string_value(json_object_get(row, "stage"));
    snprintf(b->stage[b->n], sizeof(b->stage[0]), "%s", st ? st : "-");
    json_decref(row);
    rf_buf_free(&plain);
    b->n++;
    return 0;
}

static void local_db_board_rows(void **state)
{
    (void)state;
    const char *tmp = getenv("REFUGE_TEST_TMP");
    struct rf_home h;
    memset(&h, 0, sizeof(h));
    snprintf(h.dir, sizeof(h.dir), "%s/client_test_board.%d", tmp ? tmp : "/tmp", (int)getpid());
    assert_int_equal(rf_home_create(&h), 0);
    struct rf_staff_keys *anna = sodium_malloc(sizeof(*anna));
    assert_int_equal(rf_staff_keys_generate(anna, "Anna"), 0);
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    make_roster(r, 1, NULL);
    add_member(r, anna, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&raw, r, anna), 0);
    uint8_t pks[1][32];
    memcpy(pks[0], anna->box_pk, 32);
    struct rf_cache *c;
    assert_int_equal(rf_cache_open(&c, &h), 0);
    assert_int_equal(rf_cache_roster_put(c, 1, raw.data, raw.len), 0);
    const char *intake = "{\"v\":1,\"type\":\"intake\",\"lang\":\"en\",\"text\":\"CanaryBoard\"}";
    seal_obj(c, 1, "abcde23456", RF_KIND_MESSAGE, (const uint8_t(*)[32])pks, 1,
             (const uint8_t *)intake, strlen(intake));
    seal_obj(c, 2, "bcdef34567", RF_KIND_MESSAGE, (const uint8_t(*)[32])pks, 1,
             (const uint8_t *)intake, strlen(intake));
    event_obj(c, 3, anna, (const uint8_t(*)[32])pks, 1, 1, "stage", "verifying", NULL);

    struct rf_local *l;
    assert_int_equal(rf_local_new(&l, c, anna), 0);
    assert_int_equal(rf_local_update(l, NULL), 0);
    /* every case has its row, with its stage */
    struct board_seen b = {.l = l};
    int64_t count = 0, gen = 0;
    assert_int_equal(rf_cache_board_since(c, 0, board_collect, &b, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(b.n, 2);
    for (size_t i = 0; i < b.n; i++) {
        gen = b.gen[i] > gen ? b.gen[i] : gen;
        assert_string_equal(b.stage[i], strcmp(b.ids[i], "abcde23456") == 0 ? "verifying" : "new");
    }
    /* nothing written since: nothing read */
    memset(&b, 0, sizeof(b));
    b.l = l;
    assert_int_equal(rf_cache_board_since(c, gen, board_collect, &b, &count), 0);
    assert_int_equal(b.n, 0);
    assert_int_equal(count, 2);
    /* a case changed: only its row is read again */
    assert_int_equal(rf_local_refresh(l, "bcdef34567"), 0);
    assert_int_equal(rf_cache_board_since(c, gen, board_collect, &b, &count), 0);
    assert_int_equal(b.n, 1);
    assert_string_equal(b.ids[0], "bcdef34567");
    assert_true(b.gen[0] > gen);
    gen = b.gen[0];
    /* a row is bound to its case: it does not open as another case's */
    struct rf_buf row, plain;
    rf_buf_init(&row, 1 << 16);
    rf_buf_init_secure(&plain, 1 << 16);
    char path[PATH_MAX];
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(rf_home_path(&h, "cache.db", path, sizeof(path)), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT blob FROM board WHERE case_id = 'abcde23456'",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(
        rf_buf_put(&row, sqlite3_column_blob(st, 0), (size_t)sqlite3_column_bytes(st, 0)), 0);
    sqlite3_finalize(st);
    assert_int_equal(rf_local_board_open(l, "bcdef34567", row.data, row.len, &plain),
                     RF_ERR_DECRYPT);
    assert_int_equal(rf_local_board_open(l, "abcde23456", row.data, row.len, &plain), 0);
    rf_local_free(l);
    rf_cache_close(c);
    assert_false(file_has(path, "verifying"));
    assert_false(file_has(path, "CanaryBoard"));

    /* a home from before the board rows (cache version 2): it opens, and
     * the rows of its summaries are built once, with the key */
    assert_int_equal(sqlite3_exec(db,
                                  "DROP TABLE board;"
                                  "DELETE FROM meta WHERE key = 'board_gen';"
                                  "PRAGMA user_version = 2",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_cache_open(&c, &h), 0);
    memset(&b, 0, sizeof(b));
    assert_int_equal(rf_cache_board_since(c, 0, board_collect, &b, &count), 0);
    assert_int_equal(count, 0); /* not built yet: the cache has no key */
    int64_t fill = 0;
    assert_int_equal(rf_cache_meta_get(c, "board_fill", &fill), 0);
    assert_int_equal(fill, 1);
    assert_int_equal(rf_local_new(&l, c, anna), 0); /* builds them */
    b.l = l;
    assert_int_equal(rf_cache_board_since(c, 0, board_collect, &b, &count), 0);
    assert_int_equal(count, 2);
    assert_int_equal(b.n, 2);
    gen = 0;
    for (size_t i = 0; i < b.n; i++) {
        gen = b.gen[i] > gen ? b.gen[i] : gen;
        assert_string_equal(b.stage[i], strcmp(b.ids[i], "abcde23456") == 0 ? "verifying" : "new");
    }
    assert_int_equal(rf_cache_meta_get(c, "board_fill", &fill), 0);
    assert_int_equal(fill, 0);
    size_t built = 9;
    assert_int_equal(rf_local_board_fill(l, &built), 0); /* once only */
    assert_int_equal(built, 0);
    rf_local_free(l);
    rf_cache_close(c);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 8);
    sqlite3_finalize(st);
    /* a summary deleted: its board row goes with it */
    assert_int_equal(
        sqlite3_exec(db, "DELETE FROM summaries WHERE case_id = 'bcdef34567'", NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_cache_open(&c, &h), 0);
    assert_int_equal(rf_local_new(&l, c, anna), 0);
    memset(&b, 0, sizeof(b));
    b.l = l;
    assert_int_equal(rf_cache_board_since(c, gen, board_collect, &b, &count), 0);
    assert_int_equal(b.n, 0);
    assert_int_equal(count, 1);
    rf_local_free(l);
    rf_cache_close(c);
    rf_buf_free(&row);
    rf_buf_free(&plain);
    rf_buf_free(&raw);
    free(r);
    sodium_free(anna);
}

/* An event by k naming roster version named, stored under version stored. */
static void event_at(struct rf_cache *c, int64_t seq, const struct rf_staff_keys *k,
                     const uint8_t (*pks)[32], size_t npk, uint64_t lamport, unsigned named,
                     uint32_t stored, const char *op, const char *value)
{
    char body[512], id[33];
    uint8_t rid[16];
    struct rf_buf ev, ct;
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
    snprintf(body, sizeof(body),
             "{\"v\":1,\"id\":\"%s\",\"lamport\":%llu,\"roster\":%u,\"author\":\"x\","
             "\"day\":20100,\"op\":\"%s\",\"value\":\"%s\"}",
             id, (unsigned long long)lamport, named, op, value);
    rf_buf_init(&ev, 1 << 16);
    rf_buf_init(&ct, 1 << 20);
    assert_int_equal(rf_event_sign(&ev, k, "abcde23456", (const uint8_t *)body, strlen(body)), 0);
    assert_int_equal(rf_envelope_seal(&ct, RF_KIND_EVENT, pks, npk, ev.data, ev.len), 0);
    struct rf_cobj o = {seq, "abcde23456", RF_KIND_EVENT, ct.len, 20100, stored, 0};
    assert_int_equal(rf_cache_object_put(c, &o, ct.data, ct.len), 0);
    rf_buf_free(&ev);
    rf_buf_free(&ct);
}

/* Issue 13, finding 3, through the local case database: each event is
 * checked up to the roster the server stored it under (kept with the object
 * in the cache); a removed member's events stored while on the roster count,
 * one stored after the removal does not; a forged huge lamport is ignored
 * and does not push the next event's lamport. */
static void local_db_checks_events_up_to_the_roster_stored_under(void **state)
{
    (void)state;
    const char *tmp = getenv("REFUGE_TEST_TMP");
    struct rf_home h;
    memset(&h, 0, sizeof(h));
    snprintf(h.dir, sizeof(h.dir), "%s/client_test_stored.%d", tmp ? tmp : "/tmp", (int)getpid());
    assert_int_equal(rf_home_create(&h), 0);
    struct rf_staff_keys *anna = sodium_malloc(sizeof(*anna));
    struct rf_staff_keys *boris = sodium_malloc(sizeof(*boris));
    assert_int_equal(rf_staff_keys_generate(anna, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(boris, "Boris"), 0);
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw1, raw2;
    uint8_t prev[32];
    rf_buf_init(&raw1, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&raw2, RF_ROSTER_MAX_BYTES);
    make_roster(r, 1, NULL);
    add_member(r, anna, RF_ROLE_ADMIN);
    add_member(r, boris, RF_ROLE_MEMBER);
    assert_int_equal(rf_roster_sign(&raw1, r, anna), 0);
    rf_roster_hash(prev, raw1.data, raw1.len);
    make_roster(r, 2, prev); /* Boris removed */
    add_member(r, anna, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&raw2, r, anna), 0);
    uint8_t pks[2][32];
    memcpy(pks[0], anna->box_pk, 32);
    memcpy(pks[1], boris->box_pk, 32);

    struct rf_cache *c;
    assert_int_equal(rf_cache_open(&c, &h), 0);
    assert_int_equal(rf_cache_roster_put(c, 1, raw1.data, raw1.len), 0);
    assert_int_equal(rf_cache_roster_put(c, 2, raw2.data, raw2.len), 0);
    const uint8_t(*pk)[32] = (const uint8_t(*)[32])pks;
    event_at(c, 1, boris, pk, 2, 1, 1, 1, "stage", "verifying");   /* while on the roster */
    event_at(c, 2, boris, pk, 2, 2, 1, 2, "tag", "after-removal"); /* stored after it */
    event_at(c, 3, anna, pk, 2, (uint64_t)1 << 53, 2, 2, "stage", "closed"); /* forged lamport */
    event_at(c, 4, anna, pk, 2, 2, 2, 2, "assign", "Anna");

    struct rf_local *l;
    unsigned unverified = 0;
    json_t *s = NULL, *bad = NULL;
    assert_int_equal(rf_local_new(&l, c, anna), 0);
    assert_int_equal(rf_local_update(l, &unverified), 0);
    assert_int_equal(unverified, 1); /* Boris's event stored after his removal */
    assert_int_equal(rf_local_summary(l, "abcde23456", &s), 0);
    assert_string_equal(json_string_value(json_object_get(s, "stage")), "verifying");
    assert_int_equal(json_array_size(json_object_get(s, "tags")), 0);
    assert_int_equal(json_array_size(json_object_get(s, "assigned")), 1);
    assert_int_equal(json_integer_value(json_object_get(s, "lamport")), 2);
    json_decref(s);
    uint64_t lamport = 0;
    assert_int_equal(rf_local_lamport(l, "abcde23456", &lamport), 0);
    assert_int_equal(lamport, 2); /* not 2^53: the next event is 3 */
    struct rf_ev *ev = NULL;
    size_t n = 0;
    assert_int_equal(rf_local_events(l, "abcde23456", &ev, &n, &bad), 0);
    assert_int_equal(n, 2);
    assert_int_equal(ev[0].stored, 1);
    rf_local_events_free(ev, n);
    assert_int_equal(json_array_size(bad), 2);
    int64_t bad_seq[2] = {json_integer_value(json_object_get(json_array_get(bad, 0), "seq")),
                          json_integer_value(json_object_get(json_array_get(bad, 1), "seq"))};
    assert_true((bad_seq[0] == 2 && bad_seq[1] == 3) || (bad_seq[0] == 3 && bad_seq[1] == 2));
    json_decref(bad);
    rf_local_free(l);
    rf_cache_close(c);

    /* a cache from before the roster column (version 1): its objects are
     * forgotten, to be downloaded again with their stored roster version;
     * the outbox and the verified rosters stay */
    char path[PATH_MAX];
    sqlite3 *db;
    assert_int_equal(rf_home_path(&h, "cache.db", path, sizeof(path)), 0);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "ALTER TABLE objects DROP COLUMN roster;"
                                  "INSERT INTO outbox(case_id, schedule, day, env)"
                                  " VALUES('abcde23456', -1, 1, x'00');"
                                  "INSERT OR REPLACE INTO meta(key, value) VALUES('last_seq', 4);"
                                  "PRAGMA user_version = 0",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_cache_open(&c, &h), 0);
    int64_t last = -1;
    struct rf_cobj *objs = NULL;
    struct rf_coutbox *ob = NULL;
    uint32_t rmax = 0;
    assert_int_equal(rf_cache_last_seq(c, &last), 0);
    assert_int_equal(last, 0);
    assert_int_equal(rf_cache_objects_all(c, &objs, &n), 0);
    assert_int_equal(n, 0);
    free(objs);
    assert_int_equal(rf_cache_outbox_list(c, NULL, &ob, &n), 0);
    assert_int_equal(n, 1);
    free(ob);
    assert_int_equal(rf_cache_roster_max(c, &rmax), 0);
    assert_int_equal(rmax, 2);
    struct rf_cobj o = {5, "abcde23456", RF_KIND_MESSAGE, 1, 20100, 7, 0};
    assert_int_equal(rf_cache_object_put(c, &o, (const uint8_t *)"x", 1), 0);
    assert_int_equal(rf_cache_objects_all(c, &objs, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(objs[0].roster, 7);
    free(objs);
    rf_cache_close(c);
    /* opened again: nothing more is forgotten */
    assert_int_equal(rf_cache_open(&c, &h), 0);
    assert_int_equal(rf_cache_objects_all(c, &objs, &n), 0);
    assert_int_equal(n, 1);
    free(objs);
    rf_cache_close(c);

    rf_buf_free(&raw1);
    rf_buf_free(&raw2);
    free(r);
    sodium_free(anna);
    sodium_free(boris);
}

/* Issue 13, finding 6: plain http:// only to this computer or an onion
 * service, unless the caseworker allowed it at init; refused before any
 * connection or name lookup. */
static void plain_http_only_to_loopback_and_onion(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "https://refuge.example.org",
        "https://203.0.113.7:8443/",
        "http://127.0.0.1:8080",
        "http://127.1.2.3/",
        "http://localhost:9000",
        "http://[::1]:8080/",
        "http://[::ffff:127.0.0.1]:80",
        "http://u@127.0.0.1:80",
        "http://abcdefghijklmnopqrstuvwxyz234567abcdefghijklmnopqrstuvw.onion",
        "http://ABCDEF234567.ONION.:80/x",
    };
    static const char *const refused[] = {
        "http://refuge.example.org",
        "http://203.0.113.7:8080",
        "http://[2001:db8::1]:80/",
        "http://127.0.0.1.evil.example",
        "http://localhost.evil.example",
        "http://evil.onion.example",
        "http://127.0.0.1@evil.example/",
        "http://evil.example#@127.0.0.1",
        "http://evil.example?@127.0.0.1",
        "http://0x7f.1/",
        "http://[::1",
        "http://.onion",
        "http://x_y.onion",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        if (rf_net_url_check(ok[i], 0) != 0)
            fail_msg("refused: %s", ok[i]);
    }
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
        if (rf_net_url_check(refused[i], 0) != RF_ERR_PROTOCOL)
            fail_msg("allowed: %s", refused[i]);
        /* the flag recorded at init allows it */
        assert_int_equal(rf_net_url_check(refused[i], RF_NET_INSECURE_HTTP), 0);
    }
    assert_int_equal(rf_net_url_check("ftp://127.0.0.1", 0), RF_ERR_INVALID);
    assert_int_equal(rf_net_url_check("http://", RF_NET_INSECURE_HTTP), RF_ERR_INVALID);
    assert_int_equal(rf_net_url_check("HTTPS://x", 0), RF_ERR_INVALID);
    struct rf_net *n = (struct rf_net *)&n;
    assert_int_equal(rf_net_open(&n, "http://refuge.example.org", NULL, 0), RF_ERR_PROTOCOL);
    assert_null(n);
    assert_int_equal(rf_net_new(&n, "http://refuge.example.org", NULL), RF_ERR_PROTOCOL);
    assert_int_equal(rf_net_open(&n, "http://refuge.example.org", NULL, RF_NET_INSECURE_HTTP), 0);
    rf_net_free(n);
}

/* ---- the staff API, served for real, spoken to by the real client ---- */

struct api_env {
    char dir[512];
    struct rf_srv srv;
    struct rf_http *http;
    char base[64];
    struct rf_staff_keys *admin, *member, *stranger;
    struct rf_source src;
    uint8_t src_sk[32];
};

static void put_token(struct api_env *e, const char *token, int role)
{
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_TOKEN_PUT;
    rf_enroll_token_hash(op.token_hash, token, strlen(token));
    op.role = role;
    assert_int_equal(rf_store_apply(e->srv.store, &op, 1), 0);
    assert_int_equal(op.status, 0);
}

static size_t discard(char *p, size_t s, size_t n, void *v)
{
    (void)p;
    (void)v;
    return s * n;
}

/* A request with an Authorization header built by hand: ts and the signed
 * body can differ from what is sent, and the same header can be replayed. */
static long raw(struct api_env *e, const char *method, const char *path, const char *auth,
                const char *body)
{
    char url[256], hdr[RF_APISIG_HEADER_MAX + 64];
    CURL *c = curl_easy_init();
    struct curl_slist *hl = NULL;
    long status = 0;
    snprintf(url, sizeof(url), "%s%s", e->base, path);
    if (auth) {
        snprintf(hdr, sizeof(hdr), "Authorization: %s", auth);
        hl = curl_slist_append(hl, hdr);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
    }
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(hl);
    curl_easy_cleanup(c);
    return status;
}

static void sign(char *out, const struct rf_staff_keys *k, const char *method, const char *path,
                 int64_t ts, const char *body)
{
    uint8_t h[32];
    crypto_generichash(h, 32, (const uint8_t *)body, body ? strlen(body) : 0, NULL, 0);
    assert_int_equal(rf_apisig_sign(out, RF_APISIG_HEADER_MAX + 1, k, method, path, ts, h), 0);
}

static char *enroll_body(const struct rf_staff_keys *k, const char *token, int with_roster)
{
    char spk[64], bpk[64];
    rf_b64_encode(spk, sizeof(spk), k->sign_pk, 32);
    rf_b64_encode(bpk, sizeof(bpk), k->box_pk, 32);
    json_t *j =
        json_pack("{ssssssss}", "token", token, "name", k->name, "sign_pk", spk, "box_pk", bpk);
    if (with_roster) {
        struct rf_roster *r = calloc(1, sizeof(*r));
        struct rf_buf raw;
        char *b64 = malloc(RF_ROSTER_MAX_BYTES * 2);
        rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
        make_roster(r, 1, NULL);
        add_member(r, k, RF_ROLE_ADMIN);
        assert_int_equal(rf_roster_sign(&raw, r, k), 0);
        rf_b64_encode(b64, RF_ROSTER_MAX_BYTES * 2, raw.data, raw.len);
        json_object_set_new(j, "roster", json_string(b64));
        free(b64);
        free(r);
        rf_buf_free(&raw);
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static int api_setup(void **state)
{
    struct api_env *e = calloc(1, sizeof(*e));
    /* The CLI test installed the client's wiping allocator; the server side
     * (and libmicrohttpd freeing its answers) runs with the default one. */
    json_set_alloc_funcs(malloc, free);
    const char *tmp = getenv("REFUGE_TEST_TMP");
    snprintf(e->dir, sizeof(e->dir), "%s/client_test_api.%d", tmp ? tmp : "/tmp", (int)getpid());
    assert_int_equal(rf_store_open(&e->srv.store, e->dir), 0);
    assert_int_equal(rf_committer_new(&e->srv.committer, e->srv.store), 0);
    e->srv.limits.api_body_max = 1 << 20;
    e->srv.datadir = e->dir;
    assert_int_equal(rf_api_init(&e->srv), 0);
    static const struct rf_route *tables[1]; /* the daemon keeps these */
    static size_t counts[1];
    tables[0] = rf_api_routes;
    counts[0] = rf_api_routes_n;
    assert_int_equal(rf_http_start(&e->http, &e->srv, "127.0.0.1:0", tables, counts, 1), 0);
    snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%u", rf_http_port(e->http));
    e->admin = sodium_malloc(sizeof(*e->admin));
    e->member = sodium_malloc(sizeof(*e->member));
    e->stranger = sodium_malloc(sizeof(*e->stranger));
    rf_staff_keys_generate(e->admin, "Anna");
    rf_staff_keys_generate(e->member, "Boris");
    rf_staff_keys_generate(e->stranger, "Mallory");
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_SOURCE_CREATE;
    randombytes_buf(op.lookup_id, 32);
    crypto_box_keypair(op.pk, e->src_sk);
    assert_int_equal(rf_store_apply(e->srv.store, &op, 1), 0);
    assert_int_equal(op.status, 0);
    e->src = op.source;
    *state = e;
    return 0;
}

static int api_teardown(void **state)
{
    struct api_env *e = *state;
    rf_http_stop(e->http);
    rf_api_free(&e->srv);
    rf_committer_free(e->srv.committer);
    rf_store_close(e->srv.store);
    sodium_free(e->admin);
    sodium_free(e->member);
    sodium_free(e->stranger);
    free(e);
    return 0;
}

static long post_reply(struct rf_net *n, struct api_env *e, uint8_t kind, const uint8_t (*pks)[32],
                       size_t npk)
{
    struct rf_buf ct;
    char path[96];
    const char *plain = "{\"v\":1,\"type\":\"reply\",\"author\":\"Anna\",\"text\":\"hi\"}";
    rf_buf_init(&ct, 1 << 20);
    assert_int_equal(rf_envelope_seal(&ct, kind, pks, npk, (const uint8_t *)plain, strlen(plain)),
                     0);
    snprintf(path, sizeof(path), "/api/v1/cases/%s/replies", e->src.case_id);
    rf_net_json(n, "POST", path, ct.data, ct.len, "application/octet-stream", NULL);
    rf_buf_free(&ct);
    return rf_net_status(n);
}

static void api_enroll_auth_and_replies(void **state)
{
    struct api_env *e = *state;
    char auth[RF_APISIG_HEADER_MAX + 1];
    struct rf_net *na, *nm, *ns;
    json_t *j = NULL;
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(rf_net_new(&na, e->base, e->admin), 0);
    assert_int_equal(rf_net_new(&nm, e->base, e->member), 0);
    assert_int_equal(rf_net_new(&ns, e->base, e->stranger), 0);
    put_token(e, "admin-token-0123456789", RF_ROLE_ADMIN);
    put_token(e, "member-token-0123456789", RF_ROLE_MEMBER);

    /* anyone may learn there is no roster yet; nothing else */
    assert_int_equal(rf_net_json(ns, "GET", "/api/v1/roster", NULL, 0, NULL, NULL),
                     RF_ERR_PROTOCOL);
    assert_int_equal(rf_net_status(ns), 404);
    assert_int_equal(raw(e, "GET", "/api/v1/objects", NULL, NULL), 401);
    rf_net_json(ns, "GET", "/api/v1/objects", NULL, 0, NULL, NULL);
    assert_int_equal(rf_net_status(ns), 401);

    /* first admin without a roster: refused, and the token is not spent */
    char *body = enroll_body(e->admin, "admin-token-0123456789", 0);
    rf_net_json(na, "POST", "/api/v1/enroll", (uint8_t *)body, strlen(body), "application/json",
                NULL);
    assert_int_equal(rf_net_status(na), 422);
    free(body);
    /* an enrollment signed by another key than the one enrolled */
    body = enroll_body(e->admin, "admin-token-0123456789", 1);
    rf_net_json(ns, "POST", "/api/v1/enroll", (uint8_t *)body, strlen(body), "application/json",
                NULL);
    assert_int_equal(rf_net_status(ns), 401);
    /* a body that is not the one signed */
    sign(auth, e->admin, "POST", "/api/v1/enroll", now, "{}");
    assert_int_equal(raw(e, "POST", "/api/v1/enroll", auth, body), 401);
    assert_int_equal(rf_net_json(na, "POST", "/api/v1/enroll", (uint8_t *)body, strlen(body),
                                 "application/json", &j),
                     0);
    assert_string_equal(json_string_value(json_object_get(j, "role")), "admin");
    json_decref(j);
    /* the token is spent; the key enrolled */
    rf_net_json(na, "POST", "/api/v1/enroll", (uint8_t *)body, strlen(body), "application/json",
                NULL);
    assert_int_equal(rf_net_status(na), 409);
    free(body);

    /* signatures: replayed nonce, clock skew, wrong path */
    sign(auth, e->admin, "GET", "/api/v1/objects", now, NULL);
    assert_int_equal(raw(e, "GET", "/api/v1/objects", auth, NULL), 200);
    assert_int_equal(raw(e, "GET", "/api/v1/objects", auth, NULL), 401);
    sign(auth, e->admin, "GET", "/api/v1/objects", now - 2 * RF_APISIG_MAX_SKEW, NULL);
    assert_int_equal(raw(e, "GET", "/api/v1/objects", auth, NULL), 401);
    sign(auth, e->admin, "GET", "/api/v1/roster", now, NULL);
    assert_int_equal(raw(e, "GET", "/api/v1/objects", auth, NULL), 401);
    assert_int_equal(raw(e, "GET", "/api/v1/objects", "Refuge key=garbage", NULL), 401);

    /* a member with a member token: enrolled, but not on the roster */
    body = enroll_body(e->member, "member-token-0123456789", 0);
    assert_int_equal(rf_net_json(nm, "POST", "/api/v1/enroll", (uint8_t *)body, strlen(body),
                                 "application/json", &j),
                     0);
    assert_string_equal(json_string_value(json_object_get(j, "role")), "member");
    json_decref(j);
    free(body);
    assert_int_equal(rf_net_json(nm, "GET", "/api/v1/roster", NULL, 0, NULL, &j), 0);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1);
    assert_int_equal(json_array_size(json_object_get(j, "chain")), 1);
    json_decref(j);
    rf_net_json(nm, "GET", "/api/v1/objects", NULL, 0, NULL, NULL);
    assert_int_equal(rf_net_status(nm), 403);

    /* replies: sealed to the person and the whole roster, or refused */
    uint8_t pks[3][32];
    memcpy(pks[0], e->src.pk, 32);
    memcpy(pks[1], e->admin->box_pk, 32);
    memcpy(pks[2], e->stranger->box_pk, 32);
    assert_int_equal(post_reply(na, e, RF_KIND_REPLY, (const uint8_t(*)[32])pks, 1), 422);
    assert_int_equal(post_reply(na, e, RF_KIND_MESSAGE, (const uint8_t(*)[32])pks, 2), 422);
    assert_int_equal(post_reply(nm, e, RF_KIND_REPLY, (const uint8_t(*)[32])pks, 2), 403);
    assert_int_equal(post_reply(na, e, RF_KIND_REPLY, (const uint8_t(*)[32])pks, 2), 200);
    assert_int_equal(post_reply(na, e, RF_KIND_REPLY, (const uint8_t(*)[32])pks, 3), 200);
    rf_net_json(na, "POST", "/api/v1/cases/nosuchcase/replies", (const uint8_t *)"x", 1,
                "application/octet-stream", NULL);
    assert_int_equal(rf_net_status(na), 404);

    /* listing pages, case lookup, object fetch */
    assert_int_equal(rf_net_json(na, "GET", "/api/v1/objects?after=0&limit=1", NULL, 0, NULL, &j),
                     0);
    assert_int_equal(json_array_size(json_object_get(j, "objects")), 1);
    assert_true(json_is_true(json_object_get(j, "more")));
    json_t *o = json_array_get(json_object_get(j, "objects"), 0);
    assert_int_equal(json_integer_value(json_object_get(o, "kind")), RF_KIND_REPLY);
    assert_string_equal(json_string_value(json_object_get(o, "case")), e->src.case_id);
    int64_t seq = json_integer_value(json_object_get(o, "seq"));
    uint64_t size = (uint64_t)json_integer_value(json_object_get(o, "size"));
    json_decref(j);
    rf_net_json(na, "GET", "/api/v1/objects?limit=1001", NULL, 0, NULL, NULL);
    assert_int_equal(rf_net_status(na), 400);
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/cases/%s", e->src.case_id);
    assert_int_equal(rf_net_json(na, "GET", path, NULL, 0, NULL, &j), 0);
    json_decref(j);
    struct rf_buf ct, plain;
    rf_buf_init(&ct, 1 << 20);
    rf_buf_init(&plain, 1 << 20);
    snprintf(path, sizeof(path), "/api/v1/objects/%lld", (long long)seq);
    assert_int_equal(rf_net_download(na, path, size, collect, &ct), 0);
    assert_int_equal(ct.len, size);
    /* the person can read the reply */
    uint8_t kind;
    assert_int_equal(rf_envelope_open(&plain, &kind, e->src.pk, e->src_sk, ct.data, ct.len), 0);
    assert_int_equal(kind, RF_KIND_REPLY);
    rf_buf_free(&ct);
    rf_buf_free(&plain);
    assert_int_equal(rf_net_download(na, "/api/v1/objects/999999", 100, collect, &ct),
                     RF_ERR_PROTOCOL);
    assert_int_equal(rf_net_status(na), 404);

    rf_net_free(na);
    rf_net_free(nm);
    rf_net_free(ns);
}

static int run(char *a0, char *a1, char *a2)
{
    char *argv[4] = {a0, a1, a2, NULL};
    int argc = a2 ? 3 : (a1 ? 2 : 1);
    return rf_client_main(argc, argv);
}

static void cli_usage_errors_exit_2(void **state)
{
    (void)state;
    assert_int_equal(run("refuge", NULL, NULL), 2);
    assert_int_equal(run("refuge", "frobnicate", NULL), 2);
    assert_int_equal(run("refuge", "show", NULL), 2);
    assert_int_equal(run("refuge", "show", "NOT/A/CASE"), 2);
    assert_int_equal(run("refuge", "files", "abcd"), 2); /* --out missing */
    assert_int_equal(run("refuge", "init", "--name"), 2);
    assert_int_equal(run("refuge", "show", "--help"), 0);
    assert_int_equal(run("refuge", "--help", NULL), 0);
    assert_int_equal(run("refuge", "stage", NULL), 2);
    assert_int_equal(run("refuge", "stage", "abcde23456"), 2); /* no stage */
    assert_int_equal(run("refuge", "stage", "--help"), 0);
    assert_int_equal(run("refuge", "staff", NULL), 2);
    assert_int_equal(run("refuge", "staff", "promote"), 2);
    assert_int_equal(run("refuge", "team", "paint"), 2);
    assert_int_equal(run("refuge", "audit", NULL), 2);
    assert_int_equal(run("refuge", "audit", "--help"), 0);
    assert_int_equal(run("refuge", "rewrap", "now"), 2);
    assert_int_equal(run("refuge", "due", "abcde23456"), 2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    rf_out_init(); /* as rf_client_main does: jansson memory is wiped on free */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nonce_replay_refused_until_expiry),
        cmocka_unit_test(stranger_text_is_sanitised),
        cmocka_unit_test(roster_chain_from_pinned_admin_only),
        cmocka_unit_test(cache_groups_cases_and_streams),
        cmocka_unit_test(grants_kept_and_the_one_that_opens_is_used),
        cmocka_unit_test(local_db_verified_and_sealed_at_rest),
        cmocka_unit_test(local_db_parallel_digest_same_as_serial),
        cmocka_unit_test(local_db_board_rows),
        cmocka_unit_test(local_db_checks_events_up_to_the_roster_stored_under),
        cmocka_unit_test(plain_http_only_to_loopback_and_onion),
        cmocka_unit_test(cli_usage_errors_exit_2),
        cmocka_unit_test_setup_teardown(api_enroll_auth_and_replies, api_setup, api_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
