/* session_test.c - the person's sessions as an attacker or a returning
 * person meets them: a token finds its session and nothing else finds it;
 * tampered, truncated or ended tokens find nothing; sessions die when idle
 * and after their absolute lifetime; the reaper wipes an expired session's
 * key from the table without its token ever coming back (an injected
 * clock); a full table answers busy and every live session stays; a sealed
 * pending codename opens only with its cookie, untampered, before its
 * expiry, and a flood of them keeps nothing; daily quotas refuse past their
 * limit. */
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
#include <time.h>

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

/* The injected clock: seconds, moved by the tests (read by the reaper
 * thread too, hence atomic). */
static _Atomic int64_t fake_now = 1000;

static int64_t fake_clock(void *arg)
{
    (void)arg;
    return fake_now;
}

static void full_table_answers_busy_and_keeps_live_sessions(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys;
    char tok[4][RF_SESSION_TOKEN_B64], extra[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_sessions_new(&s, 4, 600), 0);
    rf_sessions_set_clock(s, fake_clock, NULL);
    for (int i = 0; i < 4; i++) {
        make_source(&src, &keys, i);
        assert_int_equal(rf_session_create(s, &src, &keys, tok[i]), 0);
        fake_now += 1;
    }
    make_source(&src, &keys, 99);
    /* a flood of new sessions is refused; nobody is pushed out */
    for (int i = 0; i < 1000; i++)
        assert_int_equal(rf_session_create(s, &src, &keys, extra), RF_ERR_BUSY);
    for (int i = 0; i < 4; i++) {
        assert_int_equal(rf_session_get(s, tok[i], view), 0);
        assert_int_equal(view->source_id, i);
    }
    assert_int_equal(rf_sessions_count(s), 4);
    /* once one is over, there is room again */
    rf_session_end(s, tok[2]);
    assert_int_equal(rf_session_create(s, &src, &keys, extra), 0);
    assert_int_equal(rf_session_get(s, extra, view), 0);
    assert_int_equal(view->source_id, 99);
    /* expired sessions make room too (and are wiped for it) */
    fake_now += 600;
    assert_int_equal(rf_session_create(s, &src, &keys, extra), 0);
    assert_int_equal(rf_sessions_count(s), 1);
    rf_sessions_free(s);
}

static void reaper_wipes_expired_keys_without_their_token(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys, other;
    char tok[RF_SESSION_TOKEN_B64], tok2[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_sessions_new(&s, 8, 600), 0);
    rf_sessions_set_clock(s, fake_clock, NULL);
    make_source(&src, &keys, 1);
    assert_int_equal(rf_session_create(s, &src, &keys, tok), 0);
    fake_now += 300;
    make_source(&src, &other, 2);
    assert_int_equal(rf_session_create(s, &src, &other, tok2), 0);
    assert_true(rf_sessions_holds(s, keys.sk, 32)); /* the scan sees a live key */
    assert_int_equal(rf_sessions_reap(s), 0);       /* nothing expired yet */
    assert_true(rf_sessions_holds(s, keys.sk, 32));

    fake_now += 300; /* the first person walked away 600 s ago */
    assert_int_equal(rf_sessions_reap(s), 1);
    assert_false(rf_sessions_holds(s, keys.sk, 32));
    assert_false(rf_sessions_holds(s, keys.pk, 32));
    assert_true(rf_sessions_holds(s, other.sk, 32)); /* the other one lives on */
    assert_int_equal(rf_sessions_count(s), 1);

    /* the same on a timer, by the reaper thread, with nobody calling in */
    assert_int_equal(rf_sessions_reaper_start(s, 1), 0);
    fake_now += 600;
    for (int i = 0; i < 50 && rf_sessions_count(s) != 0; i++)
        nanosleep(&(struct timespec){0, 100 * 1000 * 1000}, NULL);
    assert_int_equal(rf_sessions_count(s), 0);
    assert_false(rf_sessions_holds(s, other.sk, 32));
    assert_int_equal(rf_session_get(s, tok2, view), RF_ERR_NOT_FOUND);
    rf_sessions_free(s); /* stops the thread */
}

static void reap_period_follows_idle_timeout(void **state)
{
    (void)state;
    assert_int_equal(rf_sessions_reap_period(1800), 60);
    assert_int_equal(rf_sessions_reap_period(300), 30);
    assert_int_equal(rf_sessions_reap_period(5), 1);
}

