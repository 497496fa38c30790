/* checkpoint_test.c - a checkpoint signed by an admin over the chain of
 * verified events verifies against the roster chain and matches the chain a
 * later client computes from the same events; any event changed, dropped,
 * reordered, inserted, moved to another case or seq makes the chains differ;
 * seqs that do not increase are refused; every bit of a checkpoint flipped,
 * every truncation, another version, a field out of its rules, and a signer
 * who is not an admin of every roster from the one named are refused. */
#include "lib/buf.h"
#include "lib/checkpoint.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"
#include "lib/keyfile.h"
#include "lib/roster.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NEV 6
#define CASE_A "q4mz7k2xea"
#define CASE_B "q4mz7k2xeb"

static struct rf_staff_keys *admin, *bob, *carol;
static struct rf_roster
    *rosters[3]; /* v1: Admin admin, Bob member; v2: both admins; v3: Bob gone */
static struct rf_buf events[NEV];
static const uint64_t seqs[NEV] = {2, 3, 5, 9, 10, 14};

static void member(struct rf_roster *r, const struct rf_staff_keys *k, uint8_t role)
{
    struct rf_member *m = &r->members[r->n++];
    snprintf(m->name, sizeof(m->name), "%s", k->name);
    m->role = role;
    memcpy(m->box_pk, k->box_pk, 32);
    memcpy(m->sign_pk, k->sign_pk, 32);
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    admin = sodium_malloc(sizeof(*admin));
    bob = sodium_malloc(sizeof(*bob));
    carol = sodium_malloc(sizeof(*carol));
    if (admin == NULL || bob == NULL || carol == NULL || rf_staff_keys_generate(admin, "Admin") ||
        rf_staff_keys_generate(bob, "Bob") || rf_staff_keys_generate(carol, "Carol"))
        return -1;
    for (int i = 0; i < 3; i++) {
        if ((rosters[i] = calloc(1, sizeof(*rosters[i]))) == NULL)
            return -1;
        rosters[i]->version = (uint32_t)i + 1;
        member(rosters[i], admin, RF_ROLE_ADMIN);
    }
    member(rosters[0], bob, RF_ROLE_MEMBER);
    member(rosters[1], bob, RF_ROLE_ADMIN);
    for (int i = 0; i < NEV; i++) {
        char body[128];
        int n = snprintf(body, sizeof(body),
                         "{\"v\":1,\"id\":\"%032d\",\"lamport\":%d,\"roster\":1,\"author\":"
                         "\"Admin\",\"day\":20000,\"op\":\"note\",\"value\":\"n%d\"}",
                         i, i + 1, i);
        rf_buf_init(&events[i], 1 << 16);
        if (rf_event_sign(&events[i], i % 2 ? bob : admin, i < 4 ? CASE_A : CASE_B,
                          (const uint8_t *)body, (size_t)n) != 0)
            return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sodium_free(admin);
    sodium_free(bob);
    sodium_free(carol);
    for (int i = 0; i < 3; i++)
        free(rosters[i]);
    for (int i = 0; i < NEV; i++)
        rf_buf_free(&events[i]);
    return 0;
}

static const char *case_of(int i)
{
    return i < 4 ? CASE_A : CASE_B;
}

/* The honest chain over events[0..n). */
static void honest_chain(struct rf_ckpt_chain *c, int n)
{
    rf_ckpt_chain_init(c);
    for (int i = 0; i < n; i++)
        assert_int_equal(
            rf_ckpt_chain_add(c, seqs[i], RF_KIND_EVENT, case_of(i), events[i].data, events[i].len),
            0);
}

static const struct rf_roster *const *all(void)
{
    return (const struct rf_roster *const *)rosters;
}

/* A checkpoint of the honest chain by k at roster version v. */
static void make(uint8_t out[RF_CKPT_BYTES], const struct rf_staff_keys *k, uint32_t v)
{
    struct rf_ckpt_chain c;
    honest_chain(&c, NEV);
    assert_int_equal(rf_ckpt_make(out, &c, v, k), 0);
}

/* Signs p's first 89 bytes as the document says, for checkpoints with
 * fields no honest maker writes. */
static void resign(uint8_t p[RF_CKPT_BYTES], const struct rf_staff_keys *k)
{
    uint8_t msg[20 + RF_CKPT_SIGNED_BYTES];
    memcpy(msg, "refuge-checkpoint-v1", 20);
    memcpy(p + 57, k->sign_pk, 32);
    memcpy(msg + 20, p, RF_CKPT_SIGNED_BYTES);
    assert_int_equal(
        crypto_sign_detached(p + RF_CKPT_SIGNED_BYTES, NULL, msg, sizeof(msg), k->sign_sk), 0);
}

static void round_trip(void **state)
{
    (void)state;
    uint8_t p[RF_CKPT_BYTES];
    make(p, admin, 1);
    assert_memory_equal(p, "RFCP\x01\x00\x00\x00\x01", 9);
    struct rf_ckpt ck;
    memset(&ck, 0, sizeof(ck));
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), all(), 1), 0);
    assert_int_equal(ck.roster_version, 1);
    assert_true(ck.last_seq == 14);
    assert_true(ck.count == NEV);
    assert_memory_equal(ck.signer_pk, admin->sign_pk, 32);
    /* a later client computes the same chain from the same events */
    struct rf_ckpt_chain c;
    honest_chain(&c, NEV);
    enum rf_ckpt_diff d = RF_CKPT_DIFF_CHAIN;
    assert_int_equal(rf_ckpt_compare(&ck, &c, &d), 0);
    assert_int_equal(d, RF_CKPT_SAME);
    assert_int_equal(rf_ckpt_compare(&ck, &c, NULL), 0);
    /* by hash: the same as by bytes */
    struct rf_ckpt_chain h;
    rf_ckpt_chain_init(&h);
    for (int i = 0; i < NEV; i++) {
        uint8_t eh[32];
        rf_ckpt_obj_hash(eh, events[i].data, events[i].len);
        assert_int_equal(rf_ckpt_chain_add_hash(&h, seqs[i], RF_KIND_EVENT, case_of(i), eh), 0);
    }
    assert_memory_equal(&h, &c, sizeof(c));
    /* deterministic: Ed25519 and BLAKE2b give the same bytes again */
    uint8_t again[RF_CKPT_BYTES];
    make(again, admin, 1);
    assert_memory_equal(p, again, sizeof(p));
    /* a chain continued past the checkpoint no longer equals it */
    assert_int_equal(
        rf_ckpt_chain_add(&c, 15, RF_KIND_EVENT, CASE_A, events[0].data, events[0].len), 0);
    assert_int_equal(rf_ckpt_compare(&ck, &c, &d), RF_ERR_SIGNATURE);
    assert_int_equal(d, RF_CKPT_DIFF_LAST_SEQ);
}

