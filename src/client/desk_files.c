/*
 * desk_files.c - the desk's file pages (docs/desk.md, "The file page"):
 *
 *   GET  /case/CID/file/SEQ              the page: name, size, type by content,
 *                                        identifying metadata found, preview
 *   GET  /case/CID/file/SEQ/download     the original, decrypted as it streams
 *   GET  /case/CID/file/SEQ/preview.png  a JPEG/PNG re-encoded by the sandboxed
 *                                        child (media.h), served as image/png;
 *                                        for a PDF, ?page=K (1..20) rendered by
 *                                        poppler in the PDF child
 *   (the page takes ?page=K too: which PDF page it shows)
 *   POST /case/CID/file/SEQ/strip        a copy without the metadata (JPEG, PNG)
 *
 * Nothing here writes to disk. The download is decrypted chunk by chunk in
 * libmicrohttpd's content-reader callback (constant memory, one envelope chunk
 * of plaintext at a time in a sodium_malloc buffer, wiped); the page, preview
 * and stripped copy decrypt the file into a secure buffer (at most
 * RF_MEDIA_IN_MAX) that is wiped when the request ends.
 *
 * Nothing from the file is ever rendered by the browser as a document: the
 * download and the stripped copy are application/octet-stream with
 * Content-Disposition: attachment (never the type the person's browser
 * claimed), the preview is image/png made by the child; every one of them
 * carries X-Content-Type-Options: nosniff and a CSP of default-src 'none';
 * sandbox. The file's name is the person's: it goes through
 * rf_filemeta_safe_name, then an ASCII fallback and RFC 5987 filename*.
 */
#include "client/cache.h"
#include "client/desk_priv.h"
#include "client/media.h"
#include "client/out.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RF_MSGID(s) (s)
#define NAME_CAP 200
/* the CSP of everything that is the file's bytes or made from them */
#define FILE_CSP "default-src 'none'; sandbox; frame-ancestors 'none'"

static const char *const type_msgid[] = {
    [RF_MEDIA_OTHER] = RF_MSGID("desk.type_other"),
    [RF_MEDIA_JPEG] = RF_MSGID("desk.type_jpeg"),
    [RF_MEDIA_PNG] = RF_MSGID("desk.type_png"),
    [RF_MEDIA_PDF] = RF_MSGID("desk.type_pdf"),
};

/* ?page=K of a PDF: 1..RF_MEDIA_PDF_PAGES_MAX (1 when absent), 0 when it
 * is not a page number. */
static unsigned pdf_page_arg(struct MHD_Connection *c)
{
    const char *v = MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, "page");
    if (v == NULL || !v[0])
        return 1;
    unsigned k = 0;
    for (const char *q = v; *q; q++) {
        if (*q < '0' || *q > '9' || k > RF_MEDIA_PDF_PAGES_MAX)
            return 0;
        k = k * 10 + (unsigned)(*q - '0');
    }
    return k >= 1 && k <= RF_MEDIA_PDF_PAGES_MAX ? k : 0;
}

/* ------------------------------------------------------------ plaintext */

/* Receives a file object's plaintext: the metadata block, then the bytes,
 * which go to out (a secure buf) when out is set. */
struct plain {
    uint8_t head[RF_FILE_META_MAX];
    size_t head_len;
    int have_meta;
    struct rf_filemeta meta;
    struct rf_buf *out;
    /* streaming: the bytes of the last write, not yet handed to MHD */
    uint8_t *pend;
    size_t pend_len, pend_off, pend_cap;
};

static int put_bytes(struct plain *s, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    if (s->out)
        return rf_buf_put(s->out, p, n);
    if (s->pend) {
        if (s->pend_cap - s->pend_len < n)
            return RF_ERR_LIMIT;
        memcpy(s->pend + s->pend_len, p, n);
        s->pend_len += n;
    }
    return 0;
}

static int plain_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct plain *s = ctx;
    if (s->have_meta)
        return put_bytes(s, p, n);
    size_t k = sizeof(s->head) - s->head_len;
    if (k > n)
        k = n;
    memcpy(s->head + s->head_len, p, k);
    s->head_len += k;
    size_t used = 0;
    int rc = rf_filemeta_parse(&s->meta, &used, s->head, s->head_len);
    if (rc == RF_ERR_TRUNCATED && s->head_len < sizeof(s->head))
        return 0;
    if (rc != 0)
        return RF_ERR_FORMAT;
    s->have_meta = 1;
    rc = put_bytes(s, s->head + used, s->head_len - used);
    if (rc == 0)
        rc = put_bytes(s, p + k, n - k);
    sodium_memzero(s->head, sizeof(s->head));
    return rc;
}

