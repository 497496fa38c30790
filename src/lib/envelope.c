/*
 * envelope.c - sealing and opening the Refuge envelope (format in envelope.h
 * and docs/protocol.md), streaming, with memory bounded by one chunk.
 *
 * Sealing. The plaintext is cut into RF_ENV_CHUNK-byte chunks. A full chunk
 * is only known to be non-final once a further byte arrives, so the sealer
 * holds back at most one chunk; at finish it appends 0x80 and zeros up to
 * rf_envelope_padded_len() (possibly across several chunks) and pushes the
 * last one with TAG_FINAL. Chunk boundaries therefore always fall at
 * multiples of RF_ENV_CHUNK of the padded plaintext. The plaintext buffer
 * starts inside the (sodium_malloc'd) state object, SMALL_CAP bytes, and only
 * moves to a separate RF_ENV_CHUNK sodium_malloc buffer when more is held:
 * a small message costs one guarded allocation.
 *
 * Opening. Ciphertext is accumulated into the header buffer until the header
 * is complete, then into a chunk buffer of RF_ENV_CHUNK + ABYTES bytes; a
 * full buffer is decrypted at once, a partial one only at finish (it must
 * then be the final chunk). Padding is removed while streaming: after each
 * chunk the opener holds back only a pending 0x80 and a count of zeros that
 * follow it; a later non-zero byte shows they were data and they are emitted.
 *
 * Invariants: every error is sticky (later calls return it); secrets (content
 * key, stream state, recipient sk, plaintext) live only in sodium_malloc
 * memory and are wiped by sodium_free, or by sodium_memzero when a state
 * object is kept for reuse by the same thread (one per thread at most).
 */
#include "lib/envelope.h"
#include "lib/secmem.h"
#include "lib/err.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ABYTES crypto_secretstream_xchacha20poly1305_ABYTES
#define SSHDR crypto_secretstream_xchacha20poly1305_HEADERBYTES
#define FIXED_HDR 8 /* magic, version, kind, nrecip */
#define COMMIT RF_ENV_COMMIT_BYTES
#define SEALED_BYTES (crypto_box_SEALBYTES + 32)
#define CT_CHUNK (RF_ENV_CHUNK + ABYTES)
#define SMALL_CAP 4096
#define MAX_HDR RF_ENV_HEADER_MAX
#define MAX_PLAIN_LEN (1ULL << 62)

_Static_assert(RF_ENV_STANZA_BYTES == RF_ENV_KEYID_BYTES + SEALED_BYTES, "stanza layout");
_Static_assert(SSHDR == 24, "secretstream header size");
_Static_assert(RF_ENV_HEADER_MAX ==
                   FIXED_HDR + RF_ENV_MAX_RECIPIENTS * RF_ENV_STANZA_BYTES + SSHDR + COMMIT,
               "largest header");

/* The 15 ASCII bytes "refuge-keyid-v1" and their C string terminator: BLAKE2b
 * keys must be at least 16 bytes, so the key is those 16 bytes. */
static const uint8_t keyid_key[16] = "refuge-keyid-v1";

void rf_keyid(uint8_t out[RF_ENV_KEYID_BYTES], const uint8_t pk[32])
{
    crypto_generichash(out, RF_ENV_KEYID_BYTES, pk, 32, keyid_key, sizeof(keyid_key));
}

/* The domain of the key commitment (version 2): its 25 ASCII bytes, no terminator. */
static const char commit_domain[] = "refuge-envelope-commit-v2";

/* Header length for a version and recipient count (the version is 1 or 2). */
static size_t header_bytes(uint8_t version, size_t nrecip)
{
    return FIXED_HDR + nrecip * RF_ENV_STANZA_BYTES + SSHDR + (version >= 2 ? COMMIT : 0);
}

/* commit = BLAKE2b-256(key = content key, "refuge-envelope-commit-v2" || the
 * header bytes before the commitment: magic through stream header). */
static void commit_compute(uint8_t out[COMMIT], const uint8_t key[32], const uint8_t *hdr,
                           size_t before)
{
    crypto_generichash_state h;
    crypto_generichash_init(&h, key, 32, COMMIT);
    crypto_generichash_update(&h, (const uint8_t *)commit_domain, sizeof(commit_domain) - 1);
    crypto_generichash_update(&h, hdr, before);
    crypto_generichash_final(&h, out, COMMIT);
    sodium_memzero(&h, sizeof(h));
}

