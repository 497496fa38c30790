/*
 * api_range.c - GET /api/v1/objects/data?after=N&limit=L: a range of
 * objects with their ciphertexts in one binary answer (lib/objrange.h,
 * docs/protocol.md section 11), so that a sync asks once per range instead
 * of once per object.
 *
 * The request is a staff request like any other (signature, roster, nonce:
 * api.c). Its target must be exactly that form (decimal, no leading zero,
 * both fields), L in 1..RF_RANGE_LIMIT_MAX: the audit entry's request record
 * then names the range unambiguously. The answer is planned from the
 * listing first (the entries with seq > N, at most L): objects over
 * RF_RANGE_DATA_MAX are left out (listed, fetched alone as before), and the
 * plan stops before the ciphertext would pass RF_RANGE_BYTES_MAX; `last` is
 * its last entry. One `fetch` audit entry, target "N+1..last", is queued
 * before a byte is sent (none if no ciphertext is in the answer; refused if
 * it cannot be queued, as a single fetch is). The answer then streams:
 * chunks of at most RANGE_CHUNK_N entries and about RANGE_CHUNK_BYTES of
 * ciphertext are read from the store (one read each) into one buffer and
 * handed to the connection as it takes them: constant memory, whatever L.
 */
#include "lib/err.h"
#include "lib/objrange.h"
#include "server/api_priv.h"
#include "server/http.h"
#include "server/srv.h"
#include "store/commit.h"
#include "store/store.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RANGE_CHUNK_N 64
#define RANGE_CHUNK_BYTES (512 * 1024)
#define RANGE_BUF_MAX                                                                              \
    (RANGE_CHUNK_BYTES + RF_RANGE_DATA_MAX + RF_RANGE_ENTRY_BYTES + RF_RANGE_HEAD_BYTES +          \
     RF_RANGE_END_BYTES)

struct range_stream {
    struct rf_store *st;
    struct rf_object *plan; /* the planned entries, ascending */
    size_t nplan, next;     /* next: the first planned entry not sent yet */
    int64_t cursor;         /* the last seq sent (after, at first) */
    int64_t last;
    uint32_t count;
    int head_sent, end_sent, failed;
    struct rf_buf buf; /* what the connection has not taken yet, from pos */
    size_t pos;
};

static void range_free(void *arg)
{
    struct range_stream *rs = arg;
    free(rs->plan);
    rf_buf_free(&rs->buf);
    free(rs);
}

/* One object from the store into the buffer; 1 (not taken) when the buffer
 * already holds a chunk's worth. */
static int range_emit(void *ctx, const struct rf_object *o, const uint8_t *data, size_t len)
{
    struct range_stream *rs = ctx;
    uint8_t head[RF_RANGE_ENTRY_BYTES];
    struct rf_range_entry e = {0};
    if (o->seq > rs->last)
        return 1;
    if (rs->buf.len - rs->pos >= RANGE_CHUNK_BYTES)
        return 1;
    e.seq = o->seq;
    e.kind = o->kind;
    e.day = o->day;
    e.roster = o->roster;
    memcpy(e.case_id, o->case_id, sizeof(e.case_id));
    e.size = o->size;
    e.has_data = data != NULL;
    if (rf_range_put_entry(head, &e) != 0)
        return RF_ERR_DB;
    int rc = rf_buf_put(&rs->buf, head, sizeof(head));
    if (rc == 0 && data && len)
        rc = rf_buf_put(&rs->buf, data, len);
    if (rc != 0)
        return rc;
    rs->cursor = o->seq;
    rs->count++;
    return 0;
}

/* Reads the next chunk of the plan into the buffer. */
static int range_refill(struct range_stream *rs)
{
    rf_buf_reset(&rs->buf);
    rs->pos = 0;
    if (!rs->head_sent) {
        uint8_t h[RF_RANGE_HEAD_BYTES];
        rf_range_put_head(h);
        rs->head_sent = 1;
        return rf_buf_put(&rs->buf, h, sizeof(h));
    }
    while (rs->next < rs->nplan && rs->plan[rs->next].seq <= rs->cursor)
        rs->next++;
    if (rs->cursor < rs->last && rs->next < rs->nplan) {
        /* the chunk: up to RANGE_CHUNK_N planned entries, about
         * RANGE_CHUNK_BYTES of ciphertext */
        size_t j = rs->next, k = 0;
        uint64_t bytes = 0;
        int64_t upto = rs->plan[j].seq;
        while (j < rs->nplan && k < RANGE_CHUNK_N && bytes < RANGE_CHUNK_BYTES) {
            if (rs->plan[j].size <= RF_RANGE_DATA_MAX)
                bytes += rs->plan[j].size;
            upto = rs->plan[j].seq;
            j++, k++;
        }
        int64_t before = rs->cursor;
        int rc = rf_store_objects_range(rs->st, rs->cursor, upto, RANGE_CHUNK_N, RF_RANGE_DATA_MAX,
                                        range_emit, rs);
        if (rc != 0)
            return rc;
        if (rs->cursor == before) /* nothing left up to upto: deleted since */
            rs->cursor = upto;
        return 0; /* a chunk that stopped early goes on after what it read */
    }
    if (!rs->end_sent) {
        uint8_t end[RF_RANGE_END_BYTES];
        rf_range_put_end(end, rs->last, rs->count);
        rs->end_sent = 1;
        return rf_buf_put(&rs->buf, end, sizeof(end));
    }
    return 0;
}

