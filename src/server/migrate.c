/*
 * migrate.c - `refuge server migrate --from DIR --to postgresql://...
 * --to-data NEWDIR`: moves a stopped instance into an empty PostgreSQL
 * database (or, with --to sqlite, into a new SQLite file) and a new data
 * directory, through the store's row export and import (store.h,
 * rf_store_migrate). The server opens no backend's internals.
 *
 * The data directory. The new instance gets a data directory of its own,
 * NEWDIR (absent, or an empty directory): DIR/database naming the database,
 * DIR/blobs with a copy of every blob file, and the instance's files
 * (DIR/onion-key, so the onion address stays the same). DIR is only read:
 * the SQLite instance stays whole, for going back, until the admin deletes
 * it. Every instance setting (the KDF parameters and lookup key, limits,
 * retention, language) is a row and moves with the rows.
 *
 * All or nothing. The rows go in one transaction of the new database
 * (store_pg_migrate.c), which also creates the schema: on any failure the
 * database is left as empty as it was, and everything this command created
 * in NEWDIR is removed again (NEWDIR too if it created it). A target
 * database that is not empty is refused before anything is written to it.
 * A server running on DIR is refused too (it holds DIR/lock): what it wrote
 * after the copy would be lost.
 *
 * Nothing of the rows is printed: counts only. The URL is never printed (it
 * may hold a password).
 */
#include "server/migrate.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define INSTANCE_FILE_MAX (64 * 1024)

/* the data directory's own files, copied beside the store's */
static const char *const instance_files[] = {"onion-key"};

static void say(const char *what)
{
    fprintf(stderr, "refuge: %s\n", what);
}

static void usage(FILE *f)
{
    fputs("usage: refuge server migrate --from DIR --to postgresql://USER@HOST:PORT/DBNAME\n"
          "                             --to-data NEWDIR\n"
          "Moves a stopped instance, with everything it holds, into an EMPTY PostgreSQL\n"
          "database and a new data directory NEWDIR (absent or empty). Cases, files,\n"
          "replies, the team, case events, the audit chain, settings and sequence numbers\n"
          "move as they are: caseworkers keep syncing where they were, persons keep their\n"
          "codenames. One transaction: on failure the database stays empty and NEWDIR is\n"
          "removed again. DIR is only read; keep it until the new instance is checked.\n"
          "  --to sqlite   move into a new SQLite instance instead (NEWDIR/refuge.db)\n"
          "Stop refuge serve on DIR first. Then: refuge serve --data NEWDIR ...\n",
          f);
}

/* 0 if dir is absent (*created = 0, made here 0700) or an empty directory */
static int target_dir(const char *dir, int *created)
{
    *created = 0;
    if (mkdir(dir, 0700) == 0) {
        *created = 1;
        return 0;
    }
    if (errno != EEXIST)
        return RF_ERR_IO;
    DIR *d = opendir(dir);
    if (!d)
        return RF_ERR_IO;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            rc = RF_ERR_EXISTS;
    closedir(d);
    return rc;
}

