/* backup_test.c - the backup archive (lib/archive.h) and the store's
 * backup and restore (store/backup.c), hunting for failure: every single
 * flipped bit and every truncation of a manifest and of a tar header is
 * refused; a manifest outside the grammar (another format, leading zeros,
 * a member twice, out of order, outside the layout, counts that disagree) is
 * refused; a store with inline and blob objects comes back byte-exact in a
 * new directory; a blob deleted after the snapshot makes the backup start
 * again and the archive is still consistent; a blob missing while its row
 * lives fails the backup; restore refuses a non-empty target, and a damaged
 * archive leaves the target empty (absent if restore would have made it). */
#include "lib/archive.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tmp.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pg_test_db.h"

/* ---- manifest ---- */

static void sample_manifest(struct rf_manifest *m, size_t blobs)
{
    uint8_t d[RF_DIGEST_BYTES];
    char name[RF_ARCHIVE_NAME_MAX + 1];
    rf_manifest_init(m);
    snprintf(m->version, sizeof(m->version), "0.1.0");
    snprintf(m->backend, sizeof(m->backend), "sqlite");
    m->schema = 5;
    m->day = 20791;
    m->sources = 3;
    m->objects = 12;
    m->staff = 2;
    m->blobs = blobs;
    randombytes_buf(d, sizeof(d));
    assert_int_equal(rf_manifest_add(m, RF_ARCHIVE_DB, 90112, d), 0);
    for (size_t i = 0; i < blobs; i++) {
        snprintf(name, sizeof(name), RF_ARCHIVE_BLOBS "%032zx", i + 1);
        randombytes_buf(d, sizeof(d));
        assert_int_equal(rf_manifest_add(m, name, 1000 * i, d), 0);
    }
}

static void manifest_round_trip(void **state)
{
    (void)state;
    struct rf_manifest m, back;
    struct rf_buf text;
    sample_manifest(&m, 3);
    rf_buf_init(&text, RF_MANIFEST_MAX);
    assert_int_equal(rf_manifest_encode(&m, &text), 0);
    rf_manifest_init(&back);
    assert_int_equal(rf_manifest_parse(text.data, text.len, &back), 0);
    assert_string_equal(back.version, "0.1.0");
    assert_string_equal(back.backend, "sqlite");
    assert_int_equal(back.schema, 5);
    assert_int_equal(back.day, 20791);
    assert_int_equal(back.sources, 3);
    assert_int_equal(back.objects, 12);
    assert_int_equal(back.staff, 2);
    assert_int_equal(back.blobs, 3);
    assert_int_equal(back.n, 4);
    for (size_t i = 0; i < m.n; i++) {
        assert_string_equal(back.members[i].name, m.members[i].name);
        assert_int_equal(back.members[i].size, m.members[i].size);
        assert_memory_equal(back.members[i].digest, m.members[i].digest, RF_DIGEST_BYTES);
    }
    /* the day is written as a date */
    rf_buf_cstr(&text);
    assert_non_null(strstr((const char *)text.data, "\nday 2026-12-04\n"));
    rf_manifest_free(&back);
    rf_manifest_free(&m);
    rf_buf_free(&text);
}

static void manifest_every_flip_and_truncation_refused(void **state)
{
    (void)state;
    struct rf_manifest m, back;
    struct rf_buf text;
    sample_manifest(&m, 2);
    rf_buf_init(&text, RF_MANIFEST_MAX);
    assert_int_equal(rf_manifest_encode(&m, &text), 0);
    rf_manifest_init(&back);
    for (size_t i = 0; i < text.len; i++)
        for (int bit = 0; bit < 8; bit++) {
            text.data[i] ^= (uint8_t)(1u << bit);
            assert_int_not_equal(rf_manifest_parse(text.data, text.len, &back), 0);
            assert_int_equal(back.n, 0);
            text.data[i] ^= (uint8_t)(1u << bit);
        }
    for (size_t n = 0; n < text.len; n++)
        assert_int_not_equal(rf_manifest_parse(text.data, n, &back), 0);
    assert_int_equal(rf_manifest_parse(text.data, text.len, &back), 0);
    rf_manifest_free(&back);
    rf_manifest_free(&m);
    rf_buf_free(&text);
}

