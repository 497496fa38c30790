/*
 * archive.c - the backup archive format (archive.h): canonical ustar headers
 * and the manifest, encoded and parsed. The parsers accept one spelling of
 * everything: a header is decoded, re-encoded and compared byte for byte; a
 * manifest line is matched against its keyword and its value re-checked for
 * a canonical form, so a flipped byte is never read as something valid.
 */
#include "lib/archive.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OCTAL_MAX_SIZE (1ULL << 33) /* 11 octal digits hold less than 8 GiB */
#define DEC_DIGITS_MAX 15

/* ---- names ---- */

static int is_hex_lower(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

enum rf_member_kind rf_archive_member_kind(const char *name)
{
    size_t bl = sizeof(RF_ARCHIVE_BLOBS) - 1;
    if (strcmp(name, RF_ARCHIVE_DB) == 0)
        return RF_MEMBER_DB;
    if (strcmp(name, RF_ARCHIVE_MANIFEST) == 0)
        return RF_MEMBER_MANIFEST;
    if (strncmp(name, RF_ARCHIVE_BLOBS, bl) != 0)
        return RF_MEMBER_BAD;
    for (size_t i = 0; i < 32; i++)
        if (!is_hex_lower(name[bl + i]))
            return RF_MEMBER_BAD;
    return name[bl + 32] == '\0' ? RF_MEMBER_BLOB : RF_MEMBER_BAD;
}

/* ---- tar ---- */

static void put_octal(uint8_t *field, size_t width, uint64_t v)
{
    /* width - 1 digits, then a NUL */
    for (size_t i = width - 1; i-- > 0;) {
        field[i] = (uint8_t)('0' + (v & 7));
        v >>= 3;
    }
    field[width - 1] = '\0';
}

static void put_base256(uint8_t *field, size_t width, uint64_t v)
{
    memset(field, 0, width);
    field[0] = 0x80;
    for (size_t i = width - 1; i > 0 && v; i--) {
        field[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

int rf_tar_header_encode(uint8_t blk[RF_TAR_BLOCK], const char *name, uint64_t size, uint32_t day)
{
    size_t nl = strlen(name);
    if (rf_archive_member_kind(name) == RF_MEMBER_BAD || nl > RF_ARCHIVE_NAME_MAX ||
        size > RF_ARCHIVE_MEMBER_MAX)
        return RF_ERR_INVALID;
    memset(blk, 0, RF_TAR_BLOCK);
    memcpy(blk, name, nl);
    put_octal(blk + 100, 8, 0600);
    put_octal(blk + 108, 8, 0);
    put_octal(blk + 116, 8, 0);
    if (size < OCTAL_MAX_SIZE)
        put_octal(blk + 124, 12, size);
    else
        put_base256(blk + 124, 12, size);
    put_octal(blk + 136, 12, (uint64_t)day * 86400);
    blk[156] = '0';
    memcpy(blk + 257, "ustar", 6);
    memcpy(blk + 263, "00", 2);
    put_octal(blk + 329, 8, 0);
    put_octal(blk + 337, 8, 0);
    memset(blk + 148, ' ', 8);
    unsigned sum = 0;
    for (size_t i = 0; i < RF_TAR_BLOCK; i++)
        sum += blk[i];
    put_octal(blk + 148, 7, sum);
    blk[155] = ' ';
    return 0;
}

/* Reads an octal field of width - 1 digits and a NUL (as written above). */
static int get_octal(const uint8_t *field, size_t width, uint64_t *out)
{
    uint64_t v = 0;
    for (size_t i = 0; i + 1 < width; i++) {
        if (field[i] < '0' || field[i] > '7')
            return RF_ERR_FORMAT;
        v = (v << 3) | (uint64_t)(field[i] - '0');
    }
    if (field[width - 1] != '\0')
        return RF_ERR_FORMAT;
    *out = v;
    return 0;
}

static int get_size(const uint8_t *field, uint64_t *out)
{
    if (field[0] != 0x80)
        return get_octal(field, 12, out);
    uint64_t v = 0;
    for (size_t i = 1; i < 12; i++) {
        if (v >> 56)
            return RF_ERR_LIMIT;
        v = (v << 8) | field[i];
    }
    *out = v;
    return 0;
}

int rf_tar_header_decode(const uint8_t blk[RF_TAR_BLOCK], char name[RF_ARCHIVE_NAME_MAX + 1],
                         uint64_t *size, uint32_t *day)
{
    uint8_t again[RF_TAR_BLOCK];
    uint64_t sz = 0, mtime = 0;
    size_t nl = strnlen((const char *)blk, 100);
    if (nl == 0 || nl > RF_ARCHIVE_NAME_MAX)
        return RF_ERR_FORMAT;
    memcpy(name, blk, nl);
    name[nl] = '\0';
    if (rf_archive_member_kind(name) == RF_MEMBER_BAD)
        return RF_ERR_FORMAT;
    if (get_size(blk + 124, &sz) != 0 || sz > RF_ARCHIVE_MEMBER_MAX)
        return RF_ERR_FORMAT;
    if (get_octal(blk + 136, 12, &mtime) != 0 || mtime % 86400 != 0 || mtime / 86400 > UINT32_MAX)
        return RF_ERR_FORMAT;
    if (rf_tar_header_encode(again, name, sz, (uint32_t)(mtime / 86400)) != 0 ||
        memcmp(again, blk, RF_TAR_BLOCK) != 0)
        return RF_ERR_FORMAT;
    *size = sz;
    *day = (uint32_t)(mtime / 86400);
    return 0;
}

int rf_tar_block_zero(const uint8_t blk[RF_TAR_BLOCK])
{
    uint8_t acc = 0;
    for (size_t i = 0; i < RF_TAR_BLOCK; i++)
        acc |= blk[i];
    return acc == 0;
}

size_t rf_tar_padding(uint64_t size)
{
    return (size_t)((RF_TAR_BLOCK - size % RF_TAR_BLOCK) % RF_TAR_BLOCK);
}

/* ---- days ---- */

/* Howard Hinnant's days_from_civil / civil_from_days, for the Gregorian
 * calendar; only days from 1970 on are used. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

void rf_day_format(uint32_t day, char out[11])
{
    int64_t z = (int64_t)day + 719468;
    const int64_t era = z / 146097;
    const unsigned doe = (unsigned)(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
    if (y > 9999)
        y = 9999;
    snprintf(out, 11, "%04d-%02u-%02u", (int)y % 10000, (m - 1) % 12 + 1, (d - 1) % 31 + 1);
}

int rf_day_parse(const char *s, size_t n, uint32_t *day)
{
    unsigned v[3] = {0, 0, 0};
    static const size_t start[3] = {0, 5, 8}, len[3] = {4, 2, 2};
    char again[11];
    if (n != 10 || s[4] != '-' || s[7] != '-')
        return RF_ERR_FORMAT;
    for (size_t f = 0; f < 3; f++)
        for (size_t i = start[f]; i < start[f] + len[f]; i++) {
            if (s[i] < '0' || s[i] > '9')
                return RF_ERR_FORMAT;
            v[f] = v[f] * 10 + (unsigned)(s[i] - '0');
        }
    if (v[0] < 1970 || v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31)
        return RF_ERR_FORMAT;
    int64_t d = days_from_civil(v[0], v[1], v[2]);
    if (d < 0 || d > UINT32_MAX)
        return RF_ERR_FORMAT;
    rf_day_format((uint32_t)d, again); /* 2026-02-31 is not a day */
    if (memcmp(again, s, 10) != 0)
        return RF_ERR_FORMAT;
    *day = (uint32_t)d;
    return 0;
}

/* ---- manifest ---- */

void rf_manifest_init(struct rf_manifest *m)
{
    memset(m, 0, sizeof(*m));
}

void rf_manifest_free(struct rf_manifest *m)
{
    free(m->members);
    rf_manifest_init(m);
}

int rf_manifest_add(struct rf_manifest *m, const char *name, uint64_t size,
                    const uint8_t digest[RF_DIGEST_BYTES])
{
    enum rf_member_kind k = rf_archive_member_kind(name);
    if (k != RF_MEMBER_DB && k != RF_MEMBER_BLOB)
        return RF_ERR_INVALID;
    if (size > RF_ARCHIVE_MEMBER_MAX)
        return RF_ERR_LIMIT;
    if (m->n >= RF_ARCHIVE_MEMBERS_MAX)
        return RF_ERR_LIMIT;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 64;
        void *p = realloc(m->members, cap * sizeof(*m->members));
        if (!p)
            return RF_ERR_NOMEM;
        m->members = p;
        m->cap = cap;
    }
    struct rf_manifest_member *e = &m->members[m->n++];
    memset(e, 0, sizeof(*e));
    memcpy(e->name, name, strlen(name) + 1);
    e->size = size;
    memcpy(e->digest, digest, RF_DIGEST_BYTES);
    return 0;
}

static int put_line(struct rf_buf *out, const char *key, const char *value)
{
    int rc = rf_buf_put_str(out, key);
    rc = rc ? rc : rf_buf_put_u8(out, ' ');
    rc = rc ? rc : rf_buf_put_str(out, value);
    return rc ? rc : rf_buf_put_u8(out, '\n');
}

static int put_num(struct rf_buf *out, const char *key, uint64_t v)
{
    char s[24];
    snprintf(s, sizeof(s), "%llu", (unsigned long long)v);
    return put_line(out, key, s);
}

static int text_ok(const char *s, size_t max, const char *extra)
{
    size_t n = strnlen(s, max + 1);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') ||
              (extra && ((c >= 'A' && c <= 'Z') || strchr(extra, c)))))
            return 0;
    }
    return 1;
}

