/*
 * lckpt.h - the client's side of signed checkpoints (docs/protocol.md 13):
 * the chain this client keeps over the case events it verified, and the
 * checkpoint a sync uses (lib/checkpoint.h has the format).
 *
 * The chain (every client keeps one; only an admin's is ever signed and
 * posted, cmd_sync.c) covers every object of kind 4 in seq order from the
 * first, one element per event this client opened and verified, continued
 * across syncs: its state is plain data (no secret) in the cache's blob
 * "ckpt_chain". It stops for good at the first kind-4 object that could not
 * be opened or failed a check (nothing is ever checkpointed beyond it), and
 * pauses while there is a kind-4 object it has not taken below the events
 * being digested (an event left for a roster not verified yet, or events
 * another process digested); objects of other kinds do not matter, in any
 * order or pass: a paused chain is not extended by the
 * pass, and checkpoints are not used in it; rf_lckpt_walk goes on from the
 * digest rows once every object before has one.
 *
 * A run follows one digest pass (local.c digest_all) on the thread that
 * writes the rows, object by object in seq order. With a checkpoint in use,
 * the events at or below its last_seq were checked without their signature
 * (rf_state_event_check); when the run passes last_seq the chain is compared
 * with the checkpoint, and any difference, any such event that could not be
 * opened or failed, or a chain that cannot be extended, is a mismatch: the
 * caller rolls the whole pass back and digests again verifying every
 * signature.
 */
#ifndef RF_CLIENT_LCKPT_H
#define RF_CLIENT_LCKPT_H

#include "client/cache.h"
#include "lib/checkpoint.h"

#include <stdint.h>

#define RF_LCKPT_BLOB "ckpt_chain"
#define RF_LCKPT_POSTED "ckpt_posted" /* meta: last_seq of the last checkpoint posted */

struct rf_lckpt_state {
    struct rf_ckpt_chain ch; /* every kind-4 object up to ch.last_seq */
    int stopped;             /* for good: the next kind-4 object failed */
};

/* What one object came to, for the chain. */
enum rf_lckpt_obj {
    RF_LCKPT_OTHER = 0, /* not kind 4 in the listing: nothing for the chain */
    RF_LCKPT_VERIFIED,  /* an event opened and verified (hash given) */
    RF_LCKPT_FAILED,    /* kind 4, not opened or refused: the chain stops */
    RF_LCKPT_LATER,     /* kind 4, left for a later pass: the chain pauses */
};

struct rf_lckpt_run {
    struct rf_lckpt_state st;
    int paused;                /* not extended in this run */
    const struct rf_ckpt *use; /* the checkpoint in use, or NULL */
    int compared;              /* use: the chain was compared (or mismatched) */
    int mismatch;              /* use: the events are not the checkpoint's */
    enum rf_ckpt_diff diff;    /* ... why (RF_CKPT_SAME: an event failed) */
    uint64_t by_ckpt;          /* events checked without their signature */
};

int rf_lckpt_load(struct rf_cache *c, struct rf_lckpt_state *s);
int rf_lckpt_save(struct rf_cache *c, const struct rf_lckpt_state *s);

/* Starts a run over objs[0..n) (the pass's: its events in ascending seq,
 * other kinds anywhere); use (may be
 * NULL) is a checkpoint verified against the roster chain. r->use is left
 * NULL when the checkpoint cannot help (the chain is stopped or paused, or
 * already at or past its last_seq). */
int rf_lckpt_begin(struct rf_lckpt_run *r, struct rf_cache *c, const struct rf_ckpt *use,
                   const struct rf_cobj *objs, size_t n);
/* Whether an event at seq is to be checked without its signature. */
int rf_lckpt_skip_sig(const struct rf_lckpt_run *r, uint8_t kind, int64_t seq);
/* One object, in seq order. */
void rf_lckpt_obj(struct rf_lckpt_run *r, int64_t seq, uint8_t kind, const char *case_id,
                  enum rf_lckpt_obj what, const uint8_t hash[32]);
/* Ends the run: compares if the checkpoint was not reached (a mismatch),
 * and saves the state into the open transaction unless r->mismatch. */
int rf_lckpt_end(struct rf_lckpt_run *r, struct rf_cache *c);

struct rf_local;
/* Extends the kept chain from the digest rows (each verified event's row
 * keeps the hash of its signed bytes), from its end up to the first object
 * not digested yet: a chain paused by an object left for later goes on once
 * that object is digested. Stops the chain at a kind-4 row that is not a
 * verified event. Own transaction. */
int rf_lckpt_walk(struct rf_local *l, struct rf_cache *c);
/* A home that digested objects before it kept a chain (no blob, a digested
 * mark): drops the digest rows so the next update digests every object
 * again and the chain covers them from the first (*reset 1). For an
 * admin's client only: it is a one-time cost of a full digest. */
int rf_lckpt_prepare(struct rf_cache *c, int *reset);

#endif
