/*
 * tmpl.h - the escaping template engine shared by the person's pages (the
 * server, src/server/tmpl.h) and the caseworker's desk (the client,
 * src/client/desk_tmpl.c): variables, sections, and rendering of a page set
 * compiled by scripts/gen-pages. Syntax of a template:
 *   {{t:msgid}}        the translation of msgid in the request's language
 *                      (po/<lang>.po; msgid is the English text's key), escaped
 *   {{v:name}}         a variable, HTML-escaped (attribute-safe)
 *   {{#name}}..{{/name}}  section: shown if name is set non-empty / a flag, or
 *                      repeated for each item of a list named name
 *   {{^name}}..{{/name}}  shown if name is unset or empty
 * There is no way to emit a variable unescaped.
 *
 * A page set (struct rf_tmpl_set) is what one gen-pages run produces: the
 * pages, the catalogues and the Content-Security-Policy. Each layer that
 * serves pages owns one set and includes its generated header in exactly one
 * file.
 */
#ifndef RF_LIB_TMPL_H
#define RF_LIB_TMPL_H

#include "lib/buf.h"
#include "lib/codename.h"

#include <stddef.h>

/* The compiled form gen-pages writes (do not build these by hand). */
struct rf_tmpl_node {
    unsigned char op;
    unsigned short end; /* sections: index just past the matching END */
    unsigned len;
    const char *s; /* text, or a variable / section name */
};
struct rf_tmpl_list {
    const struct rf_tmpl_node *nodes;
    size_t n;
};
struct rf_tmpl_page {
    const char *name;
    struct rf_tmpl_list lang[RF_LANG_COUNT];
};
struct rf_tmpl_msg {
    const char *id;
    const char *text;
};
struct rf_tmpl_cat {
    const struct rf_tmpl_msg *msgs;
    size_t n;
};
struct rf_tmpl_set {
    const struct rf_tmpl_page *pages; /* sorted by name */
    size_t npages;
    const struct rf_tmpl_cat *cats; /* RF_LANG_COUNT, each sorted by id */
    const char *csp;
};

struct rf_tvars;

struct rf_tvars *rf_tvars_new(void);
/* Same, values kept in sodium_malloc memory: for plaintext and codenames. */
struct rf_tvars *rf_tvars_new_secure(void);
void rf_tvars_free(struct rf_tvars *v); /* wipes values */
int rf_tvars_set(struct rf_tvars *v, const char *name, const char *value);
int rf_tvars_set_int(struct rf_tvars *v, const char *name, long long value);
int rf_tvars_flag(struct rf_tvars *v, const char *name);
/* Adds an item to list `name` and returns its vars (owned by v). */
struct rf_tvars *rf_tvars_item(struct rf_tvars *v, const char *name);

/* Renders page of set s in lang into out; RF_ERR_NOT_FOUND for no such page. */
int rf_tmpl_render(const struct rf_tmpl_set *s, struct rf_buf *out, enum rf_lang lang,
                   const char *page, const struct rf_tvars *v);
/* Translation of msgid in lang from s's catalogues (English, else msgid
 * itself, if missing). */
const char *rf_tmpl_tr(const struct rf_tmpl_set *s, enum rf_lang lang, const char *msgid);

#endif
