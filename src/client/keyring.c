/*
 * keyring.c - the unlocked key in the session keyring (see keyring.h).
 * System calls only (add_key, keyctl): the kernel's key retention service
 * needs no library. The payload is built and read in sodium_malloc memory
 * and wiped.
 */
#include "client/keyring.h"
#include "lib/err.h"

#include <errno.h>
#include <linux/keyctl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define MAGIC "RFKR"
#define PAYLOAD_VERSION 1
#define HASH_BYTES 32
#define PAYLOAD_MAX (4 + 1 + HASH_BYTES + 1 + RF_NAME_MAX + 32 + 64 + 32 + 32)

/* Possessor: view, read, write, search, setattr; user, group, other: nothing. */
#define PERM_POSSESSOR 0x2f000000u

static long keyctl5(int op, unsigned long a, unsigned long b, unsigned long c, unsigned long d)
{
    return syscall(SYS_keyctl, op, a, b, c, d);
}

/* "refuge:v1:" + hex(BLAKE2b-128(real path of the home)). */
static int describe(const struct rf_home *h, char *out, size_t cap)
{
    char real[PATH_MAX];
    uint8_t d[16];
    const char *dir = realpath(h->dir, real) ? real : h->dir;
    if (crypto_generichash(d, sizeof(d), (const uint8_t *)dir, strlen(dir), NULL, 0) != 0)
        return RF_ERR_CRYPTO;
    char hex[2 * sizeof(d) + 1];
    sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
    int k = snprintf(out, cap, "refuge:v1:%s", hex);
    return k > 0 && (size_t)k < cap ? 0 : RF_ERR_LIMIT;
}

static long find(const struct rf_home *h)
{
    char desc[64];
    if (describe(h, desc, sizeof(desc)) != 0)
        return -1;
    return keyctl5(KEYCTL_SEARCH, (unsigned long)KEY_SPEC_SESSION_KEYRING, (unsigned long)"user",
                   (unsigned long)desc, 0);
}

int rf_keyring_held(const struct rf_home *h)
{
    return find(h) >= 0;
}

int rf_keyring_get(const struct rf_home *h, const uint8_t *file, size_t n, struct rf_staff_keys *k)
{
    long id = find(h);
    if (id < 0)
        return RF_ERR_NOT_FOUND;
    uint8_t *p = sodium_malloc(PAYLOAD_MAX);
    uint8_t want[HASH_BYTES];
    if (!p)
        return RF_ERR_NOMEM;
    long got = keyctl5(KEYCTL_READ, (unsigned long)id, (unsigned long)p, PAYLOAD_MAX, 0);
    int rc = RF_ERR_NOT_FOUND;
    crypto_generichash(want, sizeof(want), file, n, NULL, 0);
    struct rf_reader r;
    uint8_t version = 0, name_len = 0;
    const uint8_t *hash, *name;
    rf_reader_init(&r, p, got > 0 && got <= PAYLOAD_MAX ? (size_t)got : 0);
    if (rf_get_ptr(&r, &hash, 4) != 0 || memcmp(hash, MAGIC, 4) != 0 ||
        rf_get_u8(&r, &version) != 0 || version != PAYLOAD_VERSION ||
        rf_get_ptr(&r, &hash, HASH_BYTES) != 0 || sodium_memcmp(hash, want, HASH_BYTES) != 0 ||
        rf_get_u8(&r, &name_len) != 0 || name_len > RF_NAME_MAX ||
        rf_get_ptr(&r, &name, name_len) != 0 || rf_get_bytes(&r, k->sign_pk, 32) != 0 ||
        rf_get_bytes(&r, k->sign_sk, 64) != 0 || rf_get_bytes(&r, k->box_pk, 32) != 0 ||
        rf_get_bytes(&r, k->box_sk, 32) != 0 || rf_reader_expect_end(&r) != 0)
        goto out;
    memcpy(k->name, name, name_len);
    k->name[name_len] = '\0';
    rc = 0;
out:
    if (rc != 0)
        sodium_memzero(k, sizeof(*k));
    sodium_free(p); /* wipes */
    return rc;
}

int rf_keyring_put(const struct rf_home *h, const uint8_t *file, size_t n,
                   const struct rf_staff_keys *k, unsigned minutes)
{
    char desc[64];
    size_t name_len = strlen(k->name);
    if (minutes == 0 || minutes > RF_KEYRING_MINUTES_MAX || name_len > RF_NAME_MAX)
        return RF_ERR_INVALID;
    int rc = describe(h, desc, sizeof(desc));
    if (rc != 0)
        return rc;
    uint8_t *p = sodium_malloc(PAYLOAD_MAX);
    if (!p)
        return RF_ERR_NOMEM;
    size_t off = 0;
    memcpy(p, MAGIC, 4);
    off = 4;
    p[off++] = PAYLOAD_VERSION;
    crypto_generichash(p + off, HASH_BYTES, file, n, NULL, 0);
    off += HASH_BYTES;
    p[off++] = (uint8_t)name_len;
    memcpy(p + off, k->name, name_len);
    off += name_len;
    memcpy(p + off, k->sign_pk, 32);
    memcpy(p + off + 32, k->sign_sk, 64);
    memcpy(p + off + 96, k->box_pk, 32);
    memcpy(p + off + 128, k->box_sk, 32);
    off += 160;
    rf_keyring_drop(h); /* a new key, not an update: its expiry and permissions start afresh */
    /* created with the kernel's default permissions (the user may view,
     * not read), then narrowed to the possessor before anything else */
    long id = syscall(SYS_add_key, "user", desc, p, off, KEY_SPEC_SESSION_KEYRING);
    sodium_free(p); /* wipes */
    if (id < 0)
        return RF_ERR_IO;
    if (keyctl5(KEYCTL_SETPERM, (unsigned long)id, PERM_POSSESSOR, 0, 0) != 0 ||
        keyctl5(KEYCTL_SET_TIMEOUT, (unsigned long)id, minutes * 60UL, 0, 0) != 0) {
        keyctl5(KEYCTL_INVALIDATE, (unsigned long)id, 0, 0, 0);
        return RF_ERR_IO;
    }
    return 0;
}

int rf_keyring_drop(const struct rf_home *h)
{
    int dropped = 0;
    long id;
    for (int i = 0; i < 8 && (id = find(h)) >= 0; i++, dropped = 1) /* every one this home has */
        if (keyctl5(KEYCTL_INVALIDATE, (unsigned long)id, 0, 0, 0) != 0 &&
            keyctl5(KEYCTL_UNLINK, (unsigned long)id, (unsigned long)KEY_SPEC_SESSION_KEYRING, 0,
                    0) != 0)
            return RF_ERR_IO;
    return dropped ? 0 : RF_ERR_NOT_FOUND;
}
