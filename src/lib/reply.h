/*
 * reply.h - signed replies: the plaintext of an RF_KIND_REPLY object,
 * version 2. A caseworker's client signs the reply with its staff signing
 * key so that colleagues' clients can show who wrote it from the verified
 * roster, never from a field the server or another member could write.
 *
 *   "RFGY" | version u8 (=2) | signer sign_pk[32] | signature[64] | body
 *
 * signature = Ed25519 over "refuge-reply-v2" || case_id (RF_EVENT_CASE_LEN
 * ASCII bytes) || body, so a reply moved to another case fails. body is JSON
 * (UTF-8 without NUL, 1..RF_REPLY_BODY_MAX bytes): {"v":2,"type":"reply",
 * "text":"..."}, no author name (the reader takes it from the roster).
 *
 * Version 1 (still read: stored replies hold it) is the bare JSON object
 * {"v":1,"type":"reply","author":"..","text":".."}: unsigned, its author a
 * claim anyone who can seal to the team could make. rf_reply_signed() tells
 * the two apart by the first byte ('{' or 'R').
 */
#ifndef RF_REPLY_H
#define RF_REPLY_H

#include "lib/buf.h"
#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

#define RF_REPLY_MAGIC "RFGY"
#define RF_REPLY_VERSION 2
#define RF_REPLY_BODY_MAX (512 * 1024)
#define RF_REPLY_HEADER_BYTES (4 + 1 + 32 + 64)

/* Case ids and bodies follow the rules of event.h (RF_ERR_INVALID for a bad
 * case id; a body is 1..RF_REPLY_BODY_MAX bytes of UTF-8 without NUL, else
 * RF_ERR_FORMAT / RF_ERR_LIMIT). On error out is left as it was. */

/* Appends the signed reply (header + body) to out. */
int rf_reply_sign(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                  const uint8_t *body, size_t n);
/* Parses the framing of p without checking the signature: on success signer
 * is the claimed signer and *body points into p. RF_ERR_FORMAT (bad magic,
 * body not UTF-8 or with a NUL), RF_ERR_VERSION, RF_ERR_TRUNCATED (header
 * only), RF_ERR_LIMIT. For readers that need the text only (the person). */
int rf_reply_split(uint8_t signer[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                   size_t n);
/* rf_reply_split, then the signature for case_id: RF_ERR_SIGNATURE if it
 * does not verify. Whether the signer is a caseworker is the caller's check
 * (the verified roster). */
int rf_reply_verify(uint8_t signer[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                    size_t n, const char *case_id);
/* 1 if p starts like a signed reply (version 2 or later), 0 if it is a
 * version 1 JSON plaintext (or anything else). */
int rf_reply_signed(const uint8_t *p, size_t n);

/* Limits of rf_reply_text: the JSON read (bytes, nesting) and the author
 * string of a version 1 reply (read only to be bounded, never returned). */
#define RF_REPLY_JSON_MAX RF_REPLY_BODY_MAX
#define RF_REPLY_JSON_DEPTH 32
#define RF_REPLY_AUTHOR_MAX 1024

/* The text of a reply's plaintext p (version 2: the body after the framing,
 * signature unchecked; version 1: the JSON itself), appended to text (a
 * secure buf, its max the caller's limit). The JSON must be one object
 * without duplicate keys, at most RF_REPLY_JSON_MAX bytes and
 * RF_REPLY_JSON_DEPTH deep; "text" not a string (or absent) reads as "".
 * RF_ERR_FORMAT (not such JSON), RF_ERR_LIMIT (a limit above or text's),
 * errors of rf_reply_split. For readers that show the text only (the
 * person's inbox). Parsed with jansson: with lib/json.h's allocator every
 * copy it made is wiped when freed. */
int rf_reply_text(struct rf_buf *text, const uint8_t *p, size_t n);

#endif
