/*
 * local.h - the local case database: what this client has decrypted and
 * verified, kept ENCRYPTED AT REST in cache.db. Each object is opened once
 * (with its stanza or a grant) into a "digest" (the text of a message or
 * reply, the verified event, or why it is unverified); each case has a
 * "summary" (materialized state, counts, intake answers, search text) so
 * `refuge cases` lists without opening envelopes again, and a compact
 * "board" row (what the desk's board shows and filters on), written with
 * the summary. Every row is sealed
 * with XChaCha20-Poly1305 under a key derived from the caseworker's secret
 * key (so from the passphrase), with the row's identity as associated data,
 * so rows cannot be read, altered or swapped without the key file.
 */
#ifndef RF_CLIENT_LOCAL_H
#define RF_CLIENT_LOCAL_H

#include "client/cache.h"
#include "client/state.h"
#include "lib/checkpoint.h"
#include "lib/keyfile.h"
#include "lib/roster.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct rf_local;

/* Derives the row key from k and loads the verified roster versions. */
int rf_local_new(struct rf_local **out, struct rf_cache *c, const struct rf_staff_keys *k);
void rf_local_free(struct rf_local *l);
/* Reloads the roster versions from the cache (after a sync verified more). */
int rf_local_reload(struct rf_local *l);
/* The verified rosters: (*out)[i] is version i+1; NULL/0 before any sync. */
void rf_local_rosters(const struct rf_local *l, const struct rf_roster *const **out, size_t *n);

/* Seals / opens one row; ad names the row ("digest:12", "summary:abc"). */
int rf_local_seal(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                  struct rf_buf *out);
int rf_local_open(const struct rf_local *l, const char *ad, const uint8_t *p, size_t n,
                  struct rf_buf *out);
/* A case's sealed summary (ad "summary:CASE") opened and parsed: the JSON,
 * or NULL if it does not open or parse; plain (a secure buffer) is used
 * for the plaintext and left wiped. */
json_t *rf_local_open_summary(const struct rf_local *l, const char *case_id, const uint8_t *blob,
                              size_t n, struct rf_buf *plain);

/* Digests every object not digested yet (or newly granted) and rebuilds
 * the summaries of the cases they belong to (and the team's config).
 * *unverified (may be NULL) counts events refused. */
int rf_local_update(struct rf_local *l, unsigned *unverified);
/* The same, looking only at the objects numbered above after. The objects
 * are opened, verified and digested on every CPU this process may use;
 * the rows are written in seq order on the calling thread, in one
 * transaction. */
int rf_local_update_after(struct rf_local *l, int64_t after, unsigned *unverified);

/* Checkpoints (client/lckpt.h, docs/protocol.md 13). ck, verified by the
 * caller against the roster chain (rf_ckpt_verify with rf_local_rosters),
 * is used by the next update only (NULL: none): the events at or below its
 * last_seq are checked without their signature and chained, and unless the
 * chain matches ck the whole update is rolled back and done again verifying
 * every signature. rf_local_ckpt_result says what the last update did. */
void rf_local_use_checkpoint(struct rf_local *l, const struct rf_ckpt *ck);
struct rf_local_ckpt_result {
    uint64_t by_ckpt;       /* events verified by the checkpoint */
    int fell_back;          /* it did not match: every signature verified */
    enum rf_ckpt_diff diff; /* ... why (RF_CKPT_SAME: an event below it failed) */
};
void rf_local_ckpt_result(const struct rf_local *l, struct rf_local_ckpt_result *out);
/* Digesting threads (0: one per CPU this process may use, at most 16);
 * tests set 1 to compare a serial digest with a parallel one. */
extern int rf_local_digest_threads;
/* Tests: objects a digest batch holds (0: 1024), to run the pipeline of
 * batches on a few objects. */
extern size_t rf_local_digest_batch;
/* Cases at or above which a refresh reads its rows in table scans instead
 * of one case at a time (0: the default, 2048; tests set 1). */
