/*
 * keyring.h - an unlocked key file kept for a while in the kernel's
 * session keyring (`refuge unlock [--for MINUTES]`, `refuge lock`), as
 * sudo keeps a timestamp and ssh-agent a key: the caseworker types the
 * passphrase once, and the commands that follow skip the key file's
 * Argon2id while the key lasts.
 *
 * The key is a "user" key in the session keyring (add_key(2), keyctl(2);
 * no library), named "refuge:v1:" + hex(BLAKE2b-128(the home directory's
 * real path)), readable only by its possessors (the processes that hold
 * the session keyring: permissions possessor view/read/write/search/
 * setattr, nothing for the user or others), with the kernel's expiry set
 * to the unlock's duration. Never on disk: the kernel holds it in its
 * memory, wipes it when it expires or is invalidated, and loses it when
 * the machine stops. Its payload, version 1:
 *   "RFKR" | version u8 (= 1) | BLAKE2b-256(key.rfk's bytes) [32] |
 *   name_len u8 | name | sign_pk[32] | sign_sk[64] | box_pk[32] | box_sk[32]
 * A payload is used only for the key file it was made from (the hash): a
 * passphrase changed since, or another key file, and the passphrase is
 * asked again. Threat discussion: docs/threat-model.md ("An unlocked
 * session").
 */
#ifndef RF_CLIENT_KEYRING_H
#define RF_CLIENT_KEYRING_H

#include "client/home.h"
#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

#define RF_KEYRING_MINUTES_DEFAULT 15
#define RF_KEYRING_MINUTES_MAX (12 * 60)

/* The keys unlocked from the key file `file` of home h, if the session
 * keyring holds them: 0, else RF_ERR_NOT_FOUND (none, expired, another key
 * file, or no keyring on this system). k: sodium_malloc memory. */
int rf_keyring_get(const struct rf_home *h, const uint8_t *file, size_t n, struct rf_staff_keys *k);
/* Whether the session keyring holds keys for home h (of whichever key
 * file: rf_keyring_get checks that); nothing is read. */
int rf_keyring_held(const struct rf_home *h);
/* Keeps k (unlocked from `file`) for minutes; replaces what was kept. */
int rf_keyring_put(const struct rf_home *h, const uint8_t *file, size_t n,
                   const struct rf_staff_keys *k, unsigned minutes);
/* Forgets the keys of home h (invalidated: the kernel wipes them now).
 * RF_ERR_NOT_FOUND when none was kept. */
int rf_keyring_drop(const struct rf_home *h);

#endif
