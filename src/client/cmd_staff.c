/*
 * cmd_staff.c - the team: `refuge fingerprint` and `refuge staff invite |
 * list | approve | remove`.
 *
 * The roster is the security of the whole team: whoever is on it can read
 * every new message. A change is a new roster version built from the
 * latest version THIS client verified (trust.c), never from what the server
 * says, signed with this admin's key (rf_roster_sign), posted, and verified
 * again as the server now hands it out. Approving a newcomer requires the
 * admin to compare the newcomer's fingerprint out of band: interactively
 * (a y/N question), or in scripts with --fingerprint, which must match;
 * without a terminal and without --fingerprint nothing is approved. The
 * server's staff list is only a source of candidate keys; the fingerprint
 * check is what makes one trusted, and it covers BOTH keys (format v2,
 * keyfile.h): the signing and the encryption key signed into the roster are
 * exactly the two the fingerprint was computed from, so a server that swaps
 * either changes the digits the admin compares (issue 13, finding 1).
 *
 * An invite token carries a pin of the first admin (lib/invite.h), so the
 * newcomer's `refuge init` checks roster version 1 with nothing to type.
 */
#include "client/cmd.h"
#include "client/out.h"
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

#define FP_MAX 64

/* ------------------------------------------------------------ fingerprint */

int rf_cmd_fingerprint(int argc, char **argv)
{
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        puts("usage: refuge fingerprint\n\n"
             "Prints your keys' fingerprint (8 groups of 5 digits; it covers both your\n"
             "signing and your encryption key). Read it to your admin in person or by phone\n"
             "when they approve you, so they know the keys the server shows them are yours.");
        return RF_EXIT_OK;
    }
    if (argc != 1) {
        fputs("usage: refuge fingerprint\n", stderr);
        return RF_EXIT_USAGE;
    }
    struct rf_home h;
    struct rf_staff_keys *k = NULL;
    char fp[FP_MAX];
    if (rf_home_open(&h, &k) != 0)
        return RF_EXIT_FAIL;
    rf_fingerprint(fp, sizeof(fp), k->sign_pk, k->box_pk);
    fputs("Your fingerprint (", stdout);
    rf_out_safe(stdout, k->name, 0);
    printf("):\n  %s\n", fp);
    rf_home_keys_free(k);
    return RF_EXIT_OK;
}

/* ------------------------------------------------------------------ staff */

static void usage(FILE *f)
{
    fputs("usage: refuge staff invite [--admin]\n"
          "       refuge staff list [--json]\n"
          "       refuge staff approve NAME [--fingerprint FP] [--admin]\n"
          "       refuge staff remove NAME\n"
          "\n"
          "invite    (admins) a one-time enrollment token and the `refuge init` line for the\n"
          "          newcomer; --admin lets the token enroll an admin\n"
          "list      the roster as verified by this computer, and enrolled caseworkers\n"
          "          waiting for approval, with their fingerprints\n"
          "approve   (admins) adds an enrolled caseworker to a new roster version. Ask them to\n"
          "          run `refuge fingerprint` and read it to you in person or by phone; you\n"
          "          are asked whether it matches. In scripts, --fingerprint FP must match\n"
          "          instead. --admin makes them an admin.\n"
          "remove    (admins) a new roster version without NAME: nothing new is sealed to\n"
          "          their key and the server refuses them (the last admin cannot be removed)\n",
          f);
}

static int decode32(uint8_t out[32], json_t *v)
{
    const char *s = json_string_value(v);
    size_t n = 0;
    return s && rf_b64_decode(out, 32, &n, s, strlen(s)) == 0 && n == 32;
}

/* The verified latest roster and its raw bytes (online). */
static int latest(struct rf_ctx *x, struct rf_roster **ro, struct rf_buf *raw)
{
    int rc = rf_trust_roster(x->n, x->c, x->h.pinned, x->k, ro, 0);
    if (rc == 0)
        rc = rf_cache_roster_get(x->c, (*ro)->version, raw);
    if (rc != 0 && *ro) {
        free(*ro);
        *ro = NULL;
    }
    return rc;
}

