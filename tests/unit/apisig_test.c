/* apisig_test.c - a signed staff request verifies only for the method, path,
 * time, nonce and body it was signed for, and the header parser refuses
 * anything but the one strict form. */
#include "lib/apisig.h"
#include "lib/err.h"
#include "lib/keyfile.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static struct rf_staff_keys *keys;
static uint8_t body_hash[32];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    keys = sodium_malloc(sizeof(*keys));
    if (rf_staff_keys_generate(keys, "staff") != 0)
        return -1;
    crypto_generichash(body_hash, 32, (const uint8_t *)"{}", 2, NULL, 0);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sodium_free(keys);
    return 0;
}

static void sign(char *hdr, size_t cap, const char *method, const char *path)
{
    assert_int_equal(rf_apisig_sign(hdr, cap, keys, method, path, 1700000000, body_hash), 0);
}

static void round_trip(void **state)
{
    (void)state;
    char hdr[RF_APISIG_HEADER_MAX];
    sign(hdr, sizeof(hdr), "POST", "/api/v1/replies?case=12");
    assert_true(strlen(hdr) < RF_APISIG_HEADER_MAX);
    assert_true(strncmp(hdr, "Refuge key=", 11) == 0);
    struct rf_apisig s;
    assert_int_equal(rf_apisig_parse(&s, hdr, strlen(hdr)), 0);
    assert_memory_equal(s.sign_pk, keys->sign_pk, 32);
    assert_memory_equal(s.body_hash, body_hash, 32);
    assert_true(s.ts == 1700000000);
    assert_int_equal(rf_apisig_verify(&s, "POST", "/api/v1/replies?case=12"), 0);
    /* two signatures of the same request differ by their nonce */
    char hdr2[RF_APISIG_HEADER_MAX];
    struct rf_apisig s2;
    sign(hdr2, sizeof(hdr2), "POST", "/api/v1/replies?case=12");
    assert_int_equal(rf_apisig_parse(&s2, hdr2, strlen(hdr2)), 0);
    assert_memory_not_equal(s.nonce, s2.nonce, RF_APISIG_NONCE_BYTES);
    /* too small an output buffer */
    assert_int_equal(rf_apisig_sign(hdr2, 100, keys, "GET", "/", 1, body_hash), RF_ERR_LIMIT);
}

static void tampering_refused(void **state)
{
    (void)state;
    char hdr[RF_APISIG_HEADER_MAX];
    sign(hdr, sizeof(hdr), "POST", "/api/v1/roster");
    struct rf_apisig s;
    assert_int_equal(rf_apisig_parse(&s, hdr, strlen(hdr)), 0);
    assert_int_equal(rf_apisig_verify(&s, "PUT", "/api/v1/roster"), RF_ERR_SIGNATURE);
    assert_int_equal(rf_apisig_verify(&s, "POST", "/api/v1/roster?x"), RF_ERR_SIGNATURE);
    assert_int_equal(rf_apisig_verify(&s, "POST", "/api/v1/rosters"), RF_ERR_SIGNATURE);
    struct rf_apisig t = s;
    t.body_hash[0] ^= 1;
    assert_int_equal(rf_apisig_verify(&t, "POST", "/api/v1/roster"), RF_ERR_SIGNATURE);
    t = s;
    t.ts++;
    assert_int_equal(rf_apisig_verify(&t, "POST", "/api/v1/roster"), RF_ERR_SIGNATURE);
    t = s;
    t.nonce[3] ^= 1;
    assert_int_equal(rf_apisig_verify(&t, "POST", "/api/v1/roster"), RF_ERR_SIGNATURE);
    t = s;
    t.sign_pk[0] ^= 1;
    assert_int_equal(rf_apisig_verify(&t, "POST", "/api/v1/roster"), RF_ERR_SIGNATURE);
    /* line breaks cannot be smuggled into the signed message */
    assert_int_equal(rf_apisig_verify(&s, "POST\n/api", "/v1/roster"), RF_ERR_INVALID);
    assert_int_equal(rf_apisig_verify(&s, "post", "/api/v1/roster"), RF_ERR_INVALID);
    assert_int_equal(rf_apisig_verify(&s, "POST", "/api\n1"), RF_ERR_INVALID);
    assert_int_equal(rf_apisig_verify(&s, "POST", "api"), RF_ERR_INVALID);
    /* any changed character of the header is refused by parse or verify */
    size_t n = strlen(hdr);
    for (size_t i = 0; i < n; i++) {
        char saved = hdr[i];
        hdr[i] = saved == 'A' ? 'B' : 'A';
        int rc = rf_apisig_parse(&t, hdr, n);
        if (rc == 0)
            rc = rf_apisig_verify(&t, "POST", "/api/v1/roster");
        assert_int_not_equal(rc, 0);
        hdr[i] = saved;
    }
}

