/*
 * backup.c - the commands `refuge server backup` and `refuge server restore`
 * around the store's rf_store_backup / rf_store_restore.
 *
 * backup writes FILE.tmp (0600, O_NOFOLLOW), lets the store stream the
 * archive into it, fsyncs it, renames it to FILE and fsyncs the directory: a
 * crash never leaves a half archive under the final name (a stale FILE.tmp is
 * replaced by the next run). With --out-dir the name is refuge-YYYY-MM-DD.tar
 * (a day, never a time: a second backup the same day replaces the first), and
 * --keep N then deletes the oldest archives of that name pattern beyond N;
 * nothing else in the directory is touched. On success the day goes into the
 * setting "backup.last_day". Both commands print only counts and sizes.
 */
#include "server/backup.h"
#include "lib/archive.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define PATH_CAP 4096
#define ARCHIVE_PATTERN_LEN (sizeof("refuge-YYYY-MM-DD.tar") - 1)

static void harden(void)
{
    struct rlimit rl = {0, 0};
    setrlimit(RLIMIT_CORE, &rl);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

uint32_t rf_backup_last_day(struct rf_store *st)
{
    return rf_store_day_get(st, RF_SET_BACKUP_LAST_DAY);
}

/* 1 if name is refuge-YYYY-MM-DD.tar with a real day. */
static int archive_name(const char *name)
{
    uint32_t day;
    return strlen(name) == ARCHIVE_PATTERN_LEN && strncmp(name, "refuge-", 7) == 0 &&
           strcmp(name + 17, ".tar") == 0 && rf_day_parse(name + 7, 10, &day) == 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Deletes the oldest refuge-YYYY-MM-DD.tar in dir beyond the newest keep. */
static int prune(const char *dir, unsigned keep, unsigned *deleted)
{
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    *deleted = 0;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = dfd >= 0 ? fdopendir(dup(dfd)) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        return RF_ERR_IO;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!archive_name(e->d_name))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **p = realloc(names, cap * sizeof(*names));
            if (!p) {
                rc = RF_ERR_NOMEM;
                break;
            }
            names = p;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = RF_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (rc == 0 && n > keep) {
        qsort(names, n, sizeof(*names), cmp_names); /* the day order */
        for (size_t i = 0; i < n - keep; i++) {
            if (unlinkat(dfd, names[i], 0) == 0)
                (*deleted)++;
            else
                rc = RF_ERR_IO;
        }
        fsync(dfd);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    close(dfd);
    return rc;
}

static int fsync_parent(const char *path)
{
    char copy[PATH_CAP];
    snprintf(copy, sizeof(copy), "%s", path);
    int dfd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return RF_ERR_IO;
    int rc = fsync(dfd) == 0 ? 0 : RF_ERR_IO;
    close(dfd);
    return rc;
}

/* The archive written to path atomically: path.tmp, fsync, rename, fsync dir. */
static int write_archive(struct rf_store *st, const char *path, struct rf_backup_info *info)
{
    char tmp[PATH_CAP];
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp))
        return RF_ERR_INVALID;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        snprintf(info->why, sizeof(info->why), "cannot create %s.tmp: %s", "the archive",
                 strerror(errno));
        return RF_ERR_IO;
    }
    int rc = fchmod(fd, 0600) == 0 ? 0 : RF_ERR_IO;
    rc = rc ? rc : rf_store_backup(st, fd, info);
    if (rc == 0 && fsync(fd) != 0)
        rc = errno == ENOSPC ? RF_ERR_NOSPACE : RF_ERR_IO;
    if (close(fd) != 0 && rc == 0)
        rc = RF_ERR_IO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = RF_ERR_IO;
    if (rc == 0)
        rc = fsync_parent(path);
    if (rc != 0) {
        unlink(tmp);
        if (!info->why[0])
            snprintf(info->why, sizeof(info->why), "%s", rf_strerror(rc));
    }
    return rc;
}

