/*
 * cmd_audit.c - `refuge audit verify`: fetch the server's audit log (paged)
 * and verify its hash chain (lib/audit.h) from the first entry, and that it
 * still extends the entry this client verified last (the "anchor", kept in
 * the cache as id u64 big-endian || hash[32]). A server that edits, drops,
 * reorders or rewrites history is reported with the entry where the chain
 * breaks. Then every caseworker's entry must carry the API request that
 * caseworker signed for it (audit version 2, rf_audit_verify_sigs): an entry
 * the server invented in someone's name is reported as unsigned or forged.
 * On success the last entry becomes the new anchor.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "lib/audit.h"
#include "lib/err.h"

#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PAGE 1000
#define ANCHOR_KEY "audit_anchor"

static void usage(FILE *f)
{
    fputs("usage: refuge audit verify [--json]\n"
          "\n"
          "Fetches the server's log of staff actions (who fetched, replied, changed the\n"
          "roster, deleted; never any content) and checks its hash chain from the first\n"
          "entry and against the last entry this computer verified before, and that each\n"
          "caseworker's entry carries the request that caseworker signed for it. Prints\n"
          "\"audit log verified: N entries\", or where and how the log was broken\n"
          "(modified, deleted, reordered, rewritten, unsigned, forged) and exits 1.\n"
          "  --json   {\"ok\":true,\"entries\":N} or {\"ok\":false,\"entry\":ID,\"break\":KIND}\n",
          f);
}

static int hex32(uint8_t out[32], json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = 0;
    return s && rf_hex_decode(out, 32, &n, s, strlen(s)) == 0 && n == 32;
}

static int text_field(char *out, size_t cap, json_t *v)
{
    const char *s = json_string_value(v);
    if (!s || strlen(s) >= cap)
        return 0;
    for (const char *p = s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return 0;
    memcpy(out, s, strlen(s) + 1);
    return 1;
}

static int decode(struct rf_audit_entry *e, json_t *j)
{
    json_t *id = json_object_get(j, "id"), *day = json_object_get(j, "day");
    const char *actor = json_string_value(json_object_get(j, "actor"));
    size_t n = 0;
    memset(e, 0, sizeof(*e));
    if (!json_is_integer(id) || json_integer_value(id) < 0 || !json_is_integer(day) ||
        json_integer_value(day) < 0 || json_integer_value(day) > UINT32_MAX || !actor ||
        !text_field(e->action, sizeof(e->action), json_object_get(j, "action")) ||
        !text_field(e->target, sizeof(e->target), json_object_get(j, "target")) ||
        !hex32(e->prev, json_object_get(j, "prev")) || !hex32(e->hash, json_object_get(j, "hash")))
        return RF_ERR_PROTOCOL;
    if (actor[0] && (rf_b64_decode(e->actor, 32, &n, actor, strlen(actor)) != 0 || n != 32))
        return RF_ERR_PROTOCOL;
    const char *req = json_string_value(json_object_get(j, "request"));
    if (json_object_get(j, "request") && !req)
        return RF_ERR_PROTOCOL;
    if (req) { /* the signed request behind a caseworker's entry (audit v2) */
        if (rf_b64_decode(e->req, sizeof(e->req), &n, req, strlen(req)) != 0 || n == 0)
            return RF_ERR_PROTOCOL;
        e->req_len = (uint16_t)n;
    }
    e->id = (uint64_t)json_integer_value(id);
    e->day = (uint32_t)json_integer_value(day);
    return 0;
}

/* Fetches the whole log; *out is malloc'd. */
static int fetch_all(struct rf_ctx *x, struct rf_audit_entry **out, size_t *count)
{
    size_t cap = 1024, n = 0;
    struct rf_audit_entry *v = malloc(cap * sizeof(*v));
    uint64_t after = 0;
    json_t *page = NULL;
    int rc = v ? 0 : RF_ERR_NOMEM;
    while (rc == 0) {
        char path[96];
        snprintf(path, sizeof(path), "/api/v1/audit?after=%" PRIu64 "&limit=%d", after, PAGE);
        rc = rf_net_json(x->n, "GET", path, NULL, 0, NULL, &page);
        if (rc != 0) {
            if (rf_net_status(x->n) == 403)
                rf_cmd_forbidden(x, "cannot fetch the audit log", 0);
            else
                rf_cmd_net_err("cannot fetch the audit log", x->n);
            break;
        }
        json_t *arr = json_object_get(page, "entries");
        int more = json_is_true(json_object_get(page, "more"));
        if (!json_is_array(arr) || json_array_size(arr) > PAGE) {
            rc = RF_ERR_PROTOCOL;
            break;
        }
        for (size_t i = 0; rc == 0 && i < json_array_size(arr); i++) {
            if (n == cap) {
                struct rf_audit_entry *nv = realloc(v, 2 * cap * sizeof(*v));
                if (!nv) {
                    rc = RF_ERR_NOMEM;
                    break;
                }
                v = nv;
                cap *= 2;
            }
            rc = decode(&v[n], json_array_get(arr, i));
            if (rc == 0 && v[n].id > after)
                after = v[n].id; /* page on; order is the verifier's business */
            n++;
        }
        json_decref(page);
        page = NULL;
        if (rc != 0 || !more || json_array_size(arr) == 0)
            break;
    }
    if (rc == RF_ERR_PROTOCOL && rf_net_status(x->n) / 100 == 2)
        rf_cmd_err("cannot verify the audit log", "the server's answer is malformed");
    if (rc != 0) {
        free(v);
        return rc;
    }
    *out = v;
    *count = n;
    return 0;
}

