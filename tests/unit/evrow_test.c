/* evrow_test.c - a verified event's packed digest row (lib/evrow.h):
 * written and parsed back field for field; the vector of docs/protocol.md;
 * every truncation and a wrong tag refused; over-long names refused when
 * written. */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/evrow.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

static const char value[] = "[\"passport\",\"ticket\"]";

static void sample(struct rf_evrow *r, uint8_t pk[32], uint8_t h[32])
{
    for (int i = 0; i < 32; i++) {
        pk[i] = (uint8_t)i;
        h[i] = (uint8_t)(32 + i);
    }
    memset(r, 0, sizeof(*r));
    r->id = (const uint8_t *)"0123456789abcdef0123456789abcdef";
    r->id_len = 32;
    r->lamport = 7;
    r->roster = 1;
    r->stored = 2;
    r->day = 20400;
    r->seq = 1234;
    r->admin = 1;
    r->author_pk = pk;
    r->hash = h;
    r->author = (const uint8_t *)"Alice";
    r->author_len = 5;
    r->op = (const uint8_t *)"checklist";
    r->op_len = 9;
}

static void write_row(struct rf_buf *b, const struct rf_evrow *r)
{
    assert_int_equal(rf_evrow_head(b, r), 0);
    assert_int_equal(rf_buf_put(b, value, strlen(value)), 0);
}

static void evrow_round_trip(void **state)
{
    (void)state;
    struct rf_evrow r, back;
    uint8_t pk[32], h[32];
    struct rf_buf b;
    sample(&r, pk, h);
    rf_buf_init(&b, 4096);
    write_row(&b, &r);
    assert_true(rf_evrow_is(b.data, b.len));
    assert_int_equal(rf_evrow_parse(&back, b.data, b.len), 0);
    assert_int_equal(back.id_len, 32);
    assert_memory_equal(back.id, r.id, 32);
    assert_true(back.lamport == 7 && back.roster == 1 && back.stored == 2 && back.day == 20400);
    assert_true(back.seq == 1234 && back.admin == 1);
    assert_memory_equal(back.author_pk, pk, 32);
    assert_memory_equal(back.hash, h, 32);
    assert_int_equal(back.author_len, 5);
    assert_memory_equal(back.author, "Alice", 5);
    assert_int_equal(back.op_len, 9);
    assert_memory_equal(back.op, "checklist", 9);
    assert_int_equal(back.value_len, strlen(value));
    assert_memory_equal(back.value, value, strlen(value));
    /* negative seq and a lamport past INT64_MAX keep their bits */
    r.seq = -5;
    r.lamport = UINT64_MAX - 1;
    rf_buf_reset(&b);
    write_row(&b, &r);
    assert_int_equal(rf_evrow_parse(&back, b.data, b.len), 0);
    assert_true(back.seq == -5 && back.lamport == UINT64_MAX - 1);
    rf_buf_free(&b);
}

/* docs/protocol.md, "Event digest row, packed": vector 14.2 */
static void evrow_vector(void **state)
{
    (void)state;
    static const char want[] = "01"
                               "20"
                               "3031323334353637383961626364656630313233343536373839616263646566"
                               "0000000000000007"
                               "00000001"
                               "00000002"
                               "00004fb0"
                               "00000000000004d2"
                               "01"
                               "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
                               "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
                               "05"
                               "416c696365"
                               "09"
                               "636865636b6c697374"
                               "5b2270617373706f7274222c227469636b6574225d";
    struct rf_evrow r;
    uint8_t pk[32], h[32];
    struct rf_buf b;
    char hex[2 * 512 + 1];
    sample(&r, pk, h);
    rf_buf_init(&b, 4096);
    write_row(&b, &r);
    assert_true(b.len * 2 + 1 <= sizeof(hex));
    sodium_bin2hex(hex, sizeof(hex), b.data, b.len);
    assert_string_equal(hex, want);
    rf_buf_free(&b);
}

static void evrow_refuses_what_it_could_not_have_written(void **state)
{
    (void)state;
    struct rf_evrow r, back;
    uint8_t pk[32], h[32];
    struct rf_buf b;
    sample(&r, pk, h);
    rf_buf_init(&b, 4096);
    write_row(&b, &r);
    size_t head = b.len - strlen(value);
    for (size_t n = 0; n <= head; n++) /* cut anywhere up to the value: no row */
        assert_int_not_equal(rf_evrow_parse(&back, b.data, n), 0);
    b.data[0] = '{'; /* a JSON row */
    assert_false(rf_evrow_is(b.data, b.len));
    assert_int_equal(rf_evrow_parse(&back, b.data, b.len), RF_ERR_FORMAT);
    b.data[0] = RF_EVROW_TAG;
    b.data[head - 1 - 9 - 1 - 5 - 64 - 1] = 2; /* admin neither 0 nor 1 */
    assert_int_equal(rf_evrow_parse(&back, b.data, b.len), RF_ERR_FORMAT);
    rf_buf_free(&b);
    /* names past 255 bytes cannot be written */
    static uint8_t longname[256];
    memset(longname, 'a', sizeof(longname));
    r.author = longname;
    r.author_len = sizeof(longname);
    rf_buf_init(&b, 4096);
    assert_int_equal(rf_evrow_head(&b, &r), RF_ERR_FORMAT);
    rf_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(evrow_round_trip),
        cmocka_unit_test(evrow_vector),
        cmocka_unit_test(evrow_refuses_what_it_could_not_have_written),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
