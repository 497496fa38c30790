/*
 * log.c - one line per event on stderr: "refuge: LEVEL: message[ key=value][: error]".
 * No timestamps finer than the process's own clock would add nothing an
 * operator needs, and the line format carries nothing from a request.
 */
#include "lib/log.h"
#include "lib/err.h"

#include <pthread.h>
#include <stdio.h>

static enum rf_log_level min_level = RF_LOG_INFO;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"debug", "info", "warning", "error"};

void rf_log_set_level(enum rf_log_level level)
{
    min_level = level;
}

void rf_log_write_(enum rf_log_level level, const char *msg, const char *key, long long value,
                   int err)
{
    if (level < min_level || level > RF_LOG_ERROR)
        return;
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "refuge: %s: %s", level_names[level], msg);
    if (key)
        fprintf(stderr, " %s=%lld", key, value);
    if (err)
        fprintf(stderr, ": %s", rf_strerror(err));
    fputc('\n', stderr);
    pthread_mutex_unlock(&log_lock);
}
