/*
 * api_team.c - the staff API's team routes (listed in docs/staff.md):
 *   POST /api/v1/tokens   admin: a one-time enrollment token
 *   GET  /api/v1/staff    member: who is enrolled, and on the roster
 *   POST /api/v1/roster   admin: the next signed roster version
 *   GET  /api/v1/grants   member: grants sealed to the caller's box key, with granters
 *   POST /api/v1/grants   member: grants for roster members (rewrap)
 *   GET  /api/v1/audit    member: the hash-chained audit log
 *
 * The server cannot make a roster, only refuse one: a new version must be the
 * next one, verify against the latest stored (rf_roster_verify: signed by an
 * admin of the previous version, carrying its hash), keep at least one admin,
 * and list only enrolled keys exactly as they enrolled, so the roster clients
 * verify and the keys the server seals to never disagree.
 *
 * Grants are opaque to the server (a sealed content key tagged with the
 * recipient's key id); it checks only that the key id is a roster member's,
 * that the grant says the same key id, and that the object exists. Each is
 * stored with its granter (the signing key of the request), one per (object,
 * key, granter): a member who posts junk grants for a newcomer first hides
 * no honest rewrap made after, and the newcomer's client tries each grant
 * until one opens the object. A request of up to API_GRANTS_MAX grants is
 * stored in chunks of one committer group each (a group must fit one batch),
 * each chunk with its "grant" audit entry; a failure answers an error after
 * earlier chunks may have been stored, and a retry is harmless: a granter's
 * grant already stored for (object, key) stays.
 *
 * Who reads what: every read route takes a key on the latest roster; a
 * removed caseworker's key reads nothing, not even the staff list (GET
 * /roster, in api.c, also serves a newcomer waiting for its approval).
 */
#include "lib/buf.h"
#include "lib/secmem.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/roster.h"
#include "server/api_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAFF_LIST_MAX 4096
#define TOKEN_BYTES 32
#define GRANT_CHUNK (RF_COMMIT_MAX_BATCH - 1) /* grants per group, with its audit entry */

int rf_api_admin_headers(struct rf_req *r)
{
    struct api_state *s;
    rf_api_auth(r, AUTH_ADMIN, &s);
    return 0;
}

int rf_api_staff_headers(struct rf_req *r)
{
    struct api_state *s;
    rf_api_auth(r, AUTH_MEMBER, &s);
    return 0;
}

/* The request's JSON body as an object, or NULL (answered 400). */
static json_t *body_object(struct rf_req *r, struct api_state *s)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)s->body.data, s->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        rf_api_error(r, 400, "bad_json", "body must be a JSON object");
        return NULL;
    }
    return j;
}

/* ------------------------------------------------------------ POST tokens */

static int tokens_done(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    int rc = rf_api_op_rc(s, &s->ops[0]);
    if (rc != 0)
        rf_api_store_error(r, rc);
    else
        rf_api_json(r, 200, json_pack("{ss}", "token", s->token));
    sodium_memzero(s->token, sizeof(s->token));
    return 0;
}

int rf_api_tokens_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    json_t *j = body_object(r, s);
    if (!j)
        return 0;
    const char *role = json_string_value(json_object_get(j, "role"));
    int admin = role && strcmp(role, "admin") == 0;
    int member = role && strcmp(role, "member") == 0;
    json_decref(j);
    if (!admin && !member)
        return rf_api_error(r, 400, "bad_request", "role must be \"member\" or \"admin\"");

    uint8_t *raw = rf_secmem_alloc(TOKEN_BYTES);
    if (!raw)
        return rf_api_error(r, 503, "nomem", "out of memory");
    randombytes_buf(raw, TOKEN_BYTES);
    int rc = rf_b64_encode(s->token, sizeof(s->token), raw, TOKEN_BYTES);
    rf_secmem_free(raw);
    if (rc != 0)
        return rf_api_error(r, 503, "nomem", "out of memory");
    uint8_t hash[32];
    rf_enroll_token_hash(hash, s->token, strlen(s->token));
    rf_op_token_put(&s->ops[0], hash, admin ? RF_ROLE_ADMIN : RF_ROLE_MEMBER);
    sodium_memzero(hash, sizeof(hash));
    rf_api_audit_op_signed(&s->ops[1], s, "token", admin ? "admin" : "member", NULL);
    return rf_api_submit(r, s, s->ops, 2, tokens_done);
}

