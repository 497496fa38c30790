/*
 * invite.c - the invite token's format (see invite.h). Pure bytes: the
 * caller fetches roster version 1 and compares the pin.
 */
#include "lib/invite.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/keyfile.h"

#include <sodium.h>
#include <string.h>

static int b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int all_b64url(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!b64url_char(s[i]))
            return 0;
    return 1;
}

void rf_invite_pin(uint8_t pin[RF_INVITE_PIN_BYTES], const uint8_t sign_pk[32],
                   const uint8_t box_pk[32])
{
    uint8_t h[RF_FINGERPRINT_HASH_BYTES];
    rf_fingerprint_hash(h, sign_pk, box_pk);
    memcpy(pin, h, RF_INVITE_PIN_BYTES);
}

int rf_invite_encode(char *out, size_t cap, const char *server, const uint8_t sign_pk[32],
                     const uint8_t box_pk[32])
{
    uint8_t pin[RF_INVITE_PIN_BYTES];
    size_t n = strnlen(server, RF_INVITE_SERVER_CHARS + 1);
    if (cap <= RF_INVITE_CHARS)
        return RF_ERR_LIMIT;
    if (n != RF_INVITE_SERVER_CHARS || !all_b64url(server, n))
        return RF_ERR_FORMAT;
    rf_invite_pin(pin, sign_pk, box_pk);
    out[0] = 'i';
    int rc = rf_b64_encode(out + 1, cap - 1, pin, sizeof(pin));
    if (rc != 0)
        return rc;
    memcpy(out + 1 + RF_INVITE_PIN_CHARS, server, RF_INVITE_SERVER_CHARS + 1);
    return 0;
}

int rf_invite_parse(const char *token, size_t len, enum rf_token_kind *kind, char *server,
                    size_t servercap, uint8_t pin[RF_INVITE_PIN_BYTES])
{
    char again[RF_INVITE_PIN_CHARS + 1];
    size_t got = 0;
    if (len == 0 || len > RF_INVITE_TOKEN_MAX || servercap <= RF_INVITE_TOKEN_MAX ||
        memchr(token, 0, len) != NULL)
        return RF_ERR_LIMIT;
    if (len != RF_INVITE_CHARS || token[0] != 'i' || !all_b64url(token, len)) {
        *kind = RF_TOKEN_PLAIN;
        memcpy(server, token, len);
        server[len] = 0;
        return 0;
    }
    /* The pin must be canonical base64url (it re-encodes to the same text),
     * so one token has one meaning. */
    if (rf_b64_decode(pin, RF_INVITE_PIN_BYTES, &got, token + 1, RF_INVITE_PIN_CHARS) != 0 ||
        got != RF_INVITE_PIN_BYTES || rf_b64_encode(again, sizeof(again), pin, got) != 0 ||
        memcmp(again, token + 1, RF_INVITE_PIN_CHARS) != 0) {
        sodium_memzero(pin, RF_INVITE_PIN_BYTES);
        return RF_ERR_FORMAT;
    }
    *kind = RF_TOKEN_INVITE;
    memcpy(server, token + 1 + RF_INVITE_PIN_CHARS, RF_INVITE_SERVER_CHARS);
    server[RF_INVITE_SERVER_CHARS] = 0;
    return 0;
}