static int is_admin(struct rf_ctx *x, const struct rf_roster *ro)
{
    int i = rf_roster_find(ro, x->k->sign_pk);
    if (i >= 0 && ro->members[i].role == RF_ROLE_ADMIN)
        return 1;
    rf_cmd_err("refused", i >= 0 ? "only an admin of the team can change the team"
                                 : "you are not on the team's roster");
    return 0;
}

int rf_staff_invite(struct rf_ctx *x, int admin, char *inv, size_t inv_cap, char *first_fp,
                    size_t fp_cap)
{
    struct rf_roster *ro = NULL;
    struct rf_member first;
    json_t *ans = NULL;
    int ret = RF_EXIT_FAIL;
    if (inv_cap < RF_INVITE_CHARS + 1)
        return RF_EXIT_FAIL;
    if (rf_trust_roster(x->n, x->c, x->h.pinned, x->k, &ro, 0) != 0 || !is_admin(x, ro))
        goto out;
    if (rf_trust_first_admin(x->c, x->h.pinned, &first) != 0) {
        rf_cmd_err("no token", "roster version 1 on this computer does not verify; run `refuge "
                               "sync` and try again");
        goto out;
    }
    const char *body = admin ? "{\"role\":\"admin\"}" : "{\"role\":\"member\"}";
    if (rf_net_json(x->n, "POST", "/api/v1/tokens", (const uint8_t *)body, strlen(body),
                    "application/json", &ans) != 0) {
        if (rf_net_status(x->n) == 403)
            rf_cmd_forbidden(x, "no token", 1);
        else
            rf_cmd_net_err("no token", x->n);
        goto out;
    }
    const char *token = json_string_value(json_object_get(ans, "token"));
    size_t tl = token ? strlen(token) : 0;
    for (size_t i = 0; i < tl; i++)
        if (!((token[i] >= 'A' && token[i] <= 'Z') || (token[i] >= 'a' && token[i] <= 'z') ||
              (token[i] >= '0' && token[i] <= '9') || token[i] == '-' || token[i] == '_'))
            tl = 0;
    if (tl == 0 || tl > 128 ||
        rf_invite_encode(inv, inv_cap, token, first.sign_pk, first.box_pk) != 0) {
        rf_cmd_err("no token", "the server's answer is malformed");
        goto out;
    }
    rf_fingerprint(first_fp, fp_cap, first.sign_pk, first.box_pk);
    ret = RF_EXIT_OK;
out:
    json_decref(ans);
    free(ro);
    return ret;
}

static int invite(struct rf_ctx *x, int admin)
{
    char fp[FP_MAX], inv[RF_INVITE_CHARS + 1];
    if (rf_staff_invite(x, admin, inv, sizeof(inv), fp, sizeof(fp)) != RF_EXIT_OK)
        return RF_EXIT_FAIL;
    printf("One-time invite token (%s):\n  %s\n\n", admin ? "enrolls an admin" : "enrolls a member",
           inv);
    printf("Give the newcomer this line (NAME is the name colleagues will see):\n"
           "  refuge init --server %s --token %s --name NAME\n\n",
           x->h.server, inv);
    printf("The token names the team's first admin (fingerprint %s):\n"
           "their `refuge init` refuses a server that shows another one.\n"
           "Then ask them to read you `refuge fingerprint` and run: refuge staff approve NAME\n",
           fp);
    sodium_memzero(inv, sizeof(inv));
    return RF_EXIT_OK;
}

/* Caseworkers enrolled on the server whose key is not on the verified roster. */
static json_t *pending(struct rf_ctx *x, const struct rf_roster *ro)
{
    json_t *ans = NULL, *out = json_array();
    if (rf_net_json(x->n, "GET", "/api/v1/staff", NULL, 0, NULL, &ans) != 0) {
        json_decref(out);
        return NULL;
    }
    size_t i;
    json_t *s;
    json_array_foreach(json_object_get(ans, "staff"), i, s)
    {
        uint8_t sign[32], box[32];
        const char *name = json_string_value(json_object_get(s, "name"));
        if (!name || strlen(name) > RF_NAME_MAX || !decode32(sign, json_object_get(s, "sign_pk")) ||
            !decode32(box, json_object_get(s, "box_pk")) || rf_roster_find(ro, sign) >= 0)
            continue;
        json_array_append(out, s);
    }
    json_decref(ans);
    return out;
}