/* -------------------------------------------------------------- GET staff */

static json_t *staff_json(const struct rf_staff_rec *rec, const struct rf_roster *ro)
{
    int on = ro && rf_roster_find(ro, rec->sign_pk) >= 0;
    return json_pack("{ss so so sI sb}", "name", rec->name, "sign_pk", rf_api_b64(rec->sign_pk, 32),
                     "box_pk", rf_api_b64(rec->box_pk, 32), "day", (json_int_t)rec->day,
                     "on_roster", on);
}

int rf_api_staff_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    struct rf_store *st = s->srv->store;
    struct rf_roster *ro = NULL;
    struct rf_buf raw;
    uint32_t version = 0;
    size_t n = 0;
    json_t *arr = NULL;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    struct rf_staff_rec *recs = calloc(STAFF_LIST_MAX, sizeof(*recs));
    int rc = recs ? rf_store_staff_list(st, recs, STAFF_LIST_MAX, &n) : RF_ERR_NOMEM;
    if (rc == 0) {
        rc = rf_api_roster(st, &ro, &version, &raw);
        if (rc == RF_ERR_NOT_FOUND)
            rc = 0; /* nobody is on a roster yet */
    }
    if (rc != 0) {
        rf_api_store_error(r, rc);
        goto out;
    }
    arr = json_array();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(arr, staff_json(&recs[i], ro)) == 0;
    if (!ok) {
        rf_api_error(r, 503, "nomem", "out of memory");
        goto out;
    }
    rf_api_json(r, 200, json_pack("{so}", "staff", arr));
    arr = NULL;
out:
    json_decref(arr);
    free(recs);
    free(ro);
    rf_buf_free(&raw);
    return 0;
}

/* ------------------------------------------------------------ POST roster */

int rf_api_roster_post_headers(struct rf_req *r)
{
    struct api_state *s;
    if (rf_api_auth(r, AUTH_ADMIN, &s) == 0)
        rf_api_body_cap(s, API_ROSTER_JSON_MAX);
    return 0;
}

/* Every member is enrolled with exactly the keys the roster lists, and at
 * least one is an admin (a roster without one could never change again). */
static int roster_members_ok(struct rf_store *st, const struct rf_roster *ro, const char **why)
{
    int admins = 0;
    for (size_t i = 0; i < ro->n; i++) {
        struct rf_staff_rec rec;
        int rc = rf_store_staff_get(st, ro->members[i].sign_pk, &rec);
        if (rc == RF_ERR_NOT_FOUND ||
            (rc == 0 && sodium_memcmp(rec.box_pk, ro->members[i].box_pk, 32) != 0)) {
            *why = "every member must be enrolled with the keys the roster lists";
            return 0;
        }
        if (rc != 0)
            return rc;
        admins += ro->members[i].role == RF_ROLE_ADMIN;
    }
    if (admins == 0) {
        *why = "a roster needs at least one admin";
        return 0;
    }
    return 1;
}

static int roster_done(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    int rc = rf_api_op_rc(s, &s->ops[0]);
    if (rc == RF_ERR_EXISTS || rc == RF_ERR_ROSTER)
        rf_api_error(r, 409, "version", "the roster changed meanwhile; fetch it and try again");
    else if (rc != 0)
        rf_api_store_error(r, rc);
    else
        rf_api_json(r, 200, json_pack("{sI}", "version", (json_int_t)s->roster_version));
    return 0;
}

