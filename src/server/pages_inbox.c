/*
 * pages_inbox.c - the person's conversation: GET /inbox (replies, opened
 * with the session's keys; what they sent, as counts only; the intake
 * or compose form) and POST /reply/delete. POST /send is pages_send.c's.
 */
#include "lib/envelope.h"
#include "lib/secmem.h"
#include "lib/err.h"
#include "lib/log.h"
#include "lib/roster.h"
#include "lib/reply.h"
#include "server/intake.h"
#include "server/metrics.h"
#include "server/pages_priv.h"
#include "store/commit.h"
#include "store/store.h"

#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define INBOX_MAX_OBJECTS 1000
#define INBOX_REPLY_CT_MAX (1u << 20) /* bigger replies are not shown */
#define INBOX_REPLY_PLAIN_MAX (256u << 10)

static const char *const month_msgids[12] = {
    RF_MSGID("month.1"), RF_MSGID("month.2"),  RF_MSGID("month.3"),  RF_MSGID("month.4"),
    RF_MSGID("month.5"), RF_MSGID("month.6"),  RF_MSGID("month.7"),  RF_MSGID("month.8"),
    RF_MSGID("month.9"), RF_MSGID("month.10"), RF_MSGID("month.11"), RF_MSGID("month.12"),
};

/* ---------------------------------------------------------------- small helpers */

/* Days since 1970-01-01 -> civil date (H. Hinnant's algorithm). */
static void civil(uint32_t days, int *y, unsigned *m, unsigned *d)
{
    long z = (long)days + 719468;
    long era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long yy = (long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int)(yy + (*m <= 2));
}

static int set_day(struct rf_tvars *v, enum rf_lang lang, uint32_t day)
{
    int y;
    unsigned m, d;
    civil(day, &y, &m, &d);
    int rc = rf_tvars_set_int(v, "d", d);
    if (rc == 0)
        rc = rf_tvars_set(v, "month", rf_tr(lang, month_msgids[(m - 1) % 12]));
    if (rc == 0)
        rc = rf_tvars_set_int(v, "y", y);
    return rc;
}

/* ---------------------------------------------------------------- GET /inbox */