int rf_staff_list(struct rf_ctx *x, json_t **out)
{
    struct rf_roster *ro = NULL;
    json_t *pend = NULL, *arr = json_array();
    char fp[FP_MAX];
    int ret = RF_EXIT_FAIL;
    if (rf_trust_roster(x->n, x->c, x->h.pinned, x->k, &ro, 0) != 0)
        goto out;
    for (uint16_t i = 0; i < ro->n; i++) {
        rf_fingerprint(fp, sizeof(fp), ro->members[i].sign_pk, ro->members[i].box_pk);
        json_array_append_new(arr,
                              json_pack("{sssssssb}", "name", ro->members[i].name, "role",
                                        ro->members[i].role == RF_ROLE_ADMIN ? "admin" : "member",
                                        "fingerprint", fp, "on_roster", 1));
        if (sodium_memcmp(ro->members[i].sign_pk, x->k->sign_pk, 32) == 0)
            json_object_set_new(json_array_get(arr, json_array_size(arr) - 1), "me", json_true());
    }
    pend = pending(x, ro);
    size_t i;
    json_t *s;
    json_array_foreach(pend, i, s)
    {
        uint8_t sign[32], box[32];
        decode32(sign, json_object_get(s, "sign_pk"));
        decode32(box, json_object_get(s, "box_pk"));
        rf_fingerprint(fp, sizeof(fp), sign, box);
        json_t *e = json_pack("{sOsssssb}", "name", json_object_get(s, "name"), "role", "pending",
                              "fingerprint", fp, "on_roster", 0);
        if (rf_trust_was_member(x->c, sign))
            json_object_set_new(e, "removed", json_true());
        json_array_append_new(arr, e);
    }
    *out = json_pack("{sIsOsb}", "roster_version", (json_int_t)ro->version, "staff", arr,
                     "pending_listed", pend != NULL);
    ret = *out ? RF_EXIT_OK : RF_EXIT_FAIL;
out:
    json_decref(pend);
    json_decref(arr);
    free(ro);
    return ret;
}

static int list(struct rf_ctx *x, int json)
{
    json_t *all = NULL, *arr, *s;
    size_t i;
    int ret = RF_EXIT_FAIL;
    if (rf_staff_list(x, &all) != RF_EXIT_OK)
        return RF_EXIT_FAIL;
    if (!json_is_true(json_object_get(all, "pending_listed")) && !json)
        fprintf(stderr, "refuge: (cannot list caseworkers waiting for approval: %s)\n",
                rf_net_error(x->n));
    arr = json_object_get(all, "staff");
    if (json) {
        json_t *j = json_pack("{sOsO}", "roster_version", json_object_get(all, "roster_version"),
                              "staff", arr);
        json_array_foreach(arr, i, s) json_object_del(s, "me");
        ret = rf_out_json(j) == 0 ? RF_EXIT_OK : RF_EXIT_FAIL;
        json_decref(j);
        goto out;
    }
    int col = rf_out_colour(stdout);
    size_t w = 4;
    json_array_foreach(arr, i, s)
    {
        char nm[RF_NAME_MAX * 4];
        rf_out_safe_copy(nm, sizeof(nm), json_string_value(json_object_get(s, "name")));
        size_t cw = 0;
        for (const char *p = nm; *p; p++)
            cw += ((unsigned char)*p & 0xc0) != 0x80;
        if (cw > w)
            w = cw;
    }
    printf("Roster version %u (verified)\n\n%s%-*s  %-8s  FINGERPRINT%s\n",
           (unsigned)json_integer_value(json_object_get(all, "roster_version")),
           col ? "\033[1m" : "", (int)w, "NAME", "ROLE", col ? "\033[0m" : "");
    json_array_foreach(arr, i, s)
    {
        char nm[RF_NAME_MAX * 4];
        const char *role = json_string_value(json_object_get(s, "role"));
        if (json_is_true(json_object_get(s, "removed")))
            role = "removed";
        rf_out_safe_copy(nm, sizeof(nm), json_string_value(json_object_get(s, "name")));
        size_t cw = 0;
        for (const char *p = nm; *p; p++)
            cw += ((unsigned char)*p & 0xc0) != 0x80;
        fputs(nm, stdout);
        for (; cw < w; cw++)
            fputc(' ', stdout);
        printf("  %s%-8s%s  %s\n", col && strcmp(role, "pending") == 0 ? "\033[33m" : "", role,
               col && strcmp(role, "pending") == 0 ? "\033[0m" : "",
               json_string_value(json_object_get(s, "fingerprint")));
    }
    ret = RF_EXIT_OK;
out:
    json_decref(all);
    return ret;
}