extern int rf_local_refresh_scan_min;
/* Events in a pass at or above which the case keys are held in memory (0:
 * the default, 4096; tests set 1). */
extern int rf_local_ckmemo_min;
/* Builds the board rows (cache.h) of every summary if the cache asks for
 * it (meta "board_fill": a home from before cache version 3); rf_local_new
 * does it. *built (may be NULL): rows built. */
int rf_local_board_fill(struct rf_local *l, size_t *built);
/* Opens a case's board row (sealed by local.c under "board:CASE"):
 * {"stage","assigned","tags","due","messages","files","replies","last_day",
 * "pending","need"} into out (appended); RF_ERR_DECRYPT if damaged. */
int rf_local_board_open(const struct rf_local *l, const char *case_id, const uint8_t *p, size_t n,
                        struct rf_buf *out);
/* The next update's digest opens envelopes with the keys p opened ahead
 * (prekeys.h; stopped when the digest starts), the others as always; NULL
 * for none. The caller keeps p until the update returns. */
struct rf_prekeys;
void rf_local_use_prekeys(struct rf_local *l, struct rf_prekeys *p);
/* The board pages (local_pages.c, docs/protocol.md 16): built again when
 * the board rows newer than them pass a share of the board (force: in any
 * case), in a transaction of their own; *built (may be NULL): 1 if built.
 * Boards under rf_local_pages_min_rows rows have none (tests set it). */
extern size_t rf_local_pages_min_rows;
/* A page is closed once its plaintext reaches this many bytes (64 KiB;
 * tests set it lower). */
extern size_t rf_local_page_bytes;
int rf_local_board_pages_refresh(struct rf_local *l, int force, int *built);
/* Every board row, opened, handed to fn as it is read, in no particular
 * order, on two threads (rf_cache_board_each2's contract: fn(ctx[i], ...),
 * done(ctx[i]) after a half, the row's bytes lasting until fn returns;
 * a damaged row skipped): from the pages and the rows newer than them, or
 * from the rows alone when there are no pages. RF_ERR_BUSY: the board was
 * written meanwhile, or a page did not open; what fn saw is not the board
 * (the caller reads it as one list, rf_cache_board_list). */
typedef int (*rf_local_board_fn)(void *ctx, const char *case_id, int64_t gen, int64_t last_seq,
                                 const uint8_t *row, size_t n);
int rf_local_board_each2(struct rf_local *l, rf_local_board_fn fn, void (*done)(void *ctx),
                         void *const ctx[2]);
/* Rebuilds one case's summary (e.g. after an event was queued). */
int rf_local_refresh(struct rf_local *l, const char *case_id);

/* A case's verified events (sent and in the outbox; outbox ones have seq 0)
 * and, if bad is not NULL, a JSON array of {"seq","error"} for events that
 * failed verification. Free with rf_local_events_free. */
int rf_local_events(struct rf_local *l, const char *case_id, struct rf_ev **ev, size_t *n,
                    json_t **bad);
void rf_local_events_free(struct rf_ev *ev, size_t n);

/* The decrypted summary of a case; RF_ERR_NOT_FOUND if none. */
int rf_local_summary(struct rf_local *l, const char *case_id, json_t **out);
/* The team's stages and checklist ({"stages":[..],"checklist":[..]}). */
int rf_local_team(struct rf_local *l, json_t **out);
/* The largest lamport of the case's events (0 if none). */
int rf_local_lamport(struct rf_local *l, const char *case_id, uint64_t *out);

/* Lower-cases UTF-8 s (for search) into a malloc'd string. */
char *rf_local_fold(const char *s);

/* ---- case keys (local_casekey.c; docs/protocol.md section 12) ---- */
struct rf_cache *rf_local_cache(const struct rf_local *l);
const struct rf_staff_keys *rf_local_keys(const struct rf_local *l);
#define RF_CKEYS_MAX 64 /* keys of one case held at once (the opener tries 16 per id) */
/* A set of case keys in memory: keys in sodium_malloc memory (allocated
 * once, at init), wiped at reset and free; rows say whose each key is. */
