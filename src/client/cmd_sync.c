/*
 * cmd_sync.c - `refuge sync`: verify the roster chain from the pinned key
 * (refusing loudly if it fails), push the outbox of events queued offline
 * (in order, re-sealed if the roster changed since), then page through the
 * server's object list after the last sequence number seen and download
 * each object's ciphertext into the cache: small ones into the database,
 * large ones streamed to a file (temp name, fsync, rename). One transaction
 * per page, so an interrupted sync resumes where it stopped. Each listed
 * object carries the roster version in force when the server stored it; a
 * claim that cannot be true (lower than for an earlier object, lower than
 * the roster verified when the last sync ended, or a version the server
 * does not hand out) is refused loudly. Then the grants made for this
 * caseworker, and finally the local case database verifies and
 * materializes what is new (local.c).
 */
#include "client/cmd.h"
#include "client/evseal.h"
#include "client/local.h"
#include "client/out.h"
#include "client/prekeys.h"
#include "client/trust.h"
#include "lib/casekey.h"
#include "lib/crew.h"
#include "lib/err.h"
#include "lib/event.h"
#include "lib/objrange.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 1000
#define OBJECT_MAX ((uint64_t)1 << 40)

static void usage(FILE *f)
{
    fputs("usage: refuge sync\n"
          "\n"
          "Checks the roster (the team's keys) against the first admin's key pinned at init,\n"
          "sends the events queued while the server could not be reached, then downloads\n"
          "new messages, files, replies, events and key grants into the local cache (kept\n"
          "encrypted). After a sync, `refuge cases` and `refuge show` work offline.\n",
          f);
}

static int to_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

struct file_sink {
    int fd;
};

