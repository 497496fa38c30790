/*
 * cmd_unlock.c - `refuge unlock [--for MINUTES]` and `refuge lock`: the
 * key file unlocked once and kept in the kernel's session keyring for a
 * while (keyring.h), so the commands that follow ask for no passphrase and
 * skip the key file's Argon2id; forgotten when the time is up, on
 * `refuge lock`, or when the machine stops. Never written to disk.
 */
#include "client/cmd.h"
#include "client/home.h"
#include "client/keyring.h"
#include "lib/err.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void usage_unlock(FILE *f)
{
    fprintf(f,
            "usage: refuge unlock [--for MINUTES]\n"
            "\n"
            "Asks for your passphrase once and keeps your unlocked key in this login\n"
            "session's kernel keyring for MINUTES (default %d, at most %d): until then, refuge\n"
            "commands started from this session ask for no passphrase. Nothing is written to\n"
            "disk; the key is forgotten when the time is up, on `refuge lock`, or when the\n"
            "computer stops. Any program you run in this session could use it meanwhile:\n"
            "lock before you step away (docs/staff.md).\n",
            RF_KEYRING_MINUTES_DEFAULT, RF_KEYRING_MINUTES_MAX);
}

int rf_cmd_unlock(int argc, char **argv)
{
    static const struct option opts[] = {
        {"for", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    long minutes = RF_KEYRING_MINUTES_DEFAULT;
    int ch;
    char *end;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "f:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'f':
            minutes = strtol(optarg, &end, 10);
            if (end == optarg || *end || minutes < 1 || minutes > RF_KEYRING_MINUTES_MAX) {
                rf_cmd_err("bad --for", "give the minutes as a whole number from 1 to 720");
                return RF_EXIT_USAGE;
            }
            break;
        case 'h':
            usage_unlock(stdout);
            return RF_EXIT_OK;
        default:
            usage_unlock(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage_unlock(stderr);
        return RF_EXIT_USAGE;
    }
    struct rf_home h;
    struct rf_staff_keys *k = NULL;
    if (rf_home_open(&h, NULL) != 0 || rf_home_keys_unlock(&h, &k, (unsigned)minutes) != 0)
        return RF_EXIT_FAIL;
    rf_home_keys_free(k);
    time_t until = time(NULL) + minutes * 60;
    struct tm tm;
    char when[32] = "";
    if (gmtime_r(&until, &tm))
        strftime(when, sizeof(when), "%H:%M UTC", &tm);
    printf("Unlocked for %ld minute%s (until %s). `refuge lock` forgets the key sooner.\n", minutes,
           minutes == 1 ? "" : "s", when);
    return RF_EXIT_OK;
}

int rf_cmd_lock(int argc, char **argv)
{
    if (argc > 1) {
        int help = strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0;
        fputs("usage: refuge lock\n\n"
              "Forgets the key `refuge unlock` kept in this session's keyring: the next\n"
              "command asks for your passphrase again.\n",
              help ? stdout : stderr);
        return help ? RF_EXIT_OK : RF_EXIT_USAGE;
    }
    struct rf_home h;
    if (rf_home_locate(&h) != 0) {
        fputs("refuge: cannot find a home directory; set REFUGE_HOME\n", stderr);
        return RF_EXIT_FAIL;
    }
    int rc = rf_keyring_drop(&h);
    if (rc == RF_ERR_NOT_FOUND) {
        puts("Nothing was unlocked; the next command asks for your passphrase.");
        return RF_EXIT_OK;
    }
    if (rc != 0) {
        rf_cmd_errc("cannot forget the key", rc);
        return RF_EXIT_FAIL;
    }
    puts("Locked: the key was forgotten; the next command asks for your passphrase.");
    return RF_EXIT_OK;
}
