/*
 * casekey_tool.c - what tests/e2e/test_casekey.py needs that Python without
 * libsodium bindings cannot do (built beside the unit tests, never
 * installed):
 *
 *   casekey_tool forge CASE ROSTER BOXPK_HEX...
 *       a CASEKEY object (kind 9) for CASE naming roster version ROSTER,
 *       sealed to exactly the given box keys, with a fresh random K and
 *       signed by a fresh key that is on no roster; prints the envelope
 *       and the key id, in hex, one per line
 *   casekey_tool sign KEYFILE PASSFILE METHOD PATH BODYFILE
 *       the Authorization header value of a caseworker's signed request
 */
#include "lib/apisig.h"
#include "lib/buf.h"
#include "lib/casekey.h"
#include "lib/envelope.h"
#include "lib/keyfile.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int slurp(const char *path, struct rf_buf *b)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (rf_buf_put(b, chunk, n) != 0) {
            fclose(f);
            return -1;
        }
    fclose(f);
    return 0;
}

static void print_hex(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", p[i]);
    putchar('\n');
}

static int forge(int argc, char **argv)
{
    if (argc < 5)
        return 2;
    size_t npk = (size_t)argc - 4;
    uint8_t(*pks)[32] = calloc(npk, 32);
    struct rf_staff_keys *maker = sodium_malloc(sizeof(*maker));
    uint8_t key[RF_CASEKEY_BYTES], id[RF_CASEKEY_ID_BYTES];
    struct rf_buf plain, env;
    rf_buf_init(&plain, 4096);
    rf_buf_init(&env, 1 << 20);
    int rc = pks && maker ? rf_staff_keys_generate(maker, "Mallory") : -1;
    for (size_t i = 0; rc == 0 && i < npk; i++) {
        size_t got = 0;
        if (sodium_hex2bin(pks[i], 32, argv[4 + i], strlen(argv[4 + i]), NULL, &got, NULL) != 0 ||
            got != 32)
            rc = -1;
    }
    rf_casekey_new(key);
    rf_casekey_id(id, key);
    if (rc == 0)
        rc = rf_casekey_encode(&plain, maker, argv[2], (uint32_t)strtoul(argv[3], NULL, 10), key);
    if (rc == 0)
        rc = rf_envelope_seal(&env, RF_KIND_CASEKEY, (const uint8_t(*)[32])pks, npk, plain.data,
                              plain.len);
    if (rc == 0) {
        print_hex(env.data, env.len);
        print_hex(id, sizeof(id));
    }
    rf_buf_free(&plain);
    rf_buf_free(&env);
    sodium_free(maker);
    free(pks);
    return rc == 0 ? 0 : 1;
}

static int sign(int argc, char **argv)
{
    if (argc != 7)
        return 2;
    struct rf_buf file, pass, body;
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    uint8_t hash[32];
    char out[1024];
    rf_buf_init(&file, 1 << 16);
    rf_buf_init(&pass, 4096);
    rf_buf_init(&body, 1 << 24);
    int rc =
        k && slurp(argv[2], &file) == 0 && slurp(argv[3], &pass) == 0 && slurp(argv[6], &body) == 0
            ? 0
            : -1;
    while (rc == 0 && pass.len > 0 && (pass.data[pass.len - 1] == '\n'))
        pass.len--;
    if (rc == 0)
        rc = rf_keyfile_read(k, file.data, file.len, (const char *)pass.data, pass.len);
    crypto_generichash(hash, sizeof(hash), body.data, body.len, NULL, 0);
    if (rc == 0)
        rc = rf_apisig_sign(out, sizeof(out), k, argv[4], argv[5], (int64_t)time(NULL), hash);
    if (rc == 0)
        puts(out);
    rf_buf_free(&file);
    rf_buf_free(&pass);
    rf_buf_free(&body);
    sodium_free(k);
    return rc == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    if (argc >= 2 && strcmp(argv[1], "forge") == 0)
        return forge(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "sign") == 0)
        return sign(argc, argv);
    fputs("usage: casekey_tool forge CASE ROSTER BOXPK_HEX... | sign KEYFILE PASSFILE METHOD PATH "
          "BODYFILE\n",
          stderr);
    return 2;
}
