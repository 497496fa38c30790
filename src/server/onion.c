/*
 * onion.c - the onion service of `refuge serve --onion`: a client of tor's
 * control protocol (control-spec: PROTOCOLINFO, AUTHCHALLENGE SAFECOOKIE,
 * AUTHENTICATE, ADD_ONION), the service's key file, and the thread that
 * adds the service again after tor restarts. The order of the calls and why
 * is in onion.h.
 *
 * Control protocol, as far as refuge reads it: a reply is lines
 * "DDD-text", "DDD+text" (followed by data lines up to "."), ending with
 * "DDD text"; CRLF (a bare LF is taken too). rf_onion_reply_parse walks the
 * bytes with lib/buf.h's reader and picks KEY=VALUE tokens from a table
 * (reply_fields[]): values are bounded, quoted strings unescaped, anything
 * else ignored. Replies 6xx (events) are skipped: refuge asks for none.
 *
 * Authentication is SAFECOOKIE only: tor must show it knows the cookie
 * (SERVERHASH) before refuge shows it does, so a process that took the
 * control port before tor learns nothing, and is never handed the key.
 *
 * Files in the data directory:
 *   onion-key       "ED25519-V3:<88 base64 chars>\n", mode 0600: tor's own
 *                   serialisation of the service's secret key, as ADD_ONION
 *                   returned it; written once (tmp, fsync, rename, fsync dir)
 *   onion-hostname  "<56 chars>.onion\n", mode 0640: for the admin
 *
 * Invariants: only the watch thread touches the connection once it runs;
 * the key and every buffer that held it (commands, replies) are
 * sodium_malloc memory, wiped; nothing here logs or prints the key.
 */
#include "server/onion.h"
#include "server/metrics.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define IN_MAX (64 * 1024) /* bytes of replies buffered */
#define CMD_MAX 1024       /* longest command refuge sends */
#define REPLY_TIMEOUT_MS 30000
#define BACKOFF_MIN_MS 500
#define BACKOFF_MAX_MS 30000
#define COOKIE_LEN 32
#define NONCE_LEN 32
#define KEY_TYPE "ED25519-V3:"
#define KEY_B64_LEN 88
#define VIRT_PORT 80

static const char server_hash_key[] = "Tor safe cookie authentication server-to-controller hash";
static const char client_hash_key[] = "Tor safe cookie authentication controller-to-server hash";

/* ---------------------------------------------------------------- parser */

enum field_check { F_ANY, F_HEX64, F_ONION_ID, F_KEY, F_METHODS };

struct reply_field {
    const char *key;
    size_t off;
    size_t cap;
    enum field_check check;
};

#define FIELD(k, member, chk)                                                                      \
    {                                                                                              \
        k, offsetof(struct rf_onion_reply, member), sizeof(((struct rf_onion_reply *)0)->member),  \
            chk                                                                                    \
    }

/* The KEY=VALUE tokens refuge reads, whatever line they are on. */
static const struct reply_field reply_fields[] = {
    FIELD("COOKIEFILE", cookie_file, F_ANY),
    FIELD("Tor", tor_version, F_ANY),
    FIELD("ServiceID", service_id, F_ONION_ID),
    FIELD("PrivateKey", private_key, F_KEY),
    FIELD("SERVERHASH", server_hash, F_HEX64),
    FIELD("SERVERNONCE", server_nonce, F_HEX64),
    {"METHODS", 0, 0, F_METHODS},
};

static const struct {
    const char *name;
    unsigned bit;
} auth_methods[] = {
    {"NULL", RF_ONION_AUTH_NULL},
    {"COOKIE", RF_ONION_AUTH_COOKIE},
    {"SAFECOOKIE", RF_ONION_AUTH_SAFECOOKIE},
    {"HASHEDPASSWORD", RF_ONION_AUTH_PASSWORD},
};

/* The next byte without taking it. */
static int peek(const struct rf_reader *r, uint8_t *c)
{
    struct rf_reader t = *r;
    return rf_get_u8(&t, c);
}

/* One line: its text without CRLF in (*line, *len). */
static int get_line(struct rf_reader *r, const uint8_t **line, size_t *len)
{
    struct rf_reader scan = *r;
    size_t n = 0;
    uint8_t c = 0;
    for (;;) {
        if (n > RF_ONION_LINE_MAX)
            return RF_ERR_LIMIT;
        if (rf_get_u8(&scan, &c) != 0)
            return RF_ERR_TRUNCATED;
        if (c == '\n')
            break;
        if (c == '\0')
            return RF_ERR_FORMAT;
        n++;
    }
    int rc = rf_get_ptr(r, line, n + 1); /* the line and its LF */
    if (rc != 0)
        return rc;
    *len = n;
    if (n > 0 && (*line)[n - 1] == '\r')
        (*len)--;
    return 0;
}

