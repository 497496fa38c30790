/*
 * srv_main.c - the server process: `refuge serve` and `refuge server init |
 * token`. Owns the start-up order (store, committer, KDF pool, sessions,
 * pages, API, HTTP) and the shutdown order, which is its reverse with one
 * rule: HTTP stops first, and stopping waits for suspended requests, whose
 * workers (KDF pool, committer) are still running and always resume them.
 *
 * Instance settings (written once by `server init`, read by `serve`), in the
 * store's settings table, big-endian like every Refuge format:
 *   "instance.kdf"    v u8 (=1) | opslimit u64 | memlimit u64 (bytes) |
 *                     salt[16] | lookup_key[32]                (65 bytes)
 *   "instance.lang"   lang u8 (0 en, 1 ru, 2 uk)
 *   "instance.limits" v u8 (=1) | message_max u64 | upload_max u64 |
 *                     form_max u64 | kdf_queue u32 | sessions_max u32 |
 *                     session_idle_s u32 | connections_max u32 |
 *                     connection_timeout_s u32 | api_body_max u64 (57 bytes)
 *   "instance.retention" retention and inactivity days (server/purge.h)
 *   "team.event_format" one ASCII digit, "1" or "2" (api_casekey.c; init writes "2")
 * The KDF setting holds the lookup key: it is read into sodium_malloc memory
 * and the buffer it came through is wiped.
 *
 * Secrets (the KDF lookup key, the CSRF key, enrollment tokens) are never
 * written to stderr; the process refuses core dumps and ptrace attach by
 * other users' tools (PR_SET_DUMPABLE 0) before it reads any of them.
 * Exit status: 0 done, 1 runtime error, 2 usage error.
 */
#include "server/server.h"
#include "server/backup.h"
#include "server/cpus.h"
#include "server/httpd.h"
#include "server/kdfpool.h"
#include "server/metrics.h"
#include "server/migrate.h"
#include "server/onion.h"
#include "server/purge.h"
#include "server/routes.h"
#include "server/sandbox.h"
#include "server/session.h"
#include "server/sesskey.h"
#include "server/srv.h"
#include "server/status.h"
#include "server/tmpl.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/roster.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

#define SET_KDF "instance.kdf"
#define SET_LANG "instance.lang"
#define SET_LIMITS "instance.limits"
#define SET_KDF_LEN (1 + 8 + 8 + RF_KDF_SALT_BYTES + RF_LOOKUP_KEY_BYTES)
#define SET_LIMITS_LEN (1 + 8 * 3 + 4 * 5 + 8)
#define DEFAULT_LISTEN "127.0.0.1:8080"
#define TOKEN_BYTES 32
#define KDF_QUEUE_MIN 512           /* logins that may wait for a KDF worker */
#define KDF_WAIT_MAX_US 30000000ULL /* longest expected wait for a worker before "busy" (30 s) */

static void say(const char *what)
{
    fprintf(stderr, "refuge: %s\n", what);
}

static void say_err(const char *what, int err)
{
    fprintf(stderr, "refuge: %s: %s\n", what, rf_strerror(err));
}

static void harden(void)
{
    struct rlimit rl = {0, 0};
    if (setrlimit(RLIMIT_CORE, &rl) != 0)
        say("warning: cannot disable core dumps");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        say("warning: cannot mark the process non-dumpable");
}

static int parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end = NULL;
    if (s == NULL || *s < '0' || *s > '9')
        return RF_ERR_INVALID;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return RF_ERR_INVALID;
    *out = v;
    return 0;
}

/* cpus: what the process may use (cpus.h), read before the sandbox. */
static void limits_default(struct rf_limits *l, unsigned cpus)
{
    memset(l, 0, sizeof(*l));
    l->message_max = 64 * 1024;
    l->upload_max = 500ULL * 1000 * 1000;
    l->form_max = 256 * 1024;
    l->kdf_concurrent = cpus > 0 ? cpus : 1;
    l->kdf_queue = 64;
    l->sessions_max = 4096;
    l->session_idle_s = 1800;
    l->connections_max = 2000; /* 1,000 idle connections held leave room for new ones */
    l->connection_timeout_s = 60;
    l->api_body_max = l->upload_max;
}

/* ------------------------------------------------------------- settings */

static int put_setting(struct rf_store *st, const char *key, const struct rf_buf *b)
{
    struct rf_op op;
    rf_op_setting_put(&op, key, b->data, b->len);
    int rc = rf_store_apply(st, &op, 1);
    return rc != 0 ? rc : rf_op_status(&op);
}

static int encode_kdf(struct rf_buf *b, const struct rf_kdf_params *p)
{
    int rc = rf_buf_put_u8(b, 1);
    if (rc == 0)
        rc = rf_buf_put_u64(b, p->opslimit);
    if (rc == 0)
        rc = rf_buf_put_u64(b, p->memlimit);
    if (rc == 0)
        rc = rf_buf_put(b, p->salt, sizeof(p->salt));
    if (rc == 0)
        rc = rf_buf_put(b, p->lookup_key, sizeof(p->lookup_key));
    return rc;
}

