/* keyfile_test.c - a key file opens only with its passphrase, any altered byte
 * is refused, a hostile file cannot make us spend unbounded memory or time,
 * and fingerprints are stable and readable. */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/keyfile.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>
#include <time.h>

#define OPS 1
#define MEM 8192
#define PASS "correct horse battery staple"

static struct rf_staff_keys *keys_new(void)
{
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    assert_non_null(k);
    return k;
}

static void write_file(struct rf_buf *f, const struct rf_staff_keys *k)
{
    rf_buf_init(f, RF_KEYFILE_MAX);
    assert_int_equal(rf_keyfile_write(f, k, PASS, strlen(PASS), OPS, MEM), 0);
}

static void round_trip(void **state)
{
    (void)state;
    struct rf_staff_keys *k = keys_new(), *r = keys_new();
    assert_int_equal(rf_staff_keys_generate(k, "Олена"), 0);
    struct rf_buf f;
    write_file(&f, k);
    assert_int_equal(f.len, 4 + 1 + 8 + 8 + 16 + 24 + 16 + 1 + strlen("Олена") + 64 + 32);
    assert_int_equal(rf_keyfile_read(r, f.data, f.len, PASS, strlen(PASS)), 0);
    assert_string_equal(r->name, "Олена");
    assert_memory_equal(r->sign_pk, k->sign_pk, 32);
    assert_memory_equal(r->sign_sk, k->sign_sk, 64);
    assert_memory_equal(r->box_pk, k->box_pk, 32);
    assert_memory_equal(r->box_sk, k->box_sk, 32);
    /* the keys work: a signature by the read key verifies under the original */
    uint8_t sig[64];
    crypto_sign_detached(sig, NULL, (const uint8_t *)"m", 1, r->sign_sk);
    assert_int_equal(crypto_sign_verify_detached(sig, (const uint8_t *)"m", 1, k->sign_pk), 0);
    rf_buf_free(&f);
    sodium_free(k);
    sodium_free(r);
}

static void wrong_passphrase(void **state)
{
    (void)state;
    struct rf_staff_keys *k = keys_new(), *r = keys_new();
    assert_int_equal(rf_staff_keys_generate(k, "a"), 0);
    struct rf_buf f;
    write_file(&f, k);
    assert_int_equal(rf_keyfile_read(r, f.data, f.len, "wrong", 5), RF_ERR_PASSPHRASE);
    assert_int_equal(rf_keyfile_read(r, f.data, f.len, PASS, strlen(PASS) - 1), RF_ERR_PASSPHRASE);
    assert_int_equal(rf_keyfile_read(r, f.data, f.len, "", 0), RF_ERR_PASSPHRASE);
    uint8_t zero[sizeof(*r)] = {0};
    assert_memory_equal(r, zero, sizeof(*r)); /* nothing left behind */
    rf_buf_free(&f);
    sodium_free(k);
    sodium_free(r);
}

static void every_flipped_byte_refused(void **state)
{
    (void)state;
    struct rf_staff_keys *k = keys_new(), *r = keys_new();
    assert_int_equal(rf_staff_keys_generate(k, "caseworker"), 0);
    struct rf_buf f;
    write_file(&f, k);
    for (size_t i = 0; i < f.len; i++) {
        f.data[i] ^= 0x04;
        int rc = rf_keyfile_read(r, f.data, f.len, PASS, strlen(PASS));
        if (i < 4)
            assert_int_equal(rc, RF_ERR_FORMAT);
        else if (i == 4)
            assert_int_equal(rc, RF_ERR_VERSION);
        else if (i < 21) /* opslimit, memlimit: out of range or a different key */
            assert_true(rc == RF_ERR_LIMIT || rc == RF_ERR_PASSPHRASE || rc == RF_ERR_FORMAT);
        else
            assert_int_equal(rc, RF_ERR_PASSPHRASE);
        f.data[i] ^= 0x04;
    }
    assert_int_equal(rf_keyfile_read(r, f.data, f.len - 1, PASS, strlen(PASS)), RF_ERR_PASSPHRASE);
    assert_int_equal(rf_keyfile_read(r, f.data, 40, PASS, strlen(PASS)), RF_ERR_FORMAT);
    assert_int_equal(rf_keyfile_read(r, f.data, 0, PASS, strlen(PASS)), RF_ERR_FORMAT);
    assert_int_equal(rf_keyfile_read(r, f.data, f.len, PASS, strlen(PASS)), 0);
    rf_buf_free(&f);
    sodium_free(k);
    sodium_free(r);
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

/* A file that asks for a terabyte of memory or a million passes is refused
 * before Argon2id runs. */
static void hostile_params_refused_fast(void **state)
{
    (void)state;
    struct rf_staff_keys *k = keys_new(), *r = keys_new();
    assert_int_equal(rf_staff_keys_generate(k, "a"), 0);
    struct rf_buf f;
    write_file(&f, k);
    const struct {
        uint64_t ops, mem;
        int err;
    } cases[] = {
        {11, MEM, RF_ERR_LIMIT},
        {1000000, MEM, RF_ERR_LIMIT},
        {OPS, (1ULL << 30) + 1024, RF_ERR_LIMIT},
        {OPS, MEM + 1, RF_ERR_FORMAT},
        {OPS, 1ULL << 40, RF_ERR_LIMIT},
        {UINT64_MAX, UINT64_MAX, RF_ERR_LIMIT},
        {0, MEM, RF_ERR_FORMAT},
        {OPS, 0, RF_ERR_FORMAT},
    };
    clock_t t0 = clock();
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        put_be64(f.data + 5, cases[i].ops);
        put_be64(f.data + 13, cases[i].mem);
        assert_int_equal(rf_keyfile_read(r, f.data, f.len, PASS, strlen(PASS)), cases[i].err);
    }
    assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 0.1);
    /* the writer refuses them too */
    rf_buf_reset(&f);
    assert_int_equal(rf_keyfile_write(&f, k, PASS, strlen(PASS), 11, MEM), RF_ERR_INVALID);
    assert_int_equal(f.len, 0);
    /* an oversized file or passphrase */
    uint8_t big[RF_KEYFILE_MAX + 1] = {0};
    assert_int_equal(rf_keyfile_read(r, big, sizeof(big), PASS, strlen(PASS)), RF_ERR_LIMIT);
    assert_int_equal(rf_keyfile_read(r, big, 100, (const char *)big, RF_PASSPHRASE_MAX + 1),
                     RF_ERR_LIMIT);
    rf_buf_free(&f);
    sodium_free(k);
    sodium_free(r);
}

