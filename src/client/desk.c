/*
 * desk.c - `refuge desk`: the caseworker's web UI, served by this client on
 * 127.0.0.1 only, decrypting only here (docs/desk.md).
 *
 * Lifecycle: the key file is unlocked once (passphrase at the terminal, or
 * REFUGE_PASSPHRASE_FILE), the cache and the local case database opened, a
 * libmicrohttpd daemon bound to 127.0.0.1:PORT (never another address), and
 * the URL with a one-time token printed. Every request goes through the gate
 * (desk_guard.c) before anything else. One mutex serialises everything that
 * touches the keys, the cache and the network handle: the request handler
 * (one MHD thread) and the background sync thread.
 *
 * Locking: after --idle-lock minutes without a request (the background
 * sync does not count), or on the Lock
 * button, the desk forgets its keys (rf_ctx_close: sodium_memzero +
 * sodium_free of the key material, the cache closed), ends the session and
 * EXITS. The simplest honest behaviour: a locked desk holds nothing, so
 * nothing is left to ask a passphrase for; the page says so, the terminal
 * says so, and `refuge desk` starts a new one with a new token.
 *
 * Memory: a rendered page holds plaintext. It is rendered into one
 * sodium_malloc buffer kept for the life of the desk (reset, so wiped,
 * between requests), and handed to MHD as a malloc copy that is wiped
 * before it is freed. Template variables of a page are in secure memory.
 */
#include "client/desk_guard.h"
#include "client/desk_priv.h"
#include "client/evop.h"
#include "client/keyring.h"
#include "client/out.h"
#include "client/state.h"
#include "client/trust.h"
#include "lib/err.h"
#include "lib/invite.h"

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DESK_POST_MAX (80 * 1024)  /* a form: a reply of 64 KiB, escaped, and small fields */
#define DESK_FIELD_MAX (64 * 1024) /* one field */
#define DESK_PAGE_MAX (32u << 20)  /* one rendered page */
#define DESK_IDLE_DEFAULT 15       /* minutes */
#define DESK_SYNC_DEFAULT 60       /* seconds */
#define RF_MSGID(s) (s)

struct desk {
    struct rf_ctx x;
    struct rf_desk_guard g;
    pthread_mutex_t mu; /* x, g, page, last_* */
    pthread_cond_t cv;  /* stop */
    struct rf_buf page;
    time_t last_active, last_sync;
    unsigned idle_secs, sync_every;
    int stop;        /* 1: lock requested (button), 2: idle */
    int sync_failed; /* the last sync failed */
};

/* One connection's request: the form of a POST, read by MHD's post
 * processor into bounded buffers (text in secure memory). */
struct conn {
    struct MHD_PostProcessor *pp;
    struct rf_buf csrf, text, stage, back, op, value;
    struct rf_buf name, fp, role, confirm; /* the team's forms (desk_team.c) */
    size_t total;
    int too_big, started, lock_after;
};

/* ------------------------------------------------------------ responses */

static const struct {
    const char *name, *value;
} security_headers[] = {
    /* same-origin, not no-referrer: under no-referrer Chromium sends
     * "Origin: null" with a form POST, and the gate wants to see its own
     * origin there; a referrer never leaves the desk either way */
    {"Referrer-Policy", "same-origin"},
    {"Cache-Control", "no-store"},
    {"X-Content-Type-Options", "nosniff"},
    {"X-Frame-Options", "DENY"},
    {"Cross-Origin-Opener-Policy", "same-origin"},
    {"Cross-Origin-Resource-Policy", "same-origin"},
    {"Permissions-Policy", "interest-cohort=(), camera=(), microphone=(), geolocation=()"},
};

static void wipe_free(void *p)
{
    if (p == NULL)
        return;
    uint8_t *base = (uint8_t *)p - sizeof(size_t);
    size_t n;
    memcpy(&n, base, sizeof(n));
    sodium_memzero(base, n + sizeof(size_t));
    free(base);
}

static struct MHD_Response *response_of(const uint8_t *p, size_t n)
{
    uint8_t *base = malloc(n + sizeof(size_t) + 1);
    if (base == NULL)
        return NULL;
    memcpy(base, &n, sizeof(n));
    if (n > 0)
        memcpy(base + sizeof(size_t), p, n);
    struct MHD_Response *r =
        MHD_create_response_from_buffer_with_free_callback(n, base + sizeof(size_t), wipe_free);
    if (r == NULL)
        wipe_free(base + sizeof(size_t));
    return r;
}

struct MHD_Response *rf_desk_response_of(const uint8_t *p, size_t n)
{
    return response_of(p, n);
}

