/*
 * pq_dl.h - libpq, opened at run time (pq_dl.c). The PostgreSQL backend's
 * files include it after <libpq-fe.h> (through pg_internal.h): every PQ*
 * name they use becomes a pointer resolved by rf_pq_load, with the type of
 * libpq's own declaration. An instance on SQLite never maps libpq and the
 * libraries it pulls in (OpenSSL, Kerberos, LDAP: about 3 MB of a server's
 * idle memory, which the small box's target does not have).
 */
#ifndef RF_STORE_PQ_DL_H
#define RF_STORE_PQ_DL_H

#include <libpq-fe.h>

#define RF_PQ_FUNCS(X)                                                                             \
    X(PQconnectdb)                                                                                 \
    X(PQconnectdbParams)                                                                           \
    X(PQstatus)                                                                                    \
    X(PQreset)                                                                                     \
    X(PQfinish)                                                                                    \
    X(PQsetNoticeProcessor)                                                                        \
    X(PQtransactionStatus)                                                                         \
    X(PQexec)                                                                                      \
    X(PQexecParams)                                                                                \
    X(PQprepare)                                                                                   \
    X(PQexecPrepared)                                                                              \
    X(PQresultStatus)                                                                              \
    X(PQresultErrorField)                                                                          \
    X(PQcmdTuples)                                                                                 \
    X(PQcmdStatus)                                                                                 \
    X(PQconninfoParse)                                                                             \
    X(PQconninfoFree)                                                                              \
    X(PQntuples)                                                                                   \
    X(PQgetisnull)                                                                                 \
    X(PQgetvalue)                                                                                  \
    X(PQgetlength)                                                                                 \
    X(PQclear)                                                                                     \
    X(PQenterPipelineMode)                                                                         \
    X(PQexitPipelineMode)                                                                          \
    X(PQpipelineStatus)                                                                            \
    X(PQpipelineSync)                                                                              \
    X(PQsendQueryParams)                                                                           \
    X(PQsendQueryPrepared)                                                                         \
    X(PQgetResult)

struct rf_pq_api {
#define RF_PQ_MEMBER(f) __typeof__(f) *f;
    RF_PQ_FUNCS(RF_PQ_MEMBER)
#undef RF_PQ_MEMBER
};
extern struct rf_pq_api rf_pq;

/* Opens libpq.so.5 and resolves every name, once (thread-safe). 0, or
 * RF_ERR_DB when libpq is not installed or lacks a name (logged: "install
 * the libpq5 package"). */
int rf_pq_load(void);

#ifndef RF_PQ_DL_IMPL
#define PQconnectdb (rf_pq.PQconnectdb)
#define PQconnectdbParams (rf_pq.PQconnectdbParams)
#define PQstatus (rf_pq.PQstatus)
#define PQreset (rf_pq.PQreset)
#define PQfinish (rf_pq.PQfinish)
#define PQsetNoticeProcessor (rf_pq.PQsetNoticeProcessor)
#define PQtransactionStatus (rf_pq.PQtransactionStatus)
#define PQexec (rf_pq.PQexec)
#define PQexecParams (rf_pq.PQexecParams)
#define PQprepare (rf_pq.PQprepare)
#define PQexecPrepared (rf_pq.PQexecPrepared)
#define PQresultStatus (rf_pq.PQresultStatus)
#define PQresultErrorField (rf_pq.PQresultErrorField)
#define PQcmdTuples (rf_pq.PQcmdTuples)
#define PQcmdStatus (rf_pq.PQcmdStatus)
#define PQconninfoParse (rf_pq.PQconninfoParse)
#define PQconninfoFree (rf_pq.PQconninfoFree)
#define PQntuples (rf_pq.PQntuples)
#define PQgetisnull (rf_pq.PQgetisnull)
#define PQgetvalue (rf_pq.PQgetvalue)
#define PQgetlength (rf_pq.PQgetlength)
#define PQclear (rf_pq.PQclear)
#define PQenterPipelineMode (rf_pq.PQenterPipelineMode)
#define PQexitPipelineMode (rf_pq.PQexitPipelineMode)
#define PQpipelineStatus (rf_pq.PQpipelineStatus)
#define PQpipelineSync (rf_pq.PQpipelineSync)
#define PQsendQueryParams (rf_pq.PQsendQueryParams)
#define PQsendQueryPrepared (rf_pq.PQsendQueryPrepared)
#define PQgetResult (rf_pq.PQgetResult)
#endif

#endif