static int check_value(enum field_check chk, const char *v, size_t n)
{
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=";
    size_t i = 0;
    switch (chk) {
    case F_ANY:
    case F_METHODS:
        return 0;
    case F_HEX64:
        if (n != 64)
            return RF_ERR_FORMAT;
        for (; i < n; i++)
            if (strchr("0123456789abcdefABCDEF", v[i]) == NULL)
                return RF_ERR_FORMAT;
        return 0;
    case F_ONION_ID:
        if (n != RF_ONION_ID_LEN)
            return RF_ERR_FORMAT;
        for (; i < n; i++)
            if (strchr("abcdefghijklmnopqrstuvwxyz234567", v[i]) == NULL)
                return RF_ERR_FORMAT;
        return 0;
    case F_KEY:
        if (n != sizeof(KEY_TYPE) - 1 + KEY_B64_LEN || strncmp(v, KEY_TYPE, sizeof(KEY_TYPE) - 1))
            return RF_ERR_FORMAT;
        for (i = sizeof(KEY_TYPE) - 1; i < n; i++)
            if (strchr(b64, v[i]) == NULL)
                return RF_ERR_FORMAT;
        return 0;
    }
    return RF_ERR_FORMAT;
}

static void parse_methods(const char *v, unsigned *auth)
{
    const char *p = v;
    while (*p) {
        size_t n = strcspn(p, ",");
        for (size_t i = 0; i < sizeof(auth_methods) / sizeof(auth_methods[0]); i++)
            if (strlen(auth_methods[i].name) == n && strncmp(p, auth_methods[i].name, n) == 0)
                *auth |= auth_methods[i].bit;
        p += n;
        if (*p == ',')
            p++;
    }
}

/* Reads one token "KEY[=VALUE]" (VALUE bare or a quoted string) from r into
 * key/val (NUL-terminated). A key or value too long for its buffer is
 * consumed all the same and flagged in *too_long. */
static int get_token(struct rf_reader *r, char *key, size_t kcap, char *val, size_t vcap,
                     int *has_val, int *too_long)
{
    uint8_t c = 0;
    size_t k = 0, v = 0;
    *has_val = 0;
    *too_long = 0;
    key[0] = val[0] = 0;
    while (peek(r, &c) == 0 && c == ' ')
        rf_get_u8(r, &c);
    while (rf_get_u8(r, &c) == 0 && c != ' ' && c != '=') {
        if (k + 1 < kcap)
            key[k++] = (char)c;
        else
            *too_long = 1;
    }
    key[k] = 0;
    if (c != '=')
        return 0;
    *has_val = 1;
    int quoted = peek(r, &c) == 0 && c == '"';
    if (quoted)
        rf_get_u8(r, &c);
    for (;;) {
        if (rf_get_u8(r, &c) != 0) {
            if (quoted)
                return RF_ERR_FORMAT; /* unterminated */
            break;
        }
        if (!quoted && c == ' ')
            break;
        if (quoted && c == '"')
            break;
        if (quoted && c == '\\') {
            if (rf_get_u8(r, &c) != 0)
                return RF_ERR_FORMAT;
            c = c == 'n' ? '\n' : c == 't' ? '\t' : c == 'r' ? '\r' : c;
        }
        if (c == 0)
            return RF_ERR_FORMAT; /* an escaped NUL */
        if (v + 1 < vcap)
            val[v++] = (char)c;
        else
            *too_long = 1;
    }
    val[v] = 0;
    return 0;
}

/* Picks the known fields out of one line's text (after "DDD-"). */
static int parse_fields(const uint8_t *text, size_t n, struct rf_onion_reply *rep)
{
    struct rf_reader r;
    char key[32];
    char val[RF_ONION_PATH_MAX];
    int has_val = 0, too_long = 0;
    int rc = 0;
    rf_reader_init(&r, text, n);
    while (rc == 0 && rf_reader_left(&r) > 0) {
        rc = get_token(&r, key, sizeof(key), val, sizeof(val), &has_val, &too_long);
        if (rc != 0 || !has_val)
            continue;
        for (size_t i = 0; i < sizeof(reply_fields) / sizeof(reply_fields[0]); i++) {
            const struct reply_field *f = &reply_fields[i];
            if (strcmp(f->key, key) != 0)
                continue;
            size_t vn = strlen(val);
            if (too_long) {
                rc = RF_ERR_LIMIT;
                break;
            }
            if (f->check == F_METHODS) {
                parse_methods(val, &rep->auth);
                break;
            }
            if (vn >= f->cap)
                rc = RF_ERR_LIMIT;
            else
                rc = check_value(f->check, val, vn);
            if (rc == 0)
                memcpy((char *)rep + f->off, val, vn + 1);
            break;
        }
    }
    sodium_memzero(val, sizeof(val));
    return rc;
}

