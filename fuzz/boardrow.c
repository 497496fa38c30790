/*
 * boardrow.c - fuzzes the packed board row (lib/boardrow.h): what
 * rf_boardrow_parse accepts, rf_boardrow_next walks and rf_boardrow_to_json
 * unpacks. Checked beyond "no sanitizer report": an accepted row's values
 * point inside the input and their entries walk to exactly their length and
 * count; a row that unpacks encodes again to a row that parses and unpacks
 * to an equal object (lossless both ways); an accepted input with a byte
 * more is refused.
 */
#include "lib/boardrow.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void walk(const struct rf_boardrow_val *v, const uint8_t *data, size_t size)
{
    if ((v->tag == RF_BRT_STR || v->tag == RF_BRT_JSON || v->tag == RF_BRT_STRS ||
         v->tag == RF_BRT_FLAGS) &&
        (v->p < data || v->p + v->len > data + size))
        abort();
    size_t off = 0, n, count = 0;
    const uint8_t *p;
    int flag;
    while (rf_boardrow_next(v, &off, &p, &n, &flag)) {
        if (p < v->p || p + n > v->p + v->len || (flag != 0 && flag != 1))
            abort();
        count++;
    }
    if ((v->tag == RF_BRT_STRS || v->tag == RF_BRT_FLAGS) && (off != v->len || count != v->count))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rf_boardrow r;
    if (rf_boardrow_parse(&r, data, size) != 0)
        return 0;
    for (int f = 0; f < RF_BR_NFIELDS; f++)
        walk(&r.f[f], data, size);
    uint8_t *more = malloc(size + 1);
    if (!more)
        return 0;
    memcpy(more, data, size);
    more[size] = 0;
    if (rf_boardrow_parse(&r, more, size + 1) == 0)
        abort();
    free(more);
    rf_boardrow_parse(&r, data, size);
    json_t *j = rf_boardrow_to_json(&r);
    if (!j)
        return 0;
    struct rf_buf b;
    struct rf_boardrow again;
    rf_buf_init(&b, RF_BOARDROW_MAX);
    if (rf_boardrow_encode(&b, j) != 0 || rf_boardrow_parse(&again, b.data, b.len) != 0)
        abort();
    json_t *k = rf_boardrow_to_json(&again);
    if (!k || !json_equal(j, k))
        abort();
    json_decref(k);
    json_decref(j);
    rf_buf_free(&b);
    return 0;
}