/* Feeds events in the order of idx (n of them) at seqs sq, each with the
 * case and kind given, and returns how the result compares to ck. */
struct feed {
    int idx;
    uint64_t seq;
    const char *case_id;
    uint8_t kind;
    int flip; /* flip a byte of the event at this offset (-1: none) */
};

static enum rf_ckpt_diff compare_fed(const struct rf_ckpt *ck, const struct feed *f, int n)
{
    struct rf_ckpt_chain c;
    rf_ckpt_chain_init(&c);
    for (int i = 0; i < n; i++) {
        struct rf_buf *e = &events[f[i].idx];
        if (f[i].flip >= 0)
            e->data[f[i].flip] ^= 0x01;
        int rc = rf_ckpt_chain_add(&c, f[i].seq, f[i].kind, f[i].case_id, e->data, e->len);
        if (f[i].flip >= 0)
            e->data[f[i].flip] ^= 0x01;
        assert_int_equal(rc, 0);
    }
    enum rf_ckpt_diff d = RF_CKPT_SAME;
    int rc = rf_ckpt_compare(ck, &c, &d);
    assert_int_equal(rc, d == RF_CKPT_SAME ? 0 : RF_ERR_SIGNATURE);
    return d;
}

static void honest_feed(struct feed *f)
{
    for (int i = 0; i < NEV; i++)
        f[i] = (struct feed){i, seqs[i], case_of(i), RF_KIND_EVENT, -1};
}

