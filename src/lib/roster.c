/*
 * roster.c - encoding, signing and verifying the chain of rosters (format in
 * roster.h and docs/protocol.md).
 *
 * The encoding is canonical: rf_roster_parse accepts exactly the bytes that
 * rf_roster_sign writes for the same struct (fixed-width fields, exact
 * lengths, no trailing bytes), so a roster's hash names one roster.
 * Byte-level malformation is RF_ERR_FORMAT (RF_ERR_LIMIT / RF_ERR_VERSION
 * where apt); a well-formed roster that breaks a rule (no admin, duplicate
 * name or key, wrong link in the chain, signer not allowed) is
 * RF_ERR_ROSTER; a signature that does not verify is RF_ERR_SIGNATURE.
 */
#include "lib/roster.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <unistr.h>

#define RS_MAGIC "RFGR"
#define RS_VERSION 1
#define RS_DOMAIN "refuge-roster-v1"
#define RS_DOMAIN_LEN 16
#define RS_TRAILER (32 + 64)

static int name_check(const uint8_t *p, size_t n)
{
    if (n < 1 || n > RF_NAME_MAX)
        return RF_ERR_FORMAT;
    if (u8_check(p, n) != NULL)
        return RF_ERR_FORMAT;
    for (size_t i = 0; i < n; i++)
        if (p[i] < 0x20 || p[i] == 0x7f)
            return RF_ERR_FORMAT;
    return 0;
}

/* The rules on members that do not concern bytes. */
static int members_check(const struct rf_roster *r)
{
    int admins = 0;
    for (size_t i = 0; i < r->n; i++) {
        const struct rf_member *a = &r->members[i];
        admins += a->role == RF_ROLE_ADMIN;
        for (size_t j = i + 1; j < r->n; j++) {
            const struct rf_member *b = &r->members[j];
            if (strcmp(a->name, b->name) == 0 || memcmp(a->box_pk, b->box_pk, 32) == 0 ||
                memcmp(a->sign_pk, b->sign_pk, 32) == 0)
                return RF_ERR_ROSTER;
        }
    }
    return admins > 0 ? 0 : RF_ERR_ROSTER;
}

static int body_encode(struct rf_buf *b, const struct rf_roster *r)
{
    int rc = rf_buf_put(b, RS_MAGIC, 4);
    if (rc == 0)
        rc = rf_buf_put_u8(b, RS_VERSION);
    if (rc == 0)
        rc = rf_buf_put_u32(b, r->version);
    if (rc == 0)
        rc = rf_buf_put(b, r->prev_hash, 32);
    if (rc == 0)
        rc = rf_buf_put_u16(b, r->n);
    for (size_t i = 0; rc == 0 && i < r->n; i++) {
        const struct rf_member *m = &r->members[i];
        size_t nl = strnlen(m->name, sizeof(m->name));
        rc = rf_buf_put_u8(b, (uint8_t)nl);
        if (rc == 0)
            rc = rf_buf_put(b, m->name, nl);
        if (rc == 0)
            rc = rf_buf_put_u8(b, m->role);
        if (rc == 0)
            rc = rf_buf_put(b, m->box_pk, 32);
        if (rc == 0)
            rc = rf_buf_put(b, m->sign_pk, 32);
    }
    return rc;
}

int rf_roster_sign(struct rf_buf *out, struct rf_roster *r, const struct rf_staff_keys *signer)
{
    if (r->n < 1 || r->n > RF_ROSTER_MAX_MEMBERS || r->version < 1)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < r->n; i++) {
        const struct rf_member *m = &r->members[i];
        size_t nl = strnlen(m->name, sizeof(m->name));
        if (nl > RF_NAME_MAX || name_check((const uint8_t *)m->name, nl) != 0 ||
            m->role > RF_ROLE_ADMIN)
            return RF_ERR_INVALID;
    }
    int rc = members_check(r);
    if (rc != 0)
        return rc;
    struct rf_buf msg;
    rf_buf_init(&msg, RS_DOMAIN_LEN + RF_ROSTER_MAX_BYTES);
    rc = rf_buf_put(&msg, RS_DOMAIN, RS_DOMAIN_LEN);
    if (rc == 0)
        rc = body_encode(&msg, r);
    if (rc == 0 && msg.len - RS_DOMAIN_LEN + RS_TRAILER > RF_ROSTER_MAX_BYTES)
        rc = RF_ERR_LIMIT;
    if (rc != 0)
        goto out;
    memcpy(r->signer_pk, signer->sign_pk, 32);
    crypto_sign_detached(r->sig, NULL, msg.data, msg.len, signer->sign_sk);
    size_t before = out->len;
    rc = rf_buf_put(out, msg.data + RS_DOMAIN_LEN, msg.len - RS_DOMAIN_LEN);
    if (rc == 0)
        rc = rf_buf_put(out, r->signer_pk, 32);
    if (rc == 0)
        rc = rf_buf_put(out, r->sig, 64);
    if (rc != 0)
        out->len = before;
out:
    rf_buf_free(&msg);
    return rc;
}

