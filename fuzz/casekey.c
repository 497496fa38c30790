/*
 * casekey.c - fuzzes the CASEKEY plaintext parser and the event v2 opener
 * (docs/protocol.md 12). Every input is:
 *  - parsed and verified as a CASEKEY plaintext for case "q4mz7k2xea": a
 *    parsed one is exactly RF_CASEKEY_OBJ_BYTES, its pointers lie inside the
 *    input and its key id is the key's; verify never accepts what parse
 *    refuses, nor another case;
 *  - told v1 / v2 by its magic, and opened as an event v2 of that case with
 *    the vector's key K = 00 01 .. 1f (12.1, to which the seed corpus is
 *    sealed): an opened event is a signed event's length, sealed again with
 *    the input's own nonce it gives back the input byte for byte, and it
 *    never opens for another case;
 *  - when its length is a signed event's, sealed as one and opened back.
 */
#include "lib/buf.h"
#include "lib/casekey.h"
#include "lib/err.h"
#include "lib/event.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CASE_ID "q4mz7k2xea"
#define OTHER_CASE "q4mz7k2xeb"

static uint8_t *key;
static uint8_t key_id[RF_CASEKEY_ID_BYTES];
static struct rf_casekey_table table;

static void init(void)
{
    if (key != NULL)
        return;
    if (sodium_init() < 0 || (key = sodium_malloc(RF_CASEKEY_BYTES)) == NULL)
        abort();
    for (int i = 0; i < RF_CASEKEY_BYTES; i++)
        key[i] = (uint8_t)i;
    rf_casekey_id(key_id, key);
    table.keys = (const uint8_t(*)[RF_CASEKEY_BYTES])key;
    table.ids = (const uint8_t(*)[RF_CASEKEY_ID_BYTES])key_id;
    table.n = 1;
}

static int inside(const uint8_t *p, size_t n, const uint8_t *data, size_t size)
{
    return p >= data && p + n <= data + size;
}

static void check_casekey(const uint8_t *data, size_t size)
{
    struct rf_casekey_obj o, v;
    int rc = rf_casekey_parse(&o, data, size);
    if (rc > 0 || rc < RF_ERR_MIN)
        abort();
    int vrc = rf_casekey_verify(&v, data, size, CASE_ID);
    if (rc != 0) {
        if (vrc != rc)
            abort();
        return;
    }
    uint8_t id[RF_CASEKEY_ID_BYTES];
    rf_casekey_id(id, o.key);
    if (size != RF_CASEKEY_OBJ_BYTES || !inside(o.key, 32, data, size) ||
        !inside(o.maker, 32, data, size) || !inside(o.sig, 64, data, size) ||
        memcmp(id, o.id, sizeof(id)) != 0 || strlen(o.case_id) != RF_CASEKEY_CASE_LEN ||
        o.roster == 0)
        abort();
    if (rf_casekey_check_case(&o, o.case_id) != 0)
        abort();
    if (vrc == 0 && (strcmp(o.case_id, CASE_ID) != 0 ||
                     rf_casekey_verify(&v, data, size, OTHER_CASE) != RF_ERR_PROTOCOL))
        abort();
}

static void check_open(const uint8_t *data, size_t size)
{
    int ver = rf_casekey_event_version(data, size);
    if (ver != 1 && ver != 2 && ver != RF_ERR_TRUNCATED && ver != RF_ERR_FORMAT &&
        ver != RF_ERR_VERSION)
        abort();
    struct rf_buf out, again;
    rf_buf_init_secure(&out, 1 << 20);
    int rc = rf_casekey_event_open(&out, data, size, CASE_ID, rf_casekey_table_find, &table);
    if (rc > 0 || rc < RF_ERR_MIN || (rc != 0 && out.len != 0) || (rc == 0 && ver != 2))
        abort();
    if (rc == 0) {
        if (out.len < RF_EVENT_HEADER_BYTES + 1 ||
            out.len > RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX)
            abort();
        rf_buf_init(&again, 1 << 20);
        if (rf_casekey_event_seal_nonce(&again, key, CASE_ID, out.data, out.len, data + 12) != 0 ||
            again.len != size || memcmp(again.data, data, size) != 0)
            abort();
        rf_buf_free(&again);
        rf_buf_reset(&out);
        if (rf_casekey_event_open(&out, data, size, OTHER_CASE, rf_casekey_table_find, &table) !=
            RF_ERR_DECRYPT)
            abort();
    }
    rf_buf_free(&out);
}

static void check_seal(const uint8_t *data, size_t size)
{
    if (size < RF_EVENT_HEADER_BYTES + 1 || size > RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX)
        return;
    struct rf_buf ct, out;
    rf_buf_init(&ct, 1 << 20);
    rf_buf_init_secure(&out, 1 << 20);
    if (rf_casekey_event_seal(&ct, key, CASE_ID, data, size) != 0 ||
        rf_casekey_event_open(&out, ct.data, ct.len, CASE_ID, rf_casekey_table_find, &table) != 0 ||
        out.len != size || memcmp(out.data, data, size) != 0)
        abort();
    rf_buf_free(&ct);
    rf_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    check_casekey(data, size);
    check_open(data, size);
    check_seal(data, size);
    return 0;
}
