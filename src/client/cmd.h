/*
 * cmd.h - the client's subcommands (one file each) and what they share.
 * Each takes argv with argv[0] = the subcommand's name and returns the
 * process exit code: 0 done, 1 failed, 2 usage error.
 */
#ifndef RF_CLIENT_CMD_H
#define RF_CLIENT_CMD_H

#include "client/cache.h"
#include "client/home.h"
#include "client/local.h"
#include "client/net.h"
#include "lib/keyfile.h"
#include "lib/roster.h"

#include <jansson.h>

#define RF_EXIT_OK 0
#define RF_EXIT_FAIL 1
#define RF_EXIT_USAGE 2

int rf_cmd_init(int argc, char **argv);
int rf_cmd_sync(int argc, char **argv);
int rf_cmd_cases(int argc, char **argv);
int rf_cmd_show(int argc, char **argv);
int rf_cmd_reply(int argc, char **argv);
int rf_cmd_files(int argc, char **argv);
int rf_cmd_fingerprint(int argc, char **argv);
int rf_cmd_staff(int argc, char **argv);
int rf_cmd_team(int argc, char **argv);
int rf_cmd_event(int argc, char **argv); /* stage, assign, ..., due: argv[0] is the op */
int rf_cmd_rewrap(int argc, char **argv);
int rf_cmd_unlock(int argc, char **argv);
int rf_cmd_lock(int argc, char **argv);
int rf_cmd_audit(int argc, char **argv);
int rf_cmd_desk(int argc, char **argv); /* desk.c: the web UI on 127.0.0.1 */

/* What most commands open: the home, keys, the cache and the local case
 * database, and (net) a client for the server. */
struct rf_ctx {
    struct rf_home h;
    struct rf_staff_keys *k;
    struct rf_net *n;
    struct rf_cache *c;
    struct rf_local *l;
    struct rf_ckpt ckpt; /* sync: the checkpoint handed to the update (sync_ckpt.c) */
};
/* Prints what went wrong; the ctx is closed on failure. */
int rf_ctx_open(struct rf_ctx *x, int net);
/* rf_ctx_open without the network, running fn(cache, arg) on another
 * thread while the key file is unlocked (Argon2id: reading ciphertext
 * needs no key); *fn_rc is what fn returned (RF_ERR_CANCELLED if it never
 * ran: as when the session keyring holds the keys, no Argon2id to overlap).
 * fn must not use the cache after it returns. */
int rf_ctx_open_overlap(struct rf_ctx *x, int (*fn)(struct rf_cache *c, void *arg), void *arg,
                        int *fn_rc);
void rf_ctx_close(struct rf_ctx *x);
/* Explains why the server refused (403) this caseworker: not approved yet,
 * removed from the roster, or (admin_only) not an admin. */
void rf_cmd_forbidden(struct rf_ctx *x, const char *what, int admin_only);
/* Compares fingerprints ignoring spaces. */
int rf_cmd_fp_equal(const char *a, const char *b);
/* Whether this caseworker may write: on the verified roster ro (else prints why). */
int rf_cmd_on_roster(struct rf_ctx *x, const struct rf_roster *ro);

/* sync_ckpt.c: before the update (total objects new), an admin's home
 * without a chain yet is made to digest again once, and the team's
 * checkpoint is fetched, verified and handed to x->l; after it, the chain
 * goes on from the digest rows and what the checkpoint did is reported;
 * `refuge sync` then posts an admin's own checkpoint. */
void rf_sync_ckpt_before(struct rf_ctx *x, const struct rf_roster *ro, unsigned total);
void rf_sync_ckpt_after(struct rf_ctx *x, int quiet);
void rf_sync_ckpt_post(struct rf_ctx *x, const struct rf_roster *ro, int quiet);

/* Prints "refuge: what: why" to stderr. */
void rf_cmd_err(const char *what, const char *why);
void rf_cmd_errc(const char *what, int rc);
/* Prints the network failure of n. */
void rf_cmd_net_err(const char *what, const struct rf_net *n);
/* Explains why plain http:// to url was refused (net.h) and that override
 * (an option or a config setting) allows it. */