static int decode_kdf(const struct rf_buf *b, struct rf_kdf_params *p)
{
    struct rf_reader r;
    uint8_t v = 0;
    rf_reader_init(&r, b->data, b->len);
    int rc = rf_get_u8(&r, &v);
    if (rc == 0 && v != 1)
        rc = RF_ERR_VERSION;
    if (rc == 0)
        rc = rf_get_u64(&r, &p->opslimit);
    if (rc == 0)
        rc = rf_get_u64(&r, &p->memlimit);
    if (rc == 0)
        rc = rf_get_bytes(&r, p->salt, sizeof(p->salt));
    if (rc == 0)
        rc = rf_get_bytes(&r, p->lookup_key, sizeof(p->lookup_key));
    if (rc == 0)
        rc = rf_reader_expect_end(&r);
    if (rc == 0 && (p->opslimit < crypto_pwhash_OPSLIMIT_MIN ||
                    p->memlimit < crypto_pwhash_MEMLIMIT_MIN || p->memlimit > SIZE_MAX))
        rc = RF_ERR_FORMAT;
    return rc;
}

static int encode_limits(struct rf_buf *b, const struct rf_limits *l)
{
    int rc = rf_buf_put_u8(b, 1);
    rc = rc ? rc : rf_buf_put_u64(b, l->message_max);
    rc = rc ? rc : rf_buf_put_u64(b, l->upload_max);
    rc = rc ? rc : rf_buf_put_u64(b, l->form_max);
    rc = rc ? rc : rf_buf_put_u32(b, l->kdf_queue);
    rc = rc ? rc : rf_buf_put_u32(b, l->sessions_max);
    rc = rc ? rc : rf_buf_put_u32(b, l->session_idle_s);
    rc = rc ? rc : rf_buf_put_u32(b, l->connections_max);
    rc = rc ? rc : rf_buf_put_u32(b, l->connection_timeout_s);
    rc = rc ? rc : rf_buf_put_u64(b, l->api_body_max);
    return rc;
}

static int decode_limits(const struct rf_buf *b, struct rf_limits *l)
{
    struct rf_reader r;
    uint8_t v = 0;
    uint32_t kq = 0, sm = 0, si = 0, cm = 0, ct = 0;
    rf_reader_init(&r, b->data, b->len);
    int rc = rf_get_u8(&r, &v);
    if (rc == 0 && v != 1)
        rc = RF_ERR_VERSION;
    rc = rc ? rc : rf_get_u64(&r, &l->message_max);
    rc = rc ? rc : rf_get_u64(&r, &l->upload_max);
    rc = rc ? rc : rf_get_u64(&r, &l->form_max);
    rc = rc ? rc : rf_get_u32(&r, &kq);
    rc = rc ? rc : rf_get_u32(&r, &sm);
    rc = rc ? rc : rf_get_u32(&r, &si);
    rc = rc ? rc : rf_get_u32(&r, &cm);
    rc = rc ? rc : rf_get_u32(&r, &ct);
    rc = rc ? rc : rf_get_u64(&r, &l->api_body_max);
    rc = rc ? rc : rf_reader_expect_end(&r);
    if (rc != 0)
        return rc;
    if (kq == 0 || sm == 0 || si == 0 || cm == 0 || ct == 0)
        return RF_ERR_FORMAT;
    l->kdf_queue = kq;
    l->sessions_max = sm;
    l->session_idle_s = si;
    l->connections_max = cm;
    l->connection_timeout_s = ct;
    return 0;
}

/* ------------------------------------------------------ enrollment token */

/* Mints a one-time admin enrollment token: stores its hash, writes the
 * base64url text to token. */
static int mint_admin_token(struct rf_store *st, char token[RF_SESSION_TOKEN_B64])
{
    uint8_t *raw = sodium_malloc(TOKEN_BYTES);
    if (raw == NULL)
        return RF_ERR_NOMEM;
    randombytes_buf(raw, TOKEN_BYTES);
    int rc = rf_b64_encode(token, RF_SESSION_TOKEN_B64, raw, TOKEN_BYTES);
    sodium_free(raw);
    if (rc != 0)
        return rc;
    struct rf_op op;
    uint8_t hash[32];
    rf_enroll_token_hash(hash, token, strlen(token));
    rf_op_token_put(&op, hash, RF_ROLE_ADMIN);
    sodium_memzero(hash, sizeof(hash));
    rc = rf_store_apply(st, &op, 1);
    if (rc == 0)
        rc = rf_op_status(&op);
    if (rc != 0)
        sodium_memzero(token, RF_SESSION_TOKEN_B64);
    return rc;
}

static void print_next_steps(const char *datadir, const char *listen, const char *token)
{
    printf("Admin enrollment token (one use; keep it private):\n  %s\n\n", token);
    printf("Next:\n  refuge serve --data %s --listen %s\n", datadir, listen);
    printf("  refuge init --server http://%s --token %s --name NAME\n", listen, token);
    fflush(stdout);
}

/* ------------------------------------------------------------------ init */

/* Creates the directories above datadir (like mkdir -p), 0700, so that
 * `refuge server init --data var/demo` works on a fresh checkout. */
static int make_parents(const char *datadir)
{
    char path[4096];
    size_t n = strlen(datadir);
    if (n == 0 || n >= sizeof(path))
        return RF_ERR_INVALID;
    memcpy(path, datadir, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (path[i] != '/')
            continue;
        path[i] = 0;
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return RF_ERR_IO;
        path[i] = '/';
    }
    return 0;
}

