/*
 * state.h - a case's state from its signed events (lib/event.h), as pure
 * functions: no network, no disk, no clock. Every client that holds the same
 * set of events computes the same state, whatever order they arrived in.
 *
 * Verification (rf_state_event_verify): the signature and case binding hold
 * (rf_event_verify with the case the server listed the object under), the
 * body is well formed, and the author is a member of EVERY roster version
 * from the one the event names up to the one in force when the server stored
 * it (the "stored" version the server records with each object), so nobody
 * chooses the roster they are checked against: a removed member or a demoted
 * admin naming an old version is refused (or, for team settings, not an
 * admin). The author's name shown is the named version's, not the body's.
 *
 * Lamport bound: in the server's sequence order (events not sent yet last),
 * an event whose lamport exceeds the highest lamport of the case's events
 * kept so far by more than RF_STATE_LAMPORT_STEP is ignored, so a forged
 * huge lamport cannot win every register for ever.
 *
 * Concurrency rule: events are ordered by (lamport, author sign_pk bytes,
 * event id); each register (stage, due, assignee:NAME, tag:T, check:ITEM)
 * takes the value of its last event in that order; notes are all kept, in
 * that order (which op writes which register, and how: client/evop.h; each
 * register's rule: state.c registers[]). Two copies of one event (same lamport, author and id)
 * count once. The reserved case "teamconfig" carries ops "stages" and "checklist" (value: array of
 * names); only events by an author who was an admin on every roster version from the one named to
 * the one stored under count there.
 */
#ifndef RF_CLIENT_STATE_H
#define RF_CLIENT_STATE_H

#include "lib/keyfile.h"
#include "lib/roster.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define RF_STATE_TEAMCONFIG "teamconfig"
#define RF_STATE_ID_HEX 32
#define RF_STATE_VALUE_MAX 8192 /* bytes of a register value (notes: the body limit) */
#define RF_STATE_LIST_MAX 64    /* stages or checklist items */
#define RF_STATE_NAME_MAX 64    /* bytes of one stage or checklist name */
/* how far an event's lamport may run ahead of the case's events before it */
#define RF_STATE_LAMPORT_STEP ((uint64_t)1 << 20)

struct rf_ev {
    char id[RF_STATE_ID_HEX + 1];
    uint64_t lamport;
    uint32_t roster; /* the version the event names */
    uint32_t stored; /* the version in force when the server stored it (checked up to) */
    uint8_t author_pk[32];
    char author[RF_NAME_MAX + 1];
    uint32_t day;
    char op[16];
    json_t *value; /* owned: a string, or an array of strings for stages/checklist */
    int64_t seq;   /* the server's sequence number; 0 for an event not sent yet */
    int admin;     /* the author is an admin on every version from roster to stored */
};

/* Releases e->value (e may be reused after). */
void rf_ev_clear(struct rf_ev *e);

/* Verifies the signed event p (n bytes, the opened RF_KIND_EVENT plaintext)
 * for case_id against the verified rosters (rosters[i] is version i+1) and
 * the version stored (the latest roster when the server stored the event;
 * 0: not recorded, then only the version named counts), and fills out (seq
 * 0). RF_ERR_SIGNATURE (signature or case binding), RF_ERR_ROSTER (author
 * not a member of every version from the one named to stored, or no such
 * version), RF_ERR_PROTOCOL (stored is older than the version named or newer
 * than nrosters: a claim the server cannot truthfully make), RF_ERR_FORMAT
 * (framing, body or op/value not valid for the case). */
int rf_state_event_verify(struct rf_ev *out, const uint8_t *p, size_t n, const char *case_id,
                          const struct rf_roster *const *rosters, size_t nrosters, uint32_t stored);
/* rf_state_event_verify, with signature 0: every check but the Ed25519
 * signature (framing, case id, body, roster claims), for an event below a
 * verified checkpoint whose hash chain the caller compares with it before
 * the event counts (docs/protocol.md 13). */
int rf_state_event_check(struct rf_ev *out, const uint8_t *p, size_t n, const char *case_id,
                         const struct rf_roster *const *rosters, size_t nrosters, uint32_t stored,
                         int signature);

/* Marks in keep[i] (n bytes) whether ev[i] is within the lamport bound (see
 * above); rf_state_case and rf_state_team apply it themselves. */
int rf_state_bound(const struct rf_ev *ev, size_t n, unsigned char *keep);

/* Whether op with value is valid on case_id: op is one of the team ops of
 * client/evop.h on teamconfig, a case op on any other case, and its row's
 * check accepts value (team ops: an array of names; case ops: a string). */
int rf_state_op_valid(const char *case_id, const char *op, const json_t *value);

/* The field of rf_state_case's (case ops) or rf_state_team's (team ops)
 * object that op o changes: its register's state rule. NULL when no rule
 * here fits o (a row whose register has no rule would change nothing). */
struct rf_evop;
const char *rf_state_field(const struct rf_evop *o);

/* The event order of the concurrency rule (<0, 0, >0). */
int rf_state_cmp(const struct rf_ev *a, const struct rf_ev *b);

/* A case's state: {"stage": S, "assigned": [names], "tags": [tags],
 * "due": "YYYY-MM-DD"|null, "checklist": {item: bool} (items ever set),
 * "notes": [{"author","day","text","seq"}], "lamport": max}; stage is "new"
 * without a stage event. NULL only when out of memory. */
json_t *rf_state_case(const struct rf_ev *ev, size_t n);

/* The team's configuration: {"stages": [...], "checklist": [...]}, the
 * defaults unless an admin's event set them. */
json_t *rf_state_team(const struct rf_ev *ev, size_t n);

/* Whether name is in the JSON array of strings list. */
int rf_state_in_list(const json_t *list, const char *name);

/* Whether s is a real date YYYY-MM-DD; *day receives its day number. */
int rf_state_date(const char *s, uint32_t *day);

#endif