/* 0 if the whole header hdr (hdr_len bytes, already parsed) commits to key:
 * always for version 1, which carries no commitment; RF_ERR_DECRYPT if not. */
static int commit_check(const uint8_t key[32], const uint8_t *hdr, size_t hdr_len)
{
    if (hdr[4] < 2)
        return 0;
    uint8_t want[COMMIT];
    commit_compute(want, key, hdr, hdr_len - COMMIT);
    int ok = sodium_memcmp(want, hdr + hdr_len - COMMIT, COMMIT) == 0;
    sodium_memzero(want, sizeof(want));
    return ok ? 0 : RF_ERR_DECRYPT;
}

static unsigned floor_log2(uint64_t x)
{
    unsigned r = 0;
    while (x >>= 1)
        r++;
    return r;
}

/* Padme (Nikitin et al., PETS 2019) of L >= 1: keep the top floor(log2(E))+1
 * bits of L, round the rest up, where E = floor(log2(L)). */
static uint64_t padme(uint64_t L)
{
    if (L < 2)
        return L;
    unsigned e = floor_log2(L);
    unsigned s = floor_log2(e) + 1;
    unsigned last_bits = e - s;
    uint64_t mask = (1ULL << last_bits) - 1;
    return (L + mask) & ~mask;
}

int rf_kind_known(unsigned kind)
{
    return (kind >= 1 && kind <= RF_KIND_MAX) || kind == RF_KIND_CASEKEY;
}

uint64_t rf_envelope_padded_len(uint64_t len)
{
    if (len >= MAX_PLAIN_LEN)
        return UINT64_MAX;
    uint64_t p = padme(len + 1);
    return p < RF_ENV_MIN_PADDED ? RF_ENV_MIN_PADDED : p;
}

/* ------------------------------------------------------------------ sealing */

struct rf_seal {
    crypto_secretstream_xchacha20poly1305_state st;
    rf_sink_fn sink;
    void *ctx;
    uint64_t plain_len;  /* plaintext bytes written (before padding) */
    uint64_t pushed;     /* padded plaintext bytes already encrypted */
    uint64_t cipher_len; /* bytes given to the sink */
    uint8_t *hdr;        /* header (associated data of the first chunk), until it is pushed */
    size_t hdr_len;
    uint8_t *plain; /* held-back plaintext: small[] or a sodium_malloc RF_ENV_CHUNK buffer */
    size_t plain_n;
    size_t plain_cap;
    uint8_t *big;
    uint8_t *ct; /* ciphertext of one chunk: ct_small[] or a malloc CT_CHUNK buffer */
    uint8_t *ct_big;
    int err;
    int finished;
    uint8_t small[SMALL_CAP];
    uint8_t ct_small[SMALL_CAP + ABYTES];
};

/* One wiped state object kept per thread: a guarded sodium_malloc costs about
 * 28 us (mmap, mprotect, mlock), a tenth of sealing a small message to five
 * caseworkers. The cached object stays locked and guarded and holds only
 * zeros between uses. */
static _Thread_local struct rf_seal *seal_cache;

static int seal_emit(struct rf_seal *s, const uint8_t *p, size_t n)
{
    int rc = s->sink(s->ctx, p, n);
    if (rc != 0)
        return rc < 0 ? rc : RF_ERR_IO;
    s->cipher_len += n;
    return 0;
}

/* Encrypts one chunk of padded plaintext and hands it to the sink. */
static int seal_push(struct rf_seal *s, const uint8_t *m, size_t mlen, int final)
{
    uint8_t *ct = s->ct_small;
    if (mlen > SMALL_CAP) {
        if (s->ct_big == NULL && (s->ct_big = malloc(CT_CHUNK)) == NULL)
            return RF_ERR_NOMEM;
        ct = s->ct_big;
    }
    unsigned long long clen = 0;
    uint8_t tag = final ? crypto_secretstream_xchacha20poly1305_TAG_FINAL
                        : crypto_secretstream_xchacha20poly1305_TAG_MESSAGE;
    if (crypto_secretstream_xchacha20poly1305_push(&s->st, ct, &clen, m, mlen, s->hdr,
                                                   s->hdr ? s->hdr_len : 0, tag) != 0)
        return RF_ERR_CRYPTO;
    if (s->hdr) {
        free(s->hdr);
        s->hdr = NULL;
    }
    s->pushed += mlen;
    return seal_emit(s, ct, (size_t)clen);
}

