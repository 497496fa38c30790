/*
 * roster.c - fuzzes roster parsing and chain verification: the input is
 * parsed, verified as a first roster pinned to the admin key of
 * docs/protocol.md (the seed corpus's signer), and, if it parses, verified
 * as its own successor (which must always fail: the version cannot match).
 */
#include "lib/roster.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rf_roster *a, *b;
static uint8_t admin_pk[32];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (a == NULL) {
        uint8_t seed[32], sk[64];
        memset(seed, 0x03, sizeof(seed));
        if (sodium_init() < 0 || crypto_sign_seed_keypair(admin_pk, sk, seed) != 0)
            abort();
        a = calloc(1, sizeof(*a));
        b = calloc(1, sizeof(*b));
        if (a == NULL || b == NULL)
            abort();
    }
    int parsed = rf_roster_parse(a, data, size) == 0;
    if (parsed && (a->n < 1 || a->n > RF_ROSTER_MAX_MEMBERS))
        abort();
    (void)rf_roster_verify(b, data, size, NULL, NULL, 0, admin_pk);
    if (parsed && rf_roster_verify(b, data, size, a, data, size, NULL) == 0)
        abort();
    uint8_t h[32];
    rf_roster_hash(h, data, size);
    return 0;
}