int rf_api_roster_post_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    struct rf_store *st = s->srv->store;
    struct rf_roster *prev = NULL, *next = NULL;
    struct rf_buf praw;
    uint32_t version = 0;
    const char *why = NULL;
    rf_buf_init(&praw, RF_ROSTER_MAX_BYTES);
    json_t *j = body_object(r, s);
    if (!j)
        goto out;
    s->roster_raw = malloc(RF_ROSTER_MAX_BYTES);
    next = malloc(sizeof(*next));
    if (!s->roster_raw || !next) {
        json_decref(j);
        rf_api_error(r, 503, "nomem", "out of memory");
        goto out;
    }
    int rc = rf_api_b64_field(j, "roster", s->roster_raw, RF_ROSTER_MAX_BYTES, 0, &s->roster_len);
    json_decref(j);
    if (rc != 0) {
        rf_api_error(r, 400, "bad_request", "roster must be a base64url signed roster");
        goto out;
    }
    if ((rc = rf_api_roster(st, &prev, &version, &praw)) != 0) {
        rf_api_store_error(r, rc);
        goto out;
    }
    if (rf_roster_parse(next, s->roster_raw, s->roster_len) != 0) {
        rf_api_error(r, 422, "bad_roster", "this is not a signed roster");
        goto out;
    }
    if (next->version != version + 1) {
        rf_api_error(r, 409, "version", "a roster must be the next version of the latest");
        goto out;
    }
    if (rf_roster_verify(next, s->roster_raw, s->roster_len, prev, praw.data, praw.len, NULL) !=
        0) {
        rf_api_error(r, 422, "bad_roster",
                     "the roster does not extend the latest: it must carry its hash and be "
                     "signed by one of its admins");
        goto out;
    }
    rc = roster_members_ok(st, next, &why);
    if (rc < 0) {
        rf_api_store_error(r, rc);
        goto out;
    }
    if (rc == 0) {
        rf_api_error(r, 422, "bad_roster", why);
        goto out;
    }
    s->roster_version = next->version;
    rf_op_roster_put(&s->ops[0], next->version, s->roster_raw, s->roster_len);
    snprintf(s->target, sizeof(s->target), "%lu", (unsigned long)next->version);
    rf_api_audit_op_signed(&s->ops[1], s, "roster", s->target, NULL);
    rf_api_submit(r, s, s->ops, 2, roster_done);
out:
    free(prev);
    free(next);
    rf_buf_free(&praw);
    return 0;
}

/* ------------------------------------------------------------- GET grants */

static int list_query(struct rf_req *r, int64_t *after, int64_t *limit)
{
    if (rf_api_parse_int(rf_req_query(r, "after"), 0, INT64_MAX / 2, 0, after) != 0 ||
        rf_api_parse_int(rf_req_query(r, "limit"), 1, API_LIST_MAX, API_LIST_MAX, limit) != 0) {
        rf_api_error(r, 400, "bad_query", "after must be >= 0 and limit in 1..1000");
        return -1;
    }
    return 0;
}

/* {"id", "seq", "grant", "granter"}: granter "" for a grant stored before
 * granters were kept (schema < 3). */
static json_t *grant_json(const struct rf_grant_rec *g)
{
    static const uint8_t zero[32];
    json_t *granter = sodium_memcmp(g->granter, zero, 32) == 0
                          ? json_string("")
                          : rf_api_b64(g->granter, sizeof(g->granter));
    return json_pack("{sIsIsoso}", "id", (json_int_t)g->id, "seq", (json_int_t)g->seq, "grant",
                     rf_api_b64(g->grant, sizeof(g->grant)), "granter", granter);
}

int rf_api_grants_get_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    int64_t after, limit;
    if (list_query(r, &after, &limit) != 0)
        return 0;
    uint8_t keyid[RF_ENV_KEYID_BYTES];
    rf_keyid(keyid, s->me.box_pk);
    size_t n = 0;
    struct rf_grant_rec *g = calloc((size_t)limit + 1, sizeof(*g));
    int rc = g ? rf_store_grants_for(s->srv->store, keyid, after, g, (size_t)limit + 1, &n)
               : RF_ERR_NOMEM;
    if (rc != 0) {
        free(g);
        return rf_api_store_error(r, rc);
    }
    int more = n > (size_t)limit;
    if (more)
        n = (size_t)limit;
    json_t *arr = json_array();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(arr, grant_json(&g[i])) == 0;
    free(g);
    if (!ok) {
        json_decref(arr);
        return rf_api_error(r, 503, "nomem", "out of memory");
    }
    return rf_api_json(r, 200, json_pack("{sosb}", "grants", arr, "more", more));
}

/* ------------------------------------------------------------ POST grants */

