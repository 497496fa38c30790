/*
 * tmpl.c - the escaping template engine (see tmpl.h), shared by the
 * person's pages and the desk.
 *
 * Templates are parsed at build time: scripts/gen-pages turns each page of a
 * page set into one flat node list per language, with every {{t:msgid}}
 * already translated and HTML-escaped into the text nodes. Rendering is then
 * a single pass: copy text nodes, escape variables, and walk sections by the
 * index of their end node. There is no node that emits a variable unescaped.
 *
 * Variables (struct rf_tvars) keep names and values in one arena shared by a
 * root and its list items, so a page costs a handful of allocations. The
 * arena is wiped whenever it moves or dies; rf_tvars_new_secure puts it in
 * sodium_malloc memory for plaintext (replies, a codename).
 *
 * Invariants: a section node's `end` is the index just past its END node;
 * nesting depth at render time is bounded by TMPL_DEPTH. In the arena,
 * len <= cap, and every name and value is followed by its NUL inside len;
 * list items share their root's arena. These are assert()ed (on in every
 * build without NDEBUG, the sanitizer build included): the node lists are
 * generated at build time, so a broken one is a bug of gen-pages, not
 * input. The values of variables are input (a person's text): they are
 * escaped, never asserted on.
 */
#include "lib/tmpl.h"
#include "lib/secmem.h"
#include "lib/err.h"

#include <assert.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { OP_TEXT = 0, OP_VAR = 1, OP_SECTION = 2, OP_INVERTED = 3, OP_END = 4 };

#define TMPL_DEPTH 8
#define TMPL_ARENA_MAX (64u * 1024 * 1024)

/* ---------------------------------------------------------------- variables */

enum { TV_STR, TV_FLAG, TV_LIST };

struct arena {
    uint8_t *p;
    size_t len, cap;
    int secure;
};

struct tvar {
    size_t name_off;
    size_t val_off, val_len;
    int type;
    struct rf_tvars **items;
    size_t nitems, capitems;
};

struct rf_tvars {
    struct tvar *vars;
    size_t n, cap;
    struct arena *arena; /* owned by the root, shared by its items */
    int is_root;
};

static void arena_release(uint8_t *p, size_t cap, int secure)
{
    if (p == NULL)
        return;
    if (secure) {
        rf_secmem_free(p);
    } else {
        sodium_memzero(p, cap);
        free(p);
    }
}

/* Appends n bytes and a NUL; *off receives where they start. */
static int arena_put(struct arena *a, const char *s, size_t n, size_t *off)
{
    if (n > TMPL_ARENA_MAX || a->len > TMPL_ARENA_MAX - n - 1)
        return RF_ERR_LIMIT;
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap : 512;
        while (cap < a->len + n + 1)
            cap *= 2;
        uint8_t *p = a->secure ? rf_secmem_alloc(cap) : malloc(cap);
        if (p == NULL)
            return RF_ERR_NOMEM;
        if (a->len > 0)
            memcpy(p, a->p, a->len);
        arena_release(a->p, a->cap, a->secure);
        a->p = p;
        a->cap = cap;
    }
    if (n > 0)
        memcpy(a->p + a->len, s, n);
    a->p[a->len + n] = 0;
    *off = a->len;
    a->len += n + 1;
    assert(a->len <= a->cap);
    return 0;
}

static struct rf_tvars *tvars_alloc(struct arena *a)
{
    struct rf_tvars *v = calloc(1, sizeof(*v));
    if (v != NULL)
        v->arena = a;
    return v;
}

static struct rf_tvars *tvars_new_root(int secure)
{
    struct arena *a = calloc(1, sizeof(*a));
    if (a == NULL)
        return NULL;
    a->secure = secure;
    struct rf_tvars *v = tvars_alloc(a);
    if (v == NULL) {
        free(a);
        return NULL;
    }
    v->is_root = 1;
    return v;
}

struct rf_tvars *rf_tvars_new(void)
{
    return tvars_new_root(0);
}

struct rf_tvars *rf_tvars_new_secure(void)
{
    return tvars_new_root(1);
}

void rf_tvars_free(struct rf_tvars *v)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < v->n; i++) {
        for (size_t j = 0; j < v->vars[i].nitems; j++)
            rf_tvars_free(v->vars[i].items[j]);
        free(v->vars[i].items);
    }
    free(v->vars);
    if (v->is_root) {
        arena_release(v->arena->p, v->arena->cap, v->arena->secure);
        free(v->arena);
    }
    free(v);
}

