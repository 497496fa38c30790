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
#include "client/out.h"
#include "lib/err.h"
#include "store/store.h"

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
    {"init", rf_cmd_init, "set up this computer: make your keys and enroll with the server"},
    {"sync", rf_cmd_sync, "verify the roster and download new messages, files and replies"},
    {"cases", rf_cmd_cases, "list cases from the local cache"},
    {"show", rf_cmd_show, "show one case's thread, decrypted"},
    {"reply", rf_cmd_reply, "send an encrypted reply to the person behind a case"},
    {"files", rf_cmd_files, "decrypt a case's files into a directory"},
};

static void usage(FILE *f)
{
    fputs("usage: refuge COMMAND [OPTIONS]\n\nCommands for caseworkers:\n", f);
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-7s %s\n", commands[i].name, commands[i].summary);
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
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
            if (strcmp(argv[2], commands[i].name) == 0)
                return commands[i].run(2, args);
        fputs("refuge: no such command; see `refuge --help`\n", stderr);
        return RF_EXIT_USAGE;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(cmd, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
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
