/* api_team_test.c - the staff API's team routes, served for real over HTTP
 * and spoken to by the real client's signed requests (client/net.c), as an
 * attacker or a confused caseworker would: who may mint tokens, publish a
 * roster, post events, grants and schedules, and read the audit log (admin,
 * member, enrolled-but-pending, stranger); every refusal is a JSON error; a
 * roster that skips a version, is signed by a member, names an unenrolled
 * key or a wrong box key, or leaves no admin is refused; an event sealed also
 * to the person (or to fewer than the whole roster) is refused; grants open
 * the object for the member they are for and no other; every action lands
 * in the audit log as one verifiable chain; the purge command and the daily
 * purge thread delete a closed case, and the thread stops at once. */
#include "client/net.h"
#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/buf.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/roster.h"
#include "server/api_nonce.h"
#include "server/httpd.h"
#include "server/purge.h"
#include "server/routes.h"
#include "server/session.h"
#include "server/srv.h"
#include "store/commit.h"
#include "store/store.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "test_tmp.h"

#include <arpa/inet.h>
#include <ftw.h>
#include <jansson.h>
#include <netinet/in.h>
#include <sqlite3.h>
#include <sys/socket.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

struct env {
    char root[512];
    char dir[600];
    struct rf_srv srv;
    struct rf_http *http;
    char base[64];
    struct rf_staff_keys *anna, *boris, *vera, *mallory; /* admin, member, pending, stranger */
    struct rf_net *na, *nb, *nv, *nm;
    struct rf_source src;
    uint8_t src_sk[32];
    struct rf_buf v1, v2; /* the signed rosters */
};

static void put_token(struct env *e, const char *token, int role)
{
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_TOKEN_PUT;
    rf_enroll_token_hash(op.token_hash, token, strlen(token));
    op.role = role;
    assert_int_equal(rf_store_apply(e->srv.store, &op, 1), 0);
    assert_int_equal(op.status, 0);
}

static void add_member(struct rf_roster *r, const struct rf_staff_keys *k, uint8_t role)
{
    struct rf_member *m = &r->members[r->n++];
    snprintf(m->name, sizeof(m->name), "%s", k->name);
    m->role = role;
    memcpy(m->box_pk, k->box_pk, 32);
    memcpy(m->sign_pk, k->sign_pk, 32);
}

/* Signs roster `version` after prev (NULL for v1) listing keys[i] with roles[i]. */
static void roster_make(struct rf_buf *out, uint32_t version, const struct rf_buf *prev,
                        const struct rf_staff_keys *signer, const struct rf_staff_keys **keys,
                        const uint8_t *roles, size_t n)
{
    struct rf_roster *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->version = version;
    if (prev)
        rf_roster_hash(r->prev_hash, prev->data, prev->len);
    for (size_t i = 0; i < n; i++)
        add_member(r, keys[i], roles[i]);
    rf_buf_init(out, RF_ROSTER_MAX_BYTES);
    assert_int_equal(rf_roster_sign(out, r, signer), 0);
    free(r);
}

/* A signed request: the HTTP status (200 for any 2xx), *out the JSON answer. */
static long call(struct rf_net *n, const char *method, const char *path, const char *body,
                 json_t **out)
{
    json_t *j = NULL;
    int rc = rf_net_json(n, method, path, (const uint8_t *)body, body ? strlen(body) : 0,
                         body ? "application/json" : NULL, &j);
    if (out)
        *out = j;
    else
        json_decref(j);
    if (rc == 0)
        return 200;
    assert_int_equal(rc, RF_ERR_PROTOCOL);
    /* every refusal is a JSON error with a code */
    assert_true(rf_net_error_code(n)[0] != '\0');
    return rf_net_status(n);
}

