/*
 * api_listed.c - the keys ever listed on a roster version (api_listed.h).
 *
 * Rosters are an append-only chain, so the set only grows: it remembers up
 * to which version it has read and, when asked about a later latest
 * version, reads just the versions in between (each parsed, not verified:
 * the server stored only verified rosters). A flat array searched linearly:
 * it holds each distinct key once, at most LISTED_MAX (a team's whole
 * history), and only keys that are not on the latest roster (removed, or
 * waiting for approval) ever make the API search it. One mutex guards it.
 *
 * Invariant: keys[0..n) are distinct and are exactly the sign_pks of roster
 * versions 1..upto.
 */
#include "server/api_listed.h"
#include "lib/err.h"
#include "lib/roster.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define LISTED_MAX 65536

struct rf_listed {
    pthread_mutex_t lock;
    uint32_t upto;
    uint8_t (*keys)[32];
    size_t n, cap;
};

int rf_listed_new(struct rf_listed **out)
{
    struct rf_listed *l = calloc(1, sizeof(*l));
    *out = NULL;
    if (!l)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&l->lock, NULL);
    *out = l;
    return 0;
}

void rf_listed_free(struct rf_listed *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->lock);
    free(l->keys);
    free(l);
}

static int find(const struct rf_listed *l, const uint8_t pk[32])
{
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(l->keys[i], pk, 32) == 0)
            return 1;
    return 0;
}

static int add(struct rf_listed *l, const uint8_t pk[32])
{
    if (find(l, pk))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        if (cap > LISTED_MAX)
            return RF_ERR_LIMIT;
        void *p = realloc(l->keys, cap * sizeof(*l->keys));
        if (!p)
            return RF_ERR_NOMEM;
        l->keys = p;
        l->cap = cap;
    }
    memcpy(l->keys[l->n++], pk, 32);
    return 0;
}

/* Adds the members of versions upto+1..latest; on failure keeps what it read. */
static int catch_up(struct rf_listed *l, struct rf_store *st, uint32_t latest)
{
    struct rf_roster *ro = malloc(sizeof(*ro));
    struct rf_buf raw;
    int rc = ro ? 0 : RF_ERR_NOMEM;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    while (rc == 0 && l->upto < latest) {
        rf_buf_reset(&raw);
        rc = rf_store_roster_get(st, l->upto + 1, &raw);
        if (rc == 0)
            rc = rf_roster_parse(ro, raw.data, raw.len);
        for (size_t i = 0; rc == 0 && i < ro->n; i++)
            rc = add(l, ro->members[i].sign_pk);
        if (rc == 0)
            l->upto++;
    }
    rf_buf_free(&raw);
    free(ro);
    return rc;
}

int rf_listed_ever(struct rf_listed *l, struct rf_store *st, uint32_t latest,
                   const uint8_t sign_pk[32])
{
    pthread_mutex_lock(&l->lock);
    int rc = catch_up(l, st, latest);
    if (rc == 0)
        rc = find(l, sign_pk);
    pthread_mutex_unlock(&l->lock);
    return rc;
}
