/*
 * checkpoint.h - signed checkpoints of verified case events (docs/protocol.md
 * "Checkpoints"). An admin's client, after a sync that verified the
 * signature of every event up to some seq, signs a hash chain of those
 * events; a later cold sync verifies that one signature against the verified
 * roster chain and then each event below it by hash (about 1 us) instead of
 * by Ed25519 (about 46 us).
 *
 * The chain, one element per covered object in seq order:
 *
 *   c_0 = 32 zero bytes
 *   c_i = BLAKE2b-256(personal "refuge-ckpt-v1" (16 bytes, zero-padded),
 *                     c_{i-1} | seq u64 | kind u8 | case id (10) |
 *                     BLAKE2b-256(signed object bytes))            (83 bytes)
 *
 * The checkpoint (RF_CKPT_BYTES = 153 bytes, big-endian):
 *
 *   "RFCP" | version u8 (=1) | roster_version u32 | last_seq u64 |
 *   count u64 | chain[32] | signer sign_pk[32] | signature[64]
 *
 *   signature = Ed25519(signer_sk, "refuge-checkpoint-v1" || the first 89 bytes)
 *
 * This module only hashes, frames, signs and verifies; which objects a
 * client feeds, where a checkpoint is stored and when one is made belong to
 * the client (version 1 covers the objects of kind 4, case events, with the
 * signed event bytes of docs/protocol.md section 8).
 */
#ifndef RF_CHECKPOINT_H
#define RF_CHECKPOINT_H

#include "lib/keyfile.h"
#include "lib/roster.h"

#include <stddef.h>
#include <stdint.h>

#define RF_CKPT_MAGIC "RFCP"
#define RF_CKPT_VERSION 1
#define RF_CKPT_CASE_LEN 10
#define RF_CKPT_SIGNED_BYTES (4 + 1 + 4 + 8 + 8 + 32 + 32)
#define RF_CKPT_BYTES (RF_CKPT_SIGNED_BYTES + 64)
#define RF_CKPT_SEQ_MAX ((UINT64_C(1) << 62) - 1) /* as the range answer's seqs */

/* The running chain. Plain data (no secret): a client may store it after a
 * sync and continue it on the next one. count and last_seq are 0 before the
 * first element. */
struct rf_ckpt_chain {
    uint8_t chain[32];
    uint64_t last_seq;
    uint64_t count;
};

/* A parsed checkpoint. */
struct rf_ckpt {
    uint32_t roster_version;
    uint64_t last_seq;
    uint64_t count;
    uint8_t chain[32];
    uint8_t signer_pk[32];
    uint8_t sig[64];
};

/* Why a verified checkpoint and a computed chain differ (rf_ckpt_compare). */
enum rf_ckpt_diff {
    RF_CKPT_SAME = 0,
    RF_CKPT_DIFF_LAST_SEQ = 1, /* the chain does not end at the checkpoint's seq */
    RF_CKPT_DIFF_COUNT = 2,    /* ... or holds another number of objects */
    RF_CKPT_DIFF_CHAIN = 3,    /* ... or other objects, or in another order */
};

/* The chain. init sets c_0; add appends one object, given its signed bytes
 * (obj, n >= 1) or their BLAKE2b-256 (add_hash, for a caller that hashed them
 * already). seq must be above the chain's last_seq and at most
 * RF_CKPT_SEQ_MAX, kind 1..255, case_id exactly RF_CKPT_CASE_LEN ASCII
 * letters or digits: else RF_ERR_INVALID and c is unchanged. */
void rf_ckpt_chain_init(struct rf_ckpt_chain *c);
int rf_ckpt_chain_add(struct rf_ckpt_chain *c, uint64_t seq, uint8_t kind, const char *case_id,
                      const uint8_t *obj, size_t n);
int rf_ckpt_chain_add_hash(struct rf_ckpt_chain *c, uint64_t seq, uint8_t kind, const char *case_id,
                           const uint8_t obj_hash[32]);
/* BLAKE2b-256 (no key) of an object's signed bytes, as the chain takes it. */
void rf_ckpt_obj_hash(uint8_t out[32], const uint8_t *obj, size_t n);

/* Writes the signed checkpoint of chain c (at least one object) for roster
 * version roster_version (>= 1: the latest the signer verified) into out.
 * RF_ERR_INVALID for an empty chain or roster version 0. Whether k is an
 * admin is the caller's business (the verifier checks it). */
int rf_ckpt_make(uint8_t out[RF_CKPT_BYTES], const struct rf_ckpt_chain *c, uint32_t roster_version,
                 const struct rf_staff_keys *k);

/* Structure only, no signature check; out written only on success.
 * RF_ERR_TRUNCATED: shorter than RF_CKPT_BYTES (a prefix of a checkpoint);
 * RF_ERR_FORMAT: another magic, a byte after RF_CKPT_BYTES, roster_version
 * 0, count 0, last_seq over RF_CKPT_SEQ_MAX or below count;
 * RF_ERR_VERSION: a version other than 1. */
int rf_ckpt_parse(struct rf_ckpt *out, const uint8_t *p, size_t n);

/* Parses p and verifies it against the verified rosters (rosters[i] is
 * version i+1, nrosters the latest the client verified): the signature must
 * verify (else RF_ERR_SIGNATURE), and the signer must be an admin of every
 * version from roster_version to nrosters (else RF_ERR_ROSTER, also when
 * roster_version is beyond nrosters). Parse errors as rf_ckpt_parse; out is
 * written only on success. */
int rf_ckpt_verify(struct rf_ckpt *out, const uint8_t *p, size_t n,
                   const struct rf_roster *const *rosters, size_t nrosters);

/* Compares a verified checkpoint with a chain computed from the events: 0
 * when last_seq, count and chain are the same (the chain in constant time),
 * else RF_ERR_SIGNATURE (the events are not the ones the signer verified)
 * with *diff saying which differed first (diff may be NULL). */
int rf_ckpt_compare(const struct rf_ckpt *ck, const struct rf_ckpt_chain *c,
                    enum rf_ckpt_diff *diff);

#endif
