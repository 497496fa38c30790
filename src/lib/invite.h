/*
 * invite.h - the enrollment token a newcomer types, as `refuge staff
 * invite` prints it: the server's one-time token plus a pin of the team's
 * first admin, so `refuge init` can check roster version 1 before it pins
 * anything, with nothing extra to type (issue 13, finding 2).
 *
 *   invite token v1 = "i" | base64url(pin[16]) | server token (43 chars)
 *   pin             = the first 16 bytes of rf_fingerprint_hash(sign_pk,
 *                     box_pk) of the first admin as roster version 1 lists them
 *
 * 66 characters of the base64url alphabet, so a double click selects it
 * whole. The first admin's own token (`refuge server init` / `server
 * token`) is the bare 43-character server token: the lengths differ, and a
 * token that carries a pin can never enroll the first admin. Format in
 * docs/protocol.md.
 */
#ifndef RF_INVITE_H
#define RF_INVITE_H

#include <stddef.h>
#include <stdint.h>

#define RF_INVITE_PIN_BYTES 16
#define RF_INVITE_PIN_CHARS 22    /* base64url of the pin, no padding */
#define RF_INVITE_SERVER_CHARS 43 /* base64url of the server's 32 random bytes */
#define RF_INVITE_CHARS (1 + RF_INVITE_PIN_CHARS + RF_INVITE_SERVER_CHARS)
#define RF_INVITE_TOKEN_MAX 128 /* the longest token `refuge init` takes */

enum rf_token_kind {
    RF_TOKEN_PLAIN = 1,  /* a bare server token: the first admin's, or an older client's invite */
    RF_TOKEN_INVITE = 2, /* an invite v1: carries the first admin's pin */
};

/* The pin of a first admin's keys. */
void rf_invite_pin(uint8_t pin[RF_INVITE_PIN_BYTES], const uint8_t sign_pk[32],
                   const uint8_t box_pk[32]);
/* Writes the invite token (NUL-terminated; cap > RF_INVITE_CHARS) for a
 * server token. RF_ERR_FORMAT unless server is 43 base64url characters. */
int rf_invite_encode(char *out, size_t cap, const char *server, const uint8_t sign_pk[32],
                     const uint8_t box_pk[32]);
/* Splits a token: *kind, the part to send to the server (NUL-terminated,
 * servercap > RF_INVITE_TOKEN_MAX) and, for an invite, its pin.
 * RF_ERR_LIMIT: empty or longer than RF_INVITE_TOKEN_MAX; RF_ERR_FORMAT: the
 * shape of an invite with a damaged pin. */
int rf_invite_parse(const char *token, size_t len, enum rf_token_kind *kind, char *server,
                    size_t servercap, uint8_t pin[RF_INVITE_PIN_BYTES]);

#endif