static void keep_text(struct rf_onion_reply *rep, const uint8_t *text, size_t n)
{
    size_t j = 0;
    for (size_t i = 0; i < n && j + 1 < sizeof(rep->text); i++)
        rep->text[j++] = text[i] >= 0x20 && text[i] < 0x7f ? (char)text[i] : '?';
    rep->text[j] = 0;
}

int rf_onion_reply_parse(const uint8_t *p, size_t n, size_t *used, struct rf_onion_reply *rep)
{
    struct rf_reader r;
    const uint8_t *line = NULL;
    size_t len = 0;
    int code = -1;
    rf_reader_init(&r, p, n);
    sodium_memzero(rep, sizeof(*rep));
    for (unsigned lines = 0;; lines++) {
        if (lines >= RF_ONION_LINES_MAX)
            return RF_ERR_LIMIT;
        int rc = get_line(&r, &line, &len);
        if (rc != 0)
            return rc;
        if (len < 4 || line[0] < '1' || line[0] > '6' || line[1] < '0' || line[1] > '9' ||
            line[2] < '0' || line[2] > '9')
            return RF_ERR_FORMAT;
        int c = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
        if (code >= 0 && c != code)
            return RF_ERR_FORMAT;
        code = c;
        char sep = (char)line[3];
        if (sep != '-' && sep != '+' && sep != ' ')
            return RF_ERR_FORMAT;
        rc = parse_fields(line + 4, len - 4, rep);
        if (rc != 0)
            return rc;
        if (sep == '+') { /* data lines up to "." */
            for (;; lines++) {
                if (lines >= RF_ONION_LINES_MAX)
                    return RF_ERR_LIMIT;
                rc = get_line(&r, &line, &len);
                if (rc != 0)
                    return rc;
                if (len == 1 && line[0] == '.')
                    break;
            }
        } else if (sep == ' ') {
            rep->code = code;
            keep_text(rep, line + 4, len - 4);
            *used = n - rf_reader_left(&r);
            return 0;
        }
    }
}

/* ------------------------------------------------------- the connection */

struct rf_onion {
    /* where tor is */
    int is_unix;
    struct sockaddr_storage ss;
    socklen_t sslen;
    uint16_t port;
    /* what PROTOCOLINFO said */
    char cookie_file[RF_ONION_PATH_MAX];
    gid_t cookie_gid;
    /* the service */
    char datadir[RF_ONION_PATH_MAX];
    char target[80];
    int want_pow;
    int pow;
    char *key; /* sodium_malloc, RF_ONION_KEY_MAX + 1: "ED25519-V3:..." or "" */
    char address[RF_ONION_ID_LEN + 7];
    /* the connection */
    int fd;
    uint8_t *in; /* sodium_malloc, IN_MAX */
    size_t in_len;
    struct rf_onion_reply *rep; /* sodium_malloc */
    char *cmd;                  /* sodium_malloc, CMD_MAX */
    /* the watch thread */
    int stop[2];
    pthread_t thread;
    int thread_up;
};

static void say(const char *what)
{
    fprintf(stderr, "refuge: %s\n", what);
}

int rf_onion_control_check(const char *spec)
{
    struct in6_addr a6;
    struct in_addr a4;
    char host[64];
    if (spec == NULL || *spec == 0)
        return RF_ERR_INVALID;
    if (strncmp(spec, "unix:", 5) == 0) {
        const char *path = spec + 5;
        return path[0] == '/' && strlen(path) < sizeof(((struct sockaddr_un *)0)->sun_path)
                   ? 0
                   : RF_ERR_INVALID;
    }
    const char *colon = spec[0] == '[' ? strstr(spec, "]:") : strrchr(spec, ':');
    if (colon == NULL)
        return RF_ERR_INVALID;
    const char *h = spec[0] == '[' ? spec + 1 : spec;
    size_t hn = (size_t)(colon - h);
    const char *port = colon + (spec[0] == '[' ? 2 : 1);
    if (hn == 0 || hn >= sizeof(host))
        return RF_ERR_INVALID;
    memcpy(host, h, hn);
    host[hn] = 0;
    char *end = NULL;
    long p = strtol(port, &end, 10);
    if (*port < '0' || *port > '9' || *end != 0 || p < 1 || p > 65535)
        return RF_ERR_INVALID;
    if (spec[0] == '[' ? inet_pton(AF_INET6, host, &a6) != 1 : inet_pton(AF_INET, host, &a4) != 1)
        return RF_ERR_INVALID;
    return 0;
}