static void usage_backup(FILE *f)
{
    fputs("usage: refuge server backup --data DIR --out FILE\n"
          "       refuge server backup --data DIR --out-dir DIR [--keep N]\n"
          "Writes a consistent archive of the instance (a tar file, mode 0600) while refuge\n"
          "serve runs: the database and the files, ciphertext and public keys only, with a\n"
          "manifest of digests. Written to FILE.tmp and renamed, so FILE is always whole.\n"
          "On PostgreSQL the archive's database is a SQLite copy of the rows (one snapshot):\n"
          "the same format; restore gives a SQLite instance.\n"
          "  --out-dir DIR  write DIR/refuge-YYYY-MM-DD.tar (today, UTC); so does --out\n"
          "                 naming an existing directory\n"
          "  --keep N       with --out-dir: then delete the oldest refuge-*.tar there beyond\n"
          "                 the newest N (1 to 3650)\n"
          "Check an archive and bring it back with: refuge server restore FILE --data NEWDIR\n",
          f);
}

int rf_server_backup_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},    {"out", required_argument, 0, 'o'},
        {"out-dir", required_argument, 0, 'O'}, {"keep", required_argument, 0, 'k'},
        {"help", no_argument, 0, 'h'},          {0, 0, 0, 0},
    };
    const char *datadir = NULL, *out = NULL, *outdir = NULL;
    long keep = 0;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            datadir = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'O':
            outdir = optarg;
            break;
        case 'k': {
            char *end = NULL;
            keep = optarg[0] >= '0' && optarg[0] <= '9' ? strtol(optarg, &end, 10) : -1;
            if (keep < 1 || keep > RF_BACKUP_KEEP_MAX || !end || *end) {
                fputs("refuge: --keep takes a number of archives, 1 to 3650\n", stderr);
                return EXIT_USAGE;
            }
            break;
        }
        case 'h':
            usage_backup(stdout);
            return 0;
        default:
            usage_backup(stderr);
            return EXIT_USAGE;
        }
    }
    struct stat osb;
    if (out && !outdir && stat(out, &osb) == 0 && S_ISDIR(osb.st_mode)) {
        outdir = out; /* --out DIR: the dated name inside it */
        out = NULL;
    }
    if (datadir == NULL || optind != argc || (out == NULL) == (outdir == NULL) ||
        (keep && !outdir)) {
        if (keep && out)
            fputs("refuge: --keep needs a directory to write into (--out-dir DIR)\n", stderr);
        usage_backup(stderr);
        return EXIT_USAGE;
    }
    harden();
    char path[PATH_CAP];
    struct rf_store *st = NULL;
    struct rf_backup_info info;
    struct rf_buf probe;
    struct stat sb;
    int ret = EXIT_RUNTIME, rc;
    memset(&info, 0, sizeof(info));
    rf_buf_init_secure(&probe, 4096); /* the KDF setting holds the lookup key */
    if (stat(datadir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fputs("refuge: no data directory there; give the one refuge serve uses\n", stderr);
        goto out;
    }
    if ((rc = rf_store_open(&st, datadir)) != 0) {
        fprintf(stderr, "refuge: cannot open the data directory: %s\n", rf_strerror(rc));
        goto out;
    }
    if (rf_store_setting_get(st, "instance.kdf", &probe) != 0) {
        fputs("refuge: no instance here; run refuge server init first\n", stderr);
        goto out;
    }
    if (outdir) {
        char day[11];
        rf_day_format(rf_store_today(), day);
        if ((size_t)snprintf(path, sizeof(path), "%s/refuge-%s.tar", outdir, day) >=
            sizeof(path) - 8) {
            fputs("refuge: --out-dir is too long\n", stderr);
            goto out;
        }
    } else if ((size_t)snprintf(path, sizeof(path), "%s", out) >= sizeof(path) - 8) {
        fputs("refuge: --out is too long\n", stderr);
        goto out;
    }
    if ((rc = write_archive(st, path, &info)) != 0) {
        fprintf(stderr, "refuge: backup failed: %s\n", info.why);
        fputs("refuge: nothing was written under the archive's name; fix the cause and run "
              "it again\n",
              stderr);
        goto out;
    }
    if ((rc = rf_store_day_put(st, RF_SET_BACKUP_LAST_DAY, info.day)) != 0)
        fprintf(stderr, "refuge: warning: cannot record the backup's day: %s\n", rf_strerror(rc));
    printf("backup written: %s\n", path);
    printf("  %llu cases, %llu objects (%llu files), %llu staff keys, schema %u, %llu bytes\n",
           (unsigned long long)info.sources, (unsigned long long)info.objects,
           (unsigned long long)info.blobs, (unsigned long long)info.staff, info.schema,
           (unsigned long long)info.bytes);
    if (keep) {
        unsigned deleted = 0;
        if ((rc = prune(outdir, (unsigned)keep, &deleted)) != 0) {
            fprintf(stderr, "refuge: cannot delete old backups in the output directory: %s\n",
                    rf_strerror(rc));
            goto out;
        }
        if (deleted)
            printf("  deleted %u older backup%s (keeping %ld)\n", deleted, deleted == 1 ? "" : "s",
                   keep);
    }
    if (strcmp(rf_store_backend(st), "sqlite") != 0)
        printf("The database in it is a SQLite copy of this instance's %s rows (one snapshot):\n"
               "restore gives a SQLite instance; refuge server migrate moves it back.\n",
               rf_store_backend(st));
    printf("It holds ciphertext and public keys only. Test it now and then:\n"
           "  refuge server restore %s --data /tmp/refuge-restore-test\n",
           path);
    ret = 0;
out:
    rf_buf_free(&probe);
    if (st)
        rf_store_close(st);
    return ret;
}

