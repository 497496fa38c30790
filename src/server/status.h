/*
 * status.h - `refuge server status` and the running server's status file
 * (status.c).
 *
 * The status file, DIR/serve.status, is how a running `refuge serve` tells
 * `refuge server status` what lives only in its memory (people logged in
 * now) and that it is alive. The server rewrites it every
 * RF_STATUS_PERIOD_S seconds, atomically (write serve.status.tmp, rename),
 * and removes it when it stops. It holds counts and settings only, never
 * anything from a request (JSON, one line):
 *   {"format":1,"pid":N,"version":"0.1.0","uptime_s":N,"sessions_active":N,
 *    "sessions_max":N,"kdf_waiting":N,"period_s":5,"metrics":"127.0.0.1:9464"|null}
 * A server counts as running when the file is younger than
 * RF_STATUS_STALE_S (by its modification time) and its pid is alive;
 * a crashed server leaves a file that goes stale.
 */
#ifndef RF_STATUS_H
#define RF_STATUS_H

#include <stddef.h>
#include <stdint.h>

#define RF_STATUS_FILE "serve.status"
#define RF_STATUS_PERIOD_S 5
#define RF_STATUS_STALE_S 20
#define RF_STATUS_FILE_MAX 4096

struct rf_srv;
struct rf_status_writer;

/* Writes the file once, then starts the thread that rewrites it (before the
 * sandbox locks thread creation). metrics: the --metrics address or NULL. */
int rf_status_writer_start(struct rf_status_writer **out, struct rf_srv *srv, const char *metrics);
/* Stops the thread and removes the file. NULL is a no-op. */
void rf_status_writer_stop(struct rf_status_writer *w);

/* What a status file says (parsed by rf_status_file_parse). */
struct rf_status_file {
    long long pid;
    long long uptime_s;
    long long sessions_active;
    long long sessions_max;
    long long kdf_waiting;
    char version[32];
    char metrics[80]; /* "" if off */
};
/* Parses the file's bytes (at most RF_STATUS_FILE_MAX). RF_ERR_FORMAT if
 * they are not a status file of format 1. */
int rf_status_file_parse(const uint8_t *p, size_t n, struct rf_status_file *out);

/* refuge server status --data DIR [--json] */
int rf_server_status_main(int argc, char **argv);

#endif
