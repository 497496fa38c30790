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

/* Computes e->hash's expected value. RF_ERR_INVALID on over-long fields. */
int rf_audit_hash(uint8_t out[32], const struct rf_audit_entry *e);
/* Verifies entries e[0..n) continue the chain after the anchor (anchor_id 0
 * and zero hash = the start of the log). Returns 0, or RF_ERR_FORMAT with
 * *bad = index in e of the first break and *what its kind. */
int rf_audit_verify(const struct rf_audit_entry *e, size_t n, uint64_t anchor_id,
                    const uint8_t anchor_hash[32], size_t *bad, enum rf_audit_break *what);
const char *rf_audit_break_str(enum rf_audit_break what);

#endif
