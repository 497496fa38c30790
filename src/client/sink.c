/*
 * sink.c - the listing's output and its JSON writers (see sink.h).
 */
#include "client/sink.h"

#include <errno.h>
#include <stdio.h>
#include <unistd.h>

#define OUT_CHUNK RF_SINK_CHUNK

void rf_sink_flush(struct rf_sink *s)
{
    size_t off = 0;
    while (!s->failed && off < s->b.len) {
        ssize_t k = write(STDOUT_FILENO, s->b.data + off, s->b.len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            s->failed = 1;
        else
            off += (size_t)k;
    }
    rf_buf_reset(&s->b); /* wiped */
}

void rf_sink_put_slow(struct rf_sink *s, const void *p, size_t n)
{
    if (s->grow) {
        if (rf_buf_put(&s->b, p, n) != 0)
            s->failed = 1;
        return;
    }
    if (s->b.len + n > OUT_CHUNK)
        rf_sink_flush(s);
    if (n > OUT_CHUNK) { /* a long string: through the chunk in pieces */
        for (size_t off = 0; off < n; off += OUT_CHUNK) {
            size_t k = n - off < OUT_CHUNK ? n - off : OUT_CHUNK;
            rf_sink_put(s, (const uint8_t *)p + off, k);
        }
        return;
    }
    if (rf_buf_put(&s->b, p, n) != 0)
        s->failed = 1;
}

void rf_sink_puts(struct rf_sink *s, const char *str)
{
    rf_sink_put(s, str, strlen(str));
}

void rf_sink_indent(struct rf_sink *s, int depth)
{
    static const char spaces[] = "                                ";
    rf_sink_put(s, "\n", 1);
    rf_sink_put(s, spaces,
                (size_t)depth * 2 < sizeof(spaces) - 1 ? (size_t)depth * 2 : sizeof(spaces) - 1);
}

/* A JSON string as jansson writes it (no JSON_ENSURE_ASCII, no
 * JSON_ESCAPE_SLASH): ", \ and control characters escaped, the rest as is. */
void rf_sink_json_str(struct rf_sink *s, const uint8_t *p, size_t n)
{
    rf_sink_put(s, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        rf_sink_put(s, p + run, i - run);
        run = i + 1;
        char esc[8];
        const char *t = c == '"'    ? "\\\""
                        : c == '\\' ? "\\\\"
                        : c == '\b' ? "\\b"
                        : c == '\f' ? "\\f"
                        : c == '\n' ? "\\n"
                        : c == '\r' ? "\\r"
                        : c == '\t' ? "\\t"
                                    : NULL;
        if (!t) {
            snprintf(esc, sizeof(esc), "\\u%04X", (unsigned)c);
            t = esc;
        }
        rf_sink_puts(s, t);
    }
    rf_sink_put(s, p + run, n - run);
    rf_sink_put(s, "\"", 1);
}

/* v in decimal as "%lld" prints it, NUL-terminated; returns its length
 * (out: at least 21 bytes). snprintf costs more than the rest of a row. */
size_t rf_fmt_int(char *out, int64_t v)
{
    char tmp[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        out[k++] = '-';
    while (n)
        out[k++] = tmp[--n];
    out[k] = '\0';
    return k;
}

void rf_sink_json_int(struct rf_sink *s, int64_t v)
{
    char num[24];
    rf_sink_put(s, num, rf_fmt_int(num, v));
}

/* One packed value (any tag but JSON) at depth. */
void rf_sink_json_val(struct rf_sink *s, const struct rf_boardrow_val *v, int depth)
{
    size_t off = 0, n, k = 0;
    const uint8_t *p;
    int flag;
    switch (v->tag) {
    case RF_BRT_STR:
        rf_sink_json_str(s, v->p, v->len);
        return;
    case RF_BRT_INT:
        rf_sink_json_int(s, v->i);
        return;
    case RF_BRT_STRS:
    case RF_BRT_FLAGS:
        if (v->count == 0) {
            rf_sink_puts(s, v->tag == RF_BRT_STRS ? "[]" : "{}");
            return;
        }
        rf_sink_put(s, v->tag == RF_BRT_STRS ? "[" : "{", 1);
        while (rf_boardrow_next(v, &off, &p, &n, &flag)) {
            if (k++)
                rf_sink_put(s, ",", 1);
            rf_sink_indent(s, depth + 1);
            rf_sink_json_str(s, p, n);
            if (v->tag == RF_BRT_FLAGS)
                rf_sink_puts(s, flag ? ": true" : ": false");
        }
        rf_sink_indent(s, depth);
        rf_sink_put(s, v->tag == RF_BRT_STRS ? "]" : "}", 1);
        return;
    default:
        rf_sink_puts(s, "null");
    }
}
