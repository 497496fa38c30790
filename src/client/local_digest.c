/*
 * local_digest.c - digesting new objects into the local case database
 * (local.h rf_local_update): each object opened and, an event, verified
 * (its signature, or the checkpoint's chain: lckpt.h), its digest row
 * sealed and written; then the summaries of the cases that changed
 * (local_refresh.c) and the "digested" mark. Split out of local.c, which
 * keeps the keys, the rows' sealing and the building of a case.
 *
 * Digest rows (plaintext): a verified event's packed (lib/evrow.h, cache
 * version 7); the others JSON: {"k":"message","type","text","need",
 * "urgency","answers"}, {"k":"reply","author","text"}, {"k":"file"},
 * {"k":"event","error":".."} (refused: not counted), {"k":"broken",
 * "error"}, {"k":"casekey",..} (local_casekey.c), {"k":"other"}.
 */
#include "client/local_rows.h"
#include "client/prekeys.h"
#include "client/cmd.h"
#include "client/lckpt.h"
#include "client/out.h"
#include "client/replysig.h"
#include "lib/casekey.h"
#include "lib/crew.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"

#include <pthread.h>
#include <sched.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_MAX RF_LOCAL_PLAIN_MAX
#define ROW_MAX RF_LOCAL_ROW_MAX

/* ---- one object ---- */

static int to_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* The intake answer with this id (borrowed), or NULL. */
static json_t *answer(json_t *msg, const char *id)
{
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(msg, "answers"), i, a)
    {
        const char *aid = json_string_value(json_object_get(a, "id"));
        if (aid && strcmp(aid, id) == 0)
            return json_object_get(a, "value");
    }
    return NULL;
}

/* Whether the signed event p names a roster version this client has not
 * verified yet (published while it synced): retried at the next sync. */
static int names_future_roster(const struct rf_local *l, const struct rf_buf *p)
{
    json_error_t e;
    if (p->len <= RF_EVENT_HEADER_BYTES)
        return 0;
    json_t *j = json_loadb((const char *)p->data + RF_EVENT_HEADER_BYTES,
                           p->len - RF_EVENT_HEADER_BYTES, 0, &e);
    json_t *v = json_object_get(j, "roster");
    int future = json_is_integer(v) && json_integer_value(v) > (json_int_t)l->nrosters &&
                 json_integer_value(v) <= (json_int_t)l->nrosters + 16;
    json_decref(j);
    return future;
}

/* A reply's digest: its text, and an author only from a verified signature
 * and roster (replysig.h); the name inside a version 1 reply is ignored. */
static json_t *reply_digest(struct rf_local *l, const struct rf_cobj *o, const struct rf_buf *plain)
{
    json_t *r = NULL;
    if (rf_replysig_read(&r, plain->data, plain->len, o->case_id,
                         (const struct rf_roster *const *)l->rosters, l->nrosters) != 0)
        return json_pack("{ssss}", "k", "broken", "error", "not a reply");
    json_t *d = json_pack("{ssssss}", "k", "reply", "author",
                          rf_local_str_or(json_object_get(r, "author"), ""), "text",
                          rf_local_str_or(json_object_get(r, "text"), ""));
    json_decref(r);
    return d;
}

/* What a digest says about one opened object; NULL with *skip set for an
 * event that names a roster not verified yet (looked at again after the
 * next roster check). Such an event never verifies (its roster is past
 * those known), so it is looked for only when the verify fails: one JSON
 * parse of every event saved. */
