/*
 * view_cases.c - the listing of cases from the local case database, for
 * `refuge cases` (rf_view_cases) and the desk's board (rf_view_board),
 * with their filters (stage, tag, assignee, text). The rows come from the
 * compact sealed board rows (cache.h "board"): read once in the listing's
 * order for the CLI, kept in memory and read again only where written
 * since for the desk; a text filter needs each case's search text, which
 * only the summaries hold. Plaintext lives only in the reused secure
 * buffers and in jansson's wiping allocator.
 */
#include "client/cmd.h"
#include "client/state.h"
#include "lib/boardrow.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct filter {
    const char *stage, *tag, *me;
    char *search; /* folded */
    json_t *checklist;
    json_t *rows, *marks;
    struct rf_local *l;
    struct rf_buf plain; /* one secure buffer for every row (no sodium_malloc per row) */
    size_t total;
};

/* The checklist of a case as {item: bool} for every item of the team's
 * checklist, plus items set on the case that the team no longer lists. */
json_t *rf_view_checklist(const json_t *team_list, const json_t *set)
{
    json_t *c = json_object();
    size_t i;
    json_t *v;
    const char *key;
    json_array_foreach(team_list, i, v)
    {
        json_object_set_new(c, json_string_value(v), json_false());
    }
    json_object_foreach((json_t *)set, key, v)
    {
        if (json_is_true(v) || json_object_get(c, key))
            json_object_set(c, key, v);
    }
    return c;
}

/* A sealed board row opened and unpacked into the JSON object the board
 * rows held before version 6 (NULL: damaged). */
json_t *rf_view_board_json(struct rf_local *l, const char *case_id, const uint8_t *blob, size_t n,
                           struct rf_buf *plain)
{
    json_t *row = NULL;
    struct rf_boardrow br;
    rf_buf_reset(plain);
    if (rf_local_board_open(l, case_id, blob, n, plain) == 0 &&
        rf_boardrow_parse(&br, plain->data, plain->len) == 0)
        row = rf_boardrow_to_json(&br);
    rf_buf_reset(plain); /* wiped */
    return row;
}

static json_t *case_row(const struct filter *f, json_t *s);
static int keep(const struct filter *f, json_t *s);

/* One sealed summary row: opened, filtered, turned into a listing row. */
static int on_summary(void *ctx, const char *case_id, const uint8_t *blob, size_t n)
{
    struct filter *f = ctx;
    if (strcmp(case_id, RF_STATE_TEAMCONFIG) == 0)
        return 0;
    f->total++;
    json_t *s = rf_local_open_summary(f->l, case_id, blob, n, &f->plain);
    if (s && keep(f, s)) {
        json_array_append_new(f->rows, case_row(f, s));
        json_array_append_new(f->marks,
                              json_boolean(json_integer_value(json_object_get(s, "pending"))));
    }
    json_decref(s); /* a damaged row is skipped */
    return 0;
}

static int keep(const struct filter *f, json_t *s)
{
    if (f->stage) {
        const char *stage = json_string_value(json_object_get(s, "stage"));
        if (!stage || strcmp(stage, f->stage) != 0)
            return 0;
    }
    if (f->tag && !rf_state_in_list(json_object_get(s, "tags"), f->tag))
        return 0;
    if (f->me && !rf_state_in_list(json_object_get(s, "assigned"), f->me))
        return 0;
    if (f->search) {
        const char *t = json_string_value(json_object_get(s, "search"));
        if (!t || !strstr(t, f->search))
            return 0;
    }
    return 1;
}

static json_t *case_row(const struct filter *f, json_t *s)
{
    json_t *due = json_object_get(s, "due");
    json_t *row = json_pack(
        "{sOsOsOsOsOsosOsOsOsOsOsOsOsO}", "case", json_object_get(s, "case"), "stage",
        json_object_get(s, "stage"), "assigned", json_object_get(s, "assigned"), "tags",
        json_object_get(s, "tags"), "due", json_is_string(due) ? due : json_null(), "checklist",
        rf_view_checklist(f->checklist, json_object_get(s, "checklist")), "notes",
        json_object_get(s, "notes"), "messages", json_object_get(s, "messages"), "files",
        json_object_get(s, "files"), "replies", json_object_get(s, "replies"), "first_day",
        json_object_get(s, "first_day"), "last_day", json_object_get(s, "last_day"), "need",
        json_object_get(s, "need") ? json_object_get(s, "need") : json_null(), "urgency",
        json_object_get(s, "urgency") ? json_object_get(s, "urgency") : json_null());
    return row;
}

/* The listing from the sealed summaries: every one opened and parsed (a
 * text filter needs their search text). */
