/*
 * session.c - the person's sessions and pending codenames, in memory only
 * (session.h).
 *
 * Everything lives in one sodium_malloc slab (guarded, locked, wiped on
 * free) allocated at start: `max` session entries, RF_PENDING_SLOTS(max)
 * pending entries and the hash buckets of both. Nothing is allocated per
 * request, so a flood of logins or /new visits costs no memory: when a table
 * is full its least recently used entry is evicted (wiped) for the new one.
 *
 * Lookup: a cookie token is 32 random bytes in base64url. The table keeps
 * only h = BLAKE2b-256(token bytes); h's first bytes pick a bucket (h is
 * uniform and says nothing of the token) and the full h is compared with
 * sodium_memcmp (constant time). A session expires after idle_s without use
 * and in any case RF_SESSION_LIFETIME_S after it was created; a pending
 * codename after RF_PENDING_LIFETIME_S, and it can be taken once. Expired
 * entries are wiped when met (lookup, or a scan for room).
 *
 * Invariants (under lock): an entry is in its bucket's chain iff it is in
 * use; free entries are wiped and on the free list.
 */
#include "server/session.h"
#include "lib/buf.h"
#include "lib/codename.h"
#include "lib/err.h"

#include <pthread.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NIL UINT32_MAX
#define TOKEN_BYTES 32

struct entry_head {
    uint8_t hash[32];
    int64_t created;
    int64_t last;
    uint32_t next; /* bucket chain, or free list */
    uint32_t used;
};

struct sess {
    struct entry_head h;
    int64_t source_id;
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t pk[32];
    uint8_t sk[32];
    uint8_t csrf[32];
    uint32_t day;
    uint32_t msgs;
    uint64_t bytes;
};

struct pend {
    struct entry_head h;
    size_t len;
    char codename[RF_CODENAME_MAX];
};

/* One of the two tables, viewed through its entry heads. */
struct table {
    uint8_t *base;
    size_t stride;
    uint32_t n;
    uint32_t *buckets;
    uint32_t mask;
    uint32_t free;
};

struct rf_sessions {
    pthread_mutex_t lock;
    void *slab;
    size_t slab_len;
    struct table sess;
    struct table pend;
    unsigned idle_s;
    uint32_t quota_msgs;
    uint64_t quota_bytes;
    int64_t skew;
};

static int64_t now_s(const struct rf_sessions *s)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec + s->skew;
}

static uint32_t today(const struct rf_sessions *s)
{
    return (uint32_t)((time(NULL) + s->skew) / 86400);
}

static struct entry_head *at(const struct table *t, uint32_t i)
{
    return (struct entry_head *)(t->base + (size_t)i * t->stride);
}

static uint32_t bucket_of(const struct table *t, const uint8_t hash[32])
{
    uint32_t x;
    memcpy(&x, hash, sizeof(x));
    return x & t->mask;
}

static void table_init(struct table *t)
{
    t->free = NIL;
    for (uint32_t i = t->n; i-- > 0;) {
        at(t, i)->next = t->free;
        t->free = i;
    }
    for (uint32_t b = 0; b <= t->mask; b++)
        t->buckets[b] = NIL;
}

static void table_remove(struct table *t, uint32_t i)
{
    struct entry_head *e = at(t, i);
    uint32_t *link = &t->buckets[bucket_of(t, e->hash)];
    while (*link != NIL && *link != i)
        link = &at(t, *link)->next;
    if (*link == i)
        *link = e->next;
    sodium_memzero(e, t->stride);
    e->next = t->free;
    t->free = i;
}

static int expired(const struct rf_sessions *s, const struct table *t, const struct entry_head *e,
                   int64_t now)
{
    if (t == &s->pend)
        return now - e->created >= RF_PENDING_LIFETIME_S;
    return now - e->last >= (int64_t)s->idle_s || now - e->created >= RF_SESSION_LIFETIME_S;
}

/* A free entry, reaping expired ones or evicting the least recently used. */
static uint32_t table_take(struct rf_sessions *s, struct table *t, int64_t now)
{
    if (t->free == NIL) {
        uint32_t lru = NIL;
        for (uint32_t i = 0; i < t->n; i++) {
            struct entry_head *e = at(t, i);
            if (!e->used)
                continue;
            if (expired(s, t, e, now)) {
                table_remove(t, i);
                continue;
            }
            if (lru == NIL || e->last < at(t, lru)->last)
                lru = i;
        }
        if (t->free == NIL && lru != NIL)
            table_remove(t, lru);
    }
    uint32_t i = t->free;
    if (i == NIL)
        return NIL;
    t->free = at(t, i)->next;
    return i;
}

