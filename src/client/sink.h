/*
 * sink.h - where `refuge cases` writes (cmd_cases.c): a secure buffer that
 * is written to stdout with write(2) when a chunk is full, or (grow) kept
 * whole for the listing to write in order; and the writers of jansson's
 * JSON_INDENT(2) form for the packed board row's values (lib/boardrow.h),
 * byte for byte what json_dumpf writes for the same values.
 */
#ifndef RF_CLIENT_SINK_H
#define RF_CLIENT_SINK_H

#include "lib/boardrow.h"
#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RF_SINK_CHUNK (64 * 1024)

struct rf_sink {
    struct rf_buf b; /* secure: plaintext */
    int failed;      /* a write or an allocation failed: the listing fails */
    int grow;        /* kept whole (never written): a part's rows, written in order later */
};

void rf_sink_flush(struct rf_sink *s);
void rf_sink_put_slow(struct rf_sink *s, const void *p, size_t n);
/* Appends n bytes (the common case inline: room in the buffer). */
static inline void rf_sink_put(struct rf_sink *s, const void *p, size_t n)
{
    if (s->b.data && s->b.len + n < s->b.cap) {
        memcpy(s->b.data + s->b.len, p, n);
        s->b.len += n;
        return;
    }
    rf_sink_put_slow(s, p, n);
}
void rf_sink_puts(struct rf_sink *s, const char *str);
/* A newline and 2 x depth spaces (JSON_INDENT(2)). */
void rf_sink_indent(struct rf_sink *s, int depth);
/* A JSON string as jansson writes it (", \ and control characters escaped). */
void rf_sink_json_str(struct rf_sink *s, const uint8_t *p, size_t n);
/* v in decimal as "%lld" writes it, NUL-terminated (out: 21 bytes); its length. */
size_t rf_fmt_int(char *out, int64_t v);
void rf_sink_json_int(struct rf_sink *s, int64_t v);
/* One packed value (any tag but JSON) at depth, as jansson writes it. */
void rf_sink_json_val(struct rf_sink *s, const struct rf_boardrow_val *v, int depth);

#endif