int rf_manifest_encode(const struct rf_manifest *m, struct rf_buf *out)
{
    char hex[2 * RF_DIGEST_BYTES + 1], day[11], line[2 * RF_DIGEST_BYTES + 96];
    size_t start = out->len;
    if (!text_ok(m->version, sizeof(m->version) - 1, ".+~-") ||
        !text_ok(m->backend, sizeof(m->backend) - 1, NULL))
        return RF_ERR_INVALID;
    rf_day_format(m->day, day);
    int rc = put_num(out, "refuge-backup", RF_ARCHIVE_FORMAT);
    rc = rc ? rc : put_line(out, "version", m->version);
    rc = rc ? rc : put_line(out, "backend", m->backend);
    rc = rc ? rc : put_num(out, "schema", m->schema);
    rc = rc ? rc : put_line(out, "day", day);
    rc = rc ? rc : put_num(out, "sources", m->sources);
    rc = rc ? rc : put_num(out, "objects", m->objects);
    rc = rc ? rc : put_num(out, "staff", m->staff);
    rc = rc ? rc : put_num(out, "blobs", m->blobs);
    for (size_t i = 0; rc == 0 && i < m->n; i++) {
        const struct rf_manifest_member *e = &m->members[i];
        rc = rf_hex_encode(hex, sizeof(hex), e->digest, RF_DIGEST_BYTES);
        if (rc == 0) {
            snprintf(line, sizeof(line), "%s %llu %s", hex, (unsigned long long)e->size, e->name);
            rc = put_line(out, "member", line);
        }
    }
    if (rc == 0) {
        uint8_t d[RF_DIGEST_BYTES];
        crypto_generichash(d, sizeof(d), out->data + start, out->len - start, NULL, 0);
        rc = rf_hex_encode(hex, sizeof(hex), d, sizeof(d));
        rc = rc ? rc : put_line(out, "end", hex);
    }
    return rc;
}

