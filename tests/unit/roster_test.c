/* roster_test.c - a client accepts a chain of rosters only as the pinned
 * admin and the admins after them signed it: tampered members, dropped or
 * foreign signatures, a signer who is not an admin, a wrong previous hash, a
 * replayed old version and an injected member are all refused. */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/keyfile.h"
#include "lib/roster.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct fixture {
    struct rf_staff_keys *admin, *bob, *carol, *mallory;
    struct rf_roster *r1, *r2, *r3, *got;
    struct rf_buf raw1, raw2, raw3;
};

static struct rf_staff_keys *person(const char *name)
{
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    assert_non_null(k);
    assert_int_equal(rf_staff_keys_generate(k, name), 0);
    return k;
}

static void add(struct rf_roster *r, const struct rf_staff_keys *k, uint8_t role)
{
    struct rf_member *m = &r->members[r->n++];
    memset(m, 0, sizeof(*m));
    strcpy(m->name, k->name);
    m->role = role;
    memcpy(m->box_pk, k->box_pk, 32);
    memcpy(m->sign_pk, k->sign_pk, 32);
}

/* v1: admin (signed by admin). v2: admin, bob (admin), carol. v3: bob, carol
 * (signed by bob, removing the first admin). */
static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->admin = person("Admin");
    f->bob = person("Bob");
    f->carol = person("Кэрол");
    f->mallory = person("Mallory");
    f->r1 = calloc(1, sizeof(struct rf_roster));
    f->r2 = calloc(1, sizeof(struct rf_roster));
    f->r3 = calloc(1, sizeof(struct rf_roster));
    f->got = calloc(1, sizeof(struct rf_roster));
    rf_buf_init(&f->raw1, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&f->raw2, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&f->raw3, RF_ROSTER_MAX_BYTES);

    f->r1->version = 1;
    add(f->r1, f->admin, RF_ROLE_ADMIN);
    if (rf_roster_sign(&f->raw1, f->r1, f->admin) != 0)
        return -1;

    f->r2->version = 2;
    rf_roster_hash(f->r2->prev_hash, f->raw1.data, f->raw1.len);
    add(f->r2, f->admin, RF_ROLE_ADMIN);
    add(f->r2, f->bob, RF_ROLE_ADMIN);
    add(f->r2, f->carol, RF_ROLE_MEMBER);
    if (rf_roster_sign(&f->raw2, f->r2, f->admin) != 0)
        return -1;

    f->r3->version = 3;
    rf_roster_hash(f->r3->prev_hash, f->raw2.data, f->raw2.len);
    add(f->r3, f->bob, RF_ROLE_ADMIN);
    add(f->r3, f->carol, RF_ROLE_MEMBER);
    if (rf_roster_sign(&f->raw3, f->r3, f->bob) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    sodium_free(f->admin);
    sodium_free(f->bob);
    sodium_free(f->carol);
    sodium_free(f->mallory);
    free(f->r1);
    free(f->r2);
    free(f->r3);
    free(f->got);
    rf_buf_free(&f->raw1);
    rf_buf_free(&f->raw2);
    rf_buf_free(&f->raw3);
    free(f);
    return 0;
}

static int verify1(struct fixture *f, const struct rf_buf *raw)
{
    return rf_roster_verify(f->got, raw->data, raw->len, NULL, NULL, 0, f->admin->sign_pk);
}

static int verify_next(struct fixture *f, const struct rf_buf *raw, const struct rf_roster *prev,
                       const struct rf_buf *prev_raw)
{
    return rf_roster_verify(f->got, raw->data, raw->len, prev, prev_raw->data, prev_raw->len, NULL);
}

