/*
 * local_casekey.c - case keys in the local case database (docs/protocol.md
 * section 12): CASEKEY objects digested into the cache's casekeys table
 * (the plaintext sealed with the row key, ad "casekey:CASE:KEYIDHEX"), and
 * events version 2 opened with them.
 *
 * A key is in the clear only in an rf_ckeys (sodium_malloc memory allocated
 * once per user: one per digester, one per write), wiped at reset and free.
 * Readers do not verify the maker's signature (every event inside still
 * carries its author's); writers do, lazily (evseal.c).
 */
#include "client/local.h"
#include "lib/casekey.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rf_ckeys_init(struct rf_ckeys *ks, size_t cap)
{
    memset(ks, 0, sizeof(*ks));
    ks->keys = sodium_malloc(cap * 32);
    ks->ids = calloc(cap, 8);
    ks->rows = calloc(cap, sizeof(*ks->rows));
    rf_buf_init_secure(&ks->scratch, 4096);
    ks->cap = cap;
    if (!ks->keys || !ks->ids || !ks->rows) {
        rf_ckeys_free(ks);
        return RF_ERR_NOMEM;
    }
    return 0;
}

void rf_ckeys_reset(struct rf_ckeys *ks)
{
    if (ks->keys)
        sodium_memzero(ks->keys, ks->cap * 32);
    ks->n = 0;
}

void rf_ckeys_free(struct rf_ckeys *ks)
{
    if (ks->keys)
        sodium_free(ks->keys); /* wipes */
    free(ks->ids);
    free(ks->rows);
    rf_buf_free(&ks->scratch);
    memset(ks, 0, sizeof(*ks));
}

static void casekey_ad(char ad[48], const char *case_id, const uint8_t keyid[8])
{
    char hex[17];
    sodium_bin2hex(hex, sizeof(hex), keyid, 8);
    snprintf(ad, 48, "casekey:%s:%s", case_id, hex);
}

int rf_local_casekey_seal(const struct rf_local *l, const char *case_id, const uint8_t keyid[8],
                          const uint8_t *plain, size_t n, struct rf_buf *out)
{
    char ad[48];
    casekey_ad(ad, case_id, keyid);
    return rf_local_seal(l, ad, plain, n, out);
}

int rf_ckeys_add(const struct rf_local *l, struct rf_ckeys *ks, const struct rf_ccasekey *row,
                 const uint8_t *sealed, size_t n)
{
    char ad[48];
    struct rf_casekey_obj o;
    if (ks->n >= ks->cap)
        return 0;
    casekey_ad(ad, row->case_id, row->keyid);
    rf_buf_reset(&ks->scratch);
    int rc = rf_local_open(l, ad, sealed, n, &ks->scratch);
    if (rc == 0)
        rc = rf_casekey_parse(&o, ks->scratch.data, ks->scratch.len);
    if (rc == 0)
        rc = rf_casekey_check_case(&o, row->case_id);
    if (rc == 0 && sodium_memcmp(o.id, row->keyid, 8) != 0)
        rc = RF_ERR_FORMAT;
    if (rc == 0) {
        memcpy(ks->keys[ks->n], o.key, 32);
        memcpy(ks->ids[ks->n], o.id, 8);
        ks->rows[ks->n] = *row;
        ks->n++;
    }
    rf_buf_reset(&ks->scratch); /* wiped */
    return rc == RF_ERR_NOMEM ? rc : 0;
}

struct load_ctx {
    struct rf_local *l;
    struct rf_ckeys *ks;
};

static int load_one(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed, size_t n)
{
    struct load_ctx *c = ctx;
    return rf_ckeys_add(c->l, c->ks, k, sealed, n);
}

int rf_local_casekeys_load(struct rf_local *l, const char *case_id, const uint8_t *keyid,
                           struct rf_ckeys *ks)
{
    struct load_ctx c = {l, ks};
    rf_ckeys_reset(ks);
    return rf_cache_casekeys(rf_local_cache(l), case_id, keyid, load_one, &c);
}

