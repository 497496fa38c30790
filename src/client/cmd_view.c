/*
 * cmd_view.c - `refuge cases` and `refuge show CASE`: read the local cache
 * and decrypt on the fly; no network. Text a person sent reaches the
 * terminal only through out.c's sanitiser. --json prints the documented,
 * stable shapes (docs/staff.md) for scripts.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "client/replysig.h"
#include "client/state.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COL_MAX 32

static const char *const colour_off = "\033[0m";
static const char *const colour_head = "\033[1m";
static const char *const colour_case = "\033[36m";
static const char *const colour_reply = "\033[32m";
static const char *const colour_stage = "\033[33m";
static const char *const colour_event = "\033[35m";

/* Parses [--json] [--help] and up to want positionals. */
static int parse(int argc, char **argv, void (*usage)(FILE *), int want, int *json,
                 const char **pos)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    *json = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (c == 'j') {
            *json = 1;
        } else if (c == 'h') {
            usage(stdout);
            return RF_EXIT_OK + 100;
        } else {
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (argc - optind != want) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    if (want)
        *pos = argv[optind];
    return -1;
}

/* ------------------------------------------------------------------- show */

static void usage_show(FILE *f)
{
    fputs("usage: refuge show CASE [--json]\n"
          "\n"
          "Shows one case's state (stage, assigned, tags, due date, checklist) and its\n"
          "thread in order, decrypted on this computer: intake answers, messages, files\n"
          "(name and size; `refuge files` saves them), replies and the team's events (stage\n"
          "changes, notes, ...), each with its day and author. Events queued offline are\n"
          "marked \"not sent yet\"; events that fail verification are shown as \"unverified\n"
          "event\" and ignored. A reply names its author only if that caseworker signed it\n"
          "for this case; others show as \"reply, author unverified\". Works offline.\n"
          "  --json   one JSON object {\"case\":..,\"items\":[...]} (see docs/staff.md)\n",
          f);
}

static const char *kind_name(const char *type, uint8_t kind)
{
    if (kind == RF_KIND_FILE)
        return "file";
    if (kind == RF_KIND_REPLY)
        return "reply";
    if (type && strcmp(type, "intake") == 0)
        return "intake";
    return "message";
}

static int reply_to_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* A reply: its text, and its author only as the signature and the verified
 * roster prove it (replysig.h). */
static json_t *reply_item(json_t *it, struct rf_cache *c, const struct rf_staff_keys *k,
                          const struct rf_cobj *o, const struct rf_local *l)
{
    struct rf_buf plain;
    uint8_t kind = 0;
    json_t *r = NULL;
    const struct rf_roster *const *ros = NULL;
    size_t nros = 0;
    rf_local_rosters(l, &ros, &nros);
    rf_buf_init_secure(&plain, 4 * 1024 * 1024);
    int rc = rf_thread_open(c, k, o->seq, reply_to_buf, &plain, &kind);
    if (rc == 0 && kind != RF_KIND_REPLY)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_replysig_read(&r, plain.data, plain.len, o->case_id, ros, nros);
    rf_buf_free(&plain);
    if (rc != 0) {
        json_object_set_new(it, "kind", json_string("unreadable"));
        json_object_set_new(it, "error", json_string(rf_strerror(rc)));
        return it;
    }
    json_object_set_new(it, "kind", json_string("reply"));
    json_object_update(it, r);
    json_decref(r);
    return it;
}

