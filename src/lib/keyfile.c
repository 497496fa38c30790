/*
 * keyfile.c - a caseworker's key pair set, the passphrase-encrypted file that
 * holds it, and the fingerprint people compare (format in keyfile.h and
 * docs/protocol.md).
 *
 * The file key is Argon2id(passphrase, salt, opslimit, memlimit) and seals
 * the secret keys with crypto_secretbox. Every header field except magic and
 * version feeds the key or the nonce, so altering any of them fails the MAC
 * (RF_ERR_PASSPHRASE). The stored cost is bounded before Argon2id runs: a
 * hostile file cannot make us burn a gigabyte and minutes (RF_ERR_LIMIT).
 * Public keys are not stored: they are recomputed from the secret keys.
 *
 * Invariants: the derived key and the decrypted plaintext live only in
 * sodium_malloc memory; on any failure *k is wiped.
 */
#include "lib/keyfile.h"
#include "lib/err.h"

#include <sodium.h>
#include <string.h>
#include <unistr.h>

#define KF_MAGIC "RFGK"
#define KF_VERSION 1
#define KF_SALT 16
#define KF_NONCE crypto_secretbox_NONCEBYTES
#define KF_FIXED (4 + 1 + 8 + 8 + KF_SALT + KF_NONCE)
#define KF_SECRETS (64 + 32)
#define KF_OPS_MAX 10ULL
#define KF_MEM_MAX (1ULL << 30)

_Static_assert(KF_NONCE == 24, "secretbox nonce");

/* Names: 1..RF_NAME_MAX bytes of UTF-8 without control characters. */
static int name_check(const uint8_t *p, size_t n)
{
    if (n < 1 || n > RF_NAME_MAX)
        return RF_ERR_FORMAT;
    if (u8_check(p, n) != NULL)
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return RF_ERR_FORMAT;
    return 0;
}

/* Fills the public halves from the secret halves. */
static int derive_public(struct rf_staff_keys *k)
{
    uint8_t seed[32];
    uint8_t sk[64];
    int rc = 0;
    if (crypto_sign_ed25519_sk_to_seed(seed, k->sign_sk) != 0 ||
        crypto_sign_seed_keypair(k->sign_pk, sk, seed) != 0)
        rc = RF_ERR_CRYPTO;
    /* an Ed25519 secret key is seed || pk: refuse one whose halves disagree */
    else if (sodium_memcmp(sk, k->sign_sk, 64) != 0)
        rc = RF_ERR_FORMAT;
    else if (crypto_scalarmult_base(k->box_pk, k->box_sk) != 0)
        rc = RF_ERR_FORMAT;
    sodium_memzero(seed, sizeof(seed));
    sodium_memzero(sk, sizeof(sk));
    return rc;
}

int rf_staff_keys_generate(struct rf_staff_keys *k, const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (name_check((const uint8_t *)name, n) != 0)
        return RF_ERR_INVALID;
    sodium_memzero(k, sizeof(*k));
    memcpy(k->name, name, n);
    crypto_sign_keypair(k->sign_pk, k->sign_sk);
    crypto_box_keypair(k->box_pk, k->box_sk);
    return 0;
}

static int params_check(uint64_t ops, uint64_t mem)
{
    if (ops > KF_OPS_MAX || mem > KF_MEM_MAX || mem > SIZE_MAX)
        return RF_ERR_LIMIT;
    /* Argon2id counts memory in KiB: a memlimit that is not a whole number
     * of KiB would let bits of the file change without changing the key. */
    if (ops < crypto_pwhash_OPSLIMIT_MIN || mem < crypto_pwhash_MEMLIMIT_MIN || mem % 1024 != 0)
        return RF_ERR_FORMAT;
    return 0;
}

static int derive_key(uint8_t *key, const char *pass, size_t passlen, const uint8_t *salt,
                      uint64_t ops, uint64_t mem)
{
    if (crypto_pwhash(key, crypto_secretbox_KEYBYTES, pass, passlen, salt, ops, (size_t)mem,
                      crypto_pwhash_ALG_ARGON2ID13) != 0)
        return RF_ERR_NOMEM; /* Argon2id fails only when it cannot get its memory */
    return 0;
}

