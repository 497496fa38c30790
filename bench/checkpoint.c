/*
 * checkpoint.c - what a checkpoint (docs/protocol.md 13) saves a cold sync,
 * on one core: adding N signed case events of about 300 bytes to the chain
 * (rf_ckpt_chain_add: BLAKE2b of the event, then of the 83-byte element)
 * against verifying M of them by signature (rf_event_verify: framing, UTF-8
 * and one Ed25519 verify), as a sync does without a checkpoint. Prints both,
 * per event and in total, and the ratio. The events are a pool of 1,000
 * distinct ones signed once, taken in turn (seqs 1..N, 16 cases).
 *   usage: refuge-bench-checkpoint [events (1000000)] [verifies (events)]
 * Not in bench/run.py: 1,000,000 verifies take about 45 s; run it by hand
 * (a smaller M gives the same per-event figure).
 */
#include "lib/buf.h"
#include "lib/checkpoint.h"
#include "lib/envelope.h"
#include "lib/event.h"
#include "lib/keyfile.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POOL 1000

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 1000000, m = argc > 2 ? atol(argv[2]) : n;
    if (sodium_init() < 0 || n < 1 || m < 1)
        return fputs("usage: refuge-bench-checkpoint [events] [verifies]\n", stderr), 2;
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    static struct rf_buf ev[POOL];
    static char cases[16][RF_CKPT_CASE_LEN + 1];
    if (k == NULL || rf_staff_keys_generate(k, "Bench") != 0)
        return 1;
    for (int c = 0; c < 16; c++)
        snprintf(cases[c], sizeof(cases[c]), "q4mz7k2x%02d", c);
    size_t bytes = 0;
    for (int i = 0; i < POOL; i++) {
        char body[256];
        int len = snprintf(body, sizeof(body),
                           "{\"v\":1,\"id\":\"%032x\",\"lamport\":%d,\"roster\":2,\"author\":"
                           "\"Bench\",\"day\":20000,\"op\":\"note\",\"value\":\"a note of "
                           "about the usual length, number %06d, for the benchmark\"}",
                           (unsigned)i * 2654435761u, i + 1, i);
        rf_buf_init(&ev[i], 1 << 16);
        if (rf_event_sign(&ev[i], k, cases[i % 16], (const uint8_t *)body, (size_t)len) != 0)
            return 1;
        bytes += ev[i].len;
    }
    struct rf_ckpt_chain c;
    rf_ckpt_chain_init(&c);
    double t0 = now();
    for (long i = 0; i < n; i++) {
        const struct rf_buf *e = &ev[i % POOL];
        if (rf_ckpt_chain_add(&c, (uint64_t)i + 1, RF_KIND_EVENT, cases[(i % POOL) % 16], e->data,
                              e->len) != 0)
            return 1;
    }
    double chain_s = now() - t0;
    t0 = now();
    for (long i = 0; i < m; i++) {
        const struct rf_buf *e = &ev[i % POOL];
        uint8_t pk[32];
        const uint8_t *body;
        size_t blen;
        if (rf_event_verify(pk, &body, &blen, e->data, e->len, cases[(i % POOL) % 16]) != 0)
            return 1;
    }
    double verify_s = now() - t0;
    double chain_us = chain_s * 1e6 / (double)n, verify_us = verify_s * 1e6 / (double)m;
    printf("events: %zu bytes on average, one core\n", bytes / POOL);
    printf("chain add:      %ld events in %.3f s, %.2f us/event\n", n, chain_s, chain_us);
    printf("Ed25519 verify: %ld events in %.3f s, %.2f us/event", m, verify_s, verify_us);
    if (m != n)
        printf(" (%.1f s for %ld)", verify_us * (double)n / 1e6, n);
    printf("\nratio: verify / chain add = %.1f\n", verify_us / chain_us);
    for (int i = 0; i < POOL; i++)
        rf_buf_free(&ev[i]);
    sodium_free(k);
    return 0;
}
