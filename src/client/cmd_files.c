/*
 * cmd_files.c - `refuge files CASE --out DIR`: decrypt every file of a case
 * from the local cache into DIR. This is the one place the client writes
 * plaintext, where the caseworker asked for it.
 *
 * Streaming end to end (cache -> rf_open -> the output file), so memory is
 * constant whatever a file's size. The name comes from the person, so it
 * goes through rf_filemeta_safe_name and the file is created with O_EXCL
 * (never overwriting: "name-1.ext", "name-2.ext", ...) and O_NOFOLLOW. A
 * file whose decryption fails part way (tampered or truncated) is removed.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define NAME_CAP 256
#define SUFFIX_MAX 1000

static void usage(FILE *f)
{
    fputs("usage: refuge files CASE --out DIR\n"
          "\n"
          "Decrypts every file the person sent in CASE into DIR (created if missing), under a\n"
          "safe version of the name they gave. Existing files are never overwritten: a\n"
          "suffix -1, -2, ... is added. Needs a prior `refuge sync`; works offline.\n"
          "  -o, --out DIR   where to save the files\n",
          f);
}

struct saver {
    int dirfd;
    uint8_t head[RF_FILE_META_MAX];
    size_t head_len;
    int have_meta;
    struct rf_filemeta meta;
    char name[NAME_CAP + 16];
    int fd;
    uint64_t written;
    /* progress */
    struct rf_open *open;
    uint64_t fed, total;
    int bar;
    int last_pct;
};

/* "name.ext" -> "name-N.ext" (the extension kept so the file still opens). */
static void suffixed(char *out, size_t cap, const char *base, int n)
{
    if (n == 0) {
        snprintf(out, cap, "%s", base);
        return;
    }
    const char *dot = strrchr(base, '.');
    if (!dot || dot == base)
        snprintf(out, cap, "%s-%d", base, n);
    else
        snprintf(out, cap, "%.*s-%d%s", (int)(dot - base), base, n, dot);
}

static int create(struct saver *s)
{
    char base[NAME_CAP];
    int rc = rf_filemeta_safe_name(base, sizeof(base), s->meta.name);
    if (rc != 0)
        return rc;
    for (int i = 0; i <= SUFFIX_MAX; i++) {
        suffixed(s->name, sizeof(s->name), base, i);
        s->fd =
            openat(s->dirfd, s->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (s->fd >= 0)
            return 0;
        if (errno != EEXIST)
            return RF_ERR_IO;
    }
    return RF_ERR_EXISTS;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return errno == ENOSPC ? RF_ERR_NOSPACE : RF_ERR_IO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Receives plaintext: metadata first, then the file's bytes. */
static int plain_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct saver *s = ctx;
    if (s->have_meta) {
        s->written += n;
        return write_all(s->fd, p, n);
    }
    size_t k = sizeof(s->head) - s->head_len;
    if (k > n)
        k = n;
    memcpy(s->head + s->head_len, p, k);
    s->head_len += k;
    size_t used = 0;
    int rc = rf_filemeta_parse(&s->meta, &used, s->head, s->head_len);
    if (rc == RF_ERR_TRUNCATED && s->head_len < sizeof(s->head))
        return 0;
    if (rc != 0)
        return RF_ERR_FORMAT;
    s->have_meta = 1;
    rc = create(s);
    if (rc != 0)
        return rc;
    rc = write_all(s->fd, s->head + used, s->head_len - used);
    if (rc == 0)
        rc = write_all(s->fd, p + k, n - k);
    s->written = (s->head_len - used) + (n - k);
    sodium_memzero(s->head, sizeof(s->head));
    return rc;
}

static void progress(struct saver *s, int done)
{
    if (!s->bar || s->total == 0)
        return;
    int pct = done ? 100 : (int)(s->fed * 100 / s->total);
    if (pct == s->last_pct && !done)
        return;
    s->last_pct = pct;
    char bar[31];
    int fill = pct * 30 / 100;
    for (int i = 0; i < 30; i++)
        bar[i] = i < fill ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r  [%s] %3d%%", bar, pct);
    if (done)
        fputc('\n', stderr);
}

/* Receives ciphertext from the cache. */
static int cipher_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct saver *s = ctx;
    int rc = rf_open_write(s->open, p, n);
    s->fed += n;
    progress(s, 0);
    return rc;
}

