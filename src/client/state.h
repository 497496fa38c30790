/*
 * state.h - a case's state from its signed events (lib/event.h), as pure
 * functions: no network, no disk, no clock. Every client that holds the same
 * set of events computes the same state, whatever order they arrived in.
 *
 * Verification (rf_state_event_verify): the signature and case binding hold
 * (rf_event_verify with the case the server listed the object under), the
 * body is well formed, and the author is a member of the roster version the
 * event names. The author's name shown is the roster's, not the body's.
 *
 * Concurrency rule: events are ordered by (lamport, author sign_pk bytes,
 * event id); each register (stage, due, assignee:NAME, tag:T, check:ITEM)
 * takes the value of its last event in that order; notes are all kept, in
 * that order. Two copies of one event (same lamport, author and id) count
 * once. The reserved case "teamconfig" carries ops "stages" and "checklist"
 * (value: array of names); only events by an admin of the roster version they
 * name count there.
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

struct rf_ev {
    char id[RF_STATE_ID_HEX + 1];
    uint64_t lamport;
    uint32_t roster;
    uint8_t author_pk[32];
    char author[RF_NAME_MAX + 1];
    uint32_t day;
    char op[16];
    json_t *value; /* owned: a string, or an array of strings for stages/checklist */
    int64_t seq;   /* the server's sequence number; 0 for an event not sent yet */
    int admin;     /* the author is an admin of the roster version named */
};

/* Releases e->value (e may be reused after). */
void rf_ev_clear(struct rf_ev *e);

/* Verifies the signed event p (n bytes, the opened RF_KIND_EVENT plaintext)
 * for case_id against the verified rosters (rosters[i] is version i+1) and
 * fills out (seq 0). RF_ERR_SIGNATURE (signature or case binding),
 * RF_ERR_ROSTER (author not a member of the version named, or no such
 * version), RF_ERR_FORMAT (framing, body or op/value not valid for the case). */
int rf_state_event_verify(struct rf_ev *out, const uint8_t *p, size_t n, const char *case_id,
                          const struct rf_roster *const *rosters, size_t nrosters);

/* Whether op with value is valid on case_id (teamconfig: stages/checklist
 * with an array of names; cases: the nine case ops with a string). */
int rf_state_op_valid(const char *case_id, const char *op, const json_t *value);

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
