/*
 * session.c - the person's sessions, in memory only, and the sealed pending
 * codenames (session.h).
 *
 * Every session lives in one slab allocated at start (lib/secmem.h region:
 * guarded, locked as its pages are first touched, wiped on free): `max`
 * session entries and their hash buckets. Entries are handed out in order
 * (hw) before freed ones are reused, so an idle server's table costs only
 * the pages of the sessions it has had.
 * Nothing is allocated per request, so a flood of logins costs no memory;
 * when the table is full of live sessions a new one is refused (busy), never
 * made by evicting a live one (a person in the middle of a long message).
 *
 * Lookup: a cookie token is 32 random bytes in base64url. The table keeps
 * only h = BLAKE2b-256(token bytes); h's first bytes pick a bucket (h is
 * uniform and says nothing of the token) and the full h is compared with
 * sodium_memcmp (constant time). A session expires after idle_s without use
 * and in any case RF_SESSION_LIFETIME_S after it was created. Expired
 * entries are wiped when met (lookup, a scan for room) and by the reaper,
 * a thread that scans the table every period (rf_sessions_reap_period), so
 * the secret key of a person who never comes back dies within a period of
 * the expiry. The clock is injectable (rf_sessions_set_clock) for tests.
 *
 * Pending codenames are sealed, not stored: XChaCha20-Poly1305 under a key
 * drawn at start (in the slab), the expiry inside the seal, bound to the
 * browser's pre-session cookie by the associated data. A flood of /new
 * therefore evicts nothing and costs no memory.
 *
 * Invariants (under lock): an entry is in its bucket's chain iff it is in
 * use; free entries are wiped and on the free list.
 */
#include "server/session.h"
#include "server/sesskey.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/secmem.h"
#include "store/commit.h"

#include <assert.h>
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

/* The session table, viewed through its entry heads. */
struct table {
    uint8_t *base;
    size_t stride;
    uint32_t n;
    uint32_t *buckets;
    uint32_t mask;
    uint32_t free; /* freed entries; taken before the untouched ones */
    uint32_t hw;   /* entries at and above hw were never used (zero pages) */
};

#define PEND_KEY_BYTES crypto_aead_xchacha20poly1305_ietf_KEYBYTES
#define PEND_NONCE_BYTES crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define PEND_AD "refuge-pending-v1"
#define PEND_AD_MAX 128 /* PEND_AD and the cookie it is bound to */

struct rf_sessions {
    pthread_mutex_t lock;
    void *slab;
    size_t slab_len;
    struct table sess;
    uint8_t *pend_key; /* in the slab */
    uint8_t *pend_buf; /* in the slab: a pending plaintext, under lock, wiped after use */
    unsigned idle_s;
    uint32_t quota_msgs;
    uint64_t quota_bytes;
    int64_t skew;
    rf_sessions_clock_fn clock;
    void *clock_arg;
    /* the reaper */
    pthread_t reaper;
    int reaper_on;
    int stopping;
    unsigned period_s;
    pthread_cond_t wake; /* on CLOCK_MONOTONIC */
    /* shared mode (rf_sessions_share): sessions are rows of the store,
     * sealed under the session key; nothing of them in the table */
    struct rf_store *st;
    struct rf_sesskey *key;
    uint64_t max;
};

/* Monotonic seconds; in shared mode the wall clock (unix seconds), which
 * every process and host reads alike (NTP keeps hosts within a second or
 * so: expiry is in minutes). */
static int64_t now_s(const struct rf_sessions *s)
{
    if (s->clock != NULL)
        return s->clock(s->clock_arg) + s->skew;
    if (s->key != NULL)
        return (int64_t)time(NULL) + s->skew;
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
    t->hw = 0;
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
    (void)t;
    return now - e->last >= (int64_t)s->idle_s || now - e->created >= RF_SESSION_LIFETIME_S;
}

