/*
 * checkpoint.c - the hash chain of verified case events and the signed
 * checkpoint over it (format in checkpoint.h and docs/protocol.md
 * "Checkpoints").
 *
 * Why each chain element is (previous link, seq, kind, case id, hash of the
 * signed bytes): a checkpoint stands in for the signature check of each
 * object below it, so an element binds exactly what that check took and
 * where the object stood. The signed bytes carry the author's key, the
 * signature and the body (what the author signed); the case id is not in
 * them but in the signed message (section 8), supplied by where the object
 * lives, so it is bound here too or a server could move an event below a
 * checkpoint to another case; the kind names which verification applied
 * (events and replies are signed under different domains), so a later
 * version can cover replies without ambiguity; the seq fixes the order and
 * the place, so dropping, inserting or reordering anything changes every
 * link after it. Every field has a fixed length (83 bytes), so no two
 * elements encode alike. The previous link comes first: the chain is a
 * plain iterated hash, and BLAKE2b's personalisation separates it from every
 * other BLAKE2b in Refuge at no cost (one compression per element).
 *
 * Invariants: parsing goes through one struct rf_reader; every output
 * parameter is written only on success; the chain is unchanged when an add
 * is refused. Nothing here is secret except the signer's key, which stays
 * in the caller's rf_staff_keys.
 */
#include "lib/checkpoint.h"
#include "lib/buf.h"
#include "lib/err.h"

#include <sodium.h>
#include <string.h>

#define CK_PERSONAL "refuge-ckpt-v1" /* 14 bytes, zero-padded to 16 */
#define CK_DOMAIN "refuge-checkpoint-v1"
#define CK_DOMAIN_LEN 20
#define CK_ELEMENT_BYTES (32 + 8 + 1 + RF_CKPT_CASE_LEN + 32)

_Static_assert(sizeof(CK_DOMAIN) - 1 == CK_DOMAIN_LEN, "domain length");
_Static_assert(sizeof(CK_PERSONAL) <= crypto_generichash_blake2b_PERSONALBYTES, "personal");
_Static_assert(RF_CKPT_BYTES == 153, "checkpoint layout");

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 3; i >= 0; i--) {
        p[i] = (uint8_t)(v & 0xff);
        v >>= 8;
    }
}

/* Exactly RF_CKPT_CASE_LEN ASCII letters or digits, then the NUL (event.h's
 * rule for a case id). */
static int case_check(const char *case_id)
{
    if (case_id == NULL)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < RF_CKPT_CASE_LEN; i++) {
        char c = case_id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!ok)
            return RF_ERR_INVALID; /* also stops at a NUL: too short */
    }
    return case_id[RF_CKPT_CASE_LEN] == '\0' ? 0 : RF_ERR_INVALID;
}

void rf_ckpt_chain_init(struct rf_ckpt_chain *c)
{
    memset(c, 0, sizeof(*c));
}

void rf_ckpt_obj_hash(uint8_t out[32], const uint8_t *obj, size_t n)
{
    crypto_generichash(out, 32, obj, n, NULL, 0);
}

int rf_ckpt_chain_add_hash(struct rf_ckpt_chain *c, uint64_t seq, uint8_t kind, const char *case_id,
                           const uint8_t obj_hash[32])
{
    if (c == NULL || obj_hash == NULL || kind == 0 || seq <= c->last_seq || seq > RF_CKPT_SEQ_MAX ||
        case_check(case_id) != 0)
        return RF_ERR_INVALID;
    uint8_t el[CK_ELEMENT_BYTES], personal[crypto_generichash_blake2b_PERSONALBYTES] = {0};
    memcpy(personal, CK_PERSONAL, sizeof(CK_PERSONAL) - 1);
    memcpy(el, c->chain, 32);
    put_u64(el + 32, seq);
    el[40] = kind;
    memcpy(el + 41, case_id, RF_CKPT_CASE_LEN);
    memcpy(el + 41 + RF_CKPT_CASE_LEN, obj_hash, 32);
    if (crypto_generichash_blake2b_salt_personal(c->chain, 32, el, sizeof(el), NULL, 0, NULL,
                                                 personal) != 0)
        return RF_ERR_CRYPTO; /* not reached: the lengths are libsodium's */
    c->last_seq = seq;
    c->count++;
    return 0;
}

int rf_ckpt_chain_add(struct rf_ckpt_chain *c, uint64_t seq, uint8_t kind, const char *case_id,
                      const uint8_t *obj, size_t n)
{
    if (obj == NULL || n == 0)
        return RF_ERR_INVALID;
    uint8_t h[32];
    rf_ckpt_obj_hash(h, obj, n);
    return rf_ckpt_chain_add_hash(c, seq, kind, case_id, h);
}

/* The signed message: the domain, then the checkpoint's first
 * RF_CKPT_SIGNED_BYTES. */
static void signed_message(uint8_t msg[CK_DOMAIN_LEN + RF_CKPT_SIGNED_BYTES], const uint8_t *p)
{
    memcpy(msg, CK_DOMAIN, CK_DOMAIN_LEN);
    memcpy(msg + CK_DOMAIN_LEN, p, RF_CKPT_SIGNED_BYTES);
}

