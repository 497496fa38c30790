/*
 * syncfill.c - benchmark fixture for bench/sync.sh: fills a SERVER's data
 * directory (the server stopped; the store API, not HTTP) with NCASES cases
 * and NEVENTS case events, made exactly as clients make them:
 * - each case is a person's source (RF_OP_SOURCE_CREATE, random lookup id
 *   and key, as a codename login makes it) with one intake message sealed
 *   to every caseworker on the verified roster (rf_envelope_seal,
 *   RF_KIND_MESSAGE, the same JSON as the server's send path);
 * - each event is built, signed (rf_event_sign) with the key of the
 *   caseworker whose home REFUGE_HOME names (passphrase as for every refuge
 *   command) and sealed to the roster, as `refuge stage`, `assign`, `tag`,
 *   `note`, `check` and `due` make it (cmd_event.c), then stored as the
 *   server's event endpoint stores it (RF_OP_OBJECT_PUT, RF_KIND_EVENT).
 * In format 2 (the default; docs/protocol.md sections 12 and 13), as a team
 * whose setting `team.event_format` is 2 writes: each case gets one case key
 * (a CASEKEY object, kind 9, signed by the caseworker and sealed to the
 * roster) and every event is an event version 2 (the signed event sealed
 * under the case key with XChaCha20-Poly1305); and the caseworker (an admin)
 * signs a checkpoint over every event (`team.checkpoint`), as the admin's
 * client does after a sync that verified them. Format 1 makes today's
 * version 1 events (one envelope each) and no checkpoint.
 * The sealing and signing run on every core (one worker thread per CPU this
 * process may use, each with its own buffers); the store writes stay on
 * the main thread, a chunk of objects per transaction.
 *   usage: refuge-bench-syncfill DATADIR NCASES NEVENTS [1|2]
 * And the reference sync is measured against (the bare per-object public-key
 * work of a sync on every core: one crypto_box_seal_open of a 32-byte key and
 * one Ed25519 verify of a 300-byte event, per second, over SECONDS):
 *   usage: refuge-bench-syncfill --floor SECONDS
 */
#include "client/cmd.h"
#include "client/out.h"
#include "client/trust.h"
#include "lib/casekey.h"
#include "lib/checkpoint.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"
#include "store/store.h"

#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CHUNK 8192
#define MAXW 64

static const char *const needs[] = {"housing", "legal", "medical", "money", "documents"};
static const char *const urgencies[] = {"today", "week", "month"};
static const char *const tags[] = {"family", "minor", "interpreter", "disability", "follow-up"};

struct fill {
    const struct rf_staff_keys *k;
    const struct rf_roster *ro;
    uint8_t (*pks)[32];
    char stages[16][64];
    size_t nstages;
    char checks[16][96];
    size_t nchecks;
    uint32_t today;
    char (*cids)[RF_CASE_ID_LEN + 1];
    long ncases;
    int format;                        /* 1 or 2 */
    uint8_t (*keys)[RF_CASEKEY_BYTES]; /* format 2: each case's key (secure) */
    /* the chunk being made: objects [first, first + n) of the whole run
     * (the first ncases are the intakes, then in format 2 the case keys,
     * then the events) */
    long first, n;
    long nkeys;          /* ncases in format 2, else 0 */
    struct rf_buf *env;  /* CHUNK objects */
    uint8_t (*hash)[32]; /* CHUNK: each event's signed bytes' hash, for the checkpoint */
    int nw;
    int err;
};

struct worker {
    struct fill *f;
    int id;
    struct rf_buf plain;
    pthread_t th;
};

static void make_message(struct fill *f, long i, char *s, size_t cap)
{
    snprintf(s, cap,
             "{\"v\":1,\"type\":\"intake\",\"lang\":\"en\",\"text\":\"I need help with my case, "
             "please write back.\",\"answers\":[{\"id\":\"need\",\"label\":\"What do you need help "
             "with?\",\"value\":\"%s\"},{\"id\":\"urgency\",\"label\":\"How urgent is "
             "it?\",\"value\":\"%s\"},{\"id\":\"text\",\"label\":\"Tell us more\",\"value\":\"We "
             "arrived last month; number %s\"}]}",
             needs[i % 5], urgencies[i % 3], f->cids[i]);
}

/* Event e (0-based) of the run: round robin over the cases, as a team
 * works; its lamport clock is its round (+1) within its case. */
