/*
 * apisig.c - fuzzes the Authorization header parser; what parses is checked
 * against a fixed request (it must not crash; it verifies only for the seed).
 */
#include "lib/apisig.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    struct rf_apisig s;
    if (rf_apisig_parse(&s, (const char *)data, size) != 0)
        return 0;
    if (s.ts < 0)
        abort();
    (void)rf_apisig_verify(&s, "POST", "/api/v1/roster");
    return 0;
}
