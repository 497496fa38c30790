/*
 * buf.c - bounds-checked reader and limited growable buffer (see buf.h).
 *
 * Invariants: r->off <= r->len always; b->len <= b->cap and b->len <= b->max.
 * Growth doubles capacity, capped by max, so appends are amortised O(1).
 * A buf with storage keeps room for rf_buf_cstr's NUL (len < cap); one
 * without (fresh, freed or stolen) has len 0 and cap 0. The invariants are
 * assert()ed where they could break (on in every build without NDEBUG, the
 * sanitizer build included: tests/unit/buf_test.c shows one caught); what
 * the bytes say is never asserted: that is input, refused with an error.
 */
#include "lib/buf.h"
#include "lib/secmem.h"
#include "lib/err.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void reader_check(const struct rf_reader *r)
{
    assert(r->off <= r->len);
    assert(r->p != NULL || r->len == 0);
    (void)r;
}

static void buf_check(const struct rf_buf *b)
{
    assert(b->len <= b->max);
    assert(b->data != NULL ? b->len < b->cap : b->len == 0 && b->cap == 0);
    assert(b->secure == 0 || b->secure == 1);
    (void)b;
}

void rf_reader_init(struct rf_reader *r, const void *p, size_t len)
{
    r->p = p;
    r->len = p ? len : 0;
    r->off = 0;
}

size_t rf_reader_left(const struct rf_reader *r)
{
    reader_check(r);
    return r->len - r->off;
}

int rf_get_ptr(struct rf_reader *r, const uint8_t **out, size_t n)
{
    if (rf_reader_left(r) < n)
        return RF_ERR_TRUNCATED;
    *out = r->p + r->off;
    r->off += n;
    reader_check(r);
    return 0;
}

int rf_get_bytes(struct rf_reader *r, void *out, size_t n)
{
    const uint8_t *p;
    int rc = rf_get_ptr(r, &p, n);
    if (rc == 0 && n > 0)
        memcpy(out, p, n);
    return rc;
}

int rf_get_u8(struct rf_reader *r, uint8_t *v)
{
    return rf_get_bytes(r, v, 1);
}

static int get_be(struct rf_reader *r, uint64_t *v, size_t n)
{
    const uint8_t *p;
    int rc = rf_get_ptr(r, &p, n);
    if (rc != 0)
        return rc;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++)
        x = (x << 8) | p[i];
    *v = x;
    return 0;
}

int rf_get_u16(struct rf_reader *r, uint16_t *v)
{
    uint64_t x;
    int rc = get_be(r, &x, 2);
    if (rc == 0)
        *v = (uint16_t)x;
    return rc;
}

int rf_get_u32(struct rf_reader *r, uint32_t *v)
{
    uint64_t x;
    int rc = get_be(r, &x, 4);
    if (rc == 0)
        *v = (uint32_t)x;
    return rc;
}

int rf_get_u64(struct rf_reader *r, uint64_t *v)
{
    return get_be(r, v, 8);
}

int rf_reader_expect_end(const struct rf_reader *r)
{
    return rf_reader_left(r) == 0 ? 0 : RF_ERR_FORMAT;
}

void rf_buf_init(struct rf_buf *b, size_t max)
{
    memset(b, 0, sizeof(*b));
    b->max = max;
}

void rf_buf_init_secure(struct rf_buf *b, size_t max)
{
    rf_buf_init(b, max);
    b->secure = 1;
}

static void release(uint8_t *p, size_t cap, int secure)
{
    if (p == NULL)
        return;
    if (secure) {
        rf_secmem_free(p); /* wipes */
    } else {
        free(p);
    }
    (void)cap;
}

int rf_array_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first)
{
    if (need <= *cap)
        return 0;
    size_t ncap = *cap ? 2 * *cap : first;
    if (ncap < need)
        ncap = need;
    if (size == 0 || ncap > SIZE_MAX / size)
        return RF_ERR_NOMEM;
    void *nv = realloc(*(void **)pp, ncap * size);
    if (!nv)
        return RF_ERR_NOMEM;
    *(void **)pp = nv;
    *cap = ncap;
    return 0;
}

