/*
 * state.c - materializing case state from verified events (see state.h).
 *
 * Invariants: nothing here reads a clock, a file or the network, and no
 * result depends on the order of the input array: the lamport bound is
 * applied in the server's sequence order, the events kept are sorted by the
 * concurrency rule's total order before they are applied, duplicates of one
 * event collapse, and sets (assignees, tags) come out sorted by bytes.
 */
#include "client/state.h"
#include "client/evop.h"
#include "lib/err.h"
#include "lib/event.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const default_stages[] = {
    "new",          "verifying", "planning",     "in transit", "safe",
    "asylum filed", "closed",    "lost contact", "declined",
};
static const char *const default_checklist[] = {"passport", "visa", "route", "contact", "lawyer"};

/* The state rules: each register an op writes (evop.h's reg), in the
 * order of the case state's fields, and how it shows there:
 *   ONE  the value of the last PUT in rule order (initial before any; the
 *        value clear empties it: null)
 *   SET  the values whose last ADD/REMOVE was an ADD, sorted by bytes
 *   MAP  {value: whether its last ADD/REMOVE was an ADD}, every value ever set
 *   LOG  every APPEND's value in rule order, as {author, day, text, seq}
 * An op that writes a register not here changes nothing (evop_test asserts
 * that every case op's register has its rule, and a shape its write fits). */
enum reg_shape { REG_ONE, REG_SET, REG_MAP, REG_LOG };

static const struct reg_rule {
    const char *reg;   /* evop.h's reg */
    const char *field; /* in rf_state_case's object */
    enum reg_shape shape;
    const char *initial, *clear; /* REG_ONE */
} registers[] = {
    {"stage", "stage", REG_ONE, "new", NULL},      /* stage */
    {"assignee", "assigned", REG_SET, NULL, NULL}, /* assign, unassign */
    {"tag", "tags", REG_SET, NULL, NULL},          /* tag, untag */
    {"due", "due", REG_ONE, NULL, "none"},         /* due */
    {"check", "checklist", REG_MAP, NULL, NULL},   /* check, uncheck */
    {"note", "notes", REG_LOG, NULL, NULL},        /* note */
};
#define NREG (sizeof(registers) / sizeof(registers[0]))

/* The team's registers (team ops PUT a list): their defaults, in the order of
 * rf_state_team's fields. */
static const struct team_rule {
    const char *reg;
    const char *const *initial;
    size_t n;
} team_registers[] = {
    {"stages", default_stages, sizeof(default_stages) / sizeof(default_stages[0])},
    {"checklist", default_checklist, sizeof(default_checklist) / sizeof(default_checklist[0])},
};
#define NTEAM (sizeof(team_registers) / sizeof(team_registers[0]))

static const struct reg_rule *reg_rule(const char *reg, size_t *at)
{
    for (size_t i = 0; reg && i < NREG; i++)
        if (strcmp(registers[i].reg, reg) == 0) {
            *at = i;
            return &registers[i];
        }
    return NULL;
}

/* Whether the shape of a register fits what op writes to it. */
static int fits(enum reg_shape shape, enum rf_evop_write write)
{
    switch (write) {
    case RF_EVOP_PUT:
        return shape == REG_ONE;
    case RF_EVOP_ADD:
    case RF_EVOP_REMOVE:
        return shape == REG_SET || shape == REG_MAP;
    case RF_EVOP_APPEND:
        return shape == REG_LOG;
    }
    return 0;
}

const char *rf_state_field(const struct rf_evop *o)
{
    size_t at;
    const struct reg_rule *r;
    if (o->scope == RF_EVOP_TEAM) {
        for (size_t i = 0; i < NTEAM; i++)
            if (strcmp(team_registers[i].reg, o->reg) == 0 && o->write == RF_EVOP_PUT)
                return team_registers[i].reg;
        return NULL;
    }
    r = reg_rule(o->reg, &at);
    return r && fits(r->shape, o->write) ? r->field : NULL;
}

void rf_ev_clear(struct rf_ev *e)
{
    json_decref(e->value);
    e->value = NULL;
}

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (H.
 * Hinnant's days_from_civil; y >= 1970 here, so no negative eras). */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int era = y / 400;
    int yoe = y - era * 400;
    int doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return (int64_t)era * 146097 + doe - 719468;
}

/* Checked by hand, not sscanf and timegm: `refuge cases` checks a due date
 * a row (a twentieth of the listing's time went to sscanf and mktime). */
