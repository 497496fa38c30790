/*
 * session.h - the person's login sessions, in memory only (nothing of a
 * session touches disk). A session is found by a random 32-byte token sent as
 * an HttpOnly, SameSite=Strict session cookie; only BLAKE2b of the token is
 * kept. It holds the source's id, case id and X25519 keypair (to decrypt
 * replies for display) in one sodium_malloc slab, wiped on logout or expiry:
 * a reaper wipes expired sessions on a timer, so a person who walks away
 * without the quick exit leaves no key behind. A full table answers
 * RF_ERR_BUSY; it never evicts a live session.
 *
 * Pending codenames from /new (shown once, derived on "continue") are not
 * kept at all: the codename travels sealed in the form (rf_pending_seal,
 * under a key random per process), with its expiry inside the seal, so no
 * flood of /new can push one out.
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
/* Shared mode (refuge serve --session-key; docs/scale-out.md): from now on
 * sessions are rows of st (store.h, "person sessions"), their secrets
 * sealed under key (sesskey.h), so every process sharing st and key serves
 * every session; pending codenames are sealed under key too. Each request
 * reads its session's row (a logout or expiry anywhere ends it everywhere);
 * max (from rf_sessions_new) bounds the live rows of all processes; the
 * clock is the wall clock. Call before any session exists; st and key must
 * outlive s. */
struct rf_sesskey;
int rf_sessions_share(struct rf_sessions *s, struct rf_store *st, struct rf_sesskey *key);
int rf_sessions_shared(const struct rf_sessions *s);
/* Stops the reaper (if started) and wipes everything. NULL is a no-op. */
void rf_sessions_free(struct rf_sessions *s);

/* The reaper: a thread that calls rf_sessions_reap every period_s seconds
 * (a scan of the table under its lock: microseconds for thousands of
 * entries). Start it once, before the sandbox locks thread creation. */
int rf_sessions_reaper_start(struct rf_sessions *s, unsigned period_s);
/* The reaper's period for an idle timeout: idle_s / 10, from 1 to 60 s, so a
 * session is wiped at most 10% of its idle timeout (or a minute) after it
 * expired. */
unsigned rf_sessions_reap_period(unsigned idle_s);
/* Wipes every expired session now; returns how many. */
unsigned rf_sessions_reap(struct rf_sessions *s);
/* Live (not yet wiped) sessions in the table. */
unsigned rf_sessions_count(struct rf_sessions *s);

/* The clock sessions and pending codenames expire by: seconds, monotonic.
 * Default CLOCK_MONOTONIC; tests inject their own. */
typedef int64_t (*rf_sessions_clock_fn)(void *arg);
void rf_sessions_set_clock(struct rf_sessions *s, rf_sessions_clock_fn fn, void *arg);
/* Test hook: 1 if the n bytes at p appear anywhere in the table's memory
 * (live or free entries), 0 if not. */
int rf_sessions_holds(struct rf_sessions *s, const void *p, size_t n);
/* Creates a session; writes its cookie token (base64url) to token.
 * RF_ERR_BUSY if the table is full of live sessions. */
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
/* Charges the bytes a refused upload streamed (up to its refusal) to the
 * session's daily byte quota: they count as stored bytes do, but no message
 * is counted and nothing is refused; the counter stops at the quota. Atomic
 * as rf_session_count_sent (shared mode: one conditional UPDATE).
 * RF_ERR_NOT_FOUND if the session is gone. */
int rf_session_count_refused(struct rf_sessions *s, const char *token, uint64_t bytes);
/* What is left of the day's quota for a session read by rf_session_get
 * (its counters are the day's): bytes (0 if spent), and whether a message
 * may still be counted (1) or not (0). */
uint64_t rf_session_bytes_left(const struct rf_sessions *s, const struct rf_session_view *v);
int rf_session_msgs_left(const struct rf_sessions *s, const struct rf_session_view *v);
/* Absolute lifetime of a session whatever its activity, and of a pending codename. */
#define RF_SESSION_LIFETIME_S (4 * 3600)
#define RF_PENDING_LIFETIME_S (15 * 60)
/* Test hook: seconds added to the clock sessions read (expiry tests). */
void rf_sessions_clock_skew(struct rf_sessions *s, int64_t seconds);

/* Staff enrollment tokens (refuge server init / token; the API's enrollment):
 * the store keeps BLAKE2b-256 (unkeyed) of the token's base64url text. */
void rf_enroll_token_hash(uint8_t out[32], const char *token, size_t len);

/* Pending codename between /new and "continue", sealed into the form's
 * hidden field (docs/threat-model.md, finding 5):
 *   text   = base64url(nonce[24] | XChaCha20-Poly1305(plain, ad))
 *   ad     = "refuge-pending-v1" | bind (the browser's pre-session cookie)
 *   plain  = v u8 (=1) | expires u64 (seconds, the sessions' clock) |
 *            len u8 | codename[len] | zeros up to RF_PENDING_CN_MAX
 * under a key drawn at start (sodium_malloc), so every text has the same
 * length, is worthless after a restart, and opens only with the cookie it
 * was made for. Nothing is kept per codename. */
#define RF_PENDING_CN_MAX 255
#define RF_PENDING_PLAIN_LEN (1 + 8 + 1 + RF_PENDING_CN_MAX)
#define RF_PENDING_SEALED_LEN (24 + RF_PENDING_PLAIN_LEN + 16)
#define RF_PENDING_B64 (((RF_PENDING_SEALED_LEN)*4 + 2) / 3 + 1) /* text + NUL */
int rf_pending_seal(struct rf_sessions *s, const char *codename, const uint8_t *bind,
                    size_t bindlen, char out[RF_PENDING_B64]);
/* Opens a pending text (len bytes, from the form) into out (sodium_malloc
 * memory of outcap >= RF_PENDING_CN_MAX + 1), NUL-terminated. Malformed,
 * forged, made for another cookie or expired: RF_ERR_NOT_FOUND, all alike. */
int rf_pending_open(struct rf_sessions *s, const char *text, size_t len, const uint8_t *bind,
                    size_t bindlen, char *out, size_t outcap);
/* The plaintext's decoder (a parser of its own, fuzzed in fuzz/pending.c):
 * the codename of plain if well-formed and not expired at now. */
int rf_pending_parse(const uint8_t *plain, size_t n, int64_t now, char *out, size_t outcap);

#endif