static void table_insert(struct table *t, uint32_t i, const uint8_t hash[32], int64_t now)
{
    struct entry_head *e = at(t, i);
    memcpy(e->hash, hash, 32);
    e->created = now;
    e->last = now;
    e->used = 1;
    uint32_t b = bucket_of(t, hash);
    e->next = t->buckets[b];
    t->buckets[b] = i;
}

/* Finds the live entry of hash; expired entries met are removed. */
static uint32_t table_find(struct rf_sessions *s, struct table *t, const uint8_t hash[32],
                           int64_t now)
{
    uint32_t i = t->buckets[bucket_of(t, hash)];
    while (i != NIL) {
        struct entry_head *e = at(t, i);
        uint32_t next = e->next;
        if (sodium_memcmp(e->hash, hash, 32) == 0) {
            if (expired(s, t, e, now)) {
                table_remove(t, i);
                return NIL;
            }
            return i;
        }
        i = next;
    }
    return NIL;
}

/* token text -> BLAKE2b-256 of its 32 bytes; RF_ERR_NOT_FOUND for anything
 * that is not a well-formed token (same answer as an unknown one). */
static int token_hash(const char *token, uint8_t hash[32])
{
    uint8_t raw[TOKEN_BYTES];
    size_t got = 0;
    if (token == NULL)
        return RF_ERR_NOT_FOUND;
    size_t len = strnlen(token, RF_SESSION_TOKEN_B64);
    if (len != RF_SESSION_TOKEN_B64 - 1 || rf_b64_decode(raw, sizeof(raw), &got, token, len) != 0 ||
        got != TOKEN_BYTES) {
        sodium_memzero(raw, sizeof(raw));
        return RF_ERR_NOT_FOUND;
    }
    crypto_generichash(hash, 32, raw, sizeof(raw), NULL, 0);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

/* A fresh token and its hash. */
static int token_new(char token[RF_SESSION_TOKEN_B64], uint8_t hash[32])
{
    uint8_t raw[TOKEN_BYTES];
    randombytes_buf(raw, sizeof(raw));
    int rc = rf_b64_encode(token, RF_SESSION_TOKEN_B64, raw, sizeof(raw));
    crypto_generichash(hash, 32, raw, sizeof(raw), NULL, 0);
    sodium_memzero(raw, sizeof(raw));
    return rc;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

int rf_sessions_new(struct rf_sessions **out, unsigned max, unsigned idle_s)
{
    *out = NULL;
    if (max == 0 || max > (1u << 22) || idle_s == 0)
        return RF_ERR_INVALID;
    struct rf_sessions *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return RF_ERR_NOMEM;
    uint32_t np = RF_PENDING_SLOTS(max);
    uint32_t bs = pow2_at_least(max), bp = pow2_at_least(np);
    size_t sess_len = (size_t)max * sizeof(struct sess);
    size_t pend_len = (size_t)np * sizeof(struct pend);
    s->slab_len = sess_len + pend_len + ((size_t)bs + bp) * sizeof(uint32_t);
    s->slab = sodium_malloc(s->slab_len);
    if (s->slab == NULL) {
        free(s);
        return RF_ERR_NOMEM;
    }
    sodium_memzero(s->slab, s->slab_len);
    uint8_t *p = s->slab;
    s->sess = (struct table){.base = p,
                             .stride = sizeof(struct sess),
                             .n = max,
                             .buckets = (uint32_t *)(p + sess_len + pend_len),
                             .mask = bs - 1};
    s->pend = (struct table){.base = p + sess_len,
                             .stride = sizeof(struct pend),
                             .n = np,
                             .buckets = (uint32_t *)(p + sess_len + pend_len) + bs,
                             .mask = bp - 1};
    table_init(&s->sess);
    table_init(&s->pend);
    s->idle_s = idle_s;
    s->quota_msgs = RF_SESSION_QUOTA_MSGS;
    s->quota_bytes = RF_SESSION_QUOTA_BYTES;
    pthread_mutex_init(&s->lock, NULL);
    *out = s;
    return 0;
}

void rf_sessions_free(struct rf_sessions *s)
{
    if (s == NULL)
        return;
    sodium_free(s->slab); /* wipes every session key and pending codename */
    pthread_mutex_destroy(&s->lock);
    free(s);
}

void rf_sessions_set_quota(struct rf_sessions *s, uint32_t msgs, uint64_t bytes)
{
    pthread_mutex_lock(&s->lock);
    s->quota_msgs = msgs;
    s->quota_bytes = bytes;
    pthread_mutex_unlock(&s->lock);
}

void rf_sessions_clock_skew(struct rf_sessions *s, int64_t seconds)
{
    pthread_mutex_lock(&s->lock);
    s->skew += seconds;
    pthread_mutex_unlock(&s->lock);
}

int rf_session_create(struct rf_sessions *s, const struct rf_source *src,
                      const struct rf_source_keys *keys, char token[RF_SESSION_TOKEN_B64])
{
    uint8_t hash[32];
    int rc = token_new(token, hash);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    int64_t now = now_s(s);
    uint32_t i = table_take(s, &s->sess, now);
    if (i == NIL) {
        pthread_mutex_unlock(&s->lock);
        sodium_memzero(token, RF_SESSION_TOKEN_B64);
        return RF_ERR_BUSY;
    }
    struct sess *e = (struct sess *)at(&s->sess, i);
    table_insert(&s->sess, i, hash, now);
    e->source_id = src->id;
    memcpy(e->case_id, src->case_id, sizeof(e->case_id));
    e->case_id[RF_CASE_ID_LEN] = '\0';
    memcpy(e->pk, keys->pk, 32);
    memcpy(e->sk, keys->sk, 32);
    randombytes_buf(e->csrf, sizeof(e->csrf));
    e->day = today(s);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int rf_session_get(struct rf_sessions *s, const char *token, struct rf_session_view *out)
{
    uint8_t hash[32];
    if (token_hash(token, hash) != 0)
        return RF_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->lock);
    int64_t now = now_s(s);
    uint32_t i = table_find(s, &s->sess, hash, now);
    if (i == NIL) {
        pthread_mutex_unlock(&s->lock);
        return RF_ERR_NOT_FOUND;
    }
    struct sess *e = (struct sess *)at(&s->sess, i);
    e->h.last = now;
    uint32_t day = today(s);
    if (e->day != day) {
        e->day = day;
        e->msgs = 0;
        e->bytes = 0;
    }
    out->source_id = e->source_id;
    memcpy(out->case_id, e->case_id, sizeof(out->case_id));
    memcpy(out->pk, e->pk, 32);
    memcpy(out->sk, e->sk, 32);
    memcpy(out->csrf, e->csrf, 32);
    out->sent_today_msgs = e->msgs;
    out->sent_today_bytes = e->bytes;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

void rf_session_end(struct rf_sessions *s, const char *token)
{
    uint8_t hash[32];
    if (token_hash(token, hash) != 0)
        return;
    pthread_mutex_lock(&s->lock);
    uint32_t i = table_find(s, &s->sess, hash, now_s(s));
    if (i != NIL)
        table_remove(&s->sess, i);
    pthread_mutex_unlock(&s->lock);
}

int rf_session_count_sent(struct rf_sessions *s, const char *token, uint64_t bytes)
{
    uint8_t hash[32];
    if (token_hash(token, hash) != 0)
        return RF_ERR_NOT_FOUND;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    uint32_t i = table_find(s, &s->sess, hash, now_s(s));
    if (i == NIL) {
        rc = RF_ERR_NOT_FOUND;
        goto out;
    }
    struct sess *e = (struct sess *)at(&s->sess, i);
    uint32_t day = today(s);
    if (e->day != day) {
        e->day = day;
        e->msgs = 0;
        e->bytes = 0;
    }
    if (e->msgs >= s->quota_msgs || bytes > s->quota_bytes || e->bytes > s->quota_bytes - bytes) {
        rc = RF_ERR_LIMIT;
        goto out;
    }
    e->msgs++;
    e->bytes += bytes;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

int rf_pending_put(struct rf_sessions *s, const char *codename, char id[RF_SESSION_TOKEN_B64])
{
    size_t len = strnlen(codename, RF_CODENAME_MAX);
    if (len >= RF_CODENAME_MAX)
        return RF_ERR_LIMIT;
    uint8_t hash[32];
    int rc = token_new(id, hash);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&s->lock);
    int64_t now = now_s(s);
    uint32_t i = table_take(s, &s->pend, now);
    if (i == NIL) {
        pthread_mutex_unlock(&s->lock);
        sodium_memzero(id, RF_SESSION_TOKEN_B64);
        return RF_ERR_BUSY;
    }
    struct pend *e = (struct pend *)at(&s->pend, i);
    table_insert(&s->pend, i, hash, now);
    memcpy(e->codename, codename, len);
    e->codename[len] = '\0';
    e->len = len;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int rf_pending_take(struct rf_sessions *s, const char *id, char *out, size_t outcap)
{
    uint8_t hash[32];
    if (token_hash(id, hash) != 0)
        return RF_ERR_NOT_FOUND;
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    uint32_t i = table_find(s, &s->pend, hash, now_s(s));
    if (i == NIL) {
        rc = RF_ERR_NOT_FOUND;
        goto out;
    }
    struct pend *e = (struct pend *)at(&s->pend, i);
    if (e->len + 1 > outcap) {
        rc = RF_ERR_LIMIT;
        goto out;
    }
    memcpy(out, e->codename, e->len + 1);
    table_remove(&s->pend, i); /* taken once */
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

void rf_enroll_token_hash(uint8_t out[32], const char *token, size_t len)
{
    crypto_generichash(out, 32, (const uint8_t *)token, len, NULL, 0);
}
