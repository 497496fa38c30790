/* session_test.c - the person's sessions as an attacker or a returning
 * person meets them: a token finds its session and nothing else finds it;
 * tampered, truncated or ended tokens find nothing; sessions die when idle
 * and after their absolute lifetime; a full table evicts its least recently
 * used entry; a pending codename is taken once and expires; daily quotas
 * refuse past their limit. */
#include "server/session.h"
#include "lib/codename.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

static struct rf_session_view *view;

static void make_source(struct rf_source *src, struct rf_source_keys *keys, int64_t id)
{
    memset(src, 0, sizeof(*src));
    memset(keys, 0, sizeof(*keys));
    src->id = id;
    memcpy(src->case_id, "ABCDEFGHJK", RF_CASE_ID_LEN + 1);
    randombytes_buf(keys->pk, 32);
    randombytes_buf(keys->sk, 32);
}

static void create_get_end(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys;
    char tok[RF_SESSION_TOKEN_B64], tok2[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_sessions_new(&s, 8, 600), 0);
    make_source(&src, &keys, 42);
    assert_int_equal(rf_session_create(s, &src, &keys, tok), 0);
    assert_int_equal(strlen(tok), RF_SESSION_TOKEN_B64 - 1);
    assert_int_equal(rf_session_create(s, &src, &keys, tok2), 0);
    assert_string_not_equal(tok, tok2);

    assert_int_equal(rf_session_get(s, tok, view), 0);
    assert_int_equal(view->source_id, 42);
    assert_string_equal(view->case_id, "ABCDEFGHJK");
    assert_memory_equal(view->pk, keys.pk, 32);
    assert_memory_equal(view->sk, keys.sk, 32);
    uint8_t csrf1[32];
    memcpy(csrf1, view->csrf, 32);
    assert_int_equal(rf_session_get(s, tok2, view), 0);
    assert_memory_not_equal(csrf1, view->csrf, 32); /* CSRF secret per session */

    rf_session_end(s, tok);
    assert_int_equal(rf_session_get(s, tok, view), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_session_get(s, tok2, view), 0); /* the other one lives on */
    rf_sessions_free(s);
}

static void tampered_tokens_find_nothing(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys;
    char tok[RF_SESSION_TOKEN_B64], bad[RF_SESSION_TOKEN_B64 + 8];
    assert_int_equal(rf_sessions_new(&s, 8, 600), 0);
    make_source(&src, &keys, 1);
    assert_int_equal(rf_session_create(s, &src, &keys, tok), 0);
    for (size_t i = 0; i < strlen(tok); i++) {
        memcpy(bad, tok, sizeof(tok));
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(rf_session_get(s, bad, view), RF_ERR_NOT_FOUND);
    }
    memcpy(bad, tok, sizeof(tok));
    bad[10] = '\0';
    assert_int_equal(rf_session_get(s, bad, view), RF_ERR_NOT_FOUND);
    snprintf(bad, sizeof(bad), "%sA", tok);
    assert_int_equal(rf_session_get(s, bad, view), RF_ERR_NOT_FOUND);
    memcpy(bad, tok, sizeof(tok));
    bad[5] = '+'; /* not base64url */
    assert_int_equal(rf_session_get(s, bad, view), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_session_get(s, "", view), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_session_get(s, NULL, view), RF_ERR_NOT_FOUND);
    rf_session_end(s, bad); /* ending a bad token ends nothing */
    assert_int_equal(rf_session_get(s, tok, view), 0);
    rf_sessions_free(s);
}

static void idle_and_absolute_expiry(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys;
    char tok[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_sessions_new(&s, 8, 600), 0);
    make_source(&src, &keys, 1);
    assert_int_equal(rf_session_create(s, &src, &keys, tok), 0);
    rf_sessions_clock_skew(s, 599);
    assert_int_equal(rf_session_get(s, tok, view), 0); /* touched */
    rf_sessions_clock_skew(s, 599);
    assert_int_equal(rf_session_get(s, tok, view), 0);
    rf_sessions_clock_skew(s, 600);
    assert_int_equal(rf_session_get(s, tok, view), RF_ERR_NOT_FOUND); /* idle */

    /* kept busy, it still ends at the absolute lifetime */
    assert_int_equal(rf_session_create(s, &src, &keys, tok), 0);
    int64_t t = 0;
    while (t + 300 < RF_SESSION_LIFETIME_S) {
        rf_sessions_clock_skew(s, 300);
        t += 300;
        assert_int_equal(rf_session_get(s, tok, view), 0);
    }
    rf_sessions_clock_skew(s, 300);
    assert_int_equal(rf_session_get(s, tok, view), RF_ERR_NOT_FOUND);
    rf_sessions_free(s);
}

