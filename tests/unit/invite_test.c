/* invite_test.c - the invite token (lib/invite.h) and the client's check
 * that a roster names it with its own keys (trust.c, issue 13 findings 1
 * and 2). */
#include "client/trust.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/invite.h"
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

static const char SERVER[] = "JipF6pO_cfhkBgwL7v1Ff67D8IacKVqOhdra3ZlMt20";

static void round_trip(void **state)
{
    (void)state;
    uint8_t sign[32], box[32], pin[RF_INVITE_PIN_BYTES], want[RF_INVITE_PIN_BYTES];
    char tok[RF_INVITE_CHARS + 1], srv[RF_INVITE_TOKEN_MAX + 1];
    enum rf_token_kind kind = 0;
    randombytes_buf(sign, 32);
    randombytes_buf(box, 32);
    assert_int_equal(rf_invite_encode(tok, sizeof(tok), SERVER, sign, box), 0);
    assert_int_equal(strlen(tok), 66);
    assert_int_equal(tok[0], 'i');
    assert_int_equal(rf_invite_parse(tok, strlen(tok), &kind, srv, sizeof(srv), pin), 0);
    assert_int_equal(kind, RF_TOKEN_INVITE);
    assert_string_equal(srv, SERVER);
    rf_invite_pin(want, sign, box);
    assert_memory_equal(pin, want, sizeof(pin));
    /* the pin covers the encryption key too */
    box[0] ^= 1;
    rf_invite_pin(want, sign, box);
    assert_memory_not_equal(pin, want, sizeof(pin));
    /* the server token never appears whole at the start (a cut token is no token) */
    assert_true(strncmp(tok, SERVER, 43) != 0);
    assert_int_equal(rf_invite_encode(tok, RF_INVITE_CHARS, SERVER, sign, box), RF_ERR_LIMIT);
    assert_int_equal(rf_invite_encode(tok, sizeof(tok), "short", sign, box), RF_ERR_FORMAT);
}

static void plain_and_damaged(void **state)
{
    (void)state;
    uint8_t pin[RF_INVITE_PIN_BYTES];
    char srv[RF_INVITE_TOKEN_MAX + 1], big[RF_INVITE_TOKEN_MAX + 2];
    enum rf_token_kind kind = 0;
    /* the first admin's token is passed through as it is */
    assert_int_equal(rf_invite_parse(SERVER, strlen(SERVER), &kind, srv, sizeof(srv), pin), 0);
    assert_int_equal(kind, RF_TOKEN_PLAIN);
    assert_string_equal(srv, SERVER);
    /* a 66-character 'i' token whose pin is not canonical base64url */
    char tok[RF_INVITE_CHARS + 1];
    memset(tok, 'A', RF_INVITE_CHARS);
    tok[0] = 'i';
    tok[RF_INVITE_PIN_CHARS] = 'B'; /* padding bits set */
    tok[RF_INVITE_CHARS] = 0;
    assert_int_equal(rf_invite_parse(tok, strlen(tok), &kind, srv, sizeof(srv), pin),
                     RF_ERR_FORMAT);
    tok[RF_INVITE_PIN_CHARS] = 'Q'; /* canonical */
    assert_int_equal(rf_invite_parse(tok, strlen(tok), &kind, srv, sizeof(srv), pin), 0);
    assert_int_equal(kind, RF_TOKEN_INVITE);
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    assert_int_equal(rf_invite_parse(big, strlen(big), &kind, srv, sizeof(srv), pin), RF_ERR_LIMIT);
    assert_int_equal(rf_invite_parse("", 0, &kind, srv, sizeof(srv), pin), RF_ERR_LIMIT);
    assert_int_equal(rf_invite_parse("i\0x", 3, &kind, srv, sizeof(srv), pin), RF_ERR_LIMIT);
}

static struct rf_staff_keys *keys(const char *name)
{
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    assert_non_null(k);
    assert_int_equal(rf_staff_keys_generate(k, name), 0);
    return k;
}

static void add(struct rf_roster *ro, const struct rf_staff_keys *k, const char *name,
                const uint8_t *box)
{
    struct rf_member *m = &ro->members[ro->n++];
    memset(m, 0, sizeof(*m));
    strcpy(m->name, name);
    m->role = RF_ROLE_ADMIN;
    memcpy(m->sign_pk, k->sign_pk, 32);
    memcpy(m->box_pk, box ? box : k->box_pk, 32);
}

static void self_check(void **state)
{
    (void)state;
    struct rf_staff_keys *bob = keys("Bob"), *eve = keys("Eve"), *ann = keys("Ann");
    struct rf_roster *ro = calloc(1, sizeof(*ro));
    assert_non_null(ro);
    /* Bob's own keys, or Bob absent: fine */
    add(ro, ann, "Ann", NULL);
    assert_int_equal(rf_trust_self_check(ro, bob), 0);
    add(ro, bob, "Bob", NULL);
    assert_int_equal(rf_trust_self_check(ro, bob), 0);
    assert_int_equal(rf_trust_self_check(ro, NULL), 0);
    /* Bob's signing key with Eve's encryption key */
    ro->n = 1;
    add(ro, bob, "Bob", eve->box_pk);
    assert_int_equal(rf_trust_self_check(ro, bob), RF_ERR_ROSTER);
    /* ... even under another name */
    strcpy(ro->members[1].name, "Robert");
    assert_int_equal(rf_trust_self_check(ro, bob), RF_ERR_ROSTER);
    /* Bob's name with Eve's whole key pair */
    ro->n = 1;
    add(ro, eve, "Bob", NULL);
    assert_int_equal(rf_trust_self_check(ro, bob), RF_ERR_ROSTER);
    /* Eve, as herself, is no concern of Bob's */
    strcpy(ro->members[1].name, "Eve");
    assert_int_equal(rf_trust_self_check(ro, bob), 0);
    free(ro);
    sodium_free(bob);
    sodium_free(eve);
    sodium_free(ann);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip),
        cmocka_unit_test(plain_and_damaged),
        cmocka_unit_test(self_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
