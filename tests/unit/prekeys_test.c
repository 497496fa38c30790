/* prekeys_test.c - envelopes' content keys opened ahead (client/prekeys.h):
 * a key is kept for an envelope with this caseworker's stanza, the same key
 * rf_envelope_content_key gives, and for nothing else (another's envelope,
 * junk, a seq offered out of order, an offer after the stop); and a local
 * update that uses them builds exactly what one without them builds, even
 * when a key kept is another object's (the digest opens that one as
 * always). */
#include "client/cache.h"
#include "client/cmd.h"
#include "client/local.h"
#include "client/out.h"
#include "client/prekeys.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/keyfile.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "test_local.h"
#include "test_home.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sealed(struct rf_buf *ct, const uint8_t (*pks)[32], size_t npk, const char *text)
{
    rf_buf_init(ct, 1 << 20);
    assert_int_equal(
        rf_envelope_seal(ct, RF_KIND_MESSAGE, pks, npk, (const uint8_t *)text, strlen(text)), 0);
}

static void keys_kept_for_our_envelopes_only(void **state)
{
    (void)state;
    struct rf_staff_keys *anna = sodium_malloc(sizeof(*anna)), *boris = sodium_malloc(sizeof(*boris));
    assert_int_equal(rf_staff_keys_generate(anna, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(boris, "Boris"), 0);
    uint8_t pks[2][32];
    memcpy(pks[0], boris->box_pk, 32);
    memcpy(pks[1], anna->box_pk, 32);
    struct rf_buf both, theirs, mine;
    sealed(&both, (const uint8_t(*)[32])pks, 2, "to both");
    sealed(&theirs, (const uint8_t(*)[32])pks, 1, "to Boris");
    sealed(&mine, (const uint8_t(*)[32])&pks[1], 1, "to Anna");
    struct rf_prekeys *p = NULL;
    assert_int_equal(rf_prekeys_start(&p, anna), 0);
    rf_prekeys_offer(p, 10, both.data, both.len);
    rf_prekeys_offer(p, 11, theirs.data, theirs.len);
    rf_prekeys_offer(p, 12, (const uint8_t *)"junk, not an envelope", 21);
    rf_prekeys_offer(p, 13, both.data, 20); /* a header cut short */
    rf_prekeys_offer(p, 14, mine.data, mine.len);
    rf_prekeys_offer(p, 9, mine.data, mine.len); /* out of order */
    assert_null(rf_prekeys_find(p, 10));         /* not before the stop */
    rf_prekeys_drain(p);
    rf_prekeys_stop(p); /* idempotent */
    rf_prekeys_offer(p, 20, mine.data, mine.len); /* after it */
    assert_int_equal(rf_prekeys_count(p), 2);
    uint8_t *want = sodium_malloc(32);
    assert_int_equal(rf_envelope_content_key(want, both.data, both.len, anna->box_pk, anna->box_sk),
                     0);
    assert_non_null(rf_prekeys_find(p, 10));
    assert_memory_equal(rf_prekeys_find(p, 10), want, 32);
    assert_int_equal(rf_envelope_content_key(want, mine.data, mine.len, anna->box_pk, anna->box_sk),
                     0);
    assert_memory_equal(rf_prekeys_find(p, 14), want, 32);
    for (int64_t s = 8; s <= 21; s++)
        if (s != 10 && s != 14)
            assert_null(rf_prekeys_find(p, s));
    rf_prekeys_free(p);
    rf_prekeys_free(NULL);
    sodium_free(want);
    rf_buf_free(&both);
    rf_buf_free(&theirs);
    rf_buf_free(&mine);
    sodium_free(anna);
    sodium_free(boris);
}

/* A home with intakes and events; with prekeys (every object offered, the
 * key kept for seq 2 being seq 3's), or without. The listing as JSON. */
static char *listing_of(const char *name, int with)
{
    struct home t;
    struct rf_local *l;
    struct rf_prekeys *p = NULL;
    home_new(&t, name);
    if (with)
        assert_int_equal(rf_prekeys_start(&p, t.anna), 0);
    static const char *const needs[] = {"asylum", "visa", "shelter", "money"};
    struct rf_buf ct[4];
    for (int i = 0; i < 4; i++) {
        char body[256];
        const char id[] = {'c', (char)('0' + i), '2', '2', '2', '2', '2', '2', '2', '2', '\0'};
        snprintf(body, sizeof(body),
                 "{\"v\":1,\"type\":\"intake\",\"lang\":\"en\",\"answers\":[{\"id\":\"need\","
                 "\"value\":\"%s\"}],\"text\":\"hello\"}",
                 needs[i]);
        sealed(&ct[i], (const uint8_t(*)[32])t.pks, 1, body);
        struct rf_cobj o = {1 + i, "", RF_KIND_MESSAGE, ct[i].len, 20100, 1, 0};
        memcpy(o.case_id, id, sizeof(id));
        assert_int_equal(rf_cache_object_put(t.c, &o, ct[i].data, ct[i].len), 0);
    }
    if (with) {
        rf_prekeys_offer(p, 1, ct[0].data, ct[0].len);
        rf_prekeys_offer(p, 2, ct[2].data, ct[2].len); /* another object's key */
        rf_prekeys_offer(p, 4, ct[3].data, ct[3].len);
        rf_prekeys_drain(p);
        assert_int_equal(rf_prekeys_count(p), 3);
    }
    ev(&t, 5, "c022222222", 1, 1, "stage", "verifying");
    ev(&t, 6, "c122222222", 1, 1, "tag", "urgent");
    assert_int_equal(rf_cache_set_last_seq(t.c, 6), 0);
    assert_int_equal(rf_local_new(&l, t.c, t.anna), 0);
    rf_local_use_prekeys(l, p);
    assert_int_equal(rf_local_update(l, NULL), 0);
    rf_local_use_prekeys(l, NULL);
    if (with) /* the update stopped it, perhaps before it opened anything */
        assert_true(rf_prekeys_count(p) <= 3);
    struct rf_ctx x;
    memset(&x, 0, sizeof(x));
    x.k = t.anna;
    x.c = t.c;
    x.l = l;
    struct rf_view_filter f = {.current = 1};
    json_t *rows = NULL;
    size_t total = 0;
    assert_int_equal(rf_view_cases(&x, &f, &rows, &total), 0);
    assert_int_equal(total, 4);
    char *out = json_dumps(rows, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(rows);
    rf_view_forget();
    rf_local_free(l);
    rf_prekeys_free(p);
    for (int i = 0; i < 4; i++)
        rf_buf_free(&ct[i]);
    home_free(&t);
    return out;
}

static void update_with_prekeys_builds_the_same(void **state)
{
    (void)state;
    char *without = listing_of("prekeys_without", 0);
    char *with = listing_of("prekeys_with", 1);
    assert_string_equal(with, without);
    assert_non_null(strstr(with, "shelter")); /* seq 3: opened without a key kept */
    assert_non_null(strstr(with, "visa"));    /* seq 2: the wrong key kept, opened as always */
    rf_out_json_free(without);
    rf_out_json_free(with);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    rf_out_init(); /* as rf_client_main does: jansson memory is wiped on free */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keys_kept_for_our_envelopes_only),
        cmocka_unit_test(update_with_prekeys_builds_the_same),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
