/*
 * home.c - the client's home directory (see home.h).
 *
 * Invariants: the directory is created 0700 and every file in it 0600;
 * files are replaced atomically (temp name, fsync, rename, fsync of the
 * directory), so a crash leaves the old or the new config, never half of
 * one. The key file's plaintext exists only in sodium_malloc memory.
 */
#include "client/home.h"
#include "client/keyring.h"
#include "client/out.h"
#include "client/pass.h"
#include "lib/err.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CONFIG_MAX (16 * 1024)

int rf_home_locate(struct rf_home *h)
{
    memset(h, 0, sizeof(*h));
    const char *env = getenv("REFUGE_HOME");
    int n;
    if (env && env[0]) {
        n = snprintf(h->dir, sizeof(h->dir), "%s", env);
    } else {
        const char *home = getenv("HOME");
        if (!home || !home[0])
            return RF_ERR_NOT_FOUND;
        n = snprintf(h->dir, sizeof(h->dir), "%s/.config/refuge", home);
    }
    if (n < 0 || (size_t)n >= sizeof(h->dir))
        return RF_ERR_LIMIT;
    return 0;
}

int rf_home_path(const struct rf_home *h, const char *name, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s/%s", h->dir, name);
    return (n < 0 || (size_t)n >= cap) ? RF_ERR_LIMIT : 0;
}

static int mkdir_p(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0700);
        *p = '/';
        if (rc != 0 && errno != EEXIST)
            return RF_ERR_IO;
    }
    if (mkdir(path, mode) != 0 && errno != EEXIST)
        return RF_ERR_IO;
    return 0;
}

int rf_home_create(const struct rf_home *h)
{
    char path[PATH_MAX];
    memcpy(path, h->dir, sizeof(path));
    if (mkdir_p(path, 0700) != 0)
        return RF_ERR_IO;
    if (chmod(h->dir, 0700) != 0)
        return RF_ERR_IO;
    return 0;
}

int rf_home_read(const struct rf_home *h, const char *name, struct rf_buf *out)
{
    char path[PATH_MAX];
    uint8_t chunk[4096];
    int rc = rf_home_path(h, name, path, sizeof(path));
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? RF_ERR_NOT_FOUND : RF_ERR_IO;
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof(chunk));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0) {
            rc = RF_ERR_IO;
            break;
        }
        if (k == 0)
            break;
        rc = rf_buf_put(out, chunk, (size_t)k);
        if (rc != 0)
            break;
    }
    sodium_memzero(chunk, sizeof(chunk));
    close(fd);
    return rc;
}

