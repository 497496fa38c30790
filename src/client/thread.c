/*
 * thread.c - decrypting cached objects on the fly for display. Plaintext
 * goes from rf_open into sodium_malloc buffers (or, for a file being sized,
 * nowhere) and into jansson values whose memory is wiped on free (out.c);
 * it is never written to disk. The kind shown is the one authenticated
 * inside the envelope, not the server's label. An object sealed before this
 * caseworker joined opens with the grant received for it (rewrap).
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

/* Opens object seq into sink with this client's stanza or, when it has
 * one, the grant it received for it (objects sealed before it joined). */
int rf_thread_open(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq, rf_sink_fn sink,
                   void *ctx, uint8_t *kind)
{
    struct rf_open *o = NULL;
    uint8_t grant[RF_GRANT_BYTES];
    int rc = rf_cache_grant_get(c, seq, grant);
    if (rc == 0)
        rc = rf_open_new_grant(&o, grant, k->box_pk, k->box_sk, sink, ctx);
    else
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
