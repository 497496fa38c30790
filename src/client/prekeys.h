/*
 * prekeys.h - envelopes' content keys opened ahead of the digest.
 *
 * A cold sync's floor is one X25519 open per intake and per case key
 * (200,000 at 100,000 cases, about 7 s of CPU), all of them in the digest,
 * where both cores are busy; the download before it leaves a core partly
 * idle (docs/performance.md). While pages are stored, each stored
 * envelope's header is offered here, and a thread of its own, at a lower
 * priority, opens this caseworker's stanza into the content key
 * (rf_envelope_content_key: the header's key commitment checked). The
 * digest then opens those objects with the key (rf_open_new_key) instead
 * of the stanza; an object with no key here is opened as before.
 *
 * The keys are kept in sodium_malloc memory (guarded, locked), allocated a
 * chunk at a time, and wiped when freed. Offers past a bounded queue are
 * dropped, never waited for: the download does not slow down for it.
 */
#ifndef RF_CLIENT_PREKEYS_H
#define RF_CLIENT_PREKEYS_H

#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

struct rf_prekeys;

/* Starts the opener for k's box key pair (k must outlive it); NULL with
 * RF_ERR_NOMEM or when no thread could be started. */
int rf_prekeys_start(struct rf_prekeys **out, const struct rf_staff_keys *k);
/* Offers the object seq (ciphertext ct[0..n), its header at least): taken
 * if it is an envelope (not an event version 2) and the queue has room.
 * Seqs are offered in increasing order. */
void rf_prekeys_offer(struct rf_prekeys *p, int64_t seq, const uint8_t *ct, size_t n);
/* Stops the opener (what is still queued is left to the digest); the keys
 * opened stay. Idempotent. */
void rf_prekeys_stop(struct rf_prekeys *p);
/* The same, once every offer queued is opened (tests). */
void rf_prekeys_drain(struct rf_prekeys *p);
/* After rf_prekeys_stop: seq's content key (32 bytes in secure memory,
 * valid until rf_prekeys_free), or NULL. */
const uint8_t *rf_prekeys_find(const struct rf_prekeys *p, int64_t seq);
/* How many keys were opened ahead (for the tests and REFUGE_PHASES). */
size_t rf_prekeys_count(const struct rf_prekeys *p);
/* Stops, wipes and frees. NULL is fine. */
void rf_prekeys_free(struct rf_prekeys *p);

#endif
