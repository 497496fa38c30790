/*
 * envelope.h - the one format for every encrypted object in Refuge (message,
 * file, reply, case event, note). Specified byte by byte in docs/protocol.md.
 *
 *   header:  "RFGE" | version u8 (=2) | kind u8 | nrecip u16 |
 *            nrecip x ( key_id[8] | crypto_box_seal(content_key)[80] ) |
 *            secretstream_header[24] | commit[32]
 *            commit = BLAKE2b-256(key = content_key, "refuge-envelope-commit-v2"
 *            || every header byte before it): a key commitment, checked by
 *            every opener before it decrypts anything, so no two recipients
 *            can be handed different content keys that both open (version 1,
 *            still read because stored data holds it, has no commit field).
 *   body:    crypto_secretstream_xchacha20poly1305 chunks of the padded
 *            plaintext, 65536 plaintext bytes each (65553 ciphertext bytes)
 *            except the last, which carries TAG_FINAL. Framing is implicit.
 *            The whole header is the associated data of the first chunk, so
 *            stripping, adding or reordering recipients, or changing the kind,
 *            fails decryption.
 *   padding: plaintext || 0x80 || 0x00... (ISO/IEC 7816-4, as sodium_pad) up
 *            to rf_envelope_padded_len(len), a Padme bucket: sizes leak about
 *            log log of the length.
 *
 * Sealing and opening stream: memory is O(one chunk) whatever the object's
 * size, so a 1 GB upload is encrypted as it arrives and a 1 GB file decrypts
 * to its destination chunk by chunk. Plaintext chunk buffers are sodium_malloc.
 */
#ifndef RF_ENVELOPE_H
#define RF_ENVELOPE_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

#define RF_ENV_VERSION 2     /* written */
#define RF_ENV_VERSION_MIN 1 /* oldest read: version 1 has no key commitment */
#define RF_ENV_COMMIT_BYTES 32
#define RF_ENV_MAGIC "RFGE"
#define RF_ENV_CHUNK 65536
#define RF_ENV_KEYID_BYTES 8
#define RF_ENV_MAX_RECIPIENTS 256
#define RF_ENV_STANZA_BYTES (RF_ENV_KEYID_BYTES + 80)
#define RF_ENV_MIN_PADDED 256
/* Largest header (version 2, 256 recipients): 22 592 bytes. */
#define RF_ENV_HEADER_MAX                                                                          \
    (8 + RF_ENV_MAX_RECIPIENTS * RF_ENV_STANZA_BYTES + 24 + RF_ENV_COMMIT_BYTES)

enum rf_kind {
    RF_KIND_MESSAGE = 1, /* person -> caseworkers: intake answers and messages (JSON) */
    RF_KIND_FILE = 2,    /* person -> caseworkers: an attachment (file framing, below) */
    RF_KIND_REPLY = 3,   /* caseworker -> person and caseworkers */
    RF_KIND_EVENT = 4,   /* case event, caseworkers only, signed */
    RF_KIND_NOTE = 5,    /* caseworker note, caseworkers only */
    RF_KIND_MAX = 5,     /* the kinds 1..RF_KIND_MAX, and: */
    RF_KIND_CASEKEY = 9, /* a case key, caseworkers only, signed (casekey.h) */
};
/* 1 if kind is one of the kinds above (1..RF_KIND_MAX or RF_KIND_CASEKEY). */
int rf_kind_known(unsigned kind);

/* Short id of an X25519 public key: BLAKE2b-64 keyed with "refuge-keyid-v1". */
void rf_keyid(uint8_t out[RF_ENV_KEYID_BYTES], const uint8_t pk[32]);

/* Padded plaintext length for a plaintext of len bytes (> len, >= RF_ENV_MIN_PADDED). */
uint64_t rf_envelope_padded_len(uint64_t len);

/* Receives output bytes; returns 0 or an rf_err, which aborts the operation. */
typedef int (*rf_sink_fn)(void *ctx, const uint8_t *p, size_t n);

/* ---- sealing ---- */
struct rf_seal;

/* Starts an envelope of kind to the npk X25519 keys in pks; the header is
 * written to sink before this returns. */
int rf_seal_new(struct rf_seal **out, uint8_t kind, const uint8_t (*pks)[32], size_t npk,
                rf_sink_fn sink, void *ctx);
