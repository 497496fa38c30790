/*
 * evop.c - the table of case-event operations (see evop.h) and what its
 * rows point at: the argument parsers, the value checks (the same ones run
 * on every event received) and the checks against the team and the roster
 * made before anything is signed.
 *
 * To add an op, add a row below; if it writes a register no op wrote
 * before, give the register its rule in state.c; give the desk its word in
 * po/en.po, po/ru.po and po/uk.po (desk.op.NAME). Nothing else names ops.
 */
#include "client/evop.h"
#include "client/cmd.h"
#include "client/local.h"
#include "client/out.h"
#include "client/state.h"
#include "lib/err.h"
#include "lib/event.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RF_MSGID(s) (s)

/* ------------------------------------------------------------- parsers */

static json_t *parse_string(const char *arg)
{
    return json_string(arg);
}

/* "a, b ,c" -> ["a","b","c"] (trimmed, empty parts refused). */
static json_t *parse_list(const char *s)
{
    json_t *a = json_array();
    while (a && *s) {
        const char *e = strchr(s, ',');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        const char *p = s;
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ')
            n--;
        json_t *v = n ? json_stringn(p, n) : NULL;
        if (!v || json_array_append_new(a, v) != 0) { /* append frees v when it fails */
            json_decref(a);
            return NULL;
        }
        s = e ? e + 1 : s + strlen(s);
    }
    return a;
}

/* -------------------------------------------------------------- values */

int rf_evop_name_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int valid_name(const json_t *v)
{
    return json_is_string(v) && rf_evop_name_ok(json_string_value(v), RF_STATE_VALUE_MAX);
}

/* A note: any text (newlines too), 1..RF_EVENT_BODY_MAX bytes. */
static int valid_text(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && s[0] != '\0' && strlen(s) <= RF_EVENT_BODY_MAX;
}

static int valid_day(const json_t *v)
{
    const char *s = json_string_value(v);
    return s && (strcmp(s, "none") == 0 || rf_state_date(s, NULL));
}

/* 1..RF_STATE_LIST_MAX distinct names of at most RF_STATE_NAME_MAX bytes. */
static int valid_list(const json_t *v)
{
    if (!json_is_array(v) || json_array_size(v) == 0 || json_array_size(v) > RF_STATE_LIST_MAX)
        return 0;
    for (size_t i = 0; i < json_array_size(v); i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e) || !rf_evop_name_ok(json_string_value(e), RF_STATE_NAME_MAX))
            return 0;
        for (size_t j = 0; j < i; j++)
            if (json_equal(e, json_array_get(v, j)))
                return 0;
    }
    return 1;
}

/* ------------------------------------------------- checks before signing */

/* Prints "refuge: what; one of: a, b, c" to stderr. */
static void print_choices(const char *what, const json_t *list)
{
    size_t i;
    json_t *v;
    fprintf(stderr, "refuge: %s; one of:", what);
    json_array_foreach(list, i, v)
    {
        fputs(i ? ", " : " ", stderr);
        rf_out_safe(stderr, json_string_value(v), 0);
    }
    fputc('\n', stderr);
}

/* One of the team's stages; closing schedules the case's deletion, moving
 * it out of "closed" cancels that. */
static int admit_stage(const struct rf_evop_env *env, const char *arg, int *schedule)
{
    const json_t *stages = json_object_get(env->team, "stages");
    json_t *sum = NULL;
    if (!rf_state_in_list(stages, arg)) {
        print_choices("unknown stage", stages);
        return -1;
    }
    const char *cur = "new";
    if (env->l && rf_local_summary(env->l, env->case_id, &sum) == 0 &&
        json_is_string(json_object_get(sum, "stage")))
        cur = json_string_value(json_object_get(sum, "stage"));
    if (strcmp(arg, "closed") == 0)
        *schedule = 1;
    else if (strcmp(cur, "closed") == 0)
        *schedule = 0;
    json_decref(sum);
    return 0;
}

