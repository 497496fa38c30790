/*
 * evop.h - the case-event operations: one row each in one table that the
 * CLI (cli.c: `refuge help` and the dispatch), the event builder
 * (cmd_event.c: usage, argument, the checks before signing, what it prints;
 * the desk through rf_event_apply) and the state machine (state.c: which op
 * is valid on which case, which register it writes) all read.
 *
 * An op's name is both the command and the "op" of the signed event's body
 * (lib/event.h; the wire format does not depend on this table's layout):
 *   case ops: `refuge NAME CASE ARG` on a case;
 *   team ops: `refuge team NAME LIST` on the reserved case "teamconfig".
 *
 * Adding an op is one row in evop.c's table, plus, when it writes a register
 * no op wrote before, that register's state rule in state.c (registers[]);
 * docs/developers.md "Adding a case-event operation" walks through one.
 * tests/unit/evop_test.c walks the table: every row's example parses, is
 * valid, signs, verifies and lands in its register.
 *
 * Invariants of the table (asserted by evop_test): names are unique and
 * shorter than struct rf_ev's op field; every case op's register has a
 * state rule whose shape fits the op's write; every example is valid.
 */
#ifndef RF_CLIENT_EVOP_H
#define RF_CLIENT_EVOP_H

#include "lib/buf.h"
#include "lib/keyfile.h"
#include "lib/roster.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct rf_local;

enum rf_evop_scope {
    RF_EVOP_CASE, /* on a case */
    RF_EVOP_TEAM, /* on the reserved case "teamconfig", by an admin */
};

/* What the op does to its register (state.c's rule for the register says
 * how the register shows in the state). */
enum rf_evop_write {
    RF_EVOP_PUT,    /* the register takes the value (stage, due) */
    RF_EVOP_ADD,    /* the register's entry for the value turns on (assignee:NAME) */
    RF_EVOP_REMOVE, /* ... turns off */
    RF_EVOP_APPEND, /* the value is added to the register's log (notes) */
};

/* What an argument is checked against before it is signed: the team's
 * settings, the roster it is sealed to, and the case as this computer has
 * it (for the current stage). */
struct rf_evop_env {
    const json_t *team; /* {"stages": [...], "checklist": [...]} (rf_local_team) */
    const struct rf_roster *ro;
    struct rf_local *l; /* NULL: the case is taken as new (tests) */
    const char *case_id;
};

struct rf_evop {
    const char *name; /* the command and the event's "op" */
    enum rf_evop_scope scope;
    const char *arg;     /* the argument in the usage line: STAGE, YYYY-MM-DD|none */
    const char *summary; /* its line in `refuge help` */
    const char *help;    /* what `refuge NAME --help` explains */
    const char *done;    /* after the change: `Case C: DONE "value"` */
    int echo;            /* 1: the value is shown after done (not a note's text) */
    const char *example; /* an argument valid with the default team and a roster
                          * holding a member named "Vera" (tests, docs) */
    int words;           /* 1: exactly one argument; 0: one or more, joined by spaces */
    /* The argument -> the event's value (a new reference), NULL when it is
     * not one (not UTF-8, an empty list item). */
    json_t *(*parse)(const char *arg);
    /* Whether value is a valid value of the op: before signing, and for
     * every event received (rf_state_op_valid). */
    int (*valid)(const json_t *value);
    /* Checks the argument against the team, the roster and the case before
     * anything is signed; says why not on stderr and returns -1. Sets
     * *schedule: 1 the case's deletion is to be scheduled, 0 cancelled, -1
     * neither (stage). NULL: nothing to check. */
    int (*admit)(const struct rf_evop_env *env, const char *arg, int *schedule);
    const char *reg; /* the register it changes (state.c registers[], team_registers[]) */
    enum rf_evop_write write;
    const char *word; /* the desk's msgid for the op in a case's history */
    int form;         /* 1: the desk's event form may make it (POST /case/ID/event) */
};

/* The table, in the order `refuge help` lists the case ops. */
extern const struct rf_evop rf_evops[];
extern const size_t rf_evops_n;

/* The op named name (any scope), or NULL. */
const struct rf_evop *rf_evop_find(const char *name);
/* The op named name in scope, or NULL. */
const struct rf_evop *rf_evop_in(enum rf_evop_scope scope, const char *name);

/* The signed event (lib/event.h) of op o with value on case_id, appended to
 * signed_ev: the body {"v":1,"id","lamport","roster","author","day","op",
 * "value"} (docs/protocol.md "Case events") with a random id, signed by k. */
int rf_evop_sign(struct rf_buf *signed_ev, const struct rf_staff_keys *k, const char *case_id,
                 uint64_t lamport, uint32_t roster, uint32_t day, const struct rf_evop *o,
                 const json_t *value);

/* Whether s is 1..max bytes without control characters (a name, a tag). */
int rf_evop_name_ok(const char *s, size_t max);

#endif