enum MHD_Result rf_desk_send(struct MHD_Connection *c, struct MHD_Response *r, unsigned status,
                             const char *type, const char *csp)
{
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Security-Policy", csp ? csp : rf_desk_csp());
    for (size_t i = 0; i < sizeof(security_headers) / sizeof(security_headers[0]); i++)
        MHD_add_response_header(r, security_headers[i].name, security_headers[i].value);
    if (type)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_resp(struct MHD_Connection *c, struct MHD_Response *r, unsigned status,
                                 int html)
{
    return rf_desk_send(c, r, status, html ? "text/html; charset=utf-8" : NULL, NULL);
}

/* Renders page into d->page and queues it. */
static enum MHD_Result send_page(struct desk *d, struct MHD_Connection *c, unsigned status,
                                 enum rf_lang lang, const char *page, const struct rf_tvars *v)
{
    rf_buf_reset(&d->page);
    int rc = rf_desk_render(&d->page, lang, page, v);
    struct MHD_Response *r = NULL;
    if (rc == 0)
        r = response_of(d->page.data, d->page.len);
    rf_buf_reset(&d->page);
    if (r == NULL) {
        static const char oops[] = "internal error";
        r = MHD_create_response_from_buffer(sizeof(oops) - 1, (void *)oops, MHD_RESPMEM_PERSISTENT);
        return send_resp(c, r, MHD_HTTP_INTERNAL_SERVER_ERROR, 0);
    }
    return send_resp(c, r, status, 1);
}

static enum MHD_Result send_redirect(struct MHD_Connection *c, const char *location,
                                     const char *cookie)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
    if (cookie)
        MHD_add_response_header(r, MHD_HTTP_HEADER_SET_COOKIE, cookie);
    return send_resp(c, r, MHD_HTTP_SEE_OTHER, 0);
}

/* ------------------------------------------------------------- requests */

static enum rf_lang lang_of(struct MHD_Connection *c)
{
    const char *q = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "lang");
    const char *a = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Accept-Language");
    for (int pass = 0; pass < 2; pass++) {
        const char *s = pass == 0 ? q : a;
        for (int i = 0; s && i < RF_LANG_COUNT; i++)
            if (strncasecmp(s, rf_desk_lang_codes[i], 2) == 0 &&
                (s[2] == 0 || s[2] == '-' || s[2] == ',' || s[2] == ';'))
                return (enum rf_lang)i;
    }
    return RF_LANG_EN;
}

/* Messages shown after a POST redirects back: ?m=KEY, looked up here, so
 * nothing from the URL reaches the page but a fixed catalogue text. */
static const struct {
    const char *key, *msgid;
    int ok;
} flashes[] = {
    {"sent", RF_MSGID("desk.reply_sent"), 1},
    {"notsent", RF_MSGID("desk.reply_failed"), 0},
    {"empty", RF_MSGID("desk.reply_empty"), 0},
    {"staged", RF_MSGID("desk.stage_changed"), 1},
    {"queued", RF_MSGID("desk.stage_queued"), 1},
    {"notstaged", RF_MSGID("desk.stage_failed"), 0},
    {"synced", RF_MSGID("desk.synced"), 1},
    {"syncfail", RF_MSGID("desk.sync_failed"), 0},
    {"saved", RF_MSGID("desk.saved"), 1},
    {"savedq", RF_MSGID("desk.saved_queued"), 1},
    {"notsaved", RF_MSGID("desk.not_saved"), 0},
    {"approved", RF_MSGID("desk.team_approved"), 1},
    {"removed", RF_MSGID("desk.team_removed"), 1},
    {"notapproved", RF_MSGID("desk.team_not_approved"), 0},
    {"notremoved", RF_MSGID("desk.team_not_removed"), 0},
    {"notinvited", RF_MSGID("desk.team_not_invited"), 0},
    {"nofp", RF_MSGID("desk.team_no_fp"), 0},
};

/* The variables every page of the session has: csrf, lang, last sync, flash. */
static int common_vars(struct desk *d, struct MHD_Connection *c, enum rf_lang lang,
                       struct rf_tvars *v, const char *back)
{
    int rc = rf_tvars_set(v, "csrf", d->g.csrf);
    if (rc == 0)
        rc = rf_tvars_set(v, "lang", rf_desk_lang_codes[lang]);
    if (rc == 0)
        rc = rf_tvars_set(v, "back", back);
    if (rc == 0 && d->last_sync) {
        char s[32];
        struct tm tm;
        if (localtime_r(&d->last_sync, &tm) && strftime(s, sizeof(s), "%Y-%m-%d %H:%M:%S", &tm))
            rc = rf_tvars_set(v, "last_sync", s);
    }
    const char *m = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "m");
    for (size_t i = 0; rc == 0 && m && i < sizeof(flashes) / sizeof(flashes[0]); i++)
        if (strcmp(m, flashes[i].key) == 0)
            rc = rf_tvars_set(v, flashes[i].ok ? "flash_ok" : "flash_err",
                              rf_desk_tr(lang, flashes[i].msgid));
    return rc;
}

static enum MHD_Result error_page(struct desk *d, struct MHD_Connection *c, enum rf_lang lang,
                                  unsigned status, const char *title, const char *message)
{
    struct rf_tvars *v = rf_tvars_new();
    if (v == NULL || common_vars(d, c, lang, v, "/") != 0 ||
        rf_tvars_set(v, "title", rf_desk_tr(lang, title)) != 0 ||
        rf_tvars_set(v, "message", rf_desk_tr(lang, message)) != 0) {
        rf_tvars_free(v);
        return MHD_NO;
    }
    enum MHD_Result r = send_page(d, c, status, lang, "error", v);
    rf_tvars_free(v);
    return r;
}