static void set_addr(struct rf_onion *on, const char *spec)
{
    memset(&on->ss, 0, sizeof(on->ss));
    if (strncmp(spec, "unix:", 5) == 0) {
        struct sockaddr_un *un = (struct sockaddr_un *)&on->ss;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof(un->sun_path), "%s", spec + 5);
        on->sslen = sizeof(*un);
        on->is_unix = 1;
        return;
    }
    char host[64];
    const char *colon = spec[0] == '[' ? strstr(spec, "]:") : strrchr(spec, ':');
    const char *h = spec[0] == '[' ? spec + 1 : spec;
    snprintf(host, sizeof(host), "%.*s", (int)(colon - h), h);
    on->port = (uint16_t)strtol(colon + (spec[0] == '[' ? 2 : 1), NULL, 10);
    if (spec[0] == '[') {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&on->ss;
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(on->port);
        inet_pton(AF_INET6, host, &s6->sin6_addr);
        on->sslen = sizeof(*s6);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)&on->ss;
        s4->sin_family = AF_INET;
        s4->sin_port = htons(on->port);
        inet_pton(AF_INET, host, &s4->sin_addr);
        on->sslen = sizeof(*s4);
    }
}

static void ctl_close(struct rf_onion *on)
{
    if (on->fd >= 0)
        close(on->fd);
    on->fd = -1;
    sodium_memzero(on->in, IN_MAX);
    on->in_len = 0;
}