static void pending_sealed_in_the_form(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL, *other = NULL;
    char text[RF_PENDING_B64], bad[RF_PENDING_B64];
    char *out = sodium_malloc(RF_CODENAME_MAX);
    const uint8_t c1[] = "cookie-one-aaaaaaaaaaa", c2[] = "cookie-two-bbbbbbbbbbb";
    assert_int_equal(rf_sessions_new(&s, 8, 600), 0);
    assert_int_equal(rf_sessions_new(&other, 8, 600), 0);
    rf_sessions_set_clock(s, fake_clock, NULL);
    const char *cn = "alpha bravo charlie delta echo foxtrot golf";
    assert_int_equal(rf_pending_seal(s, cn, c1, 22, text), 0);
    assert_int_equal(strlen(text), RF_PENDING_B64 - 1);
    assert_null(strstr(text, "alpha"));
    assert_int_equal(rf_pending_open(s, text, strlen(text), c1, 22, out, RF_CODENAME_MAX), 0);
    assert_string_equal(out, cn);
    /* sealed again: another text of the same length */
    char text2[RF_PENDING_B64];
    assert_int_equal(rf_pending_seal(s, "x", c1, 22, text2), 0);
    assert_int_equal(strlen(text2), strlen(text));
    assert_string_not_equal(text, text2);
    /* another browser's cookie, another process's key, too small a buffer */
    assert_int_equal(rf_pending_open(s, text, strlen(text), c2, 22, out, RF_CODENAME_MAX),
                     RF_ERR_NOT_FOUND);
    assert_int_equal(rf_pending_open(s, text, strlen(text), NULL, 0, out, RF_CODENAME_MAX),
                     RF_ERR_NOT_FOUND);
    assert_int_equal(rf_pending_open(other, text, strlen(text), c1, 22, out, RF_CODENAME_MAX),
                     RF_ERR_NOT_FOUND);
    assert_int_equal(rf_pending_open(s, text, strlen(text), c1, 22, out, 16), RF_ERR_NOT_FOUND);
    /* every character changed, cut, lengthened: nothing */
    for (size_t i = 0; i < strlen(text); i++) {
        memcpy(bad, text, sizeof(text));
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        assert_int_equal(rf_pending_open(s, bad, strlen(bad), c1, 22, out, RF_CODENAME_MAX),
                         RF_ERR_NOT_FOUND);
    }
    assert_int_equal(rf_pending_open(s, text, strlen(text) - 1, c1, 22, out, RF_CODENAME_MAX),
                     RF_ERR_NOT_FOUND);
    assert_int_equal(rf_pending_open(s, "", 0, c1, 22, out, RF_CODENAME_MAX), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_pending_open(s, NULL, 0, c1, 22, out, RF_CODENAME_MAX), RF_ERR_NOT_FOUND);
    /* a pending text is not a session token */
    assert_int_equal(rf_session_get(s, text, view), RF_ERR_NOT_FOUND);
    /* a flood of them keeps nothing and pushes nothing out */
    for (int i = 0; i < 5000; i++)
        assert_int_equal(rf_pending_seal(s, "flood flood flood", c2, 22, bad), 0);
    assert_int_equal(rf_sessions_count(s), 0);
    assert_int_equal(rf_pending_open(s, text, strlen(text), c1, 22, out, RF_CODENAME_MAX), 0);
    /* taken twice is still the same codename (the store refuses a second
     * account for it); expired after RF_PENDING_LIFETIME_S */
    fake_now += RF_PENDING_LIFETIME_S - 1;
    assert_int_equal(rf_pending_open(s, text, strlen(text), c1, 22, out, RF_CODENAME_MAX), 0);
    fake_now += 1;
    assert_int_equal(rf_pending_open(s, text, strlen(text), c1, 22, out, RF_CODENAME_MAX),
                     RF_ERR_NOT_FOUND);
    /* a codename too long or empty is not sealed */
    char longcn[RF_PENDING_CN_MAX + 2];
    memset(longcn, 'a', sizeof(longcn) - 1);
    longcn[sizeof(longcn) - 1] = '\0';
    assert_int_equal(rf_pending_seal(s, longcn, c1, 22, bad), RF_ERR_LIMIT);
    assert_int_equal(rf_pending_seal(s, "", c1, 22, bad), RF_ERR_LIMIT);
    sodium_free(out);
    rf_sessions_free(other);
    rf_sessions_free(s);
}

