/*
 * archive.c - fuzzes whole backup archives through the store's checking
 * pass (rf_store_archive_check, the first pass of `refuge server restore`):
 * the input is put in a memfd and read as an archive file.
 *
 * Checked beyond no sanitizer report (abort() otherwise): a refused archive
 * always says why; an accepted one is a whole number of 512-byte blocks and
 * its counts are the manifest's (blobs at most the members the input could
 * hold). Writing nothing is by construction: the check has no target.
 */
#include "lib/archive.h"
#include "lib/err.h"
#include "lib/log.h"
#include "store/store.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int ready;
    if (!ready) {
        if (sodium_init() < 0)
            abort();
        rf_log_set_level(RF_LOG_ERROR);
        ready = 1;
    }
    if (size > (4u << 20))
        return 0;
    int fd = memfd_create("refuge-fuzz-archive", MFD_CLOEXEC);
    if (fd < 0)
        abort();
    for (size_t off = 0; off < size;) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0)
            abort();
        off += (size_t)w;
    }
    struct rf_backup_info info;
    int rc = rf_store_archive_check(fd, &info);
    close(fd);
    if (rc != 0) {
        if (info.why[0] == '\0')
            abort();
        return 0;
    }
    if (size % RF_TAR_BLOCK != 0 || info.blobs > size / RF_TAR_BLOCK || info.bytes != size)
        abort();
    return 0;
}
