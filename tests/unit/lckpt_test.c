/* lckpt_test.c - checkpoints in the client's digest path (lckpt.c, local.c,
 * docs/protocol.md 13): the chain a client keeps is the chain of every
 * event it verified, continued across two updates and stopped for good at
 * the first event that fails; a cold digest with a checkpoint of those
 * events checks them without their signature (and says how many) and ends
 * with the same case database as one that verifies every signature, while
 * every other check still runs; a checkpoint that does not match (another
 * order, another event, a longer or shorter chain) or that covers an event
 * the client refuses is rolled back: the database is the one a
 * verify-everything digest leaves, chain included. */
#include "client/cache.h"
#include "client/lckpt.h"
#include "client/local.h"
#include "client/local_rows.h"
#include "client/out.h"
#include "lib/checkpoint.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"
#include "lib/evrow.h"
#include "lib/roster.h"

#include <sqlite3.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_local.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CASE_A "abcde23456"
#define CASE_B "fghij23456"
#define NOBJ_MAX 32

/* The objects the server holds, as bytes: every home gets the same ones. */
struct obj {
    int64_t seq;
    char case_id[11];
    uint8_t kind;
    unsigned roster;         /* the roster the event names and the server stored it under */
    struct rf_buf plain, ct; /* plain: the signed event (kind 4) */
};

struct world {
    struct rf_staff_keys *anna, *boris; /* Anna admin on the roster; Boris not on it */
    uint8_t pks[1][32];
    struct rf_buf roster;
    struct obj o[NOBJ_MAX];
    size_t n;
};

struct home {
    struct rf_home h;
    struct rf_cache *c;
    struct rf_local *l;
};

static void world_new(struct world *w)
{
    memset(w, 0, sizeof(*w));
    w->anna = sodium_malloc(sizeof(*w->anna));
    w->boris = sodium_malloc(sizeof(*w->boris));
    assert_int_equal(rf_staff_keys_generate(w->anna, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(w->boris, "Boris"), 0);
    memcpy(w->pks[0], w->anna->box_pk, 32);
    struct rf_roster *r = calloc(1, sizeof(*r));
    rf_buf_init(&w->roster, RF_ROSTER_MAX_BYTES);
    make_roster(r, 1, NULL);
    add_member(r, w->anna, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&w->roster, r, w->anna), 0);
    free(r);
}

static void world_free(struct world *w)
{
    for (size_t i = 0; i < w->n; i++) {
        rf_buf_free(&w->o[i].plain);
        rf_buf_free(&w->o[i].ct);
    }
    rf_buf_free(&w->roster);
    sodium_free(w->anna);
    sodium_free(w->boris);
}

static unsigned ev_roster = 1;

/* An event by k of case_id at seq (sealed to Anna); signed for sign_case
 * (another case: moved), its signature flipped when forge. */
static void ev(struct world *w, int64_t seq, const char *case_id, const struct rf_staff_keys *k,
               unsigned lamport, const char *op, const char *value, const char *sign_case,
               int forge)
{
    struct obj *o = &w->o[w->n++];
    char body[512], id[33];
    uint8_t rid[16];
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
    snprintf(body, sizeof(body),
             "{\"v\":1,\"id\":\"%s\",\"lamport\":%u,\"roster\":%u,\"author\":\"x\","
             "\"day\":20100,\"op\":\"%s\",\"value\":\"%s\"}",
             id, lamport, ev_roster, op, value);
    o->roster = ev_roster;
    o->seq = seq;
    o->kind = RF_KIND_EVENT;
    snprintf(o->case_id, sizeof(o->case_id), "%s", case_id);
    rf_buf_init(&o->plain, 1 << 16);
    rf_buf_init(&o->ct, 1 << 20);
    assert_int_equal(rf_event_sign(&o->plain, k, sign_case ? sign_case : case_id,
                                   (const uint8_t *)body, strlen(body)),
                     0);
    if (forge)
        o->plain.data[40] ^= 1; /* a signature byte */
    assert_int_equal(rf_envelope_seal(&o->ct, RF_KIND_EVENT, (const uint8_t(*)[32])w->pks, 1,
                                      o->plain.data, o->plain.len),
                     0);
}

