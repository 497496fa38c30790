/*
 * evseal.c - sealing the events this client writes (see evseal.h).
 *
 * The writer's rule (protocol 12): a key is written under only if this
 * client made it (its row says verified = 1 from the start, sealed at rest
 * with the local key, so the server cannot forge one) or its CASEKEY's
 * signature verifies and the maker was a member of the roster version it
 * names: checked lazily, once per key, here, and remembered in the row
 * (1 good, -1 refused). It must also name the latest roster version this
 * client verified, so a removal (a newer roster) makes a new key that the
 * removed member never gets. The key is in the clear only in sodium_malloc
 * memory (rf_ckeys, a fresh K), wiped before return.
 */
#include "client/evseal.h"
#include "client/local.h"
#include "lib/casekey.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEAMCONFIG "teamconfig"

int rf_evseal_format(struct rf_cache *c)
{
    int64_t v = 0;
    if (rf_cache_meta_get(c, "event_format", &v) != 0 || v != 2)
        return 1;
    return 2;
}

void rf_evseal_fetch_format(struct rf_ctx *x)
{
    json_t *ans = NULL;
    int rc = rf_net_json(x->n, "GET", "/api/v1/settings", NULL, 0, NULL, &ans);
    json_t *f = json_object_get(ans, "event_format");
    if (rc == 0 && json_is_integer(f) && (json_integer_value(f) == 1 || json_integer_value(f) == 2))
        rf_cache_meta_set(x->c, "event_format", json_integer_value(f));
    else if (rc != 0 && rf_net_status(x->n) == 404)
        rf_cache_meta_set(x->c, "event_format", 1); /* a server from before version 2 */
    json_decref(ans);
}

void rf_evseal_key_init(struct rf_evseal_key *mk)
{
    rf_buf_init(&mk->env, 64 * 1024);
    memset(mk->keyid, 0, sizeof(mk->keyid));
}

void rf_evseal_key_free(struct rf_evseal_key *mk)
{
    rf_buf_free(&mk->env);
}

static int seal_to(struct rf_buf *out, uint8_t kind, const struct rf_roster *ro, const uint8_t *p,
                   size_t n)
{
    uint8_t(*pks)[32] = calloc(ro->n ? ro->n : 1, 32);
    if (!pks)
        return RF_ERR_NOMEM;
    for (uint16_t i = 0; i < ro->n; i++)
        memcpy(pks[i], ro->members[i].box_pk, 32);
    int rc = rf_envelope_seal(out, kind, (const uint8_t(*)[32])pks, ro->n, p, n);
    free(pks);
    return rc;
}

/* ---- which key: lazily verified ---- */

struct verify_ctx {
    struct rf_local *l;
    struct rf_buf *plain; /* secure */
    int64_t seq;          /* the row wanted */
    int good;             /* 1 verified, -1 refused, 0 cannot tell yet */
};

static int verify_row(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed, size_t n)
{
    struct verify_ctx *v = ctx;
    const struct rf_roster *const *rosters;
    size_t nro = 0;
    struct rf_casekey_obj o;
    char ad[48], hex[17];
    if (k->seq != v->seq)
        return 0;
    rf_local_rosters(v->l, &rosters, &nro);
    sodium_bin2hex(hex, sizeof(hex), k->keyid, 8);
    snprintf(ad, sizeof(ad), "casekey:%s:%s", k->case_id, hex);
    rf_buf_reset(v->plain);
    int rc = rf_local_open(v->l, ad, sealed, n, v->plain);
    if (rc == 0)
        rc = rf_casekey_verify(&o, v->plain->data, v->plain->len, k->case_id);
    if (rc == 0 && o.roster > nro)
        v->good = 0; /* a roster not loaded here yet: decided later */
    else
        v->good = rc == 0 && o.roster >= 1 && o.roster == k->roster &&
                          rf_roster_find(rosters[o.roster - 1], o.maker) >= 0
                      ? 1
                      : -1;
    rf_buf_reset(v->plain);
    return rc == RF_ERR_NOMEM ? rc : 1; /* one row: stop */
}

struct pick_ctx {
    struct rf_local *l;
    uint32_t version;
    struct rf_ccasekey want[RF_CKEYS_MAX];
    size_t n;
};

static int list_row(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed, size_t n)
{
    struct pick_ctx *p = ctx;
    (void)sealed;
    (void)n;
    if (k->roster == p->version && k->verified >= 0 && p->n < RF_CKEYS_MAX)
        p->want[p->n++] = *k;
    return 0;
}

/* Loads into ks the key to write under (ks->n == 1), or leaves it empty. */
static int pick_key(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                    struct rf_ckeys *ks)
{
    struct pick_ctx *p = calloc(1, sizeof(*p));
    struct rf_buf plain;
    if (!p)
        return RF_ERR_NOMEM;
    p->l = x->l;
    p->version = ro->version;
    rf_buf_init_secure(&plain, 4096);
    rf_ckeys_reset(ks);
    int rc = rf_cache_casekeys(x->c, case_id, NULL, list_row, p); /* newest first */
    for (size_t i = 0; rc == 0 && i < p->n && ks->n == 0; i++) {
        struct rf_ccasekey *k = &p->want[i];
        if (k->verified == 0) {
            struct verify_ctx v = {x->l, &plain, k->seq, 0};
            rc = rf_cache_casekeys(x->c, case_id, k->keyid, verify_row, &v);
            if (rc == 1)
                rc = 0;
            if (rc == 0 && v.good != 0) {
                k->verified = v.good;
                rc = rf_cache_casekey_set_verified(x->c, k, k->verified);
            }
        }
        if (rc == 0 && k->verified == 1) {
            rc = rf_local_casekeys_load(x->l, case_id, k->keyid, ks);
            /* the row itself (two keys may share an id: keep this seq's) */
            size_t keep = ks->n;
            for (size_t j = 0; j < ks->n; j++)
                if (ks->rows[j].seq == k->seq)
                    keep = j;
            if (keep < ks->n && keep > 0) {
                memcpy(ks->keys[0], ks->keys[keep], 32);
                memcpy(ks->ids[0], ks->ids[keep], 8);
                ks->rows[0] = ks->rows[keep];
            }
            ks->n = keep < ks->n ? 1 : 0;
        }
    }
    rf_buf_free(&plain);
    free(p);
    return rc;
}

