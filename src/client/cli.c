/*
 * cli.c - the staff client's front door: git-style dispatch to one
 * subcommand per file (cmd.h), `refuge help`, and what every command shares
 * (error printing, case id syntax). Exit codes: 0 done, 1 failed, 2 usage.
 *
 * Before anything else the process is made undumpable with no core file:
 * decrypted plaintext and secret keys pass through its memory.
 */
#include "client/client.h"
#include "client/cmd.h"
#include "client/evop.h"
#include "client/keyring.h"
#include "client/out.h"
#include "client/trust.h"
#include "lib/err.h"
#include "store/store.h"

#include <stdlib.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>

struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
};

static const struct command commands[] = {
    {"desk", rf_cmd_desk, "your cases in a web browser, served on this computer only"},
    {"init", rf_cmd_init, "set up this computer: make your keys and enroll with the server"},
    {"sync", rf_cmd_sync, "verify the roster, send queued events, download what is new"},
    {"cases", rf_cmd_cases, "list cases from the local case database (with filters)"},
    {"show", rf_cmd_show, "show one case's thread and state, decrypted"},
    {"reply", rf_cmd_reply, "send an encrypted reply to the person behind a case"},
    {"files", rf_cmd_files, "decrypt a case's files into a directory"},
    {NULL, rf_cmd_event, NULL}, /* here: the case-event ops of evop.h, in its order */
    {"team", rf_cmd_team, "the team's stages and checklist (show, stages, checklist)"},
    {"staff", rf_cmd_staff, "the team: invite, list, approve, remove"},
    {"fingerprint", rf_cmd_fingerprint, "your signing key's fingerprint"},
    {"unlock", rf_cmd_unlock, "type your passphrase once for the next minutes (--for MINUTES)"},
    {"lock", rf_cmd_lock, "forget the key `refuge unlock` kept"},
    {"rewrap", rf_cmd_rewrap, "give newly approved caseworkers access to older content"},
    {"audit", rf_cmd_audit, "verify the server's audit log (audit verify)"},
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

/* What runs `refuge name`: a command, or rf_cmd_event for a case op. */
static int (*command(const char *name))(int, char **)
{
    for (size_t i = 0; i < NCOMMANDS; i++)
        if (commands[i].name && strcmp(name, commands[i].name) == 0)
            return commands[i].run;
    return rf_evop_in(RF_EVOP_CASE, name) ? rf_cmd_event : NULL;
}

static void usage(FILE *f)
{
    fputs("usage: refuge COMMAND [OPTIONS]\n\nCommands for caseworkers:\n", f);
    for (size_t i = 0; i < NCOMMANDS; i++) {
        if (commands[i].name) {
            fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
            continue;
        }
        for (size_t j = 0; j < rf_evops_n; j++)
            if (rf_evops[j].scope == RF_EVOP_CASE)
                fprintf(f, "  %-12s %s\n", rf_evops[j].name, rf_evops[j].summary);
    }
    fputs("\nServer commands: refuge serve, refuge server init (see `refuge serve --help`).\n"
          "`refuge COMMAND --help` explains a command. Settings and keys live in $REFUGE_HOME\n"
          "(default ~/.config/refuge). See refuge(1).\n",
          f);
}

static void harden(void)
{
    struct rlimit no_core = {0, 0};
    setrlimit(RLIMIT_CORE, &no_core);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

int rf_client_main(int argc, char **argv)
{
    harden();
    rf_out_init();
    if (argc < 2) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 ||
        (strcmp(cmd, "help") == 0 && argc == 2)) {
        usage(stdout);
        return RF_EXIT_OK;
    }
    if (strcmp(cmd, "--version") == 0) {
        puts("refuge 0.1.0");
        return RF_EXIT_OK;
    }
    if (strcmp(cmd, "help") == 0) {
        char help[] = "--help";
        char *args[] = {argv[2], help, NULL};
        int (*run)(int, char **) = command(argv[2]);
        if (run)
            return run(2, args);
        fputs("refuge: no such command; see `refuge --help`\n", stderr);
        return RF_EXIT_USAGE;
    }
    int (*run)(int, char **) = command(cmd);
    if (run)
        return run(argc - 1, argv + 1);
    fputs("refuge: unknown command: ", stderr);
    rf_out_safe(stderr, cmd, 0);
    fputs("\n", stderr);
    usage(stderr);
    return RF_EXIT_USAGE;
}

void rf_cmd_err(const char *what, const char *why)
{
    fprintf(stderr, "refuge: %s: %s\n", what, why);
}

void rf_cmd_errc(const char *what, int rc)
{
    rf_cmd_err(what, rf_strerror(rc));
}

void rf_cmd_net_err(const char *what, const struct rf_net *n)
{
    rf_cmd_err(what, rf_net_error(n));
}

void rf_cmd_plain_http(const char *url, const char *override)
{
    fputs("refuge: refused to talk plain http:// to ", stderr);
    rf_out_safe(stderr, url, 0);
    fprintf(stderr,
            ": anyone on the way could read and change what the server says.\n"
            "refuge: Nothing was sent. Use the server's https:// address, or its .onion address\n"
            "refuge: (through Tor). Only if a TLS-terminating proxy on this same computer\n"
            "refuge: forwards to it, allow it with %s.\n",
            override);
}

int rf_cmd_case_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RF_CASE_ID_LEN)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

