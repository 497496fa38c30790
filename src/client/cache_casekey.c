/*
 * cache_casekey.c - the case keys this client holds (see cache.h; the
 * table in cache.c's schema, version 5). The key itself is never here in
 * the clear: each row's plaintext (the CASEKEY object's 147 bytes) is
 * sealed by local.c before it gets here, like a digest.
 */
#include "client/cache.h"
#include "client/cache_internal.h"
#include "lib/err.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int rf_cache_casekey_put(struct rf_cache *c, const struct rf_ccasekey *k, const uint8_t *sealed,
                         size_t n)
{
    sqlite3_stmt *st;
    /* kept: once per CASEKEY object of a sync (a cold sync: one per case) */
    if (rf_cache_kept(c, KEPT_CASEKEYS_PUT,
                      "INSERT INTO casekeys(case_id, keyid, seq, roster, maker, verified, sealed)"
                      " VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(case_id, keyid, seq) DO UPDATE"
                      " SET verified = MAX(verified, excluded.verified)",
                      &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, k->case_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, k->keyid, sizeof(k->keyid), SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, k->seq);
    sqlite3_bind_int64(st, 4, k->roster);
    sqlite3_bind_blob(st, 5, k->maker, sizeof(k->maker), SQLITE_STATIC);
    sqlite3_bind_int(st, 6, k->verified);
    sqlite3_bind_blob64(st, 7, sealed, n, SQLITE_STATIC);
    int s = sqlite3_step(st);
    rf_cache_done(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_casekey_posted(struct rf_cache *c, const char *case_id, const uint8_t keyid[8],
                            int64_t seq)
{
    sqlite3_stmt *st;
    /* the digest may have stored the object's row already: ours (verified:
     * made here) replaces it */
    if (rf_cache_prepare(c,
                         "UPDATE OR REPLACE casekeys SET seq = ?, verified = 1"
                         " WHERE case_id = ? AND keyid = ? AND seq = 0",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_text(st, 2, case_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, keyid, 8, SQLITE_STATIC);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_casekey_set_verified(struct rf_cache *c, const struct rf_ccasekey *k, int verified)
{
    sqlite3_stmt *st;
    if (rf_cache_prepare(c,
                         "UPDATE casekeys SET verified = ? WHERE case_id = ? AND keyid = ?"
                         " AND seq = ?",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_int(st, 1, verified);
    sqlite3_bind_text(st, 2, k->case_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 3, k->keyid, sizeof(k->keyid), SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, k->seq);
    int s = sqlite3_step(st);
    sqlite3_finalize(st);
    return s == SQLITE_DONE ? 0 : RF_ERR_DB;
}

int rf_cache_casekeys(struct rf_cache *c, const char *case_id, const uint8_t *keyid,
                      rf_cache_casekey_fn fn, void *ctx)
{
    sqlite3_stmt *st;
    /* kept: the digest looks the keys of every event version 2 up */
    if (!case_id) { /* every row, ordered for a lookup table (local_casekey.c) */
        if (rf_cache_prepare(c,
                             "SELECT case_id, keyid, seq, roster, maker, verified, sealed"
                             " FROM casekeys ORDER BY case_id, keyid, seq = 0 DESC, seq DESC",
                             &st) != 0)
            return RF_ERR_DB;
    }
    int rc = !case_id ? 0
             : keyid  ? rf_cache_kept(c, KEPT_CASEKEYS_FIND,
                                      "SELECT case_id, keyid, seq, roster, maker, verified, sealed"
                                       " FROM casekeys WHERE case_id = ? AND keyid = ?"
                                       " ORDER BY seq = 0 DESC, seq DESC",
                                      &st)
                      : rf_cache_kept(c, KEPT_CASEKEYS_ALL,
                                      "SELECT case_id, keyid, seq, roster, maker, verified, sealed"
                                       " FROM casekeys WHERE case_id = ?"
                                       " ORDER BY seq = 0 DESC, seq DESC",
                                      &st);
    if (rc != 0)
        return RF_ERR_DB;
    if (case_id)
        sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    if (case_id && keyid)
        sqlite3_bind_blob(st, 2, keyid, 8, SQLITE_STATIC);
    int s;
    while ((s = sqlite3_step(st)) == SQLITE_ROW) {
        struct rf_ccasekey k;
        memset(&k, 0, sizeof(k));
        const unsigned char *cid = sqlite3_column_text(st, 0);
        if (!cid || sqlite3_column_bytes(st, 1) != 8 || sqlite3_column_bytes(st, 4) != 32)
            continue; /* not a row this code wrote */
        snprintf(k.case_id, sizeof(k.case_id), "%s", (const char *)cid);
        memcpy(k.keyid, sqlite3_column_blob(st, 1), 8);
        k.seq = sqlite3_column_int64(st, 2);
        k.roster = (uint32_t)sqlite3_column_int64(st, 3);
        memcpy(k.maker, sqlite3_column_blob(st, 4), 32);
        k.verified = sqlite3_column_int(st, 5);
        rc = fn(ctx, &k, sqlite3_column_blob(st, 6), (size_t)sqlite3_column_bytes(st, 6));
        if (rc != 0)
            break;
    }
    if (rc == 0 && s != SQLITE_DONE)
        rc = RF_ERR_DB;
    if (case_id)
        rf_cache_done(st);
    else
        sqlite3_finalize(st);
    return rc;
}

int rf_cache_unreadable_events(struct rf_cache *c, const char *case_id, struct rf_cobj **out,
                               size_t *n)
{
    sqlite3_stmt *st;
    /* kept: once per case of a sync's CASEKEY objects (a cold sync: every case) */
    if (rf_cache_kept(c, KEPT_CASEKEYS_UNREADABLE,
                      "SELECT o.seq, o.case_id, o.kind, o.size, o.day, o.roster FROM digests d"
                      " JOIN objects o ON o.seq = d.seq WHERE d.case_id = ? AND"
                      " d.readable = 0 AND o.kind = 4 ORDER BY o.seq",
                      &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_text(st, 1, case_id, -1, SQLITE_STATIC);
    int rc = rf_cache_collect(st, out, n);
    rf_cache_done(st);
    return rc;
}

int rf_cache_casekey_elsewhere(struct rf_cache *c, const char *case_id, const uint8_t keyid[8],
                               int *found)
{
    sqlite3_stmt *st;
    *found = 0;
    if (rf_cache_prepare(c, "SELECT 1 FROM casekeys WHERE keyid = ? AND case_id <> ? LIMIT 1",
                         &st) != 0)
        return RF_ERR_DB;
    sqlite3_bind_blob(st, 1, keyid, 8, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, case_id, -1, SQLITE_STATIC);
    int s = sqlite3_step(st);
    *found = s == SQLITE_ROW;
    sqlite3_finalize(st);
    return s == SQLITE_ROW || s == SQLITE_DONE ? 0 : RF_ERR_DB;
}
