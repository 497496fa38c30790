/*
 * codename_check.h - the practise step after a new codename: what the person
 * types back, compared with the codename they were given, word by word after
 * normalization (rf_codename_normalize on both sides).
 *
 * The result names positions only: which words of the codename were not typed
 * right (different or missing) and how many words were typed. It never says
 * what a word should have been, and the caller keeps neither side.
 */
#ifndef RF_CODENAME_CHECK_H
#define RF_CODENAME_CHECK_H

#include "lib/codename.h"

#include <stddef.h>
#include <stdint.h>

/* Most words a codename compared here may have (the wrong mask's width). */
#define RF_CHECK_WORDS_MAX 32
/* Room the caller lends for the two normalized texts (wiped before return). */
#define RF_CHECK_SCRATCH (2 * RF_CODENAME_MAX)

struct rf_codename_check {
    unsigned words; /* words of the codename */
    unsigned typed; /* words typed (after normalization) */
    uint32_t wrong; /* bit i: word i + 1 of the codename not typed right */
};

/* Compares typed (typed_len bytes, as sent) with want (the codename, want_len
 * bytes). scratch: RF_CHECK_SCRATCH bytes, sodium_malloc memory; wiped.
 * 0 with *out filled (right iff wrong == 0 and typed == words);
 * RF_ERR_LIMIT: typed longer than RF_CODENAME_INPUT_MAX; RF_ERR_FORMAT: typed
 * is not UTF-8 or holds a NUL; RF_ERR_INVALID: want empty, malformed or over
 * RF_CHECK_WORDS_MAX words; RF_ERR_NOMEM. */
int rf_codename_check(struct rf_codename_check *out, const char *want, size_t want_len,
                      const char *typed, size_t typed_len, char *scratch, size_t scratch_len);

/* 1 if the check found the codename typed exactly right. */
int rf_codename_check_right(const struct rf_codename_check *c);

#endif
