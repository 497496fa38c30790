/*
 * sesskey.c - the session key file, the keys derived from it, and the
 * sealing of session rows (sesskey.h). Everything derived lives in one
 * sodium_malloc block allocated at start (locked, guarded, wiped on free);
 * no request allocates any. The file stays open (its descriptor survives
 * the sandbox, which could not reach /run) and is re-read with pread.
 */
#include "server/sesskey.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/magic.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>

#define MAGIC "RFSK"
#define KDF_CTX "rfsess01"
#define SUB_ROW 1
#define SUB_PEND 2
#define SUB_CSRF 3
#define ROW_AD "refuge-session-row-v1"
#define ID_MSG "refuge-session-key-id"
#define BODY_LEN (RF_SESSKEY_FILE_LEN - 16)
#define AEAD_NPUB crypto_aead_xchacha20poly1305_ietf_NPUBBYTES
#define AEAD_ABYTES crypto_aead_xchacha20poly1305_ietf_ABYTES
/* the scratch block: a key file being re-read, or a row's plaintext */
#define SCRATCH_LEN 128
_Static_assert(RF_SESSKEY_FILE_LEN <= SCRATCH_LEN && RF_SESSKEY_PLAIN_LEN <= SCRATCH_LEN,
               "the scratch block holds a key file and a row's plaintext");

struct keyset {
    int n; /* 1 or 2 */
    uint8_t id[2][8];
    uint8_t row[2][32];
    uint8_t pend[2][32];
    uint8_t csrf[2][32];
    uint8_t check[16]; /* of the file they came from */
};

struct rf_sesskey {
    pthread_mutex_t mu;
    int fd;              /* the key file, kept open; -1: none (tests) */
    int64_t last_reload; /* monotonic second of the last re-read for an unknown id */
    struct keyset *ks;   /* sodium_malloc */
    uint8_t *file;       /* sodium_malloc, RF_SESSKEY_FILE_LEN: scratch for re-reads */
};

static int64_t mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec;
}

static void key_id(uint8_t out[8], const uint8_t key[32])
{
    uint8_t h[32];
    crypto_generichash(h, sizeof(h), (const uint8_t *)ID_MSG, sizeof(ID_MSG) - 1, key, 32);
    memcpy(out, h, 8);
}

/* Checks the file's bytes; fills ks (derived keys) if ks is not NULL. */
static int parse_file(const uint8_t *f, size_t n, struct keyset *ks)
{
    uint8_t check[16];
    if (n != RF_SESSKEY_FILE_LEN || memcmp(f, MAGIC, 4) != 0)
        return RF_ERR_FORMAT;
    crypto_generichash(check, sizeof(check), f, BODY_LEN, NULL, 0);
    if (sodium_memcmp(check, f + BODY_LEN, 16) != 0)
        return RF_ERR_FORMAT;
    if (f[4] != 1)
        return RF_ERR_VERSION;
    if (f[5] != 1 && f[5] != 2)
        return RF_ERR_FORMAT;
    if (ks == NULL)
        return 0;
    ks->n = f[5];
    for (int i = 0; i < ks->n; i++) {
        const uint8_t *key = f + 6 + 32 * i;
        key_id(ks->id[i], key);
        crypto_kdf_derive_from_key(ks->row[i], 32, SUB_ROW, KDF_CTX, key);
        crypto_kdf_derive_from_key(ks->pend[i], 32, SUB_PEND, KDF_CTX, key);
        crypto_kdf_derive_from_key(ks->csrf[i], 32, SUB_CSRF, KDF_CTX, key);
    }
    memcpy(ks->check, f + BODY_LEN, 16);
    return 0;
}

void rf_sesskey_file_make(uint8_t out[RF_SESSKEY_FILE_LEN], const uint8_t *prev_file)
{
    memset(out, 0, RF_SESSKEY_FILE_LEN);
    memcpy(out, MAGIC, 4);
    out[4] = 1;
    out[5] = prev_file != NULL ? 2 : 1;
    randombytes_buf(out + 6, 32);
    if (prev_file != NULL)
        memcpy(out + 6 + 32, prev_file + 6, 32); /* its current key */
    crypto_generichash(out + BODY_LEN, 16, out, BODY_LEN, NULL, 0);
}

