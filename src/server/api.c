/*
 * api.c - the staff JSON API under /api/v1/ (routes in rf_api_routes; the
 * wire formats are in the plaintext-formats note and docs/staff.md).
 *
 * Every request is authenticated the same way, in on_headers, before a body
 * byte is looked at: the Authorization header (bounded) is parsed, the
 * timestamp must be within RF_APISIG_MAX_SKEW of our clock, the key must be
 * an enrolled caseworker (for /enroll and GET /roster: any key, checked
 * later), the Ed25519 signature must cover method, target, time, nonce and
 * the claimed body hash, and then, in this order: the key must be on the
 * latest roster (every route but /enroll, so an admin who removes a lost
 * laptop's key locks it out of reads too; GET /roster also serves a
 * newcomer's key never on a roster, waiting for approval), and only then is
 * its nonce recorded: in this process's front cache (api_nonce.c) and in the
 * store, the authority across restarts and processes, the request suspended
 * until that is durable. A key off the roster thus takes no nonce space;
 * requests that take no nonce change nothing (enrollment: the token is
 * one-use; a newcomer's or stranger's roster request). The body is hashed
 * while it streams and compared in on_end before anything is done.
 *
 * Writes go through the group committer and the answer is sent only once
 * they are durable (the request is suspended meanwhile). Every error is JSON
 * {"error","message"}. Nothing here logs a key, a name or a body byte.
 *
 * Enrollment is one all-or-nothing committer group: the one-time token is
 * spent (for the first admin only if it is an admin token), the staff key
 * stored and, for the first admin, roster v1 stored, or none of it.
 *
 * Every staff action is stored in one group with its audit entry (api_priv.h;
 * actions and targets in docs/storage.md): enroll, reply and event (target:
 * the case), schedule; a fetch queues its entry without waiting, and is
 * refused if even that cannot be queued. Envelopes posted to a case are
 * checked without keys: a reply must be sealed to the person and the whole
 * latest roster; an event to exactly the latest roster, and never to the
 * person. The reserved case "teamconfig" takes events only.
 */
#include "lib/apisig.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/roster.h"
#include "server/api_listed.h"
#include "server/api_nonce.h"
#include "server/api_priv.h"
#include "server/errmap.h"
#include "server/http.h"
#include "server/purge.h"
#include "server/routes.h"
#include "server/session.h"
#include "server/srv.h"
#include "store/commit.h"
#include "store/store.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define API_NONCE_CAP 65536
#define API_TOKEN_MAX 128
/* Largest envelope header: magic, version, kind, nrecip, stanzas, stream header, commitment. */
#define API_ENV_HEAD_MAX RF_ENV_HEADER_MAX

#define TEAMCONFIG "teamconfig"

static void state_free(void *p)
{
    struct api_state *s = p;
    if (!s)
        return;
    rf_buf_free(&s->body);
    free(s->head);
    rf_put_free(s->put);
    free(s->roster_raw);
    free(s->gops);
    free(s->gdata);
    free(s->gtarget);
    sodium_memzero(s->token_hash, sizeof(s->token_hash));
    sodium_memzero(s->token, sizeof(s->token));
    free(s);
}

/* ---------------------------------------------------------------- replies */

int rf_api_error(struct rf_req *r, unsigned status, const char *code, const char *msg)
{
    rf_req_respond_json_error(r, status, code, msg);
    return 0;
}

int rf_api_json(struct rf_req *r, unsigned status, json_t *j)
{
    if (rf_req_respond_json(r, status, j) != 0)
        return rf_api_error(r, 503, "nomem", "out of memory");
    return 0;
}

int rf_api_store_error(struct rf_req *r, int rc)
{
    const struct rf_answer *a = rf_errmap_store(rc); /* errmap.h */
    return rf_api_error(r, a->status, a->code, a->message);
}

json_t *rf_api_b64(const uint8_t *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    json_t *j = NULL;
    if (rf_b64_encode(s, cap, p, n) == 0)
        j = json_string(s);
    free(s);
    return j;
}

/* ------------------------------------------------------------------ auth */

static int64_t now_s(void)
{
    return (int64_t)time(NULL);
}

int rf_api_roster(struct rf_store *st, struct rf_roster **out, uint32_t *version,
                  struct rf_buf *raw)
{
    *out = NULL;
    struct rf_roster *ro = malloc(sizeof(*ro));
    int rc = ro ? rf_store_roster_latest(st, version, raw) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_roster_parse(ro, raw->data, raw->len);
    if (rc == 0)
        *out = ro;
    else
        free(ro);
    return rc;
}

/* The role of sign_pk on the latest roster: RF_ROLE_*, -1 if not on it (or
 * no roster yet), or an rf_err (< -1); *latest the latest version (0: none). */
static int roster_role(struct rf_store *st, const uint8_t sign_pk[32], uint32_t *latest)
{
    struct rf_buf raw;
    struct rf_roster *ro = NULL;
    int role = -1;
    *latest = 0;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    int rc = rf_api_roster(st, &ro, latest, &raw);
    if (rc == 0) {
        int i = rf_roster_find(ro, sign_pk);
        if (i >= 0)
            role = ro->members[i].role;
    }
    free(ro);
    rf_buf_free(&raw);
    if (rc != 0 && rc != RF_ERR_NOT_FOUND)
        return rc < -1 ? rc : RF_ERR_DB;
    return role;
}

/* Who may go on, before any nonce is recorded: a key on the latest roster
 * (an admin for AUTH_ADMIN); for AUTH_ROSTER also a newcomer's key that was
 * never on a roster, which waits for its approval (*pending = 1: it takes
 * no nonce). A removed key (on an earlier version only) gets nothing. 0, or
 * answered. */
