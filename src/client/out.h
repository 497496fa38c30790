/*
 * out.h - how the client writes to the caseworker's terminal: text that
 * came from a stranger is sanitised (no control characters, no terminal
 * escapes, no bidi overrides), colour only on a tty without NO_COLOR, days
 * as dates, sizes as KiB/MiB. rf_out_init installs the jansson allocator
 * that wipes freed memory (lib/json.h, shared with the server), since
 * decrypted plaintext passes through JSON values.
 */
#ifndef RF_CLIENT_OUT_H
#define RF_CLIENT_OUT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Installs the wiping allocator in jansson (rf_json_init; once at start). */
void rf_out_init(void);
/* Frees a string from json_dumps (allocated by that allocator). */
void rf_out_json_free(void *p);
/* With REFUGE_PHASES set in the environment: "phase NAME SECONDS" on
 * stderr, the wall time since the previous mark (or the first, which only
 * starts the clock, with NULL). How a developer or bench/sync.py sees where
 * a long command's time goes; names only, never data. Main thread only. */
void rf_out_phase(const char *name);
/* A JSON string, or the strings of an array joined by ", ", sanitised as
 * rf_out_safe_copy does, into out (cap bytes): a table cell's text. */
void rf_out_value_text(char *out, size_t cap, json_t *v);
/* Whether colour may be used on f. */
int rf_out_colour(FILE *f);
/* YYYY-MM-DD of a day number (days since 1970-01-01 UTC). out >= 11 bytes. */
void rf_out_day(char *out, size_t cap, uint32_t day);
void rf_out_size(char *out, size_t cap, uint64_t bytes);
/* Writes s with control and bidi characters replaced (keeps \n if
 * multiline, \t as a space; invalid UTF-8 as U+FFFD). */
void rf_out_safe(FILE *f, const char *s, int multiline);
/* Writes multi-line text sanitised, each line prefixed by indent, then a newline. */
void rf_out_block(FILE *f, const char *s, const char *indent);
/* Display width-agnostic copy of s sanitised into out (single line),
 * truncated at maxbytes on a character boundary. */
void rf_out_safe_copy(char *out, size_t cap, const char *s);
/* Prints a JSON value to stdout (indented, UTF-8, newline). */
int rf_out_json(json_t *j);

#endif