static void tampering_changes_the_chain(void **state)
{
    (void)state;
    uint8_t p[RF_CKPT_BYTES];
    make(p, admin, 1);
    struct rf_ckpt ck;
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), all(), 1), 0);
    struct feed f[NEV + 1];
    honest_feed(f);
    assert_int_equal(compare_fed(&ck, f, NEV), RF_CKPT_SAME);
    /* any byte of any event changed: author, signature or body */
    for (int i = 0; i < NEV; i++)
        for (size_t off = 0; off < events[i].len; off += 7) {
            honest_feed(f);
            f[i].flip = (int)off;
            assert_int_equal(compare_fed(&ck, f, NEV), RF_CKPT_DIFF_CHAIN);
        }
    /* moved to another case, or named another kind */
    honest_feed(f);
    f[1].case_id = CASE_B;
    assert_int_equal(compare_fed(&ck, f, NEV), RF_CKPT_DIFF_CHAIN);
    honest_feed(f);
    f[2].kind = 3;
    assert_int_equal(compare_fed(&ck, f, NEV), RF_CKPT_DIFF_CHAIN);
    /* another seq, the same order */
    honest_feed(f);
    f[2].seq = 6;
    assert_int_equal(compare_fed(&ck, f, NEV), RF_CKPT_DIFF_CHAIN);
    /* two events swapped (seqs kept in order) */
    honest_feed(f);
    f[2].idx = 3;
    f[3].idx = 2;
    f[2].case_id = f[3].case_id = CASE_A;
    assert_int_equal(compare_fed(&ck, f, NEV), RF_CKPT_DIFF_CHAIN);
    /* one dropped in the middle: the count; the last one: the last seq */
    honest_feed(f);
    memmove(&f[2], &f[3], (NEV - 3) * sizeof(f[0]));
    assert_int_equal(compare_fed(&ck, f, NEV - 1), RF_CKPT_DIFF_COUNT);
    honest_feed(f);
    assert_int_equal(compare_fed(&ck, f, NEV - 1), RF_CKPT_DIFF_LAST_SEQ);
    /* one inserted (seq 4, between 3 and 5) */
    honest_feed(f);
    memmove(&f[3], &f[2], (NEV - 2) * sizeof(f[0]));
    f[2] = (struct feed){0, 4, CASE_A, RF_KIND_EVENT, -1};
    assert_int_equal(compare_fed(&ck, f, NEV + 1), RF_CKPT_DIFF_COUNT);
    /* the same count and last seq, a different set: drop one, insert another */
    honest_feed(f);
    f[1] = (struct feed){1, 4, CASE_A, RF_KIND_EVENT, -1};
    assert_int_equal(compare_fed(&ck, f, NEV), RF_CKPT_DIFF_CHAIN);
}

static void bad_adds_refused(void **state)
{
    (void)state;
    struct rf_ckpt_chain c, before;
    honest_chain(&c, 3); /* last seq 5 */
    before = c;
    const uint8_t *e = events[0].data;
    size_t n = events[0].len;
    assert_int_equal(rf_ckpt_chain_add(&c, 5, RF_KIND_EVENT, CASE_A, e, n), RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add(&c, 4, RF_KIND_EVENT, CASE_A, e, n), RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add(&c, 0, RF_KIND_EVENT, CASE_A, e, n), RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add(&c, RF_CKPT_SEQ_MAX + 1, RF_KIND_EVENT, CASE_A, e, n),
                     RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add(&c, 6, 0, CASE_A, e, n), RF_ERR_INVALID);
    const char *bad_cases[] = {"q4mz7k2xe", "q4mz7k2xea1", "q4mz7k2x-a", "", "q4mz7k2xe\xc3"};
    for (size_t i = 0; i < sizeof(bad_cases) / sizeof(bad_cases[0]); i++)
        assert_int_equal(rf_ckpt_chain_add(&c, 6, RF_KIND_EVENT, bad_cases[i], e, n),
                         RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add(&c, 6, RF_KIND_EVENT, NULL, e, n), RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add(&c, 6, RF_KIND_EVENT, CASE_A, NULL, n), RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add(&c, 6, RF_KIND_EVENT, CASE_A, e, 0), RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_chain_add_hash(&c, 6, RF_KIND_EVENT, CASE_A, NULL), RF_ERR_INVALID);
    assert_memory_equal(&c, &before, sizeof(c));
    assert_int_equal(rf_ckpt_chain_add(&c, RF_CKPT_SEQ_MAX, RF_KIND_EVENT, CASE_A, e, n), 0);
    assert_true(c.count == 4 && c.last_seq == RF_CKPT_SEQ_MAX);
    /* nothing to sign in an empty chain; no roster version 0 */
    uint8_t p[RF_CKPT_BYTES];
    struct rf_ckpt_chain empty;
    rf_ckpt_chain_init(&empty);
    assert_int_equal(rf_ckpt_make(p, &empty, 1, admin), RF_ERR_INVALID);
    assert_int_equal(rf_ckpt_make(p, &before, 0, admin), RF_ERR_INVALID);
}

static void every_bit_flipped_refused(void **state)
{
    (void)state;
    uint8_t p[RF_CKPT_BYTES];
    make(p, admin, 2);
    struct rf_ckpt ck;
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), all(), 3), 0);
    for (size_t i = 0; i < sizeof(p); i++)
        for (int bit = 0; bit < 8; bit++) {
            p[i] ^= (uint8_t)(1u << bit);
            memset(&ck, 0xa5, sizeof(ck));
            int rc = rf_ckpt_verify(&ck, p, sizeof(p), all(), 3);
            if (i < 4)
                assert_int_equal(rc, RF_ERR_FORMAT);
            else if (i == 4)
                assert_int_equal(rc, RF_ERR_VERSION);
            else if (rc != RF_ERR_SIGNATURE && rc != RF_ERR_FORMAT)
                fail_msg("byte %zu bit %d: %d", i, bit, rc);
            assert_int_equal(ck.count, UINT64_C(0xa5a5a5a5a5a5a5a5)); /* out untouched */
            p[i] ^= (uint8_t)(1u << bit);
        }
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), all(), 3), 0);
}

