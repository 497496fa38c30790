/*
 * local.c - the local case database (see local.h).
 *
 * Keys: master = BLAKE2b-256 keyed with the caseworker's X25519 secret key
 * over "refuge-local-db-master-v1"; row key = crypto_kdf_derive_from_key(
 * master, id 1, context "rflocal1"). Both live in sodium_malloc memory. A
 * sealed row is nonce(24) || XChaCha20-Poly1305(plaintext, ad = row name).
 *
 * Digest rows are made by local_digest.c (a verified event's packed,
 * lib/evrow.h; the others JSON, and a verified event's JSON before cache
 * version 7: read here as either). A summary is the materialized state
 * (state.h) without the notes' text, plus counts, days, the intake's
 * need/urgency and "search", the folded text of messages, replies, notes
 * and tags.
 *
 * Invariant: plaintext exists only in secure bufs and jansson values (which
 * out.c wipes on free); what reaches SQLite is sealed.
 */
#include "client/local.h"
#include "client/local_rows.h"
#include "client/out.h"
#include "lib/boardrow.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"
#include "lib/evrow.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_MAX RF_LOCAL_PLAIN_MAX
#define ROW_MAX RF_LOCAL_ROW_MAX
#define AEAD_N crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_A crypto_aead_xchacha20poly1305_ietf_ABYTES

static void free_rosters(struct rf_local *l)
{
    for (size_t i = 0; i < l->nrosters; i++)
        free(l->rosters[i]);
    free(l->rosters);
    l->rosters = NULL;
    l->nrosters = 0;
}

int rf_local_reload(struct rf_local *l)
{
    uint32_t max = 0;
    struct rf_buf raw;
    free_rosters(l);
    int rc = rf_cache_roster_max(l->c, &max);
    if (rc != 0 || max == 0)
        return rc;
    l->rosters = calloc(max, sizeof(*l->rosters));
    if (!l->rosters)
        return RF_ERR_NOMEM;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    for (uint32_t v = 1; rc == 0 && v <= max; v++) {
        rf_buf_reset(&raw);
        l->rosters[v - 1] = malloc(sizeof(struct rf_roster));
        l->nrosters = v;
        rc = l->rosters[v - 1] ? rf_cache_roster_get(l->c, v, &raw) : RF_ERR_NOMEM;
        /* stored only after trust.c verified the chain */
        if (rc == 0)
            rc = rf_roster_parse(l->rosters[v - 1], raw.data, raw.len);
    }
    rf_buf_free(&raw);
    return rc;
}

int rf_local_new(struct rf_local **out, struct rf_cache *c, const struct rf_staff_keys *k)
{
    static const char msg[] = "refuge-local-db-master-v1";
    *out = NULL;
    struct rf_local *l = calloc(1, sizeof(*l));
    uint8_t *master = sodium_malloc(32);
    if (!l || !master) {
        free(l);
        sodium_free(master);
        return RF_ERR_NOMEM;
    }
    l->c = c;
    l->k = k;
    l->key = sodium_malloc(32);
    int rc = l->key ? 0 : RF_ERR_NOMEM;
    if (rc == 0 &&
        crypto_generichash(master, 32, (const uint8_t *)msg, sizeof(msg) - 1, k->box_sk, 32) != 0)
        rc = RF_ERR_CRYPTO;
    if (rc == 0 && crypto_kdf_derive_from_key(l->key, 32, 1, "rflocal1", master) != 0)
        rc = RF_ERR_CRYPTO;
    sodium_free(master);
    if (rc == 0)
        rc = rf_local_reload(l);
    if (rc == 0) /* a home from before the board rows gets them, once */
        rc = rf_local_board_fill(l, NULL);
    if (rc != 0) {
        rf_local_free(l);
        return rc;
    }
    *out = l;
    return 0;
}

void rf_local_free(struct rf_local *l)
{
    if (!l)
        return;
    free_rosters(l);
    sodium_free(l->key);
    free(l);
}

struct rf_cache *rf_local_cache(const struct rf_local *l)
{
    return l->c;
}

const struct rf_staff_keys *rf_local_keys(const struct rf_local *l)
{
    return l->k;
}

void rf_local_rosters(const struct rf_local *l, const struct rf_roster *const **out, size_t *n)
{
    *out = (const struct rf_roster *const *)l->rosters;
    *n = l->nrosters;
}