/* One line "key value\n" from r: val and vlen borrow the value. */
static int get_line(struct rf_reader *r, const char *key, const uint8_t **val, size_t *vlen)
{
    size_t kl = strlen(key);
    size_t left = rf_reader_left(r);
    const uint8_t *p = NULL;
    if (left == 0 || rf_get_ptr(r, &p, 0) != 0)
        return RF_ERR_TRUNCATED;
    /* the line: up to the first '\n' among the bytes left */
    const uint8_t *nl = memchr(p, '\n', left);
    if (!nl)
        return RF_ERR_TRUNCATED;
    size_t ll = (size_t)(nl - p);
    int rc = rf_get_ptr(r, &p, ll + 1);
    if (rc != 0)
        return rc;
    if (ll < kl + 2 || memcmp(p, key, kl) != 0 || p[kl] != ' ')
        return RF_ERR_FORMAT;
    *val = p + kl + 1;
    *vlen = ll - kl - 1;
    return 0;
}

/* A canonical decimal: no sign, no leading zero, at most 15 digits. */
static int parse_dec(const uint8_t *s, size_t n, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    if (n == 0 || n > DEC_DIGITS_MAX || (n > 1 && s[0] == '0'))
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return RF_ERR_FORMAT;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return RF_ERR_LIMIT;
    *out = v;
    return 0;
}

static int get_num(struct rf_reader *r, const char *key, uint64_t max, uint64_t *out)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    int rc = get_line(r, key, &v, &n);
    return rc ? rc : parse_dec(v, n, max, out);
}

static int get_text(struct rf_reader *r, const char *key, char *out, size_t cap, const char *extra)
{
    const uint8_t *v = NULL;
    size_t n = 0;
    int rc = get_line(r, key, &v, &n);
    if (rc != 0)
        return rc;
    if (n == 0 || n >= cap)
        return RF_ERR_FORMAT;
    memcpy(out, v, n);
    out[n] = '\0';
    return text_ok(out, cap - 1, extra) && strlen(out) == n ? 0 : RF_ERR_FORMAT;
}

static int get_digest(const uint8_t *s, size_t n, uint8_t out[RF_DIGEST_BYTES])
{
    size_t got = 0;
    if (n != 2 * RF_DIGEST_BYTES)
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < n; i++)
        if (!is_hex_lower((char)s[i]))
            return RF_ERR_FORMAT;
    if (rf_hex_decode(out, RF_DIGEST_BYTES, &got, (const char *)s, n) != 0 ||
        got != RF_DIGEST_BYTES)
        return RF_ERR_FORMAT;
    return 0;
}