int rf_api_grants_post_headers(struct rf_req *r)
{
    struct api_state *s;
    if (rf_api_auth(r, AUTH_MEMBER, &s) == 0)
        rf_api_body_cap(s, API_GRANTS_JSON_MAX);
    return 0;
}

/* Ops in the chunk starting at s->gnext: its grants and its audit entry
 * (every chunk holds GRANT_CHUNK grants but the last, grants_build). */
static size_t chunk_len(const struct api_state *s)
{
    size_t left = s->gops_n - s->gnext;
    return left < GRANT_CHUNK + 1 ? left : GRANT_CHUNK + 1;
}

static int grants_done(struct rf_req *r);

static int grants_submit(struct rf_req *r, struct api_state *s)
{
    return rf_api_submit(r, s, &s->gops[s->gnext], chunk_len(s), grants_done);
}

/* On the request's thread after each chunk: the next one, or the answer. */
static int grants_done(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    int rc = rf_api_op_rc(s, &s->gops[s->gnext]);
    if (rc == 0) {
        size_t len = chunk_len(s);
        s->gstored += len - 1;
        s->gnext += len;
        if (s->gnext < s->gops_n)
            return grants_submit(r, s); /* the next chunk's step carries on */
    }
    if (rc != 0)
        rf_api_store_error(r, rc);
    else
        rf_api_json(r, 200, json_pack("{sI}", "stored", (json_int_t)s->gstored));
    return 0;
}

/* Parses grant i of the request into its op; 0, or answers 400/422. */
static int grant_parse(struct rf_req *r, struct api_state *s, json_t *g, struct rf_op *op,
                       uint8_t data[88], const uint8_t (*members)[RF_ENV_KEYID_BYTES],
                       size_t nmembers)
{
    json_t *seq = json_object_get(g, "seq");
    const char *hex = json_string_value(json_object_get(g, "keyid"));
    size_t klen = 0;
    uint8_t keyid[RF_ENV_KEYID_BYTES];
    if (!json_is_object(g) || !json_is_integer(seq) || json_integer_value(seq) <= 0 || !hex ||
        strlen(hex) != 2 * RF_ENV_KEYID_BYTES ||
        rf_hex_decode(keyid, sizeof(keyid), &klen, hex, strlen(hex)) != 0 ||
        klen != RF_ENV_KEYID_BYTES || rf_api_b64_field(g, "grant", data, 88, 88, NULL) != 0) {
        rf_api_error(r, 400, "bad_request",
                     "each grant needs seq, keyid (16 hex digits) and grant (88 bytes, base64url)");
        return -1;
    }
    int64_t oseq = json_integer_value(seq);
    rf_op_grant_put(op, oseq, keyid, s->sig.sign_pk /* the granter */, data);
    if (memcmp(data, keyid, RF_ENV_KEYID_BYTES) != 0) {
        rf_api_error(r, 422, "bad_grant", "a grant must start with the key id it is for");
        return -1;
    }
    int member = 0;
    for (size_t i = 0; i < nmembers && !member; i++)
        member = memcmp(members[i], keyid, RF_ENV_KEYID_BYTES) == 0;
    if (!member) {
        rf_api_error(r, 422, "not_member", "grants are only for members of the latest roster");
        return -1;
    }
    struct rf_object o;
    int rc = rf_store_object_get(s->srv->store, oseq, &o);
    if (rc == RF_ERR_NOT_FOUND) {
        rf_api_error(r, 422, "no_object", "a grant names an object that does not exist");
        return -1;
    }
    if (rc != 0) {
        rf_api_store_error(r, rc);
        return -1;
    }
    return 0;
}

/* Builds s->gops: chunks of up to GRANT_CHUNK grants, each followed by its
 * audit entry. 0, or answered. */
