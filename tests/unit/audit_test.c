/* audit_test.c - an honest audit chain verifies, from the start and from an
 * anchor; a server that modifies, deletes (with or without renumbering),
 * reorders or duplicates entries, truncates the log, or rewrites history
 * behind a client's anchor is caught, at the index of the first broken
 * entry and with the right kind of break. Also the field rules of the hash. */
#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N 100

static const char *actions[] = {"fetch", "reply", "event", "grant", "roster", "token", "enroll"};

/* Recomputes hashes and links of e[from..n) as an honest server would. */
static void rechain(struct rf_audit_entry *e, size_t from, size_t n)
{
    for (size_t i = from; i < n; i++) {
        if (i == 0)
            memset(e[i].prev, 0, 32);
        else
            memcpy(e[i].prev, e[i - 1].hash, 32);
        assert_int_equal(rf_audit_hash(e[i].hash, &e[i]), 0);
    }
}

static struct rf_audit_entry *honest(size_t n)
{
    struct rf_audit_entry *e = calloc(n, sizeof(*e));
    assert_non_null(e);
    for (size_t i = 0; i < n; i++) {
        e[i].id = i + 1;
        e[i].day = 20000 + (uint32_t)(i / 7);
        randombytes_buf(e[i].actor, 32);
        strcpy(e[i].action, actions[i % 7]);
        snprintf(e[i].target, sizeof(e[i].target), "k7q2m4x%03zu", i);
    }
    rechain(e, 0, n);
    return e;
}

static void expect_break(const struct rf_audit_entry *e, size_t n, uint64_t anchor_id,
                         const uint8_t *anchor_hash, size_t want_bad, enum rf_audit_break want)
{
    size_t bad = 12345;
    enum rf_audit_break what = RF_AUDIT_OK;
    assert_int_equal(rf_audit_verify(e, n, anchor_id, anchor_hash, &bad, &what), RF_ERR_FORMAT);
    assert_string_equal(rf_audit_break_str(what), rf_audit_break_str(want));
    assert_int_equal(bad, want_bad);
}

static void expect_ok(const struct rf_audit_entry *e, size_t n, uint64_t anchor_id,
                      const uint8_t *anchor_hash)
{
    size_t bad = 12345;
    enum rf_audit_break what = RF_AUDIT_REWRITTEN;
    assert_int_equal(rf_audit_verify(e, n, anchor_id, anchor_hash, &bad, &what), 0);
    assert_int_equal(what, RF_AUDIT_OK);
    assert_int_equal(bad, 0);
}

static void honest_chain_passes(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(N);
    uint8_t zero[32] = {0};
    expect_ok(e, N, 0, NULL);
    expect_ok(e, N, 0, zero);
    expect_ok(e, 0, 0, NULL);
    expect_ok(e, 0, 30, e[29].hash);
    /* a client that saw entry 30: the entries after it, the anchor entry
     * and those after it, or the whole log */
    expect_ok(e + 30, N - 30, 30, e[29].hash);
    expect_ok(e + 29, N - 29, 30, e[29].hash);
    expect_ok(e, N, 30, e[29].hash);
    expect_ok(e + 10, N - 10, 30, e[29].hash);
    /* the anchor is the last entry: nothing new, or only it */
    expect_ok(e + N - 1, 1, N, e[N - 1].hash);
    /* no callback needed */
    assert_int_equal(rf_audit_verify(e, N, 0, NULL, NULL, NULL), 0);
    free(e);
}