int rf_ctx_open(struct rf_ctx *x, int net)
{
    memset(x, 0, sizeof(*x));
    if (rf_home_open(&x->h, &x->k) != 0)
        goto fail;
    if (rf_cache_open(&x->c, &x->h) != 0) {
        rf_cmd_err("cannot open the local cache", "check the permissions of the refuge home");
        goto fail;
    }
    if (rf_local_new(&x->l, x->c, x->k) != 0) {
        rf_cmd_err("cannot open the local case database", "the cache is damaged");
        goto fail;
    }
    if (net) {
        int rc =
            rf_net_open(&x->n, x->h.server, x->k, x->h.insecure_http ? RF_NET_INSECURE_HTTP : 0);
        if (rc == RF_ERR_PROTOCOL)
            rf_cmd_plain_http(x->h.server, "\"insecure_http\": true in config.json");
        else if (rc != 0)
            rf_cmd_err("cannot start", "bad server URL in config.json");
        if (rc != 0)
            goto fail;
    }
    return 0;
fail:
    rf_ctx_close(x);
    return -1;
}

struct overlap {
    int (*fn)(struct rf_cache *c, void *arg);
    struct rf_cache *c;
    void *arg;
    int rc;
};

static void *overlap_run(void *v)
{
    struct overlap *o = v;
    o->rc = o->fn(o->c, o->arg);
    return NULL;
}

int rf_ctx_open_overlap(struct rf_ctx *x, int (*fn)(struct rf_cache *c, void *arg), void *arg,
                        int *fn_rc)
{
    memset(x, 0, sizeof(*x));
    *fn_rc = RF_ERR_CANCELLED;
    if (rf_home_open(&x->h, NULL) != 0)
        goto fail;
    if (rf_cache_open(&x->c, &x->h) != 0) {
        rf_cmd_err("cannot open the local cache", "check the permissions of the refuge home");
        goto fail;
    }
    /* fn has the cache to itself while this thread unlocks the key file
     * (nothing here touches the cache until the join); with the keys in the
     * session keyring there is no Argon2id to overlap: fn is not run
     * (*fn_rc RF_ERR_CANCELLED), the caller reads what it needs itself */
    struct overlap o = {fn, x->c, arg, RF_ERR_CANCELLED};
    pthread_t th;
    int held = rf_keyring_held(&x->h);
    int started = !held && pthread_create(&th, NULL, overlap_run, &o) == 0;
    int rc = rf_home_keys_load(&x->h, &x->k);
    if (started)
        pthread_join(th, NULL);
    else if (!held)
        overlap_run(&o);
    *fn_rc = o.rc;
    if (rc != 0)
        goto fail;
    if (rf_local_new(&x->l, x->c, x->k) != 0) {
        rf_cmd_err("cannot open the local case database", "the cache is damaged");
        goto fail;
    }
    return 0;
fail:
    rf_ctx_close(x);
    return -1;
}

void rf_ctx_close(struct rf_ctx *x)
{
    rf_local_free(x->l);
    rf_cache_close(x->c);
    rf_net_free(x->n);
    rf_home_keys_free(x->k);
    memset(x, 0, sizeof(*x));
}

static void not_on_roster(struct rf_ctx *x, const char *what)
{
    if (rf_trust_was_member(x->c, x->k->sign_pk))
        rf_cmd_err(what, "you are not on the team's roster any more: an admin removed your key. "
                         "Nothing you write reaches the team; talk to your admin");
    else
        rf_cmd_err(what, "you are enrolled but not on the roster yet; ask an admin to approve you "
                         "(`refuge staff approve`, after comparing your `refuge fingerprint`)");
}

void rf_cmd_forbidden(struct rf_ctx *x, const char *what, int admin_only)
{
    struct rf_roster *ro = NULL;
    int idx = -1;
    if (rf_trust_roster_cached(x->c, x->h.pinned, x->k, &ro) == 0)
        idx = rf_roster_find(ro, x->k->sign_pk);
    if (idx >= 0 && admin_only)
        rf_cmd_err(what, "only an admin of the team can do this");
    else if (idx >= 0)
        rf_cmd_net_err(what, x->n);
    else
        not_on_roster(x, what);
    free(ro);
}

int rf_cmd_on_roster(struct rf_ctx *x, const struct rf_roster *ro)
{
    if (rf_roster_find(ro, x->k->sign_pk) >= 0)
        return 1;
    not_on_roster(x, "refused");
    return 0;
}

int rf_cmd_fp_equal(const char *a, const char *b)
{
    for (;;) {
        while (*a == ' ')
            a++;
        while (*b == ' ')
            b++;
        if (*a != *b)
            return 0;
        if (!*a)
            return 1;
        a++;
        b++;
    }
}
