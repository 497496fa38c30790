/*
 * cmd_init.c - `refuge init --server URL --token TOKEN --name NAME`:
 * generate this caseworker's keys, encrypt them under a passphrase (asked
 * twice), and enroll with the server. When the server has no roster yet
 * this caseworker is the first admin: they sign roster v1 listing only
 * themselves, send it with the enrollment, and pin their own signing key.
 * Otherwise the first admin's key is pinned from the roster's version 1,
 * and only after it was compared (issue 13, finding 2): against the pin an
 * invite token carries (lib/invite.h), against --admin-fingerprint, or by
 * the newcomer on the terminal (y/N, default no). Without a terminal and
 * without either, init refuses: it never pins a key nobody compared. The
 * server serves the roster to enrolled keys only, so the comparison comes
 * right after enrolling; a refusal pins nothing, writes no config.json and
 * removes the key file. A token that carries a pin comes from an existing
 * team, so a server that answers "no roster" to its holder is lying, and
 * init refuses before enrolling rather than make them a first admin.
 *
 * Nothing is left half-way: the key file is written before enrolling (so
 * keys the server accepted are never lost) and removed if enrolling fails;
 * config.json, which marks the home as set up, is written last.
 */
#include "client/cmd.h"
#include "client/out.h"
#include "client/pass.h"
#include "client/trust.h"
#include "lib/err.h"
#include "lib/invite.h"
#include "lib/roster.h"

