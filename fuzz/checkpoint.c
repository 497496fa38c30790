/*
 * checkpoint.c - fuzzes checkpoints and the chain. The input is parsed and
 * verified as a checkpoint against rosters 1 and 2 of docs/protocol.md 6.5
 * (Admin, signing seed 32 x 0x03, the admin of both; Bob, 32 x 0x05, a
 * member of 2), to which the seed corpus is signed. A parsed checkpoint must
 * keep the field rules and re-encode to the input's fields; a verified one
 * must be signed by Admin and compare equal exactly to a chain with its
 * chain bytes, last seq and count. The input is also read as chain records
 * (seq u64 | kind u8 | case 10 | len u8 | len bytes) fed in order: an add
 * succeeds exactly when its seq is above the last accepted and within the
 * bound, its kind non-zero and its case id valid, and a refused add leaves
 * the chain as it was.
 */
#include "lib/buf.h"
#include "lib/checkpoint.h"
#include "lib/err.h"
#include "lib/roster.h"

#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct rf_roster *rosters[2];
static uint8_t admin_pk[32];

static void add_member(struct rf_roster *r, const char *name, uint8_t fill, uint8_t role)
{
    uint8_t seed[32], sk[64];
    struct rf_member *m = &r->members[r->n++];
    memset(seed, fill, sizeof(seed));
    if (crypto_sign_seed_keypair(m->sign_pk, sk, seed) != 0)
        abort();
    sodium_memzero(sk, sizeof(sk));
    strcpy(m->name, name);
    m->role = role;
}

static void init(void)
{
    if (rosters[0] != NULL)
        return;
    if (sodium_init() < 0)
        abort();
    for (int i = 0; i < 2; i++) {
        if ((rosters[i] = calloc(1, sizeof(*rosters[i]))) == NULL)
            abort();
        rosters[i]->version = (uint32_t)i + 1;
        add_member(rosters[i], "Admin", 0x03, RF_ROLE_ADMIN);
    }
    add_member(rosters[1], "Bob", 0x05, RF_ROLE_MEMBER);
    memcpy(admin_pk, rosters[0]->members[0].sign_pk, 32);
}

static int case_ok(const uint8_t *c)
{
    for (int i = 0; i < RF_CKPT_CASE_LEN; i++)
        if (!((c[i] >= 'a' && c[i] <= 'z') || (c[i] >= 'A' && c[i] <= 'Z') ||
              (c[i] >= '0' && c[i] <= '9')))
            return 0;
    return 1;
}

static void check_checkpoint(const uint8_t *data, size_t size)
{
    const struct rf_roster *const *rs = (const struct rf_roster *const *)rosters;
    struct rf_ckpt p, v;
    int prc = rf_ckpt_parse(&p, data, size);
    int vrc = rf_ckpt_verify(&v, data, size, rs, 2);
    if (prc > 0 || prc < RF_ERR_MIN || vrc > 0 || vrc < RF_ERR_MIN)
        abort();
    if (prc != 0) {
        if (vrc != prc)
            abort(); /* verify refuses what parse refuses, for the same reason */
        return;
    }
    if (size != RF_CKPT_BYTES || p.roster_version == 0 || p.count == 0 || p.count > p.last_seq ||
        p.last_seq > RF_CKPT_SEQ_MAX || memcmp(p.chain, data + 25, 32) != 0 ||
        memcmp(p.sig, data + RF_CKPT_SIGNED_BYTES, 64) != 0)
        abort();
    if (vrc != 0) {
        if (vrc != RF_ERR_SIGNATURE && vrc != RF_ERR_ROSTER)
            abort();
        return;
    }
    if (p.roster_version != v.roster_version || p.last_seq != v.last_seq || p.count != v.count ||
        memcmp(p.chain, v.chain, 32) != 0 || memcmp(v.signer_pk, admin_pk, 32) != 0 ||
        v.roster_version > 2)
        abort();
    struct rf_ckpt_chain c = {.last_seq = v.last_seq, .count = v.count};
    memcpy(c.chain, v.chain, 32);
    enum rf_ckpt_diff d;
    if (rf_ckpt_compare(&v, &c, &d) != 0 || d != RF_CKPT_SAME)
        abort();
    c.chain[31] ^= 1;
    if (rf_ckpt_compare(&v, &c, &d) != RF_ERR_SIGNATURE || d != RF_CKPT_DIFF_CHAIN)
        abort();
}

static void check_chain(const uint8_t *data, size_t size)
{
    struct rf_reader r;
    struct rf_ckpt_chain c, before;
    rf_reader_init(&r, data, size);
    rf_ckpt_chain_init(&c);
    for (;;) {
        uint64_t seq;
        uint8_t kind, len, cid[RF_CKPT_CASE_LEN + 1] = {0};
        const uint8_t *obj;
        if (rf_get_u64(&r, &seq) || rf_get_u8(&r, &kind) || rf_get_bytes(&r, cid, 10) ||
            rf_get_u8(&r, &len) || rf_get_ptr(&r, &obj, len))
            return;
        before = c;
        int want =
            seq > c.last_seq && seq <= RF_CKPT_SEQ_MAX && kind != 0 && case_ok(cid) && len > 0;
        int rc = rf_ckpt_chain_add(&c, seq, kind, (const char *)cid, obj, len);
        if ((rc == 0) != want || (rc != 0 && rc != RF_ERR_INVALID))
            abort();
        if (rc != 0 && memcmp(&c, &before, sizeof(c)) != 0)
            abort();
        if (rc == 0 && (c.last_seq != seq || c.count != before.count + 1 ||
                        memcmp(c.chain, before.chain, 32) == 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init();
    check_checkpoint(data, size);
    check_chain(data, size);
    return 0;
}