int rf_seal_write(struct rf_seal *s, const uint8_t *p, size_t n);
/* Pads, writes the final chunk. No write after finish. */
int rf_seal_finish(struct rf_seal *s);
/* Plaintext bytes written so far (before padding). */
uint64_t rf_seal_plain_len(const struct rf_seal *s);
/* Ciphertext bytes given to the sink so far. */
uint64_t rf_seal_cipher_len(const struct rf_seal *s);
void rf_seal_free(struct rf_seal *s);

/* One-shot: seal plain into out (appended). */
int rf_envelope_seal(struct rf_buf *out, uint8_t kind, const uint8_t (*pks)[32], size_t npk,
                     const uint8_t *plain, size_t len);

/* ---- parsing the header without keys (the server validates replies so) ---- */
struct rf_env_header {
    uint8_t version;
    uint8_t kind;
    uint16_t nrecip;
    size_t header_len; /* bytes from the start to the first chunk */
};
/* Parses the header at the front of p; RF_ERR_TRUNCATED if more bytes are needed.
 * If keyids is not NULL it receives up to maxids recipient key ids. */
int rf_envelope_header_parse(struct rf_env_header *h, uint8_t (*keyids)[RF_ENV_KEYID_BYTES],
                             size_t maxids, const uint8_t *p, size_t n);

/* ---- opening ---- */
struct rf_open;

/* Prepares to open an envelope with the X25519 keypair (pk, sk); plaintext
 * (padding removed) goes to sink. */
int rf_open_new(struct rf_open **out, const uint8_t pk[32], const uint8_t sk[32], rf_sink_fn sink,
                void *ctx);
/* Feeds ciphertext in any split. Errors: RF_ERR_FORMAT/VERSION (bad header),
 * RF_ERR_NOT_RECIPIENT, RF_ERR_DECRYPT (tampered, reordered, wrong key),
 * RF_ERR_FORMAT (data after the final chunk). */
int rf_open_write(struct rf_open *o, const uint8_t *p, size_t n);
/* RF_ERR_TRUNCATED if the final chunk has not been seen; RF_ERR_FORMAT on bad padding. */
int rf_open_finish(struct rf_open *o);
/* Kind from the header (0 before the header is parsed). */
uint8_t rf_open_kind(const struct rf_open *o);
void rf_open_free(struct rf_open *o);

/* One-shot: opens ct into out (a secure buf is the caller's choice). */
int rf_envelope_open(struct rf_buf *out, uint8_t *kind, const uint8_t pk[32], const uint8_t sk[32],
                     const uint8_t *ct, size_t len);

/*
 * File objects (RF_KIND_FILE): the plaintext starts with a small metadata
 * block, then the file's bytes. Helpers to write and split it live here so
 * that the server and client agree (implemented in filemeta.c):
 *
 *   "RFGF" | name_len u16 | name (UTF-8, 1..255 bytes, no NUL, '/' or '\\') |
 *   type_len u8 | type (printable ASCII, 0..127 bytes) | file bytes
 */
#define RF_FILE_META_MAX 1024

#define RF_FILEMETA_MAGIC "RFGF"
#define RF_FILEMETA_NAME_MAX 255
#define RF_FILEMETA_TYPE_MAX 127

struct rf_filemeta {
    char name[RF_FILEMETA_NAME_MAX + 1]; /* NUL-terminated */
    char type[RF_FILEMETA_TYPE_MAX + 1]; /* NUL-terminated, may be empty */
};

/* Appends the metadata block to out. RF_ERR_FORMAT / RF_ERR_LIMIT on a name
 * or type that the rules above refuse. */
int rf_filemeta_encode(struct rf_buf *out, const char *name, size_t name_len, const char *type,
                       size_t type_len);
/* Parses the block at the front of p (n bytes so far): on success *consumed
 * is its length and the file's bytes follow; RF_ERR_TRUNCATED if more bytes
 * are needed (call again with more); RF_ERR_FORMAT / RF_ERR_LIMIT if bad. */
int rf_filemeta_parse(struct rf_filemeta *m, size_t *consumed, const uint8_t *p, size_t n);
/* A file name safe to create in a directory of the caseworker's machine:
 * no path separators, no leading dot, no control or bidi-control
 * characters, no characters Windows refuses, valid UTF-8, at most cap-1
 * bytes; "file" if nothing is left. cap >= 5; RF_ERR_INVALID otherwise. */