static int roster_gate(struct rf_req *r, struct api_state *s, enum api_auth need, int *pending)
{
    struct rf_srv *srv = s->srv;
    uint32_t latest = 0;
    *pending = 0;
    s->role = roster_role(srv->store, s->sig.sign_pk, &latest);
    if (s->role < -1) {
        rf_api_store_error(r, s->role);
        return -1;
    }
    if (s->role >= 0 && need == AUTH_ADMIN && s->role != RF_ROLE_ADMIN) {
        rf_api_error(r, 403, "not_admin", "only an admin of the roster may do this");
        return -1;
    }
    if (s->role >= 0)
        return 0;
    int ever = rf_listed_ever(srv->listed, srv->store, latest, s->sig.sign_pk);
    if (ever < 0) {
        rf_api_store_error(r, ever);
        return -1;
    }
    if (ever) {
        rf_api_error(r, 403, "not_on_roster",
                     "this key was removed from the roster: it can read and write nothing here "
                     "any more; talk to an admin");
        return -1;
    }
    if (need == AUTH_ROSTER) {
        *pending = 1;
        return 0;
    }
    rf_api_error(r, 403, "not_on_roster",
                 "this key is not on the roster yet; ask an admin to approve it");
    return -1;
}

/* Runs on the committer thread once the nonce is durable (or refused). It
 * only records the outcome and lets the request go on: the HTTP thread may
 * still be in the route's on_headers, so the answer is given by
 * nonce_refused, from the next callback. */
static void nonce_done(void *arg, struct rf_op *op)
{
    struct api_state *s = arg;
    s->nonce_rc = rf_op_status(op);
    __atomic_store_n(&s->nonce_state, NONCE_DONE, __ATOMIC_RELEASE);
    rf_req_resume(s->req);
}

/* Records the request's nonce before it is served: first in this process's
 * front cache (a replay here is refused at once, without a store write),
 * then in the store, the authority, shared by every process and kept across
 * restarts; the request is suspended until that is durable (a group commit).
 * 0 (the nonce is on its way), or answered. */
static int nonce_record(struct rf_req *r, struct api_state *s, int64_t now)
{
    struct rf_srv *srv = s->srv;
    int rc = rf_nonces_check(srv->nonces, s->sig.nonce, now);
    if (rc == RF_ERR_EXISTS) {
        rf_api_error(r, 401, "replay", "request nonce was already used");
        return -1;
    }
    /* a full front cache (RF_ERR_BUSY) refuses nothing: the store decides */
    struct rf_op *op = &s->nonce_op;
    rf_op_nonce_put(op, s->sig.nonce, s->sig.ts);
    __atomic_store_n(&s->nonce_state, NONCE_PENDING, __ATOMIC_RELEASE);
    rf_req_suspend(r);
    rc = rf_committer_submit(srv->committer, op, nonce_done, s);
    if (rc != 0) {
        __atomic_store_n(&s->nonce_state, NONCE_NONE, __ATOMIC_RELEASE);
        rf_req_resume(r);
        rf_api_store_error(r, rc);
        return -1;
    }
    return 0;
}

/* Answers (and returns 1) if the request's nonce was refused by the store
 * (a replay, possibly to another process or before a restart) or could not
 * be stored. */
static int nonce_refused(struct rf_req *r, struct api_state *s)
{
    int st = __atomic_load_n(&s->nonce_state, __ATOMIC_ACQUIRE);
    if (st == NONCE_NONE)
        return 0;
    if (st != NONCE_DONE) { /* cannot happen: the request waited for it */
        rf_api_error(r, 503, "busy", "the server is busy; try again shortly");
        return 1;
    }
    if (s->nonce_rc == 0)
        return 0;
    if (s->nonce_rc == RF_ERR_EXISTS)
        rf_api_error(r, 401, "replay", "request nonce was already used");
    else
        rf_api_store_error(r, s->nonce_rc);
    return 1;
}

/* Authenticates the request's headers; answers and returns nonzero on refusal.
 * On success the request has a state with the body hash running (and, for
 * a request that takes a nonce, is suspended until the nonce is stored). */
