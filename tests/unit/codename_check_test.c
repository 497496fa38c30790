/* codename_check_test.c - the practise step after a new codename: a person
 * who types their codename back is told "right" whatever their keyboard did
 * to case and spacing, and otherwise only which positions are wrong or
 * missing; hostile input (too long, not UTF-8, NUL) gets its own status and
 * the scratch memory is wiped every time. */
#include "lib/codename.h"
#include "lib/codename_check.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <string.h>

static const char cn[] = "apple banana cherry delta echo foxtrot golf";
static char *scratch;

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    scratch = sodium_malloc(RF_CHECK_SCRATCH);
    return scratch == NULL ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    sodium_free(scratch);
    return 0;
}

static int check(struct rf_codename_check *c, const char *want, const char *typed)
{
    int rc =
        rf_codename_check(c, want, strlen(want), typed, strlen(typed), scratch, RF_CHECK_SCRATCH);
    for (size_t i = 0; i < RF_CHECK_SCRATCH; i++)
        assert_int_equal(scratch[i], 0);
    return rc;
}

static void right_whatever_case_and_spacing(void **state)
{
    (void)state;
    struct rf_codename_check c;
    assert_int_equal(check(&c, cn, cn), 0);
    assert_true(rf_codename_check_right(&c));
    assert_int_equal(check(&c, cn, "  Apple BANANA\tcherry   delta echo foxtrot golf\n"), 0);
    assert_true(rf_codename_check_right(&c));
    assert_int_equal(c.words, 7);
    assert_int_equal(c.typed, 7);
    assert_int_equal(c.wrong, 0);
    /* Russian, with a capital and the other Unicode form of й */
    assert_int_equal(check(&c, "чайник мой", "Чаи\xcc\x86ник МОЙ"), 0);
    assert_true(rf_codename_check_right(&c));
}

static void only_positions_of_wrong_words(void **state)
{
    (void)state;
    struct rf_codename_check c;
    assert_int_equal(check(&c, cn, "apple banana chery delta echo foxtrot golf"), 0);
    assert_false(rf_codename_check_right(&c));
    assert_int_equal(c.wrong, 1u << 2); /* word 3 */
    assert_int_equal(c.typed, 7);
    /* two words swapped: both positions */
    assert_int_equal(check(&c, cn, "apple banana cherry echo delta foxtrot golf"), 0);
    assert_int_equal(c.wrong, (1u << 3) | (1u << 4));
    /* a word left out shifts the rest: every later position is wrong */
    assert_int_equal(check(&c, cn, "apple cherry delta echo foxtrot golf"), 0);
    assert_int_equal(c.wrong, 0x7eu);
    assert_int_equal(c.typed, 6);
}

static void missing_and_extra_words(void **state)
{
    (void)state;
    struct rf_codename_check c;
    assert_int_equal(check(&c, cn, "apple banana cherry delta echo"), 0);
    assert_false(rf_codename_check_right(&c));
    assert_int_equal(c.wrong, (1u << 5) | (1u << 6));
    assert_int_equal(c.typed, 5);
    assert_int_equal(check(&c, cn, "apple banana cherry delta echo foxtrot golf hotel"), 0);
    assert_false(rf_codename_check_right(&c)); /* every word right, one too many */
    assert_int_equal(c.wrong, 0);
    assert_int_equal(c.typed, 8);
    assert_int_equal(check(&c, cn, ""), 0);
    assert_int_equal(c.wrong, 0x7fu);
    assert_int_equal(c.typed, 0);
    /* a prefix is not the word */
    assert_int_equal(check(&c, cn, "app banana cherry delta echo foxtrot golfs"), 0);
    assert_int_equal(c.wrong, 1u | (1u << 6));
}

static void hostile_input(void **state)
{
    (void)state;
    struct rf_codename_check c;
    char big[RF_CODENAME_INPUT_MAX + 2];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(check(&c, cn, big), RF_ERR_LIMIT);
    assert_int_equal(check(&c, cn, "apple \xff\xfe banana"), RF_ERR_FORMAT);
    assert_int_equal(rf_codename_check(&c, cn, strlen(cn), "a\0b", 3, scratch, RF_CHECK_SCRATCH),
                     RF_ERR_FORMAT);
    assert_int_equal(c.words, 0);
    assert_int_equal(c.wrong, 0);
    /* a "codename" of 33 words, or none, cannot be compared */
    char many[33 * 2];
    for (int i = 0; i < 33; i++) {
        many[2 * i] = 'w';
        many[2 * i + 1] = ' ';
    }
    many[sizeof(many) - 1] = '\0';
    assert_int_equal(check(&c, many, "w"), RF_ERR_INVALID);
    assert_int_equal(check(&c, "   ", "w"), RF_ERR_INVALID);
    assert_int_equal(rf_codename_check(&c, cn, strlen(cn), cn, strlen(cn), scratch, 16),
                     RF_ERR_INVALID);
}

static void generated_codenames(void **state)
{
    (void)state;
    for (int l = 0; l < RF_LANG_COUNT; l++) {
        char *g = sodium_malloc(RF_CODENAME_MAX);
        assert_non_null(g);
        assert_int_equal(rf_codename_generate(g, RF_CODENAME_MAX, (enum rf_lang)l), 0);
        struct rf_codename_check c;
        assert_int_equal(check(&c, g, g), 0);
        assert_true(rf_codename_check_right(&c));
        assert_int_equal(c.words, RF_CODENAME_WORDS);
        sodium_free(g);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(right_whatever_case_and_spacing),
        cmocka_unit_test(only_positions_of_wrong_words),
        cmocka_unit_test(missing_and_extra_words),
        cmocka_unit_test(hostile_input),
        cmocka_unit_test(generated_codenames),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
