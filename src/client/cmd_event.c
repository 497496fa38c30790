/*
 * cmd_event.c - the commands that change a case or the team's settings:
 * `refuge stage|assign|unassign|tag|untag|note|check|uncheck|due CASE VALUE`
 * and `refuge team show|stages|checklist`.
 *
 * Each change is one signed event (lib/event.h), sealed to exactly the box
 * keys of the roster this client verified (never the person's key) or, when
 * the team's format is 2, under a case key of the case that only they hold
 * (evseal.c; a new key is posted first), posted to
 * /api/v1/cases/CASE/events. The client syncs first so the event's
 * lamport is 1 + the largest it has seen on the case. When the server cannot
 * be reached the event is sealed to the roster verified before and queued in
 * the outbox (ciphertext; `refuge sync` sends it). A roster that does not
 * verify stops everything: nothing is sealed.
 *
 * Values are checked before anything is signed: a stage must be one of the
 * team's stages, an assignee on the roster, a checklist item on the team's
 * checklist, a due date a real date or "none". Which ops there are, their
 * arguments, usage, checks and what they print: the table of evop.h; this
 * file names no op.
 */
#include "client/cmd.h"
#include "client/evop.h"
#include "client/evseal.h"
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

static void usage_op(FILE *f, const struct rf_evop *o)
{
    fprintf(f,
            "usage: refuge %s CASE %s\n\n%s\n\n"
            "The change is a signed event sealed to the caseworkers on the verified roster.\n"
            "If the server cannot be reached it is queued and sent by the next `refuge sync`.\n",
            o->name, o->arg, o->help);
}

static uint32_t today(void)
{
    return (uint32_t)(time(NULL) / 86400);
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
                       const struct rf_evop *o, const json_t *value, struct rf_buf *signed_ev)
{
    uint64_t lamport = 0;
    int rc = rf_local_lamport(x->l, case_id, &lamport);
    if (rc != 0)
        return rc;
    return rf_evop_sign(signed_ev, x->k, case_id, lamport + 1, ro->version, today(), o, value);
}

/* What the change does, in words, e.g. `Case abc: moved to "planning"`. */
static void describe(const char *case_id, const struct rf_evop *o, const json_t *value)
{
    if (o->scope == RF_EVOP_TEAM) {
        printf("The team's %s are changed", o->done);
        return;
    }
    printf("Case %s: %s", case_id, o->done);
    if (o->echo && json_is_string(value)) {
        fputs(" \"", stdout);
        rf_out_safe(stdout, json_string_value(value), 0);
        fputs("\"", stdout);
    }
}

