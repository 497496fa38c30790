/*
 * tmpl.h - the one way HTML is produced: templates with escaping by default.
 *
 * Pages are files in src/server/pages/NAME.html compiled into the binary
 * (the engine and its syntax: lib/tmpl.h). In a template:
 *   {{t:msgid}}        the translation of msgid in the request's language
 *                      (po/<lang>.po; msgid is the English text's key), escaped
 *   {{v:name}}         a variable, HTML-escaped (attribute-safe)
 *   {{#name}}..{{/name}}  section: shown if name is set non-empty / a flag, or
 *                      repeated for each item of a list named name
 *   {{^name}}..{{/name}}  shown if name is unset or empty
 * There is no way to emit a variable unescaped.
 */
#ifndef RF_TMPL_H
#define RF_TMPL_H

#include "lib/tmpl.h"

/* Renders page (e.g. "landing") in lang into out. */
int rf_page_render(struct rf_buf *out, enum rf_lang lang, const char *page,
                   const struct rf_tvars *v);
/* Content-Security-Policy header value for every page: default-src 'none';
 * style-src with the hash of the pages' one inline stylesheet; form-action
 * 'self'; frame-ancestors 'none'; base-uri 'none'. */
const char *rf_tmpl_csp(void);
/* Translation of msgid in lang (msgid itself if missing). */
const char *rf_tr(enum rf_lang lang, const char *msgid);

#endif