/* A non-empty GET argument, or NULL. */
static const char *arg(struct MHD_Connection *c, const char *name)
{
    const char *s = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
    return s && s[0] ? s : NULL;
}

/* The board: the change mark it shows (board.js compares it with
 * /board/changes) and the CSP that lets its one script run (desk_live.c). */
static enum MHD_Result send_board(struct desk *d, struct MHD_Connection *c, enum rf_lang lang,
                                  struct rf_tvars *v)
{
    char mark[80];
    if (rf_desk_live_mark(&d->x, mark, sizeof(mark)) != 0 || rf_tvars_set(v, "mark", mark) != 0)
        return send_page(d, c, MHD_HTTP_OK, lang, "board", v);
    rf_buf_reset(&d->page);
    int rc = rf_desk_render(&d->page, lang, "board", v);
    struct MHD_Response *r = rc == 0 ? response_of(d->page.data, d->page.len) : NULL;
    rf_buf_reset(&d->page);
    if (r == NULL)
        return send_page(d, c, MHD_HTTP_OK, lang, "board", v); /* its error path */
    return rf_desk_send(c, r, MHD_HTTP_OK, "text/html; charset=utf-8", rf_desk_live_csp(d->g.port));
}

static enum MHD_Result board(struct desk *d, struct MHD_Connection *c, enum rf_lang lang)
{
    struct rf_desk_query q = {arg(c, "stage"), arg(c, "assignee"), arg(c, "tag"), arg(c, "q"),
                              arg(c, "page")};
    struct rf_tvars *v = rf_tvars_new_secure();
    int rc = v ? common_vars(d, c, lang, v, "/") : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_desk_board(&d->x, &q, v);
    enum MHD_Result r;
    if (rc == RF_ERR_FORMAT) /* search text not UTF-8 */
        r = error_page(d, c, lang, MHD_HTTP_BAD_REQUEST, RF_MSGID("desk.error"),
                       RF_MSGID("desk.error_hint"));
    else if (rc != 0) {
        rf_cmd_errc("desk: cannot read the local case database", rc);
        r = error_page(d, c, lang, MHD_HTTP_INTERNAL_SERVER_ERROR, RF_MSGID("desk.error"),
                       RF_MSGID("desk.error_hint"));
    } else
        r = send_board(d, c, lang, v);
    rf_tvars_free(v);
    return r;
}

static enum MHD_Result case_page(struct desk *d, struct MHD_Connection *c, enum rf_lang lang,
                                 const char *cid)
{
    char back[64];
    snprintf(back, sizeof(back), "/case/%s", cid);
    struct rf_tvars *v = rf_tvars_new_secure();
    int rc = v ? common_vars(d, c, lang, v, back) : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_desk_case(&d->x, cid, lang, v);
    enum MHD_Result r;
    if (rc == RF_ERR_NOT_FOUND)
        r = error_page(d, c, lang, MHD_HTTP_NOT_FOUND, RF_MSGID("desk.not_found"),
                       RF_MSGID("desk.not_found_hint"));
    else if (rc != 0) {
        rf_cmd_errc("desk: cannot read the case", rc);
        r = error_page(d, c, lang, MHD_HTTP_INTERNAL_SERVER_ERROR, RF_MSGID("desk.error"),
                       RF_MSGID("desk.error_hint"));
    } else
        r = send_page(d, c, MHD_HTTP_OK, lang, "case", v);
    rf_tvars_free(v);
    return r;
}

static enum MHD_Result back_to(struct MHD_Connection *c, const char *path, const char *flash,
                               enum rf_lang lang)
{
    char loc[128];
    snprintf(loc, sizeof(loc), "%s?lang=%s&m=%s", path, rf_desk_lang_codes[lang], flash);
    return send_redirect(c, loc, NULL);
}

static int do_sync(struct desk *d)
{
    int rc = rf_sync_run(&d->x, 1, RF_TRUST_QUIET_NET, NULL);
    d->sync_failed = rc != 0;
    if (rc == 0)
        d->last_sync = time(NULL);
    return rc;
}

/* "/case/ID" or "/case/ID/ACTION": *cid (a valid case id) and *action
 * ("" for the page). 0 if path is not of that form. */
static int case_path(const char *path, char cid[RF_CASE_ID_LEN + 1], const char **action)
{
    if (strncmp(path, "/case/", 6) != 0)
        return 0;
    const char *p = path + 6;
    size_t n = strcspn(p, "/");
    if (n == 0 || n > RF_CASE_ID_LEN)
        return 0;
    memcpy(cid, p, n);
    cid[n] = 0;
    if (!rf_cmd_case_ok(cid) || strcmp(cid, RF_STATE_TEAMCONFIG) == 0)
        return 0;
    *action = p[n] == '/' ? p + n + 1 : "";
    return p[n] == 0 || p[n] == '/';
}

