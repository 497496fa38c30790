/*
 * thread.c - decrypting cached objects on the fly for display. Plaintext
 * goes from rf_open into sodium_malloc buffers (or, for a file being sized,
 * nowhere) and into jansson values whose memory is wiped on free (out.c);
 * it is never written to disk. The kind shown is the one authenticated
 * inside the envelope, not the server's label. An object sealed before this
 * caseworker joined opens with a grant received for it (rewrap): every
 * granter's grant is kept, and the one whose key authenticates the object's
 * first chunk is used, so a junk grant a member posted first is skipped
 * (rf_thread_pick).
 */
#include "client/cache.h"
#include "client/cmd.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define PLAIN_JSON_MAX (4 * 1024 * 1024)

static int feed_open(void *ctx, const uint8_t *p, size_t n)
{
    return rf_open_write(ctx, p, n);
}

static int to_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* Stops an open at its first plaintext: the first chunk authenticated. */
static int stop_sink(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx;
    (void)p;
    (void)n;
    return RF_ERR_CANCELLED;
}

/* 0 if object seq opens with this client's stanza (grant NULL) or with
 * grant: its first chunk authenticates under the key found (the plaintext
 * goes nowhere; only one chunk is read). */
static int opens_with(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                      const uint8_t *grant)
{
    struct rf_open *o = NULL;
    int rc = grant ? rf_open_new_grant(&o, grant, k->box_pk, k->box_sk, stop_sink, NULL)
                   : rf_open_new(&o, k->box_pk, k->box_sk, stop_sink, NULL);
    if (rc == 0)
        rc = rf_cache_object_stream(c, seq, feed_open, o);
    if (rc == 0)
        rc = rf_open_finish(o);
    rf_open_free(o);
    return rc == RF_ERR_CANCELLED ? 0 : rc;
}

int rf_thread_pick(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                   uint8_t grant[RF_GRANT_BYTES], int *use_grant)
{
    uint8_t(*g)[RF_GRANT_BYTES] = malloc((size_t)RF_GRANTS_PER_KEY_MAX * RF_GRANT_BYTES);
    size_t n = 0;
    *use_grant = 0;
    int rc = g ? rf_cache_grants_get(c, seq, g, RF_GRANTS_PER_KEY_MAX, &n) : RF_ERR_NOMEM;
    if (rc != 0 || n == 0)
        goto out; /* no grant: the stanza or nothing, as rf_open says */
    int why = opens_with(c, k, seq, NULL);
    for (size_t i = 0; why != 0 && i < n; i++) {
        /* a grant that does not open the object (junk, or another object's
         * key) is skipped; only a wrong key is worth trying the next */
        if (why != RF_ERR_NOT_RECIPIENT && why != RF_ERR_DECRYPT)
            break;
        why = opens_with(c, k, seq, g[i]);
        if (why == 0) {
            memcpy(grant, g[i], RF_GRANT_BYTES);
            *use_grant = 1;
        }
    }
    rc = why;
out:
    free(g);
    return rc;
}

/* Opens object seq into sink with this client's stanza or, when it has
 * none, the received grant that opens it (objects sealed before it joined). */
int rf_thread_open(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq, rf_sink_fn sink,
                   void *ctx, uint8_t *kind)
{
    struct rf_open *o = NULL;
    uint8_t grant[RF_GRANT_BYTES];
    int use_grant = 0;
    int rc = rf_thread_pick(c, k, seq, grant, &use_grant);
    if (rc == 0 && use_grant)
        rc = rf_open_new_grant(&o, grant, k->box_pk, k->box_sk, sink, ctx);
    else if (rc == 0)
        rc = rf_open_new(&o, k->box_pk, k->box_sk, sink, ctx);
    if (rc == 0)
        rc = rf_cache_object_stream(c, seq, feed_open, o);
    if (rc == 0)
        rc = rf_open_finish(o);
    if (rc == 0)
        *kind = rf_open_kind(o);
    rf_open_free(o);
    return rc;
}

int rf_thread_open_json(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                        json_t **json)
{
    struct rf_buf plain;
    uint8_t kind = 0;
    *json = NULL;
    rf_buf_init_secure(&plain, PLAIN_JSON_MAX);
    int rc = rf_thread_open(c, k, seq, to_buf, &plain, &kind);
    if (rc == 0 && kind != RF_KIND_MESSAGE && kind != RF_KIND_REPLY)
        rc = RF_ERR_FORMAT;
    if (rc == 0) {
        json_error_t e;
        *json = json_loadb((const char *)plain.data, plain.len, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(*json)) {
            json_decref(*json);
            *json = NULL;
            rc = RF_ERR_FORMAT;
        }
    }
    rf_buf_free(&plain);
    return rc;
}

struct file_info {
    uint8_t head[RF_FILE_META_MAX];
    size_t head_len;
    int have_meta;
    struct rf_filemeta *meta;
    uint64_t size;
};

static int count_file(void *ctx, const uint8_t *p, size_t n)
{
    struct file_info *fi = ctx;
    if (fi->have_meta) {
        fi->size += n;
        return 0;
    }
    size_t k = sizeof(fi->head) - fi->head_len;
    if (k > n)
        k = n;
    memcpy(fi->head + fi->head_len, p, k);
    fi->head_len += k;
    size_t used = 0;
    int rc = rf_filemeta_parse(fi->meta, &used, fi->head, fi->head_len);
    if (rc == RF_ERR_TRUNCATED && fi->head_len < sizeof(fi->head))
        return 0;
    if (rc != 0)
        return RF_ERR_FORMAT;
    fi->have_meta = 1;
    /* bytes of this piece past the metadata, plus any buffered beyond it */
    fi->size = (uint64_t)(fi->head_len - used) + (n - k);
    return 0;
}

int rf_thread_file_info(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                        struct rf_filemeta *meta, uint64_t *size)
{
    struct file_info *fi = sodium_malloc(sizeof(*fi));
    uint8_t kind = 0;
    if (!fi)
        return RF_ERR_NOMEM;
    memset(fi, 0, sizeof(*fi));
    fi->meta = meta;
    int rc = rf_thread_open(c, k, seq, count_file, fi, &kind);
    if (rc == 0 && (kind != RF_KIND_FILE || !fi->have_meta))
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        *size = fi->size;
    sodium_free(fi);
    return rc;
}
