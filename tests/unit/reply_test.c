/* reply_test.c - signed replies (finding 9 of the trust review): a reply
 * signed by a caseworker verifies for its case only; any changed byte, a
 * swapped signer key, or another case is refused; and a colleague's client
 * (client/replysig.c) shows an author only from a verified signature whose
 * key is on a verified roster, never the name a reply carries inside it. */
#include "client/out.h"
#include "client/replysig.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/reply.h"
#include "lib/roster.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define CASE "q4mz7k2xea"

static struct rf_staff_keys *alice, *bob, *mallory;

static struct rf_staff_keys *staff(const char *name, uint8_t fill)
{
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    assert_non_null(k);
    memset(k, 0, sizeof(*k));
    strcpy(k->name, name);
    uint8_t seed[32];
    memset(seed, fill, sizeof(seed));
    crypto_sign_seed_keypair(k->sign_pk, k->sign_sk, seed);
    crypto_box_keypair(k->box_pk, k->box_sk);
    return k;
}

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    rf_out_init(); /* the client's wiping jansson allocator, as in the CLI */
    alice = staff("Alice", 1);
    bob = staff("Bob", 2);
    mallory = staff("Mallory", 3);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sodium_free(alice);
    sodium_free(bob);
    sodium_free(mallory);
    return 0;
}

static void add(struct rf_roster *r, const struct rf_staff_keys *k)
{
    struct rf_member *m = &r->members[r->n++];
    strcpy(m->name, k->name);
    m->role = RF_ROLE_MEMBER;
    memcpy(m->sign_pk, k->sign_pk, 32);
    memcpy(m->box_pk, k->box_pk, 32);
}

static void sign_verify_round_trip(void **state)
{
    (void)state;
    const char *body = "{\"v\":2,\"type\":\"reply\",\"text\":\"hi\"}";
    struct rf_buf r;
    rf_buf_init(&r, 1 << 20);
    assert_int_equal(rf_reply_sign(&r, alice, CASE, (const uint8_t *)body, strlen(body)), 0);
    assert_int_equal(r.len, RF_REPLY_HEADER_BYTES + strlen(body));
    assert_memory_equal(r.data, "RFGY\x02", 5);
    assert_true(rf_reply_signed(r.data, r.len));
    assert_false(rf_reply_signed((const uint8_t *)body, strlen(body)));
    uint8_t pk[32];
    const uint8_t *b = NULL;
    size_t n = 0;
    assert_int_equal(rf_reply_verify(pk, &b, &n, r.data, r.len, CASE), 0);
    assert_memory_equal(pk, alice->sign_pk, 32);
    assert_int_equal(n, strlen(body));
    assert_memory_equal(b, body, n);
    /* moved to another case */
    assert_int_equal(rf_reply_verify(pk, &b, &n, r.data, r.len, "q4mz7k2xeb"), RF_ERR_SIGNATURE);
    /* every byte matters */
    for (size_t i = 5; i < r.len; i++) {
        r.data[i] ^= 0x01;
        int rc = rf_reply_verify(pk, &b, &n, r.data, r.len, CASE);
        assert_true(rc == RF_ERR_SIGNATURE || rc == RF_ERR_FORMAT);
        r.data[i] ^= 0x01;
    }
    /* Bob puts Alice's key in the signer field and signs himself */
    struct rf_buf f;
    rf_buf_init(&f, 1 << 20);
    assert_int_equal(rf_reply_sign(&f, bob, CASE, (const uint8_t *)body, strlen(body)), 0);
    memcpy(f.data + 5, alice->sign_pk, 32);
    assert_int_equal(rf_reply_verify(pk, &b, &n, f.data, f.len, CASE), RF_ERR_SIGNATURE);
    /* framing */
    assert_int_equal(rf_reply_verify(pk, &b, &n, r.data, RF_REPLY_HEADER_BYTES, CASE),
                     RF_ERR_TRUNCATED);
    assert_int_equal(rf_reply_verify(pk, &b, &n, r.data, 20, CASE), RF_ERR_TRUNCATED);
    r.data[4] = 1;
    assert_int_equal(rf_reply_verify(pk, &b, &n, r.data, r.len, CASE), RF_ERR_VERSION);
    r.data[4] = 2;
    assert_int_equal(rf_reply_verify(pk, &b, &n, r.data, r.len, "short"), RF_ERR_INVALID);
    assert_int_equal(rf_reply_split(pk, &b, &n, (const uint8_t *)"RFGV", 4), RF_ERR_FORMAT);
    assert_int_equal(rf_reply_sign(&f, alice, CASE, (const uint8_t *)"a\0b", 3), RF_ERR_FORMAT);
    assert_int_equal(rf_reply_sign(&f, alice, CASE, (const uint8_t *)"", 0), RF_ERR_FORMAT);
    rf_buf_free(&r);
    rf_buf_free(&f);
}

