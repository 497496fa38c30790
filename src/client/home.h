/*
 * home.h - the client's home directory: $REFUGE_HOME, else
 * ~/.config/refuge, mode 0700. It holds config.json (server URL, the pinned
 * first admin's signing key, the caseworker's name), key.rfk (the key file,
 * encrypted under the passphrase) and cache.db (ciphertext only).
 */
#ifndef RF_CLIENT_HOME_H
#define RF_CLIENT_HOME_H

#include "lib/buf.h"
#include "lib/keyfile.h"

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#define RF_URL_MAX 512

struct rf_home {
    char dir[PATH_MAX];
    char server[RF_URL_MAX];
    char name[RF_NAME_MAX + 1];
    uint8_t pinned[32]; /* the first admin's Ed25519 key */
    int insecure_http;  /* plain http:// allowed to any host (init --insecure-http) */
};

/* Finds the home directory (does not create it). */
int rf_home_locate(struct rf_home *h);
/* Creates the directory (and parents) with mode 0700. */
int rf_home_create(const struct rf_home *h);
/* Loads config.json; RF_ERR_NOT_FOUND if this home was never initialised. */
int rf_home_load(struct rf_home *h);
int rf_home_save(const struct rf_home *h);
/* dir/name into out. */
int rf_home_path(const struct rf_home *h, const char *name, char *out, size_t cap);
/* Reads a whole small file (bounded by out->max). */
int rf_home_read(const struct rf_home *h, const char *name, struct rf_buf *out);
/* Writes a file atomically (temp, fsync, rename, fsync dir), mode 0600. */
int rf_home_write(const struct rf_home *h, const char *name, const uint8_t *p, size_t n);
/* Loads and decrypts key.rfk, asking for the passphrase unless the session
 * keyring holds it unlocked (keyring.h); *out is sodium_malloc memory (free
 * with rf_home_keys_free). Prints what went wrong. */
int rf_home_keys_load(const struct rf_home *h, struct rf_staff_keys **out);
/* rf_home_keys_load for `refuge unlock`: always asks for the passphrase, and
 * keeps the unlocked key in the session keyring for minutes (0: as
 * rf_home_keys_load). */
int rf_home_keys_unlock(const struct rf_home *h, struct rf_staff_keys **out, unsigned minutes);
void rf_home_keys_free(struct rf_staff_keys *k);
/* Loads config and keys; prints a hint and fails if not initialised. */
int rf_home_open(struct rf_home *h, struct rf_staff_keys **keys);

#endif
