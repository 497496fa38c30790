/*
 * event.c - signing, framing and verifying case events (format in event.h
 * and docs/protocol.md "Case events").
 *
 * An event is "RFGV" | 1 | author sign_pk | signature | body, the signature
 * being Ed25519 over "refuge-event-v1" || case_id || body. The case id is
 * not stored in the event: it is named by the object's place on the server
 * and the verifier supplies it, so an event moved to another case fails its
 * signature. The body's JSON is the client's; here it must only be 1..
 * RF_EVENT_BODY_MAX bytes of valid UTF-8 without NUL (a NUL could cut it
 * short for C string code after it was verified).
 *
 * The framing, signing and checks are casesig.c's, shared with replies
 * (reply.c) under another magic and domain.
 */
#include "lib/event.h"
#include "lib/casesig.h"

_Static_assert(RF_EVENT_CASE_LEN == RF_CASESIG_CASE_LEN, "case id length");
_Static_assert(RF_EVENT_HEADER_BYTES == RF_CASESIG_HEADER_BYTES, "event header layout");

static const struct rf_casesig_kind event_kind = {
    .magic = RF_EVENT_MAGIC,
    .version = RF_EVENT_VERSION,
    .domain = "refuge-event-v1",
    .body_max = RF_EVENT_BODY_MAX,
};

int rf_event_sign(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                  const uint8_t *body, size_t n)
{
    return rf_casesig_sign(out, &event_kind, k, case_id, body, n);
}

int rf_event_verify(uint8_t author_pk[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                    size_t n, const char *case_id)
{
    return rf_casesig_verify(&event_kind, author_pk, body, body_len, p, n, case_id);
}

int rf_event_parse(uint8_t author_pk[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                   size_t n, const char *case_id)
{
    return rf_casesig_parse(&event_kind, author_pk, body, body_len, p, n, case_id);
}