/* What a colleague's client shows for plaintext p of case CASE. */
static json_t *shown(const struct rf_buf *p, const struct rf_roster *const *ros, size_t n)
{
    json_t *j = NULL;
    assert_int_equal(rf_replysig_read(&j, p->data, p->len, CASE, ros, n), 0);
    return j;
}

static void colleagues_see_only_proven_authors(void **state)
{
    (void)state;
    struct rf_roster *v1 = calloc(1, sizeof(*v1)), *v2 = calloc(1, sizeof(*v2));
    v1->version = 1;
    add(v1, alice);
    add(v1, bob);
    v2->version = 2;
    add(v2, alice); /* Bob was removed in version 2 */
    const struct rf_roster *ros[2] = {v1, v2};
    struct rf_buf p;
    json_t *j;

    /* honest: Alice's signed reply shows Alice, from the roster */
    rf_buf_init_secure(&p, 1 << 20);
    assert_int_equal(rf_replysig_compose(&p, alice, CASE, (const uint8_t *)"We read you", 11), 0);
    j = shown(&p, ros, 2);
    assert_string_equal(json_string_value(json_object_get(j, "author")), "Alice");
    assert_true(json_is_true(json_object_get(j, "author_verified")));
    assert_null(json_object_get(j, "former"));
    assert_string_equal(json_string_value(json_object_get(j, "text")), "We read you");
    json_decref(j);
    /* the same reply read for another case: text shown, no author */
    json_t *k = NULL;
    assert_int_equal(rf_replysig_read(&k, p.data, p.len, "zzzzzzzzzz", ros, 2), 0);
    assert_false(json_is_true(json_object_get(k, "author_verified")));
    assert_string_equal(json_string_value(json_object_get(k, "author")), "");
    json_decref(k);
    rf_buf_free(&p);

    /* a removed member's signed reply: named, and flagged as former */
    rf_buf_init_secure(&p, 1 << 20);
    assert_int_equal(rf_replysig_compose(&p, bob, CASE, (const uint8_t *)"x", 1), 0);
    j = shown(&p, ros, 2);
    assert_string_equal(json_string_value(json_object_get(j, "author")), "Bob");
    assert_true(json_is_true(json_object_get(j, "former")));
    json_decref(j);
    rf_buf_free(&p);

    /* a key on no roster: no name, whatever the reply says */
    rf_buf_init_secure(&p, 1 << 20);
    assert_int_equal(rf_replysig_compose(&p, mallory, CASE, (const uint8_t *)"x", 1), 0);
    j = shown(&p, ros, 2);
    assert_false(json_is_true(json_object_get(j, "author_verified")));
    assert_string_equal(json_string_value(json_object_get(j, "author")), "");
    json_decref(j);
    rf_buf_free(&p);

    /* a version 1 (unsigned) reply claiming Alice: text shown, not her name */
    const char *v1json = "{\"v\":1,\"type\":\"reply\",\"author\":\"Alice\",\"text\":\"forged\"}";
    rf_buf_init_secure(&p, 1 << 20);
    assert_int_equal(rf_buf_put(&p, v1json, strlen(v1json)), 0);
    j = shown(&p, ros, 2);
    assert_false(json_is_true(json_object_get(j, "author_verified")));
    assert_string_equal(json_string_value(json_object_get(j, "author")), "");
    assert_string_equal(json_string_value(json_object_get(j, "text")), "forged");
    json_decref(j);
    rf_buf_free(&p);

    /* a signed body that carries an "author" of its own changes nothing */
    const char *body = "{\"v\":2,\"type\":\"reply\",\"author\":\"Alice\",\"text\":\"t\"}";
    rf_buf_init_secure(&p, 1 << 20);
    assert_int_equal(rf_reply_sign(&p, mallory, CASE, (const uint8_t *)body, strlen(body)), 0);
    j = shown(&p, ros, 2);
    assert_string_equal(json_string_value(json_object_get(j, "author")), "");
    json_decref(j);
    rf_buf_free(&p);

    /* neither format */
    rf_buf_init_secure(&p, 1 << 20);
    assert_int_equal(rf_buf_put(&p, "RFGYjunk", 8), 0);
    j = NULL;
    assert_int_equal(rf_replysig_read(&j, p.data, p.len, CASE, ros, 2), RF_ERR_FORMAT);
    assert_null(j);
    rf_buf_free(&p);
    free(v1);
    free(v2);
}

