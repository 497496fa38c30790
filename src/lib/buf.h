/*
 * buf.h - the only way Refuge code reads untrusted bytes, and the growable
 * byte buffer it writes with.
 *
 * struct rf_reader borrows a byte range and hands it out front to back; every
 * getter checks the remaining length first and returns RF_ERR_TRUNCATED rather
 * than reading past the end, leaving the reader where it was. Parsers take a
 * reader and never do pointer arithmetic on raw input. Integers are big-endian.
 *
 * struct rf_buf owns a growable array with a hard maximum (RF_ERR_LIMIT past
 * it). A "secure" buf lives in sodium_malloc memory (guarded, locked) and is
 * wiped when it grows or dies: use it for plaintext and keys.
 */
#ifndef RF_BUF_H
#define RF_BUF_H

#include <stddef.h>
#include <stdint.h>

struct rf_reader {
    const uint8_t *p;
    size_t len;
    size_t off;
};

void rf_reader_init(struct rf_reader *r, const void *p, size_t len);
size_t rf_reader_left(const struct rf_reader *r);
int rf_get_u8(struct rf_reader *r, uint8_t *v);
int rf_get_u16(struct rf_reader *r, uint16_t *v);
int rf_get_u32(struct rf_reader *r, uint32_t *v);
int rf_get_u64(struct rf_reader *r, uint64_t *v);
/* Copies n bytes out. */
int rf_get_bytes(struct rf_reader *r, void *out, size_t n);
/* Borrows n bytes: *out points into the reader's range. */
int rf_get_ptr(struct rf_reader *r, const uint8_t **out, size_t n);
/* RF_ERR_FORMAT unless every byte has been consumed. */
int rf_reader_expect_end(const struct rf_reader *r);

struct rf_buf {
    uint8_t *data;
    size_t len;
    size_t cap;
    size_t max; /* hard limit on len */
    int secure; /* storage from sodium_malloc, wiped on growth and free */
};

void rf_buf_init(struct rf_buf *b, size_t max);
void rf_buf_init_secure(struct rf_buf *b, size_t max);
/* Ensures room for n more bytes. */
int rf_buf_reserve(struct rf_buf *b, size_t n);
/* A malloc'd array *pp of *cap elements of size bytes, grown (doubled, at
 * least first elements, at least need) so that it holds need: 0, or
 * RF_ERR_NOMEM with *pp and *cap unchanged. */
int rf_array_grow(void *pp, size_t *cap, size_t need, size_t size, size_t first);
int rf_buf_put(struct rf_buf *b, const void *p, size_t n);
int rf_buf_put_u8(struct rf_buf *b, uint8_t v);
int rf_buf_put_u16(struct rf_buf *b, uint16_t v);
int rf_buf_put_u32(struct rf_buf *b, uint32_t v);
int rf_buf_put_u64(struct rf_buf *b, uint64_t v);
int rf_buf_put_str(struct rf_buf *b, const char *s);
/* Appends a NUL without counting it in len, so data can be used as a C string. */
int rf_buf_cstr(struct rf_buf *b);
/* Empties the buffer (wiping it when secure), keeping its storage. */
void rf_buf_reset(struct rf_buf *b);
/* Releases storage (wiping it when secure); the buf may be reused after init. */
void rf_buf_free(struct rf_buf *b);
/* Hands the storage to the caller (free with free(), or sodium_free() if secure). */
uint8_t *rf_buf_steal(struct rf_buf *b, size_t *len);

/* Encoding helpers used by the formats and the API (output NUL-terminated). */
int rf_hex_encode(char *out, size_t outcap, const uint8_t *p, size_t n);
int rf_hex_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *hex, size_t hexlen);
/* base64url without padding (sodium_base64_VARIANT_URLSAFE_NO_PADDING). */
int rf_b64_encode(char *out, size_t outcap, const uint8_t *p, size_t n);
int rf_b64_decode(uint8_t *out, size_t outcap, size_t *outlen, const char *b64, size_t b64len);

#endif