int rf_api_auth(struct rf_req *r, enum api_auth need, struct api_state **out)
{
    struct rf_srv *srv = rf_req_srv(r);
    *out = NULL;
    /* crypto_generichash_state needs 64-byte alignment, more than calloc's */
    size_t size = (sizeof(struct api_state) + 63) & ~(size_t)63;
    struct api_state *s = aligned_alloc(64, size);
    if (!s) {
        rf_api_error(r, 503, "nomem", "out of memory");
        return -1;
    }
    memset(s, 0, size);
    s->req = r;
    s->srv = srv;
    s->role = -1;
    rf_buf_init(&s->body, API_JSON_MAX);
    rf_req_set_state(r, s, state_free);

    const char *h = rf_req_header(r, "Authorization");
    size_t hlen = h ? strnlen(h, RF_APISIG_HEADER_MAX + 1) : 0;
    if (!h || hlen > RF_APISIG_HEADER_MAX || rf_apisig_parse(&s->sig, h, hlen) != 0) {
        rf_api_error(r, 401, "auth", "missing or malformed Authorization header");
        return -1;
    }
    int64_t now = now_s();
    if (s->sig.ts > now + RF_APISIG_MAX_SKEW || s->sig.ts < now - RF_APISIG_MAX_SKEW) {
        rf_api_error(r, 401, "clock_skew", "request time is too far from the server's clock");
        return -1;
    }
    int known = rf_store_staff_get(srv->store, s->sig.sign_pk, &s->me);
    if (known != 0 && known != RF_ERR_NOT_FOUND) {
        rf_api_store_error(r, known);
        return -1;
    }
    if (known == RF_ERR_NOT_FOUND && need != AUTH_ENROLL && need != AUTH_ROSTER) {
        rf_api_error(r, 401, "unknown_key", "this key is not enrolled");
        return -1;
    }
    if (rf_apisig_verify(&s->sig, rf_req_method(r), rf_req_target(r)) != 0) {
        rf_api_error(r, 401, "signature", "request signature does not verify");
        return -1;
    }
    /* The roster decides before any nonce is stored, so that no key off the
     * roster (a stranger, a removed caseworker, a newcomer not yet approved)
     * can fill the nonce space. Those that may go on without a nonce change
     * nothing and learn nothing they may not: a stranger enrolling (the
     * token is one-use) or asking whether a roster exists, and a newcomer
     * waiting for its approval reading the roster, public to every enrolled
     * key by design. */
    int pending = 0;
    if (need != AUTH_ENROLL && known == 0 && roster_gate(r, s, need, &pending) != 0)
        return -1;
    if (need != AUTH_ENROLL && known == 0 && !pending && nonce_record(r, s, now) != 0)
        return -1;
    crypto_generichash_init(&s->hs, NULL, 0, 32);
    *out = s;
    return 0;
}

/* Compares the streamed body's hash with the signed one; answers on mismatch. */
static int body_verified(struct rf_req *r, struct api_state *s)
{
    uint8_t h[32];
    crypto_generichash_final(&s->hs, h, sizeof(h));
    if (sodium_memcmp(h, s->sig.body_hash, sizeof(h)) != 0) {
        rf_api_error(r, 401, "body_hash", "request body does not match its signature");
        return 0;
    }
    return 1;
}

int rf_api_body_cap(struct api_state *s, size_t max)
{
    rf_buf_free(&s->body);
    rf_buf_init(&s->body, max);
    return 0;
}

int rf_api_json_body(struct rf_req *r, const uint8_t *p, size_t n)
{
    struct api_state *s = rf_req_state(r);
    if (!s || rf_req_responded(r) || nonce_refused(r, s))
        return 0;
    crypto_generichash_update(&s->hs, p, n);
    s->total += n;
    if (rf_buf_put(&s->body, p, n) != 0)
        return rf_api_error(r, 413, "too_large", "request body is too large");
    return 0;
}

static int member_headers(struct rf_req *r)
{
    struct api_state *s;
    rf_api_auth(r, AUTH_MEMBER, &s);
    return 0;
}

struct api_state *rf_api_ready(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    if (!s || rf_req_responded(r) || nonce_refused(r, s))
        return NULL;
    if (!body_verified(r, s))
        return NULL;
    return s;
}

/* ----------------------------------------------------------- GET roster */

static int roster_headers(struct rf_req *r)
{
    struct api_state *s;
    rf_api_auth(r, AUTH_ROSTER, &s);
    return 0;
}

static int roster_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    struct rf_store *st = s->srv->store;
    struct rf_buf raw;
    uint32_t version = 0;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    int rc = rf_store_roster_latest(st, &version, &raw);
    if (rc == RF_ERR_NOT_FOUND) {
        rf_buf_free(&raw);
        return rf_api_error(r, 404, "no_roster", "no roster yet: the first admin has not enrolled");
    }
    if (rc != 0) {
        rf_buf_free(&raw);
        return rf_api_store_error(r, rc);
    }
    /* Whether a roster exists is no secret (an enrolling admin asks); its
     * contents are for enrolled caseworkers. */
    struct rf_staff_rec rec;
    rc = rf_store_staff_get(st, s->sig.sign_pk, &rec);
    if (rc != 0) {
        rf_buf_free(&raw);
        if (rc == RF_ERR_NOT_FOUND)
            return rf_api_error(r, 401, "unknown_key", "this key is not enrolled");
        return rf_api_store_error(r, rc);
    }
    json_t *j = json_object();
    json_t *chain = json_array();
    int ok = j && chain;
    ok = ok && json_object_set_new(j, "version", json_integer(version)) == 0;
    ok = ok && json_object_set_new(j, "roster", rf_api_b64(raw.data, raw.len)) == 0;
    for (uint32_t v = 1; ok && v <= version; v++) {
        rf_buf_reset(&raw);
        rc = rf_store_roster_get(st, v, &raw);
        if (rc != 0)
            break;
        ok = json_array_append_new(chain, rf_api_b64(raw.data, raw.len)) == 0;
    }
    rf_buf_free(&raw);
    if (rc != 0) {
        json_decref(j);
        json_decref(chain);
        return rf_api_store_error(r, rc);
    }
    if (!ok || json_object_set_new(j, "chain", chain) != 0) {
        json_decref(j);
        return rf_api_error(r, 503, "nomem", "out of memory");
    }
    return rf_api_json(r, 200, j);
}

/* ---------------------------------------------------------- GET objects */

int rf_api_parse_int(const char *v, int64_t min, int64_t max, int64_t def, int64_t *out)
{
    if (!v) {
        *out = def;
        return 0;
    }
    size_t n = strnlen(v, 20);
    if (n == 0 || n > 18)
        return RF_ERR_FORMAT;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return RF_ERR_FORMAT;
        x = x * 10 + (v[i] - '0');
    }
    if (v[n] != '\0' || x < min || x > max)
        return RF_ERR_FORMAT;
    *out = x;
    return 0;
}