json_t *rf_local_casekey_digest(const struct rf_local *l, const struct rf_cobj *o,
                                const struct rf_buf *plain, struct rf_ccasekey *ck,
                                struct rf_buf *krow, int *ok)
{
    struct rf_casekey_obj co;
    *ok = 0;
    int rc = rf_casekey_parse(&co, plain->data, plain->len);
    if (rc == 0)
        rc = rf_casekey_check_case(&co, o->case_id);
    if (rc != 0)
        return json_pack("{ssss}", "k", "broken", "error",
                         rc == RF_ERR_PROTOCOL ? "a case key of another case" : "not a case key");
    memset(ck, 0, sizeof(*ck));
    snprintf(ck->case_id, sizeof(ck->case_id), "%s", o->case_id);
    memcpy(ck->keyid, co.id, 8);
    ck->seq = o->seq;
    ck->roster = co.roster;
    memcpy(ck->maker, co.maker, 32);
    ck->verified = 0; /* a writer checks it before writing under it */
    rf_buf_reset(krow);
    rc = rf_local_casekey_seal(l, o->case_id, co.id, plain->data, plain->len, krow);
    if (rc != 0)
        return NULL;
    *ok = 1;
    return json_pack("{sssI}", "k", "casekey", "roster", (json_int_t)co.roster);
}

struct sealed_ctx {
    struct rf_buf *out;
    size_t k;
};

static int keep_sealed(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed, size_t n)
{
    struct sealed_ctx *c = ctx;
    if (c->k++ >= 16 || n > 4096)
        return 0; /* the opener tries at most 16 keys of one id */
    int rc = rf_buf_put_u32(c->out, (uint32_t)n);
    if (rc == 0)
        rc = rf_buf_put(c->out, k, sizeof(*k));
    if (rc == 0)
        rc = rf_buf_put(c->out, sealed, n);
    return rc;
}

/* ---- the case keys of a large digest, in memory ----
 * Looking an event's keys up in SQLite is an indexed query per event: 8 %
 * of a cold sync's client CPU at 1,000,000 events, all of it on the thread
 * that owns the database (docs/performance.md). A pass over many events
 * reads the table once into a sorted array instead (rows as stored), and
 * opens each row once: the keys that check out (as rf_ckeys_add checks
 * them) are kept in secure memory, side by side for each (case, key id),
 * found through a hash of (case, key id). Opening a sealed row per event
 * and the bisection were another 2 s of CPU at that size. */
struct ckrow {
    struct rf_ccasekey k;
    size_t off, n; /* its sealed bytes in memo->sealed */
};

struct ckgroup {
    size_t first, n; /* keys[first .. first + n) */
    size_t row;      /* a row of the group (its case id) */
    uint64_t h;      /* 0: an empty slot */
};

struct rf_ckmemo {
    struct ckrow *rows;
    size_t n, cap;
    struct rf_buf sealed;
    uint8_t (*keys)[32]; /* sodium_malloc: the opened keys */
    uint8_t (*ids)[8];
    size_t nkeys;
    struct ckgroup *groups;
    size_t mask;
};

static int memo_row(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed, size_t n)
{
    struct rf_ckmemo *m = ctx;
    if (rf_array_grow(&m->rows, &m->cap, m->n + 1, sizeof(*m->rows), 1024) != 0)
        return RF_ERR_NOMEM;
    struct ckrow *r = &m->rows[m->n++];
    r->k = *k;
    r->off = m->sealed.len;
    r->n = n;
    return rf_buf_put(&m->sealed, sealed, n);
}

void rf_ckmemo_free(struct rf_ckmemo *m)
{
    if (!m)
        return;
    free(m->rows);
    rf_buf_free(&m->sealed);
    if (m->keys)
        sodium_free(m->keys); /* wipes */
    free(m->ids);
    free(m->groups);
    free(m);
}

static uint64_t group_hash(const char *case_id, const uint8_t id[8])
{
    uint64_t h = 1469598103934665603ULL;
    for (; *case_id; case_id++)
        h = (h ^ (uint8_t)*case_id) * 1099511628211ULL;
    for (int i = 0; i < 8; i++)
        h = (h ^ id[i]) * 1099511628211ULL;
    return h | 1;
}

