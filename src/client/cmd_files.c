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
 *
 * --check and --strip (media.h) decrypt a file into a secure buffer instead,
 * never to disk: --check lists its type (by content) and the identifying
 * metadata it carries; --strip writes to DIR a copy without that metadata.
 */
#include "client/cmd.h"
#include "client/media.h"
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
          "       refuge files CASE --check\n"
          "       refuge files CASE --strip --out DIR\n"
          "\n"
          "Decrypts every file the person sent in CASE into DIR (created if missing), under a\n"
          "safe version of the name they gave. Existing files are never overwritten: a\n"
          "suffix -1, -2, ... is added. Needs a prior `refuge sync`; works offline.\n"
          "  -o, --out DIR   where to save the files\n"
          "  -c, --check     list each file's type (by its content) and the identifying\n"
          "                  metadata it carries (GPS, serial numbers, names); writes nothing\n"
          "  -s, --strip     with --out: save JPEG and PNG images without that metadata\n"
          "                  (the original stays as it is in the case)\n",
          f);
}

struct saver {
    int dirfd;
    struct rf_buf *mem; /* --check, --strip: plaintext here, no file */
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

static int emit_plain(struct saver *s, const uint8_t *p, size_t n)
{
    if (!s->mem)
        return write_all(s->fd, p, n);
    int rc = rf_buf_put(s->mem, p, n);
    return rc == RF_ERR_LIMIT ? RF_ERR_LIMIT : rc;
}

/* Receives plaintext: metadata first, then the file's bytes. */
static int plain_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct saver *s = ctx;
    if (s->have_meta) {
        s->written += n;
        return emit_plain(s, p, n);
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
    rc = s->mem ? 0 : create(s);
    if (rc != 0)
        return rc;
    rc = emit_plain(s, s->head + used, s->head_len - used);
    if (rc == 0)
        rc = emit_plain(s, p + k, n - k);
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

/* Decrypts object o through s (to its file, or to s->mem). */
static int decrypt(struct rf_cache *c, const struct rf_staff_keys *k, const struct rf_cobj *o,
                   struct saver *s)
{
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
    sodium_memzero(grant, sizeof(grant));
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
    int rc = decrypt(c, k, o, s);
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

/* ------------------------------------------------ --check and --strip */

static void print_name(const struct rf_cobj *o, const struct saver *s)
{
    printf("#%lld  ", (long long)o->seq);
    rf_out_safe(stdout, s->have_meta ? s->meta.name : "?", 0);
}

static void print_findings(const struct rf_media_report *rep, const char *none)
{
    if (rep->n == 0 && none)
        printf("    %s\n", none);
    for (unsigned i = 0; i < rep->n; i++)
        printf("    ! %s\n", rf_media_finding_label(rep->f[i], rf_media_lang_env()));
}

static const char *media_err(int rc)
{
    if (rc == RF_ERR_LIMIT)
        return "it is too large or too big an image to examine";
    if (rc == RF_ERR_CANCELLED)
        return "the decoder was stopped (it overran its time or broke its sandbox: "
               "treat the file as hostile)";
    if (rc == RF_ERR_IO)
        return "the sandboxed decoder could not be started (it needs /proc, seccomp and "
               "rlimits: see docs/desk.md)";
    if (rc == RF_ERR_FORMAT || rc == RF_ERR_TRUNCATED || rc == RF_ERR_PROTOCOL)
        return "the file is damaged or not what it claims to be";
    return rf_strerror(rc);
}

static int check_file(const struct rf_cobj *o, struct saver *s)
{
    struct rf_media_report rep;
    char size[32];
    int rc = rf_media_check(&rep, s->mem->data, s->mem->len);
    rf_out_size(size, sizeof(size), s->mem->len);
    print_name(o, s);
    printf("  (%s, %s)\n", size, rf_media_type_name(rep.type));
    if (rc != 0) {
        printf("    not checked: %s\n", media_err(rc));
        return rc;
    }
    if (rep.type == RF_MEDIA_OTHER)
        printf("    not checked: refuge reads metadata of JPEG, PNG and PDF files only\n");
    else
        print_findings(&rep, "no identifying metadata found");
    if (rep.type == RF_MEDIA_PDF)
        printf("    (read by poppler in the sandboxed PDF decoder; PDFs are not stripped:\n"
               "     keep the original, see docs/desk.md)\n");
    return 0;
}

/* 1: written, 0: skipped (a type that cannot be stripped), <0: failed. */
static int strip_file(const struct rf_cobj *o, struct saver *s, const char *dir)
{
    enum rf_media_type t = rf_media_detect(s->mem->data, s->mem->len);
    if (!rf_media_can_strip(t)) {
        print_name(o, s);
        printf("  not written: refuge removes metadata from JPEG and PNG images only (found: "
               "%s);\n    `refuge files CASE --out DIR` saves the original\n",
               rf_media_type_name(t));
        return 0;
    }
    struct rf_buf out;
    struct rf_media_report after;
    rf_buf_init_secure(&out, s->mem->len);
    int rc = rf_media_strip(&out, &after, s->mem->data, s->mem->len);
    if (rc == 0)
        rc = create(s);
    if (rc == 0) {
        rc = write_all(s->fd, out.data, out.len);
        if (rc == 0 && fsync(s->fd) != 0)
            rc = RF_ERR_IO;
        if (close(s->fd) != 0 && rc == 0)
            rc = RF_ERR_IO;
        s->fd = -1;
        if (rc != 0)
            unlinkat(s->dirfd, s->name, 0);
    }
    if (rc == 0) {
        char size[32];
        rf_out_size(size, sizeof(size), out.len);
        printf("#%lld  %s/", (long long)o->seq, dir);
        rf_out_safe(stdout, s->name, 0);
        printf("  (%s, metadata removed)\n", size);
        print_findings(&after, NULL);
    } else {
        fprintf(stderr, "refuge: file #%lld not stripped: %s\n", (long long)o->seq, media_err(rc));
    }
    rf_buf_free(&out);
    return rc == 0 ? 1 : rc;
}

/* --check (dir NULL) or --strip: the file decrypted into memory only. */
static int media_one(struct rf_cache *c, const struct rf_staff_keys *k, const struct rf_cobj *o,
                     int dirfd, const char *dir, int *written)
{
    struct rf_buf mem;
    struct saver *s = sodium_malloc(sizeof(*s));
    if (!s)
        return RF_ERR_NOMEM;
    memset(s, 0, sizeof(*s));
    rf_buf_init_secure(&mem, RF_MEDIA_IN_MAX);
    s->mem = &mem;
    s->dirfd = dirfd;
    s->fd = -1;
    s->last_pct = -1;
    int rc = decrypt(c, k, o, s);
    if (rc != 0) {
        fprintf(stderr, "refuge: file #%lld not %s: %s\n", (long long)o->seq,
                dir ? "stripped" : "checked",
                rc == RF_ERR_DECRYPT || rc == RF_ERR_TRUNCATED
                    ? "it does not decrypt (damaged or tampered)"
                : rc == RF_ERR_LIMIT ? "it is larger than refuge examines in memory (256 MB)"
                                     : rf_strerror(rc));
    } else if (dir == NULL) {
        rc = check_file(o, s);
    } else {
        rc = strip_file(o, s, dir);
        if (rc > 0)
            (*written)++;
        if (rc > 0)
            rc = 0;
    }
    rf_open_free(s->open);
    rf_buf_free(&mem);
    sodium_free(s);
    return rc;
}

int rf_cmd_files(int argc, char **argv)
{
    static const struct option opts[] = {
        {"out", required_argument, NULL, 'o'},
        {"check", no_argument, NULL, 'c'},
        {"strip", no_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *out = NULL;
    int ch, check = 0, strip = 0, written = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "o:csh", opts, NULL)) != -1) {
        if (ch == 'o') {
            out = optarg;
        } else if (ch == 'c') {
            check = 1;
        } else if (ch == 's') {
            strip = 1;
        } else if (ch == 'h') {
            usage(stdout);
            return RF_EXIT_OK;
        } else {
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || (check && (out || strip)) || (!check && (!out || !out[0]))) {
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
    if (check)
        goto examine;
    if (mkdir(out, 0700) != 0 && errno != EEXIST) {
        rf_cmd_err("cannot create the output directory", strerror(errno));
        goto done;
    }
    dirfd = open(out, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dirfd < 0) {
        rf_cmd_err("cannot open the output directory", strerror(errno));
        goto done;
    }
examine:
    for (size_t i = 0; i < n; i++) {
        if (objs[i].kind != RF_KIND_FILE)
            continue;
        int r = check || strip ? media_one(c, k, &objs[i], dirfd, check ? NULL : out, &written)
                               : save_one(c, k, &objs[i], dirfd, out);
        if (r == 0)
            saved++;
        else
            failed++;
    }
    if (saved + failed == 0)
        printf("Case %s has no files.\n", cid);
    else if (check)
        printf("Checked %zu file%s%s\n", saved, saved == 1 ? "" : "s",
               failed ? "; some could not be checked (see above)." : ".");
    else if (strip)
        printf("Saved %d stripped cop%s to %s%s\n", written, written == 1 ? "y" : "ies", out,
               failed ? "; some could not be stripped (see above)." : ".");
    else
        printf("Saved %zu file%s to %s%s\n", saved, saved == 1 ? "" : "s", out,
               failed ? "; some could not be saved (see above)." : ".");
    if (saved && dirfd >= 0)
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