/* Signs next (the version after ro, whose raw bytes are raw), posts it and
 * verifies the roster the server hands out now is exactly it. */
static int publish(struct rf_ctx *x, struct rf_roster *next, const struct rf_roster *ro,
                   const struct rf_buf *raw)
{
    struct rf_buf signed_r;
    struct rf_roster *now = NULL;
    char *b = NULL, *body = NULL;
    json_t *j = NULL;
    next->version = ro->version + 1;
    rf_roster_hash(next->prev_hash, raw->data, raw->len);
    rf_buf_init(&signed_r, RF_ROSTER_MAX_BYTES);
    int rc = rf_roster_sign(&signed_r, next, x->k);
    if (rc != 0) {
        rf_cmd_errc("cannot sign the roster", rc);
        goto out;
    }
    size_t cap = signed_r.len * 4 / 3 + 8;
    b = malloc(cap);
    if (!b || rf_b64_encode(b, cap, signed_r.data, signed_r.len) != 0) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    j = json_pack("{ss}", "roster", b);
    body = j ? json_dumps(j, JSON_COMPACT) : NULL;
    if (!body) {
        rc = RF_ERR_NOMEM;
        goto out;
    }
    rc = rf_net_json(x->n, "POST", "/api/v1/roster", (const uint8_t *)body, strlen(body),
                     "application/json", NULL);
    if (rc != 0) {
        if (rf_net_status(x->n) == 409)
            rf_cmd_err("the roster was not changed",
                       "another admin changed it at the same time; run the command again");
        else if (rf_net_status(x->n) == 403)
            rf_cmd_forbidden(x, "the roster was not changed", 1);
        else
            rf_cmd_net_err("the roster was not changed", x->n);
        goto out;
    }
    rc = rf_trust_roster(x->n, x->c, x->h.pinned, x->k, &now, 0);
    if (rc != 0)
        goto out;
    struct rf_buf got;
    rf_buf_init(&got, RF_ROSTER_MAX_BYTES);
    rc = rf_cache_roster_get(x->c, now->version, &got);
    if (rc == 0 && (now->version != next->version || got.len != signed_r.len ||
                    memcmp(got.data, signed_r.data, got.len) != 0)) {
        rf_cmd_err("the roster change did not verify", "the server hands out another roster; "
                                                       "tell the other admins");
        rc = RF_ERR_ROSTER;
    }
    rf_buf_free(&got);
out:
    free(now);
    free(b);
    rf_out_json_free(body);
    json_decref(j);
    rf_buf_free(&signed_r);
    return rc;
}

/* Asks the admin on the terminal; 1 only for an explicit yes. */
static int confirm(const char *name)
{
    char line[32];
    fputs("Does ", stdout);
    rf_out_safe(stdout, name, 0);
    fputs(" read you the same fingerprint? [y/N] ", stdout);
    fflush(stdout);
    if (!fgets(line, sizeof(line), stdin))
        return 0;
    return strcmp(line, "y\n") == 0 || strcmp(line, "Y\n") == 0 || strcmp(line, "yes\n") == 0;
}

