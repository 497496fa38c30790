/*
 * cmd_reply.c - `refuge reply CASE [-m TEXT | -f FILE]`: seal a reply to
 * the person behind CASE and to every caseworker on the VERIFIED roster,
 * post it, then sync.
 *
 * The reply's plaintext lives in sodium_malloc memory. It touches a disk
 * only if the caseworker asks for $EDITOR, and then only tmpfs: a file in a
 * fresh 0700 directory under /dev/shm, overwritten with zeros and removed
 * (with anything the editor left beside it) as soon as the editor exits.
 * Without /dev/shm the editor is refused.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "client/replysig.h"
#include "client/trust.h"
#include "lib/envelope.h"
#include "lib/err.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY_MAX (64 * 1024)

static void usage(FILE *f)
{
    fputs("usage: refuge reply CASE [-m TEXT | -f FILE]\n"
          "\n"
          "Sends an encrypted reply to the person behind CASE (they read it after logging in\n"
          "with their codename). It is sealed to them and to every caseworker on the verified\n"
          "roster. Without -m or -f, $EDITOR opens on a file in memory (/dev/shm) that is\n"
          "wiped afterwards.\n"
          "  -m, --message TEXT   the reply text\n"
          "  -f, --file FILE      read the reply from FILE (- for standard input)\n",
          f);
}

static int read_fd(int fd, struct rf_buf *out)
{
    uint8_t chunk[4096];
    int rc = 0;
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
    return rc;
}

/* Overwrites every file in dir with zeros, removes it, then dir. */
static void wipe_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    static const uint8_t zeros[4096];
    while (d && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        int fd = openat(dirfd(d), e->d_name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)) {
            for (off_t off = 0; off < st.st_size; off += (off_t)sizeof(zeros))
                if (write(fd, zeros, sizeof(zeros)) < 0)
                    break;
        }
        if (fd >= 0)
            close(fd);
        unlinkat(dirfd(d), e->d_name, 0);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int edit(struct rf_buf *out)
{
    struct stat st;
    if (stat("/dev/shm", &st) != 0 || !S_ISDIR(st.st_mode)) {
        rf_cmd_err("cannot open an editor",
                   "no /dev/shm (memory file system) to hold the draft; use -m TEXT or -f FILE");
        return RF_ERR_IO;
    }
    char dir[] = "/dev/shm/refuge-XXXXXX";
    char path[64], cmd[1024];
    if (!mkdtemp(dir)) {
        rf_cmd_err("cannot open an editor", strerror(errno));
        return RF_ERR_IO;
    }
    snprintf(path, sizeof(path), "%s/reply.txt", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    int rc = RF_ERR_IO;
    if (fd < 0)
        goto out;
    close(fd);
    const char *ed = getenv("VISUAL");
    if (!ed || !ed[0])
        ed = getenv("EDITOR");
    if (!ed || !ed[0])
        ed = "vi";
    if (snprintf(cmd, sizeof(cmd), "%s \"$@\"", ed) >= (int)sizeof(cmd))
        goto out;
    struct sigaction ign = {.sa_handler = SIG_IGN}, oldint, oldquit;
    sigaction(SIGINT, &ign, &oldint);
    sigaction(SIGQUIT, &ign, &oldquit);
    pid_t pid = fork();
    if (pid == 0) {
        sigaction(SIGINT, &oldint, NULL);
        sigaction(SIGQUIT, &oldquit, NULL);
        execl("/bin/sh", "sh", "-c", cmd, ed, path, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    sigaction(SIGINT, &oldint, NULL);
    sigaction(SIGQUIT, &oldquit, NULL);
    if (pid < 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        rf_cmd_err("the editor failed", "nothing was sent");
        goto out;
    }
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0)
        goto out;
    rc = read_fd(fd, out);
    close(fd);
    if (rc == RF_ERR_LIMIT)
        rf_cmd_err("reply too long", "64 KiB at most");
out:
    wipe_dir(dir);
    return rc;
}

static int blank(const struct rf_buf *b)
{
    for (size_t i = 0; i < b->len; i++)
        if (b->data[i] != ' ' && b->data[i] != '\n' && b->data[i] != '\t' && b->data[i] != '\r')
            return 0;
    return 1;
}

static int get_text(const char *msg, const char *file, struct rf_buf *out)
{
    int rc;
    if (msg)
        return rf_buf_put(out, msg, strlen(msg));
    if (!file)
        return edit(out);
    if (strcmp(file, "-") == 0) {
        rc = read_fd(STDIN_FILENO, out);
    } else {
        int fd = open(file, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
            rf_cmd_err("cannot read the reply file", strerror(errno));
            return RF_ERR_IO;
        }
        rc = read_fd(fd, out);
        close(fd);
    }
    if (rc == RF_ERR_LIMIT)
        rf_cmd_err("reply too long", "64 KiB at most");
    else if (rc != 0)
        rf_cmd_errc("cannot read the reply", rc);
    return rc;
}

/* The person's key for case cid, as the server gives it now, must be the
 * one this computer pinned the first time it sealed a reply for that case
 * (pinned now if none): a person's key derives from their codename and
 * never changes, so another key means the server is trying to read the
 * replies. Loud refusal; nothing is sealed. */
static int pin_person_key(struct rf_cache *c, const char *cid, const uint8_t pk[32])
{
    uint8_t pinned[32];
    int rc = rf_cache_pin_get(c, cid, pinned);
    if (rc == RF_ERR_NOT_FOUND) {
        rc = rf_cache_pin_put(c, cid, pk);
        if (rc != 0)
            rf_cmd_errc("cannot pin the person's key", rc);
        return rc;
    }
    if (rc != 0) {
        rf_cmd_errc("cannot read the person's pinned key", rc);
        return rc;
    }
    if (sodium_memcmp(pinned, pk, 32) == 0)
        return 0;
    fprintf(stderr,
            "refuge: PERSON'S KEY CHANGED: the server now gives another key for the person\n"
            "refuge: behind case %s than the one this computer sealed replies to before.\n"
            "refuge: Nothing was sealed or sent. The server may be trying to read replies;\n"
            "refuge: tell your admin before doing anything else.\n",
            cid);
    return RF_ERR_PROTOCOL;
}

int rf_cmd_reply(int argc, char **argv)
{
    static const struct option opts[] = {
        {"message", required_argument, NULL, 'm'},
        {"file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *msg = NULL, *file = NULL;
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "m:f:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'm':
            msg = optarg;
            break;
        case 'f':
            file = optarg;
            break;
        case 'h':
            usage(stdout);
            return RF_EXIT_OK;
        default:
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (argc - optind != 1 || (msg && file)) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    const char *cid = argv[optind];
    if (!rf_cmd_case_ok(cid)) {
        rf_cmd_err("bad case id", "case ids are lower-case letters and digits");
        return RF_EXIT_USAGE;
    }

    struct rf_ctx x;
    struct rf_buf text;
    int ret = RF_EXIT_FAIL;
    rf_buf_init_secure(&text, REPLY_MAX);
    if (rf_ctx_open(&x, 1) != 0)
        goto out;
    if (get_text(msg, file, &text) != 0)
        goto out;
    int rc = rf_reply_send(&x, cid, text.data, text.len, NULL);
    if (rc == RF_ERR_INVALID)
        rf_cmd_err("empty reply", "nothing was sent");
    if (rc == 0)
        ret = RF_EXIT_OK;
out:
    rf_buf_free(&text);
    rf_ctx_close(&x);
    return ret;
}

int rf_reply_send(struct rf_ctx *x, const char *cid, const uint8_t *textp, size_t textlen,
                  long long *seq)
{
    struct rf_roster *ro = NULL;
    struct rf_buf text, plain, ct;
    json_t *cj = NULL, *ans = NULL;
    uint8_t(*pks)[32] = NULL;
    char path[96];
    int ret = RF_ERR_IO, rc;
    rf_buf_init_secure(&text, REPLY_MAX);
    rf_buf_init_secure(&plain, REPLY_MAX * 7 + 1024);
    rf_buf_init(&ct, REPLY_MAX * 8 + 64 * 1024);
    if (seq)
        *seq = 0;
    if (rf_buf_put(&text, textp, textlen) != 0) {
        rf_cmd_err("reply too long", "64 KiB at most");
        ret = RF_ERR_LIMIT;
        goto out;
    }
    while (text.len > 0 && strchr(" \t\r\n", text.data[text.len - 1]))
        text.len--;
    if (blank(&text)) {
        ret = RF_ERR_INVALID;
        goto out;
    }
    struct rf_net *n = x->n;
    if (rf_trust_roster(n, x->c, x->h.pinned, x->k, &ro, 0) != 0 || !rf_cmd_on_roster(x, ro))
        goto out;
    snprintf(path, sizeof(path), "/api/v1/cases/%s", cid);
    rc = rf_net_json(n, "GET", path, NULL, 0, NULL, &cj);
    if (rc != 0) {
        if (rf_net_status(n) == 404)
            rf_cmd_err("no such case on the server", cid);
        else
            rf_cmd_net_err("cannot look up the case", n);
        goto out;
    }
    const char *pkb = json_string_value(json_object_get(cj, "pk"));
    size_t npk = 0, pklen = 0;
    pks = calloc((size_t)ro->n + 1, 32);
    if (!pks)
        goto out;
    if (!pkb || rf_b64_decode(pks[0], 32, &pklen, pkb, strlen(pkb)) != 0 || pklen != 32) {
        rf_cmd_err("cannot look up the case", "the server's answer is malformed");
        goto out;
    }
    if (pin_person_key(x->c, cid, pks[0]) != 0)
        goto out;
    npk = 1;
    for (uint16_t i = 0; i < ro->n; i++)
        memcpy(pks[npk++], ro->members[i].box_pk, 32);
    if (npk > RF_ENV_MAX_RECIPIENTS) {
        rf_cmd_err("cannot seal the reply", "too many recipients");
        goto out;
    }
    rc = rf_replysig_compose(&plain, x->k, cid, text.data, text.len); /* signed: replysig.h */
    if (rc == 0)
        rc = rf_envelope_seal(&ct, RF_KIND_REPLY, (const uint8_t(*)[32])pks, npk, plain.data,
                              plain.len);
    if (rc != 0) {
        rf_cmd_err("cannot seal the reply",
                   rc == RF_ERR_FORMAT ? "the text is not valid UTF-8" : rf_strerror(rc));
        ret = rc;
        goto out;
    }
    rf_buf_free(&plain);
    rf_buf_free(&text);
    snprintf(path, sizeof(path), "/api/v1/cases/%s/replies", cid);
    rc = rf_net_json(n, "POST", path, ct.data, ct.len, "application/octet-stream", &ans);
    if (rc != 0) {
        if (rf_net_status(n) == 403)
            rf_cmd_forbidden(x, "the reply was not sent", 0);
        else
            rf_cmd_net_err("the reply was not sent", n);
        goto out;
    }
    long long s = (long long)json_integer_value(json_object_get(ans, "seq"));
    if (seq)
        *seq = s;
    printf("Reply sent (#%lld) to case %s, sealed to the person and %zu caseworker%s.\n", s, cid,
           npk - 1, npk == 2 ? "" : "s");
    fflush(stdout);
    ret = rf_sync_run(x, 1, 0, NULL) == 0 ? 0 : RF_ERR_IO;
out:
    free(pks);
    json_decref(cj);
    json_decref(ans);
    free(ro);
    rf_buf_free(&text);
    rf_buf_free(&plain);
    rf_buf_free(&ct);
    return ret;
}