json_t *rf_api_objects_json(const struct rf_object *objs, size_t n, int more)
{
    /* each object made with jansson's direct calls, keys known to be valid
     * UTF-8 and distinct (json_pack parsed its format once per object: it
     * and the dump were a third of the server's CPU in a large sync,
     * docs/performance.md) */
    json_t *arr = json_array(), *page = json_object();
    int ok = arr && page;
    for (size_t i = 0; ok && i < n; i++) {
        const struct rf_object *o = &objs[i];
        json_t *j = json_object();
        ok = j != NULL && json_object_set_new_nocheck(j, "seq", json_integer(o->seq)) == 0 &&
             json_object_set_new_nocheck(j, "case", json_string(o->case_id)) == 0 &&
             json_object_set_new_nocheck(j, "kind", json_integer(o->kind)) == 0 &&
             json_object_set_new_nocheck(j, "size", json_integer((json_int_t)o->size)) == 0 &&
             json_object_set_new_nocheck(j, "day", json_integer(o->day)) == 0 &&
             json_object_set_new_nocheck(j, "roster", json_integer(o->roster)) == 0;
        if (json_array_append_new(arr, j) != 0)
            ok = 0;
    }
    ok = ok && json_object_set_nocheck(page, "objects", arr) == 0 &&
         json_object_set_new_nocheck(page, "more", json_boolean(more)) == 0;
    json_decref(arr);
    if (!ok) {
        json_decref(page);
        return NULL;
    }
    return page;
}

static int objects_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    int64_t after, limit;
    if (rf_api_parse_int(rf_req_query(r, "after"), 0, INT64_MAX / 2, 0, &after) != 0 ||
        rf_api_parse_int(rf_req_query(r, "limit"), 1, API_LIST_MAX, API_LIST_MAX, &limit) != 0)
        return rf_api_error(r, 400, "bad_query", "after must be >= 0 and limit in 1..1000");
    struct rf_object *objs = calloc((size_t)limit + 1, sizeof(*objs));
    if (!objs)
        return rf_api_error(r, 503, "nomem", "out of memory");
    size_t n = 0;
    int rc = rf_store_objects_since(s->srv->store, after, objs, (size_t)limit + 1, &n);
    if (rc != 0) {
        free(objs);
        return rf_api_store_error(r, rc);
    }
    int more = n > (size_t)limit;
    if (more)
        n = (size_t)limit;
    json_t *page = rf_api_objects_json(objs, n, more);
    free(objs);
    if (!page)
        return rf_api_error(r, 503, "nomem", "out of memory");
    return rf_api_json(r, 200, page);
}

static const char *path_tail(struct rf_req *r, const char *prefix)
{
    const char *p = rf_req_path(r);
    size_t n = strlen(prefix);
    if (!p || strncmp(p, prefix, n) != 0)
        return NULL;
    return p + n;
}

/* A fetch's audit entry, queued without waiting; freed by its completion. */
struct fetch_audit {
    struct rf_op op;
    char target[24];
    uint8_t req[RF_AUDIT_REQ_MAX];
};

/* Only frees: a lost entry is counted in the store's log by the batch that
 * failed (commit.h: a completion does no I/O). */
static void fetch_audit_done(void *arg, struct rf_op *op)
{
    (void)op;
    free(arg);
}

static int fetch_audit(struct api_state *s, int64_t seq)
{
    struct fetch_audit *fa = calloc(1, sizeof(*fa));
    if (!fa)
        return RF_ERR_NOMEM;
    snprintf(fa->target, sizeof(fa->target), "%lld", (long long)seq);
    rf_api_audit_op_signed(&fa->op, s, "fetch", fa->target, fa->req);
    int rc = rf_committer_submit(s->srv->committer, &fa->op, fetch_audit_done, fa);
    if (rc != 0)
        free(fa);
    return rc;
}

static int object_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    int64_t seq;
    const char *tail = path_tail(r, "/api/v1/objects/");
    if (!tail || rf_api_parse_int(tail, 1, INT64_MAX / 2, -1, &seq) != 0)
        return rf_api_error(r, 404, "not_found", "no such object");
    int fd = -1;
    uint64_t size = 0;
    int rc = rf_store_object_open(s->srv->store, seq, &fd, &size);
    if (rc != 0)
        return rf_api_store_error(r, rc);
    /* no unrecorded fetch: if its entry cannot even be queued, no bytes */
    if ((rc = fetch_audit(s, seq)) != 0) {
        close(fd);
        return rf_api_store_error(r, rc == RF_ERR_BUSY ? RF_ERR_BUSY : RF_ERR_DB);
    }
    if (rf_req_respond_fd(r, 200, "application/octet-stream", fd, size) != 0)
        return rf_api_error(r, 503, "nomem", "out of memory");
    return 0;
}

/* ------------------------------------------------------------ GET cases */

/* Copies a case id (lower-case letters and digits, RF_CASE_ID_LEN at most)
 * from the front of p up to end or '/'; returns the rest, or NULL. */