static char *enroll_body(const struct rf_staff_keys *k, const char *token, const struct rf_buf *v1)
{
    char spk[64], bpk[64];
    rf_b64_encode(spk, sizeof(spk), k->sign_pk, 32);
    rf_b64_encode(bpk, sizeof(bpk), k->box_pk, 32);
    json_t *j =
        json_pack("{ssssssss}", "token", token, "name", k->name, "sign_pk", spk, "box_pk", bpk);
    if (v1) {
        char *b64 = malloc(RF_ROSTER_MAX_BYTES * 2);
        rf_b64_encode(b64, RF_ROSTER_MAX_BYTES * 2, v1->data, v1->len);
        json_object_set_new(j, "roster", json_string(b64));
        free(b64);
    }
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static long enroll(struct env *e, struct rf_net *n, const struct rf_staff_keys *k,
                   const char *token, const struct rf_buf *v1)
{
    char *body = enroll_body(k, token, v1);
    long st = call(n, "POST", "/api/v1/enroll", body, NULL);
    free(body);
    (void)e;
    return st;
}

static char *roster_body(const struct rf_buf *raw)
{
    char *b64 = malloc(RF_ROSTER_MAX_BYTES * 2);
    rf_b64_encode(b64, RF_ROSTER_MAX_BYTES * 2, raw->data, raw->len);
    json_t *j = json_pack("{ss}", "roster", b64);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    free(b64);
    return s;
}

static long post_roster(struct rf_net *n, const struct rf_buf *raw)
{
    char *body = roster_body(raw);
    long st = call(n, "POST", "/api/v1/roster", body, NULL);
    free(body);
    return st;
}

static int setup(void **state)
{
    struct env *e = calloc(1, sizeof(*e));
    const char *base = getenv("REFUGE_TEST_TMP");
    json_set_alloc_funcs(malloc, free);
    snprintf(e->root, sizeof(e->root), "%s/api-team-XXXXXX", base && *base ? base : "/tmp");
    assert_non_null(mkdtemp(e->root));
    snprintf(e->dir, sizeof(e->dir), "%s/data", e->root);
    assert_int_equal(rf_store_open(&e->srv.store, e->dir), 0);
    assert_int_equal(rf_committer_new(&e->srv.committer, e->srv.store), 0);
    e->srv.limits.api_body_max = 1 << 20;
    e->srv.datadir = e->dir;
    assert_int_equal(rf_api_init(&e->srv), 0);
    static const struct rf_route *tables[1];
    static size_t counts[1];
    tables[0] = rf_api_routes;
    counts[0] = rf_api_routes_n;
    assert_int_equal(rf_http_start(&e->http, &e->srv, "127.0.0.1:0", tables, counts, 1), 0);
    snprintf(e->base, sizeof(e->base), "http://127.0.0.1:%u", rf_http_port(e->http));
    struct rf_staff_keys **ks[4] = {&e->anna, &e->boris, &e->vera, &e->mallory};
    const char *names[4] = {"Anna", "Boris", "Vera", "Mallory"};
    struct rf_net **ns[4] = {&e->na, &e->nb, &e->nv, &e->nm};
    for (int i = 0; i < 4; i++) {
        *ks[i] = sodium_malloc(sizeof(struct rf_staff_keys));
        assert_int_equal(rf_staff_keys_generate(*ks[i], names[i]), 0);
        assert_int_equal(rf_net_new(ns[i], e->base, *ks[i]), 0);
    }
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_SOURCE_CREATE;
    randombytes_buf(op.lookup_id, 32);
    crypto_box_keypair(op.pk, e->src_sk);
    assert_int_equal(rf_store_apply(e->srv.store, &op, 1), 0);
    assert_int_equal(op.status, 0);
    e->src = op.source;
    *state = e;
    return 0;
}

static int teardown(void **state)
{
    struct env *e = *state;
    rf_net_free(e->na);
    rf_net_free(e->nb);
    rf_net_free(e->nv);
    rf_net_free(e->nm);
    rf_http_stop(e->http);
    rf_api_free(&e->srv);
    rf_committer_free(e->srv.committer);
    rf_store_close(e->srv.store);
    sodium_free(e->anna);
    sodium_free(e->boris);
    sodium_free(e->vera);
    sodium_free(e->mallory);
    rf_buf_free(&e->v1);
    rf_buf_free(&e->v2);
    nftw(e->root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(e);
    return 0;
}

/* Anna enrolls as first admin (roster v1), Boris and Vera enroll as members;
 * with_boris: Anna publishes v2 = {Anna admin, Boris member}; Vera stays
 * pending. */
static void team(struct env *e, int with_boris)
{
    const struct rf_staff_keys *k1[1] = {e->anna};
    const uint8_t r1[1] = {RF_ROLE_ADMIN};
    roster_make(&e->v1, 1, NULL, e->anna, k1, r1, 1);
    put_token(e, "admin-token-0123456789", RF_ROLE_ADMIN);
    put_token(e, "boris-token-0123456789", RF_ROLE_MEMBER);
    put_token(e, "vera-token-01234567890", RF_ROLE_MEMBER);
    assert_int_equal(enroll(e, e->na, e->anna, "admin-token-0123456789", &e->v1), 200);
    assert_int_equal(enroll(e, e->nb, e->boris, "boris-token-0123456789", NULL), 200);
    assert_int_equal(enroll(e, e->nv, e->vera, "vera-token-01234567890", NULL), 200);
    if (!with_boris)
        return;
    const struct rf_staff_keys *k2[2] = {e->anna, e->boris};
    const uint8_t r2[2] = {RF_ROLE_ADMIN, RF_ROLE_MEMBER};
    roster_make(&e->v2, 2, &e->v1, e->anna, k2, r2, 2);
    assert_int_equal(post_roster(e->na, &e->v2), 200);
}

/* ---- tokens, staff, roster ---- */

static json_t *staff_entry(json_t *staff, const char *name)
{
    for (size_t i = 0; i < json_array_size(json_object_get(staff, "staff")); i++) {
        json_t *s = json_array_get(json_object_get(staff, "staff"), i);
        if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
            return s;
    }
    return NULL;
}

static void tokens_staff_and_roster_publishing(void **state)
{
    struct env *e = *state;
    json_t *j = NULL;
    team(e, 0);

    /* tokens: admins only; the role must be one of two */
    assert_int_equal(call(e->nm, "POST", "/api/v1/tokens", "{\"role\":\"member\"}", NULL), 401);
    assert_int_equal(call(e->nb, "POST", "/api/v1/tokens", "{\"role\":\"member\"}", NULL), 403);
    assert_int_equal(call(e->na, "POST", "/api/v1/tokens", "{\"role\":\"boss\"}", NULL), 400);
    assert_int_equal(call(e->na, "POST", "/api/v1/tokens", "not json", NULL), 400);
    assert_int_equal(call(e->na, "POST", "/api/v1/tokens", "{}", NULL), 400);
    assert_int_equal(call(e->na, "POST", "/api/v1/tokens", "{\"role\":\"member\"}", &j), 200);
    const char *tok = json_string_value(json_object_get(j, "token"));
    assert_non_null(tok);
    assert_true(strlen(tok) >= 40);
    /* the minted token enrolls once */
    assert_int_equal(enroll(e, e->nm, e->mallory, tok, NULL), 200);
    struct rf_staff_keys *late = sodium_malloc(sizeof(*late));
    struct rf_net *nl = NULL;
    assert_int_equal(rf_staff_keys_generate(late, "Late"), 0);
    assert_int_equal(rf_net_new(&nl, e->base, late), 0);
    assert_int_equal(enroll(e, nl, late, tok, NULL), 403);
    json_decref(j);
    rf_net_free(nl);
    sodium_free(late);

    /* staff: members only; neither a pending key nor a stranger */
    assert_int_equal(call(e->nv, "GET", "/api/v1/staff", NULL, NULL), 403);
    assert_int_equal(call(e->na, "GET", "/api/v1/staff", NULL, &j), 200);
    json_t *a = staff_entry(j, "Anna"), *b = staff_entry(j, "Boris");
    assert_non_null(a);
    assert_non_null(b);
    assert_true(json_is_true(json_object_get(a, "on_roster")));
    assert_true(json_is_false(json_object_get(b, "on_roster")));
    assert_int_equal(json_integer_value(json_object_get(b, "day")), rf_store_today());
    uint8_t pk[32];
    size_t pkn = 0;
    const char *bpk = json_string_value(json_object_get(b, "box_pk"));
    assert_int_equal(rf_b64_decode(pk, sizeof(pk), &pkn, bpk, strlen(bpk)), 0);
    assert_memory_equal(pk, e->boris->box_pk, 32);
    json_decref(j);
    struct rf_staff_keys *stranger = sodium_malloc(sizeof(*stranger));
    struct rf_net *ns = NULL;
    assert_int_equal(rf_staff_keys_generate(stranger, "Nobody"), 0);
    assert_int_equal(rf_net_new(&ns, e->base, stranger), 0);
    assert_int_equal(call(ns, "GET", "/api/v1/staff", NULL, NULL), 401);

    /* roster v2: only the next version, extending v1, signed by an admin of
     * v1, listing enrolled keys exactly, with an admin */
    const struct rf_staff_keys *ab[2] = {e->anna, e->boris};
    const uint8_t roles_am[2] = {RF_ROLE_ADMIN, RF_ROLE_MEMBER};
    struct rf_buf r;
    roster_make(&r, 3, &e->v1, e->anna, ab, roles_am, 2); /* skips v2 */
    assert_int_equal(post_roster(e->na, &r), 409);
    rf_buf_free(&r);
    roster_make(&r, 2, &e->v1, e->boris, ab, roles_am, 2); /* signed by a non-member */
    assert_int_equal(post_roster(e->na, &r), 422);
    rf_buf_free(&r);
    roster_make(&r, 2, NULL, e->anna, ab, roles_am, 2); /* does not carry v1's hash */
    assert_int_equal(post_roster(e->na, &r), 422);
    rf_buf_free(&r);
    const struct rf_staff_keys *with_stranger[2] = {e->anna, stranger};
    roster_make(&r, 2, &e->v1, e->anna, with_stranger, roles_am, 2); /* not enrolled */
    assert_int_equal(post_roster(e->na, &r), 422);
    rf_buf_free(&r);
    /* Boris's name with another box key: the server would seal to a key Boris
     * never enrolled */
    struct rf_staff_keys *fake = sodium_malloc(sizeof(*fake));
    memcpy(fake, e->boris, sizeof(*fake));
    randombytes_buf(fake->box_pk, 32);
    const struct rf_staff_keys *with_fake[2] = {e->anna, fake};
    roster_make(&r, 2, &e->v1, e->anna, with_fake, roles_am, 2);
    assert_int_equal(post_roster(e->na, &r), 422);
    rf_buf_free(&r);
    sodium_free(fake);
    assert_int_equal(call(e->na, "POST", "/api/v1/roster", "{\"roster\":\"!!!\"}", NULL), 400);
    assert_int_equal(call(e->na, "POST", "/api/v1/roster", "{\"roster\":\"AAAA\"}", NULL), 422);
    assert_int_equal(call(e->na, "POST", "/api/v1/roster", "[]", NULL), 400);
    /* a good v2, but from a pending member or a stranger: refused */
    roster_make(&e->v2, 2, &e->v1, e->anna, ab, roles_am, 2);
    assert_int_equal(post_roster(e->nb, &e->v2), 403);
    assert_int_equal(post_roster(ns, &e->v2), 401);
    assert_int_equal(call(e->na, "GET", "/api/v1/roster", NULL, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 1); /* nothing stored */
    json_decref(j);
    /* from the admin: stored, once */
    char *body = roster_body(&e->v2);
    assert_int_equal(call(e->na, "POST", "/api/v1/roster", body, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    json_decref(j);
    assert_int_equal(call(e->na, "POST", "/api/v1/roster", body, NULL), 409);
    free(body);
    assert_int_equal(call(e->nb, "GET", "/api/v1/roster", NULL, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 2);
    assert_int_equal(json_array_size(json_object_get(j, "chain")), 2);
    json_decref(j);
    assert_int_equal(call(e->nb, "GET", "/api/v1/staff", NULL, &j), 200);
    assert_true(json_is_true(json_object_get(staff_entry(j, "Boris"), "on_roster")));
    assert_true(json_is_false(json_object_get(staff_entry(j, "Vera"), "on_roster")));
    json_decref(j);
    /* a member now, still no admin */
    assert_int_equal(call(e->nb, "POST", "/api/v1/tokens", "{\"role\":\"admin\"}", NULL), 403);
    rf_net_free(ns);
    sodium_free(stranger);
}

/* ---- events, replies, schedule ---- */

static long post_env(struct rf_net *n, const char *case_id, const char *what, uint8_t kind,
                     const uint8_t (*pks)[32], size_t npk)
{
    struct rf_buf ct;
    char path[96];
    const char *plain = "{\"v\":1,\"op\":\"note\",\"value\":\"x\"}";
    rf_buf_init(&ct, 1 << 20);
    assert_int_equal(rf_envelope_seal(&ct, kind, pks, npk, (const uint8_t *)plain, strlen(plain)),
                     0);
    snprintf(path, sizeof(path), "/api/v1/cases/%s/%s", case_id, what);
    int rc = rf_net_json(n, "POST", path, ct.data, ct.len, "application/octet-stream", NULL);
    rf_buf_free(&ct);
    return rc == 0 ? 200 : rf_net_status(n);
}

static void events_replies_and_schedule(void **state)
{
    struct env *e = *state;
    json_t *j = NULL;
    team(e, 1);
    const char *cid = e->src.case_id;
    uint8_t pks[4][32];
    memcpy(pks[0], e->anna->box_pk, 32);
    memcpy(pks[1], e->boris->box_pk, 32);
    memcpy(pks[2], e->src.pk, 32);
    memcpy(pks[3], e->vera->box_pk, 32);
    const uint8_t(*k)[32] = (const uint8_t(*)[32])pks;

    /* events: sealed to exactly the roster */
    assert_int_equal(post_env(e->nb, cid, "events", RF_KIND_EVENT, k, 2), 200);
    assert_int_equal(post_env(e->nb, cid, "events", RF_KIND_EVENT, k, 3), 422); /* + person */
    assert_int_equal(post_env(e->nb, cid, "events", RF_KIND_EVENT, k, 1), 422); /* Boris missing */
    uint8_t extra[3][32];
    memcpy(extra[0], pks[0], 32);
    memcpy(extra[1], pks[1], 32);
    memcpy(extra[2], pks[3], 32); /* + a pending member */
    assert_int_equal(post_env(e->nb, cid, "events", RF_KIND_EVENT, (const uint8_t(*)[32])extra, 3),
                     422);
    assert_int_equal(post_env(e->nb, cid, "events", RF_KIND_REPLY, k, 2), 422); /* wrong kind */
    assert_int_equal(post_env(e->nv, cid, "events", RF_KIND_EVENT, k, 2), 403); /* pending */
    assert_int_equal(post_env(e->nm, cid, "events", RF_KIND_EVENT, k, 2), 401); /* stranger */
    assert_int_equal(post_env(e->nb, "zzzzzzzzzz", "events", RF_KIND_EVENT, k, 2), 404);
    assert_int_equal(post_env(e->nb, cid, "notes", RF_KIND_EVENT, k, 2), 404);
    assert_int_equal(post_env(e->nb, "Bad/Case", "events", RF_KIND_EVENT, k, 2), 404);
    /* the team's configuration: events only */
    assert_int_equal(post_env(e->na, "teamconfig", "events", RF_KIND_EVENT, k, 2), 200);
    assert_int_equal(post_env(e->na, "teamconfig", "replies", RF_KIND_REPLY, k, 3), 422);
    assert_int_equal(
        call(e->na, "POST", "/api/v1/cases/teamconfig/schedule", "{\"closed\":true}", NULL), 422);
    /* replies: the person and the whole roster */
    assert_int_equal(post_env(e->nb, cid, "replies", RF_KIND_REPLY, k, 3), 200);
    assert_int_equal(post_env(e->nb, cid, "replies", RF_KIND_REPLY, k, 2), 422);
    /* events show in the object listing with their kind */
    assert_int_equal(call(e->nb, "GET", "/api/v1/objects", NULL, &j), 200);
    json_t *objs = json_object_get(j, "objects");
    assert_int_equal(json_array_size(objs), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(objs, 0), "kind")),
                     RF_KIND_EVENT);
    assert_string_equal(json_string_value(json_object_get(json_array_get(objs, 1), "case")),
                        "teamconfig");
    json_decref(j);

    /* schedule: closed -> today + retention (default 90), reopened -> null */
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/cases/%s/schedule", cid);
    assert_int_equal(call(e->nb, "POST", path, "{\"closed\":true}", &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "delete_day")),
                     rf_store_today() + RF_RETENTION_DAYS_DEFAULT);
    json_decref(j);
    assert_int_equal(call(e->nb, "POST", path, "{\"closed\":false}", &j), 200);
    assert_true(json_is_null(json_object_get(j, "delete_day")));
    json_decref(j);
    assert_int_equal(call(e->nb, "POST", path, "{\"closed\":\"yes\"}", NULL), 400);
    assert_int_equal(call(e->nb, "POST", path, "closed", NULL), 400);
    assert_int_equal(call(e->nv, "POST", path, "{\"closed\":true}", NULL), 403);
    assert_int_equal(
        call(e->nb, "POST", "/api/v1/cases/zzzzzzzzzz/schedule", "{\"closed\":true}", NULL), 404);
    /* with a retention of 0 days the case closed today goes at the next purge */
    struct rf_retention ret = {0, 0};
    assert_int_equal(rf_retention_put(e->srv.store, &ret), 0);
    assert_int_equal(call(e->nb, "POST", path, "{\"closed\":true}", &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "delete_day")), rf_store_today());
    json_decref(j);
    struct rf_purge_counts pc;
    assert_int_equal(rf_purge_run(e->srv.store, &pc), 0);
    assert_int_equal(pc.cases, 1);
    assert_int_equal(pc.objects, 2); /* the event and the reply; nothing of teamconfig's */
    struct rf_source gone;
    assert_int_equal(rf_store_source_by_case(e->srv.store, cid, &gone), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_store_source_by_case(e->srv.store, "teamconfig", &gone), 0);
    assert_int_equal(post_env(e->nb, cid, "events", RF_KIND_EVENT, k, 2), 404);
}

/* ---- grants ---- */

static int collect(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* A message from the person sealed to Anna alone (sent before Boris joined). */
static int64_t old_message(struct env *e, const char *text, struct rf_buf *ct)
{
    uint8_t pk[1][32];
    memcpy(pk[0], e->anna->box_pk, 32);
    rf_buf_init(ct, 1 << 20);
    assert_int_equal(rf_envelope_seal(ct, RF_KIND_MESSAGE, (const uint8_t(*)[32])pk, 1,
                                      (const uint8_t *)text, strlen(text)),
                     0);
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_OBJECT_PUT;
    op.source_id = e->src.id;
    op.kind = RF_KIND_MESSAGE;
    op.data = ct->data;
    op.len = ct->len;
    assert_int_equal(rf_store_apply(e->srv.store, &op, 1), 0);
    assert_int_equal(op.status, 0);
    return op.seq;
}

static char *grants_body(size_t n, const int64_t *seqs, const uint8_t (*grants)[RF_GRANT_BYTES],
                         const uint8_t *keyid_override)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        char hex[17], b64[160];
        rf_hex_encode(hex, sizeof(hex), keyid_override ? keyid_override : grants[i], 8);
        rf_b64_encode(b64, sizeof(b64), grants[i], RF_GRANT_BYTES);
        json_array_append_new(
            arr, json_pack("{sIssss}", "seq", (json_int_t)seqs[i], "keyid", hex, "grant", b64));
    }
    json_t *j = json_pack("{so}", "grants", arr);
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    return s;
}

static void grants_open_objects_for_their_member_only(void **state)
{
    struct env *e = *state;
    json_t *j = NULL;
    team(e, 1);
    struct rf_buf ct, plain;
    const char *text = "I need a route out";
    int64_t seq = old_message(e, text, &ct);

    /* Anna, who can read it, grants it to Boris */
    uint8_t *key = sodium_malloc(32);
    uint8_t grant[1][RF_GRANT_BYTES];
    assert_int_equal(
        rf_envelope_content_key(key, ct.data, ct.len, e->anna->box_pk, e->anna->box_sk), 0);
    assert_int_equal(rf_grant_make(grant[0], key, e->boris->box_pk), 0);
    char *body = grants_body(1, &seq, (const uint8_t(*)[RF_GRANT_BYTES])grant, NULL);
    assert_int_equal(call(e->nv, "POST", "/api/v1/grants", body, NULL), 403); /* pending */
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", body, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "stored")), 1);
    json_decref(j);
    /* the same again (a second rewrap): accepted, nothing doubled */
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", body, NULL), 200);
    free(body);

    /* Boris sees it; Anna has none for her own key */
    assert_int_equal(call(e->nb, "GET", "/api/v1/grants", NULL, &j), 200);
    json_t *gs = json_object_get(j, "grants");
    assert_int_equal(json_array_size(gs), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(gs, 0), "seq")), seq);
    const char *gb64 = json_string_value(json_object_get(json_array_get(gs, 0), "grant"));
    uint8_t got[RF_GRANT_BYTES];
    size_t gn = 0;
    assert_int_equal(rf_b64_decode(got, sizeof(got), &gn, gb64, strlen(gb64)), 0);
    assert_int_equal(gn, RF_GRANT_BYTES);
    assert_memory_equal(got, grant[0], RF_GRANT_BYTES);
    assert_true(json_is_false(json_object_get(j, "more")));
    json_decref(j);
    assert_int_equal(call(e->na, "GET", "/api/v1/grants", NULL, &j), 200);
    assert_int_equal(json_array_size(json_object_get(j, "grants")), 0);
    json_decref(j);
    assert_int_equal(call(e->nb, "GET", "/api/v1/grants?limit=0", NULL, NULL), 400);
    assert_int_equal(call(e->nv, "GET", "/api/v1/grants", NULL, NULL), 403);

    /* and Boris opens the old message with it, fetched over the API */
    struct rf_buf fetched;
    char path[64];
    rf_buf_init(&fetched, 1 << 20);
    snprintf(path, sizeof(path), "/api/v1/objects/%lld", (long long)seq);
    assert_int_equal(rf_net_download(e->nb, path, 1 << 20, collect, &fetched), 0);
    assert_int_equal(fetched.len, ct.len);
    struct rf_open *o = NULL;
    rf_buf_init(&plain, 4096);
    assert_int_equal(
        rf_open_new_grant(&o, got, e->boris->box_pk, e->boris->box_sk, collect, &plain), 0);
    assert_int_equal(rf_open_write(o, fetched.data, fetched.len), 0);
    assert_int_equal(rf_open_finish(o), 0);
    rf_open_free(o);
    assert_int_equal(plain.len, strlen(text));
    assert_memory_equal(plain.data, text, plain.len);
    rf_buf_free(&plain);
    rf_buf_free(&fetched);

    /* refusals: a key not on the roster, a grant naming another key id, no
     * such object, malformed fields, too many */
    uint8_t vgrant[1][RF_GRANT_BYTES];
    assert_int_equal(rf_grant_make(vgrant[0], key, e->vera->box_pk), 0);
    body = grants_body(1, &seq, (const uint8_t(*)[RF_GRANT_BYTES])vgrant, NULL);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", body, NULL), 422); /* Vera pending */
    free(body);
    uint8_t bkeyid[8];
    rf_keyid(bkeyid, e->boris->box_pk);
    body = grants_body(1, &seq, (const uint8_t(*)[RF_GRANT_BYTES])vgrant, bkeyid);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", body, NULL), 422); /* says Boris */
    free(body);
    int64_t none = 987654;
    body = grants_body(1, &none, (const uint8_t(*)[RF_GRANT_BYTES])grant, NULL);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", body, NULL), 422);
    free(body);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants",
                          "{\"grants\":[{\"seq\":1,\"keyid\":\"zz\",\"grant\":\"AA\"}]}", NULL),
                     400);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", "{\"grants\":{}}", NULL), 400);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", "{\"grants\":[]}", &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "stored")), 0);
    json_decref(j);

    /* 600 grants: more than one committer group holds; all stored, each
     * chunk audited with its count */
    enum { MANY = 600 };
    int64_t *seqs = calloc(1001, sizeof(*seqs)); /* room for the over-limit request */
    uint8_t(*many)[RF_GRANT_BYTES] = calloc(1001, RF_GRANT_BYTES);
    struct rf_op *ops = calloc(MANY, sizeof(*ops));
    uint8_t blob[64] = {7};
    for (size_t i = 0; i < MANY; i++) {
        ops[i].type = RF_OP_OBJECT_PUT;
        ops[i].source_id = e->src.id;
        ops[i].kind = RF_KIND_MESSAGE;
        ops[i].data = blob;
        ops[i].len = sizeof(blob);
    }
    assert_int_equal(rf_store_apply(e->srv.store, ops, MANY), 0);
    for (size_t i = 0; i < MANY; i++) {
        seqs[i] = ops[i].seq;
        assert_int_equal(rf_grant_make(many[i], key, e->boris->box_pk), 0);
    }
    body = grants_body(MANY, seqs, (const uint8_t(*)[RF_GRANT_BYTES])many, NULL);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", body, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "stored")), MANY);
    json_decref(j);
    free(body);
    struct rf_grant_rec *recs = calloc(MANY + 10, sizeof(*recs));
    size_t nrec = 0;
    assert_int_equal(rf_store_grants_for(e->srv.store, bkeyid, 0, recs, MANY + 10, &nrec), 0);
    assert_int_equal(nrec, MANY + 1);
    free(recs);
    struct rf_audit_entry *ae = calloc(200, sizeof(*ae));
    size_t na = 0, chunks = 0, total = 0;
    assert_int_equal(rf_store_audit_list(e->srv.store, 0, ae, 200, &na), 0);
    for (size_t i = 0; i < na; i++)
        if (strcmp(ae[i].action, "grant") == 0) {
            chunks++;
            total += (size_t)strtoul(ae[i].target, NULL, 10);
        }
    assert_int_equal(chunks, 4); /* 1, 1 (the repeat), and 600 in two */
    assert_int_equal(total, 2 + MANY);
    free(ae);
    /* over the limit: refused whole */
    char *big = grants_body(1001, seqs, (const uint8_t(*)[RF_GRANT_BYTES])many, NULL);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", big, NULL), 413);
    free(big);
    free(seqs);
    free(many);
    free(ops);
    sodium_free(key);
    rf_buf_free(&ct);
}