static const char *var_name(const struct rf_tvars *v, const struct tvar *t)
{
    assert(t->name_off < v->arena->len);
    return (const char *)v->arena->p + t->name_off;
}

static struct tvar *find(const struct rf_tvars *v, const char *name, size_t len)
{
    for (size_t i = 0; i < v->n; i++) {
        const char *nm = var_name(v, &v->vars[i]);
        if (strncmp(nm, name, len) == 0 && nm[len] == 0)
            return &v->vars[i];
    }
    return NULL;
}

/* The variable called name, created (as type) if absent. */
static int slot(struct rf_tvars *v, const char *name, int type, struct tvar **out)
{
    if (v == NULL || name == NULL)
        return RF_ERR_INVALID;
    struct tvar *t = find(v, name, strlen(name));
    if (t != NULL) {
        if (t->type == TV_LIST || type == TV_LIST) {
            if (t->type != type)
                return RF_ERR_INVALID;
        } else if (t->val_len > 0) {
            sodium_memzero(v->arena->p + t->val_off, t->val_len);
        }
        t->type = type;
        *out = t;
        return 0;
    }
    if (v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 8;
        struct tvar *nv = realloc(v->vars, cap * sizeof(*nv));
        if (nv == NULL)
            return RF_ERR_NOMEM;
        v->vars = nv;
        v->cap = cap;
    }
    t = &v->vars[v->n];
    memset(t, 0, sizeof(*t));
    int rc = arena_put(v->arena, name, strlen(name), &t->name_off);
    if (rc != 0)
        return rc;
    t->type = type;
    v->n++;
    *out = t;
    return 0;
}

int rf_tvars_set(struct rf_tvars *v, const char *name, const char *value)
{
    struct tvar *t;
    if (value == NULL)
        return RF_ERR_INVALID;
    int rc = slot(v, name, TV_STR, &t);
    if (rc != 0)
        return rc;
    size_t n = strlen(value);
    size_t off;
    rc = arena_put(v->arena, value, n, &off);
    if (rc != 0) {
        t->val_len = 0;
        return rc;
    }
    t->val_off = off;
    t->val_len = n;
    return 0;
}

int rf_tvars_set_int(struct rf_tvars *v, const char *name, long long value)
{
    char s[24];
    snprintf(s, sizeof(s), "%lld", value);
    return rf_tvars_set(v, name, s);
}

int rf_tvars_flag(struct rf_tvars *v, const char *name)
{
    struct tvar *t;
    int rc = slot(v, name, TV_FLAG, &t);
    if (rc == 0)
        t->val_len = 0;
    return rc;
}

struct rf_tvars *rf_tvars_item(struct rf_tvars *v, const char *name)
{
    struct tvar *t;
    if (slot(v, name, TV_LIST, &t) != 0)
        return NULL;
    if (t->nitems == t->capitems) {
        size_t cap = t->capitems ? t->capitems * 2 : 8;
        struct rf_tvars **ni = realloc(t->items, cap * sizeof(*ni));
        if (ni == NULL)
            return NULL;
        t->items = ni;
        t->capitems = cap;
    }
    struct rf_tvars *item = tvars_alloc(v->arena);
    if (item == NULL)
        return NULL;
    assert(!item->is_root && item->arena == v->arena);
    t->items[t->nitems++] = item;
    return item;
}

/* ---------------------------------------------------------------- rendering */

static const char *const esc_of[256] = {
    ['&'] = "&amp;",  ['<'] = "&lt;",  ['>'] = "&gt;",  ['"'] = "&quot;",
    ['\''] = "&#39;", ['`'] = "&#96;", ['='] = "&#61;",
};

static int put_escaped(struct rf_buf *out, const uint8_t *s, size_t n)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        const char *e = esc_of[s[i]];
        if (e == NULL)
            continue;
        int rc = rf_buf_put(out, s + run, i - run);
        if (rc == 0)
            rc = rf_buf_put_str(out, e);
        if (rc != 0)
            return rc;
        run = i + 1;
    }
    return rf_buf_put(out, s + run, n - run);
}

struct ctx {
    const struct rf_tvars *stack[TMPL_DEPTH + 1];
    size_t depth;
};

