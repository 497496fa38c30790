/*
 * cmd_rewrap.c - `refuge rewrap`: give caseworkers approved later access
 * to what was sealed before they joined, without touching any object.
 *
 * For every cached object this client can open (with its own stanza or a
 * grant it received), and every member of the roster verified NOW whose key
 * id is neither in the object's header nor already granted by this client,
 * the content key is sealed to that member's box key (rf_grant_make) and
 * posted in batches of at most 1000. Removed members are not on the verified
 * roster, so they get nothing. The server tells each member only their own
 * grants, so this client remembers the grants it made (cache "granted").
 * A CASEKEY object (kind 9, docs/protocol.md 12) is an envelope like any
 * other: granting it gives the newcomer every event version 2 under its key.
 * Those events are not envelopes and need no grant: their header does not
 * parse as one, and they are passed over without a word.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BATCH 1000
#define HEAD_MAX RF_ENV_HEADER_MAX

struct made {
    int64_t seq;
    uint8_t keyid[RF_ENV_KEYID_BYTES];
};

struct batch {
    json_t *grants;
    struct made *made;
    size_t n;
    unsigned total;
};

static int flush(struct rf_ctx *x, struct batch *b)
{
    if (b->n == 0)
        return 0;
    json_t *j = json_pack("{sO}", "grants", b->grants);
    char *body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!body)
        return RF_ERR_NOMEM;
    int rc = rf_net_json(x->n, "POST", "/api/v1/grants", (const uint8_t *)body, strlen(body),
                         "application/json", NULL);
    rf_out_json_free(body);
    if (rc != 0) {
        if (rf_net_status(x->n) == 403)
            rf_cmd_forbidden(x, "grants not sent", 0);
        else
            rf_cmd_net_err("grants not sent", x->n);
        return rc;
    }
    rc = rf_cache_begin(x->c);
    for (size_t i = 0; rc == 0 && i < b->n; i++)
        rc = rf_cache_granted_put(x->c, b->made[i].seq, b->made[i].keyid);
    if (rc == 0)
        rc = rf_cache_commit(x->c);
    else
        rf_cache_rollback(x->c);
    b->total += (unsigned)b->n;
    b->n = 0;
    json_array_clear(b->grants);
    return rc;
}

/* The content key of object seq for this client, or RF_ERR_NOT_RECIPIENT. */
static int content_key(struct rf_ctx *x, int64_t seq, const struct rf_buf *head,
                       const uint8_t (*ids)[RF_ENV_KEYID_BYTES], size_t nids,
                       const uint8_t mine[RF_ENV_KEYID_BYTES], uint8_t *key)
{
    for (size_t i = 0; i < nids; i++)
        if (memcmp(ids[i], mine, RF_ENV_KEYID_BYTES) == 0)
            return rf_envelope_content_key(key, head->data, head->len, x->k->box_pk, x->k->box_sk);
    /* only a grant whose key opens the object: a junk one is never passed on */
    uint8_t grant[RF_GRANT_BYTES];
    int use_grant = 0;
    if (rf_thread_pick(x->c, x->k, seq, grant, &use_grant) != 0 || !use_grant)
        return RF_ERR_NOT_RECIPIENT;
    if (crypto_box_seal_open(key, grant + RF_ENV_KEYID_BYTES, RF_GRANT_BYTES - RF_ENV_KEYID_BYTES,
                             x->k->box_pk, x->k->box_sk) != 0)
        return RF_ERR_DECRYPT;
    /* A grant of a key the header does not commit to is passed on to nobody. */
    return rf_envelope_key_check(key, head->data, head->len);
}

