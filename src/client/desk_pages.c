/*
 * desk_pages.c - the desk's board and case pages: the local case database
 * (the same rows as `refuge cases --json` and `refuge show --json`, through
 * rf_view_cases / rf_view_case) turned into template variables. No HTML
 * here: desk/board.html and desk/case.html escape every value.
 *
 * "Unread": a case whose newest object is newer than what this caseworker
 * last opened in the desk (cache meta "desk.seen:CASE", the sequence number
 * seen; a number, not plaintext). "New": stage "new". "Overdue": a due date
 * before today (UTC).
 */
#include "client/desk_priv.h"
#include "client/evop.h"
#include "client/out.h"
#include "client/state.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SEEN_PREFIX "desk.seen:"
#define RF_MSGID(s) (s)

static void today(char out[16])
{
    time_t t = time(NULL);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 16, "%Y-%m-%d", &tm) == 0)
        strcpy(out, "0000-00-00");
}

/* A string, or an array of strings joined by ", ", into v[name] (nothing
 * set when empty). */
static int set_joined(struct rf_tvars *v, const char *name, const json_t *val)
{
    if (json_is_string(val))
        return json_string_length(val) ? rf_tvars_set(v, name, json_string_value(val)) : 0;
    if (!json_is_array(val) || json_array_size(val) == 0)
        return 0;
    /* one secure buffer for every call (a board page makes hundreds: a
     * sodium_malloc each was a sixth of a board in the profile), wiped
     * after each; the desk serialises its requests and exits when it locks */
    static struct rf_buf b;
    static int ready;
    if (!ready) {
        rf_buf_init_secure(&b, 64 * 1024);
        ready = 1;
    }
    b.len = 0;
    size_t i;
    json_t *s;
    int rc = 0;
    json_array_foreach(val, i, s)
    {
        if (!json_is_string(s))
            continue;
        if (b.len > 0)
            rc = rf_buf_put_str(&b, ", ");
        if (rc == 0)
            rc = rf_buf_put_str(&b, json_string_value(s));
        if (rc != 0)
            break;
    }
    if (rc == 0)
        rc = rf_buf_cstr(&b);
    if (rc == 0 && b.len > 0)
        rc = rf_tvars_set(v, name, (const char *)b.data);
    if (b.data) /* what was written (and its NUL) is wiped: the rest is zero already */
        sodium_memzero(b.data, b.len < b.cap ? b.len + 1 : b.cap);
    b.len = 0;
    return rc;
}

static int set_day(struct rf_tvars *v, const char *name, const json_t *day)
{
    char s[16];
    rf_out_day(s, sizeof(s), (uint32_t)json_integer_value(day));
    return rf_tvars_set(v, name, s);
}

/* Whether case cid has something newer than what this caseworker last
 * opened in the desk: two index lookups, made only for the cases a page
 * shows. */
static int unread(struct rf_ctx *x, const char *cid, int *out)
{
    char mk[sizeof(SEEN_PREFIX) + RF_CASE_ID_LEN + 1];
    int64_t seen = 0, last = 0;
    snprintf(mk, sizeof(mk), SEEN_PREFIX "%s", cid);
    int rc = rf_cache_case_last(x->c, cid, &last);
    if (rc == 0)
        rc = rf_cache_meta_get(x->c, mk, &seen);
    *out = rc == 0 && last > seen;
    return rc;
}

/* Digests what is not digested yet (objects synced by an older refuge,
 * or by a sync that failed half-way), only when objects or grants were
 * added or the sync position moved since the last time: rf_local_update
 * looks at every object, far too slow to run for each board with 200,000
 * objects. The desk is one process with one case database (desk.c
 * serialises the calls). */