#include <getopt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void usage(FILE *f)
{
    fputs("usage: refuge init --server URL --token TOKEN --name NAME [--admin-fingerprint FP]\n"
          "\n"
          "Sets up this computer for a caseworker: makes your keys, protects them with a\n"
          "passphrase (asked twice; or the first line of $REFUGE_PASSPHRASE_FILE) and enrolls\n"
          "them with the server using a one-time token from your admin (or from\n"
          "`refuge server init` for the first admin). Prints your keys' fingerprint.\n"
          "\n"
          "Before anything is enrolled, the team's first admin as the server shows them is\n"
          "checked: against the invite token from `refuge staff invite` (it carries the\n"
          "check), against --admin-fingerprint, or, on a terminal, by you (y/N).\n"
          "\n"
          "  --server URL              the server, e.g. https://refuge.example.org\n"
          "  --token TOKEN             the one-time token: an invite token from your admin,\n"
          "                            or the first admin's token from `refuge server init`\n"
          "  --name NAME               your name as colleagues and replies show it\n"
          "  --admin-fingerprint FP    the first admin's fingerprint, read to you in person\n"
          "                            or by phone (not for the first admin)\n"
          "  --insecure-http           allow plain http:// to a host that is neither this\n"
          "                            computer nor a .onion address, now and later (only\n"
          "                            for a TLS-terminating proxy on this same computer)\n",
          f);
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > RF_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static json_t *b64(const uint8_t *p, size_t n)
{
    char s[RF_ROSTER_MAX_BYTES * 4 / 3 + 8];
    if (rf_b64_encode(s, sizeof(s), p, n) != 0)
        return NULL;
    return json_string(s);
}

/* The team's first admin as the server's roster version 1 lists them: the
 * member whose key signed it (an admin). */
static int first_admin_of(json_t *j, struct rf_member *m)
{
    uint8_t *raw = malloc(RF_ROSTER_MAX_BYTES);
    struct rf_roster *ro = malloc(sizeof(*ro));
    size_t n = 0;
    int rc = RF_ERR_ROSTER;
    const char *v1 = json_string_value(json_array_get(json_object_get(j, "chain"), 0));
    if (raw && ro && v1 && rf_b64_decode(raw, RF_ROSTER_MAX_BYTES, &n, v1, strlen(v1)) == 0 &&
        rf_roster_parse(ro, raw, n) == 0 && ro->version == 1 &&
        rf_roster_verify(ro, raw, n, NULL, NULL, 0, ro->signer_pk) == 0) {
        int i = rf_roster_find(ro, ro->signer_pk);
        if (i >= 0 && ro->members[i].role == RF_ROLE_ADMIN) {
            *m = ro->members[i];
            rc = 0;
        }
    }
    if (rc != 0)
        rf_cmd_err("cannot check the first admin", "the server's roster version 1 is invalid");
    free(raw);
    free(ro);
    return rc;
}

/* Asks on the terminal; 1 only for an explicit yes. */
static int confirm_first_admin(const struct rf_member *m, const char *fp)
{
    char line[32];
    fputs("The team on this server was founded by \"", stdout);
    rf_out_safe(stdout, m->name, 0);
    printf("\", whose fingerprint is:\n  %s\n"
           "Compare all 8 groups with the first admin's fingerprint, read to you in person or\n"
           "by phone (not by a message through this server): your admin's `refuge staff\n"
           "invite` shows it. Does it match? [y/N] ",
           fp);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    return strcmp(line, "y\n") == 0 || strcmp(line, "Y\n") == 0 || strcmp(line, "yes\n") == 0;
}

static void no_check_possible(void)
{
    rf_cmd_err("not set up",
               "nothing to check the team's first admin against, and no terminal to ask "
               "you. Use the invite token your admin's `refuge staff invite` printed (it "
               "carries the check), or add --admin-fingerprint \"FP\" with the first "
               "admin's fingerprint read to you in person or by phone");
}

/* Compares the first admin the server shows (m) with what the newcomer
 * trusts, before anything is enrolled or pinned. */
static int check_first_admin(const struct rf_member *m, enum rf_token_kind kind,
                             const uint8_t pin[RF_INVITE_PIN_BYTES], const char *want_fp)
{
    char fp[64];
    uint8_t got[RF_INVITE_PIN_BYTES];
    rf_fingerprint(fp, sizeof(fp), m->sign_pk, m->box_pk);
    rf_invite_pin(got, m->sign_pk, m->box_pk);
    if (kind == RF_TOKEN_INVITE && sodium_memcmp(got, pin, sizeof(got)) != 0) {
        fprintf(stderr,
                "refuge: THE SERVER'S FIRST ADMIN IS NOT THE ONE YOUR INVITE TOKEN NAMES.\n"
                "refuge:   server's first admin: %s\n"
                "refuge: The team this server shows was founded by another key than the team\n"
                "refuge: that invited you: the server may be compromised and showing you a team\n"
                "refuge: of its own, or --server is not your team's server. Nothing was pinned\n"
                "refuge: or kept on this computer. Do not use this server; tell the admin who\n"
                "refuge: invited you, in person or by phone.\n",
                fp);
        return RF_ERR_ROSTER;
    }
    if (want_fp && !rf_cmd_fp_equal(fp, want_fp)) {
        fprintf(stderr,
                "refuge: THE FIRST ADMIN'S FINGERPRINT DOES NOT MATCH.\n"
                "refuge:   you gave  %s\nrefuge:   server's  %s\n"
                "refuge: The server shows a team founded by another key than the one you were\n"
                "refuge: told: it may be compromised, or --server is not your team's server.\n"
                "refuge: Nothing was pinned or kept on this computer. Do not use this server;\n"
                "refuge: tell your admin, in person or by phone.\n",
                want_fp, fp);
        return RF_ERR_ROSTER;
    }
    if (kind == RF_TOKEN_INVITE)
        printf("The team's first admin matches your invite token. Fingerprint:\n  %s\n", fp);
    else if (want_fp)
        printf("The team's first admin's fingerprint matches: %s\n", fp);
    else if (!isatty(STDIN_FILENO)) {
        no_check_possible();
        return RF_ERR_ROSTER;
    } else if (!confirm_first_admin(m, fp)) {
        puts("Not set up: nothing was pinned or kept on this computer. Ask your admin for an "
             "invite token from `refuge staff invite`.");
        return RF_ERR_ROSTER;
    }
    return 0;
}

int rf_cmd_init(int argc, char **argv)
{
    static const struct option opts[] = {
        {"server", required_argument, NULL, 's'},
        {"token", required_argument, NULL, 't'},
        {"name", required_argument, NULL, 'n'},
        {"admin-fingerprint", required_argument, NULL, 'a'},
        {"insecure-http", no_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *server = NULL, *token = NULL, *name = NULL, *want_fp = NULL;
    int c, insecure_http = 0;
    optind = 0;
    while ((c = getopt_long(argc, argv, "s:t:n:a:h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            server = optarg;
            break;
        case 't':
            token = optarg;
            break;
        case 'n':
            name = optarg;
            break;
        case 'a':
            want_fp = optarg;
            break;
        case 'I':
            insecure_http = 1;
            break;
        case 'h':
            usage(stdout);
            return RF_EXIT_OK;
        default:
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (!server || !token || !name || optind != argc) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    if (!name_ok(name)) {
        rf_cmd_err("bad --name", "use 1 to 64 bytes without control characters");
        return RF_EXIT_USAGE;
    }
    enum rf_token_kind kind;
    uint8_t pin[RF_INVITE_PIN_BYTES];
    char server_token[RF_INVITE_TOKEN_MAX + 1];
    int trc = rf_invite_parse(token, strlen(token), &kind, server_token, sizeof(server_token), pin);
    if (trc == RF_ERR_LIMIT) {
        rf_cmd_err("bad --token", "empty or too long");
        return RF_EXIT_USAGE;
    }
    if (trc != 0) {
        rf_cmd_err("bad --token", "this looks like an invite token but it is damaged; copy it "
                                  "again, whole, from your admin");
        return RF_EXIT_USAGE;
    }

    struct rf_home h;
    struct rf_staff_keys *k = NULL;
    struct rf_net *net = NULL;
    struct rf_roster *ro = NULL;
    struct rf_member first_admin;
    struct rf_buf keyfile, roster;
    char *pass = NULL, path[PATH_MAX], fp[64];
    size_t plen = 0;
    json_t *body = NULL, *ans = NULL, *served = NULL;
    char *text = NULL;
    int rc, ret = RF_EXIT_FAIL, key_written = 0;
    rf_buf_init(&keyfile, RF_KEYFILE_MAX);
    rf_buf_init(&roster, RF_ROSTER_MAX_BYTES);

    rc = rf_home_locate(&h);
    if (rc != 0) {
        rf_cmd_err("cannot find a home directory", "set REFUGE_HOME");
        goto out;
    }
    if (rf_home_path(&h, "config.json", path, sizeof(path)) == 0 && access(path, F_OK) == 0) {
        fprintf(stderr, "refuge: %s is already set up; use another REFUGE_HOME to enroll again\n",
                h.dir);
        goto out;
    }
    snprintf(h.server, sizeof(h.server), "%s", server);
    snprintf(h.name, sizeof(h.name), "%s", name);
    h.insecure_http = insecure_http;
    k = sodium_malloc(sizeof(*k));
    if (!k || rf_staff_keys_generate(k, name) != 0) {
        rf_cmd_err("cannot make keys", "out of memory");
        goto out;
    }
    rc = rf_net_open(&net, server, k, insecure_http ? RF_NET_INSECURE_HTTP : 0);
    if (rc != 0) {
        if (rc == RF_ERR_PROTOCOL)
            rf_cmd_plain_http(server, "--insecure-http");
        else
            rf_cmd_err("bad --server",
                       "give an https:// URL (http:// for .onion or this computer)");
        ret = RF_EXIT_USAGE;
        goto out;
    }
    /* First admin? The server says "no roster" to anyone who asks; a
     * newcomer holding a check of an existing team's first admin is never
     * one, whatever the server says. */
    rc = rf_net_json(net, "GET", "/api/v1/roster", NULL, 0, NULL, NULL);
    int first = rc == RF_ERR_PROTOCOL && rf_net_status(net) == 404;
    if (rc == RF_ERR_NET || (rc == RF_ERR_PROTOCOL && rf_net_status(net) >= 500)) {
        rf_cmd_net_err("cannot reach the server", net);
        goto out;
    }
    if (first && (kind == RF_TOKEN_INVITE || want_fp)) {
        fprintf(stderr,
                "refuge: THE SERVER SAYS IT HAS NO TEAM YET, but your %s names the team's\n"
                "refuge: first admin: you were invited to an existing team. The server may be\n"
                "refuge: compromised and trying to make you the admin of a team of its own, or\n"
                "refuge: --server is not your team's server. Nothing was enrolled and nothing\n"
                "refuge: was written. Do not use this server; tell the admin who invited you,\n"
                "refuge: in person or by phone.\n",
                kind == RF_TOKEN_INVITE ? "invite token" : "--admin-fingerprint");
        goto out;
    }
    if (!first && kind == RF_TOKEN_PLAIN && !want_fp && !isatty(STDIN_FILENO)) {
        no_check_possible(); /* refused before the token is spent */
        goto out;
    }

    rc = rf_pass_read(&pass, &plen, "New passphrase for your key file: ", 1);
    if (rc != 0)
        goto out;
    rc = rf_keyfile_write(&keyfile, k, pass, plen, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE);
    if (rc != 0) {
        rf_cmd_errc("cannot encrypt the key file", rc);
        goto out;
    }
    if (first) {
        ro = calloc(1, sizeof(*ro));
        if (!ro)
            goto out;
        ro->version = 1;
        ro->n = 1;
        snprintf(ro->members[0].name, sizeof(ro->members[0].name), "%s", name);
        ro->members[0].role = RF_ROLE_ADMIN;
        memcpy(ro->members[0].box_pk, k->box_pk, 32);
        memcpy(ro->members[0].sign_pk, k->sign_pk, 32);
        rc = rf_roster_sign(&roster, ro, k);
        if (rc != 0) {
            rf_cmd_errc("cannot sign the roster", rc);
            goto out;
        }
    }
    body = json_pack("{ssssso*so*}", "token", server_token, "name", name, "sign_pk",
                     b64(k->sign_pk, 32), "box_pk", b64(k->box_pk, 32));
    if (body && first)
        json_object_set_new(body, "roster", b64(roster.data, roster.len));
    text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    if (!text)
        goto out;

    rc = rf_home_create(&h);
    if (rc == 0)
        rc = rf_home_write(&h, "key.rfk", keyfile.data, keyfile.len);
    if (rc != 0) {
        fprintf(stderr, "refuge: cannot write the key file in %s: %s\n", h.dir, rf_strerror(rc));
        goto out;
    }
    key_written = 1;
    rc = rf_net_json(net, "POST", "/api/v1/enroll", (const uint8_t *)text, strlen(text),
                     "application/json", &ans);
    if (rc != 0) {
        rf_cmd_net_err("enrollment refused", net);
        goto out;
    }
    /* The roster is served to enrolled keys only: compare its first admin
     * now, before anything is pinned or config.json written. A refusal
     * removes the key file too (no admin must approve this enrollment); a
     * network failure keeps it, as the server knows this key now. */
    if (!first) {
        rc = rf_net_json(net, "GET", "/api/v1/roster", NULL, 0, NULL, &served);
        if (rc != 0) {
            rf_cmd_net_err("cannot fetch the roster", net);
            key_written = 0;
            goto out;
        }
        if (first_admin_of(served, &first_admin) != 0 ||
            check_first_admin(&first_admin, kind, pin, want_fp) != 0)
            goto out;
    }
    key_written = 0; /* the server knows this key now: keep it whatever happens next */
    const char *role = json_string_value(json_object_get(ans, "role"));
    /* Pinned only now: the key compared above (or, first admin, our own). */
    memcpy(h.pinned, first ? k->sign_pk : first_admin.sign_pk, 32);
    rc = rf_home_save(&h);
    if (rc != 0) {
        rf_cmd_errc("cannot write config.json", rc);
        goto out;
    }
    rf_fingerprint(fp, sizeof(fp), k->sign_pk, k->box_pk);
    printf("Enrolled as %s", role && strcmp(role, "admin") == 0 ? "admin" : "member");
    fputs(" \"", stdout);
    rf_out_safe(stdout, name, 0);
    printf("\" on %s.\n", h.server);
    if (first)
        puts("You are the first admin: roster version 1 lists only you.");
    printf("Your fingerprint:\n  %s\n", fp);
    printf("Keys and settings: %s\nNext: refuge sync\n", h.dir);
    ret = RF_EXIT_OK;
out:
    if (key_written && rf_home_path(&h, "key.rfk", path, sizeof(path)) == 0)
        unlink(path);
    rf_out_json_free(text);
    json_decref(body);
    json_decref(ans);
    json_decref(served);
    sodium_memzero(server_token, sizeof(server_token));
    free(ro);
    rf_pass_free(pass);
    rf_buf_free(&keyfile);
    rf_buf_free(&roster);
    rf_net_free(net);
    rf_home_keys_free(k);
    return ret;
}
