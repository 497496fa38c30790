/*
 * boardpage.h - a page of board rows (docs/protocol.md 16, "Board pages"):
 * many cases' packed board rows (lib/boardrow.h) with the columns the
 * board table keeps beside each, sealed at rest as one object, so that
 * `refuge cases` opens one AEAD per page, not one per row. A page is a
 * copy: the board table stays the truth, and the pages of the local case
 * database hold the rows up to one board generation (client/local_pages.c).
 *
 *   version u8 (= 1) | count u32 (at least 1) | count x entry
 *   entry: id_len u8 (1..RF_BOARDPAGE_ID_MAX) | id (no NUL) | 0x00 |
 *          gen u64 | last_seq u64 (int64s) | row_len u32 | row
 * Integers big-endian (buf.h). Nothing may follow the last entry. The NUL
 * after the id lets a reader hand the id out as a C string in place.
 *
 * rf_boardpage_add appends an entry (the caller has put the head with
 * rf_boardpage_begin and sets the count with rf_boardpage_end);
 * rf_boardpage_first checks the head, rf_boardpage_next checks every
 * length of an entry against the input and points into it (no copy, no
 * allocation). The row itself is parsed by rf_boardrow_parse.
 */
#ifndef RF_BOARDPAGE_H
#define RF_BOARDPAGE_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

#define RF_BOARDPAGE_VERSION 1
#define RF_BOARDPAGE_HEAD 5     /* version and count */
#define RF_BOARDPAGE_ID_MAX 64  /* a case id (RF_CASE_ID_LEN is 16) */
#define RF_BOARDPAGE_FIXED 22   /* an entry's bytes besides its id and row */

struct rf_boardpage_entry {
    const char *case_id; /* NUL-terminated, in the page */
    size_t id_len;
    int64_t gen, last_seq;
    const uint8_t *row;
    size_t row_len;
};

/* Starts a page in out (empty): its head, count 0. */
int rf_boardpage_begin(struct rf_buf *out);
/* Appends one entry. RF_ERR_FORMAT: an id empty, longer than
 * RF_BOARDPAGE_ID_MAX or with a NUL; a row over 4 GB. */
int rf_boardpage_add(struct rf_buf *out, const struct rf_boardpage_entry *e);
/* The same but the row's bytes (e->row unused): the caller appends
 * e->row_len bytes next (opened straight into the page, say). */
int rf_boardpage_add_head(struct rf_buf *out, const struct rf_boardpage_entry *e);
/* Writes the count of the page that starts at out->data. */
void rf_boardpage_end(struct rf_buf *out, uint32_t count);
/* Checks the head of p[0..n): 0 with *count and *off at the first entry,
 * or RF_ERR_VERSION / RF_ERR_FORMAT (count 0) / RF_ERR_TRUNCATED. */
int rf_boardpage_first(const uint8_t *p, size_t n, uint32_t *count, size_t *off);
/* The entry at *off: 1 with e pointing into p and *off past it; 0 at the
 * end of p; RF_ERR_FORMAT / RF_ERR_TRUNCATED for a damaged entry. */
int rf_boardpage_next(const uint8_t *p, size_t n, size_t *off, struct rf_boardpage_entry *e);
/* The whole page: its head, every entry, its count and nothing after
 * (0, or the first error). */
int rf_boardpage_check(const uint8_t *p, size_t n);

#endif
