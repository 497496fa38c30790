/*
 * trust.h - the roster as this client believes it: the chain the server
 * hands out, verified link by link from the first admin's key pinned at
 * init, and checked to extend (never rewrite or roll back) the chain
 * verified before. Only a roster that passed here is ever encrypted to.
 */
#ifndef RF_CLIENT_TRUST_H
#define RF_CLIENT_TRUST_H

#include "client/cache.h"
#include "client/net.h"
#include "lib/roster.h"

#include <stdint.h>

#define RF_TRUST_QUIET_NET 1 /* print nothing when the server cannot be reached */

/* Fetches and verifies the chain; *out (malloc) is the latest roster. Prints
 * a loud explanation on failure (RF_ERR_ROSTER / RF_ERR_SIGNATURE); RF_ERR_NET
 * when the server cannot be reached (silent with RF_TRUST_QUIET_NET). */
int rf_trust_roster(struct rf_net *n, struct rf_cache *c, const uint8_t pinned[32],
                    struct rf_roster **out, int flags);
/* The latest roster of the chain this computer verified before (offline),
 * verified again from pinned; RF_ERR_NOT_FOUND if there is none. */
int rf_trust_roster_cached(struct rf_cache *c, const uint8_t pinned[32], struct rf_roster **out);
/* Whether sign_pk was on a roster version this computer verified. */
int rf_trust_was_member(struct rf_cache *c, const uint8_t sign_pk[32]);
/* Verifies a raw chain (chain[i] = version i+1) from pinned; *out (malloc)
 * is its last roster. No network, no cache. */
int rf_trust_verify_chain(const uint8_t *const *raw, const size_t *len, size_t n,
                          const uint8_t pinned[32], struct rf_roster **out);

#endif
