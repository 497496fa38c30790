/*
 * envelope.c - fuzzes envelope opening: the input is taken as ciphertext and
 * opened with a fixed recipient key (recipient A of docs/protocol.md, the key
 * the seed corpus is sealed to), once whole and again fed in small pieces.
 * Both runs must agree on the status and the plaintext; the header parser
 * runs on the input too.
 */
#include "lib/buf.h"
#include "lib/envelope.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t pk[32], sk[32];

static void init(void)
{
    static int done;
    if (done)
        return;
    uint8_t seed[32];
    memset(seed, 0x01, sizeof(seed));
    if (sodium_init() < 0 || crypto_box_seed_keypair(pk, sk, seed) != 0)
        abort();
    done = 1;
}

static int buf_sink(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    struct rf_env_header h;
    uint8_t ids[4][RF_ENV_KEYID_BYTES];
    (void)rf_envelope_header_parse(&h, ids, 4, data, size);

    struct rf_buf whole, split;
    uint8_t kind = 0;
    rf_buf_init(&whole, 1 << 24);
    rf_buf_init(&split, 1 << 24);
    int rc1 = rf_envelope_open(&whole, &kind, pk, sk, data, size);

    struct rf_open *o = NULL;
    int rc2 = rf_open_new(&o, pk, sk, buf_sink, &split);
    size_t step = size < 2048 ? 1 : 1 + size % 4093;
    for (size_t off = 0; rc2 == 0 && off < size; off += step)
        rc2 = rf_open_write(o, data + off, size - off < step ? size - off : step);
    if (rc2 == 0)
        rc2 = rf_open_finish(o);
    rf_open_free(o);

    if (rc1 != rc2)
        abort();
    if (rc1 == 0 && (whole.len != split.len || memcmp(whole.data, split.data, whole.len) != 0))
        abort();
    rf_buf_free(&whole);
    rf_buf_free(&split);
    return 0;
}