static int grants_build(struct rf_req *r, struct api_state *s, json_t *arr)
{
    struct rf_roster *ro = NULL;
    struct rf_buf raw;
    uint32_t version;
    uint8_t(*members)[RF_ENV_KEYID_BYTES] = NULL;
    size_t n = json_array_size(arr), chunks = (n + GRANT_CHUNK - 1) / GRANT_CHUNK;
    int ret = -1;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    int rc = rf_api_roster(s->srv->store, &ro, &version, &raw);
    if (rc != 0) {
        rf_api_store_error(r, rc);
        goto out;
    }
    members = malloc(((size_t)ro->n + 1) * RF_ENV_KEYID_BYTES);
    s->gops = calloc(n + chunks, sizeof(*s->gops));
    s->gdata = calloc(n, sizeof(*s->gdata));
    s->gtarget = calloc(chunks, sizeof(*s->gtarget));
    if (!members || !s->gops || !s->gdata || !s->gtarget) {
        rf_api_error(r, 503, "nomem", "out of memory");
        goto out;
    }
    for (size_t m = 0; m < ro->n; m++)
        rf_keyid(members[m], ro->members[m].box_pk);
    size_t k = 0;
    for (size_t c = 0; c < chunks; c++) {
        size_t first = c * GRANT_CHUNK, last = first + GRANT_CHUNK < n ? first + GRANT_CHUNK : n;
        for (size_t i = first; i < last; i++)
            if (grant_parse(r, s, json_array_get(arr, i), &s->gops[k++], s->gdata[i],
                            (const uint8_t(*)[RF_ENV_KEYID_BYTES])members, ro->n) != 0)
                goto out;
        snprintf(s->gtarget[c], sizeof(s->gtarget[c]), "%zu", last - first);
        rf_api_audit_op_signed(&s->gops[k++], s, "grant", s->gtarget[c], NULL);
    }
    s->gops_n = k;
    ret = 0;
out:
    free(members);
    free(ro);
    rf_buf_free(&raw);
    return ret;
}

int rf_api_grants_post_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    json_t *j = body_object(r, s);
    if (!j)
        return 0;
    json_t *arr = json_object_get(j, "grants");
    if (!json_is_array(arr)) {
        json_decref(j);
        return rf_api_error(r, 400, "bad_request", "body must be {\"grants\": [...]}");
    }
    if (json_array_size(arr) > API_GRANTS_MAX) {
        json_decref(j);
        return rf_api_error(r, 413, "too_many", "at most 1000 grants per request");
    }
    if (json_array_size(arr) == 0) {
        json_decref(j);
        return rf_api_json(r, 200, json_pack("{si}", "stored", 0));
    }
    int rc = grants_build(r, s, arr);
    json_decref(j);
    if (rc != 0)
        return 0;
    return grants_submit(r, s);
}

/* -------------------------------------------------------------- GET audit */

static json_t *audit_json(const struct rf_audit_entry *e)
{
    static const uint8_t zero[32];
    char prev[65], hash[65];
    rf_hex_encode(prev, sizeof(prev), e->prev, sizeof(e->prev));
    rf_hex_encode(hash, sizeof(hash), e->hash, sizeof(e->hash));
    json_t *actor =
        sodium_memcmp(e->actor, zero, 32) == 0 ? json_string("") : rf_api_b64(e->actor, 32);
    json_t *j =
        json_pack("{sIsIsossssssss}", "id", (json_int_t)e->id, "day", (json_int_t)e->day, "actor",
                  actor, "action", e->action, "target", e->target, "prev", prev, "hash", hash);
    if (j && e->req_len > 0) /* the caseworker's signed request (audit v2) */
        json_object_set_new(j, "request", rf_api_b64(e->req, e->req_len));
    return j;
}

int rf_api_audit_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    int64_t after, limit;
    if (list_query(r, &after, &limit) != 0)
        return 0;
    size_t n = 0;
    struct rf_audit_entry *e = calloc((size_t)limit + 1, sizeof(*e));
    int rc = e ? rf_store_audit_list(s->srv->store, (uint64_t)after, e, (size_t)limit + 1, &n)
               : RF_ERR_NOMEM;
    if (rc != 0) {
        free(e);
        return rf_api_store_error(r, rc);
    }
    int more = n > (size_t)limit;
    if (more)
        n = (size_t)limit;
    json_t *arr = json_array();
    int ok = arr != NULL;
    for (size_t i = 0; ok && i < n; i++)
        ok = json_array_append_new(arr, audit_json(&e[i])) == 0;
    free(e);
    if (!ok) {
        json_decref(arr);
        return rf_api_error(r, 503, "nomem", "out of memory");
    }
    return rf_api_json(r, 200, json_pack("{sosb}", "entries", arr, "more", more));
}
