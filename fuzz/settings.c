/*
 * settings.c - fuzzes the instance settings as `refuge serve` reads them
 * back from the store: the input is stored as the setting
 * "instance.retention" (server/purge.h) and read with rf_retention_get.
 *
 * Checked beyond no sanitizer report (abort() otherwise): the store gives
 * back exactly the bytes stored; a setting is accepted exactly when it is
 * version 1, 9 bytes, both day counts at most RF_RETENTION_DAYS_MAX, and then
 * the values are its big-endian fields and writing them back with
 * rf_retention_put stores the same 9 bytes; a refused setting leaves the
 * defaults in place.
 *
 * The other settings ("instance.kdf", "instance.limits", "instance.lang")
 * are decoded by static functions of srv_main.c, which no harness can reach
 * without starting the server; see fuzz/README.md.
 */
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/log.h"
#include "server/purge.h"
#include "store/store.h"

#include <ftw.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define KEY "instance.retention"

static struct rf_store *st;
static char dir[256];

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void cleanup(void)
{
    if (dir[0])
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void init(void)
{
    if (st != NULL)
        return;
    if (sodium_init() < 0)
        abort();
    rf_log_set_level(RF_LOG_WARN);
    const char *base = getenv("REFUGE_TEST_TMP");
    struct stat sb;
    if (base == NULL || *base == '\0')
        base = stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) ? "/dev/shm" : "/tmp";
    snprintf(dir, sizeof(dir), "%s/refuge-fuzz-settings-XXXXXX", base);
    if (mkdtemp(dir) == NULL)
        abort();
    atexit(cleanup);
    if (rf_store_open(&st, dir) != 0)
        abort();
}

static uint32_t be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put(const uint8_t *p, size_t n)
{
    struct rf_op op;
    memset(&op, 0, sizeof(op));
    op.type = RF_OP_SETTING_PUT;
    op.key = KEY;
    op.data = p;
    op.len = n;
    if (rf_store_apply(st, &op, 1) != 0 || op.status != 0)
        abort();
}

static void expect_stored(const uint8_t *p, size_t n)
{
    struct rf_buf b;
    rf_buf_init(&b, 1u << 20);
    if (rf_store_setting_get(st, KEY, &b) != 0 || b.len != n || (n && memcmp(b.data, p, n) != 0))
        abort();
    rf_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    if (size > 4096)
        return 0;
    put(data, size);
    expect_stored(data, size);
    struct rf_retention r;
    memset(&r, 0xee, sizeof(r));
    int rc = rf_retention_get(st, &r);
    int valid = size == 9 && data[0] == 1 && be32(data + 1) <= RF_RETENTION_DAYS_MAX &&
                be32(data + 5) <= RF_RETENTION_DAYS_MAX;
    if ((rc == 0) != valid)
        abort();
    if (!valid) {
        if (r.retention_days != RF_RETENTION_DAYS_DEFAULT ||
            r.inactivity_days != RF_INACTIVITY_DAYS_DEFAULT)
            abort();
        return 0;
    }
    if (r.retention_days != be32(data + 1) || r.inactivity_days != be32(data + 5))
        abort();
    if (rf_retention_put(st, &r) != 0)
        abort();
    expect_stored(data, size);
    return 0;
}