static int to_file(void *ctx, const uint8_t *p, size_t n)
{
    struct file_sink *fs = ctx;
    while (n > 0) {
        ssize_t k = write(fs->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return errno == ENOSPC ? RF_ERR_NOSPACE : RF_ERR_IO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Downloads one object's ciphertext: a small one into b (stored by the
 * caller, in order), a large one streamed to its file in the cache (temp
 * name, fsync, rename; its row is stored by the caller). */
static int fetch(struct rf_net *n, struct rf_cache *c, const struct rf_cobj *o, struct rf_buf *b)
{
    char path[64], tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(path, sizeof(path), "/api/v1/objects/%" PRId64, o->seq);
    int rc;
    if (o->size <= RF_CACHE_INLINE_MAX) {
        rf_buf_reset(b);
        rc = rf_net_download(n, path, o->size, to_buf, b);
        if (rc == 0 && b->len != o->size)
            rc = RF_ERR_PROTOCOL;
        return rc;
    }
    rc = rf_cache_file_path(c, o->seq, 1, tmp, sizeof(tmp));
    if (rc == 0)
        rc = rf_cache_file_path(c, o->seq, 0, dst, sizeof(dst));
    if (rc != 0)
        return rc;
    struct file_sink fs = {open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (fs.fd < 0)
        return RF_ERR_IO;
    rc = rf_net_download(n, path, o->size, to_file, &fs);
    off_t got = lseek(fs.fd, 0, SEEK_CUR);
    if (rc == 0 && (got < 0 || (uint64_t)got != o->size))
        rc = RF_ERR_PROTOCOL;
    if (rc == 0 && fsync(fs.fd) != 0)
        rc = RF_ERR_IO;
    close(fs.fd);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = RF_ERR_IO;
    if (rc != 0)
        unlink(tmp);
    return rc;
}

/* The downloads of a page run on FETCHERS connections at once (each object
 * is one signed request, so a serial sync waits a round trip per object);
 * the cache rows are then written in order on this thread, in the page's
 * one transaction, exactly as a serial download writes them. A failed
 * download stops the others from taking more; the first failure in order
 * is the one reported, and the page is not stored (it is listed again by
 * the next sync). */
#define FETCHERS 8
#define FETCH_BYTES ((uint64_t)64 * 1024 * 1024)
#define RANGE_MIN 64

struct slot {
    struct rf_cobj o;
    struct rf_buf b;
    int rc;        /* 0, or why it failed */
    int fetched;   /* 1 when a fetcher finished with it */
    int fetcher;   /* whose connection (its error text) */
    int malformed; /* a range answer for it was out of shape or contradicted the listing */
};

struct fetcher {
    struct pool *p;
    int id; /* its connection: p->nets[id] */
};

/* The fetchers are a crew (lib/crew.h) made once for the sync, one
 * connection each: a round per page, not a thread per page and fetcher. */
struct pool {
    struct rf_ctx *x;
    struct slot *slots; /* the page being listed and downloaded: one of bufs */
    struct slot *bufs[2];
    size_t n;
    int64_t after;   /* the page's: the seq before slots[0] */
    size_t chunk;    /* slots per range request */
    size_t next;     /* under mu: the first slot of the next chunk */
    int stop;        /* under mu: a download failed */
    int no_range;    /* under mu: the server does not know range requests (404) */
    unsigned ranges; /* under mu: range answers used (for the tests' counts) */
    pthread_mutex_t mu;
    struct rf_net *nets[FETCHERS];
    int nnets;
    struct fetcher fs[FETCHERS];
    struct rf_crew crew;
    int crew_on;
};

/* ---- range answers (GET /api/v1/objects/data, lib/objrange.h) ----
 * A fetcher asks for its chunk of the page's slots in one request; the
 * answer's entries must be the listing's (same seq, kind, size, day,
 * roster, case: else the server contradicts itself, and the sync stops);
 * each ciphertext goes straight into its slot. Slots the answer left out
 * (large objects) or did not reach are fetched one by one as before. */
struct range_rx {
    struct pool *p;
    size_t k, end;    /* the chunk's slots [k, end): k the next to match */
    struct slot *cur; /* the slot receiving ciphertext, or NULL */
    struct rf_range_parser ps;
    int bad; /* the answer contradicts the listing */
};

static int range_on_entry(void *ctx, const struct rf_range_entry *e)
{
    struct range_rx *rx = ctx;
    rx->cur = NULL;
    while (rx->k < rx->end && rx->p->slots[rx->k].o.seq < e->seq)
        rx->k++;
    if (rx->k >= rx->end || rx->p->slots[rx->k].o.seq != e->seq)
        return 0; /* not in this chunk's listing: not ours to keep */
    struct slot *sl = &rx->p->slots[rx->k];
    if (sl->o.kind != e->kind || sl->o.size != e->size || sl->o.day != e->day ||
        sl->o.roster != e->roster || strcmp(sl->o.case_id, e->case_id) != 0) {
        rx->bad = 1;
        return RF_ERR_PROTOCOL;
    }
    if (e->has_data) {
        rf_buf_reset(&sl->b);
        rx->cur = sl;
        if (e->size == 0)
            sl->fetched = 1;
    }
    return 0;
}

static int range_on_data(void *ctx, const uint8_t *d, size_t n)
{
    struct range_rx *rx = ctx;
    if (!rx->cur)
        return 0;
    int rc = rf_buf_put(&rx->cur->b, d, n);
    if (rc == 0 && rx->cur->b.len == rx->cur->o.size)
        rx->cur->fetched = 1; /* whole: kept only if the answer ends well */
    return rc;
}

static int range_sink(void *ctx, const uint8_t *d, size_t n)
{
    struct range_rx *rx = ctx;
    int rc = rf_range_feed(&rx->ps, d, n);
    if (rc == RF_ERR_FORMAT || rc == RF_ERR_VERSION || rc == RF_ERR_LIMIT)
        rc = RF_ERR_PROTOCOL;
    return rc;
}

/* Fills what it can of slots [i, end) with range answers. 0, or the error
 * that stops the sync (an answer out of shape or contradicting the listing:
 * RF_ERR_PROTOCOL, set on slot i). */
static int range_chunk(struct pool *p, int id, size_t i, size_t end)
{
    struct rf_net *net = p->nets[id];
    while (i < end) {
        pthread_mutex_lock(&p->mu);
        int skip = p->no_range || p->stop;
        pthread_mutex_unlock(&p->mu);
        if (skip)
            return 0;
        int64_t after = i == 0 ? p->after : p->slots[i - 1].o.seq, last = after;
        char path[96];
        struct range_rx rx = {p, i, end, NULL, {0}, 0};
        snprintf(path, sizeof(path), "/api/v1/objects/data?after=%" PRId64 "&limit=%zu", after,
                 end - i);
        rf_range_parser_init(&rx.ps, after, (uint32_t)(end - i), range_on_entry, range_on_data,
                             &rx);
        uint64_t max = RF_RANGE_BYTES_MAX + (uint64_t)(end - i) * RF_RANGE_ENTRY_BYTES +
                       RF_RANGE_HEAD_BYTES + RF_RANGE_END_BYTES;
        int rc = rf_net_download(net, path, max, range_sink, &rx);
        if (rc == 0)
            rc = rf_range_finish(&rx.ps, &last);
        if (rc != 0) {
            for (size_t k = i; k < end; k++) /* nothing of a broken answer is kept */
                p->slots[k].fetched = 0;
            if (rc == RF_ERR_PROTOCOL && rf_net_status(net) == 404) {
                pthread_mutex_lock(&p->mu);
                p->no_range = 1; /* an older server: one object at a time */
                pthread_mutex_unlock(&p->mu);
                return 0;
            }
            if (rx.bad || rc == RF_ERR_TRUNCATED || rf_net_status(net) == 200) {
                p->slots[i].fetcher = id;
                p->slots[i].fetched = 1;
                p->slots[i].rc = RF_ERR_PROTOCOL;
                p->slots[i].malformed = rx.bad || rc != RF_ERR_NET;
                return RF_ERR_PROTOCOL;
            }
            return 0; /* a refusal (busy, ...): the objects one by one */
        }
        pthread_mutex_lock(&p->mu);
        p->ranges++;
        pthread_mutex_unlock(&p->mu);
        size_t k = i;
        while (k < end && p->slots[k].o.seq <= last)
            k++;
        if (k == i)
            return 0; /* no progress: the rest one by one */
        i = k;
    }
    return 0;
}

static void fetcher_run(void *arg)
{
    struct fetcher *f = arg;
    struct pool *p = f->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->stop ? p->n : p->next;
        if (i < p->n)
            p->next = i + p->chunk < p->n ? i + p->chunk : p->n;
        size_t end = p->next;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            break;
        int failed = range_chunk(p, f->id, i, end) != 0;
        for (; !failed && i < end; i++) {
            struct slot *sl = &p->slots[i];
            if (sl->fetched)
                continue;
            pthread_mutex_lock(&p->mu);
            int stop = p->stop;
            pthread_mutex_unlock(&p->mu);
            if (stop)
                break;
            sl->fetcher = f->id;
            sl->rc = fetch(p->nets[f->id], p->x->c, &sl->o, &sl->b);
            sl->fetched = 1;
            failed = sl->rc != 0;
        }
        if (failed) {
            pthread_mutex_lock(&p->mu);
            p->stop = 1;
            pthread_mutex_unlock(&p->mu);
            break; /* its connection keeps the error text */
        }
    }
}

static int pool_open(struct pool *p, struct rf_ctx *x)
{
    memset(p, 0, sizeof(*p));
    p->x = x;
    for (int b = 0; b < 2; b++) {
        p->bufs[b] = calloc(PAGE, sizeof(struct slot));
        if (!p->bufs[b]) {
            free(p->bufs[0]);
            return RF_ERR_NOMEM;
        }
        for (size_t i = 0; i < PAGE; i++)
            rf_buf_init(&p->bufs[b][i].b, RF_CACHE_INLINE_MAX);
    }
    p->slots = p->bufs[0];
    pthread_mutex_init(&p->mu, NULL);
    /* the first connection is the command's own (already connected) */
    p->nets[0] = x->n;
    p->nnets = 1;
    for (int i = 1; i < FETCHERS; i++) {
        if (rf_net_open(&p->nets[i], x->h.server, x->k,
                        x->h.insecure_http ? RF_NET_INSECURE_HTTP : 0) != 0)
            break; /* fewer connections: slower, not wrong */
        p->nnets++;
    }
    for (int i = 0; i < p->nnets; i++)
        p->fs[i] = (struct fetcher){p, i};
    rf_crew_start(&p->crew, p->nnets, fetcher_run, p->fs, sizeof(p->fs[0]), NULL);
    p->crew_on = 1;
    return 0;
}

static void pool_close(struct pool *p)
{
    if (!p->slots)
        return;
    if (p->crew_on)
        rf_crew_stop(&p->crew);
    p->crew_on = 0;
    for (int i = 1; i < p->nnets; i++)
        rf_net_free(p->nets[i]);
    for (int b = 0; b < 2; b++) {
        for (size_t i = 0; i < PAGE; i++)
            rf_buf_free(&p->bufs[b][i].b);
        free(p->bufs[b]);
    }
    pthread_mutex_destroy(&p->mu);
    p->slots = NULL;
}

/* Downloads slots [0, n) on the pool's connections; returns the index of
 * the first slot that failed, or n. */
static size_t pool_fetch(struct pool *p, size_t n, int64_t after)
{
    p->n = n;
    p->after = after;
    p->next = 0;
    p->stop = 0;
    /* a range request per fetcher (at least RANGE_MIN slots each) */
    p->chunk = (n + (size_t)p->nnets - 1) / (size_t)p->nnets;
    if (p->chunk < RANGE_MIN)
        p->chunk = RANGE_MIN;
    for (size_t i = 0; i < n; i++)
        p->slots[i].fetched = 0, p->slots[i].rc = 0, p->slots[i].malformed = 0;
    rf_crew_go(&p->crew);   /* a fetcher with no chunk left returns at once */
    fetcher_run(&p->fs[0]); /* this thread is a fetcher too */
    rf_crew_wait(&p->crew);
    for (size_t i = 0; i < n; i++)
        if (!p->slots[i].fetched || p->slots[i].rc != 0)
            return i;
    return n;
}

/* Reads one listing entry, refusing anything out of shape. */
static int parse_obj(json_t *e, int64_t after, struct rf_cobj *o)
{
    json_t *seq = json_object_get(e, "seq"), *kind = json_object_get(e, "kind");
    json_t *size = json_object_get(e, "size"), *day = json_object_get(e, "day");
    json_t *roster = json_object_get(e, "roster");
    const char *cs = json_string_value(json_object_get(e, "case"));
    if (!json_is_integer(seq) || !json_is_integer(kind) || !json_is_integer(size) ||
        !json_is_integer(day) || !json_is_integer(roster) || !cs || !rf_cmd_case_ok(cs))
        return RF_ERR_PROTOCOL;
    if (json_integer_value(seq) <= after || json_integer_value(kind) < 1 ||
        json_integer_value(kind) > 255 || json_integer_value(size) < 0 ||
        (uint64_t)json_integer_value(size) > OBJECT_MAX || json_integer_value(day) < 0 ||
        json_integer_value(day) > UINT32_MAX || json_integer_value(roster) < 0 ||
        json_integer_value(roster) > UINT32_MAX)
        return RF_ERR_PROTOCOL;
    memset(o, 0, sizeof(*o));
    o->seq = json_integer_value(seq);
    snprintf(o->case_id, sizeof(o->case_id), "%s", cs);
    o->kind = (uint8_t)json_integer_value(kind);
    o->size = (uint64_t)json_integer_value(size);
    o->day = (uint32_t)json_integer_value(day);
    o->roster = (uint32_t)json_integer_value(roster);
    return 0;
}

/* The server's claim of the roster in force when it stored an object
 * (state.h: events are checked against every version up to it) must be one
 * it can truthfully make. It never decreases with seq, so it is at least
 * the highest claim for an object this computer already holds (stored_max)
 * and at least the roster this computer had verified when its last complete
 * sync ended (stored_floor: everything listed after that was stored after
 * that roster was published); and it is never a version this computer has
 * not verified. */
struct stored_check {
    int64_t floor, max;
};

static void stored_loud(const struct rf_cobj *o, const char *why, long long v)
{
    fprintf(stderr,
            "refuge: SERVER CHECK FAILED: the server says object #%lld was stored under roster\n"
            "refuge: version %u, %s %lld. That cannot be true.\n"
            "refuge: Nothing more was downloaded. The server may be compromised; tell your\n"
            "refuge: admin before doing anything else.\n",
            (long long)o->seq, (unsigned)o->roster, why, v);
}

static int stored_ok(const struct stored_check *sc, const struct rf_cobj *o)
{
    if ((int64_t)o->roster < sc->max) {
        stored_loud(o, "older than what it said for an earlier object:", (long long)sc->max);
        return 0;
    }
    if ((int64_t)o->roster < sc->floor) {
        stored_loud(o, "older than the roster this computer had verified before it was stored:",
                    (long long)sc->floor);
        return 0;
    }
    return 1;
}

/* Verifies the roster again when the server lists an object stored under a
 * version newer than *ro (published while this sync ran): *ro is replaced.
 * Loud refusal if the server does not hand out that version. */
static int catch_up_roster(struct rf_ctx *x, const struct rf_cobj *o, struct rf_roster **ro)
{
    struct rf_roster *now = NULL;
    int rc = rf_trust_roster(x->n, x->c, x->h.pinned, x->k, &now, 0);
    if (rc != 0)
        return rc;
    free(*ro);
    *ro = now;
    if (o->roster > now->version) {
        stored_loud(o, "but the newest roster it hands out is version", (long long)now->version);
        return RF_ERR_PROTOCOL;
    }
    return rf_cmd_on_roster(x, now) ? 0 : RF_ERR_AUTH;
}

/* Re-seals a queued event for the roster verified now (sealed to an older
 * one, or under a case key of an older one); the signed event inside is
 * unchanged, and so is its format. A case key made for it is posted first. */
static int reseal(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                  struct rf_buf *env)
{
    struct rf_buf plain;
    struct rf_evseal_key mk;
    uint8_t kind = 0;
    int format = rf_casekey_event_version(env->data, env->len) == 2 ? 2 : 1;
    rf_buf_init_secure(&plain, RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX);
    rf_evseal_key_init(&mk);
    int rc = rf_local_outbox_open(x->l, case_id, env->data, env->len, &kind, &plain);
    if (rc == 0 && kind != RF_KIND_EVENT)
        rc = RF_ERR_FORMAT;
    if (rc == 0) {
        rf_buf_reset(env);
        rc = rf_evseal_event(x, ro, format, case_id, plain.data, plain.len, env, &mk);
    }
    if (rc == 0 && mk.env.len > 0)
        rc = rf_evseal_post_key(x, case_id, &mk);
    rf_buf_free(&plain);
    rf_evseal_key_free(&mk);
    return rc;
}

/* A queued CASEKEY (made offline): posted if still sealed to exactly ro,
 * else dropped (*drop): its key names an older roster, so the events
 * queued under it are re-sealed under a new one. */
static int push_casekey(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                        const struct rf_buf *env, int *drop)
{
    struct rf_buf plain;
    struct rf_casekey_obj o;
    struct rf_evseal_key mk;
    uint8_t kind = 0;
    *drop = 0;
    if (rf_evseal_stale(x, ro, case_id, env->data, env->len)) {
        *drop = 1;
        return 0;
    }
    rf_buf_init_secure(&plain, 4096);
    rf_evseal_key_init(&mk);
    int rc = rf_envelope_open(&plain, &kind, x->k->box_pk, x->k->box_sk, env->data, env->len);
    if (rc == 0)
        rc = rf_casekey_parse(&o, plain.data, plain.len);
    if (rc == 0) {
        memcpy(mk.keyid, o.id, sizeof(mk.keyid));
        rc = rf_buf_put(&mk.env, env->data, env->len);
    }
    rf_buf_free(&plain);
    if (rc == 0)
        rc = rf_evseal_post_key(x, case_id, &mk);
    rf_evseal_key_free(&mk);
    return rc;
}

/* Whether the queued bytes are a CASEKEY envelope (not an event). */
static int is_casekey(const struct rf_buf *env)
{
    struct rf_env_header hd;
    uint8_t ids[RF_ENV_MAX_RECIPIENTS][RF_ENV_KEYID_BYTES];
    return rf_envelope_header_parse(&hd, ids, RF_ENV_MAX_RECIPIENTS, env->data, env->len) == 0 &&
           hd.kind == RF_KIND_CASEKEY;
}

/* Posts the outbox in order; stops at the first failure (order matters). */
static int push_outbox(struct rf_ctx *x, const struct rf_roster *ro, unsigned *sent)
{
    struct rf_coutbox *ob = NULL;
    size_t n = 0;
    struct rf_buf env;
    char path[128];
    int rc = rf_cache_outbox_list(x->c, NULL, &ob, &n);
    if (rc != 0)
        return rc;
    rf_buf_init(&env, (size_t)RF_EVENT_BODY_MAX * 2 + 64 * 1024);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        int key = 0, drop = 0;
        rf_buf_reset(&env);
        rc = rf_cache_outbox_get(x->c, ob[i].id, &env);
        if (rc == 0 && (key = is_casekey(&env)) != 0) {
            rc = push_casekey(x, ro, ob[i].case_id, &env, &drop);
        } else if (rc == 0 && rf_evseal_stale(x, ro, ob[i].case_id, env.data, env.len)) {
            rc = reseal(x, ro, ob[i].case_id, &env);
            if (rc == 0)
                rc = rf_cache_outbox_replace(x->c, ob[i].id, env.data, env.len);
        }
        if (rc != 0 && rc != RF_ERR_NET && rc != RF_ERR_PROTOCOL) {
            rf_cmd_errc("cannot read a queued event", rc);
            break;
        }
        if (rc == 0 && !key) {
            snprintf(path, sizeof(path), "/api/v1/cases/%s/events", ob[i].case_id);
            rc = rf_net_json(x->n, "POST", path, env.data, env.len, "application/octet-stream",
                             NULL);
        }
        if (rc == 0 && !key && ob[i].schedule >= 0) {
            const char *body = ob[i].schedule ? "{\"closed\":true}" : "{\"closed\":false}";
            snprintf(path, sizeof(path), "/api/v1/cases/%s/schedule", ob[i].case_id);
            if (rf_net_json(x->n, "POST", path, (const uint8_t *)body, strlen(body),
                            "application/json", NULL) != 0)
                rf_cmd_net_err("the event was sent, but the deletion schedule was not", x->n);
        }
        if (rc != 0) {
            if (rf_net_status(x->n) == 403)
                rf_cmd_forbidden(x, "queued events not sent", 0);
            else
                rf_cmd_net_err("queued events not sent (they stay queued)", x->n);
            break;
        }
        rc = rf_cache_outbox_del(x->c, ob[i].id);
        if (!key)
            (*sent)++;
        (void)drop;
    }
    rf_buf_free(&env);
    free(ob);
    return rc;
}

/* Pulls the grants made for this caseworker's key since the last sync. */
static int pull_grants(struct rf_ctx *x, unsigned *got)
{
    int64_t after = 0;
    json_t *page = NULL;
    uint8_t mine[RF_ENV_KEYID_BYTES];
    int rc = rf_cache_meta_get(x->c, "grants_after", &after);
    rf_keyid(mine, x->k->box_pk);
    while (rc == 0) {
        char path[96];
        snprintf(path, sizeof(path), "/api/v1/grants?after=%" PRId64 "&limit=%d", after, PAGE);
        rc = rf_net_json(x->n, "GET", path, NULL, 0, NULL, &page);
        if (rc != 0) {
            rf_cmd_net_err("cannot fetch grants", x->n);
            break;
        }
        json_t *arr = json_object_get(page, "grants");
        int more = json_is_true(json_object_get(page, "more"));
        if (!json_is_array(arr) || json_array_size(arr) > PAGE) {
            rc = RF_ERR_PROTOCOL;
            rf_cmd_err("cannot fetch grants", "the server's answer is malformed");
            break;
        }
        rc = rf_cache_begin(x->c);
        for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
            json_t *g = json_array_get(arr, i);
            json_t *id = json_object_get(g, "id"), *seq = json_object_get(g, "seq");
            const char *b = json_string_value(json_object_get(g, "grant"));
            uint8_t grant[RF_GRANT_BYTES];
            size_t glen = 0;
            if (!json_is_integer(id) || json_integer_value(id) <= after || !json_is_integer(seq) ||
                json_integer_value(seq) <= 0 || !b) {
                rc = RF_ERR_PROTOCOL;
                rf_cmd_err("cannot fetch grants", "the server's answer is malformed");
                break;
            }
            after = json_integer_value(id);
            /* a grant for another key is useless here: skip it */
            if (rf_b64_decode(grant, sizeof(grant), &glen, b, strlen(b)) != 0 ||
                glen != RF_GRANT_BYTES || memcmp(grant, mine, sizeof(mine)) != 0)
                continue;
            rc = rf_cache_grant_put(x->c, json_integer_value(seq), grant);
            (*got)++;
        }
        if (rc == 0)
            rc = rf_cache_meta_set(x->c, "grants_after", after);
        if (rc == 0)
            rc = rf_cache_commit(x->c);
        else
            rf_cache_rollback(x->c);
        json_decref(page);
        page = NULL;
        if (!more || json_array_size(arr) == 0)
            break;
    }
    json_decref(page);
    return rc;
}

