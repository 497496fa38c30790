/*
 * reply.c - signing, framing and verifying replies (format in reply.h and
 * docs/protocol.md "Replies"). The same shape as a case event (event.c)
 * under its own magic and signing domain, so neither can pass for the
 * other: "RFGY" | 2 | signer sign_pk | signature | body, the signature over
 * "refuge-reply-v2" || case_id || body.
 *
 * Invariants: parsing goes through one struct rf_reader; the signed message
 * (which holds the reply's text) is assembled in a secure rf_buf, wiped when
 * freed; on any error *out is left as it was and no output parameter is
 * written.
 */
#include "lib/reply.h"
#include "lib/err.h"
#include "lib/event.h"

#include <sodium.h>
#include <string.h>
#include <unistr.h>

#define RP_DOMAIN "refuge-reply-v2"
#define RP_DOMAIN_LEN 15
#define RP_MSG_MAX (RP_DOMAIN_LEN + RF_EVENT_CASE_LEN + RF_REPLY_BODY_MAX)

_Static_assert(sizeof(RP_DOMAIN) - 1 == RP_DOMAIN_LEN, "domain length");
_Static_assert(RF_REPLY_HEADER_BYTES == 4 + 1 + crypto_sign_PUBLICKEYBYTES + crypto_sign_BYTES,
               "reply header layout");

static int case_check(const char *case_id)
{
    if (case_id == NULL)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < RF_EVENT_CASE_LEN; i++) {
        char c = case_id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!ok)
            return RF_ERR_INVALID;
    }
    return case_id[RF_EVENT_CASE_LEN] == '\0' ? 0 : RF_ERR_INVALID;
}

static int body_check(const uint8_t *body, size_t n)
{
    if (n == 0)
        return RF_ERR_FORMAT;
    if (n > RF_REPLY_BODY_MAX)
        return RF_ERR_LIMIT;
    if (memchr(body, 0, n) != NULL || u8_check(body, n) != NULL)
        return RF_ERR_FORMAT;
    return 0;
}

static int signed_message(struct rf_buf *msg, const char *case_id, const uint8_t *body, size_t n)
{
    rf_buf_init_secure(msg, RP_MSG_MAX);
    int rc = rf_buf_reserve(msg, RP_DOMAIN_LEN + RF_EVENT_CASE_LEN + n);
    if (rc == 0)
        rc = rf_buf_put(msg, RP_DOMAIN, RP_DOMAIN_LEN);
    if (rc == 0)
        rc = rf_buf_put(msg, case_id, RF_EVENT_CASE_LEN);
    if (rc == 0)
        rc = rf_buf_put(msg, body, n);
    return rc;
}

int rf_reply_sign(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                  const uint8_t *body, size_t n)
{
    struct rf_buf msg;
    uint8_t sig[crypto_sign_BYTES];
    size_t before = out->len;
    int rc = case_check(case_id);
    if (rc == 0 && body == NULL)
        rc = RF_ERR_INVALID;
    if (rc == 0)
        rc = body_check(body, n);
    if (rc != 0)
        return rc;
    if ((rc = signed_message(&msg, case_id, body, n)) != 0)
        goto out;
    if (crypto_sign_detached(sig, NULL, msg.data, msg.len, k->sign_sk) != 0) {
        rc = RF_ERR_CRYPTO;
        goto out;
    }
    if ((rc = rf_buf_reserve(out, RF_REPLY_HEADER_BYTES + n)) != 0)
        goto out;
    rc = rf_buf_put(out, RF_REPLY_MAGIC, 4);
    if (rc == 0)
        rc = rf_buf_put_u8(out, RF_REPLY_VERSION);
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

/* The framing; *sig points at the signature inside p. */
static int split(const uint8_t **pk, const uint8_t **sig, const uint8_t **body, size_t *body_len,
                 const uint8_t *p, size_t n)
{
    struct rf_reader r;
    const uint8_t *magic, *b;
    uint8_t version;
    int rc;
    if (p == NULL && n > 0)
        return RF_ERR_INVALID;
    rf_reader_init(&r, p, n);
    size_t m = n < 4 ? n : 4;
    if (m > 0 && memcmp(p, RF_REPLY_MAGIC, m) != 0)
        return RF_ERR_FORMAT;
    if ((rc = rf_get_ptr(&r, &magic, 4)) != 0 || (rc = rf_get_u8(&r, &version)) != 0)
        return rc;
    if (version != RF_REPLY_VERSION)
        return RF_ERR_VERSION;
    if ((rc = rf_get_ptr(&r, pk, 32)) != 0 || (rc = rf_get_ptr(&r, sig, 64)) != 0)
        return rc;
    size_t blen = rf_reader_left(&r);
    if (blen == 0)
        return RF_ERR_TRUNCATED;
    if (blen > RF_REPLY_BODY_MAX)
        return RF_ERR_LIMIT;
    if ((rc = rf_get_ptr(&r, &b, blen)) != 0 || (rc = rf_reader_expect_end(&r)) != 0)
        return rc;
    if ((rc = body_check(b, blen)) != 0)
        return rc;
    *body = b;
    *body_len = blen;
    return 0;
}

int rf_reply_split(uint8_t signer[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                   size_t n)
{
    const uint8_t *pk, *sig, *b;
    size_t blen;
    int rc = split(&pk, &sig, &b, &blen, p, n);
    if (rc != 0)
        return rc;
    memcpy(signer, pk, 32);
    *body = b;
    *body_len = blen;
    return 0;
}

int rf_reply_verify(uint8_t signer[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                    size_t n, const char *case_id)
{
    const uint8_t *pk, *sig, *b;
    size_t blen;
    int rc = case_check(case_id);
    if (rc == 0)
        rc = split(&pk, &sig, &b, &blen, p, n);
    if (rc != 0)
        return rc;
    struct rf_buf msg;
    if ((rc = signed_message(&msg, case_id, b, blen)) == 0 &&
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

int rf_reply_signed(const uint8_t *p, size_t n)
{
    return p != NULL && n >= 4 && memcmp(p, RF_REPLY_MAGIC, 4) == 0;
}
