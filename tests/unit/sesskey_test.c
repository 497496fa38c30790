/*
 * sesskey_test.c - the session key and sessions shared through the store
 * (server/sesskey.h, server/session.h shared mode, store.h "person
 * sessions"): rows seal and open only under their own id and key, hold
 * none of the secrets in the clear, survive one rotation and not two; the
 * key file is refused on a disk, inside the data directory or readable by
 * others, and a running process picks up a rotation by itself. Then two
 * session tables on one store (two processes) share every session: made on
 * one, used on the other, ended on one and gone on both, quotas counted
 * together, expiry by the wall clock. The store part runs on SQLite and, with
 * REFUGE_TEST_PG, on PostgreSQL.
 */
#include "lib/err.h"
#include "lib/source.h"
#include "server/session.h"
#include "server/sesskey.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tmp.h"

#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pg_test_db.h"

static int on_pg;

static void plain_fill(struct rf_sesskey_plain *p)
{
    memset(p, 0, sizeof(*p));
    p->source_id = 4242;
    memcpy(p->case_id, "ABCDEFGHJK", RF_CASE_ID_LEN);
    randombytes_buf(p->pk, 32);
    randombytes_buf(p->sk, 32);
    randombytes_buf(p->csrf, 32);
    p->ends = 1700000000 + 4 * 3600;
}

static int holds(const uint8_t *hay, size_t n, const uint8_t *needle, size_t m)
{
    for (size_t i = 0; i + m <= n; i++)
        if (memcmp(hay + i, needle, m) == 0)
            return 1;
    return 0;
}

static struct rf_sesskey *key_of(const uint8_t *file)
{
    struct rf_sesskey *k = NULL;
    assert_int_equal(rf_sesskey_from_bytes(&k, file, RF_SESSKEY_FILE_LEN), 0);
    return k;
}

/* ------------------------------------------------------------ sealing */

static void rows_open_under_their_own_id_and_key_only(void **state)
{
    (void)state;
    uint8_t file[RF_SESSKEY_FILE_LEN], other[RF_SESSKEY_FILE_LEN];
    rf_sesskey_file_make(file, NULL);
    rf_sesskey_file_make(other, NULL);
    struct rf_sesskey *k = key_of(file), *stranger = key_of(other);
    struct rf_sesskey_plain *p = sodium_malloc(sizeof(*p)), *o = sodium_malloc(sizeof(*o));
    uint8_t id[32], id2[32], keyid[8], sealed[RF_SESSION_SEALED_MAX];
    size_t len = 0;
    plain_fill(p);
    randombytes_buf(id, 32);
    randombytes_buf(id2, 32);
    assert_int_equal(rf_sesskey_seal(k, id, p, keyid, sealed, sizeof(sealed), &len), 0);
    assert_int_equal(len, RF_SESSKEY_SEALED_LEN);

    /* none of the secrets, nor the case, in the clear */
    assert_false(holds(sealed, len, p->sk, 8));
    assert_false(holds(sealed, len, p->pk, 8));
    assert_false(holds(sealed, len, p->csrf, 8));
    assert_false(holds(sealed, len, (const uint8_t *)p->case_id, RF_CASE_ID_LEN));

    assert_int_equal(rf_sesskey_open(k, id, keyid, sealed, len, o), 0);
    assert_int_equal(o->source_id, p->source_id);
    assert_string_equal(o->case_id, p->case_id);
    assert_memory_equal(o->pk, p->pk, 32);
    assert_memory_equal(o->sk, p->sk, 32);
    assert_memory_equal(o->csrf, p->csrf, 32);
    assert_int_equal(o->ends, p->ends);

    /* another id (a row copied under another cookie), another key, a key id
     * changed, a flipped byte, a short row: none opens */
    assert_int_equal(rf_sesskey_open(k, id2, keyid, sealed, len, o), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_sesskey_open(stranger, id, keyid, sealed, len, o), RF_ERR_NOT_FOUND);
    uint8_t bad[8];
    memcpy(bad, keyid, 8);
    bad[0] ^= 1;
    assert_int_equal(rf_sesskey_open(k, id, bad, sealed, len, o), RF_ERR_NOT_FOUND);
    sealed[40] ^= 1;
    assert_int_equal(rf_sesskey_open(k, id, keyid, sealed, len, o), RF_ERR_NOT_FOUND);
    sealed[40] ^= 1;
    assert_int_equal(rf_sesskey_open(k, id, keyid, sealed, len - 1, o), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_sesskey_open(k, id, keyid, sealed, len, o), 0);

    /* two seals of the same session differ (random nonce) */
    uint8_t again[RF_SESSION_SEALED_MAX], keyid2[8];
    size_t len2 = 0;
    assert_int_equal(rf_sesskey_seal(k, id, p, keyid2, again, sizeof(again), &len2), 0);
    assert_memory_equal(keyid, keyid2, 8);
    assert_memory_not_equal(sealed, again, len);
    sodium_free(p);
    sodium_free(o);
    rf_sesskey_free(k);
    rf_sesskey_free(stranger);
}

