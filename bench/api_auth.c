/*
 * api_auth.c - what a signed staff API request costs, end to end over HTTP
 * on loopback: the real server (API routes only) and the real client's
 * signed requests (client/net.c), a cheap read (GET /api/v1/objects?limit=1)
 * so that authentication (signature check, roster check, nonce) is most of
 * the work. Prints one client's sequential rate and latency, then the rate
 * of N clients at once. A benchmark, not a test: it prints figures and
 * asserts nothing. Since the nonce is stored durably before a request is
 * served (trust review finding 7), each request waits for one group commit:
 * run it on the disk the store will live on, and against the previous
 * commit to see the difference.
 *
 *   api_auth DIR [clients=8] [seconds=3]
 *
 * Build and run it with bench/api_auth.sh.
 */
#include "client/net.h"
#include "lib/err.h"
#include "lib/keyfile.h"
#include "lib/roster.h"
#include "server/httpd.h"
#include "server/routes.h"
#include "server/srv.h"
#include "store/commit.h"
#include "store/store.h"

#include <ftw.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CLIENTS_MAX 64

static char base[64];
static struct rf_staff_keys *admin;
static double stop_at;

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

struct worker {
    pthread_t t;
    unsigned long done, failed;
};

static void *run(void *arg)
{
    struct worker *w = arg;
    struct rf_net *n = NULL;
    if (rf_net_new(&n, base, admin) != 0)
        return NULL;
    while (now_s() < stop_at) {
        json_t *j = NULL;
        if (rf_net_json(n, "GET", "/api/v1/objects?limit=1", NULL, 0, NULL, &j) == 0)
            w->done++;
        else
            w->failed++;
        json_decref(j);
    }
    rf_net_free(n);
    return NULL;
}

static void round_of(unsigned clients, double seconds)
{
    struct worker w[CLIENTS_MAX];
    memset(w, 0, sizeof(w));
    double t0 = now_s();
    stop_at = t0 + seconds;
    for (unsigned i = 0; i < clients; i++)
        pthread_create(&w[i].t, NULL, run, &w[i]);
    unsigned long done = 0, failed = 0;
    for (unsigned i = 0; i < clients; i++) {
        pthread_join(w[i].t, NULL);
        done += w[i].done;
        failed += w[i].failed;
    }
    double el = now_s() - t0;
    printf("%2u client%s: %8.0f requests/s, mean latency %6.2f ms per client (%lu failed)\n",
           clients, clients == 1 ? " " : "s", (double)done / el,
           done ? el * 1000.0 * clients / (double)done : 0.0, failed);
}

static int enroll(struct rf_srv *srv)
{
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw;
    struct rf_op ops[2];
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    r->version = 1;
    r->n = 1;
    snprintf(r->members[0].name, sizeof(r->members[0].name), "%s", admin->name);
    r->members[0].role = RF_ROLE_ADMIN;
    memcpy(r->members[0].box_pk, admin->box_pk, 32);
    memcpy(r->members[0].sign_pk, admin->sign_pk, 32);
    int rc = rf_roster_sign(&raw, r, admin);
    memset(ops, 0, sizeof(ops));
    ops[0].type = RF_OP_STAFF_PUT;
    memcpy(ops[0].staff.sign_pk, admin->sign_pk, 32);
    memcpy(ops[0].staff.box_pk, admin->box_pk, 32);
    snprintf(ops[0].staff.name, sizeof(ops[0].staff.name), "%s", admin->name);
    ops[1].type = RF_OP_ROSTER_PUT;
    ops[1].version = 1;
    ops[1].data = raw.data;
    ops[1].len = raw.len;
    if (rc == 0)
        rc = rf_store_apply(srv->store, ops, 2);
    if (rc == 0)
        rc = ops[0].status ? ops[0].status : ops[1].status;
    rf_buf_free(&raw);
    free(r);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2 || sodium_init() < 0) {
        fprintf(stderr, "usage: api_auth DIR [clients=8] [seconds=3]\n");
        return 2;
    }
    unsigned clients = argc > 2 ? (unsigned)atoi(argv[2]) : 8;
    double seconds = argc > 3 ? atof(argv[3]) : 3.0;
    if (clients < 1 || clients > CLIENTS_MAX || seconds <= 0)
        return 2;
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/bench-XXXXXX", argv[1]);
    if (!mkdtemp(dir))
        return 1;
    struct rf_srv srv;
    struct rf_http *http = NULL;
    memset(&srv, 0, sizeof(srv));
    srv.limits.api_body_max = 1 << 20;
    srv.datadir = dir;
    static const struct rf_route *tables[1];
    static size_t counts[1];
    tables[0] = rf_api_routes;
    counts[0] = rf_api_routes_n;
    admin = sodium_malloc(sizeof(*admin));
    int rc = admin ? rf_staff_keys_generate(admin, "Bench") : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_store_open(&srv.store, dir);
    if (rc == 0)
        rc = rf_committer_new(&srv.committer, srv.store);
    if (rc == 0)
        rc = rf_api_init(&srv);
    if (rc == 0)
        rc = enroll(&srv);
    if (rc == 0)
        rc = rf_http_start(&http, &srv, "127.0.0.1:0", tables, counts, 1);
    if (rc != 0) {
        fprintf(stderr, "api_auth: setup failed: %s\n", rf_strerror(rc));
        return 1;
    }
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", rf_http_port(http));
    round_of(1, seconds);
    round_of(clients, seconds);
    uint64_t batches = 0, ops = 0;
    rf_committer_stats(srv.committer, &batches, &ops);
    printf("group commits: %llu batches, %.1f ops per batch\n", (unsigned long long)batches,
           batches ? (double)ops / (double)batches : 0.0);
    rf_http_stop(http);
    rf_api_free(&srv);
    rf_committer_free(srv.committer);
    rf_store_close(srv.store);
    sodium_free(admin);
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
