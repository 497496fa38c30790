/*
 * local_ev.c - what the local case database's rows say in JSON (local.c):
 * an event of a digest row ({"k":"event","ev":{..}}) to and from struct
 * rf_ev, and the folding of search text. Moved out of local.c as is.
 */
#include "client/local.h"
#include "client/local_rows.h"
#include "lib/err.h"

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
