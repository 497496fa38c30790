/*
 * media.c - the parent side of file handling (see media.h): spawning the
 * decoding child, feeding it, bounding and timing it, reading its answer;
 * labels; stripping through lib/imgseg.c. The child is in media_child.c.
 *
 * Invariants:
 *  - The child is a new program image (posix_spawn of refuge-media), never
 *    a fork: a fork would copy the unlocked keys into the process that
 *    decodes hostile bytes.
 *  - The child's stdin/stdout is one end of a socketpair; its stderr is
 *    /dev/null (REFUGE_MEDIA_DEBUG=1 keeps it) so a hostile file cannot
 *    write to the caseworker's terminal; its environment is empty.
 *  - The parent never blocks on the child: nonblocking socket, poll with a
 *    deadline, SIGKILL at the deadline, always reaped.
 *  - The child's answer is untrusted: length-bounded and read through the
 *    bounds-checked reader; finding codes outside the enum are refused.
 */
#include "client/media.h"
#include "client/desk_priv.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAGIC 0x52464d31u /* "RFM1" */
#define ANSWER_HEAD 4
#define CHILD_NO_SANDBOX 4 /* media_child.c's exit code when confine() failed */

#define RF_MSGID(s) (s)

/* Each finding's label: a msgid of the desk's catalogues (po/LANG.po,
 * "desk.mf.*"), so the desk and `refuge files --check` say it in the
 * caseworker's language. */
static const char *const msgids[RF_MF_COUNT] = {
    [RF_MF_GPS] = RF_MSGID("desk.mf.gps"),
    [RF_MF_SERIAL] = RF_MSGID("desk.mf.serial"),
    [RF_MF_CAMERA] = RF_MSGID("desk.mf.camera"),
    [RF_MF_DATE] = RF_MSGID("desk.mf.date"),
    [RF_MF_OWNER] = RF_MSGID("desk.mf.owner"),
    [RF_MF_AUTHOR] = RF_MSGID("desk.mf.author"),
    [RF_MF_CREATOR] = RF_MSGID("desk.mf.creator"),
    [RF_MF_SOFTWARE] = RF_MSGID("desk.mf.software"),
    [RF_MF_UNIQUE_ID] = RF_MSGID("desk.mf.unique_id"),
    [RF_MF_MAKERNOTE] = RF_MSGID("desk.mf.makernote"),
    [RF_MF_THUMBNAIL] = RF_MSGID("desk.mf.thumbnail"),
    [RF_MF_XMP] = RF_MSGID("desk.mf.xmp"),
    [RF_MF_IPTC] = RF_MSGID("desk.mf.iptc"),
    [RF_MF_COMMENT] = RF_MSGID("desk.mf.comment"),
    [RF_MF_EXIF] = RF_MSGID("desk.mf.exif"),
    [RF_MF_OTHER] = RF_MSGID("desk.mf.other"),
    [RF_MF_TRAILING] = RF_MSGID("desk.mf.trailing"),
};

const char *rf_media_finding_msgid(int f)
{
    if (f <= 0 || f >= RF_MF_COUNT || msgids[f] == NULL)
        return RF_MSGID("desk.mf.other");
    return msgids[f];
}

const char *rf_media_finding_label(int f, enum rf_lang lang)
{
    return rf_desk_tr(lang, rf_media_finding_msgid(f));
}

enum rf_lang rf_media_lang_env(void)
{
    static const char *const codes[RF_LANG_COUNT] = {"en", "ru", "uk"};
    /* gettext's order: LANGUAGE (its first entry), LC_ALL, LC_MESSAGES, LANG */
    static const char *const vars[] = {"LANGUAGE", "LC_ALL", "LC_MESSAGES", "LANG"};
    for (size_t v = 0; v < sizeof(vars) / sizeof(vars[0]); v++) {
        const char *s = getenv(vars[v]);
        if (s == NULL || !s[0])
            continue;
        for (int i = 0; i < RF_LANG_COUNT; i++)
            if (strncmp(s, codes[i], 2) == 0 && strchr("_.:@", s[2] ? s[2] : '_'))
                return (enum rf_lang)i;
        if (v > 0)
            return RF_LANG_EN; /* "C", "de_DE": English */
    }
    return RF_LANG_EN;
}