static void usage_restore(FILE *f)
{
    fputs(
        "usage: refuge server restore FILE --data DIR [--check]\n"
        "Checks the archive FILE (every digest in its manifest, its layout, its schema)\n"
        "before writing anything, then restores it into DIR, which must be empty or absent\n"
        "(created 0700; files 0600, owned by you: run it as the user refuge serve runs as).\n"
        "A damaged archive is refused and DIR left empty. The restored instance stores in\n"
        "SQLite, whichever backend was backed up (refuge server migrate moves it to PostgreSQL).\n"
        "  --check  only check FILE; write nothing (no --data needed)\n",
        f);
}

int rf_server_restore_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"check", no_argument, 0, 'c'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *datadir = NULL;
    int check_only = 0, c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            datadir = optarg;
            break;
        case 'c':
            check_only = 1;
            break;
        case 'h':
            usage_restore(stdout);
            return 0;
        default:
            usage_restore(stderr);
            return EXIT_USAGE;
        }
    }
    if (optind != argc - 1 || (!check_only && datadir == NULL)) {
        usage_restore(stderr);
        return EXIT_USAGE;
    }
    harden();
    const char *file = argv[optind];
    struct rf_backup_info info;
    struct stat sb;
    char day[11];
    int rc;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        fprintf(stderr, "refuge: cannot read the archive: %s\n",
                fd < 0 ? strerror(errno) : "not a regular file");
        if (fd >= 0)
            close(fd);
        return EXIT_RUNTIME;
    }
    rc = check_only ? rf_store_archive_check(fd, &info) : rf_store_restore(fd, datadir, &info);
    close(fd);
    if (rc != 0) {
        fprintf(stderr, "refuge: %s refused: %s\n", check_only ? "archive" : "restore", info.why);
        if (!check_only && rc != RF_ERR_EXISTS)
            fputs("refuge: nothing was restored; the target directory is left empty. Use "
                  "another copy of the backup.\n",
                  stderr);
        return EXIT_RUNTIME;
    }
    rf_day_format(info.day, day);
    printf("%s: backup of %s, schema %u\n", check_only ? "archive checked" : "restored", day,
           info.schema);
    printf("  %llu cases, %llu objects (%llu files), %llu staff keys\n",
           (unsigned long long)info.sources, (unsigned long long)info.objects,
           (unsigned long long)info.blobs, (unsigned long long)info.staff);
    if (!check_only && geteuid() == 0)
        printf("The files belong to root; refuge serve runs as the directory's owner, so hand\n"
               "it over first, e.g.: chown -R refuge:refuge %s\n",
               datadir);
    if (!check_only)
        printf("It stores in SQLite (%s/refuge.db), whichever backend the instance backed up\n"
               "ran on. To run it on PostgreSQL: refuge server migrate --from %s --to\n"
               "postgresql://... --to-data NEWDIR (docs/scale-out.md).\n",
               datadir, datadir);
    if (!check_only)
        printf("Next: serve it (as the user who owns %s):\n"
               "  refuge serve --data %s --listen 127.0.0.1:8080\n"
               "then each caseworker runs: refuge sync\n"
               "(what arrived after the backup was made, on %s, is not in it)\n",
               datadir, datadir, day);
    return 0;
}
