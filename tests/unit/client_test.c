/* client_test.c - the staff client's local pieces and the API's replay
 * cache: a nonce is refused while it could be replayed and the cache refuses
 * rather than forgets when full; text from a stranger cannot reach the
 * terminal with escapes; the roster chain is accepted only from the pinned
 * admin and only when each link is signed by an admin of the one before; the
 * ciphertext cache groups objects into cases and streams them back; the CLI
 * answers usage errors with exit code 2. */
#include "client/cache.h"
#include "client/client.h"
#include "client/out.h"
#include "client/trust.h"
#include "lib/err.h"
#include "lib/roster.h"
#include "server/api_nonce.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
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

static void make_roster(struct rf_roster *r, uint32_t version, const uint8_t prev[32])
{
    memset(r, 0, sizeof(*r));
    r->version = version;
    if (prev)
        memcpy(r->prev_hash, prev, 32);
}

static void add_member(struct rf_roster *r, const struct rf_staff_keys *k, uint8_t role)
{
    struct rf_member *m = &r->members[r->n++];
    snprintf(m->name, sizeof(m->name), "%s", k->name);
    m->role = role;
    memcpy(m->box_pk, k->box_pk, 32);
    memcpy(m->sign_pk, k->sign_pk, 32);
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
        {1, "aaaa", RF_KIND_MESSAGE, 300, 20000},
        {2, "bbbb", RF_KIND_MESSAGE, 300, 20001},
        {3, "aaaa", RF_KIND_FILE, 5, 20002},
        {4, "aaaa", RF_KIND_REPLY, 300, 20003},
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
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(nonce_replay_refused_until_expiry),
        cmocka_unit_test(stranger_text_is_sanitised),
        cmocka_unit_test(roster_chain_from_pinned_admin_only),
        cmocka_unit_test(cache_groups_cases_and_streams),
        cmocka_unit_test(cli_usage_errors_exit_2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
