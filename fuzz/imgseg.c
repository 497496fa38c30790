/*
 * imgseg.c - fuzzes the JPEG segment and PNG chunk walks (lib/imgseg.c),
 * the one image parser that runs in the caseworker's own process, and the
 * metadata stripping built on them.
 * Checked: the pieces of a walk tile the input from 0 up to *end, each inside
 * it; a stripped copy is no longer than the input, walks again, and stripping
 * it once more changes nothing; a failed strip leaves the output empty.
 */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/imgseg.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tile {
    size_t next;
    size_t size;
    const uint8_t *base;
};

static int check_piece(void *ctx, const struct rf_imgseg *s)
{
    struct tile *t = ctx;
    if (s->off != t->next || s->total > t->size - s->off ||
        (s->total < 2 && s->kind != RF_SEG_DATA))
        abort();
    if (s->len > s->total ||
        (s->len && (s->data < t->base + s->off || s->data + s->len > t->base + s->off + s->total)))
        abort();
    if (s->kind == RF_SEG_SEGMENT && (s->data == NULL && s->len))
        abort();
    t->next = s->off + s->total;
    return 0;
}

static void walk(int (*fn)(const uint8_t *, size_t, rf_imgseg_fn, void *, size_t *),
                 const uint8_t *data, size_t size)
{
    struct tile t = {0, size, data};
    size_t end = 0;
    if (fn(data, size, check_piece, &t, &end) == 0 && (end != t.next || end > size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    walk(rf_jpeg_walk, data, size);
    walk(rf_png_walk, data, size);
    (void)rf_media_detect(data, size);
    struct rf_buf a, b;
    unsigned dropped = 0;
    rf_buf_init(&a, size);
    rf_buf_init(&b, size);
    int rc = rf_img_strip(&a, data, size, &dropped);
    if (rc != 0 && a.len != 0)
        abort();
    if (rc == 0) {
        if (a.len > size || rf_media_detect(a.data, a.len) != rf_media_detect(data, size))
            abort();
        if (rf_img_strip(&b, a.data, a.len, &dropped) != 0 || dropped != 0 || b.len != a.len ||
            memcmp(a.data, b.data, a.len) != 0)
            abort();
    }
    rf_buf_free(&a);
    rf_buf_free(&b);
    return 0;
}