struct rf_ckeys {
    uint8_t (*keys)[32]; /* secure */
    uint8_t (*ids)[8];
    struct rf_ccasekey *rows;
    size_t n, cap;
    struct rf_buf scratch; /* secure: one opened row */
};
int rf_ckeys_init(struct rf_ckeys *ks, size_t cap);
void rf_ckeys_reset(struct rf_ckeys *ks);
void rf_ckeys_free(struct rf_ckeys *ks);
/* Opens a sealed casekeys row of case_id into ks (skipped quietly when it
 * does not open, is not a CASEKEY of the case or ks is full). */
int rf_ckeys_add(const struct rf_local *l, struct rf_ckeys *ks, const struct rf_ccasekey *row,
                 const uint8_t *sealed, size_t n);
/* Loads every key of case_id (keyid NULL) or those with keyid into ks (reset first). */
int rf_local_casekeys_load(struct rf_local *l, const char *case_id, const uint8_t *keyid,
                           struct rf_ckeys *ks);
/* Seals a CASEKEY plaintext (rf_casekey_encode's) for the cache's casekeys row. */
int rf_local_casekey_seal(const struct rf_local *l, const char *case_id, const uint8_t keyid[8],
                          const uint8_t *plain, size_t n, struct rf_buf *out);
/* The digest of an opened CASEKEY object o (plain, its plaintext): parsed,
 * checked for its case and, if good, *ck and its sealed row (krow) to store,
 * *ok = 1. Returns the digest JSON (NULL: out of memory). */
json_t *rf_local_casekey_digest(const struct rf_local *l, const struct rf_cobj *o,
                                const struct rf_buf *plain, struct rf_ccasekey *ck,
                                struct rf_buf *krow, int *ok);
/* The digest's first half for an event version 2 (on the thread that owns
 * the database): the sealed rows of the keys named by ct's key id, each as
 * u32 length || row || bytes, appended to out; none, and a key with that id
 * held for another case: *moved (the event was moved from there). With the
 * keys in memory and opened (rf_ckmemo), out is only the mark u32
 * 0xffffffff (no row is that long): rf_local_ev2_open takes them there. */
/* A pass over many events version 2 keeps the case keys table in memory
 * (local_casekey.c): loaded by digest_passes, found by rf_local_ckmemo. */
struct rf_ckmemo;
int rf_ckmemo_load(struct rf_local *l, struct rf_ckmemo **out);
void rf_ckmemo_free(struct rf_ckmemo *m);
const struct rf_ckmemo *rf_local_ckmemo(const struct rf_local *l);
int rf_local_ev2_keys_read(struct rf_local *l, const char *case_id, const struct rf_buf *ct,
                           struct rf_buf *out, int *moved);
/* The second half (any thread): opens the keys of rf_local_ev2_keys_read
 * into ks, then the event into plain (rf_casekey_event_open). */
int rf_local_ev2_open(const struct rf_local *l, const char *case_id, const struct rf_buf *sealed,
                      struct rf_ckeys *ks, const uint8_t *ct, size_t n, struct rf_buf *plain);
/* Opens a queued event of the outbox, v1 (envelope) or v2 (this client's
 * case keys), into plain; *kind the envelope's kind (RF_KIND_EVENT for v2). */
int rf_local_outbox_open(struct rf_local *l, const char *case_id, const uint8_t *p, size_t n,
                         uint8_t *kind, struct rf_buf *plain);
/* Puts the kind-9 objects of objs first (in seq order) and appends the
 * unreadable events of their cases (they may open now); *nkeys the number
 * of kind-9 objects. objs may be reallocated. */
int rf_local_casekey_order(struct rf_local *l, struct rf_cobj **objs, size_t *n, size_t *nkeys);

#endif