static const struct ckgroup *group_find(const struct rf_ckmemo *m, const char *case_id,
                                        const uint8_t id[8])
{
    if (!m->groups)
        return NULL;
    uint64_t h = group_hash(case_id, id);
    for (size_t k = h & m->mask; m->groups[k].h; k = (k + 1) & m->mask) {
        const struct ckgroup *g = &m->groups[k];
        if (g->h == h && memcmp(m->ids[g->first], id, 8) == 0 &&
            strcmp(m->rows[g->row].k.case_id, case_id) == 0)
            return g;
    }
    return NULL;
}

/* Opens every row (the sorted order kept) into keys, and hashes the groups. */
static int memo_open(const struct rf_local *l, struct rf_ckmemo *m)
{
    struct rf_ckeys one;
    size_t ngroups = 0, cap = 16;
    if (m->n == 0)
        return 0;
    m->keys = sodium_malloc(m->n * 32);
    m->ids = calloc(m->n, 8);
    size_t *rowof = calloc(m->n, sizeof(size_t));
    int rc = m->keys && m->ids && rowof ? rf_ckeys_init(&one, 1) : RF_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < m->n; i++) {
        rf_ckeys_reset(&one);
        rc = rf_ckeys_add(l, &one, &m->rows[i].k, m->sealed.data + m->rows[i].off, m->rows[i].n);
        if (rc == 0 && one.n == 1) { /* it checked out */
            memcpy(m->keys[m->nkeys], one.keys[0], 32);
            memcpy(m->ids[m->nkeys], one.ids[0], 8);
            rowof[m->nkeys++] = i;
        }
    }
    if (m->keys && m->ids && rowof)
        rf_ckeys_free(&one);
    while (cap < m->nkeys * 2)
        cap *= 2;
    if (rc == 0 && (m->groups = calloc(cap, sizeof(*m->groups))) == NULL)
        rc = RF_ERR_NOMEM;
    m->mask = cap - 1;
    for (size_t i = 0; rc == 0 && i < m->nkeys; i++) {
        const char *cid = m->rows[rowof[i]].k.case_id;
        if (i > 0 && memcmp(m->ids[i], m->ids[i - 1], 8) == 0 &&
            strcmp(cid, m->rows[rowof[i - 1]].k.case_id) == 0)
            continue; /* the same group as the key before */
        uint64_t h = group_hash(cid, m->ids[i]);
        size_t k = h & m->mask;
        while (m->groups[k].h)
            k = (k + 1) & m->mask;
        size_t e = i + 1;
        while (e < m->nkeys && memcmp(m->ids[e], m->ids[i], 8) == 0 &&
               strcmp(m->rows[rowof[e]].k.case_id, cid) == 0)
            e++;
        m->groups[k] = (struct ckgroup){i, e - i, rowof[i], h};
        ngroups++;
    }
    (void)ngroups;
    free(rowof);
    return rc;
}

