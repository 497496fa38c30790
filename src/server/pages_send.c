/*
 * pages_send.c - POST /send: the person's message, intake answers and files,
 * streamed from the multipart form into envelopes sealed on arrival and
 * stored as one all-or-nothing group, answered only once durable. The inbox
 * page and reply deletion are pages_inbox.c's.
 *
 * POST /send invariants:
 * - The form's first field is csrf; any other field before a valid token
 *   ends the request with the "form expired" page.
 * - A file's plaintext exists only in the piece being sealed: each piece
 *   goes from the form parser into rf_seal, whose sink writes ciphertext to
 *   an uncommitted blob. Text fields go into secure bufs, bounded by
 *   limits.message_max (LINE fields by their own max), files together by
 *   limits.upload_max, counted while streaming.
 * - Nothing is committed until the whole body has arrived and passed every
 *   check; then the blobs are committed and all objects of the submission
 *   go to the committer as one all-or-nothing group, and the person hears
 *   "sent" only once all of them are durable. If the group fails, its blob
 *   files are discarded and the person reads "not saved".
 * - Blobs not committed are aborted (unlinked) when the request ends.
 *
 * The message JSON (notes/plaintext-formats) is built with jansson, whose
 * allocator (lib/json.h, installed at server start) wipes what it frees,
 * and dumped into a secure buf, so that no plaintext passes through
 * allocations that are not wiped.
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

#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SEND_MAX_FILES 20
#define SEND_MAX_FIELDS 16
#define CHOICE_VALUE_MAX 64

/* ---------------------------------------------------------------- POST /send */

enum part { P_NONE, P_IGNORED, P_CSRF, P_FIELD, P_FILE };

struct sfile {
    struct rf_put *put; /* a blob file, durable only at the end */
    struct rf_seal *seal;
};

struct send {
    struct rf_req *r;
    enum rf_lang lang;
    struct rf_session_view *view; /* sodium_malloc */
    char stoken[RF_SESSION_TOKEN_B64];
    uint8_t (*pks)[32];
    size_t npk;
    int first;
    int csrf_ok;
    struct rf_buf csrf;
    /* the part being received */
    enum part part;
    char part_name[RF_FORM_NAME_MAX + 1];
    uint64_t part_bytes;
    const struct rf_intake_field *field;
    struct rf_buf choice;
    struct sfile *file;
    /* answers */
    struct rf_buf text[SEND_MAX_FIELDS]; /* secure, by intake index */
    int chosen[SEND_MAX_FIELDS];         /* CHOICE: option index or -1 */
    uint32_t multi[SEND_MAX_FIELDS];     /* MULTI: option bits */
    uint64_t text_total, file_total;
    uint64_t left; /* the session's byte quota left at the start */
    int charged;   /* a refusal's streamed bytes were charged */
    struct sfile files[SEND_MAX_FILES];
    size_t nfiles;
    /* the commit */
    struct rf_buf ct;
    struct rf_put *msg_put;
    struct rf_op ops[SEND_MAX_FILES + 1];
    size_t nops;
    int status; /* the group's, recorded by its completion, or the committer's refusal */
};

static void send_free(void *p)
{
    struct send *s = p;
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->nfiles; i++) {
        rf_seal_free(s->files[i].seal);
        rf_put_free(s->files[i].put); /* what is not the store's goes */
    }
    rf_put_free(s->msg_put);
    for (size_t i = 0; i < SEND_MAX_FIELDS; i++)
        rf_buf_free(&s->text[i]);
    rf_buf_free(&s->csrf);
    rf_buf_free(&s->choice);
    rf_buf_free(&s->ct);
    if (s->view != NULL)
        rf_secmem_free(s->view);
    free(s->pks);
    sodium_memzero(s->stoken, sizeof(s->stoken));
    free(s);
}

static int put_sink(void *ctx, const uint8_t *p, size_t n)
{
    return rf_put_write(ctx, p, n);
}

