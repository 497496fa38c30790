/* casekey_test.c - case keys and events version 2 (docs/protocol.md 12):
 * a CASEKEY object sealed to two members opens, parses and verifies for its
 * case and gives the key that opens the case's v2 events, whose signed event
 * inside verifies as before; an event under a key we do not hold, under
 * another key with the same id, moved to another case, with any byte of its
 * header or ciphertext changed, cut short at every length, too long, with
 * another version, or with bad padding is refused, each with its own error;
 * a CASEKEY plaintext cut short, too long, with another magic, version, case
 * or a forged signature is refused; v1 (envelope) and v2 are told apart by
 * their first bytes. */
#include "lib/buf.h"
#include "lib/casekey.h"
#include "lib/envelope.h"
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
static uint8_t *keys; /* two case keys, secure */
static uint8_t ids[2][RF_CASEKEY_ID_BYTES];

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
    keys = sodium_malloc(2 * RF_CASEKEY_BYTES);
    if (alice == NULL || bob == NULL || keys == NULL)
        return -1;
    if (rf_staff_keys_generate(alice, "Alice") != 0 || rf_staff_keys_generate(bob, "Bob") != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        rf_casekey_new(keys + i * RF_CASEKEY_BYTES);
        rf_casekey_id(ids[i], keys + i * RF_CASEKEY_BYTES);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sodium_free(alice);
    sodium_free(bob);
    sodium_free(keys);
    return 0;
}

/* A table holding the first nkeys keys. */
static struct rf_casekey_table table(size_t nkeys)
{
    struct rf_casekey_table t = {(const uint8_t(*)[RF_CASEKEY_BYTES])keys,
                                 (const uint8_t(*)[RF_CASEKEY_ID_BYTES])ids, nkeys};
    return t;
}

static void signed_event(struct rf_buf *ev, const char *case_id)
{
    rf_buf_init(ev, 1 << 20);
    assert_int_equal(rf_event_sign(ev, alice, case_id, (const uint8_t *)BODY, strlen(BODY)), 0);
}

/* A v2 event of CASE_A under key 0, and the signed event in it. */
static void sealed(struct rf_buf *ct, struct rf_buf *ev)
{
    signed_event(ev, CASE_A);
    rf_buf_init(ct, 1 << 20);
    assert_int_equal(rf_casekey_event_seal(ct, keys, CASE_A, ev->data, ev->len), 0);
}

static int open_with(const uint8_t *p, size_t n, const char *case_id, size_t nkeys)
{
    struct rf_casekey_table t = table(nkeys);
    struct rf_buf out;
    rf_buf_init_secure(&out, 1 << 20);
    int rc = rf_casekey_event_open(&out, p, n, case_id, rf_casekey_table_find, &t);
    if (rc != 0)
        assert_int_equal(out.len, 0);
    rf_buf_free(&out);
    return rc;
}

static void key_id_is_keyed_blake2b(void **state)
{
    (void)state;
    uint8_t want[8];
    crypto_generichash(want, 8, keys, 32, (const uint8_t *)"refuge-casekey-v1", 17);
    assert_memory_equal(ids[0], want, 8);
    assert_memory_not_equal(ids[0], ids[1], 8);
}