static int ctl_connect(struct rf_onion *on)
{
    ctl_close(on);
    int fd = socket(on->ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return RF_ERR_NET;
    if (connect(fd, (struct sockaddr *)&on->ss, on->sslen) != 0) {
        int e = errno;
        close(fd);
        errno = e; /* for the caller's message */
        return RF_ERR_NET;
    }
    on->fd = fd;
    return 0;
}

static int ctl_send(struct rf_onion *on, const char *line, size_t n)
{
    size_t off = 0;
    while (off < n) {
        ssize_t w = send(on->fd, line + off, n - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return RF_ERR_NET;
        off += (size_t)w;
    }
    return 0;
}

/* Reads until one complete reply (not an event) is in on->rep. */
static int ctl_reply(struct rf_onion *on)
{
    for (;;) {
        size_t used = 0;
        int rc = rf_onion_reply_parse(on->in, on->in_len, &used, on->rep);
        if (rc == 0) {
            memmove(on->in, on->in + used, on->in_len - used);
            on->in_len -= used;
            sodium_memzero(on->in + on->in_len, IN_MAX - on->in_len);
            if (on->rep->code >= 600)
                continue; /* an event: not ours */
            return 0;
        }
        if (rc != RF_ERR_TRUNCATED)
            return RF_ERR_PROTOCOL;
        if (on->in_len == IN_MAX)
            return RF_ERR_PROTOCOL;
        struct pollfd pfd[2] = {{on->fd, POLLIN, 0}, {on->stop[0], POLLIN, 0}};
        int pr = poll(pfd, 2, REPLY_TIMEOUT_MS);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pr > 0 && pfd[1].revents)
            return RF_ERR_CANCELLED; /* refuge is stopping */
        if (pr <= 0)
            return RF_ERR_NET;
        ssize_t got = recv(on->fd, on->in + on->in_len, IN_MAX - on->in_len, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return RF_ERR_NET;
        on->in_len += (size_t)got;
    }
}

/* Sends on->cmd (NUL-terminated, CRLF included) and reads the answer. */
static int ctl_cmd(struct rf_onion *on)
{
    int rc = ctl_send(on, on->cmd, strlen(on->cmd));
    sodium_memzero(on->cmd, CMD_MAX);
    return rc != 0 ? rc : ctl_reply(on);
}

static int protocolinfo(struct rf_onion *on, int first)
{
    snprintf(on->cmd, CMD_MAX, "PROTOCOLINFO 1\r\n");
    int rc = ctl_cmd(on);
    if (rc != 0)
        return rc;
    if (on->rep->code != 250 || on->rep->cookie_file[0] != '/')
        return RF_ERR_PROTOCOL;
    if (!(on->rep->auth & RF_ONION_AUTH_SAFECOOKIE))
        return RF_ERR_AUTH;
    if (first) {
        snprintf(on->cookie_file, sizeof(on->cookie_file), "%s", on->rep->cookie_file);
    } else if (strcmp(on->cookie_file, on->rep->cookie_file) != 0) {
        return RF_ERR_AUTH; /* a cookie elsewhere: the sandbox allows only the first */
    }
    return 0;
}

static int read_cookie(const char *path, uint8_t cookie[COOKIE_LEN])
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == EACCES || errno == EPERM ? RF_ERR_AUTH : RF_ERR_IO;
    size_t off = 0;
    uint8_t extra;
    while (off < COOKIE_LEN) {
        ssize_t r = read(fd, cookie + off, COOKIE_LEN - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        off += (size_t)r;
    }
    ssize_t more = off == COOKIE_LEN ? read(fd, &extra, 1) : 0;
    close(fd);
    return off == COOKIE_LEN && more == 0 ? 0 : RF_ERR_FORMAT;
}

static int authenticate(struct rf_onion *on)
{
    uint8_t *s = sodium_malloc(COOKIE_LEN + 2 * NONCE_LEN + 2 * crypto_auth_hmacsha256_BYTES);
    if (s == NULL)
        return RF_ERR_NOMEM;
    uint8_t *cookie = s, *cn = s + COOKIE_LEN, *sn = cn + NONCE_LEN;
    uint8_t *want = sn + NONCE_LEN, *mine = want + crypto_auth_hmacsha256_BYTES;
    char hex[2 * crypto_auth_hmacsha256_BYTES + 1];
    size_t got = 0;
    int rc = read_cookie(on->cookie_file, cookie);
    if (rc != 0)
        goto out;
    randombytes_buf(cn, NONCE_LEN);
    sodium_bin2hex(hex, sizeof(hex), cn, NONCE_LEN);
    snprintf(on->cmd, CMD_MAX, "AUTHCHALLENGE SAFECOOKIE %s\r\n", hex);
    rc = ctl_cmd(on);
    if (rc == 0 &&
        (on->rep->code != 250 || on->rep->server_hash[0] == 0 || on->rep->server_nonce[0] == 0))
        rc = RF_ERR_PROTOCOL;
    if (rc == 0 &&
        (rf_hex_decode(sn, NONCE_LEN, &got, on->rep->server_nonce, 64) != 0 || got != NONCE_LEN ||
         rf_hex_decode(want, 32, &got, on->rep->server_hash, 64) != 0))
        rc = RF_ERR_PROTOCOL;
    if (rc != 0)
        goto out;
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)server_hash_key, strlen(server_hash_key));
    crypto_auth_hmacsha256_update(&st, cookie, COOKIE_LEN + 2 * NONCE_LEN);
    crypto_auth_hmacsha256_final(&st, mine);
    if (sodium_memcmp(mine, want, crypto_auth_hmacsha256_BYTES) != 0) {
        rc = RF_ERR_AUTH; /* not the tor that wrote the cookie */
        goto out;
    }
    crypto_auth_hmacsha256_init(&st, (const uint8_t *)client_hash_key, strlen(client_hash_key));
    crypto_auth_hmacsha256_update(&st, cookie, COOKIE_LEN + 2 * NONCE_LEN);
    crypto_auth_hmacsha256_final(&st, mine);
    sodium_bin2hex(hex, sizeof(hex), mine, crypto_auth_hmacsha256_BYTES);
    snprintf(on->cmd, CMD_MAX, "AUTHENTICATE %s\r\n", hex);
    rc = ctl_cmd(on);
    if (rc == 0 && on->rep->code != 250)
        rc = RF_ERR_AUTH;
out:
    sodium_memzero(hex, sizeof(hex));
    sodium_free(s);
    return rc;
}

/* ------------------------------------------------------------ key files */

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RF_ERR_IO;
    int rc = fsync(fd) == 0 ? 0 : RF_ERR_IO;
    close(fd);
    return rc;
}

/* Writes name in the data directory atomically with the given mode. */
static int write_atomic(const struct rf_onion *on, const char *name, const char *text, mode_t mode)
{
    char path[RF_ONION_PATH_MAX + 32], tmp[RF_ONION_PATH_MAX + 40];
    snprintf(path, sizeof(path), "%s/%s", on->datadir, name);
    snprintf(tmp, sizeof(tmp), "%s/%s.tmp", on->datadir, name);
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0)
        return RF_ERR_IO;
    size_t n = strlen(text), off = 0;
    int rc = 0;
    while (rc == 0 && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = errno == ENOSPC ? RF_ERR_NOSPACE : RF_ERR_IO;
        else
            off += (size_t)w;
    }
    if (rc == 0 && (fchmod(fd, mode) != 0 || fsync(fd) != 0))
        rc = RF_ERR_IO;
    if (close(fd) != 0 && rc == 0)
        rc = RF_ERR_IO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = RF_ERR_IO;
    if (rc != 0)
        unlink(tmp);
    return rc == 0 ? fsync_dir(on->datadir) : rc;
}