static void full_table_evicts_least_recently_used(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys;
    char tok[4][RF_SESSION_TOKEN_B64], extra[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_sessions_new(&s, 4, 600), 0);
    for (int i = 0; i < 4; i++) {
        make_source(&src, &keys, i);
        assert_int_equal(rf_session_create(s, &src, &keys, tok[i]), 0);
        rf_sessions_clock_skew(s, 1);
    }
    assert_int_equal(rf_session_get(s, tok[0], view), 0); /* 1 is now the least recent */
    make_source(&src, &keys, 99);
    assert_int_equal(rf_session_create(s, &src, &keys, extra), 0);
    assert_int_equal(rf_session_get(s, tok[1], view), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_session_get(s, tok[0], view), 0);
    assert_int_equal(rf_session_get(s, tok[2], view), 0);
    assert_int_equal(rf_session_get(s, tok[3], view), 0);
    assert_int_equal(rf_session_get(s, extra, view), 0);
    assert_int_equal(view->source_id, 99);
    /* a flood of new sessions never fails, and the table stays bounded */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rf_session_create(s, &src, &keys, extra), 0);
    rf_sessions_free(s);
}

static void pending_taken_once_and_expires(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    char id[RF_SESSION_TOKEN_B64], id2[RF_SESSION_TOKEN_B64];
    char *out = sodium_malloc(RF_CODENAME_MAX);
    assert_int_equal(rf_sessions_new(&s, 8, 600), 0);
    const char *cn = "alpha bravo charlie delta echo foxtrot golf";
    assert_int_equal(rf_pending_put(s, cn, id), 0);
    assert_int_equal(rf_pending_take(s, id, out, 8), RF_ERR_LIMIT); /* too small: kept */
    assert_int_equal(rf_pending_take(s, id, out, RF_CODENAME_MAX), 0);
    assert_string_equal(out, cn);
    assert_int_equal(rf_pending_take(s, id, out, RF_CODENAME_MAX), RF_ERR_NOT_FOUND);

    assert_int_equal(rf_pending_put(s, cn, id2), 0);
    /* a pending id is not a session token */
    assert_int_equal(rf_session_get(s, id2, view), RF_ERR_NOT_FOUND);
    rf_sessions_clock_skew(s, RF_PENDING_LIFETIME_S);
    assert_int_equal(rf_pending_take(s, id2, out, RF_CODENAME_MAX), RF_ERR_NOT_FOUND);
    sodium_free(out);
    rf_sessions_free(s);
}

static void daily_quota(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys;
    char tok[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_sessions_new(&s, 8, 100000), 0);
    rf_sessions_set_quota(s, 3, 1000);
    make_source(&src, &keys, 1);
    assert_int_equal(rf_session_create(s, &src, &keys, tok), 0);
    assert_int_equal(rf_session_count_sent(s, tok, 600), 0);
    assert_int_equal(rf_session_count_sent(s, tok, 500), RF_ERR_LIMIT); /* bytes */
    assert_int_equal(rf_session_count_sent(s, tok, 100), 0);
    assert_int_equal(rf_session_count_sent(s, tok, 100), 0);
    assert_int_equal(rf_session_count_sent(s, tok, 1), RF_ERR_LIMIT); /* messages */
    assert_int_equal(rf_session_get(s, tok, view), 0);
    assert_int_equal(view->sent_today_msgs, 3);
    assert_int_equal(view->sent_today_bytes, 800);
    assert_int_equal(rf_session_count_sent(s, "nope", 1), RF_ERR_NOT_FOUND);
    rf_sessions_free(s);
}

static void enroll_token_hash_is_blake2b_of_text(void **state)
{
    (void)state;
    uint8_t a[32], b[32];
    const char *t = "08rSJOckl6h-mEiYiNtPoSCw63L2dufpr6ddCkqEDd0";
    rf_enroll_token_hash(a, t, strlen(t));
    crypto_generichash(b, 32, (const uint8_t *)t, strlen(t), NULL, 0);
    assert_memory_equal(a, b, 32);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    view = sodium_malloc(sizeof(*view));
    return view ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sodium_free(view);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(create_get_end),
        cmocka_unit_test(tampered_tokens_find_nothing),
        cmocka_unit_test(idle_and_absolute_expiry),
        cmocka_unit_test(full_table_evicts_least_recently_used),
        cmocka_unit_test(pending_taken_once_and_expires),
        cmocka_unit_test(daily_quota),
        cmocka_unit_test(enroll_token_hash_is_blake2b_of_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
