/*
 * onion_test.c - the tor control client of `refuge serve --onion`
 * (server/onion.c) without tor: the reply parser on replies tor really
 * sends, --tor-control values, and a fake control port on loopback that
 * plays tor (or an impostor) to check what refuge sends it.
 *
 *  - A process on the control port that does not know tor's cookie (its
 *    SERVERHASH is wrong) gets no AUTHENTICATE and never sees ADD_ONION or
 *    a key: rf_onion_auth fails with RF_ERR_AUTH.
 *  - A port that offers no SAFECOOKIE is refused at PROTOCOLINFO.
 *  - With the right cookie: first start sends ADD_ONION NEW:ED25519-V3
 *    with PoWDefensesEnabled=1, keeps the returned key in onion-key (0600)
 *    and the address in onion-hostname; a second start sends that key.
 *  - A tor that refuses the PoW keyword (512) gets the same ADD_ONION
 *    without it, and rf_onion_pow says 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "lib/err.h"
#include "server/onion.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define SID "iffkdtgcsizv4i5tcsup5x2oo6pb7onuu7vc7oc4fxjen5r5qn6f5sid"
#define KEY                                                                                        \
    "ED25519-V3:wBsErL0K4HvBV9EguOkicTIPwZLdKAm8+"                                                 \
    "wvKB2vEj3nT9Mb4xSDPv4QOIh10sF1R9p9m4p863DnSoBCJ74H"                                           \
    "ODQ=="

/* ------------------------------------------------------------- parser */

static void parse_ok(const char *text, struct rf_onion_reply *r)
{
    size_t used = 0;
    assert_int_equal(rf_onion_reply_parse((const uint8_t *)text, strlen(text), &used, r), 0);
    assert_int_equal(used, strlen(text));
}

static void test_parse_protocolinfo(void **state)
{
    (void)state;
    struct rf_onion_reply *r = sodium_malloc(sizeof(*r));
    parse_ok("250-PROTOCOLINFO 1\r\n250-AUTH METHODS=COOKIE,SAFECOOKIE "
             "COOKIEFILE=\"/run/tor/a \\\"b\\\\c\"\r\n250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n",
             r);
    assert_int_equal(r->code, 250);
    assert_int_equal(r->auth, RF_ONION_AUTH_COOKIE | RF_ONION_AUTH_SAFECOOKIE);
    assert_string_equal(r->cookie_file, "/run/tor/a \"b\\c");
    assert_string_equal(r->tor_version, "0.4.9.11");
    assert_string_equal(r->text, "OK");
    sodium_free(r);
}

static void test_parse_add_onion(void **state)
{
    (void)state;
    struct rf_onion_reply *r = sodium_malloc(sizeof(*r));
    parse_ok("250-ServiceID=" SID "\r\n250-PrivateKey=" KEY "\r\n250 OK\r\n", r);
    assert_string_equal(r->service_id, SID);
    assert_string_equal(r->private_key, KEY);
    parse_ok("512 Invalid PoWDefensesEnabled\r\n", r);
    assert_int_equal(r->code, 512);
    assert_string_equal(r->text, "Invalid PoWDefensesEnabled");
    sodium_free(r);
}

static void test_parse_refusals(void **state)
{
    (void)state;
    struct rf_onion_reply *r = sodium_malloc(sizeof(*r));
    size_t used = 0;
    const char *partial = "250-ServiceID=" SID "\r\n250 O";
    assert_int_equal(rf_onion_reply_parse((const uint8_t *)partial, strlen(partial), &used, r),
                     RF_ERR_TRUNCATED);
    const char *bad_id = "250-ServiceID=short\r\n250 OK\r\n";
    assert_int_equal(rf_onion_reply_parse((const uint8_t *)bad_id, strlen(bad_id), &used, r),
                     RF_ERR_FORMAT);
    const char *mixed = "250-a\r\n550 b\r\n";
    assert_int_equal(rf_onion_reply_parse((const uint8_t *)mixed, strlen(mixed), &used, r),
                     RF_ERR_FORMAT);
    const char *garbage = "HTTP/1.0 200 OK\r\n";
    assert_int_equal(rf_onion_reply_parse((const uint8_t *)garbage, strlen(garbage), &used, r),
                     RF_ERR_FORMAT);
    char *long_line = malloc(RF_ONION_LINE_MAX + 16);
    memset(long_line, 'a', RF_ONION_LINE_MAX + 15);
    memcpy(long_line, "250-", 4);
    long_line[RF_ONION_LINE_MAX + 15] = 0;
    assert_int_equal(rf_onion_reply_parse((const uint8_t *)long_line, strlen(long_line), &used, r),
                     RF_ERR_LIMIT);
    free(long_line);
    sodium_free(r);
}