/* ---- trust review findings 7, 8, 12: who reads, nonces, grants ---- */

static int64_t nonce_rows(const struct env *e)
{
    char path[700];
    sqlite3 *db;
    sqlite3_stmt *st;
    snprintf(path, sizeof(path), "%s/refuge.db", e->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM nonces", -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t n = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* A refusal: the status, and the JSON error's code is want_code. */
static void refused(struct rf_net *n, const char *path, long want, const char *want_code)
{
    assert_int_equal(call(n, "GET", path, NULL, NULL), want);
    assert_string_equal(rf_net_error_code(n), want_code);
}

/* Finding 8: a removed caseworker's key reads nothing (every read route
 * answers 403 with a JSON error), a newcomer waiting for approval reads only
 * the roster (its client verifies the chain and waits to see itself on it).
 * Finding 7: neither takes room in the nonce space, so a flood of their
 * requests leaves caseworkers served (here with a front cache of 16 nonces,
 * which such a flood filled before). */
static void removed_and_pending_keys_read_nothing_and_take_no_nonce(void **state)
{
    struct env *e = *state;
    json_t *j = NULL;
    rf_nonces_free(e->srv.nonces);
    assert_int_equal(rf_nonces_new(&e->srv.nonces, 16), 0);
    team(e, 1);
    struct rf_buf ct, v3;
    old_message(e, "before Boris left", &ct);
    rf_buf_free(&ct);
    /* Anna removes Boris (a lost laptop): v3 lists only her */
    const struct rf_staff_keys *k3[1] = {e->anna};
    const uint8_t r3[1] = {RF_ROLE_ADMIN};
    roster_make(&v3, 3, &e->v2, e->anna, k3, r3, 1);
    assert_int_equal(post_roster(e->na, &v3), 200);
    rf_buf_free(&v3);

    char cases[64];
    snprintf(cases, sizeof(cases), "/api/v1/cases/%s", e->src.case_id);
    const char *reads[] = {"/api/v1/staff",
                           "/api/v1/roster",
                           "/api/v1/grants",
                           "/api/v1/audit",
                           "/api/v1/objects",
                           "/api/v1/objects/1",
                           cases};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++) {
        refused(e->nb, reads[i], 403, "not_on_roster");
        if (strcmp(reads[i], "/api/v1/roster") != 0)
            refused(e->nv, reads[i], 403, "not_on_roster");
        refused(e->nm, reads[i], 401, "unknown_key");
    }
    assert_true(strstr(rf_net_error(e->nb), "removed") != NULL);
    /* the newcomer reads the roster chain it verifies while it waits */
    assert_int_equal(call(e->nv, "GET", "/api/v1/roster", NULL, &j), 200);
    assert_int_equal(json_integer_value(json_object_get(j, "version")), 3);
    json_decref(j);

    /* a flood from both leaves no nonce behind */
    int64_t before = nonce_rows(e);
    for (int i = 0; i < 60; i++) {
        refused(e->nb, "/api/v1/objects", 403, "not_on_roster");
        refused(e->nb, "/api/v1/roster", 403, "not_on_roster");
        refused(e->nv, "/api/v1/objects", 403, "not_on_roster");
        assert_int_equal(call(e->nv, "GET", "/api/v1/roster", NULL, NULL), 200);
    }
    assert_int_equal(nonce_rows(e), before);
    /* and Anna is served, on and on, past the front cache's 16 */
    for (int i = 0; i < 40; i++)
        assert_int_equal(call(e->na, "GET", "/api/v1/objects", NULL, NULL), 200);
    assert_int_equal(nonce_rows(e), before + 40);
}

/* One raw HTTP/1.1 GET with a given Authorization (the exact bytes a
 * captured request carries); returns the status. */
static long raw_get(uint16_t port, const char *path, const char *auth)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    char req[1024], resp[4096];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n"
                     "Connection: close\r\n\r\n",
                     path, auth);
    assert_true(n > 0 && (size_t)n < sizeof(req));
    assert_int_equal(write(fd, req, (size_t)n), n);
    size_t got = 0;
    ssize_t k;
    while (got < sizeof(resp) - 1 && (k = read(fd, resp + got, sizeof(resp) - 1 - got)) > 0)
        got += (size_t)k;
    close(fd);
    resp[got] = '\0';
    long status = 0;
    assert_int_equal(sscanf(resp, "HTTP/1.1 %ld", &status), 1);
    if (status == 401)
        assert_non_null(strstr(resp, "\"replay\""));
    return status;
}

