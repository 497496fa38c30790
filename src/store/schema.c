/*
 * schema.c - the store's schema, one description for both backends: each
 * migration step is one row with its SQLite and its PostgreSQL SQL side by
 * side, taking the same tables, columns and constraints from version i to
 * i + 1. SQLite records the version in PRAGMA user_version
 * (store_sqlite.c), PostgreSQL in the one-row table refuge_schema
 * (store_pg.c); each backend runs rf_migrations[v] for every v from the
 * database's version up to rf_schema_version, each in its own transaction,
 * and refuses a database newer than this program.
 *
 * Adding a step: append ONE row at the end with both columns, the same
 * change in each dialect (BLOB/BYTEA, INTEGER/BIGINT, STRICT only in
 * SQLite, "grant" quoted in PostgreSQL where it is a reserved word), and
 * describe it in docs/storage.md. A new table or column also goes into
 * rf_tables (the end of this file: what a migration between backends
 * carries; an export refuses a database with one it lacks), or, for state
 * that means nothing in another database, its table into
 * rf_tables_not_carried with the reason. Differences that are not the same change:
 * PostgreSQL has the table counters (commit-ordered sequence numbers, see
 * store_pg.c), the table commit_marks (a lost COMMIT's answer, see
 * store_pg_write.c) and plpgsql functions behind the teamconfig triggers.
 */
#include "store/store_internal.h"

#include <string.h>