static const struct tvar *lookup(const struct ctx *c, const struct rf_tmpl_node *nd,
                                 const struct rf_tvars **owner)
{
    for (size_t i = c->depth; i-- > 0;) {
        if (c->stack[i] == NULL)
            continue;
        const struct tvar *t = find(c->stack[i], nd->s, nd->len);
        if (t != NULL) {
            *owner = c->stack[i];
            return t;
        }
    }
    return NULL;
}

static int truthy(const struct tvar *t)
{
    if (t == NULL)
        return 0;
    if (t->type == TV_LIST)
        return t->nitems > 0;
    return t->type == TV_FLAG || t->val_len > 0;
}

/* A section node at i, in the range [.., end) being rendered: its END node
 * lies after it and inside the range. */
static void section_check(const struct rf_tmpl_node *nodes, size_t i, size_t end)
{
    assert(nodes[i].end >= i + 2 && nodes[i].end <= end);
    assert(nodes[nodes[i].end - 1].op == OP_END);
    (void)nodes, (void)i, (void)end;
}

static int render(struct rf_buf *out, const struct rf_tmpl_node *nodes, size_t i, size_t end,
                  struct ctx *c)
{
    int rc = 0;
    assert(c->depth >= 1 && c->depth <= TMPL_DEPTH);
    while (i < end && rc == 0) {
        const struct rf_tmpl_node *nd = &nodes[i];
        const struct rf_tvars *owner = NULL;
        const struct tvar *t;
        switch (nd->op) {
        case OP_TEXT:
            rc = rf_buf_put(out, nd->s, nd->len);
            i++;
            break;
        case OP_VAR:
            t = lookup(c, nd, &owner);
            assert(t == NULL || t->type != TV_STR ||
                   t->val_off + t->val_len < owner->arena->len); /* its NUL inside too */
            if (t != NULL && t->type == TV_STR)
                rc = put_escaped(out, owner->arena->p + t->val_off, t->val_len);
            i++;
            break;
        case OP_SECTION:
        case OP_INVERTED:
            section_check(nodes, i, end);
            t = lookup(c, nd, &owner);
            if (nd->op == OP_INVERTED) {
                if (!truthy(t))
                    rc = render(out, nodes, i + 1, nd->end - 1u, c);
            } else if (t != NULL && t->type == TV_LIST) {
                if (c->depth >= TMPL_DEPTH)
                    return RF_ERR_LIMIT;
                for (size_t k = 0; k < t->nitems && rc == 0; k++) {
                    c->stack[c->depth++] = t->items[k];
                    rc = render(out, nodes, i + 1, nd->end - 1u, c);
                    c->depth--;
                }
            } else if (truthy(t)) {
                rc = render(out, nodes, i + 1, nd->end - 1u, c);
            }
            i = nd->end;
            break;
        default: /* OP_END of the range being rendered */
            assert(nd->op == OP_END);
            i++;
            break;
        }
    }
    return rc;
}

static const struct rf_tmpl_page *page_find(const struct rf_tmpl_set *s, const char *name)
{
    size_t lo = 0, hi = s->npages;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(name, s->pages[mid].name);
        if (cmp == 0)
            return &s->pages[mid];
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int rf_tmpl_render(const struct rf_tmpl_set *s, struct rf_buf *out, enum rf_lang lang,
                   const char *page, const struct rf_tvars *v)
{
    if (s == NULL || out == NULL || page == NULL || (unsigned)lang >= RF_LANG_COUNT)
        return RF_ERR_INVALID;
    const struct rf_tmpl_page *p = page_find(s, page);
    if (p == NULL)
        return RF_ERR_NOT_FOUND;
    struct ctx c = {.stack = {v}, .depth = 1};
    const struct rf_tmpl_list *l = &p->lang[lang];
    return render(out, l->nodes, 0, l->n, &c);
}

static const char *cat_find(const struct rf_tmpl_cat *cat, const char *msgid)
{
    size_t lo = 0, hi = cat->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int cmp = strcmp(msgid, cat->msgs[mid].id);
        if (cmp == 0)
            return cat->msgs[mid].text;
        if (cmp < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

const char *rf_tmpl_tr(const struct rf_tmpl_set *s, enum rf_lang lang, const char *msgid)
{
    if (msgid == NULL)
        return "";
    const char *t = NULL;
    if (s != NULL && (unsigned)lang < RF_LANG_COUNT)
        t = cat_find(&s->cats[lang], msgid);
    if (s != NULL && t == NULL)
        t = cat_find(&s->cats[RF_LANG_EN], msgid);
    return t != NULL ? t : msgid;
}
