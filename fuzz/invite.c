/*
 * invite.c - fuzzes the enrollment token parser `refuge init` runs on what
 * the newcomer pasted: it must not crash, and what it calls an invite must
 * re-encode to the same text (one token, one meaning).
 */
#include "lib/invite.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    char server[RF_INVITE_TOKEN_MAX + 1];
    uint8_t pin[RF_INVITE_PIN_BYTES];
    enum rf_token_kind kind;
    if (rf_invite_parse((const char *)data, size, &kind, server, sizeof(server), pin) != 0)
        return 0;
    if (strlen(server) == 0 || strlen(server) > RF_INVITE_TOKEN_MAX)
        abort();
    if (kind == RF_TOKEN_INVITE) {
        char again[RF_INVITE_PIN_CHARS + 1];
        size_t n = sodium_base64_ENCODED_LEN(sizeof(pin), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        if (n != sizeof(again) || size != RF_INVITE_CHARS ||
            strlen(server) != RF_INVITE_SERVER_CHARS ||
            memcmp(server, data + 1 + RF_INVITE_PIN_CHARS, RF_INVITE_SERVER_CHARS) != 0)
            abort();
        sodium_bin2base64(again, sizeof(again), pin, sizeof(pin),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
        if (memcmp(again, data + 1, RF_INVITE_PIN_CHARS) != 0)
            abort();
    } else if (kind != RF_TOKEN_PLAIN || strlen(server) != size ||
               memcmp(server, data, size) != 0) {
        abort();
    }
    return 0;
}
