/*
 * casekey.h - per-case keys and case events version 2 (docs/protocol.md
 * section 12). A cold sync used to open one X25519 sealed box per event;
 * with a case key it opens one per case key and one XChaCha20-Poly1305 AEAD
 * per event.
 *
 * Case key K: 32 random bytes; its key id is BLAKE2b-64(message = K, key =
 * "refuge-casekey-v1"). K travels in a CASEKEY object (object kind 9, sealed
 * with rf_envelope_seal to every roster member, like an event), whose
 * plaintext is signed by its maker so that no one off the roster (the server
 * included) can slip a key of its own to a writer:
 *
 *   "RFCK" | version u8 (=1) | case id[10] | K[32] | roster u32 |
 *   maker sign_pk[32] | Ed25519(maker, "refuge-casekey-v1" || bytes 0..83)[64]
 *
 * Event version 2 (the object of kind 4 whose bytes start "RFE2" instead of
 * an envelope's "RFGE"):
 *
 *   "RFE2" | key id[8] | nonce[24] |
 *   XChaCha20-Poly1305-IETF(K, nonce, ad = bytes 0..12 || case id,
 *                           signed event (section 8) || 0x80 || 0x00 ...)
 *
 * padded as an envelope pads (rf_envelope_padded_len). The signed event
 * inside is unchanged: the caller still verifies it (rf_event_verify) for
 * the case where the object lives.
 */
#ifndef RF_CASEKEY_H
#define RF_CASEKEY_H

#include "lib/buf.h"
#include "lib/envelope.h" /* RF_KIND_CASEKEY */
#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CASEKEY_MAGIC "RFCK"
#define RF_CASEKEY_VERSION 1
#define RF_CASEKEY_BYTES 32
#define RF_CASEKEY_ID_BYTES 8
#define RF_CASEKEY_CASE_LEN 10
#define RF_CASEKEY_SIGNED_BYTES (4 + 1 + 10 + 32 + 4 + 32)  /* 83: what the signature covers */
#define RF_CASEKEY_OBJ_BYTES (RF_CASEKEY_SIGNED_BYTES + 64) /* 147 */

#define RF_EV2_MAGIC "RFE2"
#define RF_EV2_NONCE_BYTES 24
#define RF_EV2_TAG_BYTES 16
#define RF_EV2_HEADER_BYTES (4 + RF_CASEKEY_ID_BYTES + RF_EV2_NONCE_BYTES) /* 36 */
#define RF_EV2_AD_BYTES (4 + RF_CASEKEY_ID_BYTES + RF_CASEKEY_CASE_LEN)    /* 22 */
/* Smallest v2 event: a padded plaintext is at least 256 bytes. */
#define RF_EV2_MIN_BYTES (RF_EV2_HEADER_BYTES + 256 + RF_EV2_TAG_BYTES) /* 308 */

/* ---- the case key ---- */
/* K = 32 random bytes (key: the caller's secure memory). */
void rf_casekey_new(uint8_t key[RF_CASEKEY_BYTES]);
/* Key id of K: BLAKE2b-64(K, key "refuge-casekey-v1"). */
void rf_casekey_id(uint8_t id[RF_CASEKEY_ID_BYTES], const uint8_t key[RF_CASEKEY_BYTES]);

/* ---- the CASEKEY object's plaintext ---- */
/* Appends the signed plaintext (RF_CASEKEY_OBJ_BYTES) to out, which should be
 * a secure buf; the caller seals it (rf_envelope_seal, RF_KIND_CASEKEY) to
 * the members of roster version `roster`. RF_ERR_INVALID for a case id that
 * is not RF_CASEKEY_CASE_LEN ASCII letters or digits, or roster 0. out is
 * unchanged on error. */
int rf_casekey_encode(struct rf_buf *out, const struct rf_staff_keys *maker, const char *case_id,
                      uint32_t roster, const uint8_t key[RF_CASEKEY_BYTES]);

/* A parsed CASEKEY plaintext: key, maker and sig point into the parsed bytes. */
struct rf_casekey_obj {
    char case_id[RF_CASEKEY_CASE_LEN + 1]; /* NUL-terminated */
    uint32_t roster;
    const uint8_t *key; /* 32 bytes */
    uint8_t id[RF_CASEKEY_ID_BYTES];
    const uint8_t *maker; /* Ed25519 signing key, 32 bytes */
    const uint8_t *sig;   /* 64 bytes */
};
/* Framing only, no signature check: RF_ERR_FORMAT (magic, as soon as a
 * prefix differs; a case id byte not a letter or digit; roster 0; bytes
 * after the signature), RF_ERR_VERSION, RF_ERR_TRUNCATED (input ends
 * early). o is written only on success. */
