/*
 * apisig.h - authentication of staff API requests.
 *
 * Every request carries
 *   Authorization: Refuge key=<b64 sign_pk>, ts=<unix seconds>, nonce=<b64 16 bytes>,
 *                  body=<hex BLAKE2b-256 of body>, sig=<b64 Ed25519 signature>
 * and the signature covers
 *   "refuge-api-v1\n" METHOD "\n" PATH_AND_QUERY "\n" ts "\n" nonce "\n" body_hex
 * The server refuses a skew over RF_APISIG_MAX_SKEW seconds, a nonce seen in
 * that window, an unknown key, and a body whose hash differs.
 */
#ifndef RF_APISIG_H
#define RF_APISIG_H

#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

#define RF_APISIG_MAX_SKEW 300
#define RF_APISIG_HEADER_MAX 512
#define RF_APISIG_NONCE_BYTES 16

struct rf_apisig {
    uint8_t sign_pk[32];
    int64_t ts;
    uint8_t nonce[RF_APISIG_NONCE_BYTES];
    uint8_t body_hash[32];
    uint8_t sig[64];
};

/* Writes the Authorization header value for a request. */
int rf_apisig_sign(char *out, size_t outcap, const struct rf_staff_keys *k, const char *method,
                   const char *path, int64_t now, const uint8_t body_hash[32]);
/* Parses a header value (bounded by RF_APISIG_HEADER_MAX). */
int rf_apisig_parse(struct rf_apisig *s, const char *value, size_t len);
/* Checks the signature for method/path; the caller checks skew, nonce and
 * body hash against what it received. */
int rf_apisig_verify(const struct rf_apisig *s, const char *method, const char *path);

#endif
