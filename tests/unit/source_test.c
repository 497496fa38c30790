/* source_test.c - the same codename always opens the same account, whatever
 * its case or spacing; any other codename, salt or lookup key gives unrelated
 * keys; the derivation matches the byte-for-byte vectors of docs/codename.md
 * (cross-checked there against the reference argon2 CLI, Python's BLAKE2b and
 * an independent X25519); nonsense cost parameters are refused. */
#include "lib/codename.h"
#include "lib/err.h"
#include "lib/source.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

#define VEC_MEMLIMIT (8ULL * 1024 * 1024)

/* The parameters of every vector in docs/codename.md. */
static void vector_params(struct rf_kdf_params *p)
{
    memset(p, 0, sizeof(*p));
    p->opslimit = crypto_pwhash_OPSLIMIT_MIN;
    p->memlimit = VEC_MEMLIMIT;
    memcpy(p->salt, "refuge-vector-01", RF_KDF_SALT_BYTES);
    for (int i = 0; i < RF_LOOKUP_KEY_BYTES; i++)
        p->lookup_key[i] = (uint8_t)i;
}

static struct rf_source_keys *keys_new(void)
{
    struct rf_source_keys *k = sodium_malloc(sizeof(*k));
    assert_non_null(k);
    return k;
}

static int derive(struct rf_source_keys *k, const struct rf_kdf_params *p, const char *cn)
{
    return rf_source_derive(k, p, cn, strlen(cn));
}

static void expect_hex(const uint8_t *got, size_t n, const char *hex)
{
    uint8_t want[64];
    size_t len = 0;
    assert_int_equal(sodium_hex2bin(want, sizeof(want), hex, strlen(hex), NULL, &len, NULL), 0);
    assert_int_equal(len, n);
    assert_memory_equal(got, want, n);
}

struct vector {
    const char *codename;
    const char *lookup_id;
    const char *pk;
    const char *sk;
};

static const struct vector vectors[] = {
    {"aged dramatize jinx myth pursuit splatter worrisome",
     "9b16212f2997609d395629d6df3496200264969a15edbe3b29975168a061da7f",
     "5f4159ad500833041295983540a36e6b4e73c05b735a31e5c3dd0853fd195e07",
     "6f91bbd9367e24d958afaa25630479db61a5ef2ef96f9f3b5b771316313fc935"},
    {"окно лампа сосна облако ключ книга зеркало",
     "4fc976c42c386fb0e66e66cceafe5485be0b32d535cd3c27fc5d1b3a2bc49c3c",
     "77ef591587ef06ca270a129a9e9b5279c8b4bc157263185b746cba1740a17809",
     "24c37b77f0ebd1f3e78b07ff825bf0fdd8bed34305ec07f089130dc5d48259e3"},
    /* the same codename as typed on a phone: capitals, NBSP, extra spaces */
    {"  ОКНО лампа\xc2\xa0 Сосна облако ключ\tкнига зеркало ",
     "4fc976c42c386fb0e66e66cceafe5485be0b32d535cd3c27fc5d1b3a2bc49c3c",
     "77ef591587ef06ca270a129a9e9b5279c8b4bc157263185b746cba1740a17809",
     "24c37b77f0ebd1f3e78b07ff825bf0fdd8bed34305ec07f089130dc5d48259e3"},
    /* Ukrainian (і ї є), and as typed: capitals, Ї as І + U+0308, NBSP, tab */
    {"їжак олівець яблуко сонце книга єнот хліб",
     "92a3459d2dc5bb2c9e482cca7732506b2b97ac98327d9c666a4efaf0c0781d3d",
     "ab843519b85c4740e6b51565bfde1b6502b686c24c9719b0be0cf478a3d60013",
     "a33f96147ed8ed663d13d96f22f09590b7c36ec2978becede4f1c0f21fca9085"},
    {" \xd0\x86\xcc\x88ЖАК Олівець\xc2\xa0яблуко  СОНЦЕ книга\tЄНОТ хліб ",
     "92a3459d2dc5bb2c9e482cca7732506b2b97ac98327d9c666a4efaf0c0781d3d",
     "ab843519b85c4740e6b51565bfde1b6502b686c24c9719b0be0cf478a3d60013",
     "a33f96147ed8ed663d13d96f22f09590b7c36ec2978becede4f1c0f21fca9085"},
};

static void vectors_match_docs(void **state)
{
    (void)state;
    struct rf_kdf_params p;
    vector_params(&p);
    struct rf_source_keys *k = keys_new();
    for (size_t i = 0; i < sizeof(vectors) / sizeof(vectors[0]); i++) {
        assert_int_equal(derive(k, &p, vectors[i].codename), RF_OK);
        expect_hex(k->lookup_id, sizeof(k->lookup_id), vectors[i].lookup_id);
        expect_hex(k->pk, sizeof(k->pk), vectors[i].pk);
        expect_hex(k->sk, sizeof(k->sk), vectors[i].sk);
        /* the keypair is a working crypto_box keypair */
        uint8_t pk[crypto_box_PUBLICKEYBYTES];
        assert_int_equal(crypto_scalarmult_base(pk, k->sk), 0);
        assert_memory_equal(pk, k->pk, sizeof(pk));
    }
    sodium_free(k);
}