static int digests_current(struct rf_ctx *x)
{
    static int64_t done[3] = {-1, -1, -1};
    int64_t mark[3];
    int rc = rf_cache_mark(x->c, mark);
    if (rc != 0 || memcmp(mark, done, sizeof(mark)) == 0)
        return rc;
    /* Since the last run (which left nothing undigested but objects no
     * grant opens) objects come only from a sync, which stores them with
     * the sync position in one transaction, every one numbered above the
     * position it started from: with the same grants and a position that
     * only moved on, only the objects above the last run's position (and
     * largest number) can be undigested, a range of the table. Anything
     * else (the first run, new grants, a cache reset) looks at every one. */
    if (done[0] >= 0 && mark[1] == done[1] && mark[0] >= done[0] && mark[2] >= done[2])
        rc = rf_local_update_after(x->l, done[2] < done[0] ? done[2] : done[0], NULL);
    else
        rc = rf_local_update(x->l, NULL);
    if (rc == 0)
        memcpy(done, mark, sizeof(done));
    return rc;
}

/* The listing behind the last board (rf_view_cases' rows for one
 * assignee, tag and text filter), kept while no summary row changes:
 * opening and parsing 10,000 sealed summaries takes a few hundred ms, and
 * the board is asked for after every case page, stage link and page link.
 * Anything that changes a case (a sync, an event, a reply, the same home's
 * CLI) writes its summary row, which changes rf_cache_summaries_mark. The
 * rows are plaintext in jansson's wiping allocator, as while a board is
 * rendered; the desk holds them until the next change or until it locks
 * (it exits). Unread marks are not in it (looked up per request). */
static struct {
    json_t *rows;
    size_t total;
    int64_t mark[2];
    char *key; /* the filters: "len:assignee" "len:tag" "len:text" */
    size_t keylen;
} listing;

static void listing_forget(void)
{
    json_decref(listing.rows);
    listing.rows = NULL;
    if (listing.key) {
        sodium_memzero(listing.key, listing.keylen);
        free(listing.key);
    }
    listing.key = NULL;
    listing.keylen = 0;
}

static int listing_get(struct rf_ctx *x, const struct rf_view_filter *f, json_t **rows,
                       size_t *total)
{
    int64_t mark[2];
    const char *a = f->assignee ? f->assignee : "", *t = f->tag ? f->tag : "",
               *q = f->search ? f->search : "";
    size_t keylen = strlen(a) + strlen(t) + strlen(q) + 3 * 21;
    char *key = malloc(keylen + 1);
    int rc = key ? digests_current(x) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_cache_summaries_mark(x->c, mark);
    if (rc != 0) {
        free(key);
        return rc;
    }
    int kl = snprintf(key, keylen + 1, "%zu:%s%zu:%s%zu:%s", strlen(a), a, strlen(t), t, strlen(q),
                      q); /* lengths first: no two filters give one key */
    keylen = kl > 0 ? (size_t)kl : 0;
    if (listing.rows && listing.keylen == keylen && memcmp(listing.key, key, keylen) == 0 &&
        listing.mark[0] == mark[0] && listing.mark[1] == mark[1]) {
        sodium_memzero(key, keylen);
        free(key);
        *rows = json_incref(listing.rows);
        *total = listing.total;
        return 0;
    }
    listing_forget();
    rc = rf_view_board(x, f, rows, total);
    if (rc != 0) {
        sodium_memzero(key, keylen);
        free(key);
        return rc;
    }
    listing.rows = json_incref(*rows);
    listing.total = *total;
    listing.mark[0] = mark[0];
    listing.mark[1] = mark[1];
    listing.key = key;
    listing.keylen = keylen;
    return 0;
}

/* The team's stages as a select's options, plus stages the cases use that
 * the team no longer lists. */
static int stage_options(struct rf_tvars *v, const json_t *team, const char *cur)
{
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(team, "stages"), i, s)
    {
        struct rf_tvars *it = rf_tvars_item(v, "stages");
        if (!it || rf_tvars_set(it, "name", json_string_value(s)) != 0)
            return RF_ERR_NOMEM;
        if (cur && strcmp(cur, json_string_value(s)) == 0 && rf_tvars_flag(it, "on") != 0)
            return RF_ERR_NOMEM;
    }
    return 0;
}

