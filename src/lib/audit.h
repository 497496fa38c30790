/*
 * audit.h - the hash-chained audit log of staff actions: the format, the
 * chain hash and its verification. The server appends (src/store); any
 * caseworker verifies (refuge audit verify). Entries carry no plaintext:
 *
 *   id u64 (1, 2, 3 ... no gaps) | day u32 | actor[32] (the caseworker's
 *   signing key; zeros for the server itself or a person) | action (ASCII,
 *   1..31 bytes, e.g. "fetch", "reply", "event", "roster", "token", "enroll",
 *   "grant", "purge", "delete") | target (ASCII, 0..63 bytes: a case id, a
 *   sequence number, a roster version, counts) | prev[32] | hash[32]
 *
 *   hash = BLAKE2b-256("refuge-audit-v1" || id u64 || day u32 || actor ||
 *                      action_len u8 || action || target_len u8 || target || prev)
 *   prev = hash of the previous entry (zeros for id 1)
 *
 * Version 2 (finding 10 of the trust review): an entry of a caseworker's
 * action also carries the signed API request that caused it (lib/apisig.h),
 * so a server cannot invent an entry in a caseworker's name:
 *
 *   request = method_len u8 | method | path_len u16 | path | ts u64 |
 *             nonce[16] | body_hash[32] | sig[64]
 *   hash = BLAKE2b-256("refuge-audit-v2" || the version 1 input ||
 *                      request_len u16 || request)
 *
 * An entry without a request keeps the version 1 hash (entries stored
 * before, and the server's and persons' own entries, actor zeros).
 */
#ifndef RF_AUDIT_H
#define RF_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define RF_AUDIT_ACTION_MAX 31
#define RF_AUDIT_TARGET_MAX 63
#define RF_AUDIT_METHOD_MAX 16
#define RF_AUDIT_PATH_MAX 255
#define RF_AUDIT_REQ_MAX (1 + RF_AUDIT_METHOD_MAX + 2 + RF_AUDIT_PATH_MAX + 8 + 16 + 32 + 64)

struct rf_audit_entry {
    uint64_t id;
    uint32_t day;
    uint8_t actor[32];
    char action[RF_AUDIT_ACTION_MAX + 1];
    char target[RF_AUDIT_TARGET_MAX + 1];
    uint8_t prev[32];
    uint8_t hash[32];
    uint16_t req_len; /* 0: no signed request (version 1 entry) */
    uint8_t req[RF_AUDIT_REQ_MAX];
};

/* A signed request record, decoded. */
struct rf_audit_req {
    char method[RF_AUDIT_METHOD_MAX + 1];
    char path[RF_AUDIT_PATH_MAX + 1];
    int64_t ts;
    uint8_t nonce[16];
    uint8_t body_hash[32];
    uint8_t sig[64];
};

enum rf_audit_break {
    RF_AUDIT_OK = 0,
    RF_AUDIT_MODIFIED = 1,  /* entry's hash does not match its content */
    RF_AUDIT_DELETED = 2,   /* entries missing before this one (id gap or broken link) */
    RF_AUDIT_REORDERED = 3, /* ids out of order or duplicated */
    RF_AUDIT_REWRITTEN = 4, /* the log no longer extends the anchor this client saw */
    RF_AUDIT_UNSIGNED = 5,  /* a caseworker's entry without the caseworker's signed request */
    RF_AUDIT_FORGED = 6,    /* its signed request does not verify, or is not this action */
};

