/* envelope_test.c - every recipient, and only they, can open an envelope; any
 * change an attacker makes to it (header, stanza, body, order, recipients,
 * kind, length) is refused; the opener works with any split of the input and
 * constant memory; sizes fall in Padme buckets. Also the file framing, and
 * grants: a member approved later opens an object through a grant, which no
 * other key, no other object and no altered header or grant accepts. */
#include "lib/buf.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/resource.h>

#define NKEYS 6
#define CT_CHUNK (RF_ENV_CHUNK + 17)

static uint8_t pks[NKEYS][32];
static uint8_t sks[NKEYS][32];

static int setup(void **state)
{
    (void)state;
    if (sodium_init() < 0)
        return -1;
    for (int i = 0; i < NKEYS; i++)
        crypto_box_keypair(pks[i], sks[i]);
    return 0;
}

static uint8_t *pattern(size_t n, uint32_t seed)
{
    uint8_t *p = malloc(n ? n : 1);
    assert_non_null(p);
    uint8_t s[32] = {0};
    memcpy(s, &seed, sizeof(seed));
    randombytes_buf_deterministic(p, n, s);
    return p;
}

static size_t header_len(size_t nrecip)
{
    return 8 + nrecip * RF_ENV_STANZA_BYTES + 24 + RF_ENV_COMMIT_BYTES;
}

static size_t expected_ct_len(size_t nrecip, size_t len)
{
    uint64_t padded = rf_envelope_padded_len(len);
    return header_len(nrecip) + padded + (padded + RF_ENV_CHUNK - 1) / RF_ENV_CHUNK * 17;
}

static void seal(struct rf_buf *ct, uint8_t kind, size_t nrecip, const uint8_t *p, size_t n)
{
    rf_buf_init(ct, SIZE_MAX / 2);
    assert_int_equal(rf_envelope_seal(ct, kind, (const uint8_t(*)[32])pks, nrecip, p, n), 0);
}

static int open_as(int who, const uint8_t *ct, size_t n, struct rf_buf *out, uint8_t *kind)
{
    rf_buf_init_secure(out, SIZE_MAX / 2);
    return rf_envelope_open(out, kind, pks[who], sks[who], ct, n);
}

static void assert_opens_to(int who, const struct rf_buf *ct, const uint8_t *p, size_t n,
                            uint8_t kind)
{
    struct rf_buf out;
    uint8_t k = 0;
    assert_int_equal(open_as(who, ct->data, ct->len, &out, &k), 0);
    assert_int_equal(k, kind);
    assert_int_equal(out.len, n);
    if (n)
        assert_memory_equal(out.data, p, n);
    rf_buf_free(&out);
}

static int open_err(int who, const uint8_t *ct, size_t n)
{
    struct rf_buf out;
    int rc = open_as(who, ct, n, &out, NULL);
    assert_int_equal(out.len, 0); /* nothing is handed out on failure */
    rf_buf_free(&out);
    return rc;
}

static void padded_len_is_padme(void **state)
{
    (void)state;
    assert_int_equal(rf_envelope_padded_len(0), 256);
    assert_int_equal(rf_envelope_padded_len(255), 256);
    assert_int_equal(rf_envelope_padded_len(256), 272);
    assert_int_equal(rf_envelope_padded_len(2048), 2176);
    assert_int_equal(rf_envelope_padded_len(65535), 65536);
    assert_int_equal(rf_envelope_padded_len(65536), 67584);
    uint64_t prev = 0;
    for (uint64_t len = 0; len < 300000; len += 7) {
        uint64_t p = rf_envelope_padded_len(len);
        assert_true(p > len);
        assert_true(p >= prev);
        assert_true(len < 256 || p - len <= len / 8 + 1); /* Padme overhead <= 12% */
        prev = p;
    }
}

static void round_trip_sizes(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 1, 255, 256, 65535, 65536, 65537, 3 * 65536 + 100};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        uint8_t *p = pattern(sizes[s], (uint32_t)s);
        for (size_t nr = 1; nr <= 5; nr++) {
            struct rf_buf ct;
            seal(&ct, RF_KIND_MESSAGE, nr, p, sizes[s]);
            assert_int_equal(ct.len, expected_ct_len(nr, sizes[s]));
            for (size_t who = 0; who < nr; who++)
                assert_opens_to((int)who, &ct, p, sizes[s], RF_KIND_MESSAGE);
            assert_int_equal(open_err(5, ct.data, ct.len), RF_ERR_NOT_RECIPIENT);
            rf_buf_free(&ct);
        }
        free(p);
    }
}

static void round_trip_megabytes(void **state)
{
    (void)state;
    size_t n = 5 * 1024 * 1024 + 3;
    uint8_t *p = pattern(n, 99);
    struct rf_buf ct;
    seal(&ct, RF_KIND_FILE, 5, p, n);
    assert_int_equal(ct.len, expected_ct_len(5, n));
    for (int who = 0; who < 5; who++)
        assert_opens_to(who, &ct, p, n, RF_KIND_FILE);
    rf_buf_free(&ct);
    free(p);
}

/* Plaintext that itself ends like padding, or holds a padding-like run across
 * chunk boundaries, must come back byte for byte. */
static void padding_lookalikes_survive(void **state)
{
    (void)state;
    const size_t sizes[] = {4, 65536, 65537, 200000};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        uint8_t *p = calloc(n, 1);
        assert_non_null(p);
        for (int variant = 0; variant < 4; variant++) {
            memset(p, 0, n);
            if (variant == 0)
                p[0] = 0x80; /* 0x80 then only zeros */
            if (variant == 1)
                p[n - 1] = 0x80; /* ends with the marker */
            if (variant == 2) {
                p[0] = 0x80; /* a marker, a long zero run across chunks, then data */
                p[n - 1] = 'x';
            }
            /* variant 3: all zeros */
            struct rf_buf ct;
            seal(&ct, RF_KIND_NOTE, 1, p, n);
            assert_opens_to(0, &ct, p, n, RF_KIND_NOTE);
            rf_buf_free(&ct);
        }
        free(p);
    }
}

struct collect {
    struct rf_buf *b;
    size_t calls;
};

static int collect_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct collect *c = ctx;
    c->calls++;
    return rf_buf_put(c->b, p, n);
}

/* Streaming in odd pieces gives an envelope everyone can open; the opener
 * takes it one byte at a time. */
