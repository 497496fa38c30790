/* api_listing_test.c - GET /api/v1/objects's body, now made with
 * jansson's direct calls (rf_api_objects_json), dumps to the bytes the
 * json_pack of before gave: ordinary pages, the largest numbers, ids that
 * need escaping, an empty page, "more" both ways. */
#include "server/api_priv.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *jansson_page(const struct rf_object *objs, size_t n, int more)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        const struct rf_object *o = &objs[i];
        json_t *j = json_pack("{sIsssIsIsIsI}", "seq", (json_int_t)o->seq, "case", o->case_id,
                              "kind", (json_int_t)o->kind, "size", (json_int_t)o->size, "day",
                              (json_int_t)o->day, "roster", (json_int_t)o->roster);
        assert_non_null(j);
        assert_int_equal(json_array_append_new(arr, j), 0);
    }
    json_t *page = json_pack("{sosb}", "objects", arr, "more", more);
    char *d = json_dumps(page, JSON_COMPACT);
    json_decref(page);
    return d;
}

static void same_as(const struct rf_object *objs, size_t n, int more)
{
    json_t *page = rf_api_objects_json(objs, n, more);
    assert_non_null(page);
    char *got = json_dumps(page, JSON_COMPACT);
    char *want = jansson_page(objs, n, more);
    assert_string_equal(got, want);
    free(want);
    free(got);
    json_decref(page);
}

static void listing_is_janssons_dump(void **state)
{
    (void)state;
    struct rf_object objs[1000];
    memset(objs, 0, sizeof(objs));
    for (size_t i = 0; i < 1000; i++) {
        objs[i].seq = (int64_t)(i * 7919 + 1);
        char id[64];
        snprintf(id, sizeof(id), "q%04uk2xea", (unsigned)i); /* RF_CASE_ID_LEN */
        assert_int_equal(strlen(id), RF_CASE_ID_LEN);
        memcpy(objs[i].case_id, id, RF_CASE_ID_LEN + 1);
        objs[i].kind = (uint8_t)(i % 10);
        objs[i].size = (uint64_t)i * 1048573u;
        objs[i].day = (uint32_t)(20000 + i);
        objs[i].roster = (uint32_t)(i / 100);
    }
    same_as(objs, 1000, 1);
    same_as(objs, 1000, 0);
    same_as(objs, 1, 0);
    same_as(objs, 0, 0);
    /* the largest values the store hands out, and zeros */
    objs[0].seq = INT64_MAX / 2;
    objs[0].size = (uint64_t)1 << 40;
    objs[0].day = UINT32_MAX;
    objs[0].roster = UINT32_MAX;
    objs[1].seq = 0;
    objs[1].size = 0;
    objs[1].day = 0;
    objs[1].kind = 255;
    same_as(objs, 2, 1);
    /* ids that need escaping (a store never holds them; escaped anyway) */
    snprintf(objs[0].case_id, sizeof(objs[0].case_id), "a\"b\\c\n\t\r\b");
    snprintf(objs[1].case_id, sizeof(objs[1].case_id), "x\001y\037\177");
    snprintf(objs[2].case_id, sizeof(objs[2].case_id), "\320\266\320\270/");
    objs[3].case_id[0] = '\0';
    same_as(objs, 4, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(listing_is_janssons_dump),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