int rf_buf_reserve(struct rf_buf *b, size_t n)
{
    buf_check(b);
    if (n > b->max || b->len > b->max - n)
        return RF_ERR_LIMIT;
    size_t need = b->len + n + 1; /* room for rf_buf_cstr's NUL */
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    uint8_t *p = b->secure ? rf_secmem_alloc(cap) : malloc(cap);
    if (p == NULL)
        return RF_ERR_NOMEM;
    if (b->len > 0)
        memcpy(p, b->data, b->len);
    release(b->data, b->cap, b->secure);
    b->data = p;
    b->cap = cap;
    assert(b->len + n < b->cap);
    return 0;
}

int rf_buf_put(struct rf_buf *b, const void *p, size_t n)
{
    int rc = rf_buf_reserve(b, n);
    if (rc != 0)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    buf_check(b);
    return 0;
}

int rf_buf_put_u8(struct rf_buf *b, uint8_t v)
{
    return rf_buf_put(b, &v, 1);
}

static int put_be(struct rf_buf *b, uint64_t v, size_t n)
{
    uint8_t tmp[8];
    for (size_t i = 0; i < n; i++)
        tmp[n - 1 - i] = (uint8_t)(v >> (8 * i));
    return rf_buf_put(b, tmp, n);
}

int rf_buf_put_u16(struct rf_buf *b, uint16_t v)
{
    return put_be(b, v, 2);
}

int rf_buf_put_u32(struct rf_buf *b, uint32_t v)
{
    return put_be(b, v, 4);
}

int rf_buf_put_u64(struct rf_buf *b, uint64_t v)
{
    return put_be(b, v, 8);
}

int rf_buf_put_str(struct rf_buf *b, const char *s)
{
    return rf_buf_put(b, s, strlen(s));
}

int rf_buf_cstr(struct rf_buf *b)
{
    int rc = rf_buf_reserve(b, 0);
    if (rc != 0)
        return rc;
    if (b->data == NULL) {
        rc = rf_buf_reserve(b, 1);
        if (rc != 0)
            return rc;
    }
    assert(b->len < b->cap);
    b->data[b->len] = 0;
    return 0;
}

void rf_buf_reset(struct rf_buf *b)
{
    buf_check(b);
    if (b->secure && b->data)
        sodium_memzero(b->data, b->cap);
    b->len = 0;
}

void rf_buf_free(struct rf_buf *b)
{
    buf_check(b);
    release(b->data, b->cap, b->secure);
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

uint8_t *rf_buf_steal(struct rf_buf *b, size_t *len)
{
    buf_check(b);
    uint8_t *p = b->data;
    if (len)
        *len = b->len;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

int rf_hex_encode(char *out, size_t outcap, const uint8_t *p, size_t n)
{
    if (n > (SIZE_MAX - 1) / 2 || outcap < n * 2 + 1)
        return RF_ERR_LIMIT;
    sodium_bin2hex(out, outcap, p, n);
    return 0;
}

int rf_hex_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *hex, size_t hexlen)
{
    size_t got = 0;
    const char *end = NULL;
    if (sodium_hex2bin(out, outcap, hex, hexlen, NULL, &got, &end) != 0)
        return RF_ERR_FORMAT;
    if (end != hex + hexlen)
        return RF_ERR_FORMAT;
    *outlen = got;
    return 0;
}

int rf_b64_encode(char *out, size_t outcap, const uint8_t *p, size_t n)
{
    size_t need = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    if (outcap < need)
        return RF_ERR_LIMIT;
    sodium_bin2base64(out, outcap, p, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int rf_b64_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *b64, size_t b64len)
{
    size_t got = 0;
    const char *end = NULL;
    if (sodium_base642bin(out, outcap, b64, b64len, NULL, &got, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return RF_ERR_FORMAT;
    if (end != b64 + b64len)
        return RF_ERR_FORMAT;
    *outlen = got;
    return 0;
}
