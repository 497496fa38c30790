/*
 * deskfill.c - benchmark fixture for bench/desk_board.sh: fills the local
 * case database of the caseworker whose home REFUGE_HOME names (passphrase
 * as for every refuge command) with NCASES cases and NEVENTS case events.
 *
 * Nothing is skipped of what the board reads: each case is a person's
 * intake, sealed to every caseworker on the verified roster exactly as the
 * server seals a submission (rf_envelope_seal, RF_KIND_MESSAGE, the same
 * JSON); each event is built, signed (rf_event_sign) and sealed to the
 * roster as `refuge stage`, `assign`, `tag`, `note`, `check` and `due` make
 * it (cmd_event.c's build_event + seal_to_roster). The ciphertext goes into
 * the cache as sync stores a pulled object (rf_cache_object_put), and then
 * rf_local_update opens, verifies and digests every object and builds the
 * sealed per-case summaries, as after a real `refuge sync`. Only the HTTP
 * transfer from the server is left out (the server never takes part in
 * rendering the board). The objects are numbered right after the home's
 * sync position, which is then moved past them; the last line printed ends
 * with "sync position N": the caller moves the server's numbering to N
 * (bench/desk_board.py), so the home is what a sync from a server holding
 * these objects leaves.
 *   usage: refuge-bench-deskfill NCASES NEVENTS
 */
#include "client/cmd.h"
#include "client/out.h"
#include "client/trust.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BATCH 2000

static const char *const needs[] = {"housing", "legal", "medical", "money", "documents"};
static const char *const urgencies[] = {"today", "week", "month"};
static const char *const tags[] = {"family", "minor", "interpreter", "disability", "follow-up"};

static int put_object(struct rf_ctx *x, int64_t seq, const char *cid, uint8_t kind, uint32_t day,
                      uint32_t roster, const struct rf_buf *env)
{
    struct rf_cobj o;
    memset(&o, 0, sizeof(o));
    o.seq = seq;
    snprintf(o.case_id, sizeof(o.case_id), "%s", cid);
    o.kind = kind;
    o.size = env->len;
    o.day = day;
    o.roster = roster;
    return rf_cache_object_put(x->c, &o, env->data, env->len);
}

static int seal(struct rf_buf *env, uint8_t kind, const uint8_t (*pks)[32], size_t npk,
                const uint8_t *p, size_t n)
{
    rf_buf_reset(env);
    return rf_envelope_seal(env, kind, pks, npk, p, n);
}