int rf_media_can_strip(enum rf_media_type t)
{
    return t == RF_MEDIA_JPEG || t == RF_MEDIA_PNG;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The decoders' program: refuge-media beside the running refuge (the build
 * tree, or a install that keeps both in one directory), else the one
 * installed in libexec. A test program that is its own child says so with
 * rf_media_child_self(). Resolved once. */
static char child_path[4096];
static pthread_once_t child_once = PTHREAD_ONCE_INIT;
static int child_self;

void rf_media_child_self(void)
{
    child_self = 1;
}

static void child_resolve(void)
{
    if (child_self) {
        snprintf(child_path, sizeof(child_path), "/proc/self/exe");
        return;
    }
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n > 0) {
        self[n] = '\0';
        char *slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            int w = snprintf(child_path, sizeof(child_path), "%s/refuge-media", self);
            if (w > 0 && (size_t)w < sizeof(child_path) && access(child_path, X_OK) == 0)
                return;
        }
    }
    snprintf(child_path, sizeof(child_path), "%s", RF_MEDIA_LIBEXEC);
}

static int spawn_child(pid_t *pid, int fd, int pdf)
{
    (void)pthread_once(&child_once, child_resolve);
    static char arg0[] = "refuge-media";
    static char arg1[] = RF_MEDIA_CHILD_ARG;
    static char arg1_pdf[] = RF_MEDIA_PDF_CHILD_ARG;
    char *argv[] = {arg0, pdf ? arg1_pdf : arg1, NULL};
    char *envp[] = {NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, dfl;
    int rc;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return RF_ERR_NOMEM;
    if (posix_spawnattr_init(&at) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return RF_ERR_NOMEM;
    }
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    const char *dbg = getenv("REFUGE_MEDIA_DEBUG");
    rc = posix_spawn_file_actions_adddup2(&fa, fd, 0);
    rc |= posix_spawn_file_actions_adddup2(&fa, fd, 1);
    if (!(dbg && strcmp(dbg, "1") == 0))
        rc |= posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    rc |= posix_spawnattr_setsigmask(&at, &none);
    rc |= posix_spawnattr_setsigdefault(&at, &dfl);
    rc |= posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (rc == 0)
        rc = posix_spawn(pid, child_path, &fa, &at, argv, envp) == 0 ? 0 : RF_ERR_IO;
    else
        rc = RF_ERR_NOMEM;
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    return rc;
}

/* Sends head + p and collects the answer until EOF, the deadline or the
 * size bound. */
static int exchange(int fd, const uint8_t *head, size_t hlen, const uint8_t *p, size_t n,
                    struct rf_buf *ans, long long deadline, int *timed_out)
{
    size_t sent = 0, total = hlen + n;
    uint8_t chunk[16384];
    int wr_open = 1;
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            *timed_out = 1;
            return RF_ERR_CANCELLED;
        }
        struct pollfd pfd = {fd, POLLIN | (sent < total ? POLLOUT : 0), 0};
        int k = poll(&pfd, 1, left > 1000 ? 1000 : (int)left);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return RF_ERR_IO;
        if (sent < total && (pfd.revents & POLLOUT)) {
            const uint8_t *src = sent < hlen ? head + sent : p + (sent - hlen);
            size_t len = sent < hlen ? hlen - sent : total - sent;
            ssize_t w = send(fd, src, len, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (w > 0)
                sent += (size_t)w;
            else if (w < 0 && errno != EAGAIN && errno != EINTR)
                sent = total; /* the child stopped reading: its answer says why */
        }
        if (sent == total && wr_open) {
            shutdown(fd, SHUT_WR);
            wr_open = 0;
        }
        if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, chunk, sizeof(chunk), MSG_DONTWAIT);
            if (r == 0)
                return 0;
            if (r < 0 && errno != EAGAIN && errno != EINTR)
                return sent == total ? 0 : RF_ERR_IO;
            if (r > 0) {
                int rc = rf_buf_put(ans, chunk, (size_t)r);
                sodium_memzero(chunk, (size_t)r);
                if (rc != 0)
                    return RF_ERR_LIMIT;
            }
        }
    }
}