static void pending_plaintext_parser(void **state)
{
    (void)state;
    uint8_t p[RF_PENDING_PLAIN_LEN];
    char out[RF_PENDING_CN_MAX + 1];
    const int64_t now = 5000;
    memset(p, 0, sizeof(p));
    p[0] = 1;
    p[7] = 0x14; /* expires (big-endian u64 at 1..8) = 0x1400 = now + 120 */
    p[9] = 3;
    memcpy(p + 10, "abc", 3);
    assert_int_equal(rf_pending_parse(p, sizeof(p), now, out, sizeof(out)), 0);
    assert_string_equal(out, "abc");
    assert_int_equal(rf_pending_parse(p, sizeof(p) - 1, now, out, sizeof(out)), RF_ERR_FORMAT);
    assert_int_equal(rf_pending_parse(p, 0, now, out, sizeof(out)), RF_ERR_FORMAT);
    assert_int_equal(rf_pending_parse(p, sizeof(p), now, out, 3), RF_ERR_LIMIT);
    assert_int_equal(rf_pending_parse(p, sizeof(p), 0x1400, out, sizeof(out)), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_pending_parse(p, sizeof(p), -1, out, sizeof(out)), RF_ERR_NOT_FOUND);
    /* an expiry further away than a lifetime was never made by us */
    assert_int_equal(
        rf_pending_parse(p, sizeof(p), 0x1400 - RF_PENDING_LIFETIME_S - 1, out, sizeof(out)),
        RF_ERR_NOT_FOUND);
    p[20] = 'x'; /* padding not zero */
    assert_int_equal(rf_pending_parse(p, sizeof(p), now, out, sizeof(out)), RF_ERR_FORMAT);
    p[20] = 0;
    p[11] = 0; /* a NUL inside the codename */
    assert_int_equal(rf_pending_parse(p, sizeof(p), now, out, sizeof(out)), RF_ERR_FORMAT);
    p[11] = 'b';
    p[9] = 0; /* empty */
    assert_int_equal(rf_pending_parse(p, sizeof(p), now, out, sizeof(out)), RF_ERR_FORMAT);
    p[9] = 3;
    p[0] = 2; /* another version */
    assert_int_equal(rf_pending_parse(p, sizeof(p), now, out, sizeof(out)), RF_ERR_FORMAT);
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

/* A refused upload's streamed bytes count toward the day's byte quota (not
 * its messages), the counter stopping at the quota; what is left says so. */
static void refused_bytes_count(void **state)
{
    (void)state;
    struct rf_sessions *s = NULL;
    struct rf_source src;
    struct rf_source_keys keys;
    char tok[RF_SESSION_TOKEN_B64], tok2[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_sessions_new(&s, 8, 100000), 0);
    rf_sessions_set_quota(s, 3, 1000);
    make_source(&src, &keys, 1);
    assert_int_equal(rf_session_create(s, &src, &keys, tok), 0);
    assert_int_equal(rf_session_create(s, &src, &keys, tok2), 0);
    assert_int_equal(rf_session_get(s, tok, view), 0);
    assert_int_equal(rf_session_bytes_left(s, view), 1000);
    assert_true(rf_session_msgs_left(s, view));

    assert_int_equal(rf_session_count_refused(s, tok, 400), 0);
    assert_int_equal(rf_session_count_sent(s, tok, 700), RF_ERR_LIMIT); /* 400 + 700 > 1000 */
    assert_int_equal(rf_session_count_sent(s, tok, 600), 0);
    assert_int_equal(rf_session_get(s, tok, view), 0);
    assert_int_equal(view->sent_today_msgs, 1); /* the refused one is no message */
    assert_int_equal(view->sent_today_bytes, 1000);
    assert_int_equal(rf_session_bytes_left(s, view), 0);
    assert_true(rf_session_msgs_left(s, view));
    assert_int_equal(rf_session_count_sent(s, tok, 1), RF_ERR_LIMIT);

    /* the counter stops at the quota, whatever is charged */
    assert_int_equal(rf_session_count_refused(s, tok, UINT64_MAX), 0);
    assert_int_equal(rf_session_get(s, tok, view), 0);
    assert_int_equal(view->sent_today_bytes, 1000);
    assert_int_equal(rf_session_count_refused(s, tok2, 999), 0);
    assert_int_equal(rf_session_count_refused(s, tok2, 2), 0);
    assert_int_equal(rf_session_get(s, tok2, view), 0);
    assert_int_equal(view->sent_today_bytes, 1000);
    assert_int_equal(view->sent_today_msgs, 0);

    /* another session of the same person is not charged; a gone one is not found */
    char tok3[RF_SESSION_TOKEN_B64];
    assert_int_equal(rf_session_create(s, &src, &keys, tok3), 0);
    assert_int_equal(rf_session_get(s, tok3, view), 0);
    assert_int_equal(rf_session_bytes_left(s, view), 1000);
    assert_int_equal(rf_session_count_refused(s, "nope", 1), RF_ERR_NOT_FOUND);
    rf_session_end(s, tok3);
    assert_int_equal(rf_session_count_refused(s, tok3, 1), RF_ERR_NOT_FOUND);
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
        cmocka_unit_test(full_table_answers_busy_and_keeps_live_sessions),
        cmocka_unit_test(reaper_wipes_expired_keys_without_their_token),
        cmocka_unit_test(reap_period_follows_idle_timeout),
        cmocka_unit_test(pending_sealed_in_the_form),
        cmocka_unit_test(pending_plaintext_parser),
        cmocka_unit_test(daily_quota),
        cmocka_unit_test(refused_bytes_count),
        cmocka_unit_test(enroll_token_hash_is_blake2b_of_text),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
