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
#include "lib/apisig.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define AU_DOMAIN "refuge-audit-v1"
#define AU_DOMAIN2 "refuge-audit-v2" /* entries that carry a signed request */
#define AU_DOMAIN_LEN 15
#define AU_INPUT_MAX                                                                               \
    (AU_DOMAIN_LEN + 8 + 4 + 32 + 1 + RF_AUDIT_ACTION_MAX + 1 + RF_AUDIT_TARGET_MAX + 32 + 2 +     \
     RF_AUDIT_REQ_MAX)
#define AU_DAY 86400
#define AU_SKEW_BEFORE (2 * RF_APISIG_MAX_SKEW)   /* request signed before the server's clock */
#define AU_SKEW_AFTER (RF_APISIG_MAX_SKEW + 3600) /* ... after, plus commit delay */

_Static_assert(sizeof(AU_DOMAIN) - 1 == AU_DOMAIN_LEN, "domain length");
_Static_assert(sizeof(AU_DOMAIN2) - 1 == AU_DOMAIN_LEN, "domain length");

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
    if (e->req_len > RF_AUDIT_REQ_MAX)
        return RF_ERR_INVALID;
    memcpy(in, e->req_len > 0 ? AU_DOMAIN2 : AU_DOMAIN, AU_DOMAIN_LEN);
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
    if (e->req_len > 0) {
        put_be(in + k, e->req_len, 2);
        k += 2;
        memcpy(in + k, e->req, e->req_len);
        k += e->req_len;
    }
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
    case RF_AUDIT_UNSIGNED:
        return "unsigned";
    case RF_AUDIT_FORGED:
        return "forged";
    }
    return "unknown";
}

/* ------------------------------------------------- signed requests (v2) */

int rf_audit_req_encode(uint8_t out[RF_AUDIT_REQ_MAX], size_t *len, const char *method,
                        const char *path, int64_t ts, const uint8_t nonce[16],
                        const uint8_t body_hash[32], const uint8_t sig[64])
{
    size_t ml = method ? strlen(method) : 0, pl = path ? strlen(path) : 0, k = 0;
    *len = 0;
    if (ml == 0 || pl == 0 || ts < 0)
        return RF_ERR_INVALID;
    if (ml > RF_AUDIT_METHOD_MAX || pl > RF_AUDIT_PATH_MAX)
        return RF_ERR_LIMIT;
    out[k++] = (uint8_t)ml;
    memcpy(out + k, method, ml);
    k += ml;
    put_be(out + k, pl, 2);
    k += 2;
    memcpy(out + k, path, pl);
    k += pl;
    put_be(out + k, (uint64_t)ts, 8);
    k += 8;
    memcpy(out + k, nonce, 16);
    k += 16;
    memcpy(out + k, body_hash, 32);
    k += 32;
    memcpy(out + k, sig, 64);
    k += 64;
    *len = k;
    return 0;
}

int rf_audit_req_parse(struct rf_audit_req *q, const uint8_t *p, size_t n)
{
    struct rf_reader r;
    uint8_t ml;
    uint16_t pl;
    uint64_t ts;
    const uint8_t *m, *path, *nonce, *bh, *sig;
    memset(q, 0, sizeof(*q));
    if (p == NULL && n > 0)
        return RF_ERR_INVALID;
    rf_reader_init(&r, p, n);
    int rc = rf_get_u8(&r, &ml);
    if (rc == 0 && (ml < 1 || ml > RF_AUDIT_METHOD_MAX))
        return RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_ptr(&r, &m, ml);
    if (rc == 0)
        rc = rf_get_u16(&r, &pl);
    if (rc == 0 && (pl < 1 || pl > RF_AUDIT_PATH_MAX))
        return RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_ptr(&r, &path, pl);
    if (rc == 0)
        rc = rf_get_u64(&r, &ts);
    if (rc == 0)
        rc = rf_get_ptr(&r, &nonce, 16);
    if (rc == 0)
        rc = rf_get_ptr(&r, &bh, 32);
    if (rc == 0)
        rc = rf_get_ptr(&r, &sig, 64);
    if (rc == 0)
        rc = rf_reader_expect_end(&r);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < ml; i++)
        if (m[i] < 'A' || m[i] > 'Z')
            return RF_ERR_FORMAT;
    if (path[0] != '/')
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < pl; i++)
        if (path[i] <= 0x20 || path[i] > 0x7e)
            return RF_ERR_FORMAT;
    if (ts > 999999999999999999ULL)
        return RF_ERR_FORMAT;
    memcpy(q->method, m, ml);
    memcpy(q->path, path, pl);
    q->ts = (int64_t)ts;
    memcpy(q->nonce, nonce, 16);
    memcpy(q->body_hash, bh, 32);
    memcpy(q->sig, sig, 64);
    return 0;
}

