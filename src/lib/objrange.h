/*
 * objrange.h - the answer of GET /api/v1/objects/data?after=N&limit=L
 * (docs/protocol.md section 11): a range of listing entries, each with the
 * object's ciphertext or marked "left out" (fetched alone), in one binary
 * stream. Big-endian throughout:
 *
 *   "RFRG" | u8 version 1
 *   entries:  u8 type (1: ciphertext follows, 2: left out) | u64 seq | u8 kind
 *             | u32 day | u32 roster | case id (10 bytes, zero-padded)
 *             | u64 size | type 1: size bytes
 *   end:      u8 type 0 | u64 last | u32 count
 *
 * last: every object with after < seq <= last is in the answer (with its
 * ciphertext or left out), as the server read it; count: the entries.
 *
 * The server writes it with the encoders; the client reads it with the push
 * parser, which takes the bytes in pieces of any size, as they arrive, and
 * holds no more than one entry head: ciphertext is handed on as it comes.
 */
#ifndef RF_OBJRANGE_H
#define RF_OBJRANGE_H

#include <stddef.h>
#include <stdint.h>

#define RF_RANGE_MAGIC "RFRG"
#define RF_RANGE_VERSION 1
#define RF_RANGE_HEAD_BYTES 5
#define RF_RANGE_ENTRY_BYTES 36 /* an entry's head, before its ciphertext */
#define RF_RANGE_END_BYTES 13
#define RF_RANGE_CASE_BYTES 10
#define RF_RANGE_LIMIT_MAX 1000                   /* entries in one answer */
#define RF_RANGE_DATA_MAX (256 * 1024)            /* larger objects are left out */
#define RF_RANGE_BYTES_MAX ((uint64_t)64 << 20)   /* ciphertext in one answer */
#define RF_RANGE_SEQ_MAX ((int64_t)INT64_MAX / 2) /* as the API's seq numbers */
#define RF_RANGE_SIZE_MAX ((uint64_t)1 << 40)     /* a left-out object's size */

enum rf_range_type { RF_RANGE_END = 0, RF_RANGE_DATA = 1, RF_RANGE_LEFT_OUT = 2 };

struct rf_range_entry {
    int64_t seq;
    uint8_t kind;
    uint32_t day;
    uint32_t roster;
    char case_id[RF_RANGE_CASE_BYTES + 1]; /* NUL-terminated, 1..10 of [a-z0-9] */
    uint64_t size;
    int has_data; /* type 1: size bytes of ciphertext follow */
};

/* ---- writing (the server) ---- */
/* out: RF_RANGE_HEAD_BYTES */
void rf_range_put_head(uint8_t *out);
/* out: RF_RANGE_ENTRY_BYTES. RF_ERR_INVALID for an entry out of shape
 * (a case id that is not 1..10 of [a-z0-9], a data entry over
 * RF_RANGE_DATA_MAX, seq out of 1..RF_RANGE_SEQ_MAX, kind 0). */
int rf_range_put_entry(uint8_t *out, const struct rf_range_entry *e);
/* out: RF_RANGE_END_BYTES */
void rf_range_put_end(uint8_t *out, int64_t last, uint32_t count);

/* ---- reading (the client) ---- */
/* Called at each entry's head, in order; then, for a data entry, on_data
 * with its ciphertext in pieces (size bytes in all; none for size 0). A
 * non-zero answer stops the parse and is returned by rf_range_feed. */
typedef int (*rf_range_entry_fn)(void *ctx, const struct rf_range_entry *e);
typedef int (*rf_range_data_fn)(void *ctx, const uint8_t *p, size_t n);

struct rf_range_parser {
    int state;
    int err;        /* sticky: once failed, every call fails */
    int64_t after;  /* the request's after: every seq must be above it */
    int64_t prev;   /* the last entry's seq (after, at first) */
    uint32_t count; /* entries so far */
    uint32_t max_entries;
    uint64_t data_left; /* ciphertext bytes still to come for this entry */
    uint64_t data_total;
    size_t have; /* bytes of the head being gathered in hold */
    uint8_t hold[RF_RANGE_ENTRY_BYTES];
    int64_t last; /* from the end record */
    struct rf_range_entry cur;
    rf_range_entry_fn on_entry;
    rf_range_data_fn on_data;
    void *ctx;
};

/* after: the request's; max_entries: the request's limit (1..1000). */
void rf_range_parser_init(struct rf_range_parser *p, int64_t after, uint32_t max_entries,
                          rf_range_entry_fn on_entry, rf_range_data_fn on_data, void *ctx);
/* Takes the next n bytes. 0, RF_ERR_FORMAT (not this format, an entry out of
 * shape or out of order, bytes after the end), RF_ERR_VERSION, RF_ERR_LIMIT
 * (more entries than asked, a data entry over RF_RANGE_DATA_MAX, more than
 * RF_RANGE_BYTES_MAX of ciphertext), or a callback's answer. */
int rf_range_feed(struct rf_range_parser *p, const uint8_t *data, size_t n);
/* After the last byte: 0 and *last (the end record's, at least the last
 * entry's seq and at least after) if the answer was whole; else
 * RF_ERR_TRUNCATED (or the error the parse already stopped on). */
int rf_range_finish(struct rf_range_parser *p, int64_t *last);

#endif