/* Makes room for want held-back bytes (want <= RF_ENV_CHUNK). */
static int seal_reserve(struct rf_seal *s, size_t want)
{
    if (want <= s->plain_cap)
        return 0;
    if (s->big == NULL) {
        s->big = rf_secmem_alloc(RF_ENV_CHUNK);
        if (s->big == NULL)
            return RF_ERR_NOMEM;
    }
    memcpy(s->big, s->plain, s->plain_n);
    sodium_memzero(s->small, sizeof(s->small));
    s->plain = s->big;
    s->plain_cap = RF_ENV_CHUNK;
    return 0;
}

static int seal_header(struct rf_seal *s, uint8_t kind, const uint8_t (*pks)[32], size_t npk,
                       const uint8_t key[32])
{
    s->hdr_len = header_bytes(RF_ENV_VERSION, npk);
    s->hdr = malloc(s->hdr_len);
    if (s->hdr == NULL)
        return RF_ERR_NOMEM;
    uint8_t *h = s->hdr;
    memcpy(h, RF_ENV_MAGIC, 4);
    h[4] = RF_ENV_VERSION;
    h[5] = kind;
    h[6] = (uint8_t)(npk >> 8);
    h[7] = (uint8_t)npk;
    uint8_t *st = h + FIXED_HDR;
    for (size_t i = 0; i < npk; i++, st += RF_ENV_STANZA_BYTES) {
        rf_keyid(st, pks[i]);
        if (crypto_box_seal(st + RF_ENV_KEYID_BYTES, key, 32, pks[i]) != 0)
            return RF_ERR_INVALID; /* not a usable X25519 public key */
    }
    if (crypto_secretstream_xchacha20poly1305_init_push(&s->st, st, key) != 0)
        return RF_ERR_CRYPTO;
    commit_compute(st + SSHDR, key, h, s->hdr_len - COMMIT);
    return seal_emit(s, h, s->hdr_len);
}

int rf_seal_new(struct rf_seal **out, uint8_t kind, const uint8_t (*pks)[32], size_t npk,
                rf_sink_fn sink, void *ctx)
{
    *out = NULL;
    if (!rf_kind_known(kind) || sink == NULL || pks == NULL)
        return RF_ERR_INVALID;
    if (npk < 1 || npk > RF_ENV_MAX_RECIPIENTS)
        return RF_ERR_LIMIT;
    for (size_t i = 0; i < npk; i++)
        for (size_t j = i + 1; j < npk; j++)
            if (memcmp(pks[i], pks[j], 32) == 0)
                return RF_ERR_INVALID;
    struct rf_seal *s = seal_cache;
    seal_cache = NULL;
    if (s == NULL && (s = sodium_malloc(sizeof(*s))) == NULL)
        return RF_ERR_NOMEM;
    memset(s, 0, offsetof(struct rf_seal, small));
    s->sink = sink;
    s->ctx = ctx;
    s->plain = s->small;
    s->plain_cap = SMALL_CAP;
    uint8_t key[32];
    crypto_secretstream_xchacha20poly1305_keygen(key);
    int rc = seal_header(s, kind, pks, npk, key);
    sodium_memzero(key, sizeof(key));
    if (rc != 0) {
        rf_seal_free(s);
        return rc;
    }
    *out = s;
    return 0;
}

int rf_seal_write(struct rf_seal *s, const uint8_t *p, size_t n)
{
    if (s->err)
        return s->err;
    if (s->finished)
        return RF_ERR_INVALID;
    if (n > MAX_PLAIN_LEN - s->plain_len)
        return s->err = RF_ERR_LIMIT;
    int rc = 0;
    s->plain_len += n;
    while (n > 0) {
        if (s->plain_n == RF_ENV_CHUNK) { /* more follows: the held chunk is not final */
            if ((rc = seal_push(s, s->plain, RF_ENV_CHUNK, 0)) != 0)
                return s->err = rc;
            s->plain_n = 0;
        }
        if (s->plain_n == 0 && n > RF_ENV_CHUNK) { /* straight from the caller's bytes */
            if ((rc = seal_push(s, p, RF_ENV_CHUNK, 0)) != 0)
                return s->err = rc;
            p += RF_ENV_CHUNK;
            n -= RF_ENV_CHUNK;
            continue;
        }
        size_t room = RF_ENV_CHUNK - s->plain_n;
        size_t take = n < room ? n : room;
        if ((rc = seal_reserve(s, s->plain_n + take)) != 0)
            return s->err = rc;
        memcpy(s->plain + s->plain_n, p, take);
        s->plain_n += take;
        p += take;
        n -= take;
    }
    return 0;
}

