/*
 * kdfpool.h - a bounded pool of threads that run Argon2id (rf_source_derive)
 * off the HTTP threads. At most `workers` derivations run at once (the
 * global limiter of DESIGN.md's threat model) and at most `queue` wait;
 * beyond that, or when the expected wait passes the bound set with
 * rf_kdfpool_set_wait_max, or when one sender already has 4 waiting,
 * rf_kdfpool_submit says RF_ERR_BUSY at once and the person gets the "busy,
 * try again" page. Workers serve senders round-robin (kdfpool.c).
 * Codenames are copied into sodium_malloc memory and wiped as soon as they
 * are derived.
 */
#ifndef RF_KDFPOOL_H
#define RF_KDFPOOL_H

#include "lib/source.h"

#include <stddef.h>
#include <stdint.h>

struct rf_kdfpool;
/* Runs on a pool thread when the derivation is done; keys is sodium_malloc
 * memory owned by the pool and wiped after the callback returns; status is 0
 * or an rf_err. */
typedef void (*rf_kdf_done_fn)(void *arg, int status, const struct rf_source_keys *keys);

int rf_kdfpool_new(struct rf_kdfpool **out, const struct rf_kdf_params *params, unsigned workers,
                   unsigned queue);
int rf_kdfpool_submit(struct rf_kdfpool *p, const char *codename, size_t len, rf_kdf_done_fn done,
                      void *arg);
/* As rf_kdfpool_submit, from sender `who` (an opaque tag, e.g. a keyed
 * hash of the person's pre-session cookie; 0: nobody in particular). */
int rf_kdfpool_submit_for(struct rf_kdfpool *p, uint64_t who, const char *codename, size_t len,
                          rf_kdf_done_fn done, void *arg);
/* Refuse jobs whose expected wait passes wait_max_us (0: only the slots
 * bound). Runs one derivation on the calling thread to time it. */
int rf_kdfpool_set_wait_max(struct rf_kdfpool *p, uint64_t wait_max_us);
/* The moving mean of one derivation's wall time, in microseconds. */
uint64_t rf_kdfpool_mean_us(struct rf_kdfpool *p);
/* Derivations waiting and running now (for the metrics endpoint). */
void rf_kdfpool_depth(struct rf_kdfpool *p, unsigned *waiting, unsigned *running);
void rf_kdfpool_free(struct rf_kdfpool *p);

#endif
