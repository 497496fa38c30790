/*
 * api_priv.h - what the staff API's files share (api.c: authentication,
 * replies, events, schedule, enrollment, objects; api_team.c: tokens, staff,
 * roster publishing, grants, audit log; api_casekey.c: events version 2,
 * CASEKEY objects, the team's settings). Nothing outside src/server/api*.c
 * includes it.
 *
 * Every request has one api_state (rf_req_state), made by rf_api_auth once
 * the Authorization header checked out; it owns the body buffer, the running
 * body hash, and the ops in flight, which stay valid until their completion
 * ran (the request is suspended meanwhile). Every staff action is submitted
 * as one committer group with its audit entry (rf_api_audit_op), so the log
 * records exactly the actions that were stored.
 */
#ifndef RF_API_PRIV_H
#define RF_API_PRIV_H

#include "lib/apisig.h"
#include "lib/audit.h"
#include "lib/roster.h"
#include "server/http.h"
#include "server/session.h"
#include "server/srv.h"
#include "store/commit.h"
#include "store/store.h"

#include <jansson.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>

#define API_JSON_MAX (64 * 1024)
#define API_ROSTER_JSON_MAX (128 * 1024) /* a roster of RF_ROSTER_MAX_BYTES in base64 */
#define API_GRANTS_JSON_MAX (512 * 1024) /* API_GRANTS_MAX grants */
#define API_GRANTS_MAX 1000
#define API_LIST_MAX 1000

enum api_auth {
    AUTH_ENROLL, /* the key in the header need not be known yet; no nonce */
    AUTH_ROSTER, /* GET /roster: a member, or a newcomer's key never on a roster
                  * (no nonce), or a stranger (the handler says whether a roster
                  * exists); never a removed key */
    AUTH_MEMBER, /* an enrolled key on the latest roster */
    AUTH_ADMIN,  /* an admin on the latest roster */
};

enum api_nonce_state { NONCE_NONE = 0, NONCE_PENDING, NONCE_DONE };

enum api_case_mode { CASE_REPLY = 1, CASE_EVENT, CASE_SCHEDULE, CASE_CASEKEY };

struct api_state {
    crypto_generichash_state hs; /* first: needs 64-byte alignment */
    struct rf_req *req;
    struct rf_srv *srv;
    struct rf_apisig sig;
    int role;               /* on the latest roster: RF_ROLE_*; -1: not on it (or not asked) */
    struct rf_op nonce_op;  /* the nonce, stored by rf_api_auth before anything runs */
    int nonce_state;        /* api_nonce_state; atomic: set by the committer thread */
    int nonce_rc;           /* the store's answer, once NONCE_DONE */
    struct rf_staff_rec me; /* the key's staff record (all but AUTH_ENROLL) */
    uint64_t total;         /* body bytes received */
    struct rf_buf body;     /* JSON body, or envelope ciphertext while small */
    /* POST /cases/X/replies|events|schedule */
    enum api_case_mode mode;
    uint8_t *head; /* first bytes of an envelope (its header) */
    size_t head_len;
    struct rf_put *put;   /* the envelope's ciphertext (the store decides where it goes) */
    struct rf_source src; /* the case */
    /* an action and its audit entry: one all-or-nothing group */
    struct rf_op ops[2];
    int submit_rc;         /* the committer refused the ops (rf_api_submit) */
    uint32_t schedule_day; /* POST schedule: the deletion day asked for (0: cancel) */
    uint8_t setting[1];    /* POST settings: the value stored (the op borrows it) */
    char target[RF_AUDIT_TARGET_MAX + 1];
    /* enrollment: token use, staff key, roster v1 (first admin), audit */
    struct rf_op enroll_ops[4];
    uint8_t token_hash[32];
    struct rf_staff_rec staff;
    uint8_t *roster_raw;
    size_t roster_len;
    uint32_t roster_version; /* POST roster: the version stored */
    int first_admin;
    char token[RF_SESSION_TOKEN_B64]; /* POST /tokens: the minted token (wiped) */
    /* POST /grants: grant ops and one audit op per chunk, chunk after chunk */
    struct rf_op *gops;
    uint8_t (*gdata)[88];
    char (*gtarget)[24];
    size_t gops_n, gnext, gstored;
    /* the signed request record of this request's audit entries (audit v2) */
    uint8_t areq[RF_AUDIT_REQ_MAX];
    size_t areq_len;
};

/* ---- replies (each answers and returns 0) ---- */
int rf_api_error(struct rf_req *r, unsigned status, const char *code, const char *msg);
/* Sends j (reference taken) as the JSON body. */
int rf_api_json(struct rf_req *r, unsigned status, json_t *j);
/* The answer for a store error. */
int rf_api_store_error(struct rf_req *r, int rc);
json_t *rf_api_b64(const uint8_t *p, size_t n);
/* Decodes the base64url string field key of obj, exactly want bytes (want
 * == 0: any up to cap), into out. RF_ERR_FORMAT if absent or wrong. */