int rf_media_run(struct rf_media_run *run, struct rf_buf *out, const uint8_t *p, size_t n)
{
    int sv[2] = {-1, -1};
    pid_t pid = -1;
    int rc;
    struct rf_buf ans;
    size_t out_max = run->out_max ? run->out_max : RF_MEDIA_PREVIEW_MAX;
    rf_buf_init_secure(&ans, out_max + ANSWER_HEAD);
    run->child_rc = 0;
    run->signal = 0;
    run->exit_code = -1;
    run->timed_out = 0;
    if (n > RF_MEDIA_IN_MAX)
        return RF_ERR_LIMIT;
    uint8_t head[RF_MEDIA_HEAD_LEN];
    struct rf_buf hb;
    rf_buf_init(&hb, sizeof(head));
    rc = rf_buf_put_u32(&hb, MAGIC);
    rc |= rf_buf_put_u8(&hb, (uint8_t)run->op);
    rc |= rf_buf_put_u32(&hb, run->max_side);
    rc |= rf_buf_put_u32(&hb, run->page);
    rc |= rf_buf_put_u64(&hb, (uint64_t)n);
    if (rc != 0) {
        rf_buf_free(&hb);
        return RF_ERR_NOMEM;
    }
    memcpy(head, hb.data, hb.len);
    rf_buf_free(&hb);
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
        return RF_ERR_IO;
    rc = spawn_child(&pid, sv[1], run->pdf);
    close(sv[1]);
    if (rc != 0) {
        close(sv[0]);
        return rc;
    }
    fcntl(sv[0], F_SETFL, fcntl(sv[0], F_GETFL) | O_NONBLOCK);
    unsigned tmo = run->timeout_ms ? run->timeout_ms : RF_MEDIA_TIMEOUT_MS;
    rc = exchange(sv[0], head, sizeof(head), p, n, &ans, now_ms() + tmo, &run->timed_out);
    close(sv[0]);
    if (rc != 0)
        kill(pid, SIGKILL);
    int st = 0;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFSIGNALED(st)) {
        run->signal = WTERMSIG(st);
        if (rc == 0)
            rc = RF_ERR_CANCELLED;
    } else if (WIFEXITED(st)) {
        run->exit_code = WEXITSTATUS(st);
    }
    if (rc == 0 && run->exit_code == CHILD_NO_SANDBOX)
        rc = RF_ERR_IO; /* it could not confine itself: no decoding without the sandbox */
    else if (rc == 0 && run->exit_code != 0)
        rc = RF_ERR_PROTOCOL;
    if (rc == 0) {
        struct rf_reader r;
        uint32_t v;
        rf_reader_init(&r, ans.data, ans.len);
        if (rf_get_u32(&r, &v) != 0)
            rc = RF_ERR_PROTOCOL;
        else if ((int32_t)v > 0 || (int32_t)v < RF_ERR_MIN)
            rc = RF_ERR_PROTOCOL;
        else
            run->child_rc = rc = (int32_t)v;
        if (rc == 0)
            rc = rf_buf_put(out, ans.data + ANSWER_HEAD, ans.len - ANSWER_HEAD);
    }
    rf_buf_free(&ans);
    return rc;
}

int rf_media_check(struct rf_media_report *rep, const uint8_t *p, size_t n)
{
    memset(rep, 0, sizeof(*rep));
    rep->type = rf_media_detect(p, n);
    if (rep->type == RF_MEDIA_OTHER)
        return 0;
    /* a PDF's information dictionary is read by poppler in the PDF child */
    struct rf_media_run run = {
        .op = RF_MOP_CHECK, .pdf = rep->type == RF_MEDIA_PDF, .out_max = 256};
    struct rf_buf out;
    rf_buf_init(&out, 256);
    int rc = rf_media_run(&run, &out, p, n);
    if (rc == RF_ERR_IO && run.pdf) {
        /* the PDF child needs Landlock and refused to start without it:
         * the image child still reads the uncompressed keys */
        run.pdf = 0;
        out.len = 0;
        rc = rf_media_run(&run, &out, p, n);
    }
    if (rc == 0) {
        struct rf_reader r;
        uint8_t t, k, f, last = 0;
        rf_reader_init(&r, out.data, out.len);
        if (rf_get_u8(&r, &t) != 0 || t != rep->type || rf_get_u8(&r, &k) != 0 || k >= RF_MF_COUNT)
            rc = RF_ERR_PROTOCOL;
        for (unsigned i = 0; rc == 0 && i < k; i++) {
            if (rf_get_u8(&r, &f) != 0 || f <= last || f >= RF_MF_COUNT)
                rc = RF_ERR_PROTOCOL;
            else
                rep->f[rep->n++] = last = f;
        }
        if (rc == 0 && rf_reader_expect_end(&r) != 0)
            rc = RF_ERR_PROTOCOL;
    }
    if (rc != 0)
        rep->n = 0;
    rf_buf_free(&out);
    return rc;
}

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

