/* audit_test.c - an honest audit chain verifies, from the start and from an
 * anchor; a server that modifies, deletes (with or without renumbering),
 * reorders or duplicates entries, truncates the log, or rewrites history
 * behind a client's anchor is caught, at the index of the first broken
 * entry and with the right kind of break. Also the field rules of the hash. */
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