static json_t *digest_of(struct rf_local *l, const struct rf_cobj *o, uint8_t kind,
                         const struct rf_buf *plain, int nosig, int *skip, uint8_t hash[32],
                         int *verified, struct rf_buf *packed)
{
    json_error_t e;
    if (kind == RF_KIND_EVENT) {
        struct rf_ev ev;
        int rc = rf_state_event_check(&ev, plain->data, plain->len, o->case_id,
                                      (const struct rf_roster *const *)l->rosters, l->nrosters,
                                      o->roster, !nosig);
        if (rc != 0 && names_future_roster(l, plain)) {
            *skip = 1;
            return NULL;
        }
        if (rc != 0)
            return json_pack(
                "{ssss}", "k", "event", "error",
                rc == RF_ERR_ROSTER ? "the author was not on every roster version from the one "
                                      "it names to the one in force when the server stored it"
                : rc == RF_ERR_PROTOCOL
                    ? "the server claims it was stored under a roster older than the one it "
                      "names, or one this computer has not verified"
                : rc == RF_ERR_SIGNATURE ? "bad signature or moved from another case"
                                         : "malformed event");
        ev.seq = o->seq;
        /* the signed bytes' hash (checkpoint.h): what this client verified;
         * the row packed (lib/evrow.h), NULL returned */
        rf_ckpt_obj_hash(hash, plain->data, plain->len);
        *verified = rf_local_ev_pack(packed, &ev, hash) == 0;
        rf_ev_clear(&ev);
        return NULL;
    }
    if (kind == RF_KIND_REPLY)
        return reply_digest(l, o, plain);
    if (kind != RF_KIND_MESSAGE)
        return json_pack("{ss}", "k", "other");
    json_t *m = json_loadb((const char *)plain->data, plain->len, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(m)) {
        json_decref(m);
        return json_pack("{ssss}", "k", "broken", "error", "not a JSON object");
    }
    json_t *d;
    {
        const char *type = rf_local_str_or(json_object_get(m, "type"), "message");
        d = json_pack("{ssssss}", "k", "message", "type", type, "text",
                      rf_local_str_or(json_object_get(m, "text"), ""));
        if (d && strcmp(type, "intake") == 0) {
            json_t *need = answer(m, "need"), *urg = answer(m, "urgency");
            if (need)
                json_object_set(d, "need", need);
            if (urg)
                json_object_set(d, "urgency", urg);
            /* answers' values are searchable too */
            json_t *all = json_array();
            size_t i;
            json_t *a;
            json_array_foreach(json_object_get(m, "answers"), i, a)
            {
                json_t *v = json_object_get(a, "value");
                if (json_is_string(v))
                    json_array_append(all, v);
                size_t j;
                json_t *x;
                json_array_foreach(v, j, x)
                {
                    if (json_is_string(x))
                        json_array_append(all, x);
                }
            }
            json_object_set_new(d, "answers", all);
        }
    }
    json_decref(m);
    (void)o;
    return d;
}

/* ---- digesting new objects, on every core ----
 *
 * An object's digest is made in two halves. The first, on the calling
 * thread, reads what SQLite holds: its ciphertext and, for an object sealed
 * before this caseworker joined, the grant that opens it (rf_thread_pick).
 * The second, which any thread may run, opens the envelope, verifies the
 * event's signature and roster claims, and seals the digest row: that is
 * nearly all of the work (one X25519 open and one Ed25519 verify per
 * event). The rows are then written on the calling thread, in seq order, in
 * the caller's transaction: the database is the same as when one thread
 * does it all. Each digester keeps one secure plaintext buffer for all its
 * objects (no locked memory allocated per object), wiped between them. */
#define DIGEST_BATCH_MAX 1024
size_t rf_local_digest_batch; /* tests: a smaller batch (0: DIGEST_BATCH_MAX) */
#define DIGEST_BATCH                                                                               \
    (rf_local_digest_batch > 0 && rf_local_digest_batch < DIGEST_BATCH_MAX ? rf_local_digest_batch \
                                                                           : DIGEST_BATCH_MAX)
#define DIGEST_BATCH_BYTES (64u * 1024 * 1024)
#define DIGESTERS_MAX 16

int rf_local_digest_threads;

enum { PRE_OPEN, PRE_FILE, PRE_LARGE, PRE_FAILED };

struct dslot {
    const struct rf_cobj *o;
    int pre, prerc;
    uint8_t grant[RF_GRANT_BYTES];
    int use_grant;
    struct rf_buf ct;
    int nosig; /* an event checked by the checkpoint's chain, not its signature */
    int v2;    /* an event version 2: ks holds its keys' sealed rows */
    int moved; /* ... naming a key of another case */
    struct rf_buf ks;
    /* results */
    int rc;         /* fatal (out of memory): the update stops */
    int skip;       /* names a roster not verified yet: no digest now */
    int notrecip;   /* not sealed to this caseworker: an unreadable row */
    int unverified; /* a refused event */
    int verified;   /* an event verified: hash is its signed bytes' (lckpt.h) */
    uint8_t hash[32];
    struct rf_buf row;
    int ckey; /* a CASEKEY that checked out: ck and its sealed row krow to store */
    struct rf_ccasekey ck;
    struct rf_buf krow;
};