/* ---- storing a page ----
 * A page's objects are written in seq order in one transaction, with the
 * position it reached: an interrupted sync resumes after the last page
 * stored. The writer runs on its own thread while the main thread lists and
 * downloads the next page into the pool's other slot array (the SQLite
 * handle is the writer's alone meanwhile); a page that failed to download,
 * or ends the sync, or names a newer roster is stored on the main thread. */
struct page_writer {
    struct rf_ctx *x;
    struct pool *pool;
    struct slot *slots;
    size_t n, upto;     /* upto: the first slot that failed to download, or n */
    int64_t stored_max; /* the listing's highest roster claim up to this page */
    unsigned total;     /* objects stored, over every page */
    unsigned counts[RF_KIND_MAX + 1];
    int rc;
    int running;
    pthread_t th;
    /* pages share a transaction (TX_PAGES at most, TX_SECONDS at most):
     * a commit writes the index pages a page of random cases dirtied, and
     * one per page made SQLite write about a page per object */
    int open;       /* a transaction is open, holding whole pages */
    unsigned pages; /* pages in it */
    struct timespec since;
    int flush; /* commit this page's transaction at its end */
    struct rf_prekeys *prekeys; /* each stored envelope offered (prekeys.h) */
};

#define TX_PAGES 64
#define TX_SECONDS 5