static void chain_verifies(void **state)
{
    struct fixture *f = *state;
    struct rf_roster *v1 = calloc(1, sizeof(*v1)), *v2 = calloc(1, sizeof(*v2));
    assert_int_equal(
        rf_roster_verify(v1, f->raw1.data, f->raw1.len, NULL, NULL, 0, f->admin->sign_pk), 0);
    assert_int_equal(
        rf_roster_verify(v2, f->raw2.data, f->raw2.len, v1, f->raw1.data, f->raw1.len, NULL), 0);
    assert_int_equal(verify_next(f, &f->raw3, v2, &f->raw2), 0);
    assert_int_equal(f->got->version, 3);
    assert_int_equal(f->got->n, 2);
    assert_string_equal(f->got->members[1].name, "Кэрол");
    assert_memory_equal(f->got->members[1].box_pk, f->carol->box_pk, 32);
    assert_memory_equal(f->got->signer_pk, f->bob->sign_pk, 32);
    assert_int_equal(rf_roster_find(f->got, f->carol->sign_pk), 1);
    assert_int_equal(rf_roster_find(f->got, f->admin->sign_pk), -1);
    /* parse and re-sign give the same bytes: the encoding is canonical */
    struct rf_roster *p = calloc(1, sizeof(*p));
    assert_int_equal(rf_roster_parse(p, f->raw2.data, f->raw2.len), 0);
    struct rf_buf again;
    rf_buf_init(&again, RF_ROSTER_MAX_BYTES);
    assert_int_equal(rf_roster_sign(&again, p, f->admin), 0);
    assert_int_equal(again.len, f->raw2.len);
    assert_memory_equal(again.data, f->raw2.data, again.len); /* Ed25519 is deterministic */
    rf_buf_free(&again);
    free(p);
    free(v1);
    free(v2);
}

static void tampered_member_refused(void **state)
{
    struct fixture *f = *state;
    /* carol's box key is the last 64 bytes of her entry, before the trailer */
    size_t off = f->raw2.len - 96 - 64 + 3;
    f->raw2.data[off] ^= 1;
    assert_int_equal(verify_next(f, &f->raw2, f->r1, &f->raw1), RF_ERR_SIGNATURE);
    f->raw2.data[off] ^= 1;
    /* a role promoted: the byte before carol's box key */
    f->raw2.data[f->raw2.len - 96 - 65] = RF_ROLE_ADMIN;
    assert_int_equal(verify_next(f, &f->raw2, f->r1, &f->raw1), RF_ERR_SIGNATURE);
    f->raw2.data[f->raw2.len - 96 - 65] = RF_ROLE_MEMBER;
    assert_int_equal(verify_next(f, &f->raw2, f->r1, &f->raw1), 0);
    /* every single flipped byte is refused */
    for (size_t i = 0; i < f->raw2.len; i++) {
        f->raw2.data[i] ^= 0x20;
        assert_int_not_equal(verify_next(f, &f->raw2, f->r1, &f->raw1), 0);
        f->raw2.data[i] ^= 0x20;
    }
}

static void dropped_signature_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(
        rf_roster_verify(f->got, f->raw1.data, f->raw1.len - 64, NULL, NULL, 0, f->admin->sign_pk),
        RF_ERR_FORMAT);
    struct rf_buf z;
    rf_buf_init(&z, RF_ROSTER_MAX_BYTES);
    assert_int_equal(rf_buf_put(&z, f->raw1.data, f->raw1.len), 0);
    memset(z.data + z.len - 64, 0, 64);
    assert_int_equal(verify1(f, &z), RF_ERR_SIGNATURE);
    rf_buf_free(&z);
}