/* Decrypts one object into a JSON item (NULL for kinds this view skips). */
static json_t *item_of(struct rf_cache *c, const struct rf_staff_keys *k, const struct rf_cobj *o,
                       const struct rf_local *l)
{
    json_t *it = json_pack("{sIsI}", "seq", (json_int_t)o->seq, "day", (json_int_t)o->day);
    if (!it)
        return NULL;
    if (o->kind == RF_KIND_FILE) {
        struct rf_filemeta meta;
        uint64_t size = 0;
        int rc = rf_thread_file_info(c, k, o->seq, &meta, &size);
        if (rc != 0) {
            json_object_set_new(it, "kind", json_string("unreadable"));
            json_object_set_new(it, "error", json_string(rf_strerror(rc)));
            return it;
        }
        json_object_set_new(it, "kind", json_string("file"));
        json_object_set_new(it, "name", json_string(meta.name));
        json_object_set_new(it, "type", json_string(meta.type));
        json_object_set_new(it, "size", json_integer((json_int_t)size));
        return it;
    }
    if (o->kind == RF_KIND_REPLY)
        return reply_item(it, c, k, o, l);
    if (o->kind != RF_KIND_MESSAGE) {
        json_decref(it);
        return NULL;
    }
    json_t *msg = NULL;
    int rc = rf_thread_open_json(c, k, o->seq, &msg);
    if (rc != 0) {
        json_object_set_new(it, "kind", json_string("unreadable"));
        json_object_set_new(it, "error", json_string(rf_strerror(rc)));
        return it;
    }
    const char *type = json_string_value(json_object_get(msg, "type"));
    const char *kn = kind_name(type, o->kind);
    json_object_set_new(it, "kind", json_string(kn));
    json_t *text = json_object_get(msg, "text");
    json_object_set_new(it, "text",
                        json_string(json_is_string(text) ? json_string_value(text) : ""));
    json_t *lang = json_object_get(msg, "lang");
    if (json_is_string(lang))
        json_object_set(it, "lang", lang);
    if (strcmp(kn, "intake") == 0) {
        json_t *ans = json_object_get(msg, "answers");
        json_object_set_new(it, "answers", json_is_array(ans) ? json_incref(ans) : json_array());
    }
    json_decref(msg);
    return it;
}

/* "from Alice", "from Alice (no longer on the team)", or, for a reply whose
 * signature or signer does not check out, "author unverified (why)". */
static void print_reply_author(json_t *it, int col)
{
    if (!json_is_true(json_object_get(it, "author_verified"))) {
        fputs(", author unverified (", stdout);
        rf_out_safe(stdout, json_string_value(json_object_get(it, "author_note")), 0);
        fputs(")", stdout);
        return;
    }
    fputs(" from ", stdout);
    if (col)
        fputs(colour_reply, stdout);
    rf_out_safe(stdout, json_string_value(json_object_get(it, "author")), 0);
    if (json_is_true(json_object_get(it, "former")))
        fputs(" (no longer on the team)", stdout);
}

static void print_item(json_t *it, int col)
{
    char day[16], size[32];
    const char *kind = json_string_value(json_object_get(it, "kind"));
    rf_out_day(day, sizeof(day), (uint32_t)json_integer_value(json_object_get(it, "day")));
    printf("%s[%s] #%lld %s", col ? colour_head : "", day,
           (long long)json_integer_value(json_object_get(it, "seq")), kind);
    if (strcmp(kind, "file") == 0) {
        rf_out_size(size, sizeof(size), (uint64_t)json_integer_value(json_object_get(it, "size")));
        fputs(": ", stdout);
        rf_out_safe(stdout, json_string_value(json_object_get(it, "name")), 0);
        printf(" (%s", size);
        const char *type = json_string_value(json_object_get(it, "type"));
        if (type && type[0]) {
            fputs(", ", stdout);
            rf_out_safe(stdout, type, 0);
        }
        fputs(")", stdout);
    } else if (strcmp(kind, "reply") == 0) {
        print_reply_author(it, col);
    } else if (strcmp(kind, "unreadable") == 0) {
        printf(": %s", json_string_value(json_object_get(it, "error")));
    }
    if (col)
        fputs(colour_off, stdout);
    fputc('\n', stdout);
    size_t i;
    json_t *a;
    json_array_foreach(json_object_get(it, "answers"), i, a)
    {
        char val[1024];
        json_t *label = json_object_get(a, "label");
        rf_out_value_text(val, sizeof(val), json_object_get(a, "value"));
        fputs("  ", stdout);
        rf_out_safe(stdout,
                    json_string_value(json_is_string(label) ? label : json_object_get(a, "id")), 0);
        printf(": %s\n", val);
    }
    const char *text = json_string_value(json_object_get(it, "text"));
    if (text && text[0]) {
        if (json_object_get(it, "answers"))
            fputc('\n', stdout);
        rf_out_block(stdout, text, "  ");
    }
}

