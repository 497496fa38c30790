/*
 * local_pages.c - the board pages (docs/protocol.md 16): every board row of
 * the local case database up to one generation, copied into pages of about
 * rf_local_page_bytes sealed as one object each, so that `refuge cases` opens one
 * XChaCha20-Poly1305 per page, not one per row (that was 40 % of its CPU at
 * 100,000 cases: docs/performance.md).
 *
 * The board table stays the truth: a row written after the pages has a
 * newer generation and is read from the board, and stands in for its
 * case's row in a page; a row deleted drops every page (cache.c's trigger).
 * rf_local_board_pages_refresh builds the pages again once the rows newer
 * than them pass a share of the board (after an update: rf_local_update).
 *
 * A page is sealed with the row key under
 * ad = "boardpage:" gen ":" page "/" npages (decimals), so a page of
 * another build, another place or another count does not open; a page
 * missing is seen by its number (cache_pages.c). A page that does not open
 * makes the listing read the rows instead (RF_ERR_BUSY), never drop cases.
 */
#include "client/local.h"
#include "client/local_rows.h"
#include "lib/boardpage.h"
#include "lib/err.h"

#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t rf_local_page_bytes = 64 * 1024;
#define PAGE_BYTES rf_local_page_bytes
#define SEAL_OVER (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + \
                   crypto_aead_xchacha20poly1305_ietf_ABYTES)

size_t rf_local_pages_min_rows = 2048;

static void page_ad(char *ad, size_t cap, int64_t gen, int64_t page, int64_t npages)
{
    snprintf(ad, cap, "boardpage:%" PRId64 ":%" PRId64 "/%" PRId64, gen, page, npages);
}

/* Whether the pages are far enough behind the board to build again. */
static int stale(const struct rf_cache_pages_info *i)
{
    if ((size_t)i->count < rf_local_pages_min_rows)
        return i->gen != 0 && i->delta > 0; /* a small board: rows only */
    return i->gen == 0 ? i->count > 0
                       : i->delta > i->count / 32 + (int64_t)rf_local_pages_min_rows / 8;
}

/* The pages of rows[0..n) (in the listing's order): how many, closing a
 * page as build() does. */
static int64_t count_pages(const struct rf_cache_board_row *rows, size_t n)
{
    int64_t pages = 0;
    size_t len = RF_BOARDPAGE_HEAD;
    for (size_t i = 0; i < n; i++) {
        len += RF_BOARDPAGE_FIXED + strlen(rows[i].case_id) + (rows[i].n - SEAL_OVER);
        if (len >= PAGE_BYTES) {
            pages++;
            len = RF_BOARDPAGE_HEAD;
        }
    }
    return pages + (len > RF_BOARDPAGE_HEAD);
}

/* The pages of every row in list, written in the caller's transaction. */
static int build(struct rf_local *l, const struct rf_cache_board_list *list, int64_t gen)
{
    struct rf_buf plain, sealed;
    char ad[96];
    uint32_t count = 0;
    int64_t page = 0;
    for (size_t i = 0; i < list->n; i++) /* a row that is not one: no pages (the listing skips it) */
        if (!list->rows[i].case_id || list->rows[i].n < SEAL_OVER)
            return RF_ERR_FORMAT;
    int64_t npages = count_pages(list->rows, list->n);
    rf_buf_init_secure(&plain, RF_LOCAL_ROW_MAX + PAGE_BYTES);
    rf_buf_init(&sealed, RF_LOCAL_ROW_MAX + PAGE_BYTES + SEAL_OVER);
    int rc = rf_cache_board_pages_clear(l->c);
    if (rc == 0)
        rc = rf_boardpage_begin(&plain);
    for (size_t i = 0; rc == 0 && i < list->n; i++) {
        const struct rf_cache_board_row *r = &list->rows[i];
        struct rf_boardpage_entry e = {.case_id = r->case_id,
                                       .id_len = strlen(r->case_id),
                                       .gen = r->gen,
                                       .last_seq = r->last_seq,
                                       .row_len = r->n - SEAL_OVER};
        size_t at;
        rc = rf_boardpage_add_head(&plain, &e);
        at = plain.len;
        if (rc == 0) /* opened straight into the page */
            rc = rf_local_board_open(l, r->case_id, r->blob, r->n, &plain);
        if (rc == 0 && plain.len - at != e.row_len)
            rc = RF_ERR_FORMAT;
        count++;
        if (rc != 0 || (plain.len < PAGE_BYTES && i + 1 < list->n))
            continue;
        rf_boardpage_end(&plain, count);
        page_ad(ad, sizeof(ad), gen, page, npages);
        rf_buf_reset(&sealed);
        rc = rf_local_seal(l, ad, plain.data, plain.len, &sealed);
        if (rc == 0)
            rc = rf_cache_board_page_put(l->c, page++, sealed.data, sealed.len);
        count = 0;
        if (rc == 0)
            rc = rf_boardpage_begin(&plain); /* wiped, and begun again */
    }
    if (rc == 0 && page != npages)
        rc = RF_ERR_INVALID; /* cannot be: both close a page at PAGE_BYTES */
    if (rc == 0 && npages > 0)
        rc = rf_cache_board_pages_set(l->c, gen, npages);
    rf_buf_free(&plain);
    rf_buf_free(&sealed);
    return rc;
}