static const char *field(struct rf_buf *b)
{
    if (rf_buf_cstr(b) != 0)
        return NULL;
    return b->data ? (const char *)b->data : "";
}

/* /case/CID/file/... (desk_files.c), with the session's common variables. */
static enum MHD_Result file_route(struct desk *d, struct MHD_Connection *c, enum rf_lang lang,
                                  const char *cid, const char *action, int is_post)
{
    char back[64];
    snprintf(back, sizeof(back), "/case/%s", cid);
    struct rf_tvars *v = rf_tvars_new_secure();
    if (v == NULL || common_vars(d, c, lang, v, back) != 0) {
        rf_tvars_free(v);
        return MHD_NO;
    }
    struct rf_desk_fctx f = {&d->x, c, lang, v, &d->page, &d->mu, &d->last_active};
    enum MHD_Result r = rf_desk_file(&f, cid, action, is_post);
    rf_tvars_free(v);
    return r;
}

/* ------------------------------------------------------------ the team */

static enum MHD_Result team_page(struct desk *d, struct MHD_Connection *c, enum rf_lang lang,
                                 const char *invite, const char *first_fp, int invite_admin)
{
    struct rf_desk_syncinfo si = {d->sync_failed, d->sync_every};
    int admin = 0;
    struct rf_tvars *v = rf_tvars_new_secure();
    int rc = v ? common_vars(d, c, lang, v, "/team") : RF_ERR_NOMEM;
    if (rc == 0)
        rc = rf_desk_team(&d->x, lang, &si, v, &admin);
    if (rc == 0 && invite) {
        rc = rf_tvars_set(v, "invite", invite);
        if (rc == 0)
            rc = rf_tvars_set(v, "invite_fp", first_fp);
        if (rc == 0)
            rc = rf_tvars_set(v, "server", d->x.h.server);
        if (rc == 0 && invite_admin)
            rc = rf_tvars_flag(v, "invite_admin");
    }
    enum MHD_Result r;
    if (rc != 0) {
        rf_cmd_errc("desk: cannot show the team", rc);
        r = error_page(d, c, lang, MHD_HTTP_INTERNAL_SERVER_ERROR, RF_MSGID("desk.error"),
                       RF_MSGID("desk.error_hint"));
    } else
        r = send_page(d, c, MHD_HTTP_OK, lang, "team", v);
    rf_tvars_free(v);
    return r;
}

/* POST /team/invite | approve | remove: admins only (checked here against
 * the verified roster, and again by the CLI's functions). */
static enum MHD_Result team_post(struct desk *d, struct MHD_Connection *c, struct conn *cn,
                                 const char *action, enum rf_lang lang)
{
    int admin = rf_desk_team_is_admin(&d->x);
    if (admin < 0)
        return error_page(d, c, lang, MHD_HTTP_SERVICE_UNAVAILABLE, RF_MSGID("desk.error"),
                          RF_MSGID("desk.team_no_roster"));
    if (admin == 0) {
        fprintf(stderr, "refuge: desk: REFUSED a team change: you are not an admin of the "
                        "team's verified roster\n");
        return error_page(d, c, lang, MHD_HTTP_FORBIDDEN, RF_MSGID("desk.team_admins_only"),
                          RF_MSGID("desk.team_admins_only_hint"));
    }
    const char *name = field(&cn->name), *fp = field(&cn->fp), *role = field(&cn->role);
    int as_admin = role && strcmp(role, "admin") == 0;
    if (strcmp(action, "invite") == 0) {
        char inv[RF_INVITE_CHARS + 1], first[64];
        if (rf_staff_invite(&d->x, as_admin, inv, sizeof(inv), first, sizeof(first)) != 0)
            return back_to(c, "/team", "notinvited", lang);
        enum MHD_Result r = team_page(d, c, lang, inv, first, as_admin);
        sodium_memzero(inv, sizeof(inv));
        return r;
    }
    if (!name || name[0] == 0 || strlen(name) > RF_NAME_MAX)
        return error_page(d, c, lang, MHD_HTTP_BAD_REQUEST, RF_MSGID("desk.error"),
                          RF_MSGID("desk.error_hint"));
    unsigned version = 0, count = 0;
    if (strcmp(action, "approve") == 0) {
        if (!fp || strspn(fp, " ") == strlen(fp))
            return back_to(c, "/team", "nofp", lang);
        int rc = rf_staff_approve(&d->x, name, fp, as_admin, &version, &count);
        if (rc == RF_STAFF_MISMATCH) {
            struct rf_tvars *v = rf_tvars_new_secure();
            int vr = v ? common_vars(d, c, lang, v, "/team") : RF_ERR_NOMEM;
            if (vr == 0)
                vr = rf_tvars_set(v, "name", name);
            if (vr == 0)
                vr = rf_tvars_set(v, "given", fp);
            if (vr == 0)
                vr = rf_desk_team_fingerprints(&d->x, name, v);
            enum MHD_Result r =
                vr == 0 ? send_page(d, c, MHD_HTTP_CONFLICT, lang, "team_mismatch", v) : MHD_NO;
            rf_tvars_free(v);
            return r;
        }
        return back_to(c, "/team", rc == 0 ? "approved" : "notapproved", lang);
    }
    if (strcmp(action, "remove") == 0) {
        const char *confirm = field(&cn->confirm);
        if (!confirm || strcmp(confirm, "yes") != 0) { /* ask first */
            struct rf_tvars *v = rf_tvars_new();
            int vr = v ? common_vars(d, c, lang, v, "/team") : RF_ERR_NOMEM;
            if (vr == 0)
                vr = rf_tvars_set(v, "name", name);
            enum MHD_Result r =
                vr == 0 ? send_page(d, c, MHD_HTTP_OK, lang, "team_remove", v) : MHD_NO;
            rf_tvars_free(v);
            return r;
        }
        int rc = rf_staff_remove(&d->x, name, &version, &count);
        return back_to(c, "/team", rc == 0 ? "removed" : "notremoved", lang);
    }
    return error_page(d, c, lang, MHD_HTTP_NOT_FOUND, RF_MSGID("desk.not_found"),
                      RF_MSGID("desk.not_found_hint"));
}

