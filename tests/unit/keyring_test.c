/* keyring_test.c - the unlocked key in the session keyring (keyring.c), in
 * a fresh anonymous session keyring of this process: kept keys come back
 * whole for their home and key file only (another key file, as after a
 * passphrase change, or another home: not found); the key is its
 * possessors' only and has an expiry, after which it is gone; a new unlock
 * replaces the old key; drop forgets it (and says when there was none). */
#include "client/home.h"
#include "client/keyring.h"
#include "lib/err.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <linux/keyctl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

static int fresh_session(void **state)
{
    (void)state;
    return syscall(SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, NULL) < 0 ? -1 : 0;
}

static void home_at(struct rf_home *h, const char *name)
{
    const char *tmp = getenv("REFUGE_TEST_TMP");
    memset(h, 0, sizeof(*h));
    snprintf(h->dir, sizeof(h->dir), "%s/keyring_test_%s.%d", tmp ? tmp : "/tmp", name,
             (int)getpid());
    mkdir(h->dir, 0700);
}

static long kept_id(const char *want_prefix, char *desc, size_t cap)
{
    uint8_t ids[256];
    long n = syscall(SYS_keyctl, KEYCTL_READ, KEY_SPEC_SESSION_KEYRING, ids, sizeof(ids));
    for (long i = 0; i + 4 <= n; i += 4) {
        int32_t id;
        memcpy(&id, ids + i, 4);
        if (syscall(SYS_keyctl, KEYCTL_DESCRIBE, id, desc, cap) > 0 &&
            strstr(desc, want_prefix) != NULL)
            return id;
    }
    return -1;
}

static void keep_and_get(void **state)
{
    (void)state;
    struct rf_home h, other;
    home_at(&h, "a");
    home_at(&other, "b");
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k)), *got = sodium_malloc(sizeof(*got));
    assert_int_equal(rf_staff_keys_generate(k, "Anna"), 0);
    static const uint8_t file[] = "the key file's bytes", file2[] = "after a passphrase change";

    assert_int_equal(rf_keyring_get(&h, file, sizeof(file), got), RF_ERR_NOT_FOUND);
    assert_false(rf_keyring_held(&h));
    assert_int_equal(rf_keyring_drop(&h), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_keyring_put(&h, file, sizeof(file), k, 0), RF_ERR_INVALID);
    assert_int_equal(rf_keyring_put(&h, file, sizeof(file), k, RF_KEYRING_MINUTES_MAX + 1),
                     RF_ERR_INVALID);
    assert_int_equal(rf_keyring_put(&h, file, sizeof(file), k, 5), 0);
    assert_true(rf_keyring_held(&h)); /* rf_ctx_open_overlap: no Argon2id to overlap */
    assert_int_equal(rf_keyring_get(&h, file, sizeof(file), got), 0);
    assert_string_equal(got->name, "Anna");
    assert_memory_equal(got->sign_pk, k->sign_pk, 32);
    assert_memory_equal(got->sign_sk, k->sign_sk, 64);
    assert_memory_equal(got->box_pk, k->box_pk, 32);
    assert_memory_equal(got->box_sk, k->box_sk, 32);
    /* another key file (the passphrase changed), another home */
    assert_int_equal(rf_keyring_get(&h, file2, sizeof(file2), got), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_keyring_get(&other, file, sizeof(file), got), RF_ERR_NOT_FOUND);
    assert_false(rf_keyring_held(&other));

    /* "user;uid;gid;perm;desc": possessor view/read/write/search/setattr only */
    char desc[256];
    long id = kept_id(";refuge:v1:", desc, sizeof(desc));
    assert_true(id > 0);
    assert_non_null(strstr(desc, ";2f000000;refuge:v1:"));
    assert_int_equal(strncmp(desc, "user;", 5), 0);

    /* a new unlock replaces it (one key per home) */
    assert_int_equal(rf_keyring_put(&h, file2, sizeof(file2), k, 5), 0);
    assert_int_equal(rf_keyring_get(&h, file, sizeof(file), got), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_keyring_get(&h, file2, sizeof(file2), got), 0);
    long id2 = kept_id(";refuge:v1:", desc, sizeof(desc));
    assert_true(id2 > 0 && id2 != id);

    /* it expires: the kernel's timeout, shortened here to 1 s */
    assert_int_equal(syscall(SYS_keyctl, KEYCTL_SET_TIMEOUT, id2, 1), 0);
    sleep(2);
    assert_int_equal(rf_keyring_get(&h, file2, sizeof(file2), got), RF_ERR_NOT_FOUND);

    assert_int_equal(rf_keyring_put(&h, file, sizeof(file), k, 1), 0);
    assert_int_equal(rf_keyring_drop(&h), 0);
    assert_false(rf_keyring_held(&h));
    assert_int_equal(rf_keyring_get(&h, file, sizeof(file), got), RF_ERR_NOT_FOUND);
    assert_int_equal(rf_keyring_drop(&h), RF_ERR_NOT_FOUND);
    rmdir(h.dir);
    rmdir(other.dir);
    sodium_free(k);
    sodium_free(got);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(keep_and_get),
    };
    if (fresh_session(NULL) != 0) {
        puts("SKIP keyring_test: no kernel keyring here");
        return 77;
    }
    return cmocka_run_group_tests(tests, NULL, NULL);
}