/* Makes a new key for case_id and ro: stored (seq 0, verified), its
 * CASEKEY envelope in mk, the key itself in ks (ks->n == 1). */
static int make_key(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                    struct rf_ckeys *ks, struct rf_evseal_key *mk)
{
    struct rf_buf plain, row;
    struct rf_ccasekey k;
    memset(&k, 0, sizeof(k));
    rf_ckeys_reset(ks);
    rf_buf_init_secure(&plain, 4096);
    rf_buf_init(&row, 4096);
    rf_casekey_new(ks->keys[0]);
    rf_casekey_id(ks->ids[0], ks->keys[0]);
    int rc = rf_casekey_encode(&plain, x->k, case_id, ro->version, ks->keys[0]);
    if (rc == 0)
        rc = rf_local_casekey_seal(x->l, case_id, ks->ids[0], plain.data, plain.len, &row);
    rf_buf_reset(&mk->env);
    if (rc == 0)
        rc = seal_to(&mk->env, RF_KIND_CASEKEY, ro, plain.data, plain.len);
    if (rc == 0) {
        snprintf(k.case_id, sizeof(k.case_id), "%s", case_id);
        memcpy(k.keyid, ks->ids[0], 8);
        k.seq = 0;
        k.roster = ro->version;
        memcpy(k.maker, x->k->sign_pk, 32);
        k.verified = 1;
        rc = rf_cache_casekey_put(x->c, &k, row.data, row.len);
    }
    if (rc == 0) {
        memcpy(mk->keyid, k.keyid, 8);
        ks->rows[0] = k;
        ks->n = 1;
    } else {
        rf_buf_reset(&mk->env);
        rf_ckeys_reset(ks);
    }
    rf_buf_free(&plain);
    rf_buf_free(&row);
    return rc;
}

int rf_evseal_event(struct rf_ctx *x, const struct rf_roster *ro, int format, const char *case_id,
                    const uint8_t *ev, size_t n, struct rf_buf *out, struct rf_evseal_key *mk)
{
    rf_buf_reset(&mk->env);
    if (format != 2 || strcmp(case_id, TEAMCONFIG) == 0)
        return seal_to(out, RF_KIND_EVENT, ro, ev, n);
    struct rf_ckeys ks;
    int rc = rf_ckeys_init(&ks, RF_CKEYS_MAX);
    if (rc == 0)
        rc = pick_key(x, ro, case_id, &ks);
    if (rc == 0 && ks.n == 0)
        rc = make_key(x, ro, case_id, &ks, mk);
    if (rc == 0)
        rc = rf_casekey_event_seal(out, ks.keys[0], case_id, ev, n);
    rf_ckeys_free(&ks);
    return rc;
}

int rf_evseal_post_key(struct rf_ctx *x, const char *case_id, const struct rf_evseal_key *mk)
{
    char path[128];
    json_t *ans = NULL;
    snprintf(path, sizeof(path), "/api/v1/cases/%s/casekeys", case_id);
    int rc = rf_net_json(x->n, "POST", path, mk->env.data, mk->env.len, "application/octet-stream",
                         &ans);
    json_t *seq = json_object_get(ans, "seq");
    if (rc == 0 && json_is_integer(seq) && json_integer_value(seq) > 0)
        rc = rf_cache_casekey_posted(x->c, case_id, mk->keyid, json_integer_value(seq));
    json_decref(ans);
    return rc;
}

/* Whether env (an envelope) is sealed to exactly the box keys of ro. */
static int sealed_to(const uint8_t *p, size_t n, const struct rf_roster *ro)
{
    struct rf_env_header hd;
    uint8_t ids[RF_ENV_MAX_RECIPIENTS][RF_ENV_KEYID_BYTES];
    if (rf_envelope_header_parse(&hd, ids, RF_ENV_MAX_RECIPIENTS, p, n) != 0 || hd.nrecip != ro->n)
        return 0;
    for (uint16_t i = 0; i < ro->n; i++) {
        uint8_t kid[RF_ENV_KEYID_BYTES];
        int found = 0;
        rf_keyid(kid, ro->members[i].box_pk);
        for (uint16_t j = 0; !found && j < hd.nrecip; j++)
            found = memcmp(ids[j], kid, sizeof(kid)) == 0;
        if (!found)
            return 0;
    }
    return 1;
}

struct stale_ctx {
    uint32_t version;
    int usable;
};

static int usable_row(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed, size_t n)
{
    struct stale_ctx *s = ctx;
    (void)sealed;
    (void)n;
    if (k->roster == s->version && k->verified == 1)
        s->usable = 1;
    return 0;
}

int rf_evseal_stale(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                    const uint8_t *p, size_t n)
{
    uint8_t id[RF_CASEKEY_ID_BYTES];
    if (rf_casekey_event_version(p, n) != 2)
        return !sealed_to(p, n, ro);
    if (rf_casekey_event_keyid(id, p, n) != 0)
        return 1;
    struct stale_ctx s = {ro->version, 0};
    if (rf_cache_casekeys(x->c, case_id, id, usable_row, &s) != 0)
        return 1;
    return !s.usable;
}