static void srv_start(struct rf_srv *srv, struct rf_http **http, const char *dir)
{
    static const struct rf_route *tables[1];
    static size_t counts[1];
    tables[0] = rf_api_routes;
    counts[0] = rf_api_routes_n;
    assert_int_equal(rf_store_open(&srv->store, dir), 0);
    assert_int_equal(rf_committer_new(&srv->committer, srv->store), 0);
    srv->limits.api_body_max = 1 << 20;
    srv->datadir = dir;
    assert_int_equal(rf_api_init(srv), 0);
    assert_int_equal(rf_http_start(http, srv, "127.0.0.1:0", tables, counts, 1), 0);
}

static void srv_stop(struct rf_srv *srv, struct rf_http *http)
{
    rf_http_stop(http);
    rf_api_free(srv);
    rf_committer_free(srv->committer);
    rf_store_close(srv->store);
    srv->committer = NULL;
    srv->store = NULL;
}

/* Finding 7: nonces live in the store. A captured request, sent again with
 * its exact bytes, is refused by the server that saw it, after that server
 * restarts, and by a second server process on the same data directory. */
static void a_replay_is_refused_after_a_restart_and_by_another_process(void **state)
{
    struct env *e = *state;
    team(e, 1);
    uint8_t empty[32];
    char auth[RF_APISIG_HEADER_MAX + 1];
    crypto_generichash(empty, sizeof(empty), NULL, 0, NULL, 0);
    assert_int_equal(rf_apisig_sign(auth, sizeof(auth), e->anna, "GET", "/api/v1/objects",
                                    (int64_t)time(NULL), empty),
                     0);
    assert_int_equal(raw_get(rf_http_port(e->http), "/api/v1/objects", auth), 200);
    assert_int_equal(raw_get(rf_http_port(e->http), "/api/v1/objects", auth), 401);

    /* restart: a new process's memory, the same store */
    srv_stop(&e->srv, e->http);
    srv_start(&e->srv, &e->http, e->dir);
    assert_int_equal(raw_get(rf_http_port(e->http), "/api/v1/objects", auth), 401);

    /* another process on the same data directory */
    struct rf_srv other;
    struct rf_http *oh = NULL;
    memset(&other, 0, sizeof(other));
    srv_start(&other, &oh, e->dir);
    assert_int_equal(raw_get(rf_http_port(oh), "/api/v1/objects", auth), 401);
    /* a request it served first is a replay for the first process */
    char auth2[RF_APISIG_HEADER_MAX + 1];
    assert_int_equal(rf_apisig_sign(auth2, sizeof(auth2), e->boris, "GET", "/api/v1/objects",
                                    (int64_t)time(NULL), empty),
                     0);
    assert_int_equal(raw_get(rf_http_port(oh), "/api/v1/objects", auth2), 200);
    assert_int_equal(raw_get(rf_http_port(e->http), "/api/v1/objects", auth2), 401);
    srv_stop(&other, oh);
}

