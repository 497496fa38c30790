/*
 * boardrow.c - the packed board row (see boardrow.h): encoded from a
 * case's summary by the client's local case database, parsed in place by
 * `refuge cases` and the desk. Every length read is checked against the
 * bytes left (struct rf_reader); nothing is allocated while parsing.
 */
#include "lib/boardrow.h"
#include "lib/err.h"

#include <string.h>

const char *const rf_boardrow_keys[RF_BR_NFIELDS] = {
    "stage",    "assigned", "tags", "due",       "messages", "files",     "replies",
    "last_day", "pending",  "need", "checklist", "notes",    "first_day", "urgency",
};

#define ENTRIES_MAX 0xffff

/* A JSON string that packs as STR: no NUL inside (jansson's strings are UTF-8). */
static int plain_string(const json_t *v)
{
    return json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v);
}

static int is_strs(const json_t *v)
{
    size_t i;
    json_t *e;
    if (!json_is_array(v) || json_array_size(v) > ENTRIES_MAX)
        return 0;
    json_array_foreach((json_t *)v, i, e)
    {
        if (!plain_string(e))
            return 0;
    }
    return 1;
}

static int is_flags(const json_t *v)
{
    const char *k;
    json_t *e;
    if (!json_is_object(v) || json_object_size(v) > ENTRIES_MAX)
        return 0;
    json_object_foreach((json_t *)v, k, e)
    {
        if (!json_is_boolean(e))
            return 0;
    }
    return 1;
}

static int put_bytes(struct rf_buf *out, const void *p, size_t n)
{
    if (n > UINT32_MAX)
        return RF_ERR_LIMIT;
    int rc = rf_buf_put_u32(out, (uint32_t)n);
    return rc == 0 ? rf_buf_put(out, p, n) : rc;
}

static int put_json(struct rf_buf *out, const json_t *v)
{
    size_t n = json_dumpb(v, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER);
    if (n == 0 || n > RF_BOARDROW_MAX)
        return RF_ERR_LIMIT;
    int rc = rf_buf_put_u8(out, RF_BRT_JSON);
    if (rc == 0)
        rc = rf_buf_put_u32(out, (uint32_t)n);
    if (rc == 0)
        rc = rf_buf_reserve(out, n);
    if (rc != 0)
        return rc;
    if (json_dumpb(v, (char *)out->data + out->len, n,
                   JSON_COMPACT | JSON_ENCODE_ANY | JSON_PRESERVE_ORDER) != n)
        return RF_ERR_FORMAT;
    out->len += n;
    return 0;
}

static int put_field(struct rf_buf *out, const json_t *v)
{
    int rc;
    size_t i;
    json_t *e;
    const char *k;
    if (v == NULL || json_is_null(v))
        return rf_buf_put_u8(out, RF_BRT_NULL);
    if (plain_string(v)) {
        rc = rf_buf_put_u8(out, RF_BRT_STR);
        return rc == 0 ? put_bytes(out, json_string_value(v), json_string_length(v)) : rc;
    }
    if (json_is_integer(v)) {
        rc = rf_buf_put_u8(out, RF_BRT_INT);
        return rc == 0 ? rf_buf_put_u64(out, (uint64_t)json_integer_value(v)) : rc;
    }
    if (is_strs(v)) {
        rc = rf_buf_put_u8(out, RF_BRT_STRS);
        if (rc == 0)
            rc = rf_buf_put_u16(out, (uint16_t)json_array_size(v));
        json_array_foreach((json_t *)v, i, e)
        {
            if (rc == 0)
                rc = put_bytes(out, json_string_value(e), json_string_length(e));
        }
        return rc;
    }
    if (is_flags(v)) {
        rc = rf_buf_put_u8(out, RF_BRT_FLAGS);
        if (rc == 0)
            rc = rf_buf_put_u16(out, (uint16_t)json_object_size(v));
        json_object_foreach((json_t *)v, k, e)
        {
            if (rc == 0)
                rc = put_bytes(out, k, strlen(k));
            if (rc == 0)
                rc = rf_buf_put_u8(out, json_is_true(e) ? 1 : 0);
        }
        return rc;
    }
    return put_json(out, v);
}

int rf_boardrow_encode(struct rf_buf *out, const json_t *s)
{
    if (!json_is_object(s))
        return RF_ERR_INVALID;
    size_t start = out->len;
    int rc = rf_buf_put_u8(out, RF_BOARDROW_VERSION);
    for (int f = 0; rc == 0 && f < RF_BR_NFIELDS; f++)
        rc = put_field(out, json_object_get(s, rf_boardrow_keys[f]));
    if (rc == 0 && out->len - start > RF_BOARDROW_MAX)
        rc = RF_ERR_LIMIT;
    if (rc != 0)
        out->len = start; /* nothing half written */
    return rc;
}

/* The reader's getters, inline: a row has some 40 values and the listing
 * reads 100,000 rows. The same checks as buf.c's (never past len). */
static inline int take(struct rf_reader *rd, const uint8_t **p, size_t n)
{
    if (rd->len - rd->off < n)
        return RF_ERR_TRUNCATED;
    *p = rd->p + rd->off;
    rd->off += n;
    return 0;
}

static inline int take_be(struct rf_reader *rd, uint64_t *v, size_t n)
{
    const uint8_t *p;
    int rc = take(rd, &p, n);
    uint64_t x = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        x = x << 8 | p[i];
    *v = x;
    return rc;
}