static void modified_entry_pinpointed(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(N);
    strcpy(e[36].target, "someone-else");
    expect_break(e, N, 0, NULL, 36, RF_AUDIT_MODIFIED);
    expect_break(e + 30, N - 30, 30, e[29].hash, 6, RF_AUDIT_MODIFIED);
    free(e);
    /* every field counts */
    for (int f = 0; f < 6; f++) {
        e = honest(N);
        struct rf_audit_entry *x = &e[36];
        switch (f) {
        case 0:
            x->day++;
            break;
        case 1:
            x->actor[31] ^= 1;
            break;
        case 2:
            strcpy(x->action, "delete");
            break;
        case 3:
            x->target[0] = 'K';
            break;
        case 4:
            x->prev[0] ^= 1;
            break;
        case 5:
            x->hash[31] ^= 1;
            break;
        }
        expect_break(e, N, 0, NULL, 36, RF_AUDIT_MODIFIED);
        free(e);
    }
    /* the id is hashed too: relabelling an entry is a modification */
    e = honest(N);
    e[36].id = 38;
    expect_break(e, N, 0, NULL, 36, RF_AUDIT_MODIFIED);
    free(e);
}

static void deleted_entry_pinpointed(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(N);
    memmove(&e[49], &e[50], (N - 50) * sizeof(*e)); /* entry 50 gone */
    expect_break(e, N - 1, 0, NULL, 49, RF_AUDIT_DELETED);
    assert_int_equal(e[49].id, 51);
    free(e);
    /* deleted and the later ids renumbered (and rehashed): the link shows it */
    e = honest(N);
    memmove(&e[49], &e[50], (N - 50) * sizeof(*e));
    for (size_t i = 49; i < N - 1; i++) {
        e[i].id = i + 1;
        assert_int_equal(rf_audit_hash(e[i].hash, &e[i]), 0);
    }
    expect_break(e, N - 1, 0, NULL, 49, RF_AUDIT_DELETED);
    free(e);
    /* the first entry, or the first after the anchor */
    e = honest(N);
    expect_break(e + 1, N - 1, 0, NULL, 0, RF_AUDIT_DELETED);
    expect_break(e + 31, N - 31, 30, e[29].hash, 0, RF_AUDIT_DELETED);
    /* the last entries cannot be told from entries not yet written: a later
     * verification from this anchor catches them */
    expect_ok(e, N - 3, 0, NULL);
    free(e);
}

static void reordered_entries_pinpointed(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(N);
    struct rf_audit_entry t = e[9];
    e[9] = e[10];
    e[10] = t; /* entries 10 and 11 swapped */
    expect_break(e, N, 0, NULL, 9, RF_AUDIT_REORDERED);
    free(e);
    /* an entry moved far back */
    e = honest(N);
    t = e[20];
    memmove(&e[20], &e[21], 40 * sizeof(*e));
    e[60] = t;
    expect_break(e, N, 0, NULL, 20, RF_AUDIT_REORDERED);
    free(e);
    /* a duplicated entry */
    e = honest(N);
    e[41] = e[40];
    expect_break(e, N, 0, NULL, 41, RF_AUDIT_REORDERED);
    free(e);
    /* after an anchor: an old entry served again among the new ones */
    e = honest(N);
    e[31] = e[20];
    expect_break(e + 30, N - 30, 30, e[29].hash, 1, RF_AUDIT_REORDERED);
    free(e);
}

static void rewritten_history_caught(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(N);
    uint8_t anchor[32];
    memcpy(anchor, e[29].hash, 32);
    /* the server rewrites entries 20.. consistently */
    strcpy(e[19].action, "purge");
    strcpy(e[19].target, "cases=0 objects=0");
    rechain(e, 19, N);
    expect_ok(e, N, 0, NULL);                                        /* from genesis: consistent */
    expect_break(e, N, 30, anchor, 29, RF_AUDIT_REWRITTEN);          /* whole log */
    expect_break(e + 29, N - 29, 30, anchor, 0, RF_AUDIT_REWRITTEN); /* from the anchor entry */
    expect_break(e + 25, N - 25, 30, anchor, 4, RF_AUDIT_REWRITTEN);
    /* without the anchor entry, the first link breaks */
    expect_break(e + 30, N - 30, 30, anchor, 0, RF_AUDIT_DELETED);
    /* an anchor from before the rewrite still holds */
    expect_ok(e, N, 19, e[18].hash);
    free(e);
}

