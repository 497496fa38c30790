/*
 * cmd_cases.c - `refuge cases`: the listing of the local case database.
 *
 * Without --search, the listing is printed as the packed board rows
 * (lib/boardrow.h) are read, in the listing's order: each row opened into
 * one reused secure buffer, parsed in place, filtered, and written as text
 * cells or JSON without building a JSON value (no allocation per row). A
 * row with a field that only JSON can hold (lib/boardrow.h tag JSON: an
 * intake answer of another shape) takes the general route for itself:
 * unpacked into jansson values, turned into the listing row by
 * rf_view_listing_row, printed from them. With --search the rows come from
 * the summaries (rf_view_cases) and are printed from jansson values. Every
 * route prints the same bytes: the JSON is jansson's JSON_INDENT(2) |
 * JSON_PRESERVE_ORDER form (strings escaped as jansson escapes them), the
 * table the same cells (tests/e2e same_listing, tests/unit/cases_test.c).
 *
 * Plaintext lives in secure buffers only (the opened row, the table's cells,
 * the output chunk, written to stdout with write(2) when full); the table
 * needs every row before its column widths are known, so its cells are
 * kept (about 100 bytes a case).
 *
 * Where the rows come from: with the passphrase, the board is read into
 * memory (rf_cache_board_list, sorted) while Argon2id unlocks the key
 * (rf_ctx_open_overlap), and the parts take slices of it. With the keys in
 * the session keyring there is nothing to overlap: the table is made as the
 * rows are read (print_fused), the board's pages (local_pages.c: one AEAD
 * a page, not a row) or its rows in two halves at once on two connections
 * and threads (rf_local_board_each2), each shown row's
 * cells kept with its last_seq and case id, each half sorted, and the two
 * merged into the listing's order as the lines are written. --json keeps
 * the read list (its rows are written in order, block by block, not kept).
 * docs/performance.md ("refuge cases at 100,000 cases") has the profile.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "client/sink.h"
#include "client/state.h"
#include "lib/boardrow.h"
#include "lib/err.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <unistr.h>

#define COL_MAX 32
#define CELL (COL_MAX * 4)
#define OUT_CHUNK RF_SINK_CHUNK
#define PARTS_MAX 4

static const char *const colour_off = "\033[0m";
static const char *const colour_head = "\033[1m";
static const char *const colour_case = "\033[36m";
static const char *const colour_stage = "\033[33m";

enum {
    C_CASE,
    C_STAGE,
    C_ASSIGNED,
    C_DUE,
    C_LAST,
    C_MSGS,
    C_NOTES,
    C_CHECK,
    C_NEED,
    C_URG,
    C_TAGS,
    C_N
};
static const char *const heads[C_N] = {"CASE",  "STAGE", "ASSIGNED", "DUE",     "LAST", "MSGS",
                                       "NOTES", "CHECK", "NEED",     "URGENCY", "TAGS"};
static const int right[C_N] = {0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0};

/* Terminal columns a sanitised string takes (code points; good enough for
 * the Latin and Cyrillic text Refuge sees). */