static const char *case_id_of(const char *p, char out[RF_CASE_ID_LEN + 1])
{
    size_t n = 0;
    if (!p)
        return NULL;
    while (p[n] && p[n] != '/') {
        char c = p[n];
        if (n >= RF_CASE_ID_LEN || !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')))
            return NULL;
        out[n] = c;
        n++;
    }
    if (n == 0)
        return NULL;
    out[n] = '\0';
    return p + n;
}

static int case_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    char cid[RF_CASE_ID_LEN + 1];
    const char *rest = case_id_of(path_tail(r, "/api/v1/cases/"), cid);
    if (!rest || *rest != '\0')
        return rf_api_error(r, 404, "not_found", "no such case");
    struct rf_source src;
    int rc = rf_store_source_by_case(s->srv->store, cid, &src);
    if (rc == RF_ERR_NOT_FOUND)
        return rf_api_error(r, 404, "not_found", "no such case");
    if (rc != 0)
        return rf_api_store_error(r, rc);
    return rf_api_json(r, 200,
                       json_pack("{sssosI}", "case", src.case_id, "pk", rf_api_b64(src.pk, 32),
                                 "day", (json_int_t)src.day));
}

/* --------------------------------- POST cases/X/replies|events|schedule */

void rf_api_audit_op(struct rf_op *op, const uint8_t *actor, const char *action, const char *target)
{
    rf_op_audit(op, actor, action, target, NULL, 0);
}

void rf_api_audit_op_signed(struct rf_op *op, struct api_state *s, const char *action,
                            const char *target, uint8_t *buf)
{
    if (s->areq_len == 0 &&
        rf_audit_req_encode(s->areq, &s->areq_len, rf_req_method(s->req), rf_req_target(s->req),
                            s->sig.ts, s->sig.nonce, s->sig.body_hash, s->sig.sig) != 0) {
        s->areq_len = 0; /* a path too long for a record: the entry stays unsigned */
        rf_op_audit(op, s->sig.sign_pk, action, target, NULL, 0);
        return;
    }
    if (buf)
        memcpy(buf, s->areq, s->areq_len);
    rf_op_audit(op, s->sig.sign_pk, action, target, buf ? buf : s->areq, s->areq_len);
}

/* A committer completion for an API request: only wakes it (commit.h); the
 * request's own thread reads the outcome in its rf_req_suspend_then step. */
static void api_op_done(void *arg, struct rf_op *op)
{
    struct api_state *s = arg;
    (void)op;
    rf_req_resume(s->req);
}

int rf_api_submit(struct rf_req *r, struct api_state *s, struct rf_op *ops, size_t n,
                  rf_req_resumed_fn then)
{
    s->submit_rc = 0;
    rf_req_suspend_then(r, then);
    int rc = rf_committer_submit_group(s->srv->committer, ops, n, api_op_done, s);
    if (rc != 0) {
        s->submit_rc = rc;
        rf_req_resume(r); /* then runs at once, on this thread */
    }
    return 0;
}

int rf_api_op_rc(const struct api_state *s, const struct rf_op *op)
{
    return s->submit_rc != 0 ? s->submit_rc : rf_op_status(op);
}

static const struct {
    const char *suffix;
    enum api_case_mode mode;
} case_routes[] = {
    {"/replies", CASE_REPLY},
    {"/events", CASE_EVENT},
    {"/schedule", CASE_SCHEDULE},
    {"/casekeys", CASE_CASEKEY},
};

static int cases_post_headers(struct rf_req *r)
{
    struct api_state *s;
    if (rf_api_auth(r, AUTH_MEMBER, &s) != 0)
        return 0;
    char cid[RF_CASE_ID_LEN + 1];
    const char *rest = case_id_of(path_tail(r, "/api/v1/cases/"), cid);
    for (size_t i = 0; rest && i < sizeof(case_routes) / sizeof(case_routes[0]); i++)
        if (strcmp(rest, case_routes[i].suffix) == 0)
            s->mode = case_routes[i].mode;
    if (s->mode == 0)
        return rf_api_error(r, 404, "not_found", "no such route");
    int rc = rf_store_source_by_case(s->srv->store, cid, &s->src);
    if (rc == RF_ERR_NOT_FOUND)
        return rf_api_error(r, 404, "not_found", "no such case");
    if (rc != 0)
        return rf_api_store_error(r, rc);
    snprintf(s->target, sizeof(s->target), "%s", s->src.case_id);
    if (s->mode != CASE_EVENT && strcmp(s->src.case_id, TEAMCONFIG) == 0)
        return rf_api_error(r, 422, "teamconfig", "the team's configuration takes events only");
    if (s->mode == CASE_SCHEDULE)
        return 0; /* a small JSON body, bounded by API_JSON_MAX */
    int64_t cl = rf_req_content_length(r);
    if (cl >= 0 && (uint64_t)cl > s->srv->limits.api_body_max)
        return rf_api_error(r, 413, "too_large", "envelope is too large");
    s->head = malloc(API_ENV_HEAD_MAX);
    if (!s->head || rf_put_begin(s->srv->store, 0, &s->put) != 0)
        return rf_api_error(r, 503, "nomem", "out of memory");
    return 0;
}

/* Streams an envelope: its header kept aside, the rest in memory while
 * small, then in a blob file. */
static int envelope_body(struct rf_req *r, const uint8_t *p, size_t n)
{
    struct api_state *s = rf_req_state(r);
    if (!s || rf_req_responded(r) || nonce_refused(r, s))
        return 0;
    if (n > s->srv->limits.api_body_max - s->total || s->total > s->srv->limits.api_body_max)
        return rf_api_error(r, 413, "too_large", "envelope is too large");
    crypto_generichash_update(&s->hs, p, n);
    s->total += n;
    if (s->head_len < API_ENV_HEAD_MAX) {
        size_t k = API_ENV_HEAD_MAX - s->head_len;
        if (k > n)
            k = n;
        memcpy(s->head + s->head_len, p, k);
        s->head_len += k;
    }
    int rc = rf_put_write(s->put, p, n);
    if (rc == RF_ERR_NOMEM)
        return rf_api_error(r, 503, "nomem", "out of memory");
    if (rc != 0)
        return rf_api_store_error(r, rc);
    return 0;
}