static void derivation_is_deterministic_and_normalized(void **state)
{
    (void)state;
    struct rf_kdf_params p;
    assert_int_equal(rf_kdf_params_new(&p, crypto_pwhash_OPSLIMIT_MIN, VEC_MEMLIMIT), RF_OK);
    struct rf_source_keys *a = keys_new(), *b = keys_new();
    assert_int_equal(derive(a, &p, "foo bar"), RF_OK);
    assert_int_equal(derive(b, &p, "foo bar"), RF_OK);
    assert_memory_equal(a, b, sizeof(*a));
    assert_int_equal(derive(b, &p, "  Foo  BAR "), RF_OK);
    assert_memory_equal(a, b, sizeof(*a));
    assert_int_equal(derive(b, &p, "FOO\xc2\xa0\tbar\n"), RF_OK);
    assert_memory_equal(a, b, sizeof(*a));
    sodium_free(a);
    sodium_free(b);
}

static void anything_else_gives_other_keys(void **state)
{
    (void)state;
    struct rf_kdf_params p;
    vector_params(&p);
    struct rf_source_keys *a = keys_new(), *b = keys_new();
    assert_int_equal(derive(a, &p, "foo bar"), RF_OK);

    assert_int_equal(derive(b, &p, "foo baz"), RF_OK); /* other codename */
    assert_memory_not_equal(a->lookup_id, b->lookup_id, 32);
    assert_memory_not_equal(a->pk, b->pk, 32);
    assert_int_equal(derive(b, &p, "foobar"), RF_OK); /* the space matters */
    assert_memory_not_equal(a->lookup_id, b->lookup_id, 32);

    struct rf_kdf_params q = p; /* other salt: everything changes */
    q.salt[0] ^= 1;
    assert_int_equal(derive(b, &q, "foo bar"), RF_OK);
    assert_memory_not_equal(a->lookup_id, b->lookup_id, 32);
    assert_memory_not_equal(a->pk, b->pk, 32);

    q = p; /* other lookup key: other lookup id, same keypair */
    q.lookup_key[31] ^= 0x80;
    assert_int_equal(derive(b, &q, "foo bar"), RF_OK);
    assert_memory_not_equal(a->lookup_id, b->lookup_id, 32);
    assert_memory_equal(a->pk, b->pk, 32);

    q = p; /* other cost: other keys */
    q.opslimit = p.opslimit + 1;
    assert_int_equal(derive(b, &q, "foo bar"), RF_OK);
    assert_memory_not_equal(a->lookup_id, b->lookup_id, 32);

    /* the lookup id does not reveal the public key or vice versa */
    assert_memory_not_equal(a->lookup_id, a->pk, 32);
    sodium_free(a);
    sodium_free(b);
}

static void fresh_params_differ(void **state)
{
    (void)state;
    struct rf_kdf_params p, q;
    assert_int_equal(rf_kdf_params_new(&p, RF_KDF_DEFAULT_OPSLIMIT, RF_KDF_DEFAULT_MEMLIMIT),
                     RF_OK);
    assert_int_equal(rf_kdf_params_new(&q, RF_KDF_DEFAULT_OPSLIMIT, RF_KDF_DEFAULT_MEMLIMIT),
                     RF_OK);
    assert_int_equal(p.opslimit, RF_KDF_DEFAULT_OPSLIMIT);
    assert_int_equal(p.memlimit, RF_KDF_DEFAULT_MEMLIMIT);
    assert_memory_not_equal(p.salt, q.salt, sizeof(p.salt));
    assert_memory_not_equal(p.lookup_key, q.lookup_key, sizeof(p.lookup_key));
}

static void bad_params_and_input_are_refused(void **state)
{
    (void)state;
    struct rf_kdf_params p;
    assert_int_equal(rf_kdf_params_new(&p, crypto_pwhash_OPSLIMIT_MIN - 1, VEC_MEMLIMIT),
                     RF_ERR_INVALID);
    assert_int_equal(rf_kdf_params_new(&p, 3, VEC_MEMLIMIT - 1), RF_ERR_INVALID);
    assert_int_equal(rf_kdf_params_new(&p, 3, (1ULL << 30) + 1), RF_ERR_INVALID);
    assert_int_equal(rf_kdf_params_new(&p, 3, 1ULL << 30), RF_OK);
    assert_int_equal(rf_kdf_params_new(NULL, 3, VEC_MEMLIMIT), RF_ERR_INVALID);

    vector_params(&p);
    struct rf_source_keys *k = keys_new();
    /* parameters from a damaged store are checked again */
    struct rf_kdf_params q = p;
    q.memlimit = 1ULL << 40;
    assert_int_equal(derive(k, &q, "foo"), RF_ERR_INVALID);
    uint8_t zero[sizeof(*k)] = {0};
    assert_memory_equal(k, zero, sizeof(zero));
    /* normalization errors pass through, and nothing is left in out */
    assert_int_equal(derive(k, &p, "foo"), RF_OK);
    assert_int_equal(rf_source_derive(k, &p, "fo\0o", 4), RF_ERR_FORMAT);
    assert_memory_equal(k, zero, sizeof(zero));
    assert_int_equal(derive(k, &p, "bad \xff utf-8"), RF_ERR_FORMAT);
    char big[RF_CODENAME_INPUT_MAX + 1];
    memset(big, 'a', sizeof(big));
    assert_int_equal(rf_source_derive(k, &p, big, sizeof(big)), RF_ERR_LIMIT);
    sodium_free(k);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vectors_match_docs),
        cmocka_unit_test(derivation_is_deterministic_and_normalized),
        cmocka_unit_test(anything_else_gives_other_keys),
        cmocka_unit_test(fresh_params_differ),
        cmocka_unit_test(bad_params_and_input_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
