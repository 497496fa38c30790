/*
 * reply.c - fuzzes signed-reply verification: the input is verified as a
 * reply of case "q4mz7k2xea" (the case of docs/protocol.md's vector, to which
 * the seed corpus is signed). A verified reply's body must lie inside the
 * input and be 1..RF_REPLY_BODY_MAX bytes. The input is also signed as a
 * body with the vector's admin key: that must succeed exactly when it is
 * valid UTF-8 without NUL, and the result must verify to the same body and
 * author for that case and never for another.
 */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/reply.h"
#include "lib/keyfile.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CASE_ID "q4mz7k2xea"

static struct rf_staff_keys *admin;

static void init(void)
{
    if (admin != NULL)
        return;
    uint8_t seed[32];
    memset(seed, 0x03, sizeof(seed));
    if (sodium_init() < 0 || (admin = sodium_malloc(sizeof(*admin))) == NULL)
        abort();
    memset(admin, 0, sizeof(*admin));
    if (crypto_sign_seed_keypair(admin->sign_pk, admin->sign_sk, seed) != 0)
        abort();
}

static void check_signing(const uint8_t *data, size_t size)
{
    int body_ok = size >= 1 && size <= RF_REPLY_BODY_MAX && memchr(data, 0, size) == NULL &&
                  u8_check(data, size) == NULL;
    struct rf_buf ev;
    rf_buf_init(&ev, RF_REPLY_HEADER_BYTES + RF_REPLY_BODY_MAX + 1);
    int rc = rf_reply_sign(&ev, admin, CASE_ID, data, size);
    if ((rc == 0) != body_ok || (rc != 0 && ev.len != 0))
        abort();
    if (rc == 0) {
        uint8_t pk[32];
        const uint8_t *body = NULL;
        size_t n = 0;
        if (rf_reply_verify(pk, &body, &n, ev.data, ev.len, CASE_ID) != 0 || n != size ||
            memcmp(body, data, size) != 0 || memcmp(pk, admin->sign_pk, 32) != 0)
            abort();
        if (rf_reply_verify(pk, &body, &n, ev.data, ev.len, "q4mz7k2xeb") != RF_ERR_SIGNATURE)
            abort();
    }
    rf_buf_free(&ev);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    uint8_t pk[32];
    const uint8_t *body = NULL;
    size_t n = 0;
    int rc = rf_reply_verify(pk, &body, &n, data, size, CASE_ID);
    if (rc == 0 && (n < 1 || n > RF_REPLY_BODY_MAX || body != data + RF_REPLY_HEADER_BYTES ||
                    n != size - RF_REPLY_HEADER_BYTES))
        abort();
    if (rc > 0 || rc < RF_ERR_MIN)
        abort();
    /* the framing alone (the person's page) agrees with verification */
    uint8_t spk[32];
    const uint8_t *sbody = NULL;
    size_t sn = 0;
    int src = rf_reply_split(spk, &sbody, &sn, data, size);
    if (rc == 0 && (src != 0 || sbody != body || sn != n || memcmp(spk, pk, 32) != 0))
        abort();
    if (src == 0 && rc != 0 && rc != RF_ERR_SIGNATURE)
        abort();
    check_signing(data, size);
    return 0;
}