static int cases_post_body(struct rf_req *r, const uint8_t *p, size_t n)
{
    struct api_state *s = rf_req_state(r);
    if (s && s->mode == CASE_SCHEDULE)
        return rf_api_json_body(r, p, n);
    return envelope_body(r, p, n);
}

static int id_in(const uint8_t (*ids)[RF_ENV_KEYID_BYTES], size_t n, const uint8_t *want)
{
    for (size_t i = 0; i < n; i++)
        if (memcmp(ids[i], want, RF_ENV_KEYID_BYTES) == 0)
            return 1;
    return 0;
}

/* The recipients the server insists on. A reply: the person and every member
 * of the latest roster (others may be added: the client's own choice). An
 * event: exactly the latest roster's members, every one and no other key, so
 * that no person (and no key the server might slip in) can read case state. */
static int recipients_ok(struct api_state *s, const uint8_t (*ids)[RF_ENV_KEYID_BYTES], size_t nids,
                         int *ok)
{
    struct rf_buf raw;
    struct rf_roster *ro = NULL;
    uint32_t version;
    uint8_t(*want)[RF_ENV_KEYID_BYTES] = NULL;
    size_t nwant = 0;
    *ok = 0;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    int rc = rf_api_roster(s->srv->store, &ro, &version, &raw);
    if (rc != 0)
        goto out;
    want = malloc(((size_t)ro->n + 1) * RF_ENV_KEYID_BYTES);
    if (!want) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    for (size_t m = 0; m < ro->n; m++)
        rf_keyid(want[nwant++], ro->members[m].box_pk);
    if (s->mode == CASE_REPLY)
        rf_keyid(want[nwant++], s->src.pk);
    for (size_t i = 0; i < nwant; i++)
        if (!id_in(ids, nids, want[i]))
            goto out;
    if (s->mode != CASE_REPLY) /* an event or a CASEKEY: exactly the roster */
        for (size_t i = 0; i < nids; i++)
            if (!id_in((const uint8_t(*)[RF_ENV_KEYID_BYTES])want, nwant, ids[i]))
                goto out;
    *ok = 1;
out:
    free(want);
    free(ro);
    rf_buf_free(&raw);
    return rc;
}

/* On the request's thread once the action and its audit entry settled (a
 * failed envelope's blob is already gone: the store discards it). */
static int case_action_done(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    int rc = rf_api_op_rc(s, &s->ops[0]);
    if (rc != 0)
        rf_api_store_error(r, rc);
    else if (s->mode != CASE_SCHEDULE)
        rf_api_json(r, 200, json_pack("{sI}", "seq", (json_int_t)rf_op_seq(&s->ops[0])));
    else if (s->schedule_day == 0)
        rf_api_json(r, 200, json_pack("{sn}", "delete_day"));
    else
        rf_api_json(r, 200, json_pack("{sI}", "delete_day", (json_int_t)s->schedule_day));
    return 0;
}

/* Submits s->ops[0] with its audit entry as one group; answers on failure. */
int rf_api_submit_with_audit(struct rf_req *r, struct api_state *s, const char *action)
{
    rf_api_audit_op_signed(&s->ops[1], s, action, s->target, NULL);
    return rf_api_submit(r, s, s->ops, 2, case_action_done);
}

static int envelope_end(struct rf_req *r, struct api_state *s)
{
    if (rf_api_is_ev2(s))
        return rf_api_event_v2_end(r, s);
    uint8_t want_kind = s->mode == CASE_EVENT     ? RF_KIND_EVENT
                        : s->mode == CASE_CASEKEY ? RF_KIND_CASEKEY
                                                  : RF_KIND_REPLY;
    struct rf_env_header h;
    uint8_t(*ids)[RF_ENV_KEYID_BYTES] = malloc(RF_ENV_MAX_RECIPIENTS * RF_ENV_KEYID_BYTES);
    if (!ids)
        return rf_api_error(r, 503, "nomem", "out of memory");
    int rc = rf_envelope_header_parse(&h, ids, RF_ENV_MAX_RECIPIENTS, s->head, s->head_len);
    if (rc != 0 || h.kind != want_kind || h.header_len >= s->total) {
        free(ids);
        return rf_api_error(r, 422, "bad_envelope",
                            s->mode == CASE_EVENT     ? "body is not an event envelope"
                            : s->mode == CASE_CASEKEY ? "body is not a CASEKEY envelope"
                                                      : "body is not a reply envelope");
    }
    int ok = 0;
    size_t nids = h.nrecip < RF_ENV_MAX_RECIPIENTS ? h.nrecip : RF_ENV_MAX_RECIPIENTS;
    rc = recipients_ok(s, (const uint8_t(*)[RF_ENV_KEYID_BYTES])ids, nids, &ok);
    free(ids);
    if (rc != 0)
        return rf_api_store_error(r, rc);
    if (!ok)
        return rf_api_error(r, 422, "recipients",
                            s->mode != CASE_REPLY
                                ? "an event or a case key must be sealed to exactly the roster's "
                                  "members"
                                : "reply must be sealed to the person and every roster member");

    rc = rf_op_object_put(&s->ops[0], s->src.id, want_kind, s->put);
    if (rc != 0)
        return rf_api_store_error(r, rc);
    return rf_api_submit_with_audit(r, s,
                                    s->mode == CASE_EVENT     ? "event"
                                    : s->mode == CASE_CASEKEY ? "casekey"
                                                              : "reply");
}