static void usage_init(FILE *f)
{
    fputs(
        "usage: refuge server init --data DIR [--kdf-ops N] [--kdf-mem MIB] [--lang en|ru|uk]\n"
        "                          [--listen ADDR:PORT] [--retention-days N]\n"
        "                          [--inactivity-days N] [--db postgresql://...]\n"
        "Creates a new instance in DIR: Argon2id parameters with a fresh salt and lookup key,\n"
        "the default language and limits, and a one-time enrollment token for the first\n"
        "admin. --listen only sets the address shown in the next commands (default " DEFAULT_LISTEN
        ").\n"
        "--retention-days N: closed cases are deleted N days after closing (default 90);\n"
        "--inactivity-days N: cases whose person sent nothing for N days are deleted\n"
        "(default 365; 0: never).\n"
        "--db postgresql://USER@HOST:PORT/DBNAME: store in that PostgreSQL database instead\n"
        "of DIR/refuge.db (SQLite, the default); DIR keeps the configuration, keys and files,\n"
        "and records the URL in DIR/database (mode 0600: a password in the URL stays there).\n",
        f);
}

static int cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"kdf-ops", required_argument, 0, 'o'},
        {"kdf-mem", required_argument, 0, 'm'},
        {"lang", required_argument, 0, 'l'},
        {"listen", required_argument, 0, 'L'},
        {"retention-days", required_argument, 0, 'r'},
        {"inactivity-days", required_argument, 0, 'i'},
        {"db", required_argument, 0, 'D'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *datadir = NULL, *listen = DEFAULT_LISTEN, *db_url = NULL;
    uint64_t retention = RF_RETENTION_DAYS_DEFAULT, inactivity = RF_INACTIVITY_DAYS_DEFAULT;
    uint64_t ops = RF_KDF_DEFAULT_OPSLIMIT, mem_mib = RF_KDF_DEFAULT_MEMLIMIT >> 20;
    uint8_t lang = RF_LANG_EN;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            datadir = optarg;
            break;
        case 'o':
            if (parse_u64(optarg, crypto_pwhash_OPSLIMIT_MIN, 64, &ops) != 0) {
                say("--kdf-ops takes a number from 1 to 64");
                return EXIT_USAGE;
            }
            break;
        case 'm':
            if (parse_u64(optarg, 1, 4096, &mem_mib) != 0) {
                say("--kdf-mem takes MiB, from 1 to 4096");
                return EXIT_USAGE;
            }
            break;
        case 'l':
            if (strcmp(optarg, "en") == 0) {
                lang = RF_LANG_EN;
            } else if (strcmp(optarg, "ru") == 0) {
                lang = RF_LANG_RU;
            } else if (strcmp(optarg, "uk") == 0) {
                lang = RF_LANG_UK;
            } else {
                say("--lang takes en, ru or uk");
                return EXIT_USAGE;
            }
            break;
        case 'L':
            listen = optarg;
            break;
        case 'D':
            if (!rf_store_url_valid(optarg)) {
                say("--db takes a URL postgresql://USER@HOST:PORT/DBNAME (no spaces)");
                return EXIT_USAGE;
            }
            db_url = optarg;
            break;
        case 'r':
        case 'i':
            if (parse_u64(optarg, 0, RF_RETENTION_DAYS_MAX, c == 'r' ? &retention : &inactivity) !=
                0) {
                say("--retention-days and --inactivity-days take a number of days, 0 to 36500");
                return EXIT_USAGE;
            }
            break;
        case 'h':
            usage_init(stdout);
            return 0;
        default:
            usage_init(stderr);
            return EXIT_USAGE;
        }
    }
    if (datadir == NULL || optind != argc) {
        usage_init(stderr);
        return EXIT_USAGE;
    }
    harden();

    int ret = EXIT_RUNTIME;
    struct rf_store *st = NULL;
    struct rf_kdf_params *kp = sodium_malloc(sizeof(*kp));
    struct rf_buf b, probe;
    char token[RF_SESSION_TOKEN_B64];
    rf_buf_init_secure(&b, 256);
    rf_buf_init_secure(&probe, 4096);
    if (kp == NULL) {
        say_err("cannot initialise", RF_ERR_NOMEM);
        goto out;
    }
    int rc = make_parents(datadir);
    if (rc == 0)
        rc = rf_store_create(&st, datadir, db_url);
    if (rc != 0 && db_url) {
        /* never the URL itself: it may hold a password */
        if (rc == RF_ERR_EXISTS)
            say("this data directory already names another store; use a new directory");
        else
            say("cannot reach or set up the PostgreSQL database: check that it runs, that the "
                "URL names an existing database and that its user may create tables");
    }
    if (rc != 0) {
        say_err("cannot open the data directory", rc);
        goto out;
    }
    rc = rf_store_setting_get(st, SET_KDF, &probe);
    if (rc == 0) {
        say("this data directory already holds an instance; refusing to initialise it again");
        say("to enroll the first admin again, use: refuge server token --data DIR");
        goto out;
    }
    if (rc != RF_ERR_NOT_FOUND) {
        say_err("cannot read the instance settings", rc);
        goto out;
    }
    rc = rf_kdf_params_new(kp, ops, mem_mib << 20);
    if (rc == 0)
        rc = encode_kdf(&b, kp);
    if (rc == 0)
        rc = put_setting(st, SET_KDF, &b);
    if (rc == 0) {
        rf_buf_reset(&b);
        rc = rf_buf_put_u8(&b, lang);
    }
    if (rc == 0)
        rc = put_setting(st, SET_LANG, &b);
    if (rc == 0) {
        struct rf_limits lim;
        limits_default(&lim, 0); /* kdf_concurrent is not stored */
        rf_buf_reset(&b);
        rc = encode_limits(&b, &lim);
    }
    if (rc == 0)
        rc = put_setting(st, SET_LIMITS, &b);
    if (rc == 0) {
        struct rf_retention days = {(uint32_t)retention, (uint32_t)inactivity};
        rc = rf_retention_put(st, &days);
    }
    if (rc == 0) { /* a new team's clients all read events version 2 (protocol.md 12) */
        rf_buf_reset(&b);
        rc = rf_buf_put(&b, "2", 1); /* one ASCII digit (api_casekey.c) */
    }
    if (rc == 0)
        rc = put_setting(st, "team.event_format", &b);
    if (rc != 0) {
        say_err("cannot write the instance settings", rc);
        goto out;
    }
    rc = mint_admin_token(st, token);
    if (rc != 0) {
        say_err("cannot create the enrollment token", rc);
        goto out;
    }
    say("instance created");
    print_next_steps(datadir, listen, token);
    sodium_memzero(token, sizeof(token));
    ret = 0;