static long range_read(void *arg, uint8_t *out, size_t max)
{
    struct range_stream *rs = arg;
    while (rs->pos == rs->buf.len) {
        if (rs->failed)
            return -1;
        if (rs->end_sent)
            return 0;
        if (range_refill(rs) != 0) {
            rs->failed = 1; /* the client sees the answer cut short */
            return -1;
        }
    }
    size_t n = rs->buf.len - rs->pos;
    if (n > max)
        n = max;
    memcpy(out, rs->buf.data + rs->pos, n);
    rs->pos += n;
    return (long)n;
}

/* The range's audit entry, queued without waiting; freed by its completion. */
struct range_audit {
    struct rf_op op;
    char target[48];
    uint8_t req[RF_AUDIT_REQ_MAX];
};

static void range_audit_done(void *arg, struct rf_op *op)
{
    (void)op;
    free(arg);
}

static int range_audit(struct api_state *s, int64_t first, int64_t last)
{
    struct range_audit *ra = calloc(1, sizeof(*ra));
    if (!ra)
        return RF_ERR_NOMEM;
    snprintf(ra->target, sizeof(ra->target), "%" PRId64 "..%" PRId64, first, last);
    rf_api_audit_op_signed(&ra->op, s, "fetch", ra->target, ra->req);
    int rc = rf_committer_submit(s->srv->committer, &ra->op, range_audit_done, ra);
    if (rc != 0)
        free(ra);
    return rc;
}

int rf_api_objects_data_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    int64_t after, limit;
    char canon[96];
    if (rf_api_parse_int(rf_req_query(r, "after"), 0, RF_RANGE_SEQ_MAX, -1, &after) != 0 ||
        rf_api_parse_int(rf_req_query(r, "limit"), 1, RF_RANGE_LIMIT_MAX, -1, &limit) != 0 ||
        after < 0 || limit < 1)
        return rf_api_error(r, 400, "bad_query", "after must be >= 0 and limit in 1..1000");
    snprintf(canon, sizeof(canon), "/api/v1/objects/data?after=%" PRId64 "&limit=%" PRId64, after,
             limit);
    if (strcmp(rf_req_target(r), canon) != 0)
        return rf_api_error(r, 400, "bad_query",
                            "the request must be /api/v1/objects/data?after=N&limit=L, exactly");
    struct range_stream *rs = calloc(1, sizeof(*rs));
    if (rs)
        rs->plan = calloc((size_t)limit, sizeof(*rs->plan));
    if (!rs || !rs->plan) {
        if (rs)
            free(rs);
        return rf_api_error(r, 503, "nomem", "out of memory");
    }
    rs->st = s->srv->store;
    rs->cursor = after;
    rs->last = after;
    rf_buf_init(&rs->buf, RANGE_BUF_MAX);
    size_t n = 0;
    int rc = rf_store_objects_since(rs->st, after, rs->plan, (size_t)limit, &n);
    if (rc != 0) {
        range_free(rs);
        return rf_api_store_error(r, rc);
    }
    /* the plan: stop before the ciphertext would pass RF_RANGE_BYTES_MAX */
    uint64_t bytes = 0;
    int data = 0;
    for (rs->nplan = 0; rs->nplan < n; rs->nplan++) {
        const struct rf_object *o = &rs->plan[rs->nplan];
        if (o->size <= RF_RANGE_DATA_MAX) {
            if (bytes + o->size > RF_RANGE_BYTES_MAX)
                break;
            bytes += o->size;
            data = 1;
        }
        rs->last = o->seq;
    }
    /* no unrecorded fetch: if its entry cannot even be queued, no bytes */
    if (data && (rc = range_audit(s, after + 1, rs->last)) != 0) {
        range_free(rs);
        return rf_api_store_error(r, rc == RF_ERR_BUSY ? RF_ERR_BUSY : RF_ERR_DB);
    }
    if (rf_req_respond_stream(r, 200, "application/octet-stream", range_read, range_free, rs) != 0)
        return rf_api_error(r, 503, "nomem", "out of memory");
    return 0;
}