static void streaming_any_split(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 300, 70000};
    for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++) {
        size_t n = sizes[s];
        uint8_t *p = pattern(n, 7);
        struct rf_buf ct;
        rf_buf_init(&ct, SIZE_MAX / 2);
        struct collect c = {&ct, 0};
        struct rf_seal *sl = NULL;
        assert_int_equal(
            rf_seal_new(&sl, RF_KIND_REPLY, (const uint8_t(*)[32])pks, 2, collect_sink, &c), 0);
        assert_int_equal(ct.len, header_len(2)); /* header written at once */
        size_t off = 0, step = 1;
        while (off < n) {
            size_t k = n - off < step ? n - off : step;
            assert_int_equal(rf_seal_write(sl, p + off, k), 0);
            off += k;
            step = step * 3 + 1;
        }
        assert_int_equal(rf_seal_finish(sl), 0);
        assert_int_equal(rf_seal_write(sl, p, 0), RF_ERR_INVALID);
        assert_int_equal(rf_seal_plain_len(sl), n);
        assert_int_equal(rf_seal_cipher_len(sl), ct.len);
        assert_int_equal(ct.len, expected_ct_len(2, n));
        rf_seal_free(sl);

        struct rf_buf out;
        rf_buf_init_secure(&out, SIZE_MAX / 2);
        struct collect oc = {&out, 0};
        struct rf_open *o = NULL;
        assert_int_equal(rf_open_new(&o, pks[1], sks[1], collect_sink, &oc), 0);
        assert_int_equal(rf_open_kind(o), 0);
        for (size_t i = 0; i < ct.len; i++)
            assert_int_equal(rf_open_write(o, ct.data + i, 1), 0);
        assert_int_equal(rf_open_finish(o), 0);
        assert_int_equal(rf_open_kind(o), RF_KIND_REPLY);
        rf_open_free(o);
        assert_int_equal(out.len, n);
        if (n)
            assert_memory_equal(out.data, p, n);
        rf_buf_free(&out);
        rf_buf_free(&ct);
        free(p);
    }
}

static void wrong_key_not_recipient(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_MESSAGE, 3, (const uint8_t *)"hello", 5);
    assert_int_equal(open_err(3, ct.data, ct.len), RF_ERR_NOT_RECIPIENT);
    /* right public key id, wrong secret key */
    struct rf_buf out;
    rf_buf_init(&out, 1 << 20);
    assert_int_equal(rf_envelope_open(&out, NULL, pks[0], sks[1], ct.data, ct.len), RF_ERR_DECRYPT);
    rf_buf_free(&out);
    rf_buf_free(&ct);
}

static void truncation_refused(void **state)
{
    (void)state;
    size_t n = 3 * 65536 + 100;
    uint8_t *p = pattern(n, 3);
    struct rf_buf ct;
    seal(&ct, RF_KIND_FILE, 2, p, n);
    size_t h = header_len(2);
    const size_t cuts[] = {0,
                           3,
                           h - 1,
                           h,                    /* header only */
                           h + 10,               /* inside the first chunk */
                           h + CT_CHUNK,         /* at a chunk boundary */
                           h + 2 * CT_CHUNK,     /* at a chunk boundary */
                           h + 2 * CT_CHUNK + 5, /* a few bytes into a chunk */
                           h + 3 * CT_CHUNK,     /* all full chunks, final one missing */
                           ct.len - 1};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        assert_int_equal(open_err(0, ct.data, cuts[i]), RF_ERR_TRUNCATED);
    rf_buf_free(&ct);
    /* a one-chunk envelope cut short */
    seal(&ct, RF_KIND_MESSAGE, 1, p, 100);
    assert_int_equal(open_err(0, ct.data, ct.len - 10), RF_ERR_TRUNCATED);
    assert_int_equal(open_err(0, ct.data, ct.len - 1), RF_ERR_TRUNCATED);
    rf_buf_free(&ct);
    free(p);
}

static void flipped_bytes_refused(void **state)
{
    (void)state;
    size_t n = 70000;
    uint8_t *p = pattern(n, 4);
    struct rf_buf ct;
    seal(&ct, RF_KIND_MESSAGE, 2, p, n);
    size_t h = header_len(2);
    struct {
        size_t off;
        int err;
    } cases[] = {
        {0, RF_ERR_FORMAT},                             /* magic */
        {4, RF_ERR_VERSION},                            /* version */
        {8, RF_ERR_NOT_RECIPIENT},                      /* key id of stanza 0 */
        {8 + 8, RF_ERR_DECRYPT},                        /* sealed key of stanza 0 */
        {8 + RF_ENV_STANZA_BYTES + 40, RF_ERR_DECRYPT}, /* stanza of recipient 1 (AD) */
        {h - 1, RF_ERR_DECRYPT},                        /* secretstream header */
        {h, RF_ERR_DECRYPT},                            /* first chunk */
        {h + CT_CHUNK - 1, RF_ERR_DECRYPT},             /* first chunk's tag */
        {h + CT_CHUNK + 5, RF_ERR_DECRYPT},             /* final chunk */
        {ct.len - 1, RF_ERR_DECRYPT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        ct.data[cases[i].off] ^= 0x01;
        assert_int_equal(open_err(0, ct.data, ct.len), cases[i].err);
        ct.data[cases[i].off] ^= 0x01;
    }
    assert_opens_to(0, &ct, p, n, RF_KIND_MESSAGE);
    rf_buf_free(&ct);
    free(p);
}

static void kind_changed_refused(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_MESSAGE, 2, (const uint8_t *)"secret", 6);
    ct.data[5] = RF_KIND_REPLY;
    assert_int_equal(open_err(0, ct.data, ct.len), RF_ERR_DECRYPT);
    ct.data[5] = 0;
    assert_int_equal(open_err(0, ct.data, ct.len), RF_ERR_FORMAT);
    ct.data[5] = RF_KIND_MAX + 1;
    assert_int_equal(open_err(0, ct.data, ct.len), RF_ERR_FORMAT);
    rf_buf_free(&ct);
}

static void reordered_chunks_refused(void **state)
{
    (void)state;
    size_t n = 3 * 65536 + 10;
    uint8_t *p = pattern(n, 5);
    struct rf_buf ct;
    seal(&ct, RF_KIND_FILE, 1, p, n);
    size_t h = header_len(1);
    uint8_t *tmp = malloc(CT_CHUNK);
    assert_non_null(tmp);
    uint8_t *c1 = ct.data + h + CT_CHUNK, *c2 = ct.data + h + 2 * CT_CHUNK;
    memcpy(tmp, c1, CT_CHUNK);
    memcpy(c1, c2, CT_CHUNK);
    memcpy(c2, tmp, CT_CHUNK);
    assert_int_equal(open_err(0, ct.data, ct.len), RF_ERR_DECRYPT);
    /* dropping a middle chunk */
    memcpy(c2, tmp, CT_CHUNK);
    memmove(c1, c2, ct.len - (size_t)(c2 - ct.data));
    assert_int_equal(open_err(0, ct.data, ct.len - CT_CHUNK), RF_ERR_DECRYPT);
    free(tmp);
    rf_buf_free(&ct);
    free(p);
}