/* Answers with an error page and returns an error that stops the parser.
 * A refusal for size or quota charges the bytes streamed so far to the
 * session's daily byte quota (rf_session_count_refused): a session cannot
 * make the server receive refused uploads for ever. */
static int send_fail(struct send *s, enum rf_page_err e)
{
    uint64_t streamed = s->text_total + s->file_total;
    if (!s->charged && s->stoken[0] != '\0' && streamed > 0 &&
        (e == RF_PE_TOOLARGE || e == RF_PE_TOOLONG || e == RF_PE_QUOTA)) {
        s->charged = 1;
        int rc = rf_session_count_refused(rf_pages_srv->sessions, s->stoken, streamed);
        if (rc != 0 && rc != RF_ERR_NOT_FOUND)
            rf_log_error("send: cannot charge a refused upload", rc);
    }
    if (!rf_req_responded(s->r))
        rf_pages_error(s->r, s->lang, e, "/inbox");
    return RF_ERR_CANCELLED;
}

/* A file name the filemeta rules accept: the last path element, at most
 * RF_FILEMETA_NAME_MAX bytes cut at a character boundary. */
static void file_name(char out[RF_FILEMETA_NAME_MAX + 1], const char *in)
{
    const char *b = in;
    for (const char *p = in; *p; p++)
        if (*p == '/' || *p == '\\')
            b = p + 1;
    size_t n = strlen(b);
    if (n > RF_FILEMETA_NAME_MAX) {
        n = RF_FILEMETA_NAME_MAX;
        while (n > 0 && ((uint8_t)b[n] & 0xc0) == 0x80)
            n--;
    }
    memcpy(out, b, n);
    out[n] = '\0';
}

static int file_start(struct send *s, const char *filename, const char *ctype)
{
    if (s->nfiles == SEND_MAX_FILES)
        return send_fail(s, RF_PE_TOOLARGE);
    struct sfile *f = &s->files[s->nfiles++];
    memset(f, 0, sizeof(*f));
    s->file = f;
    struct rf_buf meta;
    char name[RF_FILEMETA_NAME_MAX + 1];
    file_name(name, filename ? filename : "");
    const char *type = ctype ? ctype : "";
    rf_buf_init(&meta, RF_FILE_META_MAX + 512);
    int rc = rf_put_begin(rf_pages_srv->store, RF_PUT_BLOB, &f->put);
    if (rc == 0)
        rc = rf_seal_new(&f->seal, RF_KIND_FILE, (const uint8_t(*)[32])s->pks, s->npk, put_sink,
                         f->put);
    if (rc == 0) {
        rc = rf_filemeta_encode(&meta, name, strlen(name), type, strlen(type));
        if (rc == RF_ERR_FORMAT || rc == RF_ERR_LIMIT) { /* a type or name it refuses */
            rf_buf_reset(&meta);
            rc = rf_filemeta_encode(&meta, name, strlen(name), "", 0);
        }
        if (rc == RF_ERR_FORMAT || rc == RF_ERR_LIMIT) {
            rf_buf_reset(&meta);
            rc = rf_filemeta_encode(&meta, "file", 4, "", 0);
        }
    }
    if (rc == 0)
        rc = rf_seal_write(f->seal, meta.data, meta.len);
    rf_buf_free(&meta);
    if (rc != 0) {
        rf_log_error("send: cannot start a file", rc);
        return send_fail(s, RF_PE_NOTSAVED);
    }
    return 0;
}

static int file_finish(struct send *s)
{
    struct sfile *f = s->file;
    s->file = NULL;
    if (f == NULL)
        return 0;
    int rc = rf_seal_finish(f->seal);
    rf_seal_free(f->seal);
    f->seal = NULL;
    if (rc != 0) {
        rf_log_error("send: cannot seal a file", rc);
        return send_fail(s, RF_PE_NOTSAVED);
    }
    return 0;
}

