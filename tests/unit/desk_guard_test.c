/*
 * desk_guard_test.c - the desk's request guard (client/desk_guard.h): every
 * decision a browser, another site or a DNS-rebinding page can force.
 */
#include "client/desk_guard.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#define PORT 45123

struct fix {
    struct rf_desk_guard g;
};

static int setup(void **state)
{
    static struct fix f;
    assert_int_equal(rf_desk_guard_init(&f.g, PORT), 0);
    *state = &f;
    return 0;
}

static struct rf_desk_req get(const char *path)
{
    struct rf_desk_req r = {.method = "GET", .path = path, .host = "127.0.0.1:45123"};
    return r;
}

/* Trades the token; the guard now has a session. */
static void open_session(struct rf_desk_guard *g)
{
    struct rf_desk_req r = get("/open");
    r.token = g->token;
    assert_int_equal(rf_desk_guard_check(g, &r), RF_DESK_REDEEM);
}

static void test_token_format(void **state)
{
    struct fix *f = *state;
    /* 32 random bytes, base64url without padding: 43 characters */
    assert_int_equal(strlen(f->g.token), 43);
    for (const char *p = f->g.token; *p; p++)
        assert_true(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p) != NULL);
    struct rf_desk_guard other;
    rf_desk_guard_init(&other, PORT);
    assert_string_not_equal(other.token, f->g.token);
}

static void test_token_once(void **state)
{
    struct fix *f = *state;
    char token[RF_DESK_SECRET_B64];
    memcpy(token, f->g.token, sizeof(token));
    struct rf_desk_req r = get("/open");
    r.token = token;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_REDEEM);
    assert_int_equal(strlen(f->g.cookie), 43);
    assert_int_equal(strlen(f->g.csrf), 43);
    assert_string_not_equal(f->g.cookie, token);
    assert_string_not_equal(f->g.csrf, f->g.cookie);
    /* replayed: refused, and the session is not replaced */
    char cookie[RF_DESK_SECRET_B64];
    memcpy(cookie, f->g.cookie, sizeof(cookie));
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_TOKEN);
    assert_string_equal(f->g.cookie, cookie);
}

static void test_token_wrong_or_missing(void **state)
{
    struct fix *f = *state;
    struct rf_desk_req r = get("/open");
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_TOKEN);
    char wrong[RF_DESK_SECRET_B64];
    memcpy(wrong, f->g.token, sizeof(wrong));
    wrong[5] = wrong[5] == 'A' ? 'B' : 'A';
    r.token = wrong;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_TOKEN);
    wrong[42] = 0; /* a prefix */
    memcpy(wrong, f->g.token, 42);
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_TOKEN);
    r.token = "";
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_TOKEN);
    /* a POST to /open with the right token is not a way in either */
    r = get("/open");
    r.method = "POST";
    r.token = f->g.token;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_TOKEN);
    /* none of that spent it */
    open_session(&f->g);
}

static void test_host(void **state)
{
    struct fix *f = *state;
    static const char *const bad[] = {
        NULL,
        "",
        "127.0.0.1",
        "127.0.0.1:45124",
        "evil.example:45123",
        "127.0.0.1.evil.example:45123",
        "localhost.:45123",
        "LOCALHOST:45123x",
        "[::1]:45123",
        "0.0.0.0:45123",
        "127.0.0.2:45123",
        "127.0.0.1:45123 ",
    };
    char token[RF_DESK_SECRET_B64];
    memcpy(token, f->g.token, sizeof(token));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rf_desk_req r = get("/open");
        r.host = bad[i];
        r.token = token;
        assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_HOST);
    }
    assert_int_equal(f->g.token_spent, 0);
    struct rf_desk_req r = get("/open");
    r.host = "localhost:45123";
    r.token = token;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_REDEEM);
    /* with the session's cookie, a rebound Host is still refused */
    r = get("/");
    r.cookie = f->g.cookie;
    r.host = "attacker.example:45123";
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_HOST);
}

static void test_origin(void **state)
{
    struct fix *f = *state;
    open_session(&f->g);
    static const char *const bad[] = {
        "http://evil.example", "https://127.0.0.1:45123", "http://127.0.0.1:45124", "null",
        "http://127.0.0.1",    "http://localhost:45123/", "http://[::1]:45123",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct rf_desk_req r = get("/");
        r.method = "POST";
        r.origin = bad[i];
        r.cookie = f->g.cookie;
        r.csrf = f->g.csrf;
        assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_ORIGIN);
    }
    struct rf_desk_req r = get("/");
    r.method = "POST";
    r.cookie = f->g.cookie;
    r.csrf = f->g.csrf;
    r.origin = "http://127.0.0.1:45123";
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_ALLOW);
    r.origin = "http://localhost:45123";
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_ALLOW);
}

static void test_cookie(void **state)
{
    struct fix *f = *state;
    struct rf_desk_req r = get("/");
    /* before any session, nothing passes, not even an empty cookie */
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_COOKIE);
    r.cookie = "";
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_COOKIE);
    open_session(&f->g);
    r.cookie = NULL;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_COOKIE);
    r.cookie = f->g.csrf; /* the CSRF token is not a cookie */
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_COOKIE);
    r.cookie = f->g.cookie;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_ALLOW);
    /* after lock, the old cookie is dead and the token cannot be traded */
    char cookie[RF_DESK_SECRET_B64];
    memcpy(cookie, f->g.cookie, sizeof(cookie));
    rf_desk_guard_end(&f->g);
    r.cookie = cookie;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_COOKIE);
}

static void test_csrf(void **state)
{
    struct fix *f = *state;
    open_session(&f->g);
    struct rf_desk_req r = get("/case/abc/reply");
    r.method = "POST";
    r.cookie = f->g.cookie;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_CSRF);
    r.csrf = "";
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_CSRF);
    r.csrf = f->g.cookie; /* the cookie is not the CSRF token */
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_CSRF);
    r.csrf = f->g.csrf;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_ALLOW);
    r.method = "PUT";
    r.csrf = NULL;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_CSRF);
    r.method = NULL;
    assert_int_equal(rf_desk_guard_check(&f->g, &r), RF_DESK_DENY_CSRF);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_token_format, setup),
        cmocka_unit_test_setup(test_token_once, setup),
        cmocka_unit_test_setup(test_token_wrong_or_missing, setup),
        cmocka_unit_test_setup(test_host, setup),
        cmocka_unit_test_setup(test_origin, setup),
        cmocka_unit_test_setup(test_cookie, setup),
        cmocka_unit_test_setup(test_csrf, setup),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
