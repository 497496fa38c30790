/* evop_test.c - the table of case-event operations (client/evop.h), walked
 * row by row as a caseworker's change travels: the usage example parses
 * into a value the op accepts and passes the checks made before signing
 * (with the default team and a roster that holds the example's caseworker);
 * the event builder signs it; the state machine verifies it and the value
 * lands in the register the row names, through that register's rule. Also
 * the table's own invariants (unique names that fit an event's op field,
 * every case op shown in `refuge help` with its usage, help and the desk's
 * word; a register rule for every row), and that case ops and team ops are
 * each refused on the other's case. */
#include "client/evop.h"
#include "client/out.h"
#include "client/state.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/event.h"
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

#define CASE_ID "abcdefgh23"

struct team {
    struct rf_staff_keys *admin, *vera;
    struct rf_roster *v1;
};

static void add(struct rf_roster *r, const struct rf_staff_keys *k, uint8_t role)
{
    struct rf_member *m = &r->members[r->n++];
    snprintf(m->name, sizeof(m->name), "%s", k->name);
    m->role = role;
    memcpy(m->box_pk, k->box_pk, 32);
    memcpy(m->sign_pk, k->sign_pk, 32);
}

static void team_new(struct team *t)
{
    t->admin = sodium_malloc(sizeof(*t->admin));
    t->vera = sodium_malloc(sizeof(*t->vera));
    assert_int_equal(rf_staff_keys_generate(t->admin, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(t->vera, "Vera"), 0);
    t->v1 = calloc(1, sizeof(*t->v1));
    t->v1->version = 1;
    add(t->v1, t->admin, RF_ROLE_ADMIN);
    add(t->v1, t->vera, RF_ROLE_MEMBER);
}

static void team_free(struct team *t)
{
    sodium_free(t->admin);
    sodium_free(t->vera);
    free(t->v1);
}

static void table_invariants(void **state)
{
    (void)state;
    struct rf_ev ev;
    size_t ncase = 0;
    assert_true(rf_evops_n > 0);
    for (size_t i = 0; i < rf_evops_n; i++) {
        const struct rf_evop *o = &rf_evops[i];
        assert_non_null(o->name);
        assert_true(strlen(o->name) > 0 && strlen(o->name) < sizeof(ev.op));
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(o->name, rf_evops[j].name);
        assert_ptr_equal(rf_evop_find(o->name), o);
        assert_ptr_equal(rf_evop_in(o->scope, o->name), o);
        assert_null(rf_evop_in(o->scope == RF_EVOP_CASE ? RF_EVOP_TEAM : RF_EVOP_CASE, o->name));
        assert_non_null(o->arg);
        assert_non_null(o->summary);
        assert_non_null(o->done);
        assert_non_null(o->example);
        assert_non_null(o->parse);
        assert_non_null(o->valid);
        assert_non_null(o->reg);
        if (rf_state_field(o) == NULL)
            fail_msg("op %s: no state rule in state.c fits its register %s", o->name, o->reg);
        assert_true(o->words == 0 || o->words == 1);
        if (o->scope == RF_EVOP_CASE) {
            ncase++;
            assert_non_null(o->help);
            assert_non_null(o->word); /* the desk names it in a case's history */
            assert_true(strncmp(o->word, "desk.op.", 8) == 0);
        } else {
            assert_false(o->form);
            assert_int_equal(o->write, RF_EVOP_PUT);
        }
    }
    assert_true(ncase >= 9);
    assert_null(rf_evop_find("nosuch"));
    assert_null(rf_evop_find(NULL));
}

/* The state's field for o after the events ev[0..n) (a new reference). */
static json_t *field_after(const struct rf_evop *o, const struct rf_ev *ev, size_t n)
{
    json_t *st = o->scope == RF_EVOP_TEAM ? rf_state_team(ev, n) : rf_state_case(ev, n);
    assert_non_null(st);
    json_t *f = json_object_get(st, rf_state_field(o));
    assert_non_null(f);
    json_incref(f);
    json_decref(st);
    return f;
}

/* Signs o with value as the admin at lamport, and verifies it back. */
static void sign_and_verify(const struct team *t, const struct rf_evop *o, const json_t *value,
                            uint64_t lamport, struct rf_ev *ev)
{
    const char *cid = o->scope == RF_EVOP_TEAM ? RF_STATE_TEAMCONFIG : CASE_ID;
    const struct rf_roster *rosters[1] = {t->v1};
    struct rf_buf b;
    rf_buf_init(&b, RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX);
    assert_int_equal(rf_evop_sign(&b, t->admin, cid, lamport, 1, 20000, o, value), 0);
    /* the wire format: lib/event.h's body, its fields in their order */
    const uint8_t *body = NULL;
    size_t blen = 0;
    uint8_t pk[32];
    assert_int_equal(rf_event_verify(pk, &body, &blen, b.data, b.len, cid), 0);
    char *text = calloc(1, blen + 1);
    memcpy(text, body, blen);
    char want[128];
    assert_true(strncmp(text, "{\"v\":1,\"id\":\"", 13) == 0);
    snprintf(want, sizeof(want), ",\"lamport\":%llu,\"roster\":1,\"author\":\"Anna\",",
             (unsigned long long)lamport);
    assert_non_null(strstr(text, want));
    snprintf(want, sizeof(want), ",\"day\":20000,\"op\":\"%s\",\"value\":", o->name);
    assert_non_null(strstr(text, want));
    free(text);
    assert_int_equal(rf_state_event_verify(ev, b.data, b.len, cid, rosters, 1, 1), 0);
    assert_string_equal(ev->op, o->name);
    assert_true(json_equal(ev->value, (json_t *)value));
    assert_int_equal(ev->lamport, lamport);
    rf_buf_free(&b);
}

/* The row of the same register that turns an entry on (for a REMOVE). */
static const struct rf_evop *adder_of(const struct rf_evop *o)
{
    for (size_t i = 0; i < rf_evops_n; i++)
        if (rf_evops[i].write == RF_EVOP_ADD && strcmp(rf_evops[i].reg, o->reg) == 0)
            return &rf_evops[i];
    return NULL;
}

/* Whether the register's shown value f has key on (a sorted set, or a map). */
static int entry_on(const json_t *f, const char *key)
{
    if (json_is_object(f))
        return json_is_true(json_object_get(f, key));
    size_t i;
    json_t *v;
    json_array_foreach(f, i, v)
    {
        if (strcmp(json_string_value(v), key) == 0)
            return 1;
    }
    return 0;
}

static void every_op_round_trips(void **state)
{
    (void)state;
    struct team t;
    team_new(&t);
    json_t *team = rf_state_team(NULL, 0);
    assert_non_null(team);
    for (size_t i = 0; i < rf_evops_n; i++) {
        const struct rf_evop *o = &rf_evops[i];
        print_message("op %s, example \"%s\"\n", o->name, o->example);
        /* the usage example parses into a value the op (and the state) accepts */
        json_t *v = o->parse(o->example);
        assert_non_null(v);
        assert_true(o->valid(v));
        assert_true(rf_state_op_valid(o->scope == RF_EVOP_TEAM ? RF_STATE_TEAMCONFIG : CASE_ID,
                                      o->name, v));
        /* ... and on the other kind of case it is no op at all */
        assert_false(rf_state_op_valid(o->scope == RF_EVOP_TEAM ? CASE_ID : RF_STATE_TEAMCONFIG,
                                       o->name, v));
        if (o->admit) {
            struct rf_evop_env env = {team, t.v1, NULL, CASE_ID};
            int schedule = -1;
            assert_int_equal(o->admit(&env, o->example, &schedule), 0);
        }
        struct rf_ev ev[2];
        memset(ev, 0, sizeof(ev));
        sign_and_verify(&t, o, v, 1, &ev[0]);
        json_t *f = NULL;
        switch (o->write) {
        case RF_EVOP_PUT:
            f = field_after(o, ev, 1);
            assert_true(json_equal(f, v));
            break;
        case RF_EVOP_ADD:
            f = field_after(o, ev, 1);
            assert_true(entry_on(f, json_string_value(v)));
            break;
        case RF_EVOP_REMOVE: {
            /* on by its register's ADD at lamport 1, off by this at 2 */
            const struct rf_evop *on = adder_of(o);
            assert_non_null(on);
            rf_ev_clear(&ev[0]);
            sign_and_verify(&t, on, v, 1, &ev[0]);
            f = field_after(o, ev, 1);
            assert_true(entry_on(f, json_string_value(v)));
            json_decref(f);
            sign_and_verify(&t, o, v, 2, &ev[1]);
            f = field_after(o, ev, 2);
            assert_false(entry_on(f, json_string_value(v)));
            break;
        }
        case RF_EVOP_APPEND:
            f = field_after(o, ev, 1);
            assert_int_equal(json_array_size(f), 1);
            assert_string_equal(json_string_value(json_object_get(json_array_get(f, 0), "text")),
                                o->example);
            break;
        }
        json_decref(f);
        rf_ev_clear(&ev[0]);
        rf_ev_clear(&ev[1]);
        json_decref(v);
    }
    json_decref(team);
    team_free(&t);
}

/* The checks before signing refuse what the team and the roster do not
 * know, and an argument that is no value of the op. */
static void checks_refuse_unknown_values(void **state)
{
    (void)state;
    struct team t;
    team_new(&t);
    json_t *team = rf_state_team(NULL, 0);
    struct rf_evop_env env = {team, t.v1, NULL, CASE_ID};
    int schedule = -1;
    assert_int_equal(rf_evop_in(RF_EVOP_CASE, "stage")->admit(&env, "nowhere", &schedule), -1);
    assert_int_equal(rf_evop_in(RF_EVOP_CASE, "stage")->admit(&env, "closed", &schedule), 0);
    assert_int_equal(schedule, 1); /* closing schedules the case's deletion */
    assert_int_equal(rf_evop_in(RF_EVOP_CASE, "assign")->admit(&env, "Mallory", &schedule), -1);
    assert_int_equal(rf_evop_in(RF_EVOP_CASE, "check")->admit(&env, "spaceship", &schedule), -1);
    assert_int_equal(rf_evop_in(RF_EVOP_CASE, "due")->admit(&env, "2023-02-29", &schedule), -1);
    assert_int_equal(rf_evop_in(RF_EVOP_CASE, "due")->admit(&env, "none", &schedule), 0);
    const struct rf_evop *tag = rf_evop_in(RF_EVOP_CASE, "tag");
    json_t *v = tag->parse("a\x01"
                           "b");
    assert_false(tag->valid(v)); /* control characters */
    json_decref(v);
    v = tag->parse("\xff");
    assert_null(v); /* not UTF-8 */
    const struct rf_evop *stages = rf_evop_in(RF_EVOP_TEAM, "stages");
    v = stages->parse("a,,b");
    assert_null(v); /* an empty name */
    v = stages->parse("a,b,a");
    assert_false(stages->valid(v)); /* twice */
    json_decref(v);
    json_decref(team);
    team_free(&t);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    rf_out_init(); /* as rf_client_main does: jansson memory is wiped on free */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(table_invariants),
        cmocka_unit_test(every_op_round_trips),
        cmocka_unit_test(checks_refuse_unknown_values),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