/* A manifest from lines (the end line computed here). */
static int parse_lines(const char *body, struct rf_manifest *m)
{
    uint8_t d[RF_DIGEST_BYTES];
    char hex[2 * RF_DIGEST_BYTES + 1], *text;
    size_t n = strlen(body);
    crypto_generichash(d, sizeof(d), (const uint8_t *)body, n, NULL, 0);
    rf_hex_encode(hex, sizeof(hex), d, sizeof(d));
    text = malloc(n + 80);
    assert_non_null(text);
    snprintf(text, n + 80, "%send %s\n", body, hex);
    int rc = rf_manifest_parse((const uint8_t *)text, strlen(text), m);
    free(text);
    return rc;
}

#define HEAD(schema, blobs)                                                                        \
    "refuge-backup 1\nversion 0.1.0\nbackend sqlite\nschema " schema "\nday 2026-12-04\n"          \
    "sources 1\nobjects 1\nstaff 0\nblobs " blobs "\n"
#define D64 "0000000000000000000000000000000000000000000000000000000000000000"
#define DB_LINE "member " D64 " 10 refuge-backup/refuge.db\n"

static void manifest_grammar_refusals(void **state)
{
    (void)state;
    struct rf_manifest m;
    rf_manifest_init(&m);
    assert_int_equal(parse_lines(HEAD("5", "0") DB_LINE, &m), 0);
    assert_int_equal(m.n, 1);
    rf_manifest_free(&m);
    assert_int_equal(parse_lines("refuge-backup 2\n", &m), RF_ERR_VERSION);
    /* leading zeros, signs, spaces */
    assert_int_equal(parse_lines(HEAD("05", "0") DB_LINE, &m), RF_ERR_FORMAT);
    assert_int_equal(parse_lines(HEAD("+5", "0") DB_LINE, &m), RF_ERR_FORMAT);
    assert_int_equal(parse_lines(HEAD("5 ", "0") DB_LINE, &m), RF_ERR_FORMAT);
    /* no database, a blob before it, the manifest listed, outside the layout */
    assert_int_equal(parse_lines(HEAD("5", "0"), &m), RF_ERR_FORMAT);
    assert_int_equal(parse_lines(HEAD("5", "1") "member " D64 " 1 refuge-backup/blobs/"
                                                "0123456789abcdef0123456789abcdef\n" DB_LINE,
                                 &m),
                     RF_ERR_FORMAT);
    assert_int_equal(
        parse_lines(HEAD("5", "1") DB_LINE "member " D64 " 1 refuge-backup/MANIFEST\n", &m),
        RF_ERR_FORMAT);
    assert_int_equal(
        parse_lines(HEAD("5", "1") DB_LINE "member " D64 " 1 refuge-backup/../../etc/x\n", &m),
        RF_ERR_FORMAT);
    assert_int_equal(parse_lines(HEAD("5", "1") DB_LINE "member " D64 " 1 refuge-backup/blobs/"
                                                        "0123456789ABCDEF0123456789abcdef\n",
                                 &m),
                     RF_ERR_FORMAT);
    /* a blob twice, blobs out of order, a count that disagrees */
#define B1 "member " D64 " 1 refuge-backup/blobs/11111111111111111111111111111111\n"
#define B2 "member " D64 " 1 refuge-backup/blobs/22222222222222222222222222222222\n"
    assert_int_equal(parse_lines(HEAD("5", "2") DB_LINE B1 B2, &m), 0);
    rf_manifest_free(&m);
    assert_int_equal(parse_lines(HEAD("5", "2") DB_LINE B1 B1, &m), RF_ERR_FORMAT);
    assert_int_equal(parse_lines(HEAD("5", "2") DB_LINE B2 B1, &m), RF_ERR_FORMAT);
    assert_int_equal(parse_lines(HEAD("5", "3") DB_LINE B1 B2, &m), RF_ERR_FORMAT);
    assert_int_equal(parse_lines(HEAD("5", "1") DB_LINE B1 B2, &m), RF_ERR_FORMAT);
    /* a member past the size limit, a day that does not exist */
    assert_int_equal(
        parse_lines(HEAD("5", "0") "member " D64 " 1099511627777 refuge-backup/refuge.db\n", &m),
        RF_ERR_LIMIT);
    assert_int_equal(parse_lines("refuge-backup 1\nversion 0.1.0\nbackend sqlite\nschema "
                                 "5\nday 2026-02-30\nsources 1\nobjects 1\nstaff 0\nblobs "
                                 "0\n" DB_LINE,
                                 &m),
                     RF_ERR_FORMAT);
    /* an unknown line, text after the end line */
    assert_int_equal(parse_lines(HEAD("5", "0") "extra 1\n" DB_LINE, &m), RF_ERR_FORMAT);
    assert_int_equal(m.n, 0);
}