static size_t cols(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

/* ------------------------------------------------------------ the lister */

struct check {
    const uint8_t *key;
    size_t n;
    int val;
};

/* --json on several threads: the rows in blocks of BLOCK_ROWS, block b to
 * part b % nparts; a part formats its block into its own buffer, waits for
 * the block's turn, writes it to the listing's output and passes the turn
 * on. Memory stays a block a part whatever the number of rows. */
size_t rf_view_cases_block_rows = 1024;
#define BLOCK_ROWS rf_view_cases_block_rows
struct turns {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    size_t next;         /* the block to write next */
    int any;             /* a row was written: the next one keeps its comma */
    struct rf_sink *out; /* the listing's output */
    size_t nblocks;
    size_t nparts; /* the parts that run, set before go */
    int go;
};

/* One part of the listing (a range of rows, on its own thread): its
 * buffers, and what it found. */
struct lister {
    struct rf_local *l;
    const struct rf_view_filter *vf;
    const json_t *team_checklist;
    int json;
    struct rf_buf plain;              /* the opened row */
    struct rf_buf scratch;            /* a string NUL-terminated for the sanitiser */
    struct rf_buf cells;              /* text: every shown row's C_N cells, NUL-terminated */
    size_t cells_hint;                /* the bytes to reserve for them at the first row */
    int fused;                        /* text, rows as read (two halves): each shown row in order */
    int sorted;                       /* fused: order sorted */
    struct rf_cache_board_row *order; /* fused: a shown row's last_seq, case id, cells offset (n) */
    size_t norder, order_cap;
    struct rf_buf ids;  /* fused: the shown rows' case ids (in the database in the clear too) */
    struct rf_sink out; /* --json: the part's rows (grow mode); the listing's output (main) */
    const struct rf_cache_board_row *rows;
    size_t nrows;
    struct turns *turns; /* --json: blocks written in order as they are done */
    size_t index;
    struct check *team; /* the team's checklist items, once each, in order */
    size_t nteam;
    struct check *merged; /* one row's checklist */
    size_t cap;
    size_t total, shown, pending;
    size_t w[C_N];
    uint32_t day; /* the last day formatted, and its text */
    char day_text[COL_MAX];
    size_t day_len;
    int rc;
};

static int str_is(const struct rf_boardrow_val *v, const char *s)
{
    size_t n = strlen(s);
    return v->tag == RF_BRT_STR && v->len == n && memcmp(v->p, s, n) == 0;
}

static int list_has(const struct rf_boardrow_val *v, const char *s)
{
    size_t off = 0, n, len = strlen(s);
    const uint8_t *p;
    int flag;
    if (v->tag != RF_BRT_STRS)
        return 0;
    while (rf_boardrow_next(v, &off, &p, &n, &flag))
        if (n == len && memcmp(p, s, n) == 0)
            return 1;
    return 0;
}

/* Whether every string of the row is what jansson would have loaded
 * (UTF-8 without NUL): else the row is damaged, as when it was JSON. */
static int string_ok(const uint8_t *p, size_t n)
{
    uint8_t any = 0, nul = 1;
    for (size_t i = 0; i < n; i++) /* the usual string: ASCII without NUL, in one pass */
        any |= p[i], nul &= p[i] != 0;
    if (!nul)
        return 0;
    return any < 0x80 || u8_check(p, n) == NULL;
}

static int strings_ok(const struct rf_boardrow *br)
{
    for (int f = 0; f < RF_BR_NFIELDS; f++) {
        const struct rf_boardrow_val *v = &br->f[f];
        size_t off = 0, n;
        const uint8_t *p;
        int flag;
        if (v->tag == RF_BRT_STR && !string_ok(v->p, v->len))
            return 0;
        while (rf_boardrow_next(v, &off, &p, &n, &flag))
            if (!string_ok(p, n))
                return 0;
    }
    return 1;
}

/* The row's checklist: the team's items (false unless set), then the items
 * set true on the case that the team does not list (rf_view_checklist). */
static int merge_checklist(struct lister *ls, const struct rf_boardrow_val *set, size_t *m)
{
    size_t need = ls->nteam + set->count;
    if (need > ls->cap) {
        struct check *c = realloc(ls->merged, need * sizeof(*c));
        if (!c)
            return RF_ERR_NOMEM;
        ls->merged = c;
        ls->cap = need;
    }
    if (ls->nteam)
        memcpy(ls->merged, ls->team, ls->nteam * sizeof(*ls->team));
    *m = ls->nteam;
    size_t off = 0, n;
    const uint8_t *p;
    int flag;
    if (set->tag != RF_BRT_FLAGS)
        return 0; /* not an object: nothing set */
    while (rf_boardrow_next(set, &off, &p, &n, &flag)) {
        size_t j = 0;
        while (j < *m && !(ls->merged[j].n == n && memcmp(ls->merged[j].key, p, n) == 0))
            j++;
        if (j < *m)
            ls->merged[j].val = flag;
        else if (flag)
            ls->merged[(*m)++] = (struct check){p, n, 1};
    }
    return 0;
}

/* rf_out_safe_copy of printable ASCII is the bytes themselves, cut to
 * fit: that case without the copy and the sanitiser's walk (*len: the
 * bytes written, as many columns). */
static int printable(const uint8_t *p, size_t n)
{
    uint8_t bad = 0;
    for (size_t i = 0; i < n; i++)
        bad |= (uint8_t)(p[i] < 0x20) | (uint8_t)(p[i] > 0x7e);
    return !bad;
}

static int safe_ascii(char *out, size_t cap, const uint8_t *p, size_t n, size_t *len)
{
    if (!printable(p, n))
        return 0;
    if (n > cap - 1)
        n = cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
    *len = n;
    return 1;
}

static const char *cstr(struct lister *ls, const uint8_t *p, size_t n)
{
    rf_buf_reset(&ls->scratch);
    if (rf_buf_put(&ls->scratch, p, n) != 0 || rf_buf_cstr(&ls->scratch) != 0)
        return "";
    return (const char *)ls->scratch.data;
}

/* A cell's bytes, and whether they are as many columns (ASCII). */
struct cell {
    size_t len;
    int ascii;
};

static struct cell sanitised(char *out, size_t cap, const char *s)
{
    rf_out_safe_copy(out, cap, s);
    return (struct cell){strlen(out), 0};
}

static struct cell safe_val(struct lister *ls, char *out, size_t cap,
                            const struct rf_boardrow_val *v)
{
    size_t n;
    if (v->tag == RF_BRT_STR && safe_ascii(out, cap, v->p, v->len, &n))
        return (struct cell){n, 1};
    return sanitised(out, cap, v->tag == RF_BRT_STR ? cstr(ls, v->p, v->len) : NULL);
}

/* join_list of the JSON route: names joined by ",", "-" for none; as
 * snprintf(out + len, cap - len, "%s%s", i ? "," : "", name) a name: cut
 * where it does not fit, and then no more names. */
static struct cell join_names(struct lister *ls, char *out, size_t cap,
                              const struct rf_boardrow_val *v)
{
    size_t off = 0, n, len = 0, i = 0;
    const uint8_t *p;
    int flag, ascii = 1;
    out[0] = '\0';
    while (v->tag == RF_BRT_STRS && rf_boardrow_next(v, &off, &p, &n, &flag)) {
        char one[CELL];
        size_t k1;
        const char *name = one;
        if (printable(p, n)) { /* the bytes themselves, cut to fit one: copied once, below */
            name = (const char *)p;
            k1 = n < sizeof(one) - 1 ? n : sizeof(one) - 1;
        } else {
            rf_out_safe_copy(one, sizeof(one), cstr(ls, p, n));
            k1 = strlen(one);
            ascii = 0;
        }
        size_t sep = i++ ? 1 : 0, k = sep + k1, room = cap - len;
        size_t copy = k < room ? k : room - 1;
        if (sep && copy)
            out[len] = ',';
        if (copy > sep)
            memcpy(out + len + sep, name, copy - sep);
        out[len + copy] = '\0';
        if (k >= room) {
            len += copy;
            break;
        }
        len += k;
    }
    if (!out[0]) {
        memcpy(out, "-", 2);
        return (struct cell){1, 1};
    }
    return (struct cell){len, ascii};
}

/* rf_out_value_text of a packed value, "-" for none. */
static struct cell value_cell(struct lister *ls, char *out, size_t cap,
                              const struct rf_boardrow_val *v)
{
    size_t off = 0, n, len = 0;
    const uint8_t *p;
    int flag, ascii = 1;
    out[0] = '\0';
    if (v->tag == RF_BRT_STR && !safe_ascii(out, cap, v->p, v->len, &len)) {
        rf_out_safe_copy(out, cap, cstr(ls, v->p, v->len));
        len = strlen(out);
        ascii = 0;
    }
    while (v->tag == RF_BRT_STRS && rf_boardrow_next(v, &off, &p, &n, &flag)) {
        if (len + 3 >= cap)
            continue;
        if (len) {
            memcpy(out + len, ", ", 3);
            len += 2;
        }
        if (safe_ascii(out + len, cap - len, p, n, &n)) {
            len += n;
        } else {
            rf_out_safe_copy(out + len, cap - len, cstr(ls, p, n));
            len += strlen(out + len);
            ascii = 0;
        }
    }
    if (!out[0]) {
        memcpy(out, "-", 2);
        return (struct cell){1, 1};
    }
    return (struct cell){len, ascii};
}

static size_t day_cell(struct lister *ls, char *out, uint32_t day)
{
    if (day != ls->day || !ls->day_text[0]) {
        rf_out_day(ls->day_text, sizeof(ls->day_text), day);
        ls->day = day;
        ls->day_len = strlen(ls->day_text);
    }
    memcpy(out, ls->day_text, sizeof(ls->day_text));
    return ls->day_len;
}

static int64_t int_of(const struct rf_boardrow_val *v)
{
    return v->tag == RF_BRT_INT ? v->i : 0;
}

/* Room for one row's cells at the end of the part's (C_N cells under CELL
 * bytes, each after its length and columns); NULL when out of memory. */
static uint8_t *cells_room(struct lister *ls)
{
    if (!ls->cells.data && ls->cells_hint > C_N * (CELL + 2)) {
        /* sized once, on the part's own thread (sodium_malloc fills and
         * locks every page): exactly the hint, not the next power of two */
        size_t max = ls->cells.max;
        ls->cells.max = ls->cells_hint - 1;
        (void)rf_buf_reserve(&ls->cells, ls->cells_hint - 2); /* failing: grown below */
        ls->cells.max = max;
    }
    if (rf_buf_reserve(&ls->cells, C_N * (CELL + 2)) != 0) {
        ls->rc = RF_ERR_NOMEM;
        return NULL;
    }
    return ls->cells.data + ls->cells.len;
}

/* The cell c just written (NUL-terminated) at at + 2: its length and
 * columns before it, the column's width; where the next cell goes. */
static uint8_t *cell_end(struct lister *ls, uint8_t *at, int c, struct cell cl)
{
    size_t w = cl.ascii ? cl.len : cols((const char *)at + 2);
    if (w > ls->w[c])
        ls->w[c] = w;
    at[0] = (uint8_t)cl.len; /* under CELL: both fit */
    at[1] = (uint8_t)w;
    return at + 2 + cl.len;
}

/* Keeps one row's cells made elsewhere (the JSON route's), and wipes them. */
static void keep_cells(struct lister *ls, char (*row)[CELL], int pending)
{
    uint8_t *at = cells_room(ls);
    for (int c = 0; at && c < C_N; c++) {
        size_t n = strlen(row[c]);
        memcpy(at + 2, row[c], n + 1);
        at = cell_end(ls, at, c, (struct cell){n, 0});
    }
    if (at) {
        ls->cells.len = (size_t)(at - ls->cells.data);
        ls->pending += pending != 0;
    }
    sodium_memzero(row, sizeof(char[C_N][CELL]));
}

/* One row's cells, each written where it is kept (the part's secure cells:
 * no copy of the row, nothing to wipe a row). */
static void text_row(struct lister *ls, const char *case_id, size_t id_len,
                     const struct rf_boardrow *br, const struct check *m, size_t nm, int pending)
{
    uint8_t *at = cells_room(ls);
    if (!at)
        return;
    const struct rf_boardrow_val *f = br->f;
    unsigned done = 0;
    uint32_t due = 0;
    struct cell cl;
    char *o = (char *)at + 2;
    for (size_t i = 0; i < nm; i++)
        done += m[i].val != 0;
    if (safe_ascii(o, COL_MAX, (const uint8_t *)case_id, id_len, &cl.len))
        cl.ascii = 1;
    else
        cl = sanitised(o, COL_MAX, case_id);
    at = cell_end(ls, at, C_CASE, cl), o = (char *)at + 2;
    cl = safe_val(ls, o, COL_MAX, &f[RF_BR_STAGE]);
    if (pending) /* strncat(stage, "*", 2): a cell is under COL_MAX, CELL holds it */
        memcpy(o + cl.len++, "*", 2);
    at = cell_end(ls, at, C_STAGE, cl), o = (char *)at + 2;
    cl = join_names(ls, o, COL_MAX, &f[RF_BR_ASSIGNED]);
    at = cell_end(ls, at, C_ASSIGNED, cl), o = (char *)at + 2;
    const struct rf_boardrow_val *dv = &f[RF_BR_DUE];
    cl = (struct cell){1, 1};
    memcpy(o, "-", 2);
    if (dv->tag == RF_BRT_STR && dv->len == 10) { /* a date is 10 bytes (no NUL: strings_ok) */
        memcpy(o, dv->p, 10);
        o[10] = '\0';
        if (rf_state_date(o, &due))
            cl.len = 10;
        else
            memcpy(o, "-", 2);
    }
    at = cell_end(ls, at, C_DUE, cl), o = (char *)at + 2;
    cl = (struct cell){day_cell(ls, o, (uint32_t)int_of(&f[RF_BR_LAST_DAY])), 1};
    at = cell_end(ls, at, C_LAST, cl), o = (char *)at + 2;
    cl = (struct cell){rf_fmt_int(o, int_of(&f[RF_BR_MESSAGES])), 1};
    at = cell_end(ls, at, C_MSGS, cl), o = (char *)at + 2;
    cl = (struct cell){rf_fmt_int(o, int_of(&f[RF_BR_NOTES])), 1};
    at = cell_end(ls, at, C_NOTES, cl), o = (char *)at + 2;
    size_t k = rf_fmt_int(o, done);
    o[k] = '/';
    cl = (struct cell){k + 1 + rf_fmt_int(o + k + 1, (unsigned)nm), 1};
    at = cell_end(ls, at, C_CHECK, cl), o = (char *)at + 2;
    cl = value_cell(ls, o, COL_MAX, &f[RF_BR_NEED]);
    at = cell_end(ls, at, C_NEED, cl), o = (char *)at + 2;
    cl = value_cell(ls, o, COL_MAX, &f[RF_BR_URGENCY]);
    at = cell_end(ls, at, C_URG, cl), o = (char *)at + 2;
    cl = join_names(ls, o, COL_MAX, &f[RF_BR_TAGS]);
    at = cell_end(ls, at, C_TAGS, cl);
    ls->cells.len = (size_t)(at - ls->cells.data);
    ls->pending += pending != 0;
}

static void json_key(struct rf_sink *s, const char *key)
{
    rf_sink_indent(s, 3);
    rf_sink_put(s, "\"", 1);
    rf_sink_puts(s, key);
    rf_sink_puts(s, "\": ");
}

static void json_row(struct lister *ls, const char *case_id, const struct rf_boardrow *br,
                     const struct check *m, size_t nm)
{
    struct rf_sink *s = &ls->out;
    const struct rf_boardrow_val *f = br->f;
    static const struct rf_boardrow_val null_val = {.tag = RF_BRT_NULL};
    rf_sink_puts(s, ",\n    {"); /* the listing drops the first row's comma */
    rf_sink_indent(s, 3);
    rf_sink_puts(s, "\"case\": ");
    rf_sink_json_str(s, (const uint8_t *)case_id, strlen(case_id));
    static const struct {
        const char *key;
        int field;
    } order[] = {
        {"stage", RF_BR_STAGE},
        {"assigned", RF_BR_ASSIGNED},
        {"tags", RF_BR_TAGS},
        {"due", RF_BR_DUE},
        {"checklist", -1},
        {"notes", RF_BR_NOTES},
        {"messages", RF_BR_MESSAGES},
        {"files", RF_BR_FILES},
        {"replies", RF_BR_REPLIES},
        {"first_day", RF_BR_FIRST_DAY},
        {"last_day", RF_BR_LAST_DAY},
        {"need", RF_BR_NEED},
        {"urgency", RF_BR_URGENCY},
    };
    for (size_t k = 0; k < sizeof(order) / sizeof(order[0]); k++) {
        rf_sink_put(s, ",", 1);
        json_key(s, order[k].key);
        if (order[k].field == RF_BR_DUE) {
            rf_sink_json_val(s, f[RF_BR_DUE].tag == RF_BRT_STR ? &f[RF_BR_DUE] : &null_val, 3);
        } else if (order[k].field >= 0) {
            rf_sink_json_val(s, &f[order[k].field], 3);
        } else if (nm == 0) {
            rf_sink_puts(s, "{}");
        } else {
            rf_sink_put(s, "{", 1);
            for (size_t i = 0; i < nm; i++) {
                if (i)
                    rf_sink_put(s, ",", 1);
                rf_sink_indent(s, 4);
                rf_sink_json_str(s, m[i].key, m[i].n);
                rf_sink_puts(s, m[i].val ? ": true" : ": false");
            }
            rf_sink_indent(s, 3);
            rf_sink_put(s, "}", 1);
        }
    }
    rf_sink_indent(s, 2);
    rf_sink_put(s, "}", 1);
}

/* ------------------------------------------- rows only JSON can hold */

/* The text cells of a listing row made of jansson values (as rf_view_cases
 * makes it, "pending" removed). */
static void json_cells(struct lister *ls, json_t *r, int pending)
{
    char row[C_N][CELL];
    unsigned done = 0, total = 0;
    const char *key;
    json_t *v;
    size_t i;
    json_object_foreach(json_object_get(r, "checklist"), key, v)
    {
        total++;
        done += json_is_true(v);
    }
    rf_out_safe_copy(row[C_CASE], COL_MAX, json_string_value(json_object_get(r, "case")));
    rf_out_safe_copy(row[C_STAGE], COL_MAX, json_string_value(json_object_get(r, "stage")));
    if (pending)
        strncat(row[C_STAGE], "*", 2);
    for (int c = C_ASSIGNED; c == C_ASSIGNED || c == C_TAGS; c = c == C_ASSIGNED ? C_TAGS : C_N) {
        size_t len = 0;
        row[c][0] = '\0';
        json_array_foreach(json_object_get(r, c == C_ASSIGNED ? "assigned" : "tags"), i, v)
        {
            char one[CELL];
            rf_out_safe_copy(one, sizeof(one), json_string_value(v));
            int k = snprintf(row[c] + len, COL_MAX - len, "%s%s", i ? "," : "", one);
            if (k < 0 || (size_t)k >= COL_MAX - len)
                break;
            len += (size_t)k;
        }
        if (!row[c][0])
            snprintf(row[c], COL_MAX, "-");
    }
    uint32_t due = 0;
    json_t *dv = json_object_get(r, "due");
    snprintf(row[C_DUE], COL_MAX, "%s",
             json_is_string(dv) && rf_state_date(json_string_value(dv), &due)
                 ? json_string_value(dv)
                 : "-");
    day_cell(ls, row[C_LAST], (uint32_t)json_integer_value(json_object_get(r, "last_day")));
    snprintf(row[C_MSGS], COL_MAX, "%lld",
             (long long)json_integer_value(json_object_get(r, "messages")));
    snprintf(row[C_NOTES], COL_MAX, "%lld",
             (long long)json_integer_value(json_object_get(r, "notes")));
    snprintf(row[C_CHECK], COL_MAX, "%u/%u", done, total);
    rf_out_value_text(row[C_NEED], COL_MAX, json_object_get(r, "need"));
    rf_out_value_text(row[C_URG], COL_MAX, json_object_get(r, "urgency"));
    if (!row[C_NEED][0])
        snprintf(row[C_NEED], COL_MAX, "-");
    if (!row[C_URG][0])
        snprintf(row[C_URG], COL_MAX, "-");
    keep_cells(ls, row, pending);
}

/* A listing row of jansson values as one element of "cases" (depth 2):
 * jansson's own indented dump, every line after the first indented 4 more. */
static void json_value_row(struct lister *ls, json_t *r)
{
    char *d = json_dumps(r, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!d) {
        ls->rc = RF_ERR_NOMEM;
        return;
    }
    rf_sink_puts(&ls->out, ",\n    ");
    for (const char *p = d, *nl; *p; p = nl + 1) {
        nl = strchr(p, '\n');
        if (!nl) {
            rf_sink_puts(&ls->out, p);
            break;
        }
        rf_sink_put(&ls->out, p, (size_t)(nl - p) + 1);
        rf_sink_put(&ls->out, "    ", 4);
    }
    rf_out_json_free(d); /* wiped */
}

static void general_row(struct lister *ls, const char *case_id, const struct rf_boardrow *br)
{
    json_t *r = rf_boardrow_to_json(br), *row = NULL;
    if (r && json_object_set_new(r, "case", json_string(case_id)) == 0)
        row = rf_view_listing_row(ls->vf, ls->team_checklist, r);
    json_decref(r);
    if (!row)
        return; /* filtered out, or damaged: skipped */
    int pending = json_is_true(json_object_get(row, "pending"));
    json_object_del(row, "pending");
    if (ls->json)
        json_value_row(ls, row);
    else
        json_cells(ls, row, pending);
    ls->shown++;
    json_decref(row);
}

/* ------------------------------------------------------------- each row */

/* Fused: the row just shown (its cells at at), for the listing's order. */
static int order_add(struct lister *ls, const char *case_id, size_t id_len, int64_t last_seq,
                     size_t at, size_t shown)
{
    if (!ls->fused || ls->shown == shown)
        return 0;
    if (rf_array_grow(&ls->order, &ls->order_cap, ls->norder + 1, sizeof(*ls->order), 4096) != 0 ||
        rf_buf_put(&ls->ids, case_id, id_len + 1) != 0)
        return RF_ERR_NOMEM;
    ls->order[ls->norder++] =
        (struct rf_cache_board_row){.case_id = (const char *)(uintptr_t)(ls->ids.len - id_len - 1),
                                    .last_seq = last_seq,
                                    .n = at};
    return 0;
}

/* One board row, opened (row[0..n)). */
static int on_row(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                  const uint8_t *row, size_t n)
{
    struct lister *ls = ctx;
    struct rf_boardrow br;
    (void)gen;
    size_t id_len = case_id ? strlen(case_id) : 0;
    if (!case_id || id_len > RF_CASE_ID_LEN)
        return 0; /* not a row local.c wrote (the desk's board skips it too) */
    ls->total++;
    size_t at = ls->cells.len, shown = ls->shown;
    if (rf_boardrow_parse(&br, row, n) != 0 || !strings_ok(&br))
        return 0; /* a damaged row is skipped */
    int general = 0;
    for (int f = 0; f < RF_BR_NFIELDS; f++)
        general |= br.f[f].tag == RF_BRT_JSON;
    if (general) {
        general_row(ls, case_id, &br);
        return ls->rc ? ls->rc : order_add(ls, case_id, id_len, last_seq, at, shown);
    }
    const struct rf_view_filter *vf = ls->vf;
    if ((vf->stage && !str_is(&br.f[RF_BR_STAGE], vf->stage)) ||
        (vf->tag && !list_has(&br.f[RF_BR_TAGS], vf->tag)) ||
        (vf->assignee && !list_has(&br.f[RF_BR_ASSIGNED], vf->assignee)))
        return 0;
    size_t nm = 0;
    int rc = merge_checklist(ls, &br.f[RF_BR_CHECKLIST], &nm);
    if (rc != 0)
        return rc;
    if (ls->json)
        json_row(ls, case_id, &br, ls->merged, nm);
    else
        text_row(ls, case_id, id_len, &br, ls->merged, nm, int_of(&br.f[RF_BR_PENDING]) != 0);
    ls->shown++;
    return ls->rc ? ls->rc : order_add(ls, case_id, id_len, last_seq, at, shown);
}

/* One board row as stored (sealed): opened, then on_row. */
static int on_sealed_row(struct lister *ls, const char *case_id, int64_t gen, int64_t last_seq,
                         const uint8_t *blob, size_t n)
{
    if (!case_id || strlen(case_id) > RF_CASE_ID_LEN)
        return 0; /* not a row local.c wrote */
    rf_buf_reset(&ls->plain);
    if (rf_local_board_open(ls->l, case_id, blob, n, &ls->plain) != 0) {
        ls->total++; /* a damaged row is counted, and skipped */
        return 0;
    }
    return on_row(ls, case_id, gen, last_seq, ls->plain.data, ls->plain.len);
}

/* The team's checklist items, each once, in order (keys are unique in the
 * JSON route's object). */
static int team_items(struct lister *ls)
{
    size_t i, n = json_array_size(ls->team_checklist);
    json_t *v;
    ls->team = calloc(n ? n : 1, sizeof(*ls->team));
    if (!ls->team)
        return RF_ERR_NOMEM;
    json_array_foreach(ls->team_checklist, i, v)
    {
        const char *k = json_string_value(v);
        size_t j = 0, len = k ? strlen(k) : 0;
        if (!k)
            continue;
        while (j < ls->nteam && !(ls->team[j].n == len && memcmp(ls->team[j].key, k, len) == 0))
            j++;
        if (j == ls->nteam)
            ls->team[ls->nteam++] = (struct check){(const uint8_t *)k, len, 0};
    }
    return 0;
}

static void pad_cell(struct rf_sink *s, const char *c, size_t n, size_t k, size_t w,
                     int right_aligned)
{
    static const char spaces[] = "                                ";
    size_t gap = w > k ? w - k : 0;
    if (!right_aligned)
        rf_sink_put(s, c, n);
    while (gap > 0) {
        size_t g = gap < sizeof(spaces) - 1 ? gap : sizeof(spaces) - 1;
        rf_sink_put(s, spaces, g);
        gap -= g;
    }
    if (right_aligned)
        rf_sink_put(s, c, n);
}

/* How the table's lines are written: the columns' widths and colours,
 * worked out once; a line at a time into line (cells are under CELL bytes,
 * columns under CELL wide), one put a line into the listing's output (a
 * chunk, written when full); line is wiped at the end. */
enum { FIXED = 32 }; /* bytes copied at once (a fixed-size copy is a store, not a call) */
struct table {
    const size_t *w;
    const char *on[C_N];
    size_t on_len[C_N], off_len;
    char spaces[CELL];
    char line[C_N * (3 * CELL + 16)];
};

static void table_init(struct table *t, const size_t *w, int col)
{
    t->w = w;
    t->off_len = col ? strlen(colour_off) : 0;
    memset(t->spaces, ' ', sizeof(t->spaces));
    for (int c = 0; c < C_N; c++) {
        t->on[c] = !col ? "" : c == C_CASE ? colour_case : c == C_STAGE ? colour_stage : "";
        t->on_len[c] = strlen(t->on[c]);
    }
}

/* The line of the row whose cells start at p (followed by FIXED bytes of
 * room: print_cells; a cell of FIXED bytes or fewer is copied with FIXED);
 * where the next row's start. */
static const uint8_t *table_line(struct table *t, const uint8_t *p, struct rf_sink *out)
{
    char *line = t->line;
    size_t n = 0;
    for (int c = 0; c < C_N; c++) {
        size_t len = p[0], gap = t->w[c] > p[1] ? t->w[c] - p[1] : 0;
        if (c)
            line[n++] = ' ', line[n++] = ' ';
        if (t->on_len[c])
            memcpy(line + n, t->on[c], t->on_len[c]), n += t->on_len[c];
        if (c == C_N - 1 && !right[c])
            gap = 0;
        if (gap > CELL)
            gap = CELL; /* cannot be: every cell is under CELL columns */
        if (right[c]) {
            if (gap <= FIXED)
                memcpy(line + n, t->spaces, FIXED);
            else
                memcpy(line + n, t->spaces, gap);
            n += gap;
        }
        if (len <= FIXED)
            memcpy(line + n, p + 2, FIXED);
        else
            memcpy(line + n, p + 2, len);
        n += len;
        if (!right[c]) {
            if (gap <= FIXED)
                memcpy(line + n, t->spaces, FIXED);
            else
                memcpy(line + n, t->spaces, gap);
            n += gap;
        }
        if (t->off_len && t->on_len[c])
            memcpy(line + n, colour_off, t->off_len), n += t->off_len;
        p += 2 + len;
    }
    line[n++] = '\n';
    rf_sink_put(out, line, n);
    return p;
}

/* The table: heads, then every kept row (the parts' in order; read in two
 * halves as they came, the parts' rows merged into the listing's order),
 * columns as wide as their widest cell (print_table of before, byte for
 * byte). The lines go straight into the output's chunk: a buffer of every
 * line (two of 8 MB at 100,000 cases, each filled by sodium_malloc, locked
 * and wiped three times) cost more than formatting them on more threads
 * saved. */
static void print_cells(struct lister *ls, struct lister *parts, size_t np)
{
    struct rf_sink *s = &ls->out;
    int col = rf_out_colour(stdout);
    for (int c = 0; c < C_N; c++)
        if (strlen(heads[c]) > ls->w[c])
            ls->w[c] = strlen(heads[c]);
    if (col)
        rf_sink_puts(s, colour_head);
    for (int c = 0; c < C_N; c++) {
        if (c)
            rf_sink_put(s, "  ", 2);
        if (c == C_N - 1 && !right[c])
            rf_sink_puts(s, heads[c]);
        else
            pad_cell(s, heads[c], strlen(heads[c]), strlen(heads[c]), ls->w[c], right[c]);
    }
    if (col)
        rf_sink_puts(s, colour_off);
    rf_sink_put(s, "\n", 1);
    struct table t;
    table_init(&t, ls->w, col);
    for (size_t k = 0; k < np; k++)
        if (rf_buf_reserve(&parts[k].cells, FIXED) != 0) { /* table_line's room */
            s->failed = 1;
            return;
        }
    if (np == 2 && parts[0].fused) {
        struct lister *a = &parts[0], *b = &parts[1];
        size_t i = 0, j = 0;
        while (i < a->norder || j < b->norder) {
            /* the cells are in the order the rows were read, the lines in
             * the listing's: a cache miss a row, asked for ahead */
            if (i + 8 < a->norder)
                __builtin_prefetch(a->cells.data + a->order[i + 8].n),
                    __builtin_prefetch(a->cells.data + a->order[i + 8].n + 64);
            if (j + 8 < b->norder)
                __builtin_prefetch(b->cells.data + b->order[j + 8].n),
                    __builtin_prefetch(b->cells.data + b->order[j + 8].n + 64);
            int first = j == b->norder ||
                        (i < a->norder && rf_cache_board_before(&a->order[i], &b->order[j]));
            struct lister *pt = first ? a : b;
            table_line(&t, pt->cells.data + pt->order[first ? i++ : j++].n, s);
        }
    } else {
        for (size_t k = 0; k < np; k++)
            for (size_t i = 0, at = 0; i < parts[k].shown; i++)
                at = (size_t)(table_line(&t, parts[k].cells.data + at, s) - parts[k].cells.data);
    }
    sodium_memzero(t.line, sizeof(t.line));
}

static void lister_init(struct lister *ls, struct rf_ctx *x, const struct rf_view_filter *vf,
                        int json)
{
    memset(ls, 0, sizeof(*ls));
    ls->l = x->l;
    ls->vf = vf;
    ls->json = json;
    rf_buf_init_secure(&ls->out.b, OUT_CHUNK);
    fflush(stdout); /* what stdio holds goes first */
}

/* A part of main's listing: the shared settings, buffers of its own. */
static void part_init(struct lister *p, const struct lister *main)
{
    memset(p, 0, sizeof(*p));
    p->l = main->l;
    p->vf = main->vf;
    p->json = main->json;
    p->team_checklist = main->team_checklist;
    p->team = main->team;
    p->nteam = main->nteam;
    rf_buf_init_secure(&p->plain, RF_BOARDROW_MAX + 64);
    rf_buf_init_secure(&p->scratch, RF_BOARDROW_MAX + 1);
    rf_buf_init_secure(&p->cells, (size_t)1 << 34);
    rf_buf_init(&p->ids, (size_t)1 << 34);
    rf_buf_init_secure(&p->out.b, (size_t)1 << 36);
    p->out.grow = 1;
}

static void part_free(struct lister *p)
{
    rf_buf_free(&p->plain);
    rf_buf_free(&p->scratch);
    rf_buf_free(&p->cells);
    rf_buf_free(&p->ids);
    free(p->order);
    rf_buf_free(&p->out.b);
    free(p->merged);
}

/* Ends the listing when rc is 0: the parts' rows in order (the table with
 * columns as wide as every part's widest cell, or the JSON, the first row
 * without its comma), then frees (wipes) everything. */
static int lister_finish(struct lister *ls, struct lister *parts, size_t np, int rc)
{
    struct rf_sink *s = &ls->out;
    int first = 1;
    for (size_t i = 0; i < np; i++) {
        if (rc == 0)
            rc = parts[i].rc ? parts[i].rc : parts[i].out.failed ? RF_ERR_NOMEM : 0;
        ls->total += parts[i].total;
        ls->shown += parts[i].shown;
        ls->pending += parts[i].pending;
        for (int c = 0; c < C_N; c++)
            if (parts[i].w[c] > ls->w[c])
                ls->w[c] = parts[i].w[c];
    }
    if (rc == 0 && ls->json) {
        if (!ls->turns) /* else written already, block by block */
            rf_sink_puts(s, "{\n  \"cases\": [");
        for (size_t i = 0; !ls->turns && i < np; i++) {
            const struct rf_buf *b = &parts[i].out.b;
            if (b->len > 0) {
                rf_sink_put(s, b->data + first, b->len - (size_t)first); /* ",\n    {": the comma */
                first = 0;
            }
        }
        rf_sink_puts(s, ls->shown ? "\n  ]\n}\n" : "]\n}\n");
    } else if (rc == 0 && ls->shown == 0) {
        rf_sink_puts(s, ls->total ? "No case matches.\n"
                                  : "No cases on this computer. Run `refuge sync` to fetch "
                                    "new ones.\n");
    } else if (rc == 0) {
        print_cells(ls, parts, np);
        if (ls->pending)
            rf_sink_puts(s, "* has changes not sent yet (queued; `refuge sync` sends them)\n");
    }
    if (rc == 0)
        rf_sink_flush(s);
    if (rc == 0 && s->failed)
        rc = RF_ERR_IO;
    for (size_t i = 0; i < np; i++)
        part_free(&parts[i]);
    rf_buf_free(&s->b);
    free(ls->team);
    return rc;
}

/* The listing from rf_view_cases' rows (jansson values): with --search. */
static int print_rows(struct rf_ctx *x, const struct rf_view_filter *vf, int json)
{
    struct lister ls, part;
    json_t *rows = NULL, *row;
    size_t total = 0, i;
    int rc = rf_view_cases(x, vf, &rows, &total);
    if (rc != 0)
        return rc;
    lister_init(&ls, x, vf, json);
    part_init(&part, &ls);
    part.total = total;
    json_array_foreach(rows, i, row)
    {
        int pending = json_is_true(json_object_get(row, "pending"));
        json_object_del(row, "pending");
        if (json)
            json_value_row(&part, row);
        else
            json_cells(&part, row, pending);
        part.shown++;
    }
    json_decref(rows);
    return lister_finish(&ls, &part, 1, 0);
}

/* One row, with the memory of a row a few ahead asked for: the rows are
 * in the listing's order, their bytes in the table's (a cache miss each). */
static int part_row(struct lister *p, size_t i, size_t end)
{
    const struct rf_cache_board_row *r = &p->rows[i];
    if (i + 4 < end) {
        __builtin_prefetch(r[4].case_id);
        __builtin_prefetch(r[4].blob);
        __builtin_prefetch(r[4].blob + 64);
    }
    return on_sealed_row(p, r->case_id, r->gen, r->last_seq, r->blob, r->n);
}

/* One part's rows, in order: its slice (text), or its blocks, each
 * written in its turn (--json). */
static void *part_run(void *arg)
{
    struct lister *p = arg;
    struct turns *t = p->turns;
    if (!t) {
        for (size_t i = 0; p->rc == 0 && i < p->nrows; i++)
            p->rc = part_row(p, i, p->nrows);
        return NULL;
    }
    pthread_mutex_lock(&t->mu);
    while (!t->go) /* how many parts run is known once their threads started */
        pthread_cond_wait(&t->cv, &t->mu);
    size_t nparts = t->nparts;
    pthread_mutex_unlock(&t->mu);
    for (size_t b = p->index; p->index < nparts && b < t->nblocks; b += nparts) {
        size_t end = (b + 1) * BLOCK_ROWS < p->nrows ? (b + 1) * BLOCK_ROWS : p->nrows;
        for (size_t i = b * BLOCK_ROWS; p->rc == 0 && i < end; i++)
            p->rc = part_row(p, i, end);
        pthread_mutex_lock(&t->mu);
        while (t->next != b)
            pthread_cond_wait(&t->cv, &t->mu);
        pthread_mutex_unlock(&t->mu);
        /* this block's turn: no other part writes until it passes on */
        const struct rf_buf *o = &p->out.b;
        if (p->rc == 0 && o->len > 0) {
            rf_sink_put(t->out, o->data + !t->any, o->len - !t->any); /* the first row: no comma */
            t->any = 1;
        }
        rf_buf_reset(&p->out.b); /* wiped */
        pthread_mutex_lock(&t->mu);
        t->next++;
        pthread_cond_broadcast(&t->cv);
        pthread_mutex_unlock(&t->mu);
    }
    return NULL;
}

size_t rf_view_cases_part_rows = 2048; /* fewer rows a part: one thread is as quick */
#define PART_MIN_ROWS rf_view_cases_part_rows

/* How many parts for n rows: one per CPU this process may use, at most
 * PARTS_MAX, none smaller than PART_MIN_ROWS. */
static size_t parts_for(size_t n)
{
    cpu_set_t set;
    size_t cpus = sched_getaffinity(0, sizeof(set), &set) == 0 ? (size_t)CPU_COUNT(&set) : 1;
    size_t np = n / PART_MIN_ROWS;
    np = np < cpus ? np : cpus;
    np = np < PARTS_MAX ? np : PARTS_MAX;
    return np ? np : 1;
}

/* Whether rows read ahead are the table's still: no row written since (the
 * generation), none deleted (the count). */
static int ahead_current(struct rf_cache *c, const struct rf_view_ahead *a)
{
    int64_t gen = -1;
    size_t n = 0;
    return rf_cache_meta_get(c, "board_gen", &gen) == 0 && gen == a->gen &&
           rf_cache_board_count(c, &n) == 0 && n == a->list.n;
}

/* A fused part's rows sorted into the listing's order, on its thread as
 * soon as its half is read (rf_local_board_each2's done). */
static void order_sort(void *arg)
{
    struct lister *p = arg;
    for (size_t k = 0; k < p->norder; k++) /* offsets until the ids stopped moving */
        p->order[k].case_id = (const char *)p->ids.data + (uintptr_t)p->order[k].case_id;
    if (rf_cache_board_sort(p->order, p->norder) != 0 && p->rc == 0)
        p->rc = RF_ERR_NOMEM;
    p->sorted = 1;
}

/* The table without rows read ahead (the keys were in the session
 * keyring: no Argon2id to read them during): the rows opened and formatted
 * as they are read, the board's two halves at once (rf_local_board_each2),
 * each shown row's cells kept with its place in the listing's order, the
 * halves' rows merged into that order as the table is written (no copy of
 * the board, no wait for it). RF_ERR_BUSY: the board was written between
 * the halves' snapshots; nothing printed, ls as it was. */
static int print_fused(struct rf_ctx *x, struct lister *ls)
{
    struct lister parts[2];
    size_t n = 0;
    int rc = rf_cache_board_count(x->c, &n);
    for (int i = 0; i < 2; i++) {
        part_init(&parts[i], ls);
        parts[i].fused = 1;
        parts[i].cells_hint = (n / 2 + n / 16) * 104; /* about 100 bytes of cells a row */
    }
    void *ctx[2] = {&parts[0], &parts[1]};
    if (rc == 0)
        rc = rf_local_board_each2(x->l, on_row, order_sort, ctx);
    if (rc == RF_ERR_BUSY) {
        part_free(&parts[0]);
        part_free(&parts[1]);
        return rc;
    }
    for (int i = 0; rc == 0 && i < 2; i++)
        if (!parts[i].sorted) /* a half not read (a small board is all the first) */
            order_sort(&parts[i]);
    rc = rc ? rc : parts[0].rc ? parts[0].rc : parts[1].rc;
    return lister_finish(ls, parts, 2, rc);
}

int rf_view_cases_print(struct rf_ctx *x, const struct rf_view_filter *vf, int json)
{
    return rf_view_cases_print_ahead(x, vf, json, NULL);
}

int rf_view_cases_print_ahead(struct rf_ctx *x, const struct rf_view_filter *vf, int json,
                              struct rf_view_ahead *ahead)
{
    struct lister ls, parts[PARTS_MAX];
    struct rf_cache_board_list list = {0};
    json_t *team = NULL;
    size_t np = 0;
    if (vf->search) {
        if (ahead)
            rf_cache_board_list_free(&ahead->list);
        return print_rows(x, vf, json);
    }
    lister_init(&ls, x, vf, json);
    /* objects synced by an older version of refuge get their digests here */
    int rc = vf->current ? 0 : rf_local_update(x->l, NULL);
    if (rc == 0)
        rc = rf_local_team(x->l, &team);
    ls.team_checklist = json_object_get(team, "checklist");
    if (rc == 0)
        rc = team_items(&ls);
    if (rc == 0 && !json && !ahead) {
        rc = print_fused(x, &ls);
        if (rc != RF_ERR_BUSY) {
            json_decref(team);
            return rc;
        }
        rc = 0; /* written meanwhile: the board read as one list, below */
    }
    if (rc == 0 && ahead && ahead->list.rows && ahead_current(x->c, ahead)) {
        list = ahead->list; /* read while the key was unlocked */
        memset(&ahead->list, 0, sizeof(ahead->list));
    } else if (rc == 0) {
        rc = rf_cache_board_list(x->c, &list);
    }
    if (ahead)
        rf_cache_board_list_free(&ahead->list);
    /* the rows shared out in order: part i takes the i-th slice, on its own
     * thread (the first on this one); each opens, filters and formats its
     * rows into buffers of its own, and the listing writes them in order */
    np = rc == 0 ? parts_for(list.n) : 0;
    pthread_t th[PARTS_MAX];
    int started[PARTS_MAX] = {0};
    struct turns turns = {.out = &ls.out, .nblocks = (list.n + BLOCK_ROWS - 1) / BLOCK_ROWS};
    if (json && np > 0) {
        pthread_mutex_init(&turns.mu, NULL);
        pthread_cond_init(&turns.cv, NULL);
        ls.turns = &turns;
        rf_sink_puts(&ls.out, "{\n  \"cases\": [");
    }
    for (size_t i = 0; i < np; i++) {
        part_init(&parts[i], &ls);
        parts[i].turns = ls.turns;
        parts[i].index = i;
        parts[i].rows = json ? list.rows : list.rows + list.n * i / np;
        parts[i].nrows = json ? list.n : list.n * (i + 1) / np - list.n * i / np;
        if (!json) /* the cells of a slice, about 100 bytes a row: no growing */
            parts[i].cells_hint = parts[i].nrows * 104;
    }
    size_t running = 1; /* this thread, and the threads that started, in order */
    for (size_t i = 1; i < np; i++) {
        started[i] =
            (!ls.turns || running == i) && pthread_create(&th[i], NULL, part_run, &parts[i]) == 0;
        running += started[i] && running == i;
    }
    if (ls.turns) { /* the blocks go round the parts that run; a part past them does nothing */
        pthread_mutex_lock(&turns.mu);
        turns.nparts = running;
        turns.go = 1;
        pthread_cond_broadcast(&turns.cv);
        pthread_mutex_unlock(&turns.mu);
    }
    for (size_t i = 0; i < np; i++)
        if (i == 0 || (!started[i] && !ls.turns))
            part_run(&parts[i]); /* this thread's part, or a slice no thread took */
    for (size_t i = 1; i < np; i++)
        if (started[i])
            pthread_join(th[i], NULL);
    rc = lister_finish(&ls, parts, np, rc);
    if (ls.turns) {
        pthread_mutex_destroy(&turns.mu);
        pthread_cond_destroy(&turns.cv);
    }
    rf_cache_board_list_free(&list);
    json_decref(team);
    return rc;
}