int rf_sesskey_file_ids(const uint8_t *file, size_t n, uint8_t cur[8], uint8_t prev[8],
                        int *has_prev)
{
    int rc = parse_file(file, n, NULL);
    if (rc != 0)
        return rc;
    key_id(cur, file + 6);
    *has_prev = file[5] == 2;
    if (*has_prev)
        key_id(prev, file + 38);
    else
        memset(prev, 0, 8);
    return 0;
}

static struct rf_sesskey *alloc_key(void)
{
    struct rf_sesskey *k = calloc(1, sizeof(*k));
    if (k == NULL)
        return NULL;
    k->fd = -1;
    k->ks = sodium_malloc(sizeof(*k->ks));
    k->file = sodium_malloc(SCRATCH_LEN);
    if (k->ks == NULL || k->file == NULL) {
        sodium_free(k->ks);
        sodium_free(k->file);
        free(k);
        return NULL;
    }
    memset(k->ks, 0, sizeof(*k->ks));
    pthread_mutex_init(&k->mu, NULL);
    return k;
}

int rf_sesskey_from_bytes(struct rf_sesskey **out, const uint8_t *file, size_t n)
{
    *out = NULL;
    struct rf_sesskey *k = alloc_key();
    if (k == NULL)
        return RF_ERR_NOMEM;
    int rc = parse_file(file, n, k->ks);
    if (rc != 0) {
        rf_sesskey_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

void rf_sesskey_free(struct rf_sesskey *k)
{
    if (k == NULL)
        return;
    if (k->fd >= 0)
        close(k->fd);
    sodium_free(k->ks); /* wipes */
    sodium_free(k->file);
    pthread_mutex_destroy(&k->mu);
    free(k);
}

/* pread of the whole file into k->file; under k->mu. */
static int read_file(struct rf_sesskey *k)
{
    size_t got = 0;
    while (got < RF_SESSKEY_FILE_LEN) {
        ssize_t r = pread(k->fd, k->file + got, RF_SESSKEY_FILE_LEN - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return r == 0 ? RF_ERR_FORMAT : RF_ERR_IO;
        got += (size_t)r;
    }
    uint8_t extra;
    if (pread(k->fd, &extra, 1, RF_SESSKEY_FILE_LEN) != 0)
        return RF_ERR_FORMAT;
    return 0;
}

static int reload_locked(struct rf_sesskey *k)
{
    if (k->fd < 0)
        return 0;
    int rc = read_file(k);
    rc = rc ? rc : parse_file(k->file, RF_SESSKEY_FILE_LEN, NULL); /* torn: keep what we had */
    if (rc == 0 && sodium_memcmp(k->file + BODY_LEN, k->ks->check, 16) != 0)
        rc = parse_file(k->file, RF_SESSKEY_FILE_LEN, k->ks);
    sodium_memzero(k->file, RF_SESSKEY_FILE_LEN);
    return rc;
}

int rf_sesskey_reload(struct rf_sesskey *k)
{
    pthread_mutex_lock(&k->mu);
    int rc = reload_locked(k);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* 1 if the canonical path p is d or below it. */
static int path_within(const char *p, const char *d)
{
    size_t n = strlen(d);
    if (n > 0 && d[n - 1] == '/')
        n--;
    return strncmp(p, d, n) == 0 && (p[n] == '\0' || p[n] == '/');
}

static int on_memory_fs(int fd)
{
    struct statfs sf;
    if (fstatfs(fd, &sf) != 0)
        return 0;
    return sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC;
}

int rf_sesskey_load(struct rf_sesskey **out, const char *path, const char *datadir, char *why,
                    size_t whylen)
{
    *out = NULL;
    why[0] = '\0';
    char real[PATH_MAX], dreal[PATH_MAX];
    if (realpath(path, real) == NULL) {
        snprintf(why, whylen,
                 "cannot find the session key file (%s); write one with "
                 "refuge server session-key FILE",
                 strerror(errno));
        return RF_ERR_NOT_FOUND;
    }
    if (datadir != NULL && realpath(datadir, dreal) != NULL && path_within(real, dreal)) {
        snprintf(why, whylen,
                 "the session key file is inside the data directory; keep it on a "
                 "tmpfs outside it, e.g. /run/refuge/session.key");
        return RF_ERR_INVALID;
    }
    int fd = open(real, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        snprintf(why, whylen, "cannot open the session key file (%s)", strerror(errno));
        return RF_ERR_IO;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (sb.st_mode & 077) != 0) {
        snprintf(why, whylen,
                 "the session key file must be a regular file only its owner may "
                 "read (chmod 600)");
        close(fd);
        return RF_ERR_INVALID;
    }
    if (!on_memory_fs(fd)) {
        snprintf(why, whylen,
                 "the session key file is not on a tmpfs: a key on a disk outlives "
                 "the server; keep it in memory, e.g. /run/refuge/session.key");
        close(fd);
        return RF_ERR_INVALID;
    }
    struct rf_sesskey *k = alloc_key();
    if (k == NULL) {
        close(fd);
        return RF_ERR_NOMEM;
    }
    k->fd = fd;
    int rc = read_file(k);
    if (rc == 0)
        rc = parse_file(k->file, RF_SESSKEY_FILE_LEN, k->ks);
    sodium_memzero(k->file, RF_SESSKEY_FILE_LEN);
    if (rc != 0) {
        snprintf(why, whylen,
                 "the session key file is damaged or half-written; write a new one "
                 "with refuge server session-key");
        rf_sesskey_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

/* ------------------------------------------------------------ rows */

static void row_ad(uint8_t ad[sizeof(ROW_AD) - 1 + 40], const uint8_t id[32],
                   const uint8_t keyid[8])
{
    memcpy(ad, ROW_AD, sizeof(ROW_AD) - 1);
    memcpy(ad + sizeof(ROW_AD) - 1, id, 32);
    memcpy(ad + sizeof(ROW_AD) - 1 + 32, keyid, 8);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

int rf_sesskey_seal(struct rf_sesskey *k, const uint8_t id[32], const struct rf_sesskey_plain *p,
                    uint8_t keyid[8], uint8_t *sealed, size_t cap, size_t *len)
{
    uint8_t ad[sizeof(ROW_AD) - 1 + 40];
    if (cap < RF_SESSKEY_SEALED_LEN)
        return RF_ERR_LIMIT;
    pthread_mutex_lock(&k->mu);
    uint8_t *plain = k->file; /* locked scratch, wiped below */
    plain[0] = 1;
    put_u64(plain + 1, (uint64_t)p->source_id);
    memcpy(plain + 9, p->case_id, RF_CASE_ID_LEN);
    memcpy(plain + 9 + RF_CASE_ID_LEN, p->pk, 32);
    memcpy(plain + 41 + RF_CASE_ID_LEN, p->sk, 32);
    memcpy(plain + 73 + RF_CASE_ID_LEN, p->csrf, 32);
    put_u64(plain + 105 + RF_CASE_ID_LEN, (uint64_t)p->ends);
    memcpy(keyid, k->ks->id[0], 8);
    row_ad(ad, id, keyid);
    randombytes_buf(sealed, AEAD_NPUB);
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + AEAD_NPUB, NULL, plain,
                                               RF_SESSKEY_PLAIN_LEN, ad, sizeof(ad), NULL, sealed,
                                               k->ks->row[0]);
    sodium_memzero(plain, RF_SESSKEY_PLAIN_LEN);
    pthread_mutex_unlock(&k->mu);
    *len = RF_SESSKEY_SEALED_LEN;
    return 0;
}

/* Which of the keys has id keyid: 0, 1, or -1. Under k->mu. */
static int key_index(const struct rf_sesskey *k, const uint8_t keyid[8])
{
    for (int i = 0; i < k->ks->n; i++)
        if (sodium_memcmp(k->ks->id[i], keyid, 8) == 0)
            return i;
    return -1;
}

static int plain_parse(const uint8_t *plain, struct rf_sesskey_plain *out)
{
    struct rf_reader r;
    uint8_t v = 0;
    uint64_t source_id = 0, ends = 0;
    const uint8_t *case_id = NULL, *pk = NULL, *sk = NULL, *csrf = NULL;
    rf_reader_init(&r, plain, RF_SESSKEY_PLAIN_LEN);
    int rc = rf_get_u8(&r, &v);
    rc = rc ? rc : v == 1 ? 0 : RF_ERR_VERSION;
    rc = rc ? rc : rf_get_u64(&r, &source_id);
    rc = rc ? rc : rf_get_ptr(&r, &case_id, RF_CASE_ID_LEN);
    rc = rc ? rc : rf_get_ptr(&r, &pk, 32);
    rc = rc ? rc : rf_get_ptr(&r, &sk, 32);
    rc = rc ? rc : rf_get_ptr(&r, &csrf, 32);
    rc = rc ? rc : rf_get_u64(&r, &ends);
    rc = rc ? rc : rf_reader_expect_end(&r);
    if (rc != 0 || source_id > INT64_MAX || ends > INT64_MAX ||
        memchr(case_id, 0, RF_CASE_ID_LEN) != NULL)
        return RF_ERR_FORMAT;
    out->source_id = (int64_t)source_id;
    memcpy(out->case_id, case_id, RF_CASE_ID_LEN);
    out->case_id[RF_CASE_ID_LEN] = '\0';
    memcpy(out->pk, pk, 32);
    memcpy(out->sk, sk, 32);
    memcpy(out->csrf, csrf, 32);
    out->ends = (int64_t)ends;
    return 0;
}

int rf_sesskey_open(struct rf_sesskey *k, const uint8_t id[32], const uint8_t keyid[8],
                    const uint8_t *sealed, size_t len, struct rf_sesskey_plain *out)
{
    uint8_t ad[sizeof(ROW_AD) - 1 + 40];
    if (len != RF_SESSKEY_SEALED_LEN)
        return RF_ERR_NOT_FOUND;
    row_ad(ad, id, keyid);
    pthread_mutex_lock(&k->mu);
    int i = key_index(k, keyid);
    if (i < 0 && k->fd >= 0 && mono_s() != k->last_reload) { /* rotated since we read it? */
        k->last_reload = mono_s();
        reload_locked(k);
        i = key_index(k, keyid);
    }
    int rc = RF_ERR_NOT_FOUND;
    uint8_t *plain = k->file;
    if (i >= 0 && crypto_aead_xchacha20poly1305_ietf_decrypt(plain, NULL, NULL, sealed + AEAD_NPUB,
                                                             len - AEAD_NPUB, ad, sizeof(ad),
                                                             sealed, k->ks->row[i]) == 0)
        rc = plain_parse(plain, out) == 0 ? 0 : RF_ERR_NOT_FOUND;
    sodium_memzero(plain, RF_SESSKEY_PLAIN_LEN);
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* ------------------------------------------------------------ pending, CSRF */

int rf_sesskey_pend_seal(struct rf_sesskey *k, uint8_t *c, const uint8_t *m, size_t mlen,
                         const uint8_t *ad, size_t adlen, const uint8_t nonce[24])
{
    pthread_mutex_lock(&k->mu);
    crypto_aead_xchacha20poly1305_ietf_encrypt(c, NULL, m, mlen, ad, adlen, NULL, nonce,
                                               k->ks->pend[0]);
    pthread_mutex_unlock(&k->mu);
    return 0;
}

int rf_sesskey_pend_open(struct rf_sesskey *k, uint8_t *m, const uint8_t *c, size_t clen,
                         const uint8_t *ad, size_t adlen, const uint8_t nonce[24])
{
    int rc = -1;
    pthread_mutex_lock(&k->mu);
    for (int i = 0; i < k->ks->n && rc != 0; i++)
        rc = crypto_aead_xchacha20poly1305_ietf_decrypt(m, NULL, NULL, c, clen, ad, adlen, nonce,
                                                        k->ks->pend[i]);
    pthread_mutex_unlock(&k->mu);
    return rc == 0 ? 0 : RF_ERR_NOT_FOUND;
}

int rf_sesskey_csrf(struct rf_sesskey *k, int which, uint8_t out[32])
{
    int rc = RF_ERR_NOT_FOUND;
    pthread_mutex_lock(&k->mu);
    if (which >= 0 && which < k->ks->n) {
        memcpy(out, k->ks->csrf[which], 32);
        rc = 0;
    }
    pthread_mutex_unlock(&k->mu);
    return rc;
}

/* ------------------------------------------------------------ the command */

static void usage(FILE *f)
{
    fputs("usage: refuge server session-key [--rotate] FILE\n"
          "Writes the key several refuge serve processes share to keep person sessions in\n"
          "the database (refuge serve --session-key FILE). FILE must be on a tmpfs, e.g.\n"
          "/run/refuge/session.key: the key never goes to a disk or the data directory.\n"
          "Copy it to every server host over a secure channel (e.g. ssh) into a tmpfs.\n"
          "  --rotate   FILE exists: its key becomes the previous one, a new one the\n"
          "             current; running servers pick it up without a restart. Rotate at\n"
          "             most every 4 hours (a session sealed under a key that leaves the\n"
          "             file ends).\n",
          f);
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)done);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return RF_ERR_IO;
        done += (size_t)w;
    }
    return 0;
}

int rf_sesskey_main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"rotate", no_argument, 0, 'r'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c, rotate = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (c == 'r') {
            rotate = 1;
        } else if (c == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *path = argv[optind];
    uint8_t *old = sodium_malloc(RF_SESSKEY_FILE_LEN), *neu = sodium_malloc(RF_SESSKEY_FILE_LEN);
    int ret = 1, fd = -1;
    if (old == NULL || neu == NULL) {
        fputs("refuge: out of memory\n", stderr);
        goto out;
    }
    fd = rotate ? open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW)
                : open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (!rotate && errno == EEXIST)
            fprintf(stderr,
                    "refuge: %s exists already; to rotate its key: refuge server "
                    "session-key --rotate %s\n",
                    path, path);
        else
            fprintf(stderr, "refuge: cannot open %s: %s%s\n", path, strerror(errno),
                    rotate && errno == ENOENT ? " (write one first, without --rotate)" : "");
        goto out;
    }
    if (!on_memory_fs(fd)) {
        fprintf(stderr,
                "refuge: %s is not on a tmpfs: the session key must never reach a disk "
                "(use e.g. /run/refuge/session.key)\n",
                path);
        if (!rotate)
            unlink(path);
        goto out;
    }
    if (rotate) {
        ssize_t got = pread(fd, old, RF_SESSKEY_FILE_LEN, 0);
        if (got != RF_SESSKEY_FILE_LEN || parse_file(old, RF_SESSKEY_FILE_LEN, NULL) != 0) {
            fprintf(stderr, "refuge: %s is not a session key file; nothing changed\n", path);
            goto out;
        }
    }
    rf_sesskey_file_make(neu, rotate ? old : NULL);
    if (fchmod(fd, 0600) != 0 || write_all(fd, neu, RF_SESSKEY_FILE_LEN) != 0) {
        fprintf(stderr, "refuge: cannot write %s\n", path);
        if (!rotate)
            unlink(path);
        goto out;
    }
    uint8_t cur[8], prev[8];
    int has_prev = 0;
    char hex[17];
    rf_sesskey_file_ids(neu, RF_SESSKEY_FILE_LEN, cur, prev, &has_prev);
    sodium_bin2hex(hex, sizeof(hex), cur, 8);
    printf("session key %s %s (key id %s)%s\n", rotate ? "rotated in" : "written to", path, hex,
           rotate ? "; the previous key still opens the sessions made before" : "");
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    sodium_free(old);
    sodium_free(neu);
    return ret;
}