/* The end of the part being received: check it, keep what it said. */
static int part_end(struct send *s)
{
    int rc = 0;
    switch (s->part) {
    case P_CSRF:
        s->csrf_ok = rf_pages_csrf_check("sess", s->view->csrf, sizeof(s->view->csrf), s->csrf.data,
                                         s->csrf.len);
        if (!s->csrf_ok)
            rc = send_fail(s, RF_PE_CSRF);
        break;
    case P_FIELD: {
        const struct rf_intake_field *f = s->field;
        size_t idx = (size_t)(f - rf_intake_fields);
        int opt = rf_intake_option_find(f, (const char *)s->choice.data, s->choice.len);
        if (opt >= 0 && f->kind == RF_INTAKE_CHOICE)
            s->chosen[idx] = opt;
        else if (opt >= 0 && f->kind == RF_INTAKE_MULTI)
            s->multi[idx] |= 1u << opt;
        rf_buf_reset(&s->choice);
        break;
    }
    case P_FILE:
        rc = file_finish(s);
        break;
    default:
        break;
    }
    s->part = P_NONE;
    s->field = NULL;
    return rc;
}

static int part_begin(struct send *s, const char *name, const char *filename, const char *ctype)
{
    (void)ctype;
    if (strcmp(name, "csrf") == 0) {
        rf_buf_reset(&s->csrf);
        s->part = s->csrf_ok ? P_IGNORED : P_CSRF;
        return 0;
    }
    if (!s->csrf_ok)
        return send_fail(s, RF_PE_CSRF);
    if (filename != NULL) {
        s->part = strcmp(name, "file") == 0 ? P_FILE : P_IGNORED;
        return 0;
    }
    s->field = rf_intake_field_find(name);
    s->part = s->field != NULL ? P_FIELD : P_IGNORED;
    if (s->field != NULL && !s->first && s->field->kind != RF_INTAKE_TEXT)
        s->part = P_IGNORED; /* answers belong to the first message */
    return 0;
}

static int part_data(struct send *s, const char *filename, const char *ctype, const uint8_t *p,
                     size_t n)
{
    const struct rf_limits *lim = &rf_pages_srv->limits;
    if (n == 0)
        return 0;
    switch (s->part) {
    case P_CSRF:
        if (rf_buf_put(&s->csrf, p, n) != 0)
            return send_fail(s, RF_PE_CSRF);
        return 0;
    case P_FIELD: {
        const struct rf_intake_field *f = s->field;
        size_t idx = (size_t)(f - rf_intake_fields);
        if (f->kind == RF_INTAKE_CHOICE || f->kind == RF_INTAKE_MULTI) {
            if (rf_buf_put(&s->choice, p, n) != 0)
                rf_buf_reset(&s->choice); /* no option is that long */
            return 0;
        }
        s->text_total += n;
        if (s->text_total + s->file_total > s->left)
            return send_fail(s, RF_PE_QUOTA);
        if (s->text_total > lim->message_max ||
            (f->kind == RF_INTAKE_LINE && s->text[idx].len + n > f->max_len))
            return send_fail(s, RF_PE_TOOLONG);
        if (rf_buf_put(&s->text[idx], p, n) != 0)
            return send_fail(s, RF_PE_TOOLONG);
        return 0;
    }
    case P_FILE: {
        s->file_total += n;
        if (s->file_total > lim->upload_max)
            return send_fail(s, RF_PE_TOOLARGE);
        if (s->text_total + s->file_total > s->left) /* the day's bytes spent mid-way */
            return send_fail(s, RF_PE_QUOTA);
        if (s->file == NULL) {
            int rc = file_start(s, filename, ctype);
            if (rc != 0)
                return rc;
        }
        int rc = rf_seal_write(s->file->seal, p, n);
        if (rc != 0) {
            rf_log_error("send: cannot write a file", rc);
            return send_fail(s, RF_PE_NOTSAVED);
        }
        return 0;
    }
    default:
        return 0;
    }
}

