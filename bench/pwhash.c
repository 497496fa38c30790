/*
 * pwhash.c - bare Argon2id (crypto_pwhash, 64-byte output, as a codename
 * derivation asks for) at the given parameters: the reference a login's cost
 * is measured against (bench/login_burst.sh). Benchmark helper, not
 * installed.
 *
 *   refuge-bench-pwhash OPSLIMIT MEMLIMIT_BYTES COUNT
 * prints "pwhash_ms MEAN" (wall time of one, one at a time, after one
 * warm-up).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 4 || sodium_init() < 0) {
        fprintf(stderr, "usage: refuge-bench-pwhash OPSLIMIT MEMLIMIT_BYTES COUNT\n");
        return 2;
    }
    unsigned long long ops = strtoull(argv[1], NULL, 10);
    size_t mem = (size_t)strtoull(argv[2], NULL, 10);
    int n = atoi(argv[3]);
    if (ops < crypto_pwhash_OPSLIMIT_MIN || mem < crypto_pwhash_MEMLIMIT_MIN || n < 1)
        return 2;
    unsigned char out[64], salt[crypto_pwhash_SALTBYTES];
    const char pw[] = "alpha bravo charlie delta echo foxtrot golf";
    randombytes_buf(salt, sizeof(salt));
    double t0 = 0;
    for (int i = -1; i < n; i++) {
        if (i == 0)
            t0 = now_s();
        if (crypto_pwhash(out, sizeof(out), pw, sizeof(pw) - 1, salt, ops, mem,
                          crypto_pwhash_ALG_ARGON2ID13) != 0) {
            fprintf(stderr, "crypto_pwhash failed (out of memory?)\n");
            return 1;
        }
    }
    printf("pwhash_ms %.2f\n", (now_s() - t0) * 1000.0 / n);
    return 0;
}