/* Finding 12: a member posts a junk grant for a newcomer first; an admin's
 * honest rewrap after it is kept too, both are listed with their granter,
 * and the honest one opens the old message. */
static void a_junk_grant_first_does_not_hide_an_honest_one(void **state)
{
    struct env *e = *state;
    json_t *j = NULL;
    team(e, 1);
    struct rf_buf ct, v3, plain;
    const char *text = "sealed before Vera joined";
    int64_t seq = old_message(e, text, &ct);
    const struct rf_staff_keys *k3[3] = {e->anna, e->boris, e->vera};
    const uint8_t r3[3] = {RF_ROLE_ADMIN, RF_ROLE_MEMBER, RF_ROLE_MEMBER};
    roster_make(&v3, 3, &e->v2, e->anna, k3, r3, 3);
    assert_int_equal(post_roster(e->na, &v3), 200);
    rf_buf_free(&v3);

    uint8_t *key = sodium_malloc(32);
    uint8_t junk[1][RF_GRANT_BYTES], honest[1][RF_GRANT_BYTES];
    randombytes_buf(key, 32);
    assert_int_equal(rf_grant_make(junk[0], key, e->vera->box_pk), 0);
    char *body = grants_body(1, &seq, (const uint8_t(*)[RF_GRANT_BYTES])junk, NULL);
    assert_int_equal(call(e->nb, "POST", "/api/v1/grants", body, NULL), 200);
    free(body);
    assert_int_equal(
        rf_envelope_content_key(key, ct.data, ct.len, e->anna->box_pk, e->anna->box_sk), 0);
    assert_int_equal(rf_grant_make(honest[0], key, e->vera->box_pk), 0);
    body = grants_body(1, &seq, (const uint8_t(*)[RF_GRANT_BYTES])honest, NULL);
    assert_int_equal(call(e->na, "POST", "/api/v1/grants", body, NULL), 200);
    free(body);
    sodium_free(key);

    assert_int_equal(call(e->nv, "GET", "/api/v1/grants", NULL, &j), 200);
    json_t *gs = json_object_get(j, "grants");
    assert_int_equal(json_array_size(gs), 2);
    const struct rf_staff_keys *granters[2] = {e->boris, e->anna};
    int opened = 0;
    for (size_t i = 0; i < 2; i++) {
        json_t *g = json_array_get(gs, i);
        uint8_t got[RF_GRANT_BYTES], who[32];
        size_t n = 0;
        const char *b = json_string_value(json_object_get(g, "grant"));
        const char *w = json_string_value(json_object_get(g, "granter"));
        assert_int_equal(rf_b64_decode(got, sizeof(got), &n, b, strlen(b)), 0);
        assert_int_equal(rf_b64_decode(who, sizeof(who), &n, w, strlen(w)), 0);
        assert_memory_equal(who, granters[i]->sign_pk, 32);
        struct rf_open *o = NULL;
        rf_buf_init(&plain, 4096);
        int rc = rf_open_new_grant(&o, got, e->vera->box_pk, e->vera->box_sk, collect, &plain);
        if (rc == 0)
            rc = rf_open_write(o, ct.data, ct.len);
        if (rc == 0)
            rc = rf_open_finish(o);
        rf_open_free(o);
        if (i == 0)
            assert_int_equal(rc, RF_ERR_DECRYPT); /* the junk one */
        if (rc == 0 && plain.len == strlen(text) && memcmp(plain.data, text, plain.len) == 0)
            opened++;
        rf_buf_free(&plain);
    }
    assert_int_equal(opened, 1);
    json_decref(j);
    rf_buf_free(&ct);
}

