/* codename_test.c - what a person types back is recognised however their
 * keyboard, phone or copy-paste mangled case, spacing and Unicode form; what
 * an attacker sends (bad UTF-8, NUL, huge input) is refused; generated
 * codenames are 7 words of the compiled-in lists, fresh each time. */
#include "lib/codename.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

static int norm(char *out, size_t outcap, const char *in, size_t inlen)
{
    size_t len = 0;
    int rc = rf_codename_normalize(out, outcap, &len, in, inlen);
    if (rc == RF_OK)
        assert_int_equal(len, strlen(out));
    return rc;
}

/* Asserts that in normalizes to want. */
static void expect_norm(const char *in, size_t inlen, const char *want)
{
    char out[RF_CODENAME_MAX];
    assert_int_equal(norm(out, sizeof(out), in, inlen), RF_OK);
    assert_string_equal(out, want);
}

#define EXPECT(in, want) expect_norm((in), sizeof(in) - 1, (want))

static void case_is_folded(void **state)
{
    (void)state;
    EXPECT("Correct HORSE battery", "correct horse battery");
    EXPECT("ПРИВЕТ Мир", "привет мир");
    EXPECT("ЁЛКА", "ёлка");               /* folded, but ё stays ё (docs/codename.md) */
    EXPECT("ІНЖИР Ґанок", "інжир ґанок"); /* Ukrainian letters */
    EXPECT("ЄНОТ ЇЖАК Йогурт", "єнот їжак йогурт");
    EXPECT("STRASSE", "strasse");
    EXPECT("Straße", "strasse"); /* full case folding, not tolower */
    /* Turkish dotted capital I folds the same on every server locale. */
    EXPECT("\xc4\xb0", "i\xcc\x87");
}

static void white_space_is_trimmed_and_collapsed(void **state)
{
    (void)state;
    EXPECT("  foo  bar  ", "foo bar");
    EXPECT("foo\tbar\nbaz\r\n", "foo bar baz");
    EXPECT("\xc2\xa0"
           "foo\xc2\xa0\xc2\xa0"
           "bar",
           "foo bar"); /* NBSP */
    EXPECT("foo\xe2\x80\x82\xe2\x80\x8a"
           "bar",
           "foo bar"); /* U+2002, U+200A */
    EXPECT("\xe3\x80\x80\xd1\x81\xd0\xbb\xd0\xbe\xd0\xb2\xd0\xbe\xe3\x80\x80",
           "слово"); /* U+3000 */
    EXPECT("a\xe2\x80\xa8"
           "b\xc2\x85"
           "c",
           "a b c"); /* U+2028, NEL */
    EXPECT("   \t\n ", "");
    EXPECT("", "");
}

static void nfd_equals_nfc(void **state)
{
    (void)state;
    /* й typed as и + COMBINING BREVE (U+0306) */
    EXPECT("\xd0\xb8\xcc\x86"
           "од",
           "йод");
    EXPECT("\xd0\x98\xcc\x86"
           "ОД",
           "йод");
    /* Ukrainian ї typed as і + COMBINING DIAERESIS (U+0308), Ї as І + U+0308 */
    EXPECT("\xd1\x96\xcc\x88"
           "жак",
           "їжак");
    EXPECT("\xd0\x86\xcc\x88"
           "ЖАК",
           "їжак");
    /* e + COMBINING ACUTE */
    EXPECT("cafe\xcc\x81", "caf\xc3\xa9");
    EXPECT("CAF\xc3\x89", "caf\xc3\xa9");
}

