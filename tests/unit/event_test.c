/* event_test.c - a signed case event verifies for its case and names its
 * author; an event moved to another case, altered in any byte, cut short,
 * with another magic or version, an empty, oversize or non-UTF-8 body, or
 * signed by someone else under the author's key, is refused. */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/event.h"
#include "lib/keyfile.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CASE_A "k7q2m4x9ab"
#define CASE_B "k7q2m4x9ac"

static struct rf_staff_keys *alice, *bob;

static const char BODY[] = "{\"v\":1,\"id\":\"00112233445566778899aabbccddeeff\",\"lamport\":3,"
                           "\"roster\":2,\"author\":\"Alice\",\"day\":20000,\"op\":\"note\","
                           "\"value\":\"Паспорт получен, ждём визу\"}";

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    alice = sodium_malloc(sizeof(*alice));
    bob = sodium_malloc(sizeof(*bob));
    if (alice == NULL || bob == NULL)
        return -1;
    if (rf_staff_keys_generate(alice, "Alice") != 0 || rf_staff_keys_generate(bob, "Bob") != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sodium_free(alice);
    sodium_free(bob);
    return 0;
}

static void sign(struct rf_buf *ev, const struct rf_staff_keys *k, const char *case_id,
                 const void *body, size_t n)
{
    rf_buf_init(ev, 1 << 20);
    assert_int_equal(rf_event_sign(ev, k, case_id, body, n), 0);
}

static int verify(const uint8_t *p, size_t n, const char *case_id)
{
    uint8_t pk[32];
    const uint8_t *body = NULL;
    size_t blen = 0;
    int rc = rf_event_verify(pk, &body, &blen, p, n, case_id);
    if (rc != 0) {
        assert_null(body);
        assert_int_equal(blen, 0);
    }
    return rc;
}

static void round_trip(void **state)
{
    (void)state;
    struct rf_buf ev;
    sign(&ev, alice, CASE_A, BODY, strlen(BODY));
    assert_int_equal(ev.len, RF_EVENT_HEADER_BYTES + strlen(BODY));
    assert_memory_equal(ev.data, "RFGV\x01", 5);
    uint8_t pk[32];
    const uint8_t *body = NULL;
    size_t blen = 0;
    assert_int_equal(rf_event_verify(pk, &body, &blen, ev.data, ev.len, CASE_A), 0);
    assert_memory_equal(pk, alice->sign_pk, 32);
    assert_int_equal(blen, strlen(BODY));
    assert_memory_equal(body, BODY, blen);
    assert_ptr_equal(body, ev.data + RF_EVENT_HEADER_BYTES); /* points into the input */
    /* Ed25519 is deterministic: the same event twice is the same bytes */
    struct rf_buf again;
    sign(&again, alice, CASE_A, BODY, strlen(BODY));
    assert_int_equal(again.len, ev.len);
    assert_memory_equal(again.data, ev.data, ev.len);
    rf_buf_free(&again);
    /* appended to what out already holds */
    rf_buf_init(&again, 1 << 20);
    assert_int_equal(rf_buf_put(&again, "xyz", 3), 0);
    assert_int_equal(rf_event_sign(&again, bob, "teamconfig", (const uint8_t *)"{}", 2), 0);
    assert_int_equal(again.len, 3 + RF_EVENT_HEADER_BYTES + 2);
    assert_int_equal(rf_event_verify(pk, &body, &blen, again.data + 3, again.len - 3, "teamconfig"),
                     0);
    assert_memory_equal(pk, bob->sign_pk, 32);
    rf_buf_free(&again);
    /* the largest body */
    uint8_t *big = malloc(RF_EVENT_BODY_MAX);
    assert_non_null(big);
    memset(big, 'a', RF_EVENT_BODY_MAX);
    struct rf_buf bigev;
    sign(&bigev, alice, CASE_A, big, RF_EVENT_BODY_MAX);
    assert_int_equal(verify(bigev.data, bigev.len, CASE_A), 0);
    rf_buf_free(&bigev);
    free(big);
    rf_buf_free(&ev);
}

static void wrong_case_refused(void **state)
{
    (void)state;
    struct rf_buf ev;
    sign(&ev, alice, CASE_A, BODY, strlen(BODY));
    assert_int_equal(verify(ev.data, ev.len, CASE_B), RF_ERR_SIGNATURE);
    assert_int_equal(verify(ev.data, ev.len, "K7Q2M4X9AB"), RF_ERR_SIGNATURE);
    /* case ids of another length or alphabet are a caller's mistake */
    const char *bad[] = {"k7q2m4x9a", "k7q2m4x9abc", "", "k7q2m4x9a-", "k7q2m 4x9a", NULL};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(verify(ev.data, ev.len, bad[i]), RF_ERR_INVALID);
        struct rf_buf out;
        rf_buf_init(&out, 1 << 20);
        assert_int_equal(rf_event_sign(&out, alice, bad[i], (const uint8_t *)"{}", 2),
                         RF_ERR_INVALID);
        assert_int_equal(out.len, 0);
        rf_buf_free(&out);
    }
    rf_buf_free(&ev);
}