int rf_state_date(const char *s, uint32_t *day)
{
    static const unsigned char mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int v[10];
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7) {
            if (s[i] != '-')
                return 0;
        } else if (s[i] < '0' || s[i] > '9') {
            return 0; /* a digit, and not the end: s has at least i + 1 bytes */
        }
        v[i] = s[i] - '0';
    }
    if (s[10] != '\0')
        return 0;
    int y = v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3];
    int m = v[5] * 10 + v[6], d = v[8] * 10 + v[9];
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
        return 0;
    if (m == 2 && d == 29 && !(y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)))
        return 0;
    if (day)
        *day = (uint32_t)days_from_civil(y, m, d);
    return 1;
}

int rf_state_in_list(const json_t *list, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return 1;
    }
    return 0;
}

int rf_state_op_valid(const char *case_id, const char *op, const json_t *value)
{
    int team = strcmp(case_id, RF_STATE_TEAMCONFIG) == 0;
    const struct rf_evop *o = rf_evop_in(team ? RF_EVOP_TEAM : RF_EVOP_CASE, op);
    return o && o->valid(value);
}

static int hex_id_ok(const char *s)
{
    if (strlen(s) != RF_STATE_ID_HEX)
        return 0;
    for (size_t i = 0; i < RF_STATE_ID_HEX; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static int u_field(json_t *j, const char *key, uint64_t min, uint64_t max, uint64_t *out)
{
    json_t *v = json_object_get(j, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0)
        return 0;
    uint64_t x = (uint64_t)json_integer_value(v);
    if (x < min || x > max)
        return 0;
    *out = x;
    return 1;
}

/* Whether the author (sign_pk) is a member, and an admin, of every roster
 * version from..to; *idx is the author's index in version from. */
static int on_every_version(const struct rf_roster *const *rosters, uint32_t from, uint32_t to,
                            const uint8_t sign_pk[32], int *idx, int *admin)
{
    *admin = 1;
    for (uint32_t v = from; v <= to; v++) {
        const struct rf_roster *r = rosters[v - 1];
        int i = r ? rf_roster_find(r, sign_pk) : -1;
        if (i < 0)
            return 0;
        if (v == from)
            *idx = i;
        if (r->members[i].role != RF_ROLE_ADMIN)
            *admin = 0;
    }
    return 1;
}

int rf_state_event_verify(struct rf_ev *out, const uint8_t *p, size_t n, const char *case_id,
                          const struct rf_roster *const *rosters, size_t nrosters, uint32_t stored)
{
    return rf_state_event_check(out, p, n, case_id, rosters, nrosters, stored, 1);
}

int rf_state_event_check(struct rf_ev *out, const uint8_t *p, size_t n, const char *case_id,
                         const struct rf_roster *const *rosters, size_t nrosters, uint32_t stored,
                         int signature)
{
    const uint8_t *body = NULL;
    size_t blen = 0;
    json_t *j = NULL;
    uint64_t v = 0, lamport = 0, roster = 0, day = 0;
    memset(out, 0, sizeof(*out));
    int rc = signature ? rf_event_verify(out->author_pk, &body, &blen, p, n, case_id)
                       : rf_event_parse(out->author_pk, &body, &blen, p, n, case_id);
    if (rc != 0)
        return rc == RF_ERR_SIGNATURE ? rc : RF_ERR_FORMAT;
    json_error_t e;
    j = json_loadb((const char *)body, blen, JSON_REJECT_DUPLICATES, &e);
    rc = RF_ERR_FORMAT;
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *op = json_string_value(json_object_get(j, "op"));
    json_t *value = json_object_get(j, "value");
    if (!json_is_object(j) || !u_field(j, "v", 1, 1, &v) ||
        !u_field(j, "lamport", 1, (uint64_t)1 << 53, &lamport) ||
        !u_field(j, "roster", 1, UINT32_MAX, &roster) || !u_field(j, "day", 0, UINT32_MAX, &day) ||
        !id || !hex_id_ok(id) || !op || strlen(op) >= sizeof(out->op) ||
        !rf_state_op_valid(case_id, op, value))
        goto out;
    /* the server's claim of the roster in force when it stored the event:
     * never older than the version the event names, never one this client
     * has not verified (0: not recorded, stored before schema 3) */
    rc = RF_ERR_PROTOCOL;
    if (stored != 0 && (stored < roster || stored > nrosters))
        goto out;
    uint32_t upto = stored != 0 ? stored : (uint32_t)roster;
    rc = RF_ERR_ROSTER;
    if (roster > nrosters)
        goto out;
    int idx = -1, admin = 0;
    if (!on_every_version(rosters, (uint32_t)roster, upto, out->author_pk, &idx, &admin))
        goto out;
    const struct rf_roster *r = rosters[roster - 1];
    memcpy(out->id, id, RF_STATE_ID_HEX + 1);
    out->lamport = lamport;
    out->roster = (uint32_t)roster;
    out->stored = upto;
    out->day = (uint32_t)day;
    snprintf(out->op, sizeof(out->op), "%s", op);
    snprintf(out->author, sizeof(out->author), "%s", r->members[idx].name);
    out->admin = admin;
    out->value = json_incref(value); /* outlives j, which is released below */
    rc = 0;
out:
    json_decref(j);
    return rc;
}

int rf_state_cmp(const struct rf_ev *a, const struct rf_ev *b)
{
    if (a->lamport != b->lamport)
        return a->lamport < b->lamport ? -1 : 1;
    int c = memcmp(a->author_pk, b->author_pk, 32);
    if (c != 0)
        return c;
    return strcmp(a->id, b->id);
}

/* Sorts by the rule; copies of one event sort together, the one the server
 * holds (lowest seq > 0) first, so collapsing keeps the same copy everywhere. */
static int cmp_ptr(const void *x, const void *y)
{
    const struct rf_ev *a = *(const struct rf_ev *const *)x;
    const struct rf_ev *b = *(const struct rf_ev *const *)y;
    int c = rf_state_cmp(a, b);
    if (c != 0)
        return c;
    uint64_t sa = a->seq > 0 ? (uint64_t)a->seq : UINT64_MAX;
    uint64_t sb = b->seq > 0 ? (uint64_t)b->seq : UINT64_MAX;
    return sa < sb ? -1 : sa > sb;
}

/* The order in which the lamport bound is applied: the server's sequence
 * (events not sent yet last), then the rule's order, so the result does not
 * depend on the order of the input array. */
static int cmp_arrival(const void *x, const void *y)
{
    const struct rf_ev *a = *(const struct rf_ev *const *)x;
    const struct rf_ev *b = *(const struct rf_ev *const *)y;
    uint64_t sa = a->seq > 0 ? (uint64_t)a->seq : UINT64_MAX;
    uint64_t sb = b->seq > 0 ? (uint64_t)b->seq : UINT64_MAX;
    if (sa != sb)
        return sa < sb ? -1 : 1;
    return rf_state_cmp(a, b);
}

/* Keeps in v (n pointers) the events within the lamport bound: in arrival
 * order, an event whose lamport exceeds the highest lamport kept so far by
 * more than RF_STATE_LAMPORT_STEP is dropped. Returns how many are kept. */
static size_t bounded(const struct rf_ev **v, size_t n)
{
    uint64_t max = 0;
    size_t k = 0;
    qsort(v, n, sizeof(*v), cmp_arrival);
    for (size_t i = 0; i < n; i++) {
        if (v[i]->lamport > max + RF_STATE_LAMPORT_STEP)
            continue;
        if (v[i]->lamport > max)
            max = v[i]->lamport;
        v[k++] = v[i];
    }
    return k;
}

int rf_state_bound(const struct rf_ev *ev, size_t n, unsigned char *keep)
{
    const struct rf_ev **v = malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return RF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        v[i] = &ev[i];
        keep[i] = 0;
    }
    size_t k = bounded(v, n);
    for (size_t i = 0; i < k; i++)
        keep[v[i] - ev] = 1;
    free(v);
    return 0;
}

/* The events within the lamport bound in rule order, copies collapsed;
 * *out is malloc'd. */
static int ordered(const struct rf_ev *ev, size_t n, const struct rf_ev ***out, size_t *m)
{
    const struct rf_ev **v = malloc((n ? n : 1) * sizeof(*v));
    *out = NULL;
    *m = 0;
    if (!v)
        return RF_ERR_NOMEM;
    for (size_t i = 0; i < n; i++)
        v[i] = &ev[i];
    n = bounded(v, n);
    qsort(v, n, sizeof(*v), cmp_ptr);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || rf_state_cmp(v[k - 1], v[i]) != 0)
            v[k++] = v[i];
    *out = v;
    *m = k;
    return 0;
}

