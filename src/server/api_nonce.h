/*
 * api_nonce.h - the staff API's replay cache: a bounded in-memory set of
 * request nonces seen within the signature window (server-internal).
 *
 * A nonce is remembered for 2 * RF_APISIG_MAX_SKEW seconds, long enough that
 * any replay still inside the skew window is refused; older entries are
 * evicted. When the cache is full of live entries it takes no new one
 * (RF_ERR_BUSY) rather than forget a nonce that could then be replayed. The
 * API keeps it only in front of the store, which holds every nonce and is
 * the authority (RF_OP_NONCE_PUT): a replay to this process is refused here
 * without a store write, and a full cache refuses nobody.
 */
#ifndef RF_API_NONCE_H
#define RF_API_NONCE_H

#include "lib/apisig.h"

#include <stddef.h>
#include <stdint.h>

struct rf_nonces;

/* A cache holding at most cap live nonces (rounded up to a power of two). */
int rf_nonces_new(struct rf_nonces **out, size_t cap);
void rf_nonces_free(struct rf_nonces *n);
/* Records nonce seen at time now. RF_ERR_EXISTS if it is a replay inside the
 * window, RF_ERR_BUSY if the cache is full of live entries. Thread-safe. */
int rf_nonces_check(struct rf_nonces *n, const uint8_t nonce[RF_APISIG_NONCE_BYTES], int64_t now);

#endif