static void signer_not_admin_refused(void **state)
{
    struct fixture *f = *state;
    /* v3 signed by carol, a member of v2 but not an admin */
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    assert_int_equal(rf_roster_sign(&raw, f->r3, f->carol), 0);
    assert_int_equal(verify_next(f, &raw, f->r2, &f->raw2), RF_ERR_ROSTER);
    /* v3 signed by mallory, who is in no roster */
    rf_buf_reset(&raw);
    assert_int_equal(rf_roster_sign(&raw, f->r3, f->mallory), 0);
    assert_int_equal(verify_next(f, &raw, f->r2, &f->raw2), RF_ERR_ROSTER);
    /* v2 signed by bob, who becomes admin only in v2 itself */
    rf_buf_reset(&raw);
    assert_int_equal(rf_roster_sign(&raw, f->r2, f->bob), 0);
    assert_int_equal(verify_next(f, &raw, f->r1, &f->raw1), RF_ERR_ROSTER);
    /* a version 1 signed by anyone but the pinned admin, even listing them */
    struct rf_roster *r = calloc(1, sizeof(*r));
    r->version = 1;
    add(r, f->mallory, RF_ROLE_ADMIN);
    add(r, f->admin, RF_ROLE_ADMIN);
    rf_buf_reset(&raw);
    assert_int_equal(rf_roster_sign(&raw, r, f->mallory), 0);
    assert_int_equal(verify1(f, &raw), RF_ERR_ROSTER);
    /* the pinned admin signing a version 1 where they are only a member */
    memset(r, 0, sizeof(*r));
    r->version = 1;
    add(r, f->mallory, RF_ROLE_ADMIN);
    add(r, f->admin, RF_ROLE_MEMBER);
    rf_buf_reset(&raw);
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), 0);
    assert_int_equal(verify1(f, &raw), RF_ERR_ROSTER);
    free(r);
    rf_buf_free(&raw);
}

static void wrong_prev_hash_refused(void **state)
{
    struct fixture *f = *state;
    struct rf_roster *r = calloc(1, sizeof(*r));
    memcpy(r, f->r3, sizeof(*r));
    r->prev_hash[0] ^= 1;
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    assert_int_equal(rf_roster_sign(&raw, r, f->bob), 0);
    assert_int_equal(verify_next(f, &raw, f->r2, &f->raw2), RF_ERR_ROSTER);
    /* a version 1 with a non-zero prev_hash */
    memcpy(r, f->r1, sizeof(*r));
    r->prev_hash[31] = 1;
    rf_buf_reset(&raw);
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), 0);
    assert_int_equal(verify1(f, &raw), RF_ERR_ROSTER);
    free(r);
    rf_buf_free(&raw);
}

/* A server that wants the first admin back offers v1 again, or v2 again, as
 * the successor of v3; or skips a version. */
static void replay_refused(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(verify_next(f, &f->raw1, f->r3, &f->raw3), RF_ERR_ROSTER);
    assert_int_equal(verify_next(f, &f->raw2, f->r3, &f->raw3), RF_ERR_ROSTER);
    assert_int_equal(verify_next(f, &f->raw2, f->r2, &f->raw2), RF_ERR_ROSTER);
    assert_int_equal(verify_next(f, &f->raw3, f->r1, &f->raw1), RF_ERR_ROSTER);
    /* v3 presented as a first roster */
    assert_int_equal(verify1(f, &f->raw3), RF_ERR_ROSTER);
}

static void injected_member_refused(void **state)
{
    struct fixture *f = *state;
    /* splice mallory's entry into signed v3 and bump n */
    struct rf_roster *r = calloc(1, sizeof(*r));
    memcpy(r, f->r3, sizeof(*r));
    add(r, f->mallory, RF_ROLE_ADMIN);
    struct rf_buf forged, body;
    rf_buf_init(&forged, RF_ROSTER_MAX_BYTES);
    rf_buf_init(&body, RF_ROSTER_MAX_BYTES);
    assert_int_equal(rf_roster_sign(&body, r, f->mallory), 0);
    assert_int_equal(rf_buf_put(&forged, body.data, body.len - 96), 0);
    assert_int_equal(rf_buf_put(&forged, f->raw3.data + f->raw3.len - 96, 96), 0);
    assert_int_equal(verify_next(f, &forged, f->r2, &f->raw2), RF_ERR_SIGNATURE);
    /* self-signed by mallory: not an admin of v2 */
    assert_int_equal(verify_next(f, &body, f->r2, &f->raw2), RF_ERR_ROSTER);
    free(r);
    rf_buf_free(&forged);
    rf_buf_free(&body);
}

