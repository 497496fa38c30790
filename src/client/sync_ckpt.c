/*
 * sync_ckpt.c - what `refuge sync` does with checkpoints (docs/protocol.md
 * 13, client/lckpt.h): before digesting, it fetches the server's checkpoint
 * and, if it verifies against this computer's roster chain, hands it to the
 * update (local.h); after, it says how many events the checkpoint vouched
 * for, or loudly that it did not match; and an admin's client signs and
 * posts a checkpoint of its own chain when the chain grew since the last
 * one it posted. Nothing here can make a sync accept an event it would
 * refuse without checkpoints: a refused or unusable checkpoint only means
 * every signature is verified.
 */
#include "client/cmd.h"
#include "client/lckpt.h"
#include "lib/buf.h"
#include "lib/checkpoint.h"
#include "lib/err.h"

#include <stdio.h>
#include <string.h>

/* The name of the member with signing key pk on the latest verified roster,
 * or "an unknown key". */
static const char *signer_name(struct rf_ctx *x, const uint8_t pk[32])
{
    const struct rf_roster *const *ro = NULL;
    size_t n = 0;
    rf_local_rosters(x->l, &ro, &n);
    for (size_t v = n; v > 0; v--) {
        int at = ro[v - 1] ? rf_roster_find(ro[v - 1], pk) : -1;
        if (at >= 0)
            return ro[v - 1]->members[at].name;
    }
    return "an unknown key";
}

static const char *verify_why(int rc)
{
    switch (rc) {
    case RF_ERR_SIGNATURE:
        return "its signature does not verify";
    case RF_ERR_ROSTER:
        return "its signer is not an admin of every roster version from the one it names to "
               "the latest this computer verified";
    case RF_ERR_VERSION:
        return "it is of a version this client does not know";
    default:
        return "it is malformed";
    }
}

static int is_admin(struct rf_ctx *x, const struct rf_roster *ro)
{
    int at = rf_roster_find(ro, x->k->sign_pk);
    return at >= 0 && ro->members[at].role == RF_ROLE_ADMIN;
}

static void fetch(struct rf_ctx *x)
{
    json_t *ans = NULL;
    uint8_t raw[RF_CKPT_BYTES + 1];
    size_t n = 0;
    rf_local_use_checkpoint(x->l, NULL);
    int rc = rf_net_json(x->n, "GET", "/api/v1/checkpoint", NULL, 0, NULL, &ans);
    if (rc != 0) {
        if (rf_net_status(x->n) != 404) /* 404: none yet */
            fprintf(stderr, "refuge: warning: cannot fetch the team's checkpoint; every event's "
                            "signature is verified instead\n");
        json_decref(ans);
        return;
    }
    const char *b = json_string_value(json_object_get(ans, "checkpoint"));
    struct rf_ckpt ck;
    const struct rf_roster *const *ro = NULL;
    size_t nro = 0;
    rf_local_rosters(x->l, &ro, &nro);
    if (!b || rf_b64_decode(raw, sizeof(raw), &n, b, strlen(b)) != 0)
        rc = RF_ERR_FORMAT;
    else
        rc = rf_ckpt_verify(&ck, raw, n, ro, nro);
    json_decref(ans);
    if (rc != 0) {
        fprintf(stderr,
                "refuge: WARNING: the server's checkpoint is refused: %s.\n"
                "refuge: It is ignored: every event's signature is verified instead. If this\n"
                "refuge: happens again, tell your admin (the server may be compromised).\n",
                verify_why(rc));
        return;
    }
    rf_local_use_checkpoint(x->l, &ck);
    x->ckpt = ck; /* for the report after the update */
}

void rf_sync_ckpt_before(struct rf_ctx *x, const struct rf_roster *ro, unsigned total)
{
    int reset = 0;
    rf_local_use_checkpoint(x->l, NULL);
    if (is_admin(x, ro) && rf_lckpt_prepare(x->c, &reset) != 0)
        fprintf(stderr, "refuge: warning: cannot start this computer's checkpoints\n");
    if (reset)
        fprintf(stderr, "refuge: checking every event once again, to start the checkpoints this "
                        "computer signs as an admin (once)\n");
    if (total > 0 || reset)
        fetch(x);
}

void rf_sync_ckpt_after(struct rf_ctx *x, int quiet)
{
    if (rf_lckpt_walk(x->l, x->c) != 0)
        fprintf(stderr, "refuge: warning: cannot extend this computer's checkpoint chain\n");
    struct rf_local_ckpt_result res;
    rf_local_ckpt_result(x->l, &res);
    const char *who = signer_name(x, x->ckpt.signer_pk);
    if (res.fell_back) {
        fprintf(stderr,
                "refuge: WARNING: the checkpoint signed by %s does not match the events (%s):\n"
                "refuge: every signature verified instead. The server handed out events other\n"
                "refuge: than the ones %s verified; tell your admin (the server may be\n"
                "refuge: compromised).\n",
                who,
                res.diff == RF_CKPT_DIFF_LAST_SEQ ? "they end at another seq"
                : res.diff == RF_CKPT_DIFF_COUNT  ? "another number of events"
                : res.diff == RF_CKPT_DIFF_CHAIN  ? "other events, or in another order"
                                                  : "an event below it could not be opened or "
                                                    "failed a check",
                who);
        return;
    }
    if (res.by_ckpt && !quiet)
        printf("%llu event%s verified by %s's checkpoint (one signature instead of %llu).\n",
               (unsigned long long)res.by_ckpt, res.by_ckpt == 1 ? "" : "s", who,
               (unsigned long long)res.by_ckpt);
}

void rf_sync_ckpt_post(struct rf_ctx *x, const struct rf_roster *ro, int quiet)
{
    if (!is_admin(x, ro))
        return; /* only admins make checkpoints */
    struct rf_lckpt_state st;
    int64_t posted = 0;
    if (rf_lckpt_load(x->c, &st) != 0 || rf_cache_meta_get(x->c, RF_LCKPT_POSTED, &posted) != 0)
        return;
    if (st.ch.count == 0 || (int64_t)st.ch.last_seq <= posted)
        return; /* nothing new since the last one */
    uint8_t ck[RF_CKPT_BYTES];
    char b64[256], body[320];
    if (rf_ckpt_make(ck, &st.ch, ro->version, x->k) != 0 ||
        rf_b64_encode(b64, sizeof(b64), ck, sizeof(ck)) != 0)
        return;
    snprintf(body, sizeof(body), "{\"checkpoint\":\"%s\"}", b64);
    json_t *ans = NULL;
    int rc = rf_net_json(x->n, "POST", "/api/v1/checkpoint", (const uint8_t *)body, strlen(body),
                         "application/json", &ans);
    json_decref(ans);
    long status = rf_net_status(x->n);
    if (rc == 0 || status == 409) { /* 409: the server holds one as recent already */
        rf_cache_meta_set(x->c, RF_LCKPT_POSTED, (int64_t)st.ch.last_seq);
        if (rc == 0 && !quiet)
            printf("Posted a checkpoint of %llu event%s (up to #%llu).\n",
                   (unsigned long long)st.ch.count, st.ch.count == 1 ? "" : "s",
                   (unsigned long long)st.ch.last_seq);
        return;
    }
    fprintf(stderr, "refuge: warning: cannot post a checkpoint (the sync itself is done)\n");
}
