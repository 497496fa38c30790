/* materialize_test.c - the concurrency rule as a caseworker sees it: every
 * order of arrival of the same events gives the same case state; each
 * register (stage, due, assignee, tag, checklist item) takes its last value
 * in (lamport, author key, id) order; notes are all kept; copies of one event
 * count once; events that are forged, moved to another case, or written by
 * someone not on every roster version from the one they name to the one in
 * force when the server stored them are refused; an event whose lamport runs
 * too far ahead is ignored; the team's stages and checklist change only by
 * an admin's event. */
#include "client/state.h"
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
#include <time.h>

static void ev_make(struct rf_ev *e, uint64_t lamport, uint8_t author, const char *id,
                    const char *op, json_t *value, int64_t seq)
{
    memset(e, 0, sizeof(*e));
    snprintf(e->id, sizeof(e->id), "%032x", (unsigned)strtoul(id, NULL, 16));
    e->lamport = lamport;
    memset(e->author_pk, author, 32);
    snprintf(e->author, sizeof(e->author), "author%u", (unsigned)author);
    e->day = 20000 + (uint32_t)lamport;
    snprintf(e->op, sizeof(e->op), "%s", op);
    e->value = value;
    e->seq = seq;
    e->admin = author == 1;
}

static json_t *str(const char *s)
{
    return json_string(s);
}

/* Two caseworkers (authors 1 and 2) editing one case concurrently. */
static size_t sample(struct rf_ev *ev)
{
    size_t n = 0;
    ev_make(&ev[n++], 1, 1, "1", "stage", str("verifying"), 10);
    ev_make(&ev[n++], 2, 2, "2", "stage", str("planning"), 11);
    ev_make(&ev[n++], 2, 1, "3", "stage", str("in transit"), 12); /* same lamport: key 1 < 2 */
    ev_make(&ev[n++], 1, 2, "4", "assign", str("Boris"), 13);
    ev_make(&ev[n++], 3, 1, "5", "unassign", str("Boris"), 14);
    ev_make(&ev[n++], 3, 2, "6", "assign", str("Vera"), 15);
    ev_make(&ev[n++], 1, 1, "7", "tag", str("urgent"), 16);
    ev_make(&ev[n++], 4, 2, "8", "untag", str("urgent"), 17);
    ev_make(&ev[n++], 4, 1, "9", "tag", str("family"), 18);
    ev_make(&ev[n++], 2, 1, "a", "note", str("first note"), 19);
    ev_make(&ev[n++], 2, 2, "b", "note", str("concurrent note"), 20);
    ev_make(&ev[n++], 5, 2, "c", "check", str("passport"), 21);
    ev_make(&ev[n++], 5, 1, "d", "uncheck", str("passport"), 22); /* key 1 < 2: check wins */
    ev_make(&ev[n++], 5, 1, "e", "check", str("visa"), 23);
    ev_make(&ev[n++], 6, 2, "f", "due", str("2030-01-31"), 24);
    ev_make(&ev[n++], 6, 1, "10", "due", str("none"), 25); /* 1 < 2: the date wins */
    return n;
}

static void free_all(struct rf_ev *ev, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rf_ev_clear(&ev[i]);
}