static void casekey_object_round_trip(void **state)
{
    (void)state;
    struct rf_buf plain, env, opened;
    rf_buf_init_secure(&plain, 4096);
    assert_int_equal(rf_casekey_encode(&plain, alice, CASE_A, 3, keys), 0);
    assert_int_equal(plain.len, RF_CASEKEY_OBJ_BYTES);
    /* sealed to both members as an object of kind 9, opened by Bob */
    uint8_t pks[2][32];
    memcpy(pks[0], alice->box_pk, 32);
    memcpy(pks[1], bob->box_pk, 32);
    rf_buf_init(&env, 1 << 20);
    assert_int_equal(rf_envelope_seal(&env, RF_KIND_CASEKEY, (const uint8_t(*)[32])pks, 2,
                                      plain.data, plain.len),
                     0);
    rf_buf_init_secure(&opened, 4096);
    uint8_t kind = 0;
    assert_int_equal(rf_envelope_open(&opened, &kind, bob->box_pk, bob->box_sk, env.data, env.len),
                     0);
    assert_int_equal(kind, RF_KIND_CASEKEY);
    struct rf_casekey_obj o;
    assert_int_equal(rf_casekey_verify(&o, opened.data, opened.len, CASE_A), 0);
    assert_string_equal(o.case_id, CASE_A);
    assert_int_equal(o.roster, 3);
    assert_memory_equal(o.key, keys, 32);
    assert_memory_equal(o.id, ids[0], 8);
    assert_memory_equal(o.maker, alice->sign_pk, 32);
    /* the key opens an event Alice seals under it, and the event verifies */
    struct rf_buf ct, ev, out;
    sealed(&ct, &ev);
    const uint8_t *k = o.key;
    struct rf_casekey_table t = {(const uint8_t(*)[32])k, (const uint8_t(*)[8])o.id, 1};
    rf_buf_init_secure(&out, 1 << 20);
    assert_int_equal(
        rf_casekey_event_open(&out, ct.data, ct.len, CASE_A, rf_casekey_table_find, &t), 0);
    assert_int_equal(out.len, ev.len);
    assert_memory_equal(out.data, ev.data, ev.len);
    uint8_t author[32];
    const uint8_t *body = NULL;
    size_t blen = 0;
    assert_int_equal(rf_event_verify(author, &body, &blen, out.data, out.len, CASE_A), 0);
    assert_memory_equal(author, alice->sign_pk, 32);
    /* kind 9 is known to the envelope; 6 and 8 are not */
    assert_true(rf_kind_known(RF_KIND_CASEKEY));
    assert_false(rf_kind_known(6));
    assert_false(rf_kind_known(8));
    rf_buf_free(&plain);
    rf_buf_free(&env);
    rf_buf_free(&opened);
    rf_buf_free(&ct);
    rf_buf_free(&ev);
    rf_buf_free(&out);
}

static void casekey_object_refused(void **state)
{
    (void)state;
    struct rf_buf plain;
    rf_buf_init_secure(&plain, 4096);
    assert_int_equal(rf_casekey_encode(&plain, alice, CASE_A, 3, keys), 0);
    struct rf_casekey_obj o;
    memset(&o, 0x5a, sizeof(o));
    struct rf_casekey_obj before = o;
    uint8_t *p = plain.data;
    size_t n = plain.len;
    /* another case: the object was moved */
    assert_int_equal(rf_casekey_parse(&o, p, n), 0);
    assert_int_equal(rf_casekey_check_case(&o, CASE_A), 0);
    assert_int_equal(rf_casekey_check_case(&o, CASE_B), RF_ERR_PROTOCOL);
    assert_int_equal(rf_casekey_check_case(&o, "short"), RF_ERR_INVALID);
    assert_int_equal(rf_casekey_verify(&o, p, n, CASE_B), RF_ERR_PROTOCOL);
    assert_int_equal(rf_casekey_verify(&o, p, n, "k7q2m4x9a!"), RF_ERR_INVALID);
    /* cut short at every length, and one byte too long */
    memcpy(&o, &before, sizeof(o));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(rf_casekey_parse(&o, p, i), RF_ERR_TRUNCATED);
    assert_memory_equal(&o, &before, sizeof(o));
    assert_int_equal(rf_buf_put_u8(&plain, 0), 0);
    p = plain.data;
    assert_int_equal(rf_casekey_parse(&o, p, n + 1), RF_ERR_FORMAT);
    /* every byte changed: framing error or a signature that fails */
    for (size_t i = 0; i < n; i++) {
        p[i] ^= 0x01;
        int want = i < 4 ? RF_ERR_FORMAT : i == 4 ? RF_ERR_VERSION : RF_ERR_SIGNATURE;
        if (i >= 5 && i < 15) /* the case id: another case, or no case id at all */
            want = (p[i] >= 'a' && p[i] <= 'z') || (p[i] >= '0' && p[i] <= '9') ? RF_ERR_PROTOCOL
                                                                                : RF_ERR_FORMAT;
        assert_int_equal(rf_casekey_verify(&o, p, n, CASE_A), want);
        p[i] ^= 0x01;
    }
    assert_memory_equal(&o, &before, sizeof(o));
    /* a case id byte that is no letter or digit, roster 0 */
    p[7] = '/';
    assert_int_equal(rf_casekey_parse(&o, p, n), RF_ERR_FORMAT);
    p[7] = CASE_A[2];
    memset(p + 47, 0, 4);
    assert_int_equal(rf_casekey_parse(&o, p, n), RF_ERR_FORMAT);
    /* Bob's signature under Alice's key */
    struct rf_buf forged;
    rf_buf_init_secure(&forged, 4096);
    assert_int_equal(rf_casekey_encode(&forged, bob, CASE_A, 3, keys), 0);
    memcpy(forged.data + 51, alice->sign_pk, 32);
    assert_int_equal(rf_casekey_verify(&o, forged.data, forged.len, CASE_A), RF_ERR_SIGNATURE);
    /* encode refuses what it cannot write */
    size_t len = forged.len;
    assert_int_equal(rf_casekey_encode(&forged, bob, "k7q2m4x9a", 3, keys), RF_ERR_INVALID);
    assert_int_equal(rf_casekey_encode(&forged, bob, CASE_A, 0, keys), RF_ERR_INVALID);
    assert_int_equal(forged.len, len);
    rf_buf_free(&forged);
    rf_buf_free(&plain);
}