const struct rf_migration rf_migrations[] = {
    /* 0 -> 1 */
    {
        .sqlite = "CREATE TABLE settings("
                  " key TEXT PRIMARY KEY NOT NULL,"
                  " value BLOB NOT NULL) STRICT;"
                  "CREATE TABLE sources("
                  " id INTEGER PRIMARY KEY,"
                  " lookup_id BLOB NOT NULL UNIQUE CHECK (length(lookup_id) = 32),"
                  " case_id TEXT NOT NULL UNIQUE CHECK (length(case_id) = 10),"
                  " pk BLOB NOT NULL CHECK (length(pk) = 32),"
                  " day INTEGER NOT NULL) STRICT;"
                  "CREATE TABLE objects("
                  " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                  " source_id INTEGER NOT NULL REFERENCES sources(id),"
                  " kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 31),"
                  " size INTEGER NOT NULL CHECK (size >= 0),"
                  " day INTEGER NOT NULL,"
                  " data BLOB,"
                  " blob TEXT UNIQUE,"
                  " CHECK ((data IS NULL) <> (blob IS NULL))) STRICT;"
                  "CREATE INDEX objects_by_source ON objects(source_id, seq);"
                  "CREATE TABLE enroll_tokens("
                  " hash BLOB PRIMARY KEY NOT NULL CHECK (length(hash) = 32),"
                  " role INTEGER NOT NULL,"
                  " day INTEGER NOT NULL,"
                  " used INTEGER NOT NULL DEFAULT 0) STRICT;"
                  "CREATE TABLE staff("
                  " sign_pk BLOB PRIMARY KEY NOT NULL CHECK (length(sign_pk) = 32),"
                  " box_pk BLOB NOT NULL CHECK (length(box_pk) = 32),"
                  " name TEXT NOT NULL UNIQUE,"
                  " day INTEGER NOT NULL) STRICT;"
                  "CREATE TABLE rosters("
                  " version INTEGER PRIMARY KEY,"
                  " raw BLOB NOT NULL) STRICT;",
        .pg = "CREATE TABLE settings("
              " key TEXT PRIMARY KEY NOT NULL,"
              " value BYTEA NOT NULL);"
              "CREATE TABLE sources("
              " id BIGSERIAL PRIMARY KEY,"
              " lookup_id BYTEA NOT NULL UNIQUE CHECK (length(lookup_id) = 32),"
              " case_id TEXT NOT NULL UNIQUE CHECK (length(case_id) = 10),"
              " pk BYTEA NOT NULL CHECK (length(pk) = 32),"
              " day BIGINT NOT NULL);"
              /* seq comes from counters (below), not a sequence: see store_pg.c */
              "CREATE TABLE objects("
              " seq BIGINT PRIMARY KEY CHECK (seq > 0),"
              " source_id BIGINT NOT NULL REFERENCES sources(id),"
              " kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 31),"
              " size BIGINT NOT NULL CHECK (size >= 0),"
              " day BIGINT NOT NULL,"
              " data BYTEA,"
              " blob TEXT UNIQUE,"
              " CHECK ((data IS NULL) <> (blob IS NULL)));"
              "CREATE INDEX objects_by_source ON objects(source_id, seq);"
              "CREATE TABLE enroll_tokens("
              " hash BYTEA PRIMARY KEY NOT NULL CHECK (length(hash) = 32),"
              " role INTEGER NOT NULL,"
              " day BIGINT NOT NULL,"
              " used INTEGER NOT NULL DEFAULT 0);"
              "CREATE TABLE staff("
              " sign_pk BYTEA PRIMARY KEY NOT NULL CHECK (length(sign_pk) = 32),"
              " box_pk BYTEA NOT NULL CHECK (length(box_pk) = 32),"
              " name TEXT NOT NULL UNIQUE,"
              " day BIGINT NOT NULL);"
              "CREATE TABLE rosters("
              " version BIGINT PRIMARY KEY,"
              " raw BYTEA NOT NULL);"
              /* PostgreSQL only: the last object seq and grant id handed out. Its one
               * row is updated inside the committing transaction, so its row lock
               * orders the commits of every writer (store_pg.c, docs/scale-out.md) */
              "CREATE TABLE counters("
              " one BOOLEAN PRIMARY KEY DEFAULT TRUE CHECK (one),"
              " seq BIGINT NOT NULL,"
              " grant_id BIGINT NOT NULL);"
              "INSERT INTO counters(seq, grant_id) VALUES (0, 0);"
              /* a row inserted without a seq (by hand, by an admin's
               * tool) takes the next one from counters all the same */
              "CREATE FUNCTION refuge_objects_seq() RETURNS trigger LANGUAGE plpgsql AS $$"
              " BEGIN IF NEW.seq IS NULL THEN"
              " UPDATE counters SET seq = seq + 1 RETURNING seq INTO NEW.seq; END IF;"
              " RETURN NEW; END $$;"
              "CREATE TRIGGER objects_seq BEFORE INSERT ON objects"
              " FOR EACH ROW EXECUTE FUNCTION refuge_objects_seq();",
    },
    /* 1 -> 2: teams and casework (grants, audit log, retention, teamconfig) */
    {
        .sqlite =
            "CREATE TABLE grants("
            " id INTEGER PRIMARY KEY,"
            " seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,"
            " keyid BLOB NOT NULL CHECK (length(keyid) = 8),"
            " grant BLOB NOT NULL CHECK (length(grant) = 88 AND substr(grant, 1, 8) = keyid),"
            " UNIQUE (seq, keyid)) STRICT;"
            "CREATE INDEX grants_by_keyid ON grants(keyid, id);"
            "CREATE TABLE audit("
            " id INTEGER PRIMARY KEY CHECK (id > 0),"
            " day INTEGER NOT NULL,"
            " actor BLOB NOT NULL CHECK (length(actor) = 32),"
            " action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 31),"
            " target TEXT NOT NULL CHECK (length(target) <= 63),"
            " prev BLOB NOT NULL CHECK (length(prev) = 32),"
            " hash BLOB NOT NULL CHECK (length(hash) = 32)) STRICT;"
            "ALTER TABLE sources ADD COLUMN delete_day INTEGER;"
            "INSERT INTO sources(lookup_id, case_id, pk, day) VALUES (randomblob(32), 'teamconfig',"
            " zeroblob(32), CAST(strftime('%s', 'now') AS INTEGER) / 86400);"
            "CREATE TRIGGER teamconfig_events_only BEFORE INSERT ON objects"
            " WHEN NEW.kind <> 4 AND NEW.source_id = (SELECT id FROM sources WHERE case_id = "
            "'teamconfig')"
            " BEGIN SELECT RAISE(ABORT, 'teamconfig holds events only'); END;"
            "CREATE TRIGGER teamconfig_kept BEFORE DELETE ON sources WHEN OLD.case_id = "
            "'teamconfig'"
            " BEGIN SELECT RAISE(ABORT, 'teamconfig is never deleted'); END;"
            "CREATE TRIGGER teamconfig_unscheduled BEFORE UPDATE OF delete_day ON sources"
            " WHEN OLD.case_id = 'teamconfig' AND NEW.delete_day IS NOT NULL"
            " BEGIN SELECT RAISE(ABORT, 'teamconfig is never scheduled'); END;",
        .pg =
            "CREATE TABLE grants("
            " id BIGINT PRIMARY KEY,"
            " seq BIGINT NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,"
            " keyid BYTEA NOT NULL CHECK (length(keyid) = 8),"
            " \"grant\" BYTEA NOT NULL CHECK (length(\"grant\") = 88 AND substr(\"grant\", 1, 8) = "
            "keyid),"
            " UNIQUE (seq, keyid));"
            "CREATE INDEX grants_by_keyid ON grants(keyid, id);"
            "CREATE TABLE audit("
            " id BIGINT PRIMARY KEY CHECK (id > 0),"
            " day BIGINT NOT NULL,"
            " actor BYTEA NOT NULL CHECK (length(actor) = 32),"
            " action TEXT NOT NULL CHECK (length(action) BETWEEN 1 AND 31),"
            " target TEXT NOT NULL CHECK (length(target) <= 63),"
            " prev BYTEA NOT NULL CHECK (length(prev) = 32),"
            " hash BYTEA NOT NULL CHECK (length(hash) = 32));"
            "ALTER TABLE sources ADD COLUMN delete_day BIGINT;"
            /* gen_random_uuid: pg_strong_random (244 random bits of 256) */
            "INSERT INTO sources(lookup_id, case_id, pk, day) VALUES ("
            " decode(replace(gen_random_uuid()::text || gen_random_uuid()::text, '-', ''), 'hex'),"
            " 'teamconfig', decode(repeat('00', 32), 'hex'),"
            " floor(extract(epoch FROM now()) / 86400)::bigint);"
            "CREATE FUNCTION refuge_teamconfig_events_only() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF NEW.kind <> 4 AND NEW.source_id = (SELECT id FROM sources"
            " WHERE case_id = 'teamconfig') THEN RAISE EXCEPTION 'teamconfig holds events only';"
            " END IF; RETURN NEW; END $$;"
            "CREATE TRIGGER teamconfig_events_only BEFORE INSERT ON objects"
            " FOR EACH ROW EXECUTE FUNCTION refuge_teamconfig_events_only();"
            "CREATE FUNCTION refuge_teamconfig_kept() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF OLD.case_id = 'teamconfig' THEN RAISE EXCEPTION 'teamconfig is never "
            "deleted';"
            " END IF; RETURN OLD; END $$;"
            "CREATE TRIGGER teamconfig_kept BEFORE DELETE ON sources"
            " FOR EACH ROW EXECUTE FUNCTION refuge_teamconfig_kept();"
            "CREATE FUNCTION refuge_teamconfig_unscheduled() RETURNS trigger LANGUAGE plpgsql AS $$"
            " BEGIN IF OLD.case_id = 'teamconfig' AND NEW.delete_day IS NOT NULL THEN"
            " RAISE EXCEPTION 'teamconfig is never scheduled'; END IF; RETURN NEW; END $$;"
            "CREATE TRIGGER teamconfig_unscheduled BEFORE UPDATE OF delete_day ON sources"
            " FOR EACH ROW EXECUTE FUNCTION refuge_teamconfig_unscheduled();",
    },
    /* 2 -> 3: the latest roster version when each object was stored (issue 13,
     * finding 3); 0 for objects stored before this column existed */
    {
        .sqlite =
            "ALTER TABLE objects ADD COLUMN roster INTEGER NOT NULL DEFAULT 0 CHECK (roster >= 0);",
        .pg =
            "ALTER TABLE objects ADD COLUMN roster BIGINT NOT NULL DEFAULT 0 CHECK (roster >= 0);",
    },
    /* 3 -> 4: audit entries carry the caseworker's signed API request (audit v2) */
    {
        .sqlite = "ALTER TABLE audit ADD COLUMN request BLOB"
                  " CHECK (request IS NULL OR length(request) BETWEEN 1 AND 394);",
        .pg = "ALTER TABLE audit ADD COLUMN request BYTEA"
              " CHECK (request IS NULL OR length(request) BETWEEN 1 AND 394);",
    },
    /* 4 -> 5: the staff API's nonces in the store (replays refused across
     * restarts and processes); grants kept per granter. SQLite cannot change
     * a UNIQUE constraint, so grants is rebuilt with its rows (granter
     * unknown: zeros). IF NOT EXISTS: a test that winds user_version back
     * over this migration (to rerun an earlier one) leaves the table. */
    {
        .sqlite = "CREATE TABLE IF NOT EXISTS nonces("
                  " nonce BLOB PRIMARY KEY NOT NULL CHECK (length(nonce) = 16),"
                  " slot INTEGER NOT NULL) STRICT, WITHOUT ROWID;"
                  "CREATE INDEX IF NOT EXISTS nonces_by_slot ON nonces(slot);"
                  "CREATE TABLE grants_v3("
                  " id INTEGER PRIMARY KEY,"
                  " seq INTEGER NOT NULL REFERENCES objects(seq) ON DELETE CASCADE,"
                  " keyid BLOB NOT NULL CHECK (length(keyid) = 8),"
                  " granter BLOB NOT NULL CHECK (length(granter) = 32),"
                  " grant BLOB NOT NULL CHECK (length(grant) = 88 AND substr(grant, 1, 8) = keyid),"
                  " UNIQUE (seq, keyid, granter)) STRICT;"
                  "INSERT INTO grants_v3(id, seq, keyid, granter, grant)"
                  " SELECT id, seq, keyid, zeroblob(32), grant FROM grants;"
                  "DROP TABLE grants;"
                  "ALTER TABLE grants_v3 RENAME TO grants;"
                  "CREATE INDEX grants_by_keyid ON grants(keyid, id);",
        .pg = "CREATE TABLE IF NOT EXISTS nonces("
              " nonce BYTEA PRIMARY KEY NOT NULL CHECK (length(nonce) = 16),"
              " slot BIGINT NOT NULL);"
              "CREATE INDEX IF NOT EXISTS nonces_by_slot ON nonces(slot);"
              /* PostgreSQL changes the constraint in place */
              "ALTER TABLE grants ADD COLUMN granter BYTEA NOT NULL"
              " DEFAULT decode(repeat('00', 32), 'hex') CHECK (length(granter) = 32);"
              "ALTER TABLE grants ALTER COLUMN granter DROP DEFAULT;"
              "ALTER TABLE grants DROP CONSTRAINT grants_seq_keyid_key;"
              "ALTER TABLE grants ADD UNIQUE (seq, keyid, granter);",
    },
    /* 5 -> 6: person sessions shared by several server processes (issue 11):
     * the secrets sealed under a key only the servers hold; only while live.
     * IF NOT EXISTS: a test that winds user_version back reruns this step. */
    {
        .sqlite = "CREATE TABLE IF NOT EXISTS sessions("
                  " id BLOB PRIMARY KEY NOT NULL CHECK (length(id) = 32),"
                  " keyid BLOB NOT NULL CHECK (length(keyid) = 8),"
                  " sealed BLOB NOT NULL CHECK (length(sealed) BETWEEN 1 AND 256),"
                  " expires INTEGER NOT NULL,"
                  " day INTEGER NOT NULL,"
                  " msgs INTEGER NOT NULL DEFAULT 0 CHECK (msgs >= 0),"
                  " bytes INTEGER NOT NULL DEFAULT 0 CHECK (bytes >= 0)) STRICT, WITHOUT ROWID;"
                  "CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions(expires);",
        .pg = "CREATE TABLE IF NOT EXISTS sessions("
              " id BYTEA PRIMARY KEY NOT NULL CHECK (length(id) = 32),"
              " keyid BYTEA NOT NULL CHECK (length(keyid) = 8),"
              " sealed BYTEA NOT NULL CHECK (length(sealed) BETWEEN 1 AND 256),"
              " expires BIGINT NOT NULL,"
              " day BIGINT NOT NULL,"
              " msgs BIGINT NOT NULL DEFAULT 0 CHECK (msgs >= 0),"
              " bytes BIGINT NOT NULL DEFAULT 0 CHECK (bytes >= 0));"
              "CREATE INDEX IF NOT EXISTS sessions_by_expiry ON sessions(expires);",
    },
    /* 6 -> 7: PostgreSQL only: each server process's mark of its last
     * committed batch, read when a COMMIT's answer is lost with its
     * connection (store_pg_write.c): a transaction id alone cannot say, since
     * PostgreSQL hands out again, after a crash, the ids whose WAL never
     * reached the disk. SQLite commits in this process: nothing to ask. */
    {
        .sqlite = "",
        .pg = "CREATE TABLE commit_marks("
              " writer BYTEA PRIMARY KEY NOT NULL CHECK (length(writer) = 16),"
              " batch BIGINT NOT NULL,"
              " day BIGINT NOT NULL);",
    },
};

