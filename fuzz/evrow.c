/*
 * evrow.c - fuzzes a verified event's packed digest row (lib/evrow.h):
 * what rf_evrow_parse accepts. Checked beyond "no sanitizer report": every
 * pointer of an accepted row lies inside the input, and the row written
 * again (rf_evrow_head, then the value) is the input byte for byte (the
 * format is canonical: one way to write each row).
 */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/evrow.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
    if (n > 0 && (p < data || p + n > data + size))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rf_evrow r;
    if (rf_evrow_parse(&r, data, size) != 0)
        return 0;
    if (!rf_evrow_is(data, size) || r.value_len == 0 || (r.admin != 0 && r.admin != 1))
        abort();
    inside(r.id, r.id_len, data, size);
    inside(r.author_pk, 32, data, size);
    inside(r.hash, 32, data, size);
    inside(r.author, r.author_len, data, size);
    inside(r.op, r.op_len, data, size);
    inside(r.value, r.value_len, data, size);
    struct rf_buf b;
    rf_buf_init(&b, size + 1);
    if (rf_evrow_head(&b, &r) != 0 || rf_buf_put(&b, r.value, r.value_len) != 0 || b.len != size ||
        memcmp(b.data, data, size) != 0)
        abort();
    rf_buf_free(&b);
    return 0;
}