/* The server (or anyone) removes a caseworker's stanza and fixes nrecip: the
 * others must refuse it, since the header is bound to the first chunk. */
static void stripped_recipient_refused(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_REPLY, 3, (const uint8_t *)"reply", 5);
    size_t s1 = 8 + RF_ENV_STANZA_BYTES;
    memmove(ct.data + s1, ct.data + s1 + RF_ENV_STANZA_BYTES, ct.len - s1 - RF_ENV_STANZA_BYTES);
    ct.len -= RF_ENV_STANZA_BYTES;
    ct.data[7] = 2;
    struct rf_env_header hd;
    assert_int_equal(rf_envelope_header_parse(&hd, NULL, 0, ct.data, ct.len), 0);
    assert_int_equal(open_err(0, ct.data, ct.len), RF_ERR_DECRYPT);
    assert_int_equal(open_err(2, ct.data, ct.len), RF_ERR_DECRYPT);
    assert_int_equal(open_err(1, ct.data, ct.len), RF_ERR_NOT_RECIPIENT);
    rf_buf_free(&ct);
}

/* A stanza for an attacker's key added (nrecip + 1): the real recipients refuse. */
static void injected_recipient_refused(void **state)
{
    (void)state;
    struct rf_buf ct, other;
    seal(&ct, RF_KIND_REPLY, 2, (const uint8_t *)"reply", 5);
    seal(&other, RF_KIND_REPLY, 1, (const uint8_t *)"x", 1);
    struct rf_buf forged;
    rf_buf_init(&forged, 1 << 20);
    assert_int_equal(rf_buf_put(&forged, ct.data, 8 + 2 * RF_ENV_STANZA_BYTES), 0);
    assert_int_equal(rf_buf_put(&forged, other.data + 8, RF_ENV_STANZA_BYTES), 0);
    assert_int_equal(rf_buf_put(&forged, ct.data + 8 + 2 * RF_ENV_STANZA_BYTES,
                                ct.len - 8 - 2 * RF_ENV_STANZA_BYTES),
                     0);
    forged.data[7] = 3;
    assert_int_equal(open_err(0, forged.data, forged.len), RF_ERR_DECRYPT);
    rf_buf_free(&forged);
    rf_buf_free(&other);
    rf_buf_free(&ct);
}

static void data_after_final_refused(void **state)
{
    (void)state;
    const size_t sizes[] = {10, 65535}; /* final chunk partial; final chunk full */
    for (size_t s = 0; s < 2; s++) {
        uint8_t *p = pattern(sizes[s], 6);
        struct rf_buf ct;
        seal(&ct, RF_KIND_MESSAGE, 1, p, sizes[s]);
        size_t len = ct.len;
        assert_int_equal(rf_buf_put(&ct, "\0", 1), 0);
        assert_int_equal(open_err(0, ct.data, ct.len), RF_ERR_FORMAT);
        /* appended in a later write */
        struct rf_buf out;
        rf_buf_init(&out, 1 << 20);
        struct collect c = {&out, 0};
        struct rf_open *o = NULL;
        assert_int_equal(rf_open_new(&o, pks[0], sks[0], collect_sink, &c), 0);
        assert_int_equal(rf_open_write(o, ct.data, len), 0);
        int rc = rf_open_write(o, ct.data, 1);
        if (rc == 0)
            rc = rf_open_finish(o);
        assert_int_equal(rc, RF_ERR_FORMAT);
        assert_int_equal(rf_open_finish(o), rc); /* errors stick */
        rf_open_free(o);
        rf_buf_free(&out);
        rf_buf_free(&ct);
        free(p);
    }
}

static void sizes_are_buckets(void **state)
{
    (void)state;
    uint8_t *p = pattern(5000, 8);
    const size_t pairs[][2] = {{0, 200}, {1000, 1010}, {2000, 2040}, {4100, 4300}};
    for (size_t i = 0; i < 4; i++) {
        struct rf_buf a, b;
        seal(&a, RF_KIND_MESSAGE, 5, p, pairs[i][0]);
        seal(&b, RF_KIND_MESSAGE, 5, p, pairs[i][1]);
        assert_int_equal(a.len, b.len);
        rf_buf_free(&a);
        rf_buf_free(&b);
    }
    free(p);
}

static void header_parse_limits(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_EVENT, 3, (const uint8_t *)"e", 1);
    struct rf_env_header h;
    uint8_t ids[2][RF_ENV_KEYID_BYTES];
    assert_int_equal(rf_envelope_header_parse(&h, ids, 2, ct.data, ct.len), 0);
    assert_int_equal(h.version, 2);
    assert_int_equal(h.kind, RF_KIND_EVENT);
    assert_int_equal(h.nrecip, 3);
    assert_int_equal(h.header_len, header_len(3));
    uint8_t id[RF_ENV_KEYID_BYTES];
    rf_keyid(id, pks[1]);
    assert_memory_equal(ids[1], id, sizeof(id));
    for (size_t cut = 0; cut < h.header_len; cut++)
        assert_int_equal(rf_envelope_header_parse(&h, NULL, 0, ct.data, cut), RF_ERR_TRUNCATED);
    uint8_t bad[8];
    memcpy(bad, ct.data, 8);
    bad[6] = 0, bad[7] = 0;
    assert_int_equal(rf_envelope_header_parse(&h, NULL, 0, bad, 8), RF_ERR_FORMAT);
    bad[6] = 1, bad[7] = 1; /* 257 */
    assert_int_equal(rf_envelope_header_parse(&h, NULL, 0, bad, 8), RF_ERR_LIMIT);
    assert_int_equal(rf_envelope_header_parse(&h, NULL, 0, (const uint8_t *)"RFX", 3),
                     RF_ERR_FORMAT);
    assert_int_equal(rf_envelope_header_parse(&h, NULL, 0, (const uint8_t *)"RFGE\x03", 5),
                     RF_ERR_VERSION);
    assert_int_equal(rf_envelope_header_parse(&h, NULL, 0, (const uint8_t *)"RFGE\x00", 5),
                     RF_ERR_VERSION);
    rf_buf_free(&ct);
}