/* A row's nonce: 16 random bytes drawn once per thread, then a 64-bit
 * counter (docs/protocol.md 14, "At rest"). Unique under the row key as a
 * random nonce is, without a getrandom(2) per row (1,300,000 of them in a
 * cold sync at 100,000 cases); a child after fork(2) draws its own. */
static _Thread_local struct {
    uint8_t prefix[16];
    uint64_t next;
    int ready;
} row_nonce_state;
static pthread_once_t row_nonce_once = PTHREAD_ONCE_INIT;

static void row_nonce_forked(void)
{
    sodium_memzero(&row_nonce_state, sizeof(row_nonce_state));
}

static void row_nonce_register(void)
{
    (void)pthread_atfork(NULL, NULL, row_nonce_forked);
}

static void row_nonce(uint8_t nonce[AEAD_N])
{
    if (!row_nonce_state.ready) {
        pthread_once(&row_nonce_once, row_nonce_register);
        randombytes_buf(row_nonce_state.prefix, sizeof(row_nonce_state.prefix));
        row_nonce_state.next = 0;
        row_nonce_state.ready = 1;
    }
    uint64_t c = row_nonce_state.next++;
    memcpy(nonce, row_nonce_state.prefix, 16);
    for (int i = 0; i < 8; i++)
        nonce[16 + i] = (uint8_t)(c >> (56 - 8 * i));
}

int rf_local_seal(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                  struct rf_buf *out)
{
    _Static_assert(AEAD_N == 24, "a row's nonce: 16 random bytes and a counter");
    int rc = rf_buf_reserve(out, AEAD_N + n + AEAD_A);
    if (rc != 0)
        return rc;
    uint8_t *dst = out->data + out->len;
    unsigned long long clen = 0;
    row_nonce(dst);
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(dst + AEAD_N, &clen, p, n, (const uint8_t *)ad,
                                                   strlen(ad), NULL, dst, l->key) != 0)
        return RF_ERR_CRYPTO;
    out->len += AEAD_N + (size_t)clen;
    return 0;
}

int rf_local_open(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                  struct rf_buf *out)
{
    if (n < AEAD_N + AEAD_A)
        return RF_ERR_FORMAT;
    int rc = rf_buf_reserve(out, n - AEAD_N - AEAD_A + 1);
    if (rc != 0)
        return rc;
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(out->data + out->len, &mlen, NULL, p + AEAD_N,
                                                   n - AEAD_N, (const uint8_t *)ad, strlen(ad), p,
                                                   l->key) != 0)
        return RF_ERR_DECRYPT;
    out->len += (size_t)mlen;
    return 0;
}

json_t *rf_local_open_summary(const struct rf_local *l, const char *case_id, const uint8_t *blob,
                              size_t n, struct rf_buf *plain)
{
    char ad[48];
    json_t *s = NULL;
    snprintf(ad, sizeof(ad), "summary:%s", case_id);
    rf_buf_reset(plain);
    if (rf_local_open(l, ad, blob, n, plain) == 0) {
        json_error_t e;
        s = json_loadb((const char *)plain->data, plain->len, 0, &e);
    }
    rf_buf_reset(plain); /* wiped */
    return s;
}

/* Seals the JSON j as row ad; calls put(blob). */
const char *rf_local_str_or(json_t *v, const char *dflt)
{
    return json_is_string(v) ? json_string_value(v) : dflt;
}

int rf_local_seal_json(const struct rf_local *l, const char *ad, json_t *j, struct rf_buf *out)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s)
        return RF_ERR_NOMEM;
    int rc = rf_local_seal(l, ad, (const uint8_t *)s, strlen(s), out);
    rf_out_json_free(s);
    return rc;
}

static int open_json(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                     json_t **out)
{
    struct rf_buf plain;
    rf_buf_init_secure(&plain, ROW_MAX);
    *out = NULL;
    int rc = rf_local_open(l, ad, p, n, &plain);
    if (rc == 0) {
        json_error_t e;
        *out = json_loadb((const char *)plain.data, plain.len, 0, &e);
        if (!*out)
            rc = RF_ERR_FORMAT;
    }
    rf_buf_free(&plain);
    return rc;
}