static json_t *event_item(const struct rf_ev *e)
{
    json_t *it = json_pack("{sssssOsssIso}", "kind", "event", "op", e->op, "value", e->value,
                           "author", e->author, "day", (json_int_t)e->day, "seq",
                           e->seq > 0 ? json_integer((json_int_t)e->seq) : json_null());
    if (it && e->seq == 0)
        json_object_set_new(it, "sent", json_false());
    return it;
}

/* The case's "state" for show --json: the materialized registers, with the
 * checklist as {item: bool} over the team's checklist. */
static json_t *state_of(const struct rf_ev *ev, size_t n, const json_t *team)
{
    json_t *st = rf_state_case(ev, n);
    if (!st)
        return NULL;
    json_t *out = json_pack(
        "{sOsOsOsOso}", "stage", json_object_get(st, "stage"), "assigned",
        json_object_get(st, "assigned"), "tags", json_object_get(st, "tags"), "due",
        json_object_get(st, "due"), "checklist",
        rf_view_checklist(json_object_get(team, "checklist"), json_object_get(st, "checklist")));
    json_decref(st);
    return out;
}

static void join_list(char *out, size_t cap, json_t *list)
{
    size_t i, len = 0;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(list, i, v)
    {
        char one[COL_MAX * 4];
        rf_out_safe_copy(one, sizeof(one), json_string_value(v));
        int k = snprintf(out + len, cap - len, "%s%s", i ? "," : "", one);
        if (k < 0 || (size_t)k >= cap - len)
            break;
        len += (size_t)k;
    }
    if (!out[0])
        snprintf(out, cap, "-");
}

static void print_list_line(const char *label, json_t *list)
{
    char buf[1024];
    join_list(buf, sizeof(buf), list);
    printf("%-11s%s\n", label, buf);
}

static void print_state(json_t *st, int col)
{
    printf("%-11s%s", "Stage:", col ? colour_stage : "");
    rf_out_safe(stdout, json_string_value(json_object_get(st, "stage")), 0);
    printf("%s\n", col ? colour_off : "");
    print_list_line("Assigned:", json_object_get(st, "assigned"));
    print_list_line("Tags:", json_object_get(st, "tags"));
    json_t *due = json_object_get(st, "due");
    printf("%-11s%s\n", "Due:", json_is_string(due) ? json_string_value(due) : "-");
    printf("%-10s", "Checklist:"); /* each item starts with a space */
    const char *key;
    json_t *v;
    json_object_foreach(json_object_get(st, "checklist"), key, v)
    {
        fputs(json_is_true(v) ? " [x] " : " [ ] ", stdout);
        rf_out_safe(stdout, key, 0);
    }
    fputc('\n', stdout);
}

static void print_event(json_t *it, int col)
{
    char day[16];
    const char *kind = json_string_value(json_object_get(it, "kind"));
    json_t *seq = json_object_get(it, "seq");
    rf_out_day(day, sizeof(day), (uint32_t)json_integer_value(json_object_get(it, "day")));
    if (json_is_integer(seq))
        printf("%s[%s] #%lld ", col ? colour_event : "", day, (long long)json_integer_value(seq));
    else
        printf("%s[%s] (not sent yet) ", col ? colour_event : "", day);
    if (strcmp(kind, "unverified") == 0) {
        printf("unverified event, ignored: %s%s\n", json_string_value(json_object_get(it, "error")),
               col ? colour_off : "");
        return;
    }
    const char *op = json_string_value(json_object_get(it, "op"));
    fputs(op, stdout);
    fputs(" by ", stdout);
    rf_out_safe(stdout, json_string_value(json_object_get(it, "author")), 0);
    if (col)
        fputs(colour_off, stdout);
    if (strcmp(op, "note") == 0) {
        fputc('\n', stdout);
        rf_out_block(stdout, json_string_value(json_object_get(it, "value")), "  ");
        return;
    }
    fputs(": ", stdout);
    rf_out_safe(stdout, json_string_value(json_object_get(it, "value")), 0);
    fputc('\n', stdout);
}