static int null_sink(void *ctx, const uint8_t *p, size_t n)
{
    (void)ctx, (void)p, (void)n;
    return 0;
}

static void sealer_refuses_bad_arguments(void **state)
{
    (void)state;
    struct rf_seal *s = NULL;
    const uint8_t(*k)[32] = (const uint8_t(*)[32])pks;
    assert_int_equal(rf_seal_new(&s, RF_KIND_MESSAGE, k, 0, null_sink, NULL), RF_ERR_LIMIT);
    assert_int_equal(rf_seal_new(&s, 0, k, 1, null_sink, NULL), RF_ERR_INVALID);
    assert_int_equal(rf_seal_new(&s, RF_KIND_MAX + 1, k, 1, null_sink, NULL), RF_ERR_INVALID);
    uint8_t(*many)[32] = calloc(RF_ENV_MAX_RECIPIENTS + 1, 32);
    assert_non_null(many);
    assert_int_equal(rf_seal_new(&s, RF_KIND_MESSAGE, (const uint8_t(*)[32])many,
                                 RF_ENV_MAX_RECIPIENTS + 1, null_sink, NULL),
                     RF_ERR_LIMIT);
    memcpy(many[0], pks[0], 32);
    memcpy(many[1], pks[0], 32);
    assert_int_equal(
        rf_seal_new(&s, RF_KIND_MESSAGE, (const uint8_t(*)[32])many, 2, null_sink, NULL),
        RF_ERR_INVALID);
    free(many);
    assert_null(s);
}

static void max_recipients(void **state)
{
    (void)state;
    uint8_t(*k)[32] = calloc(RF_ENV_MAX_RECIPIENTS, 32);
    assert_non_null(k);
    uint8_t sk[32];
    for (int i = 0; i < RF_ENV_MAX_RECIPIENTS; i++)
        crypto_box_keypair(k[i], sk); /* keep the last secret key */
    struct rf_buf ct, out;
    rf_buf_init(&ct, 1 << 20);
    assert_int_equal(rf_envelope_seal(&ct, RF_KIND_NOTE, (const uint8_t(*)[32])k,
                                      RF_ENV_MAX_RECIPIENTS, (const uint8_t *)"n", 1),
                     0);
    rf_buf_init(&out, 1 << 20);
    assert_int_equal(
        rf_envelope_open(&out, NULL, k[RF_ENV_MAX_RECIPIENTS - 1], sk, ct.data, ct.len), 0);
    assert_int_equal(out.len, 1);
    rf_buf_free(&out);
    rf_buf_free(&ct);
    free(k);
}

static void sink_error_propagates(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_MESSAGE, 1, (const uint8_t *)"abc", 3);
    struct rf_buf small;
    rf_buf_init(&small, 2); /* the sink refuses the third byte */
    assert_int_equal(rf_envelope_open(&small, NULL, pks[0], sks[0], ct.data, ct.len), RF_ERR_LIMIT);
    rf_buf_free(&small);
    rf_buf_free(&ct);
}

/* Sealing and opening a large stream keeps memory flat. */
struct pipe {
    struct rf_open *o;
    uint64_t out;
    crypto_generichash_state h;
};

static int pipe_to_opener(void *ctx, const uint8_t *p, size_t n)
{
    struct pipe *pp = ctx;
    return rf_open_write(pp->o, p, n);
}

static int hash_sink(void *ctx, const uint8_t *p, size_t n)
{
    struct pipe *pp = ctx;
    pp->out += n;
    crypto_generichash_update(&pp->h, p, n);
    return 0;
}

