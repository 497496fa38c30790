/*
 * api_nonce.c - bounded replay cache for staff API nonces (see api_nonce.h).
 *
 * Shape: a fixed pool of cap entries chained into cap buckets, plus a free
 * list; nothing is allocated after creation, so an attacker with a valid key
 * cannot grow memory. The pool and the buckets come zeroed from calloc and
 * entries are taken in order (fresh) before the free list is used, so a pool
 * never touched costs no resident memory (2 MB at the default cap: it was a
 * fifth of an idle server's RSS when the free list was linked up front). Buckets are chosen by
 * SipHash (crypto_shorthash) of the nonce under a per-process random key, so chains stay short
 * whatever nonces clients choose. Expired entries (older than 2 * RF_APISIG_MAX_SKEW) are unlinked
 * lazily while a chain is walked, and by a full sweep when the free list runs dry. One mutex guards
 * everything: a check is a few dozen instructions, far below the cost of the Ed25519 verification
 * before it.
 *
 * Invariant: every entry index below fresh is on exactly one bucket chain
 * or on the free list; links are index + 1, and 0 ends a chain (so zeroed
 * memory is a set of empty chains).
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
    int32_t next; /* index + 1 of the next entry on the chain; 0: end */
};

struct rf_nonces {
    pthread_mutex_t lock;
    size_t cap;      /* power of two */
    int32_t *bucket; /* index + 1 of each chain's first entry; 0: empty */
    struct nonce_ent *ent;
    int32_t free_head;       /* index + 1; 0: the free list is empty */
    size_t fresh;            /* entries at and above this index were never used */
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
    n->bucket = calloc(c, sizeof(*n->bucket));
    n->ent = calloc(c, sizeof(*n->ent));
    if (!n->bucket || !n->ent) {
        free(n->bucket);
        free(n->ent);
        free(n);
        return RF_ERR_NOMEM;
    }
    n->free_head = 0;
    n->fresh = 0;
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
    while (*link != 0) {
        struct nonce_ent *e = &n->ent[*link - 1];
        if (expired(e, now)) {
            int32_t link_val = *link;
            *link = e->next;
            e->next = n->free_head;
            n->free_head = link_val;
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
    for (int32_t i = n->bucket[b]; i != 0; i = n->ent[i - 1].next) {
        if (sodium_memcmp(n->ent[i - 1].nonce, nonce, RF_APISIG_NONCE_BYTES) == 0) {
            rc = RF_ERR_EXISTS;
            goto out;
        }
    }
    if (n->free_head == 0 && n->fresh == n->cap && n->last_full_sweep != now) {
        n->last_full_sweep = now;
        for (size_t i = 0; i < n->cap; i++)
            sweep_chain(n, i, now);
    }
    int32_t idx; /* index + 1 */
    if (n->free_head != 0) {
        idx = n->free_head;
        n->free_head = n->ent[idx - 1].next;
    } else if (n->fresh < n->cap) {
        idx = (int32_t)++n->fresh;
    } else {
        rc = RF_ERR_BUSY;
        goto out;
    }
    struct nonce_ent *e = &n->ent[idx - 1];
    memcpy(e->nonce, nonce, RF_APISIG_NONCE_BYTES);
    e->seen = now;
    e->next = n->bucket[b];
    n->bucket[b] = idx;
out:
    pthread_mutex_unlock(&n->lock);
    return rc;
}
