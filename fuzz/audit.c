/*
 * audit.c - fuzzes audit-chain verification. The input is decoded with a
 * struct rf_reader into up to MAX_ENTRIES entries, each
 *   id u64 | day u32 | actor[32] | action_len u8 | action | target_len u8 |
 *   target | prev[32] | hash[32]
 * (decoding stops at the first incomplete entry or over-long field; the
 * fields' characters are left unchecked: that is the verifier's job). The
 * entries are verified from genesis and against an anchor taken from the
 * middle of the input; a break must name an index inside the input and a
 * known kind, and a pass from genesis must mean ids 1..n with every hash
 * recomputing. Then the same entries are re-chained as an honest server
 * would (ids 1..n, links, hashes): that chain must pass from genesis and
 * from every anchor, with or without the anchor entry, and changing one
 * entry's day must be reported as MODIFIED at that entry.
 *
 * Version 2: the whole input is also parsed as a signed request record
 * (rf_audit_req_parse); one that parses must encode back to the same bytes.
 * The decoded entries are given the record (when it parses) and checked by
 * rf_audit_verify_sigs, whose break must name an entry and be UNSIGNED or
 * FORGED (fuzz-made signatures never verify).
 */
#include "lib/audit.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ENTRIES 64

static struct rf_audit_entry ents[MAX_ENTRIES], chain[MAX_ENTRIES];

static int get_str(struct rf_reader *r, char *out, size_t max)
{
    uint8_t n = 0;
    int rc = rf_get_u8(r, &n);
    if (rc == 0 && n > max)
        rc = RF_ERR_LIMIT;
    if (rc == 0)
        rc = rf_get_bytes(r, out, n);
    if (rc == 0)
        out[n] = '\0';
    return rc;
}

static size_t decode(const uint8_t *data, size_t size)
{
    struct rf_reader r;
    size_t n = 0;
    rf_reader_init(&r, data, size);
    while (n < MAX_ENTRIES && rf_reader_left(&r) > 0) {
        struct rf_audit_entry *e = &ents[n];
        memset(e, 0, sizeof(*e));
        if (rf_get_u64(&r, &e->id) != 0 || rf_get_u32(&r, &e->day) != 0 ||
            rf_get_bytes(&r, e->actor, 32) != 0 || get_str(&r, e->action, RF_AUDIT_ACTION_MAX) ||
            get_str(&r, e->target, RF_AUDIT_TARGET_MAX) || rf_get_bytes(&r, e->prev, 32) != 0 ||
            rf_get_bytes(&r, e->hash, 32) != 0)
            break;
        n++;
    }
    return n;
}

static int verify(const struct rf_audit_entry *e, size_t n, uint64_t aid, const uint8_t *ah,
                  size_t *bad, enum rf_audit_break *what)
{
    int rc = rf_audit_verify(e, n, aid, ah, bad, what);
    if (rc == 0 && (*bad != 0 || *what != RF_AUDIT_OK))
        abort();
    if (rc != 0 && (rc != RF_ERR_FORMAT || *bad >= n || *what < RF_AUDIT_MODIFIED ||
                    *what > RF_AUDIT_REWRITTEN))
        abort();
    if (rf_audit_break_str(*what) == NULL)
        abort();
    return rc;
}

static void honest_chain(size_t n)
{
    size_t m = 0;
    uint8_t zero[32] = {0};
    for (size_t i = 0; i < n; i++) {
        chain[m] = ents[i];
        chain[m].id = m + 1;
        memcpy(chain[m].prev, m ? chain[m - 1].hash : zero, 32);
        if (rf_audit_hash(chain[m].hash, &chain[m]) == 0)
            m++; /* entries with unhashable fields are left out */
    }
    size_t bad = 0;
    enum rf_audit_break what = RF_AUDIT_OK;
    if (verify(chain, m, 0, NULL, &bad, &what) != 0)
        abort();
    for (size_t k = 0; k < m; k++) {
        if (verify(chain + k, m - k, k + 1, chain[k].hash, &bad, &what) != 0 ||
            verify(chain + k + 1, m - k - 1, k + 1, chain[k].hash, &bad, &what) != 0 ||
            verify(chain, m, k + 1, chain[k].hash, &bad, &what) != 0)
            abort();
    }
    if (m > 0) {
        size_t j = chain[0].day % m;
        chain[j].day ^= 1;
        if (verify(chain, m, 0, NULL, &bad, &what) == 0 || what != RF_AUDIT_MODIFIED || bad != j)
            abort();
    }
}

static void check_requests(const uint8_t *data, size_t size, size_t n)
{
    struct rf_audit_req q;
    uint8_t rec[RF_AUDIT_REQ_MAX];
    size_t len = 0;
    int rc = rf_audit_req_parse(&q, data, size);
    if (rc > 0 || rc < RF_ERR_MIN)
        abort();
    if (rc == 0) {
        if (rf_audit_req_encode(rec, &len, q.method, q.path, q.ts, q.nonce, q.body_hash, q.sig) !=
                0 ||
            len != size || memcmp(rec, data, size) != 0)
            abort();
        for (size_t i = 0; i < n; i++) {
            memcpy(ents[i].req, data, size);
            ents[i].req_len = (uint16_t)size;
        }
    }
    size_t bad = 0, a = 0, b = 0, c = 0;
    enum rf_audit_break what = RF_AUDIT_OK;
    rc = rf_audit_verify_sigs(ents, n, &bad, &what, &a, &b, &c);
    if (rc == 0 && (what != RF_AUDIT_OK || a + b + c != n))
        abort();
    if (rc != 0 &&
        (rc != RF_ERR_FORMAT || bad >= n || (what != RF_AUDIT_UNSIGNED && what != RF_AUDIT_FORGED)))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = decode(data, size);
    size_t bad = 0;
    enum rf_audit_break what = RF_AUDIT_OK;
    if (verify(ents, n, 0, NULL, &bad, &what) == 0) {
        for (size_t i = 0; i < n; i++) {
            uint8_t h[32];
            if (ents[i].id != i + 1 || rf_audit_hash(h, &ents[i]) != 0 ||
                memcmp(h, ents[i].hash, 32) != 0)
                abort();
        }
    }
    if (n > 0 && ents[n / 2].id > 0) {
        size_t k = n / 2;
        (void)verify(ents, n, ents[k].id, ents[k].hash, &bad, &what);
        (void)verify(ents + k, n - k, ents[k].id, ents[k].hash, &bad, &what);
    }
    honest_chain(n);
    check_requests(data, size, n);
    return 0;
}