struct dpool {
    struct rf_local *l;
    struct dslot *slots;
    size_t n, next; /* next under mu */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    unsigned gen; /* a new batch handed out (under mu) */
    int nworkers; /* the digesters on threads of their own */
    int finished; /* ... that finished the batch of gen */
    int stop;
};

struct digester {
    struct dpool *p;
    struct rf_buf plain;  /* secure, reused */
    struct rf_buf packed; /* secure, reused: a verified event's row */
    struct rf_ckeys keys; /* secure, reused: an event v2's keys */
};

/* The first half, on the thread that owns the database. */
static void digest_read(struct rf_local *l, struct dslot *sl)
{
    const struct rf_cobj *o = sl->o;
    rf_buf_reset(&sl->ct);
    sl->use_grant = 0;
    sl->prerc = 0;
    /* decided here, on this thread: the run moves on as earlier batches are
     * written, meanwhile (their seqs are all below this one's, so the
     * answer is the one it would be once they are written) */
    sl->nosig = rf_lckpt_skip_sig(&l->run, o->kind, o->seq);
    if (o->kind == RF_KIND_FILE) {
        sl->pre = PRE_FILE; /* files are opened when saved (refuge files); nothing to index */
        return;
    }
    if (o->size > PLAIN_MAX * 2) {
        sl->pre = PRE_LARGE;
        return;
    }
    sl->pre = PRE_OPEN;
    int rc = rf_cache_object_stream_at(l->c, o, to_buf, &sl->ct);
    sl->v2 = rc == 0 && o->kind == RF_KIND_EVENT && sl->ct.len >= 3 &&
             memcmp(sl->ct.data, "RFE", 3) == 0;
    if (sl->v2) /* its case's keys with its key id, opened by the digester */
        rc = rf_local_ev2_keys_read(l, o->case_id, &sl->ct, &sl->ks, &sl->moved);
    else if (rc == 0)
        rc = rf_thread_pick(l->c, l->k, o->seq, sl->grant, &sl->use_grant);
    if (rc != 0) {
        sl->pre = PRE_FAILED;
        sl->prerc = rc;
    }
}