out:
    rf_buf_free(&b);
    rf_buf_free(&probe);
    sodium_free(kp);
    if (st)
        rf_store_close(st);
    return ret;
}

/* ----------------------------------------------------------------- token */

static void usage_token(FILE *f)
{
    fputs("usage: refuge server token --data DIR [--listen ADDR:PORT]\n"
          "Mints another one-time enrollment token for the first admin, as long as nobody has\n"
          "enrolled yet (no roster). Earlier unused tokens stay valid.\n",
          f);
}

static int cmd_token(int argc, char **argv)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"listen", required_argument, 0, 'L'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    const char *datadir = NULL, *listen = DEFAULT_LISTEN;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            datadir = optarg;
            break;
        case 'L':
            listen = optarg;
            break;
        case 'h':
            usage_token(stdout);
            return 0;
        default:
            usage_token(stderr);
            return EXIT_USAGE;
        }
    }
    if (datadir == NULL || optind != argc) {
        usage_token(stderr);
        return EXIT_USAGE;
    }
    harden();
    int ret = EXIT_RUNTIME;
    struct rf_store *st = NULL;
    struct rf_buf b;
    uint32_t version = 0;
    char token[RF_SESSION_TOKEN_B64];
    rf_buf_init_secure(&b, 1 << 20);
    int rc = rf_store_open(&st, datadir);
    if (rc != 0) {
        say_err("cannot open the data directory", rc);
        goto out;
    }
    rc = rf_store_setting_get(st, SET_KDF, &b);
    if (rc != 0) {
        say_err("no instance here; run refuge server init first", rc);
        goto out;
    }
    rf_buf_reset(&b);
    rc = rf_store_roster_latest(st, &version, &b);
    if (rc == 0) {
        say("an admin has already enrolled; new staff are invited from the refuge client");
        goto out;
    }
    if (rc != RF_ERR_NOT_FOUND) {
        say_err("cannot read the roster", rc);
        goto out;
    }
    rc = mint_admin_token(st, token);
    if (rc != 0) {
        say_err("cannot create the enrollment token", rc);
        goto out;
    }
    print_next_steps(datadir, listen, token);
    sodium_memzero(token, sizeof(token));
    ret = 0;
out:
    rf_buf_free(&b);
    if (st)
        rf_store_close(st);
    return ret;
}

int rf_server_admin_main(int argc, char **argv)
{
    static const char usage[] =
        "usage: refuge server init|token|purge|settings|status|backup|restore|migrate|\n"
        "       session-key [--help]\n";
    rf_json_init(); /* jansson's allocator wipes what it frees (lib/json.h) */
    if (argc < 2) {
        fputs(usage, stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "init") == 0)
        return cmd_init(argc - 1, argv + 1);
    if (strcmp(argv[1], "token") == 0)
        return cmd_token(argc - 1, argv + 1);
    if (strcmp(argv[1], "purge") == 0)
        return rf_server_purge_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "settings") == 0)
        return rf_server_settings_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0)
        return rf_server_status_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "backup") == 0)
        return rf_server_backup_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "restore") == 0)
        return rf_server_restore_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "migrate") == 0)
        return rf_server_migrate_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "session-key") == 0)
        return rf_sesskey_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        fputs(usage, stdout);
        fputs("  init   create a new instance in a data directory\n"
              "  token  mint an enrollment token for the first admin\n"
              "  purge  delete expired cases now (retention)\n"
              "  settings  show or change the retention settings\n"
              "  status  how the instance is doing, and what needs doing (--json)\n"
              "  backup  write an archive of the instance (ciphertext only)\n"
              "  restore check an archive and restore it into a new data directory\n"
              "  migrate move the instance into an empty PostgreSQL database\n"
              "  session-key  write or rotate the key several servers share sessions with\n",
              stdout);
        return 0;
    }
    fputs(usage, stderr);
    return EXIT_USAGE;
}

/* ----------------------------------------------------------------- serve */