static long maxrss_kb(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static void large_stream_constant_memory(void **state)
{
    (void)state;
    const size_t total = 256u * 1024 * 1024 + 12345;
    const size_t block = 100000;
    uint8_t *p = pattern(block, 11);
    /* static: ASan's fake stacks do not honour the state's 64-byte alignment */
    static struct pipe pp;
    memset(&pp, 0, sizeof(pp));
    crypto_generichash_init(&pp.h, NULL, 0, 32);
    static crypto_generichash_state want;
    crypto_generichash_init(&want, NULL, 0, 32);
    long before = maxrss_kb();
    assert_int_equal(rf_open_new(&pp.o, pks[0], sks[0], hash_sink, &pp), 0);
    struct rf_seal *s = NULL;
    assert_int_equal(
        rf_seal_new(&s, RF_KIND_FILE, (const uint8_t(*)[32])pks, 2, pipe_to_opener, &pp), 0);
    for (size_t off = 0; off < total; off += block) {
        size_t k = total - off < block ? total - off : block;
        assert_int_equal(rf_seal_write(s, p, k), 0);
        crypto_generichash_update(&want, p, k);
    }
    assert_int_equal(rf_seal_finish(s), 0);
    assert_int_equal(rf_open_finish(pp.o), 0);
    long grew = maxrss_kb() - before;
    assert_true(grew < 4 * 1024); /* KiB */
    assert_int_equal(pp.out, total);
    uint8_t a[32], b[32];
    crypto_generichash_final(&pp.h, a, 32);
    crypto_generichash_final(&want, b, 32);
    assert_memory_equal(a, b, 32);
    rf_seal_free(s);
    rf_open_free(pp.o);
    free(p);
}

/* ---- file framing ---- */

static void filemeta_round_trip(void **state)
{
    (void)state;
    struct rf_buf b;
    rf_buf_init(&b, 4096);
    const char *name = "паспорт скан.jpg";
    assert_int_equal(rf_filemeta_encode(&b, name, strlen(name), "image/jpeg", 10), 0);
    assert_int_equal(rf_buf_put(&b, "\xff\xd8", 2), 0);
    struct rf_filemeta m;
    size_t used = 0;
    for (size_t cut = 0; cut < b.len - 2; cut++)
        assert_int_equal(rf_filemeta_parse(&m, &used, b.data, cut), RF_ERR_TRUNCATED);
    assert_int_equal(rf_filemeta_parse(&m, &used, b.data, b.len), 0);
    assert_int_equal(used, b.len - 2);
    assert_string_equal(m.name, name);
    assert_string_equal(m.type, "image/jpeg");
    rf_buf_reset(&b);
    assert_int_equal(rf_filemeta_encode(&b, "a", 1, "", 0), 0);
    assert_int_equal(rf_filemeta_parse(&m, &used, b.data, b.len), 0);
    assert_string_equal(m.type, "");
    rf_buf_free(&b);
}

static void filemeta_refuses_bad(void **state)
{
    (void)state;
    struct rf_buf b;
    rf_buf_init(&b, 4096);
    char big[300];
    memset(big, 'a', sizeof(big));
    assert_int_equal(rf_filemeta_encode(&b, "", 0, "", 0), RF_ERR_FORMAT);
    assert_int_equal(rf_filemeta_encode(&b, "a/b", 3, "", 0), RF_ERR_FORMAT);
    assert_int_equal(rf_filemeta_encode(&b, "a\\b", 3, "", 0), RF_ERR_FORMAT);
    assert_int_equal(rf_filemeta_encode(&b, "a\0b", 3, "", 0), RF_ERR_FORMAT);
    assert_int_equal(rf_filemeta_encode(&b, "\xc3\x28", 2, "", 0), RF_ERR_FORMAT);
    assert_int_equal(rf_filemeta_encode(&b, big, 256, "", 0), RF_ERR_LIMIT);
    assert_int_equal(rf_filemeta_encode(&b, big, 255, big, 128), RF_ERR_LIMIT);
    assert_int_equal(rf_filemeta_encode(&b, "a", 1, "t\n", 2), RF_ERR_FORMAT);
    assert_int_equal(b.len, 0);
    struct rf_filemeta m;
    size_t used;
    const struct {
        const char *p;
        size_t n;
        int err;
    } bad[] = {
        {"X", 1, RF_ERR_FORMAT},
        {"RFGX", 4, RF_ERR_FORMAT},
        {"RFGF\0\0", 6, RF_ERR_FORMAT},
        {"RFGF\x01\x00", 6, RF_ERR_LIMIT},
        {"RFGF\0\x01/\0", 8, RF_ERR_FORMAT},
        {"RFGF\0\x01"
         "a\x80",
         8, RF_ERR_LIMIT},
        {"RFGF\0\x01"
         "a\x01\x7f",
         9, RF_ERR_FORMAT},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(rf_filemeta_parse(&m, &used, (const uint8_t *)bad[i].p, bad[i].n),
                         bad[i].err);
    rf_buf_free(&b);
}

static void filemeta_safe_names(void **state)
{
    (void)state;
    char out[64];
    const struct {
        const char *in, *want;
    } cases[] = {
        {"scan.jpg", "scan.jpg"},
        {"../../etc/passwd", "_.._etc_passwd"},
        {"..", "file"},
        {".bashrc", "bashrc"},
        {"", "file"},
        {"a\nb\tc", "a_b_c"},
        {"C:\\x", "C__x"},
        {"invoice\xe2\x80\xaegpj.exe", "invoice_gpj.exe"},
        {"bad\xff utf8", "bad_ utf8"},
        {"trail. . ", "trail"},
        {"паспорт.pdf", "паспорт.pdf"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(rf_filemeta_safe_name(out, sizeof(out), cases[i].in), 0);
        assert_string_equal(out, cases[i].want);
    }
    /* truncation never splits a character */
    assert_int_equal(rf_filemeta_safe_name(out, 6, "ппп"), 0);
    assert_string_equal(out, "пп");
    assert_int_equal(rf_filemeta_safe_name(out, 4, "abc"), RF_ERR_INVALID);
}

/* ------------------------------------------------------------------ grants */

static int buf_sink(void *ctx, const uint8_t *p, size_t n)
{
    return rf_buf_put(ctx, p, n);
}

/* Opens ct as key `who` through grant, feeding step bytes at a time. */
static int open_grant_err(const uint8_t grant[RF_GRANT_BYTES], int who, const uint8_t *ct, size_t n,
                          size_t step, struct rf_buf *out)
{
    struct rf_open *o = NULL;
    rf_buf_init_secure(out, SIZE_MAX / 2);
    int rc = rf_open_new_grant(&o, grant, pks[who], sks[who], buf_sink, out);
    if (rc != 0) {
        assert_null(o);
        return rc;
    }
    for (size_t off = 0; rc == 0 && off < n; off += step)
        rc = rf_open_write(o, ct + off, n - off < step ? n - off : step);
    if (rc == 0)
        rc = rf_open_finish(o);
    if (rc == 0)
        assert_int_equal(rf_open_kind(o), ct[5]);
    rf_open_free(o);
    return rc;
}

static int grant_err(const uint8_t grant[RF_GRANT_BYTES], int who, const uint8_t *ct, size_t n)
{
    struct rf_buf out;
    int rc = open_grant_err(grant, who, ct, n, n ? n : 1, &out);
    rf_buf_free(&out);
    return rc;
}

/* The content key of ct as recipient `who`, rewrapped to recipient `to`. */
static void make_grant(uint8_t grant[RF_GRANT_BYTES], const struct rf_buf *ct, int who, int to)
{
    uint8_t *key = sodium_malloc(32);
    assert_non_null(key);
    assert_int_equal(rf_envelope_content_key(key, ct->data, ct->len, pks[who], sks[who]), 0);
    assert_int_equal(rf_grant_make(grant, key, pks[to]), 0);
    sodium_free(key);
}

static void grant_opens_for_later_member(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 17, 70000, 2 * 65536 + 3};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *p = pattern(sizes[i], 40 + (uint32_t)i);
        struct rf_buf ct;
        seal(&ct, RF_KIND_FILE, 3, p, sizes[i]);
        /* member 4 joined later: the envelope has no stanza for them */
        assert_int_equal(open_err(4, ct.data, ct.len), RF_ERR_NOT_RECIPIENT);
        uint8_t grant[RF_GRANT_BYTES];
        make_grant(grant, &ct, 2, 4);
        uint8_t id[RF_ENV_KEYID_BYTES];
        rf_keyid(id, pks[4]);
        assert_memory_equal(grant, id, RF_ENV_KEYID_BYTES);
        const size_t steps[] = {ct.len, 1000, 1};
        for (size_t j = 0; j < 3; j++) {
            if (steps[j] == 1 && ct.len > 20000)
                continue;
            struct rf_buf out;
            assert_int_equal(open_grant_err(grant, 4, ct.data, ct.len, steps[j], &out), 0);
            assert_int_equal(out.len, sizes[i]);
            if (sizes[i])
                assert_memory_equal(out.data, p, sizes[i]);
            rf_buf_free(&out);
        }
        /* every recipient finds the same content key; the grant does not change the object */
        uint8_t *k0 = sodium_malloc(32), *k1 = sodium_malloc(32);
        assert_int_equal(rf_envelope_content_key(k0, ct.data, ct.len, pks[0], sks[0]), 0);
        assert_int_equal(rf_envelope_content_key(k1, ct.data, ct.len, pks[1], sks[1]), 0);
        assert_memory_equal(k0, k1, 32);
        sodium_free(k0);
        sodium_free(k1);
        assert_opens_to(0, &ct, p, sizes[i], RF_KIND_FILE);
        rf_buf_free(&ct);
        free(p);
    }
}

static void content_key_needs_only_the_header(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_NOTE, 2, (const uint8_t *)"note", 4);
    size_t h = header_len(2);
    uint8_t *key = sodium_malloc(32);
    assert_non_null(key);
    assert_int_equal(rf_envelope_content_key(key, ct.data, h, pks[1], sks[1]), 0);
    uint8_t grant[RF_GRANT_BYTES];
    assert_int_equal(rf_grant_make(grant, key, pks[5]), 0);
    assert_int_equal(grant_err(grant, 5, ct.data, ct.len), 0);
    assert_int_equal(rf_envelope_content_key(key, ct.data, h - 1, pks[1], sks[1]),
                     RF_ERR_TRUNCATED);
    assert_int_equal(rf_envelope_content_key(key, ct.data, 0, pks[1], sks[1]), RF_ERR_TRUNCATED);
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[3], sks[3]),
                     RF_ERR_NOT_RECIPIENT);
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[0], sks[1]), RF_ERR_DECRYPT);
    ct.data[h - 1] ^= 1; /* the key commitment */
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[0], sks[0]), RF_ERR_DECRYPT);
    assert_int_equal(rf_envelope_key_check(key, ct.data, ct.len), RF_ERR_DECRYPT);
    ct.data[h - 1] ^= 1;
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[0], sks[0]), 0);
    assert_int_equal(rf_envelope_key_check(key, ct.data, ct.len), 0);
    key[0] ^= 1;
    assert_int_equal(rf_envelope_key_check(key, ct.data, ct.len), RF_ERR_DECRYPT);
    ct.data[4] = 3;
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[0], sks[0]), RF_ERR_VERSION);
    ct.data[0] = 'X';
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[0], sks[0]), RF_ERR_FORMAT);
    sodium_free(key);
    rf_buf_free(&ct);
}

