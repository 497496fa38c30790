/*
 * sesskey.c - fuzzes the session key file and the sealed session rows that
 * several server processes share through the database (server/sesskey.h).
 *
 * Input: a first byte choosing what the rest is:
 *   'F'  a key file, read by rf_sesskey_from_bytes;
 *   else a session row as the database hands it back: keyid[8] | sealed,
 *        opened under a fixed key with rf_sesskey_open.
 *
 * Checked beyond no sanitizer report (abort() otherwise): a key file is
 * taken only if it is exactly RF_SESSKEY_FILE_LEN bytes, "RFSK", version 1,
 * one or two keys and its checksum right, and then seals a row that opens
 * again under its id only; a row not sealed by this process never opens
 * (forging takes breaking XChaCha20-Poly1305).
 */
#include "lib/err.h"
#include "server/sesskey.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rf_sesskey *fixed;
static struct rf_sesskey_plain *plain, *back;

static void init(void)
{
    uint8_t file[RF_SESSKEY_FILE_LEN];
    if (fixed != NULL)
        return;
    if (sodium_init() < 0)
        abort();
    rf_sesskey_file_make(file, NULL);
    plain = sodium_malloc(sizeof(*plain));
    back = sodium_malloc(sizeof(*back));
    if (plain == NULL || back == NULL || rf_sesskey_from_bytes(&fixed, file, sizeof(file)) != 0)
        abort();
    memset(plain, 0, sizeof(*plain));
    plain->source_id = 9;
    memcpy(plain->case_id, "ABCDEFGHJK", RF_CASE_ID_LEN);
    plain->ends = 12345;
}

static void key_file(const uint8_t *p, size_t n)
{
    struct rf_sesskey *k = NULL;
    uint8_t id[32] = {1}, other[32] = {2}, keyid[8], sealed[RF_SESSION_SEALED_MAX];
    size_t len = 0;
    if (rf_sesskey_from_bytes(&k, p, n) != 0) {
        if (k != NULL)
            abort();
        return;
    }
    if (n != RF_SESSKEY_FILE_LEN || memcmp(p, "RFSK", 4) != 0 || p[4] != 1 ||
        (p[5] != 1 && p[5] != 2))
        abort();
    if (rf_sesskey_seal(k, id, plain, keyid, sealed, sizeof(sealed), &len) != 0 ||
        rf_sesskey_open(k, id, keyid, sealed, len, back) != 0 ||
        back->source_id != plain->source_id || back->ends != plain->ends ||
        rf_sesskey_open(k, other, keyid, sealed, len, back) != RF_ERR_NOT_FOUND)
        abort();
    rf_sesskey_free(k);
}

static void row(const uint8_t *p, size_t n)
{
    uint8_t id[32] = {1};
    if (n < 8)
        return;
    if (rf_sesskey_open(fixed, id, p, p + 8, n - 8, back) != RF_ERR_NOT_FOUND)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size == 0)
        return 0;
    if (data[0] == 'F')
        key_file(data + 1, size - 1);
    else
        row(data + 1, size - 1);
    return 0;
}
