/*
 * commit.h - group commit. Many request threads submit write ops; one
 * committer thread takes everything queued, applies it with a single
 * rf_store_apply (one fsync for the lot) and calls each op's completion.
 * Under load the batch grows on its own, so the fsync cost is shared: that is
 * how durable submissions reach thousands per second.
 *
 * A completion runs on the committer thread, and every batch after it waits
 * for it. So a completion only records and hands over: it may read its ops'
 * statuses and outputs (rf_op_status, rf_op_seq, ...), store them in its own
 * state, update counters (atomics), free memory it owns, and wake its owner
 * (rf_req_resume, a condition variable). It does no I/O and takes no lock
 * but its owner's hand-off: no store read or write, no blob, no put, no
 * session, no rendering, no JSON, no logging, and no submit (the next step
 * runs on the request's own thread after the resume: http.h
 * rf_req_suspend_then). The committer marks its thread while completions
 * run, and those entry points assert(!rf_committer_in_completion()) (on in
 * every build with asserts: the sanitizer build, tests).
 */
#ifndef RF_COMMIT_H
#define RF_COMMIT_H

#include "lib/hist.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define RF_COMMIT_MAX_BATCH 512
#define RF_COMMIT_MAX_QUEUE 8192

struct rf_committer;
typedef void (*rf_commit_done_fn)(void *arg, struct rf_op *op);

int rf_committer_new(struct rf_committer **out, struct rf_store *st);
/* Queues op (owned by the caller until done runs). RF_ERR_BUSY if the queue is full. */
int rf_committer_submit(struct rf_committer *c, struct rf_op *op, rf_commit_done_fn done,
                        void *arg);
/* Queues n ops (n <= RF_COMMIT_MAX_BATCH) to be applied all-or-nothing in
 * one transaction; done runs once, with ops (the first op). */
int rf_committer_submit_group(struct rf_committer *c, struct rf_op *ops, size_t n,
                              rf_commit_done_fn done, void *arg);
/* Submits and waits; returns op->status. */
int rf_committer_run(struct rf_committer *c, struct rf_op *op);
/* Batches applied and ops in them since rf_committer_new (ops / batches is
 * the mean group size; for tests, benchmarks and status). */
void rf_committer_stats(const struct rf_committer *c, uint64_t *batches, uint64_t *ops);
/* For the metrics endpoint (counts and durations only, read lock-free at
 * any time): ops per batch; microseconds per rf_store_apply (the
 * transaction with its fsync); objects stored (op RF_OP_OBJECT_PUT that
 * committed) by kind 0..RF_COMMIT_KINDS-1 (larger kinds count in the last)
 * and their ciphertext bytes. */
#define RF_COMMIT_KINDS 8
const struct rf_hist *rf_committer_batch_hist(const struct rf_committer *c);
const struct rf_hist *rf_committer_apply_hist(const struct rf_committer *c);
void rf_committer_stored(const struct rf_committer *c, uint64_t objects[RF_COMMIT_KINDS],
                         uint64_t *bytes);
/* 1 on the committer thread while it runs completions, else 0. */
int rf_committer_in_completion(void);
/* Drains the queue and stops the thread. */
void rf_committer_free(struct rf_committer *c);

#endif
