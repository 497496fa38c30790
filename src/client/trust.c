/*
 * trust.c - verifying the roster chain (see trust.h).
 *
 * The server hands out every version; this client checks version 1 against
 * the first admin's key pinned at init, each later version against the one
 * before (signed by one of its admins, carrying its hash), and that every
 * version it verified on an earlier run is byte-identical now and that the
 * chain has not shrunk. A server that forks, rewrites or rolls back the
 * roster is refused loudly, and the command encrypts nothing.
 *
 * A valid signature is not enough: an admin fooled into approving a key
 * the server swapped in (issue 13, finding 1) signs a roster that seals
 * "this caseworker's" copies to the server. So the latest version must list
 * this caseworker, if at all, with exactly the keys in their key file: an
 * entry with their signing key and another encryption key, or their name
 * and other keys, is refused as loudly as a forged signature.
 */
#include "client/trust.h"
#include "client/out.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHAIN_MAX 100000

static void loud(const char *why)
{
    fprintf(stderr,
            "refuge: ROSTER CHECK FAILED: %s.\n"
            "refuge: Nothing was encrypted or sent. The server may be compromised or\n"
            "refuge: misconfigured; tell your admin before doing anything else.\n",
            why);
}

static void loud_self(const struct rf_staff_keys *self, const char *which)
{
    fputs("refuge: ROSTER CHECK FAILED: the team's roster lists you (", stderr);
    rf_out_safe(stderr, self->name, 0);
    fprintf(stderr,
            ") with %s not yours.\n"
            "refuge: Whatever is encrypted to this roster \"for you\" could be read by whoever\n"
            "refuge: holds that key, not by you: the server (or someone who broke into it)\n"
            "refuge: may have swapped it in when an admin approved you.\n"
            "refuge: Nothing was encrypted or sent. Tell your admin in person or by phone: they\n"
            "refuge: should remove that entry (refuge staff remove NAME) and approve you again\n"
            "refuge: after comparing all 8 groups of your `refuge fingerprint`.\n",
            which);
}

int rf_trust_self_check(const struct rf_roster *ro, const struct rf_staff_keys *self)
{
    if (self == NULL)
        return 0;
    for (uint16_t i = 0; i < ro->n; i++) {
        const struct rf_member *m = &ro->members[i];
        int same_sign = sodium_memcmp(m->sign_pk, self->sign_pk, 32) == 0;
        int same_box = sodium_memcmp(m->box_pk, self->box_pk, 32) == 0;
        int same_name = strcmp(m->name, self->name) == 0;
        if (same_sign && !same_box) {
            loud_self(self, "an encryption key that is");
            return RF_ERR_ROSTER;
        }
        if (same_name && !(same_sign && same_box)) {
            loud_self(self, same_sign || same_box ? "a key that is" : "keys that are");
            return RF_ERR_ROSTER;
        }
    }
    return 0;
}

int rf_trust_verify_chain(const uint8_t *const *raw, const size_t *len, size_t n,
                          const uint8_t pinned[32], struct rf_roster **out)
{
    *out = NULL;
    if (n == 0)
        return RF_ERR_ROSTER;
    struct rf_roster *prev = malloc(sizeof(*prev));
    struct rf_roster *cur = malloc(sizeof(*cur));
    int rc = 0;
    if (!prev || !cur) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        rc = rf_roster_verify(cur, raw[i], len[i], i ? prev : NULL, i ? raw[i - 1] : NULL,
                              i ? len[i - 1] : 0, pinned);
        if (rc == 0 && cur->version != i + 1)
            rc = RF_ERR_ROSTER;
        if (rc != 0)
            goto out;
        struct rf_roster *t = prev;
        prev = cur;
        cur = t;
    }
    *out = prev;
    prev = NULL;
out:
    free(prev);
    free(cur);
    return rc;
}