static void event_round_trip_and_version(void **state)
{
    (void)state;
    struct rf_buf ct, ev;
    sealed(&ct, &ev);
    /* padded as an envelope pads: a 271-byte signed event -> 272 */
    assert_int_equal(ct.len, RF_EV2_HEADER_BYTES + rf_envelope_padded_len(ev.len) + 16);
    assert_memory_equal(ct.data + 4, ids[0], 8);
    assert_int_equal(open_with(ct.data, ct.len, CASE_A, 2), 0);
    assert_int_equal(rf_casekey_event_version(ct.data, ct.len), 2);
    uint8_t id[8];
    assert_int_equal(rf_casekey_event_keyid(id, ct.data, ct.len), 0);
    assert_memory_equal(id, ids[0], 8);
    /* a version 1 event (an envelope) */
    struct rf_buf env;
    rf_buf_init(&env, 1 << 20);
    assert_int_equal(rf_envelope_seal(&env, RF_KIND_EVENT, (const uint8_t(*)[32])alice->box_pk, 1,
                                      ev.data, ev.len),
                     0);
    assert_int_equal(rf_casekey_event_version(env.data, env.len), 1);
    assert_int_equal(open_with(env.data, env.len, CASE_A, 2), RF_ERR_FORMAT);
    assert_int_equal(rf_casekey_event_version(env.data, 3), RF_ERR_TRUNCATED);
    assert_int_equal(rf_casekey_event_version((const uint8_t *)"RFE3", 4), RF_ERR_VERSION);
    assert_int_equal(rf_casekey_event_version((const uint8_t *)"RFGV", 4), RF_ERR_FORMAT);
    /* two seals of one event differ (random nonce) and both open */
    struct rf_buf ct2;
    rf_buf_init(&ct2, 1 << 20);
    assert_int_equal(rf_casekey_event_seal(&ct2, keys, CASE_A, ev.data, ev.len), 0);
    assert_memory_not_equal(ct2.data + 12, ct.data + 12, 24);
    assert_int_equal(open_with(ct2.data, ct2.len, CASE_A, 1), 0);
    /* a signed event of the largest size round-trips; larger is refused */
    struct rf_buf big, bigct, out;
    uint8_t *body = malloc(RF_EVENT_BODY_MAX);
    memset(body, 'a', RF_EVENT_BODY_MAX);
    rf_buf_init(&big, 1 << 20);
    assert_int_equal(rf_event_sign(&big, alice, CASE_A, body, RF_EVENT_BODY_MAX), 0);
    rf_buf_init(&bigct, 1 << 20);
    assert_int_equal(rf_casekey_event_seal(&bigct, keys, CASE_A, big.data, big.len), 0);
    struct rf_casekey_table t = table(1);
    rf_buf_init_secure(&out, 1 << 20);
    assert_int_equal(
        rf_casekey_event_open(&out, bigct.data, bigct.len, CASE_A, rf_casekey_table_find, &t), 0);
    assert_int_equal(out.len, big.len);
    assert_memory_equal(out.data, big.data, big.len);
    size_t len = bigct.len;
    assert_int_equal(rf_buf_put_u8(&big, 'a'), 0);
    assert_int_equal(rf_casekey_event_seal(&bigct, keys, CASE_A, big.data, big.len), RF_ERR_LIMIT);
    assert_int_equal(rf_casekey_event_seal(&bigct, keys, CASE_A, big.data, 101), RF_ERR_TRUNCATED);
    assert_int_equal(rf_casekey_event_seal(&bigct, keys, "k7q2", big.data, 200), RF_ERR_INVALID);
    assert_int_equal(bigct.len, len);
    free(body);
    rf_buf_free(&big);
    rf_buf_free(&bigct);
    rf_buf_free(&out);
    rf_buf_free(&env);
    rf_buf_free(&ct);
    rf_buf_free(&ct2);
    rf_buf_free(&ev);
}

