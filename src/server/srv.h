/*
 * srv.h - the running server's shared context, visible to server modules.
 * Built by `refuge serve` from the data directory's settings; read-only after
 * start except the parts that carry their own locks (sessions, KDF pool,
 * committer, nonce cache) and line_open (atomic).
 */
#ifndef RF_SRV_H
#define RF_SRV_H

#include "lib/source.h"
#include "lib/codename.h"
#include "store/commit.h"
#include "store/store.h"

#include <stdatomic.h>
#include <stdint.h>

struct rf_kdfpool;
struct rf_sessions;
struct rf_sesskey;
struct rf_nonces;
struct rf_listed;

struct rf_limits {
    uint64_t message_max;     /* bytes of one message's text (default 64 KiB) */
    uint64_t upload_max;      /* bytes of one upload (default 500 MB), checked while streaming */
    uint64_t form_max;        /* bytes of a non-upload form body (default 256 KiB) */
    unsigned kdf_concurrent;  /* Argon2id derivations at once (default: cores) */
    unsigned kdf_queue;       /* waiting derivations before "busy" (default 64) */
    unsigned sessions_max;    /* live sessions (default 4096) */
    unsigned session_idle_s;  /* idle timeout (default 1800) */
    unsigned connections_max; /* concurrent connections (default 1000) */
    unsigned connection_timeout_s; /* idle connection timeout (default 60) */
    uint64_t api_body_max;         /* staff API bodies (default = upload_max) */
};

struct rf_srv {
    struct rf_store *store;
    struct rf_committer *committer;
    struct rf_kdfpool *kdf;
    struct rf_sessions *sessions;
    struct rf_nonces *nonces;
    struct rf_listed *listed;         /* keys ever on a roster version (api_listed.c) */
    struct rf_kdf_params *kdf_params; /* sodium_malloc: holds the lookup key */
    uint8_t *csrf_key;                /* sodium_malloc, 32 bytes, random per process start */
    struct rf_sesskey *sesskey;       /* --session-key: sessions shared through the store */
    struct rf_limits limits;
    unsigned cpus; /* CPUs the process may use (cpus.h); 0: unknown */
    enum rf_lang default_lang;
    int behind_tls; /* cookies get Secure */
    const char *datadir;
    /* 1 once a roster exists (the line is open); only ever goes 0 -> 1: set
     * by the pages at start and by the API when it stores the first roster. */
    atomic_int line_open;
    /* --onion-location: sent on HTML pages not reached by a .onion name */
    const char *onion_location;
};

#endif
