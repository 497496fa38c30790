/*
 * mkroster.c - benchmark fixture: puts a signed roster of N caseworkers
 * (fresh keys, the first one admin) into a data directory, so that the
 * submission benchmark measures sealing to a realistic team (DESIGN.md's
 * target is "5 caseworkers on the roster"). Uses the same roster and store
 * code as the server; the keys are thrown away.
 *   usage: refuge-bench-roster DATADIR N
 */
#include "lib/err.h"
#include "lib/keyfile.h"
#include "lib/roster.h"
#include "store/store.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc != 3 || sodium_init() < 0)
        return fputs("usage: refuge-bench-roster DATADIR N\n", stderr), 2;
    int n = atoi(argv[2]);
    if (n < 1 || n > 64)
        return fputs("N must be 1..64\n", stderr), 2;
    struct rf_store *st = NULL;
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k) * (size_t)n);
    struct rf_op *ops = calloc((size_t)n + 1, sizeof(*ops));
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    int rc = !r || !k || !ops ? RF_ERR_NOMEM : rf_store_open(&st, argv[1]);
    for (int i = 0; rc == 0 && i < n; i++) {
        char name[32];
        snprintf(name, sizeof(name), "bench%d", i);
        rc = rf_staff_keys_generate(&k[i], name);
        struct rf_member *m = &r->members[i];
        snprintf(m->name, sizeof(m->name), "%s", name);
        m->role = i == 0 ? RF_ROLE_ADMIN : RF_ROLE_MEMBER;
        memcpy(m->box_pk, k[i].box_pk, 32);
        memcpy(m->sign_pk, k[i].sign_pk, 32);
        ops[i].type = RF_OP_STAFF_PUT;
        memcpy(ops[i].staff.sign_pk, k[i].sign_pk, 32);
        memcpy(ops[i].staff.box_pk, k[i].box_pk, 32);
        snprintf(ops[i].staff.name, sizeof(ops[i].staff.name), "%s", name);
    }
    if (rc == 0) {
        r->version = 1;
        r->n = (uint16_t)n;
        rc = rf_roster_sign(&raw, r, &k[0]);
    }
    if (rc == 0) {
        ops[n].type = RF_OP_ROSTER_PUT;
        ops[n].version = 1;
        ops[n].data = raw.data;
        ops[n].len = raw.len;
        rc = rf_store_apply(st, ops, (size_t)n + 1);
        for (int i = 0; rc == 0 && i <= n; i++)
            rc = ops[i].status;
    }
    if (rc != 0)
        fprintf(stderr, "refuge-bench-roster: %s\n", rf_strerror(rc));
    rf_store_close(st);
    rf_buf_free(&raw);
    sodium_free(k);
    free(r);
    free(ops);
    return rc == 0 ? 0 : 1;
}
