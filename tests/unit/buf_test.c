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
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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

/* Runs f in a child; whether it died of an assert() (SIGABRT). */
static int dies_of_assert(void (*f)(void))
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the assert's message is expected; keep the test's log readable */
        if (freopen("/dev/null", "w", stderr) == NULL)
            _exit(3);
        f();
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
}

/* The corruptions below stay inside the memory they were given, so only the
 * assert can catch them (not ASan). */
static void buf_without_room_for_its_nul(void)
{
    struct rf_buf b;
    rf_buf_init(&b, 64);
    if (rf_buf_put(&b, "abc", 3) != 0)
        _exit(2);
    b.len = b.cap; /* a caller wrote right up to the end of what it reserved */
    (void)rf_buf_cstr(&b);
}

static void reader_past_its_end(void)
{
    static const uint8_t bytes[8] = "abcdefg";
    struct rf_reader r;
    uint8_t v;
    rf_reader_init(&r, bytes, 2);
    r.off = 3; /* a parser moved the reader by hand, past the end */
    (void)rf_get_u8(&r, &v);
}

static void reader_overrun_from_input(void)
{
    struct rf_reader r;
    uint32_t v;
    rf_reader_init(&r, "ab", 2);
    if (rf_get_u32(&r, &v) != RF_ERR_TRUNCATED)
        _exit(2);
}

/* The invariants of buf.c's head are checked at run time in this build (the
 * sanitizer build: NDEBUG unset); input that runs short is an error, not an
 * assert. */
/* rf_array_grow: starts at first, doubles, reaches need at least, and
 * leaves the array as it was when it cannot grow. */
static void array_grows(void **state)
{
    (void)state;
    int *a = NULL;
    size_t cap = 0;
    assert_int_equal(rf_array_grow(&a, &cap, 1, sizeof(*a), 16), 0);
    assert_int_equal(cap, 16);
    for (int i = 0; i < 16; i++)
        a[i] = i;
    assert_int_equal(rf_array_grow(&a, &cap, 16, sizeof(*a), 16), 0); /* enough: unchanged */
    assert_int_equal(cap, 16);
    assert_int_equal(rf_array_grow(&a, &cap, 17, sizeof(*a), 16), 0);
    assert_int_equal(cap, 32);
    assert_int_equal(rf_array_grow(&a, &cap, 100, sizeof(*a), 16), 0);
    assert_int_equal(cap, 100);
    for (int i = 0; i < 16; i++)
        assert_int_equal(a[i], i);
    int *before = a;
    assert_int_equal(rf_array_grow(&a, &cap, SIZE_MAX / 2, sizeof(*a), 16), RF_ERR_NOMEM);
    assert_ptr_equal(a, before);
    assert_int_equal(cap, 100);
    free(a);
}

static void broken_invariants_are_caught(void **state)
{
    (void)state;
    assert_true(dies_of_assert(buf_without_room_for_its_nul));
    assert_true(dies_of_assert(reader_past_its_end));
    assert_false(dies_of_assert(reader_overrun_from_input));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reader_refuses_overrun),       cmocka_unit_test(buf_limit_and_secure),
        cmocka_unit_test(encodings_round_trip),         cmocka_unit_test(array_grows),
        cmocka_unit_test(broken_invariants_are_caught),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
