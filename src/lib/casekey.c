/*
 * casekey.c - case keys, the CASEKEY object's plaintext and case events
 * version 2 (formats in casekey.h and docs/protocol.md section 12).
 *
 * Invariants: every input is read through one struct rf_reader or checked
 * against a named length before it is touched; no output parameter is
 * written and no output buf grows on error; plaintext (the padded signed
 * event) exists only in rf_secmem memory while sealing and in the caller's
 * buf after a successful open; a failed open wipes what the AEAD wrote.
 * Every primitive is libsodium's: crypto_generichash (key id),
 * crypto_sign_detached (CASEKEY), crypto_aead_xchacha20poly1305_ietf_*.
 */
#include "lib/casekey.h"
#include "lib/envelope.h"
#include "lib/err.h"
#include "lib/event.h"
#include "lib/secmem.h"

#include <sodium.h>
#include <string.h>

_Static_assert(RF_EV2_NONCE_BYTES == crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, "nonce");
_Static_assert(RF_EV2_TAG_BYTES == crypto_aead_xchacha20poly1305_ietf_ABYTES, "tag");
_Static_assert(RF_CASEKEY_BYTES == crypto_aead_xchacha20poly1305_ietf_KEYBYTES, "key");
_Static_assert(RF_CASEKEY_CASE_LEN == RF_EVENT_CASE_LEN, "case id length");

/* The key id's BLAKE2b key: the 17 ASCII bytes, no terminator. */
static const char KEYID_DOMAIN[] = "refuge-casekey-v1";
/* The CASEKEY signature's domain (the same 17 bytes: another primitive). */
static const char SIG_DOMAIN[] = "refuge-casekey-v1";
#define DOMAIN_LEN (sizeof(KEYID_DOMAIN) - 1)

/* Largest signed event, and its padded length. */
#define EV_MIN (RF_EVENT_HEADER_BYTES + 1)
#define EV_MAX (RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX)

