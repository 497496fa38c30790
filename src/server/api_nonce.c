/*
 * api_nonce.c - bounded replay cache for staff API nonces (see api_nonce.h).
 *
 * Shape: a fixed pool of cap entries chained into cap buckets, plus a free
 * list; nothing is allocated after creation, so an attacker with a valid key
 * cannot grow memory. Buckets are chosen by SipHash (crypto_shorthash) of the
 * nonce under a per-process random key, so chains stay short whatever nonces
 * clients choose. Expired entries (older than 2 * RF_APISIG_MAX_SKEW) are
 * unlinked lazily while a chain is walked, and by a full sweep when the free
 * list runs dry. One mutex guards everything: a check is a few dozen
 * instructions, far below the cost of the Ed25519 verification before it.
 *
 * Invariant: every entry index is on exactly one bucket chain or on the free
 * list; next == -1 ends a chain.
 */
#include "server/api_nonce.h"
#include "lib/err.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define NONCE_TTL (2 * RF_APISIG_MAX_SKEW)

struct nonce_ent {
    uint8_t nonce[RF_APISIG_NONCE_BYTES];
    int64_t seen;
    int32_t next;
};

struct rf_nonces {
    pthread_mutex_t lock;
    size_t cap; /* power of two */
    int32_t *bucket;
    struct nonce_ent *ent;
    int32_t free_head;
    int64_t last_full_sweep; /* at most one O(cap) sweep per second */
    uint8_t key[crypto_shorthash_KEYBYTES];
};

int rf_nonces_new(struct rf_nonces **out, size_t cap)
{
    *out = NULL;
    if (cap < 2 || cap > ((size_t)1 << 24))
        return RF_ERR_INVALID;
    size_t c = 2;
    while (c < cap)
        c <<= 1;
    struct rf_nonces *n = calloc(1, sizeof(*n));
    if (!n)
        return RF_ERR_NOMEM;
    n->cap = c;
    n->bucket = malloc(c * sizeof(*n->bucket));
    n->ent = malloc(c * sizeof(*n->ent));
    if (!n->bucket || !n->ent) {
        free(n->bucket);
        free(n->ent);
        free(n);
        return RF_ERR_NOMEM;
    }
    for (size_t i = 0; i < c; i++) {
        n->bucket[i] = -1;
        n->ent[i].next = (i + 1 < c) ? (int32_t)(i + 1) : -1;
    }
    n->free_head = 0;
    randombytes_buf(n->key, sizeof(n->key));
    pthread_mutex_init(&n->lock, NULL);
    *out = n;
    return 0;
}

void rf_nonces_free(struct rf_nonces *n)
{
    if (!n)
        return;
    pthread_mutex_destroy(&n->lock);
    free(n->bucket);
    free(n->ent);
    free(n);
}

static size_t bucket_of(const struct rf_nonces *n, const uint8_t *nonce)
{
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    crypto_shorthash(h, nonce, RF_APISIG_NONCE_BYTES, n->key);
    for (size_t i = 0; i < sizeof(h); i++)
        v = (v << 8) | h[i];
    return (size_t)(v & (n->cap - 1));
}

static int expired(const struct nonce_ent *e, int64_t now)
{
    return now - e->seen > NONCE_TTL || e->seen - now > NONCE_TTL;
}

/* Unlinks expired entries of one chain onto the free list. */
static void sweep_chain(struct rf_nonces *n, size_t b, int64_t now)
{
    int32_t *link = &n->bucket[b];
    while (*link != -1) {
        struct nonce_ent *e = &n->ent[*link];
        if (expired(e, now)) {
            int32_t idx = *link;
            *link = e->next;
            e->next = n->free_head;
            n->free_head = idx;
        } else {
            link = &e->next;
        }
    }
}

int rf_nonces_check(struct rf_nonces *n, const uint8_t nonce[RF_APISIG_NONCE_BYTES], int64_t now)
{
    int rc = 0;
    size_t b = bucket_of(n, nonce);

    pthread_mutex_lock(&n->lock);
    sweep_chain(n, b, now);
    for (int32_t i = n->bucket[b]; i != -1; i = n->ent[i].next) {
        if (sodium_memcmp(n->ent[i].nonce, nonce, RF_APISIG_NONCE_BYTES) == 0) {
            rc = RF_ERR_EXISTS;
            goto out;
        }
    }
    if (n->free_head == -1 && n->last_full_sweep != now) {
        n->last_full_sweep = now;
        for (size_t i = 0; i < n->cap; i++)
            sweep_chain(n, i, now);
    }
    if (n->free_head == -1) {
        rc = RF_ERR_BUSY;
        goto out;
    }
    int32_t idx = n->free_head;
    struct nonce_ent *e = &n->ent[idx];
    n->free_head = e->next;
    memcpy(e->nonce, nonce, RF_APISIG_NONCE_BYTES);
    e->seen = now;
    e->next = n->bucket[b];
    n->bucket[b] = idx;
out:
    pthread_mutex_unlock(&n->lock);
    return rc;
}
