/*
 * boardpage.c - fuzzes a page of board rows (lib/boardpage.h): what
 * rf_boardpage_first and rf_boardpage_next accept. Checked beyond "no
 * sanitizer report": every pointer of an accepted entry lies inside the
 * input, its id is a C string of id_len bytes there, the walk ends exactly
 * at the end of the input, rf_boardpage_check agrees with the walk, and an
 * accepted page written again entry by entry is the input byte for byte
 * (the format is canonical).
 */
#include "lib/boardpage.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t count = 0, seen = 0;
    size_t off = 0;
    struct rf_boardpage_entry e;
    struct rf_buf b;
    int rc = rf_boardpage_first(data, size, &count, &off);
    if (rc != 0) {
        if (rf_boardpage_check(data, size) == 0)
            abort();
        return 0;
    }
    rf_buf_init(&b, size + 1);
    if (rf_boardpage_begin(&b) != 0)
        abort();
    while ((rc = rf_boardpage_next(data, size, &off, &e)) == 1) {
        const uint8_t *id = (const uint8_t *)e.case_id;
        if (id < data || id + e.id_len + 1 > data + size || strlen(e.case_id) != e.id_len)
            abort();
        if (e.row_len > 0 && (e.row < data || e.row + e.row_len > data + size))
            abort();
        if (off > size || rf_boardpage_add(&b, &e) != 0)
            abort();
        seen++;
    }
    int whole = rc == 0 && seen == count;
    if (whole != (rf_boardpage_check(data, size) == 0))
        abort();
    if (rc == 0 && off != size)
        abort();
    rf_boardpage_end(&b, count);
    if (whole && (b.len != size || memcmp(b.data, data, size) != 0))
        abort();
    rf_buf_free(&b);
    return 0;
}