static void truncated_log_caught(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(N);
    /* the client saw 30 entries; the server now shows 20 */
    expect_break(e, 20, 30, e[29].hash, 19, RF_AUDIT_REWRITTEN);
    expect_break(e + 5, 15, 30, e[29].hash, 14, RF_AUDIT_REWRITTEN);
    free(e);
}

static void break_texts(void **state)
{
    (void)state;
    assert_string_equal(rf_audit_break_str(RF_AUDIT_MODIFIED), "modified");
    assert_string_equal(rf_audit_break_str(RF_AUDIT_DELETED), "deleted");
    assert_string_equal(rf_audit_break_str(RF_AUDIT_REORDERED), "reordered");
    assert_string_equal(rf_audit_break_str(RF_AUDIT_REWRITTEN), "rewritten");
    assert_string_equal(rf_audit_break_str(RF_AUDIT_OK), "ok");
    assert_non_null(rf_audit_break_str((enum rf_audit_break)42));
}

static void field_rules(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(1);
    uint8_t h[32];
    struct rf_audit_entry x = e[0];
    memset(x.action, 'a', RF_AUDIT_ACTION_MAX);
    x.action[RF_AUDIT_ACTION_MAX] = '\0';
    assert_int_equal(rf_audit_hash(h, &x), 0);
    memset(x.target, '~', RF_AUDIT_TARGET_MAX);
    x.target[RF_AUDIT_TARGET_MAX] = '\0';
    assert_int_equal(rf_audit_hash(h, &x), 0);
    strcpy(x.target, "cases=2 objects=9");
    assert_int_equal(rf_audit_hash(h, &x), 0);
    x.target[0] = '\0';
    assert_int_equal(rf_audit_hash(h, &x), 0);
    strcpy(x.action, "audit_verify");
    assert_int_equal(rf_audit_hash(h, &x), 0);

    const char *bad_actions[] = {"", "Fetch", "fe tch", "fetch1", "fetch-all", "f\xc3\xa9"};
    for (size_t i = 0; i < sizeof(bad_actions) / sizeof(bad_actions[0]); i++) {
        x = e[0];
        strcpy(x.action, bad_actions[i]);
        assert_int_equal(rf_audit_hash(h, &x), RF_ERR_INVALID);
    }
    x = e[0];
    memset(x.action, 'a', sizeof(x.action)); /* no terminator */
    assert_int_equal(rf_audit_hash(h, &x), RF_ERR_INVALID);
    const char *bad_targets[] = {"a\nb", "\x7f", "\xd0\x9a", "tab\there"};
    for (size_t i = 0; i < sizeof(bad_targets) / sizeof(bad_targets[0]); i++) {
        x = e[0];
        strcpy(x.target, bad_targets[i]);
        assert_int_equal(rf_audit_hash(h, &x), RF_ERR_INVALID);
    }
    x = e[0];
    memset(x.target, 'a', sizeof(x.target));
    assert_int_equal(rf_audit_hash(h, &x), RF_ERR_INVALID);
    /* an entry with an unhashable field fails as modified */
    x = e[0];
    strcpy(x.action, "FETCH");
    expect_break(&x, 1, 0, NULL, 0, RF_AUDIT_MODIFIED);
    free(e);
}

static void bad_arguments(void **state)
{
    (void)state;
    struct rf_audit_entry *e = honest(3);
    uint8_t nonzero[32] = {1};
    size_t bad = 0;
    enum rf_audit_break what = RF_AUDIT_OK;
    assert_int_equal(rf_audit_verify(e, 3, 0, nonzero, &bad, &what), RF_ERR_INVALID);
    assert_int_equal(rf_audit_verify(NULL, 3, 0, NULL, &bad, &what), RF_ERR_INVALID);
    assert_int_equal(rf_audit_verify(NULL, 0, 0, NULL, &bad, &what), 0);
    free(e);
}

/* ---- version 2: entries carry their caseworker's signed request ---- */

