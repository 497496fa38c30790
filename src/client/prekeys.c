/*
 * prekeys.c - envelopes' content keys opened ahead of the digest
 * (prekeys.h).
 *
 * The writer of a sync's pages offers each stored object: an envelope's
 * header (ciphertext, not secret) is copied into the pending queue, which
 * the opener thread takes whole under the lock and works through alone.
 * Keys go, in the order offered (seq order), into secure chunks of
 * CHUNK_KEYS keys, their seqs into a plain array searched by bisection.
 */
#include "client/prekeys.h"
#include "lib/buf.h"
#include "lib/casekey.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#define QUEUE_BYTES ((size_t)8 << 20) /* headers waiting: offers past it are dropped */
#define CHUNK_KEYS 16384              /* keys a secure chunk holds (512 KiB) */
#define OPENER_NICE 10                /* the download's threads come first */

struct rf_prekeys {
    const struct rf_staff_keys *k;
    uint8_t keyid[RF_ENV_KEYID_BYTES];
    pthread_t th;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;              /* under mu */
    int drain;             /* under mu: the queue opened before stopping */
    int64_t last;          /* under mu: the last seq taken (seqs only grow) */
    struct rf_buf pending; /* under mu: seq i64 | len u32 | header, ... */
    struct rf_buf work;    /* the opener's: the batch it took */
    int64_t *seqs;         /* the opener's until stopped, then read-only */
    size_t n, cap;
    uint8_t **chunks;
    size_t nchunks;
};

/* Whether the header at h (len bytes, parsed) has a stanza for keyid. */
static int for_us(const struct rf_prekeys *p, const uint8_t *h, size_t nrecip)
{
    for (size_t i = 0; i < nrecip; i++)
        if (memcmp(h + 8 + i * RF_ENV_STANZA_BYTES, p->keyid, RF_ENV_KEYID_BYTES) == 0)
            return 1;
    return 0;
}

void rf_prekeys_offer(struct rf_prekeys *p, int64_t seq, const uint8_t *ct, size_t n)
{
    struct rf_env_header h;
    if (!p || rf_casekey_event_version(ct, n) == 2 ||
        rf_envelope_header_parse(&h, NULL, 0, ct, n) != 0 || !for_us(p, ct, h.nrecip))
        return;
    pthread_mutex_lock(&p->mu);
    size_t at = p->pending.len;
    if (!p->stop && seq > p->last && at + 12 + h.header_len <= QUEUE_BYTES) {
        if (rf_buf_put_u64(&p->pending, (uint64_t)seq) == 0 &&
            rf_buf_put_u32(&p->pending, (uint32_t)h.header_len) == 0 &&
            rf_buf_put(&p->pending, ct, h.header_len) == 0) {
            p->last = seq;
            pthread_cond_signal(&p->cv);
        } else {
            p->pending.len = at; /* out of memory: not offered */
        }
    }
    pthread_mutex_unlock(&p->mu);
}

/* Room for one more key: its place in the chunks, or NULL. */
static uint8_t *key_slot(struct rf_prekeys *p)
{
    if (rf_array_grow(&p->seqs, &p->cap, p->n + 1, sizeof(*p->seqs), CHUNK_KEYS) != 0)
        return NULL;
    size_t c = p->n / CHUNK_KEYS;
    if (c == p->nchunks) {
        uint8_t **ch = realloc(p->chunks, (c + 1) * sizeof(*ch));
        if (!ch)
            return NULL;
        p->chunks = ch;
        if ((ch[c] = sodium_malloc((size_t)CHUNK_KEYS * 32)) == NULL)
            return NULL;
        p->nchunks++;
    }
    return p->chunks[c] + (p->n % CHUNK_KEYS) * 32;
}

static void open_batch(struct rf_prekeys *p)
{
    struct rf_reader r;
    rf_reader_init(&r, p->work.data, p->work.len);
    while (rf_reader_left(&r) > 0) {
        uint64_t seq = 0;
        uint32_t len = 0;
        const uint8_t *hdr;
        if (rf_get_u64(&r, &seq) != 0 || rf_get_u32(&r, &len) != 0 ||
            rf_get_ptr(&r, &hdr, len) != 0)
            break;
        pthread_mutex_lock(&p->mu);
        int stop = p->stop && !p->drain;
        pthread_mutex_unlock(&p->mu);
        uint8_t *key = stop ? NULL : key_slot(p);
        if (!key)
            break; /* stopped, or out of memory: the digest opens the rest */
        if (rf_envelope_content_key(key, hdr, len, p->k->box_pk, p->k->box_sk) == 0)
            p->seqs[p->n++] = (int64_t)seq;
    }
    rf_buf_reset(&p->work);
}

static void *opener(void *arg)
{
    struct rf_prekeys *p = arg;
    /* only on a core nothing else wants (else at a lower priority) */
    struct sched_param sp = {0};
    if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &sp) != 0)
        (void)setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), OPENER_NICE);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->pending.len == 0)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->stop && !(p->drain && p->pending.len > 0))
            break;
        struct rf_buf t = p->work; /* the batch taken whole: the writer goes on */
        p->work = p->pending;
        p->pending = t;
        pthread_mutex_unlock(&p->mu);
        open_batch(p);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    rf_envelope_thread_done();
    return NULL;
}

int rf_prekeys_start(struct rf_prekeys **out, const struct rf_staff_keys *k)
{
    struct rf_prekeys *p = calloc(1, sizeof(*p));
    *out = NULL;
    if (!p)
        return RF_ERR_NOMEM;
    p->k = k;
    rf_keyid(p->keyid, k->box_pk);
    rf_buf_init(&p->pending, QUEUE_BYTES);
    rf_buf_init(&p->work, QUEUE_BYTES);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    if (pthread_create(&p->th, NULL, opener, p) != 0) {
        rf_prekeys_free(p);
        return RF_ERR_NOMEM;
    }
    p->running = 1;
    *out = p;
    return 0;
}

static void stop(struct rf_prekeys *p, int drain)
{
    if (!p || !p->running)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    p->drain = drain;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->th, NULL);
    p->running = 0;
}

void rf_prekeys_stop(struct rf_prekeys *p)
{
    stop(p, 0);
}

void rf_prekeys_drain(struct rf_prekeys *p)
{
    stop(p, 1);
}

const uint8_t *rf_prekeys_find(const struct rf_prekeys *p, int64_t seq)
{
    if (!p || p->running)
        return NULL;
    size_t lo = 0, hi = p->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (p->seqs[mid] < seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == p->n || p->seqs[lo] != seq)
        return NULL;
    return p->chunks[lo / CHUNK_KEYS] + (lo % CHUNK_KEYS) * 32;
}

size_t rf_prekeys_count(const struct rf_prekeys *p)
{
    return p ? p->n : 0;
}

void rf_prekeys_free(struct rf_prekeys *p)
{
    if (!p)
        return;
    rf_prekeys_stop(p);
    for (size_t i = 0; i < p->nchunks; i++)
        sodium_free(p->chunks[i]); /* wipes */
    free(p->chunks);
    free(p->seqs);
    rf_buf_free(&p->pending);
    rf_buf_free(&p->work);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p);
}