int rf_view_case(struct rf_ctx *x, const char *cid, json_t **out)
{
    struct rf_cobj *objs = NULL;
    struct rf_ev *ev = NULL;
    size_t n = 0, nev = 0;
    json_t *items = NULL, *bad = NULL, *team = NULL, *state = NULL;
    *out = NULL;
    int rc = rf_local_update(x->l, NULL);
    if (rc == 0)
        rc = rf_cache_case_objects(x->c, cid, &objs, &n);
    if (rc == 0)
        rc = rf_local_events(x->l, cid, &ev, &nev, &bad);
    if (rc == 0)
        rc = rf_local_team(x->l, &team);
    if (rc != 0)
        goto out;
    state = state_of(ev, nev, team);
    items = json_array();
    if (!state || !items) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *it = NULL;
        if (objs[i].kind == RF_KIND_EVENT) {
            for (size_t j = 0; !it && j < nev; j++)
                if (ev[j].seq == objs[i].seq)
                    it = event_item(&ev[j]);
            size_t j;
            json_t *b;
            json_array_foreach(bad, j, b)
            {
                if (!it && json_integer_value(json_object_get(b, "seq")) == objs[i].seq)
                    it = json_pack("{sssIsIsO}", "kind", "unverified", "seq",
                                   (json_int_t)objs[i].seq, "day", (json_int_t)objs[i].day, "error",
                                   json_object_get(b, "error"));
            }
            if (!it)
                it = json_pack("{sssIsIss}", "kind", "unreadable", "seq", (json_int_t)objs[i].seq,
                               "day", (json_int_t)objs[i].day, "error",
                               "not sealed to your key, nor under a case key you hold "
                               "(sent before you joined?)");
        } else {
            it = item_of(x->c, x->k, &objs[i], x->l);
        }
        if (it)
            json_array_append_new(items, it);
    }
    for (size_t j = 0; j < nev; j++)
        if (ev[j].seq == 0)
            json_array_append_new(items, event_item(&ev[j]));
    *out =
        json_pack("{sssIsIsOsOsO}", "case", cid, "first_day", (json_int_t)objs[0].day, "last_seq",
                  (json_int_t)objs[n - 1].seq, "state", state, "items", items, "team", team);
    rc = *out ? 0 : RF_ERR_NOMEM;
out:
    json_decref(items);
    json_decref(bad);
    json_decref(team);
    json_decref(state);
    rf_local_events_free(ev, nev);
    free(objs);
    return rc;
}

int rf_cmd_show(int argc, char **argv)
{
    int json = 0;
    const char *cid = NULL;
    int pr = parse(argc, argv, usage_show, 1, &json, &cid);
    if (pr >= 0)
        return pr == RF_EXIT_OK + 100 ? RF_EXIT_OK : pr;
    if (!rf_cmd_case_ok(cid) || strcmp(cid, RF_STATE_TEAMCONFIG) == 0) {
        rf_cmd_err("bad case id", "case ids are lower-case letters and digits");
        return RF_EXIT_USAGE;
    }
    struct rf_ctx x;
    json_t *view = NULL;
    int ret = RF_EXIT_FAIL;
    if (rf_ctx_open(&x, 0) != 0)
        goto out;
    int rc = rf_view_case(&x, cid, &view);
    if (rc == RF_ERR_NOT_FOUND) {
        rf_cmd_err("no such case on this computer", "check the id, or run `refuge sync`");
        goto out;
    }
    if (rc != 0) {
        rf_cmd_errc("cannot read the local case database", rc);
        goto out;
    }
    json_t *state = json_object_get(view, "state"), *items = json_object_get(view, "items");
    if (json) {
        json_t *j = json_pack("{sssOsO}", "case", cid, "state", state, "items", items);
        rc = rf_out_json(j);
        json_decref(j);
        ret = rc == 0 ? RF_EXIT_OK : RF_EXIT_FAIL;
        goto out;
    }
    int col = rf_out_colour(stdout);
    char first[16];
    rf_out_day(first, sizeof(first),
               (uint32_t)json_integer_value(json_object_get(view, "first_day")));
    printf("Case %s%s%s, first contact %s, %zu item%s\n", col ? colour_case : "", cid,
           col ? colour_off : "", first, json_array_size(items),
           json_array_size(items) == 1 ? "" : "s");
    print_state(state, col);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *kind = json_string_value(json_object_get(it, "kind"));
        fputc('\n', stdout);
        if (strcmp(kind, "event") == 0 || strcmp(kind, "unverified") == 0)
            print_event(it, col);
        else
            print_item(it, col);
    }
    ret = RF_EXIT_OK;
out:
    json_decref(view);
    rf_ctx_close(&x);
    return ret;
}