static void truncated_and_extended(void **state)
{
    (void)state;
    uint8_t p[RF_CKPT_BYTES + 1];
    make(p, admin, 1);
    struct rf_ckpt ck;
    for (size_t n = 0; n < RF_CKPT_BYTES; n++) {
        assert_int_equal(rf_ckpt_parse(&ck, p, n), RF_ERR_TRUNCATED);
        assert_int_equal(rf_ckpt_verify(&ck, p, n, all(), 1), RF_ERR_TRUNCATED);
    }
    p[RF_CKPT_BYTES] = 0;
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), all(), 1), RF_ERR_FORMAT);
    /* another magic, refused from its first differing byte */
    assert_int_equal(rf_ckpt_parse(&ck, (const uint8_t *)"RG", 2), RF_ERR_FORMAT);
    assert_int_equal(rf_ckpt_parse(&ck, (const uint8_t *)"RFGV\x01", 5), RF_ERR_FORMAT);
}

static void versions_and_fields(void **state)
{
    (void)state;
    uint8_t p[RF_CKPT_BYTES];
    struct rf_ckpt ck;
    const uint8_t versions[] = {0, 2, 255};
    for (size_t i = 0; i < sizeof(versions); i++) {
        make(p, admin, 1);
        p[4] = versions[i];
        resign(p, admin); /* signed or not, another version is not read */
        assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), all(), 1), RF_ERR_VERSION);
        assert_int_equal(rf_ckpt_verify(&ck, p, 5, all(), 1), RF_ERR_VERSION);
    }
    /* fields out of their rules, validly signed: roster 0, count 0, count
     * above last seq, last seq above the bound */
    static const struct {
        size_t off, len;
        uint64_t v;
    } bad[] = {{5, 4, 0}, {17, 8, 0}, {17, 8, 15}, {9, 8, RF_CKPT_SEQ_MAX + 1}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        make(p, admin, 1);
        for (size_t b = 0; b < bad[i].len; b++)
            p[bad[i].off + b] = (uint8_t)(bad[i].v >> (8 * (bad[i].len - 1 - b)));
        resign(p, admin);
        assert_int_equal(rf_ckpt_parse(&ck, p, sizeof(p)), RF_ERR_FORMAT);
    }
    /* the signature covers the domain: one over the bare bytes is refused */
    make(p, admin, 1);
    assert_int_equal(crypto_sign_detached(p + RF_CKPT_SIGNED_BYTES, NULL, p, RF_CKPT_SIGNED_BYTES,
                                          admin->sign_sk),
                     0);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), all(), 1), RF_ERR_SIGNATURE);
    /* the documented domain is the one the library uses */
    make(p, admin, 1);
    uint8_t q[RF_CKPT_BYTES];
    memcpy(q, p, sizeof(q));
    resign(q, admin);
    assert_memory_equal(p, q, sizeof(p));
}

static void signer_must_be_admin(void **state)
{
    (void)state;
    uint8_t p[RF_CKPT_BYTES];
    struct rf_ckpt ck;
    const struct rf_roster *const *r = all();
    /* Bob is a member in v1, an admin in v2, gone in v3 */
    make(p, bob, 1);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 1), RF_ERR_ROSTER);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 2), RF_ERR_ROSTER);
    make(p, bob, 2);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 2), 0);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 3), RF_ERR_ROSTER);
    /* Carol is on no roster */
    make(p, carol, 1);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 3), RF_ERR_ROSTER);
    /* Admin's key, another's name in the signer field: the signature fails */
    make(p, admin, 1);
    memcpy(p + 57, bob->sign_pk, 32);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 3), RF_ERR_SIGNATURE);
    /* a roster version the client has not verified, or no rosters */
    make(p, admin, 3);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 3), 0);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 2), RF_ERR_ROSTER);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), NULL, 0), RF_ERR_ROSTER);
    /* the rosters must be versions 1..n in order */
    const struct rf_roster *swapped[3] = {rosters[0], rosters[2], rosters[1]};
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), swapped, 3), RF_ERR_ROSTER);
    /* Admin demoted in a later roster: an older checkpoint no longer counts */
    rosters[2]->members[0].role = RF_ROLE_MEMBER;
    make(p, admin, 1);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 2), 0);
    assert_int_equal(rf_ckpt_verify(&ck, p, sizeof(p), r, 3), RF_ERR_ROSTER);
    rosters[2]->members[0].role = RF_ROLE_ADMIN;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(tampering_changes_the_chain),
        cmocka_unit_test(bad_adds_refused),
        cmocka_unit_test(every_bit_flipped_refused),
        cmocka_unit_test(truncated_and_extended),
        cmocka_unit_test(versions_and_fields),
        cmocka_unit_test(signer_must_be_admin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
