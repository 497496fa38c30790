/*
 * lckpt.c - the client's checkpoint chain and its use in a digest pass (see
 * lckpt.h, docs/protocol.md 13).
 *
 * The saved state, blob RF_LCKPT_BLOB (49 bytes, big-endian, plain data: a
 * hash chain over events every member can read, nothing else):
 *   chain[32] | last_seq u64 | count u64 | stopped u8
 * A blob of another length is a chain stopped for good (damaged).
 *
 * Only objects of kind 4 matter: the others neither extend nor hold up the
 * chain, so a digest pass may take objects of other kinds in any order
 * (case keys before the events they open) and in passes of their own.
 */
#include "client/lckpt.h"
#include "client/local.h"
#include "lib/err.h"
#include "lib/evrow.h"

#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#define STATE_BYTES (32 + 8 + 8 + 1)
#define KIND_EVENT 4 /* the kind checkpoints version 1 cover */

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)(v & 0xff);
}

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

int rf_lckpt_load(struct rf_cache *c, struct rf_lckpt_state *s)
{
    struct rf_buf b;
    memset(s, 0, sizeof(*s));
    rf_ckpt_chain_init(&s->ch);
    rf_buf_init(&b, 256);
    int rc = rf_cache_blob_get(c, RF_LCKPT_BLOB, &b);
    if (rc == RF_ERR_NOT_FOUND) {
        rc = 0;
    } else if (rc == 0 && b.len == STATE_BYTES) {
        memcpy(s->ch.chain, b.data, 32);
        s->ch.last_seq = get64(b.data + 32);
        s->ch.count = get64(b.data + 40);
        s->stopped = b.data[48] != 0;
    } else if (rc == 0) {
        s->stopped = 1; /* damaged: never checkpoint on it */
    }
    rf_buf_free(&b);
    return rc;
}

int rf_lckpt_save(struct rf_cache *c, const struct rf_lckpt_state *s)
{
    uint8_t b[STATE_BYTES];
    memcpy(b, s->ch.chain, 32);
    put64(b + 32, s->ch.last_seq);
    put64(b + 40, s->ch.count);
    b[48] = (uint8_t)(s->stopped != 0);
    return rf_cache_blob_set(c, RF_LCKPT_BLOB, b, sizeof(b));
}

int rf_lckpt_begin(struct rf_lckpt_run *r, struct rf_cache *c, const struct rf_ckpt *use,
                   const struct rf_cobj *objs, size_t n)
{
    int64_t held = 0, mine = 0, last = 0;
    memset(r, 0, sizeof(*r));
    int rc = rf_lckpt_load(c, &r->st);
    if (rc != 0 || r->st.stopped) {
        r->paused = 1;
        return rc;
    }
    /* the pass must hold every event after the chain's end up to its last
     * one: an event the chain never took (left for later, or digested in
     * a pass without it) holds it up here (lckpt.h) */
    int64_t end = (int64_t)r->st.ch.last_seq;
    for (size_t i = 0; i < n; i++)
        if (objs[i].kind == KIND_EVENT && objs[i].seq > end) {
            mine++;
            last = objs[i].seq > last ? objs[i].seq : last;
        }
    if (mine == 0)
        return 0; /* nothing for the chain in this pass */
    if ((rc = rf_cache_kind_count(c, KIND_EVENT, end, last, &held)) != 0)
        return rc;
    r->paused = held != mine;
    if (use && !r->paused && r->st.ch.last_seq < use->last_seq)
        r->use = use;
    return 0;
}

int rf_lckpt_skip_sig(const struct rf_lckpt_run *r, uint8_t kind, int64_t seq)
{
    return r->use && !r->compared && kind == KIND_EVENT && (uint64_t)seq > r->st.ch.last_seq &&
           (uint64_t)seq <= r->use->last_seq;
}

static void compare(struct rf_lckpt_run *r)
{
    r->compared = 1;
    if (r->paused || rf_ckpt_compare(r->use, &r->st.ch, &r->diff) != 0)
        r->mismatch = 1;
}

void rf_lckpt_obj(struct rf_lckpt_run *r, int64_t seq, uint8_t kind, const char *case_id,
                  enum rf_lckpt_obj what, const uint8_t hash[32])
{
    if (kind != KIND_EVENT)
        return;
    if (r->use && !r->compared && (uint64_t)seq > r->use->last_seq)
        compare(r); /* the pass went past the checkpoint */
    if (r->paused || (uint64_t)seq <= r->st.ch.last_seq)
        return; /* (an event digested again: the chain took it before) */
    int by_ckpt = rf_lckpt_skip_sig(r, kind, seq);
    if (what == RF_LCKPT_VERIFIED &&
        rf_ckpt_chain_add_hash(&r->st.ch, (uint64_t)seq, kind, case_id, hash) == 0) {
        r->by_ckpt += by_ckpt;
        return;
    }
    r->paused = 1;
    if (what != RF_LCKPT_LATER)
        r->st.stopped = 1;
    if (by_ckpt) { /* an event below the checkpoint this pass could not take */
        r->compared = 1;
        r->mismatch = 1;
        r->diff = RF_CKPT_SAME;
    }
}

