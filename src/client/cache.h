/*
 * cache.h - the client's local SQLite cache (home/cache.db): ciphertext
 * objects exactly as the server holds them, their metadata (case, kind,
 * size, day), the roster chain this client has verified, the sync
 * position, grants received and made, the outbox of sealed events not sent
 * yet, and the local case database (digests of objects and per-case
 * summaries). It never holds a plaintext byte: digests and summaries are
 * sealed by local.c before they get here; this module stores bytes. Objects
 * up to RF_CACHE_INLINE_MAX live in the database; larger ones in
 * home/objects/<seq> (written to a temp name, fsynced, renamed).
 */
#ifndef RF_CLIENT_CACHE_H
#define RF_CLIENT_CACHE_H

#include "client/home.h"
#include "lib/buf.h"
#include "lib/envelope.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CACHE_INLINE_MAX (1024 * 1024)

struct rf_cache;

struct rf_cobj {
    int64_t seq;
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t kind;
    uint64_t size;
    uint32_t day;
    uint32_t roster; /* the latest roster when the server stored it (0: not recorded) */
    int64_t pack;    /* 1 + its offset in objects/pack, when the query gave it; else 0 */
};

struct rf_ccase {
    char case_id[RF_CASE_ID_LEN + 1];
    uint32_t first_day;
    uint32_t last_day;
    unsigned messages, files, replies;
    int64_t first_message_seq; /* 0 if none */
    int64_t last_seq;
};

int rf_cache_open(struct rf_cache **out, const struct rf_home *h);
void rf_cache_close(struct rf_cache *c);
int rf_cache_begin(struct rf_cache *c);
int rf_cache_commit(struct rf_cache *c);
void rf_cache_rollback(struct rf_cache *c);

int rf_cache_last_seq(struct rf_cache *c, int64_t *seq);
int rf_cache_set_last_seq(struct rf_cache *c, int64_t seq);

/* Stores an object: inline ciphertext (data) or, with data == NULL, one
 * already renamed into place by rf_cache_file_path(.., 0, ..). */
int rf_cache_object_put(struct rf_cache *c, const struct rf_cobj *o, const uint8_t *data,
                        size_t len);
/* Path of a large object's file (tmp: the temp name it is written under). */
int rf_cache_file_path(struct rf_cache *c, int64_t seq, int tmp, char *out, size_t cap);
/* Streams an object's ciphertext to sink in chunks (constant memory). */
int rf_cache_object_stream(struct rf_cache *c, int64_t seq, rf_sink_fn sink, void *ctx);
/* The same for an object whose row was read already: straight from the
 * pack when o->pack says where (no lookup of its row), else as above. */
int rf_cache_object_stream_at(struct rf_cache *c, const struct rf_cobj *o, rf_sink_fn sink,
                              void *ctx);

/* Cases, most recent activity first; *out is malloc'd. */
int rf_cache_cases(struct rf_cache *c, struct rf_ccase **out, size_t *n);
/* The newest object's sequence number of a case (0 if none): one index
 * lookup, for a page of the desk's board. */
int rf_cache_case_last(struct rf_cache *c, const char *case_id, int64_t *seq);
/* Changes when objects or received grants are added: the largest object
 * sequence number, the number of received grants and the sync position
 * (all cheap). */
int rf_cache_mark(struct rf_cache *c, int64_t mark[3]);
/* One case's objects in sequence order; *out is malloc'd. RF_ERR_NOT_FOUND if none. */
int rf_cache_case_objects(struct rf_cache *c, const char *case_id, struct rf_cobj **out, size_t *n);

/* The verified roster chain. */
int rf_cache_roster_max(struct rf_cache *c, uint32_t *version); /* 0 if none */
int rf_cache_roster_get(struct rf_cache *c, uint32_t version, struct rf_buf *raw);
int rf_cache_roster_put(struct rf_cache *c, uint32_t version, const uint8_t *raw, size_t n);

/* Small named values: integers (0 when absent) and blobs (RF_ERR_NOT_FOUND). */
int rf_cache_meta_get(struct rf_cache *c, const char *key, int64_t *v);
int rf_cache_meta_set(struct rf_cache *c, const char *key, int64_t v);
int rf_cache_blob_get(struct rf_cache *c, const char *key, struct rf_buf *out);
int rf_cache_blob_set(struct rf_cache *c, const char *key, const uint8_t *p, size_t n);

