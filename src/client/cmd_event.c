/*
 * cmd_event.c - the commands that change a case or the team's settings:
 * `refuge stage|assign|unassign|tag|untag|note|check|uncheck|due CASE VALUE`
 * and `refuge team show|stages|checklist`.
 *
 * Each change is one signed event (lib/event.h), sealed to exactly the box
 * keys of the roster this client verified (never the person's key), posted
 * to /api/v1/cases/CASE/events. The client syncs first so the event's
 * lamport is 1 + the largest it has seen on the case. When the server cannot
 * be reached the event is sealed to the roster verified before and queued in
 * the outbox (ciphertext; `refuge sync` sends it). A roster that does not
 * verify stops everything: nothing is sealed.
 *
 * Values are checked before anything is signed: a stage must be one of the
 * team's stages, an assignee on the roster, a checklist item on the team's
 * checklist, a due date a real date or "none".
 */
#include "client/cmd.h"
#include "client/out.h"
#include "client/state.h"
#include "client/trust.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct op_help {
    const char *op;
    const char *arg;
    const char *text;
};

static const struct op_help ops[] = {
    {"stage", "STAGE",
     "Moves the case to STAGE, one of the team's stages (`refuge team show`).\n"
     "Closing a case also schedules its deletion on the server after the\n"
     "retention period; moving it out of \"closed\" cancels that."},
    {"assign", "NAME", "Assigns the case to NAME, a caseworker on the roster."},
    {"unassign", "NAME", "Takes NAME off the case."},
    {"tag", "TAG", "Adds TAG to the case."},
    {"untag", "TAG", "Removes TAG from the case."},
    {"note", "TEXT",
     "Adds a note. Notes are sealed to the caseworkers only; the person never\n"
     "sees them."},
    {"check", "ITEM", "Marks ITEM of the team's checklist done."},
    {"uncheck", "ITEM", "Marks ITEM of the team's checklist not done."},
    {"due", "YYYY-MM-DD|none", "Sets the case's due date, or clears it with \"none\"."},
};

static const struct op_help *find_op(const char *op)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (strcmp(ops[i].op, op) == 0)
            return &ops[i];
    return NULL;
}

static void usage_op(FILE *f, const struct op_help *o)
{
    fprintf(f,
            "usage: refuge %s CASE %s\n\n%s\n\n"
            "The change is a signed event sealed to the caseworkers on the verified roster.\n"
            "If the server cannot be reached it is queued and sent by the next `refuge sync`.\n",
            o->op, o->arg, o->text);
}

static uint32_t today(void)
{
    return (uint32_t)(time(NULL) / 86400);
}

/* Prints "refuge: what: one of: a, b, c" to stderr. */
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

/* The roster to seal to: verified online after a quiet sync, or, when the
 * server cannot be reached, the chain verified before (*online = 0). */
static int roster_for_writing(struct rf_ctx *x, struct rf_roster **ro, int *online)
{
    *online = 1;
    int rc = rf_sync_run(x, 1, RF_TRUST_QUIET_NET, ro);
    if (rc == RF_ERR_NET) {
        *online = 0;
        rc = rf_trust_roster_cached(x->c, x->h.pinned, x->k, ro);
        if (rc == RF_ERR_NOT_FOUND)
            rf_cmd_err("cannot reach the server", "and this computer never verified the roster; "
                                                  "run `refuge sync` when online");
        if (rc == 0 && !rf_cmd_on_roster(x, *ro))
            rc = RF_ERR_AUTH;
        if (rc == 0)
            rc = rf_local_reload(x->l);
    }
    return rc;
}

/* The signed event's plaintext for case_id (body per lib/event.h). */
static int build_event(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                       const char *op, json_t *value, struct rf_buf *signed_ev)
{
    uint8_t rid[16];
    char id[RF_STATE_ID_HEX + 1];
    uint64_t lamport = 0;
    int rc = rf_local_lamport(x->l, case_id, &lamport);
    if (rc != 0)
        return rc;
    randombytes_buf(rid, sizeof(rid));
    sodium_bin2hex(id, sizeof(id), rid, sizeof(rid));
    json_t *body = json_pack("{sisssIsIsssIsssO}", "v", 1, "id", id, "lamport",
                             (json_int_t)(lamport + 1), "roster", (json_int_t)ro->version, "author",
                             x->k->name, "day", (json_int_t)today(), "op", op, "value", value);
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s)
        return RF_ERR_NOMEM;
    rc = rf_event_sign(signed_ev, x->k, case_id, (const uint8_t *)s, strlen(s));
    rf_out_json_free(s);
    return rc;
}