/* Wipes every expired entry; returns how many. */
static unsigned table_reap(struct rf_sessions *s, struct table *t, int64_t now)
{
    unsigned n = 0;
    for (uint32_t i = 0; i < t->hw; i++) {
        struct entry_head *e = at(t, i);
        if (e->used && expired(s, t, e, now)) {
            table_remove(t, i);
            n++;
        }
    }
    return n;
}

/* A free entry, reaping expired ones if there is none; NIL if every entry
 * is a live session (never evicted: the caller answers busy). */
static uint32_t table_take(struct rf_sessions *s, struct table *t, int64_t now)
{
    if (t->free == NIL && t->hw == t->n)
        table_reap(s, t, now);
    uint32_t i = t->free;
    if (i == NIL)
        return t->hw < t->n ? t->hw++ : NIL;
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
    uint32_t bs = pow2_at_least(max);
    size_t sess_len = (size_t)max * sizeof(struct sess);
    s->slab_len = sess_len + (size_t)bs * sizeof(uint32_t) + PEND_KEY_BYTES + RF_PENDING_PLAIN_LEN;
    s->slab_len = (s->slab_len + 15) & ~(size_t)15;
    s->slab = rf_secmem_region(s->slab_len); /* zeroed */
    if (s->slab == NULL) {
        free(s);
        return RF_ERR_NOMEM;
    }
    uint8_t *p = s->slab;
    s->sess = (struct table){.base = p,
                             .stride = sizeof(struct sess),
                             .n = max,
                             .buckets = (uint32_t *)(p + sess_len),
                             .mask = bs - 1};
    s->pend_key = p + sess_len + (size_t)bs * sizeof(uint32_t);
    crypto_aead_xchacha20poly1305_ietf_keygen(s->pend_key);
    s->pend_buf = s->pend_key + PEND_KEY_BYTES;
    table_init(&s->sess);
    s->idle_s = idle_s;
    s->quota_msgs = RF_SESSION_QUOTA_MSGS;
    s->quota_bytes = RF_SESSION_QUOTA_BYTES;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->wake, &ca);
    pthread_condattr_destroy(&ca);
    *out = s;
    return 0;
}

void rf_sessions_free(struct rf_sessions *s)
{
    if (s == NULL)
        return;
    if (s->reaper_on) {
        pthread_mutex_lock(&s->lock);
        s->stopping = 1;
        pthread_cond_signal(&s->wake);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->reaper, NULL);
    }
    rf_secmem_region_free(s->slab, s->slab_len); /* wipes every session key and the pending key */
    pthread_cond_destroy(&s->wake);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

/* ---------------------------------------------------------------- the reaper */

unsigned rf_sessions_reap_period(unsigned idle_s)
{
    unsigned p = idle_s / 10;
    return p < 1 ? 1 : p > 60 ? 60 : p;
}

/* Shared mode: the dead rows, by whichever process comes first. */
static unsigned shared_reap(struct rf_sessions *s)
{
    uint64_t n = 0;
    if (rf_store_sessions_reap(s->st, now_s(s), &n) != 0)
        rf_log_warn("sessions: cannot delete expired session rows; retrying next period");
    return n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
}

unsigned rf_sessions_reap(struct rf_sessions *s)
{
    if (s->key != NULL)
        return shared_reap(s);
    pthread_mutex_lock(&s->lock);
    unsigned n = table_reap(s, &s->sess, now_s(s));
    pthread_mutex_unlock(&s->lock);
    return n;
}

