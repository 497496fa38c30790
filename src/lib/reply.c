/*
 * reply.c - signing, framing and verifying replies (format in reply.h and
 * docs/protocol.md "Replies"). The same shape as a case event (event.c)
 * under its own magic and signing domain, so neither can pass for the
 * other: "RFGY" | 2 | signer sign_pk | signature | body, the signature over
 * "refuge-reply-v2" || case_id || body.
 *
 * The framing, signing and checks are casesig.c's. rf_reply_text reads the
 * JSON body with jansson (the one JSON parser of server and client).
 */
#include "lib/reply.h"
#include "lib/casesig.h"
#include "lib/err.h"
#include "lib/event.h"

#include <jansson.h>
#include <string.h>

_Static_assert(RF_REPLY_HEADER_BYTES == RF_CASESIG_HEADER_BYTES, "reply header layout");

static const struct rf_casesig_kind reply_kind = {
    .magic = RF_REPLY_MAGIC,
    .version = RF_REPLY_VERSION,
    .domain = "refuge-reply-v2",
    .body_max = RF_REPLY_BODY_MAX,
};

int rf_reply_sign(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                  const uint8_t *body, size_t n)
{
    return rf_casesig_sign(out, &reply_kind, k, case_id, body, n);
}

int rf_reply_split(uint8_t signer[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                   size_t n)
{
    const uint8_t *pk, *sig, *b;
    size_t blen;
    int rc = rf_casesig_split(&reply_kind, &pk, &sig, &b, &blen, p, n);
    if (rc != 0)
        return rc;
    memcpy(signer, pk, 32);
    *body = b;
    *body_len = blen;
    return 0;
}

int rf_reply_verify(uint8_t signer[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                    size_t n, const char *case_id)
{
    return rf_casesig_verify(&reply_kind, signer, body, body_len, p, n, case_id);
}

int rf_reply_signed(const uint8_t *p, size_t n)
{
    return p != NULL && n >= 4 && memcmp(p, RF_REPLY_MAGIC, 4) == 0;
}

/* 1 if j nests no deeper than depth (j itself is depth 1). */
static int depth_ok(json_t *j, int depth)
{
    if (depth <= 0)
        return 0;
    const char *key;
    json_t *v;
    size_t i;
    if (json_is_object(j)) {
        json_object_foreach(j, key, v)
        {
            if (!depth_ok(v, depth - 1))
                return 0;
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v)
        {
            if (!depth_ok(v, depth - 1))
                return 0;
        }
    }
    return 1;
}

static int text_of_json(struct rf_buf *text, const uint8_t *p, size_t n)
{
    if (n > RF_REPLY_JSON_MAX)
        return RF_ERR_LIMIT;
    json_error_t jerr;
    /* JSON_ALLOW_NUL: a \u0000 reads as it always did (the text ends there
     * when shown); the bytes themselves are checked as UTF-8 by jansson */
    json_t *j = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    int rc = json_is_object(j) ? 0 : RF_ERR_FORMAT;
    if (rc == 0 && !depth_ok(j, RF_REPLY_JSON_DEPTH + 1)) /* the object, then its values */
        rc = RF_ERR_LIMIT;
    json_t *author = json_object_get(j, "author");
    if (rc == 0 && json_is_string(author) && json_string_length(author) > RF_REPLY_AUTHOR_MAX)
        rc = RF_ERR_LIMIT;
    json_t *t = json_object_get(j, "text");
    if (rc == 0 && json_is_string(t) && json_string_length(t) > 0)
        rc = rf_buf_put(text, json_string_value(t), json_string_length(t));
    json_decref(j);
    return rc;
}

int rf_reply_text(struct rf_buf *text, const uint8_t *p, size_t n)
{
    if (!rf_reply_signed(p, n))
        return text_of_json(text, p, n);
    uint8_t signer[32];
    const uint8_t *body = NULL;
    size_t blen = 0;
    int rc = rf_reply_split(signer, &body, &blen, p, n);
    return rc == 0 ? text_of_json(text, body, blen) : rc;
}