static int admit_item(const struct rf_evop_env *env, const char *arg, int *schedule)
{
    const json_t *list = json_object_get(env->team, "checklist");
    (void)schedule;
    if (rf_state_in_list(list, arg))
        return 0;
    print_choices("not on the team's checklist", list);
    return -1;
}

static int admit_member(const struct rf_evop_env *env, const char *arg, int *schedule)
{
    const struct rf_roster *ro = env->ro;
    (void)schedule;
    for (uint16_t i = 0; i < ro->n; i++)
        if (strcmp(ro->members[i].name, arg) == 0)
            return 0;
    json_t *names = json_array();
    for (uint16_t i = 0; i < ro->n; i++)
        json_array_append_new(names, json_string(ro->members[i].name));
    print_choices("not a caseworker on the roster", names);
    json_decref(names);
    return -1;
}

static int admit_day(const struct rf_evop_env *env, const char *arg, int *schedule)
{
    (void)env, (void)schedule;
    if (strcmp(arg, "none") == 0 || rf_state_date(arg, NULL))
        return 0;
    rf_cmd_err("bad date", "give a real date as YYYY-MM-DD, or \"none\" to clear it");
    return -1;
}

/* --------------------------------------------------------------- table */

const struct rf_evop rf_evops[] = {
    {
        .name = "stage",
        .arg = "STAGE",
        .summary = "move a case to a stage",
        .help = "Moves the case to STAGE, one of the team's stages (`refuge team show`).\n"
                "Closing a case also schedules its deletion on the server after the\n"
                "retention period; moving it out of \"closed\" cancels that.",
        .done = "moved to",
        .echo = 1,
        .example = "planning",
        .words = 1,
        .parse = parse_string,
        .valid = valid_name,
        .admit = admit_stage,
        .reg = "stage",
        .write = RF_EVOP_PUT,
        .word = RF_MSGID("desk.op.stage"),
        .form = 0, /* the case page has a stage form of its own */
    },
    {
        .name = "assign",
        .arg = "NAME",
        .summary = "assign a case to a caseworker",
        .help = "Assigns the case to NAME, a caseworker on the roster.",
        .done = "assigned to",
        .echo = 1,
        .example = "Vera",
        .words = 1,
        .parse = parse_string,
        .valid = valid_name,
        .admit = admit_member,
        .reg = "assignee",
        .write = RF_EVOP_ADD,
        .word = RF_MSGID("desk.op.assign"),
        .form = 1,
    },
    {
        .name = "unassign",
        .arg = "NAME",
        .summary = "take a caseworker off a case",
        .help = "Takes NAME off the case.",
        .done = "unassigned",
        .echo = 1,
        .example = "Vera",
        .words = 1,
        .parse = parse_string,
        .valid = valid_name,
        .reg = "assignee",
        .write = RF_EVOP_REMOVE,
        .word = RF_MSGID("desk.op.unassign"),
        .form = 1,
    },
    {
        .name = "tag",
        .arg = "TAG",
        .summary = "tag a case",
        .help = "Adds TAG to the case.",
        .done = "tagged",
        .echo = 1,
        .example = "urgent",
        .words = 1,
        .parse = parse_string,
        .valid = valid_name,
        .reg = "tag",
        .write = RF_EVOP_ADD,
        .word = RF_MSGID("desk.op.tag"),
        .form = 1,
    },
    {
        .name = "untag",
        .arg = "TAG",
        .summary = "remove a tag from a case",
        .help = "Removes TAG from the case.",
        .done = "untagged",
        .echo = 1,
        .example = "urgent",
        .words = 1,
        .parse = parse_string,
        .valid = valid_name,
        .reg = "tag",
        .write = RF_EVOP_REMOVE,
        .word = RF_MSGID("desk.op.untag"),
        .form = 1,
    },
    {
        .name = "note",
        .arg = "TEXT",
        .summary = "add a note to a case (caseworkers only)",
        .help = "Adds a note. Notes are sealed to the caseworkers only; the person never\n"
                "sees them.",
        .done = "note added",
        .echo = 0, /* the text stays off the terminal's scrollback */
        .example = "called the lawyer; back on Monday",
        .words = 0,
        .parse = parse_string,
        .valid = valid_text,
        .reg = "note",
        .write = RF_EVOP_APPEND,
        .word = RF_MSGID("desk.op.note"),
        .form = 1,
    },
    {
        .name = "check",
        .arg = "ITEM",
        .summary = "mark a checklist item done",
        .help = "Marks ITEM of the team's checklist done.",
        .done = "checked",
        .echo = 1,
        .example = "passport",
        .words = 1,
        .parse = parse_string,
        .valid = valid_name,
        .admit = admit_item,
        .reg = "check",
        .write = RF_EVOP_ADD,
        .word = RF_MSGID("desk.op.check"),
        .form = 1,
    },
    {
        .name = "uncheck",
        .arg = "ITEM",
        .summary = "mark a checklist item not done",
        .help = "Marks ITEM of the team's checklist not done.",
        .done = "unchecked",
        .echo = 1,
        .example = "passport",
        .words = 1,
        .parse = parse_string,
        .valid = valid_name,
        .admit = admit_item,
        .reg = "check",
        .write = RF_EVOP_REMOVE,
        .word = RF_MSGID("desk.op.uncheck"),
        .form = 1,
    },
    {
        .name = "due",
        .arg = "YYYY-MM-DD|none",
        .summary = "set or clear a case's due date",
        .help = "Sets the case's due date, or clears it with \"none\".",
        .done = "due date",
        .echo = 1,
        .example = "2031-05-17",
        .words = 1,
        .parse = parse_string,
        .valid = valid_day,
        .admit = admit_day,
        .reg = "due",
        .write = RF_EVOP_PUT,
        .word = RF_MSGID("desk.op.due"),
        .form = 1,
    },
    {
        .name = "stages",
        .scope = RF_EVOP_TEAM,
        .arg = "new,verifying,planning,...",
        .summary = "the team's case stages",
        .done = "stages",
        .example = "new, checking ,done",
        .words = 1,
        .parse = parse_list,
        .valid = valid_list,
        .reg = "stages",
        .write = RF_EVOP_PUT,
    },
    {
        .name = "checklist",
        .scope = RF_EVOP_TEAM,
        .arg = "passport,visa,route,...",
        .summary = "the team's checklist",
        .done = "checklist",
        .example = "passport,visa,bank card",
        .words = 1,
        .parse = parse_list,
        .valid = valid_list,
        .reg = "checklist",
        .write = RF_EVOP_PUT,
    },
};

