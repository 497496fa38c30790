/*
 * codename.h - codenames: 7 words from a 7776-word list of the person's
 * language (7 * log2(7776) = 90.5 bits), and their normalization.
 *
 * The lists (data/wordlist-en.txt, -ru.txt, -uk.txt) are built by
 * scripts/make-wordlists from Debian packages and compiled in; every word is
 * unique and none is a prefix of another. A codename is shown once and never
 * stored; the server keeps only what rf_source_derive (source.h) makes of it.
 */
#ifndef RF_CODENAME_H
#define RF_CODENAME_H

#include <stddef.h>

enum rf_lang { RF_LANG_EN = 0, RF_LANG_RU = 1, RF_LANG_UK = 2, RF_LANG_COUNT };

#define RF_CODENAME_WORDS 7
#define RF_WORDLIST_SIZE 7776
/* Longest codename accepted at login, in bytes, before normalization. */
#define RF_CODENAME_INPUT_MAX 512
/* Room for any normalized codename, including the NUL. */
#define RF_CODENAME_MAX 512

const char *rf_wordlist_word(enum rf_lang lang, size_t index);

/* Writes a fresh codename (words joined by single spaces, NUL-terminated) to out.
 * out should be sodium_malloc memory; outcap >= RF_CODENAME_MAX. */
int rf_codename_generate(char *out, size_t outcap, enum rf_lang lang);

/* Normalizes in (UTF-8): NFC, Unicode case folding, trim, runs of Unicode
 * white space collapsed to one ASCII space. RF_ERR_FORMAT on invalid UTF-8
 * or NUL, RF_ERR_LIMIT when longer than RF_CODENAME_INPUT_MAX or outcap.
 * out is NUL-terminated; *outlen excludes the NUL. */
int rf_codename_normalize(char *out, size_t outcap, size_t *outlen, const char *in, size_t inlen);

/* Bits of entropy of a generated codename. */
double rf_codename_entropy_bits(void);

#endif
