/*
 * sesskey.h - the session key: what lets several `refuge serve` processes
 * share person sessions through the database without the database ever
 * holding a usable secret (docs/scale-out.md, "Person sessions").
 *
 * The key lives in a file on a tmpfs (e.g. /run/refuge/session.key), never
 * in the data directory and never on a disk: `refuge server session-key
 * FILE` writes it (0600), `refuge serve --session-key FILE` reads it before
 * the sandbox and keeps the file open to re-read it after a rotation. The
 * file holds the current key and the previous one:
 *
 *   "RFSK" | v u8 (=1) | n u8 (1: current only, 2: and previous) |
 *   current[32] | previous[32] (zeros when n = 1) |
 *   check[16] = BLAKE2b-128 of the 70 bytes before it      (86 bytes)
 *
 * Rotation (`refuge server session-key --rotate FILE`) rewrites the file in
 * place (same length, at offset 0: a process re-reading it meanwhile sees a
 * bad check and keeps what it had): the current key becomes the previous,
 * a new one the current. Processes seal new sessions under the current key
 * and open rows sealed under either; one that meets a row under a key it
 * does not know re-reads the file (at most once a second), so a rotation
 * needs no restart. A session sealed under a key that left the file is
 * over: rotate at most every RF_SESSION_LIFETIME_S (4 h).
 *
 * From each key K, with crypto_kdf (context "rfsess01"): subkey 1 seals
 * session rows, 2 pending codenames (session.h), 3 the anonymous forms'
 * CSRF tokens; its id (which key sealed a row) is the first 8 bytes of
 * BLAKE2b-256 keyed with K of "refuge-session-key-id".
 *
 * A session row's sealed field (XChaCha20-Poly1305 under subkey 1):
 *   nonce[24] | seal(plain), ad = "refuge-session-row-v1" | id[32] | keyid[8]
 *   plain = v u8 (=1) | source_id u64 | case_id[10] | pk[32] | sk[32] |
 *           csrf[32] | ends u64 (unix seconds: the session's absolute end)
 * so a row opens only under its own id (the token's hash) and key: a row
 * copied under another id, or a key id changed, does not open.
 */
#ifndef RF_SESSKEY_H
#define RF_SESSKEY_H

#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define RF_SESSKEY_FILE_LEN 86
#define RF_SESSKEY_PLAIN_LEN (1 + 8 + RF_CASE_ID_LEN + 32 + 32 + 32 + 8)
#define RF_SESSKEY_SEALED_LEN (24 + RF_SESSKEY_PLAIN_LEN + 16)

struct rf_sesskey;

/* What a session row holds sealed. */
struct rf_sesskey_plain {
    int64_t source_id;
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t pk[32];
    uint8_t sk[32];
    uint8_t csrf[32];
    int64_t ends;
};

/* Reads the key file at path (before the sandbox), keeping it open for
 * re-reads. Refuses (RF_ERR_INVALID, with what to do in why) a file inside
 * datadir (may be NULL), a file not on a tmpfs or ramfs (a key on a disk
 * outlives the process: a seized disk and database would open the rows),
 * a file others may read, and a malformed one (RF_ERR_FORMAT). */
int rf_sesskey_load(struct rf_sesskey **out, const char *path, const char *datadir, char *why,
                    size_t whylen);
/* From the 86 bytes of a key file (tests, and load). */
int rf_sesskey_from_bytes(struct rf_sesskey **out, const uint8_t *file, size_t n);
void rf_sesskey_free(struct rf_sesskey *k);
/* Re-reads the key file now (0: read, changed or not; an error keeps the
 * keys it had). */
int rf_sesskey_reload(struct rf_sesskey *k);

/* Seals p as the row of id under the current key: keyid and sealed
 * (RF_SESSKEY_SEALED_LEN bytes). */
int rf_sesskey_seal(struct rf_sesskey *k, const uint8_t id[32], const struct rf_sesskey_plain *p,
                    uint8_t keyid[8], uint8_t *sealed, size_t cap, size_t *len);
/* Opens a row of id into out (locked memory, the caller's): the key named
 * by keyid (current or previous; an unknown one makes it re-read the file,
 * at most once a second). RF_ERR_NOT_FOUND for anything that does not open. */
int rf_sesskey_open(struct rf_sesskey *k, const uint8_t id[32], const uint8_t keyid[8],
                    const uint8_t *sealed, size_t len, struct rf_sesskey_plain *out);

/* XChaCha20-Poly1305 with the pending-codename subkey: seal under the
 * current key; open tries the current, then the previous. */
int rf_sesskey_pend_seal(struct rf_sesskey *k, uint8_t *c, const uint8_t *m, size_t mlen,
                         const uint8_t *ad, size_t adlen, const uint8_t nonce[24]);
int rf_sesskey_pend_open(struct rf_sesskey *k, uint8_t *m, const uint8_t *c, size_t clen,
                         const uint8_t *ad, size_t adlen, const uint8_t nonce[24]);
/* The anonymous forms' CSRF key: which 0 the current, 1 the previous
 * (RF_ERR_NOT_FOUND if none). Copied to out (32 bytes; the caller wipes). */
int rf_sesskey_csrf(struct rf_sesskey *k, int which, uint8_t out[32]);

/* The 86 bytes of a key file: a new current key, and prev (NULL: none) as
 * the previous one. */
void rf_sesskey_file_make(uint8_t out[RF_SESSKEY_FILE_LEN], const uint8_t *prev_file);
/* The current key's id of a well-formed key file (tests, status). */
int rf_sesskey_file_ids(const uint8_t *file, size_t n, uint8_t cur[8], uint8_t prev[8],
                        int *has_prev);

/* `refuge server session-key [--rotate] FILE` */
int rf_sesskey_main(int argc, char **argv);

#endif
