/*
 * archive.h - the backup archive format, as bytes: tar headers in one
 * canonical ustar form, and the manifest. No I/O here: the store
 * (store/backup.c) streams members through these.
 *
 * An archive (docs/storage.md, "Backup archive") is a POSIX ustar file whose
 * members are, in this order:
 *   refuge-backup/refuge.db          the database snapshot
 *   refuge-backup/blobs/<32 hex>     each blob the snapshot's object rows name
 *   refuge-backup/MANIFEST           the manifest (text, below)
 * then two zero blocks and nothing else. Every header is exactly what
 * rf_tar_header_encode writes for its name, size and day (mode 0600, owner 0,
 * no user or group name, type '0', mtime = day * 86400, size in octal or, from
 * 8 GiB, GNU base-256); a reader re-encodes each header it reads and refuses
 * any byte that differs, and refuses padding or trailer bytes that are not
 * zero, so no byte of an archive goes unchecked: member data by the manifest's
 * digests, the manifest by its own last line, the rest by being canonical.
 *
 * Manifest: ASCII lines ending in '\n', in this order, no others:
 *   refuge-backup 1
 *   version <refuge version: 1-31 of [0-9A-Za-z.+~-]>
 *   backend <1-15 of [a-z0-9]>
 *   schema <schema version, decimal>
 *   day <YYYY-MM-DD, UTC>
 *   sources <n>                 cases (the teamconfig case included)
 *   objects <n>
 *   staff <n>
 *   blobs <n>                   = the number of blob members
 *   member <BLAKE2b-256 hex> <size> <name>     one per member before MANIFEST,
 *                                              in archive order
 *   end <BLAKE2b-256 hex of every byte above this line>
 * Decimal numbers have no leading zeros (0 itself excepted) and at most 15
 * digits.
 */
#ifndef RF_ARCHIVE_H
#define RF_ARCHIVE_H

#include "lib/buf.h"

#include <stddef.h>
#include <stdint.h>

#define RF_TAR_BLOCK 512
#define RF_ARCHIVE_FORMAT 1
#define RF_ARCHIVE_PREFIX "refuge-backup/"
#define RF_ARCHIVE_DB RF_ARCHIVE_PREFIX "refuge.db"
#define RF_ARCHIVE_BLOBS RF_ARCHIVE_PREFIX "blobs/"
#define RF_ARCHIVE_MANIFEST RF_ARCHIVE_PREFIX "MANIFEST"
#define RF_ARCHIVE_NAME_MAX 63             /* longest member name */
#define RF_ARCHIVE_MEMBERS_MAX (4u << 20)  /* blobs + the database */
#define RF_ARCHIVE_MEMBER_MAX (1ULL << 40) /* bytes in one member */
#define RF_MANIFEST_MAX (512u << 20)       /* bytes of the manifest */
#define RF_DIGEST_BYTES 32                 /* BLAKE2b-256 */

enum rf_member_kind {
    RF_MEMBER_BAD = 0,
    RF_MEMBER_DB,
    RF_MEMBER_BLOB,
    RF_MEMBER_MANIFEST,
};

/* What a member name is; RF_MEMBER_BAD for anything outside the layout. */
enum rf_member_kind rf_archive_member_kind(const char *name);

/* Writes the canonical header of a regular file. RF_ERR_INVALID for a name
 * outside the layout or a size past RF_ARCHIVE_MEMBER_MAX. */
int rf_tar_header_encode(uint8_t blk[RF_TAR_BLOCK], const char *name, uint64_t size, uint32_t day);
/* Reads a header: RF_ERR_FORMAT unless blk is exactly the canonical header
 * of a member of the layout. */
int rf_tar_header_decode(const uint8_t blk[RF_TAR_BLOCK], char name[RF_ARCHIVE_NAME_MAX + 1],
                         uint64_t *size, uint32_t *day);
/* 1 if the block is all zeros. */
int rf_tar_block_zero(const uint8_t blk[RF_TAR_BLOCK]);
/* Zero bytes after a member of size bytes, up to the next block. */
size_t rf_tar_padding(uint64_t size);

struct rf_manifest_member {
    char name[RF_ARCHIVE_NAME_MAX + 1];
    uint64_t size;
    uint8_t digest[RF_DIGEST_BYTES];
};

struct rf_manifest {
    char version[32];
    char backend[16];
    uint32_t schema;
    uint32_t day; /* days since 1970-01-01 UTC */
    uint64_t sources, objects, staff, blobs;
    struct rf_manifest_member *members; /* malloc'ed */
    size_t n, cap;
};

void rf_manifest_init(struct rf_manifest *m);
void rf_manifest_free(struct rf_manifest *m);
/* Appends a member (name in the layout, not the manifest itself). */
int rf_manifest_add(struct rf_manifest *m, const char *name, uint64_t size,
                    const uint8_t digest[RF_DIGEST_BYTES]);
/* Writes the manifest text (out's limit should be RF_MANIFEST_MAX). */
int rf_manifest_encode(const struct rf_manifest *m, struct rf_buf *out);
/* Parses a manifest into m (rf_manifest_init'ed). RF_ERR_FORMAT on any
 * deviation from the grammar or a wrong "end" digest, RF_ERR_VERSION for
 * another format version, RF_ERR_LIMIT past a limit, RF_ERR_TRUNCATED if it
 * ends early. On failure m is emptied. */
int rf_manifest_parse(const uint8_t *p, size_t n, struct rf_manifest *m);

/* Days since 1970-01-01 <-> "YYYY-MM-DD" (out: 11 bytes with the NUL). */
void rf_day_format(uint32_t day, char out[11]);
int rf_day_parse(const char *s, size_t n, uint32_t *day);

#endif