void rf_cmd_plain_http(const char *url, const char *override);
/* Whether s is a well-formed case id. */
int rf_cmd_case_ok(const char *s);

/* The local case database as the board and a case page show it (the same
 * data as `refuge cases --json` and `refuge show --json`; view_cases.c,
 * cmd_view.c).
 * Filters may be NULL. *rows: the listing rows, most recent activity first,
 * each with "pending" (changes queued); *total: cases before filtering.
 * RF_ERR_FORMAT: search is not UTF-8. Digests objects not digested yet
 * first, unless f->current. */
struct rf_view_filter {
    const char *stage, *tag, *assignee, *search;
    int current; /* 1: the caller brought the digests up to date (rf_local_update) */
};
/* rf_view_cases reads the board rows once, in order (with a text filter,
 * the summaries: their search text). */
int rf_view_cases(struct rf_ctx *x, const struct rf_view_filter *f, json_t **rows, size_t *total);
/* The desk's board: the same filters, rows from the compact board rows
 * (cache.h), each {"case","stage","assigned","tags","due","messages",
 * "files","replies","last_day","pending","need","checklist","notes",
 * "first_day","urgency"} (the case's checklist as set), most recent activity
 * first. Keeps every case's row in memory across calls and reads again
 * only the rows written since the last call. With a text filter it is
 * rf_view_cases (every summary opened: the board rows carry no text). */
int rf_view_board(struct rf_ctx *x, const struct rf_view_filter *f, json_t **rows, size_t *total);
/* A sealed board row (cache.h "board") opened into plain and unpacked
 * (lib/boardrow.h) into the JSON object of its fields; plain is wiped
 * after. NULL when it does not open or parse. */
json_t *rf_view_board_json(struct rf_local *l, const char *case_id, const uint8_t *blob, size_t n,
                           struct rf_buf *plain);
/* The listing row (with "pending") of a board row's JSON r (with "case"
 * set), as rf_view_cases makes it; NULL when vf's stage, tag or assignee
 * leaves it out (vf->search is not looked at) or it lacks a field. */
json_t *rf_view_listing_row(const struct rf_view_filter *vf, const json_t *team_checklist,
                            json_t *r);
/* `refuge cases` printed to stdout (cmd_cases.c): text (json 0) or --json.
 * Without vf->search, as it is read from the packed board rows; with it,
 * from rf_view_cases' rows: the same bytes for the same cases. */
int rf_view_cases_print(struct rf_ctx *x, const struct rf_view_filter *f, int json);
/* The board rows read ahead (rf_cache_board_list), with what says they are
 * still the table's (meta board_gen and the row count, checked again
 * before use); for rf_ctx_open_overlap while the key is unlocked. */
struct rf_view_ahead {
    struct rf_cache_board_list list;
    int64_t gen;
};
int rf_view_cases_read_ahead(struct rf_cache *c, void *ahead);
/* rf_view_cases_print with rows read ahead (NULL, or not current: read
 * again); frees them. */
int rf_view_cases_print_ahead(struct rf_ctx *x, const struct rf_view_filter *f, int json,
                              struct rf_view_ahead *ahead);
/* Its parts (threads): one per CPU, at most 4, each of at least part_rows
 * rows; --json goes round them in blocks of block_rows (tests lower both). */
extern size_t rf_view_cases_part_rows, rf_view_cases_block_rows;
/* Drops (wipes) the rows rf_view_board kept. */
void rf_view_forget(void);
/* A case's checklist as {item: bool} for every item of the team's
 * checklist, plus items set on the case that the team no longer lists. */
json_t *rf_view_checklist(const json_t *team_list, const json_t *set);
/* {"case","first_day","last_seq","state","items":[..],"team"} of one case;
 * RF_ERR_NOT_FOUND if this computer has no object of it. */
int rf_view_case(struct rf_ctx *x, const char *cid, json_t **out);

/* Seals text (UTF-8, trailing blanks dropped) as a signed reply to the
 * person behind cid and every caseworker on the verified roster, posts it
 * and syncs (cmd_reply.c). x is opened with the network. Prints what went
 * wrong (to stderr); 0, or RF_ERR_INVALID for an empty text. *seq (may be
 * NULL) receives the reply's sequence number. */