int rf_media_preview(struct rf_buf *out, const uint8_t *p, size_t n, unsigned max_side)
{
    enum rf_media_type t = rf_media_detect(p, n);
    if (t != RF_MEDIA_JPEG && t != RF_MEDIA_PNG)
        return RF_ERR_INVALID;
    if (max_side == 0)
        max_side = RF_MEDIA_SIDE_DEFAULT;
    if (max_side > RF_MEDIA_SIDE_MAX)
        return RF_ERR_INVALID;
    struct rf_media_run run = {.op = RF_MOP_PREVIEW, .max_side = max_side};
    size_t start = out->len;
    int rc = rf_media_run(&run, out, p, n);
    if (rc == 0 && (out->len - start < sizeof(png_sig) ||
                    memcmp(out->data + start, png_sig, sizeof(png_sig)) != 0))
        rc = RF_ERR_PROTOCOL;
    if (rc != 0)
        out->len = start;
    return rc;
}

int rf_media_pdf_preview(struct rf_buf *out, unsigned *pages, const uint8_t *p, size_t n,
                         unsigned page, unsigned max_side)
{
    if (pages)
        *pages = 0;
    if (rf_media_detect(p, n) != RF_MEDIA_PDF || page >= RF_MEDIA_PDF_PAGES_MAX)
        return RF_ERR_INVALID;
    if (max_side == 0)
        max_side = RF_MEDIA_SIDE_DEFAULT;
    if (max_side > RF_MEDIA_SIDE_MAX)
        return RF_ERR_INVALID;
    struct rf_media_run run = {.op = RF_MOP_PDF_PAGE, .pdf = 1, .max_side = max_side, .page = page};
    struct rf_buf ans;
    rf_buf_init_secure(&ans, RF_MEDIA_PREVIEW_MAX + 4);
    int rc = rf_media_run(&run, &ans, p, n);
    uint32_t np = 0;
    if (rc == 0) {
        struct rf_reader r;
        rf_reader_init(&r, ans.data, ans.len);
        if (rf_get_u32(&r, &np) != 0 || np == 0 || page >= np || ans.len - 4 < sizeof(png_sig) ||
            memcmp(ans.data + 4, png_sig, sizeof(png_sig)) != 0)
            rc = RF_ERR_PROTOCOL;
    }
    if (rc == 0)
        rc = rf_buf_put(out, ans.data + 4, ans.len - 4);
    if (rc == 0 && pages)
        *pages = np;
    rf_buf_free(&ans);
    return rc;
}

int rf_media_strip(struct rf_buf *out, struct rf_media_report *after, const uint8_t *p, size_t n)
{
    struct rf_media_report rep;
    size_t start = out->len;
    if (!rf_media_can_strip(rf_media_detect(p, n)))
        return RF_ERR_INVALID;
    int rc = rf_img_strip(out, p, n, NULL);
    if (rc != 0)
        return rc;
    /* the copy must still decode (a small preview proves it) */
    struct rf_buf probe;
    rf_buf_init_secure(&probe, RF_MEDIA_PREVIEW_MAX);
    rc = rf_media_preview(&probe, out->data + start, out->len - start, 16);
    rf_buf_free(&probe);
    if (rc == 0)
        rc = rf_media_check(&rep, out->data + start, out->len - start);
    if (rc == 0 && after)
        *after = rep;
    if (rc != 0)
        out->len = start;
    return rc;
}