int rf_seal_finish(struct rf_seal *s)
{
    if (s->err)
        return s->err;
    if (s->finished)
        return RF_ERR_INVALID;
    s->finished = 1;
    uint64_t total = rf_envelope_padded_len(s->plain_len);
    int rc = 0;
    int marker = 1;
    /* Invariant: pushed + plain_n = bytes of padded plaintext produced so far. */
    for (;;) {
        uint64_t left = total - s->pushed - s->plain_n;
        if (s->plain_n == RF_ENV_CHUNK && left > 0) {
            if ((rc = seal_push(s, s->plain, RF_ENV_CHUNK, 0)) != 0)
                return s->err = rc;
            s->plain_n = 0;
            continue;
        }
        size_t room = RF_ENV_CHUNK - s->plain_n;
        size_t take = left < room ? (size_t)left : room;
        if ((rc = seal_reserve(s, s->plain_n + take)) != 0)
            return s->err = rc;
        memset(s->plain + s->plain_n, 0, take);
        if (marker && take > 0) {
            s->plain[s->plain_n] = 0x80;
            marker = 0;
        }
        s->plain_n += take;
        if (s->pushed + s->plain_n == total)
            break;
    }
    rc = seal_push(s, s->plain, s->plain_n, 1);
    sodium_memzero(s->plain, s->plain_n);
    s->plain_n = 0;
    return s->err = rc;
}

uint64_t rf_seal_plain_len(const struct rf_seal *s)
{
    return s->plain_len;
}

uint64_t rf_seal_cipher_len(const struct rf_seal *s)
{
    return s->cipher_len;
}

void rf_seal_free(struct rf_seal *s)
{
    if (s == NULL)
        return;
    free(s->hdr);
    free(s->ct_big);
    rf_secmem_free(s->big);
    sodium_memzero(s, sizeof(*s));
    if (seal_cache == NULL)
        seal_cache = s;
    else
        sodium_free(s);
}

