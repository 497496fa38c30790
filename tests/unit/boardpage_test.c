/* boardpage_test.c - a page of board rows (lib/boardpage.h): written and
 * read back entry for entry; the vector of docs/protocol.md 16.1; every
 * truncation, a wrong version, a count of 0 or that does not match, an id
 * empty, too long or with a NUL, and bytes after the last entry refused. */
#include "lib/boardpage.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

/* docs/protocol.md 16.1 (computed apart: Python's struct.pack) */
static const char vector_hex[] =
    "01000000020a616161616132323232320000000000000000030000000000000011000000030102030a6262626262"
    "3333333333000000000000000005ffffffffffffffff0000000178";

static void sample(struct rf_buf *b)
{
    static const uint8_t r1[] = {1, 2, 3};
    struct rf_boardpage_entry e1 = {"aaaaa22222", 10, 3, 17, r1, 3};
    struct rf_boardpage_entry e2 = {"bbbbb33333", 10, 5, -1, (const uint8_t *)"x", 1};
    assert_int_equal(rf_boardpage_begin(b), 0);
    assert_int_equal(rf_boardpage_add(b, &e1), 0);
    assert_int_equal(rf_boardpage_add(b, &e2), 0);
    rf_boardpage_end(b, 2);
}

static void hex(char *out, const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static void page_round_trip(void **state)
{
    (void)state;
    struct rf_buf b;
    char h[2 * 128 + 1];
    rf_buf_init(&b, 4096);
    sample(&b);
    assert_int_equal(b.len, 73);
    hex(h, b.data, b.len);
    assert_string_equal(h, vector_hex);
    assert_int_equal(rf_boardpage_check(b.data, b.len), 0);
    uint32_t count = 0;
    size_t off = 0;
    struct rf_boardpage_entry e;
    assert_int_equal(rf_boardpage_first(b.data, b.len, &count, &off), 0);
    assert_int_equal(count, 2);
    assert_int_equal(rf_boardpage_next(b.data, b.len, &off, &e), 1);
    assert_string_equal(e.case_id, "aaaaa22222"); /* a C string in place */
    assert_int_equal(e.id_len, 10);
    assert_true(e.gen == 3 && e.last_seq == 17 && e.row_len == 3);
    assert_memory_equal(e.row, "\1\2\3", 3);
    assert_int_equal(rf_boardpage_next(b.data, b.len, &off, &e), 1);
    assert_string_equal(e.case_id, "bbbbb33333");
    assert_true(e.gen == 5 && e.last_seq == -1 && e.row_len == 1 && e.row[0] == 'x');
    assert_int_equal(rf_boardpage_next(b.data, b.len, &off, &e), 0);
    assert_int_equal(off, b.len);
    rf_buf_free(&b);
}

static void damaged_pages_refused(void **state)
{
    (void)state;
    struct rf_buf b;
    uint8_t p[128];
    rf_buf_init(&b, 4096);
    sample(&b);
    size_t n = b.len;
    memcpy(p, b.data, n);
    for (size_t cut = 0; cut < n; cut++) /* every truncation */
        assert_int_not_equal(rf_boardpage_check(p, cut), 0);
    p[0] = 2;
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_VERSION);
    p[0] = 1;
    p[4] = 0; /* count 0 */
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_FORMAT);
    p[4] = 3; /* three said, two there */
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_TRUNCATED);
    p[4] = 1; /* one said, two there */
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_FORMAT);
    p[4] = 2;
    p[5] = 0; /* an empty id */
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_FORMAT);
    p[5] = RF_BOARDPAGE_ID_MAX + 1;
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_FORMAT);
    p[5] = 10;
    p[8] = 0; /* a NUL inside the id */
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_FORMAT);
    p[8] = 'a';
    p[16] = 'x'; /* no NUL after it */
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_FORMAT);
    p[16] = 0;
    assert_int_equal(rf_boardpage_check(p, n), 0);
    p[n] = 0; /* a byte after the last entry */
    assert_int_not_equal(rf_boardpage_check(p, n + 1), 0);
    /* a row length past the end */
    p[36] = 0xff;
    assert_int_equal(rf_boardpage_check(p, n), RF_ERR_TRUNCATED);
    /* ids refused when written */
    struct rf_boardpage_entry e = {"a\0b", 3, 1, 1, NULL, 0};
    assert_int_equal(rf_boardpage_begin(&b), 0);
    assert_int_equal(rf_boardpage_add(&b, &e), RF_ERR_FORMAT);
    e.id_len = 0;
    assert_int_equal(rf_boardpage_add(&b, &e), RF_ERR_FORMAT);
    char longid[RF_BOARDPAGE_ID_MAX + 2];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    e.case_id = longid;
    e.id_len = RF_BOARDPAGE_ID_MAX + 1;
    assert_int_equal(rf_boardpage_add(&b, &e), RF_ERR_FORMAT);
    e.id_len = RF_BOARDPAGE_ID_MAX;
    assert_int_equal(rf_boardpage_add(&b, &e), 0);
    rf_boardpage_end(&b, 1);
    assert_int_equal(rf_boardpage_check(b.data, b.len), 0);
    rf_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(page_round_trip),
        cmocka_unit_test(damaged_pages_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
