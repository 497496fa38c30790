/*
 * sealbench.c - the reference the submission benchmark is read against: the
 * cost of sealing one 2 KB message to N recipients on one core (DESIGN.md:
 * sealing the content key, about 70 us per caseworker, is the ceiling).
 * Prints microseconds per message and the ceiling in messages/s for the
 * machine's cores.   usage: refuge-bench-seal N [iterations]
 */
#include "lib/buf.h"
#include "lib/envelope.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 2 || sodium_init() < 0)
        return fputs("usage: refuge-bench-seal N [iterations]\n", stderr), 2;
    int n = atoi(argv[1]), iters = argc > 2 ? atoi(argv[2]) : 2000;
    if (n < 1 || n > 64 || iters < 1)
        return 2;
    uint8_t pks[64][32], sk[32], msg[2048];
    for (int i = 0; i < n; i++)
        crypto_box_keypair(pks[i], sk);
    randombytes_buf(msg, sizeof(msg));
    struct rf_buf out;
    rf_buf_init(&out, 1 << 20);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < iters; i++) {
        rf_buf_reset(&out);
        if (rf_envelope_seal(&out, RF_KIND_MESSAGE, (const uint8_t(*)[32])pks, (size_t)n, msg,
                             sizeof(msg)) != 0)
            return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / iters;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    printf("seal_us_per_msg %.1f\nseal_ceiling_per_s %.0f\nenvelope_bytes %zu\n", us,
           cores * 1e6 / us, out.len);
    rf_buf_free(&out);
    return 0;
}