/* Loads DATADIR/onion-key into on->key; RF_ERR_NOT_FOUND on first start. */
static int load_key(struct rf_onion *on)
{
    char path[RF_ONION_PATH_MAX + 32];
    struct stat st;
    snprintf(path, sizeof(path), "%s/%s", on->datadir, RF_ONION_KEY_FILE);
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RF_ERR_NOT_FOUND : RF_ERR_IO;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return RF_ERR_IO;
    }
    if (st.st_mode & 077) {
        fprintf(stderr,
                "refuge: %s can be read by others than its owner; refusing to use it:\n"
                "  chmod 600 %s   (and consider the key known: see docs/operations.md)\n",
                path, path);
        close(fd);
        return RF_ERR_INVALID;
    }
    ssize_t n = read(fd, on->key, RF_ONION_KEY_MAX);
    close(fd);
    if (n <= 0) {
        sodium_memzero(on->key, RF_ONION_KEY_MAX + 1);
        return RF_ERR_FORMAT;
    }
    on->key[n] = 0;
    if (n > 0 && on->key[n - 1] == '\n')
        on->key[--n] = 0;
    if (check_value(F_KEY, on->key, (size_t)n) != 0) {
        sodium_memzero(on->key, RF_ONION_KEY_MAX + 1);
        fprintf(stderr, "refuge: %s is damaged (not an ED25519-V3 key)\n", path);
        return RF_ERR_FORMAT;
    }
    return 0;
}

static int save_key(struct rf_onion *on)
{
    char *text = sodium_malloc(RF_ONION_KEY_MAX + 2);
    if (text == NULL)
        return RF_ERR_NOMEM;
    snprintf(text, RF_ONION_KEY_MAX + 2, "%s\n", on->key);
    int rc = write_atomic(on, RF_ONION_KEY_FILE, text, 0600);
    sodium_free(text);
    return rc;
}

/* ------------------------------------------------------------ ADD_ONION */

static int add_onion_once(struct rf_onion *on, int pow)
{
    int fresh = on->key[0] == 0;
    int n = snprintf(on->cmd, CMD_MAX, "ADD_ONION %s%s Port=%d,%s\r\n",
                     fresh ? "NEW:ED25519-V3" : on->key, pow ? " PoWDefensesEnabled=1" : "",
                     VIRT_PORT, on->target);
    if (n < 0 || n >= CMD_MAX)
        return RF_ERR_LIMIT;
    int rc = ctl_cmd(on);
    if (rc != 0)
        return rc;
    if (on->rep->code != 250)
        return RF_ERR_PROTOCOL;
    if (on->rep->service_id[0] == 0 || (fresh && on->rep->private_key[0] == 0))
        return RF_ERR_PROTOCOL;
    char addr[sizeof(on->address)];
    snprintf(addr, sizeof(addr), "%s.onion", on->rep->service_id);
    if (!fresh && on->address[0] && strcmp(addr, on->address) != 0)
        return RF_ERR_PROTOCOL; /* the same key is the same address */
    if (fresh)
        memcpy(on->key, on->rep->private_key, strlen(on->rep->private_key) + 1);
    sodium_memzero(on->rep, sizeof(*on->rep));
    if (on->address[0] == 0) /* set once: the main thread reads it */
        memcpy(on->address, addr, sizeof(addr));
    on->pow = pow;
    return 0;
}

/* ADD_ONION, with the proof-of-work defence if asked and tor has it. */
static int add_onion(struct rf_onion *on, int quiet)
{
    int rc = add_onion_once(on, on->want_pow);
    if (rc == RF_ERR_PROTOCOL && on->want_pow && (on->rep->code == 512 || on->rep->code == 513)) {
        if (!quiet)
            fprintf(stderr,
                    "refuge: warning: tor refused the proof-of-work defence (\"%s\"): this tor "
                    "lacks it (older than 0.4.8, or built without its pow module); serving "
                    "without it\n",
                    on->rep->text);
        rc = add_onion_once(on, 0);
    }
    return rc;
}

/* ------------------------------------------------------------ public API */