int rf_casekey_parse(struct rf_casekey_obj *o, const uint8_t *p, size_t n);
/* 0 if the object names case_id (the case where the object lives);
 * RF_ERR_PROTOCOL if it names another (the object was moved);
 * RF_ERR_INVALID if case_id is not a case id. */
int rf_casekey_check_case(const struct rf_casekey_obj *o, const char *case_id);
/* Parse, check the case, and verify the maker's signature
 * (RF_ERR_SIGNATURE). Whether the maker was a member of roster `roster`
 * is the caller's check against the verified roster chain. */
int rf_casekey_verify(struct rf_casekey_obj *o, const uint8_t *p, size_t n, const char *case_id);

/* ---- events version 2 ---- */
/* What the first bytes of a case event object are, without opening it:
 * 1 an envelope ("RFGE", section 1: a version 1 event), 2 an event v2
 * ("RFE2"); RF_ERR_TRUNCATED under 4 bytes, RF_ERR_VERSION for "RFE" and
 * another version byte, RF_ERR_FORMAT otherwise. */
int rf_casekey_event_version(const uint8_t *p, size_t n);

/* Seals the signed event ev (section 8, RF_EVENT_HEADER_BYTES + 1 ..
 * RF_EVENT_BODY_MAX bytes; not re-verified here) for case_id under key,
 * appending the v2 bytes to out. A random nonce; rf_casekey_event_seal_nonce
 * takes the caller's (vectors and tests only: a nonce must never repeat under
 * one key). RF_ERR_INVALID (case id, key NULL), RF_ERR_LIMIT (ev too long),
 * RF_ERR_TRUNCATED (ev too short). out is unchanged on error. */
int rf_casekey_event_seal(struct rf_buf *out, const uint8_t key[RF_CASEKEY_BYTES],
                          const char *case_id, const uint8_t *ev, size_t n);
int rf_casekey_event_seal_nonce(struct rf_buf *out, const uint8_t key[RF_CASEKEY_BYTES],
                                const char *case_id, const uint8_t *ev, size_t n,
                                const uint8_t nonce[RF_EV2_NONCE_BYTES]);

/* The opener's key lookup: the i-th key (i = 0, 1, ...) whose key id is id,
 * or NULL when there is no more. More than one only if two keys share an id
 * (never by chance; a member could make it so on purpose): each is tried. */
typedef const uint8_t *(*rf_casekey_find_fn)(void *ctx, const uint8_t id[RF_CASEKEY_ID_BYTES],
                                             size_t i);
/* A ready lookup over a table of keys (ctx: struct rf_casekey_table *). */
struct rf_casekey_table {
    const uint8_t (*keys)[RF_CASEKEY_BYTES];
    const uint8_t (*ids)[RF_CASEKEY_ID_BYTES]; /* rf_casekey_id of each key */
    size_t n;
};
const uint8_t *rf_casekey_table_find(void *ctx, const uint8_t id[RF_CASEKEY_ID_BYTES], size_t i);

/* Opens a v2 event of case_id: the signed event (padding removed) is
 * appended to out (a secure buf is the caller's choice; out unchanged on
 * error). Errors, each before any plaintext is produced:
 *   RF_ERR_INVALID    case_id not a case id, find NULL
 *   RF_ERR_FORMAT     not "RFE" (as soon as a prefix differs); padding
 *                     malformed after authentication
 *   RF_ERR_VERSION    "RFE" and a version byte other than '2'
 *   RF_ERR_TRUNCATED  shorter than RF_EV2_MIN_BYTES
 *   RF_ERR_LIMIT      longer than the largest event's
 *   RF_ERR_NOT_RECIPIENT  no key with the key id (ask for a grant)
 *   RF_ERR_DECRYPT    no key with that id authenticates it (another case,
 *                     header, nonce or ciphertext changed, wrong key) */
int rf_casekey_event_open(struct rf_buf *out, const uint8_t *p, size_t n, const char *case_id,
                          rf_casekey_find_fn find, void *ctx);
/* The key id in a v2 event's header (RF_ERR_TRUNCATED / FORMAT / VERSION
 * as above), e.g. to fetch the key before opening. */
int rf_casekey_event_keyid(uint8_t id[RF_CASEKEY_ID_BYTES], const uint8_t *p, size_t n);

#endif
