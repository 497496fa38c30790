/*
 * event.c - fuzzes case-event verification and signing (fuzz_signed.h): the
 * input verified as an event of the vectors' case, and signed as a body;
 * and parsed without the signature (rf_event_parse, for events below a
 * checkpoint): it accepts whatever verifies, with the same author and body,
 * and nothing with framing the verifier refuses for another reason.
 */
#include "fuzz_signed.h"
#include "lib/err.h"
#include "lib/event.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fz_signed event = {
    .header_bytes = RF_EVENT_HEADER_BYTES,
    .body_max = RF_EVENT_BODY_MAX,
    .sign = rf_event_sign,
    .verify = rf_event_verify,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t pk[32], pk2[32];
    const uint8_t *b = NULL, *b2 = NULL;
    size_t bl = 0, bl2 = 0;
    fz_signed_init();
    int prc = rf_event_parse(pk, &b, &bl, data, size, "q4mz7k2xea");
    int vrc = rf_event_verify(pk2, &b2, &bl2, data, size, "q4mz7k2xea");
    if (vrc == 0 && (prc != 0 || b != b2 || bl != bl2 || memcmp(pk, pk2, 32) != 0))
        abort(); /* what verifies parses, to the same author and body */
    if (prc != 0 && vrc != prc)
        abort(); /* a framing error is the same error either way */
    if (prc == 0 && vrc != 0 && vrc != RF_ERR_SIGNATURE)
        abort(); /* parse skips the signature only */
    return fz_signed_one(&event, data, size, NULL);
}