int rf_lckpt_end(struct rf_lckpt_run *r, struct rf_cache *c)
{
    if (r->use && !r->compared)
        compare(r); /* the objects ended before last_seq: never the same */
    if (r->mismatch)
        return 0;
    return rf_lckpt_save(c, &r->st);
}

/* ---- catching up from the digest rows ---- */

struct walk {
    struct rf_local *l;
    struct rf_lckpt_state st;
    struct rf_buf plain; /* secure: a digest row's plaintext */
};

/* The hash a verified event's digest row keeps (lib/evrow.h; local.c "h"
 * in a JSON row from before cache version 7): 0, or 1 for
 * a row that is not a verified event, or -1 for one without the hash (a
 * row from before checkpoints: the chain waits for it to be digested
 * again). */
static int row_hash(struct walk *w, int64_t seq, const uint8_t *blob, size_t n, uint8_t h[32])
{
    char ad[48];
    json_error_t e;
    size_t got = 0;
    snprintf(ad, sizeof(ad), "digest:%lld", (long long)seq);
    rf_buf_reset(&w->plain);
    if (rf_local_open(w->l, ad, blob, n, &w->plain) != 0)
        return 1;
    if (rf_evrow_is(w->plain.data, w->plain.len)) { /* a verified event, packed */
        struct rf_evrow r;
        int rc = rf_evrow_parse(&r, w->plain.data, w->plain.len) == 0 ? 0 : 1;
        if (rc == 0)
            memcpy(h, r.hash, 32);
        rf_buf_reset(&w->plain);
        return rc;
    }
    json_t *d = json_loadb((const char *)w->plain.data, w->plain.len, 0, &e);
    rf_buf_reset(&w->plain);
    const char *k = json_string_value(json_object_get(d, "k"));
    const char *hx = json_string_value(json_object_get(d, "h"));
    int rc = 1;
    if (k && strcmp(k, "event") == 0 && json_object_get(d, "ev") && !json_object_get(d, "error"))
        rc = hx && sodium_hex2bin(h, 32, hx, strlen(hx), NULL, &got, NULL) == 0 && got == 32 ? 0
                                                                                             : -1;
    json_decref(d);
    return rc;
}

static int walk_one(void *ctx, int64_t seq, const char *case_id, uint8_t kind, int has,
                    int readable, const uint8_t *blob, size_t n)
{
    struct walk *w = ctx;
    uint8_t h[32];
    if (!has)
        return 1; /* not digested yet: the next pass takes it */
    int r = readable && blob ? row_hash(w, seq, blob, n, h) : 1;
    if (r < 0)
        return 1;
    if (r == 0 && rf_ckpt_chain_add_hash(&w->st.ch, (uint64_t)seq, kind, case_id, h) == 0)
        return 0;
    w->st.stopped = 1;
    return 1;
}

int rf_lckpt_walk(struct rf_local *l, struct rf_cache *c)
{
    struct walk w = {.l = l};
    int rc = rf_lckpt_load(c, &w.st);
    if (rc != 0 || w.st.stopped)
        return rc;
    uint64_t before = w.st.ch.last_seq;
    rf_buf_init_secure(&w.plain, 8 * 1024 * 1024);
    rc = rf_cache_begin(c);
    if (rc == 0)
        rc = rf_cache_digest_walk(c, KIND_EVENT, (int64_t)before, walk_one, &w);
    if (rc == 0 && (w.st.ch.last_seq != before || w.st.stopped))
        rc = rf_lckpt_save(c, &w.st);
    if (rc == 0)
        rc = rf_cache_commit(c);
    else
        rf_cache_rollback(c);
    rf_buf_free(&w.plain);
    return rc;
}

int rf_lckpt_prepare(struct rf_cache *c, int *reset)
{
    struct rf_buf b;
    int64_t mark = 0;
    *reset = 0;
    rf_buf_init(&b, 256);
    int rc = rf_cache_blob_get(c, RF_LCKPT_BLOB, &b);
    rf_buf_free(&b);
    if (rc != RF_ERR_NOT_FOUND)
        return rc; /* a chain is kept already (or an error) */
    rc = rf_cache_meta_get(c, "digested", &mark);
    if (rc != 0 || mark == 0)
        return rc; /* nothing digested yet: the next pass starts the chain */
    rc = rf_cache_begin(c);
    if (rc == 0)
        rc = rf_cache_digests_reset(c);
    if (rc == 0)
        rc = rf_cache_commit(c);
    else
        rf_cache_rollback(c);
    *reset = rc == 0;
    return rc;
}