static void one_rotation_keeps_sessions_two_end_them(void **state)
{
    (void)state;
    uint8_t f1[RF_SESSKEY_FILE_LEN], f2[RF_SESSKEY_FILE_LEN], f3[RF_SESSKEY_FILE_LEN];
    rf_sesskey_file_make(f1, NULL);
    rf_sesskey_file_make(f2, f1);
    rf_sesskey_file_make(f3, f2);
    struct rf_sesskey *k1 = key_of(f1), *k2 = key_of(f2), *k3 = key_of(f3);
    struct rf_sesskey_plain *p = sodium_malloc(sizeof(*p)), *o = sodium_malloc(sizeof(*o));
    uint8_t id[32], kid1[8], kid2[8], s1[RF_SESSION_SEALED_MAX], s2[RF_SESSION_SEALED_MAX];
    size_t n1 = 0, n2 = 0;
    plain_fill(p);
    randombytes_buf(id, 32);
    assert_int_equal(rf_sesskey_seal(k1, id, p, kid1, s1, sizeof(s1), &n1), 0);
    assert_int_equal(rf_sesskey_seal(k2, id, p, kid2, s2, sizeof(s2), &n2), 0);
    assert_memory_not_equal(kid1, kid2, 8);
    assert_int_equal(rf_sesskey_open(k2, id, kid1, s1, n1, o), 0); /* previous key */
    assert_int_equal(rf_sesskey_open(k3, id, kid2, s2, n2, o), 0);
    assert_int_equal(rf_sesskey_open(k3, id, kid1, s1, n1, o), RF_ERR_NOT_FOUND); /* gone */
    assert_int_equal(rf_sesskey_open(k1, id, kid2, s2, n2, o), RF_ERR_NOT_FOUND); /* not yet */

    /* pending codenames and CSRF follow the same keys */
    uint8_t nonce[24], m[40] = "a pending codename, sealed", c[40 + 16], back[40];
    randombytes_buf(nonce, sizeof(nonce));
    assert_int_equal(rf_sesskey_pend_seal(k1, c, m, sizeof(m), (const uint8_t *)"ad", 2, nonce), 0);
    assert_int_equal(rf_sesskey_pend_open(k2, back, c, sizeof(c), (const uint8_t *)"ad", 2, nonce),
                     0);
    assert_memory_equal(back, m, sizeof(m));
    assert_int_equal(rf_sesskey_pend_open(k3, back, c, sizeof(c), (const uint8_t *)"ad", 2, nonce),
                     RF_ERR_NOT_FOUND);
    assert_int_equal(rf_sesskey_pend_open(k2, back, c, sizeof(c), (const uint8_t *)"da", 2, nonce),
                     RF_ERR_NOT_FOUND);
    uint8_t a[32], b[32];
    assert_int_equal(rf_sesskey_csrf(k1, 0, a), 0);
    assert_int_equal(rf_sesskey_csrf(k1, 1, b), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_sesskey_csrf(k2, 1, b), 0);
    assert_memory_equal(a, b, 32);
    sodium_free(p);
    sodium_free(o);
    rf_sesskey_free(k1);
    rf_sesskey_free(k2);
    rf_sesskey_free(k3);
}