static void msg(struct world *w, int64_t seq, const char *case_id)
{
    static const char m[] = "{\"v\":1,\"type\":\"message\",\"text\":\"hello\"}";
    struct obj *o = &w->o[w->n++];
    o->seq = seq;
    o->kind = RF_KIND_MESSAGE;
    o->roster = 1;
    snprintf(o->case_id, sizeof(o->case_id), "%s", case_id);
    rf_buf_init(&o->plain, 1 << 16);
    rf_buf_init(&o->ct, 1 << 20);
    assert_int_equal(rf_envelope_seal(&o->ct, RF_KIND_MESSAGE, (const uint8_t(*)[32])w->pks, 1,
                                      (const uint8_t *)m, sizeof(m) - 1),
                     0);
}

static void home_new(struct home *t, const struct world *w, const char *name)
{
    static int serial;
    const char *tmp = getenv("REFUGE_TEST_TMP");
    memset(t, 0, sizeof(*t));
    snprintf(t->h.dir, sizeof(t->h.dir), "%s/lckpt_test_%s.%d.%d", tmp ? tmp : "/tmp", name,
             (int)getpid(), serial++);
    assert_int_equal(rf_home_create(&t->h), 0);
    assert_int_equal(rf_cache_open(&t->c, &t->h), 0);
    assert_int_equal(rf_cache_roster_put(t->c, 1, w->roster.data, w->roster.len), 0);
    assert_int_equal(rf_local_new(&t->l, t->c, w->anna), 0);
}

/* Stores objects [from, to) of the world as a sync does. */
static void home_get(struct home *t, const struct world *w, size_t from, size_t to)
{
    int64_t last = 0;
    for (size_t i = from; i < to; i++) {
        const struct obj *o = &w->o[i];
        struct rf_cobj co = {o->seq, "", o->kind, o->ct.len, 20100, o->roster, 0};
        snprintf(co.case_id, sizeof(co.case_id), "%s", o->case_id);
        assert_int_equal(rf_cache_object_put(t->c, &co, o->ct.data, o->ct.len), 0);
        last = o->seq;
    }
    assert_int_equal(rf_cache_set_last_seq(t->c, last), 0);
}

static void home_free(struct home *t)
{
    rf_local_free(t->l);
    rf_cache_close(t->c);
}

/* The chain of the events in w->o[0..upto) that verify, as the client must
 * have it (its own computation from the signed bytes). */
static void expect_chain(const struct world *w, size_t upto, struct rf_ckpt_chain *c)
{
    rf_ckpt_chain_init(c);
    for (size_t i = 0; i < upto; i++)
        if (w->o[i].kind == RF_KIND_EVENT)
            assert_int_equal(rf_ckpt_chain_add(c, (uint64_t)w->o[i].seq, RF_KIND_EVENT,
                                               w->o[i].case_id, w->o[i].plain.data,
                                               w->o[i].plain.len),
                             0);
}

/* Everything a case page and the board read, for both cases, plus the chain
 * state: two homes are "the same database" when these are equal. */
