/*
 * filemeta.c - the metadata block at the front of a file object's plaintext
 * (format in envelope.h and docs/protocol.md), and the sanitizer that turns
 * a name chosen by a stranger into one a caseworker's client may create.
 *
 * Invariants: a parsed name is 1..255 bytes of valid UTF-8 without NUL, '/'
 * or '\\'; a parsed type is 0..127 printable ASCII bytes. Both are
 * NUL-terminated in struct rf_filemeta. The parser is incremental: it
 * returns RF_ERR_TRUNCATED until the whole block is present, and refuses a
 * wrong magic as soon as the bytes seen contradict it.
 */
#include "lib/envelope.h"
#include "lib/err.h"

#include <string.h>
#include <unistr.h>

static int name_ok(const uint8_t *p, size_t n)
{
    if (n < 1)
        return RF_ERR_FORMAT;
    if (n > RF_FILEMETA_NAME_MAX)
        return RF_ERR_LIMIT;
    if (u8_check(p, n) != NULL)
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < n; i++)
        if (p[i] == 0 || p[i] == '/' || p[i] == '\\')
            return RF_ERR_FORMAT;
    return 0;
}

static int type_ok(const uint8_t *p, size_t n)
{
    if (n > RF_FILEMETA_TYPE_MAX)
        return RF_ERR_LIMIT;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] > 0x7e)
            return RF_ERR_FORMAT;
    return 0;
}

int rf_filemeta_encode(struct rf_buf *out, const char *name, size_t name_len, const char *type,
                       size_t type_len)
{
    int rc = name_ok((const uint8_t *)name, name_len);
    if (rc == 0)
        rc = type_ok((const uint8_t *)type, type_len);
    if (rc != 0)
        return rc;
    size_t before = out->len;
    rc = rf_buf_put(out, RF_FILEMETA_MAGIC, 4);
    if (rc == 0)
        rc = rf_buf_put_u16(out, (uint16_t)name_len);
    if (rc == 0)
        rc = rf_buf_put(out, name, name_len);
    if (rc == 0)
        rc = rf_buf_put_u8(out, (uint8_t)type_len);
    if (rc == 0)
        rc = rf_buf_put(out, type, type_len);
    if (rc != 0)
        out->len = before;
    return rc;
}

int rf_filemeta_parse(struct rf_filemeta *m, size_t *consumed, const uint8_t *p, size_t n)
{
    struct rf_reader r;
    const uint8_t *magic, *name, *type;
    uint16_t name_len;
    uint8_t type_len;
    size_t k = n < 4 ? n : 4;
    if (k > 0 && memcmp(p, RF_FILEMETA_MAGIC, k) != 0)
        return RF_ERR_FORMAT;
    rf_reader_init(&r, p, n);
    int rc = rf_get_ptr(&r, &magic, 4);
    if (rc == 0)
        rc = rf_get_u16(&r, &name_len);
    if (rc != 0)
        return rc;
    if (name_len < 1)
        return RF_ERR_FORMAT;
    if (name_len > RF_FILEMETA_NAME_MAX)
        return RF_ERR_LIMIT;
    if ((rc = rf_get_ptr(&r, &name, name_len)) != 0)
        return rc;
    if ((rc = name_ok(name, name_len)) != 0)
        return rc;
    if ((rc = rf_get_u8(&r, &type_len)) != 0)
        return rc;
    if (type_len > RF_FILEMETA_TYPE_MAX)
        return RF_ERR_LIMIT;
    if ((rc = rf_get_ptr(&r, &type, type_len)) != 0)
        return rc;
    if ((rc = type_ok(type, type_len)) != 0)
        return rc;
    memcpy(m->name, name, name_len);
    m->name[name_len] = 0;
    memcpy(m->type, type, type_len);
    m->type[type_len] = 0;
    *consumed = r.off;
    return 0;
}

/* Characters replaced by '_': controls (C0, DEL, C1), separators and the
 * characters Windows refuses in names, and the Unicode controls that reorder
 * text ("invoice<RLO>fdp.exe" shows as "invoiceexe.pdf"). */
static int unsafe_char(ucs4_t c)
{
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f))
        return 1;
    if (c < 0x80)
        return strchr("/\\:*?\"<>|", (int)c) != NULL;
    return c == 0x200e || c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0xfeff;
}

int rf_filemeta_safe_name(char *out, size_t cap, const char *name)
{
    if (out == NULL || cap < 5)
        return RF_ERR_INVALID;
    size_t limit = cap - 1 < RF_FILEMETA_NAME_MAX ? cap - 1 : RF_FILEMETA_NAME_MAX;
    const uint8_t *s = (const uint8_t *)(name ? name : "");
    const uint8_t *end = s + strlen((const char *)s);
    size_t o = 0;
    while (s < end) {
        ucs4_t c;
        int k = u8_mbtoucr(&c, s, (size_t)(end - s));
        size_t step = k > 0 ? (size_t)k : 1;
        const uint8_t *emit = s;
        size_t emit_n = step;
        if (k <= 0 || unsafe_char(c)) {
            emit = (const uint8_t *)"_";
            emit_n = 1;
        }
        s += step;
        if (o == 0 && (emit[0] == '.' || emit[0] == ' '))
            continue; /* no hidden files, no "..", no leading blanks */
        if (o + emit_n > limit)
            break;
        memcpy(out + o, emit, emit_n);
        o += emit_n;
    }
    while (o > 0 && (out[o - 1] == '.' || out[o - 1] == ' '))
        o--; /* Windows drops these, turning "a.exe." into "a.exe" */
    if (o == 0) {
        memcpy(out, "file", 5);
        return 0;
    }
    out[o] = 0;
    return 0;
}
