/*
 * session.h - the person's login sessions, in memory only (nothing of a
 * session touches disk). A session is found by a random 32-byte token sent as
 * an HttpOnly, SameSite=Strict session cookie; only BLAKE2b of the token is
 * kept. It holds the source's id, case id and X25519 keypair (to decrypt
 * replies for display) in one sodium_malloc slab, wiped on logout, expiry or
 * eviction. Pending codenames from /new (shown once, derived on "continue")
 * live in the same slab with their own short expiry.
 */
#ifndef RF_SESSION_H
#define RF_SESSION_H

#include "lib/source.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>

#define RF_SESSION_TOKEN_B64 44 /* base64url of 32 bytes + NUL */

struct rf_sessions;

struct rf_session_view { /* a copy handed to a request; sk is the caller's to wipe */
    int64_t source_id;
    char case_id[RF_CASE_ID_LEN + 1];
    uint8_t pk[32];
    uint8_t sk[32];
    uint8_t csrf[32]; /* per-session CSRF secret */
    uint32_t sent_today_msgs;
    uint64_t sent_today_bytes;
};

int rf_sessions_new(struct rf_sessions **out, unsigned max, unsigned idle_s);
void rf_sessions_free(struct rf_sessions *s);
/* Creates a session; writes its cookie token (base64url) to token. */
int rf_session_create(struct rf_sessions *s, const struct rf_source *src,
                      const struct rf_source_keys *keys, char token[RF_SESSION_TOKEN_B64]);
/* Finds and touches a session; out must be sodium_malloc memory. RF_ERR_NOT_FOUND if none. */
int rf_session_get(struct rf_sessions *s, const char *token, struct rf_session_view *out);
void rf_session_end(struct rf_sessions *s, const char *token);

/* Per-session daily quotas (the day is UTC, as rf_store_today). Counts one
 * sent message of bytes; RF_ERR_LIMIT (and nothing counted) if it would go
 * past the quota, RF_ERR_NOT_FOUND if the session is gone. */
int rf_session_count_sent(struct rf_sessions *s, const char *token, uint64_t bytes);
#define RF_SESSION_QUOTA_MSGS 200                          /* messages per session per day */
#define RF_SESSION_QUOTA_BYTES (2ULL * 1024 * 1024 * 1024) /* bytes per session per day */
void rf_sessions_set_quota(struct rf_sessions *s, uint32_t msgs, uint64_t bytes);
/* Absolute lifetime of a session whatever its activity, and of a pending codename. */
#define RF_SESSION_LIFETIME_S (4 * 3600)
#define RF_PENDING_LIFETIME_S (15 * 60)
/* Room for pending codenames, besides max sessions. */
#define RF_PENDING_SLOTS(max) ((max) / 4 + 16)
/* Test hook: seconds added to the clock sessions read (expiry tests). */
void rf_sessions_clock_skew(struct rf_sessions *s, int64_t seconds);

/* Staff enrollment tokens (refuge server init / token; the API's enrollment):
 * the store keeps BLAKE2b-256 (unkeyed) of the token's base64url text. */
void rf_enroll_token_hash(uint8_t out[32], const char *token, size_t len);

/* Pending codename between /new and "continue": stored under a random id. */
int rf_pending_put(struct rf_sessions *s, const char *codename, char id[RF_SESSION_TOKEN_B64]);
/* Copies the codename out (into sodium_malloc memory of outcap) and removes it. */
int rf_pending_take(struct rf_sessions *s, const char *id, char *out, size_t outcap);

#endif
