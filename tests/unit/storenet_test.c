/*
 * storenet_test.c - rf_store_net: the address family and the one TCP port
 * the sandbox lets a PostgreSQL instance's server connect to, from the URL
 * in DIR/database: one numeric host, or several (a standby to fail over
 * to) of one family on one port; names, Unix sockets, mixed families and
 * mixed ports refused.
 */
#include "lib/err.h"
#include "store/store.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

static char dir[512];

static int net_of_url(const char *url, int *family, unsigned *port)
{
    char path[600];
    snprintf(path, sizeof(path), "%s/database", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, url, strlen(url)), (ssize_t)strlen(url));
    close(fd);
    return rf_store_net(dir, family, port);
}

static void one_host_and_several(void **state)
{
    (void)state;
    int f = 0;
    unsigned port = 0;
    assert_int_equal(net_of_url("postgresql://refuge@10.0.0.5:5433/refuge", &f, &port), 0);
    assert_int_equal(f, AF_INET);
    assert_int_equal(port, 5433);
    assert_int_equal(net_of_url("postgresql://refuge@10.0.0.5/refuge", &f, &port), 0);
    assert_int_equal(port, 5432);
    assert_int_equal(net_of_url("postgresql://refuge@10.0.0.5,10.0.0.6/refuge"
                                "?target_session_attrs=read-write",
                                &f, &port),
                     0);
    assert_int_equal(f, AF_INET);
    assert_int_equal(port, 5432);
    assert_int_equal(
        net_of_url("postgresql://refuge@10.0.0.5:6000,10.0.0.6:6000/refuge", &f, &port), 0);
    assert_int_equal(port, 6000);
    assert_int_equal(net_of_url("postgresql://refuge@[::1]:5432,[fd00::6]:5432/refuge", &f, &port),
                     0);
    assert_int_equal(f, AF_INET6);
}

static void refused(void **state)
{
    (void)state;
    int f = 0;
    unsigned port = 0;
    const char *bad[] = {
        "postgresql://refuge@db.example.org/refuge",              /* a name */
        "postgresql://refuge@10.0.0.5,db.example.org/refuge",     /* a name among addresses */
        "postgresql://refuge@10.0.0.5,[::1]/refuge",              /* two families */
        "postgresql://refuge@10.0.0.5:5432,10.0.0.6:5433/refuge", /* two ports */
        "postgresql:///refuge?host=/var/run/postgresql",          /* a Unix socket */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(net_of_url(bad[i], &f, &port), RF_ERR_INVALID);
        assert_int_equal(f, 0);
    }
}

int main(void)
{
    const char *base = getenv("REFUGE_TEST_TMP");
    snprintf(dir, sizeof(dir), "%s/storenet-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(one_host_and_several),
        cmocka_unit_test(refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    char path[600];
    snprintf(path, sizeof(path), "%s/database", dir);
    unlink(path);
    rmdir(dir);
    return rc;
}