static void usage_serve(FILE *f)
{
    fputs(
        "usage: refuge serve --data DIR --listen ADDR:PORT [--behind-tls] [--kdf-workers N]\n"
        "                    [--upload-max BYTES] [--session-idle S] [--sessions-max N]\n"
        "                    [--session-quota-bytes B]\n"
        "                    [--onion [--tor-control A] [--onion-no-pow]] [--onion-location URL]\n"
        "Serves the instance in DIR on ADDR:PORT (IPv4 or [IPv6]; port 0 picks a free one).\n"
        "  --behind-tls      a TLS proxy is in front: cookies get the Secure flag\n"
        "  --kdf-workers N   Argon2id derivations at once (default: one per core)\n"
        "  --upload-max B    largest upload in bytes (default 500000000)\n"
        "  --session-idle S  a person's session ends after S idle seconds (default: the\n"
        "                    instance setting, 1800); expired sessions are wiped every\n"
        "                    S/10 seconds (1 to 60)\n"
        "  --sessions-max N  live sessions at once (default: the instance setting, 4096);\n"
        "                    past it a login answers busy\n"
        "  --session-quota-bytes B  bytes a person's session may send a day, refused\n"
        "                    uploads included (default 2147483648)\n"
        "  --session-key F   keep person sessions in the database, sealed under the key in\n"
        "                    F (on a tmpfs, outside DIR; refuge server session-key F), so\n"
        "                    that every process sharing the database and F serves them\n"
        "                    (several processes on PostgreSQL need it)\n"
        "  --user NAME       started as root: serve as NAME, who owns DIR (default: DIR's\n"
        "                    owner; DIR owned by root is refused unless --allow-root)\n"
        "  --allow-root      serve as root, without capabilities (a container alone)\n"
        "  --no-seccomp      no system call filter (debugging only)\n"
        "  --metrics A:P     Prometheus metrics on http://A:P/metrics, a loopback address\n"
        "                    only (e.g. 127.0.0.1:9464); off by default\n"
        "  --onion           also serve as a Tor onion service: asks the local tor over\n"
        "                    its control port (cookie authentication); the key is kept\n"
        "                    in DIR/onion-key, so the address stays the same; the\n"
        "                    address is printed and written to DIR/onion-hostname\n"
        "  --tor-control A   tor's control port: HOST:PORT or unix:/PATH\n"
        "                    (default " RF_ONION_CONTROL_DEFAULT ")\n"
        "  --onion-no-pow    without tor's proof-of-work defence against floods (on by\n"
        "                    default where tor has it; it asks nothing of a person)\n"
        "  --onion-location URL  pages reached by another name than a .onion carry\n"
        "                    Onion-Location: URL (Tor Browser then offers the onion)\n"
        "Stops cleanly on SIGINT or SIGTERM.\n",
        f);
}

struct serve_opts {
    const char *datadir;
    const char *listen;
    int behind_tls;
    uint64_t kdf_workers;       /* 0: default */
    uint64_t upload_max;        /* 0: instance setting */
    uint64_t session_idle;      /* 0: instance setting */
    uint64_t sessions_max;      /* 0: instance setting */
    uint64_t quota_bytes;       /* --session-quota-bytes; 0: RF_SESSION_QUOTA_BYTES */
    int onion;                  /* --onion */
    const char *tor_control;    /* --tor-control */
    int onion_no_pow;           /* --onion-no-pow */
    const char *onion_location; /* --onion-location */
    const char *metrics;        /* --metrics ADDR:PORT (loopback), or NULL */
    const char *session_key;    /* --session-key FILE, or NULL */
    struct rf_sandbox_opts sandbox;
};

/* An Onion-Location value: an http(s) URL of a .onion, printable, no
 * spaces (it goes into a header as is). */
static int onion_location_ok(const char *url)
{
    const char *host = strncmp(url, "http://", 7) == 0    ? url + 7
                       : strncmp(url, "https://", 8) == 0 ? url + 8
                                                          : NULL;
    if (host == NULL || strlen(url) > 512)
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return 0;
    size_t hn = strcspn(host, ":/?#");
    return hn > 6 && strncmp(host + hn - 6, ".onion", 6) == 0;
}

static int parse_serve(int argc, char **argv, struct serve_opts *o)
{
    static const struct option opts[] = {
        {"data", required_argument, 0, 'd'},
        {"listen", required_argument, 0, 'L'},
        {"behind-tls", no_argument, 0, 't'},
        {"kdf-workers", required_argument, 0, 'k'},
        {"upload-max", required_argument, 0, 'u'},
        {"session-idle", required_argument, 0, 'I'},
        {"sessions-max", required_argument, 0, 'M'},
        {"session-quota-bytes", required_argument, 0, 'Q'},
        {"user", required_argument, 0, 'U'},
        {"allow-root", no_argument, 0, 'R'},
        {"no-seccomp", no_argument, 0, 'S'},
        {"onion", no_argument, 0, 'O'},
        {"tor-control", required_argument, 0, 'C'},
        {"onion-no-pow", no_argument, 0, 'P'},
        {"onion-location", required_argument, 0, 'W'},
        {"metrics", required_argument, 0, 'X'},
        {"session-key", required_argument, 0, 'K'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0},
    };
    int c;
    memset(o, 0, sizeof(*o));
    o->tor_control = RF_ONION_CONTROL_DEFAULT;
    int control_given = 0;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            o->datadir = optarg;
            break;
        case 'L':
            o->listen = optarg;
            break;
        case 't':
            o->behind_tls = 1;
            break;
        case 'k':
            if (parse_u64(optarg, 1, 256, &o->kdf_workers) != 0) {
                say("--kdf-workers takes a number from 1 to 256");
                return EXIT_USAGE;
            }
            break;
        case 'u':
            if (parse_u64(optarg, 1, UINT64_MAX / 2, &o->upload_max) != 0) {
                say("--upload-max takes a number of bytes");
                return EXIT_USAGE;
            }
            break;
        case 'I':
            if (parse_u64(optarg, 1, 86400, &o->session_idle) != 0) {
                say("--session-idle takes seconds, from 1 to 86400");
                return EXIT_USAGE;
            }
            break;
        case 'M':
            if (parse_u64(optarg, 1, 1u << 22, &o->sessions_max) != 0) {
                say("--sessions-max takes a number from 1 to 4194304");
                return EXIT_USAGE;
            }
            break;
        case 'Q':
            if (parse_u64(optarg, 1, INT64_MAX, &o->quota_bytes) != 0) {
                say("--session-quota-bytes takes a number of bytes");
                return EXIT_USAGE;
            }
            break;
        case 'U':
            o->sandbox.user = optarg;
            break;
        case 'R':
            o->sandbox.allow_root = 1;
            break;
        case 'S':
            o->sandbox.no_seccomp = 1;
            break;
        case 'O':
            o->onion = 1;
            break;
        case 'C':
            if (rf_onion_control_check(optarg) != 0) {
                say("--tor-control takes IP:PORT (e.g. 127.0.0.1:9051 or [::1]:9051) or "
                    "unix:/PATH (e.g. unix:/run/tor/control)");
                return EXIT_USAGE;
            }
            o->tor_control = optarg;
            control_given = 1;
            break;
        case 'P':
            o->onion_no_pow = 1;
            break;
        case 'W':
            if (!onion_location_ok(optarg)) {
                say("--onion-location takes the onion's URL, e.g. "
                    "http://abc...xyz.onion/ (the address refuge serve --onion printed)");
                return EXIT_USAGE;
            }
            o->onion_location = optarg;
            break;
        case 'X':
            if (rf_metrics_addr_check(optarg) != 0) {
                say("--metrics takes a loopback ADDR:PORT, e.g. 127.0.0.1:9464 or [::1]:9464: "
                    "the metrics are never served to the network (scrape them on this host)");
                return EXIT_USAGE;
            }
            o->metrics = optarg;
            break;
        case 'K':
            o->session_key = optarg;
            break;
        case 'h':
            usage_serve(stdout);
            return -1;
        default:
            usage_serve(stderr);
            return EXIT_USAGE;
        }
    }
    if (o->datadir == NULL || o->listen == NULL || optind != argc) {
        usage_serve(stderr);
        return EXIT_USAGE;
    }
    if (!o->onion && (o->onion_no_pow || control_given)) {
        say("--tor-control and --onion-no-pow go with --onion");
        return EXIT_USAGE;
    }
    return 0;
}

