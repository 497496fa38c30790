/*
 * imgseg.h - the container layer of JPEG and PNG files, walked through the
 * bounds-checked reader: which segments (JPEG markers) or chunks (PNG) a file
 * is made of, and a copy of it without the ones that carry identifying
 * metadata. Pixels are never decoded here (that happens in the sandboxed
 * child of client/media.c); this is the one image parser that runs in the
 * caseworker's own process, so it is small and fuzzed (fuzz/imgseg.c).
 *
 * A walk hands every piece of the file, in order, to a callback: each piece
 * is [off, off + total) of the input and the pieces tile the input from 0 up
 * to *end (the byte after EOI / IEND); what follows *end is trailing data.
 */
#ifndef RF_IMGSEG_H
#define RF_IMGSEG_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

enum rf_media_type {
    RF_MEDIA_OTHER = 0,
    RF_MEDIA_JPEG = 1,
    RF_MEDIA_PNG = 2,
    RF_MEDIA_PDF = 3,
};

/* The type by content (magic bytes), never by name. */
enum rf_media_type rf_media_detect(const uint8_t *p, size_t n);
/* "JPEG image", "PNG image", "PDF document", "other". */
const char *rf_media_type_name(enum rf_media_type t);

enum rf_imgseg_kind {
    RF_SEG_MARKER = 1, /* JPEG marker without payload (SOI, EOI); PNG signature */
    RF_SEG_SEGMENT,    /* JPEG marker with a length and payload; PNG chunk */
    RF_SEG_DATA,       /* JPEG entropy-coded data after an SOS header */
};

struct rf_imgseg {
    enum rf_imgseg_kind kind;
    uint8_t marker;      /* JPEG: the marker's second byte (0xE1 = APP1) */
    char type[5];        /* PNG: the chunk type, NUL-terminated */
    const uint8_t *data; /* the payload (JPEG: after the length; PNG: chunk data) */
    size_t len;
    size_t off, total; /* the whole piece: [off, off + total) of the input */
};

/* Return 0 to go on, anything else stops the walk and is returned. */
typedef int (*rf_imgseg_fn)(void *ctx, const struct rf_imgseg *s);

/* RF_ERR_FORMAT / RF_ERR_TRUNCATED for a malformed file; fn may be NULL. */
int rf_jpeg_walk(const uint8_t *p, size_t n, rf_imgseg_fn fn, void *ctx, size_t *end);
int rf_png_walk(const uint8_t *p, size_t n, rf_imgseg_fn fn, void *ctx, size_t *end);

/* Whether a stripped copy keeps this piece (what the decoder needs: JFIF
 * without thumbnail, ICC profile, Adobe colour transform, tables, frames,
 * scans; PNG critical chunks and colour/rendering ancillaries). */
int rf_jpeg_keep(const struct rf_imgseg *s);
int rf_png_keep(const struct rf_imgseg *s);

/* Appends to out (a secure buf, max >= n) a copy of the JPEG or PNG p
 * without metadata: JPEG loses APP1 (EXIF, XMP), APP3..APP13 (IPTC /
 * Photoshop), APP15, APP2 other than ICC, JFIF extensions and thumbnails,
 * comments and anything after EOI, every other byte kept as it was; PNG
 * loses tEXt, zTXt, iTXt, eXIf, tIME and every unknown ancillary chunk and
 * anything after IEND. *dropped (may be NULL) counts what was removed.
 * RF_ERR_INVALID for another type. */
int rf_img_strip(struct rf_buf *out, const uint8_t *p, size_t n, unsigned *dropped);

#endif
