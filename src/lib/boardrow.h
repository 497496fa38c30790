/*
 * boardrow.h - a case's board row, packed (format in docs/protocol.md,
 * "Board row, packed"): what the desk's board and `refuge cases` show of a
 * case, read in place from the opened (secure) buffer without allocating.
 *
 *   version u8 (= 1) | 14 fields in the order of enum rf_boardrow_field, each
 *   tag u8 | by tag:
 *     0 NULL   nothing (absent, or JSON null)
 *     1 STR    len u32 | len bytes (UTF-8, no NUL)
 *     2 INT    u64 (an int64, two's complement)
 *     3 STRS   count u16 | count x (len u32 | len bytes)      an array of strings
 *     4 FLAGS  count u16 | count x (len u32 | len bytes | u8 0/1)  an object of booleans
 *     5 JSON   len u32 | len bytes of compact JSON (any other value)
 * Integers big-endian (buf.h). Nothing may follow the last field.
 *
 * rf_boardrow_encode takes the case's summary (any JSON object) and writes
 * every field losslessly: a value that fits no typed tag goes as JSON, so
 * rf_boardrow_to_json gives back what json_object_get gave for each field
 * (JSON null where the summary had none). rf_boardrow_parse checks every
 * length against the input and points into it; the entries of a STRS or
 * FLAGS field are walked with rf_boardrow_next.
 */
#ifndef RF_BOARDROW_H
#define RF_BOARDROW_H

#include "lib/buf.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RF_BOARDROW_VERSION 1
#define RF_BOARDROW_MAX (8 * 1024 * 1024) /* a whole packed row */

enum rf_boardrow_field {
    RF_BR_STAGE,
    RF_BR_ASSIGNED,
    RF_BR_TAGS,
    RF_BR_DUE,
    RF_BR_MESSAGES,
    RF_BR_FILES,
    RF_BR_REPLIES,
    RF_BR_LAST_DAY,
    RF_BR_PENDING,
    RF_BR_NEED,
    RF_BR_CHECKLIST,
    RF_BR_NOTES,
    RF_BR_FIRST_DAY,
    RF_BR_URGENCY,
    RF_BR_NFIELDS
};

enum rf_boardrow_tag {
    RF_BRT_NULL = 0,
    RF_BRT_STR = 1,
    RF_BRT_INT = 2,
    RF_BRT_STRS = 3,
    RF_BRT_FLAGS = 4,
    RF_BRT_JSON = 5,
};

/* The JSON key of each field (the summary's and the old JSON row's). */
extern const char *const rf_boardrow_keys[RF_BR_NFIELDS];

struct rf_boardrow_val {
    uint8_t tag;
    int64_t i;        /* INT */
    const uint8_t *p; /* STR, JSON: the bytes; STRS, FLAGS: the first entry */
    size_t len;       /* STR, JSON: their length; STRS, FLAGS: the entries' encoded bytes */
    size_t count;     /* STRS, FLAGS: entries */
};

struct rf_boardrow {
    struct rf_boardrow_val f[RF_BR_NFIELDS];
};

/* Appends the packed row of summary s (a JSON object) to out. */
int rf_boardrow_encode(struct rf_buf *out, const json_t *s);
/* 0, or RF_ERR_FORMAT / RF_ERR_VERSION / RF_ERR_TRUNCATED. r points into p. */
int rf_boardrow_parse(struct rf_boardrow *r, const uint8_t *p, size_t n);

/* Walks the entries of a parsed STRS or FLAGS value: *off starts at 0.
 * 1 with the entry (flag: FLAGS only, else 0), 0 at the end. */
int rf_boardrow_next(const struct rf_boardrow_val *v, size_t *off, const uint8_t **s, size_t *n,
                     int *flag);

/* The row as the JSON object the board rows held before (every key, in
 * the fields' order); NULL when a string is not UTF-8 or JSON does not
 * parse (a damaged row). */
json_t *rf_boardrow_to_json(const struct rf_boardrow *r);

#endif
