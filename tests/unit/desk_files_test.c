/*
 * desk_files_test.c - the Content-Disposition of the desk's downloads
 * (desk_files.c): a person's hostile file name (quotes, CR LF, path
 * separators, RTL override, <script>, very long) never breaks the header
 * out of its quoted string or its RFC 5987 value, nor names a path.
 */
#include "client/desk_priv.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

/* Every byte of the header is printable ASCII; the quoted fallback has no
 * quote or backslash inside; the extended value only attr-chars and %XX. */
static void assert_safe(const char *d)
{
    for (const unsigned char *p = (const unsigned char *)d; *p; p++)
        assert_true(*p >= 0x20 && *p < 0x7f);
    assert_true(strncmp(d, "attachment; filename=\"", 22) == 0);
    const char *q = d + 22, *end = strchr(q, '"');
    assert_non_null(end);
    for (const char *p = q; p < end; p++)
        assert_true(*p != '\\' && *p != '/' && *p != ';');
    assert_true(strncmp(end, "\"; filename*=UTF-8''", 20) == 0);
    for (const char *p = end + 20; *p; p++)
        assert_true(strchr("!#$&+-.^_`|~%0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
                           "abcdefghijklmnopqrstuvwxyz",
                           *p) != NULL);
    /* no separator, even encoded: the name is one name, never a path */
    assert_null(strchr(d, '/'));
    assert_null(strchr(d, '\\'));
    assert_null(strstr(d, "%2F"));
    assert_null(strstr(d, "%5C"));
    assert_true(strncmp(d + 22, ".", 1) != 0);
}

static void test_plain(void **state)
{
    (void)state;
    char d[1024];
    assert_int_equal(rf_desk_disposition(d, sizeof(d), "flat.jpg", ""), 0);
    assert_string_equal(d, "attachment; filename=\"flat.jpg\"; filename*=UTF-8''flat.jpg");
    assert_int_equal(rf_desk_disposition(d, sizeof(d), "flat.jpg", "-clean"), 0);
    assert_string_equal(d,
                        "attachment; filename=\"flat-clean.jpg\"; filename*=UTF-8''flat-clean.jpg");
}

static void test_hostile(void **state)
{
    (void)state;
    static const char *const names[] = {
        "a\"; filename=evil.exe; x=\".jpg",
        "line\r\nSet-Cookie: rf_desk=stolen\r\n\r\n<script>alert(1)</script>.png",
        "../../../etc/passwd",
        "..\\..\\windows\\system32\\evil.dll",
        "photo\xe2\x80\xae"
        "gpj.exe", /* RTL override: shows as "photoexe.jpg" */
        "\xd0\xbf\xd0\xb0\xd1\x81\xd0\xbf\xd0\xbe\xd1\x80\xd1\x82 \xe2\x84\x96 1.jpg",
        "%0D%0AX: y;.pdf",
        ".hidden",
        "\xff\xfe invalid utf-8",
    };
    char d[1024];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        assert_int_equal(rf_desk_disposition(d, sizeof(d), names[i], ""), 0);
        assert_safe(d);
        assert_int_equal(rf_desk_disposition(d, sizeof(d), names[i], "-clean"), 0);
        assert_safe(d);
    }
    /* the RTL override is gone, not percent-encoded */
    assert_int_equal(rf_desk_disposition(d, sizeof(d), names[4], ""), 0);
    assert_null(strstr(d, "%E2%80%AE"));
    /* a Cyrillic name survives in filename* */
    assert_int_equal(rf_desk_disposition(d, sizeof(d), names[5], ""), 0);
    assert_non_null(strstr(d, "filename*=UTF-8''%D0%BF%D0%B0"));
    /* CR LF never survives, even encoded */
    assert_int_equal(rf_desk_disposition(d, sizeof(d), names[1], ""), 0);
    assert_null(strstr(d, "%0D"));
    assert_null(strstr(d, "%0A"));
}

static void test_long(void **state)
{
    (void)state;
    char name[300], d[1024];
    memset(name, 0, sizeof(name));
    for (size_t i = 0; i + 2 < 255; i += 2)
        memcpy(name + i, "\xd0\xaf", 2); /* 127 Cyrillic letters, 254 bytes */
    assert_int_equal(rf_desk_disposition(d, sizeof(d), name, "-clean"), 0);
    assert_safe(d);
    assert_true(strlen(d) < sizeof(d));
    char small[40];
    assert_int_not_equal(rf_desk_disposition(small, sizeof(small), name, ""), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_long),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
