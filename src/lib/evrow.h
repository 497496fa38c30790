/*
 * evrow.h - a verified event's digest row, packed (docs/protocol.md,
 * "Event digest row, packed"): what the client's local case database keeps
 * of each event it verified, read back for every summary it builds. In
 * place of the JSON row {"k":"event","ev":{..},"h":".."}: at 1,000,000
 * events that JSON was dumped once and parsed at every rebuild, and was
 * the largest table of the cache (docs/performance.md).
 *
 *   tag u8 (= RF_EVROW_TAG 0x01; a JSON row starts with '{')
 *   id_len u8 | id (the event id, as signed: hex)
 *   lamport u64 | roster u32 | stored u32 | day u32 | seq u64 (int64) |
 *   admin u8 (0/1)
 *   author_pk 32 bytes | hash 32 bytes (the signed bytes' hash, checkpoint.h)
 *   author_len u8 | author (UTF-8) | op_len u8 | op
 *   value: every byte left (at least 1): the event's value as compact JSON
 * Integers big-endian (buf.h).
 *
 * rf_evrow_head writes everything but the value (the caller appends it,
 * with json_dump_callback say, straight into the same secure buffer);
 * rf_evrow_parse checks every length against the input and points into it
 * (no copy, no allocation).
 */
#ifndef RF_EVROW_H
#define RF_EVROW_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

#define RF_EVROW_TAG 0x01

struct rf_evrow {
    const uint8_t *id;
    size_t id_len;
    uint64_t lamport;
    uint32_t roster, stored, day;
    int64_t seq;
    int admin;
    const uint8_t *author_pk; /* 32 bytes */
    const uint8_t *hash;      /* 32 bytes */
    const uint8_t *author;
    size_t author_len;
    const uint8_t *op;
    size_t op_len;
    const uint8_t *value; /* compact JSON */
    size_t value_len;
};

/* Appends the row's head (all but the value) to out. RF_ERR_FORMAT if id,
 * author or op is longer than 255 bytes. */
int rf_evrow_head(struct rf_buf *out, const struct rf_evrow *r);
/* Parses p[0..n): 0 with r pointing into p, or RF_ERR_FORMAT /
 * RF_ERR_TRUNCATED. Only the layout is checked (the value is not parsed). */
int rf_evrow_parse(struct rf_evrow *r, const uint8_t *p, size_t n);
/* Whether p[0..n) is a packed row (its tag), not a JSON one. */
int rf_evrow_is(const uint8_t *p, size_t n);

#endif
