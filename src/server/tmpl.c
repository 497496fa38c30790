/*
 * tmpl.c - the person's pages as a page set of the template engine
 * (lib/tmpl.h): src/server/pages/ and po/, compiled by scripts/gen-pages
 * into tmpl_gen.h, which only this file includes.
 */
#include "server/tmpl.h"

#include <stddef.h>

#include "tmpl_gen.h"

_Static_assert(TMPL_NLANG == RF_LANG_COUNT, "one catalogue per enum rf_lang");

static const struct rf_tmpl_set pages = {
    tpages,
    sizeof(tpages) / sizeof(tpages[0]),
    tcats,
    tmpl_csp,
};

int rf_page_render(struct rf_buf *out, enum rf_lang lang, const char *page,
                   const struct rf_tvars *v)
{
    return rf_tmpl_render(&pages, out, lang, page, v);
}

const char *rf_tmpl_csp(void)
{
    return pages.csp;
}

const char *rf_tr(enum rf_lang lang, const char *msgid)
{
    return rf_tmpl_tr(&pages, lang, msgid);
}