static int is_case_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* A case id is exactly RF_CASEKEY_CASE_LEN ASCII letters or digits (as events'). */
static int case_check(const char *case_id)
{
    if (case_id == NULL)
        return RF_ERR_INVALID;
    for (size_t i = 0; i < RF_CASEKEY_CASE_LEN; i++)
        if (!is_case_char(case_id[i]))
            return RF_ERR_INVALID; /* also stops at a NUL: too short */
    return case_id[RF_CASEKEY_CASE_LEN] == '\0' ? 0 : RF_ERR_INVALID;
}

void rf_casekey_new(uint8_t key[RF_CASEKEY_BYTES])
{
    crypto_aead_xchacha20poly1305_ietf_keygen(key);
}

void rf_casekey_id(uint8_t id[RF_CASEKEY_ID_BYTES], const uint8_t key[RF_CASEKEY_BYTES])
{
    _Static_assert(sizeof(KEYID_DOMAIN) - 1 >= crypto_generichash_KEYBYTES_MIN, "BLAKE2b key");
    crypto_generichash(id, RF_CASEKEY_ID_BYTES, key, RF_CASEKEY_BYTES,
                       (const uint8_t *)KEYID_DOMAIN, DOMAIN_LEN);
}

/* ---- CASEKEY ---- */

/* The signed message: SIG_DOMAIN || the first RF_CASEKEY_SIGNED_BYTES bytes.
 * It holds K: built in rf_secmem memory, wiped when freed. */
static uint8_t *signed_message(const uint8_t *obj)
{
    uint8_t *m = rf_secmem_alloc(DOMAIN_LEN + RF_CASEKEY_SIGNED_BYTES);
    if (m == NULL)
        return NULL;
    memcpy(m, SIG_DOMAIN, DOMAIN_LEN);
    memcpy(m + DOMAIN_LEN, obj, RF_CASEKEY_SIGNED_BYTES);
    return m;
}

int rf_casekey_encode(struct rf_buf *out, const struct rf_staff_keys *maker, const char *case_id,
                      uint32_t roster, const uint8_t key[RF_CASEKEY_BYTES])
{
    int rc = case_check(case_id);
    if (rc == 0 && (out == NULL || maker == NULL || key == NULL || roster == 0))
        rc = RF_ERR_INVALID;
    if (rc != 0)
        return rc;
    size_t before = out->len;
    if ((rc = rf_buf_reserve(out, RF_CASEKEY_OBJ_BYTES)) != 0)
        return rc;
    rc = rf_buf_put(out, RF_CASEKEY_MAGIC, 4);
    if (rc == 0)
        rc = rf_buf_put_u8(out, RF_CASEKEY_VERSION);
    if (rc == 0)
        rc = rf_buf_put(out, case_id, RF_CASEKEY_CASE_LEN);
    if (rc == 0)
        rc = rf_buf_put(out, key, RF_CASEKEY_BYTES);
    if (rc == 0)
        rc = rf_buf_put_u32(out, roster);
    if (rc == 0)
        rc = rf_buf_put(out, maker->sign_pk, 32);
    uint8_t sig[crypto_sign_BYTES];
    uint8_t *m = rc == 0 ? signed_message(out->data + before) : NULL;
    if (rc == 0 && m == NULL)
        rc = RF_ERR_NOMEM;
    if (rc == 0 &&
        crypto_sign_detached(sig, NULL, m, DOMAIN_LEN + RF_CASEKEY_SIGNED_BYTES, maker->sign_sk))
        rc = RF_ERR_CRYPTO;
    rf_secmem_free(m);
    if (rc == 0)
        rc = rf_buf_put(out, sig, sizeof(sig));
    if (rc != 0) {
        sodium_memzero(out->data + before, out->len - before);
        out->len = before;
    }
    return rc;
}

int rf_casekey_parse(struct rf_casekey_obj *o, const uint8_t *p, size_t n)
{
    struct rf_reader r;
    struct rf_casekey_obj t;
    const uint8_t *magic, *cid;
    uint8_t version;
    int rc;
    if (o == NULL || (p == NULL && n > 0))
        return RF_ERR_INVALID;
    size_t m = n < 4 ? n : 4;
    if (m > 0 && memcmp(p, RF_CASEKEY_MAGIC, m) != 0)
        return RF_ERR_FORMAT; /* a wrong prefix is refused before it is complete */
    rf_reader_init(&r, p, n);
    if ((rc = rf_get_ptr(&r, &magic, 4)) != 0 || (rc = rf_get_u8(&r, &version)) != 0)
        return rc;
    if (version != RF_CASEKEY_VERSION)
        return RF_ERR_VERSION;
    if ((rc = rf_get_ptr(&r, &cid, RF_CASEKEY_CASE_LEN)) != 0)
        return rc;
    for (size_t i = 0; i < RF_CASEKEY_CASE_LEN; i++)
        if (!is_case_char((char)cid[i]))
            return RF_ERR_FORMAT;
    if ((rc = rf_get_ptr(&r, &t.key, RF_CASEKEY_BYTES)) != 0 ||
        (rc = rf_get_u32(&r, &t.roster)) != 0 || (rc = rf_get_ptr(&r, &t.maker, 32)) != 0 ||
        (rc = rf_get_ptr(&r, &t.sig, 64)) != 0)
        return rc;
    if (t.roster == 0)
        return RF_ERR_FORMAT;
    if ((rc = rf_reader_expect_end(&r)) != 0)
        return rc;
    memcpy(t.case_id, cid, RF_CASEKEY_CASE_LEN);
    t.case_id[RF_CASEKEY_CASE_LEN] = '\0';
    rf_casekey_id(t.id, t.key);
    *o = t;
    return 0;
}

int rf_casekey_check_case(const struct rf_casekey_obj *o, const char *case_id)
{
    int rc = case_check(case_id);
    if (rc != 0 || o == NULL)
        return RF_ERR_INVALID;
    return memcmp(o->case_id, case_id, RF_CASEKEY_CASE_LEN) == 0 ? 0 : RF_ERR_PROTOCOL;
}

int rf_casekey_verify(struct rf_casekey_obj *o, const uint8_t *p, size_t n, const char *case_id)
{
    struct rf_casekey_obj t;
    int rc = case_check(case_id);
    if (rc == 0)
        rc = rf_casekey_parse(&t, p, n);
    if (rc == 0)
        rc = rf_casekey_check_case(&t, case_id);
    if (rc != 0)
        return rc;
    uint8_t *m = signed_message(p);
    if (m == NULL)
        return RF_ERR_NOMEM;
    if (crypto_sign_verify_detached(t.sig, m, DOMAIN_LEN + RF_CASEKEY_SIGNED_BYTES, t.maker) != 0)
        rc = RF_ERR_SIGNATURE;
    rf_secmem_free(m);
    if (rc == 0)
        *o = t;
    return rc;
}

/* ---- events version 2 ---- */

int rf_casekey_event_version(const uint8_t *p, size_t n)
{
    if (p == NULL || n < 4)
        return RF_ERR_TRUNCATED;
    if (memcmp(p, RF_ENV_MAGIC, 4) == 0)
        return 1;
    if (memcmp(p, RF_EV2_MAGIC, 3) != 0)
        return RF_ERR_FORMAT;
    return p[3] == RF_EV2_MAGIC[3] ? 2 : RF_ERR_VERSION;
}

/* The magic check shared by the opener and rf_casekey_event_keyid: a wrong
 * prefix is refused as soon as it shows. */
static int ev2_magic(const uint8_t *p, size_t n)
{
    if (p == NULL && n > 0)
        return RF_ERR_INVALID;
    size_t m = n < 3 ? n : 3;
    if (m > 0 && memcmp(p, RF_EV2_MAGIC, m) != 0)
        return RF_ERR_FORMAT;
    if (n < 4)
        return RF_ERR_TRUNCATED;
    return p[3] == RF_EV2_MAGIC[3] ? 0 : RF_ERR_VERSION;
}

int rf_casekey_event_keyid(uint8_t id[RF_CASEKEY_ID_BYTES], const uint8_t *p, size_t n)
{
    int rc = ev2_magic(p, n);
    if (rc != 0)
        return rc;
    if (n < 4 + RF_CASEKEY_ID_BYTES)
        return RF_ERR_TRUNCATED;
    memcpy(id, p + 4, RF_CASEKEY_ID_BYTES);
    return 0;
}

/* ad = header bytes 0..12 (magic, key id) || case id */
static void make_ad(uint8_t ad[RF_EV2_AD_BYTES], const uint8_t *head, const char *case_id)
{
    memcpy(ad, head, 4 + RF_CASEKEY_ID_BYTES);
    memcpy(ad + 4 + RF_CASEKEY_ID_BYTES, case_id, RF_CASEKEY_CASE_LEN);
}

static size_t max_padded(void)
{
    return (size_t)rf_envelope_padded_len(EV_MAX);
}

int rf_casekey_event_seal_nonce(struct rf_buf *out, const uint8_t key[RF_CASEKEY_BYTES],
                                const char *case_id, const uint8_t *ev, size_t n,
                                const uint8_t nonce[RF_EV2_NONCE_BYTES])
{
    int rc = case_check(case_id);
    if (rc == 0 && (out == NULL || key == NULL || nonce == NULL || ev == NULL))
        rc = RF_ERR_INVALID;
    if (rc == 0 && n < EV_MIN)
        rc = RF_ERR_TRUNCATED;
    if (rc == 0 && n > EV_MAX)
        rc = RF_ERR_LIMIT;
    if (rc != 0)
        return rc;
    size_t padded = (size_t)rf_envelope_padded_len(n);
    size_t total = RF_EV2_HEADER_BYTES + padded + RF_EV2_TAG_BYTES;
    size_t before = out->len;
    if ((rc = rf_buf_reserve(out, total)) != 0)
        return rc;
    uint8_t *plain = rf_secmem_alloc(padded);
    if (plain == NULL)
        return RF_ERR_NOMEM;
    memcpy(plain, ev, n);
    plain[n] = 0x80;
    memset(plain + n + 1, 0, padded - n - 1);
    uint8_t *h = out->data + before, ad[RF_EV2_AD_BYTES];
    memcpy(h, RF_EV2_MAGIC, 4);
    rf_casekey_id(h + 4, key);
    memcpy(h + 4 + RF_CASEKEY_ID_BYTES, nonce, RF_EV2_NONCE_BYTES);
    make_ad(ad, h, case_id);
    unsigned long long clen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_encrypt(h + RF_EV2_HEADER_BYTES, &clen, plain, padded,
                                                   ad, sizeof(ad), NULL, nonce, key) != 0 ||
        clen != padded + RF_EV2_TAG_BYTES)
        rc = RF_ERR_CRYPTO;
    rf_secmem_free(plain);
    if (rc != 0)
        return rc;
    out->len = before + total;
    return 0;
}

