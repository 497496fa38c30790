/*
 * casekey.c - what a case key buys a reader (docs/protocol.md section 12):
 * opening N case events of about 300 bytes as events version 2 (one
 * XChaCha20-Poly1305 open each, key looked up by key id) against opening
 * the same events as version 1 envelopes sealed to a roster of R members
 * (one X25519 sealed-box open each, then the secretstream), on one core.
 * Both give the same signed event; neither verifies its signature (that
 * cost is the same for both). Also the per-key cost a v2 reader adds: one
 * CASEKEY envelope open and one Ed25519 verify.
 *   usage: refuge-bench-casekey [N (100000)] [R (5)]
 * Not part of bench/run.py: a few seconds, run by hand.
 */
#include "lib/buf.h"
#include "lib/casekey.h"
#include "lib/envelope.h"
#include "lib/event.h"
#include "lib/keyfile.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CASE_ID "q4mz7k2xea"
#define DISTINCT 1000 /* distinct objects, opened round robin */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char BODY[] = "{\"v\":1,\"id\":\"00112233445566778899aabbccddeeff\",\"lamport\":1,"
                           "\"roster\":2,\"author\":\"Admin\",\"day\":20000,\"op\":\"stage\","
                           "\"value\":\"verifying\"}";

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 100000, r = argc > 2 ? atol(argv[2]) : 5;
    if (sodium_init() < 0 || n < 1 || r < 1 || r > 64)
        return fputs("usage: refuge-bench-casekey [N] [R 1..64]\n", stderr), 2;
    struct rf_staff_keys *me = sodium_malloc(sizeof(*me));
    uint8_t(*pks)[32] = calloc((size_t)r, 32), *key = sodium_malloc(32), id[8];
    if (me == NULL || pks == NULL || key == NULL || rf_staff_keys_generate(me, "Me") != 0)
        return 1;
    memcpy(pks[0], me->box_pk, 32);
    for (long i = 1; i < r; i++) {
        uint8_t sk[32];
        crypto_box_keypair(pks[i], sk);
    }
    rf_casekey_new(key);
    rf_casekey_id(id, key);
    struct rf_buf ev, *v1 = calloc(DISTINCT, sizeof(*v1)), *v2 = calloc(DISTINCT, sizeof(*v2));
    rf_buf_init(&ev, 1 << 20);
    if (v1 == NULL || v2 == NULL ||
        rf_event_sign(&ev, me, CASE_ID, (const uint8_t *)BODY, strlen(BODY)) != 0)
        return 1;
    for (int i = 0; i < DISTINCT; i++) {
        rf_buf_init(&v1[i], 1 << 20);
        rf_buf_init(&v2[i], 1 << 20);
        if (rf_envelope_seal(&v1[i], RF_KIND_EVENT, (const uint8_t(*)[32])pks, (size_t)r, ev.data,
                             ev.len) != 0 ||
            rf_casekey_event_seal(&v2[i], key, CASE_ID, ev.data, ev.len) != 0)
            return 1;
    }
    struct rf_casekey_table t = {(const uint8_t(*)[32])key, (const uint8_t(*)[8])id, 1};
    struct rf_buf out;
    rf_buf_init_secure(&out, 1 << 20);

    double a = now();
    for (long i = 0; i < n; i++) {
        rf_buf_reset(&out);
        const struct rf_buf *c = &v2[i % DISTINCT];
        if (rf_casekey_event_open(&out, c->data, c->len, CASE_ID, rf_casekey_table_find, &t) != 0 ||
            out.len != ev.len)
            return 1;
    }
    double t2 = now() - a;
    a = now();
    for (long i = 0; i < n; i++) {
        rf_buf_reset(&out);
        const struct rf_buf *c = &v1[i % DISTINCT];
        uint8_t kind = 0;
        if (rf_envelope_open(&out, &kind, me->box_pk, me->box_sk, c->data, c->len) != 0 ||
            out.len != ev.len)
            return 1;
    }
    double t1 = now() - a;

    /* the per-key cost: a CASEKEY envelope opened and its signature verified */
    struct rf_buf ck, cke;
    rf_buf_init_secure(&ck, 4096);
    rf_buf_init(&cke, 1 << 20);
    if (rf_casekey_encode(&ck, me, CASE_ID, 2, key) != 0 ||
        rf_envelope_seal(&cke, RF_KIND_CASEKEY, (const uint8_t(*)[32])pks, (size_t)r, ck.data,
                         ck.len) != 0)
        return 1;
    long nk = n / 10 > 0 ? n / 10 : 1;
    a = now();
    for (long i = 0; i < nk; i++) {
        struct rf_casekey_obj o;
        uint8_t kind = 0;
        rf_buf_reset(&out);
        if (rf_envelope_open(&out, &kind, me->box_pk, me->box_sk, cke.data, cke.len) != 0 ||
            rf_casekey_verify(&o, out.data, out.len, CASE_ID) != 0)
            return 1;
    }
    double tk = now() - a;

    printf("casekey_bench %ld events, signed event %zu bytes, roster %ld members, one core\n", n,
           ev.len, r);
    printf("ev2_bytes %zu  envelope_bytes %zu\n", v2[0].len, v1[0].len);
    printf("ev2_open_per_s %.0f  (%.2f us each)\n", n / t2, t2 * 1e6 / n);
    printf("envelope_open_per_s %.0f  (%.2f us each)\n", n / t1, t1 * 1e6 / n);
    printf("ratio_ev2_to_envelope %.1f\n", t1 / t2);
    printf("casekey_open_verify_us %.1f  (per case key: envelope open + Ed25519 verify)\n",
           tk * 1e6 / nk);
    for (int i = 0; i < DISTINCT; i++) {
        rf_buf_free(&v1[i]);
        rf_buf_free(&v2[i]);
    }
    free(v1);
    free(v2);
    free(pks);
    rf_buf_free(&ev);
    rf_buf_free(&out);
    rf_buf_free(&ck);
    rf_buf_free(&cke);
    sodium_free(me);
    sodium_free(key);
    return 0;
}