static void flipped_byte_anywhere_refused(void **state)
{
    (void)state;
    struct rf_buf ev;
    sign(&ev, alice, CASE_A, BODY, strlen(BODY));
    for (size_t i = 0; i < ev.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            ev.data[i] ^= (uint8_t)(1u << bit);
            int rc = verify(ev.data, ev.len, CASE_A);
            if (i < 4)
                assert_int_equal(rc, RF_ERR_FORMAT);
            else if (i == 4)
                assert_int_equal(rc, RF_ERR_VERSION);
            else if (i < RF_EVENT_HEADER_BYTES)
                assert_int_equal(rc, RF_ERR_SIGNATURE);
            else /* a body byte: either no longer UTF-8 or no longer signed */
                assert_true(rc == RF_ERR_SIGNATURE || rc == RF_ERR_FORMAT);
            ev.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    assert_int_equal(verify(ev.data, ev.len, CASE_A), 0);
    rf_buf_free(&ev);
}

static void truncated_or_extended_refused(void **state)
{
    (void)state;
    struct rf_buf ev;
    sign(&ev, alice, CASE_A, BODY, strlen(BODY));
    for (size_t n = 0; n < ev.len; n++) {
        int rc = verify(ev.data, n, CASE_A);
        if (n <= RF_EVENT_HEADER_BYTES)
            assert_int_equal(rc, RF_ERR_TRUNCATED);
        else /* a shorter body is another message; a cut character is bad UTF-8 */
            assert_true(rc == RF_ERR_SIGNATURE || rc == RF_ERR_FORMAT);
    }
    assert_int_equal(verify(NULL, 0, CASE_A), RF_ERR_TRUNCATED);
    assert_int_equal(rf_buf_put(&ev, " ", 1), 0);
    assert_int_equal(verify(ev.data, ev.len, CASE_A), RF_ERR_SIGNATURE);
    rf_buf_free(&ev);
}

static void wrong_magic_or_version_refused(void **state)
{
    (void)state;
    struct rf_buf ev;
    sign(&ev, alice, CASE_A, BODY, strlen(BODY));
    memcpy(ev.data, "RFGE", 4); /* an envelope's magic */
    assert_int_equal(verify(ev.data, ev.len, CASE_A), RF_ERR_FORMAT);
    assert_int_equal(verify(ev.data, 2, CASE_A), RF_ERR_TRUNCATED); /* "RF" could still be */
    assert_int_equal(verify(ev.data, 4, CASE_A), RF_ERR_FORMAT);
    memcpy(ev.data, "RFGV", 4);
    const uint8_t versions[] = {0, 2, 0xff};
    for (size_t i = 0; i < sizeof(versions); i++) {
        ev.data[4] = versions[i];
        assert_int_equal(verify(ev.data, ev.len, CASE_A), RF_ERR_VERSION);
        assert_int_equal(verify(ev.data, 5, CASE_A), RF_ERR_VERSION);
    }
    rf_buf_free(&ev);
}

static void bad_bodies_refused(void **state)
{
    (void)state;
    struct rf_buf out;
    rf_buf_init(&out, 1 << 20);
    uint8_t *big = malloc(RF_EVENT_BODY_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', RF_EVENT_BODY_MAX + 1);
    assert_int_equal(rf_event_sign(&out, alice, CASE_A, big, RF_EVENT_BODY_MAX + 1), RF_ERR_LIMIT);
    assert_int_equal(rf_event_sign(&out, alice, CASE_A, big, 0), RF_ERR_FORMAT);
    const char *bad[] = {"\xff", "ab\xc3", "\xc0\xaf", "\xed\xa0\x80", "a\0b"};
    const size_t badn[] = {1, 3, 2, 3, 3};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rf_event_sign(&out, alice, CASE_A, (const uint8_t *)bad[i], badn[i]),
                         RF_ERR_FORMAT);
    assert_int_equal(out.len, 0);

    /* hand-made events carrying such bodies, validly signed over the same
     * message layout, are refused by the framing rules before the signature */
    struct rf_buf msg, ev;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]) + 1; i++) {
        const uint8_t *b = i < 5 ? (const uint8_t *)bad[i] : big;
        size_t n = i < 5 ? badn[i] : RF_EVENT_BODY_MAX + 1;
        rf_buf_init(&msg, 1 << 20);
        rf_buf_init(&ev, 1 << 20);
        assert_int_equal(rf_buf_put(&msg, "refuge-event-v1" CASE_A, 25), 0);
        assert_int_equal(rf_buf_put(&msg, b, n), 0);
        uint8_t sig[64];
        crypto_sign_detached(sig, NULL, msg.data, msg.len, alice->sign_sk);
        assert_int_equal(rf_buf_put(&ev, "RFGV\x01", 5), 0);
        assert_int_equal(rf_buf_put(&ev, alice->sign_pk, 32), 0);
        assert_int_equal(rf_buf_put(&ev, sig, 64), 0);
        assert_int_equal(rf_buf_put(&ev, b, n), 0);
        assert_int_equal(verify(ev.data, ev.len, CASE_A), i < 5 ? RF_ERR_FORMAT : RF_ERR_LIMIT);
        rf_buf_free(&msg);
        rf_buf_free(&ev);
    }
    free(big);
    rf_buf_free(&out);
}

static void author_cannot_be_forged(void **state)
{
    (void)state;
    struct rf_buf ev;
    sign(&ev, bob, CASE_A, BODY, strlen(BODY));
    /* Bob claims to be Alice: put her key in the author field */
    memcpy(ev.data + 5, alice->sign_pk, 32);
    assert_int_equal(verify(ev.data, ev.len, CASE_A), RF_ERR_SIGNATURE);
    /* a small-order or zero key with a zero signature */
    memset(ev.data + 5, 0, 32 + 64);
    assert_int_equal(verify(ev.data, ev.len, CASE_A), RF_ERR_SIGNATURE);
    rf_buf_free(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(wrong_case_refused),
        cmocka_unit_test(flipped_byte_anywhere_refused),
        cmocka_unit_test(truncated_or_extended_refused),
        cmocka_unit_test(wrong_magic_or_version_refused),
        cmocka_unit_test(bad_bodies_refused),
        cmocka_unit_test(author_cannot_be_forged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