/* Signs, seals and sends (or queues) one event. schedule: -1, 0 reopen, 1 close. */
static int emit(struct rf_ctx *x, const struct rf_roster *ro, int *onlinep, const char *case_id,
                const struct rf_evop *o, const json_t *value, int schedule)
{
    int online = *onlinep;
    struct rf_buf plain, env;
    struct rf_evseal_key mk;
    char path[128];
    json_t *ans = NULL;
    rf_buf_init_secure(&plain, RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX);
    rf_buf_init(&env, (size_t)RF_EVENT_BODY_MAX * 2 + 64 * 1024);
    rf_evseal_key_init(&mk);
    int rc = build_event(x, ro, case_id, o, value, &plain);
    if (rc == 0) /* v1 or v2 (the team's setting); a new case key in mk */
        rc = rf_evseal_event(x, ro, rf_evseal_format(x->c), case_id, plain.data, plain.len, &env,
                             &mk);
    rf_buf_free(&plain);
    if (rc != 0) {
        rf_cmd_errc("cannot make the event", rc);
        goto out;
    }
    if (online && mk.env.len > 0) { /* the case key goes first */
        rc = rf_evseal_post_key(x, case_id, &mk);
        if (rc != 0 && rc != RF_ERR_NET) {
            if (rf_net_status(x->n) == 403)
                rf_cmd_forbidden(x, "the change was not sent", 0);
            else
                rf_cmd_net_err("the change's case key was not sent", x->n);
            goto out;
        }
        online = rc == 0;
        *onlinep = online;
        if (online)
            rf_buf_reset(&mk.env);
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
        rc = mk.env.len == 0
                 ? 0 /* a key made offline waits in the outbox with its event */
                 : rf_cache_outbox_add(x->c, case_id, -1, today(), mk.env.data, mk.env.len);
        if (rc == 0)
            rc = rf_cache_outbox_add(x->c, case_id, schedule, today(), env.data, env.len);
        if (rc == 0)
            rc = rf_local_refresh(x->l, case_id);
        if (rc != 0) {
            rf_cmd_errc("cannot queue the change", rc);
            goto out;
        }
        describe(case_id, o, value);
        puts(".\nqueued: will be sent at the next sync (the server cannot be reached now)");
        goto out;
    }
    describe(case_id, o, value);
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
    rf_evseal_key_free(&mk);
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

/* Checks value for op o against the team, the roster and the case (the
 * row's admit) and the op's own rule (its valid); prints why not. Returns
 * 0 with *v the event's value, or an exit code. *schedule is set for stage
 * changes. */
static int validate(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                    const struct rf_evop *o, const char *value, int *schedule, json_t **v)
{
    json_t *team = NULL;
    *schedule = -1;
    *v = NULL;
    if (rf_local_team(x->l, &team) != 0) {
        rf_cmd_err("cannot read the team's settings", "run `refuge sync`");
        return RF_EXIT_FAIL;
    }
    struct rf_evop_env env = {team, ro, x->l, case_id};
    int admitted = !o->admit || o->admit(&env, value, schedule) == 0;
    json_decref(team);
    if (!admitted)
        return RF_EXIT_USAGE;
    *v = o->parse(value);
    if (!*v || !o->valid(*v)) {
        json_decref(*v);
        *v = NULL;
        rf_cmd_err("bad value", "empty, too long, not UTF-8, or with control characters");
        return RF_EXIT_USAGE;
    }
    return 0;
}

int rf_cmd_event(int argc, char **argv)
{
    static const struct option opts[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
    const struct rf_evop *o = rf_evop_in(RF_EVOP_CASE, argv[0]);
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
    /* words 0: the rest of the line is the value (a note of several words) */
    if (argc - optind < 2 || (o->words && argc - optind != 1 + o->words)) {
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
        ret = rf_event_apply(&x, cid, o->name, (const char *)text.data, &queued);
    rf_ctx_close(&x);
    rf_buf_free(&text);
    return ret;
}

int rf_event_apply(struct rf_ctx *x, const char *cid, const char *op, const char *value,
                   int *queued)
{
    const struct rf_evop *o = rf_evop_in(RF_EVOP_CASE, op);
    struct rf_roster *ro = NULL;
    json_t *v = NULL;
    int online = 0, schedule = -1, ret = RF_EXIT_FAIL;
    *queued = 0;
    if (!o) {
        rf_cmd_err("no such change", "see `refuge help`");
        return RF_EXIT_USAGE;
    }
    if (roster_for_writing(x, &ro, &online) != 0)
        goto out;
    if (!case_known(x, cid)) {
        rf_cmd_err("no such case on this computer", "check the id, or run `refuge sync`");
        goto out;
    }
    int vr = validate(x, ro, cid, o, value, &schedule, &v);
    if (vr != 0) {
        ret = vr;
        goto out;
    }
    if (emit(x, ro, &online, cid, o, v, schedule) == 0) {
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
          "       refuge team event-format [1|2]     (setting it: admins)\n",
          f);
    for (size_t i = 0; i < rf_evops_n; i++)
        if (rf_evops[i].scope == RF_EVOP_TEAM)
            fprintf(f, "       refuge team %s \"%s\"     (admins)\n", rf_evops[i].name,
                    rf_evops[i].arg);
    fputs("\n"
          "The team's case stages and checklist. Every caseworker's client uses the list set\n"
          "last by an admin (a signed event only the team can read); until then the defaults:\n"
          "  stages:    new, verifying, planning, in transit, safe, asylum filed, closed,\n"
          "             lost contact, declined\n"
          "  checklist: passport, visa, route, contact, lawyer\n"
          "Names are separated by commas; a name may contain spaces.\n"
          "event-format: 1 seals each event to every caseworker's key; 2 (new teams) seals\n"
          "it under a key per case, much faster to sync. Every client reads both.\n",
          f);
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

/* "Stages:" for the op "stages". */
static void print_team_list(const struct rf_evop *o, const json_t *list)
{
    char label[32];
    snprintf(label, sizeof(label), "%s:", o->name);
    label[0] = (char)(label[0] - 'a' + 'A');
    print_list(label, list);
}

static int team_set(const struct rf_evop *o, const char *arg)
{
    json_t *list = o->parse(arg);
    if (!list || !o->valid(list)) {
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
    if (emit(&x, ro, &online, RF_STATE_TEAMCONFIG, o, list, -1) == 0) {
        print_team_list(o, list);
        ret = RF_EXIT_OK;
    }
out:
    json_decref(list);
    free(ro);
    rf_ctx_close(&x);
    return ret;
}

/* `refuge team event-format [1|2]`: the format of the events clients write
 * (docs/protocol.md 12): shown to members, set by an admin. */
static int team_event_format(const char *arg)
{
    struct rf_ctx x;
    json_t *ans = NULL;
    int ret = RF_EXIT_FAIL;
    if (arg && strcmp(arg, "1") != 0 && strcmp(arg, "2") != 0) {
        rf_cmd_err("bad format", "give 1 (envelopes) or 2 (case keys)");
        return RF_EXIT_USAGE;
    }
    if (rf_ctx_open(&x, 1) != 0)
        return RF_EXIT_FAIL;
    if (!arg) {
        rf_evseal_fetch_format(&x);
        printf("Event format: %d\n", rf_evseal_format(x.c));
        ret = RF_EXIT_OK;
        goto out;
    }
    char body[32];
    snprintf(body, sizeof(body), "{\"event_format\":%s}", arg);
    if (rf_net_json(x.n, "POST", "/api/v1/settings", (const uint8_t *)body, strlen(body),
                    "application/json", &ans) != 0) {
        if (rf_net_status(x.n) == 403)
            rf_cmd_forbidden(&x, "the event format was not changed", 1);
        else
            rf_cmd_net_err("the event format was not changed", x.n);
        goto out;
    }
    rf_cache_meta_set(x.c, "event_format", arg[0] - '0');
    printf("Event format: %s (clients write it from their next change)\n", arg);
    ret = RF_EXIT_OK;
out:
    json_decref(ans);
    rf_ctx_close(&x);
    return ret;
}

static int team_show(int json)
{
    struct rf_ctx x;
    json_t *team = NULL, *j = NULL;
    int ret = RF_EXIT_FAIL;
    if (rf_ctx_open(&x, 0) != 0)
        return RF_EXIT_FAIL;
    if (rf_local_team(x.l, &team) != 0) {
        rf_cmd_err("cannot read the team's settings", "run `refuge sync`");
        goto out;
    }
    j = json ? json_object() : NULL;
    for (size_t i = 0; i < rf_evops_n; i++) {
        const struct rf_evop *o = &rf_evops[i];
        json_t *list = o->scope == RF_EVOP_TEAM ? json_object_get(team, rf_state_field(o)) : NULL;
        if (list && j)
            json_object_set(j, o->name, list);
        else if (list)
            print_team_list(o, list);
    }
    ret = !json || (j && rf_out_json(j) == 0) ? RF_EXIT_OK : RF_EXIT_FAIL;
out:
    json_decref(j);
    json_decref(team);
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
    if (sub && strcmp(sub, "event-format") == 0 && n <= 2 && !json)
        return team_event_format(n == 2 ? argv[optind + 1] : NULL);
    const struct rf_evop *o = sub ? rf_evop_in(RF_EVOP_TEAM, sub) : NULL;
    if (o && n == 2 && !json)
        return team_set(o, argv[optind + 1]);
    usage_team(stderr);
    return RF_EXIT_USAGE;
}
