/*
 * codename_check.c - fuzzes rf_codename_check, the practise step's compare
 * (POST /new/check): what the person types back against the codename.
 *
 * Input: the first byte n, then min(n, rest) bytes of the codename, then
 * what was typed. Checked beyond no sanitizer report (abort() otherwise):
 * only 0, RF_ERR_LIMIT, RF_ERR_FORMAT or RF_ERR_INVALID come back; on 0 the
 * codename has 1 to RF_CHECK_WORDS_MAX words, the wrong mask names no word
 * past them, "right" means no wrong word and as many words typed; the
 * codename typed back exactly is right; and the scratch memory is wiped.
 */
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/codename_check.h"
#include "lib/err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_result(int rc, const struct rf_codename_check *c, const char *scratch)
{
    for (size_t i = 0; i < RF_CHECK_SCRATCH; i++)
        if (scratch[i] != 0)
            abort();
    if (rc != 0) {
        if (rc != RF_ERR_LIMIT && rc != RF_ERR_FORMAT && rc != RF_ERR_INVALID)
            abort();
        if (c->words != 0 || c->typed != 0 || c->wrong != 0)
            abort();
        return;
    }
    if (c->words == 0 || c->words > RF_CHECK_WORDS_MAX)
        abort();
    if (c->words < 32 && (c->wrong >> c->words) != 0)
        abort();
    if (rf_codename_check_right(c) != (c->wrong == 0 && c->typed == c->words))
        abort();
    if (c->typed < c->words && c->wrong == 0)
        abort(); /* a missing word is a wrong word */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char *scratch;
    if (scratch == NULL) {
        if (sodium_init() < 0)
            abort();
        scratch = sodium_malloc(RF_CHECK_SCRATCH);
        if (scratch == NULL)
            abort();
    }
    if (size == 0)
        return 0;
    size_t n = data[0];
    if (n > size - 1)
        n = size - 1;
    const char *want = (const char *)data + 1, *typed = want + n;
    size_t typed_len = size - 1 - n;

    struct rf_codename_check c;
    int rc = rf_codename_check(&c, want, n, typed, typed_len, scratch, RF_CHECK_SCRATCH);
    check_result(rc, &c, scratch);

    /* the codename typed back as it is: right, whenever it can be compared */
    struct rf_codename_check self;
    int rs = rf_codename_check(&self, want, n, want, n, scratch, RF_CHECK_SCRATCH);
    check_result(rs, &self, scratch);
    if (rs == 0 && !rf_codename_check_right(&self))
        abort();
    return 0;
}