static int send_field(struct rf_req *r, const char *name, const char *filename,
                      const char *content_type, uint64_t off, const uint8_t *data, size_t n)
{
    struct send *s = rf_req_state(r);
    if (rf_req_responded(r))
        return RF_ERR_CANCELLED;
    int rc = 0;
    /* a part starts at offset 0; a second empty call for it is not a new one */
    int same = s->part != P_NONE && s->part_bytes == 0 && strcmp(name, s->part_name) == 0;
    if ((off == 0 && !same) || s->part == P_NONE) {
        rc = part_end(s);
        if (rc == 0)
            rc = part_begin(s, name, filename, content_type);
        snprintf(s->part_name, sizeof(s->part_name), "%s", name);
        s->part_bytes = 0;
    }
    s->part_bytes += n;
    if (rc == 0)
        rc = part_data(s, filename, content_type, data, n);
    return rc;
}

int rf_pages_send_headers(struct rf_req *r)
{
    struct rf_srv *srv = rf_pages_srv;
    enum rf_lang lang = rf_pages_lang(r);
    struct send *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return RF_ERR_NOMEM;
    s->r = r;
    s->lang = lang;
    rf_buf_init(&s->csrf, 128);
    rf_buf_init(&s->choice, CHOICE_VALUE_MAX);
    rf_buf_init(&s->ct, 64u << 20);
    for (size_t i = 0; i < SEND_MAX_FIELDS; i++) {
        rf_buf_init_secure(&s->text[i], srv->limits.message_max);
        s->chosen[i] = -1;
    }
    rf_req_set_state(r, s, send_free);

    int64_t cl = rf_req_content_length(r);
    if (cl > 0 && (uint64_t)cl > srv->limits.upload_max + srv->limits.form_max)
        return send_fail(s, RF_PE_TOOLARGE), 0;
    s->view = rf_secmem_alloc(sizeof(*s->view));
    if (s->view == NULL)
        return RF_ERR_NOMEM;
    const char *tok = rf_req_cookie(r, "s");
    if (tok == NULL || strlen(tok) >= sizeof(s->stoken) ||
        rf_session_get(srv->sessions, tok, s->view) != 0)
        return send_fail(s, RF_PE_SESSION), 0;
    memcpy(s->stoken, tok, strlen(tok) + 1);
    /* A session whose day is spent is refused before any part is read:
     * answered now, the body is not parsed; the HTTP layer closes at once
     * past RF_HTTP_DISCARD_MAX announced, else skips at most that much. A
     * body announced larger than what is left (less the form's overhead)
     * could not be counted either. */
    s->left = rf_session_bytes_left(srv->sessions, s->view);
    if (!rf_session_msgs_left(srv->sessions, s->view) || s->left == 0 ||
        (cl > 0 && (uint64_t)cl > s->left + srv->limits.form_max))
        return send_fail(s, RF_PE_QUOTA), 0;

    s->pks = calloc(RF_ROSTER_MAX_MEMBERS, 32);
    if (s->pks == NULL)
        return RF_ERR_NOMEM;
    if (rf_pages_roster(s->pks, &s->npk) != 0)
        return send_fail(s, RF_PE_NOTSAVED), 0;
    if (s->npk == 0)
        return send_fail(s, RF_PE_NOTOPEN), 0;

    struct rf_object one;
    size_t n = 0;
    if (rf_store_objects_of_source(srv->store, s->view->source_id, 1u << RF_KIND_MESSAGE, &one, 1,
                                   &n) != 0)
        return send_fail(s, RF_PE_NOTSAVED), 0;
    s->first = n == 0;
    if (rf_req_form_begin(r, send_field) != 0)
        return send_fail(s, RF_PE_BAD), 0;
    return 0;
}

static int is_blank(const struct rf_buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != ' ' && b->data[i] != '\n' && b->data[i] != '\r' && b->data[i] != '\t')
            return 0;
    return 1;
}

/* A text field as a JSON string; NULL if it is not UTF-8 (or no memory). */
static json_t *text_value(const struct rf_buf *b)
{
    return json_stringn(b->len > 0 ? (const char *)b->data : "", b->len);
}