const struct rf_ckmemo *rf_local_ckmemo(const struct rf_local *l)
{
    return l->ckmemo;
}

/* ---- materializing a case ---- */

struct gather {
    struct rf_local *l;
    struct rf_ev *ev;
    size_t nev, cap;
    json_t *bad;        /* [{"seq","error"}] or NULL */
    struct rf_buf *txt; /* search text (secure) or NULL */
    json_t *need, *urgency;
    int have_intake;
    struct rf_buf plain; /* secure: a digest row opened (gather_init) */
};

static void gather_init(struct gather *g, struct rf_local *l)
{
    memset(g, 0, sizeof(*g));
    g->l = l;
    rf_buf_init_secure(&g->plain, ROW_MAX);
}

static int push_ev(struct gather *g, struct rf_ev *e)
{
    if (rf_array_grow(&g->ev, &g->cap, g->nev + 1, sizeof(*g->ev), 16) != 0)
        return RF_ERR_NOMEM;
    g->ev[g->nev++] = *e;
    return 0;
}

static void add_text(struct gather *g, const char *s)
{
    if (!g->txt || !s || !s[0])
        return;
    char *f = rf_local_fold(s);
    if (f) {
        rf_buf_put(g->txt, f, strlen(f));
        rf_buf_put(g->txt, "\n", 1);
        sodium_memzero(f, strlen(f));
        free(f);
    }
}

static int on_digest(void *ctx, int64_t seq, const uint8_t *blob, size_t n)
{
    struct gather *g = ctx;
    char ad[48];
    json_t *d = NULL;
    json_error_t err;
    snprintf(ad, sizeof(ad), "digest:%lld", (long long)seq);
    rf_buf_reset(&g->plain);
    if (rf_local_open(g->l, ad, blob, n, &g->plain) != 0)
        return 0; /* a damaged row counts as nothing; resync rebuilds it */
    if (rf_evrow_is(g->plain.data, g->plain.len)) { /* a verified event, packed */
        struct rf_ev e;
        int bad = rf_local_ev_unpack(&e, NULL, g->plain.data, g->plain.len);
        rf_buf_reset(&g->plain);
        if (bad)
            return 0; /* damaged, as above */
        int rc = push_ev(g, &e);
        if (rc != 0)
            rf_ev_clear(&e);
        return rc;
    }
    d = json_loadb((const char *)g->plain.data, g->plain.len, 0, &err);
    rf_buf_reset(&g->plain);
    if (!d)
        return 0;
    const char *k = rf_local_str_or(json_object_get(d, "k"), "");
    int rc = 0;
    if (strcmp(k, "event") == 0) {
        json_t *ej = json_object_get(d, "ev");
        struct rf_ev e;
        if (ej && rf_local_ev_from_json(&e, ej) == 0) {
            rc = push_ev(g, &e);
            if (rc != 0)
                rf_ev_clear(&e);
        } else if (g->bad) {
            json_array_append_new(
                g->bad, json_pack("{sIss}", "seq", (json_int_t)seq, "error",
                                  rf_local_str_or(json_object_get(d, "error"), "unverified")));
        }
    } else if (strcmp(k, "message") == 0 || strcmp(k, "reply") == 0) {
        add_text(g, json_string_value(json_object_get(d, "text")));
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(d, "answers"), i, a) add_text(g, json_string_value(a));
        if (strcmp(k, "message") == 0 && !g->have_intake &&
            strcmp(rf_local_str_or(json_object_get(d, "type"), ""), "intake") == 0) {
            g->have_intake = 1;
            g->need = json_incref(json_object_get(d, "need"));
            g->urgency = json_incref(json_object_get(d, "urgency"));
        }
    }
    json_decref(d);
    return rc;
}

