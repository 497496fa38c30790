/*
 * casesig.h - a body signed by a caseworker and bound to one case: the one
 * framing that case events (event.h) and replies (reply.h) share, each under
 * its own magic, version and signing domain so that neither can pass for the
 * other:
 *
 *   magic[4] | version u8 | signer sign_pk[32] | Ed25519 signature[64] | body
 *
 * the signature over domain || case_id (RF_CASESIG_CASE_LEN bytes) || body.
 * The case id is not in the bytes: the verifier supplies it (the object's
 * place on the server), so a body moved to another case fails its signature.
 * A body is 1..body_max bytes of valid UTF-8 without NUL (a NUL could cut it
 * short for C string code after it was verified).
 */
#ifndef RF_CASESIG_H
#define RF_CASESIG_H

#include "lib/buf.h"
#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CASESIG_CASE_LEN 10
#define RF_CASESIG_HEADER_BYTES (4 + 1 + 32 + 64)

struct rf_casesig_kind {
    const char *magic; /* 4 bytes */
    uint8_t version;
    const char *domain; /* the signing domain, e.g. "refuge-event-v1" */
    size_t body_max;
};

/* Appends the signed framing of body to out (out unchanged on error).
 * RF_ERR_INVALID for a case id that is not exactly RF_CASESIG_CASE_LEN ASCII
 * letters or digits, RF_ERR_FORMAT / RF_ERR_LIMIT for a bad body. */
int rf_casesig_sign(struct rf_buf *out, const struct rf_casesig_kind *kind,
                    const struct rf_staff_keys *k, const char *case_id, const uint8_t *body,
                    size_t n);
/* The framing only, no signature check: pointers into p. */
int rf_casesig_split(const struct rf_casesig_kind *kind, const uint8_t **signer,
                     const uint8_t **sig, const uint8_t **body, size_t *body_len, const uint8_t *p,
                     size_t n);
/* Framing and case id as rf_casesig_verify, WITHOUT the signature check:
 * only for bytes whose signature something else vouches for (a verified
 * checkpoint, lib/checkpoint.h, compared after). */
int rf_casesig_parse(const struct rf_casesig_kind *kind, uint8_t signer[32], const uint8_t **body,
                     size_t *body_len, const uint8_t *p, size_t n, const char *case_id);
/* Framing and signature for case_id; signer and body are written only on
 * success. RF_ERR_SIGNATURE when the signature does not verify. */
int rf_casesig_verify(const struct rf_casesig_kind *kind, uint8_t signer[32], const uint8_t **body,
                      size_t *body_len, const uint8_t *p, size_t n, const char *case_id);

#endif