/* The answer to intake field i: {"id","label","value"}. */
static json_t *answer_json(const struct send *s, size_t i, int *said)
{
    const struct rf_intake_field *f = &rf_intake_fields[i];
    json_t *value;
    if (f->kind == RF_INTAKE_CHOICE) {
        *said |= s->chosen[i] >= 0;
        value = json_string(s->chosen[i] >= 0 ? f->options[s->chosen[i]].id : "");
    } else if (f->kind == RF_INTAKE_MULTI) {
        value = json_array();
        for (int o = 0; value != NULL && f->options[o].id != NULL; o++) {
            if (!(s->multi[i] & (1u << o)))
                continue;
            *said = 1;
            if (json_array_append_new(value, json_string(f->options[o].id)) != 0) {
                json_decref(value);
                value = NULL;
            }
        }
    } else {
        *said |= !is_blank(&s->text[i]);
        value = text_value(&s->text[i]);
    }
    if (value == NULL)
        return NULL;
    /* "o" hands value over, also when json_pack fails */
    return json_pack("{s:s,s:s,s:o}", "id", f->id, "label", rf_tr(RF_LANG_EN, f->label), "value",
                     value);
}

/* The message JSON of notes/plaintext-formats, appended to json (secure;
 * its max is the limit: RF_ERR_LIMIT beyond). Built with jansson, whose
 * allocator (lib/json.h) wipes every value it frees, and dumped straight
 * into json: the person's words are never in memory that is not wiped.
 * RF_ERR_FORMAT: a text field is not UTF-8. Sets *said if the person wrote
 * or chose anything. */
static int message_json(struct send *s, struct rf_buf *json, int *said)
{
    static const char *const lang_codes[RF_LANG_COUNT] = {"en", "ru", "uk"};
    const struct rf_intake_field *textf = rf_intake_field_find("text");
    const struct rf_buf *text = &s->text[textf - rf_intake_fields];
    *said = !is_blank(text);
    json_t *doc = json_pack("{s:i,s:s,s:s}", "v", 1, "type", s->first ? "intake" : "message",
                            "lang", lang_codes[s->lang]);
    json_t *answers = s->first ? json_array() : NULL;
    int rc = doc == NULL || (s->first && answers == NULL) ? RF_ERR_NOMEM : 0;
    for (size_t i = 0; rc == 0 && s->first && i < rf_intake_fields_n; i++) {
        if (rf_intake_fields[i].kind == RF_INTAKE_TEXT)
            continue;
        json_t *a = answer_json(s, i, said);
        if (a == NULL)
            rc = RF_ERR_FORMAT;
        else if (json_array_append_new(answers, a) != 0)
            rc = RF_ERR_NOMEM;
    }
    if (rc == 0 && answers != NULL) {
        rc = json_object_set_new(doc, "answers", answers) == 0 ? 0 : RF_ERR_NOMEM;
        answers = NULL;
    }
    if (rc == 0) {
        json_t *t = text_value(text);
        rc = t == NULL                                  ? RF_ERR_FORMAT
             : json_object_set_new(doc, "text", t) == 0 ? 0
                                                        : RF_ERR_NOMEM;
    }
    /* one pass to measure, one into json's storage, grown once */
    size_t n = rc == 0 ? json_dumpb(doc, NULL, 0, JSON_COMPACT) : 0;
    if (rc == 0 && n == 0)
        rc = RF_ERR_NOMEM;
    if (rc == 0 && n > json->max - json->len)
        rc = RF_ERR_LIMIT;
    if (rc == 0)
        rc = rf_buf_reserve(json, n);
    if (rc == 0 && json_dumpb(doc, (char *)json->data + json->len, n, JSON_COMPACT) != n)
        rc = RF_ERR_NOMEM;
    if (rc == 0)
        json->len += n;
    json_decref(answers);
    json_decref(doc);
    return rc;
}

/* Runs on the request's thread once the submission's group is settled: all
 * of it durable, or none of it stored (the store already deleted the blobs
 * of a group that failed; send_free those it never saw). */
