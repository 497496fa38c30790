/*
 * pass.c - reading the passphrase (see pass.h). On a terminal: /dev/tty
 * with echo off (termios), restored even when the read fails. For scripts:
 * REFUGE_PASSPHRASE_FILE, first line, newline stripped. The passphrase is
 * only ever in sodium_malloc memory and wiped on free.
 */
#include "client/pass.h"
#include "lib/err.h"
#include "lib/keyfile.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

void rf_pass_free(char *p)
{
    if (p)
        sodium_free(p); /* sodium_free wipes */
}

/* Reads one line from fd into p (cap bytes with NUL), byte by byte so
 * nothing past the newline is consumed. */
static int read_line(int fd, char *p, size_t cap, size_t *len)
{
    size_t n = 0;
    for (;;) {
        char ch;
        ssize_t k = read(fd, &ch, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return RF_ERR_IO;
        if (k == 0 || ch == '\n')
            break;
        if (n + 1 >= cap)
            return RF_ERR_LIMIT;
        p[n++] = ch;
    }
    if (n > 0 && p[n - 1] == '\r')
        n--;
    p[n] = '\0';
    *len = n;
    return 0;
}

static int from_file(const char *path, char *p, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "refuge: cannot open REFUGE_PASSPHRASE_FILE: %s\n", strerror(errno));
        return RF_ERR_IO;
    }
    int rc = read_line(fd, p, cap, len);
    close(fd);
    if (rc != 0)
        fputs("refuge: cannot read a passphrase from REFUGE_PASSPHRASE_FILE\n", stderr);
    return rc;
}

static int from_tty(int fd, const char *prompt, char *p, size_t cap, size_t *len)
{
    struct termios old, quiet;
    int have_termios = tcgetattr(fd, &old) == 0;
    if (have_termios) {
        quiet = old;
        quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
        quiet.c_lflag |= ICANON;
        tcsetattr(fd, TCSANOW, &quiet);
    }
    if (write(fd, prompt, strlen(prompt)) < 0) {
        /* the prompt is a courtesy; reading still works */
    }
    int rc = read_line(fd, p, cap, len);
    if (have_termios)
        tcsetattr(fd, TCSANOW, &old);
    if (write(fd, "\n", 1) < 0) {
        /* as above */
    }
    return rc;
}

int rf_pass_read(char **out, size_t *len, const char *prompt, int confirm)
{
    *out = NULL;
    *len = 0;
    char *p = sodium_malloc(RF_PASSPHRASE_MAX + 1);
    char *again = NULL;
    int fd = -1, rc;
    if (!p)
        return RF_ERR_NOMEM;
    const char *file = getenv("REFUGE_PASSPHRASE_FILE");
    if (file && file[0]) {
        rc = from_file(file, p, RF_PASSPHRASE_MAX + 1, len);
        goto check;
    }
    fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (fd < 0) {
        fputs("refuge: no terminal to ask for the passphrase; set REFUGE_PASSPHRASE_FILE to a "
              "file holding it\n",
              stderr);
        rc = RF_ERR_IO;
        goto out;
    }
    rc = from_tty(fd, prompt, p, RF_PASSPHRASE_MAX + 1, len);
    if (rc == 0 && confirm) {
        size_t len2 = 0;
        again = sodium_malloc(RF_PASSPHRASE_MAX + 1);
        rc = again ? from_tty(fd, "Repeat passphrase: ", again, RF_PASSPHRASE_MAX + 1, &len2)
                   : RF_ERR_NOMEM;
        if (rc == 0 && (len2 != *len || sodium_memcmp(p, again, *len) != 0)) {
            fputs("refuge: the passphrases differ; nothing was changed\n", stderr);
            rc = RF_ERR_PASSPHRASE;
            goto out;
        }
    }
    if (rc == RF_ERR_LIMIT)
        fputs("refuge: passphrase too long\n", stderr);
check:
    if (rc == 0 && confirm && *len < RF_PASS_MIN) {
        fprintf(stderr, "refuge: the passphrase must have at least %d characters\n", RF_PASS_MIN);
        rc = RF_ERR_PASSPHRASE;
    }
out:
    if (fd >= 0)
        close(fd);
    rf_pass_free(again);
    if (rc != 0) {
        rf_pass_free(p);
        *len = 0;
        return rc;
    }
    *out = p;
    return 0;
}