static void make_event(struct fill *f, long e, char *s, size_t cap)
{
    long i = e % f->ncases, round = e / f->ncases;
    char value[96];
    const char *op;
    switch (round % 6) {
    case 0:
        op = "stage";
        snprintf(value, sizeof(value), "%s",
                 f->stages[1 + randombytes_uniform((uint32_t)f->nstages - 1)]);
        break;
    case 1:
        op = "assign";
        snprintf(value, sizeof(value), "%s", f->ro->members[randombytes_uniform(f->ro->n)].name);
        break;
    case 2:
        op = "tag";
        snprintf(value, sizeof(value), "%s", tags[randombytes_uniform(5)]);
        break;
    case 3:
        op = "note";
        snprintf(value, sizeof(value), "Called back, documents %s on the way.", f->cids[i]);
        break;
    case 4:
        op = "check";
        snprintf(value, sizeof(value), "%s", f->checks[randombytes_uniform((uint32_t)f->nchecks)]);
        break;
    default: {
        op = "due";
        time_t t = (time_t)(f->today - 30 + randombytes_uniform(90)) * 86400;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(value, sizeof(value), "%Y-%m-%d", &tm);
    }
    }
    uint8_t rid[16];
    char id[33];
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
    /* the key order and compact form of cmd_event.c's json_pack + dumps */
    snprintf(s, cap,
             "{\"v\":1,\"id\":\"%s\",\"lamport\":%ld,\"roster\":%u,\"author\":\"%s\",\"day\":%u,"
             "\"op\":\"%s\",\"value\":\"%s\"}",
             id, round + 1, (unsigned)f->ro->version, f->k->name, (unsigned)f->today, op, value);
}

/* Object o of the run into f->env[j] (and its hash, for an event). */
static int make_object(struct worker *w, long o, long j)
{
    struct fill *f = w->f;
    char s[1024];
    struct rf_buf *env = &f->env[j];
    rf_buf_reset(env);
    if (o < f->ncases) {
        make_message(f, o, s, sizeof(s));
        return rf_envelope_seal(env, RF_KIND_MESSAGE, (const uint8_t(*)[32])f->pks, f->ro->n,
                                (const uint8_t *)s, strlen(s));
    }
    rf_buf_reset(&w->plain);
    if (o < f->ncases + f->nkeys) {
        long c = o - f->ncases;
        int rc = rf_casekey_encode(&w->plain, f->k, f->cids[c], f->ro->version, f->keys[c]);
        return rc != 0 ? rc
                       : rf_envelope_seal(env, RF_KIND_CASEKEY, (const uint8_t(*)[32])f->pks,
                                          f->ro->n, w->plain.data, w->plain.len);
    }
    long e = o - f->ncases - f->nkeys, c = e % f->ncases;
    make_event(f, e, s, sizeof(s));
    int rc = rf_event_sign(&w->plain, f->k, f->cids[c], (const uint8_t *)s, strlen(s));
    if (rc != 0)
        return rc;
    rf_ckpt_obj_hash(f->hash[j], w->plain.data, w->plain.len);
    if (f->format == 2)
        return rf_casekey_event_seal(env, f->keys[c], f->cids[c], w->plain.data, w->plain.len);
    return rf_envelope_seal(env, RF_KIND_EVENT, (const uint8_t(*)[32])f->pks, f->ro->n,
                            w->plain.data, w->plain.len);
}

static void *work(void *arg)
{
    struct worker *w = arg;
    struct fill *f = w->f;
    for (long j = w->id; j < f->n && !f->err; j += f->nw) {
        int rc = make_object(w, f->first + j, j);
        if (rc != 0)
            f->err = rc;
    }
    rf_envelope_thread_done();
    return NULL;
}

static int cpus(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set) > MAXW ? MAXW : CPU_COUNT(&set);
    return 1;
}

struct floor_w {
    int mode; /* 3 both, 1 open only, 2 verify only */
    double secs;
    long n;
    pthread_t th;
};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void *floor_work(void *arg)
{
    struct floor_w *w = arg;
    uint8_t bpk[32], bsk[32], spk[32], ssk[64], key[32], sealed[32 + crypto_box_SEALBYTES];
    uint8_t msg[300], sig[64], out[32];
    crypto_box_keypair(bpk, bsk);
    crypto_sign_keypair(spk, ssk);
    randombytes_buf(key, sizeof(key));
    randombytes_buf(msg, sizeof(msg));
    crypto_box_seal(sealed, key, sizeof(key), bpk);
    crypto_sign_detached(sig, NULL, msg, sizeof(msg), ssk);
    double end = now() + w->secs;
    while (now() < end) {
        for (int i = 0; i < 50; i++) {
            if (((w->mode & 1) &&
                 crypto_box_seal_open(out, sealed, sizeof(sealed), bpk, bsk) != 0) ||
                ((w->mode & 2) && crypto_sign_verify_detached(sig, msg, sizeof(msg), spk) != 0))
                abort();
            w->n++;
        }
    }
    return NULL;
}