/* The first max bytes of an object's ciphertext (its envelope header). */
int rf_cache_object_head(struct rf_cache *c, int64_t seq, struct rf_buf *out, size_t max);
/* Every object, in sequence order; *out is malloc'd. */
int rf_cache_objects_all(struct rf_cache *c, struct rf_cobj **out, size_t *n);

/* Digests (local.c seals them): readable 0 = this client cannot open the
 * object (yet); blob is NULL then. */
int rf_cache_digest_put(struct rf_cache *c, int64_t seq, const char *case_id, int readable,
                        const uint8_t *blob, size_t n);
/* Objects with no digest, or unreadable ones for which a grant arrived. */
int rf_cache_undigested(struct rf_cache *c, struct rf_cobj **out, size_t *n);
/* The same, only among the objects numbered above after (a range of the
 * objects table: no scan of it). Both look at the objects above the
 * "digested" mark (every object at or below it has a digest) and, below
 * it, only at the unreadable digests a grant arrived for (from the grants
 * table): a range query, not a join over every object. */
int rf_cache_undigested_after(struct rf_cache *c, int64_t after, struct rf_cobj **out, size_t *n);
/* Moves the "digested" mark up over the objects that have a digest now,
 * never past the first one without, the largest object or the sync
 * position (a sync stores new objects only above it); *mark (may be NULL)
 * receives it. */
int rf_cache_digested_advance(struct rf_cache *c, int64_t *mark);
/* Moves the mark up to upto without looking at the rows (never past the
 * largest object or the sync position): for a digest pass that took every
 * object above the mark without a digest and knows every one up to upto
 * has one now (local.c; a scan of every object otherwise, 0.9 s at
 * 1,200,000 objects). */
int rf_cache_digested_advance_to(struct rf_cache *c, int64_t upto);
/* A cold sync into an empty cache (on 1): the objects' case index is
 * dropped while the pages are stored (a random insert per object was a
 * fifth of the page writer's time), and built again, sorted, in one go (on
 * 0) before anything reads by case. A cache opened without it (a sync cut
 * off between the two) gets it back from the schema at open. */
int rf_cache_bulk_objects(struct rf_cache *c, int on);
/* In the caller's transaction: when no digest row exists yet (a cold
 * digest, on 1), the digests' case index is dropped (*dropped 1) while the
 * pass writes its rows (a random insert per row on the thread that owns
 * the database), and built again, sorted, on 0, before anything reads by
 * case. Transactional: a rollback brings the index back. */
int rf_cache_bulk_digests(struct rf_cache *c, int on, int *dropped);
/* Outside a transaction, when no digest row exists yet (a cold digest,
 * on 1): the database leaves WAL for a rollback journal (TRUNCATE) until
 * on 0 (*switched says whether it did). A cold digest writes some 450 MB
 * into pages that did not exist: in WAL they were written twice (the WAL,
 * then its checkpoint's copy, 3 s of the client's CPU at 100,000 cases,
 * most of it serial at the commit); a rollback journal holds only pages
 * that existed before, so they are written once. Left as WAL when another
 * connection has the database open (the switch needs it alone); a process
 * that dies in between leaves a hot journal SQLite rolls back, and the
 * next open sets WAL again (cache.c's schema). */
int rf_cache_bulk_journal(struct rf_cache *c, int on, int *switched);
/* The largest object's seq (0: none). */
int rf_cache_objects_max(struct rf_cache *c, int64_t *max);
/* How many objects of kind have lo < seq <= hi (the checkpoint chain's
 * check that a digest pass holds every event after the chain's end:
 * lckpt.c). */
int rf_cache_kind_count(struct rf_cache *c, uint8_t kind, int64_t lo, int64_t hi, int64_t *n);
/* Calls fn for every object of kind above after, in seq order, with its
 * digest row
 * (has 0: none; blob NULL when unreadable); fn returns 0 to go on, > 0 to
 * stop (then 0 is returned), < 0 an error returned as it is. */
typedef int (*rf_cache_walk_fn)(void *ctx, int64_t seq, const char *case_id, uint8_t kind, int has,
                                int readable, const uint8_t *blob, size_t n);
int rf_cache_digest_walk(struct rf_cache *c, uint8_t kind, int64_t after, rf_cache_walk_fn fn,
                         void *ctx);