/* Which request each caseworker action comes from: method, and a path that
 * is prefix || target || suffix when the target is in the path, else
 * exactly prefix (the target then comes from the signed body). */
static const struct {
    const char *action, *method, *prefix, *suffix;
    int target_in_path;
} au_routes[] = {
    {"fetch", "GET", "/api/v1/objects/", "", 1},
    {"reply", "POST", "/api/v1/cases/", "/replies", 1},
    {"event", "POST", "/api/v1/cases/", "/events", 1},
    {"schedule", "POST", "/api/v1/cases/", "/schedule", 1},
    {"casekey", "POST", "/api/v1/cases/", "/casekeys", 1},
    {"settings", "POST", "/api/v1/settings", "", 0},
    {"enroll", "POST", "/api/v1/enroll", "", 0},
    {"token", "POST", "/api/v1/tokens", "", 0},
    {"roster", "POST", "/api/v1/roster", "", 0},
    {"grant", "POST", "/api/v1/grants", "", 0},
    {"checkpoint", "POST", "/api/v1/checkpoint", "", 0},
};

/* Actions the server (purge) or a person (delete) take: actor zeros. */
static int unsigned_action(const char *action)
{
    return strcmp(action, "purge") == 0 || strcmp(action, "delete") == 0;
}

static int path_matches(const char *path, const char *prefix, const char *mid, const char *suffix)
{
    size_t a = strlen(prefix), b = strlen(mid), c = strlen(suffix);
    return strlen(path) == a + b + c && memcmp(path, prefix, a) == 0 &&
           memcmp(path + a, mid, b) == 0 && memcmp(path + a + b, suffix, c) == 0;
}

/* A decimal of 1..18 digits without a leading zero (or "0") at *p, up to
 * a byte in stops (or the end); advances *p past it. -1 if none. */
static int64_t au_decimal(const char **p, char stop)
{
    const char *s = *p;
    int64_t v = 0;
    size_t n = 0;
    while (s[n] >= '0' && s[n] <= '9') {
        if (n == 18)
            return -1;
        v = v * 10 + (s[n] - '0');
        n++;
    }
    if (n == 0 || (n > 1 && s[0] == '0') || s[n] != stop)
        return -1;
    *p = s + n + (stop ? 1 : 0);
    return v;
}

/* A range fetch (GET /api/v1/objects/data?after=N&limit=L, the only form
 * the server takes): its entry's target is "N+1..last", last >= N+1. */
static int range_fetch_matches(const char *target, const char *path)
{
    static const char pre[] = "/api/v1/objects/data?after=";
    if (strncmp(path, pre, sizeof(pre) - 1) != 0)
        return 0;
    const char *p = path + sizeof(pre) - 1;
    int64_t after = au_decimal(&p, '&');
    if (after < 0 || strncmp(p, "limit=", 6) != 0)
        return 0;
    p += 6;
    int64_t limit = au_decimal(&p, '\0');
    const char *t = target;
    int64_t first = au_decimal(&t, '.');
    if (limit < 1 || first < 0 || *t != '.')
        return 0;
    t++;
    int64_t last = au_decimal(&t, '\0');
    return first == after + 1 && last >= first;
}

/* Whether the signed request q can be the one behind entry e. */
static int request_matches(const struct rf_audit_entry *e, const struct rf_audit_req *q)
{
    int64_t lo = (q->ts - AU_SKEW_BEFORE) / AU_DAY, hi = (q->ts + AU_SKEW_AFTER) / AU_DAY;
    if ((int64_t)e->day < lo || (int64_t)e->day > hi)
        return 0;
    for (size_t i = 0; i < sizeof(au_routes) / sizeof(au_routes[0]); i++) {
        if (strcmp(e->action, au_routes[i].action) != 0)
            continue;
        if (strcmp(q->method, au_routes[i].method) != 0)
            return 0;
        if (!au_routes[i].target_in_path)
            return strcmp(q->path, au_routes[i].prefix) == 0;
        if (strcmp(e->action, "fetch") == 0 && strchr(e->target, '.'))
            return range_fetch_matches(e->target, q->path);
        return e->target[0] != '\0' &&
               path_matches(q->path, au_routes[i].prefix, e->target, au_routes[i].suffix);
    }
    return 0; /* no caseworker request makes this action */
}