int rf_api_b64_field(json_t *obj, const char *key, uint8_t *out, size_t cap, size_t want,
                     size_t *outlen);

/* ---- requests ---- */
/* Authenticates the headers; answers and returns nonzero on refusal. */
int rf_api_auth(struct rf_req *r, enum api_auth need, struct api_state **out);
/* on_body for JSON bodies (bounded by s->body's limit: 413 past it). */
int rf_api_json_body(struct rf_req *r, const uint8_t *p, size_t n);
/* The state of an authenticated request whose body verified, or NULL
 * (answered). */
struct api_state *rf_api_ready(struct rf_req *r);
/* Raises the JSON body limit of an authenticated request (from on_headers). */
int rf_api_body_cap(struct api_state *s, size_t max);
/* The body of GET /api/v1/objects: {"objects":[{"seq","case","kind","size",
 * "day","roster"},...],"more":bool}, as json_pack made it before (dumped,
 * the same bytes: api_listing_test.c); NULL when out of memory (or a case
 * id is not UTF-8). */
json_t *rf_api_objects_json(const struct rf_object *objs, size_t n, int more);
/* Parses a decimal in [min, max]; absent -> def. */
int rf_api_parse_int(const char *v, int64_t min, int64_t max, int64_t def, int64_t *out);
/* The latest roster, parsed (*out malloc'ed; free it), or RF_ERR_NOT_FOUND. */
int rf_api_roster(struct rf_store *st, struct rf_roster **out, uint32_t *version,
                  struct rf_buf *raw);

/* Submits ops[0..n) as one all-or-nothing group and suspends the request;
 * then(r) runs on the request's thread once they settled (or at once if the
 * committer refused them): it reads the outcome with rf_api_op_rc. Returns 0. */
int rf_api_submit(struct rf_req *r, struct api_state *s, struct rf_op *ops, size_t n,
                  rf_req_resumed_fn then);
/* The status of op after rf_api_submit: the committer's refusal, or op's own. */
int rf_api_op_rc(const struct api_state *s, const struct rf_op *op);

/* Fills op as the audit entry of an action by actor (NULL: zeros). action
 * and target must outlive the op. */
void rf_api_audit_op(struct rf_op *op, const uint8_t *actor, const char *action,
                     const char *target);
/* rf_api_audit_op for an action of the caseworker who signed s's request,
 * carrying the signed request itself (method, path and query, ts, nonce,
 * body hash, signature: lib/audit.h "version 2"), so that clients can check
 * the entry was not invented. The record lives in s (or in buf, when not
 * NULL, RF_AUDIT_REQ_MAX bytes, for an op that outlives the request). */
void rf_api_audit_op_signed(struct rf_op *op, struct api_state *s, const char *action,
                            const char *target, uint8_t *buf);

/* ---- routes in api_team.c ---- */
int rf_api_admin_headers(struct rf_req *r);
int rf_api_staff_headers(struct rf_req *r);
int rf_api_tokens_end(struct rf_req *r);
int rf_api_staff_end(struct rf_req *r);
int rf_api_roster_post_headers(struct rf_req *r);
int rf_api_roster_post_end(struct rf_req *r);
int rf_api_grants_get_end(struct rf_req *r);
int rf_api_grants_post_headers(struct rf_req *r);
int rf_api_grants_post_end(struct rf_req *r);
int rf_api_audit_end(struct rf_req *r);
/* Submits s->ops[0] with its signed audit entry (action) as one group and
 * answers {"seq"} (api.c). */
int rf_api_submit_with_audit(struct rf_req *r, struct api_state *s, const char *action);
/* ---- api_casekey.c ---- */
/* Whether the case POST's body starts as an event version 2 ("RFE"). */
int rf_api_is_ev2(const struct api_state *s);
/* Stores an event version 2 once its size and magic check out. */
int rf_api_event_v2_end(struct rf_req *r, struct api_state *s);
/* The team's event format (1 when not set). */
int rf_api_event_format(struct rf_store *st, int *format);
int rf_api_settings_get_end(struct rf_req *r);
int rf_api_settings_post_end(struct rf_req *r);
/* ---- api_ckpt.c ---- */
#define RF_API_CKPT_SETTING "team.checkpoint" /* the 153 bytes of the latest */
int rf_api_ckpt_get_end(struct rf_req *r);
int rf_api_ckpt_post_end(struct rf_req *r);
/* ---- api_range.c ---- */
int rf_api_objects_data_end(struct rf_req *r);

#endif