/* ---- the audit log over the API ---- */

static void hex32(uint8_t out[32], const char *hex)
{
    size_t n = 0;
    assert_non_null(hex);
    assert_int_equal(rf_hex_decode(out, 32, &n, hex, strlen(hex)), 0);
    assert_int_equal(n, 32);
}

static void audit_records_every_action_as_one_chain(void **state)
{
    struct env *e = *state;
    json_t *j = NULL;
    team(e, 1);
    uint8_t pks[3][32];
    memcpy(pks[0], e->anna->box_pk, 32);
    memcpy(pks[1], e->boris->box_pk, 32);
    memcpy(pks[2], e->src.pk, 32);
    const uint8_t(*k)[32] = (const uint8_t(*)[32])pks;
    assert_int_equal(post_env(e->nb, e->src.case_id, "events", RF_KIND_EVENT, k, 2), 200);
    assert_int_equal(post_env(e->na, e->src.case_id, "replies", RF_KIND_REPLY, k, 3), 200);
    assert_int_equal(post_env(e->nb, e->src.case_id, "events", RF_KIND_EVENT, k, 3), 422);
    assert_int_equal(call(e->na, "POST", "/api/v1/tokens", "{\"role\":\"admin\"}", NULL), 200);
    char path[96];
    snprintf(path, sizeof(path), "/api/v1/cases/%s/schedule", e->src.case_id);
    assert_int_equal(call(e->nb, "POST", path, "{\"closed\":true}", NULL), 200);
    struct rf_buf got;
    rf_buf_init(&got, 1 << 20);
    assert_int_equal(rf_net_download(e->nb, "/api/v1/objects/1", 1 << 20, collect, &got), 0);
    assert_int_equal(rf_net_download(e->nb, "/api/v1/objects/99", 1 << 20, collect, &got),
                     RF_ERR_PROTOCOL); /* no such object: nothing fetched, nothing recorded */
    rf_buf_free(&got);

    /* the fetch's entry is queued without waiting: it shows up shortly */
    size_t n = 0;
    json_t *entries = NULL;
    for (int tries = 0; tries < 200; tries++) {
        json_decref(j);
        long st = call(e->nb, "GET", "/api/v1/audit?after=0&limit=1000", NULL, &j);
        if (st != 200)
            print_message("audit: %ld %s\n", st, rf_net_error_code(e->nb));
        assert_int_equal(st, 200);
        entries = json_object_get(j, "entries");
        n = json_array_size(entries);
        const char *last =
            json_string_value(json_object_get(json_array_get(entries, n - 1), "action"));
        if (last && strcmp(last, "fetch") == 0)
            break;
        usleep(10000);
    }
    /* enroll x3, roster, event, reply, token, schedule, fetch: the refused
     * event and the missing object left nothing */
    static const char *const want[] = {"enroll", "enroll", "enroll",   "roster", "event",
                                       "reply",  "token",  "schedule", "fetch"};
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    struct rf_audit_entry *ae = calloc(n, sizeof(*ae));
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(entries, i);
        assert_string_equal(json_string_value(json_object_get(x, "action")), want[i]);
        ae[i].id = (uint64_t)json_integer_value(json_object_get(x, "id"));
        ae[i].day = (uint32_t)json_integer_value(json_object_get(x, "day"));
        const char *actor = json_string_value(json_object_get(x, "actor"));
        size_t an = 0;
        assert_non_null(actor);
        if (*actor)
            assert_int_equal(rf_b64_decode(ae[i].actor, 32, &an, actor, strlen(actor)), 0);
        snprintf(ae[i].action, sizeof(ae[i].action), "%s",
                 json_string_value(json_object_get(x, "action")));
        snprintf(ae[i].target, sizeof(ae[i].target), "%s",
                 json_string_value(json_object_get(x, "target")));
        hex32(ae[i].prev, json_string_value(json_object_get(x, "prev")));
        hex32(ae[i].hash, json_string_value(json_object_get(x, "hash")));
        /* audit v2: every entry here is a caseworker's, with its signed request */
        const char *req = json_string_value(json_object_get(x, "request"));
        size_t rn = 0;
        assert_non_null(req);
        assert_int_equal(rf_b64_decode(ae[i].req, sizeof(ae[i].req), &rn, req, strlen(req)), 0);
        ae[i].req_len = (uint16_t)rn;
    }
    json_decref(j);
    size_t bad = 0, nsig = 0, nleg = 9, nsrv = 9;
    enum rf_audit_break what = RF_AUDIT_OK;
    assert_int_equal(rf_audit_verify(ae, n, 0, NULL, &bad, &what), 0);
    assert_int_equal(rf_audit_verify_sigs(ae, n, &bad, &what, &nsig, &nleg, &nsrv), 0);
    assert_int_equal(nsig, n);
    assert_int_equal(nleg, 0);
    assert_int_equal(nsrv, 0);
    /* an entry moved to another actor, target or action no longer verifies */
    ae[4].target[0] ^= 1;
    assert_int_equal(rf_audit_verify_sigs(ae, n, &bad, &what, NULL, NULL, NULL), RF_ERR_FORMAT);
    assert_int_equal(bad, 4);
    assert_int_equal(what, RF_AUDIT_FORGED);
    ae[4].target[0] ^= 1;
    uint8_t was[32];
    memcpy(was, ae[5].actor, 32);
    memcpy(ae[5].actor, e->mallory->sign_pk, 32); /* the reply claimed for someone else */
    assert_int_equal(rf_audit_verify_sigs(ae, n, &bad, &what, NULL, NULL, NULL), RF_ERR_FORMAT);
    assert_int_equal(bad, 5);
    assert_int_equal(what, RF_AUDIT_FORGED);
    memcpy(ae[5].actor, was, 32);
    ae[7].req_len = 0; /* its request stripped: unsigned after signed entries */
    assert_int_equal(rf_audit_verify_sigs(ae, n, &bad, &what, NULL, NULL, NULL), RF_ERR_FORMAT);
    assert_int_equal(bad, 7);
    assert_int_equal(what, RF_AUDIT_UNSIGNED);
    ae[7].req_len = 1; /* a record that does not parse */
    assert_int_equal(rf_audit_verify_sigs(ae, n, &bad, &what, NULL, NULL, NULL), RF_ERR_FORMAT);
    assert_int_equal(what, RF_AUDIT_FORGED);
    ae[7] = ae[6]; /* the token request replayed as a second entry (same nonce) */
    ae[7].id = 8;
    assert_int_equal(rf_audit_verify_sigs(ae, n, &bad, &what, NULL, NULL, NULL), RF_ERR_FORMAT);
    assert_int_equal(bad, 7);
    assert_int_equal(what, RF_AUDIT_FORGED);
    assert_memory_equal(ae[0].actor, e->anna->sign_pk, 32);
    assert_memory_equal(ae[4].actor, e->boris->sign_pk, 32);
    assert_string_equal(ae[3].target, "2");
    assert_string_equal(ae[4].target, e->src.case_id);
    assert_string_equal(ae[6].target, "admin");
    assert_string_equal(ae[8].target, "1");
    /* a modified entry is caught */
    ae[5].target[0] ^= 1;
    assert_int_not_equal(rf_audit_verify(ae, n, 0, NULL, &bad, &what), 0);
    assert_int_equal(bad, 5);
    assert_int_equal(what, RF_AUDIT_MODIFIED);
    free(ae);

    /* paging and access */
    assert_int_equal(call(e->nb, "GET", "/api/v1/audit?after=2&limit=3", NULL, &j), 200);
    entries = json_object_get(j, "entries");
    assert_int_equal(json_array_size(entries), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(entries, 0), "id")), 3);
    assert_true(json_is_true(json_object_get(j, "more")));
    json_decref(j);
    assert_int_equal(call(e->nb, "GET", "/api/v1/audit?after=-1", NULL, NULL), 400);
    assert_int_equal(call(e->nv, "GET", "/api/v1/audit", NULL, NULL), 403);
    assert_int_equal(call(e->nm, "GET", "/api/v1/audit", NULL, NULL), 401);
}