static int cases_from_summaries(struct rf_ctx *x, const struct rf_view_filter *vf, json_t **rows,
                                size_t *total)
{
    struct filter f = {.stage = vf->stage, .tag = vf->tag, .me = vf->assignee, .l = x->l};
    json_t *team = NULL;
    *rows = NULL;
    *total = 0;
    if (vf->search && !(f.search = rf_local_fold(vf->search)))
        return RF_ERR_FORMAT;
    f.rows = json_array();
    f.marks = json_array();
    rf_buf_init_secure(&f.plain, (size_t)64 * 1024 * 1024);
    /* objects synced by an older version of refuge get their digests here */
    int rc = f.rows && f.marks ? (vf->current ? 0 : rf_local_update(x->l, NULL)) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_local_team(x->l, &team);
    f.checklist = json_object_get(team, "checklist");
    if (rc == 0) {
        rc = rf_cache_summaries(x->c, on_summary, &f);
        size_t i;
        json_t *row;
        json_array_foreach(f.rows, i, row)
        {
            json_object_set(row, "pending", json_array_get(f.marks, i));
        }
    }
    free(f.search);
    rf_buf_free(&f.plain);
    json_decref(f.marks);
    json_decref(team);
    if (rc != 0) {
        json_decref(f.rows);
        return rc;
    }
    *rows = f.rows;
    *total = f.total;
    return 0;
}

/* ------------------------------------------------------------------ board */

/* The board rows kept across rf_view_board calls (the desk): every case's
 * compact board row (cache.h "board", sealed by local.c), opened once and
 * kept, with the largest generation seen. After a change (a sync, an event,
 * the CLI in the same home) only the rows written since are read and
 * opened: an index range of the board table, a few rows, instead of every
 * summary. A row that was deleted shows as a count that differs; then every
 * row is read again. Plaintext lives only in jansson's wiping allocator, as
 * while any board renders; the desk exits when it locks.
 *
 * A text filter needs each case's folded search text, which the board rows
 * do not carry (it is the summary's): it is fetched from the summaries the
 * first time a text filter is asked for (every summary opened once, a few
 * hundred ms with 10,000 cases) and kept beside the row; a row written
 * again (its summary changed) forgets its text, and the next text filter
 * opens only those summaries again. */
struct brow {
    char case_id[RF_CASE_ID_LEN + 1];
    int64_t last_seq;
    json_t *row;    /* NULL: a row that could not be opened (skipped) */
    json_t *search; /* the summary's folded search text; NULL: not fetched */
};

static struct {
    struct brow *v; /* sorted by case id */
    size_t n, cap;
    struct brow **order; /* most recent activity first (last_seq desc, case id) */
    int64_t gen;         /* the largest generation read */
    size_t odd;          /* rows read that no case id names (never written by local.c) */
} board;

void rf_view_forget(void)
{
    for (size_t i = 0; i < board.n; i++) {
        json_decref(board.v[i].row);
        json_decref(board.v[i].search);
    }
    free(board.v);
    free(board.order);
    memset(&board, 0, sizeof(board));
}

static int brow_cmp_id(const void *a, const void *b)
{
    return strcmp(((const struct brow *)a)->case_id, ((const struct brow *)b)->case_id);
}

static int brow_cmp_order(const void *a, const void *b)
{
    const struct brow *x = *(struct brow *const *)a, *y = *(struct brow *const *)b;
    if (x->last_seq != y->last_seq)
        return x->last_seq > y->last_seq ? -1 : 1;
    return strcmp(x->case_id, y->case_id);
}

struct board_read {
    struct rf_local *l;
    struct rf_buf *plain; /* one secure buffer for the process, wiped after each row */
    size_t added;         /* rows appended at the end of board.v (not sorted yet) */
    size_t sorted;        /* board.n before this read */
    size_t read;          /* rows read */
};

static int on_board_row(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                        const uint8_t *blob, size_t n)
{
    struct board_read *r = ctx;
    if (gen > board.gen)
        board.gen = gen;
    r->read++;
    if (!case_id || strlen(case_id) > RF_CASE_ID_LEN) {
        board.odd++; /* not a row local.c wrote: counted, never shown */
        return 0;
    }
    json_t *row = rf_view_board_json(r->l, case_id, blob, n, r->plain);
    if (row && (json_object_set_new(row, "case", json_string(case_id)) != 0 ||
                json_object_set_new(
                    row, "pending",
                    json_boolean(json_integer_value(json_object_get(row, "pending")))) != 0)) {
        json_decref(row);
        row = NULL;
    }
    struct brow key;
    snprintf(key.case_id, sizeof(key.case_id), "%s", case_id);
    /* among the rows kept before this read (a case id appears once in one
     * read: it is the table's primary key, and the read is one snapshot) */
    struct brow *hit =
        r->sorted ? bsearch(&key, board.v, r->sorted, sizeof(*board.v), brow_cmp_id) : NULL;
    if (!hit) {
        if (board.n == board.cap) {
            size_t cap = board.cap ? board.cap * 2 : 1024;
            struct brow *v = realloc(board.v, cap * sizeof(*v));
            if (!v) {
                json_decref(row);
                return RF_ERR_NOMEM;
            }
            board.v = v;
            board.cap = cap;
        }
        hit = &board.v[board.n++];
        memcpy(hit->case_id, key.case_id, sizeof(hit->case_id));
        hit->row = NULL;
        hit->search = NULL;
        r->added++;
    }
    json_decref(hit->search); /* its summary was written again */
    hit->search = NULL;
    json_decref(hit->row);
    hit->row = row; /* a damaged row is skipped until it is written again */
    hit->last_seq = last_seq;
    return 0;
}