static enum MHD_Result post_action(struct desk *d, struct MHD_Connection *c, struct conn *cn,
                                   const char *path, enum rf_lang lang)
{
    char cid[RF_CASE_ID_LEN + 1];
    const char *action;
    if (strcmp(path, "/lock") == 0) {
        cn->lock_after = 1;
        rf_desk_guard_end(&d->g); /* the cookie is dead from now on, before the exit */
        struct rf_tvars *v = rf_tvars_new();
        enum MHD_Result r = v ? send_page(d, c, MHD_HTTP_OK, lang, "locked", v) : MHD_NO;
        rf_tvars_free(v);
        return r;
    }
    if (strcmp(path, "/sync") == 0) {
        const char *back = field(&cn->back);
        char b[64] = "/", bcid[RF_CASE_ID_LEN + 1];
        const char *act;
        if (back && case_path(back, bcid, &act) && act[0] == 0)
            snprintf(b, sizeof(b), "/case/%s", bcid);
        else if (back && strcmp(back, "/team") == 0)
            snprintf(b, sizeof(b), "/team");
        return back_to(c, b, do_sync(d) == 0 ? "synced" : "syncfail", lang);
    }
    if (strncmp(path, "/team/", 6) == 0)
        return team_post(d, c, cn, path + 6, lang);
    if (!case_path(path, cid, &action) || action[0] == 0)
        return error_page(d, c, lang, MHD_HTTP_NOT_FOUND, RF_MSGID("desk.not_found"),
                          RF_MSGID("desk.not_found_hint"));
    if (strncmp(action, "file/", 5) == 0)
        return file_route(d, c, lang, cid, action, 1);
    char page[64];
    snprintf(page, sizeof(page), "/case/%s", cid);
    if (strcmp(action, "reply") == 0) {
        const char *text = field(&cn->text);
        long long seq = 0;
        int rc = text ? rf_reply_send(&d->x, cid, (const uint8_t *)text, strlen(text), &seq)
                      : RF_ERR_INVALID;
        if (rc == 0)
            d->last_sync = time(NULL);
        return back_to(c, page,
                       rc == 0                ? "sent"
                       : rc == RF_ERR_INVALID ? "empty"
                                              : "notsent",
                       lang);
    }
    if (strcmp(action, "stage") == 0) {
        const char *stage = field(&cn->stage);
        int queued = 0;
        int rc =
            stage && stage[0] ? rf_event_apply(&d->x, cid, "stage", stage, &queued) : RF_EXIT_USAGE;
        return back_to(c, page, rc != 0 ? "notstaged" : queued ? "queued" : "staged", lang);
    }
    if (strcmp(action, "event") == 0) {
        const char *op = field(&cn->op), *value = field(&cn->value);
        /* the ops the event form may make (evop.h's form; stage has its own form) */
        const struct rf_evop *o = op ? rf_evop_in(RF_EVOP_CASE, op) : NULL;
        int queued = 0, rc = RF_EXIT_USAGE;
        if (o && o->form && value && value[0])
            rc = rf_event_apply(&d->x, cid, op, value, &queued);
        return back_to(c, page, rc != 0 ? "notsaved" : queued ? "savedq" : "saved", lang);
    }
    return error_page(d, c, lang, MHD_HTTP_NOT_FOUND, RF_MSGID("desk.not_found"),
                      RF_MSGID("desk.not_found_hint"));
}

static enum MHD_Result refuse(struct desk *d, struct MHD_Connection *c, enum rf_desk_verdict why)
{
    /* loud on the terminal: a refusal here is someone else trying */
    fprintf(stderr, "refuge: desk: REFUSED a request: %s\n", rf_desk_verdict_str(why));
    struct rf_tvars *v = rf_tvars_new();
    enum MHD_Result r = v ? send_page(d, c, MHD_HTTP_FORBIDDEN, lang_of(c), "refused", v) : MHD_NO;
    rf_tvars_free(v);
    return r;
}