/* The second half: any thread. */
static void digest_work(struct rf_local *l, struct dslot *sl, struct rf_buf *plain,
                        struct rf_buf *packed, struct rf_ckeys *keys)
{
    const struct rf_cobj *o = sl->o;
    char ad[48];
    uint8_t kind = 0;
    json_t *d = NULL;
    int rc = sl->prerc;
    sl->rc = sl->skip = sl->notrecip = sl->unverified = sl->verified = sl->ckey = 0;
    rf_buf_reset(&sl->row);
    if (sl->pre == PRE_FILE) {
        d = json_pack("{ss}", "k", "file");
        goto seal;
    }
    if (sl->pre == PRE_LARGE) {
        d = json_pack("{ssss}", "k", "broken", "error", "too large");
        goto seal;
    }
    rf_buf_reset(plain);
    if (sl->pre == PRE_OPEN && sl->v2) { /* a moved one: refused below, as a v1 one is */
        rc = sl->moved
                 ? RF_ERR_DECRYPT
                 : rf_local_ev2_open(l, o->case_id, &sl->ks, keys, sl->ct.data, sl->ct.len, plain);
        kind = RF_KIND_EVENT;
    } else if (sl->pre == PRE_OPEN) {
        /* with the key opened ahead (prekeys.h) if there is one; if it
         * does not open, as always */
        const uint8_t *key = sl->use_grant ? NULL : rf_prekeys_find(l->prekeys, o->seq);
        for (int pass = key ? 0 : 1; pass < 2; pass++) {
            struct rf_open *op = NULL;
            rf_buf_reset(plain);
            rc = pass == 0 ? rf_open_new_key(&op, key, to_buf, plain)
                 : sl->use_grant
                     ? rf_open_new_grant(&op, sl->grant, l->k->box_pk, l->k->box_sk, to_buf, plain)
                     : rf_open_new(&op, l->k->box_pk, l->k->box_sk, to_buf, plain);
            if (rc == 0 && sl->ct.len > 0)
                rc = rf_open_write(op, sl->ct.data, sl->ct.len);
            if (rc == 0)
                rc = rf_open_finish(op);
            if (rc == 0)
                kind = rf_open_kind(op);
            rf_open_free(op);
            if (rc == 0)
                break;
        }
    }
    if (rc == RF_ERR_NOT_RECIPIENT) {
        sl->notrecip = 1;
        rf_buf_reset(plain);
        return;
    }
    if (rc != 0 && sl->v2) /* the case's key does not open it: counted as a refused event */
        d = json_pack("{ssss}", "k", "event", "error",
                      "does not open with the case's key: moved from another case or altered");
    else if (rc != 0)
        d = json_pack("{ssss}", "k", "broken", "error", rf_strerror(rc));
    else if (kind == RF_KIND_CASEKEY)
        d = rf_local_casekey_digest(l, o, plain, &sl->ck, &sl->krow, &sl->ckey);
    else
        d = digest_of(l, o, kind, plain, sl->nosig, &sl->skip, sl->hash, &sl->verified, packed);
    rf_buf_reset(plain);
    if (sl->skip)
        return;               /* no digest yet: looked at again after the next roster check */
    if (!d && sl->verified) { /* a verified event: its packed row */
        snprintf(ad, sizeof(ad), "digest:%lld", (long long)o->seq);
        sl->rc = rf_local_seal(l, ad, packed->data, packed->len, &sl->row);
        rf_buf_reset(packed);
        return;
    }
    rf_buf_reset(packed);
seal:
    if (!d) {
        sl->rc = RF_ERR_NOMEM;
        return;
    }
    sl->unverified = json_object_get(d, "error") &&
                     strcmp(rf_local_str_or(json_object_get(d, "k"), ""), "event") == 0;
    snprintf(ad, sizeof(ad), "digest:%lld", (long long)o->seq);
    sl->rc = rf_local_seal_json(l, ad, d, &sl->row);
    json_decref(d);
}

/* Digests the batch's objects not claimed yet (a round of the crew, or
 * the leader's share). */
static void digester_run(void *arg)
{
    struct digester *w = arg;
    struct dpool *p = w->p;
    for (;;) {
        pthread_mutex_lock(&p->mu);
        size_t i = p->next < p->n ? p->next++ : p->n;
        pthread_mutex_unlock(&p->mu);
        if (i >= p->n)
            break;
        digest_work(p->l, &p->slots[i], &w->plain, &w->packed, &w->keys);
    }
}

static void digester_end(void *arg)
{
    (void)arg;
    rf_envelope_thread_done(); /* its kept open state (envelope.c) */
}

static int digest_cpus(void)
{
    cpu_set_t set;
    int n = 1;
    if (sched_getaffinity(0, sizeof(set), &set) == 0)
        n = CPU_COUNT(&set);
    return n < 1 ? 1 : n > DIGESTERS_MAX ? DIGESTERS_MAX : n;
}

/* Reads the first half of objs[first..] into slots: *k objects, at most
 * DIGEST_BATCH and DIGEST_BATCH_BYTES of ciphertext held at once. */
static void read_batch(struct rf_local *l, const struct rf_cobj *objs, size_t n, size_t first,
                       struct dslot *slots, size_t *k)
{
    size_t bytes = 0;
    *k = 0;
    while (first + *k < n && *k < DIGEST_BATCH && bytes < DIGEST_BATCH_BYTES) {
        slots[*k].o = &objs[first + *k];
        digest_read(l, &slots[*k]);
        bytes += slots[*k].ct.len;
        (*k)++;
    }
}

/* Writes a digested batch into the open transaction, in order, on the
 * thread that owns the database. */