static int cmp_str(const void *x, const void *y)
{
    return strcmp(*(const char *const *)x, *(const char *const *)y);
}

/* The keys of obj whose value is true, as a sorted array. */
static json_t *true_keys(json_t *obj)
{
    size_t n = json_object_size(obj), k = 0;
    const char **keys = malloc((n ? n : 1) * sizeof(*keys));
    json_t *arr = json_array();
    const char *key;
    json_t *v;
    if (!keys || !arr) {
        free(keys);
        json_decref(arr);
        return NULL;
    }
    json_object_foreach(obj, key, v)
    {
        if (json_is_true(v))
            keys[k++] = key;
    }
    qsort(keys, k, sizeof(*keys), cmp_str);
    for (size_t i = 0; i < k; i++)
        json_array_append_new(arr, json_string(keys[i]));
    free(keys);
    return arr;
}

/* One event applied to the registers: one[] (REG_ONE) and keyed[] (an
 * object for REG_SET and REG_MAP, an array for REG_LOG). */
static int apply(const struct rf_ev *e, const char **one, json_t **keyed)
{
    const struct rf_evop *o = rf_evop_in(RF_EVOP_CASE, e->op);
    const char *val = json_string_value(e->value);
    size_t at;
    const struct reg_rule *r = o ? reg_rule(o->reg, &at) : NULL;
    if (!r || !val || !fits(r->shape, o->write))
        return 0;
    switch (r->shape) {
    case REG_ONE:
        one[at] = r->clear && strcmp(val, r->clear) == 0 ? NULL : val;
        return 0;
    case REG_SET:
    case REG_MAP:
        return json_object_set_new(keyed[at], val, json_boolean(o->write == RF_EVOP_ADD));
    case REG_LOG:
        return json_array_append_new(keyed[at], json_pack("{sssIsssI}", "author", e->author, "day",
                                                          (json_int_t)e->day, "text", val, "seq",
                                                          (json_int_t)e->seq));
    }
    return 0;
}

