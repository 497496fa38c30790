/* boardrow_test.c - the packed board row (lib/boardrow.c): a summary
 * encodes to the bytes of docs/protocol.md 14.1 (computed apart, by the
 * format's table), which parse back in place to the same fields and unpack
 * to the JSON the board rows held before (every key, null where the summary
 * had none); every value that fits no typed tag goes as JSON, a string with
 * a NUL inside too (and does not unpack, as jansson would not have loaded
 * it); every truncation, a trailing byte, another version, an unknown tag,
 * a flag byte other than 0/1 and an empty JSON value are refused; and a
 * random summary round-trips. */
#include "lib/boardrow.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

/* docs/protocol.md 14.1 */
#define V_BOARD_ROW                                                                                \
    "010100000009766572696679696e6703000100000004416e6e6103000200000006757267656e74000000066661"   \
    "6d696c79010000000a323032372d30312d31350200000000000000020200000000000000000200000000000000"   \
    "01020000000000004e89020000000000000000050000000a5b22666f6f64222c335d0400020000000870617373"   \
    "706f72740100000002696400020000000000000001020000000000004e8400"

static const char summary[] =
    "{\"case\":\"q4mz7k2xea\",\"stage\":\"verifying\",\"assigned\":[\"Anna\"],"
    "\"tags\":[\"urgent\",\"family\"],\"due\":\"2027-01-15\","
    "\"checklist\":{\"passport\":true,\"id\":false},\"notes\":1,\"messages\":2,\"files\":0,"
    "\"replies\":1,\"first_day\":20100,\"last_day\":20105,\"pending\":0,\"lamport\":7,"
    "\"need\":[\"food\",3],\"search\":\"asylum food\"}";

static json_t *load(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &e);
    assert_non_null(j);
    return j;
}

static void encode(struct rf_buf *b, const char *json)
{
    json_t *s = load(json);
    rf_buf_init(b, RF_BOARDROW_MAX);
    assert_int_equal(rf_boardrow_encode(b, s), 0);
    json_decref(s);
}