int rf_onion_new(struct rf_onion **out, const char *control, const char *datadir, int pow)
{
    *out = NULL;
    if (rf_onion_control_check(control) != 0 || strlen(datadir) >= RF_ONION_PATH_MAX)
        return RF_ERR_INVALID;
    struct rf_onion *on = calloc(1, sizeof(*on));
    if (on == NULL)
        return RF_ERR_NOMEM;
    on->fd = -1;
    on->stop[0] = on->stop[1] = -1;
    on->cookie_gid = (gid_t)-1;
    on->want_pow = pow;
    snprintf(on->datadir, sizeof(on->datadir), "%s", datadir);
    set_addr(on, control);
    on->in = sodium_malloc(IN_MAX);
    on->rep = sodium_malloc(sizeof(*on->rep));
    on->cmd = sodium_malloc(CMD_MAX);
    on->key = sodium_malloc(RF_ONION_KEY_MAX + 1);
    if (on->in == NULL || on->rep == NULL || on->cmd == NULL || on->key == NULL ||
        pipe2(on->stop, O_CLOEXEC) != 0) {
        rf_onion_free(on);
        return RF_ERR_NOMEM;
    }
    sodium_memzero(on->key, RF_ONION_KEY_MAX + 1);
    int rc = ctl_connect(on);
    if (rc != 0) {
        fprintf(stderr,
                "refuge: cannot reach tor's control port at %s: %s\n"
                "refuge: is tor running, with that ControlPort and CookieAuthentication 1?\n"
                "refuge: (Debian's tor has a control socket: --tor-control unix:/run/tor/control;\n"
                "refuge: see docs/operations.md, \"As an onion service\")\n",
                control, strerror(errno));
        rf_onion_free(on);
        return rc;
    }
    rc = protocolinfo(on, 1);
    if (rc == RF_ERR_AUTH) {
        say("tor's control port does not offer cookie authentication (SAFECOOKIE); set "
            "CookieAuthentication 1 in torrc");
    } else if (rc != 0) {
        fprintf(stderr, "refuge: %s does not answer like tor's control port (%s)\n", control,
                rf_strerror(rc));
    }
    if (rc != 0) {
        rf_onion_free(on);
        return rc;
    }
    struct stat st;
    if (stat(on->cookie_file, &st) == 0)
        on->cookie_gid = st.st_gid;
    *out = on;
    return 0;
}

const char *rf_onion_cookie_file(const struct rf_onion *on)
{
    return on->cookie_file;
}

gid_t rf_onion_cookie_gid(const struct rf_onion *on)
{
    return on->cookie_gid;
}

uint16_t rf_onion_control_port(const struct rf_onion *on)
{
    return on->is_unix ? 0 : on->port;
}

int rf_onion_auth(struct rf_onion *on)
{
    int rc = authenticate(on);
    if (rc == RF_ERR_AUTH && access(on->cookie_file, R_OK) != 0) {
        int e = errno;
        struct passwd *pw = getpwuid(geteuid());
        struct group *gr = on->cookie_gid != (gid_t)-1 ? getgrgid(on->cookie_gid) : NULL;
        fprintf(stderr,
                "refuge: cannot read tor's cookie %s: %s\n"
                "refuge: the serving user must be in the group that may read it:\n"
                "  adduser %s %s   (then start refuge serve again)\n",
                on->cookie_file, strerror(e), pw ? pw->pw_name : "USER",
                gr ? gr->gr_name : "debian-tor");
    } else if (rc == RF_ERR_AUTH) {
        say("tor refused the cookie (or the process on the control port is not that tor)");
    } else if (rc != 0) {
        fprintf(stderr, "refuge: cannot authenticate to tor with the cookie %s: %s\n",
                on->cookie_file, rf_strerror(rc));
    }
    return rc;
}