/* "member <hex> <size> <name>" */
static int get_member(const uint8_t *v, size_t n, struct rf_manifest *m)
{
    uint8_t digest[RF_DIGEST_BYTES];
    char name[RF_ARCHIVE_NAME_MAX + 1];
    uint64_t size = 0;
    size_t hl = 2 * RF_DIGEST_BYTES;
    if (n < hl + 2 || v[hl] != ' ')
        return RF_ERR_FORMAT;
    int rc = get_digest(v, hl, digest);
    if (rc != 0)
        return rc;
    const uint8_t *rest = v + hl + 1;
    size_t rl = n - hl - 1;
    const uint8_t *sp = memchr(rest, ' ', rl);
    if (!sp)
        return RF_ERR_FORMAT;
    size_t sl = (size_t)(sp - rest);
    if ((rc = parse_dec(rest, sl, RF_ARCHIVE_MEMBER_MAX, &size)) != 0)
        return rc;
    size_t nl = rl - sl - 1;
    if (nl == 0 || nl > RF_ARCHIVE_NAME_MAX || memchr(sp + 1, '\0', nl))
        return RF_ERR_FORMAT;
    memcpy(name, sp + 1, nl);
    name[nl] = '\0';
    enum rf_member_kind k = rf_archive_member_kind(name);
    if (k == RF_MEMBER_BAD || k == RF_MEMBER_MANIFEST)
        return RF_ERR_FORMAT;
    /* the database first, then blobs, each name once: blobs ascend */
    if ((m->n == 0) != (k == RF_MEMBER_DB))
        return RF_ERR_FORMAT;
    return rf_manifest_add(m, name, size, digest);
}

static int parse_body(struct rf_reader *r, struct rf_manifest *m)
{
    uint64_t v = 0;
    const uint8_t *val = NULL;
    size_t vn = 0;
    int rc = get_num(r, "refuge-backup", UINT32_MAX, &v);
    if (rc != 0)
        return rc;
    if (v != RF_ARCHIVE_FORMAT)
        return RF_ERR_VERSION;
    rc = get_text(r, "version", m->version, sizeof(m->version), ".+~-");
    rc = rc ? rc : get_text(r, "backend", m->backend, sizeof(m->backend), NULL);
    rc = rc ? rc : get_num(r, "schema", 1000000, &v);
    if (rc != 0)
        return rc;
    m->schema = (uint32_t)v;
    if ((rc = get_line(r, "day", &val, &vn)) != 0 ||
        (rc = rf_day_parse((const char *)val, vn, &m->day)) != 0)
        return rc;
    rc = get_num(r, "sources", 1ULL << 48, &m->sources);
    rc = rc ? rc : get_num(r, "objects", 1ULL << 48, &m->objects);
    rc = rc ? rc : get_num(r, "staff", 1ULL << 48, &m->staff);
    rc = rc ? rc : get_num(r, "blobs", RF_ARCHIVE_MEMBERS_MAX, &m->blobs);
    if (rc != 0)
        return rc;
    for (;;) {
        size_t mark = r->off;
        rc = get_line(r, "member", &val, &vn);
        if (rc == RF_ERR_FORMAT) { /* not a member line: the end line */
            r->off = mark;
            break;
        }
        if (rc != 0)
            return rc;
        if ((rc = get_member(val, vn, m)) != 0)
            return rc;
    }
    if (m->n == 0 || m->n - 1 != m->blobs)
        return RF_ERR_FORMAT;
    for (size_t i = 2; i < m->n; i++) /* strictly ascending: no duplicates */
        if (strcmp(m->members[i - 1].name, m->members[i].name) >= 0)
            return RF_ERR_FORMAT;
    return 0;
}

int rf_manifest_parse(const uint8_t *p, size_t n, struct rf_manifest *m)
{
    struct rf_reader r;
    uint8_t want[RF_DIGEST_BYTES], got[RF_DIGEST_BYTES];
    const uint8_t *val = NULL;
    size_t vn = 0;
    rf_manifest_free(m);
    if (n > RF_MANIFEST_MAX)
        return RF_ERR_LIMIT;
    rf_reader_init(&r, p, n);
    int rc = parse_body(&r, m);
    size_t body = r.off;
    rc = rc ? rc : get_line(&r, "end", &val, &vn);
    rc = rc ? rc : get_digest(val, vn, want);
    rc = rc ? rc : rf_reader_expect_end(&r);
    if (rc == 0) {
        crypto_generichash(got, sizeof(got), p, body, NULL, 0);
        if (sodium_memcmp(got, want, sizeof(got)) != 0)
            rc = RF_ERR_FORMAT;
    }
    if (rc != 0)
        rf_manifest_free(m);
    return rc;
}