/* Opens + verifies per second on every core, and per core. */
static int floor_ref(double secs)
{
    int nw = cpus();
    struct floor_w ws[MAXW];
    for (int i = 0; i < nw; i++) {
        ws[i].mode = 3;
        ws[i].secs = secs;
        ws[i].n = 0;
        pthread_create(&ws[i].th, NULL, floor_work, &ws[i]);
    }
    long n = 0;
    for (int i = 0; i < nw; i++) {
        pthread_join(ws[i].th, NULL);
        n += ws[i].n;
    }
    /* one core alone, for the per-object costs */
    struct floor_w open1 = {1, secs / 2, 0, 0}, verify1 = {2, secs / 2, 0, 0};
    floor_work(&open1);
    floor_work(&verify1);
    printf("floor_open_verify_per_s %.0f  on %d threads\n", (double)n / secs, nw);
    printf("floor_open_us_per_core %.1f\n", 1e6 * (secs / 2) / (double)open1.n);
    printf("floor_verify_us_per_core %.1f\n", 1e6 * (secs / 2) / (double)verify1.n);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--floor") == 0 && sodium_init() >= 0)
        return floor_ref(atof(argv[2]) > 0 ? atof(argv[2]) : 2.0);
    if (argc < 4 || argc > 5 || sodium_init() < 0)
        return fputs("usage: refuge-bench-syncfill DATADIR NCASES NEVENTS [1|2]\n", stderr), 2;
    long ncases = atol(argv[2]), nevents = atol(argv[3]);
    int format = argc == 5 ? atoi(argv[4]) : 2;
    if (format != 1 && format != 2)
        return fputs("refuge-bench-syncfill: the format is 1 or 2\n", stderr), 2;
    if (ncases < 1 || ncases > 1000000 || nevents < 0 || nevents > 10000000)
        return fputs("refuge-bench-syncfill: NCASES 1..1000000, NEVENTS 0..10000000\n", stderr), 2;
    rf_out_init();
    struct rf_ctx x;
    memset(&x, 0, sizeof(x));
    if (rf_ctx_open(&x, 0) != 0)
        return 1;
    struct fill f;
    memset(&f, 0, sizeof(f));
    struct rf_roster *ro = NULL;
    json_t *team = NULL;
    struct rf_store *st = NULL;
    int rc = rf_trust_roster_cached(x.c, x.h.pinned, x.k, &ro);
    if (rc == 0)
        rc = rf_local_team(x.l, &team);
    if (rc == 0)
        rc = rf_store_open(&st, argv[1]);
    if (rc != 0) {
        fprintf(stderr, "refuge-bench-syncfill: %s\n", rf_strerror(rc));
        return 1;
    }
    f.k = x.k;
    f.ro = ro;
    f.ncases = ncases;
    f.format = format;
    f.nkeys = format == 2 ? ncases : 0;
    f.today = (uint32_t)(time(NULL) / 86400);
    json_t *v;
    size_t idx;
    json_array_foreach(json_object_get(team, "stages"), idx, v) if (f.nstages < 16)
        snprintf(f.stages[f.nstages++], sizeof(f.stages[0]), "%s", json_string_value(v));
    json_array_foreach(json_object_get(team, "checklist"), idx, v) if (f.nchecks < 16)
        snprintf(f.checks[f.nchecks++], sizeof(f.checks[0]), "%s", json_string_value(v));
    if (f.nstages < 2 || f.nchecks < 1) {
        fputs("refuge-bench-syncfill: the team has no stages or checklist\n", stderr);
        return 1;
    }
    f.pks = calloc(ro->n, 32);
    f.cids = calloc((size_t)ncases, sizeof(*f.cids));
    f.env = calloc(CHUNK, sizeof(*f.env));
    f.hash = calloc(CHUNK, sizeof(*f.hash));
    f.keys = format == 2 ? sodium_malloc((size_t)ncases * RF_CASEKEY_BYTES) : NULL;
    struct rf_op *ops = calloc(CHUNK, sizeof(*ops));
    if (!f.pks || !f.cids || !f.env || !f.hash || !ops || (format == 2 && !f.keys))
        return fputs("refuge-bench-syncfill: out of memory\n", stderr), 1;
    for (uint16_t i = 0; i < ro->n; i++)
        memcpy(f.pks[i], ro->members[i].box_pk, 32);
    for (int i = 0; i < CHUNK; i++)
        rf_buf_init(&f.env[i], (size_t)RF_EVENT_BODY_MAX * 2 + 64 * 1024);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the sources (cases), as codename logins create them */
    int64_t *sid = calloc((size_t)ncases, sizeof(*sid));
    for (long i = 0; rc == 0 && i < ncases; i += CHUNK) {
        long n = ncases - i < CHUNK ? ncases - i : CHUNK;
        memset(ops, 0, sizeof(*ops) * (size_t)n);
        for (long j = 0; j < n; j++) {
            ops[j].type = RF_OP_SOURCE_CREATE;
            randombytes_buf(ops[j].lookup_id, 32);
            randombytes_buf(ops[j].pk, 32);
        }
        rc = rf_store_apply(st, ops, (size_t)n);
        for (long j = 0; rc == 0 && j < n; j++) {
            rc = ops[j].status;
            sid[i + j] = ops[j].source.id;
            memcpy(f.cids[i + j], ops[j].source.case_id, sizeof(f.cids[0]));
        }
    }
    for (long i = 0; i < f.nkeys; i++)
        rf_casekey_new(f.keys[i]);
    struct rf_ckpt_chain chain;
    rf_ckpt_chain_init(&chain);
    /* the objects: made on every core a chunk at a time, stored in order */
    int nw = cpus();
    struct worker ws[MAXW];
    f.nw = nw;
    for (int i = 0; i < nw; i++) {
        ws[i].f = &f;
        ws[i].id = i;
        rf_buf_init_secure(&ws[i].plain, RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX);
    }
    long total = ncases + f.nkeys + nevents;
    for (long first = 0; rc == 0 && first < total; first += CHUNK) {
        f.first = first;
        f.n = total - first < CHUNK ? total - first : CHUNK;
        for (int i = 0; i < nw; i++)
            pthread_create(&ws[i].th, NULL, work, &ws[i]);
        for (int i = 0; i < nw; i++)
            pthread_join(ws[i].th, NULL);
        rc = f.err;
        memset(ops, 0, sizeof(*ops) * (size_t)f.n);
        for (long j = 0; rc == 0 && j < f.n; j++) {
            long o = first + j;
            ops[j].type = RF_OP_OBJECT_PUT;
            ops[j].source_id = sid[o < ncases ? o : (o - ncases) % ncases];
            ops[j].kind = o < ncases             ? RF_KIND_MESSAGE
                          : o < ncases + f.nkeys ? RF_KIND_CASEKEY
                                                 : RF_KIND_EVENT;
            ops[j].data = f.env[j].data;
            ops[j].len = f.env[j].len;
        }
        if (rc == 0)
            rc = rf_store_apply(st, ops, (size_t)f.n);
        for (long j = 0; rc == 0 && j < f.n; j++) {
            rc = ops[j].status;
            long o = first + j;
            if (rc == 0 && o >= ncases + f.nkeys)
                rc = rf_ckpt_chain_add_hash(&chain, (uint64_t)rf_op_seq(&ops[j]), RF_KIND_EVENT,
                                            f.cids[(o - ncases - f.nkeys) % ncases], f.hash[j]);
        }
    }
    /* format 2: the team's setting, and the admin's checkpoint over every event */
    if (rc == 0 && format == 2) {
        uint8_t ck[RF_CKPT_BYTES];
        struct rf_op set[2];
        memset(set, 0, sizeof(set));
        rf_op_setting_put(&set[0], "team.event_format", (const uint8_t *)"2", 1);
        int n = 1;
        if (chain.count > 0) {
            rc = rf_ckpt_make(ck, &chain, ro->version, f.k);
            rf_op_setting_put(&set[n++], "team.checkpoint", ck, sizeof(ck));
        }
        if (rc == 0)
            rc = rf_store_apply(st, set, (size_t)n);
        for (int j = 0; rc == 0 && j < n; j++)
            rc = set[j].status;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double dt = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    if (rc == 0)
        printf("filled %ld cases, %ld events (format %d%s) on %d threads in %.1f s\n", ncases,
               nevents, format, format == 2 ? ": a case key per case, a checkpoint" : "", nw, dt);
    else
        fprintf(stderr, "refuge-bench-syncfill: %s\n", rf_strerror(rc));
    for (int i = 0; i < nw; i++)
        rf_buf_free(&ws[i].plain);
    for (int i = 0; i < CHUNK; i++)
        rf_buf_free(&f.env[i]);
    free(f.env);
    free(f.hash);
    if (f.keys)
        sodium_free(f.keys);
    free(ops);
    free(sid);
    free(f.cids);
    free(f.pks);
    free(ro);
    json_decref(team);
    rf_store_close(st);
    rf_ctx_close(&x);
    return rc == 0 ? 0 : 1;
}
