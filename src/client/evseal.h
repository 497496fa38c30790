/*
 * evseal.h - how this client seals an event it writes (docs/protocol.md 8
 * and 12): version 1, an envelope to exactly the roster's box keys, or,
 * when the team's setting (team.event_format, fetched at every sync into
 * the cache's meta "event_format") says 2, version 2 under a case key this
 * client may write under, making one (a CASEKEY object) when there is none.
 */
#ifndef RF_CLIENT_EVSEAL_H
#define RF_CLIENT_EVSEAL_H

#include "client/cmd.h"
#include "lib/buf.h"
#include "lib/roster.h"

#include <stddef.h>
#include <stdint.h>

/* The format writers use now (1 or 2), from the cache (1 if never fetched). */
int rf_evseal_format(struct rf_cache *c);
/* Asks the server for the team's settings and records the format; an older
 * server without the route is format 1. Quiet: errors change nothing. */
void rf_evseal_fetch_format(struct rf_ctx *x);

/* A made case key waiting to be posted before the event sealed under it. */
struct rf_evseal_key {
    struct rf_buf env; /* the CASEKEY envelope (empty: no key made) */
    uint8_t keyid[8];
};
void rf_evseal_key_init(struct rf_evseal_key *mk);
void rf_evseal_key_free(struct rf_evseal_key *mk);

/* Seals the signed event ev of case_id, appending to out: version 1 (an
 * envelope to ro) when format is 1 or the case is the team's settings;
 * else version 2 under the newest case key (by seq) of the case that was
 * made here or whose signature and maker (a member of the version it
 * names) verify and that names ro's version, the latest verified. With
 * none, a new key is made, stored (seq 0) and its CASEKEY envelope left in
 * mk->env: the caller posts it (rf_evseal_post_key) or queues it before
 * the event. */
int rf_evseal_event(struct rf_ctx *x, const struct rf_roster *ro, int format, const char *case_id,
                    const uint8_t *ev, size_t n, struct rf_buf *out, struct rf_evseal_key *mk);
/* Posts mk's CASEKEY to the server and records its seq. Net errors as
 * rf_net_json's (nothing printed). */
int rf_evseal_post_key(struct rf_ctx *x, const char *case_id, const struct rf_evseal_key *mk);
/* For the outbox: whether the queued bytes p (an event) must be sealed
 * again for roster ro (v1: not sealed to exactly ro; v2: its key names an
 * older roster or is not one this client may write under). */
int rf_evseal_stale(struct rf_ctx *x, const struct rf_roster *ro, const char *case_id,
                    const uint8_t *p, size_t n);

#endif