int rf_staff_approve(struct rf_ctx *x, const char *name, const char *want_fp, int admin,
                     unsigned *version, unsigned *members)
{
    struct rf_roster *ro = NULL, *next = NULL;
    struct rf_buf raw;
    json_t *pend = NULL, *pick = NULL;
    char fp[FP_MAX];
    int ret = RF_EXIT_FAIL;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    if (latest(x, &ro, &raw) != 0 || !is_admin(x, ro))
        goto out;
    for (uint16_t i = 0; i < ro->n; i++)
        if (strcmp(ro->members[i].name, name) == 0) {
            rf_cmd_err("nothing to approve", "a caseworker with this name is on the roster");
            goto out;
        }
    pend = pending(x, ro);
    if (!pend) {
        rf_cmd_net_err("cannot list enrolled caseworkers", x->n);
        goto out;
    }
    size_t i, count = 0;
    json_t *s;
    json_array_foreach(pend, i, s)
    {
        uint8_t sign[32], box[32];
        if (strcmp(json_string_value(json_object_get(s, "name")), name) != 0)
            continue;
        decode32(sign, json_object_get(s, "sign_pk"));
        decode32(box, json_object_get(s, "box_pk"));
        rf_fingerprint(fp, sizeof(fp), sign, box);
        count++;
        if (!pick || (want_fp && rf_cmd_fp_equal(fp, want_fp)))
            pick = s;
    }
    if (!pick) {
        rf_cmd_err("nothing to approve", "no enrolled caseworker with this name is waiting; they "
                                         "run `refuge init` with a token from `refuge staff "
                                         "invite` first");
        goto out;
    }
    if (count > 1 && !want_fp) {
        rf_cmd_err("refused", "several enrolled keys carry this name; approve with "
                              "--fingerprint FP (the one they read you)");
        goto out;
    }
    /* The fingerprint is computed from the very two keys signed below. */
    uint8_t sign[32], box[32];
    decode32(sign, json_object_get(pick, "sign_pk"));
    decode32(box, json_object_get(pick, "box_pk"));
    rf_fingerprint(fp, sizeof(fp), sign, box);
    fputs("The server says ", stdout);
    rf_out_safe(stdout, name, 0);
    printf("'s fingerprint is:\n  %s\n", fp);
    if (want_fp) {
        if (!rf_cmd_fp_equal(fp, want_fp)) {
            fprintf(stderr,
                    "refuge: FINGERPRINTS DO NOT MATCH: not approved, the roster is unchanged.\n"
                    "refuge:   you gave      %s\nrefuge:   server's keys %s\n"
                    "refuge: The keys the server shows for this name are not the ones the\n"
                    "refuge: newcomer holds (their signing key, their encryption key or both were\n"
                    "refuge: swapped): the server, or someone who broke into it, may be trying to\n"
                    "refuge: read what the team seals to them. Do not approve. Check the digits\n"
                    "refuge: with them again, in person or by phone; if they still differ, tell\n"
                    "refuge: the other admins and whoever runs the server.\n",
                    want_fp, fp);
            ret = RF_STAFF_MISMATCH;
            goto out;
        }
        puts("It matches the fingerprint you gave.");
    } else if (isatty(STDIN_FILENO)) {
        fputs("Ask them to run `refuge fingerprint` and read it to you, in person or by phone\n"
              "(not by a message through this server). Compare all 8 groups.\n",
              stdout);
        if (!confirm(name)) {
            puts("Not approved.");
            goto out;
        }
    } else {
        rf_cmd_err("not approved", "no terminal to ask you to compare fingerprints; pass "
                                   "--fingerprint FP with the fingerprint they read you");
        goto out;
    }
    if (ro->n >= RF_ROSTER_MAX_MEMBERS) {
        rf_cmd_err("not approved", "the roster is full");
        goto out;
    }
    next = malloc(sizeof(*next));
    if (!next)
        goto out;
    *next = *ro;
    struct rf_member *m = &next->members[next->n++];
    memset(m, 0, sizeof(*m));
    snprintf(m->name, sizeof(m->name), "%s", name);
    m->role = admin ? RF_ROLE_ADMIN : RF_ROLE_MEMBER;
    memcpy(m->box_pk, box, 32);
    memcpy(m->sign_pk, sign, 32);
    if (publish(x, next, ro, &raw) != 0)
        goto out;
    *version = next->version;
    *members = next->n;
    ret = RF_EXIT_OK;
out:
    json_decref(pend);
    free(next);
    free(ro);
    rf_buf_free(&raw);
    return ret;
}

