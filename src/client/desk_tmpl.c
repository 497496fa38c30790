/*
 * desk_tmpl.c - the desk's pages as a page set of the template engine
 * (lib/tmpl.h): src/client/desk/ and po/, compiled by scripts/gen-pages
 * into desk_gen.h, which only this file includes.
 */
#include "client/desk_priv.h"

#include <stddef.h>

#include "desk_gen.h"

_Static_assert(TMPL_NLANG == RF_LANG_COUNT, "one catalogue per enum rf_lang");

static const struct rf_tmpl_set desk_pages = {
    tpages,
    sizeof(tpages) / sizeof(tpages[0]),
    tcats,
    tmpl_csp,
};

const char *const rf_desk_lang_codes[RF_LANG_COUNT] = {"en", "ru", "uk"};

int rf_desk_render(struct rf_buf *out, enum rf_lang lang, const char *page,
                   const struct rf_tvars *v)
{
    return rf_tmpl_render(&desk_pages, out, lang, page, v);
}

const char *rf_desk_csp(void)
{
    return desk_pages.csp;
}

const char *rf_desk_tr(enum rf_lang lang, const char *msgid)
{
    return rf_tmpl_tr(&desk_pages, lang, msgid);
}