static int people(struct rf_ctx *x, struct rf_tvars *v, const char *selected)
{
    const struct rf_roster *const *ros = NULL;
    size_t nros = 0;
    int rc = 0;
    rf_local_rosters(x->l, &ros, &nros);
    for (uint16_t m = 0; rc == 0 && nros > 0 && m < ros[nros - 1]->n; m++) {
        const char *name = ros[nros - 1]->members[m].name;
        struct rf_tvars *it = rf_tvars_item(v, "people");
        rc = it ? rf_tvars_set(it, "name", name) : RF_ERR_NOMEM;
        if (rc == 0 && selected && strcmp(selected, name) == 0)
            rc = rf_tvars_flag(it, "on");
    }
    return rc;
}

static int row_item(struct rf_tvars *v, json_t *row, const char *day_today, int is_unread)
{
    struct rf_tvars *it = rf_tvars_item(v, "cases");
    if (!it)
        return RF_ERR_NOMEM;
    const char *stage = json_string_value(json_object_get(row, "stage"));
    const char *due = json_string_value(json_object_get(row, "due"));
    int rc = rf_tvars_set(it, "id", json_string_value(json_object_get(row, "case")));
    if (rc == 0)
        rc = rf_tvars_set(it, "stage", stage ? stage : "new");
    if (rc == 0)
        rc = set_joined(it, "assigned", json_object_get(row, "assigned"));
    if (rc == 0)
        rc = set_joined(it, "tags", json_object_get(row, "tags"));
    if (rc == 0)
        rc = set_day(it, "last_day", json_object_get(row, "last_day"));
    if (rc == 0)
        rc = rf_tvars_set_int(it, "messages", json_integer_value(json_object_get(row, "messages")));
    if (rc == 0)
        rc = rf_tvars_set_int(it, "files", json_integer_value(json_object_get(row, "files")));
    if (rc == 0)
        rc = rf_tvars_set_int(it, "replies", json_integer_value(json_object_get(row, "replies")));
    if (rc == 0 && due)
        rc = rf_tvars_set(it, "due", due);
    if (rc == 0 && due && strcmp(due, day_today) < 0)
        rc = rf_tvars_flag(it, "overdue");
    if (rc == 0 && (!stage || strcmp(stage, "new") == 0))
        rc = rf_tvars_flag(it, "is_new");
    if (rc == 0 && is_unread)
        rc = rf_tvars_flag(it, "unread");
    if (rc == 0 && json_is_true(json_object_get(row, "pending")))
        rc = rf_tvars_flag(it, "pending");
    if (rc == 0)
        rc = set_joined(it, "need", json_object_get(row, "need"));
    return rc;
}

/* The page number asked for: 1 unless a decimal 1..1000000. */
static size_t page_no(const char *s)
{
    size_t n = 0;
    for (; s && *s; s++) {
        if (*s < '0' || *s > '9' || n > 100000)
            return 1;
        n = n * 10 + (size_t)(*s - '0');
    }
    return n >= 1 ? n : 1;
}

/* name=value& with value percent-encoded (RFC 3986 unreserved kept). */
static int put_arg(struct rf_buf *b, const char *name, const char *val)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!val)
        return 0;
    int rc = rf_buf_put_str(b, name);
    if (rc == 0)
        rc = rf_buf_put_u8(b, '=');
    for (const unsigned char *p = (const unsigned char *)val; rc == 0 && *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            rc = rf_buf_put_u8(b, *p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            rc = rf_buf_put(b, e, 3);
        }
    }
    if (rc == 0)
        rc = rf_buf_put_u8(b, '&');
    return rc;
}

/* The pager: v[page], v[pages], first/last shown, and v[filters] (the
 * board's filters as a query string ending in '&', for the page links). */