static void registers_take_last_value_in_rule_order(void **state)
{
    (void)state;
    struct rf_ev ev[32];
    size_t n = sample(ev);
    json_t *s = rf_state_case(ev, n);
    assert_non_null(s);
    assert_string_equal(json_string_value(json_object_get(s, "stage")), "planning");
    json_t *as = json_object_get(s, "assigned");
    assert_int_equal(json_array_size(as), 1);
    assert_string_equal(json_string_value(json_array_get(as, 0)), "Vera");
    json_t *tags = json_object_get(s, "tags");
    assert_int_equal(json_array_size(tags), 1);
    assert_string_equal(json_string_value(json_array_get(tags, 0)), "family");
    json_t *ck = json_object_get(s, "checklist");
    assert_true(json_is_true(json_object_get(ck, "passport")));
    assert_true(json_is_true(json_object_get(ck, "visa")));
    assert_string_equal(json_string_value(json_object_get(s, "due")), "2030-01-31");
    json_t *notes = json_object_get(s, "notes");
    assert_int_equal(json_array_size(notes), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 0), "text")),
                        "first note");
    assert_string_equal(json_string_value(json_object_get(json_array_get(notes, 1), "text")),
                        "concurrent note");
    assert_int_equal(json_integer_value(json_object_get(s, "lamport")), 6);
    json_decref(s);

    /* no events: the default stage, nothing set */
    s = rf_state_case(NULL, 0);
    assert_string_equal(json_string_value(json_object_get(s, "stage")), "new");
    assert_true(json_is_null(json_object_get(s, "due")));
    json_decref(s);
    free_all(ev, n);
}

static void every_order_gives_the_same_state(void **state)
{
    (void)state;
    struct rf_ev ev[32], perm[32];
    size_t n = sample(ev);
    json_t *want = rf_state_case(ev, n);
    char *want_s = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    /* reversed, rotated, and many random shuffles */
    for (int round = 0; round < 500; round++) {
        for (size_t i = 0; i < n; i++)
            perm[i] = ev[i];
        if (round == 0) {
            for (size_t i = 0; i < n; i++)
                perm[i] = ev[n - 1 - i];
        } else if (round < (int)n) {
            for (size_t i = 0; i < n; i++)
                perm[i] = ev[(i + (size_t)round) % n];
        } else {
            for (size_t i = n - 1; i > 0; i--) {
                size_t j = randombytes_uniform((uint32_t)i + 1);
                struct rf_ev t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        json_t *got = rf_state_case(perm, n);
        char *got_s = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(got_s, want_s);
        free(got_s);
        json_decref(got);
    }
    /* two clients that received the events in two batches, either first */
    json_t *a = rf_state_case(ev, n);
    assert_true(json_equal(a, want));
    json_decref(a);
    free(want_s);
    json_decref(want);
    free_all(ev, n);
}

static void copies_of_one_event_count_once(void **state)
{
    (void)state;
    struct rf_ev ev[4];
    ev_make(&ev[0], 1, 1, "1", "note", str("hello"), 0); /* still in the outbox */
    ev_make(&ev[1], 1, 1, "1", "note", str("hello"), 7); /* the server's copy */
    ev_make(&ev[2], 1, 1, "1", "note", str("hello"), 9); /* replayed by the server */
    json_t *s = rf_state_case(ev, 3);
    json_t *notes = json_object_get(s, "notes");
    assert_int_equal(json_array_size(notes), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(notes, 0), "seq")), 7);
    json_decref(s);
    free_all(ev, 3);
}

/* ---- verification against signed events and rosters ---- */

struct team {
    struct rf_staff_keys *admin, *member, *outsider;
    struct rf_roster *v1, *v2;
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
    t->member = sodium_malloc(sizeof(*t->member));
    t->outsider = sodium_malloc(sizeof(*t->outsider));
    assert_int_equal(rf_staff_keys_generate(t->admin, "Anna"), 0);
    assert_int_equal(rf_staff_keys_generate(t->member, "Boris"), 0);
    assert_int_equal(rf_staff_keys_generate(t->outsider, "Mallory"), 0);
    t->v1 = calloc(1, sizeof(*t->v1));
    t->v2 = calloc(1, sizeof(*t->v2));
    t->v1->version = 1;
    add(t->v1, t->admin, RF_ROLE_ADMIN);
    t->v2->version = 2;
    add(t->v2, t->admin, RF_ROLE_ADMIN);
    add(t->v2, t->member, RF_ROLE_MEMBER);
}

static void team_free(struct team *t)
{
    sodium_free(t->admin);
    sodium_free(t->member);
    sodium_free(t->outsider);
    free(t->v1);
    free(t->v2);
}

