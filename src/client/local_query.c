/*
 * local_query.c - what commands ask of the local case database, built on
 * local.c's public functions only: the team's configuration and a case's
 * lamport clock (the next event's is one more).
 */
#include "client/local.h"
#include "client/state.h"
#include "lib/err.h"

int rf_local_team(struct rf_local *l, json_t **out)
{
    int rc = rf_local_summary(l, RF_STATE_TEAMCONFIG, out);
    if (rc == RF_ERR_NOT_FOUND) {
        *out = rf_state_team(NULL, 0);
        rc = *out ? 0 : RF_ERR_NOMEM;
    }
    return rc;
}

int rf_local_lamport(struct rf_local *l, const char *case_id, uint64_t *out)
{
    struct rf_ev *ev = NULL;
    size_t n = 0;
    *out = 0;
    int rc = rf_local_events(l, case_id, &ev, &n, NULL);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (ev[i].lamport > *out)
            *out = ev[i].lamport;
    rf_local_events_free(ev, n);
    return rc;
}
