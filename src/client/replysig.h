/*
 * replysig.h - who wrote a reply, as this client can prove it (finding 9 of
 * the trust review). A reply this client sends is signed (lib/reply.h); a
 * reply it reads shows its author only when the signature verifies for the
 * reply's case and the signer is on a roster version this client verified.
 * Otherwise the reply is still shown (the person has read it: colleagues
 * must see what the person was told) but marked "author unverified" with
 * the reason, and no name is taken from inside the reply.
 */
#ifndef RF_CLIENT_REPLYSIG_H
#define RF_CLIENT_REPLYSIG_H

#include "lib/buf.h"
#include "lib/keyfile.h"
#include "lib/roster.h"

#include <jansson.h>
#include <stddef.h>

/* The signed plaintext of a reply with text (UTF-8) to case_id, appended
 * to plain (secure memory): rf_reply_sign over {"v":2,"type":"reply",
 * "text":..}. RF_ERR_FORMAT if text is not UTF-8. */
int rf_replysig_compose(struct rf_buf *plain, const struct rf_staff_keys *k, const char *case_id,
                        const uint8_t *text, size_t len);

/* Reads an opened reply's plaintext (version 2 signed, or version 1 JSON)
 * of case case_id against the verified rosters (rosters[i] is version i+1):
 * *out = {"text":"..", "author":"Name" or "", "author_verified":true|false,
 * "author_note":"why not" (only when false) , "former":true (signer no
 * longer on the current roster)}. RF_ERR_FORMAT if it is neither format. */
int rf_replysig_read(json_t **out, const uint8_t *p, size_t n, const char *case_id,
                     const struct rf_roster *const *rosters, size_t nrosters);

#endif