static char *dump(struct home *t)
{
    json_t *all = json_object();
    const char *cases[] = {CASE_A, CASE_B};
    for (size_t i = 0; i < 2; i++) {
        json_t *s = NULL, *bad = NULL;
        struct rf_ev *evs = NULL;
        size_t n = 0;
        if (rf_local_summary(t->l, cases[i], &s) == 0)
            json_object_set_new(all, cases[i], s);
        assert_int_equal(rf_local_events(t->l, cases[i], &evs, &n, &bad), 0);
        json_t *ids = json_array();
        for (size_t k = 0; k < n; k++)
            json_array_append_new(ids, json_pack("{sssIss}", "id", evs[k].id, "seq",
                                                 (json_int_t)evs[k].seq, "author", evs[k].author));
        rf_local_events_free(evs, n);
        char key[32];
        snprintf(key, sizeof(key), "events:%s", cases[i]);
        json_object_set_new(all, key, json_pack("{soso}", "ok", ids, "bad", bad));
    }
    struct rf_lckpt_state st;
    assert_int_equal(rf_lckpt_load(t->c, &st), 0);
    char hx[65];
    sodium_bin2hex(hx, sizeof(hx), st.ch.chain, 32);
    json_object_set_new(all, "chain",
                        json_pack("{sssIsIsIsb}", "c", hx, "last", (json_int_t)st.ch.last_seq,
                                  "count", (json_int_t)st.ch.count, "stopped", st.stopped));
    char *s = json_dumps(all, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(all);
    return s;
}

static void chain_continues_across_two_updates_and_stops_at_a_failure(void **state)
{
    (void)state;
    struct world w;
    struct home t;
    struct rf_lckpt_state st;
    struct rf_ckpt_chain want;
    world_new(&w);
    msg(&w, 1, CASE_A);
    ev(&w, 2, CASE_A, w.anna, 1, "stage", "planning", NULL, 0);
    ev(&w, 4, CASE_B, w.anna, 1, "note", "first", NULL, 0);
    msg(&w, 5, CASE_B);
    ev(&w, 7, CASE_A, w.anna, 2, "tag", "urgent", NULL, 0);
    /* second sync */
    ev(&w, 8, CASE_B, w.anna, 2, "note", "second", NULL, 0);
    ev(&w, 9, CASE_A, w.anna, 3, "note", "third", NULL, 0);
    /* third: an event moved from case B, then a good one */
    ev(&w, 10, CASE_A, w.anna, 4, "note", "moved", CASE_B, 0);
    ev(&w, 11, CASE_A, w.anna, 5, "note", "after", NULL, 0);
    home_new(&t, &w, "across");

    home_get(&t, &w, 0, 5);
    unsigned unv = 0;
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    assert_int_equal(unv, 0);
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    expect_chain(&w, 5, &want);
    assert_int_equal(st.ch.count, 3);
    assert_int_equal(st.ch.last_seq, 7);
    assert_false(st.stopped);
    assert_memory_equal(st.ch.chain, want.chain, 32);

    home_get(&t, &w, 5, 7);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    expect_chain(&w, 7, &want);
    assert_int_equal(st.ch.count, 5);
    assert_int_equal(st.ch.last_seq, 9);
    assert_memory_equal(st.ch.chain, want.chain, 32); /* continued, not restarted */

    home_get(&t, &w, 7, 9);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    assert_int_equal(unv, 1); /* the moved event */
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    assert_true(st.stopped);
    assert_int_equal(st.ch.count, 5); /* nothing after it, ever */
    assert_int_equal(st.ch.last_seq, 9);
    assert_memory_equal(st.ch.chain, want.chain, 32);
    home_free(&t);
    world_free(&w);
}

/* A checkpoint by Anna over the chain c. */
static void sign_ckpt(const struct world *w, const struct rf_ckpt_chain *c, struct rf_ckpt *out)
{
    uint8_t raw[RF_CKPT_BYTES];
    struct rf_roster ro;
    const struct rf_roster *ros[1] = {&ro};
    assert_int_equal(rf_ckpt_make(raw, c, 1, w->anna), 0);
    assert_int_equal(rf_roster_parse(&ro, w->roster.data, w->roster.len), 0);
    assert_int_equal(rf_ckpt_verify(out, raw, sizeof(raw), ros, 1), 0);
}

/* A world of 12 events over two cases with messages between them. */
static void sample(struct world *w)
{
    world_new(w);
    int64_t seq = 1;
    for (unsigned i = 0; i < 12; i++) {
        if (i % 4 == 0)
            msg(w, seq++, i % 8 ? CASE_B : CASE_A);
        char v[16];
        snprintf(v, sizeof(v), "note %u", i);
        ev(w, seq++, i % 2 ? CASE_B : CASE_A, w->anna, i + 1, "note", v, NULL, 0);
    }
}

static void digest_with(const struct world *w, const char *name, const struct rf_ckpt *ck,
                        struct rf_local_ckpt_result *res, unsigned *unv, char **out)
{
    struct home t;
    home_new(&t, w, name);
    home_get(&t, w, 0, w->n);
    rf_local_use_checkpoint(t.l, ck);
    *unv = 0;
    assert_int_equal(rf_local_update(t.l, unv), 0);
    rf_local_ckpt_result(t.l, res);
    *out = dump(&t);
    home_free(&t);
}

/* Cache version 7 packs a verified event's digest row (lib/evrow.h); the
 * JSON rows written before it are read as they were: the same home with
 * every packed row written back as the JSON row it replaces gives the same
 * summaries, events and, walked again from the rows, the same chain. */
struct rows_seen {
    int64_t seq[256];
    char case_id[256][RF_CASE_ID_LEN + 1];
    struct rf_buf blob[256];
    size_t n;
};

static int keep_row(void *ctx, int64_t seq, const uint8_t *blob, size_t n)
{
    struct rows_seen *r = ctx;
    assert_true(r->n < 256);
    r->seq[r->n] = seq;
    rf_buf_init(&r->blob[r->n], 1 << 20);
    if (blob)
        assert_int_equal(rf_buf_put(&r->blob[r->n], blob, n), 0);
    r->n++;
    return 0;
}

static void json_rows_from_before_version_7_read_the_same(void **state)
{
    (void)state;
    struct world w;
    struct home t;
    struct rf_local_ckpt_result res;
    unsigned unv = 0;
    char *packed = NULL, *legacy = NULL;
    sample(&w);
    digest_with(&w, "v7_packed", NULL, &res, &unv, &packed);

    home_new(&t, &w, "v7_legacy");
    home_get(&t, &w, 0, w.n);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    struct rows_seen *rows = calloc(1, sizeof(*rows));
    const char *cases[] = {CASE_A, CASE_B};
    size_t converted = 0;
    struct rf_buf plain, row;
    rf_buf_init_secure(&plain, 1 << 20);
    rf_buf_init(&row, 1 << 20);
    assert_int_equal(rf_cache_begin(t.c), 0);
    for (size_t c = 0; c < 2; c++) {
        rows->n = 0;
        assert_int_equal(rf_cache_digests(t.c, cases[c], keep_row, rows), 0);
        for (size_t i = 0; i < rows->n; i++) {
            char ad[48], hx[65];
            struct rf_ev e;
            uint8_t h[32];
            snprintf(ad, sizeof(ad), "digest:%lld", (long long)rows->seq[i]);
            rf_buf_reset(&plain);
            rf_buf_reset(&row);
            if (rows->blob[i].len == 0 ||
                rf_local_open(t.l, ad, rows->blob[i].data, rows->blob[i].len, &plain) != 0 ||
                !rf_evrow_is(plain.data, plain.len)) {
                rf_buf_free(&rows->blob[i]);
                continue;
            }
            assert_int_equal(rf_local_ev_unpack(&e, h, plain.data, plain.len), 0);
            sodium_bin2hex(hx, sizeof(hx), h, 32);
            json_t *j = json_pack("{sssoss}", "k", "event", "ev", rf_local_ev_to_json(&e), "h", hx);
            char *text = json_dumps(j, JSON_COMPACT);
            assert_int_equal(rf_local_seal(t.l, ad, (const uint8_t *)text, strlen(text), &row), 0);
            assert_int_equal(rf_cache_digest_put(t.c, rows->seq[i], cases[c], 1, row.data, row.len),
                             0);
            converted++;
            rf_out_json_free(text);
            json_decref(j);
            rf_ev_clear(&e);
            rf_buf_free(&rows->blob[i]);
        }
    }
    assert_true(converted >= 10); /* the sample's verified events */
    /* the summaries built again, and the chain walked again, from JSON rows */
    struct rf_lckpt_state empty;
    memset(&empty, 0, sizeof(empty));
    rf_ckpt_chain_init(&empty.ch);
    assert_int_equal(rf_lckpt_save(t.c, &empty), 0);
    assert_int_equal(rf_cache_commit(t.c), 0);
    for (size_t c = 0; c < 2; c++)
        assert_int_equal(rf_local_refresh(t.l, cases[c]), 0);
    assert_int_equal(rf_lckpt_walk(t.l, t.c), 0);
    legacy = dump(&t);
    assert_string_equal(legacy, packed);
    home_free(&t);
    rf_buf_free(&plain);
    rf_buf_free(&row);
    free(rows);
    rf_out_json_free(packed);
    rf_out_json_free(legacy);
    world_free(&w);
}

static void cold_digest_by_checkpoint_is_the_same(void **state)
{
    (void)state;
    struct world w;
    struct rf_ckpt_chain c;
    struct rf_ckpt ck;
    struct rf_local_ckpt_result res;
    unsigned unv = 0;
    char *plain = NULL, *by_ck = NULL;
    sample(&w);
    digest_with(&w, "plain", NULL, &res, &unv, &plain);
    assert_int_equal(res.by_ckpt, 0);

    for (int threads = 1; threads <= 4; threads++) {
        /* 3 and 4: batches of 3 objects, the pipeline of batches (one
         * digested while the one before is written) on this sample */
        rf_local_digest_threads = 1 + (threads - 1) % 2;
        rf_local_digest_batch = threads > 2 ? 3 : 0;
        /* a checkpoint of all of them, and one of the first 8 (the rest by signature) */
        for (size_t upto = w.n; upto >= w.n - 5; upto -= 5) {
            expect_chain(&w, upto, &c);
            sign_ckpt(&w, &c, &ck);
            digest_with(&w, "ck", &ck, &res, &unv, &by_ck);
            assert_int_equal(res.by_ckpt, c.count);
            assert_false(res.fell_back);
            assert_int_equal(unv, 0);
            assert_string_equal(by_ck, plain);
            rf_out_json_free(by_ck);
        }
    }
    rf_local_digest_threads = 0;
    rf_local_digest_batch = 0;
    rf_out_json_free(plain);
    world_free(&w);
}

/* An event the checkpoint vouches for is taken without its signature (the
 * admin verified it), but every other check still runs: an author not on
 * the roster is refused, and the whole digest falls back. */
static void only_the_signature_is_skipped(void **state)
{
    (void)state;
    struct world w;
    struct rf_ckpt_chain c;
    struct rf_ckpt ck;
    struct rf_local_ckpt_result res;
    unsigned unv = 0;
    char *s = NULL, *plain = NULL;

    sample(&w);
    ev(&w, 30, CASE_A, w.anna, 20, "note", "forged signature", NULL, 1);
    expect_chain(&w, w.n, &c); /* a (lying) checkpoint that covers it */
    sign_ckpt(&w, &c, &ck);
    digest_with(&w, "skip", &ck, &res, &unv, &s);
    assert_int_equal(res.by_ckpt, 13);
    assert_false(res.fell_back);
    assert_int_equal(unv, 0);
    assert_non_null(strstr(s, "forged signature")); /* taken on the checkpoint's word */
    rf_out_json_free(s);
    digest_with(&w, "skip_plain", NULL, &res, &unv, &s);
    assert_int_equal(unv, 1); /* without it: refused */
    assert_null(strstr(s, "forged signature"));
    rf_out_json_free(s);
    world_free(&w);

    sample(&w);
    ev(&w, 30, CASE_A, w.boris, 20, "note", "not on the roster", NULL, 0);
    expect_chain(&w, w.n, &c);
    sign_ckpt(&w, &c, &ck);
    digest_with(&w, "roster", &ck, &res, &unv, &s);
    assert_true(res.fell_back);
    assert_int_equal(res.diff, RF_CKPT_SAME); /* an event below it failed a check */
    assert_int_equal(res.by_ckpt, 0);
    assert_int_equal(unv, 1);
    digest_with(&w, "roster_plain", NULL, &res, &unv, &plain);
    assert_string_equal(s, plain);
    rf_out_json_free(s);
    rf_out_json_free(plain);
    world_free(&w);
}

static void a_checkpoint_that_does_not_match_leaves_a_verified_digest(void **state)
{
    (void)state;
    struct world w;
    struct rf_ckpt_chain c;
    struct rf_ckpt ck;
    struct rf_local_ckpt_result res;
    unsigned unv = 0, unv_plain = 0;
    char *s = NULL, *plain = NULL;
    sample(&w);
    ev(&w, 40, CASE_A, w.anna, 30, "note", "moved here", CASE_B, 0); /* refused either way */
    ev(&w, 41, CASE_B, w.anna, 31, "note", "last", NULL, 0);
    digest_with(&w, "fb_plain", NULL, &res, &unv_plain, &plain);
    assert_int_equal(unv_plain, 1);

    for (int how = 0; how < 5; how++) {
        rf_local_digest_threads = 1 + how % 2;
        rf_local_digest_batch = how >= 2 ? (size_t)how : 0; /* several batches in flight */
        rf_ckpt_chain_init(&c);
        enum rf_ckpt_diff want = RF_CKPT_DIFF_CHAIN;
        for (size_t i = 0; i < w.n; i++) {
            const struct obj *o = &w.o[i];
            if (o->kind != RF_KIND_EVENT)
                continue;
            uint8_t h[32];
            rf_ckpt_obj_hash(h, o->plain.data, o->plain.len);
            if (how == 0 && o->seq == 5)
                h[0] ^= 1; /* another event at seq 5 */
            if (how == 1 && o->seq == 5)
                continue; /* one left out: the count differs */
            if (how == 2 && o->seq >= 40)
                break; /* honest, but ends before the moved event */
            if (how == 3 && o->seq == 41) {
                assert_int_equal(rf_ckpt_chain_add_hash(&c, 45, RF_KIND_EVENT, o->case_id, h),
                                 0); /* ends past the last event */
                continue;
            }
            assert_int_equal(rf_ckpt_chain_add_hash(&c, (uint64_t)o->seq, RF_KIND_EVENT,
                                                    how == 4 && o->seq == 3 ? CASE_A : o->case_id,
                                                    h),
                             0);
        }
        if (how == 1)
            want = RF_CKPT_DIFF_COUNT;
        if (how == 3)
            want = RF_CKPT_DIFF_LAST_SEQ;
        sign_ckpt(&w, &c, &ck);
        digest_with(&w, "fb", &ck, &res, &unv, &s);
        if (how == 2) { /* an honest checkpoint below the moved event: used, then signatures */
            assert_false(res.fell_back);
            assert_int_equal(res.by_ckpt, c.count);
        } else {
            assert_true(res.fell_back);
            assert_int_equal(res.diff, want);
            assert_int_equal(res.by_ckpt, 0);
        }
        assert_int_equal(unv, unv_plain); /* how 4: seq 3 is case B, the chain says A */
        assert_string_equal(s, plain);    /* the same database as verifying everything */
        rf_out_json_free(s);
    }
    rf_local_digest_threads = 0;
    rf_local_digest_batch = 0;
    rf_out_json_free(plain);
    world_free(&w);
}

/* A catch-up digest: the chain of the first update continues into the
 * checkpoint of the second. */
static void catch_up_uses_the_kept_chain(void **state)
{
    (void)state;
    struct world w;
    struct home t;
    struct rf_ckpt_chain c;
    struct rf_ckpt ck;
    struct rf_local_ckpt_result res;
    unsigned unv = 0;
    sample(&w);
    home_new(&t, &w, "catchup");
    home_get(&t, &w, 0, 6);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    home_get(&t, &w, 6, w.n);
    expect_chain(&w, w.n, &c);
    sign_ckpt(&w, &c, &ck);
    rf_local_use_checkpoint(t.l, &ck);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    rf_local_ckpt_result(t.l, &res);
    assert_false(res.fell_back);
    struct rf_ckpt_chain first;
    expect_chain(&w, 6, &first);
    assert_int_equal(res.by_ckpt, c.count - first.count);
    char *s = dump(&t);
    home_free(&t);
    char *plain = NULL;
    digest_with(&w, "catchup_plain", NULL, &res, &unv, &plain);
    assert_string_equal(s, plain);
    rf_out_json_free(s);
    rf_out_json_free(plain);
    world_free(&w);
}

/* An event left for a roster not verified yet pauses the chain; once it is
 * digested, the walk over the digest rows takes the chain to the end. */
static void a_paused_chain_goes_on_from_the_digest_rows(void **state)
{
    (void)state;
    struct world w;
    struct home t;
    struct rf_lckpt_state st;
    struct rf_ckpt_chain want;
    unsigned unv = 0;
    sample(&w);
    ev_roster = 2;
    ev(&w, 20, CASE_A, w.anna, 20, "note", "under roster 2", NULL, 0);
    ev_roster = 1;
    ev(&w, 21, CASE_B, w.anna, 21, "note", "after it", NULL, 0);
    home_new(&t, &w, "paused");
    home_get(&t, &w, 0, w.n);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    assert_int_equal(st.ch.last_seq, 15); /* the last event before it */
    assert_false(st.stopped);
    assert_int_equal(rf_lckpt_walk(t.l, t.c), 0); /* not digested yet: stays */
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    assert_int_equal(st.ch.last_seq, 15);

    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw;
    uint8_t prev[32];
    crypto_generichash(prev, 32, w.roster.data, w.roster.len, NULL, 0);
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    make_roster(r, 2, prev);
    add_member(r, w.anna, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&raw, r, w.anna), 0);
    assert_int_equal(rf_cache_roster_put(t.c, 2, raw.data, raw.len), 0);
    assert_int_equal(rf_local_reload(t.l), 0);
    rf_buf_free(&raw);
    free(r);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    assert_int_equal(unv, 0);
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    assert_int_equal(st.ch.last_seq, 20); /* the pass held only the late event: next in order */
    assert_int_equal(rf_lckpt_walk(t.l, t.c), 0);
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    expect_chain(&w, w.n, &want);
    assert_int_equal(st.ch.last_seq, 21);
    assert_int_equal(st.ch.count, want.count);
    assert_memory_equal(st.ch.chain, want.chain, 32);
    assert_false(st.stopped);
    home_free(&t);
    world_free(&w);
}

