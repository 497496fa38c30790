/*
 * cache.h - the client's local SQLite cache (home/cache.db): ciphertext
 * objects exactly as the server holds them, their metadata (case, kind,
 * size, day), the roster chain this client has verified, and the sync
 * position. It never holds a plaintext byte: everything shown is decrypted
 * on the fly. Objects up to RF_CACHE_INLINE_MAX live in the database; larger
 * ones in home/objects/<seq> (written to a temp name, fsynced, renamed).
 */
#ifndef RF_CLIENT_CACHE_H
#define RF_CLIENT_CACHE_H

#include "client/home.h"
#include "lib/buf.h"
#include "lib/envelope.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CACHE_INLINE_MAX (1024 * 1024)

struct rf_cache;

struct rf_cobj {
    int64_t seq;
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t kind;
    uint64_t size;
    uint32_t day;
};

struct rf_ccase {
    char case_id[RF_CASE_ID_LEN + 1];
    uint32_t first_day;
    uint32_t last_day;
    unsigned messages, files, replies;
    int64_t first_message_seq; /* 0 if none */
    int64_t last_seq;
};

int rf_cache_open(struct rf_cache **out, const struct rf_home *h);
void rf_cache_close(struct rf_cache *c);
int rf_cache_begin(struct rf_cache *c);
int rf_cache_commit(struct rf_cache *c);
void rf_cache_rollback(struct rf_cache *c);

int rf_cache_last_seq(struct rf_cache *c, int64_t *seq);
int rf_cache_set_last_seq(struct rf_cache *c, int64_t seq);

/* Stores an object: inline ciphertext (data) or, with data == NULL, one
 * already renamed into place by rf_cache_file_path(.., 0, ..). */
int rf_cache_object_put(struct rf_cache *c, const struct rf_cobj *o, const uint8_t *data,
                        size_t len);
/* Path of a large object's file (tmp: the temp name it is written under). */
int rf_cache_file_path(struct rf_cache *c, int64_t seq, int tmp, char *out, size_t cap);
/* Streams an object's ciphertext to sink in chunks (constant memory). */
int rf_cache_object_stream(struct rf_cache *c, int64_t seq, rf_sink_fn sink, void *ctx);

/* Cases, most recent activity first; *out is malloc'd. */
int rf_cache_cases(struct rf_cache *c, struct rf_ccase **out, size_t *n);
/* One case's objects in sequence order; *out is malloc'd. RF_ERR_NOT_FOUND if none. */
int rf_cache_case_objects(struct rf_cache *c, const char *case_id, struct rf_cobj **out, size_t *n);

/* The verified roster chain. */
int rf_cache_roster_max(struct rf_cache *c, uint32_t *version); /* 0 if none */
int rf_cache_roster_get(struct rf_cache *c, uint32_t version, struct rf_buf *raw);
int rf_cache_roster_put(struct rf_cache *c, uint32_t version, const uint8_t *raw, size_t n);

#endif