static int write_batch(struct rf_local *l, struct dslot *batch, size_t k, unsigned *unverified)
{
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < k; i++) {
        struct dslot *sl = &batch[i];
        rc = sl->rc;
        if (rc == 0)
            rf_lckpt_obj(&l->run, sl->o->seq, sl->o->kind, sl->o->case_id,
                         sl->o->kind != RF_KIND_EVENT ? RF_LCKPT_OTHER
                         : sl->skip                   ? RF_LCKPT_LATER
                         : sl->verified               ? RF_LCKPT_VERIFIED
                                                      : RF_LCKPT_FAILED,
                         sl->hash);
        if (rc == 0 && sl->skip && sl->o->seq < l->first_left)
            l->first_left = sl->o->seq;
        if (rc != 0 || sl->skip)
            continue;
        if (sl->notrecip) {
            rc = rf_cache_digest_put(l->c, sl->o->seq, sl->o->case_id, 0, NULL, 0);
            continue;
        }
        if (unverified && sl->unverified)
            (*unverified)++;
        if (sl->ckey)
            rc = rf_cache_casekey_put(l->c, &sl->ck, sl->krow.data, sl->krow.len);
        if (rc == 0)
            rc =
                rf_cache_digest_put(l->c, sl->o->seq, sl->o->case_id, 1, sl->row.data, sl->row.len);
    }
    return rc;
}

/* Digests objs[0..n) into the open transaction, on up to nthreads threads
 * (1: all on this one). A pipeline of three batches: while the digesters
 * work on batch i, this thread writes batch i-1 (in order) and reads batch
 * i+1's ciphertext (SQLite), then digests too. Batch i+1 is read after
 * batch i-1 is written, as when one thread does it all one batch at a
 * time: a CASEKEY written in i-1 opens the events of i+1 (CASEKEY objects
 * have a pass of their own before the events anyway). */
static int digest_all(struct rf_local *l, const struct rf_cobj *objs, size_t n, int nthreads,
                      unsigned *unverified)
{
    const size_t batch_max = DIGEST_BATCH;
    struct dslot *slots = calloc(3 * batch_max, sizeof(*slots));
    struct digester ws[DIGESTERS_MAX];
    struct dpool p = {.l = l};
    struct rf_crew crew;
    if (!slots)
        return RF_ERR_NOMEM;
    pthread_mutex_init(&p.mu, NULL);
    if (nthreads < 1)
        nthreads = 1;
    if (nthreads > DIGESTERS_MAX)
        nthreads = DIGESTERS_MAX;
    if ((size_t)nthreads > n)
        nthreads = n > 0 ? (int)n : 1;
    for (size_t i = 0; i < 3 * batch_max; i++) {
        rf_buf_init(&slots[i].ct, PLAIN_MAX * 2);
        rf_buf_init(&slots[i].row, ROW_MAX);
        rf_buf_init(&slots[i].ks, 16 * 4096);
        rf_buf_init(&slots[i].krow, 4096);
    }
    int nomem = 0;
    for (int t = 0; t < nthreads; t++) {
        ws[t].p = &p;
        rf_buf_init_secure(&ws[t].plain, PLAIN_MAX);
        rf_buf_init_secure(&ws[t].packed, PLAIN_MAX + 1024);
        nomem |= rf_ckeys_init(&ws[t].keys, 16) != 0;
    }
    rf_crew_start(&crew, nomem ? 1 : nthreads, digester_run, ws, sizeof(ws[0]), digester_end);
    int rc =
        nomem ? RF_ERR_NOMEM : rf_lckpt_begin(&l->run, l->c, l->use_set ? &l->use : NULL, objs, n);
    size_t first = 0, k = 0, kprev = 0;
    struct dslot *prev = NULL;
    int cur = 0;
    if (rc == 0)
        read_batch(l, objs, n, 0, slots, &k);
    while (rc == 0 && (k > 0 || kprev > 0)) {
        struct dslot *batch = slots + (size_t)cur * batch_max;
        if (k > 0) {
            p.slots = batch;
            p.n = k;
            p.next = 0;
            rf_crew_go(&crew);
        }
        if (kprev > 0)
            rc = write_batch(l, prev, kprev, unverified);
        size_t knext = 0;
        if (rc == 0 && !l->run.mismatch && k > 0)
            read_batch(l, objs, n, first + k, slots + (size_t)((cur + 1) % 3) * batch_max, &knext);
        if (k > 0) {
            digester_run(&ws[0]); /* this thread digests too */
            rf_crew_wait(&crew);
        }
        if (l->run.mismatch)
            break; /* rolled back and digested again (rf_local_update_after) */
        prev = batch;
        kprev = k;
        first += k;
        k = knext;
        cur = (cur + 1) % 3;
    }
    rf_crew_stop(&crew);
    for (int t = 0; t < nthreads; t++) {
        rf_buf_free(&ws[t].plain);
        rf_buf_free(&ws[t].packed);
        rf_ckeys_free(&ws[t].keys);
    }
    for (size_t i = 0; i < 3 * batch_max; i++) {
        rf_buf_free(&slots[i].ct);
        rf_buf_free(&slots[i].row);
        rf_buf_free(&slots[i].ks);
        rf_buf_free(&slots[i].krow);
    }
    free(slots);
    pthread_mutex_destroy(&p.mu);
    if (rc == 0)
        rc = rf_lckpt_end(&l->run, l->c);
    return rc;
}

