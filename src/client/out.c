/*
 * out.c - terminal output (see out.h). Everything a person sent is passed
 * through rf_out_safe before it reaches the terminal, so a message cannot
 * move the cursor, retitle the window, hide text behind a bidi override or
 * smuggle an escape sequence into a caseworker's shell.
 */
#include "client/out.h"
#include "lib/json.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <unistr.h>

void rf_out_json_free(void *p)
{
    rf_json_free(p);
}

void rf_out_init(void)
{
    rf_json_init();
}

void rf_out_phase(const char *name)
{
    static int on = -1;
    static struct timespec last;
    if (on < 0)
        on = getenv("REFUGE_PHASES") != NULL;
    if (!on)
        return;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (name && last.tv_sec)
        fprintf(stderr, "phase %s %.3f\n", name,
                (double)(now.tv_sec - last.tv_sec) + (now.tv_nsec - last.tv_nsec) / 1e9);
    last = now;
}

int rf_out_colour(FILE *f)
{
    const char *nc = getenv("NO_COLOR");
    if (nc && nc[0])
        return 0;
    return isatty(fileno(f));
}

void rf_out_day(char *out, size_t cap, uint32_t day)
{
    time_t t = (time_t)day * 86400;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, cap, "%Y-%m-%d", &tm) == 0)
        snprintf(out, cap, "day %u", (unsigned)day);
}

void rf_out_size(char *out, size_t cap, uint64_t b)
{
    if (b < 1024)
        snprintf(out, cap, "%llu B", (unsigned long long)b);
    else if (b < 1024 * 1024)
        snprintf(out, cap, "%.1f KiB", (double)b / 1024.0);
    else if (b < 1024ULL * 1024 * 1024)
        snprintf(out, cap, "%.1f MiB", (double)b / (1024.0 * 1024.0));
    else
        snprintf(out, cap, "%.2f GiB", (double)b / (1024.0 * 1024.0 * 1024.0));
}

static int unsafe(ucs4_t c, int multiline)
{
    if (c == '\n')
        return !multiline;
    if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xa0))
        return 1;
    return c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

/* Calls emit for each sanitised piece of s. */
static void sanitise(const char *s, int multiline, void (*emit)(void *, const char *, size_t),
                     void *ctx)
{
    const uint8_t *p = (const uint8_t *)(s ? s : "");
    const uint8_t *end = p + strlen((const char *)p);
    while (p < end) {
        ucs4_t c;
        int k = u8_mbtoucr(&c, p, (size_t)(end - p));
        if (k <= 0) {
            emit(ctx, "\xef\xbf\xbd", 3);
            p++;
            continue;
        }
        if (c == '\t')
            emit(ctx, " ", 1);
        else if (c == '\r')
            ; /* dropped: it would let a line overwrite itself */
        else if (unsafe(c, multiline))
            emit(ctx, c == '\n' ? " " : "\xef\xbf\xbd", c == '\n' ? 1 : 3);
        else
            emit(ctx, (const char *)p, (size_t)k);
        p += k;
    }
}

static void emit_file(void *ctx, const char *p, size_t n)
{
    fwrite(p, 1, n, (FILE *)ctx);
}

void rf_out_safe(FILE *f, const char *s, int multiline)
{
    sanitise(s, multiline, emit_file, f);
}

struct block_ctx {
    FILE *f;
    const char *indent;
};

static void emit_block(void *v, const char *p, size_t n)
{
    struct block_ctx *b = v;
    fwrite(p, 1, n, b->f);
    if (n == 1 && p[0] == '\n')
        fputs(b->indent, b->f);
}

void rf_out_block(FILE *f, const char *s, const char *indent)
{
    struct block_ctx b = {f, indent};
    fputs(indent, f);
    sanitise(s, 1, emit_block, &b);
    fputc('\n', f);
}

struct copy_ctx {
    char *out;
    size_t cap, len;
    int full;
};

static void emit_copy(void *v, const char *p, size_t n)
{
    struct copy_ctx *c = v;
    if (c->full || c->len + n + 1 > c->cap) {
        c->full = 1;
        return;
    }
    memcpy(c->out + c->len, p, n);
    c->len += n;
    c->out[c->len] = '\0';
}

void rf_out_safe_copy(char *out, size_t cap, const char *s)
{
    struct copy_ctx c = {out, cap, 0, 0};
    if (cap == 0)
        return;
    out[0] = '\0';
    sanitise(s, 0, emit_copy, &c);
}

int rf_out_json(json_t *j)
{
    if (json_dumpf(j, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER) != 0)
        return -1;
    fputc('\n', stdout);
    return fflush(stdout) == 0 ? 0 : -1;
}

void rf_out_value_text(char *out, size_t cap, json_t *v)
{
    out[0] = '\0';
    if (json_is_string(v)) {
        rf_out_safe_copy(out, cap, json_string_value(v));
        return;
    }
    size_t i, len = 0;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || len + 3 >= cap)
            continue;
        if (len) {
            memcpy(out + len, ", ", 3);
            len += 2;
        }
        rf_out_safe_copy(out + len, cap - len, json_string_value(e));
        len = strlen(out);
    }
}
