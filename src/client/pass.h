/*
 * pass.h - the caseworker's passphrase: from the terminal (/dev/tty, echo
 * off) or, for scripts, the first line of the file named by
 * REFUGE_PASSPHRASE_FILE. Passphrases live in sodium_malloc memory.
 */
#ifndef RF_CLIENT_PASS_H
#define RF_CLIENT_PASS_H

#include <stddef.h>

#define RF_PASS_MIN 8

/* Reads a passphrase into *out (sodium_malloc, NUL-terminated, free with
 * rf_pass_free). confirm: ask twice (terminal) and refuse a mismatch. */
int rf_pass_read(char **out, size_t *len, const char *prompt, int confirm);
void rf_pass_free(char *p);

#endif
