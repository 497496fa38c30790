/*
 * imgseg.c - JPEG segments and PNG chunks through the bounds-checked reader
 * (see imgseg.h). Only the container is read: marker lengths, chunk lengths,
 * the end of JPEG entropy-coded data (the first 0xFF not followed by 0x00, a
 * restart marker or a fill byte). Every piece consumes at least two bytes,
 * so a walk ends after at most n / 2 callbacks whatever the input.
 */
#include "lib/imgseg.h"
#include "lib/err.h"

#include <string.h>

#define PNG_CHUNK_MAX 0x7fffffffu

static const uint8_t png_sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

enum rf_media_type rf_media_detect(const uint8_t *p, size_t n)
{
    if (n >= 3 && p[0] == 0xff && p[1] == 0xd8 && p[2] == 0xff)
        return RF_MEDIA_JPEG;
    if (n >= sizeof(png_sig) && memcmp(p, png_sig, sizeof(png_sig)) == 0)
        return RF_MEDIA_PNG;
    if (n >= 5 && memcmp(p, "%PDF-", 5) == 0)
        return RF_MEDIA_PDF;
    return RF_MEDIA_OTHER;
}

const char *rf_media_type_name(enum rf_media_type t)
{
    switch (t) {
    case RF_MEDIA_JPEG:
        return "JPEG image";
    case RF_MEDIA_PNG:
        return "PNG image";
    case RF_MEDIA_PDF:
        return "PDF document";
    default:
        return "other";
    }
}

static int emit(rf_imgseg_fn fn, void *ctx, struct rf_imgseg *s)
{
    return fn ? fn(ctx, s) : 0;
}

/* After an SOS header: the entropy-coded data up to the next marker (its
 * 0xFF left unread). */
static int jpeg_scan_data(struct rf_reader *r)
{
    for (;;) {
        uint8_t b, c;
        size_t at = r->off;
        int rc = rf_get_u8(r, &b);
        if (rc != 0)
            return rc;
        if (b != 0xff)
            continue;
        rc = rf_get_u8(r, &c);
        if (rc != 0)
            return rc;
        if (c == 0x00 || (c >= 0xd0 && c <= 0xd7))
            continue;
        if (c == 0xff) {
            r->off = at + 1; /* a fill byte: look at the next 0xFF again */
            continue;
        }
        r->off = at;
        return 0;
    }
}

int rf_jpeg_walk(const uint8_t *p, size_t n, rf_imgseg_fn fn, void *ctx, size_t *end)
{
    struct rf_reader r;
    struct rf_imgseg s;
    uint8_t a, m;
    int rc;
    rf_reader_init(&r, p, n);
    if ((rc = rf_get_u8(&r, &a)) != 0 || (rc = rf_get_u8(&r, &m)) != 0)
        return rc;
    if (a != 0xff || m != 0xd8)
        return RF_ERR_FORMAT;
    memset(&s, 0, sizeof(s));
    s.kind = RF_SEG_MARKER;
    s.marker = m;
    s.total = 2;
    if ((rc = emit(fn, ctx, &s)) != 0)
        return rc;
    for (;;) {
        size_t off = r.off;
        if ((rc = rf_get_u8(&r, &a)) != 0)
            return rc;
        if (a != 0xff)
            return RF_ERR_FORMAT;
        do {
            if ((rc = rf_get_u8(&r, &m)) != 0)
                return rc;
        } while (m == 0xff);
        memset(&s, 0, sizeof(s));
        s.marker = m;
        s.off = off;
        if (m == 0x00 || m == 0xd8)
            return RF_ERR_FORMAT;
        if (m == 0xd9 || m == 0x01 || (m >= 0xd0 && m <= 0xd7)) {
            s.kind = RF_SEG_MARKER;
            s.total = r.off - off;
            if ((rc = emit(fn, ctx, &s)) != 0)
                return rc;
            if (m == 0xd9) {
                if (end)
                    *end = r.off;
                return 0;
            }
            continue;
        }
        uint16_t len;
        if ((rc = rf_get_u16(&r, &len)) != 0)
            return rc;
        if (len < 2)
            return RF_ERR_FORMAT;
        if ((rc = rf_get_ptr(&r, &s.data, (size_t)len - 2)) != 0)
            return rc;
        s.kind = RF_SEG_SEGMENT;
        s.len = (size_t)len - 2;
        s.total = r.off - off;
        if ((rc = emit(fn, ctx, &s)) != 0)
            return rc;
        if (m != 0xda)
            continue;
        size_t start = r.off;
        if ((rc = jpeg_scan_data(&r)) != 0)
            return rc;
        memset(&s, 0, sizeof(s));
        s.kind = RF_SEG_DATA;
        s.data = p + start;
        s.len = r.off - start;
        s.off = start;
        s.total = s.len;
        if ((rc = emit(fn, ctx, &s)) != 0)
            return rc;
    }
}