static void *reaper_main(void *arg)
{
    struct rf_sessions *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += s->period_s;
        while (!s->stopping && pthread_cond_timedwait(&s->wake, &s->lock, &until) == 0)
            ; /* a wakeup without stopping: wait out the period */
        if (!s->stopping && s->key != NULL) {
            pthread_mutex_unlock(&s->lock); /* the store's call may take a while */
            shared_reap(s);
            rf_sesskey_reload(s->key); /* a rotation, even with no stranger row met */
            pthread_mutex_lock(&s->lock);
        } else if (!s->stopping) {
            table_reap(s, &s->sess, now_s(s));
        }
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

int rf_sessions_reaper_start(struct rf_sessions *s, unsigned period_s)
{
    if (s->reaper_on || period_s == 0)
        return RF_ERR_INVALID;
    s->period_s = period_s;
    if (pthread_create(&s->reaper, NULL, reaper_main, s) != 0)
        return RF_ERR_NOMEM;
    s->reaper_on = 1;
    return 0;
}

unsigned rf_sessions_count(struct rf_sessions *s)
{
    if (s->key != NULL) {
        uint64_t live = 0;
        rf_store_sessions_live(s->st, now_s(s), &live);
        return live > UINT32_MAX ? UINT32_MAX : (unsigned)live;
    }
    unsigned n = 0;
    pthread_mutex_lock(&s->lock);
    for (uint32_t i = 0; i < s->sess.hw; i++)
        n += at(&s->sess, i)->used != 0;
    pthread_mutex_unlock(&s->lock);
    return n;
}

void rf_sessions_set_clock(struct rf_sessions *s, rf_sessions_clock_fn fn, void *arg)
{
    pthread_mutex_lock(&s->lock);
    s->clock = fn;
    s->clock_arg = arg;
    pthread_mutex_unlock(&s->lock);
}

int rf_sessions_holds(struct rf_sessions *s, const void *p, size_t n)
{
    int found = 0;
    pthread_mutex_lock(&s->lock);
    const uint8_t *base = s->slab;
    for (size_t i = 0; n > 0 && i + n <= s->slab_len && !found; i++)
        found = memcmp(base + i, p, n) == 0;
    pthread_mutex_unlock(&s->lock);
    return found;
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

/* ---------------------------------------------------------------- shared mode */

/* Sessions as rows of the store (session.h, rf_sessions_share). A request
 * reads its row every time (one primary-key read): a logout or expiry on
 * any process ends the session on every other at once, since no process
 * keeps a copy past the request that opened it. The secrets are opened
 * into the caller's view (locked memory) and nowhere else. */

int rf_sessions_share(struct rf_sessions *s, struct rf_store *st, struct rf_sesskey *key)
{
    if (st == NULL || key == NULL)
        return RF_ERR_INVALID;
    pthread_mutex_lock(&s->lock);
    s->st = st;
    s->key = key;
    s->max = s->sess.n;
    pthread_mutex_unlock(&s->lock);
    return 0;
}

int rf_sessions_shared(const struct rf_sessions *s)
{
    return s->key != NULL;
}

static int64_t min64(int64_t a, int64_t b)
{
    return a < b ? a : b;
}

static int shared_create(struct rf_sessions *s, const struct rf_source *src,
                         const struct rf_source_keys *keys, char token[RF_SESSION_TOKEN_B64])
{
    struct rf_session_row row;
    uint8_t hash[32];
    int rc = token_new(token, hash);
    struct rf_sesskey_plain *p = rf_secmem_alloc(sizeof(*p));
    if (rc == 0 && p == NULL)
        rc = RF_ERR_NOMEM;
    if (rc != 0)
        goto out;
    int64_t now = now_s(s);
    memset(p, 0, sizeof(*p));
    memset(&row, 0, sizeof(row));
    p->source_id = src->id;
    memcpy(p->case_id, src->case_id, RF_CASE_ID_LEN);
    memcpy(p->pk, keys->pk, 32);
    memcpy(p->sk, keys->sk, 32);
    randombytes_buf(p->csrf, sizeof(p->csrf));
    p->ends = now + RF_SESSION_LIFETIME_S;
    memcpy(row.id, hash, 32);
    rc = rf_sesskey_seal(s->key, hash, p, row.keyid, row.sealed, sizeof(row.sealed),
                         &row.sealed_len);
    row.until = min64(now + (int64_t)s->idle_s, p->ends);
    row.day = today(s);
    if (rc == 0)
        rc = rf_store_session_put(s->st, &row, now, s->max);
out:
    if (p != NULL)
        rf_secmem_free(p);
    if (rc != 0)
        sodium_memzero(token, RF_SESSION_TOKEN_B64);
    return rc == RF_ERR_EXISTS ? RF_ERR_BUSY : rc;
}

static int shared_get(struct rf_sessions *s, const uint8_t hash[32], struct rf_session_view *out)
{
    struct rf_session_row row;
    int64_t now = now_s(s);
    int rc = rf_store_session_get(s->st, hash, now, &row);
    if (rc != 0)
        return rc == RF_ERR_NOT_FOUND ? RF_ERR_NOT_FOUND : rc;
    struct rf_sesskey_plain *p = rf_secmem_alloc(sizeof(*p));
    if (p == NULL)
        return RF_ERR_NOMEM;
    rc = rf_sesskey_open(s->key, hash, row.keyid, row.sealed, row.sealed_len, p);
    if (rc == 0 && p->ends <= now) {
        rf_store_session_delete(s->st, hash); /* past its lifetime */
        rc = RF_ERR_NOT_FOUND;
    }
    if (rc == 0) {
        out->source_id = p->source_id;
        memcpy(out->case_id, p->case_id, sizeof(out->case_id));
        memcpy(out->pk, p->pk, 32);
        memcpy(out->sk, p->sk, 32);
        memcpy(out->csrf, p->csrf, 32);
        int same_day = row.day == today(s);
        out->sent_today_msgs = same_day ? row.msgs : 0;
        out->sent_today_bytes = same_day ? row.bytes : 0;
        /* the idle deadline, pushed forward once a tenth of it has passed
         * (not a write per request) */
        int64_t until = min64(now + (int64_t)s->idle_s, p->ends);
        if (until - row.until >= (int64_t)(s->idle_s / 10 + 1))
            rc = rf_store_session_touch(s->st, hash, now, until);
    }
    rf_secmem_free(p);
    return rc;
}

int rf_session_create(struct rf_sessions *s, const struct rf_source *src,
                      const struct rf_source_keys *keys, char token[RF_SESSION_TOKEN_B64])
{
    assert(!rf_committer_in_completion());
    if (s->key != NULL)
        return shared_create(s, src, keys, token);
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

/* The live session of token hash with its quota counters of today (reset
 * when its day has passed), or NULL; under s->lock. */
static struct sess *quota_entry(struct rf_sessions *s, const uint8_t hash[32])
{
    uint32_t i = table_find(s, &s->sess, hash, now_s(s));
    if (i == NIL)
        return NULL;
    struct sess *e = (struct sess *)at(&s->sess, i);
    uint32_t day = today(s);
    if (e->day != day) {
        e->day = day;
        e->msgs = 0;
        e->bytes = 0;
    }
    return e;
}

int rf_session_get(struct rf_sessions *s, const char *token, struct rf_session_view *out)
{
    assert(!rf_committer_in_completion());
    uint8_t hash[32];
    if (token_hash(token, hash) != 0)
        return RF_ERR_NOT_FOUND;
    if (s->key != NULL)
        return shared_get(s, hash, out);
    pthread_mutex_lock(&s->lock);
    struct sess *e = quota_entry(s, hash);
    if (e == NULL) {
        pthread_mutex_unlock(&s->lock);
        return RF_ERR_NOT_FOUND;
    }
    e->h.last = now_s(s);
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
    if (s->key != NULL) {
        if (rf_store_session_delete(s->st, hash) != 0)
            rf_log_warn("sessions: cannot delete a session row; it ends at its expiry");
        return;
    }
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
    if (s->key != NULL)
        return rf_store_session_count(s->st, hash, now_s(s), today(s), bytes, s->quota_msgs,
                                      s->quota_bytes);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct sess *e = quota_entry(s, hash);
    if (e == NULL) {
        rc = RF_ERR_NOT_FOUND;
        goto out;
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

int rf_session_count_refused(struct rf_sessions *s, const char *token, uint64_t bytes)
{
    uint8_t hash[32];
    if (token_hash(token, hash) != 0)
        return RF_ERR_NOT_FOUND;
    if (s->key != NULL)
        return rf_store_session_charge(s->st, hash, now_s(s), today(s), bytes, s->quota_bytes);
    int rc = 0;
    pthread_mutex_lock(&s->lock);
    struct sess *e = quota_entry(s, hash);
    if (e == NULL) {
        rc = RF_ERR_NOT_FOUND;
        goto out;
    }
    e->bytes = e->bytes >= s->quota_bytes || bytes >= s->quota_bytes - e->bytes ? s->quota_bytes
                                                                                : e->bytes + bytes;
out:
    pthread_mutex_unlock(&s->lock);
    return rc;
}

uint64_t rf_session_bytes_left(const struct rf_sessions *s, const struct rf_session_view *v)
{
    return v->sent_today_bytes >= s->quota_bytes ? 0 : s->quota_bytes - v->sent_today_bytes;
}

int rf_session_msgs_left(const struct rf_sessions *s, const struct rf_session_view *v)
{
    return v->sent_today_msgs < s->quota_msgs;
}

/* ---------------------------------------------------------------- pending codenames */

/* The associated data: PEND_AD and the bound cookie. */
static int pend_ad(uint8_t ad[PEND_AD_MAX], size_t *adlen, const uint8_t *bind, size_t bindlen)
{
    size_t n = sizeof(PEND_AD) - 1;
    if (bindlen > PEND_AD_MAX - n || (bind == NULL && bindlen > 0))
        return RF_ERR_LIMIT;
    memcpy(ad, PEND_AD, n);
    if (bindlen > 0)
        memcpy(ad + n, bind, bindlen);
    *adlen = n + bindlen;
    return 0;
}

/* Sealing and opening use the slab's scratch buffer under the lock (about
 * a microsecond of XChaCha20-Poly1305 for 265 bytes), so the plaintext is
 * only ever in locked, wiped memory and no request allocates any. */
int rf_pending_seal(struct rf_sessions *s, const char *codename, const uint8_t *bind,
                    size_t bindlen, char out[RF_PENDING_B64])
{
    uint8_t ad[PEND_AD_MAX], sealed[RF_PENDING_SEALED_LEN];
    size_t adlen = 0, len = strnlen(codename, RF_PENDING_CN_MAX + 1);
    if (len == 0 || len > RF_PENDING_CN_MAX)
        return RF_ERR_LIMIT;
    int rc = pend_ad(ad, &adlen, bind, bindlen);
    if (rc != 0)
        return rc;
    randombytes_buf(sealed, PEND_NONCE_BYTES);
    pthread_mutex_lock(&s->lock);
    uint8_t *plain = s->pend_buf;
    uint64_t expires = (uint64_t)(now_s(s) + RF_PENDING_LIFETIME_S);
    memset(plain, 0, RF_PENDING_PLAIN_LEN);
    plain[0] = 1;
    for (int i = 0; i < 8; i++)
        plain[1 + i] = (uint8_t)(expires >> (56 - 8 * i));
    plain[9] = (uint8_t)len;
    memcpy(plain + 10, codename, len);
    unsigned long long clen = 0;
    if (s->key != NULL) /* any process of the line opens it */
        rf_sesskey_pend_seal(s->key, sealed + PEND_NONCE_BYTES, plain, RF_PENDING_PLAIN_LEN, ad,
                             adlen, sealed);
    else
        crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + PEND_NONCE_BYTES, &clen, plain,
                                                   RF_PENDING_PLAIN_LEN, ad, adlen, NULL, sealed,
                                                   s->pend_key);
    sodium_memzero(plain, RF_PENDING_PLAIN_LEN);
    pthread_mutex_unlock(&s->lock);
    return rf_b64_encode(out, RF_PENDING_B64, sealed, sizeof(sealed));
}

int rf_pending_parse(const uint8_t *plain, size_t n, int64_t now, char *out, size_t outcap)
{
    struct rf_reader r;
    uint8_t v = 0, len = 0;
    uint64_t expires = 0;
    const uint8_t *cn = NULL, *pad = NULL;
    rf_reader_init(&r, plain, n);
    int rc = rf_get_u8(&r, &v);
    if (rc == 0 && v != 1)
        rc = RF_ERR_VERSION;
    rc = rc ? rc : rf_get_u64(&r, &expires);
    rc = rc ? rc : rf_get_u8(&r, &len);
    rc = rc ? rc : rf_get_ptr(&r, &cn, len);
    rc = rc ? rc : rf_get_ptr(&r, &pad, RF_PENDING_CN_MAX - (size_t)len);
    rc = rc ? rc : rf_reader_expect_end(&r);
    if (rc != 0)
        return RF_ERR_FORMAT;
    if (len == 0 || memchr(cn, 0, len) != NULL)
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < RF_PENDING_CN_MAX - (size_t)len; i++)
        if (pad[i] != 0)
            return RF_ERR_FORMAT;
    /* expired, or from a clock far ahead of ours (never made by this process) */
    if (now < 0 || expires <= (uint64_t)now || expires - (uint64_t)now > RF_PENDING_LIFETIME_S)
        return RF_ERR_NOT_FOUND;
    if ((size_t)len + 1 > outcap)
        return RF_ERR_LIMIT;
    memcpy(out, cn, len);
    out[len] = '\0';
    return 0;
}

int rf_pending_open(struct rf_sessions *s, const char *text, size_t len, const uint8_t *bind,
                    size_t bindlen, char *out, size_t outcap)
{
    uint8_t ad[PEND_AD_MAX], sealed[RF_PENDING_SEALED_LEN];
    size_t adlen = 0, got = 0;
    if (text == NULL || len != RF_PENDING_B64 - 1 || outcap < RF_PENDING_CN_MAX + 1)
        return RF_ERR_NOT_FOUND;
    if (rf_b64_decode(sealed, sizeof(sealed), &got, text, len) != 0 || got != sizeof(sealed))
        return RF_ERR_NOT_FOUND;
    if (pend_ad(ad, &adlen, bind, bindlen) != 0)
        return RF_ERR_NOT_FOUND;
    pthread_mutex_lock(&s->lock);
    uint8_t *plain = s->pend_buf;
    unsigned long long plen = RF_PENDING_PLAIN_LEN;
    int rc = s->key != NULL
                 ? rf_sesskey_pend_open(s->key, plain, sealed + PEND_NONCE_BYTES,
                                        sizeof(sealed) - PEND_NONCE_BYTES, ad, adlen, sealed)
                 : crypto_aead_xchacha20poly1305_ietf_decrypt(
                       plain, &plen, NULL, sealed + PEND_NONCE_BYTES,
                       sizeof(sealed) - PEND_NONCE_BYTES, ad, adlen, sealed, s->pend_key);
    if (rc == 0 && plen == RF_PENDING_PLAIN_LEN)
        rc = rf_pending_parse(plain, (size_t)plen, now_s(s), out, outcap);
    else
        rc = RF_ERR_NOT_FOUND;
    sodium_memzero(plain, RF_PENDING_PLAIN_LEN);
    pthread_mutex_unlock(&s->lock);
    return rc == 0 ? 0 : RF_ERR_NOT_FOUND;
}

void rf_enroll_token_hash(uint8_t out[32], const char *token, size_t len)
{
    crypto_generichash(out, 32, (const uint8_t *)token, len, NULL, 0);
}
