/*
 * pg_test_db.h - the store tests' PostgreSQL side (header only, for
 * store_test.c and commit_test.c). REFUGE_TEST_PG is the URL of a throwaway
 * cluster (scripts/pg-test, started by scripts/check): each test gets a
 * schema of its own there (CREATE SCHEMA, selected through the URL's
 * search_path option), dropped at teardown. Without REFUGE_TEST_PG the
 * PostgreSQL run is skipped, loudly.
 */
#ifndef RF_PG_TEST_DB_H
#define RF_PG_TEST_DB_H

#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((unused)) static const char *pgt_base(void)
{
    const char *u = getenv("REFUGE_TEST_PG");
    return u && *u ? u : NULL;
}

/* Says loudly that the PostgreSQL run is skipped; 1 if it is. */
__attribute__((unused)) static int pgt_skipped(const char *what)
{
    if (pgt_base())
        return 0;
    fprintf(stderr,
            "\n*** %s: skipped: no PostgreSQL (REFUGE_TEST_PG is not set; "
            "scripts/check starts a throwaway cluster with scripts/pg-test) ***\n\n",
            what);
    return 1;
}

__attribute__((unused)) static void pgt_quiet(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* Runs one statement on the base database; aborts the test run on error. */
__attribute__((unused)) static void pgt_exec(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    PQsetNoticeProcessor(c, pgt_quiet, NULL);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "PostgreSQL test cluster unreachable\n");
        abort();
    }
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "PostgreSQL test SQL failed: %s", PQerrorMessage(c));
        abort();
    }
    PQclear(r);
    PQfinish(c);
}

/* A fresh schema: *schema receives its name, url the URL selecting it. */
__attribute__((unused)) static void pgt_new(char schema[24], char *url, size_t cap)
{
    uint8_t rnd[8];
    char sql[96];
    randombytes_buf(rnd, sizeof(rnd));
    snprintf(schema, 24, "t_");
    sodium_bin2hex(schema + 2, 22, rnd, sizeof(rnd));
    snprintf(sql, sizeof(sql), "CREATE SCHEMA %s", schema);
    pgt_exec(pgt_base(), sql);
    const char *base = pgt_base();
    snprintf(url, cap, "%s%soptions=-csearch_path%%3D%s&application_name=%s", base,
             strchr(base, '?') ? "&" : "?", schema, schema);
}

__attribute__((unused)) static void pgt_drop(const char *schema)
{
    char sql[96];
    snprintf(sql, sizeof(sql), "DROP SCHEMA %s CASCADE", schema);
    pgt_exec(pgt_base(), sql);
}

/* The single integer a query on url returns. */
__attribute__((unused)) static long long pgt_int(const char *url, const char *sql)
{
    PGconn *c = PQconnectdb(url);
    long long v = -1;
    if (PQstatus(c) == CONNECTION_OK) {
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
            v = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
    }
    PQfinish(c);
    return v;
}

#endif