/* The outbox's events for the case (this client's own, opened with its key). */
static int gather_outbox(struct gather *g, const char *case_id)
{
    struct rf_coutbox *ob = NULL;
    size_t n = 0;
    struct rf_buf env, plain;
    int rc = rf_cache_outbox_list(g->l->c, case_id, &ob, &n);
    if (rc != 0)
        return rc;
    rf_buf_init(&env, PLAIN_MAX);
    rf_buf_init_secure(&plain, PLAIN_MAX);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        uint8_t kind = 0;
        struct rf_ev e;
        rf_buf_reset(&env);
        rf_buf_reset(&plain);
        rc = rf_cache_outbox_get(g->l->c, ob[i].id, &env);
        if (rc != 0)
            break;
        if (rf_local_outbox_open(g->l, case_id, env.data, env.len, &kind, &plain) != 0 ||
            kind != RF_KIND_EVENT ||
            rf_state_event_verify(&e, plain.data, plain.len, case_id,
                                  (const struct rf_roster *const *)g->l->rosters, g->l->nrosters,
                                  (uint32_t)g->l->nrosters) != 0)
            continue;
        rc = push_ev(g, &e);
        if (rc != 0)
            rf_ev_clear(&e);
    }
    rf_buf_free(&env);
    rf_buf_free(&plain);
    free(ob);
    return rc;
}

void rf_local_events_free(struct rf_ev *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rf_ev_clear(&ev[i]);
    free(ev);
}

static void gather_free(struct gather *g)
{
    rf_buf_free(&g->plain);
    rf_local_events_free(g->ev, g->nev);
    json_decref(g->need);
    json_decref(g->urgency);
    json_decref(g->bad);
}

/* Drops the events beyond the lamport bound (state.h), listing them in
 * g->bad: they do not count, and the next event's lamport ignores them. */
static int drop_unbounded(struct gather *g)
{
    unsigned char *keep = malloc(g->nev ? g->nev : 1);
    if (!keep)
        return RF_ERR_NOMEM;
    int rc = rf_state_bound(g->ev, g->nev, keep);
    size_t k = 0;
    for (size_t i = 0; rc == 0 && i < g->nev; i++) {
        if (keep[i]) {
            g->ev[k++] = g->ev[i];
            continue;
        }
        if (g->bad)
            json_array_append_new(
                g->bad, json_pack("{sIss}", "seq", (json_int_t)g->ev[i].seq, "error",
                                  "its lamport jumps too far ahead of the case's events"));
        rf_ev_clear(&g->ev[i]);
    }
    if (rc == 0)
        g->nev = k;
    free(keep);
    return rc;
}

static int gather_case(struct gather *g, const char *case_id)
{
    int rc = rf_cache_digests(g->l->c, case_id, on_digest, g);
    if (rc == 0)
        rc = gather_outbox(g, case_id);
    if (rc == 0)
        rc = drop_unbounded(g);
    return rc;
}

int rf_local_events(struct rf_local *l, const char *case_id, struct rf_ev **ev, size_t *n,
                    json_t **bad)
{
    struct gather g;
    gather_init(&g, l);
    g.bad = bad ? json_array() : NULL;
    *ev = NULL;
    *n = 0;
    if (bad)
        *bad = NULL;
    int rc = gather_case(&g, case_id);
    if (rc == 0) {
        *ev = g.ev;
        *n = g.nev;
        g.ev = NULL;
        g.nev = 0;
        if (bad) {
            *bad = g.bad;
            g.bad = NULL;
        }
    }
    gather_free(&g);
    return rc;
}

/* A case's board row (what the desk's board and `refuge cases` show and
 * filter on) from its summary, packed (lib/boardrow.h, cache version 6):
 * no search text, nothing of the intake beyond "need" and "urgency". */
static int seal_board(struct rf_local *l, const char *case_id, json_t *s, struct rf_buf *out)
{
    char ad[48];
    struct rf_buf plain;
    snprintf(ad, sizeof(ad), "board:%s", case_id);
    rf_buf_init_secure(&plain, RF_BOARDROW_MAX); /* rf_secmem: reused, no system call */
    int rc = rf_boardrow_encode(&plain, s);
    if (rc == 0)
        rc = rf_local_seal(l, ad, plain.data, plain.len, out);
    rf_buf_free(&plain); /* wiped */
    return rc;
}

/* The board rows of the summaries written before there were board rows
 * (a home from before cache version 3), or before they carried what
 * `refuge cases` lists (version 4), or while they were JSON (version 6
 * packs them): each summary opened once. */
struct fill {
    struct rf_local *l;
    struct rf_buf plain, board;
    size_t n;
};

