/*
 * status_file.c - fuzzes the reader of a running server's status file
 * (DIR/serve.status, server/status.h), which `refuge server status` parses:
 * anyone who can write in the data directory chooses its bytes.
 *
 * Checked beyond no sanitizer report (abort() otherwise): an accepted file
 * has a pid in 1..INT32_MAX, counts that are not negative, and version and
 * metrics strings of printable ASCII that fit their buffers (they are
 * printed as they are); a refused one leaves no field set.
 */
#include "lib/err.h"
#include "server/status.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_text(const char *s, size_t cap)
{
    size_t n = strnlen(s, cap);
    if (n == cap)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f)
            abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct rf_status_file f;
    int rc = rf_status_file_parse(data, size, &f);
    if (rc != 0) {
        if (rc != RF_ERR_FORMAT)
            abort();
        return 0;
    }
    if (f.pid < 1 || f.pid > INT32_MAX || f.uptime_s < 0 || f.sessions_active < 0 ||
        f.sessions_max < 0 || f.kdf_waiting < 0)
        abort();
    check_text(f.version, sizeof(f.version));
    check_text(f.metrics, sizeof(f.metrics));
    return 0;
}
