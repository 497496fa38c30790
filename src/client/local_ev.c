/*
 * local_ev.c - what the local case database's rows say (local.c): an event
 * of a digest row to and from struct rf_ev, as JSON ({"k":"event","ev":
 * {..}}: rows written before cache version 7, read still) and packed
 * (lib/evrow.h: what is written now), and the folding of search text.
 */
#include "client/local.h"
#include "client/local_rows.h"
#include "lib/err.h"
#include "lib/evrow.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unicase.h>

char *rf_local_fold(const char *s)
{
    size_t n = 0;
    uint8_t *r = u8_tolower((const uint8_t *)s, strlen(s), NULL, NULL, NULL, &n);
    if (!r)
        return NULL;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, r, n);
        out[n] = '\0';
    }
    sodium_memzero(r, n);
    free(r);
    return out;
}

json_t *rf_local_ev_to_json(const struct rf_ev *e)
{
    char pk[65];
    sodium_bin2hex(pk, sizeof(pk), e->author_pk, 32);
    return json_pack("{sssIsIsIsssssIsssOsIsb}", "id", e->id, "lamport", (json_int_t)e->lamport,
                     "roster", (json_int_t)e->roster, "stored", (json_int_t)e->stored, "author_pk",
                     pk, "author", e->author, "day", (json_int_t)e->day, "op", e->op, "value",
                     e->value, "seq", (json_int_t)e->seq, "admin", e->admin);
}

int rf_local_ev_from_json(struct rf_ev *e, json_t *j)
{
    const char *id = json_string_value(json_object_get(j, "id"));
    const char *pk = json_string_value(json_object_get(j, "author_pk"));
    const char *author = json_string_value(json_object_get(j, "author"));
    const char *op = json_string_value(json_object_get(j, "op"));
    json_t *value = json_object_get(j, "value");
    size_t n = 0;
    memset(e, 0, sizeof(*e));
    if (!id || strlen(id) != RF_STATE_ID_HEX || !pk || !author || !op || !value ||
        strlen(op) >= sizeof(e->op) ||
        sodium_hex2bin(e->author_pk, 32, pk, strlen(pk), NULL, &n, NULL) != 0 || n != 32)
        return RF_ERR_FORMAT;
    memcpy(e->id, id, RF_STATE_ID_HEX + 1);
    snprintf(e->author, sizeof(e->author), "%s", author);
    snprintf(e->op, sizeof(e->op), "%s", op);
    e->lamport = (uint64_t)json_integer_value(json_object_get(j, "lamport"));
    e->roster = (uint32_t)json_integer_value(json_object_get(j, "roster"));
    e->stored = (uint32_t)json_integer_value(json_object_get(j, "stored"));
    e->day = (uint32_t)json_integer_value(json_object_get(j, "day"));
    e->seq = json_integer_value(json_object_get(j, "seq"));
    e->admin = json_is_true(json_object_get(j, "admin"));
    e->value = json_incref(value);
    return 0;
}

static int to_row(const char *p, size_t n, void *ctx)
{
    return rf_buf_put(ctx, p, n) == 0 ? 0 : -1;
}

int rf_local_ev_pack(struct rf_buf *out, const struct rf_ev *e, const uint8_t hash[32])
{
    struct rf_evrow r = {
        .id = (const uint8_t *)e->id,
        .id_len = strlen(e->id),
        .lamport = e->lamport,
        .roster = e->roster,
        .stored = e->stored,
        .day = e->day,
        .seq = e->seq,
        .admin = e->admin != 0,
        .author_pk = e->author_pk,
        .hash = hash,
        .author = (const uint8_t *)e->author,
        .author_len = strlen(e->author),
        .op = (const uint8_t *)e->op,
        .op_len = strlen(e->op),
    };
    if (!e->value)
        return RF_ERR_FORMAT;
    int rc = rf_evrow_head(out, &r);
    /* the value as the JSON row had it (json_dumps JSON_COMPACT), written
     * straight into out */
    if (rc == 0 && json_dump_callback(e->value, to_row, out, JSON_COMPACT | JSON_ENCODE_ANY) != 0)
        rc = RF_ERR_NOMEM;
    return rc;
}

/* s[0..n) as a C string into out (cap bytes): no NUL inside, shorter than cap. */
static int c_string(char *out, size_t cap, const uint8_t *s, size_t n)
{
    if (n >= cap || memchr(s, 0, n))
        return RF_ERR_FORMAT;
    memcpy(out, s, n);
    out[n] = '\0';
    return 0;
}

int rf_local_ev_unpack(struct rf_ev *e, uint8_t hash[32], const uint8_t *p, size_t n)
{
    struct rf_evrow r;
    json_error_t err;
    memset(e, 0, sizeof(*e));
    int rc = rf_evrow_parse(&r, p, n);
    if (rc == 0 && r.id_len != RF_STATE_ID_HEX)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = c_string(e->id, sizeof(e->id), r.id, r.id_len);
    if (rc == 0)
        rc = c_string(e->author, sizeof(e->author), r.author, r.author_len);
    if (rc == 0)
        rc = c_string(e->op, sizeof(e->op), r.op, r.op_len);
    if (rc == 0) {
        e->value = json_loadb((const char *)r.value, r.value_len, JSON_DECODE_ANY, &err);
        if (!e->value)
            rc = RF_ERR_FORMAT;
    }
    if (rc != 0) {
        rf_ev_clear(e);
        memset(e, 0, sizeof(*e));
        return rc;
    }
    e->lamport = r.lamport;
    e->roster = r.roster;
    e->stored = r.stored;
    e->day = r.day;
    e->seq = r.seq;
    e->admin = r.admin;
    memcpy(e->author_pk, r.author_pk, 32);
    if (hash)
        memcpy(hash, r.hash, 32);
    return 0;
}
