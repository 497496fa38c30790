/*
 * event.c - signing, framing and verifying case events (format in event.h
 * and docs/protocol.md "Case events").
 *
 * An event is "RFGV" | 1 | author sign_pk | signature | body, the signature
 * being Ed25519 over "refuge-event-v1" || case_id || body. The case id is
 * not stored in the event: it is named by the object's place on the server
 * and the verifier supplies it, so an event moved to another case fails its
 * signature. The body's JSON is the client's; here it must only be 1..
 * RF_EVENT_BODY_MAX bytes of valid UTF-8 without NUL (a NUL could cut it
 * short for C string code after it was verified).
 *
 * Invariants: parsing goes through one struct rf_reader; the signed message
 * (which holds the plaintext body) is assembled in a secure rf_buf, wiped
 * when freed; on any error *out is left as it was and no output parameter
 * of rf_event_verify is written.
 */
#include "lib/event.h"
#include "lib/err.h"

#include <sodium.h>
#include <string.h>
#include <unistr.h>

#define EV_DOMAIN "refuge-event-v1"
#define EV_DOMAIN_LEN 15
#define EV_MSG_MAX (EV_DOMAIN_LEN + RF_EVENT_CASE_LEN + RF_EVENT_BODY_MAX)

_Static_assert(sizeof(EV_DOMAIN) - 1 == EV_DOMAIN_LEN, "domain length");
_Static_assert(RF_EVENT_HEADER_BYTES == 4 + 1 + crypto_sign_PUBLICKEYBYTES + crypto_sign_BYTES,
               "event header layout");

/* A case id is exactly RF_EVENT_CASE_LEN ASCII letters or digits (the store's
 * lower-case base32 ids and reserved names such as "teamconfig"). */
static int case_check(const char *case_id)
{
    if (case_id == NULL)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < RF_EVENT_CASE_LEN; i++) {
        char c = case_id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!ok)
            return RF_ERR_INVALID; /* also stops at a NUL: too short */
    }
    return case_id[RF_EVENT_CASE_LEN] == '\0' ? 0 : RF_ERR_INVALID;
}

static int body_check(const uint8_t *body, size_t n)
{
    if (n == 0)
        return RF_ERR_FORMAT;
    if (n > RF_EVENT_BODY_MAX)
        return RF_ERR_LIMIT;
    if (memchr(body, 0, n) != NULL || u8_check(body, n) != NULL)
        return RF_ERR_FORMAT;
    return 0;
}

/* The signed message "refuge-event-v1" || case_id || body, in msg (secure). */
static int signed_message(struct rf_buf *msg, const char *case_id, const uint8_t *body, size_t n)
{
    rf_buf_init_secure(msg, EV_MSG_MAX);
    int rc = rf_buf_reserve(msg, EV_DOMAIN_LEN + RF_EVENT_CASE_LEN + n);
    if (rc == 0)
        rc = rf_buf_put(msg, EV_DOMAIN, EV_DOMAIN_LEN);
    if (rc == 0)
        rc = rf_buf_put(msg, case_id, RF_EVENT_CASE_LEN);
    if (rc == 0)
        rc = rf_buf_put(msg, body, n);
    return rc;
}

int rf_event_sign(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
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
    if ((rc = rf_buf_reserve(out, RF_EVENT_HEADER_BYTES + n)) != 0)
        goto out;
    rc = rf_buf_put(out, RF_EVENT_MAGIC, 4);
    if (rc == 0)
        rc = rf_buf_put_u8(out, RF_EVENT_VERSION);
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

int rf_event_verify(uint8_t author_pk[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                    size_t n, const char *case_id)
{
    struct rf_reader r;
    const uint8_t *magic, *pk, *sig, *b;
    uint8_t version;
    int rc = case_check(case_id);
    if (rc != 0)
        return rc;
    if (p == NULL && n > 0)
        return RF_ERR_INVALID;
    rf_reader_init(&r, p, n);
    size_t m = n < 4 ? n : 4;
    if (m > 0 && memcmp(p, RF_EVENT_MAGIC, m) != 0)
        return RF_ERR_FORMAT; /* a wrong prefix is refused before it is complete */
    if ((rc = rf_get_ptr(&r, &magic, 4)) != 0 || (rc = rf_get_u8(&r, &version)) != 0)
        return rc;
    if (version != RF_EVENT_VERSION)
        return RF_ERR_VERSION;
    if ((rc = rf_get_ptr(&r, &pk, 32)) != 0 || (rc = rf_get_ptr(&r, &sig, 64)) != 0)
        return rc;
    size_t blen = rf_reader_left(&r);
    if (blen == 0)
        return RF_ERR_TRUNCATED;
    if (blen > RF_EVENT_BODY_MAX)
        return RF_ERR_LIMIT;
    if ((rc = rf_get_ptr(&r, &b, blen)) != 0 || (rc = rf_reader_expect_end(&r)) != 0)
        return rc;
    if ((rc = body_check(b, blen)) != 0)
        return rc;
    struct rf_buf msg;
    if ((rc = signed_message(&msg, case_id, b, blen)) == 0 &&
        crypto_sign_verify_detached(sig, msg.data, msg.len, pk) != 0)
        rc = RF_ERR_SIGNATURE;
    rf_buf_free(&msg);
    if (rc != 0)
        return rc;
    memcpy(author_pk, pk, 32);
    *body = b;
    *body_len = blen;
    return 0;
}