static int pager(struct rf_tvars *v, const struct rf_desk_query *q, size_t page, size_t matched)
{
    size_t pages = (matched + RF_DESK_PAGE - 1) / RF_DESK_PAGE;
    struct rf_buf b;
    rf_buf_init_secure(&b, 64 * 1024);
    int rc = put_arg(&b, "stage", q->stage);
    if (rc == 0)
        rc = put_arg(&b, "assignee", q->assignee);
    if (rc == 0)
        rc = put_arg(&b, "tag", q->tag);
    if (rc == 0)
        rc = put_arg(&b, "q", q->q);
    if (rc == 0)
        rc = rf_buf_cstr(&b);
    if (rc == 0)
        rc = rf_tvars_set(v, "filters", (const char *)b.data);
    rf_buf_free(&b);
    if (rc != 0 || pages <= 1)
        return rc;
    size_t first = (page - 1) * RF_DESK_PAGE + 1;
    size_t last = page * RF_DESK_PAGE < matched ? page * RF_DESK_PAGE : matched;
    if (rc == 0)
        rc = rf_tvars_flag(v, "paged");
    if (rc == 0)
        rc = rf_tvars_set_int(v, "page", (long long)page);
    if (rc == 0)
        rc = rf_tvars_set_int(v, "pages", (long long)pages);
    if (rc == 0)
        rc = rf_tvars_set_int(v, "first", (long long)first);
    if (rc == 0)
        rc = rf_tvars_set_int(v, "last", (long long)last);
    if (rc == 0)
        rc = rf_tvars_set_int(v, "matched", (long long)matched);
    if (rc == 0 && page > 1)
        rc = rf_tvars_set_int(v, "prev", (long long)page - 1);
    if (rc == 0 && page < pages)
        rc = rf_tvars_set_int(v, "next", (long long)page + 1);
    return rc;
}

int rf_desk_board(struct rf_ctx *x, const struct rf_desk_query *q, struct rf_tvars *v)
{
    struct rf_view_filter f = {
        .assignee = q->assignee, .tag = q->tag, .search = q->q, .current = 1};
    json_t *rows = NULL, *team = NULL, *counts = json_object();
    size_t total = 0, shown = 0, matched = 0, i;
    size_t page = page_no(q->page);
    char day[16];
    today(day);
    int rc = counts ? listing_get(x, &f, &rows, &total) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_local_team(x->l, &team);
    if (rc != 0)
        goto out;
    json_t *row;
    json_array_foreach(rows, i, row)
    {
        const char *st = json_string_value(json_object_get(row, "stage"));
        st = st ? st : "new";
        json_object_set_new(counts, st,
                            json_integer(json_integer_value(json_object_get(counts, st)) + 1));
        if (q->stage && strcmp(q->stage, st) != 0)
            continue;
        /* only this page's cases are rendered (and looked up for unread) */
        if (matched++ / RF_DESK_PAGE != page - 1)
            continue;
        const char *cid = json_string_value(json_object_get(row, "case"));
        int is_unread = 0;
        rc = cid ? unread(x, cid, &is_unread) : 0;
        if (rc == 0)
            rc = row_item(v, row, day, is_unread);
        if (rc != 0)
            goto out;
        shown++;
    }
    /* counts: the team's stages in order, then any other stage in use */
    json_t *order = json_array(), *s;
    json_array_extend(order, json_object_get(team, "stages"));
    const char *key;
    json_object_foreach(counts, key, s)
    {
        if (!rf_state_in_list(json_object_get(team, "stages"), key))
            json_array_append_new(order, json_string(key));
    }
    json_array_foreach(order, i, s)
    {
        const char *name = json_string_value(s);
        struct rf_tvars *it = rf_tvars_item(v, "counts");
        rc = it ? rf_tvars_set(it, "name", name) : RF_ERR_NOMEM;
        if (rc == 0)
            rc = rf_tvars_set_int(it, "n", json_integer_value(json_object_get(counts, name)));
        if (rc == 0 && q->stage && strcmp(q->stage, name) == 0)
            rc = rf_tvars_flag(it, "on");
        if (rc != 0)
            break;
    }
    json_decref(order);
    if (rc == 0)
        rc = stage_options(v, team, q->stage);
    if (rc == 0) /* assignees: the current roster's names */
        rc = people(x, v, q->assignee);
    if (rc == 0)
        rc = rf_tvars_set_int(v, "total", (long long)json_array_size(rows));
    if (rc == 0 && shown > 0)
        rc = rf_tvars_flag(v, "any");
    if (rc == 0 && shown == 0 && matched > 0) /* a page past the end */
        rc = rf_tvars_flag(v, "past_end");
    if (rc == 0)
        rc = pager(v, q, page, matched);
    if (rc == 0 && total > 0)
        rc = rf_tvars_flag(v, "some");
    if (rc == 0 && q->stage)
        rc = rf_tvars_set(v, "stage", q->stage);
    if (rc == 0 && q->tag)
        rc = rf_tvars_set(v, "tag", q->tag);
    if (rc == 0 && q->q)
        rc = rf_tvars_set(v, "q", q->q);
out:
    json_decref(rows);
    json_decref(team);
    json_decref(counts);
    return rc;
}