static void signed_event(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                         unsigned roster, const char *op, const char *value_json)
{
    char body[1024];
    char id[33];
    uint8_t raw[16];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2hex(id, sizeof(id), raw, sizeof(raw));
    snprintf(body, sizeof(body),
             "{\"v\":1,\"id\":\"%s\",\"lamport\":3,\"roster\":%u,\"author\":\"whoever\","
             "\"day\":20100,\"op\":\"%s\",\"value\":%s}",
             id, roster, op, value_json);
    rf_buf_reset(out);
    assert_int_equal(rf_event_sign(out, k, case_id, (const uint8_t *)body, strlen(body)), 0);
}

static void only_roster_members_events_verify(void **state)
{
    (void)state;
    struct team t;
    team_new(&t);
    const struct rf_roster *rosters[2] = {t.v1, t.v2};
    struct rf_buf b;
    struct rf_ev e;
    rf_buf_init(&b, 1 << 20);

    signed_event(&b, t.member, "abcde23456", 2, "stage", "\"planning\"");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 2), 0);
    assert_string_equal(e.author, "Boris"); /* the roster's name, not the body's */
    assert_string_equal(e.op, "stage");
    assert_string_equal(json_string_value(e.value), "planning");
    assert_int_equal(e.lamport, 3);
    assert_false(e.admin);
    rf_ev_clear(&e);

    /* the server moved it to another case */
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "zzzzz23456", rosters, 2, 2),
                     RF_ERR_SIGNATURE);
    /* a flipped byte in the body */
    b.data[b.len - 3] ^= 1;
    assert_int_not_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 2), 0);

    /* Boris was not on version 1 */
    signed_event(&b, t.member, "abcde23456", 1, "stage", "\"planning\"");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 2),
                     RF_ERR_ROSTER);
    /* a version this client has not verified */
    signed_event(&b, t.admin, "abcde23456", 3, "stage", "\"planning\"");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 0),
                     RF_ERR_ROSTER);
    /* someone never on the roster */
    signed_event(&b, t.outsider, "abcde23456", 2, "note", "\"let me in\"");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 2),
                     RF_ERR_ROSTER);
    /* bad values */
    signed_event(&b, t.admin, "abcde23456", 2, "due", "\"2030-02-30\"");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 2),
                     RF_ERR_FORMAT);
    signed_event(&b, t.admin, "abcde23456", 2, "explode", "\"x\"");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 2),
                     RF_ERR_FORMAT);
    signed_event(&b, t.admin, "abcde23456", 2, "stages", "[\"a\",\"b\"]");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 2, 2),
                     RF_ERR_FORMAT); /* team ops only on teamconfig */
    rf_buf_free(&b);
    team_free(&t);
}

static void teamconfig_changes_only_by_admins(void **state)
{
    (void)state;
    struct team t;
    team_new(&t);
    const struct rf_roster *rosters[2] = {t.v1, t.v2};
    struct rf_buf b;
    struct rf_ev ev[3];
    rf_buf_init(&b, 1 << 20);

    json_t *def = rf_state_team(NULL, 0);
    assert_int_equal(json_array_size(json_object_get(def, "stages")), 9);
    assert_true(rf_state_in_list(json_object_get(def, "stages"), "in transit"));
    assert_true(rf_state_in_list(json_object_get(def, "checklist"), "lawyer"));

    signed_event(&b, t.admin, RF_STATE_TEAMCONFIG, 2, "stages", "[\"new\",\"safe\",\"closed\"]");
    assert_int_equal(
        rf_state_event_verify(&ev[0], b.data, b.len, RF_STATE_TEAMCONFIG, rosters, 2, 2), 0);
    assert_true(ev[0].admin);
    signed_event(&b, t.member, RF_STATE_TEAMCONFIG, 2, "checklist", "[\"bribe\"]");
    assert_int_equal(
        rf_state_event_verify(&ev[1], b.data, b.len, RF_STATE_TEAMCONFIG, rosters, 2, 2), 0);
    assert_false(ev[1].admin);
    /* case ops are not team ops */
    signed_event(&b, t.admin, RF_STATE_TEAMCONFIG, 2, "stage", "\"closed\"");
    assert_int_equal(
        rf_state_event_verify(&ev[2], b.data, b.len, RF_STATE_TEAMCONFIG, rosters, 2, 2),
        RF_ERR_FORMAT);

    json_t *s = rf_state_team(ev, 2);
    json_t *st = json_object_get(s, "stages");
    assert_int_equal(json_array_size(st), 3);
    assert_string_equal(json_string_value(json_array_get(st, 1)), "safe");
    /* the member's checklist did not count */
    assert_true(json_equal(json_object_get(s, "checklist"), json_object_get(def, "checklist")));
    json_decref(s);
    json_decref(def);
    free_all(ev, 2);
    rf_buf_free(&b);
    team_free(&t);
}

