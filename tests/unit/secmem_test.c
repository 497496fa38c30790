/* secmem_test.c - reused secret memory: wiped between uses, sized, bounded,
 * released at thread exit. */
#include "lib/secmem.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <sodium.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

static int setup(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

/* A block freed and taken again on the same thread is the same memory,
 * costs no new mapping, and holds none of the previous secret. */
static void test_reuse_is_wiped(void **state)
{
    (void)state;
    unsigned long long r0, m0, r1, m1;
    rf_secmem_counts(&r0, &m0);
    uint8_t *a = rf_secmem_alloc(100);
    assert_non_null(a);
    assert_int_equal(rf_secmem_size(a), 100);
    memset(a, 0xA5, 100);
    rf_secmem_free(a);
    uint8_t *b = rf_secmem_alloc(90); /* the same class (256 bytes) */
    assert_non_null(b);
    rf_secmem_counts(&r1, &m1);
    assert_true(r1 >= r0 + 1);
    /* b ends where a ended (both rounded to 16): every byte of b that a
     * held (a's 100 bytes from a; b starts 16 bytes later) is zero. */
    uint8_t *a_end = a + 112, *b_end = b + 96;
    assert_ptr_equal(a_end, b_end);
    for (size_t i = 0; i < (size_t)(a + 100 - b); i++)
        assert_int_equal(b[i], 0);
    rf_secmem_free(b);
}

/* A steady request pattern (allocate, use, free) maps nothing after the
 * first round: the hot path makes no system call for its secrets. */
static void test_steady_state_maps_nothing(void **state)
{
    (void)state;
    size_t sizes[] = {64, 300, 4096, 65536, 200000};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
        rf_secmem_free(rf_secmem_alloc(sizes[i]));
    unsigned long long r0, m0, r1, m1;
    rf_secmem_counts(&r0, &m0);
    for (int round = 0; round < 1000; round++) {
        void *p[5];
        for (size_t i = 0; i < 5; i++) {
            p[i] = rf_secmem_alloc(sizes[i]);
            assert_non_null(p[i]);
            memset(p[i], round, sizes[i]);
        }
        for (size_t i = 0; i < 5; i++)
            rf_secmem_free(p[i]);
    }
    rf_secmem_counts(&r1, &m1);
    assert_int_equal(m1, m0);
    assert_int_equal(r1 - r0, 5000);
}

/* More than a class's cache holds at once, and a block larger than every
 * class: all freed without error (the extra ones go back to sodium_free). */
static void test_overflow_and_large(void **state)
{
    (void)state;
    void *p[40];
    for (int i = 0; i < 40; i++) {
        p[i] = rf_secmem_alloc(1000);
        assert_non_null(p[i]);
    }
    for (int i = 0; i < 40; i++)
        rf_secmem_free(p[i]);
    uint8_t *big = rf_secmem_alloc(3u << 20);
    assert_non_null(big);
    assert_int_equal(rf_secmem_size(big), 3u << 20);
    big[0] = 1;
    big[(3u << 20) - 1] = 2;
    rf_secmem_free(big);
    rf_secmem_free(NULL);
    assert_null(rf_secmem_alloc(0));
}

static void *thread_main(void *arg)
{
    (void)arg;
    for (int i = 0; i < 100; i++)
        rf_secmem_free(rf_secmem_alloc(5000));
    return NULL; /* the thread's cache is released at exit */
}

/* Blocks allocated on one thread may be freed on another, and threads that
 * come and go release what they cached (AddressSanitizer's leak check and
 * the mapping count show nothing left). */
static void test_threads(void **state)
{
    (void)state;
    void *p = rf_secmem_alloc(777);
    assert_non_null(p);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, thread_main, NULL), 0);
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    rf_secmem_free(p);
}

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof(line), f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = strtol(line + n + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

/* "Locked:" of the mapping holding p (/proc/self/smaps): resident pages
 * that are locked. */
static long locked_kb(const void *p)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    long v = -1;
    int in = 0;
    uintptr_t a = (uintptr_t)p;
    while (f && fgets(line, sizeof(line), f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = a >= lo && a < hi;
            continue;
        }
        if (in && strncmp(line, "Locked:", 7) == 0)
            v = strtol(line + 7, NULL, 10);
    }
    if (f)
        fclose(f);
    return v;
}

/* A region sized for thousands of entries costs (and locks) only the pages
 * touched; it starts zeroed; the guard page after it is really there. */
static void test_region_lazy(void **state)
{
    (void)state;
    size_t n = 8u << 20;
    long rss0 = status_kb("VmRSS");
    uint8_t *p = rf_secmem_region(n);
    assert_non_null(p);
    long rss1 = status_kb("VmRSS");
    assert_true(rss1 - rss0 < 1024); /* not 8 MB */
    for (size_t i = 0; i < n; i += 1u << 20)
        assert_int_equal(p[i], 0); /* reads map the zero page */
    memset(p, 0x5a, 3 * 4096);
    long rss2 = status_kb("VmRSS");
    assert_true(rss2 - rss0 < 2048);
    long lck = locked_kb(p);
    if (getuid() == 0) /* under RLIMIT_MEMLOCK a non-root run may be unlocked */
        assert_true(lck >= 12 && lck < 1024); /* the touched pages, locked */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        signal(SIGSEGV, SIG_DFL); /* not cmocka's handler */
        signal(SIGBUS, SIG_DFL);
        volatile uint8_t *q = p;
        (void)q[(n + 4095) / 4096 * 4096]; /* the guard page: SIGSEGV */
        _exit(0);
    }
    int st = 0;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS));
    rf_secmem_region_free(p, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reuse_is_wiped),     cmocka_unit_test(test_steady_state_maps_nothing),
        cmocka_unit_test(test_overflow_and_large), cmocka_unit_test(test_threads),
        cmocka_unit_test(test_region_lazy),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
