/*
 * test_local.h - what the unit tests of the staff client's local case
 * database share: a roster with members, objects sealed (and events
 * signed) as the server stores them put into a cache, and a look for
 * plaintext in a file. Header-only; include after <cmocka.h>.
 */
#ifndef RF_TEST_LOCAL_H
#define RF_TEST_LOCAL_H

#include "client/cache.h"
#include "lib/envelope.h"
#include "lib/event.h"
#include "lib/roster.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

__attribute__((unused)) static void make_roster(struct rf_roster *r, uint32_t version,
                                                const uint8_t prev[32])
{
    memset(r, 0, sizeof(*r));
    r->version = version;
    if (prev)
        memcpy(r->prev_hash, prev, 32);
}

__attribute__((unused)) static void add_member(struct rf_roster *r, const struct rf_staff_keys *k,
                                               uint8_t role)
{
    struct rf_member *m = &r->members[r->n++];
    snprintf(m->name, sizeof(m->name), "%s", k->name);
    m->role = role;
    memcpy(m->box_pk, k->box_pk, 32);
    memcpy(m->sign_pk, k->sign_pk, 32);
}

__attribute__((unused)) static void seal_obj(struct rf_cache *c, int64_t seq, const char *case_id,
                                             uint8_t kind, const uint8_t (*pks)[32], size_t npk,
                                             const uint8_t *plain, size_t len)
{
    struct rf_buf ct;
    rf_buf_init(&ct, 1 << 20);
    assert_int_equal(rf_envelope_seal(&ct, kind, pks, npk, plain, len), 0);
    struct rf_cobj o = {seq, "", kind, ct.len, 20100, 1, 0};
    snprintf(o.case_id, sizeof(o.case_id), "%s", case_id);
    assert_int_equal(rf_cache_object_put(c, &o, ct.data, ct.len), 0);
    rf_buf_free(&ct);
}

/* A signed event of case_id naming roster version roster, sealed to pks:
 * stored at seq, or (env_out) only sealed into env_out (an outbox entry). */
__attribute__((unused)) static void event_in(struct rf_cache *c, int64_t seq, const char *case_id,
                                             const struct rf_staff_keys *k,
                                             const uint8_t (*pks)[32], size_t npk, unsigned roster,
                                             unsigned lamport, const char *op, const char *value,
                                             struct rf_buf *env_out)
{
    char body[512], id[33];
    uint8_t rid[16];
    struct rf_buf ev;
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
    snprintf(body, sizeof(body),
             "{\"v\":1,\"id\":\"%s\",\"lamport\":%u,\"roster\":%u,\"author\":\"x\","
             "\"day\":20100,\"op\":\"%s\",\"value\":\"%s\"}",
             id, lamport, roster, op, value);
    rf_buf_init(&ev, 1 << 16);
    assert_int_equal(rf_event_sign(&ev, k, case_id, (const uint8_t *)body, strlen(body)), 0);
    if (env_out)
        assert_int_equal(rf_envelope_seal(env_out, RF_KIND_EVENT, pks, npk, ev.data, ev.len), 0);
    else
        seal_obj(c, seq, case_id, RF_KIND_EVENT, pks, npk, ev.data, ev.len);
    rf_buf_free(&ev);
}

/* An event of case abcde23456 under roster 1. */
__attribute__((unused)) static void
event_obj(struct rf_cache *c, int64_t seq, const struct rf_staff_keys *k, const uint8_t (*pks)[32],
          size_t npk, unsigned lamport, const char *op, const char *value, struct rf_buf *env_out)
{
    event_in(c, seq, "abcde23456", k, pks, npk, 1, lamport, op, value, env_out);
}

__attribute__((unused)) static int file_has(const char *path, const char *needle)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    static uint8_t data[8 << 20];
    size_t n = fread(data, 1, sizeof(data), f);
    fclose(f);
    return memmem(data, n, needle, strlen(needle)) != NULL;
}

#endif
