/*
 * backup.h - `refuge server backup` and `refuge server restore` (backup.c).
 *
 * Setting "backup.last_day" (big-endian u32, like "instance.purge_day"): the
 * day (days since 1970-01-01 UTC) of the last backup written successfully;
 * absent: never. `refuge server status` shows it.
 */
#ifndef RF_SRV_BACKUP_H
#define RF_SRV_BACKUP_H

#include "store/store.h"

#include <stdint.h>

#define RF_SET_BACKUP_LAST_DAY "backup.last_day"
#define RF_BACKUP_KEEP_MAX 3650

/* The day of the last backup (0: never, or the setting is damaged). */
uint32_t rf_backup_last_day(struct rf_store *st);

/* refuge server backup --data DIR (--out FILE | --out-dir DIR [--keep N]) */
int rf_server_backup_main(int argc, char **argv);
/* refuge server restore FILE --data DIR */
int rf_server_restore_main(int argc, char **argv);

#endif