/* ------------------------------------------------------------------- case */

static int intake_item(struct rf_tvars *it, json_t *item)
{
    size_t i;
    json_t *a;
    int rc = rf_tvars_flag(it, "intake");
    json_array_foreach(json_object_get(item, "answers"), i, a)
    {
        if (rc != 0)
            break;
        json_t *label = json_object_get(a, "label");
        struct rf_tvars *ai = rf_tvars_item(it, "answers");
        if (!ai)
            return RF_ERR_NOMEM;
        const char *l = json_string_value(json_is_string(label) ? label : json_object_get(a, "id"));
        rc = rf_tvars_set(ai, "label", l ? l : "?");
        if (rc == 0)
            rc = set_joined(ai, "value", json_object_get(a, "value"));
    }
    return rc;
}

/* An event's op in words (evop.h's word; the CLI's op names stay in the data). */
static const char *op_word(enum rf_lang lang, const char *op)
{
    const struct rf_evop *o = op ? rf_evop_in(RF_EVOP_CASE, op) : NULL;
    if (o && o->word)
        return rf_desk_tr(lang, o->word);
    return op ? op : "?";
}

/* A list of strings as list items {name}. */
static int name_items(struct rf_tvars *v, const char *list, const json_t *arr)
{
    size_t i;
    json_t *s;
    json_array_foreach(arr, i, s)
    {
        struct rf_tvars *it = json_is_string(s) ? rf_tvars_item(v, list) : NULL;
        if (json_is_string(s) && (!it || rf_tvars_set(it, "name", json_string_value(s)) != 0))
            return RF_ERR_NOMEM;
    }
    return 0;
}

