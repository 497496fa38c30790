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
 */
#ifndef RF_AUDIT_H
#define RF_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#define RF_AUDIT_ACTION_MAX 31
#define RF_AUDIT_TARGET_MAX 63

struct rf_audit_entry {
    uint64_t id;
    uint32_t day;
    uint8_t actor[32];
    char action[RF_AUDIT_ACTION_MAX + 1];
    char target[RF_AUDIT_TARGET_MAX + 1];
    uint8_t prev[32];
    uint8_t hash[32];
};

enum rf_audit_break {
    RF_AUDIT_OK = 0,
    RF_AUDIT_MODIFIED = 1,  /* entry's hash does not match its content */
    RF_AUDIT_DELETED = 2,   /* entries missing before this one (id gap or broken link) */
    RF_AUDIT_REORDERED = 3, /* ids out of order or duplicated */
    RF_AUDIT_REWRITTEN = 4, /* the log no longer extends the anchor this client saw */
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

#endif