/*
 * Field rules (choices made in audit.c): action is 1..31 bytes of [a-z_];
 * target is 0..63 bytes of printable ASCII 0x20..0x7e (spaces allowed, e.g.
 * "cases=2 objects=9"); each NUL-terminated within its array. Integers in
 * the hash input are big-endian; "refuge-audit-v1" is its 15 ASCII bytes
 * without terminator; action_len and target_len are the strlen()s.
 *
 * Verification rules, exactly (rf_audit_verify). anchor_hash NULL means
 * zeros; anchor_id 0 with a non-zero anchor_hash is RF_ERR_INVALID, as is
 * e NULL with n > 0. n == 0 verifies. The walk starts:
 *   - after the anchor (expected id anchor_id + 1, expected prev anchor_hash)
 *     when anchor_id == 0 or e[0].id > anchor_id;
 *   - at e[0] itself when anchor_id > 0 and e[0].id <= anchor_id (the caller
 *     passed history reaching back to the anchor, e.g. the anchor entry as
 *     e[0], or the whole log): expected id e[0].id, expected prev zeros if
 *     that id is 1, else e[0].prev is not checked (its predecessor is not
 *     in e).
 * Then for i = 0..n-1, the first failing check gives the break at index i:
 *   1. MODIFIED   rf_audit_hash(e[i]) fails or differs from e[i].hash;
 *   2. REORDERED  e[i].id < expected id (backwards or duplicated);
 *      REORDERED  e[i].id > expected id and some later e[j] has an id in
 *                 [expected, e[i].id) (an entry came too late);
 *      DELETED    e[i].id > expected id otherwise (a gap);
 *   3. DELETED    e[i].prev differs from the expected prev (the previous
 *                 entry's hash, or the anchor's for the first entry after
 *                 it): an entry removed and the ids after it renumbered;
 *   4. REWRITTEN  e[i].id == anchor_id (> 0) and e[i].hash != anchor_hash;
 * then expected id = e[i].id + 1 and expected prev = e[i].hash (an entry
 * with id UINT64_MAX followed by another: REORDERED at the next index).
 * Finally, when the walk started at e[0] and the last entry's id is below
 * anchor_id (the log is shorter than the one this client saw): REWRITTEN at
 * n - 1. So a consistent rewrite of entries up to the anchor passes from
 * genesis and is REWRITTEN against the anchor, provided the caller passes
 * the anchor entry (fetch after = anchor_id - 1): without it, a changed
 * anchor shows only as the first entry's prev mismatch (DELETED at 0).
 * Hashes are compared in constant time (sodium_memcmp).
 */

/* Computes e->hash's expected value. RF_ERR_INVALID on over-long fields
 * (or characters outside the rules above). */
int rf_audit_hash(uint8_t out[32], const struct rf_audit_entry *e);
/* Verifies entries e[0..n) continue the chain after the anchor (anchor_id 0
 * and zero hash = the start of the log). Returns 0, or RF_ERR_FORMAT with
 * *bad = index in e of the first break and *what its kind. */
int rf_audit_verify(const struct rf_audit_entry *e, size_t n, uint64_t anchor_id,
                    const uint8_t anchor_hash[32], size_t *bad, enum rf_audit_break *what);
const char *rf_audit_break_str(enum rf_audit_break what);

/* Encodes the request record of a request (method, path and query as sent,
 * its parsed Authorization) into out; RF_ERR_LIMIT if method or path is too
 * long for a record, RF_ERR_INVALID if empty. */
int rf_audit_req_encode(uint8_t out[RF_AUDIT_REQ_MAX], size_t *len, const char *method,
                        const char *path, int64_t ts, const uint8_t nonce[16],
                        const uint8_t body_hash[32], const uint8_t sig[64]);
/* Decodes a record: RF_ERR_TRUNCATED / RF_ERR_FORMAT (method not 1..16
 * upper-case letters, path not 1..255 printable ASCII starting with '/',
 * ts negative or over 18 digits, bytes left over). */
int rf_audit_req_parse(struct rf_audit_req *q, const uint8_t *p, size_t n);

/*
 * Signatures (version 2), after the chain verified. For each entry:
 *   - actor zeros: no request allowed (else FORGED); the action must be one
 *     the server or a person takes ("purge", "delete"), else UNSIGNED;
 *   - actor a caseworker, no request: UNSIGNED, except before the first
 *     entry that carries a request (a log begun before version 2: *legacy
 *     counts them);
 *   - a request: it parses, its Ed25519 signature (apisig) verifies under
 *     the actor's key, its method and path are the ones of the action (and
 *     name the target where the path holds it: fetch, reply, event,
 *     schedule), its day is the entry's day (within the API's clock skew
 *     and an hour of commit delay), else FORGED;
 *   - one signed request (actor, nonce) behind two entries: FORGED at the
 *     later, unless every entry it is behind is a "grant" (one POST /grants
 *     stores a "grant" entry per chunk).
 * Returns 0, or RF_ERR_FORMAT with *bad the index of the first failing
 * entry and *what UNSIGNED or FORGED. *sigs, *legacy and *server (may be
 * NULL) count verified, legacy unsigned and server/person entries.
 */
int rf_audit_verify_sigs(const struct rf_audit_entry *e, size_t n, size_t *bad,
                         enum rf_audit_break *what, size_t *sigs, size_t *legacy, size_t *server);

#endif