/* Brings the kept board rows up to date: only the rows written since the
 * last call; every row again if one was deleted (the count differs). */
static int board_current(struct rf_ctx *x)
{
    static struct rf_buf plain; /* no sodium_malloc per request */
    static int ready;
    if (!ready) {
        rf_buf_init_secure(&plain, 64 * 1024);
        ready = 1;
    }
    for (int pass = 0;; pass++) {
        struct board_read r = {.l = x->l, .plain = &plain, .sorted = board.n};
        int64_t count = 0;
        int rc = rf_cache_board_since(x->c, board.gen, on_board_row, &r, &count);
        rf_buf_reset(&plain); /* wiped */
        if (rc != 0) {
            rf_view_forget();
            return rc;
        }
        /* a row of another shape (never written by local.c) is counted but
         * not kept: after reading every row, the count is what it is */
        if ((int64_t)(board.n + board.odd) != count && pass == 0) {
            rf_view_forget(); /* a row was deleted: read every one again */
            continue;
        }
        if (r.added > 0)
            qsort(board.v, board.n, sizeof(*board.v), brow_cmp_id);
        if (r.read > 0 || (board.n > 0 && !board.order)) {
            /* the order, built again only when something changed */
            struct brow **o = board.n ? realloc(board.order, board.n * sizeof(*o)) : board.order;
            if (board.n && !o) {
                rf_view_forget();
                return RF_ERR_NOMEM;
            }
            board.order = o;
            for (size_t i = 0; i < board.n; i++)
                board.order[i] = &board.v[i];
            if (board.n > 0)
                qsort(board.order, board.n, sizeof(*board.order), brow_cmp_order);
        }
        return 0;
    }
}

struct search_fill {
    struct rf_local *l;
    struct rf_buf *plain;
};

static struct brow *brow_find(const char *case_id)
{
    struct brow key;
    if (strlen(case_id) > RF_CASE_ID_LEN || board.n == 0)
        return NULL;
    memcpy(key.case_id, case_id, strlen(case_id) + 1);
    return bsearch(&key, board.v, board.n, sizeof(*board.v), brow_cmp_id);
}

/* Keeps the search text of one summary whose row has none yet. */
static int on_summary_search(void *ctx, const char *case_id, const uint8_t *blob, size_t n)
{
    struct search_fill *sf = ctx;
    struct brow *b = brow_find(case_id);
    if (b == NULL || b->search != NULL)
        return 0;
    char ad[48];
    snprintf(ad, sizeof(ad), "summary:%s", case_id);
    rf_buf_reset(sf->plain);
    if (rf_local_open(sf->l, ad, blob, n, sf->plain) == 0) {
        json_error_t e;
        json_t *s = json_loadb((const char *)sf->plain->data, sf->plain->len, 0, &e);
        json_t *t = json_object_get(s, "search");
        b->search = json_is_string(t) ? json_incref(t) : json_string("");
        json_decref(s);
    }
    rf_buf_reset(sf->plain); /* wiped */
    return 0;
}

/* Fetches the search text of every kept row that has none: one pass over
 * every summary when many are missing (the first text filter), else the
 * few summaries written since. */
static int board_search_current(struct rf_ctx *x)
{
    static struct rf_buf plain;
    static int ready;
    if (!ready) {
        rf_buf_init_secure(&plain, (size_t)64 * 1024 * 1024);
        ready = 1;
    }
    size_t missing = 0;
    for (size_t i = 0; i < board.n; i++)
        missing += board.v[i].row != NULL && board.v[i].search == NULL;
    if (missing == 0)
        return 0;
    struct search_fill sf = {.l = x->l, .plain = &plain};
    int rc = 0;
    if (missing > 64) {
        rc = rf_cache_summaries(x->c, on_summary_search, &sf);
    } else {
        struct rf_buf blob;
        rf_buf_init(&blob, (size_t)64 * 1024 * 1024);
        for (size_t i = 0; rc == 0 && i < board.n; i++) {
            struct brow *b = &board.v[i];
            if (b->row == NULL || b->search != NULL)
                continue;
            rf_buf_reset(&blob);
            int got = rf_cache_summary_get(x->c, b->case_id, &blob);
            if (got == 0)
                rc = on_summary_search(&sf, b->case_id, blob.data, blob.len);
            else if (got != RF_ERR_NOT_FOUND)
                rc = got;
        }
        rf_buf_free(&blob);
    }
    rf_buf_reset(&plain);
    return rc;
}