static int seal_to_roster(struct rf_buf *env, const struct rf_roster *ro, const struct rf_buf *p)
{
    uint8_t(*pks)[32] = calloc(ro->n ? ro->n : 1, 32);
    if (!pks)
        return RF_ERR_NOMEM;
    for (uint16_t i = 0; i < ro->n; i++)
        memcpy(pks[i], ro->members[i].box_pk, 32);
    int rc =
        rf_envelope_seal(env, RF_KIND_EVENT, (const uint8_t(*)[32])pks, ro->n, p->data, p->len);
    free(pks);
    return rc;
}

/* What the change does, in words, e.g. `Case abc: moved to "planning"`. */
static void describe(const char *case_id, const char *op, json_t *value)
{
    static const struct {
        const char *op, *text;
    } verbs[] = {
        {"stage", "moved to"}, {"assign", "assigned to"},  {"unassign", "unassigned"},
        {"tag", "tagged"},     {"untag", "untagged"},      {"note", "note added"},
        {"check", "checked"},  {"uncheck", "unchecked"},   {"due", "due date"},
        {"stages", "stages"},  {"checklist", "checklist"},
    };
    const char *verb = op;
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        if (strcmp(verbs[i].op, op) == 0)
            verb = verbs[i].text;
    if (strcmp(case_id, RF_STATE_TEAMCONFIG) == 0) {
        printf("The team's %s are changed", verb);
        return;
    }
    printf("Case %s: %s", case_id, verb);
    if (strcmp(op, "note") != 0 && json_is_string(value)) {
        fputs(" \"", stdout);
        rf_out_safe(stdout, json_string_value(value), 0);
        fputs("\"", stdout);
    }
}

/* Signs, seals and sends (or queues) one event. schedule: -1, 0 reopen, 1 close. */
static int emit(struct rf_ctx *x, const struct rf_roster *ro, int *onlinep, const char *case_id,
                const char *op, json_t *value, int schedule)
{
    int online = *onlinep;
    struct rf_buf plain, env;
    char path[128];
    json_t *ans = NULL;
    rf_buf_init_secure(&plain, RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX);
    rf_buf_init(&env, (size_t)RF_EVENT_BODY_MAX * 2 + 64 * 1024);
    int rc = build_event(x, ro, case_id, op, value, &plain);
    if (rc == 0)
        rc = seal_to_roster(&env, ro, &plain);
    rf_buf_free(&plain);
    if (rc != 0) {
        rf_cmd_errc("cannot make the event", rc);
        goto out;
    }
    if (online) {
        snprintf(path, sizeof(path), "/api/v1/cases/%s/events", case_id);
        rc = rf_net_json(x->n, "POST", path, env.data, env.len, "application/octet-stream", &ans);
        if (rc != 0 && rc != RF_ERR_NET) {
            if (rf_net_status(x->n) == 403)
                rf_cmd_forbidden(x, "the change was not sent", 0);
            else
                rf_cmd_net_err("the change was not sent", x->n);
            goto out;
        }
        online = rc == 0;
        *onlinep = online;
    }
    if (!online) {
        rc = rf_cache_outbox_add(x->c, case_id, schedule, today(), env.data, env.len);
        if (rc == 0)
            rc = rf_local_refresh(x->l, case_id);
        if (rc != 0) {
            rf_cmd_errc("cannot queue the change", rc);
            goto out;
        }
        describe(case_id, op, value);
        puts(".\nqueued: will be sent at the next sync (the server cannot be reached now)");
        goto out;
    }
    describe(case_id, op, value);
    printf(" (event #%lld).\n", (long long)json_integer_value(json_object_get(ans, "seq")));
    if (schedule >= 0) {
        const char *body = schedule ? "{\"closed\":true}" : "{\"closed\":false}";
        snprintf(path, sizeof(path), "/api/v1/cases/%s/schedule", case_id);
        if (rf_net_json(x->n, "POST", path, (const uint8_t *)body, strlen(body), "application/json",
                        NULL) != 0)
            rf_cmd_net_err("the change was sent, but the deletion schedule was not", x->n);
        else if (schedule)
            puts("The server will delete this case after the retention period.");
        else
            puts("The case's scheduled deletion is cancelled.");
    }
    fflush(stdout);
    rc = rf_sync_run(x, 1, 0, NULL);
out:
    json_decref(ans);
    rf_buf_free(&env);
    return rc;
}