static void event_refused(void **state)
{
    (void)state;
    struct rf_buf ct, ev;
    sealed(&ct, &ev);
    uint8_t *p = ct.data;
    size_t n = ct.len;
    /* a key we do not hold; the right id with another key behind it */
    assert_int_equal(open_with(p, n, CASE_A, 0), RF_ERR_NOT_RECIPIENT);
    uint8_t *saved = sodium_malloc(32);
    memcpy(saved, keys, 32);
    memcpy(keys, keys + 32, 32); /* ids[0] now names key 1 */
    assert_int_equal(open_with(p, n, CASE_A, 1), RF_ERR_DECRYPT);
    memcpy(keys, saved, 32);
    sodium_free(saved);
    /* the header relabelled with key 1's id */
    memcpy(p + 4, ids[1], 8);
    assert_int_equal(open_with(p, n, CASE_A, 2), RF_ERR_DECRYPT);
    memcpy(p + 4, ids[0], 8);
    /* moved to another case */
    assert_int_equal(open_with(p, n, CASE_B, 2), RF_ERR_DECRYPT);
    assert_int_equal(open_with(p, n, "k7q2m4x9a", 2), RF_ERR_INVALID);
    /* every header byte flipped, and every 7th ciphertext byte */
    for (size_t i = 0; i < n; i += i < RF_EV2_HEADER_BYTES ? 1 : 7) {
        p[i] ^= 0x20;
        int want = i < 3    ? RF_ERR_FORMAT
                   : i == 3 ? RF_ERR_VERSION
                   : i < 12 ? RF_ERR_NOT_RECIPIENT /* no key has that id */
                            : RF_ERR_DECRYPT;
        assert_int_equal(open_with(p, n, CASE_A, 2), want);
        p[i] ^= 0x20;
    }
    /* cut short at every length: under the smallest event's length it is
     * truncated; above it (this event is 324 bytes), the tag fails */
    assert_int_equal(n, 324);
    for (size_t i = 0; i < n; i++) {
        int want = i < RF_EV2_MIN_BYTES ? RF_ERR_TRUNCATED : RF_ERR_DECRYPT;
        assert_int_equal(open_with(p, i, CASE_A, 2), want);
    }
    /* one byte more: the tag fails */
    assert_int_equal(rf_buf_put_u8(&ct, 0), 0);
    p = ct.data;
    assert_int_equal(open_with(p, n + 1, CASE_A, 2), RF_ERR_DECRYPT);
    /* longer than the largest event */
    size_t huge = RF_EV2_HEADER_BYTES + rf_envelope_padded_len(101 + 65536) + 17;
    uint8_t *h = calloc(1, huge);
    memcpy(h, p, RF_EV2_HEADER_BYTES);
    assert_int_equal(open_with(h, huge, CASE_A, 2), RF_ERR_LIMIT);
    assert_int_equal(open_with(h, huge - 1, CASE_A, 2), RF_ERR_DECRYPT);
    free(h);
    assert_int_equal(rf_casekey_event_open(NULL, p, n, CASE_A, rf_casekey_table_find, NULL),
                     RF_ERR_INVALID);
    rf_buf_free(&ct);
    rf_buf_free(&ev);
}

