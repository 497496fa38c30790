/*
 * onion_reply.c - fuzzes the tor control-protocol reply parser of
 * src/server/onion.c (rf_onion_reply_parse), which reads what the process on
 * tor's control port sends to `refuge serve --onion`. The input is a byte
 * stream as it would arrive on the connection: replies are taken off its
 * front one by one, as the control connection does.
 *
 * Checked beyond no sanitizer report (abort() otherwise): a parsed reply
 * uses at least 4 bytes and no more than there are, and parsing exactly its
 * bytes again gives the same reply (replies are self-delimiting); its code
 * is 100..699; every field is NUL-terminated within its buffer; a service
 * id is empty or 56 base32 characters; a private key is empty or
 * "ED25519-V3:" and 88 base64 characters; the text is printable ASCII.
 */
#include "lib/err.h"
#include "server/onion.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_str(const char *s, size_t cap)
{
    if (memchr(s, 0, cap) == NULL)
        abort();
}

static void check_reply(const struct rf_onion_reply *r)
{
    if (r->code < 100 || r->code > 699)
        abort();
    check_str(r->cookie_file, sizeof(r->cookie_file));
    check_str(r->tor_version, sizeof(r->tor_version));
    check_str(r->service_id, sizeof(r->service_id));
    check_str(r->private_key, sizeof(r->private_key));
    check_str(r->server_hash, sizeof(r->server_hash));
    check_str(r->server_nonce, sizeof(r->server_nonce));
    check_str(r->text, sizeof(r->text));
    size_t n = strlen(r->service_id);
    if (n != 0 &&
        (n != RF_ONION_ID_LEN || strspn(r->service_id, "abcdefghijklmnopqrstuvwxyz234567") != n))
        abort();
    n = strlen(r->private_key);
    if (n != 0 && (n != 11 + 88 || strncmp(r->private_key, "ED25519-V3:", 11) != 0))
        abort();
    for (const char *p = r->text; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct rf_onion_reply *a, *b;
    if (a == NULL) {
        if (sodium_init() < 0)
            abort();
        a = sodium_malloc(sizeof(*a));
        b = sodium_malloc(sizeof(*b));
        if (a == NULL || b == NULL)
            abort();
    }
    size_t off = 0;
    while (off < size) {
        size_t used = 0;
        int rc = rf_onion_reply_parse(data + off, size - off, &used, a);
        if (rc != 0) {
            if (rc != RF_ERR_TRUNCATED && rc != RF_ERR_FORMAT && rc != RF_ERR_LIMIT)
                abort();
            break;
        }
        if (used < 4 || used > size - off)
            abort();
        check_reply(a);
        size_t again = 0;
        if (rf_onion_reply_parse(data + off, used, &again, b) != 0 || again != used ||
            memcmp(a, b, sizeof(*a)) != 0)
            abort();
        off += used;
    }
    return 0;
}