/* Whether the case is known here (objects synced, or queued events). */
static int case_known(struct rf_ctx *x, const char *case_id)
{
    struct rf_cobj *objs = NULL;
    size_t n = 0;
    int rc = rf_cache_case_objects(x->c, case_id, &objs, &n);
    free(objs);
    return rc == 0;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RF_STATE_VALUE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

/* Checks value for op against the team and roster; prints why not. Returns
 * 0, or an exit code. *schedule is set for stage changes. */
static int validate(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                    const char *op, const char *value, int *schedule)
{
    json_t *team = NULL, *sum = NULL;
    int ret = RF_EXIT_USAGE;
    *schedule = -1;
    if (rf_local_team(x->l, &team) != 0) {
        rf_cmd_err("cannot read the team's settings", "run `refuge sync`");
        return RF_EXIT_FAIL;
    }
    if (strcmp(op, "stage") == 0) {
        if (!rf_state_in_list(json_object_get(team, "stages"), value)) {
            print_choices("unknown stage", json_object_get(team, "stages"));
            goto out;
        }
        const char *cur = "new";
        if (rf_local_summary(x->l, case_id, &sum) == 0 &&
            json_is_string(json_object_get(sum, "stage")))
            cur = json_string_value(json_object_get(sum, "stage"));
        if (strcmp(value, "closed") == 0)
            *schedule = 1;
        else if (strcmp(cur, "closed") == 0)
            *schedule = 0;
    } else if (strcmp(op, "check") == 0 || strcmp(op, "uncheck") == 0) {
        if (!rf_state_in_list(json_object_get(team, "checklist"), value)) {
            print_choices("not on the team's checklist", json_object_get(team, "checklist"));
            goto out;
        }
    } else if (strcmp(op, "assign") == 0) {
        int found = 0;
        for (uint16_t i = 0; !found && i < ro->n; i++)
            found = strcmp(ro->members[i].name, value) == 0;
        if (!found) {
            json_t *names = json_array();
            for (uint16_t i = 0; i < ro->n; i++)
                json_array_append_new(names, json_string(ro->members[i].name));
            print_choices("not a caseworker on the roster", names);
            json_decref(names);
            goto out;
        }
    } else if (strcmp(op, "due") == 0) {
        if (strcmp(value, "none") != 0 && !rf_state_date(value, NULL)) {
            rf_cmd_err("bad date", "give a real date as YYYY-MM-DD, or \"none\" to clear it");
            goto out;
        }
    }
    json_t *v = json_string(value);
    int valid =
        v && (strcmp(op, "note") == 0 || name_ok(value)) && rf_state_op_valid(case_id, op, v);
    json_decref(v);
    if (!valid) {
        rf_cmd_err("bad value", "empty, too long, not UTF-8, or with control characters");
        goto out;
    }
    ret = 0;
out:
    json_decref(sum);
    json_decref(team);
    return ret;
}

int rf_cmd_event(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const struct op_help *o = find_op(argv[0]);
    int ch;
    if (!o)
        return RF_EXIT_USAGE;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (ch == 'h') {
            usage_op(stdout, o);
            return RF_EXIT_OK;
        }
        usage_op(stderr, o);
        return RF_EXIT_USAGE;
    }
    int want_more = strcmp(o->op, "note") == 0; /* a note may be several words */
    if (argc - optind < 2 || (!want_more && argc - optind != 2)) {
        usage_op(stderr, o);
        return RF_EXIT_USAGE;
    }
    const char *cid = argv[optind];
    if (!rf_cmd_case_ok(cid) || strcmp(cid, RF_STATE_TEAMCONFIG) == 0) {
        rf_cmd_err("bad case id", "case ids are lower-case letters and digits (`refuge cases`)");
        return RF_EXIT_USAGE;
    }
    struct rf_buf text;
    rf_buf_init_secure(&text, RF_EVENT_BODY_MAX);
    for (int i = optind + 1; i < argc; i++) {
        if ((i > optind + 1 && rf_buf_put(&text, " ", 1) != 0) ||
            rf_buf_put(&text, argv[i], strlen(argv[i])) != 0 || rf_buf_cstr(&text) != 0) {
            rf_buf_free(&text);
            rf_cmd_err("bad value", "too long");
            return RF_EXIT_USAGE;
        }
    }
    struct rf_ctx x;
    int ret = RF_EXIT_FAIL, queued = 0;
    if (rf_ctx_open(&x, 1) == 0)
        ret = rf_event_apply(&x, cid, o->op, (const char *)text.data, &queued);
    rf_ctx_close(&x);
    rf_buf_free(&text);
    return ret;
}

int rf_event_apply(struct rf_ctx *x, const char *cid, const char *op, const char *value,
                   int *queued)
{
    struct rf_roster *ro = NULL;
    json_t *v = NULL;
    int online = 0, schedule = -1, ret = RF_EXIT_FAIL;
    *queued = 0;
    if (roster_for_writing(x, &ro, &online) != 0)
        goto out;
    if (!case_known(x, cid)) {
        rf_cmd_err("no such case on this computer", "check the id, or run `refuge sync`");
        goto out;
    }
    int vr = validate(x, ro, cid, op, value, &schedule);
    if (vr != 0) {
        ret = vr;
        goto out;
    }
    v = json_string(value);
    if (!v) {
        rf_cmd_err("bad value", "not valid UTF-8");
        ret = RF_EXIT_USAGE;
        goto out;
    }
    if (emit(x, ro, &online, cid, op, v, schedule) == 0) {
        ret = RF_EXIT_OK;
        *queued = !online;
    }
out:
    json_decref(v);
    free(ro);
    return ret;
}