static int buf_sink(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

int rf_envelope_seal(struct rf_buf *out, uint8_t kind, const uint8_t (*pks)[32], size_t npk,
                     const uint8_t *plain, size_t len)
{
    struct rf_seal *s = NULL;
    uint64_t padded = rf_envelope_padded_len(len);
    if (padded == UINT64_MAX || npk > RF_ENV_MAX_RECIPIENTS)
        return RF_ERR_LIMIT;
    uint64_t want = header_bytes(RF_ENV_VERSION, npk) + padded +
                    (padded + RF_ENV_CHUNK - 1) / RF_ENV_CHUNK * ABYTES;
    size_t before = out->len;
    int rc = want <= SIZE_MAX ? rf_buf_reserve(out, (size_t)want) : RF_ERR_LIMIT;
    if (rc == 0)
        rc = rf_seal_new(&s, kind, pks, npk, buf_sink, out);
    if (rc == 0)
        rc = rf_seal_write(s, plain, len);
    if (rc == 0)
        rc = rf_seal_finish(s);
    rf_seal_free(s);
    if (rc != 0)
        out->len = before;
    return rc;
}

/* ------------------------------------------------------------ header parse */

int rf_envelope_header_parse(struct rf_env_header *h, uint8_t (*keyids)[RF_ENV_KEYID_BYTES],
                             size_t maxids, const uint8_t *p, size_t n)
{
    struct rf_reader r;
    const uint8_t *magic;
    uint8_t version, kind;
    uint16_t nrecip;
    rf_reader_init(&r, p, n);
    size_t m = n < 4 ? n : 4;
    if (memcmp(p, RF_ENV_MAGIC, m) != 0)
        return RF_ERR_FORMAT; /* refuse a wrong prefix before it is complete */
    int rc = rf_get_ptr(&r, &magic, 4);
    if (rc == 0)
        rc = rf_get_u8(&r, &version);
    if (rc != 0)
        return rc;
    if (version < RF_ENV_VERSION_MIN || version > RF_ENV_VERSION)
        return RF_ERR_VERSION;
    if ((rc = rf_get_u8(&r, &kind)) != 0)
        return rc;
    if (!rf_kind_known(kind))
        return RF_ERR_FORMAT;
    if ((rc = rf_get_u16(&r, &nrecip)) != 0)
        return rc;
    if (nrecip < 1)
        return RF_ERR_FORMAT;
    if (nrecip > RF_ENV_MAX_RECIPIENTS)
        return RF_ERR_LIMIT;
    for (size_t i = 0; i < nrecip; i++) {
        const uint8_t *stanza;
        if ((rc = rf_get_ptr(&r, &stanza, RF_ENV_STANZA_BYTES)) != 0)
            return rc;
        if (keyids != NULL && i < maxids)
            memcpy(keyids[i], stanza, RF_ENV_KEYID_BYTES);
    }
    const uint8_t *tail; /* stream header, then (version 2) the key commitment */
    if ((rc = rf_get_ptr(&r, &tail, header_bytes(version, 0) - FIXED_HDR)) != 0)
        return rc;
    h->version = version;
    h->kind = kind;
    h->nrecip = nrecip;
    h->header_len = r.off;
    return 0;
}

/* ------------------------------------------------------------------ opening */

enum open_phase { PH_HEADER, PH_BODY, PH_DONE };

struct rf_open {
    crypto_secretstream_xchacha20poly1305_state st;
    uint8_t pk[32];
    uint8_t sk[32];
    uint8_t keyid[RF_ENV_KEYID_BYTES];
    rf_sink_fn sink;
    void *ctx;
    int phase;
    int err;
    uint8_t kind;
    uint16_t nrecip;
    uint8_t *hdr; /* header bytes until the first chunk is decrypted (associated data) */
    size_t hdr_n;
    size_t hdr_need; /* FIXED_HDR until nrecip is known, then the full length */
    uint8_t *ct;     /* one ciphertext chunk (malloc, lazily CT_CHUNK) */
    size_t ct_n;
    size_t ct_cap;
    uint8_t *plain; /* decrypted chunk: small[] or sodium_malloc RF_ENV_CHUNK */
    uint8_t *big;
    uint64_t padded_len; /* padded plaintext bytes decrypted */
    uint64_t out_len;    /* plaintext bytes given to the sink */
    int marker;          /* a 0x80 is held back */
    uint64_t zeros;      /* zeros held back after it */
    int granted;         /* the content key came from a grant: gkey, not a stanza */
    uint8_t gkey[32];
    uint8_t small[SMALL_CAP];
};

static _Thread_local struct rf_open *open_cache; /* as seal_cache */

int rf_open_new(struct rf_open **out, const uint8_t pk[32], const uint8_t sk[32], rf_sink_fn sink,
                void *ctx)
{
    *out = NULL;
    if (sink == NULL)
        return RF_ERR_INVALID;
    struct rf_open *o = open_cache;
    open_cache = NULL;
    if (o == NULL && (o = sodium_malloc(sizeof(*o))) == NULL)
        return RF_ERR_NOMEM;
    memset(o, 0, offsetof(struct rf_open, small));
    memcpy(o->pk, pk, 32);
    memcpy(o->sk, sk, 32);
    rf_keyid(o->keyid, pk);
    o->sink = sink;
    o->ctx = ctx;
    o->hdr_need = FIXED_HDR;
    o->phase = PH_HEADER;
    *out = o;
    return 0;
}

static int open_emit(struct rf_open *o, const uint8_t *p, size_t n)
{
    if (n == 0)
        return 0;
    int rc = o->sink(o->ctx, p, n);
    if (rc != 0)
        return rc < 0 ? rc : RF_ERR_IO;
    o->out_len += n;
    return 0;
}

static int open_emit_held(struct rf_open *o)
{
    static const uint8_t zeros[1024];
    static const uint8_t marker = 0x80;
    int rc = open_emit(o, &marker, 1);
    while (rc == 0 && o->zeros > 0) {
        size_t k = o->zeros < sizeof(zeros) ? (size_t)o->zeros : sizeof(zeros);
        rc = open_emit(o, zeros, k);
        o->zeros -= k;
    }
    o->marker = 0;
    o->zeros = 0;
    return rc;
}

/* Streams one decrypted chunk through the padding remover. */
static int open_unpad(struct rf_open *o, const uint8_t *m, size_t mlen)
{
    size_t j = mlen;
    while (j > 0 && m[j - 1] == 0)
        j--;
    if (j == 0) { /* all zeros: padding if a marker is held, else data */
        if (o->marker) {
            o->zeros += mlen;
            return 0;
        }
        return open_emit(o, m, mlen);
    }
    int rc = 0;
    if (o->marker && (rc = open_emit_held(o)) != 0)
        return rc;
    if (m[j - 1] != 0x80)
        return open_emit(o, m, mlen);
    if ((rc = open_emit(o, m, j - 1)) != 0)
        return rc;
    o->marker = 1;
    o->zeros = mlen - j;
    return 0;
}

/* Checks key against the header's commitment (version 2), then starts the
 * stream with it: nothing is decrypted under a key the header does not
 * commit to. */
static int open_start(struct rf_open *o, const uint8_t key[32])
{
    int rc = commit_check(key, o->hdr, o->hdr_need);
    if (rc != 0)
        return rc;
    const uint8_t *sshdr = o->hdr + FIXED_HDR + (size_t)o->nrecip * RF_ENV_STANZA_BYTES;
    if (crypto_secretstream_xchacha20poly1305_init_pull(&o->st, sshdr, key) != 0)
        return RF_ERR_DECRYPT;
    return 0;
}

static int open_stanzas(struct rf_open *o)
{
    if (o->granted) {
        int rc = open_start(o, o->gkey);
        sodium_memzero(o->gkey, sizeof(o->gkey));
        return rc;
    }
    uint8_t *key = o->small; /* secure scratch, before any chunk is decrypted */
    int matched = 0;
    for (size_t i = 0; i < o->nrecip; i++) {
        const uint8_t *st = o->hdr + FIXED_HDR + i * RF_ENV_STANZA_BYTES;
        if (memcmp(st, o->keyid, RF_ENV_KEYID_BYTES) != 0)
            continue;
        matched = 1;
        if (crypto_box_seal_open(key, st + RF_ENV_KEYID_BYTES, SEALED_BYTES, o->pk, o->sk) != 0)
            continue;
        int rc = open_start(o, key);
        sodium_memzero(key, 32);
        if (rc == 0)
            return 0;
    }
    return matched ? RF_ERR_DECRYPT : RF_ERR_NOT_RECIPIENT;
}

/* Consumes header bytes from p; returns bytes used via *used. */
static int open_header(struct rf_open *o, const uint8_t *p, size_t n, size_t *used)
{
    *used = 0;
    if (o->hdr == NULL && (o->hdr = malloc(MAX_HDR)) == NULL)
        return RF_ERR_NOMEM;
    while (n > 0 && o->phase == PH_HEADER) {
        size_t take = o->hdr_need - o->hdr_n;
        take = take < n ? take : n;
        memcpy(o->hdr + o->hdr_n, p, take);
        o->hdr_n += take;
        p += take;
        n -= take;
        *used += take;
        if (o->hdr_n >= FIXED_HDR && o->hdr_n < o->hdr_need)
            continue; /* the prefix has been checked; wait for the rest */
        struct rf_env_header h;
        int rc = rf_envelope_header_parse(&h, NULL, 0, o->hdr, o->hdr_n);
        if (rc == RF_ERR_TRUNCATED) {
            if (o->hdr_n >= FIXED_HDR) /* version and nrecip are known (and valid): need it all */
                o->hdr_need = header_bytes(o->hdr[4], (size_t)((o->hdr[6] << 8) | o->hdr[7]));
            continue;
        }
        if (rc != 0)
            return rc;
        o->kind = h.kind;
        o->nrecip = h.nrecip;
        o->hdr_need = h.header_len;
        if ((rc = open_stanzas(o)) != 0)
            return rc;
        o->phase = PH_BODY;
    }
    return 0;
}

static int valid_padded(uint64_t p)
{
    return p >= RF_ENV_MIN_PADDED && rf_envelope_padded_len(p - 1) == p;
}

static int pull(struct rf_open *o, size_t ct_n, unsigned long long *got, uint8_t *tag)
{
    return crypto_secretstream_xchacha20poly1305_pull(&o->st, o->plain, got, tag, o->ct, ct_n,
                                                      o->hdr, o->hdr ? o->hdr_need : 0);
}

/* The last chunk failed to authenticate: say why as well as we can. Bytes
 * appended after a final chunk: some shorter prefix, of a length a complete
 * envelope can have, authenticates as final (a bounded search; a failed pull
 * leaves the stream state unchanged). Cut short: the length is not one a
 * complete envelope can have. Otherwise it was altered. */
static int diagnose_last(struct rf_open *o)
{
    uint64_t cur = o->padded_len + (o->ct_n - ABYTES);
    int tries = 0;
    for (uint64_t p = cur - 1; p > o->padded_len && tries < 32; p--) {
        if (!valid_padded(p))
            continue;
        tries++;
        unsigned long long got = 0;
        uint8_t tag = 0;
        int ok = pull(o, (size_t)(p - o->padded_len) + ABYTES, &got, &tag) == 0;
        sodium_memzero(o->plain, (size_t)(p - o->padded_len));
        if (ok)
            return RF_ERR_FORMAT;
    }
    return valid_padded(cur) ? RF_ERR_DECRYPT : RF_ERR_TRUNCATED;
}

/* Decrypts the buffered chunk. at_end: no more input will come. */
static int open_chunk(struct rf_open *o, int at_end)
{
    if (o->ct_n <= ABYTES)
        return RF_ERR_TRUNCATED;
    size_t mlen = o->ct_n - ABYTES;
    if (mlen <= SMALL_CAP) {
        o->plain = o->small;
    } else {
        if (o->big == NULL && (o->big = rf_secmem_alloc(RF_ENV_CHUNK)) == NULL)
            return RF_ERR_NOMEM;
        o->plain = o->big;
    }
    unsigned long long got = 0;
    uint8_t tag = 0;
    if (pull(o, o->ct_n, &got, &tag) != 0)
        return at_end ? diagnose_last(o) : RF_ERR_DECRYPT;
    free(o->hdr);
    o->hdr = NULL;
    o->ct_n = 0;
    o->padded_len += got;
    int final = tag == crypto_secretstream_xchacha20poly1305_TAG_FINAL;
    if (tag != crypto_secretstream_xchacha20poly1305_TAG_MESSAGE && !final)
        return RF_ERR_FORMAT;
    if (!final && got != RF_ENV_CHUNK)
        return RF_ERR_FORMAT;
    int rc = open_unpad(o, o->plain, (size_t)got);
    sodium_memzero(o->plain, (size_t)got);
    if (rc != 0)
        return rc;
    if (final) {
        if (!o->marker || rf_envelope_padded_len(o->out_len) != o->padded_len)
            return RF_ERR_FORMAT;
        o->phase = PH_DONE;
    }
    return 0;
}

int rf_open_write(struct rf_open *o, const uint8_t *p, size_t n)
{
    if (o->err)
        return o->err;
    int rc = 0;
    if (o->phase == PH_HEADER) {
        size_t used = 0;
        if ((rc = open_header(o, p, n, &used)) != 0)
            return o->err = rc;
        p += used;
        n -= used;
    }
    while (n > 0) {
        if (o->phase == PH_DONE)
            return o->err = RF_ERR_FORMAT;
        if (o->ct == NULL) {
            o->ct_cap =
                n < CT_CHUNK ? (n < SMALL_CAP + ABYTES ? SMALL_CAP + ABYTES : CT_CHUNK) : CT_CHUNK;
            if ((o->ct = malloc(o->ct_cap)) == NULL)
                return o->err = RF_ERR_NOMEM;
        } else if (o->ct_n == o->ct_cap && o->ct_cap < CT_CHUNK) {
            uint8_t *g = realloc(o->ct, CT_CHUNK);
            if (g == NULL)
                return o->err = RF_ERR_NOMEM;
            o->ct = g;
            o->ct_cap = CT_CHUNK;
        }
        size_t room = o->ct_cap - o->ct_n;
        size_t take = n < room ? n : room;
        memcpy(o->ct + o->ct_n, p, take);
        o->ct_n += take;
        p += take;
        n -= take;
        if (o->ct_n == CT_CHUNK && (rc = open_chunk(o, 0)) != 0)
            return o->err = rc;
    }
    return 0;
}

int rf_open_finish(struct rf_open *o)
{
    if (o->err)
        return o->err;
    int rc = 0;
    if (o->phase == PH_HEADER)
        rc = RF_ERR_TRUNCATED;
    else if (o->phase == PH_BODY && o->ct_n == 0)
        rc = RF_ERR_TRUNCATED;
    else if (o->phase == PH_BODY)
        rc = open_chunk(o, 1);
    if (rc == 0 && o->phase != PH_DONE)
        rc = RF_ERR_TRUNCATED;
    return o->err = rc;
}

uint8_t rf_open_kind(const struct rf_open *o)
{
    return o->kind;
}

void rf_envelope_thread_done(void)
{
    sodium_free(seal_cache); /* zeros only (rf_seal_free, rf_open_free) */
    seal_cache = NULL;
    sodium_free(open_cache);
    open_cache = NULL;
}

void rf_open_free(struct rf_open *o)
{
    if (o == NULL)
        return;
    free(o->hdr);
    free(o->ct);
    rf_secmem_free(o->big);
    sodium_memzero(o, sizeof(*o));
    if (open_cache == NULL)
        open_cache = o;
    else
        sodium_free(o);
}

int rf_envelope_open(struct rf_buf *out, uint8_t *kind, const uint8_t pk[32], const uint8_t sk[32],
                     const uint8_t *ct, size_t len)
{
    struct rf_open *o = NULL;
    size_t before = out->len;
    int rc = rf_open_new(&o, pk, sk, buf_sink, out);
    if (rc == 0)
        rc = rf_open_write(o, ct, len);
    if (rc == 0)
        rc = rf_open_finish(o);
    if (rc == 0 && kind != NULL)
        *kind = rf_open_kind(o);
    rf_open_free(o);
    if (rc != 0) {
        if (out->secure && out->data)
            sodium_memzero(out->data + before, out->len - before);
        out->len = before;
    }
    return rc;
}

/* ------------------------------------------------------------------- grants */

int rf_envelope_content_key(uint8_t key[32], const uint8_t *ct, size_t len, const uint8_t pk[32],
                            const uint8_t sk[32])
{
    struct rf_env_header h;
    if (ct == NULL || len == 0)
        return RF_ERR_TRUNCATED;
    int rc = rf_envelope_header_parse(&h, NULL, 0, ct, len);
    if (rc != 0)
        return rc;
    uint8_t id[RF_ENV_KEYID_BYTES];
    rf_keyid(id, pk);
    int matched = 0;
    for (size_t i = 0; i < h.nrecip; i++) {
        const uint8_t *st = ct + FIXED_HDR + i * RF_ENV_STANZA_BYTES;
        if (memcmp(st, id, RF_ENV_KEYID_BYTES) != 0)
            continue;
        matched = 1;
        if (crypto_box_seal_open(key, st + RF_ENV_KEYID_BYTES, SEALED_BYTES, pk, sk) == 0 &&
            commit_check(key, ct, h.header_len) == 0)
            return 0;
    }
    sodium_memzero(key, 32);
    return matched ? RF_ERR_DECRYPT : RF_ERR_NOT_RECIPIENT;
}

int rf_envelope_key_check(const uint8_t key[32], const uint8_t *ct, size_t len)
{
    struct rf_env_header h;
    if (ct == NULL || len == 0)
        return RF_ERR_TRUNCATED;
    int rc = rf_envelope_header_parse(&h, NULL, 0, ct, len);
    if (rc != 0)
        return rc;
    return commit_check(key, ct, h.header_len);
}

int rf_grant_make(uint8_t grant[RF_GRANT_BYTES], const uint8_t key[32],
                  const uint8_t recipient_pk[32])
{
    rf_keyid(grant, recipient_pk);
    if (crypto_box_seal(grant + RF_ENV_KEYID_BYTES, key, 32, recipient_pk) != 0)
        return RF_ERR_INVALID; /* not a usable X25519 public key */
    return 0;
}

int rf_open_new_grant(struct rf_open **out, const uint8_t grant[RF_GRANT_BYTES],
                      const uint8_t pk[32], const uint8_t sk[32], rf_sink_fn sink, void *ctx)
{
    *out = NULL;
    struct rf_open *o = NULL;
    int rc = rf_open_new(&o, pk, sk, sink, ctx);
    if (rc != 0)
        return rc;
    sodium_memzero(o->sk, sizeof(o->sk)); /* the stanzas are not used */
    if (memcmp(grant, o->keyid, RF_ENV_KEYID_BYTES) != 0) {
        rc = RF_ERR_NOT_RECIPIENT;
    } else if (crypto_box_seal_open(o->gkey, grant + RF_ENV_KEYID_BYTES, SEALED_BYTES, pk, sk) !=
               0) {
        rc = RF_ERR_DECRYPT;
    }
    if (rc != 0) {
        rf_open_free(o);
        return rc;
    }
    o->granted = 1;
    *out = o;
    return 0;
}

int rf_open_new_key(struct rf_open **out, const uint8_t key[32], rf_sink_fn sink, void *ctx)
{
    static const uint8_t none[32];
    struct rf_open *o = NULL;
    *out = NULL;
    int rc = rf_open_new(&o, none, none, sink, ctx); /* no stanza is opened */
    if (rc != 0)
        return rc;
    memcpy(o->gkey, key, 32); /* checked against the header's commitment, then wiped */
    o->granted = 1;
    *out = o;
    return 0;
}
