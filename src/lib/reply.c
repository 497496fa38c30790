/*
 * reply.c - signing, framing and verifying replies (format in reply.h and
 * docs/protocol.md "Replies"). The same shape as a case event (event.c)
 * under its own magic and signing domain, so neither can pass for the
 * other: "RFGY" | 2 | signer sign_pk | signature | body, the signature over
 * "refuge-reply-v2" || case_id || body.
 *
 * The framing, signing and checks are casesig.c's.
 */
#include "lib/reply.h"
#include "lib/casesig.h"
#include "lib/event.h"

#include <string.h>

_Static_assert(RF_REPLY_HEADER_BYTES == RF_CASESIG_HEADER_BYTES, "reply header layout");

static const struct rf_casesig_kind reply_kind = {
    .magic = RF_REPLY_MAGIC,
    .version = RF_REPLY_VERSION,
    .domain = "refuge-reply-v2",
    .body_max = RF_REPLY_BODY_MAX,
};

int rf_reply_sign(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                  const uint8_t *body, size_t n)
{
    return rf_casesig_sign(out, &reply_kind, k, case_id, body, n);
}

int rf_reply_split(uint8_t signer[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                   size_t n)
{
    const uint8_t *pk, *sig, *b;
    size_t blen;
    int rc = rf_casesig_split(&reply_kind, &pk, &sig, &b, &blen, p, n);
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
    return rf_casesig_verify(&reply_kind, signer, body, body_len, p, n, case_id);
}

int rf_reply_signed(const uint8_t *p, size_t n)
{
    return p != NULL && n >= 4 && memcmp(p, RF_REPLY_MAGIC, 4) == 0;
}