int rf_local_board_pages_refresh(struct rf_local *l, int force, int *built)
{
    struct rf_cache_pages_info info;
    struct rf_cache_board_list list = {0};
    if (built)
        *built = 0;
    int rc = rf_cache_board_pages_info(l->c, &info);
    if (rc != 0 || (!force && !stale(&info)))
        return rc;
    rc = rf_cache_begin(l->c);
    if (rc != 0)
        return rc;
    rc = rf_cache_board_pages_info(l->c, &info); /* of this transaction's moment */
    if (rc == 0 && (force || stale(&info)) && (size_t)info.count >= rf_local_pages_min_rows) {
        rc = rf_cache_board_list(l->c, &list); /* in the listing's order */
        if (rc == 0)
            rc = build(l, &list, info.board_gen);
        if (rc == RF_ERR_FORMAT || rc == RF_ERR_DECRYPT) /* a damaged row: no pages, the */
            rc = rf_cache_board_pages_clear(l->c);   /* listing reads (and skips) it */
        else if (rc == 0 && built)
            *built = 1;
    } else if (rc == 0) {
        rc = rf_cache_board_pages_clear(l->c); /* a board too small for pages */
    }
    rf_cache_board_list_free(&list);
    if (rc == 0)
        return rf_cache_commit(l->c);
    rf_cache_rollback(l->c);
    return rc;
}

/* ------------------------------------------------------ reading the rows */

/* The case ids of the rows newer than the pages: their page entries are
 * passed over (open addressing on a 64-bit hash; filled before the pages
 * are read, read-only on both threads after). */
struct idset {
    uint64_t *h;
    size_t *at; /* the id's offset in ids */
    size_t mask;
    struct rf_buf ids;
    size_t n;
};

static uint64_t id_hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (uint8_t)*s) * 1099511628211ULL;
    return h | 1; /* 0: an empty slot */
}

static int idset_build(struct idset *s)
{
    size_t cap = 16;
    while (cap < s->n * 2)
        cap *= 2;
    s->h = calloc(cap, sizeof(*s->h));
    s->at = calloc(cap, sizeof(*s->at));
    if (!s->h || !s->at)
        return RF_ERR_NOMEM;
    s->mask = cap - 1;
    for (size_t off = 0; off < s->ids.len; off += strlen((const char *)s->ids.data + off) + 1) {
        uint64_t h = id_hash((const char *)s->ids.data + off);
        size_t k = h & s->mask;
        while (s->h[k])
            k = (k + 1) & s->mask;
        s->h[k] = h;
        s->at[k] = off;
    }
    return 0;
}

static int idset_has(const struct idset *s, const char *id)
{
    if (s->n == 0)
        return 0;
    uint64_t h = id_hash(id);
    for (size_t k = h & s->mask; s->h[k]; k = (k + 1) & s->mask)
        if (s->h[k] == h && strcmp((const char *)s->ids.data + s->at[k], id) == 0)
            return 1;
    return 0;
}

struct walk;
struct walk_part {
    struct walk *w;
    void *ctx;
    struct rf_buf plain; /* a row or a page, opened (secure, reused) */
};

