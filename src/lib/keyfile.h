/*
 * keyfile.h - a caseworker's keys, and the file that holds them encrypted
 * under a passphrase (Argon2id + crypto_secretbox). Format in docs/protocol.md:
 *
 *   "RFGK" | version u8 (=1) | opslimit u64 | memlimit u64 | salt[16] |
 *   nonce[24] | secretbox( name_len u8 | name | sign_sk[64] | box_sk[32] )
 *
 * struct rf_staff_keys holds secret keys: allocate it with sodium_malloc.
 */
#ifndef RF_KEYFILE_H
#define RF_KEYFILE_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

#define RF_NAME_MAX 64
#define RF_KEYFILE_MAX 4096
#define RF_PASSPHRASE_MAX 1024

struct rf_staff_keys {
    char name[RF_NAME_MAX + 1];
    uint8_t sign_pk[32]; /* Ed25519 */
    uint8_t sign_sk[64];
    uint8_t box_pk[32]; /* X25519 */
    uint8_t box_sk[32];
};

int rf_staff_keys_generate(struct rf_staff_keys *k, const char *name);

/* Appends the encrypted key file to out. */
int rf_keyfile_write(struct rf_buf *out, const struct rf_staff_keys *k, const char *pass,
                     size_t passlen, uint64_t opslimit, uint64_t memlimit);
/* RF_ERR_PASSPHRASE on a wrong passphrase or altered file; RF_ERR_FORMAT /
 * RF_ERR_VERSION / RF_ERR_LIMIT on a malformed one. */
int rf_keyfile_read(struct rf_staff_keys *k, const uint8_t *file, size_t len, const char *pass,
                    size_t passlen);

/* Human-comparable fingerprint of a caseworker's two public keys (format
 * v2, docs/protocol.md): 8 groups of 5 digits cut from BLAKE2b-320 of
 * "refuge-fingerprint-v2" || sign_pk || box_pk (like Signal's safety
 * numbers). Covering both keys is what lets an admin who compares it know
 * that the encryption key the server shows is the newcomer's too.
 * out >= RF_FINGERPRINT_LEN + 1 bytes. */
#define RF_FINGERPRINT_LEN 47
#define RF_FINGERPRINT_HASH_BYTES 40
int rf_fingerprint(char *out, size_t outcap, const uint8_t sign_pk[32], const uint8_t box_pk[32]);
/* The 40-byte hash the fingerprint is cut from. */
int rf_fingerprint_hash(uint8_t h[RF_FINGERPRINT_HASH_BYTES], const uint8_t sign_pk[32],
                        const uint8_t box_pk[32]);

#endif
