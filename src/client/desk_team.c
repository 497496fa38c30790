/*
 * desk_team.c - the desk's team page (GET /team): the roster this client
 * verified with each member's role and fingerprint (v2, both keys), the
 * caseworkers enrolled on the server and waiting for approval, the audit
 * log's verification result, and the sync status. Turned into template
 * variables for desk/team.html; no HTML here.
 *
 * Everything comes from the CLI's own functions: rf_staff_list (`refuge
 * staff list`), rf_audit_check (`refuge audit verify`, which also moves
 * this client's audit anchor, as the CLI does). The changes (invite,
 * approve, remove) are posted to desk.c, which calls rf_staff_invite /
 * rf_staff_approve / rf_staff_remove: the same roster signing, the same
 * self-check after publishing, the same fingerprint comparison.
 *
 * The approve form does NOT show the fingerprint the server claims for a
 * waiting caseworker: the admin types (or pastes) what the newcomer read
 * out, and the client compares it with the fingerprint of the very keys it
 * would sign into the roster. Showing the server's digits next to the box
 * would invite copying them, which compares nothing.
 */
#include "client/desk_priv.h"
#include "client/trust.h"
#include "lib/audit.h"
#include "lib/err.h"

#include <stdlib.h>
#include <string.h>

#define RF_MSGID(s) (s)

int rf_desk_team_is_admin(struct rf_ctx *x)
{
    struct rf_roster *ro = NULL;
    if (rf_trust_roster(x->n, x->c, x->h.pinned, x->k, &ro, RF_TRUST_QUIET_NET) != 0)
        return -1;
    int i = rf_roster_find(ro, x->k->sign_pk);
    int admin = i >= 0 && ro->members[i].role == RF_ROLE_ADMIN;
    free(ro);
    return admin;
}

int rf_desk_team_fingerprints(struct rf_ctx *x, const char *name, struct rf_tvars *v)
{
    json_t *all = NULL, *s;
    size_t i;
    if (rf_staff_list(x, &all) != RF_EXIT_OK)
        return 0;
    int rc = 0;
    json_array_foreach(json_object_get(all, "staff"), i, s)
    {
        const char *role = json_string_value(json_object_get(s, "role"));
        const char *n = json_string_value(json_object_get(s, "name"));
        if (rc == 0 && role && n && strcmp(role, "pending") == 0 && strcmp(n, name) == 0) {
            struct rf_tvars *it = rf_tvars_item(v, "server_fps");
            rc = it ? rf_tvars_set(it, "fingerprint",
                                   json_string_value(json_object_get(s, "fingerprint")))
                    : RF_ERR_NOMEM;
        }
    }
    json_decref(all);
    return rc;
}

static int roster_vars(struct rf_ctx *x, struct rf_tvars *v, int *admin)
{
    json_t *all = NULL, *s;
    size_t i;
    *admin = 0;
    if (rf_staff_list(x, &all) != RF_EXIT_OK)
        return rf_tvars_flag(v, "no_roster");
    int rc = rf_tvars_set_int(v, "roster_version",
                              json_integer_value(json_object_get(all, "roster_version")));
    if (rc == 0 && !json_is_true(json_object_get(all, "pending_listed")))
        rc = rf_tvars_flag(v, "pending_unknown");
    json_array_foreach(json_object_get(all, "staff"), i, s)
    {
        if (rc != 0)
            break;
        const char *role = json_string_value(json_object_get(s, "role"));
        int pend = role && strcmp(role, "pending") == 0;
        int me = json_is_true(json_object_get(s, "me"));
        struct rf_tvars *it = rf_tvars_item(v, pend ? "pending" : "members");
        if (it == NULL) {
            rc = RF_ERR_NOMEM;
            break;
        }
        rc = rf_tvars_set(it, "name", json_string_value(json_object_get(s, "name")));
        if (rc == 0 && !pend)
            rc = rf_tvars_set(it, "fingerprint",
                              json_string_value(json_object_get(s, "fingerprint")));
        if (rc == 0 && role && strcmp(role, "admin") == 0)
            rc = rf_tvars_flag(it, "admin");
        if (rc == 0 && me)
            rc = rf_tvars_flag(it, "me");
        if (rc == 0 && json_is_true(json_object_get(s, "removed")))
            rc = rf_tvars_flag(it, "removed");
        if (rc == 0 && pend)
            rc = rf_tvars_flag(v, "any_pending");
        if (me && role && strcmp(role, "admin") == 0)
            *admin = 1;
    }
    json_decref(all);
    return rc; /* the items' forms see the page's csrf and lang (scoped lookup) */
}

static int audit_vars(struct rf_ctx *x, enum rf_lang lang, struct rf_tvars *v)
{
    struct rf_audit_result r;
    if (rf_audit_check(x, &r) != RF_EXIT_OK)
        return rf_tvars_flag(v, "audit_unknown");
    if (!r.ok) {
        static const struct {
            enum rf_audit_break what;
            const char *msgid;
        } kinds[] = {
            {RF_AUDIT_MODIFIED, RF_MSGID("desk.audit_modified")},
            {RF_AUDIT_DELETED, RF_MSGID("desk.audit_deleted")},
            {RF_AUDIT_REORDERED, RF_MSGID("desk.audit_reordered")},
            {RF_AUDIT_REWRITTEN, RF_MSGID("desk.audit_rewritten")},
            {RF_AUDIT_UNSIGNED, RF_MSGID("desk.audit_unsigned")},
            {RF_AUDIT_FORGED, RF_MSGID("desk.audit_forged")},
        };
        const char *why = rf_audit_break_str((enum rf_audit_break)r.what);
        for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
            if (kinds[i].what == (enum rf_audit_break)r.what)
                why = rf_desk_tr(lang, kinds[i].msgid);
        int rc = rf_tvars_flag(v, "audit_broken");
        if (rc == 0)
            rc = rf_tvars_set_int(v, "audit_entry", (long long)r.entry);
        if (rc == 0)
            rc = rf_tvars_set(v, "audit_kind", rf_audit_break_str((enum rf_audit_break)r.what));
        if (rc == 0)
            rc = rf_tvars_set(v, "audit_why", why);
        return rc;
    }
    int rc = rf_tvars_flag(v, "audit_ok");
    if (rc == 0)
        rc = rf_tvars_set_int(v, "audit_entries", (long long)r.entries);
    if (rc == 0)
        rc = rf_tvars_set_int(v, "audit_signed", (long long)r.nsig);
    if (rc == 0)
        rc = rf_tvars_set_int(v, "audit_server", (long long)r.nserver);
    if (rc == 0 && r.nlegacy > 0)
        rc = rf_tvars_set_int(v, "audit_legacy", (long long)r.nlegacy);
    return rc;
}

int rf_desk_team(struct rf_ctx *x, enum rf_lang lang, const struct rf_desk_syncinfo *si,
                 struct rf_tvars *v, int *admin)
{
    int rc = roster_vars(x, v, admin);
    if (rc == 0 && *admin)
        rc = rf_tvars_flag(v, "is_admin");
    if (rc == 0)
        rc = audit_vars(x, lang, v);
    if (rc == 0 && si->failed)
        rc = rf_tvars_flag(v, "sync_failed");
    if (rc == 0 && si->every > 0)
        rc = rf_tvars_set_int(v, "sync_every", (long long)si->every);
    if (rc == 0) {
        struct rf_coutbox *ob = NULL;
        size_t n = 0;
        if (rf_cache_outbox_list(x->c, NULL, &ob, &n) == 0 && n > 0)
            rc = rf_tvars_set_int(v, "outbox", (long long)n);
        free(ob);
    }
    return rc;
}