/* Authenticated plaintext whose padding is wrong: refused after the tag. */
static void seal_raw(struct rf_buf *ct, const uint8_t *plain, size_t padded)
{
    uint8_t nonce[24] = {0};
    rf_buf_init(ct, 1 << 20);
    assert_int_equal(rf_buf_reserve(ct, 36 + padded + 16), 0);
    memcpy(ct->data, "RFE2", 4);
    memcpy(ct->data + 4, ids[0], 8);
    memcpy(ct->data + 12, nonce, 24);
    uint8_t ad[22];
    memcpy(ad, ct->data, 12);
    memcpy(ad + 12, CASE_A, 10);
    unsigned long long clen = 0;
    assert_int_equal(crypto_aead_xchacha20poly1305_ietf_encrypt(ct->data + 36, &clen, plain, padded,
                                                                ad, 22, NULL, nonce, keys),
                     0);
    ct->len = 36 + (size_t)clen;
}

static void bad_padding_refused(void **state)
{
    (void)state;
    uint8_t plain[272];
    struct rf_buf ct;
    memset(plain, 'x', sizeof(plain));
    /* no marker at all */
    seal_raw(&ct, plain, 256);
    assert_int_equal(open_with(ct.data, ct.len, CASE_A, 1), RF_ERR_FORMAT);
    rf_buf_free(&ct);
    /* marker, but 256 bytes of padding for a 60-byte text (too short for an event) */
    memset(plain + 60, 0, sizeof(plain) - 60);
    plain[60] = 0x80;
    seal_raw(&ct, plain, 256);
    assert_int_equal(open_with(ct.data, ct.len, CASE_A, 1), RF_ERR_FORMAT);
    rf_buf_free(&ct);
    /* a 200-byte text padded to 272 instead of 256 */
    memset(plain, 'x', 200);
    plain[200] = 0x80;
    memset(plain + 201, 0, sizeof(plain) - 201);
    seal_raw(&ct, plain, 272);
    assert_int_equal(open_with(ct.data, ct.len, CASE_A, 1), RF_ERR_FORMAT);
    rf_buf_free(&ct);
    /* the same, padded right: opens (this module does not verify the event) */
    seal_raw(&ct, plain, 256);
    assert_int_equal(open_with(ct.data, ct.len, CASE_A, 1), 0);
    rf_buf_free(&ct);
}

/* Two keys with one id (made so on purpose): each is tried. */
static const uint8_t *two_same_id(void *ctx, const uint8_t id[8], size_t i)
{
    (void)id;
    const uint8_t *k = ctx;
    return i == 0 ? k + 32 : i == 1 ? k : NULL;
}

static void colliding_ids_each_tried(void **state)
{
    (void)state;
    struct rf_buf ct, ev, out;
    sealed(&ct, &ev);
    rf_buf_init_secure(&out, 1 << 20);
    assert_int_equal(rf_casekey_event_open(&out, ct.data, ct.len, CASE_A, two_same_id, keys), 0);
    assert_memory_equal(out.data, ev.data, ev.len);
    rf_buf_free(&out);
    rf_buf_free(&ct);
    rf_buf_free(&ev);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(key_id_is_keyed_blake2b),
        cmocka_unit_test(casekey_object_round_trip),
        cmocka_unit_test(casekey_object_refused),
        cmocka_unit_test(event_round_trip_and_version),
        cmocka_unit_test(event_refused),
        cmocka_unit_test(bad_padding_refused),
        cmocka_unit_test(colliding_ids_each_tried),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
