/*
 * log.h - logging that cannot leak what it must not.
 *
 * Refuge never logs plaintext, codenames, keys or IP addresses. The helpers
 * below make that hard to get wrong: messages must be string literals (the
 * macros paste "" onto them, so a variable does not compile), and the only
 * values they carry are integers and rf_err codes. There is no %s.
 *
 *   rf_log_info("server listening");
 *   rf_log_num(RF_LOG_INFO, "group commit", "batch", n);
 *   rf_log_error("blob write failed", rc);
 */
#ifndef RF_LOG_H
#define RF_LOG_H

enum rf_log_level { RF_LOG_DEBUG = 0, RF_LOG_INFO = 1, RF_LOG_WARN = 2, RF_LOG_ERROR = 3 };

void rf_log_set_level(enum rf_log_level level);
void rf_log_write_(enum rf_log_level level, const char *msg, const char *key, long long value,
                   int err);

#define rf_log_debug(msg) rf_log_write_(RF_LOG_DEBUG, "" msg "", 0, 0, 0)
#define rf_log_info(msg) rf_log_write_(RF_LOG_INFO, "" msg "", 0, 0, 0)
#define rf_log_warn(msg) rf_log_write_(RF_LOG_WARN, "" msg "", 0, 0, 0)
/* Logs msg with the text of rf_err code err. */
#define rf_log_error(msg, err) rf_log_write_(RF_LOG_ERROR, "" msg "", 0, 0, (err))
#define rf_log_warn_err(msg, err) rf_log_write_(RF_LOG_WARN, "" msg "", 0, 0, (err))
/* Logs msg with one named integer. */
#define rf_log_num(level, msg, key, value)                                                         \
    rf_log_write_((level), "" msg "", "" key "", (long long)(value), 0)

#endif
