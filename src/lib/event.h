/*
 * event.h - signed case events: the plaintext of an RF_KIND_EVENT object.
 * Case state (stage, assignees, tags, notes, checklist, due date) is an
 * append-only log of these, sealed to the roster and signed by the author.
 *
 *   "RFGV" | version u8 (=1) | author sign_pk[32] | signature[64] | body
 *
 * signature = Ed25519 over "refuge-event-v1" || case_id (RF_EVENT_CASE_LEN
 * ASCII bytes) || body, so a server cannot move an event to another case.
 * body is JSON (UTF-8, at most RF_EVENT_BODY_MAX bytes):
 *   {"v":1, "id":"<32 hex, random>", "lamport":N, "roster":V, "author":"name",
 *    "day":D, "op":"stage|assign|unassign|tag|untag|note|check|uncheck|due",
 *    "value":"..."}
 * The JSON meaning (and conflict resolution) belongs to the client; this
 * module only signs, frames and verifies.
 */
#ifndef RF_EVENT_H
#define RF_EVENT_H

#include "lib/buf.h"
#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

#define RF_EVENT_MAGIC "RFGV"
#define RF_EVENT_VERSION 1
#define RF_EVENT_CASE_LEN 10
#define RF_EVENT_BODY_MAX 65536
#define RF_EVENT_HEADER_BYTES (4 + 1 + 32 + 64)

/* Choices made in event.c (docs/protocol.md "Case events"): a case id is
 * exactly RF_EVENT_CASE_LEN ASCII letters or digits followed by its NUL
 * (store ids are lower-case base32; reserved ids like "teamconfig" fit),
 * else RF_ERR_INVALID from both functions. A body is 1..RF_EVENT_BODY_MAX
 * bytes of valid UTF-8 without a NUL byte: sign refuses others
 * (RF_ERR_FORMAT empty or bad UTF-8, RF_ERR_LIMIT too long) and verify
 * answers RF_ERR_TRUNCATED for a header with no body, RF_ERR_LIMIT for a
 * longer body, RF_ERR_FORMAT for bad UTF-8 (all before the signature is
 * checked). On error out is left as it was / no output is written. */

/* Appends the signed event (header + body) to out. */
int rf_event_sign(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                  const uint8_t *body, size_t n);
/* Parses and verifies p for case_id: on success author_pk is the signer and
 * *body points into p. RF_ERR_FORMAT / VERSION / LIMIT / TRUNCATED on bad
 * framing, RF_ERR_SIGNATURE on a bad signature. Whether the author may write
 * is the caller's check (roster). */
int rf_event_verify(uint8_t author_pk[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                    size_t n, const char *case_id);
/* rf_event_verify without the signature check (framing, limits and case id
 * only): for an event below a verified checkpoint, whose chain is compared
 * with the checkpoint before anything from it counts (client/local.c). */
int rf_event_parse(uint8_t author_pk[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                   size_t n, const char *case_id);

#endif