static int member_parse(struct rf_reader *rd, struct rf_member *m)
{
    uint8_t nl;
    const uint8_t *name;
    int rc = rf_get_u8(rd, &nl);
    if (rc == 0)
        rc = rf_get_ptr(rd, &name, nl);
    if (rc == 0)
        rc = name_check(name, nl);
    if (rc == 0)
        rc = rf_get_u8(rd, &m->role);
    if (rc == 0 && m->role > RF_ROLE_ADMIN)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_bytes(rd, m->box_pk, 32);
    if (rc == 0)
        rc = rf_get_bytes(rd, m->sign_pk, 32);
    if (rc != 0)
        return rc;
    memcpy(m->name, name, nl);
    m->name[nl] = 0;
    return 0;
}

int rf_roster_parse(struct rf_roster *r, const uint8_t *p, size_t n)
{
    struct rf_reader rd;
    const uint8_t *magic;
    uint8_t fmt;
    if (n > RF_ROSTER_MAX_BYTES)
        return RF_ERR_LIMIT;
    memset(r, 0, sizeof(*r));
    rf_reader_init(&rd, p, n);
    int rc = rf_get_ptr(&rd, &magic, 4);
    if (rc == 0 && memcmp(magic, RS_MAGIC, 4) != 0)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_u8(&rd, &fmt);
    if (rc == 0 && fmt != RS_VERSION)
        rc = RF_ERR_VERSION;
    if (rc == 0)
        rc = rf_get_u32(&rd, &r->version);
    if (rc == 0 && r->version < 1)
        rc = RF_ERR_FORMAT;
    if (rc == 0)
        rc = rf_get_bytes(&rd, r->prev_hash, 32);
    if (rc == 0)
        rc = rf_get_u16(&rd, &r->n);
    if (rc == 0 && r->n < 1)
        rc = RF_ERR_FORMAT;
    if (rc == 0 && r->n > RF_ROSTER_MAX_MEMBERS)
        rc = RF_ERR_LIMIT;
    for (size_t i = 0; rc == 0 && i < r->n; i++)
        rc = member_parse(&rd, &r->members[i]);
    if (rc == 0)
        rc = rf_get_bytes(&rd, r->signer_pk, 32);
    if (rc == 0)
        rc = rf_get_bytes(&rd, r->sig, 64);
    if (rc == 0)
        rc = rf_reader_expect_end(&rd);
    if (rc == 0)
        rc = members_check(r);
    if (rc != 0) {
        memset(r, 0, sizeof(*r));
        return rc == RF_ERR_TRUNCATED ? RF_ERR_FORMAT : rc;
    }
    return 0;
}

void rf_roster_hash(uint8_t out[32], const uint8_t *raw, size_t n)
{
    crypto_generichash(out, 32, raw, n, NULL, 0);
}

int rf_roster_find(const struct rf_roster *r, const uint8_t sign_pk[32])
{
    for (size_t i = 0; i < r->n; i++)
        if (memcmp(r->members[i].sign_pk, sign_pk, 32) == 0)
            return (int)i;
    return -1;
}

static int is_admin(const struct rf_roster *r, const uint8_t sign_pk[32])
{
    int i = rf_roster_find(r, sign_pk);
    return i >= 0 && r->members[i].role == RF_ROLE_ADMIN;
}

/* Ed25519 over "refuge-roster-v1" || body, body = raw minus the trailer. */
static int signature_check(const struct rf_roster *r, const uint8_t *raw, size_t n)
{
    size_t body = n - RS_TRAILER;
    uint8_t *msg = malloc(RS_DOMAIN_LEN + body);
    if (msg == NULL)
        return RF_ERR_NOMEM;
    memcpy(msg, RS_DOMAIN, RS_DOMAIN_LEN);
    memcpy(msg + RS_DOMAIN_LEN, raw, body);
    int ok = crypto_sign_verify_detached(r->sig, msg, RS_DOMAIN_LEN + body, r->signer_pk) == 0;
    free(msg);
    return ok ? 0 : RF_ERR_SIGNATURE;
}

static int link_check(const struct rf_roster *r, const struct rf_roster *prev,
                      const uint8_t *prev_raw, size_t prev_n, const uint8_t pinned_admin[32])
{
    static const uint8_t zero[32];
    if (prev == NULL) {
        if (pinned_admin == NULL)
            return RF_ERR_INVALID;
        if (r->version != 1 || sodium_memcmp(r->prev_hash, zero, 32) != 0)
            return RF_ERR_ROSTER;
        if (sodium_memcmp(r->signer_pk, pinned_admin, 32) != 0 || !is_admin(r, r->signer_pk))
            return RF_ERR_ROSTER;
        return 0;
    }
    if (prev_raw == NULL)
        return RF_ERR_INVALID;
    uint8_t h[32];
    rf_roster_hash(h, prev_raw, prev_n);
    if (prev->version == UINT32_MAX || r->version != prev->version + 1)
        return RF_ERR_ROSTER;
    if (sodium_memcmp(r->prev_hash, h, 32) != 0)
        return RF_ERR_ROSTER;
    if (!is_admin(prev, r->signer_pk))
        return RF_ERR_ROSTER;
    return 0;
}

int rf_roster_verify(struct rf_roster *out, const uint8_t *raw, size_t n,
                     const struct rf_roster *prev, const uint8_t *prev_raw, size_t prev_n,
                     const uint8_t pinned_admin[32])
{
    int rc = rf_roster_parse(out, raw, n);
    if (rc == 0)
        rc = signature_check(out, raw, n);
    if (rc == 0)
        rc = link_check(out, prev, prev_raw, prev_n, pinned_admin);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
