/*
 * apisig.c - signing and checking the Authorization header of staff API
 * requests (format in apisig.h and docs/protocol.md).
 *
 * The parser is strict so that one request has one header: scheme "Refuge",
 * one space, then exactly the five fields key, ts, nonce, body, sig, each
 * once, in any order, separated by "," and optional spaces; values of exact
 * lengths (unpadded base64url with zero trailing bits, lower-case hex, a
 * decimal ts without sign or leading zeros). The signed message is rebuilt
 * from the parsed values, so any re-encoding would fail the signature anyway;
 * strictness refuses it earlier and plainly. Method and path are refused if
 * they could smuggle a line break into the signed message.
 */
#include "lib/apisig.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define AS_DOMAIN "refuge-api-v1\n"
#define AS_SCHEME "Refuge "
#define AS_METHOD_MAX 16
#define AS_PATH_MAX 4096
#define B64_KEY 43
#define B64_NONCE 22
#define B64_SIG 86
#define HEX_BODY 64
#define TS_DIGITS_MAX 18 /* keeps ts well inside int64 */

enum { F_KEY, F_TS, F_NONCE, F_BODY, F_SIG, F_COUNT };
static const char *const field_names[F_COUNT] = {"key", "ts", "nonce", "body", "sig"};

static int method_ok(const char *m)
{
    size_t n = strlen(m);
    if (n < 1 || n > AS_METHOD_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return 0;
    return 1;
}

static int path_ok(const char *p)
{
    size_t n = strlen(p);
    if (n < 1 || n > AS_PATH_MAX || p[0] != '/')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] <= 0x20 || p[i] >= 0x7f)
            return 0;
    return 1;
}

/* "refuge-api-v1\n" METHOD "\n" PATH "\n" ts "\n" nonce_b64 "\n" body_hex */
static int message_build(struct rf_buf *msg, const char *method, const char *path, int64_t ts,
                         const uint8_t nonce[RF_APISIG_NONCE_BYTES], const uint8_t body_hash[32])
{
    char tsbuf[24], nonce_b64[B64_NONCE + 1], body_hex[HEX_BODY + 1];
    if (!method_ok(method) || !path_ok(path) || ts < 0)
        return RF_ERR_INVALID;
    snprintf(tsbuf, sizeof(tsbuf), "%" PRId64, ts);
    int rc = rf_b64_encode(nonce_b64, sizeof(nonce_b64), nonce, RF_APISIG_NONCE_BYTES);
    if (rc == 0)
        rc = rf_hex_encode(body_hex, sizeof(body_hex), body_hash, 32);
    const char *parts[] = {AS_DOMAIN, method, "\n",      path, "\n",
                           tsbuf,     "\n",   nonce_b64, "\n", body_hex};
    for (size_t i = 0; rc == 0 && i < sizeof(parts) / sizeof(parts[0]); i++)
        rc = rf_buf_put_str(msg, parts[i]);
    return rc;
}

int rf_apisig_sign(char *out, size_t outcap, const struct rf_staff_keys *k, const char *method,
                   const char *path, int64_t now, const uint8_t body_hash[32])
{
    struct rf_buf msg;
    uint8_t nonce[RF_APISIG_NONCE_BYTES], sig[64];
    char key_b64[B64_KEY + 1], nonce_b64[B64_NONCE + 1], body_hex[HEX_BODY + 1],
        sig_b64[B64_SIG + 1];
    randombytes_buf(nonce, sizeof(nonce));
    rf_buf_init(&msg, 2 * AS_PATH_MAX);
    int rc = message_build(&msg, method, path, now, nonce, body_hash);
    if (rc != 0)
        goto out;
    crypto_sign_detached(sig, NULL, msg.data, msg.len, k->sign_sk);
    rf_b64_encode(key_b64, sizeof(key_b64), k->sign_pk, 32);
    rf_b64_encode(nonce_b64, sizeof(nonce_b64), nonce, sizeof(nonce));
    rf_hex_encode(body_hex, sizeof(body_hex), body_hash, 32);
    rf_b64_encode(sig_b64, sizeof(sig_b64), sig, sizeof(sig));
    int w = snprintf(out, outcap, "Refuge key=%s, ts=%" PRId64 ", nonce=%s, body=%s, sig=%s",
                     key_b64, now, nonce_b64, body_hex, sig_b64);
    if (w < 0 || (size_t)w >= outcap)
        rc = RF_ERR_LIMIT;
out:
    rf_buf_free(&msg);
    return rc;
}

