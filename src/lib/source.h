/*
 * source.h - from a codename to the person's keys (DESIGN.md, Cryptography).
 *
 *   k = Argon2id(normalize(codename), instance salt, instance params) [64 bytes]
 *   lookup_id = BLAKE2b-256(k[0..32], key = instance lookup key)   (stored)
 *   (pk, sk)  = crypto_box_seed_keypair(k[32..64])                 (pk stored)
 *
 * struct rf_source_keys holds sk and must live in sodium_malloc memory.
 */
#ifndef RF_SOURCE_H
#define RF_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#define RF_KDF_SALT_BYTES 16
#define RF_LOOKUP_KEY_BYTES 32

struct rf_kdf_params {
    uint64_t opslimit;
    uint64_t memlimit; /* bytes */
    uint8_t salt[RF_KDF_SALT_BYTES];
    uint8_t lookup_key[RF_LOOKUP_KEY_BYTES];
};

struct rf_source_keys {
    uint8_t lookup_id[32];
    uint8_t pk[32];
    uint8_t sk[32];
};

/* Defaults for a new instance: about 0.1-0.3 s and 64 MiB on a server core. */
#define RF_KDF_DEFAULT_OPSLIMIT 3
#define RF_KDF_DEFAULT_MEMLIMIT (64ULL * 1024 * 1024)

/* Fresh random salt and lookup key with the given cost. */
int rf_kdf_params_new(struct rf_kdf_params *p, uint64_t opslimit, uint64_t memlimit);

/* Normalizes codename (see codename.h) and derives the keys. RF_ERR_FORMAT /
 * RF_ERR_LIMIT from normalization, RF_ERR_NOMEM if Argon2id cannot get memory. */
int rf_source_derive(struct rf_source_keys *out, const struct rf_kdf_params *p,
                     const char *codename, size_t len);

#endif