static enum MHD_Result on_post_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                     const char *filename, const char *content_type,
                                     const char *transfer_encoding, const char *data, uint64_t off,
                                     size_t size)
{
    (void)kind, (void)filename, (void)content_type, (void)transfer_encoding, (void)off;
    struct conn *cn = cls;
    struct rf_buf *b = NULL;
    if (strcmp(key, "csrf") == 0)
        b = &cn->csrf;
    else if (strcmp(key, "text") == 0)
        b = &cn->text;
    else if (strcmp(key, "stage") == 0)
        b = &cn->stage;
    else if (strcmp(key, "back") == 0)
        b = &cn->back;
    else if (strcmp(key, "op") == 0)
        b = &cn->op;
    else if (strcmp(key, "value") == 0)
        b = &cn->value;
    else if (strcmp(key, "name") == 0)
        b = &cn->name;
    else if (strcmp(key, "fingerprint") == 0)
        b = &cn->fp;
    else if (strcmp(key, "role") == 0)
        b = &cn->role;
    else if (strcmp(key, "confirm") == 0)
        b = &cn->confirm;
    if (b == NULL || size == 0)
        return MHD_YES; /* unknown fields are ignored */
    if (rf_buf_put(b, data, size) != 0) {
        cn->too_big = 1;
        return MHD_NO;
    }
    return MHD_YES;
}

static struct conn *conn_new(void)
{
    struct conn *cn = calloc(1, sizeof(*cn));
    if (cn == NULL)
        return NULL;
    rf_buf_init_secure(&cn->csrf, 128);
    rf_buf_init_secure(&cn->text, DESK_FIELD_MAX + 1);
    rf_buf_init_secure(&cn->stage, RF_STATE_NAME_MAX * 4 + 1);
    rf_buf_init(&cn->back, 128);
    rf_buf_init(&cn->op, 16);
    rf_buf_init_secure(&cn->value, DESK_FIELD_MAX + 1);
    rf_buf_init(&cn->name, RF_NAME_MAX + 1);
    rf_buf_init(&cn->fp, 256);
    rf_buf_init(&cn->role, 16);
    rf_buf_init(&cn->confirm, 16);
    return cn;
}

static void conn_free(struct conn *cn)
{
    if (cn == NULL)
        return;
    if (cn->pp)
        MHD_destroy_post_processor(cn->pp);
    rf_buf_free(&cn->csrf);
    rf_buf_free(&cn->text);
    rf_buf_free(&cn->stage);
    rf_buf_free(&cn->back);
    rf_buf_free(&cn->op);
    rf_buf_free(&cn->value);
    rf_buf_free(&cn->name);
    rf_buf_free(&cn->fp);
    rf_buf_free(&cn->role);
    rf_buf_free(&cn->confirm);
    free(cn);
}

