/*
 * cmd_sync.c - `refuge sync`: verify the roster chain from the pinned key
 * (refusing loudly if it fails), then page through the server's object list
 * after the last sequence number seen and download each object's ciphertext
 * into the cache: small ones into the database, large ones streamed to a
 * file (temp name, fsync, rename). One transaction per page, so an
 * interrupted sync resumes where it stopped.
 */
#include "client/cmd.h"
#include "client/trust.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PAGE 1000
#define OBJECT_MAX ((uint64_t)1 << 40)

static void usage(FILE *f)
{
    fputs("usage: refuge sync\n"
          "\n"
          "Checks the roster (the team's keys) against the first admin's key pinned at init,\n"
          "then downloads new messages, files and replies into the local cache (still\n"
          "encrypted). After a sync, `refuge cases` and `refuge show` work offline.\n",
          f);
}

static int to_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

struct file_sink {
    int fd;
};

static int to_file(void *ctx, const uint8_t *p, size_t n)
{
    struct file_sink *fs = ctx;
    while (n > 0) {
        ssize_t k = write(fs->fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return errno == ENOSPC ? RF_ERR_NOSPACE : RF_ERR_IO;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

static int fetch(struct rf_net *n, struct rf_cache *c, const struct rf_cobj *o)
{
    char path[64], tmp[PATH_MAX], dst[PATH_MAX];
    snprintf(path, sizeof(path), "/api/v1/objects/%" PRId64, o->seq);
    int rc;
    if (o->size <= RF_CACHE_INLINE_MAX) {
        struct rf_buf b;
        rf_buf_init(&b, RF_CACHE_INLINE_MAX);
        rc = rf_net_download(n, path, o->size, to_buf, &b);
        if (rc == 0 && b.len != o->size)
            rc = RF_ERR_PROTOCOL;
        if (rc == 0)
            rc = rf_cache_object_put(c, o, b.data ? b.data : (const uint8_t *)"", b.len);
        rf_buf_free(&b);
        return rc;
    }
    rc = rf_cache_file_path(c, o->seq, 1, tmp, sizeof(tmp));
    if (rc == 0)
        rc = rf_cache_file_path(c, o->seq, 0, dst, sizeof(dst));
    if (rc != 0)
        return rc;
    struct file_sink fs = {open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)};
    if (fs.fd < 0)
        return RF_ERR_IO;
    rc = rf_net_download(n, path, o->size, to_file, &fs);
    off_t got = lseek(fs.fd, 0, SEEK_CUR);
    if (rc == 0 && (got < 0 || (uint64_t)got != o->size))
        rc = RF_ERR_PROTOCOL;
    if (rc == 0 && fsync(fs.fd) != 0)
        rc = RF_ERR_IO;
    close(fs.fd);
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = RF_ERR_IO;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    return rf_cache_object_put(c, o, NULL, 0);
}

/* Reads one listing entry, refusing anything out of shape. */
static int parse_obj(json_t *e, int64_t after, struct rf_cobj *o)
{
    json_t *seq = json_object_get(e, "seq"), *kind = json_object_get(e, "kind");
    json_t *size = json_object_get(e, "size"), *day = json_object_get(e, "day");
    const char *cs = json_string_value(json_object_get(e, "case"));
    if (!json_is_integer(seq) || !json_is_integer(kind) || !json_is_integer(size) ||
        !json_is_integer(day) || !cs || !rf_cmd_case_ok(cs))
        return RF_ERR_PROTOCOL;
    if (json_integer_value(seq) <= after || json_integer_value(kind) < 1 ||
        json_integer_value(kind) > 255 || json_integer_value(size) < 0 ||
        (uint64_t)json_integer_value(size) > OBJECT_MAX || json_integer_value(day) < 0 ||
        json_integer_value(day) > UINT32_MAX)
        return RF_ERR_PROTOCOL;
    memset(o, 0, sizeof(*o));
    o->seq = json_integer_value(seq);
    snprintf(o->case_id, sizeof(o->case_id), "%s", cs);
    o->kind = (uint8_t)json_integer_value(kind);
    o->size = (uint64_t)json_integer_value(size);
    o->day = (uint32_t)json_integer_value(day);
    return 0;
}

int rf_sync_run(const struct rf_home *h, struct rf_net *n, struct rf_cache *c, int quiet)
{
    struct rf_roster *ro = NULL;
    int64_t last = 0;
    unsigned counts[4] = {0, 0, 0, 0}, total = 0;
    json_t *page = NULL;
    int rc = rf_trust_roster(n, c, h->pinned, &ro);
    if (rc != 0)
        return rc;
    rc = rf_cache_last_seq(c, &last);
    if (rc != 0) {
        rf_cmd_errc("cannot read the local cache", rc);
        goto out;
    }
    for (;;) {
        char path[96];
        snprintf(path, sizeof(path), "/api/v1/objects?after=%" PRId64 "&limit=%d", last, PAGE);
        rc = rf_net_json(n, "GET", path, NULL, 0, NULL, &page);
        if (rc != 0) {
            if (rf_net_status(n) == 403)
                rf_cmd_err("cannot sync", "you are enrolled but not on the roster yet; ask an "
                                          "admin to add you");
            else
                rf_cmd_net_err("cannot list new objects", n);
            goto out;
        }
        json_t *arr = json_object_get(page, "objects");
        int more = json_is_true(json_object_get(page, "more"));
        if (!json_is_array(arr) || json_array_size(arr) > PAGE) {
            rc = RF_ERR_PROTOCOL;
            rf_cmd_err("cannot list new objects", "the server's answer is malformed");
            goto out;
        }
        if (json_array_size(arr) == 0)
            break;
        rc = rf_cache_begin(c);
        for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
            struct rf_cobj o;
            rc = parse_obj(json_array_get(arr, i), last, &o);
            if (rc != 0) {
                rf_cmd_err("cannot list new objects", "the server's answer is malformed");
                break;
            }
            rc = fetch(n, c, &o);
            if (rc != 0) {
                if (rc == RF_ERR_NET || rc == RF_ERR_PROTOCOL)
                    rf_cmd_net_err("cannot download an object", n);
                else
                    rf_cmd_errc("cannot store an object", rc);
                break;
            }
            last = o.seq;
            total++;
            if (o.kind <= 3)
                counts[o.kind]++;
        }
        if (rc == 0)
            rc = rf_cache_set_last_seq(c, last);
        if (rc == 0)
            rc = rf_cache_commit(c);
        else
            rf_cache_rollback(c);
        if (rc != 0)
            goto out;
        json_decref(page);
        page = NULL;
        if (!more)
            break;
    }
    if (!quiet) {
        printf("Roster version %u verified: %u caseworker%s.\n", (unsigned)ro->version,
               (unsigned)ro->n, ro->n == 1 ? "" : "s");
        printf("Synced %u new object%s: %u message%s, %u file%s, %u repl%s.\n", total,
               total == 1 ? "" : "s", counts[1], counts[1] == 1 ? "" : "s", counts[2],
               counts[2] == 1 ? "" : "s", counts[3], counts[3] == 1 ? "y" : "ies");
    }
out:
    json_decref(page);
    free(ro);
    return rc;
}

int rf_cmd_sync(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            return RF_EXIT_OK;
        }
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    if (optind != argc) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    struct rf_home h;
    struct rf_staff_keys *k = NULL;
    struct rf_net *n = NULL;
    struct rf_cache *c = NULL;
    int ret = RF_EXIT_FAIL;
    if (rf_home_open(&h, &k) != 0)
        goto out;
    if (rf_net_new(&n, h.server, k) != 0 || rf_cache_open(&c, &h) != 0) {
        rf_cmd_err("cannot start", "bad server URL in config.json or cache unreadable");
        goto out;
    }
    if (rf_sync_run(&h, n, c, 0) == 0)
        ret = RF_EXIT_OK;
out:
    rf_cache_close(c);
    rf_net_free(n);
    rf_home_keys_free(k);
    return ret;
}