/* rf_open_new_key: the content key opened ahead opens the object as its
 * stanza does; a key the header does not commit to opens nothing. */
static void opens_with_key_opened_ahead(void **state)
{
    (void)state;
    const size_t sizes[] = {0, 17, 70000};
    uint8_t *key = sodium_malloc(32);
    assert_non_null(key);
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        uint8_t *msg = malloc(sizes[i] + 1);
        randombytes_buf(msg, sizes[i]);
        struct rf_buf ct, out;
        seal(&ct, RF_KIND_MESSAGE, 2, msg, sizes[i]);
        assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[1], sks[1]), 0);
        for (int wrong = 0; wrong < 2; wrong++) {
            struct rf_open *o = NULL;
            key[0] ^= (uint8_t)wrong;
            rf_buf_init_secure(&out, SIZE_MAX / 2);
            assert_int_equal(rf_open_new_key(&o, key, buf_sink, &out), 0);
            int rc = rf_open_write(o, ct.data, ct.len);
            if (rc == 0)
                rc = rf_open_finish(o);
            assert_int_equal(rc, wrong ? RF_ERR_DECRYPT : 0);
            if (!wrong) {
                assert_int_equal(rf_open_kind(o), RF_KIND_MESSAGE);
                assert_int_equal(out.len, sizes[i]);
                assert_true(sizes[i] == 0 || memcmp(out.data, msg, sizes[i]) == 0);
            } else {
                assert_int_equal(out.len, 0); /* nothing decrypted under it */
            }
            key[0] ^= (uint8_t)wrong;
            rf_open_free(o);
            rf_buf_free(&out);
        }
        rf_buf_free(&ct);
        free(msg);
    }
    sodium_free(key);
}

static void grant_bound_to_recipient(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_REPLY, 2, (const uint8_t *)"reply", 5);
    uint8_t grant[RF_GRANT_BYTES];
    make_grant(grant, &ct, 0, 4);
    assert_int_equal(grant_err(grant, 4, ct.data, ct.len), 0);
    /* another member (or the source) cannot use it */
    assert_int_equal(grant_err(grant, 5, ct.data, ct.len), RF_ERR_NOT_RECIPIENT);
    assert_int_equal(grant_err(grant, 1, ct.data, ct.len), RF_ERR_NOT_RECIPIENT);
    /* not even with the key id relabelled to theirs */
    rf_keyid(grant, pks[5]);
    assert_int_equal(grant_err(grant, 5, ct.data, ct.len), RF_ERR_DECRYPT);
    /* right key id, wrong secret key */
    make_grant(grant, &ct, 0, 4);
    struct rf_open *o = (struct rf_open *)1;
    struct rf_buf out;
    rf_buf_init(&out, 1 << 20);
    assert_int_equal(rf_open_new_grant(&o, grant, pks[4], sks[5], buf_sink, &out), RF_ERR_DECRYPT);
    assert_null(o);
    rf_buf_free(&out);
    rf_buf_free(&ct);
}

static void grant_bound_to_object(void **state)
{
    (void)state;
    uint8_t *p = pattern(70000, 41);
    struct rf_buf a, b, c;
    seal(&a, RF_KIND_MESSAGE, 2, (const uint8_t *)"object A", 8);
    seal(&b, RF_KIND_MESSAGE, 2, (const uint8_t *)"object B", 8);
    seal(&c, RF_KIND_FILE, 2, p, 70000);
    uint8_t grant[RF_GRANT_BYTES];
    make_grant(grant, &a, 0, 4);
    assert_int_equal(grant_err(grant, 4, a.data, a.len), 0);
    assert_int_equal(grant_err(grant, 4, b.data, b.len), RF_ERR_DECRYPT);
    assert_int_equal(grant_err(grant, 4, c.data, c.len), RF_ERR_DECRYPT);
    /* object A's header spliced onto object B's body: the key opens, the AD does not */
    size_t h = header_len(2);
    memcpy(b.data, a.data, h);
    assert_int_equal(grant_err(grant, 4, b.data, b.len), RF_ERR_DECRYPT);
    rf_buf_free(&a);
    rf_buf_free(&b);
    rf_buf_free(&c);
    free(p);
}