/* Makes e an entry of action/target by k, signed as the request
 * method path at ts (the way the server stores it). */
static void signed_entry(struct rf_audit_entry *e, const struct rf_staff_keys *k,
                         const char *action, const char *target, const char *method,
                         const char *path, int64_t ts)
{
    char hdr[RF_APISIG_HEADER_MAX];
    uint8_t body[32] = {0};
    struct rf_apisig as;
    size_t len = 0;
    memset(e, 0, sizeof(*e));
    e->day = (uint32_t)(ts / 86400);
    memcpy(e->actor, k->sign_pk, 32);
    strcpy(e->action, action);
    strcpy(e->target, target);
    assert_int_equal(rf_apisig_sign(hdr, sizeof(hdr), k, method, path, ts, body), 0);
    assert_int_equal(rf_apisig_parse(&as, hdr, strlen(hdr)), 0);
    assert_int_equal(
        rf_audit_req_encode(e->req, &len, method, path, as.ts, as.nonce, as.body_hash, as.sig), 0);
    e->req_len = (uint16_t)len;
}

static void number(struct rf_audit_entry *e, size_t n)
{
    for (size_t i = 0; i < n; i++)
        e[i].id = i + 1;
    rechain(e, 0, n);
}

static void expect_sig_break(const struct rf_audit_entry *e, size_t n, size_t want_bad,
                             enum rf_audit_break want)
{
    size_t bad = 999;
    enum rf_audit_break what = RF_AUDIT_OK;
    assert_int_equal(rf_audit_verify(e, n, 0, NULL, &bad, &what), 0); /* the chain is fine */
    assert_int_equal(rf_audit_verify_sigs(e, n, &bad, &what, NULL, NULL, NULL), RF_ERR_FORMAT);
    assert_string_equal(rf_audit_break_str(what), rf_audit_break_str(want));
    assert_int_equal(bad, want_bad);
}

