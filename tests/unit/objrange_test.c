/* objrange_test.c - the range answer of GET /api/v1/objects/data
 * (lib/objrange.h, docs/protocol.md 11): the vector encodes and parses to
 * its fields, fed whole and one byte at a time; every malformed answer
 * (bad magic or version, entries out of order or out of shape, too many,
 * too large, a count that lies, bytes after the end, a cut) is refused. */
#include "lib/err.h"
#include "lib/objrange.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* docs/protocol.md 11.1 (checked there by vectors_test.c) */
#define V_RANGE                                                                                    \
    "52465247010100000000000000110100004e210000000271346d7a376b32786561000000000000000568656c6c"   \
    "6f0200000000000000130200004e210000000271346d7a376b3278656100000000000493e00100000000000000"   \
    "140800004e22000000037465616d636f6e666967000000000000000000000000000000001500000003"

struct got {
    struct rf_range_entry e[8];
    size_t n;
    uint8_t data[64];
    size_t dlen;
};

static int on_entry(void *ctx, const struct rf_range_entry *e)
{
    struct got *g = ctx;
    if (g->n >= 8)
        return RF_ERR_LIMIT;
    g->e[g->n++] = *e;
    return 0;
}

static int on_data(void *ctx, const uint8_t *p, size_t n)
{
    struct got *g = ctx;
    if (n > sizeof(g->data) - g->dlen)
        return RF_ERR_LIMIT;
    memcpy(g->data + g->dlen, p, n);
    g->dlen += n;
    return 0;
}

static size_t vec(uint8_t *out, size_t cap)
{
    size_t n = 0;
    assert_int_equal(sodium_hex2bin(out, cap, V_RANGE, strlen(V_RANGE), NULL, &n, NULL), 0);
    return n;
}

/* Parses b (in pieces of step bytes) with after/max; the status. */
static int parse(const uint8_t *b, size_t n, size_t step, int64_t after, uint32_t max,
                 struct got *g, int64_t *last)
{
    struct rf_range_parser p;
    memset(g, 0, sizeof(*g));
    rf_range_parser_init(&p, after, max, on_entry, on_data, g);
    for (size_t off = 0; off < n; off += step) {
        int rc = rf_range_feed(&p, b + off, off + step <= n ? step : n - off);
        if (rc != 0)
            return rc;
    }
    return rf_range_finish(&p, last);
}

static void vector_encodes_and_parses(void **state)
{
    (void)state;
    uint8_t want[256], got[256];
    size_t n = vec(want, sizeof(want)), k = 0;
    struct rf_range_entry es[3] = {
        {17, 1, 20001, 2, "q4mz7k2xea", 5, 1},
        {19, 2, 20001, 2, "q4mz7k2xea", 300000, 0},
        {20, 8, 20002, 3, "teamconfig", 0, 1},
    };
    rf_range_put_head(got);
    k = RF_RANGE_HEAD_BYTES;
    for (int i = 0; i < 3; i++) {
        assert_int_equal(rf_range_put_entry(got + k, &es[i]), 0);
        k += RF_RANGE_ENTRY_BYTES;
        if (i == 0) {
            memcpy(got + k, "hello", 5);
            k += 5;
        }
    }
    rf_range_put_end(got + k, 21, 3);
    k += RF_RANGE_END_BYTES;
    assert_int_equal(k, n);
    assert_memory_equal(got, want, n);

    for (size_t step = 1; step <= n; step += (step < 8 ? 1 : 37)) {
        struct got g;
        int64_t last = 0;
        assert_int_equal(parse(want, n, step, 16, 3, &g, &last), 0);
        assert_int_equal(last, 21);
        assert_int_equal(g.n, 3);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(g.e[i].seq, es[i].seq);
            assert_int_equal(g.e[i].kind, es[i].kind);
            assert_int_equal(g.e[i].day, es[i].day);
            assert_int_equal(g.e[i].roster, es[i].roster);
            assert_string_equal(g.e[i].case_id, es[i].case_id);
            assert_int_equal(g.e[i].size, es[i].size);
            assert_int_equal(g.e[i].has_data, es[i].has_data);
        }
        assert_int_equal(g.dlen, 5);
        assert_memory_equal(g.data, "hello", 5);
    }
}

static void encoder_refuses_bad_entries(void **state)
{
    (void)state;
    uint8_t out[RF_RANGE_ENTRY_BYTES];
    struct rf_range_entry ok = {1, 1, 0, 0, "abc", 10, 1}, e;
    assert_int_equal(rf_range_put_entry(out, &ok), 0);
    e = ok, e.case_id[0] = 0;
    assert_int_equal(rf_range_put_entry(out, &e), RF_ERR_INVALID);
    e = ok, e.case_id[1] = 'A';
    assert_int_equal(rf_range_put_entry(out, &e), RF_ERR_INVALID);
    e = ok, e.seq = 0;
    assert_int_equal(rf_range_put_entry(out, &e), RF_ERR_INVALID);
    e = ok, e.kind = 0;
    assert_int_equal(rf_range_put_entry(out, &e), RF_ERR_INVALID);
    e = ok, e.size = RF_RANGE_DATA_MAX + 1;
    assert_int_equal(rf_range_put_entry(out, &e), RF_ERR_INVALID);
    e.has_data = 0; /* a left-out entry may be large */
    assert_int_equal(rf_range_put_entry(out, &e), 0);
}

