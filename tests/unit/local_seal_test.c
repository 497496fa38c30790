/* local_seal_test.c - the rows of the local case database (rf_local_seal,
 * rf_local_open): a row opens under its own name only; every row takes a
 * nonce no other row has: within a thread its 16-byte prefix, drawn once,
 * and a counter that moves by one; another thread, and a child after
 * fork(2), draw another prefix. */
#include "client/cache.h"
#include "client/local.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_local.h"
#include "test_home.h"

#include <pthread.h>
#include <sodium.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static struct rf_local *l;

static void seal_one(uint8_t nonce[24])
{
    struct rf_buf b;
    rf_buf_init(&b, 4096);
    assert_int_equal(rf_local_seal(l, "test:row", (const uint8_t *)"row", 3, &b), 0);
    memcpy(nonce, b.data, 24);
    rf_buf_free(&b);
}

static void *other_thread(void *arg)
{
    seal_one(arg);
    return NULL;
}

static void rows_take_unique_nonces(void **state)
{
    (void)state;
    struct home t;
    home_new(&t, "seal");
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    struct rf_buf b, plain;
    rf_buf_init(&b, 4096);
    rf_buf_init_secure(&plain, 4096);
    assert_int_equal(rf_local_seal(l, "test:a", (const uint8_t *)"secret", 6, &b), 0);
    assert_int_equal(rf_local_open(l, "test:a", b.data, b.len, &plain), 0);
    assert_int_equal(plain.len, 6);
    assert_memory_equal(plain.data, "secret", 6);
    rf_buf_reset(&plain);
    assert_int_equal(rf_local_open(l, "test:b", b.data, b.len, &plain), RF_ERR_DECRYPT);
    uint8_t n1[24], n2[24], n3[24], nt[24], nc[24];
    seal_one(n1);
    seal_one(n2);
    seal_one(n3);
    assert_memory_equal(n1, n2, 16); /* one prefix a thread ... */
    assert_memory_equal(n2, n3, 16);
    uint64_t c1 = 0, c2 = 0;
    for (int i = 16; i < 24; i++) {
        c1 = c1 << 8 | n1[i];
        c2 = c2 << 8 | n2[i];
    }
    assert_true(c2 == c1 + 1); /* ... and a counter */
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, other_thread, nt), 0);
    pthread_join(th, NULL);
    assert_memory_not_equal(nt, n1, 16); /* another thread: another prefix */
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    if (pid == 0) {
        seal_one(nc);
        _exit(write(fd[1], nc, 24) == 24 ? 0 : 1);
    }
    assert_int_equal(read(fd[0], nc, 24), 24);
    int st = 0;
    waitpid(pid, &st, 0);
    assert_memory_not_equal(nc, n1, 16); /* a child: its own prefix */
    close(fd[0]);
    close(fd[1]);
    rf_buf_free(&b);
    rf_buf_free(&plain);
    rf_local_free(l);
    home_free(&t);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(rows_take_unique_nonces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