static void signed_entries(void **state)
{
    (void)state;
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k)), *m = sodium_malloc(sizeof(*k));
    assert_non_null(k);
    assert_non_null(m);
    memset(k, 0, sizeof(*k));
    memset(m, 0, sizeof(*m));
    crypto_sign_keypair(k->sign_pk, k->sign_sk);
    crypto_sign_keypair(m->sign_pk, m->sign_sk);
    const int64_t ts = 1700000000;
    struct rf_audit_entry e[8];
    /* two legacy entries (a log begun before version 2), then signed ones,
     * a purge by the server and a delete by a person */
    memset(e, 0, sizeof(e));
    for (int i = 0; i < 2; i++) {
        e[i].day = (uint32_t)(ts / 86400);
        memcpy(e[i].actor, k->sign_pk, 32);
        strcpy(e[i].action, "fetch");
        strcpy(e[i].target, "3");
    }
    signed_entry(&e[2], k, "fetch", "17", "GET", "/api/v1/objects/17", ts);
    signed_entry(&e[3], m, "reply", "k7q2m4xabc", "POST", "/api/v1/cases/k7q2m4xabc/replies", ts);
    signed_entry(&e[4], k, "roster", "3", "POST", "/api/v1/roster", ts + 5);
    e[5].day = (uint32_t)(ts / 86400);
    strcpy(e[5].action, "purge");
    strcpy(e[5].target, "cases=1 objects=2");
    e[6] = e[5];
    strcpy(e[6].action, "delete");
    strcpy(e[6].target, "40");
    signed_entry(&e[7], k, "grant", "2", "POST", "/api/v1/grants", ts + 9);
    number(e, 8);
    size_t bad = 9, ns = 0, nl = 0, nz = 0;
    enum rf_audit_break what = RF_AUDIT_MODIFIED;
    assert_int_equal(rf_audit_verify(e, 8, 0, NULL, &bad, &what), 0);
    assert_int_equal(rf_audit_verify_sigs(e, 8, &bad, &what, &ns, &nl, &nz), 0);
    assert_int_equal(ns, 4);
    assert_int_equal(nl, 2);
    assert_int_equal(nz, 2);
    /* the request is in the hash: stripping it is a modification */
    struct rf_audit_entry c[8];
    memcpy(c, e, sizeof(c));
    c[2].req_len = 0;
    assert_int_equal(rf_audit_verify(c, 8, 0, NULL, &bad, &what), RF_ERR_FORMAT);
    assert_int_equal(what, RF_AUDIT_MODIFIED);
    assert_int_equal(bad, 2);

    /* Invented by a server, hashes recomputed (a chain that verifies): */
    /* an unsigned entry in a caseworker's name after signed ones */
    memcpy(c, e, sizeof(c));
    c[6] = e[0];
    number(c, 8);
    expect_sig_break(c, 8, 6, RF_AUDIT_UNSIGNED);
    /* a caseworker's action with actor zeros (only purge and delete may) */
    memcpy(c, e, sizeof(c));
    strcpy(c[5].action, "reply");
    number(c, 8);
    expect_sig_break(c, 8, 5, RF_AUDIT_UNSIGNED);
    /* Alice's request re-attributed to Bob */
    memcpy(c, e, sizeof(c));
    memcpy(c[2].actor, m->sign_pk, 32);
    number(c, 8);
    expect_sig_break(c, 8, 2, RF_AUDIT_FORGED);
    /* a genuine request behind another action or target */
    memcpy(c, e, sizeof(c));
    strcpy(c[2].target, "18");
    number(c, 8);
    expect_sig_break(c, 8, 2, RF_AUDIT_FORGED);
    memcpy(c, e, sizeof(c));
    strcpy(c[3].action, "event");
    number(c, 8);
    expect_sig_break(c, 8, 3, RF_AUDIT_FORGED);
    /* on another day than the request's */
    memcpy(c, e, sizeof(c));
    c[4].day += 2;
    number(c, 8);
    expect_sig_break(c, 8, 4, RF_AUDIT_FORGED);
    /* one request behind two entries (a replay), unless all are grant chunks */
    memcpy(c, e, sizeof(c));
    c[6] = e[2];
    number(c, 8);
    expect_sig_break(c, 8, 6, RF_AUDIT_FORGED);
    memcpy(c, e, sizeof(c));
    c[6] = e[7];
    number(c, 8);
    assert_int_equal(rf_audit_verify_sigs(c, 8, &bad, &what, NULL, NULL, NULL), 0);
    /* a request record on a server entry, or one that does not parse */
    memcpy(c, e, sizeof(c));
    memcpy(c[5].req, e[2].req, e[2].req_len);
    c[5].req_len = e[2].req_len;
    number(c, 8);
    expect_sig_break(c, 8, 5, RF_AUDIT_FORGED);
    memcpy(c, e, sizeof(c));
    c[3].req[0] = 0;
    number(c, 8);
    expect_sig_break(c, 8, 3, RF_AUDIT_FORGED);
    sodium_free(k);
    sodium_free(m);
}

/* A range fetch (GET /api/v1/objects/data?after=N&limit=L, docs/protocol.md
 * 11): its entry's target is "N+1..last"; any other pairing is forged. */