static void test_control_check(void **state)
{
    (void)state;
    assert_int_equal(rf_onion_control_check("127.0.0.1:9051"), 0);
    assert_int_equal(rf_onion_control_check("[::1]:9051"), 0);
    assert_int_equal(rf_onion_control_check("unix:/run/tor/control"), 0);
    assert_int_not_equal(rf_onion_control_check("localhost:9051"), 0); /* no DNS */
    assert_int_not_equal(rf_onion_control_check("127.0.0.1"), 0);
    assert_int_not_equal(rf_onion_control_check("127.0.0.1:0"), 0);
    assert_int_not_equal(rf_onion_control_check("127.0.0.1:65536"), 0);
    assert_int_not_equal(rf_onion_control_check("unix:relative"), 0);
    assert_int_not_equal(rf_onion_control_check(""), 0);
}

/* --------------------------------------------------- a fake control port */

enum fake_mode { FAKE_TOR, FAKE_IMPOSTOR, FAKE_NO_SAFECOOKIE, FAKE_NO_POW };

struct fake {
    enum fake_mode mode;
    int lfd;
    uint16_t port;
    char dir[256];
    char cookie_path[300];
    uint8_t cookie[32];
    char seen[8192]; /* every line refuge sent, in order */
    pthread_t thread;
};

static int read_line(int fd, char *out, size_t cap)
{
    size_t n = 0;
    char c;
    while (n + 1 < cap && read(fd, &c, 1) == 1) {
        if (c == '\n')
            break;
        if (c != '\r')
            out[n++] = c;
    }
    out[n] = 0;
    return n > 0 ? 0 : -1;
}

static void say_fd(int fd, const char *s)
{
    ssize_t w = write(fd, s, strlen(s));
    (void)w;
}

static void hmac(uint8_t out[32], const char *key, const uint8_t *msg, size_t n)
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, msg, n);
    crypto_auth_hmacsha256_final(&st, out);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    char line[1024], buf[512];
    uint8_t msg[96], h[32];
    int fd = accept(f->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    while (read_line(fd, line, sizeof(line)) == 0) {
        strncat(f->seen, line, sizeof(f->seen) - strlen(f->seen) - 2);
        strcat(f->seen, "\n");
        if (strncmp(line, "PROTOCOLINFO", 12) == 0) {
            snprintf(buf, sizeof(buf),
                     "250-PROTOCOLINFO 1\r\n250-AUTH METHODS=%s COOKIEFILE=\"%s\"\r\n"
                     "250-VERSION Tor=\"0.4.9.11\"\r\n250 OK\r\n",
                     f->mode == FAKE_NO_SAFECOOKIE ? "COOKIE" : "COOKIE,SAFECOOKIE",
                     f->cookie_path);
            say_fd(fd, buf);
        } else if (strncmp(line, "AUTHCHALLENGE SAFECOOKIE ", 25) == 0) {
            size_t got = 0;
            memcpy(msg, f->cookie, 32);
            sodium_hex2bin(msg + 32, 32, line + 25, 64, NULL, &got, NULL);
            randombytes_buf(msg + 64, 32);
            if (f->mode == FAKE_IMPOSTOR)
                randombytes_buf(msg, 32); /* it does not know the cookie */
            hmac(h, "Tor safe cookie authentication server-to-controller hash", msg, 96);
            char hh[65], nn[65];
            sodium_bin2hex(hh, sizeof(hh), h, 32);
            sodium_bin2hex(nn, sizeof(nn), msg + 64, 32);
            snprintf(buf, sizeof(buf), "250 AUTHCHALLENGE SERVERHASH=%s SERVERNONCE=%s\r\n", hh,
                     nn);
            memcpy(msg, f->cookie, 32);
            say_fd(fd, buf);
        } else if (strncmp(line, "AUTHENTICATE ", 13) == 0) {
            char want[65];
            hmac(h, "Tor safe cookie authentication controller-to-server hash", msg, 96);
            sodium_bin2hex(want, sizeof(want), h, 32);
            say_fd(fd, strcasecmp(line + 13, want) == 0 ? "250 OK\r\n"
                                                        : "515 Authentication failed\r\n");
        } else if (strncmp(line, "ADD_ONION ", 10) == 0) {
            if (f->mode == FAKE_NO_POW && strstr(line, "PoWDefensesEnabled") != NULL)
                say_fd(fd, "512 Unrecognized keyword argument \"PoWDefensesEnabled\"\r\n");
            else if (strstr(line, "NEW:ED25519-V3") != NULL)
                say_fd(fd, "250-ServiceID=" SID "\r\n250-PrivateKey=" KEY "\r\n250 OK\r\n");
            else
                say_fd(fd, "250-ServiceID=" SID "\r\n250 OK\r\n");
        } else {
            say_fd(fd, "510 Unrecognized command\r\n");
        }
    }
    close(fd);
    return NULL;
}

static void fake_start(struct fake *f, enum fake_mode mode)
{
    memset(f, 0, sizeof(*f));
    f->mode = mode;
    const char *base = getenv("REFUGE_TEST_TMP");
    snprintf(f->dir, sizeof(f->dir), "%s/onion-XXXXXX", base ? base : "/tmp");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->cookie_path, sizeof(f->cookie_path), "%s/cookie", f->dir);
    randombytes_buf(f->cookie, sizeof(f->cookie));
    FILE *c = fopen(f->cookie_path, "wb");
    assert_non_null(c);
    assert_int_equal(fwrite(f->cookie, 1, 32, c), 32);
    fclose(c);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    pthread_join(f->thread, NULL);
    close(f->lfd);
}