/* An rf_open for object seq with this caseworker's stanza or the grant
 * that opens it (thread.c). */
static int open_for(struct rf_ctx *x, int64_t seq, struct plain *s, struct rf_open **o)
{
    uint8_t grant[RF_GRANT_BYTES];
    int use_grant = 0;
    int rc = rf_thread_pick(x->c, x->k, seq, grant, &use_grant);
    if (rc == 0 && use_grant)
        rc = rf_open_new_grant(o, grant, x->k->box_pk, x->k->box_sk, plain_sink, s);
    else if (rc == 0)
        rc = rf_open_new(o, x->k->box_pk, x->k->box_sk, plain_sink, s);
    sodium_memzero(grant, sizeof(grant));
    return rc;
}

static int feed(void *ctx, const uint8_t *p, size_t n)
{
    return rf_open_write(ctx, p, n);
}

/* Decrypts file object seq whole into mem (a secure buf). */
static int decrypt_mem(struct rf_ctx *x, int64_t seq, struct plain *s, struct rf_buf *mem)
{
    struct rf_open *o = NULL;
    s->out = mem;
    int rc = open_for(x, seq, s, &o);
    if (rc == 0)
        rc = rf_cache_object_stream(x->c, seq, feed, o);
    if (rc == 0)
        rc = rf_open_finish(o);
    if (rc == 0 && (rf_open_kind(o) != RF_KIND_FILE || !s->have_meta))
        rc = RF_ERR_FORMAT;
    rf_open_free(o);
    return rc;
}

/* 0 if seq is a file of case cid in the local cache. */
static int find_file(struct rf_ctx *x, const char *cid, int64_t seq)
{
    struct rf_cobj *objs = NULL;
    size_t n = 0;
    int rc = rf_cache_case_objects(x->c, cid, &objs, &n);
    if (rc == 0) {
        rc = RF_ERR_NOT_FOUND;
        for (size_t i = 0; i < n; i++)
            if (objs[i].seq == seq && objs[i].kind == RF_KIND_FILE)
                rc = 0;
    }
    free(objs);
    return rc;
}

/* ---------------------------------------------------------------- names */

/* The person's name made safe (no separators, controls, bidi controls),
 * with suffix inserted before the extension. */
static void safe_name(char out[NAME_CAP], const char *name, const char *suffix)
{
    char base[NAME_CAP - 16];
    if (rf_filemeta_safe_name(base, sizeof(base), name) != 0)
        snprintf(base, sizeof(base), "file");
    const char *dot = strrchr(base, '.');
    if (!suffix[0] || !dot || dot == base)
        snprintf(out, NAME_CAP, "%s%s", base, suffix);
    else
        snprintf(out, NAME_CAP, "%.*s%s%s", (int)(dot - base), base, suffix, dot);
}