static void vector(void **state)
{
    (void)state;
    struct rf_buf b;
    encode(&b, summary);
    char hex[2 * 200 + 1];
    assert_true(b.len < 200);
    sodium_bin2hex(hex, sizeof(hex), b.data, b.len);
    assert_string_equal(hex, V_BOARD_ROW);

    struct rf_boardrow r;
    assert_int_equal(rf_boardrow_parse(&r, b.data, b.len), 0);
    assert_int_equal(r.f[RF_BR_STAGE].tag, RF_BRT_STR);
    assert_int_equal(r.f[RF_BR_STAGE].len, 9);
    assert_memory_equal(r.f[RF_BR_STAGE].p, "verifying", 9);
    assert_true(r.f[RF_BR_STAGE].p >= b.data && r.f[RF_BR_STAGE].p + 9 <= b.data + b.len);
    assert_int_equal(r.f[RF_BR_LAST_DAY].tag, RF_BRT_INT);
    assert_int_equal(r.f[RF_BR_LAST_DAY].i, 20105);
    assert_int_equal(r.f[RF_BR_NEED].tag, RF_BRT_JSON);
    assert_int_equal(r.f[RF_BR_URGENCY].tag, RF_BRT_NULL);
    assert_int_equal(r.f[RF_BR_TAGS].tag, RF_BRT_STRS);
    assert_int_equal(r.f[RF_BR_TAGS].count, 2);
    size_t off = 0, n;
    const uint8_t *p;
    int flag;
    assert_true(rf_boardrow_next(&r.f[RF_BR_TAGS], &off, &p, &n, &flag));
    assert_int_equal(n, 6);
    assert_memory_equal(p, "urgent", 6);
    assert_true(rf_boardrow_next(&r.f[RF_BR_TAGS], &off, &p, &n, &flag));
    assert_memory_equal(p, "family", 6);
    assert_false(rf_boardrow_next(&r.f[RF_BR_TAGS], &off, &p, &n, &flag));
    off = 0;
    assert_true(rf_boardrow_next(&r.f[RF_BR_CHECKLIST], &off, &p, &n, &flag));
    assert_int_equal(flag, 1);
    assert_true(rf_boardrow_next(&r.f[RF_BR_CHECKLIST], &off, &p, &n, &flag));
    assert_int_equal(flag, 0);
    assert_memory_equal(p, "id", 2);

    /* the JSON row of before: the summary's values, null for urgency, no
     * "case", "lamport" or "search" */
    json_t *j = rf_boardrow_to_json(&r);
    json_t *want = load("{\"stage\":\"verifying\",\"assigned\":[\"Anna\"],"
                        "\"tags\":[\"urgent\",\"family\"],\"due\":\"2027-01-15\",\"messages\":2,"
                        "\"files\":0,\"replies\":1,\"last_day\":20105,\"pending\":0,"
                        "\"need\":[\"food\",3],\"checklist\":{\"passport\":true,\"id\":false},"
                        "\"notes\":1,\"first_day\":20100,\"urgency\":null}");
    assert_true(json_equal(j, want));
    /* in the fields' order (the desk and the listing rely on none, but the
     * bytes of a dump stay those of before) */
    char *a = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *w = json_dumps(want, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(a, w);
    free(a);
    free(w);
    json_decref(j);
    json_decref(want);
    rf_buf_free(&b);
}

static void refusals(void **state)
{
    (void)state;
    struct rf_buf b;
    struct rf_boardrow r;
    encode(&b, summary);
    for (size_t n = 0; n < b.len; n++) /* every truncation */
        assert_int_not_equal(rf_boardrow_parse(&r, b.data, n), 0);
    uint8_t *c = malloc(b.len + 1);
    memcpy(c, b.data, b.len);
    c[b.len] = 0;
    assert_int_equal(rf_boardrow_parse(&r, c, b.len + 1), RF_ERR_FORMAT); /* a trailing byte */
    c[0] = 2;
    assert_int_equal(rf_boardrow_parse(&r, c, b.len), RF_ERR_VERSION);
    c[0] = 1;
    c[1] = 6; /* stage: an unknown tag */
    assert_int_equal(rf_boardrow_parse(&r, c, b.len), RF_ERR_FORMAT);
    free(c);
    /* the passport flag (the byte after "passport") as 2 */
    const uint8_t *pp = NULL;
    for (size_t i = 0; i + 8 <= b.len && !pp; i++)
        if (memcmp(b.data + i, "passport", 8) == 0)
            pp = b.data + i + 8;
    assert_non_null(pp);
    b.data[pp - b.data] = 2;
    assert_int_equal(rf_boardrow_parse(&r, b.data, b.len), RF_ERR_FORMAT);
    rf_buf_free(&b);
    /* an empty JSON value; a lone version byte; nothing */
    uint8_t empty_json[1 + 5 + 13] = {1, RF_BRT_JSON, 0, 0, 0, 0};
    assert_int_equal(rf_boardrow_parse(&r, empty_json, 6 + 13), RF_ERR_FORMAT);
    uint8_t one = 1;
    assert_int_not_equal(rf_boardrow_parse(&r, &one, 1), 0);
    assert_int_not_equal(rf_boardrow_parse(&r, NULL, 0), 0);
    /* no object, no row */
    json_t *arr = json_array();
    rf_buf_init(&b, 1024);
    assert_int_equal(rf_boardrow_encode(&b, arr), RF_ERR_INVALID);
    assert_int_equal(b.len, 0);
    rf_buf_free(&b);
    json_decref(arr);
}

/* Values of every other shape go as JSON; a NUL inside a string too. */
static void other_shapes(void **state)
{
    (void)state;
    struct rf_buf b;
    struct rf_boardrow r;
    encode(&b, "{\"stage\":7,\"assigned\":\"Anna\",\"tags\":[\"a\",null],\"due\":true,"
               "\"messages\":1.5,\"checklist\":{\"x\":1},\"need\":{\"k\":[]},"
               "\"urgency\":\"a\\u0000b\",\"notes\":[],\"first_day\":{}}");
    assert_int_equal(rf_boardrow_parse(&r, b.data, b.len), 0);
    static const uint8_t want[RF_BR_NFIELDS] = {
        [RF_BR_STAGE] = RF_BRT_INT,       [RF_BR_ASSIGNED] = RF_BRT_STR,
        [RF_BR_TAGS] = RF_BRT_JSON,       [RF_BR_DUE] = RF_BRT_JSON,
        [RF_BR_MESSAGES] = RF_BRT_JSON,   [RF_BR_FILES] = RF_BRT_NULL,
        [RF_BR_REPLIES] = RF_BRT_NULL,    [RF_BR_LAST_DAY] = RF_BRT_NULL,
        [RF_BR_PENDING] = RF_BRT_NULL,    [RF_BR_NEED] = RF_BRT_JSON,
        [RF_BR_CHECKLIST] = RF_BRT_JSON,  [RF_BR_NOTES] = RF_BRT_STRS,
        [RF_BR_FIRST_DAY] = RF_BRT_FLAGS, [RF_BR_URGENCY] = RF_BRT_JSON,
    };
    for (int f = 0; f < RF_BR_NFIELDS; f++)
        if (r.f[f].tag != want[f])
            fail_msg("field %s: tag %d, not %d", rf_boardrow_keys[f], r.f[f].tag, want[f]);
    /* the NUL string does not unpack: the row is damaged, as before */
    assert_null(rf_boardrow_to_json(&r));
    rf_buf_free(&b);
    /* without it, every value comes back as it was */
    encode(&b, "{\"stage\":7,\"assigned\":\"Anna\",\"tags\":[\"a\",null],\"due\":true,"
               "\"messages\":1.5,\"checklist\":{\"x\":1},\"need\":{\"k\":[]},"
               "\"notes\":[],\"first_day\":{}}");
    assert_int_equal(rf_boardrow_parse(&r, b.data, b.len), 0);
    json_t *j = rf_boardrow_to_json(&r);
    json_t *w = load("{\"stage\":7,\"assigned\":\"Anna\",\"tags\":[\"a\",null],\"due\":true,"
                     "\"messages\":1.5,\"files\":null,\"replies\":null,\"last_day\":null,"
                     "\"pending\":null,\"need\":{\"k\":[]},\"checklist\":{\"x\":1},\"notes\":[],"
                     "\"first_day\":{},\"urgency\":null}");
    assert_true(json_equal(j, w));
    json_decref(j);
    json_decref(w);
    rf_buf_free(&b);
}

/* Random summaries of the shapes a case has: encode, parse, unpack, equal. */
static void round_trip(void **state)
{
    (void)state;
    static const char *const words[] = {"new",       "Anna", "Борис", "a\"b", "c\\d",
                                        "tab\there", "",     "x",     "día",  "\u202e"};
    for (int k = 0; k < 300; k++) {
        json_t *s = json_object();
        for (int f = 0; f < RF_BR_NFIELDS; f++) {
            json_t *v = NULL;
            switch (randombytes_uniform(6)) {
            case 0:
                break; /* absent */
            case 1:
                v = json_string(words[randombytes_uniform(10)]);
                break;
            case 2:
                v = json_integer((json_int_t)randombytes_random() - (json_int_t)2147483648LL);
                break;
            case 3:
                v = json_array();
                for (uint32_t i = randombytes_uniform(4); i > 0; i--)
                    json_array_append_new(v, json_string(words[randombytes_uniform(10)]));
                break;
            case 4:
                v = json_object();
                for (uint32_t i = randombytes_uniform(4); i > 0; i--)
                    json_object_set_new(v, words[randombytes_uniform(10)],
                                        json_boolean(randombytes_uniform(2)));
                break;
            default:
                v = json_null();
            }
            if (v)
                json_object_set_new(s, rf_boardrow_keys[f], v);
        }
        struct rf_buf b;
        struct rf_boardrow r;
        rf_buf_init(&b, RF_BOARDROW_MAX);
        assert_int_equal(rf_boardrow_encode(&b, s), 0);
        assert_int_equal(rf_boardrow_parse(&r, b.data, b.len), 0);
        json_t *j = rf_boardrow_to_json(&r);
        for (int f = 0; f < RF_BR_NFIELDS; f++) {
            json_t *in = json_object_get(s, rf_boardrow_keys[f]);
            json_t *out = json_object_get(j, rf_boardrow_keys[f]);
            assert_non_null(out);
            assert_true(in ? json_equal(in, out) : json_is_null(out));
            assert_int_not_equal(r.f[f].tag, RF_BRT_JSON); /* every shape here is typed */
        }
        json_decref(j);
        json_decref(s);
        rf_buf_free(&b);
    }
}

/* rf_boardrow_next on entries not from rf_boardrow_parse: every cut and
 * bad flag stops the walk, never reads past the value. */
static void next_stops_at_damage(void **state)
{
    (void)state;
    static const struct {
        uint8_t tag;
        uint8_t bytes[12];
        size_t len;
        int entries; /* walked before it stops */
    } cases[] = {
        {RF_BRT_STRS, {0, 0, 0, 2, 'a', 'b'}, 6, 1},
        {RF_BRT_STRS, {0, 0, 0, 2, 'a', 'b', 0, 0, 0}, 9, 1}, /* a length cut short */
        {RF_BRT_STRS, {0, 0, 0, 3, 'a', 'b'}, 6, 0},          /* longer than what is left */
        {RF_BRT_STRS, {0xff, 0xff, 0xff, 0xff, 'a'}, 5, 0},
        {RF_BRT_STRS, {0, 0, 0, 0, 0, 0, 0, 0}, 8, 2}, /* empty strings */
        {RF_BRT_FLAGS, {0, 0, 0, 1, 'x', 1}, 6, 1},
        {RF_BRT_FLAGS, {0, 0, 0, 1, 'x'}, 5, 0},    /* no flag byte */
        {RF_BRT_FLAGS, {0, 0, 0, 1, 'x', 2}, 6, 0}, /* a flag is 0 or 1 */
        {RF_BRT_FLAGS, {0, 0, 0, 1, 'x', 0, 0, 0, 0, 1, 'y'}, 11, 1},
        {RF_BRT_STR, {0, 0, 0, 1, 'x'}, 5, 0}, /* not a list */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t *b = malloc(cases[i].len); /* exactly the value: ASan sees any read past it */
        assert_non_null(b);
        memcpy(b, cases[i].bytes, cases[i].len);
        struct rf_boardrow_val v = {.tag = cases[i].tag, .p = b, .len = cases[i].len};
        size_t off = 0, n = 99;
        const uint8_t *p = NULL;
        int flag = -1, k = 0;
        while (rf_boardrow_next(&v, &off, &p, &n, &flag)) {
            assert_true(p >= b && p + n <= b + cases[i].len);
            assert_true(flag == 0 || flag == 1);
            assert_true(off <= cases[i].len);
            k++;
        }
        assert_int_equal(k, cases[i].entries);
        free(b);
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(vector),
        cmocka_unit_test(refusals),
        cmocka_unit_test(other_shapes),
        cmocka_unit_test(round_trip),
        cmocka_unit_test(next_stops_at_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