static void empty_subdir(int dfd, const char *name)
{
    int sfd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *d = sfd >= 0 ? fdopendir(sfd) : NULL;
    if (!d) {
        if (sfd >= 0)
            close(sfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            unlinkat(dirfd(d), e->d_name, 0);
    closedir(d);
}

/* Removes what this command created in dir (which was empty or absent):
 * its files and the store's subdirectories, one level down, nothing else. */
static void target_wipe(const char *dir, int created)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
    DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            struct stat sb;
            if (fstatat(dfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
                continue;
            if (S_ISDIR(sb.st_mode)) {
                empty_subdir(dfd, e->d_name);
                unlinkat(dfd, e->d_name, AT_REMOVEDIR);
            } else {
                unlinkat(dfd, e->d_name, 0);
            }
        }
        closedir(d);
        fsync(dfd);
    }
    if (dfd >= 0)
        close(dfd);
    if (created)
        rmdir(dir);
}

/* Copies DIR/name to NEWDIR/name (0600, fsynced) if it exists. */
static int copy_file(const char *from, const char *to, const char *name)
{
    char src[4096], dst[4096], buf[INSTANCE_FILE_MAX];
    if ((size_t)snprintf(src, sizeof(src), "%s/%s", from, name) >= sizeof(src) ||
        (size_t)snprintf(dst, sizeof(dst), "%s/%s", to, name) >= sizeof(dst))
        return RF_ERR_INVALID;
    int in = open(src, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (in < 0)
        return errno == ENOENT ? 0 : RF_ERR_IO;
    ssize_t n = read(in, buf, sizeof(buf));
    close(in);
    if (n < 0 || n == (ssize_t)sizeof(buf))
        return RF_ERR_IO;
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (out < 0)
        return RF_ERR_IO;
    int rc = write(out, buf, (size_t)n) == n && fsync(out) == 0 ? 0 : RF_ERR_IO;
    if (close(out) != 0)
        rc = RF_ERR_IO;
    explicit_bzero(buf, sizeof(buf)); /* the onion service's private key */
    return rc;
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return RF_ERR_IO;
    int rc = fsync(fd) == 0 ? 0 : RF_ERR_IO;
    close(fd);
    return rc;
}

/* 0 if the new store counts what the old one does */
static int counts_match(struct rf_store *a, struct rf_store *b, struct rf_store_counts *ca)
{
    struct rf_store_counts cb;
    if (rf_store_counts(a, ca) != 0 || rf_store_counts(b, &cb) != 0)
        return RF_ERR_DB;
    if (ca->cases != cb.cases || ca->staff != cb.staff || ca->audit != cb.audit)
        return RF_ERR_FORMAT;
    for (int k = 0; k < RF_STORE_KINDS; k++)
        if (ca->objects[k] != cb.objects[k] || ca->object_bytes[k] != cb.object_bytes[k])
            return RF_ERR_FORMAT;
    return 0;
}

static int same_dir(const char *a, const char *b)
{
    struct stat sa, sb;
    return stat(a, &sa) == 0 && stat(b, &sb) == 0 && sa.st_dev == sb.st_dev &&
           sa.st_ino == sb.st_ino;
}

int rf_server_migrate_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"from", required_argument, 0, 'f'},
        {"to", required_argument, 0, 't'},
        {"to-data", required_argument, 0, 'n'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *from = NULL, *to = NULL, *newdir = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            from = optarg;
            break;
        case 't':
            to = optarg;
            break;
        case 'n':
            newdir = optarg;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return EXIT_USAGE;
        }
    }
    if (!from || !to || !newdir || optind != argc) {
        if (from && to && !newdir)
            say("--to-data NEWDIR is needed: the new instance gets a data directory of its own "
                "(DIR stays as it is)");
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *url = strcmp(to, "sqlite") == 0 ? NULL : to;
    if (url && !rf_store_url_valid(url)) {
        say("--to takes a URL postgresql://USER@HOST:PORT/DBNAME (no spaces), or sqlite");
        return EXIT_USAGE;
    }
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0); /* the rows carry the lookup key */

    int ret = EXIT_RUNTIME, rc, created = 0, made = 0;
    struct rf_store *src = NULL, *dst = NULL;
    struct rf_buf probe;
    struct rf_migrate_info *info = calloc(1, sizeof(*info));
    struct rf_store_counts counts;
    struct stat sb;
    rf_buf_init_secure(&probe, 4096);
    if (!info) {
        say("out of memory");
        goto out;
    }
    if (stat(from, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        say("--from names no data directory; give the one refuge serve used");
        goto out;
    }
    if (same_dir(from, newdir)) {
        say("--to-data must be a new directory, not the one being moved");
        goto out;
    }
    if ((rc = rf_store_open(&src, from)) != 0) {
        fprintf(stderr, "refuge: cannot open the data directory %s: %s\n", from, rf_strerror(rc));
        goto out;
    }
    if (rf_store_setting_get(src, "instance.kdf", &probe) != 0) {
        say("no instance in --from: nothing to move");
        goto out;
    }
    if (!rf_store_alone(src)) {
        say("a refuge process (refuge serve?) has the data directory open: stop it first, or "
            "what it writes after the copy would be lost");
        goto out;
    }
    if (url && strcmp(rf_store_backend(src), "postgresql") == 0)
        say("note: the instance is on PostgreSQL already; copying it into the new database");
    if ((rc = target_dir(newdir, &created)) != 0) {
        say(rc == RF_ERR_EXISTS ? "--to-data is not empty: give a new or empty directory"
                                : "cannot create --to-data");
        goto out;
    }
    made = 1;
    rc = rf_store_create_import(&dst, newdir, url);
    if (rc == RF_ERR_EXISTS) {
        say(url ? "the target database is not empty: nothing was written to it. Give an empty "
                  "database (createdb NAME, owned by the user in the URL)"
                : "--to-data already holds a database");
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "refuge: cannot open the target: %s\n", rf_strerror(rc));
        if (url)
            say("check that PostgreSQL runs, that the URL names an existing database and that "
                "its user may create tables");
        goto out;
    }
    for (size_t i = 0; i < sizeof(instance_files) / sizeof(instance_files[0]); i++)
        if ((rc = copy_file(from, newdir, instance_files[i])) != 0) {
            fprintf(stderr, "refuge: cannot copy %s into --to-data: %s\n", instance_files[i],
                    rf_strerror(rc));
            goto out;
        }
    if (fsync_dir(newdir) != 0) {
        say("cannot make --to-data durable");
        goto out;
    }
    if ((rc = rf_store_migrate(src, dst, info)) != 0) {
        fprintf(stderr, "refuge: the migration failed, nothing was kept: %s\n",
                info->why[0] ? info->why : rf_strerror(rc));
        if (rc == RF_ERR_EXISTS && url)
            say("the target database is not empty: give an empty database");
        goto out;
    }
    made = 0; /* committed: NEWDIR is the new instance now */
    rf_store_close(dst);
    dst = NULL;
    if ((rc = rf_store_open(&dst, newdir)) != 0 || (rc = counts_match(src, dst, &counts)) != 0) {
        fprintf(stderr,
                "refuge: the new instance does not check out (%s); keep using %s and report "
                "this\n",
                rf_strerror(rc), from);
        goto out;
    }
    uint64_t objects = 0, rows = 0;
    for (int k = 0; k < RF_STORE_KINDS; k++)
        objects += counts.objects[k];
    for (int t = 0; t < RF_TAB_COUNT; t++)
        rows += info->rows[t];
    printf("moved to %s: %llu cases, %llu objects (%llu files, %llu bytes), %llu staff, "
           "%llu audit entries; %llu rows in all\n",
           url ? "PostgreSQL" : "SQLite", (unsigned long long)counts.cases,
           (unsigned long long)objects, (unsigned long long)info->blobs,
           (unsigned long long)info->blob_bytes, (unsigned long long)counts.staff,
           (unsigned long long)counts.audit, (unsigned long long)rows);
    printf("Next:\n  refuge serve --data %s ...\n"
           "%s is left as it was. Keep it until the new instance is checked, then delete it:\n"
           "it holds the same ciphertext (and a reply deleted from now on stays in it).\n",
           newdir, from);
    ret = 0;
out:
    if (dst)
        rf_store_close(dst);
    if (src)
        rf_store_close(src);
    if (made)
        target_wipe(newdir, created);
    rf_buf_free(&probe);
    free(info);
    return ret;
}