/* One length-prefixed string entry (and its flag byte). */
static int get_entry(struct rf_reader *rd, const uint8_t **s, size_t *n, int flags, int *flag)
{
    uint64_t len;
    const uint8_t *b = NULL;
    int rc = take_be(rd, &len, 4);
    if (rc == 0)
        rc = take(rd, s, (size_t)len);
    if (rc == 0 && flags)
        rc = take(rd, &b, 1);
    if (rc == 0 && b && *b > 1)
        rc = RF_ERR_FORMAT;
    *n = (size_t)len;
    if (flag)
        *flag = b ? *b : 0;
    return rc;
}

static int get_field(struct rf_reader *rd, struct rf_boardrow_val *v)
{
    const uint8_t *tag;
    uint64_t u;
    int rc = take(rd, &tag, 1);
    if (rc != 0)
        return rc;
    memset(v, 0, sizeof(*v));
    v->tag = *tag;
    switch (*tag) {
    case RF_BRT_NULL:
        return 0;
    case RF_BRT_STR:
    case RF_BRT_JSON:
        rc = take_be(rd, &u, 4);
        if (rc == 0)
            rc = take(rd, &v->p, (size_t)u);
        v->len = (size_t)u;
        return rc == 0 && *tag == RF_BRT_JSON && u == 0 ? RF_ERR_FORMAT : rc;
    case RF_BRT_INT:
        rc = take_be(rd, &u, 8);
        v->i = (int64_t)u;
        return rc;
    case RF_BRT_STRS:
    case RF_BRT_FLAGS: {
        rc = take_be(rd, &u, 2);
        size_t at = rd->off;
        v->p = rd->p + rd->off;
        v->count = (size_t)u;
        for (uint64_t k = 0; rc == 0 && k < u; k++) {
            const uint8_t *s;
            size_t n;
            rc = get_entry(rd, &s, &n, *tag == RF_BRT_FLAGS, NULL);
        }
        v->len = rd->off - at;
        return rc;
    }
    default:
        return RF_ERR_FORMAT;
    }
}

int rf_boardrow_parse(struct rf_boardrow *r, const uint8_t *p, size_t n)
{
    struct rf_reader rd;
    const uint8_t *version;
    rf_reader_init(&rd, p, n);
    int rc = take(&rd, &version, 1);
    if (rc != 0)
        return rc;
    if (*version != RF_BOARDROW_VERSION)
        return RF_ERR_VERSION;
    for (int f = 0; rc == 0 && f < RF_BR_NFIELDS; f++)
        rc = get_field(&rd, &r->f[f]);
    return rc == 0 ? rf_reader_expect_end(&rd) : rc;
}

/* get_entry's checks, read directly (a listing walks every entry of every
 * row several times: a reader set up per entry was a twentieth of it). */
int rf_boardrow_next(const struct rf_boardrow_val *v, size_t *off, const uint8_t **s, size_t *n,
                     int *flag)
{
    int flags = v->tag == RF_BRT_FLAGS;
    if ((v->tag != RF_BRT_STRS && !flags) || *off >= v->len || v->len - *off < 4)
        return 0;
    const uint8_t *q = v->p + *off;
    size_t left = v->len - *off - 4;
    size_t len = (size_t)q[0] << 24 | (size_t)q[1] << 16 | (size_t)q[2] << 8 | q[3];
    if (len > left || (flags && (len == left || q[4 + len] > 1)))
        return 0; /* not from rf_boardrow_parse */
    *s = q + 4;
    *n = len;
    if (flag)
        *flag = flags ? q[4 + len] : 0;
    *off += 4 + len + (size_t)flags;
    return 1;
}

static json_t *string_of(const uint8_t *p, size_t n)
{
    if (memchr(p, 0, n) != NULL)
        return NULL; /* jansson would not have loaded it */
    return json_stringn((const char *)p, n);
}

static json_t *value_json(const struct rf_boardrow_val *v)
{
    json_t *j = NULL, *e;
    json_error_t err;
    size_t off = 0, n;
    const uint8_t *s;
    int flag;
    switch (v->tag) {
    case RF_BRT_NULL:
        return json_null();
    case RF_BRT_STR:
        return string_of(v->p, v->len);
    case RF_BRT_INT:
        return json_integer((json_int_t)v->i);
    case RF_BRT_JSON:
        return json_loadb((const char *)v->p, v->len, JSON_DECODE_ANY, &err);
    case RF_BRT_STRS:
        j = json_array();
        while (j && rf_boardrow_next(v, &off, &s, &n, &flag)) {
            if (!(e = string_of(s, n)) || json_array_append_new(j, e) != 0) {
                json_decref(j);
                return NULL;
            }
        }
        return j;
    case RF_BRT_FLAGS:
        j = json_object();
        while (j && rf_boardrow_next(v, &off, &s, &n, &flag)) {
            e = string_of(s, n); /* the key, checked as a string is */
            if (!e || json_object_set_new(j, json_string_value(e), json_boolean(flag)) != 0) {
                json_decref(e);
                json_decref(j);
                return NULL;
            }
            json_decref(e);
        }
        return j;
    default:
        return NULL;
    }
}

json_t *rf_boardrow_to_json(const struct rf_boardrow *r)
{
    json_t *o = json_object();
    for (int f = 0; o && f < RF_BR_NFIELDS; f++) {
        json_t *v = value_json(&r->f[f]);
        if (!v || json_object_set_new(o, rf_boardrow_keys[f], v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}