/* Drops every digest row and the "digested" mark: the next update digests
 * every object again (summaries and board rows are rewritten by it). */
int rf_cache_digests_reset(struct rf_cache *c);
typedef int (*rf_cache_row_fn)(void *ctx, int64_t seq, const uint8_t *blob, size_t n);
/* One scan of the digest table, in seq order (no index: a refresh of many
 * cases, local_refresh.c): fn for each digest of a case in [lo, hi] (both
 * NULL: every case), with its blob if blobs, else blob NULL and n its
 * length; only readable ones. */
typedef int (*rf_cache_case_row_fn)(void *ctx, const char *case_id, int64_t seq,
                                    const uint8_t *blob, size_t n);
int rf_cache_digest_scan(struct rf_cache *c, const char *lo, const char *hi, int blobs,
                         rf_cache_case_row_fn fn, void *ctx);
/* One scan of the object table, in seq order: fn for each object of a case
 * in [lo, hi]. */
typedef int (*rf_cache_obj_fn)(void *ctx, const struct rf_cobj *o);
int rf_cache_object_scan(struct rf_cache *c, const char *lo, const char *hi, rf_cache_obj_fn fn,
                         void *ctx);
/* The readable digests of a case in sequence order. */
int rf_cache_digests(struct rf_cache *c, const char *case_id, rf_cache_row_fn fn, void *ctx);

/* Per-case summaries (sealed); listed most recent activity first. Each is
 * written with the case's board row (board, sealed; NULL: the case has
 * none, as the team's configuration) in one savepoint, or, between
 * rf_cache_summaries_bulk(c, 1) and (c, 0), in the caller's transaction
 * (which must roll back whole if one fails) with the one board generation
 * the bulk took: a sync's refresh writes 100,000 of them. */
int rf_cache_summaries_bulk(struct rf_cache *c, int on);
int rf_cache_summary_put(struct rf_cache *c, const char *case_id, int64_t last_seq,
                         const uint8_t *blob, size_t n, const uint8_t *board, size_t bn);
/* A board row alone (building the rows of summaries written before there
 * were board rows: local.c, after the version 2 -> 3 upgrade). */
int rf_cache_board_put(struct rf_cache *c, const char *case_id, int64_t last_seq,
                       const uint8_t *board, size_t bn);
/* The board rows written since generation after (0: every one), in the
 * order they were written, and *count, the number of board rows now (both
 * of one moment): a reader that keeps the rows it saw and the largest gen
 * reads only what changed, and sees that a row was deleted when its count
 * differs from *count. */
typedef int (*rf_cache_board_fn)(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                                 const uint8_t *blob, size_t n);
int rf_cache_board_since(struct rf_cache *c, int64_t after, rf_cache_board_fn fn, void *ctx,
                         int64_t *count);
/* Every board row, most recent activity first (last_seq descending, then
 * case id: the order of rf_cache_summaries), for a listing read once. */
int rf_cache_board_rows(struct rf_cache *c, rf_cache_board_fn fn, void *ctx);
/* The same rows read at once, in the same order, for a reader that shares
 * them out (their bytes stay until rf_cache_board_list_free; the blobs are
 * the sealed rows). */
struct rf_cache_board_row {
    const char *case_id; /* NULL: the column was NULL */
    int64_t gen, last_seq;
    const uint8_t *blob;
    size_t n;
};
struct rf_cache_board_list {
    struct rf_cache_board_row *rows;
    size_t n;
    struct rf_buf kept,
        kept2; /* the rows' case ids and blobs (kept2: a large board's second half) */
};
/* Boards of at least this many rows are read as two halves at once, the
 * second on a connection and thread of its own (tests set it lower). */
extern size_t rf_cache_board_split_rows;
/* Every board row handed to fn as it is read, in no particular order: a
 * board of rf_cache_board_split_rows or more as two halves of its rowids
 * at once, the first to fn(ctx[0], ...) on this thread, the second to
 * fn(ctx[1], ...) on a read-only connection and thread of its own (a
 * smaller one all to ctx[0]); done(ctx[i]) (if set) on the same thread
 * after a half's last row. A row's bytes last until fn returns; fn
 * returning non-zero stops that half. RF_ERR_BUSY: the board was written
 * between the two halves' snapshots (what fn saw is not one table). */
