/*
 * reply.c - fuzzes signed-reply verification and signing (fuzz_signed.h):
 * the input verified as a reply of the vectors' case, and signed as a body;
 * and the framing alone (rf_reply_split, what the person's page reads) must
 * agree with verification.
 */
#include "fuzz_signed.h"
#include "lib/reply.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct fz_signed reply = {
    .header_bytes = RF_REPLY_HEADER_BYTES,
    .body_max = RF_REPLY_BODY_MAX,
    .sign = rf_reply_sign,
    .verify = rf_reply_verify,
};

/* the framing alone (the person's page) agrees with verification */
static void split_agrees(const uint8_t *data, size_t size, int rc, const uint8_t pk[32],
                         const uint8_t *body, size_t n)
{
    uint8_t spk[32];
    const uint8_t *sbody = NULL;
    size_t sn = 0;
    int src = rf_reply_split(spk, &sbody, &sn, data, size);
    if (rc == 0 && (src != 0 || sbody != body || sn != n || memcmp(spk, pk, 32) != 0))
        abort();
    if (src == 0 && rc != 0 && rc != RF_ERR_SIGNATURE)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    return fz_signed_one(&reply, data, size, split_agrees);
}