static int fill_one(void *ctx, const char *case_id, int64_t last_seq, const uint8_t *blob, size_t n)
{
    struct fill *f = ctx;
    if (strcmp(case_id, RF_STATE_TEAMCONFIG) == 0)
        return 0;
    json_t *s = rf_local_open_summary(f->l, case_id, blob, n, &f->plain);
    if (!s)
        return 0; /* a damaged summary gets its row when it is built again */
    rf_buf_reset(&f->board);
    int rc = seal_board(f->l, case_id, s, &f->board);
    json_decref(s);
    if (rc == 0)
        rc = rf_cache_board_put(f->l->c, case_id, last_seq, f->board.data, f->board.len);
    f->n++;
    return rc;
}

void rf_local_use_prekeys(struct rf_local *l, struct rf_prekeys *p)
{
    l->prekeys = p;
}

int rf_local_board_open(const struct rf_local *l, const char *case_id, const uint8_t *p, size_t n,
                        struct rf_buf *out)
{
    char ad[48] = "board:"; /* once a row for `refuge cases`: no snprintf */
    size_t k = strlen(case_id);
    if (k > sizeof(ad) - 7)
        return RF_ERR_LIMIT;
    memcpy(ad + 6, case_id, k + 1);
    return rf_local_open(l, ad, p, n, out);
}

int rf_local_board_fill(struct rf_local *l, size_t *built)
{
    int64_t need = 0;
    if (built)
        *built = 0;
    int rc = rf_cache_meta_get(l->c, "board_fill", &need);
    if (rc != 0 || need == 0)
        return rc;
    struct fill f = {.l = l};
    rf_buf_init_secure(&f.plain, ROW_MAX);
    rf_buf_init(&f.board, ROW_MAX);
    rc = rf_cache_begin(l->c);
    if (rc == 0)
        rc = rf_cache_summaries_seq(l->c, fill_one, &f);
    if (rc == 0)
        rc = rf_cache_meta_set(l->c, "board_fill", 0);
    if (rc == 0)
        rc = rf_cache_commit(l->c);
    else
        rf_cache_rollback(l->c);
    rf_buf_free(&f.plain);
    rf_buf_free(&f.board);
    if (rc == 0 && built)
        *built = f.n;
    return rc;
}

int rf_local_case_read_outbox(struct rf_local *l, const char *case_id, struct rf_case_rows *r)
{
    rf_case_rows_reset(r);
    r->case_id = case_id;
    struct gather go = {.l = l};
    int rc = gather_outbox(&go, case_id);
    r->outbox = go.ev;
    r->nout = go.nev;
    go.ev = NULL;
    go.nev = 0;
    gather_free(&go);
    return rc;
}

int rf_local_case_read(struct rf_local *l, const char *case_id, struct rf_case_rows *r)
{
    int rc = rf_local_case_read_outbox(l, case_id, r);
    if (rc == 0)
        rc = rf_cache_digests(l->c, case_id, rf_case_rows_keep_digest, r);
    if (rc == 0 && strcmp(case_id, RF_STATE_TEAMCONFIG) != 0) {
        rc = rf_cache_case_objects(l->c, case_id, &r->objs, &r->nobj);
        if (rc == RF_ERR_NOT_FOUND)
            rc = 0;
    }
    return rc;
}