static void fake_clean(struct fake *f)
{
    char p[400];
    const char *names[] = {"cookie", "onion-key", "onion-hostname"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->dir, names[i]);
        unlink(p);
    }
    rmdir(f->dir);
}

static struct rf_onion *connect_fake(struct fake *f, int pow)
{
    char spec[64];
    struct rf_onion *on = NULL;
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", (unsigned)f->port);
    assert_int_equal(rf_onion_new(&on, spec, f->dir, pow), 0);
    assert_string_equal(rf_onion_cookie_file(on), f->cookie_path);
    assert_int_equal(rf_onion_control_port(on), f->port);
    return on;
}

static void test_impostor_gets_nothing(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, FAKE_IMPOSTOR);
    struct rf_onion *on = connect_fake(&f, 1);
    assert_int_equal(rf_onion_auth(on), RF_ERR_AUTH);
    rf_onion_free(on);
    fake_stop(&f);
    assert_non_null(strstr(f.seen, "AUTHCHALLENGE SAFECOOKIE "));
    assert_null(strstr(f.seen, "AUTHENTICATE "));
    assert_null(strstr(f.seen, "ADD_ONION"));
    fake_clean(&f);
}

static void test_no_safecookie_refused(void **state)
{
    (void)state;
    struct fake f;
    char spec[64];
    struct rf_onion *on = NULL;
    fake_start(&f, FAKE_NO_SAFECOOKIE);
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", (unsigned)f.port);
    assert_int_equal(rf_onion_new(&on, spec, f.dir, 1), RF_ERR_AUTH);
    assert_null(on);
    fake_stop(&f);
    assert_null(strstr(f.seen, "AUTHENTICATE"));
    fake_clean(&f);
}

static void read_file(const char *dir, const char *name, char *out, size_t cap, mode_t *mode)
{
    char p[400];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_int_equal(stat(p, &st), 0);
    *mode = st.st_mode & 0777;
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(out, 1, cap - 1, fp);
    out[n] = 0;
    fclose(fp);
}

static void test_publish_then_restore(void **state)
{
    (void)state;
    struct fake f;
    char text[256];
    mode_t mode = 0;
    fake_start(&f, FAKE_TOR);
    struct rf_onion *on = connect_fake(&f, 1);
    assert_int_equal(rf_onion_auth(on), 0);
    assert_int_equal(rf_onion_publish(on, "127.0.0.1:8080", 8080), 0);
    assert_string_equal(rf_onion_address(on), SID ".onion");
    assert_int_equal(rf_onion_pow(on), 1);
    rf_onion_free(on);
    fake_stop(&f);
    assert_non_null(
        strstr(f.seen, "ADD_ONION NEW:ED25519-V3 PoWDefensesEnabled=1 Port=80,127.0.0.1:8080\n"));
    read_file(f.dir, "onion-key", text, sizeof(text), &mode);
    assert_string_equal(text, KEY "\n");
    assert_int_equal(mode, 0600);
    read_file(f.dir, "onion-hostname", text, sizeof(text), &mode);
    assert_string_equal(text, SID ".onion\n");

    /* second start, another tor (cookie): the same key, listening on every address */
    struct fake g;
    char spec[64];
    fake_start(&g, FAKE_TOR);
    snprintf(spec, sizeof(spec), "127.0.0.1:%u", (unsigned)g.port);
    assert_int_equal(rf_onion_new(&on, spec, f.dir, 1), 0);
    assert_int_equal(rf_onion_auth(on), 0);
    assert_int_equal(rf_onion_publish(on, "0.0.0.0:9000", 9000), 0);
    assert_string_equal(rf_onion_address(on), SID ".onion");
    rf_onion_free(on);
    fake_stop(&g);
    assert_non_null(
        strstr(g.seen, "ADD_ONION " KEY " PoWDefensesEnabled=1 Port=80,127.0.0.1:9000\n"));
    fake_clean(&g);
    fake_clean(&f);
}

static void test_tor_without_pow(void **state)
{
    (void)state;
    struct fake f;
    fake_start(&f, FAKE_NO_POW);
    struct rf_onion *on = connect_fake(&f, 1);
    assert_int_equal(rf_onion_auth(on), 0);
    assert_int_equal(rf_onion_publish(on, "127.0.0.1:8080", 8080), 0);
    assert_int_equal(rf_onion_pow(on), 0);
    rf_onion_free(on);
    fake_stop(&f);
    assert_non_null(strstr(f.seen, "ADD_ONION NEW:ED25519-V3 Port=80,127.0.0.1:8080\n"));
    fake_clean(&f);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_protocolinfo),    cmocka_unit_test(test_parse_add_onion),
        cmocka_unit_test(test_parse_refusals),        cmocka_unit_test(test_control_check),
        cmocka_unit_test(test_impostor_gets_nothing), cmocka_unit_test(test_no_safecookie_refused),
        cmocka_unit_test(test_publish_then_restore),  cmocka_unit_test(test_tor_without_pow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
