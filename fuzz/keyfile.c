/*
 * keyfile.c - fuzzes key file reading with passphrase "fuzz". So that an input
 * does not cost a 64 MiB Argon2id, a stored cost inside the accepted range is
 * replaced by the cheapest one (1 pass, 8 KiB) before reading; a cost outside
 * it is left as is, to exercise the refusal. The seed "valid" is written with
 * that cheap cost, so mutations reach the decrypted-secrets parser.
 */
#include "lib/keyfile.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OPS_MAX 10ULL /* mirrors keyfile.c */
#define MEM_MAX (1ULL << 30)

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (sodium_init() < 0)
        abort();
    if (size > RF_KEYFILE_MAX + 1)
        return 0;
    uint8_t *copy = malloc(size ? size : 1);
    if (copy == NULL)
        return 0;
    if (size)
        memcpy(copy, data, size);
    if (size >= 21) {
        uint64_t ops = get_be64(copy + 5), mem = get_be64(copy + 13);
        if (ops >= 1 && ops <= OPS_MAX && mem >= 8192 && mem <= MEM_MAX && mem % 1024 == 0) {
            put_be64(copy + 5, 1);
            put_be64(copy + 13, 8192);
        }
    }
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    if (k != NULL) {
        if (rf_keyfile_read(k, copy, size, "fuzz", 4) == 0) {
            char fp[48];
            if (rf_fingerprint(fp, sizeof(fp), k->sign_pk, k->box_pk) != 0 || k->name[0] == 0)
                abort();
        }
        sodium_free(k);
    }
    free(copy);
    return 0;
}
