/*
 * json.c - the wiping jansson allocator (json.h).
 *
 * Layout of a block: 16 bytes holding the caller's size n, then n bytes
 * handed to jansson (16 keeps max_align_t alignment). Free wipes all
 * n + 16 bytes, so no plaintext that passed through a JSON value stays in
 * freed heap memory.
 */
#include "lib/json.h"

#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define HEAD 16

static void *wipe_malloc(size_t n)
{
    if (n > SIZE_MAX - HEAD)
        return NULL;
    unsigned char *p = malloc(n + HEAD);
    if (!p)
        return NULL;
    memcpy(p, &n, sizeof(n));
    return p + HEAD;
}

static void wipe_free(void *v)
{
    if (!v)
        return;
    unsigned char *p = (unsigned char *)v - HEAD;
    size_t n;
    memcpy(&n, p, sizeof(n));
    sodium_memzero(p, n + HEAD);
    free(p);
}

void rf_json_init(void)
{
    json_set_alloc_funcs(wipe_malloc, wipe_free);
}

void rf_json_free(void *p)
{
    wipe_free(p);
}