int rf_cache_board_each2(struct rf_cache *c, rf_cache_board_fn fn, void (*done)(void *ctx),
                         void *const ctx[2]);
/* Sorts rows into the listing's order (last_seq descending, then case id,
 * NULL first); whether x comes before y in it. */
int rf_cache_board_sort(struct rf_cache_board_row *r, size_t n);
int rf_cache_board_before(const struct rf_cache_board_row *x, const struct rf_cache_board_row *y);
int rf_cache_board_list(struct rf_cache *c, struct rf_cache_board_list *out);
/* How many board rows there are. */
int rf_cache_board_count(struct rf_cache *c, size_t *n);
void rf_cache_board_list_free(struct rf_cache_board_list *l);
/* Board pages (docs/protocol.md 16; client/local_pages.c seals and opens
 * them): a copy of every board row of generation gen or older, in pages
 * sealed as one object each, for the listing; the board table stays the
 * truth. Any board row deleted drops every page (a trigger). */
struct rf_cache_pages_info {
    int64_t gen;       /* the pages hold the rows of this generation and older; 0: none */
    int64_t npages;    /* pages 0 .. npages - 1 */
    int64_t board_gen; /* the board's generation now */
    int64_t count;     /* board rows now */
    int64_t delta;     /* board rows newer than the pages (every one without pages) */
};
int rf_cache_board_pages_info(struct rf_cache *c, struct rf_cache_pages_info *i);
/* In the caller's write transaction: every page dropped; page i put;
 * the pages' generation and count set (after the last put). */
int rf_cache_board_pages_clear(struct rf_cache *c);
int rf_cache_board_page_put(struct rf_cache *c, int64_t page, const uint8_t *blob, size_t n);
int rf_cache_board_pages_set(struct rf_cache *c, int64_t gen, int64_t npages);
/* Every page, and every board row newer than the pages, of one moment:
 * first the newer rows to delta(ctx[0], ...) on this thread, then
 * between(arg) once, then pages 0 .. npages/2 - 1 to page(ctx[0], ...) on
 * this thread and the rest to page(ctx[1], ...) on a read-only connection
 * and thread of its own (all to ctx[0] inside a transaction), done(ctx[i])
 * after a half's last page on the same thread; info as read. A blob lasts
 * until its callback returns; a callback returning non-zero stops its half.
 * RF_ERR_NOT_FOUND: no pages (nothing was handed out); RF_ERR_BUSY: the
 * board was written between the two halves' snapshots; RF_ERR_FORMAT: a
 * page is missing. */
typedef int (*rf_cache_page_fn)(void *ctx, int64_t page, const uint8_t *blob, size_t n);
struct rf_cache_pages_read {
    rf_cache_board_fn delta;
    int (*between)(void *arg);
    void *arg;
    rf_cache_page_fn page;
    void (*done)(void *ctx);
    void *ctx[2];
    struct rf_cache_pages_info info;
};
int rf_cache_board_pages_each2(struct rf_cache *c, struct rf_cache_pages_read *r);
int rf_cache_summary_get(struct rf_cache *c, const char *case_id, struct rf_buf *out);
/* Changes whenever a summary row may have changed: mark[0] counts the rows
 * written through c, mark[1] is SQLite's data_version (commits by other
 * connections, e.g. a `refuge sync` while the desk runs). */
int rf_cache_summaries_mark(struct rf_cache *c, int64_t mark[2]);
typedef int (*rf_cache_summary_fn)(void *ctx, const char *case_id, const uint8_t *blob, size_t n);
int rf_cache_summaries(struct rf_cache *c, rf_cache_summary_fn fn, void *ctx);
/* Every summary row with its last_seq, in no particular order. */
typedef int (*rf_cache_summary_seq_fn)(void *ctx, const char *case_id, int64_t last_seq,
                                       const uint8_t *blob, size_t n);
int rf_cache_summaries_seq(struct rf_cache *c, rf_cache_summary_seq_fn fn, void *ctx);
/* Every case id with an object or an outbox event; *out is malloc'd. */
int rf_cache_case_ids(struct rf_cache *c, char (**out)[RF_CASE_ID_LEN + 1], size_t *n);

/* The outbox: sealed events waiting to be posted, in order. schedule: -1
 * nothing, 0 reopen, 1 close (POST /schedule after the event). */