static void malformed_headers_refused(void **state)
{
    (void)state;
    char hdr[RF_APISIG_HEADER_MAX];
    sign(hdr, sizeof(hdr), "GET", "/api/v1/sync");
    struct rf_apisig s;
    /* pull the values out of a good header */
    char key[64], nonce[32], body[80], sig[100];
    long long ts;
    assert_int_equal(sscanf(hdr,
                            "Refuge key=%63[^,], ts=%lld, nonce=%31[^,], body=%79[^,], sig=%99s",
                            key, &ts, nonce, body, sig),
                     5);
    char b[1024];
    /* other field orders and spacing are accepted */
    snprintf(b, sizeof(b), "Refuge sig=%s,body=%s,  nonce=%s,ts=%lld,key=%s", sig, body, nonce, ts,
             key);
    assert_int_equal(rf_apisig_parse(&s, b, strlen(b)), 0);
    assert_int_equal(rf_apisig_verify(&s, "GET", "/api/v1/sync"), 0);

    const char *bad[] = {
        "",
        "Refuge",
        "Refuge ",
        "Bearer key=x",
        "refuge key=%s, ts=%lld, nonce=%s, body=%s, sig=%s",
        "Refuge key=%s, ts=%lld, nonce=%s, body=%s",                   /* missing sig */
        "Refuge key=%s, ts=%lld, nonce=%s, body=%s, sig=%s, sig=%s",   /* duplicate */
        "Refuge key=%s, key=%lld, nonce=%s, body=%s, sig=%s",          /* duplicate, ts missing */
        "Refuge key=%s, ts=%lld, nonce=%s, body=%s, sig=%s,",          /* trailing comma */
        "Refuge key=%s, ts=%lld, nonce=%s, body=%s, sig=%s ",          /* trailing space */
        "Refuge key=%s, ts=%lld, nonce=%s, body=%s, sig=%s, x=1",      /* unknown field */
        "Refuge key=%s, ts=+%lld, nonce=%s, body=%s, sig=%s",          /* signed ts */
        "Refuge key=%s, ts=0%lld, nonce=%s, body=%s, sig=%s",          /* leading zero */
        "Refuge key=%s, ts=-%lld, nonce=%s, body=%s, sig=%s",          /* negative */
        "Refuge key=%s, ts=%lld1234567890, nonce=%s, body=%s, sig=%s", /* too long */
        "Refuge key=%sA, ts=%lld, nonce=%s, body=%s, sig=%s",          /* key too long */
        "Refuge key=%s, ts=%lld, nonce=%s=, body=%s, sig=%s",          /* padding */
        "Refuge key=%s, ts=%lld, nonce=%s, body=%s0, sig=%s",          /* body too long */
        "Refuge key=%s, ts=%lld, nonce=%s, body=%s, sig=%s==",         /* padded sig */
        "Refuge  key=%s, ts=%lld, nonce=%s, body=%s, sig=%s",          /* fine: spaces */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
#pragma GCC diagnostic ignored "-Wformat-extra-args"
        snprintf(b, sizeof(b), bad[i], key, ts, nonce, body, sig, sig);
#pragma GCC diagnostic pop
        int want = i + 1 == sizeof(bad) / sizeof(bad[0]) ? 0 : RF_ERR_FORMAT;
        assert_int_equal(rf_apisig_parse(&s, b, strlen(b)), want);
    }
    /* upper-case hex of the body hash */
    for (char *c = body; *c; c++)
        if (*c >= 'a' && *c <= 'f')
            *c = (char)(*c - 'a' + 'A');
    snprintf(b, sizeof(b), "Refuge key=%s, ts=%lld, nonce=%s, body=%s, sig=%s", key, ts, nonce,
             body, sig);
    if (strcmp(b, hdr) != 0)
        assert_int_equal(rf_apisig_parse(&s, b, strlen(b)), RF_ERR_FORMAT);
    /* over the bound, even if otherwise fine */
    char big[RF_APISIG_HEADER_MAX + 2];
    memset(big, ' ', sizeof(big));
    memcpy(big, hdr, strlen(hdr));
    assert_int_equal(rf_apisig_parse(&s, big, sizeof(big)), RF_ERR_LIMIT);
    /* a NUL inside */
    memcpy(b, hdr, strlen(hdr) + 1);
    b[20] = 0;
    assert_int_equal(rf_apisig_parse(&s, b, strlen(hdr)), RF_ERR_FORMAT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(tampering_refused),
        cmocka_unit_test(malformed_headers_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
