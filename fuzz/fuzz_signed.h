/*
 * fuzz_signed.h - shared by the harnesses of the signed bodies of a case
 * (event.c: case events, reply.c: signed replies), whose formats differ
 * only in their type byte and limits: the input is verified as a body of
 * case "q4mz7k2xea" (the case of docs/protocol.md's vectors, to which the
 * seed corpora are signed). A verified body must lie inside the input and be
 * 1..body_max bytes. The input is also signed as a body with the vectors'
 * admin key: that must succeed exactly when it is valid UTF-8 without NUL,
 * and the result must verify to the same body and author for that case and
 * never for another.
 *
 * Header-only (static functions): meson builds each harness from its own
 * .c, and the gcc replay build links each with fuzz/standalone.c only.
 */
#ifndef RF_FUZZ_SIGNED_H
#define RF_FUZZ_SIGNED_H

#include "lib/buf.h"
#include "lib/err.h"
#include "lib/keyfile.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#define CASE_ID "q4mz7k2xea"

/* One signed format: its sizes and its sign and verify calls. */
struct fz_signed {
    size_t header_bytes;
    size_t body_max;
    int (*sign)(struct rf_buf *out, const struct rf_staff_keys *k, const char *case_id,
                const uint8_t *body, size_t n);
    int (*verify)(uint8_t pk[32], const uint8_t **body, size_t *body_len, const uint8_t *p,
                  size_t n, const char *case_id);
};

static struct rf_staff_keys *fz_admin;

static void fz_signed_init(void)
{
    if (fz_admin != NULL)
        return;
    uint8_t seed[32];
    memset(seed, 0x03, sizeof(seed));
    if (sodium_init() < 0 || (fz_admin = sodium_malloc(sizeof(*fz_admin))) == NULL)
        abort();
    memset(fz_admin, 0, sizeof(*fz_admin));
    if (crypto_sign_seed_keypair(fz_admin->sign_pk, fz_admin->sign_sk, seed) != 0)
        abort();
}

static void fz_signed_signing(const struct fz_signed *f, const uint8_t *data, size_t size)
{
    int body_ok = size >= 1 && size <= f->body_max && memchr(data, 0, size) == NULL &&
                  u8_check(data, size) == NULL;
    struct rf_buf ev;
    rf_buf_init(&ev, f->header_bytes + f->body_max + 1);
    int rc = f->sign(&ev, fz_admin, CASE_ID, data, size);
    if ((rc == 0) != body_ok || (rc != 0 && ev.len != 0))
        abort();
    if (rc == 0) {
        uint8_t pk[32];
        const uint8_t *body = NULL;
        size_t n = 0;
        if (f->verify(pk, &body, &n, ev.data, ev.len, CASE_ID) != 0 || n != size ||
            memcmp(body, data, size) != 0 || memcmp(pk, fz_admin->sign_pk, 32) != 0)
            abort();
        if (f->verify(pk, &body, &n, ev.data, ev.len, "q4mz7k2xeb") != RF_ERR_SIGNATURE)
            abort();
    }
    rf_buf_free(&ev);
}

/* What a harness checks more of an input, given verification's status and,
 * on success, the signer and the body. */
typedef void (*fz_signed_also)(const uint8_t *data, size_t size, int rc, const uint8_t pk[32],
                               const uint8_t *body, size_t n);

/* One input: verified (the body inside it, the status an rf_err), also's
 * checks (NULL: none), then signed as a body. */
static int fz_signed_one(const struct fz_signed *f, const uint8_t *data, size_t size,
                         fz_signed_also also)
{
    uint8_t pk[32];
    const uint8_t *body = NULL;
    size_t n = 0;
    fz_signed_init();
    int rc = f->verify(pk, &body, &n, data, size, CASE_ID);
    if (rc == 0 &&
        (n < 1 || n > f->body_max || body != data + f->header_bytes || n != size - f->header_bytes))
        abort();
    if (rc > 0 || rc < RF_ERR_MIN)
        abort();
    if (also)
        also(data, size, rc, pk, body, n);
    fz_signed_signing(f, data, size);
    return 0;
}

#endif