int rf_ckmemo_load(struct rf_local *l, struct rf_ckmemo **out)
{
    struct rf_ckmemo *m = calloc(1, sizeof(*m));
    *out = NULL;
    if (!m)
        return RF_ERR_NOMEM;
    rf_buf_init(&m->sealed, SIZE_MAX / 4);
    int rc = rf_cache_casekeys(rf_local_cache(l), NULL, NULL, memo_row, m);
    if (rc == 0)
        rc = memo_open(l, m);
    if (rc != 0) {
        rf_ckmemo_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

static int row_cmp(const struct ckrow *r, const char *case_id, const uint8_t id[8])
{
    int c = strcmp(r->k.case_id, case_id);
    return c ? c : memcmp(r->k.keyid, id, 8);
}

/* The memo's rows of (case_id, id), in the query's order, to fn. */
static int memo_find(const struct rf_ckmemo *m, const char *case_id, const uint8_t id[8],
                     struct sealed_ctx *c)
{
    size_t lo = 0, hi = m->n;
    while (lo < hi) { /* the first row not below (case_id, id) */
        size_t mid = lo + (hi - lo) / 2;
        if (row_cmp(&m->rows[mid], case_id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    int rc = 0;
    for (size_t i = lo; rc == 0 && i < m->n && row_cmp(&m->rows[i], case_id, id) == 0; i++)
        rc = keep_sealed(c, &m->rows[i].k, m->sealed.data + m->rows[i].off, m->rows[i].n);
    return rc;
}

int rf_local_ev2_keys_read(struct rf_local *l, const char *case_id, const struct rf_buf *ct,
                           struct rf_buf *out, int *moved)
{
    uint8_t id[RF_CASEKEY_ID_BYTES];
    struct sealed_ctx c = {out, 0};
    rf_buf_reset(out);
    *moved = 0;
    if (rf_casekey_event_keyid(id, ct->data, ct->len) != 0)
        return 0; /* the opener says what is wrong */
    const struct rf_ckmemo *m = rf_local_ckmemo(l);
    if (m && group_find(m, case_id, id)) /* opened already: rf_local_ev2_open finds them */
        return rf_buf_put_u32(out, UINT32_MAX);
    int rc = m ? memo_find(m, case_id, id, &c)
               : rf_cache_casekeys(rf_local_cache(l), case_id, id, keep_sealed, &c);
    if (rc == 0 && c.k == 0) /* rare: no key of its id here (a grant to wait for?) */
        rc = rf_cache_casekey_elsewhere(rf_local_cache(l), case_id, id, moved);
    return rc;
}

/* An event whose keys the memo holds opened (rf_local_ev2_keys_read's mark). */
static int open_with_memo(const struct rf_local *l, const char *case_id, const uint8_t *ct,
                          size_t n, struct rf_buf *plain)
{
    uint8_t id[RF_CASEKEY_ID_BYTES];
    const struct rf_ckmemo *m = rf_local_ckmemo(l);
    const struct ckgroup *g = NULL;
    if (!m || rf_casekey_event_keyid(id, ct, n) != 0 || !(g = group_find(m, case_id, id)))
        return RF_ERR_DECRYPT; /* cannot be: the mark says it is there */
    struct rf_casekey_table t = {(const uint8_t(*)[32])m->keys + g->first,
                                 (const uint8_t(*)[8])m->ids + g->first, g->n < 16 ? g->n : 16};
    return rf_casekey_event_open(plain, ct, n, case_id, rf_casekey_table_find, &t);
}

int rf_local_ev2_open(const struct rf_local *l, const char *case_id, const struct rf_buf *sealed,
                      struct rf_ckeys *ks, const uint8_t *ct, size_t n, struct rf_buf *plain)
{
    struct rf_reader r;
    if (sealed->len == 4 && memcmp(sealed->data, "\xff\xff\xff\xff", 4) == 0)
        return open_with_memo(l, case_id, ct, n, plain);
    rf_ckeys_reset(ks);
    rf_reader_init(&r, sealed->data, sealed->len);
    while (rf_reader_left(&r) > 0) {
        uint32_t len = 0;
        const uint8_t *rowp, *p;
        struct rf_ccasekey row;
        int rc = rf_get_u32(&r, &len);
        if (rc == 0)
            rc = rf_get_ptr(&r, &rowp, sizeof(row));
        if (rc == 0)
            rc = rf_get_ptr(&r, &p, len);
        if (rc != 0)
            return rc;
        memcpy(&row, rowp, sizeof(row));
        rc = rf_ckeys_add(l, ks, &row, p, len);
        if (rc != 0)
            return rc;
    }
    struct rf_casekey_table t = {(const uint8_t(*)[32])ks->keys, (const uint8_t(*)[8])ks->ids,
                                 ks->n};
    int rc = rf_casekey_event_open(plain, ct, n, case_id, rf_casekey_table_find, &t);
    rf_ckeys_reset(ks);
    return rc;
}

int rf_local_outbox_open(struct rf_local *l, const char *case_id, const uint8_t *p, size_t n,
                         uint8_t *kind, struct rf_buf *plain)
{
    const struct rf_staff_keys *k = rf_local_keys(l);
    if (rf_casekey_event_version(p, n) != 2)
        return rf_envelope_open(plain, kind, k->box_pk, k->box_sk, p, n);
    struct rf_ckeys ks;
    int rc = rf_ckeys_init(&ks, RF_CKEYS_MAX);
    if (rc == 0)
        rc = rf_local_casekeys_load(l, case_id, NULL, &ks);
    if (rc == 0) {
        struct rf_casekey_table t = {(const uint8_t(*)[32])ks.keys, (const uint8_t(*)[8])ks.ids,
                                     ks.n};
        rc = rf_casekey_event_open(plain, p, n, case_id, rf_casekey_table_find, &t);
    }
    rf_ckeys_free(&ks);
    *kind = RF_KIND_EVENT;
    return rc;
}

static int by_kind_then_seq(const void *a, const void *b)
{
    const struct rf_cobj *x = a, *y = b;
    int kx = x->kind != RF_KIND_CASEKEY, ky = y->kind != RF_KIND_CASEKEY;
    if (kx != ky)
        return kx - ky;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int by_case(const void *a, const void *b)
{
    return strcmp(a, b);
}

int rf_local_casekey_order(struct rf_local *l, struct rf_cobj **objs, size_t *n, size_t *nkeys)
{
    size_t k = 0, cap = *n;
    for (size_t i = 0; i < *n; i++)
        k += (*objs)[i].kind == RF_KIND_CASEKEY;
    *nkeys = k;
    if (k == 0)
        return 0;
    /* the keys first, each part in seq order: the listing comes in seq
     * order, so a stable partition does it (qsort of 1,200,000 rows took
     * 0.13 s); anything else is sorted */
    int sorted = 1;
    for (size_t i = 1; sorted && i < *n; i++)
        sorted = (*objs)[i - 1].seq < (*objs)[i].seq;
    if (sorted) {
        struct rf_cobj *p = malloc(*n * sizeof(**objs));
        if (!p)
            return RF_ERR_NOMEM;
        size_t a = 0, b = k;
        for (size_t i = 0; i < *n; i++)
            p[(*objs)[i].kind == RF_KIND_CASEKEY ? a++ : b++] = (*objs)[i];
        memcpy(*objs, p, *n * sizeof(**objs));
        free(p);
    } else {
        qsort(*objs, *n, sizeof(**objs), by_kind_then_seq);
    }
    /* the cases of the new keys, once each */
    char(*cases)[RF_CASE_ID_LEN + 1] = malloc(k * sizeof(*cases));
    if (!cases)
        return RF_ERR_NOMEM;
    for (size_t i = 0; i < k; i++)
        memcpy(cases[i], (*objs)[i].case_id, sizeof(cases[0]));
    qsort(cases, k, sizeof(cases[0]), by_case);
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        if (i > 0 && strcmp(cases[i - 1], cases[i]) == 0)
            continue;
        struct rf_cobj *more = NULL;
        size_t m = 0;
        rc = rf_cache_unreadable_events(rf_local_cache(l), cases[i], &more, &m);
        if (rc == 0) /* doubling: a cold sync has a key per case */
            rc = rf_array_grow(objs, &cap, *n + m, sizeof(**objs), 16);
        if (rc == 0 && m > 0) {
            memcpy(*objs + *n, more, m * sizeof(*more));
            *n += m;
        }
        free(more);
    }
    free(cases);
    if (rc != 0)
        return rc;
    /* the rest in seq order, as before, each once (an event may be both new
     * to digest, after a grant, and unreadable in its case) */
    struct rf_cobj *rest = *objs + k;
    size_t nrest = *n - k, w = 0;
    qsort(rest, nrest, sizeof(*rest), by_kind_then_seq);
    for (size_t i = 0; i < nrest; i++)
        if (w == 0 || rest[w - 1].seq != rest[i].seq)
            rest[w++] = rest[i];
    *n = k + w;
    return 0;
}