int rf_trust_roster(struct rf_net *n, struct rf_cache *c, const uint8_t pinned[32],
                    const struct rf_staff_keys *self, struct rf_roster **out, int flags)
{
    json_t *j = NULL;
    uint8_t **raw = NULL;
    size_t *len = NULL, cnt = 0;
    struct rf_buf known;
    rf_buf_init(&known, RF_ROSTER_MAX_BYTES);
    *out = NULL;
    int rc = rf_net_json(n, "GET", "/api/v1/roster", NULL, 0, NULL, &j);
    if (rc != 0) {
        if (rc != RF_ERR_NET || !(flags & RF_TRUST_QUIET_NET))
            fprintf(stderr, "refuge: cannot fetch the roster: %s\n", rf_net_error(n));
        goto out;
    }
    json_t *chain = json_object_get(j, "chain");
    json_t *ver = json_object_get(j, "version");
    cnt = json_array_size(chain);
    rc = RF_ERR_ROSTER;
    if (!json_is_array(chain) || cnt == 0 || cnt > CHAIN_MAX || !json_is_integer(ver) ||
        json_integer_value(ver) != (json_int_t)cnt) {
        loud("the server's roster chain is malformed");
        goto out;
    }
    raw = calloc(cnt, sizeof(*raw));
    len = calloc(cnt, sizeof(*len));
    if (!raw || !len) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    for (size_t i = 0; i < cnt; i++) {
        const char *s = json_string_value(json_array_get(chain, i));
        raw[i] = malloc(RF_ROSTER_MAX_BYTES);
        if (!s || !raw[i] ||
            rf_b64_decode(raw[i], RF_ROSTER_MAX_BYTES, &len[i], s, strlen(s)) != 0) {
            loud("the server's roster chain is malformed");
            goto out;
        }
    }
    rc = rf_trust_verify_chain((const uint8_t *const *)raw, len, cnt, pinned, out);
    if (rc != 0) {
        loud("a roster version is not signed by an admin of the version before it (or version 1 "
             "is not signed by the admin key pinned at init)");
        goto out;
    }
    uint32_t have = 0;
    rc = rf_cache_roster_max(c, &have);
    if (rc != 0)
        goto out;
    if (have > cnt) {
        rc = RF_ERR_ROSTER;
        loud("the server's roster is older than one this computer verified before (rollback)");
        goto out;
    }
    for (uint32_t v = 1; v <= have; v++) {
        rf_buf_reset(&known);
        rc = rf_cache_roster_get(c, v, &known);
        if (rc != 0)
            goto out;
        if (known.len != len[v - 1] || memcmp(known.data, raw[v - 1], known.len) != 0) {
            rc = RF_ERR_ROSTER;
            loud("the server's roster history differs from the one this computer verified "
                 "before (fork)");
            goto out;
        }
    }
    for (size_t v = have + 1; v <= cnt; v++) {
        rc = rf_cache_roster_put(c, (uint32_t)v, raw[v - 1], len[v - 1]);
        if (rc != 0)
            goto out;
    }
    /* Kept (it verified, and a later rollback must still be caught), but
     * never used while it names another key for this caseworker. */
    rc = rf_trust_self_check(*out, self);
out:
    if (rc != 0) {
        free(*out);
        *out = NULL;
    }
    for (size_t i = 0; raw && i < cnt; i++)
        free(raw[i]);
    free(raw);
    free(len);
    rf_buf_free(&known);
    json_decref(j);
    return rc;
}

/* The cached chain, versions 1..max, into malloc'd arrays. */
static int load_cached(struct rf_cache *c, uint8_t ***raw, size_t **len, size_t *cnt)
{
    uint32_t max = 0;
    struct rf_buf b;
    *raw = NULL;
    *len = NULL;
    *cnt = 0;
    int rc = rf_cache_roster_max(c, &max);
    if (rc != 0)
        return rc;
    if (max == 0)
        return RF_ERR_NOT_FOUND;
    *raw = calloc(max, sizeof(**raw));
    *len = calloc(max, sizeof(**len));
    if (!*raw || !*len)
        return RF_ERR_NOMEM;
    *cnt = max;
    for (uint32_t v = 1; v <= max; v++) {
        rf_buf_init(&b, RF_ROSTER_MAX_BYTES);
        rc = rf_cache_roster_get(c, v, &b);
        if (rc != 0) {
            rf_buf_free(&b);
            return rc;
        }
        (*raw)[v - 1] = rf_buf_steal(&b, &(*len)[v - 1]);
    }
    return 0;
}

static void free_cached(uint8_t **raw, size_t *len, size_t cnt)
{
    for (size_t i = 0; raw && i < cnt; i++)
        free(raw[i]);
    free(raw);
    free(len);
}

int rf_trust_roster_cached(struct rf_cache *c, const uint8_t pinned[32],
                           const struct rf_staff_keys *self, struct rf_roster **out)
{
    uint8_t **raw = NULL;
    size_t *len = NULL, cnt = 0;
    *out = NULL;
    int rc = load_cached(c, &raw, &len, &cnt);
    if (rc == 0)
        rc = rf_trust_verify_chain((const uint8_t *const *)raw, len, cnt, pinned, out);
    if (rc != 0 && rc != RF_ERR_NOT_FOUND)
        loud("the roster chain stored on this computer does not verify");
    if (rc == 0 && (rc = rf_trust_self_check(*out, self)) != 0) {
        free(*out);
        *out = NULL;
    }
    free_cached(raw, len, cnt);
    return rc;
}

int rf_trust_first_admin(struct rf_cache *c, const uint8_t pinned[32], struct rf_member *out)
{
    struct rf_buf b;
    struct rf_roster *r = malloc(sizeof(*r));
    rf_buf_init(&b, RF_ROSTER_MAX_BYTES);
    int rc = r ? rf_cache_roster_get(c, 1, &b) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_roster_verify(r, b.data, b.len, NULL, NULL, 0, pinned);
    if (rc == 0) {
        int i = rf_roster_find(r, pinned);
        if (i < 0)
            rc = RF_ERR_ROSTER;
        else
            *out = r->members[i];
    }
    rf_buf_free(&b);
    free(r);
    return rc;
}

int rf_trust_was_member(struct rf_cache *c, const uint8_t sign_pk[32])
{
    uint8_t **raw = NULL;
    size_t *len = NULL, cnt = 0;
    int found = 0;
    struct rf_roster *r = malloc(sizeof(*r));
    if (r && load_cached(c, &raw, &len, &cnt) == 0)
        for (size_t i = 0; !found && i < cnt; i++)
            found = rf_roster_parse(r, raw[i], len[i]) == 0 && rf_roster_find(r, sign_pk) >= 0;
    free_cached(raw, len, cnt);
    free(r);
    return found;
}
