/*
 * cmd_cases_main.c - `refuge cases`: its options, and the key unlocked
 * while the board rows are read ahead (rf_ctx_open_overlap); the listing
 * itself is cmd_cases.c's.
 */
#include "client/cmd.h"
#include "lib/err.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

/* rf_ctx_open_overlap's reader: the board rows, while Argon2id runs. */
int rf_view_cases_read_ahead(struct rf_cache *c, void *arg)
{
    struct rf_view_ahead *a = arg;
    int64_t fill = 0;
    memset(a, 0, sizeof(*a));
    int rc = rf_cache_meta_get(c, "board_fill", &fill);
    if (rc == 0 && fill) /* the rows are built again first (rf_local_new) */
        return RF_ERR_CANCELLED;
    if (rc == 0)
        rc = rf_cache_meta_get(c, "board_gen", &a->gen);
    return rc == 0 ? rf_cache_board_list(c, &a->list) : rc;
}

static void usage_cases(FILE *f)
{
    fputs("usage: refuge cases [--stage S] [--mine] [--tag T] [--search TEXT] [--json]\n"
          "\n"
          "Lists the cases in the local case database (run `refuge sync` first), most recent\n"
          "activity first: stage, who is assigned, due date, counts, the checklist and the\n"
          "intake's \"need\" and \"urgency\". Works offline; nothing is decrypted again.\n"
          "  --stage S       only cases in stage S\n"
          "  --mine          only cases assigned to you\n"
          "  --tag T         only cases tagged T\n"
          "  --search TEXT   only cases whose messages, replies, notes or tags contain TEXT\n"
          "                  (any case; searched on this computer, never on the server)\n"
          "  --json          one JSON object {\"cases\":[...]} (see docs/staff.md)\n",
          f);
}

int rf_cmd_cases(int argc, char **argv)
{
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"stage", required_argument, NULL, 's'},
        {"mine", no_argument, NULL, 'm'},
        {"tag", required_argument, NULL, 't'},
        {"search", required_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct rf_view_filter vf = {0};
    int ch, json = 0, mine = 0;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "js:mt:q:h", opts, NULL)) != -1) {
        switch (ch) {
        case 'j':
            json = 1;
            break;
        case 's':
            vf.stage = optarg;
            break;
        case 'm':
            mine = 1;
            break;
        case 't':
            vf.tag = optarg;
            break;
        case 'q':
            vf.search = optarg;
            break;
        case 'h':
            usage_cases(stdout);
            return RF_EXIT_OK;
        default:
            usage_cases(stderr);
            return RF_EXIT_USAGE;
        }
    }
    if (optind != argc) {
        usage_cases(stderr);
        return RF_EXIT_USAGE;
    }
    struct rf_ctx x;
    struct rf_view_ahead ahead;
    int ret = RF_EXIT_FAIL, ahead_rc = 0;
    /* the board rows read while the key file is unlocked */
    if (rf_ctx_open_overlap(&x, rf_view_cases_read_ahead, &ahead, &ahead_rc) != 0) {
        if (ahead_rc != RF_ERR_CANCELLED)
            rf_cache_board_list_free(&ahead.list);
        goto out;
    }
    if (mine)
        vf.assignee = x.k->name;
    int rc = rf_view_cases_print_ahead(&x, &vf, json, ahead_rc == 0 ? &ahead : NULL);
    if (rc == RF_ERR_FORMAT) {
        rf_cmd_err("bad --search", "not valid UTF-8");
        ret = RF_EXIT_USAGE;
    } else if (rc != 0) {
        rf_cmd_errc("cannot read the local case database", rc);
    } else {
        ret = RF_EXIT_OK;
    }
out:
    rf_ctx_close(&x);
    return ret;
}
