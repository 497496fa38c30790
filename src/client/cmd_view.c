/*
 * cmd_view.c - `refuge cases` and `refuge show CASE`: read the local cache
 * and decrypt on the fly; no network. Text a person sent reaches the
 * terminal only through out.c's sanitiser. --json prints the documented,
 * stable shapes (docs/staff.md) for scripts.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COL_MAX 32

static const char *const colour_off = "\033[0m";
static const char *const colour_head = "\033[1m";
static const char *const colour_case = "\033[36m";
static const char *const colour_reply = "\033[32m";

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

/* The value of answer id in an intake's answers, or NULL (borrowed). */
static json_t *answer(json_t *msg, const char *id)
{
    json_t *answers = json_object_get(msg, "answers");
    size_t i;
    json_t *a;
    json_array_foreach(answers, i, a)
    {
        const char *aid = json_string_value(json_object_get(a, "id"));
        if (aid && strcmp(aid, id) == 0)
            return json_object_get(a, "value");
    }
    return NULL;
}

/* A value (string or array of strings) as one sanitised line. */
static void value_text(char *out, size_t cap, json_t *v)
{
    out[0] = '\0';
    if (json_is_string(v)) {
        rf_out_safe_copy(out, cap, json_string_value(v));
        return;
    }
    size_t i, len = 0;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e) || len + 3 >= cap)
            continue;
        if (len) {
            memcpy(out + len, ", ", 3);
            len += 2;
        }
        rf_out_safe_copy(out + len, cap - len, json_string_value(e));
        len = strlen(out);
    }
}

/* Terminal columns a sanitised string takes (code points; good enough for
 * the Latin and Cyrillic text Refuge sees). */