const int rf_schema_version = (int)(sizeof(rf_migrations) / sizeof(rf_migrations[0]));

const struct rf_table_desc rf_tables[RF_TAB_COUNTERS] = {
    [RF_TAB_SETTINGS] = {"settings", "key, value", "tb", "key"},
    [RF_TAB_SOURCES] = {"sources", "id, lookup_id, case_id, pk, day, delete_day", "ibtbii", "id"},
    [RF_TAB_OBJECTS] = {"objects", "seq, source_id, kind, size, day, data, blob, roster",
                        "iiiiibti", "seq"},
    [RF_TAB_ENROLL_TOKENS] = {"enroll_tokens", "hash, role, day, used", "biii", "hash"},
    [RF_TAB_STAFF] = {"staff", "sign_pk, box_pk, name, day", "bbti", "sign_pk"},
    [RF_TAB_ROSTERS] = {"rosters", "version, raw", "ib", "version"},
    [RF_TAB_GRANTS] = {"grants", "id, seq, keyid, granter, \"grant\"", "iibbb", "id"},
    [RF_TAB_AUDIT] = {"audit", "id, day, actor, action, target, prev, hash, request", "iibttbbb",
                      "id"},
    [RF_TAB_NONCES] = {"nonces", "nonce, slot", "bi", "nonce"},
};

const char *const rf_tables_not_carried[] = {
    /* live person sessions, sealed under the old servers' session key
     * (server/sesskey.c): state of the running servers, not of the instance;
     * people log in again after a move */
    "sessions",
    /* PostgreSQL only: each writing process's last batch (store_pg_write.c),
     * meaningful to that process alone */
    "commit_marks",
    NULL,
};

int rf_table_not_carried(const char *name)
{
    for (size_t i = 0; rf_tables_not_carried[i]; i++)
        if (strcmp(name, rf_tables_not_carried[i]) == 0)
            return 1;
    return 0;
}