/* A home that digested before it kept a chain: rf_lckpt_prepare drops the
 * digest rows once, and the next update builds the chain from the first
 * event (and the same case database). */
static void a_home_from_before_checkpoints_starts_its_chain(void **state)
{
    (void)state;
    struct world w;
    struct home t;
    struct rf_lckpt_state st;
    struct rf_ckpt_chain want;
    unsigned unv = 0;
    int reset = 0;
    char *plain = NULL;
    struct rf_local_ckpt_result res;
    sample(&w);
    digest_with(&w, "before_plain", NULL, &res, &unv, &plain);
    home_new(&t, &w, "before");
    home_get(&t, &w, 0, w.n);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    assert_int_equal(rf_lckpt_prepare(t.c, &reset), 0);
    assert_int_equal(reset, 0); /* it keeps a chain already */
    sqlite3 *db = NULL;
    char path[sizeof(t.h.dir) + 16];
    snprintf(path, sizeof(path), "%s/cache.db", t.h.dir);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM blobs WHERE key = 'ckpt_chain'", 0, 0, 0),
                     SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(rf_lckpt_prepare(t.c, &reset), 0);
    assert_int_equal(reset, 1);
    assert_int_equal(rf_local_update(t.l, &unv), 0);
    assert_int_equal(rf_lckpt_load(t.c, &st), 0);
    expect_chain(&w, w.n, &want);
    assert_int_equal(st.ch.count, 12);
    assert_memory_equal(st.ch.chain, want.chain, 32);
    char *s = dump(&t);
    assert_string_equal(s, plain);
    rf_out_json_free(s);
    rf_out_json_free(plain);
    home_free(&t);
    world_free(&w);
}

