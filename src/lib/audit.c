/*
 * audit.c - the audit log's chain hash and its verification (format and the
 * exact verification rules in audit.h; bytes in docs/protocol.md "Audit log").
 *
 * The hash input is at most 15 + 8 + 4 + 32 + 1 + 31 + 1 + 63 + 32 = 187
 * bytes, assembled in a stack array and hashed in one call (no streaming
 * state). Fields are validated before hashing: an entry a server could not
 * have written honestly (an action outside [a-z_], a target outside
 * printable ASCII, either without its NUL within its array) has no hash.
 *
 * Verification walks e[] once, front to back, and reports the FIRST break;
 * for each entry the checks run in a fixed order (content, id, link,
 * anchor), so the same log always gives the same answer. Entries are public
 * metadata (no plaintext), so nothing here is secret.
 */
#include "lib/audit.h"
#include "lib/err.h"

#include <sodium.h>
#include <string.h>

#define AU_DOMAIN "refuge-audit-v1"
#define AU_DOMAIN_LEN 15
#define AU_INPUT_MAX                                                                               \
    (AU_DOMAIN_LEN + 8 + 4 + 32 + 1 + RF_AUDIT_ACTION_MAX + 1 + RF_AUDIT_TARGET_MAX + 32)

_Static_assert(sizeof(AU_DOMAIN) - 1 == AU_DOMAIN_LEN, "domain length");

static const uint8_t zero_hash[32];

/* action: 1..RF_AUDIT_ACTION_MAX bytes of [a-z_]. */
static int action_len(const char *a, size_t *len)
{
    size_t n = strnlen(a, RF_AUDIT_ACTION_MAX + 1);
    if (n < 1 || n > RF_AUDIT_ACTION_MAX)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!((a[i] >= 'a' && a[i] <= 'z') || a[i] == '_'))
            return RF_ERR_INVALID;
    *len = n;
    return 0;
}

/* target: 0..RF_AUDIT_TARGET_MAX bytes of printable ASCII 0x20..0x7e. */
static int target_len(const char *t, size_t *len)
{
    size_t n = strnlen(t, RF_AUDIT_TARGET_MAX + 1);
    if (n > RF_AUDIT_TARGET_MAX)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0x20 || t[i] > 0x7e)
            return RF_ERR_INVALID;
    *len = n;
    return 0;
}

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

int rf_audit_hash(uint8_t out[32], const struct rf_audit_entry *e)
{
    uint8_t in[AU_INPUT_MAX];
    size_t alen = 0, tlen = 0, k = 0;
    int rc = action_len(e->action, &alen);
    if (rc == 0)
        rc = target_len(e->target, &tlen);
    if (rc != 0)
        return rc;
    memcpy(in, AU_DOMAIN, AU_DOMAIN_LEN);
    k = AU_DOMAIN_LEN;
    put_be(in + k, e->id, 8);
    k += 8;
    put_be(in + k, e->day, 4);
    k += 4;
    memcpy(in + k, e->actor, 32);
    k += 32;
    in[k++] = (uint8_t)alen;
    memcpy(in + k, e->action, alen);
    k += alen;
    in[k++] = (uint8_t)tlen;
    memcpy(in + k, e->target, tlen);
    k += tlen;
    memcpy(in + k, e->prev, 32);
    k += 32;
    if (crypto_generichash(out, 32, in, k, NULL, 0) != 0)
        return RF_ERR_CRYPTO;
    return 0;
}

/* id > expected at i: a later entry carrying one of the skipped ids means
 * the order was changed; none means entries were removed. */
static enum rf_audit_break skipped(const struct rf_audit_entry *e, size_t n, size_t i,
                                   uint64_t expected)
{
    for (size_t j = i + 1; j < n; j++)
        if (e[j].id >= expected && e[j].id < e[i].id)
            return RF_AUDIT_REORDERED;
    return RF_AUDIT_DELETED;
}

static enum rf_audit_break check_one(const struct rf_audit_entry *e, size_t n, size_t i,
                                     uint64_t expected_id, const uint8_t *expected_prev,
                                     uint64_t anchor_id, const uint8_t anchor_hash[32])
{
    uint8_t h[32];
    if (rf_audit_hash(h, &e[i]) != 0 || sodium_memcmp(h, e[i].hash, 32) != 0)
        return RF_AUDIT_MODIFIED;
    if (e[i].id < expected_id)
        return RF_AUDIT_REORDERED;
    if (e[i].id > expected_id)
        return skipped(e, n, i, expected_id);
    if (expected_prev != NULL && sodium_memcmp(e[i].prev, expected_prev, 32) != 0)
        return RF_AUDIT_DELETED;
    if (anchor_id > 0 && e[i].id == anchor_id && sodium_memcmp(e[i].hash, anchor_hash, 32) != 0)
        return RF_AUDIT_REWRITTEN;
    return RF_AUDIT_OK;
}

int rf_audit_verify(const struct rf_audit_entry *e, size_t n, uint64_t anchor_id,
                    const uint8_t anchor_hash[32], size_t *bad, enum rf_audit_break *what)
{
    if (bad != NULL)
        *bad = 0;
    if (what != NULL)
        *what = RF_AUDIT_OK;
    if (anchor_hash == NULL)
        anchor_hash = zero_hash;
    if ((e == NULL && n > 0) || (anchor_id == 0 && sodium_memcmp(anchor_hash, zero_hash, 32) != 0))
        return RF_ERR_INVALID;
    if (n == 0)
        return 0;

    /* Where the walk starts: after the anchor, or (when the caller passed
     * history reaching back to the anchor or before) at e[0] itself, whose
     * link backwards is only known for id 1. */
    uint64_t expected_id = anchor_id + 1;
    const uint8_t *expected_prev = anchor_hash;
    int reaches_anchor = 0;
    if (anchor_id > 0 && e[0].id <= anchor_id) {
        expected_id = e[0].id == 0 ? 1 : e[0].id;
        expected_prev = expected_id == 1 ? zero_hash : NULL;
        reaches_anchor = 1;
    }
    enum rf_audit_break br = RF_AUDIT_OK;
    size_t i = 0;
    for (i = 0; i < n; i++) {
        br = check_one(e, n, i, expected_id, expected_prev, anchor_id, anchor_hash);
        if (br != RF_AUDIT_OK)
            break;
        if (e[i].id == UINT64_MAX && i + 1 < n) {
            br = RF_AUDIT_REORDERED; /* no id can follow */
            i++;
            break;
        }
        expected_id = e[i].id + 1;
        expected_prev = e[i].hash;
    }
    /* The history passed ends before the anchor: the log is shorter than the
     * one this client saw. */
    if (br == RF_AUDIT_OK && reaches_anchor && e[n - 1].id < anchor_id) {
        br = RF_AUDIT_REWRITTEN;
        i = n - 1;
    }
    if (br == RF_AUDIT_OK)
        return 0;
    if (bad != NULL)
        *bad = i;
    if (what != NULL)
        *what = br;
    return RF_ERR_FORMAT;
}

const char *rf_audit_break_str(enum rf_audit_break what)
{
    switch (what) {
    case RF_AUDIT_OK:
        return "ok";
    case RF_AUDIT_MODIFIED:
        return "modified";
    case RF_AUDIT_DELETED:
        return "deleted";
    case RF_AUDIT_REORDERED:
        return "reordered";
    case RF_AUDIT_REWRITTEN:
        return "rewritten";
    }
    return "unknown";
}