int rf_audit_check(struct rf_ctx *x, struct rf_audit_result *r)
{
    struct rf_audit_entry *e = NULL;
    size_t n = 0, bad = 0;
    enum rf_audit_break what = RF_AUDIT_OK;
    struct rf_buf anchor;
    uint64_t aid = 0;
    uint8_t ahash[32] = {0};
    int ret = RF_EXIT_FAIL;
    memset(r, 0, sizeof(*r));
    rf_buf_init(&anchor, 64);
    int rc = rf_cache_blob_get(x->c, ANCHOR_KEY, &anchor);
    if (rc == 0 && anchor.len == 40) {
        for (int i = 0; i < 8; i++)
            aid = aid << 8 | anchor.data[i];
        memcpy(ahash, anchor.data + 8, 32);
    } else if (rc != RF_ERR_NOT_FOUND) {
        rf_cmd_err("cannot read the stored audit anchor", "the local cache is damaged");
        goto out;
    }
    if (fetch_all(x, &e, &n) != 0)
        goto out;
    if (n == 0 && aid > 0) {
        what = RF_AUDIT_DELETED; /* everything this client saw is gone */
        r->entry = 1;
    } else if (rf_audit_verify(e, n, aid, ahash, &bad, &what) != 0) {
        r->entry = e[bad].id;
    } else if (rf_audit_verify_sigs(e, n, &bad, &what, &r->nsig, &r->nlegacy, &r->nserver) != 0) {
        r->entry = e[bad].id; /* an entry a caseworker did not sign, in their name */
        snprintf(r->action, sizeof(r->action), "%s", e[bad].action);
    }
    r->what = (int)what;
    r->entries = n;
    if (what != RF_AUDIT_OK) {
        ret = RF_EXIT_OK;
        goto out;
    }
    if (n > 0) {
        uint8_t a[40];
        for (int i = 0; i < 8; i++)
            a[i] = (uint8_t)(e[n - 1].id >> (56 - 8 * i));
        memcpy(a + 8, e[n - 1].hash, 32);
        if (rf_cache_blob_set(x->c, ANCHOR_KEY, a, sizeof(a)) != 0) {
            rf_cmd_err("cannot store the audit anchor", "the local cache is not writable");
            goto out;
        }
    }
    r->ok = 1;
    ret = RF_EXIT_OK;
out:
    free(e);
    rf_buf_free(&anchor);
    return ret;
}

static int verify(struct rf_ctx *x, int json)
{
    struct rf_audit_result r;
    if (rf_audit_check(x, &r) != RF_EXIT_OK)
        return RF_EXIT_FAIL;
    enum rf_audit_break what = (enum rf_audit_break)r.what;
    if (!r.ok) {
        if (json) {
            json_t *j = json_pack("{sbsIss}", "ok", 0, "entry", (json_int_t)r.entry, "break",
                                  rf_audit_break_str(what));
            rf_out_json(j);
            json_decref(j);
        } else {
            printf("audit log broken at entry %" PRIu64 ": %s\n", r.entry,
                   rf_audit_break_str(what));
            if (what == RF_AUDIT_UNSIGNED || what == RF_AUDIT_FORGED)
                fprintf(stderr,
                        "refuge: AUDIT CHECK FAILED: entry %" PRIu64 " (%s) is not backed by a "
                        "request\n"
                        "refuge: signed by the caseworker it names: the server invented or "
                        "altered it.\n"
                        "refuge: Tell your admin; the server may be compromised.\n",
                        r.entry, r.action);
        }
        return RF_EXIT_FAIL;
    }
    if (json) {
        json_t *j = json_pack("{sbsIsIsIsI}", "ok", 1, "entries", (json_int_t)r.entries, "signed",
                              (json_int_t)r.nsig, "unsigned_legacy", (json_int_t)r.nlegacy,
                              "by_server_or_person", (json_int_t)r.nserver);
        rf_out_json(j);
        json_decref(j);
    } else {
        printf("audit log verified: %zu entr%s\n", r.entries, r.entries == 1 ? "y" : "ies");
        printf("  %zu signed by the caseworker named, %zu by the server or a person (unsigned)",
               r.nsig, r.nserver);
        if (r.nlegacy > 0)
            printf(", %zu older unsigned entr%s from before entries were signed", r.nlegacy,
                   r.nlegacy == 1 ? "y" : "ies");
        fputc('\n', stdout);
    }
    return RF_EXIT_OK;
}

int rf_cmd_audit(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, json = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        if (ch == 'j') {
            json = 1;
        } else if (ch == 'h') {
            usage(stdout);
            return RF_EXIT_OK;
        } else {
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || strcmp(argv[optind], "verify") != 0) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    struct rf_ctx x;
    if (rf_ctx_open(&x, 1) != 0)
        return RF_EXIT_FAIL;
    int ret = verify(&x, json);
    rf_ctx_close(&x);
    return ret;
}
