/*
 * pending.c - fuzzes the sealed pending codename of /new (server/session.h):
 * the hidden form field a person's browser sends back on "continue", and
 * the plaintext decoder behind its seal.
 *
 * Input: a first byte choosing what the rest is:
 *   'P'  a plaintext, decoded by rf_pending_parse at a fixed time (1000), so
 *        the decoder is reached without the AEAD in the way;
 *   'S'  a codename, sealed with rf_pending_seal and opened again, with the
 *        right cookie and another one;
 *   else the rest is the form field's text, opened by rf_pending_open.
 *
 * Checked beyond no sanitizer report (abort() otherwise): a field not made
 * by this process never opens (forging takes breaking XChaCha20-Poly1305);
 * a decoded plaintext is exactly 1 + 8 + 1 + RF_PENDING_CN_MAX bytes,
 * version 1, its codename the length byte long, without NUL, zero padded,
 * unexpired and at most a lifetime ahead; a codename of 1 to
 * RF_PENDING_CN_MAX bytes without NUL seals into a text of the fixed
 * length that opens to the same codename with its cookie only, and any
 * other is refused.
 */
#include "lib/err.h"
#include "server/session.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW 1000
static const uint8_t cookie[] = "fuzz-cookie-aaaaaaaaaa";
static const uint8_t other[] = "fuzz-cookie-bbbbbbbbbb";

static struct rf_sessions *s;

static int64_t fixed_clock(void *arg)
{
    (void)arg;
    return NOW;
}

static void init(void)
{
    if (s != NULL)
        return;
    if (sodium_init() < 0 || rf_sessions_new(&s, 4, 600) != 0)
        abort();
    rf_sessions_set_clock(s, fixed_clock, NULL);
}

static void plain(const uint8_t *p, size_t n)
{
    char out[RF_PENDING_CN_MAX + 1];
    int rc = rf_pending_parse(p, n, NOW, out, sizeof(out));
    if (rc != 0)
        return;
    if (n != RF_PENDING_PLAIN_LEN || p[0] != 1 || p[9] == 0 || strlen(out) != p[9] ||
        memcmp(out, p + 10, p[9]) != 0)
        abort();
    uint64_t exp = 0;
    for (int i = 1; i <= 8; i++)
        exp = exp << 8 | p[i];
    if (exp <= NOW || exp - NOW > RF_PENDING_LIFETIME_S)
        abort();
    for (size_t i = 10u + p[9]; i < n; i++)
        if (p[i] != 0)
            abort();
}

static void seal(const uint8_t *p, size_t n)
{
    char cn[RF_PENDING_CN_MAX + 2];
    char text[RF_PENDING_B64];
    char *out = sodium_malloc(RF_PENDING_CN_MAX + 1);
    if (out == NULL)
        abort();
    size_t len = n < sizeof(cn) - 1 ? n : sizeof(cn) - 1;
    memcpy(cn, p, len);
    cn[len] = '\0';
    size_t clen = strlen(cn);
    int rc = rf_pending_seal(s, cn, cookie, sizeof(cookie) - 1, text);
    if ((clen == 0 || clen > RF_PENDING_CN_MAX) != (rc == RF_ERR_LIMIT))
        abort();
    if (rc == 0) {
        if (strlen(text) != RF_PENDING_B64 - 1)
            abort();
        if (rf_pending_open(s, text, strlen(text), cookie, sizeof(cookie) - 1, out,
                            RF_PENDING_CN_MAX + 1) != 0 ||
            strcmp(out, cn) != 0)
            abort();
        if (rf_pending_open(s, text, strlen(text), other, sizeof(other) - 1, out,
                            RF_PENDING_CN_MAX + 1) != RF_ERR_NOT_FOUND)
            abort();
    }
    sodium_free(out);
}

static void field(const uint8_t *p, size_t n)
{
    char *out = sodium_malloc(RF_PENDING_CN_MAX + 1);
    if (out == NULL)
        abort();
    /* the form layer hands a NUL-terminated copy; the length is given */
    char *text = malloc(n + 1);
    if (text == NULL)
        abort();
    memcpy(text, p, n);
    text[n] = '\0';
    int rc = rf_pending_open(s, text, n, cookie, sizeof(cookie) - 1, out, RF_PENDING_CN_MAX + 1);
    if (rc != RF_ERR_NOT_FOUND)
        abort();
    free(text);
    sodium_free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size == 0)
        return 0;
    if (data[0] == 'P')
        plain(data + 1, size - 1);
    else if (data[0] == 'S')
        seal(data + 1, size - 1);
    else
        field(data + 1, size - 1);
    return 0;
}