static void days(void **state)
{
    (void)state;
    char s[11];
    uint32_t d = 0;
    rf_day_format(0, s);
    assert_string_equal(s, "1970-01-01");
    rf_day_format(20791, s);
    assert_string_equal(s, "2026-12-04");
    rf_day_format(11016, s);
    assert_string_equal(s, "2000-02-29");
    for (uint32_t day = 0; day < 40000; day += 7) {
        rf_day_format(day, s);
        assert_int_equal(rf_day_parse(s, 10, &d), 0);
        assert_int_equal(d, day);
    }
    assert_int_not_equal(rf_day_parse("2026-13-01", 10, &d), 0);
    assert_int_not_equal(rf_day_parse("1969-12-31", 10, &d), 0);
    assert_int_not_equal(rf_day_parse("2026-1-01x", 10, &d), 0);
    assert_int_not_equal(rf_day_parse("2100-02-29", 10, &d), 0);
}

/* ---- tar headers ---- */

static void tar_header_round_trip_and_every_flip(void **state)
{
    (void)state;
    uint8_t h[RF_TAR_BLOCK];
    char name[RF_ARCHIVE_NAME_MAX + 1];
    uint64_t size = 0;
    uint32_t day = 0;
    assert_int_equal(rf_tar_header_encode(h, RF_ARCHIVE_DB, 123456, 20791), 0);
    assert_int_equal(rf_tar_header_decode(h, name, &size, &day), 0);
    assert_string_equal(name, RF_ARCHIVE_DB);
    assert_int_equal(size, 123456);
    assert_int_equal(day, 20791);
    assert_memory_equal(h + 257,
                        "ustar\0"
                        "00",
                        8);
    for (size_t i = 0; i < RF_TAR_BLOCK; i++)
        for (int bit = 0; bit < 8; bit++) {
            h[i] ^= (uint8_t)(1u << bit);
            assert_int_equal(rf_tar_header_decode(h, name, &size, &day), RF_ERR_FORMAT);
            h[i] ^= (uint8_t)(1u << bit);
        }
    /* from 8 GiB the size is base-256 */
    uint64_t big = (9ULL << 30) + 5;
    assert_int_equal(
        rf_tar_header_encode(h, RF_ARCHIVE_BLOBS "0123456789abcdef0123456789abcdef", big, 1), 0);
    assert_int_equal(h[124], 0x80);
    assert_int_equal(rf_tar_header_decode(h, name, &size, &day), 0);
    assert_int_equal(size, big);
    /* outside the layout */
    assert_int_equal(rf_tar_header_encode(h, "refuge-backup/../x", 1, 1), RF_ERR_INVALID);
    assert_int_equal(rf_tar_header_encode(h, "refuge-backup/blobs/x", 1, 1), RF_ERR_INVALID);
    assert_int_equal(rf_tar_header_encode(h, RF_ARCHIVE_DB, RF_ARCHIVE_MEMBER_MAX + 1, 1),
                     RF_ERR_INVALID);
    /* a symlink with a valid name and checksum is still refused */
    assert_int_equal(rf_tar_header_encode(h, RF_ARCHIVE_DB, 0, 1), 0);
    h[156] = '2';
    memset(h + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < RF_TAR_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    h[155] = ' ';
    assert_int_equal(rf_tar_header_decode(h, name, &size, &day), RF_ERR_FORMAT);
}

/* ---- the store ---- */

struct fixture {
    char root[512];
    char dir[600], dir2[600], archive[600];
    struct rf_store *st;
    char schema[24]; /* PostgreSQL: the test's own schema, "" on SQLite */
    char url[1024];
};

/* The fixture's store: SQLite, or PostgreSQL in a schema of its own. */
static int fixture_open(struct fixture *f)
{
    if (f->schema[0])
        return rf_store_create(&f->st, f->dir, f->url);
    return rf_store_open(&f->st, f->dir);
}

static int setup_any(void **state, int pg)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("REFUGE_TEST_TMP");
    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/backup-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    snprintf(f->dir2, sizeof(f->dir2), "%s/restored", f->root);
    snprintf(f->archive, sizeof(f->archive), "%s/backup.tar", f->root);
    if (pg)
        pgt_new(f->schema, f->url, sizeof(f->url));
    if (fixture_open(f) != 0)
        return -1;
    *state = f;
    return 0;
}