static void bad_input_is_refused(void **state)
{
    (void)state;
    char out[RF_CODENAME_MAX];
    assert_int_equal(norm(out, sizeof(out), "foo\xff", 4), RF_ERR_FORMAT);
    assert_int_equal(norm(out, sizeof(out), "\xd0", 1), RF_ERR_FORMAT);         /* cut short */
    assert_int_equal(norm(out, sizeof(out), "\xc0\xaf", 2), RF_ERR_FORMAT);     /* overlong / */
    assert_int_equal(norm(out, sizeof(out), "\xed\xa0\x80", 3), RF_ERR_FORMAT); /* surrogate */
    assert_int_equal(norm(out, sizeof(out), "foo\0bar", 7), RF_ERR_FORMAT);
    assert_string_equal(out, ""); /* nothing half-written on failure */

    char big[RF_CODENAME_INPUT_MAX + 2];
    memset(big, 'a', sizeof(big));
    assert_int_equal(norm(out, sizeof(out), big, RF_CODENAME_INPUT_MAX + 1), RF_ERR_LIMIT);
    assert_int_equal(norm(out, sizeof(out), big, RF_CODENAME_INPUT_MAX),
                     RF_ERR_LIMIT); /* no room for NUL */
    assert_int_equal(norm(out, sizeof(out), big, RF_CODENAME_INPUT_MAX - 1), RF_OK);
    /* spaces around an over-long word do not count against the output */
    memset(big, ' ', sizeof(big));
    assert_int_equal(norm(out, sizeof(out), big, RF_CODENAME_INPUT_MAX), RF_OK);
    assert_string_equal(out, "");
    /* output capacity is respected */
    assert_int_equal(norm(out, 4, "abcd", 4), RF_ERR_LIMIT);
    assert_int_equal(norm(out, 5, "abcd", 4), RF_OK);
    /* folding that lengthens the text past outcap: U+0587 (2 bytes) folds to
     * two Armenian letters (4 bytes) */
    char arm[300];
    for (int i = 0; i < 150; i++)
        memcpy(arm + 2 * i, "\xd6\x87", 2);
    assert_int_equal(norm(out, sizeof(out), arm, sizeof(arm)), RF_ERR_LIMIT);
    assert_int_equal(norm(out, sizeof(out), arm, 200), RF_OK);
    assert_int_equal(strlen(out), 400);
}

static void normalization_is_idempotent(void **state)
{
    (void)state;
    const char *inputs[] = {"  Foo\xc2\xa0 BAR ",
                            "\xd0\x98\xcc\x86"
                            "ОД  Ёж",
                            "Straße \xe2\x80\x82 x", "\xcc\x81 a \xcc\x81"};
    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        char a[RF_CODENAME_MAX], b[RF_CODENAME_MAX];
        assert_int_equal(norm(a, sizeof(a), inputs[i], strlen(inputs[i])), RF_OK);
        assert_int_equal(norm(b, sizeof(b), a, strlen(a)), RF_OK);
        assert_string_equal(a, b);
    }
}

/* The Ukrainian alphabet in lower case, no apostrophe (data/README.md). */
static const char uk_letters[] = "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя";

static int uk_letter(const unsigned char *p)
{
    for (size_t i = 0; i + 1 < sizeof(uk_letters) - 1; i += 2)
        if ((unsigned char)uk_letters[i] == p[0] && (unsigned char)uk_letters[i + 1] == p[1])
            return 1;
    return 0;
}

/* Returns 1 if w is made only of the list's letters: a-z for English, а-я for
 * Russian, the 33 lower-case letters of the Ukrainian alphabet for Ukrainian. */
static int letters_ok(enum rf_lang lang, const char *w)
{
    const unsigned char *p = (const unsigned char *)w;
    if (*p == '\0')
        return 0;
    while (*p) {
        if (lang == RF_LANG_UK) {
            if (p[1] == '\0' || !uk_letter(p))
                return 0;
            p += 2;
        } else if (lang == RF_LANG_EN) {
            if (*p < 'a' || *p > 'z')
                return 0;
            p++;
        } else {
            /* а-п = D0 B0..D0 BF, р-я = D1 80..D1 8F; ё (D1 91) is not allowed */
            if (p[0] == 0xD0 && p[1] >= 0xB0 && p[1] <= 0xBF)
                p += 2;
            else if (p[0] == 0xD1 && p[1] >= 0x80 && p[1] <= 0x8F)
                p += 2;
            else
                return 0;
        }
    }
    return 1;
}