static int thread_item(struct rf_tvars *v, json_t *item, enum rf_lang lang)
{
    struct rf_tvars *it = rf_tvars_item(v, "items");
    if (!it)
        return RF_ERR_NOMEM;
    const char *kind = json_string_value(json_object_get(item, "kind"));
    int rc = set_day(it, "day", json_object_get(item, "day"));
    if (rc == 0)
        rc = set_joined(it, "text", json_object_get(item, "text"));
    if (rc != 0 || kind == NULL)
        return rc;
    if (strcmp(kind, "intake") == 0)
        return intake_item(it, item);
    if (strcmp(kind, "message") == 0)
        return rf_tvars_flag(it, "message");
    if (strcmp(kind, "file") == 0) {
        char size[32];
        rf_out_size(size, sizeof(size),
                    (uint64_t)json_integer_value(json_object_get(item, "size")));
        rc = rf_tvars_flag(it, "file");
        if (rc == 0) /* the file page's link (desk_files.c) */
            rc = rf_tvars_set_int(it, "seq", json_integer_value(json_object_get(item, "seq")));
        if (rc == 0)
            rc = set_joined(it, "name", json_object_get(item, "name"));
        if (rc == 0)
            rc = set_joined(it, "type", json_object_get(item, "type"));
        if (rc == 0)
            rc = rf_tvars_set(it, "size", size);
        return rc;
    }
    if (strcmp(kind, "reply") == 0) {
        rc = rf_tvars_flag(it, "reply");
        if (rc == 0 && json_is_true(json_object_get(item, "author_verified"))) {
            rc = rf_tvars_flag(it, "verified");
            if (rc == 0)
                rc = set_joined(it, "author", json_object_get(item, "author"));
            if (rc == 0 && json_is_true(json_object_get(item, "former")))
                rc = rf_tvars_flag(it, "former");
        } else if (rc == 0) {
            rc = set_joined(it, "note", json_object_get(item, "author_note"));
        }
        return rc;
    }
    if (strcmp(kind, "event") == 0) {
        rc = rf_tvars_flag(it, "event");
        if (rc == 0)
            rc = rf_tvars_set(it, "op",
                              op_word(lang, json_string_value(json_object_get(item, "op"))));
        if (rc == 0)
            rc = set_joined(it, "author", json_object_get(item, "author"));
        if (rc == 0)
            rc = set_joined(it, "value", json_object_get(item, "value"));
        if (rc == 0 && json_is_false(json_object_get(item, "sent")))
            rc = rf_tvars_flag(it, "unsent");
        return rc;
    }
    rc = rf_tvars_flag(it, "bad"); /* unverified or unreadable */
    if (rc == 0)
        rc = set_joined(it, "error", json_object_get(item, "error"));
    return rc;
}

int rf_desk_case(struct rf_ctx *x, const char *cid, enum rf_lang lang, struct rf_tvars *v)
{
    json_t *view = NULL;
    char day[16];
    today(day);
    int rc = rf_view_case(x, cid, &view);
    if (rc != 0)
        return rc;
    json_t *st = json_object_get(view, "state");
    const char *stage = json_string_value(json_object_get(st, "stage"));
    const char *due = json_string_value(json_object_get(st, "due"));
    rc = rf_tvars_set(v, "id", cid);
    if (rc == 0)
        rc = rf_tvars_set(v, "stage", stage ? stage : "new");
    if (rc == 0)
        rc = name_items(v, "assignees", json_object_get(st, "assigned"));
    if (rc == 0)
        rc = name_items(v, "taglist", json_object_get(st, "tags"));
    if (rc == 0)
        rc = people(x, v, NULL);
    if (rc == 0)
        rc = rf_tvars_set(v, "due", due ? due : "—");
    if (rc == 0 && due)
        rc = rf_tvars_set(v, "due_value", due);
    if (rc == 0 && due && strcmp(due, day) < 0)
        rc = rf_tvars_flag(v, "overdue");
    if (rc == 0)
        rc = set_day(v, "first_day", json_object_get(view, "first_day"));
    const char *key;
    json_t *val;
    json_object_foreach(json_object_get(st, "checklist"), key, val)
    {
        struct rf_tvars *it = rf_tvars_item(v, "checklist");
        if (rc == 0)
            rc = it ? rf_tvars_set(it, "name", key) : RF_ERR_NOMEM;
        if (rc == 0 && json_is_true(val))
            rc = rf_tvars_flag(it, "done");
    }
    if (rc == 0)
        rc = stage_options(v, json_object_get(view, "team"), stage ? stage : "new");
    size_t i;
    json_t *item;
    json_array_foreach(json_object_get(view, "items"), i, item)
    {
        if (rc == 0)
            rc = thread_item(v, item, lang);
    }
    if (rc == 0) {
        char mk[sizeof(SEEN_PREFIX) + RF_CASE_ID_LEN + 1];
        snprintf(mk, sizeof(mk), SEEN_PREFIX "%s", cid);
        rc = rf_cache_meta_set(x->c, mk, json_integer_value(json_object_get(view, "last_seq")));
    }
    json_decref(view);
    return rc;
}
