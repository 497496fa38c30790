/* buf_test.c - the bounds-checked reader never reads past its range; the
 * limited buffer refuses to grow past its maximum. */
#include "lib/buf.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

static void reader_refuses_overrun(void **state)
{
    (void)state;
    const uint8_t data[5] = {0, 1, 2, 3, 4};
    struct rf_reader r;
    uint32_t v32;
    uint16_t v16;
    rf_reader_init(&r, data, sizeof(data));
    assert_int_equal(rf_get_u32(&r, &v32), 0);
    assert_int_equal(v32, 0x00010203);
    assert_int_equal(rf_get_u16(&r, &v16), RF_ERR_TRUNCATED);
    assert_int_equal(r.off, 4); /* a failed get consumes nothing */
    assert_int_equal(rf_reader_expect_end(&r), RF_ERR_FORMAT);
    uint8_t v8;
    assert_int_equal(rf_get_u8(&r, &v8), 0);
    assert_int_equal(v8, 4);
    assert_int_equal(rf_reader_expect_end(&r), 0);
}

static void buf_limit_and_secure(void **state)
{
    (void)state;
    struct rf_buf b;
    rf_buf_init_secure(&b, 10);
    assert_int_equal(rf_buf_put(&b, "0123456789", 10), 0);
    assert_int_equal(rf_buf_put_u8(&b, 1), RF_ERR_LIMIT);
    assert_int_equal(b.len, 10);
    assert_int_equal(rf_buf_cstr(&b), 0);
    assert_string_equal((char *)b.data, "0123456789");
    rf_buf_free(&b);
    rf_buf_init(&b, 1 << 20);
    assert_int_equal(rf_buf_put_u64(&b, 0x0102030405060708ULL), 0);
    struct rf_reader r;
    uint64_t v;
    rf_reader_init(&r, b.data, b.len);
    assert_int_equal(rf_get_u64(&r, &v), 0);
    assert_true(v == 0x0102030405060708ULL);
    rf_buf_free(&b);
}

static void encodings_round_trip(void **state)
{
    (void)state;
    const uint8_t in[5] = {0xff, 0, 0x10, 0x80, 0x7f};
    char hex[11], b64[16];
    uint8_t out[8];
    size_t n;
    assert_int_equal(rf_hex_encode(hex, sizeof(hex), in, 5), 0);
    assert_string_equal(hex, "ff0010807f");
    assert_int_equal(rf_hex_encode(hex, 10, in, 5), RF_ERR_LIMIT);
    assert_int_equal(rf_hex_decode(out, sizeof(out), &n, hex, 10), 0);
    assert_memory_equal(out, in, 5);
    assert_int_equal(rf_hex_decode(out, sizeof(out), &n, "zz", 2), RF_ERR_FORMAT);
    assert_int_equal(rf_b64_encode(b64, sizeof(b64), in, 5), 0);
    assert_int_equal(rf_b64_decode(out, sizeof(out), &n, b64, strlen(b64)), 0);
    assert_int_equal(n, 5);
    assert_memory_equal(out, in, 5);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reader_refuses_overrun),
        cmocka_unit_test(buf_limit_and_secure),
        cmocka_unit_test(encodings_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