int rf_casekey_event_seal(struct rf_buf *out, const uint8_t key[RF_CASEKEY_BYTES],
                          const char *case_id, const uint8_t *ev, size_t n)
{
    uint8_t nonce[RF_EV2_NONCE_BYTES];
    randombytes_buf(nonce, sizeof(nonce));
    return rf_casekey_event_seal_nonce(out, key, case_id, ev, n, nonce);
}

const uint8_t *rf_casekey_table_find(void *ctx, const uint8_t id[RF_CASEKEY_ID_BYTES], size_t i)
{
    const struct rf_casekey_table *t = ctx;
    if (t == NULL)
        return NULL;
    for (size_t k = 0; k < t->n; k++)
        if (memcmp(t->ids[k], id, RF_CASEKEY_ID_BYTES) == 0 && i-- == 0)
            return t->keys[k];
    return NULL;
}

/* The plaintext length before the padding of `padded` bytes at p, or
 * RF_ERR_FORMAT: the last non-zero byte must be 0x80, the length before it
 * a signed event's, and its padded length exactly `padded`. */
static int unpad(size_t *len, const uint8_t *p, size_t padded)
{
    size_t i = padded;
    while (i > 0 && p[i - 1] == 0)
        i--;
    if (i == 0 || p[i - 1] != 0x80)
        return RF_ERR_FORMAT;
    i--;
    if (i < EV_MIN || i > EV_MAX || rf_envelope_padded_len(i) != padded)
        return RF_ERR_FORMAT;
    *len = i;
    return 0;
}