struct walk {
    struct rf_local *l;
    rf_local_board_fn fn;
    void (*done)(void *ctx);
    struct walk_part part[2];
    struct idset newer;
    const struct rf_cache_pages_read *r;
    int64_t gen, npages; /* the pages' (their ad), once read */
};

/* A sealed board row: opened and handed on (a damaged one is skipped, as
 * the listing always has). */
static int sealed_row(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                      const uint8_t *blob, size_t n)
{
    struct walk_part *p = ctx;
    rf_buf_reset(&p->plain);
    if (!case_id || rf_local_board_open(p->w->l, case_id, blob, n, &p->plain) != 0)
        return 0;
    return p->w->fn(p->ctx, case_id, gen, last_seq, p->plain.data, p->plain.len);
}

/* A row newer than the pages: handed on, its case remembered. */
static int newer_row(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                     const uint8_t *blob, size_t n)
{
    struct walk_part *p = ctx;
    struct idset *s = &p->w->newer;
    if (case_id) {
        if (rf_buf_put(&s->ids, case_id, strlen(case_id) + 1) != 0)
            return RF_ERR_NOMEM;
        s->n++;
    }
    return sealed_row(ctx, case_id, gen, last_seq, blob, n);
}

static int between(void *arg)
{
    struct walk *w = arg;
    w->gen = w->r->info.gen;
    w->npages = w->r->info.npages;
    return w->newer.n ? idset_build(&w->newer) : 0;
}

static int page_rows(void *ctx, int64_t page, const uint8_t *blob, size_t n)
{
    struct walk_part *p = ctx;
    struct walk *w = p->w;
    struct rf_boardpage_entry e;
    char ad[96];
    uint32_t count = 0, seen = 0;
    size_t off = 0;
    page_ad(ad, sizeof(ad), w->gen, page, w->npages);
    rf_buf_reset(&p->plain);
    int rc = rf_local_open(w->l, ad, blob, n, &p->plain);
    if (rc == 0)
        rc = rf_boardpage_first(p->plain.data, p->plain.len, &count, &off);
    while (rc == 0 && (rc = rf_boardpage_next(p->plain.data, p->plain.len, &off, &e)) == 1) {
        seen++;
        rc = idset_has(&w->newer, e.case_id)
                 ? 0
                 : w->fn(p->ctx, e.case_id, e.gen, e.last_seq, e.row, e.row_len);
    }
    return rc == 0 && seen != count ? RF_ERR_FORMAT : rc;
}

static void part_done(void *ctx)
{
    struct walk_part *p = ctx;
    if (p->w->done)
        p->w->done(p->ctx);
}

int rf_local_board_each2(struct rf_local *l, rf_local_board_fn fn, void (*done)(void *ctx),
                         void *const ctx[2])
{
    struct walk w = {.l = l, .fn = fn, .done = done};
    for (int i = 0; i < 2; i++) {
        w.part[i].w = &w;
        w.part[i].ctx = ctx[i];
        rf_buf_init_secure(&w.part[i].plain, RF_LOCAL_ROW_MAX + PAGE_BYTES);
    }
    rf_buf_init(&w.newer.ids, (size_t)1 << 32);
    struct rf_cache_pages_read r = {.delta = newer_row,
                                    .between = between,
                                    .arg = &w,
                                    .page = page_rows,
                                    .done = part_done,
                                    .ctx = {&w.part[0], &w.part[1]}};
    w.r = &r;
    int rc = rf_cache_board_pages_each2(l->c, &r);
    if (rc == RF_ERR_NOT_FOUND && w.newer.n == 0) { /* no pages: the rows themselves */
        void *parts[2] = {&w.part[0], &w.part[1]};
        rc = rf_cache_board_each2(l->c, sealed_row, part_done, parts);
    } else if (rc == RF_ERR_DECRYPT || rc == RF_ERR_FORMAT || rc == RF_ERR_TRUNCATED ||
               rc == RF_ERR_VERSION || rc == RF_ERR_NOT_FOUND) {
        rc = RF_ERR_BUSY; /* a page that does not open: the caller reads the rows */
    }
    for (int i = 0; i < 2; i++)
        rf_buf_free(&w.part[i].plain);
    rf_buf_free(&w.newer.ids);
    free(w.newer.h);
    free(w.newer.at);
    return rc;
}