int rf_view_board(struct rf_ctx *x, const struct rf_view_filter *vf, json_t **rows, size_t *total)
{
    struct filter f = {.stage = vf->stage, .tag = vf->tag, .me = vf->assignee, .l = x->l};
    char *q = NULL;
    *rows = NULL;
    *total = 0;
    if (vf->search && !(q = rf_local_fold(vf->search)))
        return RF_ERR_FORMAT;
    int rc = vf->current ? 0 : rf_local_update(x->l, NULL);
    if (rc == 0)
        rc = board_current(x);
    if (rc == 0 && q != NULL)
        rc = board_search_current(x);
    json_t *out = rc == 0 ? json_array() : NULL;
    if (rc == 0 && !out)
        rc = RF_ERR_NOMEM;
    for (size_t i = 0; rc == 0 && i < board.n; i++) {
        const struct brow *b = board.order[i];
        if (b->row == NULL || !keep(&f, b->row))
            continue;
        if (q != NULL && (b->search == NULL || !strstr(json_string_value(b->search), q)))
            continue;
        if (json_array_append(out, b->row) != 0)
            rc = RF_ERR_NOMEM;
    }
    if (q != NULL) {
        sodium_memzero(q, strlen(q));
        free(q);
    }
    if (rc != 0) {
        json_decref(out);
        return rc;
    }
    *rows = out;
    *total = board.n;
    return 0;
}

/* One sealed board row, read in the listing's order: opened, filtered,
 * turned into a listing row and dropped (nothing is kept). */
static int on_board_listing(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                            const uint8_t *blob, size_t n)
{
    struct filter *f = ctx;
    json_t *r = NULL;
    (void)gen;
    (void)last_seq;
    if (!case_id || strlen(case_id) > RF_CASE_ID_LEN)
        return 0; /* not a row local.c wrote (the desk's board skips it too) */
    f->total++;
    r = rf_view_board_json(f->l, case_id, blob, n, &f->plain);
    if (json_is_object(r) && json_object_set_new(r, "case", json_string(case_id)) == 0 &&
        keep(f, r)) {
        json_t *row = case_row(f, r); /* NULL: a field missing (damaged): skipped */
        if (row && (json_array_append_new(f->rows, row) != 0 ||
                    json_object_set_new(
                        row, "pending",
                        json_boolean(json_integer_value(json_object_get(r, "pending")))) != 0)) {
            json_decref(r);
            return RF_ERR_NOMEM;
        }
    }
    json_decref(r); /* a damaged row is skipped */
    return 0;
}

json_t *rf_view_listing_row(const struct rf_view_filter *vf, const json_t *team_checklist,
                            json_t *r)
{
    struct filter f = {.stage = vf->stage,
                       .tag = vf->tag,
                       .me = vf->assignee,
                       .checklist = (json_t *)team_checklist};
    if (!json_is_object(r) || !keep(&f, r))
        return NULL;
    json_t *row = case_row(&f, r);
    if (row &&
        json_object_set_new(row, "pending",
                            json_boolean(json_integer_value(json_object_get(r, "pending")))) != 0) {
        json_decref(row);
        row = NULL;
    }
    return row;
}

/* The listing from the compact board rows (the same rows, fields and order
 * as from the summaries: the board rows carry every field a listing row
 * shows, cache version 4), read once in the listing's order: no summary is
 * opened but the team's. With a text filter, from the summaries (their
 * search text). */
int rf_view_cases(struct rf_ctx *x, const struct rf_view_filter *vf, json_t **rows, size_t *total)
{
    struct filter f = {.stage = vf->stage, .tag = vf->tag, .me = vf->assignee, .l = x->l};
    json_t *team = NULL;
    *rows = NULL;
    *total = 0;
    if (vf->search)
        return cases_from_summaries(x, vf, rows, total);
    f.rows = json_array();
    rf_buf_init_secure(&f.plain, 1024 * 1024);
    /* objects synced by an older version of refuge get their digests here */
    int rc = f.rows ? (vf->current ? 0 : rf_local_update(x->l, NULL)) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_local_team(x->l, &team);
    f.checklist = json_object_get(team, "checklist");
    if (rc == 0)
        rc = rf_cache_board_rows(x->c, on_board_listing, &f);
    rf_buf_free(&f.plain);
    json_decref(team);
    if (rc != 0) {
        json_decref(f.rows);
        return rc;
    }
    *rows = f.rows;
    *total = f.total;
    return 0;
}
