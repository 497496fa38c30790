/*
 * json.h - the one jansson allocator of Refuge, shared by server and client.
 *
 * Decrypted plaintext passes through JSON values: on the client every
 * message and reply it shows, on the server the person's message and intake
 * answers before they are sealed and the replies it opens for the inbox. So
 * every jansson allocation carries its size in front, and freeing it wipes
 * the whole block first (sodium_memzero) before handing it back to malloc.
 *
 * jansson's json_set_alloc_funcs is process-global: rf_json_init() is
 * called once at the start of a process (the server's `refuge serve` and
 * `refuge server ...`, the client's main), before any thread uses jansson.
 * Strings from json_dumps/json_loads error paths and anything else jansson
 * allocated must be freed with rf_json_free (not free()).
 */
#ifndef RF_LIB_JSON_H
#define RF_LIB_JSON_H

/* Installs the wiping allocator in jansson (once, at process start). */
void rf_json_init(void);
/* Frees (and wipes) a block jansson allocated, e.g. a json_dumps result.
 * NULL is a no-op. */
void rf_json_free(void *p);

#endif