static void lists_are_sound(void **state)
{
    (void)state;
    for (int lang = 0; lang < RF_LANG_COUNT; lang++) {
        const char *prev = NULL;
        for (size_t i = 0; i < RF_WORDLIST_SIZE; i++) {
            const char *w = rf_wordlist_word((enum rf_lang)lang, i);
            assert_non_null(w);
            assert_true(letters_ok((enum rf_lang)lang, w));
            if (prev != NULL) {
                /* strictly sorted by bytes = by code point: unique; and a prefix
                 * would sort right before the word it begins */
                assert_true(strcmp(prev, w) < 0);
                assert_false(strncmp(prev, w, strlen(prev)) == 0);
            }
            prev = w;
        }
        assert_null(rf_wordlist_word((enum rf_lang)lang, RF_WORDLIST_SIZE));
    }
    assert_null(rf_wordlist_word(RF_LANG_COUNT, 0));
    assert_string_equal(rf_wordlist_word(RF_LANG_EN, 0), "abacus");
    assert_int_equal(RF_LANG_COUNT, 3);
    /* the Ukrainian list uses і ї є (ґ is allowed but rare) and none of ы э ъ ё */
    int seen_uk[3] = {0, 0, 0};
    for (size_t i = 0; i < RF_WORDLIST_SIZE; i++) {
        const char *w = rf_wordlist_word(RF_LANG_UK, i);
        seen_uk[0] |= strstr(w, "і") != NULL;
        seen_uk[1] |= strstr(w, "ї") != NULL;
        seen_uk[2] |= strstr(w, "є") != NULL;
        assert_null(strstr(w, "ы"));
        assert_null(strstr(w, "э"));
        assert_null(strstr(w, "ъ"));
        assert_null(strstr(w, "ё"));
        assert_null(strstr(w, "'"));
    }
    assert_true(seen_uk[0] && seen_uk[1] && seen_uk[2]);
}

static int word_index(enum rf_lang lang, const char *w, size_t len)
{
    for (size_t i = 0; i < RF_WORDLIST_SIZE; i++) {
        const char *cand = rf_wordlist_word(lang, i);
        if (strlen(cand) == len && memcmp(cand, w, len) == 0)
            return (int)i;
    }
    return -1;
}

static void generated_codenames_are_list_words(void **state)
{
    (void)state;
    for (int lang = 0; lang < RF_LANG_COUNT; lang++) {
        char *prev = sodium_malloc(RF_CODENAME_MAX);
        char *cn = sodium_malloc(RF_CODENAME_MAX);
        assert_non_null(prev);
        assert_non_null(cn);
        prev[0] = '\0';
        for (int round = 0; round < 50; round++) {
            assert_int_equal(rf_codename_generate(cn, RF_CODENAME_MAX, (enum rf_lang)lang), RF_OK);
            assert_string_not_equal(cn, prev);
            /* 7 words from the list, single spaces, already normalized */
            int words = 0;
            const char *p = cn;
            for (;;) {
                const char *sp = strchr(p, ' ');
                size_t len = sp ? (size_t)(sp - p) : strlen(p);
                assert_true(word_index((enum rf_lang)lang, p, len) >= 0);
                words++;
                if (!sp)
                    break;
                p = sp + 1;
            }
            assert_int_equal(words, RF_CODENAME_WORDS);
            char n[RF_CODENAME_MAX];
            assert_int_equal(norm(n, sizeof(n), cn, strlen(cn)), RF_OK);
            assert_string_equal(n, cn);
            strcpy(prev, cn);
        }
        sodium_free(prev);
        sodium_free(cn);
    }
    char small[8];
    assert_int_equal(rf_codename_generate(small, sizeof(small), RF_LANG_EN), RF_ERR_LIMIT);
    assert_int_equal(rf_codename_generate(small, sizeof(small), RF_LANG_COUNT), RF_ERR_INVALID);
}

static void entropy_is_over_90_bits(void **state)
{
    (void)state;
    double bits = rf_codename_entropy_bits();
    assert_true(fabs(bits - 7.0 * log2(7776.0)) < 1e-9);
    assert_true(bits > 90.0);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(case_is_folded),
        cmocka_unit_test(white_space_is_trimmed_and_collapsed),
        cmocka_unit_test(nfd_equals_nfc),
        cmocka_unit_test(bad_input_is_refused),
        cmocka_unit_test(normalization_is_idempotent),
        cmocka_unit_test(lists_are_sound),
        cmocka_unit_test(generated_codenames_are_list_words),
        cmocka_unit_test(entropy_is_over_90_bits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