/* At most this many keys sharing one key id are tried. */
#define FIND_MAX 16

int rf_casekey_event_open(struct rf_buf *out, const uint8_t *p, size_t n, const char *case_id,
                          rf_casekey_find_fn find, void *ctx)
{
    int rc = case_check(case_id);
    if (rc == 0 && (out == NULL || find == NULL))
        rc = RF_ERR_INVALID;
    if (rc == 0)
        rc = ev2_magic(p, n);
    if (rc == 0 && n < RF_EV2_MIN_BYTES)
        rc = RF_ERR_TRUNCATED;
    if (rc == 0 && n > RF_EV2_HEADER_BYTES + max_padded() + RF_EV2_TAG_BYTES)
        rc = RF_ERR_LIMIT;
    if (rc != 0)
        return rc;
    struct rf_reader r;
    const uint8_t *head, *id, *nonce, *ct;
    rf_reader_init(&r, p, n);
    if ((rc = rf_get_ptr(&r, &head, 4)) != 0 || (rc = rf_get_ptr(&r, &id, 8)) != 0 ||
        (rc = rf_get_ptr(&r, &nonce, RF_EV2_NONCE_BYTES)) != 0 ||
        (rc = rf_get_ptr(&r, &ct, rf_reader_left(&r))) != 0)
        return rc;
    size_t clen = n - RF_EV2_HEADER_BYTES, padded = clen - RF_EV2_TAG_BYTES;
    size_t before = out->len;
    if ((rc = rf_buf_reserve(out, padded)) != 0)
        return rc;
    uint8_t ad[RF_EV2_AD_BYTES], *dst = out->data + before;
    make_ad(ad, p, case_id);
    const uint8_t *key = find(ctx, id, 0);
    if (key == NULL)
        return RF_ERR_NOT_RECIPIENT;
    rc = RF_ERR_DECRYPT;
    for (size_t i = 0; key != NULL && i < FIND_MAX; key = find(ctx, id, ++i)) {
        unsigned long long mlen = 0;
        if (crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &mlen, NULL, ct, clen, ad, sizeof(ad),
                                                       nonce, key) == 0 &&
            mlen == padded) {
            rc = 0;
            break;
        }
    }
    size_t len = 0;
    if (rc == 0)
        rc = unpad(&len, dst, padded);
    if (rc != 0) {
        sodium_memzero(dst, padded);
        return rc;
    }
    sodium_memzero(dst + len, padded - len);
    out->len = before + len;
    return 0;
}