static void damaged_files_are_refused(void **state)
{
    (void)state;
    uint8_t f[RF_SESSKEY_FILE_LEN];
    struct rf_sesskey *k = NULL;
    rf_sesskey_file_make(f, NULL);
    for (size_t i = 0; i < sizeof(f); i += 7) {
        f[i] ^= 0x20;
        assert_int_not_equal(rf_sesskey_from_bytes(&k, f, sizeof(f)), 0);
        assert_null(k);
        f[i] ^= 0x20;
    }
    assert_int_not_equal(rf_sesskey_from_bytes(&k, f, sizeof(f) - 1), 0);
    assert_int_equal(rf_sesskey_from_bytes(&k, f, sizeof(f)), 0);
    rf_sesskey_free(k);
}

/* ------------------------------------------------------------ the key file */

static char shm_dir[64];

static void write_file(const char *path, const uint8_t *b, size_t n, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, mode);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, b, n, 0), (ssize_t)n);
    fchmod(fd, mode);
    close(fd);
}

static void key_file_kept_in_memory_and_reread_after_rotation(void **state)
{
    (void)state;
    char path[128], disk[512], inside[256];
    char why[256];
    uint8_t f1[RF_SESSKEY_FILE_LEN], f2[RF_SESSKEY_FILE_LEN];
    struct rf_sesskey *k = NULL;
    snprintf(shm_dir, sizeof(shm_dir), "/dev/shm/sesskey-test-XXXXXX");
    if (mkdtemp(shm_dir) == NULL) {
        fprintf(stderr, "*** no /dev/shm: key file tests skipped ***\n");
        return;
    }
    snprintf(path, sizeof(path), "%s/session.key", shm_dir);
    rf_sesskey_file_make(f1, NULL);

    /* readable by others: refused */
    write_file(path, f1, sizeof(f1), 0644);
    assert_int_equal(rf_sesskey_load(&k, path, NULL, why, sizeof(why)), RF_ERR_INVALID);
    assert_non_null(strstr(why, "chmod 600"));
    chmod(path, 0600);
    /* inside the data directory: refused */
    assert_int_equal(rf_sesskey_load(&k, path, shm_dir, why, sizeof(why)), RF_ERR_INVALID);
    assert_non_null(strstr(why, "inside the data directory"));
    /* on a disk: refused */
    const char *tmp = getenv("REFUGE_TEST_TMP");
    snprintf(disk, sizeof(disk), "%s/sesskey-disk.key", tmp && *tmp ? tmp : ".");
    write_file(disk, f1, sizeof(f1), 0600);
    assert_int_equal(rf_sesskey_load(&k, disk, NULL, why, sizeof(why)), RF_ERR_INVALID);
    assert_non_null(strstr(why, "tmpfs"));
    unlink(disk);
    snprintf(inside, sizeof(inside), "%s/missing.key", shm_dir);
    assert_int_equal(rf_sesskey_load(&k, inside, NULL, why, sizeof(why)), RF_ERR_NOT_FOUND);

    assert_int_equal(rf_sesskey_load(&k, path, "/var/lib/refuge", why, sizeof(why)), 0);
    struct rf_sesskey_plain *p = sodium_malloc(sizeof(*p)), *o = sodium_malloc(sizeof(*o));
    uint8_t id[32], kid1[8], kid2[8], s1[RF_SESSION_SEALED_MAX], s2[RF_SESSION_SEALED_MAX];
    size_t n1 = 0, n2 = 0;
    plain_fill(p);
    randombytes_buf(id, 32);
    assert_int_equal(rf_sesskey_seal(k, id, p, kid1, s1, sizeof(s1), &n1), 0);

    /* another process rotates the file in place and seals under the new key */
    rf_sesskey_file_make(f2, f1);
    write_file(path, f2, sizeof(f2), 0600);
    struct rf_sesskey *k2 = key_of(f2);
    assert_int_equal(rf_sesskey_seal(k2, id, p, kid2, s2, sizeof(s2), &n2), 0);
    /* this one meets that row: re-reads the file, opens it, and both old rows */
    assert_int_equal(rf_sesskey_open(k, id, kid2, s2, n2, o), 0);
    assert_int_equal(rf_sesskey_open(k, id, kid1, s1, n1, o), 0);
    /* and now seals under the new key itself */
    uint8_t kid3[8];
    assert_int_equal(rf_sesskey_seal(k, id, p, kid3, s1, sizeof(s1), &n1), 0);
    assert_memory_equal(kid3, kid2, 8);

    /* a half-written file is ignored: the keys it had stay */
    uint8_t torn[RF_SESSKEY_FILE_LEN];
    memcpy(torn, f2, sizeof(torn));
    torn[10] ^= 1;
    write_file(path, torn, sizeof(torn), 0600);
    assert_int_not_equal(rf_sesskey_reload(k), 0);
    assert_int_equal(rf_sesskey_open(k, id, kid2, s2, n2, o), 0);

    sodium_free(p);
    sodium_free(o);
    rf_sesskey_free(k);
    rf_sesskey_free(k2);
    unlink(path);
    rmdir(shm_dir);
}