int rf_staff_remove(struct rf_ctx *x, const char *name, unsigned *version, unsigned *count)
{
    struct rf_roster *ro = NULL, *next = NULL;
    struct rf_buf raw;
    int ret = RF_EXIT_FAIL;
    rf_buf_init(&raw, RF_ROSTER_MAX_BYTES);
    if (latest(x, &ro, &raw) != 0 || !is_admin(x, ro))
        goto out;
    int idx = -1;
    unsigned admins = 0;
    for (uint16_t i = 0; i < ro->n; i++) {
        if (idx < 0 && strcmp(ro->members[i].name, name) == 0)
            idx = i;
        admins += ro->members[i].role == RF_ROLE_ADMIN;
    }
    if (idx < 0) {
        rf_cmd_err("nothing to remove", "no caseworker with this name is on the roster");
        goto out;
    }
    if (ro->members[idx].role == RF_ROLE_ADMIN && admins == 1) {
        rf_cmd_err("refused", "this is the team's last admin; approve another admin first");
        goto out;
    }
    next = malloc(sizeof(*next));
    if (!next)
        goto out;
    *next = *ro;
    memmove(&next->members[idx], &next->members[idx + 1],
            (size_t)(next->n - idx - 1) * sizeof(next->members[0]));
    next->n--;
    if (publish(x, next, ro, &raw) != 0)
        goto out;
    *version = next->version;
    *count = next->n;
    ret = RF_EXIT_OK;
out:
    free(next);
    free(ro);
    rf_buf_free(&raw);
    return ret;
}

static int approve(struct rf_ctx *x, const char *name, const char *want_fp, int admin)
{
    unsigned version = 0, n = 0;
    if (rf_staff_approve(x, name, want_fp, admin, &version, &n) != RF_EXIT_OK)
        return RF_EXIT_FAIL;
    printf("Approved ");
    rf_out_safe(stdout, name, 0);
    printf(" as %s: roster version %u, %u caseworkers.\n"
           "New messages are sealed to them from now on. To let them read older cases, a\n"
           "caseworker who can read them runs `refuge rewrap`.\n",
           admin ? "admin" : "member", version, n);
    return RF_EXIT_OK;
}

static int remove_member(struct rf_ctx *x, const char *name)
{
    unsigned version = 0, n = 0;
    if (rf_staff_remove(x, name, &version, &n) != RF_EXIT_OK)
        return RF_EXIT_FAIL;
    printf("Removed ");
    rf_out_safe(stdout, name, 0);
    printf(": roster version %u, %u caseworker%s.\n"
           "Nothing new is sealed to their key and the server refuses them. What their\n"
           "computer already downloaded stays readable to them.\n",
           version, n, n == 1 ? "" : "s");
    return RF_EXIT_OK;
}

int rf_cmd_staff(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"admin", no_argument, NULL, 'a'},
        {"fingerprint", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch, json = 0, admin = 0;
    const char *fp = NULL;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "jaf:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = 1;
            break;
        case 'a':
            admin = 1;
            break;
        case 'f':
            fp = optarg;
            break;
        case 'h':
            usage(stdout);
            return RF_EXIT_OK;
        default:
            usage(stderr);
            return RF_EXIT_USAGE;
        }
    }
    int n = argc - optind;
    const char *sub = n > 0 ? argv[optind] : "";
    const char *name = n > 1 ? argv[optind + 1] : NULL;
    int ok = (strcmp(sub, "invite") == 0 && n == 1 && !json && !fp) ||
             (strcmp(sub, "list") == 0 && n == 1 && !admin && !fp) ||
             (strcmp(sub, "approve") == 0 && n == 2 && !json) ||
             (strcmp(sub, "remove") == 0 && n == 2 && !json && !admin && !fp);
    if (!ok) {
        usage(stderr);
        return RF_EXIT_USAGE;
    }
    if (name && (name[0] == '\0' || strlen(name) > RF_NAME_MAX)) {
        rf_cmd_err("bad NAME", "1 to 64 bytes");
        return RF_EXIT_USAGE;
    }
    struct rf_ctx x;
    if (rf_ctx_open(&x, 1) != 0)
        return RF_EXIT_FAIL;
    int ret;
    if (strcmp(sub, "invite") == 0)
        ret = invite(&x, admin);
    else if (strcmp(sub, "list") == 0)
        ret = list(&x, json);
    else if (strcmp(sub, "approve") == 0)
        ret = approve(&x, name, fp, admin);
    else
        ret = remove_member(&x, name);
    rf_ctx_close(&x);
    return ret;
}