/* The vector with one byte changed at off; the parse's status. */
static int mutated(size_t off, uint8_t v, int64_t after, uint32_t max)
{
    uint8_t b[256];
    size_t n = vec(b, sizeof(b));
    struct got g;
    int64_t last;
    b[off] = v;
    return parse(b, n, 7, after, max, &g, &last);
}

static void parser_refuses_malformed(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = vec(b, sizeof(b));
    struct got g;
    int64_t last;
    /* entry heads: 5, 46 (after 36 + 5 of data), 82; end at 118 */
    assert_int_equal(mutated(0, 'X', 16, 3), RF_ERR_FORMAT);       /* magic */
    assert_int_equal(mutated(4, 2, 16, 3), RF_ERR_VERSION);        /* version */
    assert_int_equal(mutated(5, 3, 16, 3), RF_ERR_FORMAT);         /* type */
    assert_int_equal(mutated(5 + 8, 16, 16, 3), RF_ERR_FORMAT);    /* seq 16 = after */
    assert_int_equal(mutated(46 + 8, 17, 16, 3), RF_ERR_FORMAT);   /* seq 17 again */
    assert_int_equal(mutated(46 + 1, 0x80, 16, 3), RF_ERR_FORMAT); /* seq past 2^62 */
    assert_int_equal(mutated(5 + 9, 0, 16, 3), RF_ERR_FORMAT);     /* kind 0 */
    assert_int_equal(mutated(5 + 18, 0, 16, 3), RF_ERR_FORMAT);    /* empty case id */
    assert_int_equal(mutated(5 + 20, 'Q', 16, 3), RF_ERR_FORMAT);  /* upper case */
    assert_int_equal(mutated(5 + 30, 1, 16, 3), RF_ERR_FORMAT);    /* a size past 2^40 */
    assert_int_equal(mutated(5 + 33, 0x10, 16, 3), RF_ERR_LIMIT);  /* data entry over 256 KiB */
    assert_int_equal(mutated(118 + 12, 4, 16, 3), RF_ERR_FORMAT);  /* count lies */
    assert_int_equal(mutated(118 + 8, 19, 16, 3), RF_ERR_FORMAT);  /* last before the last entry */
    assert_int_equal(parse(b, n, 5, 16, 2, &g, &last), RF_ERR_LIMIT);  /* more than asked */
    assert_int_equal(parse(b, n, 5, 17, 3, &g, &last), RF_ERR_FORMAT); /* seq = after */
    for (size_t cut = 0; cut < n; cut++) /* every cut is truncated, or refused before */
        assert_int_equal(parse(b, cut, 3, 16, 3, &g, &last), RF_ERR_TRUNCATED);
    uint8_t more[257];
    memcpy(more, b, n);
    more[n] = 0;
    assert_int_equal(parse(more, n + 1, 4, 16, 3, &g, &last), RF_ERR_FORMAT); /* after the end */
    /* a failure is sticky */
    struct rf_range_parser p;
    rf_range_parser_init(&p, 0, 3, NULL, NULL, NULL);
    assert_int_equal(rf_range_feed(&p, (const uint8_t *)"XFRG\x01", 5), RF_ERR_FORMAT);
    assert_int_equal(rf_range_feed(&p, b, n), RF_ERR_FORMAT);
    assert_int_equal(rf_range_finish(&p, &last), RF_ERR_FORMAT);
    /* a callback's refusal stops the parse */
    rf_range_parser_init(&p, 16, 3, NULL, NULL, NULL);
    assert_int_equal(rf_range_feed(&p, b, n), 0);
    assert_int_equal(rf_range_finish(&p, &last), 0);
}

static int refuse_entry(void *ctx, const struct rf_range_entry *e)
{
    (void)ctx;
    return e->seq == 19 ? RF_ERR_PROTOCOL : 0;
}

static void callback_refusal_stops(void **state)
{
    (void)state;
    uint8_t b[256];
    size_t n = vec(b, sizeof(b));
    struct rf_range_parser p;
    int64_t last;
    rf_range_parser_init(&p, 16, 3, refuse_entry, NULL, NULL);
    assert_int_equal(rf_range_feed(&p, b, n), RF_ERR_PROTOCOL);
    assert_int_equal(rf_range_finish(&p, &last), RF_ERR_PROTOCOL);
}

static void empty_answer(void **state)
{
    (void)state;
    uint8_t b[RF_RANGE_HEAD_BYTES + RF_RANGE_END_BYTES];
    struct got g;
    int64_t last = 0;
    rf_range_put_head(b);
    rf_range_put_end(b + RF_RANGE_HEAD_BYTES, 100, 0);
    assert_int_equal(parse(b, sizeof(b), 1, 100, 1, &g, &last), 0);
    assert_int_equal(last, 100);
    assert_int_equal(g.n, 0);
    rf_range_put_end(b + RF_RANGE_HEAD_BYTES, 99, 0); /* last below after */
    assert_int_equal(parse(b, sizeof(b), 1, 100, 1, &g, &last), RF_ERR_FORMAT);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vector_encodes_and_parses),
        cmocka_unit_test(encoder_refuses_bad_entries),
        cmocka_unit_test(parser_refuses_malformed),
        cmocka_unit_test(callback_refusal_stops),
        cmocka_unit_test(empty_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