static void range_fetch_entries(void **state)
{
    (void)state;
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    assert_non_null(k);
    memset(k, 0, sizeof(*k));
    crypto_sign_keypair(k->sign_pk, k->sign_sk);
    const int64_t ts = 1700000000;
    static const struct {
        const char *target, *path;
        int ok;
    } cases[] = {
        {"101..1100", "/api/v1/objects/data?after=100&limit=1000", 1},
        {"1..1", "/api/v1/objects/data?after=0&limit=1", 1},
        {"1..5000", "/api/v1/objects/data?after=0&limit=10", 1}, /* seqs may have gaps */
        {"100..1100", "/api/v1/objects/data?after=100&limit=1000", 0},
        {"102..1100", "/api/v1/objects/data?after=100&limit=1000", 0},
        {"101..100", "/api/v1/objects/data?after=100&limit=1000", 0},
        {"101..", "/api/v1/objects/data?after=100&limit=1000", 0},
        {"101.1100", "/api/v1/objects/data?after=100&limit=1000", 0},
        {"101..1100x", "/api/v1/objects/data?after=100&limit=1000", 0},
        {"01..5", "/api/v1/objects/data?after=0&limit=5", 0},
        {"1..5", "/api/v1/objects/data?limit=5&after=0", 0},
        {"1..5", "/api/v1/objects/data?after=00&limit=5", 0},
        {"1..5", "/api/v1/objects/data?after=0&limit=0", 0},
        {"1..5", "/api/v1/objects/data?after=0&limit=5&x=1", 0},
        {"1..5", "/api/v1/objects/1..5", 0},
        {"17", "/api/v1/objects/data?after=16&limit=1", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct rf_audit_entry e[1];
        signed_entry(&e[0], k, "fetch", cases[i].target, "GET", cases[i].path, ts);
        number(e, 1);
        size_t bad = 9;
        enum rf_audit_break what = RF_AUDIT_OK;
        int rc = rf_audit_verify_sigs(e, 1, &bad, &what, NULL, NULL, NULL);
        if (cases[i].ok)
            assert_int_equal(rc, 0);
        else
            expect_sig_break(e, 1, 0, RF_AUDIT_FORGED);
    }
    sodium_free(k);
}

static void request_records(void **state)
{
    (void)state;
    uint8_t rec[RF_AUDIT_REQ_MAX], nonce[16], bh[32], sig[64];
    size_t len = 0;
    randombytes_buf(nonce, sizeof(nonce));
    randombytes_buf(bh, sizeof(bh));
    randombytes_buf(sig, sizeof(sig));
    assert_int_equal(rf_audit_req_encode(rec, &len, "GET", "/api/v1/objects/9", 42, nonce, bh, sig),
                     0);
    assert_int_equal(len, 1 + 3 + 2 + 17 + 8 + 16 + 32 + 64);
    struct rf_audit_req q;
    assert_int_equal(rf_audit_req_parse(&q, rec, len), 0);
    assert_string_equal(q.method, "GET");
    assert_string_equal(q.path, "/api/v1/objects/9");
    assert_true(q.ts == 42);
    assert_memory_equal(q.nonce, nonce, 16);
    assert_memory_equal(q.body_hash, bh, 32);
    assert_memory_equal(q.sig, sig, 64);
    for (size_t cut = 0; cut < len; cut++)
        assert_int_not_equal(rf_audit_req_parse(&q, rec, cut), 0);
    rec[len] = 0;
    assert_int_equal(rf_audit_req_parse(&q, rec, len + 1), RF_ERR_FORMAT);
    rec[1] = 'g'; /* lower-case method */
    assert_int_equal(rf_audit_req_parse(&q, rec, len), RF_ERR_FORMAT);
    char longpath[300];
    memset(longpath, 'a', sizeof(longpath));
    longpath[0] = '/';
    longpath[299] = '\0';
    assert_int_equal(rf_audit_req_encode(rec, &len, "GET", longpath, 1, nonce, bh, sig),
                     RF_ERR_LIMIT);
    assert_int_equal(rf_audit_req_encode(rec, &len, "", "/x", 1, nonce, bh, sig), RF_ERR_INVALID);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(honest_chain_passes),
        cmocka_unit_test(modified_entry_pinpointed),
        cmocka_unit_test(deleted_entry_pinpointed),
        cmocka_unit_test(reordered_entries_pinpointed),
        cmocka_unit_test(rewritten_history_caught),
        cmocka_unit_test(truncated_log_caught),
        cmocka_unit_test(break_texts),
        cmocka_unit_test(field_rules),
        cmocka_unit_test(bad_arguments),
        cmocka_unit_test(signed_entries),
        cmocka_unit_test(request_records),
        cmocka_unit_test(range_fetch_entries),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