/* ------------------------------------------------------------ two processes, one store */

struct fixture {
    char root[512];
    char dir[600];
    char schema[24];
    char pgurl[1024];
    struct rf_store *st;
    struct rf_sesskey *key;
    struct rf_sessions *a, *b; /* two processes' session tables */
};

static int64_t wall;
static int64_t wall_clock(void *arg)
{
    (void)arg;
    return wall;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("REFUGE_TEST_TMP");
    uint8_t file[RF_SESSKEY_FILE_LEN];
    if (!f)
        return -1;
    snprintf(f->root, sizeof(f->root), "%s/sesskey-XXXXXX", base && *base ? base : "/tmp");
    if (!mkdtemp(f->root))
        return -1;
    snprintf(f->dir, sizeof(f->dir), "%s/data", f->root);
    if (on_pg) {
        pgt_new(f->schema, f->pgurl, sizeof(f->pgurl));
        if (rf_store_create(&f->st, f->dir, f->pgurl) != 0)
            return -1;
    } else if (rf_store_open(&f->st, f->dir) != 0) {
        return -1;
    }
    rf_sesskey_file_make(file, NULL);
    if (rf_sesskey_from_bytes(&f->key, file, sizeof(file)) != 0)
        return -1;
    wall = (int64_t)time(NULL);
    if (rf_sessions_new(&f->a, 8, 600) != 0 || rf_sessions_new(&f->b, 8, 600) != 0)
        return -1;
    rf_sessions_set_clock(f->a, wall_clock, NULL);
    rf_sessions_set_clock(f->b, wall_clock, NULL);
    if (rf_sessions_share(f->a, f->st, f->key) != 0 || rf_sessions_share(f->b, f->st, f->key) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rf_sessions_free(f->a);
    rf_sessions_free(f->b);
    rf_sesskey_free(f->key);
    rf_store_close(f->st);
    nftw(f->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (on_pg)
        pgt_drop(f->schema);
    free(f);
    return 0;
}

static void login(struct rf_sessions *s, char tok[RF_SESSION_TOKEN_B64], uint8_t sk_out[32])
{
    struct rf_source src = {.id = 7};
    memcpy(src.case_id, "CASE234567", RF_CASE_ID_LEN + 1);
    struct rf_source_keys *keys = sodium_malloc(sizeof(*keys));
    randombytes_buf(keys, sizeof(*keys));
    memcpy(sk_out, keys->sk, 32);
    assert_int_equal(rf_session_create(s, &src, keys, tok), 0);
    sodium_free(keys);
}

static void a_session_made_on_one_process_is_served_by_the_other(void **state)
{
    struct fixture *f = *state;
    char tok[RF_SESSION_TOKEN_B64];
    uint8_t sk[32];
    struct rf_session_view *v = sodium_malloc(sizeof(*v)), *w = sodium_malloc(sizeof(*w));
    login(f->a, tok, sk);
    assert_int_equal(rf_session_get(f->b, tok, v), 0);
    assert_int_equal(v->source_id, 7);
    assert_string_equal(v->case_id, "CASE234567");
    assert_memory_equal(v->sk, sk, 32);
    assert_int_equal(rf_session_get(f->a, tok, w), 0);
    assert_memory_equal(v->csrf, w->csrf, 32); /* one CSRF secret for the session */
    assert_int_equal(rf_sessions_count(f->b), 1);
    /* nothing of it in either process's table */
    assert_false(rf_sessions_holds(f->a, sk, 32));
    assert_false(rf_sessions_holds(f->b, sk, 32));

    /* ended on one: gone on the other at once, and from the store */
    rf_session_end(f->a, tok);
    assert_int_equal(rf_session_get(f->b, tok, v), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_sessions_count(f->a), 0);
    /* an unknown or malformed token */
    assert_int_equal(rf_session_get(f->b, "not a token", v), RF_ERR_NOT_FOUND);
    sodium_free(v);
    sodium_free(w);
}

static void quotas_count_across_processes(void **state)
{
    struct fixture *f = *state;
    char tok[RF_SESSION_TOKEN_B64];
    uint8_t sk[32];
    struct rf_session_view *v = sodium_malloc(sizeof(*v));
    rf_sessions_set_quota(f->a, 3, 1000);
    rf_sessions_set_quota(f->b, 3, 1000);
    login(f->a, tok, sk);
    assert_int_equal(rf_session_count_sent(f->a, tok, 100), 0);
    assert_int_equal(rf_session_count_sent(f->b, tok, 100), 0);
    assert_int_equal(rf_session_count_sent(f->a, tok, 900), RF_ERR_LIMIT); /* bytes */
    assert_int_equal(rf_session_count_sent(f->b, tok, 100), 0);
    assert_int_equal(rf_session_count_sent(f->a, tok, 1), RF_ERR_LIMIT); /* messages */
    assert_int_equal(rf_session_count_sent(f->b, tok, 1), RF_ERR_LIMIT);
    assert_int_equal(rf_session_get(f->b, tok, v), 0);
    assert_int_equal(v->sent_today_msgs, 3);
    assert_int_equal(v->sent_today_bytes, 300);
    rf_session_end(f->b, tok);
    assert_int_equal(rf_session_count_sent(f->a, tok, 1), RF_ERR_NOT_FOUND);
    sodium_free(v);
}

/* A refused upload's bytes, charged on one process, count on the other:
 * bytes only (not a message), up to the quota at most, and they spend it. */
static void refused_bytes_count_across_processes(void **state)
{
    struct fixture *f = *state;
    char tok[RF_SESSION_TOKEN_B64], tok2[RF_SESSION_TOKEN_B64];
    uint8_t sk[32];
    struct rf_session_view *v = sodium_malloc(sizeof(*v));
    rf_sessions_set_quota(f->a, 3, 1000);
    rf_sessions_set_quota(f->b, 3, 1000);
    login(f->a, tok, sk);
    login(f->b, tok2, sk);
    assert_int_equal(rf_session_count_refused(f->a, tok, 400), 0);
    assert_int_equal(rf_session_count_sent(f->b, tok, 700), RF_ERR_LIMIT);
    assert_int_equal(rf_session_count_sent(f->b, tok, 500), 0);
    assert_int_equal(rf_session_get(f->b, tok, v), 0);
    assert_int_equal(v->sent_today_msgs, 1);
    assert_int_equal(v->sent_today_bytes, 900);
    assert_int_equal(rf_session_bytes_left(f->b, v), 100);
    assert_int_equal(rf_session_count_refused(f->b, tok, 5000), 0);
    assert_int_equal(rf_session_get(f->a, tok, v), 0);
    assert_int_equal(v->sent_today_bytes, 1000); /* stops at the quota */
    assert_int_equal(v->sent_today_msgs, 1);
    assert_int_equal(rf_session_bytes_left(f->a, v), 0);
    assert_int_equal(rf_session_count_sent(f->a, tok, 1), RF_ERR_LIMIT);
    /* the other session is untouched */
    assert_int_equal(rf_session_get(f->a, tok2, v), 0);
    assert_int_equal(v->sent_today_bytes, 0);
    assert_int_equal(rf_session_bytes_left(f->a, v), 1000);
    /* ended: not found */
    rf_session_end(f->b, tok);
    assert_int_equal(rf_session_count_refused(f->a, tok, 1), RF_ERR_NOT_FOUND);
    rf_session_end(f->b, tok2);
    sodium_free(v);
}

/* The store's charge itself: bytes only, stopping at the maximum, the
 * counters starting again on a new day, nothing for a gone or dead row. */
static void store_charge_counts_bytes_by_day(void **state)
{
    struct fixture *f = *state;
    struct rf_session_row *row = sodium_malloc(sizeof(*row));
    memset(row, 0, sizeof(*row));
    randombytes_buf(row->id, 32);
    row->sealed_len = 16;
    row->until = wall + 600;
    row->day = 20000;
    assert_int_equal(rf_store_session_put(f->st, row, wall, 0), 0);
    assert_int_equal(rf_store_session_count(f->st, row->id, wall, 20000, 100, 3, 1000), 0);
    assert_int_equal(rf_store_session_charge(f->st, row->id, wall, 20000, 300, 1000), 0);
    assert_int_equal(rf_store_session_get(f->st, row->id, wall, row), 0);
    assert_int_equal(row->msgs, 1);
    assert_int_equal(row->bytes, 400);
    assert_int_equal(rf_store_session_charge(f->st, row->id, wall, 20000, UINT64_MAX, 1000), 0);
    assert_int_equal(rf_store_session_get(f->st, row->id, wall, row), 0);
    assert_int_equal(row->bytes, 1000);
    assert_int_equal(rf_store_session_count(f->st, row->id, wall, 20000, 1, 3, 1000), RF_ERR_LIMIT);
    /* the next day starts again */
    assert_int_equal(rf_store_session_charge(f->st, row->id, wall, 20001, 50, 1000), 0);
    assert_int_equal(rf_store_session_get(f->st, row->id, wall, row), 0);
    assert_int_equal(row->day, 20001);
    assert_int_equal(row->msgs, 0);
    assert_int_equal(row->bytes, 50);
    /* dead or gone: not found, nothing written */
    assert_int_equal(rf_store_session_charge(f->st, row->id, wall + 601, 20001, 1, 1000),
                     RF_ERR_NOT_FOUND);
    assert_int_equal(rf_store_session_delete(f->st, row->id), 0);
    assert_int_equal(rf_store_session_charge(f->st, row->id, wall, 20001, 1, 1000),
                     RF_ERR_NOT_FOUND);
    sodium_free(row);
}

static void expiry_by_the_wall_clock_everywhere(void **state)
{
    struct fixture *f = *state;
    char tok[RF_SESSION_TOKEN_B64], tok2[RF_SESSION_TOKEN_B64];
    uint8_t sk[32];
    struct rf_session_view *v = sodium_malloc(sizeof(*v));
    login(f->a, tok, sk);
    login(f->b, tok2, sk);
    /* used every 5 minutes, the idle timeout (10 min) is pushed forward */
    for (int i = 0; i < 5; i++) {
        wall += 300;
        assert_int_equal(rf_session_get(f->b, tok, v), 0);
    }
    /* tok2, idle 25 minutes: dead on both, and the reaper deletes its row */
    assert_int_equal(rf_session_get(f->a, tok2, v), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_sessions_reap(f->b), 1);
    uint64_t live = 0;
    assert_int_equal(rf_store_sessions_live(f->st, wall, &live), 0);
    assert_int_equal(live, 1);
    /* the absolute lifetime ends even a busy session */
    for (int64_t t = 0; t < RF_SESSION_LIFETIME_S; t += 300) {
        wall += 300;
        rf_session_get(f->a, tok, v);
    }
    assert_int_equal(rf_session_get(f->a, tok, v), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_session_get(f->b, tok, v), RF_ERR_NOT_FOUND);
    sodium_free(v);
}

static void pending_codenames_open_on_the_other_process(void **state)
{
    struct fixture *f = *state;
    char sealed[RF_PENDING_B64];
    char *out = sodium_malloc(RF_PENDING_CN_MAX + 1);
    const uint8_t bind[] = "cookie-123";
    assert_int_equal(
        rf_pending_seal(f->a, "one two three four five six seven", bind, sizeof(bind), sealed), 0);
    assert_int_equal(rf_pending_open(f->b, sealed, strlen(sealed), bind, sizeof(bind), out,
                                     RF_PENDING_CN_MAX + 1),
                     0);
    assert_string_equal(out, "one two three four five six seven");
    assert_int_equal(rf_pending_open(f->b, sealed, strlen(sealed), (const uint8_t *)"x", 1, out,
                                     RF_PENDING_CN_MAX + 1),
                     RF_ERR_NOT_FOUND);
    sodium_free(out);
}

static void the_table_bound_holds_across_processes(void **state)
{
    struct fixture *f = *state;
    char tok[RF_SESSION_TOKEN_B64];
    uint8_t sk[32];
    struct rf_source src = {.id = 7};
    memcpy(src.case_id, "CASE234567", RF_CASE_ID_LEN + 1);
    for (int i = 0; i < 8; i++)
        login(i % 2 ? f->a : f->b, tok, sk);
    struct rf_source_keys *keys = sodium_malloc(sizeof(*keys));
    randombytes_buf(keys, sizeof(*keys));
    assert_int_equal(rf_session_create(f->a, &src, keys, tok), RF_ERR_BUSY);
    assert_int_equal(rf_session_create(f->b, &src, keys, tok), RF_ERR_BUSY);
    wall += 601; /* all expired: room again, without waiting for a reaper */
    assert_int_equal(rf_session_create(f->b, &src, keys, tok), 0);
    sodium_free(keys);
}

int main(void)
{
    const struct CMUnitTest sealing[] = {
        cmocka_unit_test(rows_open_under_their_own_id_and_key_only),
        cmocka_unit_test(one_rotation_keeps_sessions_two_end_them),
        cmocka_unit_test(damaged_files_are_refused),
        cmocka_unit_test(key_file_kept_in_memory_and_reread_after_rotation),
    };
    const struct CMUnitTest shared[] = {
        cmocka_unit_test_setup_teardown(a_session_made_on_one_process_is_served_by_the_other, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(quotas_count_across_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(refused_bytes_count_across_processes, setup, teardown),
        cmocka_unit_test_setup_teardown(store_charge_counts_bytes_by_day, setup, teardown),
        cmocka_unit_test_setup_teardown(expiry_by_the_wall_clock_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(pending_codenames_open_on_the_other_process, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_table_bound_holds_across_processes, setup, teardown),
    };
    if (sodium_init() < 0)
        return 1;
    int failed = cmocka_run_group_tests_name("session key", sealing, NULL, NULL);
    failed += cmocka_run_group_tests_name("shared sessions on SQLite", shared, NULL, NULL);
    if (pgt_skipped("shared sessions on PostgreSQL"))
        return failed;
    on_pg = 1;
    return failed +
           cmocka_run_group_tests_name("shared sessions on PostgreSQL", shared, NULL, NULL);
}
