/*
 * pg_blob.c - the measurement behind docs/scale-out.md's blob decision:
 * 64 MiB of random bytes stored as 64 bytea rows of 1 MiB in one PostgreSQL
 * transaction (synchronous_commit on; WAL bytes it generated) and read back
 * chunk by chunk, beside the same bytes written to a file, fsynced, renamed
 * and the directory fsynced (what a blob put does), and read back. Three
 * rounds. A benchmark, not a test; not built by meson:
 *
 *   cc -O2 -o pg_blob bench/pg_blob.c -I$(pg_config --includedir) -lpq
 *   ./pg_blob 'postgresql://refuge@127.0.0.1:PORT/db' /path/on/the/disk/tmpfile
 */
#include <libpq-fe.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#define CH (1 << 20)
#define N 64
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}
static long long lsn(PGconn *c)
{
    PGresult *r = PQexec(c, "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn");
    long long v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}
int main(int argc, char **argv)
{
    unsigned char *buf = malloc(CH);
    FILE *u = fopen("/dev/urandom", "r");
    fread(buf, 1, CH, u);
    fclose(u);
    PGconn *c = PQconnectdb(argv[1]);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "conn\n");
        return 1;
    }
    PQclear(PQexec(c, "SET synchronous_commit=on; DROP TABLE IF EXISTS chunks; CREATE TABLE "
                      "chunks(blob bigint, n int, data bytea, PRIMARY KEY(blob,n)); ALTER TABLE "
                      "chunks ALTER data SET STORAGE EXTERNAL"));
    for (int round = 0; round < 3; round++) {
        long long l0 = lsn(c);
        double t0 = now();
        PQclear(PQexec(c, "BEGIN"));
        for (int i = 0; i < N; i++) {
            buf[0] = (unsigned char)i;
            uint32_t b = htonl(round), n = htonl(i);
            char bb[8] = {0};
            memcpy(bb + 4, &b, 4);
            const char *v[3] = {bb, (char *)&n, (char *)buf};
            int len[3] = {8, 4, CH}, fmt[3] = {1, 1, 1};
            Oid ty[3] = {20, 23, 17};
            PGresult *r =
                PQexecParams(c, "INSERT INTO chunks VALUES ($1,$2,$3)", 3, ty, v, len, fmt, 0);
            if (PQresultStatus(r) != PGRES_COMMAND_OK) {
                fprintf(stderr, "%s", PQerrorMessage(c));
                return 1;
            }
            PQclear(r);
        }
        PQclear(PQexec(c, "COMMIT"));
        double t1 = now();
        long long l1 = lsn(c);
        /* read back, chunk by chunk */
        double t2 = now();
        for (int i = 0; i < N; i++) {
            char q[128];
            snprintf(q, sizeof q, "SELECT data FROM chunks WHERE blob=%d AND n=%d", round, i);
            PGresult *r = PQexecParams(c, q, 0, 0, 0, 0, 0, 1);
            PQclear(r);
        }
        double t3 = now();
        /* file */
        double f0 = now();
        int fd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
        for (int i = 0; i < N; i++) {
            buf[0] = (unsigned char)i;
            write(fd, buf, CH);
        }
        fsync(fd);
        close(fd);
        char to[512];
        snprintf(to, sizeof to, "%s.done", argv[2]);
        rename(argv[2], to);
        int d = open(".", O_RDONLY);
        fsync(d);
        close(d);
        double f1 = now();
        double r0 = now();
        fd = open(to, O_RDONLY);
        while (read(fd, buf, CH) > 0)
            ;
        close(fd);
        double r1 = now();
        unlink(to);
        printf("round %d: db write %.0f MB/s (WAL %.1f MB for 64 MB), db read %.0f MB/s | file "
               "write+fsync %.0f MB/s, read %.0f MB/s\n",
               round, 64 / (t1 - t0), (l1 - l0) / 1048576.0, 64 / (t3 - t2), 64 / (f1 - f0),
               64 / (r1 - r0));
    }
    PQclear(PQexec(c, "DROP TABLE chunks"));
    PQfinish(c);
    return 0;
}