int rf_filemeta_safe_name(char *out, size_t cap, const char *name);

/*
 * Grants (rewrap): giving a caseworker approved later access to an object
 * without touching the object. The envelope's header is bound to its first
 * chunk, so no stanza can be added; instead a grant, stored beside the
 * object, seals the same content key to one more X25519 key:
 *   grant = key_id(8) of the new recipient | crypto_box_seal(content_key)(80)
 */
#define RF_GRANT_BYTES RF_ENV_STANZA_BYTES
/* Grants kept for one (object, recipient key), one per granter: as many as a
 * roster can list (RF_ROSTER_MAX_MEMBERS), so junk from one member never
 * crowds out an honest rewrap, and no one can store more. */
#define RF_GRANTS_PER_KEY_MAX 256

/* Errors (choices made in envelope.c; docs/protocol.md "Grants (rewrap)"):
 * rf_envelope_content_key: the header parser's (RF_ERR_TRUNCATED when ct
 * holds less than the whole header, RF_ERR_FORMAT / VERSION / LIMIT),
 * RF_ERR_NOT_RECIPIENT when no stanza carries keyid(pk), RF_ERR_DECRYPT when
 * such stanzas exist but none opens to a key the header commits to (version
 * 2; version 1 has no commitment). It does not authenticate the header
 * (only the first chunk does): grant only keys of objects this client has
 * opened, or a server could have it rewrap a key of its own choosing (which
 * only makes the grant useless, never reveals a key).
 * rf_grant_make: RF_ERR_INVALID if recipient_pk is not a usable X25519 key.
 * rf_open_new_grant: RF_ERR_NOT_RECIPIENT at once if the grant's key id is
 * not keyid(pk); RF_ERR_DECRYPT at once if it does not open with (pk, sk); a
 * grant of another object's content key, or an altered header, gives
 * RF_ERR_DECRYPT from rf_open_write / rf_open_finish (at the header's key
 * commitment in version 2, else at the first chunk). The
 * object's own stanzas are ignored (pk need not be among them). */

/* The content key of the envelope whose header starts ct (the header is
 * enough), opened with the stanza for (pk, sk). key must be secure memory. */
int rf_envelope_content_key(uint8_t key[32], const uint8_t *ct, size_t len, const uint8_t pk[32],
                            const uint8_t sk[32]);
/* 0 if the envelope whose header starts ct commits to key (always for
 * version 1); RF_ERR_DECRYPT if it does not; the header parser's errors. A
 * key taken from a grant is checked so before it is trusted or re-granted. */
int rf_envelope_key_check(const uint8_t key[32], const uint8_t *ct, size_t len);
/* Seals key to recipient_pk as a grant. */
int rf_grant_make(uint8_t grant[RF_GRANT_BYTES], const uint8_t key[32],
                  const uint8_t recipient_pk[32]);
/* Like rf_open_new, but the content key comes from grant (for (pk, sk))
 * instead of a header stanza; the header is still parsed and authenticated
 * as the first chunk's associated data. */
int rf_open_new_grant(struct rf_open **out, const uint8_t grant[RF_GRANT_BYTES],
                      const uint8_t pk[32], const uint8_t sk[32], rf_sink_fn sink, void *ctx);

/* Like rf_open_new, but with the content key already opened from this
 * recipient's stanza (rf_envelope_content_key, say on another thread ahead
 * of time): no stanza is opened; the key is checked against the header's
 * commitment (version 2) before anything is decrypted, and the header is
 * authenticated as the first chunk's associated data, as always. A key the
 * header does not commit to (or, version 1, that does not decrypt the first
 * chunk) gives RF_ERR_DECRYPT from rf_open_write / rf_open_finish. */
int rf_open_new_key(struct rf_open **out, const uint8_t key[32], rf_sink_fn sink, void *ctx);

/* Frees the calling thread's kept seal and open state objects (each
 * thread keeps one of each, wiped, between uses: see envelope.c). A thread
 * that seals or opens and then exits calls it last, or its guarded, locked
 * pages are lost. Harmless when it holds none. */
void rf_envelope_thread_done(void);

#endif
