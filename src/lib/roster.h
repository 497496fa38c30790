/*
 * roster.h - the signed list of caseworkers and their public keys.
 *
 *   body:  "RFGR" | version u8 (=1) | roster_version u32 | prev_hash[32] |
 *          n u16 | n x ( name_len u8 | name | role u8 | box_pk[32] | sign_pk[32] )
 *   then:  signer_sign_pk[32] | Ed25519 signature[64] over
 *          "refuge-roster-v1" || body
 *
 * prev_hash is BLAKE2b-256 of the whole previous signed roster (zeros for
 * version 1). Version 1 is signed by the first admin, whose signing key every
 * client pins at enrollment; version N+1 must be signed by an admin listed in
 * version N and carry N's hash. The server stores rosters but cannot make one.
 */
#ifndef RF_ROSTER_H
#define RF_ROSTER_H

#include "lib/buf.h"
#include "lib/keyfile.h"

#include <stddef.h>
#include <stdint.h>

#define RF_ROSTER_MAX_MEMBERS 256
#define RF_ROSTER_MAX_BYTES 65536

enum rf_role { RF_ROLE_MEMBER = 0, RF_ROLE_ADMIN = 1 };

struct rf_member {
    char name[RF_NAME_MAX + 1];
    uint8_t role;
    uint8_t box_pk[32];
    uint8_t sign_pk[32];
};

struct rf_roster {
    uint32_t version;
    uint8_t prev_hash[32];
    uint16_t n;
    struct rf_member members[RF_ROSTER_MAX_MEMBERS];
    uint8_t signer_pk[32];
    uint8_t sig[64];
};

/* Signs r (setting signer_pk and sig) and appends the full signed encoding to out. */
int rf_roster_sign(struct rf_buf *out, struct rf_roster *r, const struct rf_staff_keys *signer);
/* Structure only: no signature check. */
int rf_roster_parse(struct rf_roster *r, const uint8_t *p, size_t n);
void rf_roster_hash(uint8_t out[32], const uint8_t *raw, size_t n);
/* Verifies one link: raw parses, its signature verifies, and it is either
 * version 1 signed by pinned_admin (prev == NULL) or prev's successor signed
 * by an admin of prev with prev's hash. RF_ERR_ROSTER / RF_ERR_SIGNATURE. */
int rf_roster_verify(struct rf_roster *out, const uint8_t *raw, size_t n,
                     const struct rf_roster *prev, const uint8_t *prev_raw, size_t prev_n,
                     const uint8_t pinned_admin[32]);
/* Index of the member with this signing key, or -1. */
int rf_roster_find(const struct rf_roster *r, const uint8_t sign_pk[32]);

#endif