/* rf_reply_text into a fresh secure buf of max; the status, and the text
 * as a C string in out (cap bytes). */
static int text_of(const char *in, size_t n, size_t max, char *out, size_t cap)
{
    struct rf_buf t;
    rf_buf_init_secure(&t, max);
    int rc = rf_reply_text(&t, (const uint8_t *)in, n);
    assert_true(t.len < cap);
    memcpy(out, t.len ? (const char *)t.data : "", t.len);
    out[t.len] = 0;
    rf_buf_free(&t);
    return rc;
}

/* What the person's inbox shows of a reply: its text only (never an author),
 * from version 1 JSON or a signed version 2 reply, within the limits. */
static void person_reads_the_text_only(void **state)
{
    (void)state;
    char out[256];
    const char *v1 = "{\"v\":1,\"type\":\"reply\",\"author\":\"Anna\",\"text\":\"We read it.\"}";
    assert_int_equal(text_of(v1, strlen(v1), 1024, out, sizeof(out)), 0);
    assert_string_equal(out, "We read it.");
    const char *esc = "{\"text\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" a\\/b\\n\"}";
    assert_int_equal(text_of(esc, strlen(esc), 1024, out, sizeof(out)), 0);
    assert_string_equal(out, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" a/b\n");

    /* version 2: the body after the signed framing */
    const char *body = "{\"v\":2,\"type\":\"reply\",\"text\":\"signed text\"}";
    struct rf_buf p;
    rf_buf_init(&p, 4096);
    assert_int_equal(rf_reply_sign(&p, alice, CASE, (const uint8_t *)body, strlen(body)), 0);
    assert_int_equal(text_of((const char *)p.data, p.len, 1024, out, sizeof(out)), 0);
    assert_string_equal(out, "signed text");
    rf_buf_free(&p);

    /* no text, or not a string: an empty text, not an error */
    assert_int_equal(text_of("{\"v\":1}", 7, 1024, out, sizeof(out)), 0);
    assert_string_equal(out, "");
    assert_int_equal(text_of("{\"text\":[1]}", 12, 1024, out, sizeof(out)), 0);
    assert_string_equal(out, "");

    /* refused: not an object, duplicate keys, malformed, trailing bytes */
    static const char *const bad[] = {
        "[\"text\"]",          "{\"text\":\"a\",\"text\":\"b\"}",
        "{\"text\":\"cut",     "{\"text\":\"x\"} y",
        "{\"text\":\"\xff\"}", "",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(text_of(bad[i], strlen(bad[i]), 1024, out, sizeof(out)), RF_ERR_FORMAT);

    /* limits: nesting, an author too long, the caller's text limit */
    char deep[200];
    int k = snprintf(deep, sizeof(deep), "{\"x\":");
    for (int i = 0; i < 40; i++)
        deep[k++] = '[';
    for (int i = 0; i < 40; i++)
        deep[k++] = ']';
    k += snprintf(deep + k, sizeof(deep) - (size_t)k, ",\"text\":\"t\"}");
    assert_int_equal(text_of(deep, (size_t)k, 1024, out, sizeof(out)), RF_ERR_LIMIT);
    char longa[1200];
    k = snprintf(longa, sizeof(longa), "{\"author\":\"");
    memset(longa + k, 'a', RF_REPLY_AUTHOR_MAX + 1);
    k += RF_REPLY_AUTHOR_MAX + 1;
    k += snprintf(longa + k, sizeof(longa) - (size_t)k, "\",\"text\":\"t\"}");
    assert_int_equal(text_of(longa, (size_t)k, 1024, out, sizeof(out)), RF_ERR_LIMIT);
    assert_int_equal(text_of(v1, strlen(v1), 4, out, sizeof(out)), RF_ERR_LIMIT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(sign_verify_round_trip),
        cmocka_unit_test(colleagues_see_only_proven_authors),
        cmocka_unit_test(person_reads_the_text_only),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