static int b64_exact(uint8_t *out, size_t want, const char *v, size_t vlen)
{
    size_t got = 0;
    if (vlen != sodium_base64_ENCODED_LEN(want, sodium_base64_VARIANT_URLSAFE_NO_PADDING) - 1)
        return RF_ERR_FORMAT;
    if (rf_b64_decode(out, want, &got, v, vlen) != 0 || got != want)
        return RF_ERR_FORMAT;
    return 0;
}

static int hex_exact(uint8_t *out, size_t want, const char *v, size_t vlen)
{
    size_t got = 0;
    if (vlen != want * 2)
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < vlen; i++)
        if (!((v[i] >= '0' && v[i] <= '9') || (v[i] >= 'a' && v[i] <= 'f')))
            return RF_ERR_FORMAT;
    if (rf_hex_decode(out, want, &got, v, vlen) != 0 || got != want)
        return RF_ERR_FORMAT;
    return 0;
}

static int ts_parse(int64_t *ts, const char *v, size_t vlen)
{
    if (vlen < 1 || vlen > TS_DIGITS_MAX || (vlen > 1 && v[0] == '0'))
        return RF_ERR_FORMAT;
    int64_t x = 0;
    for (size_t i = 0; i < vlen; i++) {
        if (v[i] < '0' || v[i] > '9')
            return RF_ERR_FORMAT;
        x = x * 10 + (v[i] - '0');
    }
    *ts = x;
    return 0;
}

static int field_set(struct rf_apisig *s, int f, const char *v, size_t vlen)
{
    switch (f) {
    case F_KEY:
        return b64_exact(s->sign_pk, 32, v, vlen);
    case F_TS:
        return ts_parse(&s->ts, v, vlen);
    case F_NONCE:
        return b64_exact(s->nonce, RF_APISIG_NONCE_BYTES, v, vlen);
    case F_BODY:
        return hex_exact(s->body_hash, 32, v, vlen);
    case F_SIG:
        return b64_exact(s->sig, 64, v, vlen);
    }
    return RF_ERR_FORMAT;
}

int rf_apisig_parse(struct rf_apisig *s, const char *value, size_t len)
{
    int seen[F_COUNT] = {0};
    size_t slen = sizeof(AS_SCHEME) - 1;
    memset(s, 0, sizeof(*s));
    if (value == NULL || len > RF_APISIG_HEADER_MAX)
        return RF_ERR_LIMIT;
    if (len < slen || memcmp(value, AS_SCHEME, slen) != 0)
        return RF_ERR_FORMAT;
    size_t i = slen;
    for (int nf = 0; nf < F_COUNT; nf++) {
        if (nf > 0) { /* separator: ',' then optional spaces */
            if (i >= len || value[i] != ',')
                goto bad;
            i++;
        }
        while (i < len && value[i] == ' ')
            i++;
        size_t name = i;
        while (i < len && value[i] >= 'a' && value[i] <= 'z')
            i++;
        size_t name_len = i - name;
        if (i >= len || value[i] != '=')
            goto bad;
        i++;
        size_t v = i;
        while (i < len && value[i] != ',' && value[i] != ' ')
            i++;
        int f = -1;
        for (int k = 0; k < F_COUNT; k++)
            if (strlen(field_names[k]) == name_len &&
                memcmp(field_names[k], value + name, name_len) == 0)
                f = k;
        if (f < 0 || seen[f])
            goto bad;
        seen[f] = 1;
        if (field_set(s, f, value + v, i - v) != 0)
            goto bad;
    }
    if (i != len)
        goto bad;
    return 0;
bad:
    memset(s, 0, sizeof(*s));
    return RF_ERR_FORMAT;
}

int rf_apisig_verify(const struct rf_apisig *s, const char *method, const char *path)
{
    struct rf_buf msg;
    rf_buf_init(&msg, 2 * AS_PATH_MAX);
    int rc = message_build(&msg, method, path, s->ts, s->nonce, s->body_hash);
    if (rc == 0 && crypto_sign_verify_detached(s->sig, msg.data, msg.len, s->sign_pk) != 0)
        rc = RF_ERR_SIGNATURE;
    rf_buf_free(&msg);
    return rc;
}