/* The CASEKEY objects objs[0..nkeys) first (their keys stored), then the
 * rest, whose events version 2 open with them (rf_local_casekey_order). */
#define CKMEMO_MIN 4096 /* objects in a pass from which the case keys are held in memory */
int rf_local_ckmemo_min;

static int digest_passes(struct rf_local *l, const struct rf_cobj *objs, size_t n, size_t nkeys,
                         int threads, unsigned *unv)
{
    l->first_left = INT64_MAX;
    int rc = nkeys > 0 ? digest_all(l, objs, nkeys, threads, unv) : 0; /* no event: no mismatch */
    if (rc == 0 && n > nkeys) {
        size_t min = rf_local_ckmemo_min > 0 ? (size_t)rf_local_ckmemo_min : CKMEMO_MIN;
        if (n - nkeys >= min && rf_ckmemo_load(l, &l->ckmemo) != 0)
            l->ckmemo = NULL; /* looked up one by one: slower, not wrong */
        rc = digest_all(l, objs + nkeys, n - nkeys, threads, unv);
        rf_ckmemo_free(l->ckmemo);
        l->ckmemo = NULL;
    }
    return rc;
}

/* ---- an update ---- */

static int cmp_case(const void *a, const void *b)
{
    return strcmp(a, b);
}

/* The cases of objs[0..n), each once, sorted: the distinct ones found
 * with a hash set first (a cold sync has a dozen objects a case: sorting
 * all 1,200,000 names took 0.3 s), then sorted. */
static int dirty_cases(const struct rf_cobj *objs, size_t n, char (**out)[RF_CASE_ID_LEN + 1],
                       size_t *nd)
{
    size_t cap = 16;
    *out = NULL;
    *nd = 0;
    if (n >= UINT32_MAX / 2)
        return RF_ERR_LIMIT;
    while (cap < 2 * n)
        cap <<= 1;
    uint32_t *set = calloc(cap, sizeof(*set)); /* 1 + an index into objs, 0: free */
    char(*d)[RF_CASE_ID_LEN + 1] = malloc((n ? n : 1) * sizeof(*d));
    if (!set || !d) {
        free(set);
        free(d);
        return RF_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        uint64_t h = 1469598103934665603ULL; /* FNV-1a */
        for (const char *c = objs[i].case_id; *c; c++)
            h = (h ^ (uint8_t)*c) * 1099511628211ULL;
        size_t at = (size_t)h & (cap - 1);
        while (set[at] && strcmp(objs[set[at] - 1].case_id, objs[i].case_id) != 0)
            at = (at + 1) & (cap - 1);
        if (!set[at]) {
            set[at] = (uint32_t)i + 1;
            memcpy(d[(*nd)++], objs[i].case_id, sizeof(d[0]));
        }
    }
    free(set);
    qsort(d, *nd, sizeof(d[0]), cmp_case);
    *out = d;
    return 0;
}

int rf_local_update(struct rf_local *l, unsigned *unverified)
{
    return rf_local_update_after(l, INT64_MIN, unverified);
}

void rf_local_use_checkpoint(struct rf_local *l, const struct rf_ckpt *ck)
{
    l->use_set = ck != NULL;
    if (ck)
        l->use = *ck;
}

void rf_local_ckpt_result(const struct rf_local *l, struct rf_local_ckpt_result *out)
{
    *out = l->res;
}