int rf_keyfile_write(struct rf_buf *out, const struct rf_staff_keys *k, const char *pass,
                     size_t passlen, uint64_t opslimit, uint64_t memlimit)
{
    size_t name_len = strnlen(k->name, sizeof(k->name));
    int rc = name_check((const uint8_t *)k->name, name_len);
    if (rc != 0)
        return RF_ERR_INVALID;
    if (passlen > RF_PASSPHRASE_MAX)
        return RF_ERR_LIMIT;
    if ((rc = params_check(opslimit, memlimit)) != 0)
        return RF_ERR_INVALID;
    size_t plen = 1 + name_len + KF_SECRETS;
    uint8_t *key = sodium_malloc(crypto_secretbox_KEYBYTES);
    uint8_t *plain = sodium_malloc(plen);
    uint8_t salt[KF_SALT], nonce[KF_NONCE];
    size_t before = out->len;
    if (key == NULL || plain == NULL) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    randombytes_buf(salt, sizeof(salt));
    randombytes_buf(nonce, sizeof(nonce));
    plain[0] = (uint8_t)name_len;
    memcpy(plain + 1, k->name, name_len);
    memcpy(plain + 1 + name_len, k->sign_sk, 64);
    memcpy(plain + 1 + name_len + 64, k->box_sk, 32);
    if ((rc = derive_key(key, pass, passlen, salt, opslimit, memlimit)) != 0)
        goto out;
    rc = rf_buf_put(out, KF_MAGIC, 4);
    if (rc == 0)
        rc = rf_buf_put_u8(out, KF_VERSION);
    if (rc == 0)
        rc = rf_buf_put_u64(out, opslimit);
    if (rc == 0)
        rc = rf_buf_put_u64(out, memlimit);
    if (rc == 0)
        rc = rf_buf_put(out, salt, sizeof(salt));
    if (rc == 0)
        rc = rf_buf_put(out, nonce, sizeof(nonce));
    if (rc == 0)
        rc = rf_buf_reserve(out, plen + crypto_secretbox_MACBYTES);
    if (rc != 0)
        goto out;
    crypto_secretbox_easy(out->data + out->len, plain, plen, nonce, key);
    out->len += plen + crypto_secretbox_MACBYTES;
out:
    if (rc != 0)
        out->len = before;
    sodium_free(key);
    sodium_free(plain);
    return rc;
}

/* Checks the cleartext header; on success the reader stands at the box. */
static int header_parse(struct rf_reader *r, uint64_t *ops, uint64_t *mem, const uint8_t **salt,
                        const uint8_t **nonce)
{
    const uint8_t *magic;
    uint8_t version;
    int rc = rf_get_ptr(r, &magic, 4);
    if (rc == 0 && memcmp(magic, KF_MAGIC, 4) != 0)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_u8(r, &version);
    if (rc == 0 && version != KF_VERSION)
        rc = RF_ERR_VERSION;
    if (rc == 0)
        rc = rf_get_u64(r, ops);
    if (rc == 0)
        rc = rf_get_u64(r, mem);
    if (rc == 0)
        rc = params_check(*ops, *mem);
    if (rc == 0)
        rc = rf_get_ptr(r, salt, KF_SALT);
    if (rc == 0)
        rc = rf_get_ptr(r, nonce, KF_NONCE);
    if (rc != 0)
        return rc == RF_ERR_TRUNCATED ? RF_ERR_FORMAT : rc;
    size_t box = rf_reader_left(r);
    size_t min = crypto_secretbox_MACBYTES + 1 + 1 + KF_SECRETS;
    if (box < min || box > min + RF_NAME_MAX - 1)
        return RF_ERR_FORMAT;
    return 0;
}