static void grant_tampering_refused(void **state)
{
    (void)state;
    struct rf_buf ct;
    seal(&ct, RF_KIND_EVENT, 3, (const uint8_t *)"event", 5);
    uint8_t grant[RF_GRANT_BYTES];
    make_grant(grant, &ct, 1, 4);
    for (size_t i = 0; i < RF_GRANT_BYTES; i++) {
        grant[i] ^= 0x20;
        int want = i < RF_ENV_KEYID_BYTES ? RF_ERR_NOT_RECIPIENT : RF_ERR_DECRYPT;
        assert_int_equal(grant_err(grant, 4, ct.data, ct.len), want);
        grant[i] ^= 0x20;
    }
    assert_int_equal(grant_err(grant, 4, ct.data, ct.len), 0);
    /* the header is still authenticated: kind, stanzas, stream header */
    size_t h = header_len(3);
    const size_t offs[] = {5, 8, 8 + RF_ENV_STANZA_BYTES + 9, h - 1, h, ct.len - 1};
    for (size_t i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
        ct.data[offs[i]] ^= 0x01;
        assert_int_equal(grant_err(grant, 4, ct.data, ct.len), RF_ERR_DECRYPT);
        ct.data[offs[i]] ^= 0x01;
    }
    ct.data[4] = 9;
    assert_int_equal(grant_err(grant, 4, ct.data, ct.len), RF_ERR_VERSION);
    ct.data[4] = RF_ENV_VERSION;
    assert_int_equal(grant_err(grant, 4, ct.data, ct.len - 1), RF_ERR_TRUNCATED);
    assert_int_equal(grant_err(grant, 4, ct.data, h), RF_ERR_TRUNCATED);
    /* a recipient stripped from the header */
    struct rf_buf cut;
    rf_buf_init(&cut, 1 << 20);
    assert_int_equal(rf_buf_put(&cut, ct.data, 8), 0);
    cut.data[7] = 2;
    assert_int_equal(
        rf_buf_put(&cut, ct.data + 8 + RF_ENV_STANZA_BYTES, ct.len - 8 - RF_ENV_STANZA_BYTES), 0);
    assert_int_equal(grant_err(grant, 4, cut.data, cut.len), RF_ERR_DECRYPT);
    rf_buf_free(&cut);
    rf_buf_free(&ct);
}

static void grant_make_refuses_bad_key(void **state)
{
    (void)state;
    uint8_t key[32] = {1}, zero[32] = {0}, grant[RF_GRANT_BYTES];
    assert_int_equal(rf_grant_make(grant, key, zero), RF_ERR_INVALID);
}

/* ---- key commitment (version 2): one envelope, two content keys ----
 * A dishonest sealer (a member, or the server) builds an envelope by hand
 * whose stanza for recipient 0 seals key ka and whose stanza for recipient 1
 * seals another key kb: the "invisible salamander" set-up, where two
 * recipients could read two different messages from the same bytes. */
struct split {
    uint8_t version;
    const uint8_t *ka, *kb; /* sealed to recipients 0 and 1 */
    const uint8_t *kc;      /* the key the commitment is made with (version 2) */
    const uint8_t *kbody;   /* the key the body is encrypted with */
};

static void craft_split(struct rf_buf *ct, const struct split *sp, const char *text)
{
    rf_buf_init(ct, 1 << 20);
    uint8_t hdr[8 + 2 * RF_ENV_STANZA_BYTES + 24 + RF_ENV_COMMIT_BYTES];
    memcpy(hdr, "RFGE", 4);
    hdr[4] = sp->version;
    hdr[5] = RF_KIND_REPLY;
    hdr[6] = 0, hdr[7] = 2;
    const uint8_t *keys[2] = {sp->ka, sp->kb};
    for (int i = 0; i < 2; i++) {
        uint8_t *st = hdr + 8 + (size_t)i * RF_ENV_STANZA_BYTES;
        rf_keyid(st, pks[i]);
        assert_int_equal(crypto_box_seal(st + RF_ENV_KEYID_BYTES, keys[i], 32, pks[i]), 0);
    }
    size_t off = 8 + 2 * RF_ENV_STANZA_BYTES, hlen = off + 24;
    crypto_secretstream_xchacha20poly1305_state st;
    assert_int_equal(crypto_secretstream_xchacha20poly1305_init_push(&st, hdr + off, sp->kbody), 0);
    if (sp->version >= 2) {
        static const char dom[] = "refuge-envelope-commit-v2";
        crypto_generichash_state h;
        crypto_generichash_init(&h, sp->kc, 32, RF_ENV_COMMIT_BYTES);
        crypto_generichash_update(&h, (const uint8_t *)dom, sizeof(dom) - 1);
        crypto_generichash_update(&h, hdr, hlen);
        crypto_generichash_final(&h, hdr + hlen, RF_ENV_COMMIT_BYTES);
        hlen += RF_ENV_COMMIT_BYTES;
    }
    uint8_t padded[RF_ENV_MIN_PADDED] = {0}, body[RF_ENV_MIN_PADDED + 17];
    size_t n = strlen(text);
    memcpy(padded, text, n);
    padded[n] = 0x80;
    assert_int_equal(crypto_secretstream_xchacha20poly1305_push(
                         &st, body, NULL, padded, sizeof(padded), hdr, hlen,
                         crypto_secretstream_xchacha20poly1305_TAG_FINAL),
                     0);
    assert_int_equal(rf_buf_put(ct, hdr, hlen), 0);
    assert_int_equal(rf_buf_put(ct, body, sizeof(body)), 0);
}

static int open_split(int who, const struct rf_buf *ct, struct rf_buf *out)
{
    rf_buf_init_secure(out, 1 << 20);
    return rf_envelope_open(out, NULL, pks[who], sks[who], ct->data, ct->len);
}