/* Commits the open transaction, if any: its pages are stored. */
static int writer_commit(struct page_writer *w)
{
    if (!w->open)
        return 0;
    w->open = 0;
    int rc = rf_cache_commit(w->x->c);
    if (rc != 0)
        rf_cmd_errc("cannot store objects", rc);
    return rc;
}

static void store_page(struct page_writer *w)
{
    struct rf_ctx *x = w->x;
    int64_t last = 0;
    int rc = 0;
    if (w->upto < w->n) /* this page fails: the whole pages before it are kept */
        rc = writer_commit(w);
    if (rc == 0 && !w->open) {
        rc = rf_cache_begin(x->c);
        w->open = rc == 0;
        w->pages = 0;
        clock_gettime(CLOCK_MONOTONIC, &w->since);
    }
    for (size_t i = 0; rc == 0 && i < w->n; i++) {
        struct slot *sl = &w->slots[i];
        if (i == w->upto) {
            rc = sl->fetched ? sl->rc : RF_ERR_NET;
            if (!sl->fetched)
                rf_cmd_err("cannot download an object", "the download was interrupted");
            else if (sl->malformed)
                rf_cmd_err("cannot download objects",
                           "the server's range answer is malformed or contradicts its "
                           "listing; nothing of this page was stored (the server may be "
                           "compromised: tell your admin)");
            else if (rc == RF_ERR_NET || rc == RF_ERR_PROTOCOL)
                rf_cmd_net_err("cannot download an object", w->pool->nets[sl->fetcher]);
            else
                rf_cmd_errc("cannot store an object", rc);
            break;
        }
        if (sl->o.size <= RF_CACHE_INLINE_MAX) {
            rc = rf_cache_object_put(x->c, &sl->o, sl->b.data ? sl->b.data : (const uint8_t *)"",
                                     sl->b.len);
            if (rc == 0 && sl->b.len > 0)
                rf_prekeys_offer(w->prekeys, sl->o.seq, sl->b.data, sl->b.len);
        } else
            rc = rf_cache_object_put(x->c, &sl->o, NULL, 0);
        if (rc != 0) {
            rf_cmd_errc("cannot store an object", rc);
            break;
        }
        last = sl->o.seq;
        w->total++;
        if (sl->o.kind <= RF_KIND_MAX)
            w->counts[sl->o.kind]++;
    }
    if (rc == 0 && last != 0)
        rc = rf_cache_set_last_seq(x->c, last);
    if (rc == 0)
        rc = rf_cache_meta_set(x->c, "stored_max", w->stored_max);
    if (rc != 0) {
        if (w->open)
            rf_cache_rollback(x->c); /* this page, and the others since the last commit */
        w->open = 0;
        w->rc = rc;
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (++w->pages >= TX_PAGES || w->flush || now.tv_sec - w->since.tv_sec >= TX_SECONDS)
        rc = writer_commit(w);
    w->rc = rc;
}

static void *writer_run(void *arg)
{
    store_page(arg);
    return NULL;
}

/* Waits for the writer, if one runs: its page's result. */
static int writer_join(struct page_writer *w)
{
    if (!w->running)
        return w->rc;
    pthread_join(w->th, NULL);
    w->running = 0;
    return w->rc;
}

/* ---- the next listing, asked for while a page downloads ----
 * The listing after a page is known once the page's listing is checked
 * (its last object): it is asked for on a connection of its own while the
 * page's objects download, so neither the server's listing nor the
 * client's parse of it waits for the other half. Only after a page that
 * goes on as listed (no newer roster to verify first); a prefetched page
 * is used only for exactly the position the loop asks for. */
struct prefetch {
    struct rf_net *net; /* NULL: not opened yet, or no_net */
    int no_net;         /* it could not be opened: listed in turn */
    int64_t after;
    json_t *page;
    int rc;
    int running;
    pthread_t th;
};

static void list_path(char *path, size_t cap, int64_t after)
{
    snprintf(path, cap, "/api/v1/objects?after=%" PRId64 "&limit=%d", after, PAGE);
}

static void *prefetch_run(void *arg)
{
    struct prefetch *pf = arg;
    char path[96];
    list_path(path, sizeof(path), pf->after);
    pf->rc = rf_net_json(pf->net, "GET", path, NULL, 0, NULL, &pf->page);
    return NULL;
}

static void prefetch_start(struct rf_ctx *x, struct prefetch *pf, int64_t after)
{
    /* its connection opened at the first page that has a next one (a sync
     * with one page or none never opens it) */
    if (!pf->net && !pf->no_net &&
        rf_net_open(&pf->net, x->h.server, x->k, x->h.insecure_http ? RF_NET_INSECURE_HTTP : 0) !=
            0) {
        pf->net = NULL;
        pf->no_net = 1; /* each listing in turn: slower, not wrong */
    }
    if (!pf->net)
        return;
    pf->after = after;
    pf->page = NULL;
    pf->rc = 0;
    pf->running = pthread_create(&pf->th, NULL, prefetch_run, pf) == 0;
}

/* The listing after `after`: the prefetched one if it is that one, else
 * asked for now on x->n; *used is the connection that answered. */
static int list_page(struct rf_ctx *x, struct prefetch *pf, int64_t after, json_t **page,
                     struct rf_net **used)
{
    if (pf->running) {
        pthread_join(pf->th, NULL);
        pf->running = 0;
        if (pf->after == after) {
            *page = pf->page;
            pf->page = NULL;
            *used = pf->net;
            return pf->rc;
        }
        json_decref(pf->page);
        pf->page = NULL;
    }
    char path[96];
    list_path(path, sizeof(path), after);
    *used = x->n;
    return rf_net_json(x->n, "GET", path, NULL, 0, NULL, page);
}

static void prefetch_close(struct prefetch *pf)
{
    if (pf->running)
        pthread_join(pf->th, NULL);
    pf->running = 0;
    json_decref(pf->page);
    pf->page = NULL;
    if (pf->net)
        rf_net_free(pf->net);
    pf->net = NULL;
}

int rf_sync_run(struct rf_ctx *x, int quiet, int flags, struct rf_roster **out)
{
    struct rf_roster *ro = NULL;
    int64_t last = 0;
    unsigned sent = 0, grants = 0, unverified = 0;
    json_t *page = NULL;
    struct pool pool = {0};
    struct page_writer w = {0};
    struct prefetch pf = {0};
    int bulk = 0; /* the case index dropped for a cold sync (rf_cache_bulk_objects) */
    if (out)
        *out = NULL;
    int rc = rf_trust_roster(x->n, x->c, x->h.pinned, x->k, &ro, flags);
    if (rc != 0)
        return rc;
    if (!rf_cmd_on_roster(x, ro)) {
        rc = RF_ERR_AUTH;
        goto out;
    }
    rf_evseal_fetch_format(x); /* the team's event format, for this and later writes */
    rc = push_outbox(x, ro, &sent);
    if (rc != 0)
        goto out;
    struct stored_check sc = {0, 0};
    rc = pool_open(&pool, x);
    if (rc == 0)
        rc = rf_cache_last_seq(x->c, &last);
    if (rc == 0)
        rc = rf_cache_meta_get(x->c, "stored_floor", &sc.floor);
    if (rc == 0)
        rc = rf_cache_meta_get(x->c, "stored_max", &sc.max);
    if (rc != 0) {
        rf_cmd_errc("cannot read the local cache", rc);
        goto out;
    }
    int64_t have = 0; /* an empty cache: a cold sync stores without the case index */
    if (rf_cache_objects_max(x->c, &have) == 0 && have == 0 && last == 0)
        bulk = rf_cache_bulk_objects(x->c, 1) == 0;
    /* envelopes' keys opened while the download leaves a core idle (none:
     * the digest opens them all) */
    (void)rf_prekeys_start(&w.prekeys, x->k);
    for (;;) {
        struct rf_net *ln = x->n;
        rc = list_page(x, &pf, last, &page, &ln);
        if (rc != 0) {
            if (rf_net_status(ln) == 403)
                rf_cmd_forbidden(x, "cannot sync", 0);
            else
                rf_cmd_net_err("cannot list new objects", ln);
            goto out;
        }
        json_t *arr = json_object_get(page, "objects");
        int more = json_is_true(json_object_get(page, "more"));
        if (!json_is_array(arr) || json_array_size(arr) > PAGE) {
            rc = RF_ERR_PROTOCOL;
            rf_cmd_err("cannot list new objects", "the server's answer is malformed");
            goto out;
        }
        if (json_array_size(arr) == 0)
            break;
        struct rf_cobj newer = {0};
        size_t n = 0;
        uint64_t held = 0;
        /* the listing is checked in order first (claims, roster) ... */
        for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
            struct rf_cobj o;
            rc = parse_obj(json_array_get(arr, i), n ? pool.slots[n - 1].o.seq : last, &o);
            if (rc != 0) {
                rf_cmd_err("cannot list new objects", "the server's answer is malformed");
                break;
            }
            if (!stored_ok(&sc, &o)) {
                rc = RF_ERR_PROTOCOL;
                break;
            }
            if (o.roster > ro->version) {
                newer = o; /* verify the roster again, then list from here */
                more = 1;
                break;
            }
            /* at most FETCH_BYTES of small objects held at once: the
             * rest of the page is listed again from here */
            uint64_t inl = o.size <= RF_CACHE_INLINE_MAX ? o.size : 0;
            if (n > 0 && held + inl > FETCH_BYTES) {
                more = 1;
                break;
            }
            held += inl;
            sc.max = o.roster;
            pool.slots[n++].o = o;
        }
        /* ... then downloaded on every connection, the next listing asked
         * for meanwhile ... */
        if (rc == 0 && n > 0 && newer.seq == 0 && more)
            prefetch_start(x, &pf, pool.slots[n - 1].o.seq);
        size_t upto = rc == 0 ? pool_fetch(&pool, n, last) : 0;
        /* ... and stored in order: by a writer thread while the next page
         * is listed and downloaded, unless this page ends the sync or
         * needs the roster verified again before going on */
        int wrc = writer_join(&w);
        if (wrc != 0) {
            rc = wrc; /* the previous page was not stored: said, and stop */
            goto out;
        }
        if (rc != 0)
            goto out;
        w.x = x;
        w.pool = &pool;
        w.slots = pool.slots;
        w.n = n;
        w.upto = upto;
        w.stored_max = sc.max;
        if (n > 0)
            last = pool.slots[n - 1].o.seq; /* the next page is listed after this one */
        w.flush = !(upto == n && newer.seq == 0 && more); /* the cache is used next */
        if (upto == n && newer.seq == 0 && more) {
            if (pthread_create(&w.th, NULL, writer_run, &w) == 0) {
                w.running = 1;
                pool.slots = pool.slots == pool.bufs[0] ? pool.bufs[1] : pool.bufs[0];
            } else {
                store_page(&w);
                rc = w.rc;
            }
        } else {
            store_page(&w);
            rc = w.rc;
        }
        if (rc == 0 && newer.seq != 0)
            rc = catch_up_roster(x, &newer, &ro);
        if (rc != 0)
            goto out;
        json_decref(page);
        page = NULL;
        if (!more)
            break;
    }
    rc = writer_join(&w);
    if (rc == 0)
        rc = writer_commit(&w);
    if (bulk) { /* the case index back before anything reads by case */
        int brc = rf_cache_bulk_objects(x->c, 0);
        bulk = 0;
        if (rc == 0 && brc != 0) {
            rf_cmd_errc("cannot index the local cache", brc);
            rc = brc;
        }
    }
    if (rc != 0)
        goto out;
    /* every object listed after this stored after ro was published */
    if ((int64_t)ro->version > sc.floor)
        rc = rf_cache_meta_set(x->c, "stored_floor", ro->version);
    if (rc != 0) {
        rf_cmd_errc("cannot write the local cache", rc);
        goto out;
    }
    rf_out_phase("roster check, list, download and store the objects");
    rc = pull_grants(x, &grants);
    if (rc == 0)
        rc = rf_local_reload(x->l);
    if (rc == 0) /* the checkpoint verified against the rosters just reloaded */
        rf_sync_ckpt_before(x, ro, w.total);
    rf_local_use_prekeys(x->l, w.prekeys); /* stopped when the digest starts */
    if (rc == 0)
        rc = rf_local_update(x->l, &unverified);
    rf_local_use_prekeys(x->l, NULL);
    if (rc == 0)
        rf_sync_ckpt_after(x, quiet);
    if (rc != 0) {
        rf_cmd_errc("cannot update the local case database", rc);
        goto out;
    }
    if (!quiet) {
        printf("Roster version %u verified: %u caseworker%s.\n", (unsigned)ro->version,
               (unsigned)ro->n, ro->n == 1 ? "" : "s");
        if (sent)
            printf("Sent %u queued event%s.\n", sent, sent == 1 ? "" : "s");
        const unsigned *counts = w.counts;
        printf("Synced %u new object%s: %u message%s, %u file%s, %u repl%s, %u event%s.\n", w.total,
               w.total == 1 ? "" : "s", counts[1], counts[1] == 1 ? "" : "s", counts[2],
               counts[2] == 1 ? "" : "s", counts[3], counts[3] == 1 ? "y" : "ies",
               counts[RF_KIND_EVENT], counts[RF_KIND_EVENT] == 1 ? "" : "s");
        if (grants)
            printf("Received %u key grant%s for older content.\n", grants, grants == 1 ? "" : "s");
        if (unverified)
            printf("Ignored %u unverified event%s (see `refuge show`).\n", unverified,
                   unverified == 1 ? "" : "s");
    }
out:
    prefetch_close(&pf);
    writer_join(&w); /* a page being stored is stored: the next sync goes on from it */
    if (w.rc == 0)
        writer_commit(&w);
    if (bulk)
        rf_cache_bulk_objects(x->c, 0);
    pool_close(&pool);
    rf_prekeys_free(w.prekeys); /* the keys wiped */
    json_decref(page);
    if (rc == 0 && out)
        *out = ro;
    else
        free(ro);
    return rc;
}

int rf_cmd_sync(int argc, char **argv)
{
    rf_out_phase(NULL);
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return RF_EXIT_OK;
        }
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    if (optind != argc) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    struct rf_ctx x;
    if (rf_ctx_open(&x, 1) != 0)
        return RF_EXIT_FAIL;
    struct rf_roster *ro = NULL;
    int ret = rf_sync_run(&x, 0, 0, &ro) == 0 ? RF_EXIT_OK : RF_EXIT_FAIL;
    if (ret == RF_EXIT_OK) /* an admin's checkpoint; a failure is only a warning */
        rf_sync_ckpt_post(&x, ro, 0);
    free(ro);
    rf_ctx_close(&x);
    return ret;
}
