/*
 * onion.h - `refuge serve --onion`: the line as a Tor onion service, asked of
 * a local tor over its control port (onion.c). srv_main.c calls, in this
 * order (see sandbox.h for the sandbox steps around it):
 *
 *   rf_onion_new       before the user switch: connects to the control port
 *                      (TCP or unix socket), PROTOCOLINFO: learns where tor's
 *                      cookie file is and which group may read it
 *   rf_sandbox_drop    keeps that group if the serving user is in it
 *   rf_onion_auth      as the serving user, before Landlock: reads the cookie
 *                      and authenticates (SAFECOOKIE: tor proves it knows the
 *                      cookie before refuge sends anything, the key included)
 *   rf_sandbox_landlock  allows reading that cookie file and connecting to
 *                      that TCP port, nothing else outside the data directory
 *   ... HTTP daemon listening ...
 *   rf_onion_publish   ADD_ONION: a new key on first start (written to
 *                      DATADIR/onion-key, 0600, atomically), the same key
 *                      afterwards; DATADIR/onion-hostname gets the address
 *   rf_onion_watch     starts the thread that keeps the service up: when the
 *                      control connection drops (tor restarted), it
 *                      reconnects with backoff, authenticates again (tor
 *                      makes a new cookie each start) and adds the service
 *                      again
 *   rf_sandbox_lock    seccomp (socket/connect allowed for the reconnects)
 *
 * The service lives as long as refuge's control connection (no Detach): when
 * refuge stops or dies, tor takes the service down. The key never leaves
 * sodium_malloc memory but to the key file and to tor; nothing here logs it.
 *
 * The control protocol reply parser (rf_onion_reply_parse) reads tor's bytes
 * through lib/buf.h's reader; fuzz/onion_reply.c fuzzes it.
 */
#ifndef RF_ONION_H
#define RF_ONION_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define RF_ONION_CONTROL_DEFAULT "127.0.0.1:9051"
#define RF_ONION_KEY_FILE "onion-key"
#define RF_ONION_HOSTNAME_FILE "onion-hostname"

/* Control reply limits: a line longer than this, or a reply with more
 * lines, is refused (RF_ERR_LIMIT). */
#define RF_ONION_LINE_MAX 4096
#define RF_ONION_LINES_MAX 256
#define RF_ONION_PATH_MAX 1024
#define RF_ONION_ID_LEN 56   /* a v3 service id, without ".onion" */
#define RF_ONION_KEY_MAX 128 /* "ED25519-V3:" + 88 base64 characters */
#define RF_ONION_TEXT_MAX 160

/* Authentication methods in a PROTOCOLINFO reply. */
#define RF_ONION_AUTH_NULL 1u
#define RF_ONION_AUTH_COOKIE 2u
#define RF_ONION_AUTH_SAFECOOKIE 4u
#define RF_ONION_AUTH_PASSWORD 8u

/* What refuge needs of one control reply. Lives in sodium_malloc memory:
 * private_key is a secret. */
struct rf_onion_reply {
    int code;                               /* status of the final line: 250, 5xx */
    unsigned auth;                          /* PROTOCOLINFO: RF_ONION_AUTH_* */
    char cookie_file[RF_ONION_PATH_MAX];    /* PROTOCOLINFO: COOKIEFILE, unquoted */
    char tor_version[32];                   /* PROTOCOLINFO: VERSION Tor= */
    char service_id[RF_ONION_ID_LEN + 1];   /* ADD_ONION: ServiceID= */
    char private_key[RF_ONION_KEY_MAX + 1]; /* ADD_ONION: PrivateKey= (Type:Blob) */
    char server_hash[65];                   /* AUTHCHALLENGE: SERVERHASH= (hex) */
    char server_nonce[65];                  /* AUTHCHALLENGE: SERVERNONCE= (hex) */
    char text[RF_ONION_TEXT_MAX];           /* the final line after the code, printable */
};

/* Parses one complete reply at the start of p[0..n): sets *used to its
 * length in bytes. RF_ERR_TRUNCATED: not complete yet (read more);
 * RF_ERR_FORMAT: not the control protocol; RF_ERR_LIMIT: a line or the
 * reply is too long. Asynchronous replies (code 6xx) parse like any other. */
int rf_onion_reply_parse(const uint8_t *p, size_t n, size_t *used, struct rf_onion_reply *rep);

/* Checks a --tor-control value: "HOST:PORT" (IPv4 or [IPv6]) or
 * "unix:/absolute/path". 0 or RF_ERR_INVALID. */
int rf_onion_control_check(const char *spec);

struct rf_onion;

/* Connects to tor's control port and asks PROTOCOLINFO. datadir: where the
 * key and hostname files go; pow: ask for the proof-of-work defence. */
int rf_onion_new(struct rf_onion **out, const char *control, const char *datadir, int pow);
/* The cookie file tor named, and its group (-1 if it cannot be seen). */
const char *rf_onion_cookie_file(const struct rf_onion *on);
gid_t rf_onion_cookie_gid(const struct rf_onion *on);
/* The control port's TCP port, 0 for a unix socket. */
uint16_t rf_onion_control_port(const struct rf_onion *on);
/* Reads the cookie and authenticates (SAFECOOKIE). */
int rf_onion_auth(struct rf_onion *on);
/* Adds the service: virtual port 80 to host:port (the listening address). */
int rf_onion_publish(struct rf_onion *on, const char *listen, uint16_t port);
/* Starts the thread that re-adds the service after tor restarts. */
int rf_onion_watch(struct rf_onion *on);
/* "xxxxxxxx.onion" once published. */
const char *rf_onion_address(const struct rf_onion *on);
/* 1 if tor took the proof-of-work defence, 0 if it has none or it is off. */
int rf_onion_pow(const struct rf_onion *on);
/* Stops the thread, closes the connection (tor then drops the service). */
void rf_onion_free(struct rf_onion *on);

#endif