int rf_local_update_after(struct rf_local *l, int64_t after, unsigned *unverified)
{
    memset(&l->res, 0, sizeof(l->res));
    struct rf_cobj *objs = NULL;
    size_t n = 0;
    char(*dirty)[RF_CASE_ID_LEN + 1] = NULL;
    size_t nd = 0;
    int64_t listed_max = 0; /* read before the listing */
    int rc = rf_cache_objects_max(l->c, &listed_max);
    if (rc == 0)
        rc = rf_cache_undigested_after(l->c, after, &objs, &n);
    if (rc != 0)
        return rc;
    if (n == 0) { /* the mark may still move up (objects another process digested) */
        rc = rf_cache_digested_advance(l->c, NULL);
        if (rc == 0) /* pages for a home from before them (cache version 8) */
            rc = rf_local_board_pages_refresh(l, 0, NULL);
        goto out;
    }
    size_t nkeys = 0; /* CASEKEY objects first: the events after them use their keys */
    rc = rf_local_casekey_order(l, &objs, &n, &nkeys);
    if (rc != 0)
        goto out;
    rc = dirty_cases(objs, n, &dirty, &nd);
    if (rc != 0)
        goto out;
    unsigned unv = 0;
    rf_out_phase("grants, list the objects to digest");
    int bulk = 0;    /* the digests' case index dropped (rf_cache_bulk_digests) */
    int journal = 0; /* a rollback journal for a cold digest (rf_cache_bulk_journal) */
    rf_prekeys_stop(l->prekeys); /* the cores are the digest's now */
    rc = rf_cache_bulk_journal(l->c, 1, &journal);
    if (rc == 0)
        rc = rf_cache_begin(l->c);
    int threads = rf_local_digest_threads ? rf_local_digest_threads : digest_cpus();
    if (rc == 0)
        rc = rf_cache_bulk_digests(l->c, 1, &bulk);
    if (rc == 0)
        rc = digest_passes(l, objs, n, nkeys, threads, &unv);
    if (rc == 0 && l->run.mismatch) {
        /* nothing digested on the checkpoint's word stays: all again, every
         * signature verified */
        rf_cache_rollback(l->c);
        l->use_set = 0;
        l->res.fell_back = 1;
        l->res.diff = l->run.diff;
        unv = 0;
        rc = rf_cache_begin(l->c);
        if (rc == 0)
            rc = rf_cache_bulk_digests(l->c, 1, &bulk); /* the rollback restored it */
        if (rc == 0)
            rc = digest_passes(l, objs, n, nkeys, threads, &unv);
    }
    if (rc == 0) /* the case index back, built in one sort, before the summaries */
        rc = rf_cache_bulk_digests(l->c, 0, &bulk);
    rf_out_phase("digest");
    if (rc == 0 && l->run.use)
        l->res.by_ckpt = l->run.by_ckpt;
    if (unverified)
        *unverified += unv;
    if (rc == 0)
        rc = rf_cache_summaries_bulk(l->c, 1);
    if (rc == 0)
        rc = rf_local_refresh_all(l, (const char(*)[RF_CASE_ID_LEN + 1]) dirty, nd, threads);
    rf_cache_summaries_bulk(l->c, 0);
    rf_out_phase("summaries");
    if (rc == 0 && after == INT64_MIN) {
        /* the pass took every object above the mark that had no digest when
         * it was listed (none between the mark and after left out): up to
         * the first it left without one, every object listed then has one
         * now (one stored since is above listed_max: seqs only grow) */
        int64_t upto = listed_max;
        if (l->first_left != INT64_MAX && l->first_left - 1 < upto)
            upto = l->first_left - 1;
        rc = rf_cache_digested_advance_to(l->c, upto);
    } else if (rc == 0) {
        rc = rf_cache_digested_advance(l->c, NULL);
    }
    rf_out_phase("the digested mark");
    if (rc == 0)
        rc = rf_cache_commit(l->c);
    else
        rf_cache_rollback(l->c);
    int back = rf_cache_bulk_journal(l->c, 0, &journal);
    rc = rc ? rc : back;
    rf_out_phase("commit");
    if (rc == 0) /* the listing's pages, if the board has moved far from them */
        rc = rf_local_board_pages_refresh(l, 0, NULL);
    rf_out_phase("board pages");
out:
    l->use_set = 0; /* one update only */
    free(dirty);
    free(objs);
    return rc;
}