/* Before the user switch: the control connection, and what the sandbox must
 * leave open for it (the cookie's group and file, the port, the family). */
static int onion_prepare(struct serve_opts *o, struct rf_onion **on)
{
    if (!o->onion)
        return 0;
    int rc = rf_onion_new(on, o->tor_control, o->datadir, !o->onion_no_pow);
    if (rc != 0)
        return rc;
    gid_t g = rf_onion_cookie_gid(*on);
    o->sandbox.keep_group = g != (gid_t)-1;
    o->sandbox.keep_gid = g;
    o->sandbox.read_file = rf_onion_cookie_file(*on);
    o->sandbox.connect_port = rf_onion_control_port(*on);
    o->sandbox.net_family = strncmp(o->tor_control, "unix:", 5) == 0 ? AF_UNIX
                            : o->tor_control[0] == '['               ? AF_INET6
                                                                     : AF_INET;
    return 0;
}

/* Reads the instance settings into srv (kdf_params allocated here). */
static int load_settings(struct rf_srv *srv)
{
    struct rf_buf b;
    rf_buf_init_secure(&b, 4096);
    int rc = rf_store_setting_get(srv->store, SET_KDF, &b);
    if (rc != 0) {
        say_err("no instance settings; run refuge server init first", rc);
        goto out;
    }
    srv->kdf_params = sodium_malloc(sizeof(*srv->kdf_params));
    if (srv->kdf_params == NULL) {
        rc = RF_ERR_NOMEM;
        say_err("cannot start", rc);
        goto out;
    }
    rc = decode_kdf(&b, srv->kdf_params);
    if (rc != 0) {
        say_err("the instance's KDF setting is damaged", rc);
        goto out;
    }
    rf_buf_reset(&b);
    rc = rf_store_setting_get(srv->store, SET_LANG, &b);
    if (rc == 0 && b.len == 1 && b.data[0] < RF_LANG_COUNT) {
        srv->default_lang = (enum rf_lang)b.data[0];
    } else if (rc != 0 && rc != RF_ERR_NOT_FOUND) {
        say_err("cannot read the instance language", rc);
        goto out;
    }
    rf_buf_reset(&b);
    limits_default(&srv->limits, srv->cpus);
    rc = rf_store_setting_get(srv->store, SET_LIMITS, &b);
    if (rc == 0) {
        struct rf_limits l = srv->limits;
        rc = decode_limits(&b, &l);
        if (rc != 0) {
            say_err("the instance's limits setting is damaged", rc);
            goto out;
        }
        srv->limits = l;
    } else if (rc != RF_ERR_NOT_FOUND) {
        say_err("cannot read the instance limits", rc);
        goto out;
    }
    rc = 0;
out:
    rf_buf_free(&b);
    return rc;
}

/* SQLite serves one process per data directory: its sessions, its KDF
 * limiter and its quotas are in its memory, and SQLite has one writer.
 * DIR/serve.lock is flock()ed (exclusive) for the life of the server, so a
 * second `refuge serve` on the same DIR is refused; the lock dies with the
 * process, even on SIGKILL. A PostgreSQL store takes no such lock: several
 * processes share it (docs/scale-out.md). */
static int serve_lock(const struct rf_srv *srv, int *fd)
{
    if (strcmp(rf_store_backend(srv->store), "sqlite") != 0)
        return 0;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s/serve.lock", srv->datadir) >= sizeof(path))
        return RF_ERR_LIMIT;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0) {
        say_err("cannot open DIR/serve.lock", RF_ERR_IO);
        return RF_ERR_IO;
    }
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        say("another refuge serve is serving this data directory: SQLite serves one process "
            "(stop the other; several processes need PostgreSQL, docs/scale-out.md)");
        return RF_ERR_BUSY;
    }
    return 0;
}