static int save_one(struct rf_cache *c, const struct rf_staff_keys *k, const struct rf_cobj *o,
                    int dirfd, const char *dir)
{
    struct saver *s = sodium_malloc(sizeof(*s));
    if (!s)
        return RF_ERR_NOMEM;
    memset(s, 0, sizeof(*s));
    s->dirfd = dirfd;
    s->fd = -1;
    s->total = o->size;
    s->bar = isatty(STDERR_FILENO);
    s->last_pct = -1;
    uint8_t grant[RF_GRANT_BYTES];
    int use_grant = 0; /* a grant: sealed before this caseworker joined */
    int rc = rf_thread_pick(c, k, o->seq, grant, &use_grant);
    if (rc == 0 && use_grant)
        rc = rf_open_new_grant(&s->open, grant, k->box_pk, k->box_sk, plain_sink, s);
    else if (rc == 0)
        rc = rf_open_new(&s->open, k->box_pk, k->box_sk, plain_sink, s);
    if (rc == 0)
        rc = rf_cache_object_stream(c, o->seq, cipher_sink, s);
    if (rc == 0)
        rc = rf_open_finish(s->open);
    if (rc == 0 && (rf_open_kind(s->open) != RF_KIND_FILE || !s->have_meta))
        rc = RF_ERR_FORMAT;
    if (s->fd >= 0) {
        if (rc == 0 && fsync(s->fd) != 0)
            rc = RF_ERR_IO;
        if (close(s->fd) != 0 && rc == 0)
            rc = RF_ERR_IO;
        if (rc != 0)
            unlinkat(dirfd, s->name, 0);
    }
    if (s->bar && s->last_pct >= 0 && rc != 0)
        fputc('\n', stderr);
    if (rc == 0) {
        char size[32];
        progress(s, 1);
        rf_out_size(size, sizeof(size), s->written);
        printf("#%lld  %s/", (long long)o->seq, dir);
        rf_out_safe(stdout, s->name, 0);
        printf("  (%s)\n", size);
    } else {
        fprintf(stderr, "refuge: file #%lld not saved: %s\n", (long long)o->seq,
                rc == RF_ERR_DECRYPT || rc == RF_ERR_TRUNCATED
                    ? "it does not decrypt (damaged or tampered)"
                    : rf_strerror(rc));
    }
    rf_open_free(s->open);
    sodium_free(s);
    return rc;
}

int rf_cmd_files(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "o:h", opts, NULL)) != -1) {
        if (ch == 'o') {
            out = optarg;
        } else if (ch == 'h') {
            usage(stdout);
            return RF_EXIT_OK;
        } else {
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || !out || !out[0]) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    const char *cid = argv[optind];
    if (!rf_cmd_case_ok(cid)) {
        rf_cmd_err("bad case id", "case ids are lower-case letters and digits");
        return RF_EXIT_USAGE;
    }
    struct rf_home h;
    struct rf_staff_keys *k = NULL;
    struct rf_cache *c = NULL;
    struct rf_cobj *objs = NULL;
    size_t n = 0, saved = 0, failed = 0;
    int dirfd = -1, ret = RF_EXIT_FAIL;
    if (rf_home_open(&h, &k) != 0)
        goto done;
    if (rf_cache_open(&c, &h) != 0) {
        rf_cmd_err("cannot open the local cache", "run `refuge sync`");
        goto done;
    }
    int rc = rf_cache_case_objects(c, cid, &objs, &n);
    if (rc == RF_ERR_NOT_FOUND) {
        rf_cmd_err("no such case in the local cache", "check the id, or run `refuge sync`");
        goto done;
    }
    if (rc != 0) {
        rf_cmd_errc("cannot read the local cache", rc);
        goto done;
    }
    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        rf_cmd_err("cannot create the output directory", strerror(errno));
        goto done;
    }
    dirfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        rf_cmd_err("cannot open the output directory", strerror(errno));
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        if (objs[i].kind != RF_KIND_FILE)
            continue;
        if (save_one(c, k, &objs[i], dirfd, out) == 0)
            saved++;
        else
            failed++;
    }
    if (saved + failed == 0)
        printf("Case %s has no files.\n", cid);
    else
        printf("Saved %zu file%s to %s%s\n", saved, saved == 1 ? "" : "s", out,
               failed ? "; some could not be saved (see above)." : ".");
    if (saved)
        fsync(dirfd);
    ret = failed ? RF_EXIT_FAIL : RF_EXIT_OK;
done:
    if (dirfd >= 0)
        close(dirfd);
    free(objs);
    rf_cache_close(c);
    rf_home_keys_free(k);
    return ret;
}
