/*
 * event.c - fuzzes case-event verification and signing (fuzz_signed.h): the
 * input verified as an event of the vectors' case, and signed as a body.
 */
#include "fuzz_signed.h"
#include "lib/event.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fz_signed event = {
    .header_bytes = RF_EVENT_HEADER_BYTES,
    .body_max = RF_EVENT_BODY_MAX,
    .sign = rf_event_sign,
    .verify = rf_event_verify,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_signed_one(&event, data, size, NULL);
}