/* ------------------------------------------------------------------- team */

static void usage_team(FILE *f)
{
    fputs("usage: refuge team show [--json]\n"
          "       refuge team stages \"new,verifying,planning,...\"     (admins)\n"
          "       refuge team checklist \"passport,visa,route,...\"     (admins)\n"
          "\n"
          "The team's case stages and checklist. Every caseworker's client uses the list set\n"
          "last by an admin (a signed event only the team can read); until then the defaults:\n"
          "  stages:    new, verifying, planning, in transit, safe, asylum filed, closed,\n"
          "             lost contact, declined\n"
          "  checklist: passport, visa, route, contact, lawyer\n"
          "Names are separated by commas; a name may contain spaces.\n",
          f);
}

/* "a, b ,c" -> ["a","b","c"] (trimmed, empty parts refused). */
static json_t *split_list(const char *s)
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
        json_t *v = json_stringn(p, n);
        if (n == 0 || !v || json_array_append_new(a, v) != 0) {
            json_decref(a);
            return NULL;
        }
        s = e ? e + 1 : s + strlen(s);
    }
    return a;
}

static void print_list(const char *label, const json_t *list)
{
    size_t i;
    json_t *v;
    printf("%-11s", label);
    json_array_foreach(list, i, v)
    {
        fputs(i ? ", " : "", stdout);
        rf_out_safe(stdout, json_string_value(v), 0);
    }
    fputc('\n', stdout);
}

static int team_show(int json)
{
    struct rf_ctx x;
    json_t *team = NULL;
    int ret = RF_EXIT_FAIL;
    if (rf_ctx_open(&x, 0) != 0)
        return RF_EXIT_FAIL;
    if (rf_local_team(x.l, &team) != 0) {
        rf_cmd_err("cannot read the team's settings", "run `refuge sync`");
        goto out;
    }
    if (json) {
        json_t *j = json_pack("{sOsO}", "stages", json_object_get(team, "stages"), "checklist",
                              json_object_get(team, "checklist"));
        ret = rf_out_json(j) == 0 ? RF_EXIT_OK : RF_EXIT_FAIL;
        json_decref(j);
        goto out;
    }
    print_list("Stages:", json_object_get(team, "stages"));
    print_list("Checklist:", json_object_get(team, "checklist"));
    ret = RF_EXIT_OK;
out:
    json_decref(team);
    rf_ctx_close(&x);
    return ret;
}

static int team_set(const char *op, const char *arg)
{
    json_t *list = split_list(arg);
    if (!list || !rf_state_op_valid(RF_STATE_TEAMCONFIG, op, list)) {
        json_decref(list);
        rf_cmd_err("bad list", "give 1 to 64 distinct names separated by commas, each at most 64 "
                               "bytes without control characters");
        return RF_EXIT_USAGE;
    }
    struct rf_ctx x;
    struct rf_roster *ro = NULL;
    int online = 0, ret = RF_EXIT_FAIL;
    if (rf_ctx_open(&x, 1) != 0)
        goto out;
    if (roster_for_writing(&x, &ro, &online) != 0)
        goto out;
    int idx = rf_roster_find(ro, x.k->sign_pk);
    if (idx < 0 || ro->members[idx].role != RF_ROLE_ADMIN) {
        rf_cmd_err("refused", "only an admin of the team can change its stages or checklist");
        goto out;
    }
    if (emit(&x, ro, &online, RF_STATE_TEAMCONFIG, op, list, -1) == 0) {
        print_list(strcmp(op, "stages") == 0 ? "Stages:" : "Checklist:", list);
        ret = RF_EXIT_OK;
    }
out:
    json_decref(list);
    free(ro);
    rf_ctx_close(&x);
    return ret;
}

int rf_cmd_team(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, json = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (ch == 'j') {
            json = 1;
        } else if (ch == 'h') {
            usage_team(stdout);
            return RF_EXIT_OK;
        } else {
            usage_team(stderr);
            return RF_EXIT_USAGE;
        }
    }
    int n = argc - optind;
    const char *sub = n > 0 ? argv[optind] : NULL;
    if (sub && strcmp(sub, "show") == 0 && n == 1)
        return team_show(json);
    if (sub && (strcmp(sub, "stages") == 0 || strcmp(sub, "checklist") == 0) && n == 2 && !json)
        return team_set(sub, argv[optind + 1]);
    usage_team(stderr);
    return RF_EXIT_USAGE;
}
