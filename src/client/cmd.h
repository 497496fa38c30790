/*
 * cmd.h - the client's subcommands (one file each) and what they share.
 * Each takes argv with argv[0] = the subcommand's name and returns the
 * process exit code: 0 done, 1 failed, 2 usage error.
 */
#ifndef RF_CLIENT_CMD_H
#define RF_CLIENT_CMD_H

#include "client/cache.h"
#include "client/home.h"
#include "client/net.h"
#include "lib/keyfile.h"

#include <jansson.h>

#define RF_EXIT_OK 0
#define RF_EXIT_FAIL 1
#define RF_EXIT_USAGE 2

int rf_cmd_init(int argc, char **argv);
int rf_cmd_sync(int argc, char **argv);
int rf_cmd_cases(int argc, char **argv);
int rf_cmd_show(int argc, char **argv);
int rf_cmd_reply(int argc, char **argv);
int rf_cmd_files(int argc, char **argv);

/* Prints "refuge: what: why" to stderr. */
void rf_cmd_err(const char *what, const char *why);
void rf_cmd_errc(const char *what, int rc);
/* Prints the network failure of n. */
void rf_cmd_net_err(const char *what, const struct rf_net *n);
/* Whether s is a well-formed case id. */
int rf_cmd_case_ok(const char *s);

/* Syncs the cache with the server (roster verified first). quiet: no counts. */
int rf_sync_run(const struct rf_home *h, struct rf_net *n, struct rf_cache *c, int quiet);

/* Decrypts an object of the cache. Messages and replies: *json gets the
 * parsed plaintext object. Files: meta receives the name and type and *size
 * the file's byte count (the whole file is decrypted to count it, into
 * nothing). */
struct rf_filemeta;
int rf_thread_open_json(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                        json_t **json);
int rf_thread_file_info(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                        struct rf_filemeta *meta, uint64_t *size);

#endif