static int png_type_ok(const uint8_t t[4])
{
    for (int i = 0; i < 4; i++)
        if (!((t[i] >= 'a' && t[i] <= 'z') || (t[i] >= 'A' && t[i] <= 'Z')))
            return 0;
    return 1;
}

int rf_png_walk(const uint8_t *p, size_t n, rf_imgseg_fn fn, void *ctx, size_t *end)
{
    struct rf_reader r;
    struct rf_imgseg s;
    uint8_t sig[sizeof(png_sig)];
    int rc;
    rf_reader_init(&r, p, n);
    if ((rc = rf_get_bytes(&r, sig, sizeof(sig))) != 0)
        return rc;
    if (memcmp(sig, png_sig, sizeof(sig)) != 0)
        return RF_ERR_FORMAT;
    memset(&s, 0, sizeof(s));
    s.kind = RF_SEG_MARKER;
    s.total = sizeof(sig);
    if ((rc = emit(fn, ctx, &s)) != 0)
        return rc;
    for (;;) {
        size_t off = r.off;
        uint32_t len, crc;
        uint8_t type[4];
        if ((rc = rf_get_u32(&r, &len)) != 0 || (rc = rf_get_bytes(&r, type, 4)) != 0)
            return rc;
        if (len > PNG_CHUNK_MAX || !png_type_ok(type))
            return RF_ERR_FORMAT;
        memset(&s, 0, sizeof(s));
        if ((rc = rf_get_ptr(&r, &s.data, len)) != 0 || (rc = rf_get_u32(&r, &crc)) != 0)
            return rc;
        s.kind = RF_SEG_SEGMENT;
        memcpy(s.type, type, 4);
        s.len = len;
        s.off = off;
        s.total = r.off - off;
        if ((rc = emit(fn, ctx, &s)) != 0)
            return rc;
        if (memcmp(type, "IEND", 4) == 0) {
            if (end)
                *end = r.off;
            return 0;
        }
    }
}

static int starts(const struct rf_imgseg *s, const char *id, size_t n)
{
    return s->len >= n && memcmp(s->data, id, n) == 0;
}

int rf_jpeg_keep(const struct rf_imgseg *s)
{
    if (s->kind != RF_SEG_SEGMENT)
        return 1;
    switch (s->marker) {
    case 0xe0: /* JFIF without a thumbnail (bytes 12, 13: its size) */
        return starts(s, "JFIF\0", 5) && s->len >= 14 && s->data[12] == 0 && s->data[13] == 0;
    case 0xe2:
        return starts(s, "ICC_PROFILE\0", 12);
    case 0xee:
        return starts(s, "Adobe", 5);
    case 0xfe: /* comment */
        return 0;
    default:
        return !(s->marker >= 0xe0 && s->marker <= 0xef);
    }
}

int rf_png_keep(const struct rf_imgseg *s)
{
    static const char *const keep[] = {"tRNS", "gAMA", "cHRM", "sRGB", "iCCP", "sBIT", "bKGD",
                                       "pHYs", "hIST", "cICP", "acTL", "fcTL", "fdAT"};
    if (s->kind != RF_SEG_SEGMENT)
        return 1;
    if (s->type[0] >= 'A' && s->type[0] <= 'Z')
        return 1; /* critical: IHDR, PLTE, IDAT, IEND */
    for (size_t i = 0; i < sizeof(keep) / sizeof(keep[0]); i++)
        if (memcmp(s->type, keep[i], 4) == 0)
            return 1;
    return 0;
}

struct strip {
    struct rf_buf *out;
    int (*keep)(const struct rf_imgseg *s);
    const uint8_t *base;
    unsigned dropped;
};

static int strip_piece(void *ctx, const struct rf_imgseg *s)
{
    struct strip *st = ctx;
    if (!st->keep(s)) {
        st->dropped++;
        return 0;
    }
    return rf_buf_put(st->out, st->base + s->off, s->total);
}

int rf_img_strip(struct rf_buf *out, const uint8_t *p, size_t n, unsigned *dropped)
{
    struct strip st = {out, NULL, p, 0};
    size_t end = 0, start = out->len;
    int rc;
    enum rf_media_type t = rf_media_detect(p, n);
    if (t == RF_MEDIA_JPEG) {
        st.keep = rf_jpeg_keep;
        rc = rf_jpeg_walk(p, n, strip_piece, &st, &end);
    } else if (t == RF_MEDIA_PNG) {
        st.keep = rf_png_keep;
        rc = rf_png_walk(p, n, strip_piece, &st, &end);
    } else {
        return RF_ERR_INVALID;
    }
    if (rc != 0) {
        out->len = start; /* nothing half-way */
        return rc;
    }
    if (end < n)
        st.dropped++;
    if (dropped)
        *dropped = st.dropped;
    return 0;
}