static size_t width(const char *s)
{
    size_t w = 0;
    for (; *s; s++)
        w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void pad(const char *s, size_t w)
{
    fputs(s, stdout);
    for (size_t k = width(s); k < w; k++)
        fputc(' ', stdout);
}

static int open_store(struct rf_home *h, struct rf_staff_keys **k, struct rf_cache **c)
{
    *k = NULL;
    *c = NULL;
    if (rf_home_open(h, k) != 0)
        return -1;
    if (rf_cache_open(c, h) != 0) {
        rf_cmd_err("cannot open the local cache", "run `refuge sync`");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ cases */

static void usage_cases(FILE *f)
{
    fputs("usage: refuge cases [--json]\n"
          "\n"
          "Lists the cases in the local cache (run `refuge sync` first), most recent activity\n"
          "first: case id, first day, messages, files, replies, last day, and the intake's\n"
          "\"need\" and \"urgency\" answers, decrypted on the fly. Works offline.\n"
          "  --json   one JSON object {\"cases\":[...]} (see docs/staff.md)\n",
          f);
}

struct row {
    char need[COL_MAX * 4];
    char urgency[COL_MAX * 4];
    json_t *need_v, *urgency_v;
};

int rf_cmd_cases(int argc, char **argv)
{
    int json = 0;
    int pr = parse(argc, argv, usage_cases, 0, &json, NULL);
    if (pr >= 0)
        return pr == RF_EXIT_OK + 100 ? RF_EXIT_OK : pr;
    struct rf_home h;
    struct rf_staff_keys *k = NULL;
    struct rf_cache *c = NULL;
    struct rf_ccase *cs = NULL;
    struct row *rows = NULL;
    size_t n = 0;
    int ret = RF_EXIT_FAIL;
    if (open_store(&h, &k, &c) != 0)
        goto out;
    int rc = rf_cache_cases(c, &cs, &n);
    if (rc != 0) {
        rf_cmd_errc("cannot read the local cache", rc);
        goto out;
    }
    rows = calloc(n ? n : 1, sizeof(*rows));
    if (!rows)
        goto out;
    for (size_t i = 0; i < n; i++) {
        json_t *msg = NULL;
        snprintf(rows[i].need, sizeof(rows[i].need), "-");
        snprintf(rows[i].urgency, sizeof(rows[i].urgency), "-");
        if (!cs[i].first_message_seq)
            continue;
        if (rf_thread_open_json(c, k, cs[i].first_message_seq, &msg) != 0) {
            snprintf(rows[i].need, sizeof(rows[i].need), "(unreadable)");
            continue;
        }
        const char *type = json_string_value(json_object_get(msg, "type"));
        if (type && strcmp(type, "intake") == 0) {
            rows[i].need_v = json_incref(answer(msg, "need"));
            rows[i].urgency_v = json_incref(answer(msg, "urgency"));
            if (rows[i].need_v)
                value_text(rows[i].need, COL_MAX, rows[i].need_v);
            if (rows[i].urgency_v)
                value_text(rows[i].urgency, COL_MAX, rows[i].urgency_v);
        }
        json_decref(msg);
    }
    if (json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                arr, json_pack("{sssIsIsIsIsIsO?sO?}", "case", cs[i].case_id, "first_day",
                               (json_int_t)cs[i].first_day, "last_day", (json_int_t)cs[i].last_day,
                               "messages", (json_int_t)cs[i].messages, "files",
                               (json_int_t)cs[i].files, "replies", (json_int_t)cs[i].replies,
                               "need", rows[i].need_v, "urgency", rows[i].urgency_v));
        json_t *j = json_pack("{so}", "cases", arr);
        rc = rf_out_json(j);
        json_decref(j);
        ret = rc == 0 ? RF_EXIT_OK : RF_EXIT_FAIL;
        goto out;
    }
    if (n == 0) {
        puts("No cases in the local cache. Run `refuge sync` to fetch new ones.");
        ret = RF_EXIT_OK;
        goto out;
    }
    size_t wneed = 4, wurg = 7;
    for (size_t i = 0; i < n; i++) {
        if (width(rows[i].need) > wneed)
            wneed = width(rows[i].need);
        if (width(rows[i].urgency) > wurg)
            wurg = width(rows[i].urgency);
    }
    int col = rf_out_colour(stdout);
    if (col)
        fputs(colour_head, stdout);
    printf("%-*s  %-10s  %4s  %5s  %7s  %-10s  ", RF_CASE_ID_LEN, "CASE", "FIRST", "MSGS", "FILES",
           "REPLIES", "LAST");
    pad("NEED", wneed);
    fputs("  URGENCY", stdout);
    if (col)
        fputs(colour_off, stdout);
    fputc('\n', stdout);
    for (size_t i = 0; i < n; i++) {
        char first[16], last[16];
        rf_out_day(first, sizeof(first), cs[i].first_day);
        rf_out_day(last, sizeof(last), cs[i].last_day);
        printf("%s%-*s%s  %-10s  %4u  %5u  %7u  %-10s  ", col ? colour_case : "", RF_CASE_ID_LEN,
               cs[i].case_id, col ? colour_off : "", first, cs[i].messages, cs[i].files,
               cs[i].replies, last);
        pad(rows[i].need, wneed);
        printf("  %s\n", rows[i].urgency);
    }
    ret = RF_EXIT_OK;
out:
    for (size_t i = 0; rows && i < n; i++) {
        json_decref(rows[i].need_v);
        json_decref(rows[i].urgency_v);
    }
    free(rows);
    free(cs);
    rf_cache_close(c);
    rf_home_keys_free(k);
    return ret;
}

/* ------------------------------------------------------------------- show */

static void usage_show(FILE *f)
{
    fputs("usage: refuge show CASE [--json]\n"
          "\n"
          "Shows one case's thread in order, decrypted on the fly from the local cache:\n"
          "intake answers, messages, files (name and size; `refuge files` saves them) and\n"
          "replies, each with its day. Works offline.\n"
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

/* Decrypts one object into a JSON item (NULL for kinds this view skips). */
static json_t *item_of(struct rf_cache *c, const struct rf_staff_keys *k, const struct rf_cobj *o)
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
    if (o->kind != RF_KIND_MESSAGE && o->kind != RF_KIND_REPLY) {
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
    if (o->kind == RF_KIND_REPLY) {
        json_t *author = json_object_get(msg, "author");
        json_object_set_new(it, "author",
                            json_string(json_is_string(author) ? json_string_value(author) : ""));
    }
    json_decref(msg);
    return it;
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
        fputs(" from ", stdout);
        if (col)
            fputs(colour_reply, stdout);
        rf_out_safe(stdout, json_string_value(json_object_get(it, "author")), 0);
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
        value_text(val, sizeof(val), json_object_get(a, "value"));
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

int rf_cmd_show(int argc, char **argv)
{
    int json = 0;
    const char *cid = NULL;
    int pr = parse(argc, argv, usage_show, 1, &json, &cid);
    if (pr >= 0)
        return pr == RF_EXIT_OK + 100 ? RF_EXIT_OK : pr;
    if (!rf_cmd_case_ok(cid)) {
        rf_cmd_err("bad case id", "case ids are lower-case letters and digits");
        return RF_EXIT_USAGE;
    }
    struct rf_home h;
    struct rf_staff_keys *k = NULL;
    struct rf_cache *c = NULL;
    struct rf_cobj *objs = NULL;
    size_t n = 0;
    json_t *items = NULL;
    int ret = RF_EXIT_FAIL;
    if (open_store(&h, &k, &c) != 0)
        goto out;
    int rc = rf_cache_case_objects(c, cid, &objs, &n);
    if (rc == RF_ERR_NOT_FOUND) {
        rf_cmd_err("no such case in the local cache", "check the id, or run `refuge sync`");
        goto out;
    }
    if (rc != 0) {
        rf_cmd_errc("cannot read the local cache", rc);
        goto out;
    }
    items = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *it = item_of(c, k, &objs[i]);
        if (it)
            json_array_append_new(items, it);
    }
    if (json) {
        json_t *j = json_pack("{ssso}", "case", cid, "items", json_incref(items));
        rc = rf_out_json(j);
        json_decref(j);
        ret = rc == 0 ? RF_EXIT_OK : RF_EXIT_FAIL;
        goto out;
    }
    int col = rf_out_colour(stdout);
    char first[16];
    rf_out_day(first, sizeof(first), objs[0].day);
    printf("Case %s%s%s, first contact %s, %zu item%s\n", col ? colour_case : "", cid,
           col ? colour_off : "", first, json_array_size(items),
           json_array_size(items) == 1 ? "" : "s");
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        fputc('\n', stdout);
        print_item(it, col);
    }
    ret = RF_EXIT_OK;
out:
    json_decref(items);
    free(objs);
    rf_cache_close(c);
    rf_home_keys_free(k);
    return ret;
}