static void key_commitment_refuses_split_keys(void **state)
{
    (void)state;
    uint8_t k1[32], k2[32], k3[32];
    randombytes_buf(k1, 32);
    randombytes_buf(k2, 32);
    randombytes_buf(k3, 32);
    struct rf_buf ct, out;
    uint8_t *key = sodium_malloc(32);
    assert_non_null(key);

    /* Version 1 has no commitment: recipient 0 opens the body under k1 and
     * has no way to learn that recipient 1 was handed k2. */
    craft_split(&ct, &(struct split){1, k1, k2, NULL, k1}, "for Anna");
    assert_int_equal(open_split(0, &ct, &out), 0);
    assert_memory_equal(out.data, "for Anna", 8);
    rf_buf_free(&out);
    rf_buf_free(&ct);

    /* The same envelope as version 2 committing to k2 (the key of recipient
     * 1's stanza) while the body is under k1: recipient 0 holds the body's
     * own key, yet refuses before decrypting, as tampered; recipient 1
     * passes the commitment but its key does not open the body. Neither
     * reads anything. */
    craft_split(&ct, &(struct split){2, k1, k2, k2, k1}, "for Anna");
    assert_int_equal(open_split(0, &ct, &out), RF_ERR_DECRYPT);
    assert_int_equal(out.len, 0);
    rf_buf_free(&out);
    assert_int_equal(open_split(1, &ct, &out), RF_ERR_DECRYPT);
    assert_int_equal(out.len, 0);
    rf_buf_free(&out);
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[0], sks[0]), RF_ERR_DECRYPT);
    assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[1], sks[1]), 0);
    rf_buf_free(&ct);

    /* A commitment to neither stanza's key (k3): each recipient refuses. */
    craft_split(&ct, &(struct split){2, k1, k2, k3, k1}, "for Anna");
    for (int who = 0; who < 2; who++) {
        assert_int_equal(open_split(who, &ct, &out), RF_ERR_DECRYPT);
        rf_buf_free(&out);
        assert_int_equal(rf_envelope_content_key(key, ct.data, ct.len, pks[who], sks[who]),
                         RF_ERR_DECRYPT);
    }
    rf_buf_free(&ct);

    /* Committed to k1, body under k1: recipient 0 reads it; recipient 1,
     * handed k2, is refused: at most one content key opens an envelope, so
     * every recipient who reads it reads the same bytes. A grant of the
     * wrong key (k2) is refused the same way. */
    craft_split(&ct, &(struct split){2, k1, k2, k1, k1}, "for Anna");
    assert_int_equal(open_split(0, &ct, &out), 0);
    assert_memory_equal(out.data, "for Anna", 8);
    rf_buf_free(&out);
    assert_int_equal(open_split(1, &ct, &out), RF_ERR_DECRYPT);
    rf_buf_free(&out);
    uint8_t grant[RF_GRANT_BYTES];
    assert_int_equal(rf_grant_make(grant, k2, pks[4]), 0);
    assert_int_equal(grant_err(grant, 4, ct.data, ct.len), RF_ERR_DECRYPT);
    assert_int_equal(rf_envelope_key_check(k2, ct.data, ct.len), RF_ERR_DECRYPT);
    assert_int_equal(rf_grant_make(grant, k1, pks[4]), 0);
    assert_int_equal(grant_err(grant, 4, ct.data, ct.len), 0);
    assert_int_equal(rf_envelope_key_check(k1, ct.data, ct.len), 0);
    rf_buf_free(&ct);
    sodium_free(key);
}

/* A thread that seals and opens keeps one wiped state object of each
 * (guarded, locked pages); rf_envelope_thread_done gives them back, so a
 * pool that starts threads for every batch of objects (the local case
 * database's digesters) does not lose two mappings per thread. */
static int map_count(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, ch;
    if (!f)
        return -1;
    while ((ch = fgetc(f)) != EOF)
        n += ch == '\n';
    fclose(f);
    return n;
}

static void *seal_open_thread(void *arg)
{
    int done = *(int *)arg;
    uint8_t pk[32], sk[32];
    struct rf_buf ct, pt;
    uint8_t kind = 0;
    crypto_box_keypair(pk, sk);
    rf_buf_init(&ct, 1 << 16);
    rf_buf_init(&pt, 1 << 16);
    int rc = rf_envelope_seal(&ct, RF_KIND_EVENT, (const uint8_t(*)[32])pk, 1,
                              (const uint8_t *)"hello", 5);
    if (rc == 0)
        rc = rf_envelope_open(&pt, &kind, pk, sk, ct.data, ct.len);
    if (rc != 0 || pt.len != 5)
        abort();
    rf_buf_free(&ct);
    rf_buf_free(&pt);
    if (done)
        rf_envelope_thread_done();
    return NULL;
}

static int run_threads(int n, int done)
{
    for (int i = 0; i < n; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, seal_open_thread, &done) != 0)
            return -1;
        pthread_join(th, NULL);
    }
    return 0;
}

static void thread_state_given_back(void **state)
{
    (void)state;
    assert_int_equal(run_threads(2, 1), 0); /* thread stacks cached by libc */
    int before = map_count();
    assert_int_equal(run_threads(20, 1), 0);
    int after = map_count();
    assert_true(before > 0);
    assert_true(after <= before + 2);
    /* and without it, the pages are lost (what the test guards against) */
    assert_int_equal(run_threads(20, 0), 0);
    assert_true(map_count() > after + 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(padded_len_is_padme),
        cmocka_unit_test(round_trip_sizes),
        cmocka_unit_test(round_trip_megabytes),
        cmocka_unit_test(padding_lookalikes_survive),
        cmocka_unit_test(streaming_any_split),
        cmocka_unit_test(wrong_key_not_recipient),
        cmocka_unit_test(truncation_refused),
        cmocka_unit_test(flipped_bytes_refused),
        cmocka_unit_test(kind_changed_refused),
        cmocka_unit_test(reordered_chunks_refused),
        cmocka_unit_test(stripped_recipient_refused),
        cmocka_unit_test(injected_recipient_refused),
        cmocka_unit_test(data_after_final_refused),
        cmocka_unit_test(sizes_are_buckets),
        cmocka_unit_test(header_parse_limits),
        cmocka_unit_test(sealer_refuses_bad_arguments),
        cmocka_unit_test(max_recipients),
        cmocka_unit_test(sink_error_propagates),
        cmocka_unit_test(large_stream_constant_memory),
        cmocka_unit_test(filemeta_round_trip),
        cmocka_unit_test(filemeta_refuses_bad),
        cmocka_unit_test(filemeta_safe_names),
        cmocka_unit_test(grant_opens_for_later_member),
        cmocka_unit_test(content_key_needs_only_the_header),
        cmocka_unit_test(opens_with_key_opened_ahead),
        cmocka_unit_test(grant_bound_to_recipient),
        cmocka_unit_test(grant_bound_to_object),
        cmocka_unit_test(grant_tampering_refused),
        cmocka_unit_test(grant_make_refuses_bad_key),
        cmocka_unit_test(thread_state_given_back),
        cmocka_unit_test(key_commitment_refuses_split_keys),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