int main(int argc, char **argv)
{
    if (argc != 3 || sodium_init() < 0)
        return fputs("usage: refuge-bench-deskfill NCASES NEVENTS\n", stderr), 2;
    long ncases = atol(argv[1]), nevents = atol(argv[2]);
    if (ncases < 1 || ncases > 1000000 || nevents < 0 || nevents > 10000000)
        return fputs("refuge-bench-deskfill: NCASES 1..1000000, NEVENTS 0..10000000\n", stderr), 2;
    rf_out_init(); /* jansson's wiping allocator, as main.c installs it */
    struct rf_ctx x;
    memset(&x, 0, sizeof(x));
    if (rf_ctx_open(&x, 0) != 0)
        return 1;
    struct rf_roster *ro = NULL;
    json_t *team = NULL;
    int rc = rf_trust_roster_cached(x.c, x.h.pinned, x.k, &ro);
    if (rc == 0)
        rc = rf_local_team(x.l, &team);
    uint8_t(*pks)[32] = NULL;
    if (rc == 0 && !(pks = calloc(ro->n, 32)))
        rc = RF_ERR_NOMEM;
    for (uint16_t i = 0; rc == 0 && i < ro->n; i++)
        memcpy(pks[i], ro->members[i].box_pk, 32);
    int64_t seq = 0;
    if (rc == 0)
        rc = rf_cache_last_seq(x.c, &seq);
    struct rf_cobj *all = NULL;
    size_t nall = 0;
    if (rc == 0)
        rc = rf_cache_objects_all(x.c, &all, &nall);
    if (rc == 0 && nall > 0 && all[nall - 1].seq > seq)
        seq = all[nall - 1].seq;
    free(all);
    /* numbered right after what this home already synced, as a sync from
     * a server that stored them would number them; the sync position is
     * moved past them at the end (as sync does), and bench/desk_board.py
     * moves the server's own numbering past them too, so a later sync or a
     * change posted from the desk or the CLI (real cases) gets a number
     * above every one of these, as in a real caseworker's home */
    if (rc != 0) {
        fprintf(stderr, "refuge-bench-deskfill: %s (run `refuge sync` first)\n", rf_strerror(rc));
        rf_ctx_close(&x);
        return 1;
    }
    json_t *stages = json_object_get(team, "stages"), *checks = json_object_get(team, "checklist");
    uint32_t today = (uint32_t)(time(NULL) / 86400);
    struct rf_buf env, plain;
    rf_buf_init(&env, (size_t)RF_EVENT_BODY_MAX * 2 + 64 * 1024);
    rf_buf_init_secure(&plain, RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX);
    char(*ids)[RF_CASE_ID_LEN + 1] = calloc((size_t)ncases, sizeof(*ids));
    uint64_t *lamport = calloc((size_t)ncases, sizeof(*lamport));
    if (!ids || !lamport)
        rc = RF_ERR_NOMEM;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    /* the cases: one intake each, days spread over the last 400 days */
    for (long i = 0; rc == 0 && i < ncases; i++) {
        static const char b32[] = "abcdefghijklmnopqrstuvwxyz234567";
        uint8_t r[RF_CASE_ID_LEN];
        randombytes_buf(r, sizeof(r));
        for (int j = 0; j < RF_CASE_ID_LEN; j++)
            ids[i][j] = b32[r[j] & 31];
        uint32_t day = today - (uint32_t)randombytes_uniform(400);
        json_t *m = json_pack("{sisssssss[{ssssss}{ssssss}{ssssss+}]}", "v", 1, "type", "intake",
                              "lang", "en", "text", "I need help with my case, please write back.",
                              "answers", "id", "need", "label", "What do you need help with?",
                              "value", needs[i % 5], "id", "urgency", "label", "How urgent is it?",
                              "value", urgencies[i % 3], "id", "text", "label", "Tell us more",
                              "value", "We arrived last month; number ", ids[i]);
        if (!m) {
            rc = RF_ERR_NOMEM;
            break;
        }
        char *s = json_dumps(m, JSON_COMPACT);
        json_decref(m);
        if (!s) {
            rc = RF_ERR_NOMEM;
            break;
        }
        if (i % BATCH == 0)
            rc = rf_cache_begin(x.c);
        if (rc == 0)
            rc = seal(&env, RF_KIND_MESSAGE, (const uint8_t(*)[32])pks, ro->n, (uint8_t *)s,
                      strlen(s));
        rf_out_json_free(s);
        if (rc == 0)
            rc = put_object(&x, ++seq, ids[i], RF_KIND_MESSAGE, day, ro->version, &env);
        if (rc == 0 && (i % BATCH == BATCH - 1 || i == ncases - 1))
            rc = rf_cache_commit(x.c);
    }
    /* the events: round robin over the cases, as a team works */
    for (long e = 0; rc == 0 && e < nevents; e++) {
        long i = e % ncases;
        char value[96];
        const char *op;
        switch ((e / ncases) % 6) {
        case 0:
            op = "stage";
            snprintf(value, sizeof(value), "%s",
                     json_string_value(json_array_get(
                         stages, (size_t)(1 + randombytes_uniform(
                                                  (uint32_t)json_array_size(stages) - 1)))));
            break;
        case 1:
            op = "assign";
            snprintf(value, sizeof(value), "%s", ro->members[randombytes_uniform(ro->n)].name);
            break;
        case 2:
            op = "tag";
            snprintf(value, sizeof(value), "%s", tags[randombytes_uniform(5)]);
            break;
        case 3:
            op = "note";
            snprintf(value, sizeof(value), "Called back, documents %s on the way.", ids[i]);
            break;
        case 4:
            op = "check";
            snprintf(value, sizeof(value), "%s",
                     json_string_value(json_array_get(
                         checks, randombytes_uniform((uint32_t)json_array_size(checks)))));
            break;
        default: {
            op = "due";
            time_t t = (time_t)(today - 30 + randombytes_uniform(90)) * 86400;
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(value, sizeof(value), "%Y-%m-%d", &tm);
        }
        }
        json_t *body =
            json_pack("{sisssIsIsssIssss}", "v", 1, "id", "", "lamport", (json_int_t)++lamport[i],
                      "roster", (json_int_t)ro->version, "author", x.k->name, "day",
                      (json_int_t)today, "op", op, "value", value);
        uint8_t rid[16];
        char id[33];
        randombytes_buf(rid, sizeof(rid));
        sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
        json_object_set_new(body, "id", json_string(id));
        char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
        json_decref(body);
        if (!s) {
            rc = RF_ERR_NOMEM;
            break;
        }
        if (e % BATCH == 0)
            rc = rf_cache_begin(x.c);
        rf_buf_reset(&plain);
        if (rc == 0)
            rc = rf_event_sign(&plain, x.k, ids[i], (const uint8_t *)s, strlen(s));
        rf_out_json_free(s);
        if (rc == 0)
            rc = seal(&env, RF_KIND_EVENT, (const uint8_t(*)[32])pks, ro->n, plain.data, plain.len);
        if (rc == 0)
            rc = put_object(&x, ++seq, ids[i], RF_KIND_EVENT, today, ro->version, &env);
        if (rc == 0 && (e % BATCH == BATCH - 1 || e == nevents - 1))
            rc = rf_cache_commit(x.c);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double made = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    /* the sync position: past every object stored (sync stores objects and
     * moves its position in one transaction) */
    if (rc == 0)
        rc = rf_cache_begin(x.c);
    if (rc == 0) {
        rc = rf_cache_set_last_seq(x.c, seq);
        if (rc == 0)
            rc = rf_cache_commit(x.c);
        else
            rf_cache_rollback(x.c);
    }
    unsigned unverified = 0;
    if (rc == 0)
        rc = rf_local_update(x.l, &unverified);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    double digested = (double)(t0.tv_sec - t1.tv_sec) + (double)(t0.tv_nsec - t1.tv_nsec) / 1e9;
    if (rc == 0 && unverified > 0) {
        fprintf(stderr, "refuge-bench-deskfill: %u events refused by verification\n", unverified);
        rc = RF_ERR_FORMAT;
    }
    if (rc == 0)
        printf("filled %ld cases, %ld events: sealed+signed %.1f s, verified+digested %.1f s; "
               "sync position %lld\n",
               ncases, nevents, made, digested, (long long)seq);
    else
        fprintf(stderr, "refuge-bench-deskfill: %s\n", rf_strerror(rc));
    rf_buf_free(&env);
    rf_buf_free(&plain);
    free(ids);
    free(lamport);
    free(pks);
    free(ro);
    json_decref(team);
    rf_ctx_close(&x);
    return rc == 0 ? 0 : 1;
}
