/*
 * migrate.h - `refuge server migrate` (migrate.c): an instance into an
 * empty PostgreSQL database and a new data directory.
 */
#ifndef RF_SRV_MIGRATE_H
#define RF_SRV_MIGRATE_H

#include "store/store.h"

/* refuge server migrate --from DIR --to URL|sqlite --to-data NEWDIR */
int rf_server_migrate_main(int argc, char **argv);

#endif