/* How register i shows in the state (a new reference; NULL out of memory). */
static json_t *shown(size_t i, const char *one, json_t *keyed)
{
    switch (registers[i].shape) {
    case REG_ONE:
        return one ? json_string(one) : json_null();
    case REG_SET:
        return true_keys(keyed);
    case REG_MAP:
    case REG_LOG:
        return json_incref(keyed);
    }
    return NULL;
}

json_t *rf_state_case(const struct rf_ev *ev, size_t n)
{
    const struct rf_ev **v = NULL;
    size_t m = 0;
    if (ordered(ev, n, &v, &m) != 0)
        return NULL;
    const char *one[NREG];
    json_t *keyed[NREG] = {NULL}, *out = json_object();
    uint64_t lamport = 0;
    int ok = out != NULL;
    for (size_t i = 0; i < NREG; i++) {
        one[i] = registers[i].initial;
        if (registers[i].shape == REG_LOG)
            keyed[i] = json_array();
        else if (registers[i].shape != REG_ONE)
            keyed[i] = json_object();
        if (registers[i].shape != REG_ONE && !keyed[i])
            ok = 0;
    }
    for (size_t i = 0; ok && i < m; i++) {
        if (v[i]->lamport > lamport)
            lamport = v[i]->lamport;
        ok = apply(v[i], one, keyed) == 0;
    }
    for (size_t i = 0; ok && i < NREG; i++)
        ok = json_object_set_new(out, registers[i].field, shown(i, one[i], keyed[i])) == 0;
    if (ok)
        ok = json_object_set_new(out, "lamport", json_integer((json_int_t)lamport)) == 0;
    for (size_t i = 0; i < NREG; i++)
        json_decref(keyed[i]);
    free(v);
    if (!ok) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *list_of(const char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; a && i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

json_t *rf_state_team(const struct rf_ev *ev, size_t n)
{
    const struct rf_ev **v = NULL;
    size_t m = 0;
    if (ordered(ev, n, &v, &m) != 0)
        return NULL;
    const json_t *set[NTEAM] = {NULL};
    for (size_t i = 0; i < m; i++) {
        const struct rf_evop *o = rf_evop_in(RF_EVOP_TEAM, v[i]->op);
        if (!v[i]->admin || !o || !o->valid(v[i]->value))
            continue;
        for (size_t t = 0; t < NTEAM; t++)
            if (strcmp(team_registers[t].reg, o->reg) == 0)
                set[t] = v[i]->value;
    }
    json_t *out = json_object();
    for (size_t t = 0; out && t < NTEAM; t++) {
        const struct team_rule *r = &team_registers[t];
        json_t *list = set[t] ? json_deep_copy(set[t]) : list_of(r->initial, r->n);
        if (json_object_set_new(out, r->reg, list) != 0) {
            json_decref(out);
            out = NULL;
        }
    }
    free(v);
    return out;
}