static struct rf_desk_req guard_req(struct MHD_Connection *c, const char *method, const char *url,
                                    const char *csrf)
{
    struct rf_desk_req q = {
        .method = method,
        .path = url,
        .host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
        .origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin"),
        .cookie = MHD_lookup_connection_value(c, MHD_COOKIE_KIND, RF_DESK_COOKIE),
        .token = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "t"),
        .csrf = csrf,
    };
    return q;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    (void)version;
    struct desk *d = cls;
    struct conn *cn = *con_cls;
    int is_post = strcmp(method, "POST") == 0;
    if (cn == NULL) {
        cn = conn_new();
        if (cn == NULL)
            return MHD_NO;
        *con_cls = cn;
        if (is_post) {
            /* Host, Origin and the session are checked before a byte of the
             * body is read; CSRF once the form is in. */
            pthread_mutex_lock(&d->mu);
            struct rf_desk_req q = guard_req(c, "GET", url, NULL);
            enum rf_desk_verdict v =
                strcmp(url, "/open") == 0 ? RF_DESK_DENY_TOKEN : rf_desk_guard_check(&d->g, &q);
            pthread_mutex_unlock(&d->mu);
            if (v != RF_DESK_ALLOW) {
                cn->started = 1;
                pthread_mutex_lock(&d->mu);
                enum MHD_Result r = refuse(d, c, v);
                pthread_mutex_unlock(&d->mu);
                return r;
            }
            cn->pp = MHD_create_post_processor(c, 16 * 1024, on_post_field, cn);
            if (cn->pp == NULL) { /* not a urlencoded or multipart form */
                cn->started = 1;
                pthread_mutex_lock(&d->mu);
                enum MHD_Result r = refuse(d, c, RF_DESK_DENY_CSRF);
                pthread_mutex_unlock(&d->mu);
                return r;
            }
            return MHD_YES;
        }
    }
    if (cn->started) { /* answered already; drain */
        *upload_size = 0;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        cn->total += *upload_size;
        if (cn->pp == NULL || cn->total > DESK_POST_MAX ||
            (!cn->too_big && MHD_post_process(cn->pp, upload, *upload_size) != MHD_YES))
            cn->too_big = 1;
        *upload_size = 0;
        return MHD_YES;
    }
    cn->started = 1;
    pthread_mutex_lock(&d->mu);
    enum MHD_Result ret;
    enum rf_lang lang = lang_of(c);
    struct rf_desk_req q = guard_req(c, method, url, is_post ? field(&cn->csrf) : NULL);
    enum rf_desk_verdict v = rf_desk_guard_check(&d->g, &q);
    if (v == RF_DESK_REDEEM) {
        char cookie[128], loc[32];
        snprintf(cookie, sizeof(cookie), "%s=%s; Path=/; HttpOnly; SameSite=Strict", RF_DESK_COOKIE,
                 d->g.cookie);
        snprintf(loc, sizeof(loc), "/?lang=%s", rf_desk_lang_codes[lang]);
        d->last_active = time(NULL);
        ret = send_redirect(c, loc, cookie);
        sodium_memzero(cookie, sizeof(cookie));
    } else if (v != RF_DESK_ALLOW) {
        ret = refuse(d, c, v);
    } else {
        if (!rf_desk_live_passive(c, method, url))
            d->last_active = time(NULL);
        char cid[RF_CASE_ID_LEN + 1];
        const char *action;
        if (is_post && cn->too_big)
            ret = error_page(d, c, lang, MHD_HTTP_CONTENT_TOO_LARGE, RF_MSGID("desk.error"),
                             RF_MSGID("desk.reply_failed"));
        else if (is_post)
            ret = post_action(d, c, cn, url, lang);
        else if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
            ret = error_page(d, c, lang, MHD_HTTP_METHOD_NOT_ALLOWED, RF_MSGID("desk.error"),
                             RF_MSGID("desk.not_found_hint"));
        else if (strcmp(url, "/") == 0)
            ret = board(d, c, lang);
        else if (strcmp(url, "/board/changes") == 0)
            ret = rf_desk_live_changes(&d->x, c);
        else if (strcmp(url, "/board.js") == 0)
            ret = rf_desk_live_script(c);
        else if (strcmp(url, "/team") == 0)
            ret = team_page(d, c, lang, NULL, NULL, 0);
        else if (case_path(url, cid, &action) && action[0] == 0)
            ret = case_page(d, c, lang, cid);
        else if (case_path(url, cid, &action) && strncmp(action, "file/", 5) == 0)
            ret = file_route(d, c, lang, cid, action, 0);
        else
            ret = error_page(d, c, lang, MHD_HTTP_NOT_FOUND, RF_MSGID("desk.not_found"),
                             RF_MSGID("desk.not_found_hint"));
    }
    pthread_mutex_unlock(&d->mu);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)c, (void)toe;
    struct desk *d = cls;
    struct conn *cn = *con_cls;
    if (cn && cn->lock_after) {
        pthread_mutex_lock(&d->mu);
        d->stop = 1;
        pthread_cond_broadcast(&d->cv);
        pthread_mutex_unlock(&d->mu);
    }
    conn_free(cn);
    *con_cls = NULL;
}

/* ------------------------------------------------------- sync, lifecycle */

static void *sync_thread(void *arg)
{
    struct desk *d = arg;
    pthread_mutex_lock(&d->mu);
    while (!d->stop) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += d->sync_every;
        while (!d->stop && pthread_cond_timedwait(&d->cv, &d->mu, &until) != ETIMEDOUT)
            ;
        if (!d->stop)
            do_sync(d);
    }
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Opens url with xdg-open when a graphical session seems to be there. */
static void open_browser(const char *url)
{
    if (!getenv("DISPLAY") && !getenv("WAYLAND_DISPLAY"))
        return;
    pid_t pid = fork();
    if (pid == 0) {
        FILE *n1 = freopen("/dev/null", "w", stdout), *n2 = freopen("/dev/null", "w", stderr);
        (void)n1, (void)n2;
        execlp("xdg-open", "xdg-open", url, (char *)NULL);
        _exit(127);
    }
}

static void usage(FILE *f)
{
    fputs("usage: refuge desk [--port N] [--no-open] [--idle-lock MINUTES] [--sync-every SECONDS]\n"
          "\n"
          "The desk: your cases in a web browser, served by this program on 127.0.0.1 only\n"
          "(nothing is decrypted anywhere but on this computer). Unlocks your key file once,\n"
          "then prints a link with a one-time token; open it in your browser. The desk locks\n"
          "(forgets your keys and exits) after MINUTES without use and when you press Lock.\n"
          "  --port N              listen on 127.0.0.1:N (default: a free port)\n"
          "  --no-open             do not open a browser, only print the link\n"
          "  --idle-lock MINUTES   lock after MINUTES idle (default 15; 1 to 1440; or\n"
          "                        seconds with an s: 90s)\n"
          "  --sync-every SECONDS  sync in the background every SECONDS (default 60; 0: never)\n"
          "See docs/desk.md.\n",
          f);
}