int rf_reply_send(struct rf_ctx *x, const char *cid, const uint8_t *text, size_t len,
                  long long *seq);

/* Signs, seals and sends one case event (op: stage, assign, ... as `refuge
 * stage` etc.), or queues it in the outbox when the server cannot be
 * reached (*queued = 1) (cmd_event.c). Returns 0, RF_EXIT_USAGE (value not
 * valid for op: not a stage of the team, ...) or RF_EXIT_FAIL; says why on
 * stderr. */
int rf_event_apply(struct rf_ctx *x, const char *cid, const char *op, const char *value,
                   int *queued);

/* The team (cmd_staff.c), what `refuge staff` does, without argv; each
 * prints what went wrong on stderr and returns RF_EXIT_OK or RF_EXIT_FAIL.
 * list: *out = {"roster_version", "staff": [{"name","role","fingerprint",
 * "on_roster", "me" (this caseworker), "removed"}], "pending_listed"} from
 * the roster this client verified and the server's enrolled keys not on it
 * (role "pending"; "pending_listed" false when the server could not list
 * them). invite (admins): the one-time invite token (inv, RF_INVITE_CHARS +
 * 1) and the fingerprint of the team's first admin it pins. approve
 * (admins): adds the enrolled caseworker NAME whose keys' fingerprint
 * (v2, both keys) equals want_fp (spaces ignored) to a new signed roster
 * version; RF_STAFF_MISMATCH (and the loud refusal on stderr) when it does
 * not; want_fp NULL asks on the terminal (the CLI only). remove (admins):
 * a new roster version without NAME. *version, *count: the new roster's. */
#define RF_STAFF_MISMATCH 3
int rf_staff_list(struct rf_ctx *x, json_t **out);
int rf_staff_invite(struct rf_ctx *x, int admin, char *inv, size_t inv_cap, char *first_fp,
                    size_t fp_cap);
int rf_staff_approve(struct rf_ctx *x, const char *name, const char *want_fp, int admin,
                     unsigned *version, unsigned *count);
int rf_staff_remove(struct rf_ctx *x, const char *name, unsigned *version, unsigned *count);

/* `refuge audit verify` without argv (cmd_audit.c): fetches the server's
 * audit log, verifies the chain from the first entry and against this
 * client's anchor, and the caseworkers' signatures; on success moves the
 * anchor. Returns 0 when the check ran (r says ok or where it broke),
 * RF_EXIT_FAIL when it could not (said on stderr). */
struct rf_audit_result {
    int ok;
    uint64_t entry;  /* where it broke */
    int what;        /* enum rf_audit_break */
    char action[32]; /* the broken entry's action, when unsigned/forged */
    size_t entries, nsig, nlegacy, nserver;
};
int rf_audit_check(struct rf_ctx *x, struct rf_audit_result *r);

/* Syncs with the server: verifies the roster, pushes the outbox (in
 * order), pulls objects and grants, then verifies and materializes what is
 * new into the local case database. quiet: no counts. flags: trust.h's.
 * *ro (if not NULL) receives the verified latest roster (malloc). */
int rf_sync_run(struct rf_ctx *x, int quiet, int flags, struct rf_roster **ro);

/* Decrypts an object of the cache. Messages and replies: *json gets the
 * parsed plaintext object. Files: meta receives the name and type and *size
 * the file's byte count (the whole file is decrypted to count it, into
 * nothing). */
struct rf_filemeta;
/* How object seq opens for this client: *use_grant 0, its own stanza (or
 * no grant to try: rf_open then says why not); 1, grant, the first received
 * grant whose key authenticates the object (junk ones skipped). An error if
 * neither the stanza nor any grant opens it. */
int rf_thread_pick(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                   uint8_t grant[RF_GRANT_BYTES], int *use_grant);
/* Opens object seq (stanza or received grant) into sink; *kind is the
 * kind authenticated inside the envelope. */
int rf_thread_open(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq, rf_sink_fn sink,
                   void *ctx, uint8_t *kind);
int rf_thread_open_json(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                        json_t **json);
int rf_thread_file_info(struct rf_cache *c, const struct rf_staff_keys *k, int64_t seq,
                        struct rf_filemeta *meta, uint64_t *size);

#endif
