/*
 * filemeta.c - fuzzes the file-object metadata parser (whole and every
 * prefix must agree), the encoder round trip, and the name sanitizer.
 */
#include "lib/buf.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_safe(const char *name)
{
    char out[RF_FILEMETA_NAME_MAX + 1];
    if (rf_filemeta_safe_name(out, sizeof(out), name) != 0)
        abort();
    size_t n = strlen(out);
    if (n == 0 || out[0] == '.' || strchr(out, '/') || strchr(out, '\\'))
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)out[i] < 0x20 || out[i] == 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rf_filemeta m, m2;
    size_t used = 0, used2 = 0;
    int rc = rf_filemeta_parse(&m, &used, data, size);
    if (rc == 0) {
        if (used > size || used > RF_FILE_META_MAX)
            abort();
        /* a shorter prefix needs more bytes */
        if (rf_filemeta_parse(&m2, &used2, data, used - 1) != RF_ERR_TRUNCATED)
            abort();
        struct rf_buf b;
        rf_buf_init(&b, RF_FILE_META_MAX);
        if (rf_filemeta_encode(&b, m.name, strlen(m.name), m.type, strlen(m.type)) != 0 ||
            b.len != used || memcmp(b.data, data, used) != 0)
            abort();
        rf_buf_free(&b);
        check_safe(m.name);
    }
    char *s = malloc(size + 1);
    if (s == NULL)
        return 0;
    memcpy(s, data, size);
    s[size] = 0;
    check_safe(s);
    free(s);
    return 0;
}