/* onion_line: "onion service: ..." or empty. */
static void print_listening(const char *listen, uint16_t port, const char *onion_line)
{
    const char *colon = listen[0] == '[' ? strstr(listen, "]:") : strrchr(listen, ':');
    int hostlen = colon ? (int)(colon - listen) + (listen[0] == '[') : (int)strlen(listen);
    printf("listening on http://%.*s:%u\n%s", hostlen, listen, (unsigned)port, onion_line);
    fflush(stdout);
}

int rf_serve_main(int argc, char **argv)
{
    rf_json_init(); /* before any thread: jansson's allocator is process-global (lib/json.h) */
    struct serve_opts o;
    int prc = parse_serve(argc, argv, &o);
    if (prc != 0)
        return prc < 0 ? 0 : prc;
    harden();
    /* the CPUs this process may use size its pools; /proc and /sys are out
     * of reach once the sandbox is up */
    struct rf_cpus cpus;
    rf_cpus_probe(&cpus);
    /* tor's control port is reached before the user switch (onion.h); the
     * user switch and Landlock come while this is the only thread */
    struct rf_onion *onion = NULL;
    struct rf_sesskey *sesskey = NULL;
    struct rf_sandbox sb;
    prc = 0;
    /* the session key: read (and kept open for rotations) while /run is
     * still reachable and before the user switch */
    if (o.session_key != NULL) {
        char why[256];
        prc = rf_sesskey_load(&sesskey, o.session_key, o.datadir, why, sizeof(why));
        if (prc != 0) {
            fprintf(stderr, "refuge: --session-key %s: %s\n", o.session_key, why);
            return EXIT_USAGE;
        }
    }
    prc = onion_prepare(&o, &onion);
    /* a store on PostgreSQL: the sandbox lets it reach that server alone */
    if (prc == 0 && rf_store_net(o.datadir, &o.sandbox.db_family, &o.sandbox.db_port) != 0) {
        say("the PostgreSQL URL in DIR/database must name numeric addresses of one family on "
            "one port (e.g. postgresql://refuge@10.0.0.5:5432/refuge, or with a standby "
            "postgresql://refuge@10.0.0.5,10.0.0.6/refuge?target_session_attrs=read-write): "
            "the sandboxed server reaches that port only, and resolves no names");
        prc = RF_ERR_INVALID;
    }
    if (prc == 0)
        prc = rf_sandbox_drop(&sb, o.datadir, o.listen, &o.sandbox);
    if (prc == 0 && onion != NULL)
        prc = rf_onion_auth(onion);
    if (prc == 0)
        prc = rf_sandbox_landlock(&sb, o.datadir, &o.sandbox);
    if (prc != 0) {
        rf_onion_free(onion);
        rf_sesskey_free(sesskey);
        return prc == RF_ERR_INVALID ? EXIT_USAGE : EXIT_RUNTIME;
    }

    /* Block the stop signals in every thread; the main thread waits for them. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int ret = EXIT_RUNTIME;
    int pages_up = 0, api_up = 0;
    struct rf_http *http = NULL;
    struct rf_purger *purger = NULL;
    struct rf_metrics *metrics = NULL;
    struct rf_status_writer *status = NULL;
    struct rf_srv srv;
    int serve_lock_fd = -1;
    memset(&srv, 0, sizeof(srv));
    srv.datadir = o.datadir;
    srv.cpus = cpus.usable;
    srv.behind_tls = o.behind_tls;
    srv.onion_location = o.onion_location;
    srv.sesskey = sesskey;

    int rc = rf_store_open(&srv.store, o.datadir);
    if (rc != 0) {
        say_err("cannot open the data directory", rc);
        goto out;
    }
    rc = serve_lock(&srv, &serve_lock_fd);
    if (rc != 0)
        goto out;
    rc = load_settings(&srv);
    if (rc != 0)
        goto out;
    if (o.kdf_workers)
        srv.limits.kdf_concurrent = (unsigned)o.kdf_workers;
    if (o.upload_max) {
        srv.limits.upload_max = o.upload_max;
        if (srv.limits.api_body_max < o.upload_max)
            srv.limits.api_body_max = o.upload_max;
    }
    rc = rf_committer_new(&srv.committer, srv.store);
    if (rc != 0) {
        say_err("cannot start the committer", rc);
        goto out;
    }
    /* large uploads are written behind the HTTP thread that seals them */
    rc = rf_store_blob_writers(srv.store, srv.cpus > 1 ? 2 : 1);
    if (rc != 0) {
        say_err("cannot start the blob writers", rc);
        goto out;
    }
    rc = rf_purger_start(&purger, srv.store); /* retention: now, then daily */
    if (rc != 0) {
        say_err("cannot start the purge thread", rc);
        goto out;
    }
    /* Logins in a burst wait their turn while the expected wait is short
     * (KDF_WAIT_MAX_US); the slots only cap memory (kdfpool.h) */
    unsigned kdf_slots =
        srv.limits.kdf_queue > KDF_QUEUE_MIN ? srv.limits.kdf_queue : KDF_QUEUE_MIN;
    rc = rf_kdfpool_new(&srv.kdf, srv.kdf_params, srv.limits.kdf_concurrent, kdf_slots);
    if (rc == 0)
        rc = rf_kdfpool_set_wait_max(srv.kdf, KDF_WAIT_MAX_US);
    if (rc != 0) {
        say_err("cannot start the KDF workers", rc);
        goto out;
    }
    rf_log_num(RF_LOG_INFO, "CPUs in the affinity mask", "cpus", cpus.affinity);
    rf_log_num(RF_LOG_INFO, "cgroup CPU quota (0: none)", "cpus", cpus.quota);
    rf_log_num(RF_LOG_INFO, "KDF workers", "threads", srv.limits.kdf_concurrent);
    rf_log_num(RF_LOG_INFO, "one codename derivation", "ms", rf_kdfpool_mean_us(srv.kdf) / 1000);
    if (o.session_idle)
        srv.limits.session_idle_s = (unsigned)o.session_idle;
    if (o.sessions_max)
        srv.limits.sessions_max = (unsigned)o.sessions_max;
    rc = rf_sessions_new(&srv.sessions, srv.limits.sessions_max, srv.limits.session_idle_s);
    if (rc != 0) {
        say_err("cannot allocate the session table", rc);
        goto out;
    }
    if (o.quota_bytes)
        rf_sessions_set_quota(srv.sessions, RF_SESSION_QUOTA_MSGS, o.quota_bytes);
    if (srv.sesskey != NULL) {
        rc = rf_sessions_share(srv.sessions, srv.store, srv.sesskey);
        if (rc != 0) {
            say_err("cannot share sessions through the store", rc);
            goto out;
        }
        rf_log_info("sessions: in the database, sealed under the session key (--session-key)");
    } else if (strcmp(rf_store_backend(srv.store), "sqlite") != 0) {
        rf_log_warn("sessions: in this process's memory only; several processes on one "
                    "database need --session-key (docs/scale-out.md)");
    }
    /* expired sessions (a person who walked away) are wiped on a timer */
    rc = rf_sessions_reaper_start(srv.sessions, rf_sessions_reap_period(srv.limits.session_idle_s));
    if (rc != 0) {
        say_err("cannot start the session reaper", rc);
        goto out;
    }
    srv.csrf_key = sodium_malloc(32);
    if (srv.csrf_key == NULL) {
        rc = RF_ERR_NOMEM;
        say_err("cannot start", rc);
        goto out;
    }
    randombytes_buf(srv.csrf_key, 32);
    rc = rf_pages_init(&srv);
    if (rc != 0) {
        say_err("cannot prepare the pages", rc);
        goto out;
    }
    pages_up = 1;
    rc = rf_api_init(&srv);
    if (rc != 0) {
        say_err("cannot prepare the staff API", rc);
        goto out;
    }
    api_up = 1;

    rf_http_set_fallbacks(rf_pages_not_found, rf_api_not_found, rf_pages_refuse);
    rf_http_set_page_csp(rf_tmpl_csp());
    const struct rf_route *const tables[] = {rf_page_routes, rf_api_routes};
    const size_t counts[] = {rf_page_routes_n, rf_api_routes_n};
    /* the metrics listener and the status file's thread, before seccomp;
     * up before the line listens, so a client that reaches it finds them */
    if (o.metrics != NULL &&
        (rc = rf_metrics_start(&metrics, &srv, o.metrics, tables, counts, 2)) != 0) {
        say_err("cannot listen for metrics on that address", rc);
        goto out;
    }
    rc = rf_status_writer_start(&status, &srv, o.metrics);
    if (rc != 0) {
        say_err("cannot write the status file in the data directory", rc);
        goto out;
    }
    rc = rf_http_start(&http, &srv, o.listen, tables, counts, 2);
    if (rc == RF_ERR_INVALID) {
        say("--listen takes ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080");
        ret = EXIT_USAGE;
        goto out;
    }
    if (rc != 0) {
        say_err("cannot listen on that address", rc);
        goto out;
    }
    char onion_line[160] = "";
    if (onion != NULL) {
        rc = rf_onion_publish(onion, o.listen, rf_http_port(http));
        if (rc != 0)
            goto out;
        snprintf(onion_line, sizeof(onion_line),
                 "onion service: http://%s/ (proof-of-work defence %s)\n", rf_onion_address(onion),
                 rf_onion_pow(onion) ? "on" : "off");
        rc = rf_onion_watch(onion); /* a thread: before seccomp */
        if (rc != 0)
            goto out;
    }
    rc = rf_sandbox_lock(&sb, &o.sandbox); /* seccomp on every thread */
    if (rc != 0)
        goto out;
    print_listening(o.listen, rf_http_port(http), onion_line);
    if (metrics != NULL) {
        printf("metrics on http://%s/metrics\n", o.metrics);
        fflush(stdout);
    }
    rf_log_info("serving");

    int sig = 0;
    while (sigwait(&stop, &sig) != 0)
        ;
    rf_log_info("stopping");
    ret = 0;
out:
    rf_status_writer_stop(status);
    rf_metrics_stop(metrics);
    rf_onion_free(onion); /* tor takes the service down with the connection */
    rf_http_stop(http);   /* waits for suspended requests, whose workers still run */
    rf_kdfpool_free(srv.kdf);
    rf_purger_stop(purger);
    rf_committer_free(srv.committer);
    if (api_up)
        rf_api_free(&srv);
    if (pages_up)
        rf_pages_free();
    rf_sessions_free(srv.sessions);
    if (srv.store)
        rf_store_close(srv.store);
    sodium_free(srv.csrf_key);
    sodium_free(srv.kdf_params);
    rf_sesskey_free(sesskey);
    if (serve_lock_fd >= 0)
        close(serve_lock_fd); /* and its flock */
    return ret;
}
