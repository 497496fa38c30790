/*
 * casesig.c - signing, framing and verifying case-bound signed bodies (see
 * casesig.h): case events and replies are this format under their own magic
 * and domain.
 *
 * Invariants: parsing goes through one struct rf_reader; the signed message
 * (which holds the plaintext body) is assembled in a secure rf_buf, wiped when
 * freed; on any error out is left as it was and no output parameter of
 * rf_casesig_verify is written.
 */
#include "lib/casesig.h"
#include "lib/err.h"

#include <sodium.h>
#include <string.h>
#include <unistr.h>

_Static_assert(RF_CASESIG_HEADER_BYTES == 4 + 1 + crypto_sign_PUBLICKEYBYTES + crypto_sign_BYTES,
               "header layout");

/* A case id is exactly RF_CASESIG_CASE_LEN ASCII letters or digits (the
 * store's lower-case base32 ids and reserved names such as "teamconfig"). */
static int case_check(const char *case_id)
{
    if (case_id == NULL)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < RF_CASESIG_CASE_LEN; i++) {
        char c = case_id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!ok)
            return RF_ERR_INVALID; /* also stops at a NUL: too short */
    }
    return case_id[RF_CASESIG_CASE_LEN] == '\0' ? 0 : RF_ERR_INVALID;
}

static int body_check(const struct rf_casesig_kind *kind, const uint8_t *body, size_t n)
{
    if (n == 0)
        return RF_ERR_FORMAT;
    if (n > kind->body_max)
        return RF_ERR_LIMIT;
    if (memchr(body, 0, n) != NULL || u8_check(body, n) != NULL)
        return RF_ERR_FORMAT;
    return 0;
}

/* The signed message domain || case_id || body, in msg (secure). */
static int signed_message(struct rf_buf *msg, const struct rf_casesig_kind *kind,
                          const char *case_id, const uint8_t *body, size_t n)
{
    size_t dlen = strlen(kind->domain);
    rf_buf_init_secure(msg, dlen + RF_CASESIG_CASE_LEN + kind->body_max);
    int rc = rf_buf_reserve(msg, dlen + RF_CASESIG_CASE_LEN + n);
    if (rc == 0)
        rc = rf_buf_put(msg, kind->domain, dlen);
    if (rc == 0)
        rc = rf_buf_put(msg, case_id, RF_CASESIG_CASE_LEN);
    if (rc == 0)
        rc = rf_buf_put(msg, body, n);
    return rc;
}

int rf_casesig_sign(struct rf_buf *out, const struct rf_casesig_kind *kind,
                    const struct rf_staff_keys *k, const char *case_id, const uint8_t *body,
                    size_t n)
{
    struct rf_buf msg;
    uint8_t sig[crypto_sign_BYTES];
    size_t before = out->len;
    int rc = case_check(case_id);
    if (rc == 0 && body == NULL)
        rc = RF_ERR_INVALID;
    if (rc == 0)
        rc = body_check(kind, body, n);
    if (rc != 0)
        return rc;
    if ((rc = signed_message(&msg, kind, case_id, body, n)) != 0)
        goto out;
    if (crypto_sign_detached(sig, NULL, msg.data, msg.len, k->sign_sk) != 0) {
        rc = RF_ERR_CRYPTO;
        goto out;
    }
    if ((rc = rf_buf_reserve(out, RF_CASESIG_HEADER_BYTES + n)) != 0)
        goto out;
    rc = rf_buf_put(out, kind->magic, 4);
    if (rc == 0)
        rc = rf_buf_put_u8(out, kind->version);
    if (rc == 0)
        rc = rf_buf_put(out, k->sign_pk, 32);
    if (rc == 0)
        rc = rf_buf_put(out, sig, sizeof(sig));
    if (rc == 0)
        rc = rf_buf_put(out, body, n);
out:
    rf_buf_free(&msg);
    if (rc != 0)
        out->len = before;
    return rc;
}

int rf_casesig_split(const struct rf_casesig_kind *kind, const uint8_t **signer,
                     const uint8_t **sig, const uint8_t **body, size_t *body_len, const uint8_t *p,
                     size_t n)
{
    struct rf_reader r;
    const uint8_t *magic, *pk, *s, *b;
    uint8_t version;
    int rc;
    if (p == NULL && n > 0)
        return RF_ERR_INVALID;
    rf_reader_init(&r, p, n);
    size_t m = n < 4 ? n : 4;
    if (m > 0 && memcmp(p, kind->magic, m) != 0)
        return RF_ERR_FORMAT; /* a wrong prefix is refused before it is complete */
    if ((rc = rf_get_ptr(&r, &magic, 4)) != 0 || (rc = rf_get_u8(&r, &version)) != 0)
        return rc;
    if (version != kind->version)
        return RF_ERR_VERSION;
    if ((rc = rf_get_ptr(&r, &pk, 32)) != 0 || (rc = rf_get_ptr(&r, &s, 64)) != 0)
        return rc;
    size_t blen = rf_reader_left(&r);
    if (blen == 0)
        return RF_ERR_TRUNCATED;
    if (blen > kind->body_max)
        return RF_ERR_LIMIT;
    if ((rc = rf_get_ptr(&r, &b, blen)) != 0 || (rc = rf_reader_expect_end(&r)) != 0)
        return rc;
    if ((rc = body_check(kind, b, blen)) != 0)
        return rc;
    *signer = pk;
    *sig = s;
    *body = b;
    *body_len = blen;
    return 0;
}

int rf_casesig_parse(const struct rf_casesig_kind *kind, uint8_t signer[32], const uint8_t **body,
                     size_t *body_len, const uint8_t *p, size_t n, const char *case_id)
{
    const uint8_t *pk, *sig, *b;
    size_t blen;
    int rc = case_check(case_id);
    if (rc == 0)
        rc = rf_casesig_split(kind, &pk, &sig, &b, &blen, p, n);
    if (rc != 0)
        return rc;
    memcpy(signer, pk, 32);
    *body = b;
    *body_len = blen;
    return 0;
}

int rf_casesig_verify(const struct rf_casesig_kind *kind, uint8_t signer[32], const uint8_t **body,
                      size_t *body_len, const uint8_t *p, size_t n, const char *case_id)
{
    const uint8_t *pk, *sig, *b;
    size_t blen;
    int rc = case_check(case_id);
    if (rc == 0)
        rc = rf_casesig_split(kind, &pk, &sig, &b, &blen, p, n);
    if (rc != 0)
        return rc;
    struct rf_buf msg;
    if ((rc = signed_message(&msg, kind, case_id, b, blen)) == 0 &&
        crypto_sign_verify_detached(sig, msg.data, msg.len, pk) != 0)
        rc = RF_ERR_SIGNATURE;
    rf_buf_free(&msg);
    if (rc != 0)
        return rc;
    memcpy(signer, pk, 32);
    *body = b;
    *body_len = blen;
    return 0;
}