int rf_ckpt_make(uint8_t out[RF_CKPT_BYTES], const struct rf_ckpt_chain *c, uint32_t roster_version,
                 const struct rf_staff_keys *k)
{
    if (out == NULL || c == NULL || k == NULL || c->count == 0 || c->count > c->last_seq ||
        c->last_seq > RF_CKPT_SEQ_MAX || roster_version == 0)
        return RF_ERR_INVALID;
    uint8_t p[RF_CKPT_BYTES], msg[CK_DOMAIN_LEN + RF_CKPT_SIGNED_BYTES];
    memcpy(p, RF_CKPT_MAGIC, 4);
    p[4] = RF_CKPT_VERSION;
    put_u32(p + 5, roster_version);
    put_u64(p + 9, c->last_seq);
    put_u64(p + 17, c->count);
    memcpy(p + 25, c->chain, 32);
    memcpy(p + 57, k->sign_pk, 32);
    signed_message(msg, p);
    if (crypto_sign_detached(p + RF_CKPT_SIGNED_BYTES, NULL, msg, sizeof(msg), k->sign_sk) != 0)
        return RF_ERR_CRYPTO;
    memcpy(out, p, sizeof(p));
    return 0;
}

int rf_ckpt_parse(struct rf_ckpt *out, const uint8_t *p, size_t n)
{
    if (out == NULL || (p == NULL && n > 0))
        return RF_ERR_INVALID;
    size_t m = n < 4 ? n : 4;
    if (m > 0 && memcmp(p, RF_CKPT_MAGIC, m) != 0)
        return RF_ERR_FORMAT; /* a wrong prefix is refused before it is complete */
    struct rf_reader r;
    struct rf_ckpt ck;
    uint8_t magic[4], version = 0;
    int rc;
    rf_reader_init(&r, p, n);
    if ((rc = rf_get_bytes(&r, magic, 4)) != 0 || (rc = rf_get_u8(&r, &version)) != 0)
        return rc;
    if (version != RF_CKPT_VERSION)
        return RF_ERR_VERSION;
    if ((rc = rf_get_u32(&r, &ck.roster_version)) != 0 ||
        (rc = rf_get_u64(&r, &ck.last_seq)) != 0 || (rc = rf_get_u64(&r, &ck.count)) != 0 ||
        (rc = rf_get_bytes(&r, ck.chain, 32)) != 0 ||
        (rc = rf_get_bytes(&r, ck.signer_pk, 32)) != 0 || (rc = rf_get_bytes(&r, ck.sig, 64)) != 0)
        return rc;
    if ((rc = rf_reader_expect_end(&r)) != 0)
        return rc;
    if (ck.roster_version == 0 || ck.count == 0 || ck.last_seq > RF_CKPT_SEQ_MAX ||
        ck.count > ck.last_seq)
        return RF_ERR_FORMAT;
    *out = ck;
    return 0;
}

/* The signer is an admin of every roster version from v to nrosters. */
static int signer_admin(const uint8_t pk[32], uint32_t v, const struct rf_roster *const *rosters,
                        size_t nrosters)
{
    if (rosters == NULL || v == 0 || v > nrosters)
        return RF_ERR_ROSTER;
    for (size_t i = v - 1; i < nrosters; i++) {
        const struct rf_roster *r = rosters[i];
        if (r == NULL || r->version != i + 1)
            return RF_ERR_ROSTER;
        int at = rf_roster_find(r, pk);
        if (at < 0 || r->members[at].role != RF_ROLE_ADMIN)
            return RF_ERR_ROSTER;
    }
    return 0;
}

int rf_ckpt_verify(struct rf_ckpt *out, const uint8_t *p, size_t n,
                   const struct rf_roster *const *rosters, size_t nrosters)
{
    struct rf_ckpt ck;
    int rc = rf_ckpt_parse(&ck, p, n);
    if (rc != 0)
        return rc;
    uint8_t msg[CK_DOMAIN_LEN + RF_CKPT_SIGNED_BYTES];
    signed_message(msg, p);
    if (crypto_sign_verify_detached(ck.sig, msg, sizeof(msg), ck.signer_pk) != 0)
        return RF_ERR_SIGNATURE;
    if ((rc = signer_admin(ck.signer_pk, ck.roster_version, rosters, nrosters)) != 0)
        return rc;
    *out = ck;
    return 0;
}

int rf_ckpt_compare(const struct rf_ckpt *ck, const struct rf_ckpt_chain *c,
                    enum rf_ckpt_diff *diff)
{
    if (ck == NULL || c == NULL)
        return RF_ERR_INVALID;
    int chain_differs = sodium_memcmp(ck->chain, c->chain, 32) != 0;
    enum rf_ckpt_diff d = RF_CKPT_SAME;
    if (ck->last_seq != c->last_seq)
        d = RF_CKPT_DIFF_LAST_SEQ;
    else if (ck->count != c->count)
        d = RF_CKPT_DIFF_COUNT;
    else if (chain_differs)
        d = RF_CKPT_DIFF_CHAIN;
    if (diff != NULL)
        *diff = d;
    return d == RF_CKPT_SAME ? 0 : RF_ERR_SIGNATURE;
}
