/*
 * trust.h - the roster as this client believes it: the chain the server
 * hands out, verified link by link from the first admin's key pinned at
 * init, and checked to extend (never rewrite or roll back) the chain
 * verified before, and whose latest version lists this caseworker (if at
 * all) with exactly their own two keys. Only a roster that passed here is
 * ever encrypted to.
 */
#ifndef RF_CLIENT_TRUST_H
#define RF_CLIENT_TRUST_H

#include "client/cache.h"
#include "client/net.h"
#include "lib/keyfile.h"
#include "lib/roster.h"

#include <stdint.h>

#define RF_TRUST_QUIET_NET 1 /* print nothing when the server cannot be reached */

/* Fetches and verifies the chain; *out (malloc) is the latest roster. Prints
 * a loud explanation on failure (RF_ERR_ROSTER / RF_ERR_SIGNATURE); RF_ERR_NET
 * when the server cannot be reached (silent with RF_TRUST_QUIET_NET). self
 * (this caseworker's keys; NULL: no such check) must not be named on the
 * latest version with another key (rf_trust_self_check). */
int rf_trust_roster(struct rf_net *n, struct rf_cache *c, const uint8_t pinned[32],
                    const struct rf_staff_keys *self, struct rf_roster **out, int flags);
/* The latest roster of the chain this computer verified before (offline),
 * verified again from pinned and checked against self like
 * rf_trust_roster; RF_ERR_NOT_FOUND if there is none. */
int rf_trust_roster_cached(struct rf_cache *c, const uint8_t pinned[32],
                           const struct rf_staff_keys *self, struct rf_roster **out);
/* 0 when ro lists self with exactly self's sign_pk and box_pk, or not at
 * all; RF_ERR_ROSTER (after a loud explanation on stderr) when an entry
 * carries self's signing key with another encryption key, or self's name
 * with other keys: whatever is sealed to that roster "for" self goes to a
 * key self does not hold. */
int rf_trust_self_check(const struct rf_roster *ro, const struct rf_staff_keys *self);
/* The first admin as roster version 1 (stored on this computer, verified
 * from pinned) lists them; RF_ERR_NOT_FOUND if no chain is stored. */
int rf_trust_first_admin(struct rf_cache *c, const uint8_t pinned[32], struct rf_member *out);
/* Whether sign_pk was on a roster version this computer verified. */
int rf_trust_was_member(struct rf_cache *c, const uint8_t sign_pk[32]);
/* Verifies a raw chain (chain[i] = version i+1) from pinned; *out (malloc)
 * is its last roster. No network, no cache. */
int rf_trust_verify_chain(const uint8_t *const *raw, const size_t *len, size_t n,
                          const uint8_t pinned[32], struct rf_roster **out);

#endif