struct rf_coutbox {
    int64_t id;
    char case_id[RF_CASE_ID_LEN + 1];
    int schedule;
    uint32_t day;
};
int rf_cache_outbox_add(struct rf_cache *c, const char *case_id, int schedule, uint32_t day,
                        const uint8_t *env, size_t n);
/* The outbox in order (case_id NULL: all cases); *out is malloc'd, may be empty. */
int rf_cache_outbox_list(struct rf_cache *c, const char *case_id, struct rf_coutbox **out,
                         size_t *n);
int rf_cache_outbox_get(struct rf_cache *c, int64_t id, struct rf_buf *env);
int rf_cache_outbox_replace(struct rf_cache *c, int64_t id, const uint8_t *env, size_t n);
int rf_cache_outbox_del(struct rf_cache *c, int64_t id);

/* Grants: received (for this client's key) and made (by this client). */
/* A received grant is kept beside the others for the object (each granter's:
 * one may be junk), at most RF_GRANTS_PER_KEY_MAX; rf_thread_pick finds the
 * one that opens the object. */
int rf_cache_grant_put(struct rf_cache *c, int64_t seq, const uint8_t grant[RF_GRANT_BYTES]);
/* The grants received for seq, oldest first, at most cap. */
int rf_cache_grants_get(struct rf_cache *c, int64_t seq, uint8_t (*out)[RF_GRANT_BYTES], size_t cap,
                        size_t *n);
int rf_cache_granted(struct rf_cache *c, int64_t seq, const uint8_t keyid[RF_ENV_KEYID_BYTES]);
int rf_cache_granted_put(struct rf_cache *c, int64_t seq, const uint8_t keyid[RF_ENV_KEYID_BYTES]);

/* The person's public key per case, pinned the first time this computer
 * sealed to it (cmd_reply.c); a pin is never replaced. */
int rf_cache_pin_get(struct rf_cache *c, const char *case_id, uint8_t pk[32]);
int rf_cache_pin_put(struct rf_cache *c, const char *case_id, const uint8_t pk[32]);

/* ---- case keys (cache_casekey.c; docs/protocol.md section 12) ----
 * One row per CASEKEY object this client opened (or made): its plaintext
 * sealed by local.c (rf_local_seal, ad "casekey:CASE:KEYIDHEX"). */
struct rf_ccasekey {
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t keyid[8];
    int64_t seq;     /* the CASEKEY object's seq; 0: made here, not posted yet */
    uint32_t roster; /* the roster version it names */
    uint8_t maker[32];
    int verified; /* 1: made here, or signature and maker's membership checked;
                   * -1: checked and refused; 0: not checked yet */
};
/* Stores a row; an existing row (same case, key id and seq) keeps the
 * larger verified flag. */
int rf_cache_casekey_put(struct rf_cache *c, const struct rf_ccasekey *k, const uint8_t *sealed,
                         size_t n);
/* The key made here (seq 0) was posted and stored as seq. */
int rf_cache_casekey_posted(struct rf_cache *c, const char *case_id, const uint8_t keyid[8],
                            int64_t seq);
int rf_cache_casekey_set_verified(struct rf_cache *c, const struct rf_ccasekey *k, int verified);
/* Calls fn for each key of case_id (only those with key id keyid, unless
 * NULL), newest first (seq 0, not posted yet, before all); stops at fn's
 * nonzero return (returned). */
typedef int (*rf_cache_casekey_fn)(void *ctx, const struct rf_ccasekey *k, const uint8_t *sealed,
                                   size_t n);
int rf_cache_casekeys(struct rf_cache *c, const char *case_id, const uint8_t *keyid,
                      rf_cache_casekey_fn fn, void *ctx);
/* (case_id NULL: every row, ordered by case id, key id, then as above.) */
/* Whether a key with keyid is held for a case other than case_id (an event
 * version 2 naming it was moved from there). */
int rf_cache_casekey_elsewhere(struct rf_cache *c, const char *case_id, const uint8_t keyid[8],
                               int *found);
/* The events (kind 4) of case_id whose digest says unreadable: looked at
 * again when a case key of the case arrives. *out malloc'd. */
int rf_cache_unreadable_events(struct rf_cache *c, const char *case_id, struct rf_cobj **out,
                               size_t *n);

#endif