int rf_home_write(const struct rf_home *h, const char *name, const uint8_t *p, size_t n)
{
    char path[PATH_MAX], tmp[PATH_MAX];
    int rc = rf_home_path(h, name, path, sizeof(path));
    if (rc != 0)
        return rc;
    if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        return RF_ERR_LIMIT;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return RF_ERR_IO;
    size_t off = 0;
    while (off < n) {
        ssize_t k = write(fd, p + off, n - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0) {
            rc = errno == ENOSPC ? RF_ERR_NOSPACE : RF_ERR_IO;
            break;
        }
        off += (size_t)k;
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = RF_ERR_IO;
    if (close(fd) != 0 && rc == 0)
        rc = RF_ERR_IO;
    if (rc == 0 && rename(tmp, path) != 0)
        rc = RF_ERR_IO;
    if (rc != 0) {
        unlink(tmp);
        return rc;
    }
    int dfd = open(h->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int rf_home_load(struct rf_home *h)
{
    struct rf_buf b;
    rf_buf_init(&b, CONFIG_MAX);
    int rc = rf_home_read(h, "config.json", &b);
    json_t *j = NULL;
    if (rc != 0)
        goto out;
    json_error_t e;
    j = json_loadb((const char *)b.data, b.len, JSON_REJECT_DUPLICATES, &e);
    const char *server = json_string_value(json_object_get(j, "server"));
    const char *name = json_string_value(json_object_get(j, "name"));
    const char *pin = json_string_value(json_object_get(j, "pinned_admin"));
    size_t n = 0;
    rc = RF_ERR_FORMAT;
    if (!server || !name || !pin || strlen(server) >= sizeof(h->server) ||
        strlen(name) > RF_NAME_MAX)
        goto out;
    if (rf_b64_decode(h->pinned, sizeof(h->pinned), &n, pin, strlen(pin)) != 0 || n != 32)
        goto out;
    snprintf(h->server, sizeof(h->server), "%s", server);
    snprintf(h->name, sizeof(h->name), "%s", name);
    h->insecure_http = json_is_true(json_object_get(j, "insecure_http"));
    rc = 0;
out:
    json_decref(j);
    rf_buf_free(&b);
    return rc;
}

int rf_home_save(const struct rf_home *h)
{
    char pin[64];
    if (rf_b64_encode(pin, sizeof(pin), h->pinned, 32) != 0)
        return RF_ERR_INVALID;
    json_t *j = json_pack("{ssssss}", "server", h->server, "name", h->name, "pinned_admin", pin);
    if (j && h->insecure_http)
        json_object_set_new(j, "insecure_http", json_true());
    char *s = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    json_decref(j);
    if (!s)
        return RF_ERR_NOMEM;
    size_t n = strlen(s);
    int rc = rf_home_write(h, "config.json", (const uint8_t *)s, n);
    rf_out_json_free(s);
    return rc;
}

void rf_home_keys_free(struct rf_staff_keys *k)
{
    if (k)
        sodium_free(k);
}

int rf_home_keys_load(const struct rf_home *h, struct rf_staff_keys **out)
{
    return rf_home_keys_unlock(h, out, 0);
}

int rf_home_keys_unlock(const struct rf_home *h, struct rf_staff_keys **out, unsigned minutes)
{
    struct rf_buf file;
    char *pass = NULL;
    size_t plen = 0;
    *out = NULL;
    rf_buf_init(&file, RF_KEYFILE_MAX);
    struct rf_staff_keys *k = sodium_malloc(sizeof(*k));
    int rc = k ? rf_home_read(h, "key.rfk", &file) : RF_ERR_NOMEM;
    if (rc == RF_ERR_NOT_FOUND) {
        fputs("refuge: no key file in the refuge home; run `refuge init` first\n", stderr);
        goto out;
    }
    if (rc != 0) {
        fprintf(stderr, "refuge: cannot read the key file: %s\n", rf_strerror(rc));
        goto out;
    }
    /* unlocked a moment ago (`refuge unlock`): no passphrase, no Argon2id */
    if (minutes == 0 && rf_keyring_get(h, file.data, file.len, k) == 0)
        goto out;
    rc = rf_pass_read(&pass, &plen, "Passphrase: ", 0);
    if (rc != 0)
        goto out;
    rc = rf_keyfile_read(k, file.data, file.len, pass, plen);
    if (rc == RF_ERR_PASSPHRASE)
        fputs("refuge: wrong passphrase (or the key file was altered)\n", stderr);
    else if (rc != 0)
        fprintf(stderr, "refuge: the key file is damaged: %s\n", rf_strerror(rc));
    if (rc == 0 && minutes > 0 && (rc = rf_keyring_put(h, file.data, file.len, k, minutes)) != 0)
        fputs("refuge: cannot keep the key in this session's keyring (keyctl refused it); "
              "nothing was kept\n",
              stderr);
out:
    rf_pass_free(pass);
    rf_buf_free(&file);
    if (rc != 0) {
        rf_home_keys_free(k);
        return rc;
    }
    *out = k;
    return 0;
}

int rf_home_open(struct rf_home *h, struct rf_staff_keys **keys)
{
    int rc = rf_home_locate(h);
    if (rc != 0) {
        fputs("refuge: cannot find a home directory; set REFUGE_HOME\n", stderr);
        return rc;
    }
    rc = rf_home_load(h);
    if (rc == RF_ERR_NOT_FOUND) {
        fputs("refuge: this computer is not set up yet; run `refuge init` first\n", stderr);
        return rc;
    }
    if (rc != 0) {
        fputs("refuge: config.json in the refuge home is damaged\n", stderr);
        return rc;
    }
    struct stat st;
    if (stat(h->dir, &st) == 0 && (st.st_mode & 077) != 0)
        chmod(h->dir, 0700);
    if (keys)
        return rf_home_keys_load(h, keys);
    return 0;
}