int rf_onion_publish(struct rf_onion *on, const char *listen, uint16_t port)
{
    /* the host of --listen, or loopback when it listens on every address */
    char host[64] = "127.0.0.1";
    const char *colon = listen[0] == '[' ? strstr(listen, "]:") : strrchr(listen, ':');
    if (colon != NULL) {
        size_t hn = (size_t)(colon - listen) + (listen[0] == '[');
        if (hn < sizeof(host))
            snprintf(host, sizeof(host), "%.*s", (int)hn, listen);
    }
    if (strcmp(host, "0.0.0.0") == 0)
        snprintf(host, sizeof(host), "127.0.0.1");
    else if (strcmp(host, "[::]") == 0)
        snprintf(host, sizeof(host), "[::1]");
    snprintf(on->target, sizeof(on->target), "%s:%u", host, (unsigned)port);

    int rc = load_key(on);
    int fresh = rc == RF_ERR_NOT_FOUND;
    if (rc != 0 && !fresh) {
        if (rc != RF_ERR_INVALID && rc != RF_ERR_FORMAT)
            fprintf(stderr, "refuge: cannot read %s/%s: %s\n", on->datadir, RF_ONION_KEY_FILE,
                    rf_strerror(rc));
        return rc;
    }
    rc = add_onion(on, 0);
    if (rc != 0) {
        fprintf(stderr, "refuge: tor did not add the onion service: %s%s%s\n", rf_strerror(rc),
                on->rep->text[0] ? ": " : "", on->rep->text);
        return rc;
    }
    if (fresh && (rc = save_key(on)) != 0) {
        fprintf(stderr, "refuge: cannot keep the onion service's key in %s/%s: %s\n", on->datadir,
                RF_ONION_KEY_FILE, rf_strerror(rc));
        return rc;
    }
    char line[sizeof(on->address) + 1];
    snprintf(line, sizeof(line), "%s\n", on->address);
    rc = write_atomic(on, RF_ONION_HOSTNAME_FILE, line, 0640);
    if (rc != 0)
        fprintf(stderr, "refuge: warning: cannot write %s/%s: %s\n", on->datadir,
                RF_ONION_HOSTNAME_FILE, rf_strerror(rc));
    rf_metrics_onion(1);
    return 0;
}

const char *rf_onion_address(const struct rf_onion *on)
{
    return on->address;
}

int rf_onion_pow(const struct rf_onion *on)
{
    return on->pow;
}

/* Waits ms or until stopped; 1 if stopped. */
static int wait_stop(struct rf_onion *on, int ms)
{
    struct pollfd pfd = {on->stop[0], POLLIN, 0};
    int pr = poll(&pfd, 1, ms);
    return pr > 0;
}

static int reconnect(struct rf_onion *on)
{
    int rc = ctl_connect(on);
    if (rc == 0)
        rc = protocolinfo(on, 0);
    if (rc == 0)
        rc = authenticate(on);
    if (rc == 0)
        rc = add_onion(on, 1);
    if (rc != 0)
        ctl_close(on);
    return rc;
}

static void *watch_main(void *arg)
{
    struct rf_onion *on = arg;
    for (;;) {
        struct pollfd pfd[2] = {{on->stop[0], POLLIN, 0}, {on->fd, POLLIN, 0}};
        int pr = poll(pfd, 2, -1);
        if (pr < 0 && errno == EINTR)
            continue;
        if (pfd[0].revents)
            break;
        if (pr > 0 && pfd[1].revents) {
            ssize_t got = IN_MAX > on->in_len
                              ? recv(on->fd, on->in + on->in_len, IN_MAX - on->in_len, 0)
                              : -1;
            if (got < 0 && (errno == EINTR || errno == EAGAIN))
                continue;
            if (got > 0) { /* events refuge did not ask for: drop whole replies */
                on->in_len += (size_t)got;
                size_t used = 0;
                while (rf_onion_reply_parse(on->in, on->in_len, &used, on->rep) == 0) {
                    memmove(on->in, on->in + used, on->in_len - used);
                    on->in_len -= used;
                }
                if (on->in_len < IN_MAX)
                    continue;
            }
        }
        /* the connection is gone: tor stopped or restarted */
        say("lost the control connection to tor; the onion service is down until tor is "
            "back (retrying)");
        ctl_close(on);
        rf_metrics_onion(0);
        int backoff = BACKOFF_MIN_MS, stopped = 0;
        while (!(stopped = wait_stop(on, backoff))) {
            if (reconnect(on) == 0)
                break;
            backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
        }
        if (stopped)
            break;
        rf_metrics_onion(1);
        fprintf(stderr, "refuge: onion service added again: http://%s/\n", on->address);
    }
    return NULL;
}

int rf_onion_watch(struct rf_onion *on)
{
    if (pthread_create(&on->thread, NULL, watch_main, on) != 0)
        return RF_ERR_NOMEM;
    on->thread_up = 1;
    return 0;
}

void rf_onion_free(struct rf_onion *on)
{
    if (on == NULL)
        return;
    if (on->thread_up) {
        char c = 1;
        while (write(on->stop[1], &c, 1) < 0 && errno == EINTR)
            ;
        pthread_join(on->thread, NULL);
    }
    if (on->in != NULL)
        ctl_close(on);
    else if (on->fd >= 0)
        close(on->fd);
    for (int i = 0; i < 2; i++)
        if (on->stop[i] >= 0)
            close(on->stop[i]);
    sodium_free(on->in);
    sodium_free(on->rep);
    sodium_free(on->cmd);
    sodium_free(on->key);
    free(on);
}