int rf_desk_disposition(char *out, size_t cap, const char *person_name, const char *suffix)
{
    static const char hex[] = "0123456789ABCDEF";
    char name[NAME_CAP], ascii[NAME_CAP];
    safe_name(name, person_name, suffix);
    size_t a = 0;
    for (const unsigned char *p = (const unsigned char *)name; *p && a < sizeof(ascii) - 1; p++) {
        unsigned char ch = *p;
        int keep = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                   (ch >= '0' && ch <= '9') || strchr("._-+() ", ch) != NULL;
        if (ch >= 0x80 && (ch & 0xC0) == 0x80)
            continue; /* one _ per non-ASCII character */
        ascii[a++] = keep ? (char)ch : '_';
    }
    ascii[a] = 0;
    int n =
        snprintf(out, cap, "attachment; filename=\"%s\"; filename*=UTF-8''", a ? ascii : "file");
    if (n < 0 || (size_t)n >= cap)
        return RF_ERR_LIMIT;
    size_t o = (size_t)n;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        /* RFC 5987 attr-char; everything else percent-encoded */
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || (*p && strchr("!#$&+-.^_`|~", *p) != NULL);
        if (o + 4 > cap)
            return RF_ERR_LIMIT;
        if (plain) {
            out[o++] = (char)*p;
        } else {
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    out[o] = 0;
    return 0;
}

/* ------------------------------------------------------------ responses */

static enum MHD_Result send_bytes(struct MHD_Connection *c, struct MHD_Response *r,
                                  const char *type, const char *disposition)
{
    if (r == NULL)
        return MHD_NO;
    if (disposition)
        MHD_add_response_header(r, "Content-Disposition", disposition);
    return rf_desk_send(c, r, MHD_HTTP_OK, type, FILE_CSP);
}

static enum MHD_Result error(struct rf_desk_fctx *f, unsigned status, const char *title,
                             const char *message)
{
    if (rf_tvars_set(f->v, "title", rf_desk_tr(f->lang, title)) != 0 ||
        rf_tvars_set(f->v, "message", rf_desk_tr(f->lang, message)) != 0)
        return MHD_NO;
    return rf_desk_send_page(f, status, "error");
}

static enum MHD_Result not_found(struct rf_desk_fctx *f)
{
    return error(f, MHD_HTTP_NOT_FOUND, RF_MSGID("desk.not_found"),
                 RF_MSGID("desk.not_found_hint"));
}

static const char *media_msgid(int rc)
{
    if (rc == RF_ERR_LIMIT)
        return RF_MSGID("desk.file_too_large");
    if (rc == RF_ERR_CANCELLED)
        return RF_MSGID("desk.file_hostile");
    if (rc == RF_ERR_IO)
        return RF_MSGID("desk.file_no_sandbox");
    return RF_MSGID("desk.file_damaged");
}

/* ------------------------------------------------------------- download */

struct stream {
    struct plain s;
    struct rf_open *o;
    pthread_mutex_t *mu;
    time_t *last_active; /* the desk's, under mu */
    int fd;              /* the cached ciphertext file, or -1 */
    struct rf_buf ct;    /* or the ciphertext itself (inline in the cache) */
    size_t ct_off;
    uint8_t *chunk; /* RF_ENV_CHUNK of ciphertext */
    int eof, failed;
};

static int copy_ct(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* The next piece of ciphertext into st->chunk: its length, 0 at the end,
 * -1 on error. */
static ssize_t next_ct(struct stream *st)
{
    if (st->fd >= 0) {
        for (;;) {
            ssize_t k = read(st->fd, st->chunk, RF_ENV_CHUNK);
            if (k < 0 && errno == EINTR)
                continue;
            return k;
        }
    }
    size_t k = st->ct.len - st->ct_off;
    if (k > RF_ENV_CHUNK)
        k = RF_ENV_CHUNK;
    if (k)
        memcpy(st->chunk, st->ct.data + st->ct_off, k);
    st->ct_off += k;
    return (ssize_t)k;
}

/* Feeds ciphertext until there is plaintext to hand out or the end:
 * 0, or an rf_err. Called under st->mu (rf_open shares state). */
static int stream_more(struct stream *st)
{
    while (!st->eof && st->s.pend_off == st->s.pend_len) {
        st->s.pend_len = st->s.pend_off = 0;
        ssize_t k = next_ct(st);
        if (k < 0)
            return RF_ERR_IO;
        if (k == 0) {
            st->eof = 1;
            int rc = rf_open_finish(st->o);
            if (rc == 0 && rf_open_kind(st->o) != RF_KIND_FILE)
                rc = RF_ERR_FORMAT;
            return rc;
        }
        int rc = rf_open_write(st->o, st->chunk, (size_t)k);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct stream *st = cls;
    if (st->failed)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    pthread_mutex_lock(st->mu);
    int rc = stream_more(st);
    *st->last_active = time(NULL); /* a long download keeps the desk from idling */
    pthread_mutex_unlock(st->mu);
    if (rc != 0) {
        /* a damaged or truncated file: the connection is cut without the
         * final chunk, so the browser marks the download failed */
        st->failed = 1;
        fprintf(stderr, "refuge: desk: a download stopped: %s\n",
                rc == RF_ERR_DECRYPT || rc == RF_ERR_TRUNCATED
                    ? "the file does not decrypt (damaged or tampered)"
                    : rf_strerror(rc));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    size_t k = st->s.pend_len - st->s.pend_off;
    if (k == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    if (k > max)
        k = max;
    memcpy(buf, st->s.pend + st->s.pend_off, k);
    sodium_memzero(st->s.pend + st->s.pend_off, k);
    st->s.pend_off += k;
    return (ssize_t)k;
}

static void stream_free(void *cls)
{
    struct stream *st = cls;
    if (st == NULL)
        return;
    pthread_mutex_lock(st->mu);
    rf_open_free(st->o);
    pthread_mutex_unlock(st->mu);
    if (st->fd >= 0)
        close(st->fd);
    rf_buf_free(&st->ct);
    free(st->chunk);
    if (st->s.pend)
        sodium_free(st->s.pend);
    sodium_free(st);
}

static enum MHD_Result download(struct rf_desk_fctx *f, int64_t seq)
{
    struct stream *st = sodium_malloc(sizeof(*st));
    if (st == NULL)
        return MHD_NO;
    memset(st, 0, sizeof(*st));
    st->fd = -1;
    st->mu = f->mu;
    st->last_active = f->last_active;
    rf_buf_init(&st->ct, (size_t)1 << 30);
    st->s.pend_cap = 2 * RF_ENV_CHUNK + RF_FILE_META_MAX;
    st->s.pend = sodium_malloc(st->s.pend_cap);
    st->chunk = malloc(RF_ENV_CHUNK);
    int rc = st->s.pend && st->chunk ? open_for(f->x, seq, &st->s, &st->o) : RF_ERR_NOMEM;
    if (rc == 0) {
        /* the ciphertext: its file in the cache, or the row's bytes */
        char path[4096];
        rc = rf_cache_file_path(f->x->c, seq, 0, path, sizeof(path));
        if (rc == 0)
            st->fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (rc == 0 && st->fd < 0)
            rc = errno == ENOENT ? rf_cache_object_stream(f->x->c, seq, copy_ct, &st->ct)
                                 : RF_ERR_IO;
    }
    /* the metadata block first: the name for the header, and the first
     * chunk authenticated before a byte is sent */
    while (rc == 0 && !st->s.have_meta && !st->eof)
        if ((rc = stream_more(st)) == 0 && !st->s.have_meta)
            st->s.pend_off = st->s.pend_len;
    if (rc == 0 && !st->s.have_meta)
        rc = RF_ERR_FORMAT;
    if (rc != 0) {
        stream_free(st);
        rf_cmd_errc("desk: cannot open the file", rc);
        return error(f, MHD_HTTP_INTERNAL_SERVER_ERROR, RF_MSGID("desk.error"),
                     media_msgid(RF_ERR_FORMAT));
    }
    char disp[NAME_CAP * 4];
    if (rf_desk_disposition(disp, sizeof(disp), st->s.meta.name, "") != 0)
        snprintf(disp, sizeof(disp), "attachment; filename=\"file\"");
    struct MHD_Response *r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 64 * 1024,
                                                               stream_read, st, stream_free);
    if (r == NULL) {
        stream_free(st);
        return MHD_NO;
    }
    return send_bytes(f->c, r, "application/octet-stream", disp);
}

/* --------------------------------------------- page, preview and strip */

static int set_findings(struct rf_desk_fctx *f, const struct rf_media_report *rep)
{
    int rc = 0;
    for (unsigned i = 0; rc == 0 && i < rep->n; i++) {
        int k = rep->f[i];
        if (k <= 0 || k >= RF_MF_COUNT)
            continue;
        struct rf_tvars *it = rf_tvars_item(f->v, "findings");
        rc = it ? rf_tvars_set(it, "label", rf_media_finding_label(k, f->lang)) : RF_ERR_NOMEM;
    }
    return rc;
}

/* A PDF's preview: the page asked for (?page=K), its number and the
 * document's page count, links to the pages before and after (within
 * RF_MEDIA_PDF_PAGES_MAX). The count comes from a tiny render of that page
 * in the PDF child (the same child and limits as the preview itself): a
 * PDF that poppler cannot render gets "no preview" and nothing else. */
static int pdf_page_vars(struct rf_desk_fctx *f, const struct rf_buf *mem)
{
    unsigned page = pdf_page_arg(f->c), pages = 0;
    char num[16];
    struct rf_buf probe;
    rf_buf_init_secure(&probe, RF_MEDIA_PREVIEW_MAX);
    int prc = page ? rf_media_pdf_preview(&probe, &pages, mem->data, mem->len, page - 1, 16)
                   : RF_ERR_NOT_FOUND;
    rf_buf_free(&probe);
    if (prc != 0)
        return rf_tvars_flag(f->v, "pdf_none");
    int rc = rf_tvars_flag(f->v, "pdf_preview");
    snprintf(num, sizeof(num), "%u", page);
    if (rc == 0)
        rc = rf_tvars_set(f->v, "page", num);
    snprintf(num, sizeof(num), "%u", pages);
    if (rc == 0)
        rc = rf_tvars_set(f->v, "pages", num);
    if (rc == 0 && page > 1) {
        snprintf(num, sizeof(num), "%u", page - 1);
        rc = rf_tvars_set(f->v, "prev_page", num);
    }
    if (rc == 0 && page < pages && page < RF_MEDIA_PDF_PAGES_MAX) {
        snprintf(num, sizeof(num), "%u", page + 1);
        rc = rf_tvars_set(f->v, "next_page", num);
    }
    if (rc == 0 && pages > RF_MEDIA_PDF_PAGES_MAX) {
        snprintf(num, sizeof(num), "%u", RF_MEDIA_PDF_PAGES_MAX);
        rc = rf_tvars_set(f->v, "pages_max", num);
    }
    return rc;
}

static enum MHD_Result file_page(struct rf_desk_fctx *f, const char *cid, int64_t seq,
                                 const struct plain *s, const struct rf_buf *mem, int drc)
{
    char size[32], id[32];
    struct rf_media_report rep;
    memset(&rep, 0, sizeof(rep));
    int mrc = drc;
    if (mrc == 0)
        mrc = rf_media_check(&rep, mem->data, mem->len);
    else
        rep.type = rf_media_detect(mem->data, mem->len);
    rf_out_size(size, sizeof(size), mem->len);
    snprintf(id, sizeof(id), "%lld", (long long)seq);
    int rc = rf_tvars_set(f->v, "id", cid);
    if (rc == 0)
        rc = rf_tvars_set(f->v, "seq", id);
    if (rc == 0)
        rc = rf_tvars_set(f->v, "name", s->meta.name);
    if (rc == 0 && s->meta.type[0])
        rc = rf_tvars_set(f->v, "claimed", s->meta.type);
    if (rc == 0 && drc == 0)
        rc = rf_tvars_set(f->v, "size", size);
    if (rc == 0)
        rc = rf_tvars_set(f->v, "type", rf_desk_tr(f->lang, type_msgid[rep.type]));
    if (rc == 0 && mrc != 0)
        rc = rf_tvars_set(f->v, "not_checked", rf_desk_tr(f->lang, media_msgid(mrc)));
    else if (rc == 0 && rep.type == RF_MEDIA_OTHER)
        rc = rf_tvars_flag(f->v, "other");
    else if (rc == 0 && rep.n > 0) {
        rc = rf_tvars_flag(f->v, "warn");
        if (rc == 0)
            rc = set_findings(f, &rep);
        if (rc == 0 && rf_media_can_strip(rep.type))
            rc = rf_tvars_flag(f->v, "can_strip");
    } else if (rc == 0)
        rc = rf_tvars_flag(f->v, "clean");
    if (rc == 0 && rep.type == RF_MEDIA_PDF)
        rc = rf_tvars_flag(f->v, "pdf");
    if (rc == 0 && rep.type == RF_MEDIA_PDF && drc == 0)
        rc = pdf_page_vars(f, mem);
    if (rc == 0 && drc == 0 && mrc == 0 && (rep.type == RF_MEDIA_JPEG || rep.type == RF_MEDIA_PNG))
        rc = rf_tvars_flag(f->v, "preview");
    if (rc != 0)
        return MHD_NO;
    return rf_desk_send_page(f, MHD_HTTP_OK, "file");
}

static enum MHD_Result preview(struct rf_desk_fctx *f, const struct rf_buf *mem)
{
    struct rf_buf png;
    rf_buf_init_secure(&png, RF_MEDIA_PREVIEW_MAX);
    int rc;
    if (rf_media_detect(mem->data, mem->len) == RF_MEDIA_PDF) {
        unsigned page = pdf_page_arg(f->c);
        rc = page ? rf_media_pdf_preview(&png, NULL, mem->data, mem->len, page - 1, 0)
                  : RF_ERR_NOT_FOUND;
    } else {
        rc = rf_media_preview(&png, mem->data, mem->len, 0);
    }
    enum MHD_Result r;
    if (rc != 0) {
        static const char none[] = "no preview";
        r = rf_desk_send(
            f->c,
            MHD_create_response_from_buffer(sizeof(none) - 1, (void *)none, MHD_RESPMEM_PERSISTENT),
            MHD_HTTP_UNPROCESSABLE_CONTENT, "text/plain; charset=utf-8", FILE_CSP);
    } else {
        r = send_bytes(f->c, rf_desk_response_of(png.data, png.len), "image/png", NULL);
    }
    rf_buf_free(&png);
    return r;
}

static enum MHD_Result strip(struct rf_desk_fctx *f, const struct plain *s,
                             const struct rf_buf *mem)
{
    struct rf_buf out;
    rf_buf_init_secure(&out, mem->len + 1);
    int rc = rf_media_strip(&out, NULL, mem->data, mem->len);
    enum MHD_Result r;
    if (rc != 0) {
        r = error(f, rc == RF_ERR_INVALID ? MHD_HTTP_BAD_REQUEST : MHD_HTTP_UNPROCESSABLE_CONTENT,
                  RF_MSGID("desk.error"),
                  rc == RF_ERR_INVALID ? RF_MSGID("desk.file_cannot_strip") : media_msgid(rc));
    } else {
        char disp[NAME_CAP * 4];
        if (rf_desk_disposition(disp, sizeof(disp), s->meta.name, "-clean") != 0)
            snprintf(disp, sizeof(disp), "attachment; filename=\"file-clean\"");
        r = send_bytes(f->c, rf_desk_response_of(out.data, out.len), "application/octet-stream",
                       disp);
    }
    rf_buf_free(&out);
    return r;
}

enum MHD_Result rf_desk_file(struct rf_desk_fctx *f, const char *cid, const char *action,
                             int is_post)
{
    /* action: "file/SEQ" or "file/SEQ/what" */
    const char *p = action + 5, *what;
    char *end;
    if (*p < '1' || *p > '9')
        return not_found(f);
    errno = 0;
    long long seq = strtoll(p, &end, 10);
    if (errno || (*end != 0 && *end != '/'))
        return not_found(f);
    what = *end == '/' ? end + 1 : "";
    int known = is_post ? strcmp(what, "strip") == 0
                        : (!what[0] || !strcmp(what, "download") || !strcmp(what, "preview.png"));
    if (!known || find_file(f->x, cid, (int64_t)seq) != 0)
        return not_found(f);
    if (strcmp(what, "download") == 0)
        return download(f, (int64_t)seq);

    struct plain *s = sodium_malloc(sizeof(*s));
    if (s == NULL)
        return MHD_NO;
    memset(s, 0, sizeof(*s));
    struct rf_buf mem;
    rf_buf_init_secure(&mem, RF_MEDIA_IN_MAX);
    int rc = decrypt_mem(f->x, (int64_t)seq, s, &mem);
    enum MHD_Result r;
    if (rc != 0 && !(rc == RF_ERR_LIMIT && s->have_meta && !what[0])) {
        if (rc != RF_ERR_LIMIT)
            rf_cmd_errc("desk: cannot open the file", rc);
        r = error(f,
                  rc == RF_ERR_LIMIT ? MHD_HTTP_CONTENT_TOO_LARGE : MHD_HTTP_INTERNAL_SERVER_ERROR,
                  RF_MSGID("desk.error"), media_msgid(rc == RF_ERR_LIMIT ? rc : RF_ERR_FORMAT));
    } else if (!what[0])
        r = file_page(f, cid, (int64_t)seq, s, &mem, rc);
    else if (strcmp(what, "preview.png") == 0)
        r = preview(f, &mem);
    else
        r = strip(f, s, &mem);
    rf_buf_free(&mem);
    sodium_free(s);
    return r;
}

enum MHD_Result rf_desk_send_page(struct rf_desk_fctx *f, unsigned status, const char *page)
{
    rf_buf_reset(f->page);
    int rc = rf_desk_render(f->page, f->lang, page, f->v);
    struct MHD_Response *r = rc == 0 ? rf_desk_response_of(f->page->data, f->page->len) : NULL;
    rf_buf_reset(f->page);
    if (r == NULL)
        return MHD_NO;
    return rf_desk_send(f->c, r, status, "text/html; charset=utf-8", NULL);
}
