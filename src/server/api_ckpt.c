/*
 * api_ckpt.c - the team's signed checkpoint (docs/protocol.md "Checkpoints"):
 *   POST /api/v1/checkpoint   admin: {"checkpoint": base64url of its 153 bytes}
 *   GET  /api/v1/checkpoint   member: {"checkpoint": ...}, or 404 when none
 *
 * The server keeps one checkpoint, the one with the highest last_seq, in the
 * setting RF_API_CKPT_SETTING. It cannot make one (it holds no admin's key)
 * and clients verify what it hands out against their own roster chain, so
 * its checks only keep junk out: the checkpoint parses, its signer is the
 * request's signer (an admin of the latest roster: AUTH_ADMIN), it verifies
 * against the stored rosters from the version it names to the latest (as a
 * client would check it), and its last_seq is above the stored one's (else
 * 409: an older or equal one never replaces a newer). The read-then-write
 * is not atomic: two admins posting at the same moment may leave the lower
 * of the two, which costs the next cold sync some signature checks, never
 * correctness; the next post replaces it.
 */
#include "lib/buf.h"
#include "lib/checkpoint.h"
#include "lib/err.h"
#include "lib/roster.h"
#include "server/api_priv.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CKPT_ROSTERS_MAX 256 /* versions between the one named and the latest */

/* The stored checkpoint, parsed: 0, RF_ERR_NOT_FOUND, or another error. */
static int stored_ckpt(struct rf_store *st, struct rf_ckpt *out, struct rf_buf *raw)
{
    int rc = rf_store_setting_get(st, RF_API_CKPT_SETTING, raw);
    if (rc != 0)
        return rc;
    return rf_ckpt_parse(out, raw->data, raw->len) == 0 ? 0 : RF_ERR_NOT_FOUND;
}

int rf_api_ckpt_get_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    struct rf_buf raw;
    struct rf_ckpt ck;
    rf_buf_init(&raw, RF_CKPT_BYTES + 1);
    int rc = stored_ckpt(s->srv->store, &ck, &raw);
    if (rc == RF_ERR_NOT_FOUND)
        rf_api_error(r, 404, "no_checkpoint", "no checkpoint yet");
    else if (rc != 0)
        rf_api_store_error(r, rc);
    else
        rf_api_json(r, 200, json_pack("{so}", "checkpoint", rf_api_b64(raw.data, raw.len)));
    rf_buf_free(&raw);
    return 0;
}

/* Verifies the checkpoint p against the stored rosters, as a client does:
 * 0, or an RF_ERR_* of rf_ckpt_verify, or a store error (< RF_ERR_ROSTER is
 * not distinguished: the caller answers 422 for the checkpoint's errors). */
static int ckpt_check(struct rf_store *st, const uint8_t *p, size_t n, struct rf_ckpt *out,
                      int *store_rc)
{
    struct rf_ckpt ck;
    struct rf_buf raw;
    uint32_t latest = 0;
    *store_rc = 0;
    int rc = rf_ckpt_parse(&ck, p, n);
    if (rc != 0)
        return rc;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    if ((rc = rf_store_roster_latest(st, &latest, &raw)) != 0) {
        rf_buf_free(&raw);
        *store_rc = rc;
        return rc;
    }
    if (ck.roster_version > latest || latest - ck.roster_version >= CKPT_ROSTERS_MAX) {
        rf_buf_free(&raw);
        return RF_ERR_ROSTER;
    }
    struct rf_roster **ro = calloc(latest, sizeof(*ro));
    rc = ro ? 0 : RF_ERR_NOMEM;
    for (uint32_t v = ck.roster_version; rc == 0 && v <= latest; v++) {
        rf_buf_reset(&raw);
        ro[v - 1] = malloc(sizeof(**ro));
        rc = ro[v - 1] ? rf_store_roster_get(st, v, &raw) : RF_ERR_NOMEM;
        if (rc != 0)
            *store_rc = rc;
        else if (rf_roster_parse(ro[v - 1], raw.data, raw.len) != 0)
            rc = *store_rc = RF_ERR_DB; /* stored only after it verified */
    }
    if (rc == 0)
        rc = rf_ckpt_verify(out, p, n, (const struct rf_roster *const *)ro, latest);
    for (uint32_t v = 0; ro && v < latest; v++)
        free(ro[v]);
    free(ro);
    rf_buf_free(&raw);
    return rc;
}

static int post_done(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    int rc = rf_api_op_rc(s, &s->ops[0]);
    if (rc != 0)
        rf_api_store_error(r, rc);
    else
        rf_api_json(r, 200,
                    json_pack("{sI}", "last_seq", (json_int_t)strtoll(s->target, NULL, 10)));
    return 0;
}

int rf_api_ckpt_post_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    json_error_t jerr;
    uint8_t p[RF_CKPT_BYTES];
    size_t n = 0;
    json_t *j = json_loadb((const char *)s->body.data, s->body.len, JSON_REJECT_DUPLICATES, &jerr);
    int rc = json_is_object(j) ? rf_api_b64_field(j, "checkpoint", p, sizeof(p), sizeof(p), &n)
                               : RF_ERR_FORMAT;
    json_decref(j);
    if (rc != 0)
        return rf_api_error(r, 400, "bad_request",
                            "checkpoint must be the base64url of a 153-byte checkpoint");
    struct rf_ckpt ck, old;
    int store_rc = 0;
    rc = ckpt_check(s->srv->store, p, n, &ck, &store_rc);
    if (store_rc != 0)
        return rf_api_store_error(r, store_rc);
    if (rc != 0)
        return rf_api_error(r, 422, "bad_checkpoint",
                            rc == RF_ERR_ROSTER ? "the signer is not an admin of every roster "
                                                  "version from the one it names to the latest"
                                                : "this is not a validly signed checkpoint");
    if (sodium_memcmp(ck.signer_pk, s->sig.sign_pk, 32) != 0)
        return rf_api_error(r, 403, "not_signer",
                            "a checkpoint is posted by the admin who signed it");
    struct rf_buf raw;
    rf_buf_init(&raw, RF_CKPT_BYTES + 1);
    rc = stored_ckpt(s->srv->store, &old, &raw);
    rf_buf_free(&raw);
    if (rc != 0 && rc != RF_ERR_NOT_FOUND)
        return rf_api_store_error(r, rc);
    if (rc == 0 && old.last_seq >= ck.last_seq)
        return rf_api_error(r, 409, "older",
                            "the server holds a checkpoint at the same or a later seq");
    s->roster_raw = malloc(RF_CKPT_BYTES); /* the op's bytes outlive this call */
    if (!s->roster_raw)
        return rf_api_error(r, 503, "nomem", "out of memory");
    memcpy(s->roster_raw, p, RF_CKPT_BYTES);
    snprintf(s->target, sizeof(s->target), "%llu", (unsigned long long)ck.last_seq);
    rf_op_setting_put(&s->ops[0], RF_API_CKPT_SETTING, s->roster_raw, RF_CKPT_BYTES);
    rf_api_audit_op_signed(&s->ops[1], s, "checkpoint", s->target, NULL);
    return rf_api_submit(r, s, s->ops, 2, post_done);
}
