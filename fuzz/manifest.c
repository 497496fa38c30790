/*
 * manifest.c - fuzzes the backup manifest parser (lib/archive.h,
 * rf_manifest_parse) and the tar header decoder of backup archives
 * (rf_tar_header_decode, on the input's first 512 bytes).
 *
 * Checked beyond no sanitizer report (abort() otherwise): a refused manifest
 * leaves no member; an accepted one has the database first, blobs after it
 * in strictly ascending order, as many as its blob count, and encoding it
 * again gives back exactly the input bytes (the grammar has one spelling of
 * everything); an accepted header re-encodes to exactly the input block.
 */
#include "lib/archive.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void header(const uint8_t *data, size_t size)
{
    uint8_t blk[RF_TAR_BLOCK], again[RF_TAR_BLOCK];
    char name[RF_ARCHIVE_NAME_MAX + 1];
    uint64_t sz = 0;
    uint32_t day = 0;
    if (size < RF_TAR_BLOCK)
        return;
    memcpy(blk, data, RF_TAR_BLOCK);
    if (rf_tar_header_decode(blk, name, &sz, &day) != 0)
        return;
    if (rf_archive_member_kind(name) == RF_MEMBER_BAD || sz > RF_ARCHIVE_MEMBER_MAX ||
        rf_tar_header_encode(again, name, sz, day) != 0 || memcmp(again, blk, RF_TAR_BLOCK) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (sodium_init() < 0)
            abort();
        ready = 1;
    }
    if (size > (1u << 20))
        return 0;
    header(data, size);
    struct rf_manifest m;
    rf_manifest_init(&m);
    int rc = rf_manifest_parse(data, size, &m);
    if (rc != 0) {
        if (m.n != 0 || m.members != NULL)
            abort();
        return 0;
    }
    if (m.n == 0 || m.n - 1 != m.blobs || rf_archive_member_kind(m.members[0].name) != RF_MEMBER_DB)
        abort();
    for (size_t i = 1; i < m.n; i++)
        if (rf_archive_member_kind(m.members[i].name) != RF_MEMBER_BLOB ||
            (i > 1 && strcmp(m.members[i - 1].name, m.members[i].name) >= 0))
            abort();
    struct rf_buf text;
    rf_buf_init(&text, RF_MANIFEST_MAX);
    if (rf_manifest_encode(&m, &text) != 0 || text.len != size || memcmp(text.data, data, size))
        abort();
    rf_buf_free(&text);
    rf_manifest_free(&m);
    return 0;
}