static int send_settled(struct rf_req *r)
{
    struct send *s = rf_req_state(r);
    if (s->status == 0) {
        if (rf_req_redirect(r, "/inbox?sent=1") != 0)
            rf_pages_error(r, s->lang, RF_PE_SERVER, "/inbox");
    } else {
        rf_log_error("send: submission not stored", s->status);
        rf_pages_error(r, s->lang, rf_errmap_store(s->status)->page, "/inbox");
    }
    return 0;
}

/* On the committer thread: records the outcome and wakes the request (commit.h). */
static void send_committed(void *arg, struct rf_op *op)
{
    struct send *s = arg;
    s->status = rf_op_status(op);
    rf_metrics_submission(s->status == 0);
    rf_req_resume(s->r); /* r and s may be gone after this */
}

/* Makes *put durable and adds the op that stores it. */
static int put_op(struct send *s, uint8_t kind, struct rf_put *put)
{
    int rc = rf_op_object_put(&s->ops[s->nops], s->view->source_id, kind, put);
    if (rc == 0)
        s->nops++;
    return rc;
}

int rf_pages_send_end(struct rf_req *r)
{
    struct send *s = rf_req_state(r);
    if (s == NULL || rf_req_responded(r))
        return 0;
    if (part_end(s) != 0)
        return 0;
    if (!s->csrf_ok)
        return send_fail(s, RF_PE_CSRF), 0;

    struct rf_buf json;
    rf_buf_init_secure(&json, rf_pages_srv->limits.message_max * 6 + 64 * 1024);
    int said = 0;
    int rc = message_json(s, &json, &said);
    if (rc != 0) {
        rf_buf_free(&json);
        return send_fail(s, rc == RF_ERR_LIMIT    ? RF_PE_TOOLONG
                            : rc == RF_ERR_FORMAT ? RF_PE_BAD
                                                  : RF_PE_SERVER),
               0;
    }
    if (!said && s->nfiles == 0) {
        rf_buf_free(&json);
        return send_fail(s, RF_PE_EMPTY), 0;
    }
    rc = rf_session_count_sent(rf_pages_srv->sessions, s->stoken, s->text_total + s->file_total);
    if (rc != 0) {
        rf_buf_free(&json);
        return send_fail(s, rc == RF_ERR_LIMIT ? RF_PE_QUOTA : RF_PE_SESSION), 0;
    }
    rc = rf_envelope_seal(&s->ct, RF_KIND_MESSAGE, (const uint8_t(*)[32])s->pks, s->npk, json.data,
                          json.len);
    rf_buf_free(&json);
    if (rc != 0) {
        rf_log_error("send: cannot seal a message", rc);
        return send_fail(s, RF_PE_SERVER), 0;
    }

    /* The message first, then its files; the store keeps each inline or in
     * a blob. Durable blobs of a submission that goes no further are deleted
     * by send_free (rf_put_free). */
    rc = rf_put_begin(rf_pages_srv->store, 0, &s->msg_put);
    if (rc == 0)
        rc = rf_put_write(s->msg_put, s->ct.data, s->ct.len);
    if (rc == 0)
        rc = put_op(s, RF_KIND_MESSAGE, s->msg_put);
    for (size_t i = 0; rc == 0 && i < s->nfiles; i++)
        rc = put_op(s, RF_KIND_FILE, s->files[i].put);
    if (rc != 0) {
        rf_log_error("send: cannot store the submission", rc);
        return send_fail(s, RF_PE_NOTSAVED), 0;
    }

    /* One all-or-nothing group: the person hears "sent" only when every
     * object is durable, and nothing is ever stored half-way. */
    rf_req_suspend_then(r, send_settled);
    rc = rf_committer_submit_group(rf_pages_srv->committer, s->ops, s->nops, send_committed, s);
    if (rc != 0) { /* send_settled answers, on this thread */
        s->status = rc;
        rf_metrics_submission(0);
        rf_req_resume(r);
    }
    return 0;
}