static void default_cost_works(void **state)
{
    (void)state;
    struct rf_staff_keys *k = keys_new(), *r = keys_new();
    assert_int_equal(rf_staff_keys_generate(k, "b"), 0);
    struct rf_buf f;
    rf_buf_init(&f, RF_KEYFILE_MAX);
    assert_int_equal(rf_keyfile_write(&f, k, "pw", 2, 2, 32ULL << 20), 0);
    assert_int_equal(rf_keyfile_read(r, f.data, f.len, "pw", 2), 0);
    assert_memory_equal(r->box_sk, k->box_sk, 32);
    rf_buf_free(&f);
    sodium_free(k);
    sodium_free(r);
}

static void names_checked(void **state)
{
    (void)state;
    struct rf_staff_keys *k = keys_new();
    char long_name[RF_NAME_MAX + 2];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = 0;
    assert_int_equal(rf_staff_keys_generate(k, ""), RF_ERR_INVALID);
    assert_int_equal(rf_staff_keys_generate(k, long_name), RF_ERR_INVALID);
    assert_int_equal(rf_staff_keys_generate(k, "bad\xff"), RF_ERR_INVALID);
    assert_int_equal(rf_staff_keys_generate(k, "line\nbreak"), RF_ERR_INVALID);
    long_name[RF_NAME_MAX] = 0;
    assert_int_equal(rf_staff_keys_generate(k, long_name), 0);
    sodium_free(k);
}

static void fingerprint_format(void **state)
{
    (void)state;
    uint8_t pk[32] = {0}, box[32] = {0};
    char fp[48], fp2[48];
    assert_int_equal(rf_fingerprint(fp, sizeof(fp), pk, box), 0);
    assert_int_equal(strlen(fp), RF_FINGERPRINT_LEN);
    for (int i = 0; i < RF_FINGERPRINT_LEN; i++) {
        if (i % 6 == 5)
            assert_int_equal(fp[i], ' ');
        else
            assert_true(fp[i] >= '0' && fp[i] <= '9');
    }
    assert_int_equal(rf_fingerprint(fp2, sizeof(fp2), pk, box), 0);
    assert_string_equal(fp, fp2);
    pk[31] = 1;
    assert_int_equal(rf_fingerprint(fp2, sizeof(fp2), pk, box), 0);
    assert_string_not_equal(fp, fp2);
    assert_int_equal(rf_fingerprint(fp2, 47, pk, box), RF_ERR_LIMIT);
}

/* Finding 1 of issue 13: the fingerprint covers the encryption key too, so
 * a server that swaps only box_pk changes what the admin reads. */
static void fingerprint_covers_box_key(void **state)
{
    (void)state;
    uint8_t sign[32], box[32], swapped[32], h1[40], h2[40];
    char fp[48], fp2[48];
    randombytes_buf(sign, 32);
    randombytes_buf(box, 32);
    memcpy(swapped, box, 32);
    for (int i = 0; i < 32; i++) {
        swapped[i] ^= 0x01;
        assert_int_equal(rf_fingerprint(fp, sizeof(fp), sign, box), 0);
        assert_int_equal(rf_fingerprint(fp2, sizeof(fp2), sign, swapped), 0);
        assert_string_not_equal(fp, fp2);
        swapped[i] ^= 0x01;
    }
    /* sign_pk and box_pk are not interchangeable */
    assert_int_equal(rf_fingerprint(fp2, sizeof(fp2), box, sign), 0);
    assert_string_not_equal(fp, fp2);
    assert_int_equal(rf_fingerprint_hash(h1, sign, box), 0);
    swapped[0] ^= 0x80;
    assert_int_equal(rf_fingerprint_hash(h2, sign, swapped), 0);
    assert_memory_not_equal(h1, h2, 40);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(wrong_passphrase),
        cmocka_unit_test(every_flipped_byte_refused),
        cmocka_unit_test(hostile_params_refused_fast),
        cmocka_unit_test(default_cost_works),
        cmocka_unit_test(names_checked),
        cmocka_unit_test(fingerprint_format),
        cmocka_unit_test(fingerprint_covers_box_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
