/*
 * codename_normalize.c - fuzzes rf_codename_normalize with what a login form
 * may receive. Beyond not crashing: when it succeeds, the output is valid
 * UTF-8 with no NUL, no leading, trailing or doubled space, no other white
 * space, and normalizing it again changes nothing (abort() otherwise).
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unictype.h>
#include <unistr.h>

#include "lib/codename.h"
#include "lib/err.h"

static void check_shape(const char *s, size_t n)
{
    if (strlen(s) != n || u8_check((const uint8_t *)s, n) != NULL)
        abort();
    if (n > 0 && (s[0] == ' ' || s[n - 1] == ' '))
        abort();
    for (size_t i = 0; i < n;) {
        ucs4_t uc;
        int k = u8_mbtoucr(&uc, (const uint8_t *)s + i, n - i);
        if (k <= 0)
            abort();
        if (uc_is_property_white_space(uc) && (uc != ' ' || s[i + 1] == ' '))
            abort();
        i += (size_t)k;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char a[RF_CODENAME_MAX], b[RF_CODENAME_MAX];
    size_t alen = 0, blen = 0;
    if (sodium_init() < 0) /* work buffers are sodium_malloc'd */
        abort();
    int rc = rf_codename_normalize(a, sizeof(a), &alen, (const char *)data, size);
    if (rc != RF_OK) {
        if (rc != RF_ERR_FORMAT && rc != RF_ERR_LIMIT)
            abort();
        return 0;
    }
    check_shape(a, alen);
    if (rf_codename_normalize(b, sizeof(b), &blen, a, alen) != RF_OK)
        abort();
    if (blen != alen || memcmp(a, b, alen) != 0)
        abort();
    return 0;
}