/* The case's summary from r's rows, sealed into r->sealed (and r->board). */
static int case_build(struct rf_local *l, struct rf_case_rows *r, struct gather *g, json_t **state,
                      json_t **sum)
{
    const char *case_id = r->case_id;
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < r->digests.len;) {
        int64_t seq;
        uint64_t n;
        memcpy(&seq, r->digests.data + off, sizeof(seq));
        memcpy(&n, r->digests.data + off + sizeof(seq), sizeof(n));
        off += sizeof(seq) + sizeof(n);
        rc = on_digest(g, seq, r->digests.data + off, (size_t)n);
        off += (size_t)n;
    }
    for (size_t i = 0; rc == 0 && i < r->nout; i++) { /* the outbox's events, after */
        rc = push_ev(g, &r->outbox[i]);
        if (rc == 0)
            memset(&r->outbox[i], 0, sizeof(r->outbox[i])); /* moved into g */
    }
    if (rc == 0)
        rc = drop_unbounded(g);
    if (rc != 0)
        return rc;
    char ad[48];
    snprintf(ad, sizeof(ad), "summary:%s", case_id);
    if (strcmp(case_id, RF_STATE_TEAMCONFIG) == 0) {
        *state = rf_state_team(g->ev, g->nev);
        return *state ? rf_local_seal_json(l, ad, *state, &r->sealed) : RF_ERR_NOMEM;
    }
    unsigned counts[RF_KIND_MAX + 1] = {0};
    uint32_t first = 0, last = 0;
    for (size_t i = 0; i < r->nobj; i++) {
        const struct rf_cobj *o = &r->objs[i];
        if (o->kind <= RF_KIND_MAX)
            counts[o->kind]++;
        if (i == 0 || o->day < first)
            first = o->day;
        if (o->day > last)
            last = o->day;
        r->last_seq = o->seq;
    }
    unsigned pending = 0;
    for (size_t i = 0; i < g->nev; i++)
        pending += g->ev[i].seq == 0;
    *state = rf_state_case(g->ev, g->nev);
    if (!*state)
        return RF_ERR_NOMEM;
    json_t *notes = json_object_get(*state, "notes");
    size_t i;
    json_t *v;
    json_array_foreach(notes, i, v) add_text(g, json_string_value(json_object_get(v, "text")));
    json_array_foreach(json_object_get(*state, "tags"), i, v) add_text(g, json_string_value(v));
    rf_buf_cstr(g->txt);
    json_t *st = *state;
    *sum = json_pack("{sssOsOsOsOsOsIsIsIsIsIsIsIsIsO?sO?ss}", "case", case_id, "stage",
                     json_object_get(st, "stage"), "assigned", json_object_get(st, "assigned"),
                     "tags", json_object_get(st, "tags"), "due", json_object_get(st, "due"),
                     "checklist", json_object_get(st, "checklist"), "notes",
                     (json_int_t)json_array_size(notes), "messages",
                     (json_int_t)counts[RF_KIND_MESSAGE], "files", (json_int_t)counts[RF_KIND_FILE],
                     "replies", (json_int_t)counts[RF_KIND_REPLY], "first_day", (json_int_t)first,
                     "last_day", (json_int_t)last, "pending", (json_int_t)pending, "lamport",
                     json_integer_value(json_object_get(st, "lamport")), "need", g->need, "urgency",
                     g->urgency, "search", g->txt->data ? (const char *)g->txt->data : "");
    if (!*sum)
        return RF_ERR_NOMEM;
    rc = rf_local_seal_json(l, ad, *sum, &r->sealed);
    if (rc == 0)
        rc = seal_board(l, case_id, *sum, &r->board);
    return rc;
}

void rf_local_case_build(struct rf_local *l, struct rf_case_rows *r)
{
    struct rf_buf txt;
    json_t *state = NULL, *sum = NULL;
    rf_buf_init_secure(&txt, ROW_MAX);
    struct gather g;
    gather_init(&g, l);
    g.txt = &txt;
    r->rc = case_build(l, r, &g, &state, &sum);
    json_decref(sum);
    json_decref(state);
    gather_free(&g);
    rf_buf_free(&txt);
}

int rf_local_case_write(struct rf_local *l, const struct rf_case_rows *r)
{
    if (r->rc != 0)
        return r->rc;
    int team = strcmp(r->case_id, RF_STATE_TEAMCONFIG) == 0;
    return rf_cache_summary_put(l->c, r->case_id, team ? 0 : r->last_seq, r->sealed.data,
                                r->sealed.len, team ? NULL : r->board.data, r->board.len);
}

int rf_local_refresh(struct rf_local *l, const char *case_id)
{
    struct rf_case_rows r;
    rf_case_rows_init(&r);
    int rc = rf_local_case_read(l, case_id, &r);
    if (rc == 0) {
        rf_local_case_build(l, &r);
        rc = rf_local_case_write(l, &r);
    }
    rf_case_rows_free(&r);
    return rc;
}

int rf_local_summary(struct rf_local *l, const char *case_id, json_t **out)
{
    struct rf_buf b;
    char ad[48];
    *out = NULL;
    snprintf(ad, sizeof(ad), "summary:%s", case_id);
    rf_buf_init(&b, ROW_MAX);
    int rc = rf_cache_summary_get(l->c, case_id, &b);
    if (rc == 0)
        rc = open_json(l, ad, b.data, b.len, out);
    rf_buf_free(&b);
    return rc;
}