/* Issue 13, finding 3: the author must hold on EVERY roster version from
 * the one the event names up to the one in force when the server stored it,
 * and the server's claim of that version must be one it can make. */
static void events_hold_on_every_roster_up_to_the_one_stored_under(void **state)
{
    (void)state;
    struct team t;
    team_new(&t);
    /* v3: Boris removed; v4: Anna demoted to member, Boris back as admin */
    struct rf_roster *v3 = calloc(1, sizeof(*v3)), *v4 = calloc(1, sizeof(*v4));
    v3->version = 3;
    add(v3, t.admin, RF_ROLE_ADMIN);
    v4->version = 4;
    add(v4, t.admin, RF_ROLE_MEMBER);
    add(v4, t.member, RF_ROLE_ADMIN);
    const struct rf_roster *rosters[4] = {t.v1, t.v2, v3, v4};
    struct rf_buf b;
    struct rf_ev e;
    rf_buf_init(&b, 1 << 20);

    /* Boris's event naming v2, stored while v2 was in force: counts, also
     * when read after his removal (rosters 3 and 4 verified since) */
    signed_event(&b, t.member, "abcde23456", 2, "stage", "\"planning\"");
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 4, 2), 0);
    assert_int_equal(e.roster, 2);
    assert_int_equal(e.stored, 2);
    rf_ev_clear(&e);
    /* the same event stored after his removal (v3 or later): refused, even
     * though he is on v4 again */
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 4, 3),
                     RF_ERR_ROSTER);
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 4, 4),
                     RF_ERR_ROSTER);
    /* stored before schema 3 (0): only the version named counts */
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 4, 0), 0);
    rf_ev_clear(&e);
    /* claims the server cannot make: stored before the version named, or
     * under a version this client has not verified */
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 4, 1),
                     RF_ERR_PROTOCOL);
    assert_int_equal(rf_state_event_verify(&e, b.data, b.len, "abcde23456", rosters, 4, 5),
                     RF_ERR_PROTOCOL);

    /* Anna, demoted in v4, changes the team's stages naming v3 (admin):
     * stored under v3 it is an admin's; stored under v4 it is not */
    struct rf_ev ev[2];
    signed_event(&b, t.admin, RF_STATE_TEAMCONFIG, 3, "stages", "[\"new\",\"gone\"]");
    assert_int_equal(
        rf_state_event_verify(&ev[0], b.data, b.len, RF_STATE_TEAMCONFIG, rosters, 4, 3), 0);
    assert_true(ev[0].admin);
    rf_ev_clear(&ev[0]);
    assert_int_equal(
        rf_state_event_verify(&ev[0], b.data, b.len, RF_STATE_TEAMCONFIG, rosters, 4, 4), 0);
    assert_false(ev[0].admin); /* still a member: her case events would count */
    assert_string_equal(ev[0].author, "Anna");
    ev[0].seq = 40;
    json_t *s = rf_state_team(ev, 1);
    assert_int_equal(json_array_size(json_object_get(s, "stages")), 9); /* the defaults */
    json_decref(s);
    /* Boris, admin in v4, naming v4 */
    signed_event(&b, t.member, RF_STATE_TEAMCONFIG, 4, "checklist", "[\"visa\"]");
    assert_int_equal(
        rf_state_event_verify(&ev[1], b.data, b.len, RF_STATE_TEAMCONFIG, rosters, 4, 4), 0);
    assert_true(ev[1].admin);
    ev[1].seq = 41;
    s = rf_state_team(ev, 2);
    assert_int_equal(json_array_size(json_object_get(s, "checklist")), 1);
    json_decref(s);
    free_all(ev, 2);
    rf_buf_free(&b);
    free(v3);
    free(v4);
    team_free(&t);
}