static enum rf_audit_break check_sig(const struct rf_audit_entry *e, struct rf_audit_req *q)
{
    struct rf_apisig as;
    if (rf_audit_req_parse(q, e->req, e->req_len) != 0)
        return RF_AUDIT_FORGED;
    memset(&as, 0, sizeof(as));
    memcpy(as.sign_pk, e->actor, 32);
    as.ts = q->ts;
    memcpy(as.nonce, q->nonce, sizeof(as.nonce));
    memcpy(as.body_hash, q->body_hash, sizeof(as.body_hash));
    memcpy(as.sig, q->sig, sizeof(as.sig));
    if (rf_apisig_verify(&as, q->method, q->path) != 0 || !request_matches(e, q))
        return RF_AUDIT_FORGED;
    return RF_AUDIT_OK;
}

struct au_use {
    uint8_t actor[32];
    uint8_t nonce[16];
    size_t idx;
};

static int use_cmp(const void *a, const void *b)
{
    const struct au_use *x = a, *y = b;
    int c = memcmp(x->actor, y->actor, 32);
    if (c == 0)
        c = memcmp(x->nonce, y->nonce, 16);
    if (c == 0)
        c = x->idx < y->idx ? -1 : x->idx > y->idx;
    return c;
}

/* The first index whose signed request already stood behind an earlier
 * entry (other than grant chunks), or n. */
static size_t first_reuse(const struct rf_audit_entry *e, struct au_use *u, size_t nu, size_t n)
{
    size_t first = n;
    if (nu < 2)
        return n;
    qsort(u, nu, sizeof(*u), use_cmp);
    for (size_t i = 0; i < nu;) {
        size_t j = i + 1;
        while (j < nu && memcmp(u[j].actor, u[i].actor, 32) == 0 &&
               memcmp(u[j].nonce, u[i].nonce, 16) == 0)
            j++;
        int all_grants = 1;
        for (size_t k = i; k < j; k++)
            all_grants &= strcmp(e[u[k].idx].action, "grant") == 0;
        if (j - i > 1 && !all_grants && u[i + 1].idx < first)
            first = u[i + 1].idx; /* sorted by idx within the group */
        i = j;
    }
    return first;
}

int rf_audit_verify_sigs(const struct rf_audit_entry *e, size_t n, size_t *bad,
                         enum rf_audit_break *what, size_t *sigs, size_t *legacy, size_t *server)
{
    static const uint8_t zero[32];
    size_t ns = 0, nl = 0, nz = 0, nu = 0, at = n;
    enum rf_audit_break br = RF_AUDIT_OK;
    int seen_signed = 0;
    if (bad)
        *bad = 0;
    if (what)
        *what = RF_AUDIT_OK;
    if (e == NULL && n > 0)
        return RF_ERR_INVALID;
    struct au_use *u = n ? malloc(n * sizeof(*u)) : NULL;
    if (n && !u)
        return RF_ERR_NOMEM;
    for (size_t i = 0; i < n && at == n; i++) {
        struct rf_audit_req q;
        if (sodium_memcmp(e[i].actor, zero, 32) == 0) {
            if (e[i].req_len > 0)
                br = RF_AUDIT_FORGED;
            else if (!unsigned_action(e[i].action))
                br = RF_AUDIT_UNSIGNED;
            else
                nz++;
        } else if (e[i].req_len == 0) {
            if (seen_signed)
                br = RF_AUDIT_UNSIGNED;
            else
                nl++;
        } else if ((br = check_sig(&e[i], &q)) == RF_AUDIT_OK) {
            seen_signed = 1;
            ns++;
            memcpy(u[nu].actor, e[i].actor, 32);
            memcpy(u[nu].nonce, q.nonce, 16);
            u[nu++].idx = i;
        }
        if (br != RF_AUDIT_OK)
            at = i;
    }
    size_t reuse = first_reuse(e, u, nu, n);
    free(u);
    if (reuse < at) {
        at = reuse;
        br = RF_AUDIT_FORGED;
    }
    if (sigs)
        *sigs = ns;
    if (legacy)
        *legacy = nl;
    if (server)
        *server = nz;
    if (at == n)
        return 0;
    if (bad)
        *bad = at;
    if (what)
        *what = br;
    return RF_ERR_FORMAT;
}