static int rewrap_one(struct rf_ctx *x, const struct rf_roster *ro, const struct rf_cobj *o,
                      const uint8_t mine[RF_ENV_KEYID_BYTES], uint8_t *key, struct batch *b)
{
    struct rf_buf head;
    struct rf_env_header hd;
    uint8_t ids[RF_ENV_MAX_RECIPIENTS][RF_ENV_KEYID_BYTES];
    rf_buf_init(&head, HEAD_MAX);
    int rc = rf_cache_object_head(x->c, o->seq, &head, HEAD_MAX);
    if (rc == 0)
        rc = rf_envelope_header_parse(&hd, ids, RF_ENV_MAX_RECIPIENTS, head.data, head.len);
    if (rc == 0)
        rc = content_key(x, o->seq, &head, (const uint8_t(*)[RF_ENV_KEYID_BYTES])ids, hd.nrecip,
                         mine, key);
    rf_buf_free(&head);
    if (rc != 0)
        return 0; /* not readable here: someone else may grant it */
    for (uint16_t m = 0; rc == 0 && m < ro->n; m++) {
        uint8_t kid[RF_ENV_KEYID_BYTES], grant[RF_GRANT_BYTES];
        char hex[2 * RF_ENV_KEYID_BYTES + 1], b64[RF_GRANT_BYTES * 2];
        rf_keyid(kid, ro->members[m].box_pk);
        int have = memcmp(kid, mine, sizeof(kid)) == 0;
        for (uint16_t i = 0; !have && i < hd.nrecip; i++)
            have = memcmp(ids[i], kid, sizeof(kid)) == 0;
        if (have || rf_cache_granted(x->c, o->seq, kid))
            continue;
        rc = rf_grant_make(grant, key, ro->members[m].box_pk);
        if (rc != 0)
            break;
        rf_hex_encode(hex, sizeof(hex), kid, sizeof(kid));
        rf_b64_encode(b64, sizeof(b64), grant, sizeof(grant));
        json_array_append_new(b->grants, json_pack("{sIssss}", "seq", (json_int_t)o->seq, "keyid",
                                                   hex, "grant", b64));
        b->made[b->n].seq = o->seq;
        memcpy(b->made[b->n].keyid, kid, sizeof(kid));
        if (++b->n == BATCH)
            rc = flush(x, b);
    }
    sodium_memzero(key, 32);
    return rc;
}

int rf_cmd_rewrap(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: refuge rewrap\n\n"
             "Gives every caseworker on the verified roster access to what this computer can\n"
             "read but they cannot (sent before they were approved): the object's key is\n"
             "sealed to them in a \"grant\" stored beside it. Run it after approving someone.\n"
             "Removed caseworkers get nothing. Prints \"granted N keys\".");
        return RF_EXIT_OK;
    }
    if (argc != 1) {
        fputs("usage: refuge rewrap\n", stderr);
        return RF_EXIT_USAGE;
    }
    struct rf_ctx x;
    struct rf_roster *ro = NULL;
    struct rf_cobj *objs = NULL;
    size_t n = 0;
    uint8_t mine[RF_ENV_KEYID_BYTES];
    uint8_t *key = sodium_malloc(32);
    struct batch b = {json_array(), calloc(BATCH, sizeof(struct made)), 0, 0};
    int ret = RF_EXIT_FAIL, rc;
    if (rf_ctx_open(&x, 1) != 0)
        goto out;
    if (!key || !b.grants || !b.made)
        goto out;
    if (rf_sync_run(&x, 1, 0, &ro) != 0)
        goto out;
    rc = rf_cache_objects_all(x.c, &objs, &n);
    if (rc != 0) {
        rf_cmd_errc("cannot read the local cache", rc);
        goto out;
    }
    rf_keyid(mine, x.k->box_pk);
    for (size_t i = 0; i < n; i++) {
        rc = rewrap_one(&x, ro, &objs[i], mine, key, &b);
        if (rc != 0)
            goto out;
    }
    if (flush(&x, &b) != 0)
        goto out;
    printf("granted %u key%s\n", b.total, b.total == 1 ? "" : "s");
    ret = RF_EXIT_OK;
out:
    if (ret != RF_EXIT_OK && b.total)
        printf("granted %u key%s before the failure\n", b.total, b.total == 1 ? "" : "s");
    json_decref(b.grants);
    free(b.made);
    free(objs);
    free(ro);
    sodium_free(key);
    rf_ctx_close(&x);
    return ret;
}