static int parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *s == 0 || *end != 0 || *s == '-' || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int rf_cmd_desk(int argc, char **argv)
{
    static const struct option opts[] = {
        {"port", required_argument, NULL, 'p'},
        {"no-open", no_argument, NULL, 'n'},
        {"idle-lock", required_argument, NULL, 'i'},
        {"sync-every", required_argument, NULL, 's'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    unsigned long port = 0, idle = DESK_IDLE_DEFAULT * 60, every = DESK_SYNC_DEFAULT;
    int no_open = 0, ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "p:ni:s:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'p':
            if (parse_uint(optarg, 1, 65535, &port) != 0) {
                rf_cmd_err("bad --port", "give a port number from 1 to 65535");
                return RF_EXIT_USAGE;
            }
            break;
        case 'n':
            no_open = 1;
            break;
        case 'i': {
            /* MINUTES, or Ns for seconds (N from 5) */
            char num[16];
            size_t n = strlen(optarg);
            int secs = n > 1 && n < sizeof(num) && optarg[n - 1] == 's';
            snprintf(num, sizeof(num), "%.*s", (int)(secs ? n - 1 : n), optarg);
            if (n >= sizeof(num) || parse_uint(num, secs ? 5 : 1, secs ? 86400 : 1440, &idle)) {
                rf_cmd_err("bad --idle-lock", "give minutes from 1 to 1440 (or seconds: 30s)");
                return RF_EXIT_USAGE;
            }
            if (!secs)
                idle *= 60;
            break;
        }
        case 's':
            if (parse_uint(optarg, 0, 86400, &every) != 0) {
                rf_cmd_err("bad --sync-every", "give seconds from 0 to 86400");
                return RF_EXIT_USAGE;
            }
            break;
        case 'h':
            usage(stdout);
            return RF_EXIT_OK;
        default:
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }

    static struct desk d; /* static: its address outlives every MHD callback */
    memset(&d, 0, sizeof(d));
    d.idle_secs = (unsigned)idle;
    d.sync_every = (unsigned)every;
    pthread_mutex_init(&d.mu, NULL);
    pthread_cond_init(&d.cv, NULL);
    rf_buf_init_secure(&d.page, DESK_PAGE_MAX);
    int ret = RF_EXIT_FAIL;
    struct MHD_Daemon *mhd = NULL;
    pthread_t syncer;
    int have_syncer = 0;
    if (rf_ctx_open(&d.x, 1) != 0)
        goto out;

    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK); /* 127.0.0.1, never another address */
    mhd = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, (uint16_t)port, NULL, NULL, handle, &d,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin, MHD_OPTION_CONNECTION_LIMIT, (unsigned)32,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)32, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)60, MHD_OPTION_NOTIFY_COMPLETED, on_completed, &d, MHD_OPTION_END);
    if (mhd == NULL) {
        rf_cmd_err("cannot start the desk",
                   port ? "the port is in use or not allowed; try another --port" : "no free port");
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
    uint16_t bound = info ? info->port : (uint16_t)port;
    pthread_mutex_lock(&d.mu);
    rf_desk_guard_init(&d.g, bound);
    d.last_active = time(NULL);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/open?t=%s", (unsigned)bound, d.g.token);
    pthread_mutex_unlock(&d.mu);
    int in_min = idle % 60 == 0;
    unsigned long shown = in_min ? idle / 60 : idle;
    printf("The desk is ready. Open this link in your browser (it works once):\n\n  %s\n\n"
           "It locks after %lu %s%s without use, or when you press Lock. "
           "Ctrl-C stops it.\n",
           url, shown, in_min ? "minute" : "second", shown == 1 ? "" : "s");
    fflush(stdout);
    if (!no_open)
        open_browser(url);
    sodium_memzero(url, sizeof(url));
    if (every > 0 && pthread_create(&syncer, NULL, sync_thread, &d) == 0)
        have_syncer = 1;

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_mutex_lock(&d.mu);
    while (!d.stop && !interrupted) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&d.cv, &d.mu, &until);
        if (time(NULL) - d.last_active >= (time_t)d.idle_secs)
            d.stop = 2;
    }
    int why = d.stop;
    d.stop = d.stop ? d.stop : 3;
    rf_desk_guard_end(&d.g);
    pthread_cond_broadcast(&d.cv);
    pthread_mutex_unlock(&d.mu);
    if (have_syncer)
        pthread_join(syncer, NULL);
    MHD_stop_daemon(mhd);
    mhd = NULL;
    if (why == 1 || why == 2) /* locked: a key `refuge unlock` kept goes too */
        rf_keyring_drop(&d.x.h);
    if (why == 1)
        puts("The desk is locked (Lock pressed): your keys are forgotten. Run `refuge desk` to "
             "continue.");
    else if (why == 2)
        printf("The desk is locked after %u second%s without use: your keys are forgotten. "
               "Run `refuge desk` to continue.\n",
               d.idle_secs, d.idle_secs == 1 ? "" : "s");
    else
        puts("The desk is stopped: your keys are forgotten.");
    ret = RF_EXIT_OK;
out:
    if (mhd)
        MHD_stop_daemon(mhd);
    rf_ctx_close(&d.x); /* keys wiped (sodium_free), cache closed */
    rf_buf_free(&d.page);
    sodium_memzero(&d.g, sizeof(d.g));
    pthread_cond_destroy(&d.cv);
    pthread_mutex_destroy(&d.mu);
    return ret;
}
