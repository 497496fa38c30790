/*
 * replysig.c - signing replies and showing their author only from a
 * verified signature and the verified roster (see replysig.h).
 *
 * The name shown is the roster's name for the signing key: the newest
 * verified version holding that key. A signer found only on older versions
 * (removed since) is shown with "former": its reply was signed while it
 * may have been on the team, or by a removed key with a server's help; the
 * reader is told. Nothing in the reply's JSON can change the name shown.
 */
#include "client/replysig.h"
#include "client/out.h"
#include "lib/err.h"
#include "lib/reply.h"

#include <string.h>

int rf_replysig_compose(struct rf_buf *plain, const struct rf_staff_keys *k, const char *case_id,
                        const uint8_t *text, size_t len)
{
    json_t *t = json_stringn((const char *)text, len);
    if (!t)
        return RF_ERR_FORMAT; /* not UTF-8 */
    json_t *j = json_pack("{sissso}", "v", RF_REPLY_VERSION, "type", "reply", "text", t);
    if (!j)
        return RF_ERR_NOMEM;
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return RF_ERR_NOMEM;
    int rc = rf_reply_sign(plain, k, case_id, (const uint8_t *)s, strlen(s));
    rf_out_json_free(s);
    return rc;
}

/* The text member of a reply body (JSON object), or NULL. */
static json_t *body_json(const uint8_t *p, size_t n)
{
    json_error_t e;
    json_t *m = json_loadb((const char *)p, n, JSON_REJECT_DUPLICATES, &e);
    if (!json_is_object(m) || !json_is_string(json_object_get(m, "text"))) {
        json_decref(m);
        return NULL;
    }
    return m;
}

/* Sets author fields from signer: the newest verified roster version that
 * holds the key names it. */
static int set_author(json_t *out, const uint8_t signer[32], const struct rf_roster *const *rosters,
                      size_t nrosters)
{
    for (size_t v = nrosters; v > 0; v--) {
        const struct rf_roster *ro = rosters[v - 1];
        int i = ro ? rf_roster_find(ro, signer) : -1;
        if (i < 0)
            continue;
        json_object_set_new(out, "author", json_string(ro->members[i].name));
        json_object_set_new(out, "author_verified", json_true());
        if (v != nrosters)
            json_object_set_new(out, "former", json_true());
        return 0;
    }
    json_object_set_new(out, "author_note",
                        json_string("signed by a key on no roster you verified"));
    return 0;
}

int rf_replysig_read(json_t **out, const uint8_t *p, size_t n, const char *case_id,
                     const struct rf_roster *const *rosters, size_t nrosters)
{
    *out = NULL;
    json_t *o = json_pack("{sssb}", "author", "", "author_verified", 0);
    if (!o)
        return RF_ERR_NOMEM;
    json_t *m = NULL;
    if (!rf_reply_signed(p, n)) { /* version 1: unsigned JSON; its "author" is ignored */
        m = body_json(p, n);
        json_object_set_new(o, "author_note", json_string("unsigned reply, older format"));
    } else {
        uint8_t signer[32];
        const uint8_t *body = NULL;
        size_t blen = 0;
        int rc = rf_reply_verify(signer, &body, &blen, p, n, case_id);
        if (rc == RF_ERR_SIGNATURE) {
            /* shown, so colleagues see what the person was told, but no name */
            if (rf_reply_split(signer, &body, &blen, p, n) == 0)
                m = body_json(body, blen);
            json_object_set_new(o, "author_note",
                                json_string("bad signature, or moved from another case"));
        } else if (rc == 0) {
            m = body_json(body, blen);
            set_author(o, signer, rosters, nrosters);
        }
    }
    if (!m) {
        json_decref(o);
        return RF_ERR_FORMAT;
    }
    json_object_set(o, "text", json_object_get(m, "text"));
    json_decref(m);
    *out = o;
    return 0;
}