/* ---- purge: the command and the thread ---- */

static int run_cmd(int (*fn)(int, char **), const char *a1, const char *a2, const char *a3,
                   const char *a4)
{
    char *argv[6] = {(char *)"purge", (char *)a1, (char *)a2, (char *)a3, (char *)a4, NULL};
    int argc = 1;
    while (argc < 5 && argv[argc])
        argc++;
    return fn(argc, argv);
}

static void purge_command_and_thread(void **state)
{
    struct env *e = *state;
    /* no instance settings here: the command refuses a stray directory */
    assert_int_equal(run_cmd(rf_server_purge_main, "--data", e->dir, NULL, NULL), 1);
    assert_int_equal(run_cmd(rf_server_purge_main, NULL, NULL, NULL, NULL), 2);
    assert_int_equal(run_cmd(rf_server_purge_main, "--data", "/nonexistent/refuge", NULL, NULL), 1);
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_SETTING_PUT;
    op.key = "instance.kdf";
    op.data = (const uint8_t *)"x";
    op.len = 1;
    assert_int_equal(rf_store_apply(e->srv.store, &op, 1), 0);

    /* settings: shown, changed, refused when out of range */
    assert_int_equal(run_cmd(rf_server_settings_main, "--data", e->dir, "--retention-days", "0"),
                     0);
    assert_int_equal(
        run_cmd(rf_server_settings_main, "--data", e->dir, "--inactivity-days", "36501"), 2);
    assert_int_equal(run_cmd(rf_server_settings_main, "--data", e->dir, "--retention-days", "-1"),
                     2);
    struct rf_retention ret;
    assert_int_equal(rf_retention_get(e->srv.store, &ret), 0);
    assert_int_equal(ret.retention_days, 0);
    assert_int_equal(ret.inactivity_days, RF_INACTIVITY_DAYS_DEFAULT);

    /* the command, beside this running server, deletes a case due today */
    struct rf_op sch = {.type = RF_OP_CASE_SCHEDULE, .source_id = e->src.id};
    sch.day = rf_store_today();
    assert_int_equal(rf_store_apply(e->srv.store, &sch, 1), 0);
    assert_int_equal(sch.status, 0);
    assert_int_equal(run_cmd(rf_server_purge_main, "--data", e->dir, NULL, NULL), 0);
    struct rf_source s;
    assert_int_equal(rf_store_source_by_case(e->srv.store, e->src.case_id, &s), RF_ERR_NOT_FOUND);

    /* the thread purges at start, once that day, and stops at once */
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_SOURCE_CREATE;
    randombytes_buf(op.lookup_id, 32);
    assert_int_equal(rf_store_apply(e->srv.store, &op, 1), 0);
    sch.source_id = op.source.id;
    assert_int_equal(rf_store_apply(e->srv.store, &sch, 1), 0);
    struct rf_purger *p = NULL;
    assert_int_equal(rf_purger_start(&p, e->srv.store), 0);
    int gone = 0;
    for (int i = 0; i < 500 && !gone; i++) {
        gone = rf_store_source_by_case(e->srv.store, op.source.case_id, &s) == RF_ERR_NOT_FOUND;
        if (!gone)
            usleep(10000);
    }
    assert_true(gone);
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rf_purger_stop(p);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 2);
    /* restarted the same day: no second run (and no second audit entry) */
    struct rf_audit_entry ae[16];
    size_t n1 = 0, n2 = 0;
    assert_int_equal(rf_store_audit_list(e->srv.store, 0, ae, 16, &n1), 0);
    assert_int_equal(rf_purger_start(&p, e->srv.store), 0);
    usleep(200000);
    rf_purger_stop(p);
    assert_int_equal(rf_store_audit_list(e->srv.store, 0, ae, 16, &n2), 0);
    assert_int_equal(n1, n2);
    assert_string_equal(ae[n2 - 1].action, "purge");
    assert_string_equal(ae[n2 - 1].target, "cases=1 objects=0");
    rf_purger_stop(NULL);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(tokens_staff_and_roster_publishing, setup, teardown),
        cmocka_unit_test_setup_teardown(events_replies_and_schedule, setup, teardown),
        cmocka_unit_test_setup_teardown(grants_open_objects_for_their_member_only, setup, teardown),
        cmocka_unit_test_setup_teardown(removed_and_pending_keys_read_nothing_and_take_no_nonce,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_replay_is_refused_after_a_restart_and_by_another_process,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(a_junk_grant_first_does_not_hide_an_honest_one, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(audit_records_every_action_as_one_chain, setup, teardown),
        cmocka_unit_test_setup_teardown(purge_command_and_thread, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
