/*
 * api_listed.h - the signing keys that were ever on a roster version
 * (server-internal): what tells a removed caseworker's key (on an earlier
 * version, not on the latest) from a newcomer's key waiting for its first
 * approval (on none), without reading the whole roster chain per request.
 */
#ifndef RF_API_LISTED_H
#define RF_API_LISTED_H

#include "store/store.h"

#include <stdint.h>

struct rf_listed;

int rf_listed_new(struct rf_listed **out);
void rf_listed_free(struct rf_listed *l);
/* 1 if sign_pk is on one of roster versions 1..latest, 0 if on none, or an
 * rf_err. Reads only the versions stored since the last call. Thread-safe. */
int rf_listed_ever(struct rf_listed *l, struct rf_store *st, uint32_t latest,
                   const uint8_t sign_pk[32]);

#endif