/* {"closed": true} schedules the case's deletion for today + the instance's
 * retention days; {"closed": false} cancels it. */
static int schedule_end(struct rf_req *r, struct api_state *s)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)s->body.data, s->body.len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *closed = json_object_get(j, "closed");
    if (!json_is_object(j) || !json_is_boolean(closed)) {
        json_decref(j);
        return rf_api_error(r, 400, "bad_request", "body must be {\"closed\": true|false}");
    }
    int close_it = json_is_true(closed);
    json_decref(j);
    struct rf_retention ret;
    int rc = rf_retention_get(s->srv->store, &ret);
    if (rc != 0)
        return rf_api_store_error(r, rc);
    s->schedule_day = close_it ? rf_store_today() + ret.retention_days : 0;
    rf_op_case_schedule(&s->ops[0], s->src.id, s->schedule_day);
    return rf_api_submit_with_audit(r, s, "schedule");
}

static int cases_post_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    if (s->mode == CASE_SCHEDULE)
        return schedule_end(r, s);
    return envelope_end(r, s);
}

/* ---------------------------------------------------------- POST enroll */

static int enroll_headers(struct rf_req *r)
{
    struct api_state *s;
    rf_api_auth(r, AUTH_ENROLL, &s);
    return 0;
}

int rf_api_b64_field(json_t *obj, const char *key, uint8_t *out, size_t cap, size_t want,
                     size_t *outlen)
{
    json_t *v = json_object_get(obj, key);
    size_t n = 0;
    if (!json_is_string(v))
        return RF_ERR_FORMAT;
    if (rf_b64_decode(out, cap, &n, json_string_value(v), json_string_length(v)) != 0)
        return RF_ERR_FORMAT;
    if (want && n != want)
        return RF_ERR_FORMAT;
    if (outlen)
        *outlen = n;
    return 0;
}

static int name_ok(const char *name, size_t n)
{
    if (n == 0 || n > RF_NAME_MAX || strlen(name) != n)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f)
            return 0;
    }
    return 1;
}

/* The roster a first admin submits: version 1, signed by them, listing
 * exactly them, as admin, with the keys they enroll. */
static int first_roster_ok(const uint8_t *raw, size_t n, const struct rf_staff_rec *rec)
{
    struct rf_roster *ro = malloc(sizeof(*ro));
    int ok = 0;
    if (!ro)
        return 0;
    if (rf_roster_verify(ro, raw, n, NULL, NULL, 0, rec->sign_pk) == 0 && ro->version == 1 &&
        ro->n == 1 && ro->members[0].role == RF_ROLE_ADMIN &&
        memcmp(ro->members[0].sign_pk, rec->sign_pk, 32) == 0 &&
        memcmp(ro->members[0].box_pk, rec->box_pk, 32) == 0 &&
        strcmp(ro->members[0].name, rec->name) == 0)
        ok = 1;
    free(ro);
    return ok;
}

/* On the request's thread once the enrollment group is settled. */
static int enroll_done(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    const struct rf_op *ops = s->enroll_ops;
    int rc = rf_api_op_rc(s, &ops[0]);
    if (rc == RF_ERR_NOT_FOUND) {
        rf_api_error(r, 403, "token", "enrollment token is unknown or already used");
    } else if (rc == RF_ERR_AUTH) {
        rf_api_error(r, 403, "token", "the first caseworker needs an admin token");
    } else if (rc != 0) {
        rf_api_store_error(r, rc);
    } else {
        int admin = rf_op_role(&ops[0]) == RF_ROLE_ADMIN;
        if (s->first_admin) /* roster v1 stored: the person's pages may hand out codenames */
            atomic_store(&s->srv->line_open, 1);
        rf_log_num(RF_LOG_INFO, "caseworker enrolled", "admin", admin);
        rf_api_json(r, 200, json_pack("{ss}", "role", admin ? "admin" : "member"));
    }
    return 0;
}