static int sink_buf(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* Opens reply seq with the session's keys into plain (secure). */
static int reply_open(const struct rf_object *o, const struct rf_session_view *view,
                      struct rf_buf *plain)
{
    int fd = -1;
    uint64_t size = 0;
    struct rf_open *op = NULL;
    uint8_t chunk[16384];
    int rc = rf_store_object_open(rf_pages_srv->store, o->seq, &fd, &size);
    if (rc != 0)
        return rc;
    if (size > INBOX_REPLY_CT_MAX) {
        rc = RF_ERR_LIMIT;
        goto out;
    }
    if ((rc = rf_open_new(&op, view->pk, view->sk, sink_buf, plain)) != 0)
        goto out;
    for (uint64_t left = size; left > 0 && rc == 0;) {
        ssize_t got = read(fd, chunk, left < sizeof(chunk) ? (size_t)left : sizeof(chunk));
        if (got <= 0) {
            rc = RF_ERR_IO;
            break;
        }
        rc = rf_open_write(op, chunk, (size_t)got);
        left -= (uint64_t)got;
    }
    if (rc == 0)
        rc = rf_open_finish(op);
    if (rc == 0 && rf_open_kind(op) != RF_KIND_REPLY)
        rc = RF_ERR_FORMAT;
out:
    rf_open_free(op);
    close(fd);
    return rc;
}

/* One reply of the inbox. The person is shown the text only (rf_reply_text,
 * lib/reply.h), never an author: the signature is for the caseworkers'
 * clients, and a name would say more on a seized phone. */
static int add_reply(struct rf_tvars *v, enum rf_lang lang, const struct rf_object *o,
                     const struct rf_session_view *view)
{
    struct rf_buf plain, text;
    rf_buf_init_secure(&plain, INBOX_REPLY_PLAIN_MAX);
    rf_buf_init_secure(&text, INBOX_REPLY_PLAIN_MAX);
    struct rf_tvars *it = rf_tvars_item(v, "replies");
    int rc = it == NULL ? RF_ERR_NOMEM : 0;
    if (rc == 0)
        rc = set_day(it, lang, o->day);
    if (rc == 0)
        rc = rf_tvars_set_int(it, "seq", o->seq);
    if (rc == 0) {
        int orc = reply_open(o, view, &plain);
        if (orc == 0)
            orc = rf_reply_text(&text, plain.data, plain.len);
        if (orc == 0 && (rc = rf_buf_cstr(&text)) == 0) {
            rc = rf_tvars_set(it, "text", (const char *)text.data);
        } else if (orc != 0) {
            rf_log_warn_err("inbox: a reply cannot be opened", orc);
            rc = rf_tvars_flag(it, "unreadable");
        }
    }
    rf_buf_free(&plain);
    rf_buf_free(&text);
    return rc;
}

static int add_field(struct rf_tvars *v, enum rf_lang lang, const struct rf_intake_field *f,
                     const char *label_msgid, int with_hint)
{
    static const char *const kind_flags[] = {
        [RF_INTAKE_CHOICE] = "choice",
        [RF_INTAKE_MULTI] = "multi",
        [RF_INTAKE_LINE] = "line",
        [RF_INTAKE_TEXT] = "long",
    };
    struct rf_tvars *it = rf_tvars_item(v, "fields");
    if (it == NULL)
        return RF_ERR_NOMEM;
    int rc = rf_tvars_flag(it, kind_flags[f->kind]);
    if (rc == 0)
        rc = rf_tvars_set(it, "name", f->id);
    if (rc == 0)
        rc = rf_tvars_set(it, "label", rf_tr(lang, label_msgid));
    if (rc == 0 && with_hint && f->hint != NULL)
        rc = rf_tvars_set(it, "hint", rf_tr(lang, f->hint));
    if (rc == 0 && f->kind == RF_INTAKE_LINE)
        rc = rf_tvars_set_int(it, "max", (long long)f->max_len);
    for (int i = 0; rc == 0 && f->options != NULL && f->options[i].id != NULL; i++) {
        struct rf_tvars *o = rf_tvars_item(it, "options");
        rc = o == NULL ? RF_ERR_NOMEM : rf_tvars_set(o, "value", f->options[i].id);
        if (rc == 0)
            rc = rf_tvars_set(o, "text", rf_tr(lang, f->options[i].label));
    }
    return rc;
}

/* What the person sent, as two counts only: no day and no size per item,
 * so a coerced codename tells nothing of when or how much they sent beyond
 * how many (docs/threat-model.md, finding 11). *first: nothing sent yet. */
static int add_sent(struct rf_tvars *v, const struct rf_object *objs, size_t n, int *first)
{
    long long msgs = 0, files = 0;
    for (size_t i = 0; i < n; i++) {
        msgs += objs[i].kind == RF_KIND_MESSAGE;
        files += objs[i].kind == RF_KIND_FILE;
    }
    *first = msgs == 0;
    int rc = 0;
    if (msgs + files > 0)
        rc = rf_tvars_flag(v, "mine");
    if (rc == 0 && msgs > 0)
        rc = rf_tvars_set_int(v, "n_msgs", msgs);
    if (rc == 0 && files > 0)
        rc = rf_tvars_set_int(v, "n_files", files);
    return rc;
}

static int inbox_vars(struct rf_req *r, struct rf_tvars *v, enum rf_lang lang,
                      const struct rf_session_view *view)
{
    size_t n = 0;
    int first = 1;
    struct rf_object *objs = calloc(INBOX_MAX_OBJECTS, sizeof(*objs));
    int rc = objs == NULL ? RF_ERR_NOMEM : 0;
    if (rc == 0)
        rc = rf_store_objects_of_source(rf_pages_srv->store, view->source_id,
                                        (1u << RF_KIND_MESSAGE) | (1u << RF_KIND_FILE) |
                                            (1u << RF_KIND_REPLY),
                                        objs, INBOX_MAX_OBJECTS, &n);
    /* newest first */
    for (size_t i = n; rc == 0 && i-- > 0;) {
        const struct rf_object *o = &objs[i];
        if (o->kind == RF_KIND_REPLY)
            rc = add_reply(v, lang, o, view);
    }
    if (rc == 0)
        rc = add_sent(v, objs, n, &first);
    free(objs);
    char token[RF_CSRF_TOKEN_LEN];
    rf_pages_csrf_token(token, "sess", view->csrf, sizeof(view->csrf));
    if (rc == 0)
        rc = rf_tvars_set(v, "csrf", token);
    if (rc == 0)
        rc =
            rf_tvars_set_int(v, "limit_mb", (long long)(rf_pages_srv->limits.upload_max / 1000000));
    const char *sent = rf_req_query(r, "sent");
    if (rc == 0 && sent != NULL && strcmp(sent, "1") == 0)
        rc = rf_tvars_flag(v, "sent");
    if (rc == 0 && first)
        rc = rf_tvars_flag(v, "first");
    for (size_t i = 0; rc == 0 && i < rf_intake_fields_n; i++) {
        const struct rf_intake_field *f = &rf_intake_fields[i];
        if (first)
            rc = add_field(v, lang, f, f->label, 1);
        else if (f->kind == RF_INTAKE_TEXT)
            rc = add_field(v, lang, f, RF_MSGID("compose.text"), 0);
    }
    return rc;
}

int rf_pages_inbox_get(struct rf_req *r)
{
    enum rf_lang lang = rf_pages_lang(r);
    struct rf_session_view *view = rf_secmem_alloc(sizeof(*view));
    struct rf_tvars *v = NULL;
    int rc = view == NULL ? RF_ERR_NOMEM : rf_pages_session(r, view);
    if (rc == RF_ERR_NOT_FOUND) {
        rc = rf_req_redirect(r, "/login");
        goto out;
    }
    v = rf_tvars_new_secure();
    if (rc == 0 && v == NULL)
        rc = RF_ERR_NOMEM;
    if (rc == 0)
        rc = inbox_vars(r, v, lang, view);
    if (rc == 0)
        rc = rf_pages_send(r, lang, 200, "inbox", v, 1);
out:
    if (rc != 0 && !rf_req_responded(r))
        rf_pages_error(r, lang, RF_PE_SERVER, "/inbox");
    rf_tvars_free(v);
    if (view != NULL)
        rf_secmem_free(view);
    return 0;
}

/* ---------------------------------------------------------------- POST /reply/delete */

struct del {
    struct rf_req *r;
    enum rf_lang lang;
    struct rf_buf csrf, seq;
    struct rf_op ops[2]; /* the deletion and its audit entry: one group */
    char target[24];
    int status;  /* the group's, or the committer's refusal */
    int refused; /* the committer refused the group (status says why) */
    int wipe;    /* deleted: the store's log still holds older copies */
};

static void del_wipe_log(void);

static void del_free(void *p)
{
    struct del *d = p;
    if (d == NULL)
        return;
    if (d->wipe) /* the person went away before the answer: wipe anyway */
        del_wipe_log();
    rf_buf_free(&d->csrf);
    rf_buf_free(&d->seq);
    free(d);
}

static int del_field(struct rf_req *r, const char *name, const char *filename,
                     const char *content_type, uint64_t off, const uint8_t *data, size_t n)
{
    struct del *d = rf_req_state(r);
    (void)filename;
    (void)content_type;
    (void)off;
    struct rf_buf *b = strcmp(name, "csrf") == 0  ? &d->csrf
                       : strcmp(name, "seq") == 0 ? &d->seq
                                                  : NULL;
    if (b == NULL || n == 0)
        return 0;
    if (rf_buf_put(b, data, n) != 0) {
        rf_pages_error(r, d->lang, RF_PE_BAD, "/inbox");
        return RF_ERR_LIMIT;
    }
    return 0;
}

int rf_pages_delete_headers(struct rf_req *r)
{
    struct del *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return RF_ERR_NOMEM;
    d->r = r;
    d->lang = rf_pages_lang(r);
    rf_buf_init(&d->csrf, 128);
    rf_buf_init(&d->seq, 24);
    rf_req_set_state(r, d, del_free);
    if (rf_req_form_begin(r, del_field) != 0)
        rf_pages_error(r, d->lang, RF_PE_BAD, "/inbox");
    return 0;
}

/* A deleted reply's pages are zeroed (secure_delete), but older copies of
 * them stay in the write-ahead log until a checkpoint: one now, before the
 * person hears it is gone. */
static void del_wipe_log(void)
{
    int rc = rf_store_checkpoint(rf_pages_srv->store);
    if (rc != 0)
        rf_log_warn_err("delete: the store's log could not be emptied yet", rc);
}

/* On the committer thread: records the outcome and wakes the request
 * (commit.h); del_settled answers on the request's thread. */
static void del_committed(void *arg, struct rf_op *op)
{
    struct del *d = arg;
    d->status = rf_op_status(op);
    d->wipe = d->status == 0;
    rf_req_resume(d->r);
}

static int del_settled(struct rf_req *r)
{
    struct del *d = rf_req_state(r);
    if (d->wipe) {
        del_wipe_log();
        d->wipe = 0;
    }
    if (d->status == 0 || d->status == RF_ERR_NOT_FOUND)
        rf_req_redirect(r, "/inbox");
    else
        rf_pages_error(r, d->lang, d->refused ? rf_errmap_store(d->status)->page : RF_PE_NOTSAVED,
                       "/inbox");
    return 0;
}

int rf_pages_delete_end(struct rf_req *r)
{
    struct del *d = rf_req_state(r);
    if (d == NULL || rf_req_responded(r))
        return 0;
    struct rf_session_view *view = rf_secmem_alloc(sizeof(*view));
    int rc = view == NULL ? RF_ERR_NOMEM : rf_pages_session(r, view);
    if (rc == RF_ERR_NOT_FOUND) {
        rc = rf_pages_error(r, d->lang, RF_PE_SESSION, "/login");
        goto out;
    }
    if (rc != 0)
        goto out;
    if (!rf_pages_csrf_check("sess", view->csrf, sizeof(view->csrf), d->csrf.data, d->csrf.len)) {
        rc = rf_pages_error(r, d->lang, RF_PE_CSRF, "/inbox");
        goto out;
    }
    long long seq = 0;
    for (size_t i = 0; i < d->seq.len; i++) {
        if (d->seq.data[i] < '0' || d->seq.data[i] > '9' || seq > 100000000000000000LL) {
            seq = -1;
            break;
        }
        seq = seq * 10 + (d->seq.data[i] - '0');
    }
    struct rf_object o;
    if (seq <= 0 || rf_store_object_get(rf_pages_srv->store, seq, &o) != 0 ||
        o.source_id != view->source_id || o.kind != RF_KIND_REPLY) {
        rc = rf_req_redirect(r, "/inbox"); /* nothing of theirs to delete */
        goto out;
    }
    rf_op_object_delete(&d->ops[0], seq, view->source_id);
    /* the audit log records that a person deleted a reply (actor: zeros) */
    snprintf(d->target, sizeof(d->target), "%lld", seq);
    rf_op_audit(&d->ops[1], NULL, "delete", d->target, NULL, 0);
    rf_req_suspend_then(r, del_settled);
    rc = rf_committer_submit_group(rf_pages_srv->committer, d->ops, 2, del_committed, d);
    if (rc != 0) {
        d->status = rc; /* del_settled answers, on this thread */
        d->refused = 1;
        rf_req_resume(r);
        rc = 0;
    }
out:
    if (view != NULL)
        rf_secmem_free(view);
    if (rc != 0 && !rf_req_responded(r))
        rf_pages_error(r, d->lang, RF_PE_SERVER, "/inbox");
    return 0;
}
