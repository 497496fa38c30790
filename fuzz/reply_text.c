/*
 * reply_text.c - fuzzes the person's reader of a reply's plaintext
 * (rf_reply_text, lib/reply.h): what GET /inbox shows of a reply. It reads
 * version 1 (bare JSON) and version 2 (signed framing, signature not
 * checked) with jansson, under the wiping allocator (lib/json.h) the
 * server installs. A caseworker's client chooses these bytes, and anyone
 * who can seal to the team could send a version 1 reply.
 *
 * Checked beyond no sanitizer report (abort() otherwise): only its
 * documented statuses; an accepted text fits the caller's limit and is
 * UTF-8; on refusal nothing is appended; an accepted text written back as
 * {"v":1,"type":"reply","text":..} reads back to the same bytes.
 */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/reply.h"

#include <jansson.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEXT_MAX 4096 /* small, so that the caller's limit is reached too */

static int ready;

static void round_trip(const struct rf_buf *text)
{
    json_t *j = json_pack("{s:i,s:s,s:s%}", "v", 1, "type", "reply", "text",
                          text->len ? (const char *)text->data : "", text->len);
    if (j == NULL)
        abort();
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (s == NULL)
        abort();
    struct rf_buf again;
    rf_buf_init_secure(&again, TEXT_MAX);
    int rc = rf_reply_text(&again, (const uint8_t *)s, strlen(s));
    rf_json_free(s);
    if (rc != 0 || again.len != text->len ||
        (text->len && memcmp(again.data, text->data, text->len) != 0))
        abort();
    rf_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready) {
        if (sodium_init() < 0)
            abort();
        rf_json_init();
        ready = 1;
    }
    struct rf_buf text;
    rf_buf_init_secure(&text, TEXT_MAX);
    int rc = rf_reply_text(&text, data, size);
    switch (rc) {
    case 0:
        if (text.len > TEXT_MAX || (text.len && u8_check(text.data, text.len) != NULL))
            abort();
        round_trip(&text);
        break;
    case RF_ERR_FORMAT:
    case RF_ERR_LIMIT:
    case RF_ERR_VERSION:
    case RF_ERR_TRUNCATED:
        if (text.len != 0)
            abort();
        break;
    default:
        abort();
    }
    rf_buf_free(&text);
    return 0;
}