/* Issue 13, finding 3: an event whose lamport runs more than
 * RF_STATE_LAMPORT_STEP ahead of the case's events before it (in the
 * server's order) is ignored, so a forged 2^53 cannot win for ever. */
static void a_lamport_far_ahead_is_ignored(void **state)
{
    (void)state;
    struct rf_ev ev[6], perm[6];
    const uint64_t huge = (uint64_t)1 << 53;
    ev_make(&ev[0], 1, 1, "1", "stage", str("verifying"), 10);
    ev_make(&ev[1], huge, 2, "2", "stage", str("closed"), 11); /* forged: ignored */
    ev_make(&ev[2], 2, 1, "3", "stage", str("planning"), 12);
    ev_make(&ev[3], 3, 2, "4", "tag", str("x"), 13);
    /* exactly the bound ahead of the highest so far (3): kept */
    ev_make(&ev[4], 3 + RF_STATE_LAMPORT_STEP, 1, "5", "assign", str("Vera"), 14);
    /* one more than the bound ahead of that: ignored */
    ev_make(&ev[5], 4 + 2 * RF_STATE_LAMPORT_STEP, 2, "6", "assign", str("Mallory"), 15);
    json_t *s = rf_state_case(ev, 6);
    assert_string_equal(json_string_value(json_object_get(s, "stage")), "planning");
    json_t *as = json_object_get(s, "assigned");
    assert_int_equal(json_array_size(as), 1);
    assert_string_equal(json_string_value(json_array_get(as, 0)), "Vera");
    assert_int_equal(json_integer_value(json_object_get(s, "lamport")),
                     (json_int_t)(3 + RF_STATE_LAMPORT_STEP));
    char *want = json_dumps(s, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(s);

    unsigned char keep[6];
    assert_int_equal(rf_state_bound(ev, 6, keep), 0);
    const unsigned char kept[6] = {1, 0, 1, 1, 1, 0};
    assert_memory_equal(keep, kept, 6);

    /* the same in any order of the input array (the server's seq decides) */
    for (int round = 0; round < 200; round++) {
        for (size_t i = 0; i < 6; i++)
            perm[i] = ev[i];
        for (size_t i = 5; i > 0; i--) {
            size_t j = randombytes_uniform((uint32_t)i + 1);
            struct rf_ev tmp = perm[i];
            perm[i] = perm[j];
            perm[j] = tmp;
        }
        json_t *got = rf_state_case(perm, 6);
        char *got_s = json_dumps(got, JSON_SORT_KEYS | JSON_COMPACT);
        assert_string_equal(got_s, want);
        free(got_s);
        json_decref(got);
    }
    free(want);

    /* an honest event after the forged one wins: its lamport (max kept + 1)
     * is within the bound */
    ev_make(&perm[0], 1, 1, "1", "stage", str("verifying"), 10);
    ev_make(&perm[1], huge, 2, "2", "stage", str("closed"), 11);
    ev_make(&perm[2], 2, 1, "3", "stage", str("safe"), 0); /* not sent yet */
    s = rf_state_case(perm, 3);
    assert_string_equal(json_string_value(json_object_get(s, "stage")), "safe");
    json_decref(s);
    /* the team's settings too */
    struct rf_ev team[2];
    ev_make(&team[0], huge, 1, "7", "stages", json_pack("[ss]", "new", "x"), 3);
    ev_make(&team[1], 1, 1, "8", "stages", json_pack("[ss]", "new", "safe"), 4);
    s = rf_state_team(team, 2);
    assert_string_equal(json_string_value(json_array_get(json_object_get(s, "stages"), 1)), "safe");
    json_decref(s);
    free_all(team, 2);
    free_all(perm, 3);
    free_all(ev, 6);
}

static void dates_are_real_dates(void **state)
{
    (void)state;
    uint32_t d = 0;
    assert_true(rf_state_date("2024-01-01", &d));
    assert_int_equal(d, 19723);
    assert_true(rf_state_date("2024-02-29", NULL));
    assert_false(rf_state_date("2023-02-29", NULL));
    assert_false(rf_state_date("2024-13-01", NULL));
    assert_false(rf_state_date("2024-1-01", NULL));
    assert_false(rf_state_date("tomorrow", NULL));
    assert_false(rf_state_date("2024-01-01x", NULL));
    assert_false(rf_state_date("2024-01-0", NULL));
    assert_false(rf_state_date("", NULL));
    assert_false(rf_state_date("1969-12-31", NULL));
    assert_false(rf_state_date("2024-00-10", NULL));
    assert_false(rf_state_date("2024-01-00", NULL));
    assert_false(rf_state_date("2024-01-32", NULL));
    assert_false(rf_state_date("2024/01/01", NULL));
    assert_false(rf_state_date("2024-0a-01", NULL));
    assert_false(rf_state_date("+024-01-01", NULL));
    assert_false(rf_state_date("1900-02-29", NULL));
    assert_false(rf_state_date("2100-02-29", NULL));
    assert_true(rf_state_date("2000-02-29", NULL));
}

/* The hand-checked parse against the libc route it replaced (sscanf, then
 * timegm, which normalises an impossible date into the next month): the
 * same answer for every day number 00 to 39 of every month 00 to 13 of
 * years around the epoch, the leap rules' centuries and the last years. */
static void dates_agree_with_timegm(void **state)
{
    (void)state;
    static const int spans[][2] = {{1965, 2110}, {2390, 2410}, {9990, 9999}};
    for (size_t k = 0; k < sizeof(spans) / sizeof(spans[0]); k++)
        for (int y = spans[k][0]; y <= spans[k][1]; y++)
            for (int m = 0; m <= 13; m++)
                for (int d = 0; d <= 39; d++) {
                    char s[16];
                    snprintf(s, sizeof(s), "%04d-%02d-%02d", y, m, d);
                    struct tm tm = {
                        .tm_year = y - 1900, .tm_mon = m - 1, .tm_mday = d, .tm_hour = 12};
                    time_t t = timegm(&tm);
                    int want = y >= 1970 && m >= 1 && m <= 12 && d >= 1 && t != (time_t)-1 &&
                               tm.tm_mday == d && tm.tm_mon == m - 1;
                    uint32_t day = 0;
                    assert_int_equal(rf_state_date(s, &day), want);
                    if (want)
                        assert_int_equal(day, (uint32_t)(t / 86400));
                }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(registers_take_last_value_in_rule_order),
        cmocka_unit_test(every_order_gives_the_same_state),
        cmocka_unit_test(copies_of_one_event_count_once),
        cmocka_unit_test(only_roster_members_events_verify),
        cmocka_unit_test(teamconfig_changes_only_by_admins),
        cmocka_unit_test(events_hold_on_every_roster_up_to_the_one_stored_under),
        cmocka_unit_test(a_lamport_far_ahead_is_ignored),
        cmocka_unit_test(dates_are_real_dates),
        cmocka_unit_test(dates_agree_with_timegm),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