/* Objects of other kinds neither extend nor hold up the chain: a pass of
 * only those (case keys digested before the events they open, in a pass of
 * their own) uses no checkpoint and compares nothing; the events' pass then
 * uses it. */
static void other_kinds_in_their_own_pass(void **state)
{
    (void)state;
    struct world w;
    struct home t;
    struct rf_ckpt_chain c;
    struct rf_ckpt ck;
    struct rf_lckpt_run run;
    struct rf_cobj first[NOBJ_MAX], second[NOBJ_MAX];
    size_t n1 = 0, n2 = 0;
    sample(&w);
    home_new(&t, &w, "kinds");
    home_get(&t, &w, 0, w.n);
    for (size_t i = 0; i < w.n; i++) {
        struct rf_cobj o = {w.o[i].seq, "", w.o[i].kind, w.o[i].ct.len, 20100, 1, 0};
        snprintf(o.case_id, sizeof(o.case_id), "%s", w.o[i].case_id);
        if (o.kind == RF_KIND_EVENT)
            second[n2++] = o;
        else
            first[n1++] = o;
    }
    expect_chain(&w, w.n, &c);
    sign_ckpt(&w, &c, &ck);
    assert_int_equal(rf_lckpt_begin(&run, t.c, &ck, first, n1), 0);
    assert_null(run.use);
    assert_false(run.paused);
    for (size_t i = 0; i < n1; i++)
        rf_lckpt_obj(&run, first[i].seq, first[i].kind, first[i].case_id, RF_LCKPT_OTHER, NULL);
    assert_int_equal(rf_lckpt_end(&run, t.c), 0);
    assert_false(run.mismatch);
    assert_int_equal(rf_lckpt_begin(&run, t.c, &ck, second, n2), 0);
    assert_ptr_equal(run.use, &ck);
    for (size_t i = 0, k = 0; i < w.n; i++) {
        if (w.o[i].kind != RF_KIND_EVENT)
            continue;
        uint8_t h[32];
        rf_ckpt_obj_hash(h, w.o[i].plain.data, w.o[i].plain.len);
        assert_true(rf_lckpt_skip_sig(&run, RF_KIND_EVENT, second[k].seq));
        rf_lckpt_obj(&run, second[k].seq, RF_KIND_EVENT, second[k].case_id, RF_LCKPT_VERIFIED, h);
        k++;
    }
    assert_int_equal(rf_lckpt_end(&run, t.c), 0);
    assert_false(run.mismatch);
    assert_int_equal(run.by_ckpt, 12);
    /* the same events, but one of them missing from the pass: held up */
    struct rf_lckpt_state st = {0};
    rf_ckpt_chain_init(&st.ch);
    assert_int_equal(rf_lckpt_save(t.c, &st), 0);
    assert_int_equal(rf_lckpt_begin(&run, t.c, &ck, second + 1, n2 - 1), 0);
    assert_true(run.paused);
    assert_null(run.use);
    home_free(&t);
    world_free(&w);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    rf_out_init(); /* as rf_client_main does: jansson memory is wiped on free */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(chain_continues_across_two_updates_and_stops_at_a_failure),
        cmocka_unit_test(cold_digest_by_checkpoint_is_the_same),
        cmocka_unit_test(json_rows_from_before_version_7_read_the_same),
        cmocka_unit_test(only_the_signature_is_skipped),
        cmocka_unit_test(a_checkpoint_that_does_not_match_leaves_a_verified_digest),
        cmocka_unit_test(catch_up_uses_the_kept_chain),
        cmocka_unit_test(a_paused_chain_goes_on_from_the_digest_rows),
        cmocka_unit_test(a_home_from_before_checkpoints_starts_its_chain),
        cmocka_unit_test(other_kinds_in_their_own_pass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