const size_t rf_evops_n = sizeof(rf_evops) / sizeof(rf_evops[0]);

const struct rf_evop *rf_evop_find(const char *name)
{
    for (size_t i = 0; name && i < rf_evops_n; i++)
        if (strcmp(rf_evops[i].name, name) == 0)
            return &rf_evops[i];
    return NULL;
}

const struct rf_evop *rf_evop_in(enum rf_evop_scope scope, const char *name)
{
    const struct rf_evop *o = rf_evop_find(name);
    return o && o->scope == scope ? o : NULL;
}

/* ------------------------------------------------------------- signing */

int rf_evop_sign(struct rf_buf *signed_ev, const struct rf_staff_keys *k, const char *case_id,
                 uint64_t lamport, uint32_t roster, uint32_t day, const struct rf_evop *o,
                 const json_t *value)
{
    uint8_t rid[16];
    char id[RF_STATE_ID_HEX + 1];
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
    /* the body's fields and their order are the wire format (lib/event.h) */
    json_t *body = json_pack("{sisssIsIsssIsssO}", "v", 1, "id", id, "lamport", (json_int_t)lamport,
                             "roster", (json_int_t)roster, "author", k->name, "day",
                             (json_int_t)day, "op", o->name, "value", (json_t *)value);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s)
        return RF_ERR_NOMEM;
    int rc = rf_event_sign(signed_ev, k, case_id, (const uint8_t *)s, strlen(s));
    rf_out_json_free(s);
    return rc;
}