static int setup(void **state)
{
    return setup_any(state, 0);
}

/* the same tests on a PostgreSQL instance: rf_store_backup exports its rows
 * into a SQLite database (backup_export.c); the archive is the same */
static int setup_pg(void **state)
{
    if (pgt_skipped("backup on PostgreSQL")) {
        *state = NULL; /* each test skips (a skip in a setup is an error) */
        return 0;
    }
    return setup_any(state, 1);
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    if (!f)
        return 0;
    rf_store_close(f->st);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (f->schema[0])
        pgt_drop(f->schema);
    free(f);
    return 0;
}

static int apply1(struct rf_store *st, struct rf_op *op)
{
    int rc = rf_store_apply(st, op, 1);
    return rc != 0 ? rc : op->status;
}

static struct rf_source make_source(struct rf_store *st, uint8_t tag)
{
    struct rf_op op = {.type = RF_OP_SOURCE_CREATE};
    memset(op.lookup_id, tag, sizeof(op.lookup_id));
    memset(op.pk, tag ^ 0x5a, sizeof(op.pk));
    assert_int_equal(apply1(st, &op), 0);
    return op.source;
}

static int64_t put_inline(struct rf_store *st, int64_t source_id, const uint8_t *p, size_t n)
{
    struct rf_op op = {.type = RF_OP_OBJECT_PUT, .source_id = source_id, .kind = 1};
    op.data = p;
    op.len = n;
    assert_int_equal(apply1(st, &op), 0);
    return op.seq;
}

static int64_t put_blob(struct rf_store *st, int64_t source_id, const uint8_t *p, size_t n,
                        char name[RF_BLOB_NAME_LEN + 1])
{
    struct rf_blob *b = NULL;
    struct rf_op op = {.type = RF_OP_OBJECT_PUT, .source_id = source_id, .kind = 2};
    assert_int_equal(rf_blob_begin(st, &b), 0);
    assert_int_equal(rf_blob_write(b, p, n), 0);
    assert_int_equal(rf_blob_commit(b, name), 0);
    memcpy(op.blob_name, name, RF_BLOB_NAME_LEN + 1);
    op.size = n;
    assert_int_equal(apply1(st, &op), 0);
    return op.seq;
}

