/*
 * test_home.h - a caseworker's home for the tests of the local case
 * database (cache_local_test.c, prekeys_test.c): Anna on roster 1, Boris
 * a stranger, intakes and events put into its cache as the server stores
 * them. Header-only; include after test_local.h.
 */
#ifndef RF_TEST_HOME_H
#define RF_TEST_HOME_H

#include "client/home.h"
#include "lib/keyfile.h"

#include <stdlib.h>
#include <unistd.h>

struct home {
    struct rf_home h;
    struct rf_staff_keys *anna, *boris; /* Anna on the roster; Boris a stranger */
    uint8_t pks[2][32];
    struct rf_cache *c;
};

__attribute__((unused)) static void home_new(struct home *t, const char *name)
{
    const char *tmp = getenv("REFUGE_TEST_TMP");
    memset(t, 0, sizeof(*t));
    snprintf(t->h.dir, sizeof(t->h.dir), "%s/cache_local_test_%s.%d", tmp ? tmp : "/tmp", name,
             (int)getpid());
    assert_int_equal(rf_home_create(&t->h), 0);
    t->anna = sodium_malloc(sizeof(*t->anna));
    t->boris = sodium_malloc(sizeof(*t->boris));
    assert_int_equal(rf_staff_keys_generate(t->anna, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(t->boris, "Boris"), 0);
    memcpy(t->pks[0], t->anna->box_pk, 32);
    memcpy(t->pks[1], t->boris->box_pk, 32);
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    make_roster(r, 1, NULL);
    add_member(r, t->anna, RF_ROLE_ADMIN);
    assert_int_equal(rf_roster_sign(&raw, r, t->anna), 0);
    assert_int_equal(rf_cache_open(&t->c, &t->h), 0);
    assert_int_equal(rf_cache_roster_put(t->c, 1, raw.data, raw.len), 0);
    rf_buf_free(&raw);
    free(r);
}

__attribute__((unused)) static void home_free(struct home *t)
{
    rf_cache_close(t->c);
    sodium_free(t->anna);
    sodium_free(t->boris);
}

__attribute__((unused)) static void intake(struct home *t, int64_t seq, const char *case_id, const char *need,
                   const char *urgency, size_t npk)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"v\":1,\"type\":\"intake\",\"lang\":\"en\",\"answers\":[{\"id\":\"need\","
             "\"value\":\"%s\"},{\"id\":\"urgency\",\"value\":\"%s\"}],\"text\":\"hello\"}",
             need, urgency);
    /* npk 1: sealed to Anna; else to Boris alone (Anna cannot open it) */
    seal_obj(t->c, seq, case_id, RF_KIND_MESSAGE,
             npk == 1 ? (const uint8_t(*)[32])t->pks : (const uint8_t(*)[32]) & t->pks[1], 1,
             (const uint8_t *)body, strlen(body));
}

__attribute__((unused)) static void ev(struct home *t, int64_t seq, const char *case_id, unsigned roster, unsigned lamport,
               const char *op, const char *value)
{
    event_in(t->c, seq, case_id, t->anna, (const uint8_t(*)[32])t->pks, 1, roster, lamport, op,
             value, NULL);
}

#endif
