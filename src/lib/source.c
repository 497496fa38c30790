/*
 * source.c - from a codename to the person's lookup id and X25519 keypair.
 *
 * Owns: the instance KDF parameters (fresh salt and lookup key, cost limits)
 * and the derivation described in source.h and, byte by byte, in
 * docs/codename.md (with test vectors checked by tests/unit/source_test.c).
 *
 * Invariants:
 *  - the normalized codename and the 64-byte Argon2id output live only in
 *    sodium_malloc memory and are wiped (sodium_free) before returning;
 *  - parameters are validated on every derivation, not only when made: they
 *    come back from storage, and a memlimit from a damaged store must not
 *    make the server allocate without bound;
 *  - on any failure *out is zeroed, so no half-derived key escapes.
 */
#include "lib/source.h"
#include "lib/secmem.h"

#include <sodium.h>
#include <string.h>

#include "lib/codename.h"
#include "lib/err.h"

#define RF_KDF_MEMLIMIT_MIN (8ULL * 1024 * 1024)
#define RF_KDF_MEMLIMIT_MAX (1024ULL * 1024 * 1024)
#define RF_KDF_OUT_BYTES 64

_Static_assert(RF_KDF_SALT_BYTES == crypto_pwhash_SALTBYTES, "salt size is Argon2id's");
_Static_assert(RF_LOOKUP_KEY_BYTES >= crypto_generichash_KEYBYTES_MIN &&
                   RF_LOOKUP_KEY_BYTES <= crypto_generichash_KEYBYTES_MAX,
               "lookup key is a BLAKE2b key");
_Static_assert(sizeof(((struct rf_source_keys *)0)->pk) == crypto_box_PUBLICKEYBYTES, "pk");
_Static_assert(sizeof(((struct rf_source_keys *)0)->sk) == crypto_box_SECRETKEYBYTES, "sk");
_Static_assert(RF_KDF_OUT_BYTES - 32 == crypto_box_SEEDBYTES, "seed is the second half");

static int check_cost(uint64_t opslimit, uint64_t memlimit)
{
    if (opslimit < crypto_pwhash_OPSLIMIT_MIN || opslimit > crypto_pwhash_OPSLIMIT_MAX)
        return RF_ERR_INVALID;
    if (memlimit < RF_KDF_MEMLIMIT_MIN || memlimit > RF_KDF_MEMLIMIT_MAX)
        return RF_ERR_INVALID;
    return RF_OK;
}

int rf_kdf_params_new(struct rf_kdf_params *p, uint64_t opslimit, uint64_t memlimit)
{
    if (p == NULL)
        return RF_ERR_INVALID;
    int rc = check_cost(opslimit, memlimit);
    if (rc != RF_OK)
        return rc;
    p->opslimit = opslimit;
    p->memlimit = memlimit;
    randombytes_buf(p->salt, sizeof(p->salt));
    randombytes_buf(p->lookup_key, sizeof(p->lookup_key));
    return RF_OK;
}

int rf_source_derive(struct rf_source_keys *out, const struct rf_kdf_params *p,
                     const char *codename, size_t len)
{
    if (out == NULL || p == NULL || (codename == NULL && len > 0))
        return RF_ERR_INVALID;
    sodium_memzero(out, sizeof(*out));
    int rc = check_cost(p->opslimit, p->memlimit);
    if (rc != RF_OK)
        return rc;

    char *norm = rf_secmem_alloc(RF_CODENAME_MAX);
    unsigned char *k = rf_secmem_alloc(RF_KDF_OUT_BYTES);
    size_t nlen = 0;
    rc = RF_ERR_NOMEM;
    if (norm == NULL || k == NULL)
        goto out;
    rc = rf_codename_normalize(norm, RF_CODENAME_MAX, &nlen, codename, len);
    if (rc != RF_OK)
        goto out;
    if (crypto_pwhash(k, RF_KDF_OUT_BYTES, norm, nlen, p->salt, p->opslimit, (size_t)p->memlimit,
                      crypto_pwhash_ALG_ARGON2ID13) != 0) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    rc = RF_ERR_CRYPTO;
    if (crypto_generichash(out->lookup_id, sizeof(out->lookup_id), k, 32, p->lookup_key,
                           sizeof(p->lookup_key)) != 0)
        goto out;
    if (crypto_box_seed_keypair(out->pk, out->sk, k + 32) != 0)
        goto out;
    rc = RF_OK;
out:
    rf_secmem_free(k); /* sodium_free wipes; NULL is a no-op */
    rf_secmem_free(norm);
    if (rc != RF_OK)
        sodium_memzero(out, sizeof(*out));
    return rc;
}