static int backup_to(struct fixture *f, struct rf_backup_info *info)
{
    int fd = open(f->archive, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    int rc = rf_store_backup(f->st, fd, info);
    close(fd);
    return rc;
}

static int restore_from(const char *archive, const char *dir, struct rf_backup_info *info)
{
    int fd = open(archive, O_RDONLY);
    assert_true(fd >= 0);
    int rc = rf_store_restore(fd, dir, info);
    close(fd);
    return rc;
}

static int dir_empty_or_absent(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    if (!d)
        return 1;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n == 0;
}

static void assert_object(struct rf_store *st, int64_t seq, const uint8_t *p, size_t n)
{
    struct rf_buf b;
    rf_buf_init(&b, 1 << 24);
    assert_int_equal(rf_store_object_read(st, seq, &b), 0);
    assert_int_equal(b.len, n);
    assert_memory_equal(b.data, p, n);
    rf_buf_free(&b);
}

#define SMALL 3000
#define BIG (700 * 1000)

static void backup_and_restore_byte_exact(void **state)
{
    struct fixture *f = *state;
    if (!f)
        skip(); /* PostgreSQL, without REFUGE_TEST_PG */
    static uint8_t small[SMALL], big[BIG], big2[BIG / 3];
    char n1[RF_BLOB_NAME_LEN + 1], n2[RF_BLOB_NAME_LEN + 1];
    randombytes_buf(small, sizeof(small));
    randombytes_buf(big, sizeof(big));
    randombytes_buf(big2, sizeof(big2));
    struct rf_source s = make_source(f->st, 1);
    int64_t a = put_inline(f->st, s.id, small, sizeof(small));
    int64_t b = put_blob(f->st, s.id, big, sizeof(big), n1);
    int64_t c = put_blob(f->st, s.id, big2, sizeof(big2), n2);
    struct rf_backup_info info;
    assert_int_equal(backup_to(f, &info), 0);
    assert_int_equal(info.objects, 3);
    assert_int_equal(info.blobs, 2);
    assert_true(info.schema >= 5);
    assert_int_equal(info.day, rf_store_today());
    struct stat sb;
    assert_int_equal(stat(f->archive, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, info.bytes);
    assert_int_equal(sb.st_size % RF_TAR_BLOCK, 0);
    /* nothing left in the data directory's tmp/ */
    char tmp[700];
    snprintf(tmp, sizeof(tmp), "%s/tmp", f->dir);
    assert_true(dir_empty_or_absent(tmp));

    struct rf_backup_info got;
    int fd = open(f->archive, O_RDONLY);
    assert_int_equal(rf_store_archive_check(fd, &got), 0);
    close(fd);
    assert_int_equal(got.objects, 3);
    assert_int_equal(restore_from(f->archive, f->dir2, &got), 0);
    assert_int_equal(got.blobs, 2);
    assert_int_equal(stat(f->dir2, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    struct rf_store *st2 = NULL;
    assert_int_equal(rf_store_open(&st2, f->dir2), 0);
    /* whichever backend was backed up, the restored instance is SQLite */
    assert_string_equal(rf_store_backend(st2), "sqlite");
    snprintf(tmp, sizeof(tmp), "%s/database", f->dir2);
    assert_int_equal(access(tmp, F_OK), -1);
    assert_object(st2, a, small, sizeof(small));
    assert_object(st2, b, big, sizeof(big));
    assert_object(st2, c, big2, sizeof(big2));
    struct rf_source s2;
    assert_int_equal(rf_store_source_by_case(st2, s.case_id, &s2), 0);
    assert_memory_equal(s2.pk, s.pk, 32);
    rf_store_close(st2);

    /* a non-empty target is refused and left as it was */
    assert_int_equal(restore_from(f->archive, f->dir2, &got), RF_ERR_EXISTS);
    assert_non_null(strstr(got.why, "not empty"));
    assert_int_equal(rf_store_open(&st2, f->dir2), 0);
    assert_object(st2, b, big, sizeof(big));
    rf_store_close(st2);
}

static void damaged_archive_leaves_target_empty(void **state)
{
    struct fixture *f = *state;
    static uint8_t big[BIG];
    char n1[RF_BLOB_NAME_LEN + 1], bad[700];
    randombytes_buf(big, sizeof(big));
    struct rf_source s = make_source(f->st, 2);
    put_blob(f->st, s.id, big, sizeof(big), n1);
    struct rf_backup_info info;
    assert_int_equal(backup_to(f, &info), 0);
    FILE *in = fopen(f->archive, "rb");
    uint8_t *data = malloc(info.bytes);
    assert_non_null(data);
    assert_int_equal(fread(data, 1, info.bytes, in), info.bytes);
    fclose(in);
    snprintf(bad, sizeof(bad), "%s/bad.tar", f->root);
    /* a flip in a spread of places, and truncations */
    for (uint64_t off = 0; off < info.bytes; off += info.bytes / 97 + 1) {
        FILE *o = fopen(bad, "wb");
        data[off] ^= 0x20;
        assert_int_equal(fwrite(data, 1, info.bytes, o), info.bytes);
        data[off] ^= 0x20;
        fclose(o);
        assert_int_not_equal(restore_from(bad, f->dir2, &info), 0);
        assert_true(info.why[0] != '\0');
        assert_true(dir_empty_or_absent(f->dir2));
        /* an existing empty target stays (empty) */
        mkdir(f->dir2, 0700);
        assert_int_not_equal(restore_from(bad, f->dir2, &info), 0);
        assert_true(dir_empty_or_absent(f->dir2));
        assert_int_equal(access(f->dir2, F_OK), 0);
        rmdir(f->dir2);
        o = fopen(bad, "wb");
        assert_int_equal(fwrite(data, 1, off, o), off);
        fclose(o);
        assert_int_equal(restore_from(bad, f->dir2, &info), RF_ERR_TRUNCATED);
        assert_true(dir_empty_or_absent(f->dir2));
    }
    free(data);
}

struct race {
    struct rf_store *st;
    int64_t seq, source_id;
    int runs;
};

/* After the first snapshot: a person deletes the blob object (row, then file). */
static void delete_after_snapshot(void *arg)
{
    struct race *r = arg;
    if (r->runs++ > 0)
        return;
    struct rf_op op = {.type = RF_OP_OBJECT_DELETE, .seq = r->seq, .source_id = r->source_id};
    assert_int_equal(apply1(r->st, &op), 0);
}

static void blob_deleted_after_snapshot_restarts(void **state)
{
    struct fixture *f = *state;
    if (!f)
        skip(); /* PostgreSQL, without REFUGE_TEST_PG */
    static uint8_t big[BIG], keep[BIG / 2];
    char n1[RF_BLOB_NAME_LEN + 1], n2[RF_BLOB_NAME_LEN + 1];
    randombytes_buf(big, sizeof(big));
    randombytes_buf(keep, sizeof(keep));
    struct rf_source s = make_source(f->st, 3);
    int64_t gone = put_blob(f->st, s.id, big, sizeof(big), n1);
    int64_t kept = put_blob(f->st, s.id, keep, sizeof(keep), n2);
    /* the deleted blob must sort first so the copy meets it missing */
    struct race r = {f->st, strcmp(n1, n2) < 0 ? gone : kept, s.id, 0};
    rf_store_backup_hook(delete_after_snapshot, &r);
    struct rf_backup_info info;
    int rc = backup_to(f, &info);
    rf_store_backup_hook(NULL, NULL);
    assert_int_equal(rc, 0);
    assert_int_equal(r.runs, 2); /* started again once */
    assert_int_equal(info.objects, 1);
    assert_int_equal(info.blobs, 1);
    struct rf_backup_info got;
    assert_int_equal(restore_from(f->archive, f->dir2, &got), 0);
    struct rf_store *st2 = NULL;
    assert_int_equal(rf_store_open(&st2, f->dir2), 0);
    int64_t left = r.seq == gone ? kept : gone;
    assert_object(st2, left, left == kept ? keep : big, left == kept ? sizeof(keep) : sizeof(big));
    struct rf_object o;
    assert_int_equal(rf_store_object_get(st2, r.seq, &o), RF_ERR_NOT_FOUND);
    rf_store_close(st2);
}

static void blob_missing_with_live_row_fails(void **state)
{
    struct fixture *f = *state;
    if (!f)
        skip(); /* PostgreSQL, without REFUGE_TEST_PG */
    static uint8_t big[BIG];
    char n1[RF_BLOB_NAME_LEN + 1], path[700];
    randombytes_buf(big, sizeof(big));
    struct rf_source s = make_source(f->st, 4);
    put_blob(f->st, s.id, big, sizeof(big), n1);
    snprintf(path, sizeof(path), "%s/blobs/%s", f->dir, n1);
    assert_int_equal(unlink(path), 0);
    struct rf_backup_info info;
    assert_int_equal(backup_to(f, &info), RF_ERR_IO);
    assert_non_null(strstr(info.why, "missing"));
}

/* A backup that crashed leaves its temporary store (a directory on
 * PostgreSQL, a file on SQLite) in DIR/tmp: the next open that recovers
 * removes it. */
static void leftover_backup_copy_removed_at_open(void **state)
{
    struct fixture *f = *state;
    if (!f)
        skip(); /* PostgreSQL, without REFUGE_TEST_PG */
    char p[800];
    rf_store_close(f->st);
    f->st = NULL;
    snprintf(p, sizeof(p), "%s/tmp/backup-0123456789abcdef.db", f->dir);
    FILE *o = fopen(p, "wb");
    assert_non_null(o);
    fclose(o);
    snprintf(p, sizeof(p), "%s/tmp/backup-0123456789abcdef.db.d", f->dir);
    assert_int_equal(mkdir(p, 0700), 0);
    const char *sub[] = {"blobs", "tmp"};
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof(p), "%s/tmp/backup-0123456789abcdef.db.d/%s", f->dir, sub[i]);
        assert_int_equal(mkdir(p, 0700), 0);
    }
    snprintf(p, sizeof(p), "%s/tmp/backup-0123456789abcdef.db.d/refuge.db", f->dir);
    o = fopen(p, "wb");
    assert_non_null(o);
    fputs("x", o);
    fclose(o);
    snprintf(p, sizeof(p), "%s/tmp/backup-0123456789abcdef.db.d/tmp/0.tmp", f->dir);
    o = fopen(p, "wb");
    assert_non_null(o);
    fclose(o);
    assert_int_equal(fixture_open(f), 0);
    snprintf(p, sizeof(p), "%s/tmp", f->dir);
    assert_true(dir_empty_or_absent(p));
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(manifest_round_trip),
        cmocka_unit_test(manifest_every_flip_and_truncation_refused),
        cmocka_unit_test(manifest_grammar_refusals),
        cmocka_unit_test(days),
        cmocka_unit_test(tar_header_round_trip_and_every_flip),
        cmocka_unit_test_setup_teardown(backup_and_restore_byte_exact, setup, teardown),
        cmocka_unit_test_setup_teardown(damaged_archive_leaves_target_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(blob_deleted_after_snapshot_restarts, setup, teardown),
        cmocka_unit_test_setup_teardown(blob_missing_with_live_row_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(leftover_backup_copy_removed_at_open, setup, teardown),
        cmocka_unit_test_setup_teardown(backup_and_restore_byte_exact, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(blob_deleted_after_snapshot_restarts, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(blob_missing_with_live_row_fails, setup_pg, teardown),
        cmocka_unit_test_setup_teardown(leftover_backup_copy_removed_at_open, setup_pg, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