static void structure_rules(void **state)
{
    struct fixture *f = *state;
    struct rf_roster *r = calloc(1, sizeof(*r));
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    r->version = 1;
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), RF_ERR_INVALID); /* n = 0 */
    add(r, f->admin, RF_ROLE_MEMBER);
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), RF_ERR_ROSTER); /* no admin */
    r->members[0].role = RF_ROLE_ADMIN;
    add(r, f->bob, RF_ROLE_MEMBER);
    strcpy(r->members[1].name, "Admin");
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), RF_ERR_ROSTER); /* duplicate name */
    strcpy(r->members[1].name, "Bob");
    memcpy(r->members[1].box_pk, f->admin->box_pk, 32);
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), RF_ERR_ROSTER); /* duplicate key */
    memcpy(r->members[1].box_pk, f->bob->box_pk, 32);
    r->members[1].role = 7;
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), RF_ERR_INVALID);
    r->members[1].role = RF_ROLE_MEMBER;
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), 0);
    assert_int_equal(rf_roster_parse(r, raw.data, raw.len), 0);

    /* byte-level: bad magic, version, trailing byte, short, oversized */
    raw.data[0] = 'X';
    assert_int_equal(rf_roster_parse(r, raw.data, raw.len), RF_ERR_FORMAT);
    raw.data[0] = 'R';
    raw.data[4] = 2;
    assert_int_equal(rf_roster_parse(r, raw.data, raw.len), RF_ERR_VERSION);
    raw.data[4] = 1;
    assert_int_equal(rf_buf_put_u8(&raw, 0), 0);
    assert_int_equal(rf_roster_parse(r, raw.data, raw.len), RF_ERR_FORMAT);
    raw.len--;
    for (size_t cut = 0; cut < raw.len; cut++)
        assert_int_not_equal(rf_roster_parse(r, raw.data, cut), 0);
    /* n = 0 and n > max */
    raw.data[41] = 0, raw.data[42] = 0;
    assert_int_equal(rf_roster_parse(r, raw.data, raw.len), RF_ERR_FORMAT);
    raw.data[41] = 0x01, raw.data[42] = 0x01;
    assert_int_equal(rf_roster_parse(r, raw.data, raw.len), RF_ERR_LIMIT);
    uint8_t *big = calloc(1, RF_ROSTER_MAX_BYTES + 1);
    assert_int_equal(rf_roster_parse(r, big, RF_ROSTER_MAX_BYTES + 1), RF_ERR_LIMIT);
    free(big);
    free(r);
    rf_buf_free(&raw);
}

static void full_roster(void **state)
{
    struct fixture *f = *state;
    struct rf_roster *r = calloc(1, sizeof(*r));
    r->version = 1;
    add(r, f->admin, RF_ROLE_ADMIN);
    memset(r->members[0].name, 'a', RF_NAME_MAX);
    for (int i = 1; i < RF_ROSTER_MAX_MEMBERS; i++) {
        struct rf_member *m = &r->members[r->n++];
        memset(m->name, 'a', RF_NAME_MAX);
        m->name[0] = (char)('A' + i % 26);
        m->name[1] = (char)('A' + i / 26);
        randombytes_buf(m->box_pk, 32);
        randombytes_buf(m->sign_pk, 32);
    }
    struct rf_buf raw;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    assert_int_equal(rf_roster_sign(&raw, r, f->admin), 0);
    assert_true(raw.len <= RF_ROSTER_MAX_BYTES);
    assert_int_equal(verify1(f, &raw), 0);
    assert_int_equal(f->got->n, RF_ROSTER_MAX_MEMBERS);
    free(r);
    rf_buf_free(&raw);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(chain_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(tampered_member_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(dropped_signature_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(signer_not_admin_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(wrong_prev_hash_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(replay_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(injected_member_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(structure_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(full_roster, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