static int enroll_end(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    if (!s || rf_req_responded(r))
        return 0;
    if (!body_verified(r, s))
        return 0;
    struct rf_store *st = s->srv->store;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)s->body.data, s->body.len, JSON_REJECT_DUPLICATES, &jerr);
    if (!json_is_object(j)) {
        json_decref(j);
        return rf_api_error(r, 400, "bad_json", "body must be a JSON object");
    }
    struct rf_staff_rec rec;
    memset(&rec, 0, sizeof(rec));
    json_t *name = json_object_get(j, "name");
    json_t *token = json_object_get(j, "token");
    if (!json_is_string(name) || !name_ok(json_string_value(name), json_string_length(name)) ||
        rf_api_b64_field(j, "sign_pk", rec.sign_pk, 32, 32, NULL) != 0 ||
        rf_api_b64_field(j, "box_pk", rec.box_pk, 32, 32, NULL) != 0 || !json_is_string(token) ||
        json_string_length(token) < 16 || json_string_length(token) > API_TOKEN_MAX) {
        json_decref(j);
        return rf_api_error(r, 400, "bad_request", "name, sign_pk, box_pk and token are required");
    }
    memcpy(rec.name, json_string_value(name), json_string_length(name));
    rf_enroll_token_hash(s->token_hash, json_string_value(token), json_string_length(token));

    json_t *roster = json_object_get(j, "roster");
    if (roster && !json_is_null(roster)) {
        s->roster_raw = malloc(RF_ROSTER_MAX_BYTES);
        if (!s->roster_raw) {
            json_decref(j);
            return rf_api_error(r, 503, "nomem", "out of memory");
        }
        if (rf_api_b64_field(j, "roster", s->roster_raw, RF_ROSTER_MAX_BYTES, 0, &s->roster_len) !=
            0) {
            json_decref(j);
            return rf_api_error(r, 400, "bad_request", "roster must be base64url");
        }
    }
    json_decref(j);

    if (sodium_memcmp(rec.sign_pk, s->sig.sign_pk, 32) != 0)
        return rf_api_error(r, 401, "signature", "enrollment must be signed by the enrolled key");
    struct rf_staff_rec old;
    int rc = rf_store_staff_get(st, rec.sign_pk, &old);
    if (rc == 0)
        return rf_api_error(r, 409, "enrolled", "this key is already enrolled");
    if (rc != RF_ERR_NOT_FOUND)
        return rf_api_store_error(r, rc);
    struct rf_buf raw;
    uint32_t version;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    rc = rf_store_roster_latest(st, &version, &raw);
    rf_buf_free(&raw);
    if (rc != 0 && rc != RF_ERR_NOT_FOUND)
        return rf_api_store_error(r, rc);
    s->first_admin = rc == RF_ERR_NOT_FOUND;
    if (!s->first_admin && s->roster_raw)
        return rf_api_error(r, 409, "roster_exists", "a roster exists: enroll without one");
    if (s->first_admin && !s->roster_raw)
        return rf_api_error(r, 422, "roster_required",
                            "no roster yet: the first admin must send a signed roster v1");
    if (s->first_admin && !first_roster_ok(s->roster_raw, s->roster_len, &rec))
        return rf_api_error(r, 422, "bad_roster",
                            "roster v1 must be signed by, and list only, the enrolling admin");

    /* One all-or-nothing group: the token is spent exactly when the key
     * (and, for the first admin, roster v1) is stored, and recorded. */
    s->staff = rec;
    struct rf_op *ops = s->enroll_ops;
    size_t n = 0;
    rf_op_token_use(&ops[n++], s->token_hash, s->first_admin);
    rf_op_staff_put(&ops[n++], &s->staff);
    if (s->first_admin)
        rf_op_roster_put(&ops[n++], 1, s->roster_raw, s->roster_len);
    /* signed by the key it enrolls (enroll_end checked s->staff is s->sig's) */
    rf_api_audit_op_signed(&ops[n++], s, "enroll", "", NULL);
    return rf_api_submit(r, s, ops, n, enroll_done);
}

/* ----------------------------------------------------------------- table */

const struct rf_route rf_api_routes[] = {
    {"POST", "/api/v1/enroll", 0, API_JSON_MAX, enroll_headers, rf_api_json_body, enroll_end},
    {"GET", "/api/v1/roster", 0, 0, roster_headers, NULL, roster_end},
    {"POST", "/api/v1/roster", 0, API_ROSTER_JSON_MAX, rf_api_roster_post_headers, rf_api_json_body,
     rf_api_roster_post_end},
    {"POST", "/api/v1/tokens", 0, API_JSON_MAX, rf_api_admin_headers, rf_api_json_body,
     rf_api_tokens_end},
    {"GET", "/api/v1/staff", 0, 0, rf_api_staff_headers, NULL, rf_api_staff_end},
    {"GET", "/api/v1/grants", 0, 0, member_headers, NULL, rf_api_grants_get_end},
    {"POST", "/api/v1/grants", 0, API_GRANTS_JSON_MAX, rf_api_grants_post_headers, rf_api_json_body,
     rf_api_grants_post_end},
    {"GET", "/api/v1/audit", 0, 0, member_headers, NULL, rf_api_audit_end},
    {"GET", "/api/v1/checkpoint", 0, 0, member_headers, NULL, rf_api_ckpt_get_end},
    {"POST", "/api/v1/checkpoint", 0, API_JSON_MAX, rf_api_admin_headers, rf_api_json_body,
     rf_api_ckpt_post_end},
    {"GET", "/api/v1/settings", 0, 0, member_headers, NULL, rf_api_settings_get_end},
    {"POST", "/api/v1/settings", 0, API_JSON_MAX, rf_api_admin_headers, rf_api_json_body,
     rf_api_settings_post_end},
    {"GET", "/api/v1/objects", 0, 0, member_headers, NULL, objects_end},
    {"GET", "/api/v1/objects/data", 0, 0, member_headers, NULL, rf_api_objects_data_end},
    {"GET", "/api/v1/objects/", RF_ROUTE_PREFIX, 0, member_headers, NULL, object_end},
    {"GET", "/api/v1/cases/", RF_ROUTE_PREFIX, 0, member_headers, NULL, case_end},
    {"POST", "/api/v1/cases/", RF_ROUTE_PREFIX, UINT64_MAX, cases_post_headers, cases_post_body,
     cases_post_end},
};
const size_t rf_api_routes_n = sizeof(rf_api_routes) / sizeof(rf_api_routes[0]);

int rf_api_init(struct rf_srv *srv)
{
    int rc = srv->nonces ? 0 : rf_nonces_new(&srv->nonces, API_NONCE_CAP);
    if (rc == 0 && !srv->listed)
        rc = rf_listed_new(&srv->listed);
    return rc;
}

void rf_api_free(struct rf_srv *srv)
{
    rf_nonces_free(srv->nonces);
    srv->nonces = NULL;
    rf_listed_free(srv->listed);
    srv->listed = NULL;
}

int rf_api_not_found(struct rf_req *r)
{
    return rf_api_error(r, 404, "not_found", "no such API route or method");
}