/* Parses the decrypted secrets into k. */
static int secrets_parse(struct rf_staff_keys *k, const uint8_t *p, size_t n)
{
    struct rf_reader r;
    uint8_t name_len;
    const uint8_t *name;
    rf_reader_init(&r, p, n);
    int rc = rf_get_u8(&r, &name_len);
    if (rc == 0)
        rc = rf_get_ptr(&r, &name, name_len);
    if (rc == 0)
        rc = name_check(name, name_len);
    if (rc == 0)
        rc = rf_get_bytes(&r, k->sign_sk, 64);
    if (rc == 0)
        rc = rf_get_bytes(&r, k->box_sk, 32);
    if (rc == 0)
        rc = rf_reader_expect_end(&r);
    if (rc != 0)
        return RF_ERR_FORMAT;
    memcpy(k->name, name, name_len);
    k->name[name_len] = 0;
    return derive_public(k);
}

int rf_keyfile_read(struct rf_staff_keys *k, const uint8_t *file, size_t len, const char *pass,
                    size_t passlen)
{
    struct rf_reader r;
    uint64_t ops, mem;
    const uint8_t *salt, *nonce, *box;
    uint8_t *key = NULL, *plain = NULL;
    sodium_memzero(k, sizeof(*k));
    if (passlen > RF_PASSPHRASE_MAX)
        return RF_ERR_LIMIT;
    if (len > RF_KEYFILE_MAX)
        return RF_ERR_LIMIT;
    rf_reader_init(&r, file, len);
    int rc = header_parse(&r, &ops, &mem, &salt, &nonce);
    if (rc != 0)
        return rc;
    size_t boxlen = rf_reader_left(&r);
    size_t plen = boxlen - crypto_secretbox_MACBYTES;
    (void)rf_get_ptr(&r, &box, boxlen);
    key = sodium_malloc(crypto_secretbox_KEYBYTES);
    plain = sodium_malloc(plen);
    if (key == NULL || plain == NULL) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    if ((rc = derive_key(key, pass, passlen, salt, ops, mem)) != 0)
        goto out;
    if (crypto_secretbox_open_easy(plain, box, boxlen, nonce, key) != 0) {
        rc = RF_ERR_PASSPHRASE;
        goto out;
    }
    rc = secrets_parse(k, plain, plen);
out:
    if (rc != 0)
        sodium_memzero(k, sizeof(*k));
    sodium_free(key);
    sodium_free(plain);
    return rc;
}

/* BLAKE2b-320 of "refuge-fingerprint-v2" || sign_pk || box_pk: the hash a
 * fingerprint is cut from (and an invite token carries a prefix of). */
int rf_fingerprint_hash(uint8_t h[RF_FINGERPRINT_HASH_BYTES], const uint8_t sign_pk[32],
                        const uint8_t box_pk[32])
{
    static const char domain[] = "refuge-fingerprint-v2";
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, RF_FINGERPRINT_HASH_BYTES);
    crypto_generichash_update(&st, (const uint8_t *)domain, sizeof(domain) - 1);
    crypto_generichash_update(&st, sign_pk, 32);
    crypto_generichash_update(&st, box_pk, 32);
    crypto_generichash_final(&st, h, RF_FINGERPRINT_HASH_BYTES);
    return 0;
}

/* The hash above cut into eight 40-bit big-endian numbers, each reduced mod
 * 100000 and printed as 5 digits. */
int rf_fingerprint(char *out, size_t outcap, const uint8_t sign_pk[32], const uint8_t box_pk[32])
{
    uint8_t h[RF_FINGERPRINT_HASH_BYTES];
    if (outcap < RF_FINGERPRINT_LEN + 1)
        return RF_ERR_LIMIT;
    rf_fingerprint_hash(h, sign_pk, box_pk);
    for (int g = 0; g < 8; g++) {
        uint64_t v = 0;
        for (int i = 0; i < 5; i++)
            v = (v << 8) | h[g * 5 + i];
        v %= 100000;
        for (int d = 4; d >= 0; d--) {
            out[g * 6 + d] = (char)('0' + v % 10);
            v /= 10;
        }
        out[g * 6 + 5] = g == 7 ? '\0' : ' ';
    }
    return 0;
}
