/*
 * codename_check.c - compares a codename typed back with the one given
 * (codename_check.h). Both are normalized into the caller's scratch memory,
 * then walked word by word (words are separated by exactly one ASCII space
 * after normalization); only positions leave this file.
 */
#include "lib/codename_check.h"
#include "lib/codename.h"
#include "lib/err.h"

#include <sodium.h>
#include <string.h>

/* The next word of s (NUL-terminated, single spaces) at *pos: its start and
 * length; 0 at the end. */
static int next_word(const char *s, size_t *pos, const char **w, size_t *n)
{
    size_t i = *pos;
    if (s[i] == ' ')
        i++;
    if (s[i] == '\0')
        return 0;
    size_t j = i;
    while (s[j] != '\0' && s[j] != ' ')
        j++;
    *w = s + i;
    *n = j - i;
    *pos = j;
    return 1;
}

int rf_codename_check(struct rf_codename_check *out, const char *want, size_t want_len,
                      const char *typed, size_t typed_len, char *scratch, size_t scratch_len)
{
    if (out == NULL || want == NULL || scratch == NULL || scratch_len < RF_CHECK_SCRATCH ||
        (typed == NULL && typed_len > 0))
        return RF_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    const size_t half = RF_CHECK_SCRATCH / 2;
    char *w = scratch, *t = scratch + half;
    size_t wl = 0, tl = 0;
    int rc = rf_codename_normalize(w, half, &wl, want, want_len);
    if (rc != 0 || wl == 0) {
        rc = rc == RF_ERR_NOMEM ? rc : RF_ERR_INVALID;
        goto out;
    }
    rc = rf_codename_normalize(t, half, &tl, typed, typed_len);
    if (rc != 0)
        goto out;

    size_t wp = 0, tp = 0;
    const char *ww = NULL, *tw = NULL;
    size_t wn = 0, tn = 0;
    for (;;) {
        int have_w = next_word(w, &wp, &ww, &wn);
        int have_t = next_word(t, &tp, &tw, &tn);
        if (!have_w && !have_t)
            break;
        if (have_t)
            out->typed++;
        if (!have_w)
            continue;
        if (out->words == RF_CHECK_WORDS_MAX) {
            rc = RF_ERR_INVALID;
            goto out;
        }
        if (!have_t || tn != wn || sodium_memcmp(tw, ww, wn) != 0)
            out->wrong |= (uint32_t)1 << out->words;
        out->words++;
    }
out:
    sodium_memzero(scratch, RF_CHECK_SCRATCH);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int rf_codename_check_right(const struct rf_codename_check *c)
{
    return c->words > 0 && c->wrong == 0 && c->typed == c->words;
}
