/*
 * api_casekey.c - per-case keys and events version 2 on the staff API
 * (docs/protocol.md section 12), and the team setting that says which event
 * format writers use.
 *
 *   POST /api/v1/cases/ID/casekeys   a CASEKEY object (kind 9): an envelope
 *        whose header kind is 9, sealed to exactly the latest roster's
 *        members (the rule of an event envelope); audit action "casekey".
 *   POST /api/v1/cases/ID/events     beside the event envelope (api.c), an
 *        event version 2: bytes starting "RFE2", RF_EV2_MIN_BYTES ..
 *        RF_EV2_MAX_BYTES. Nothing else can be checked here: the server
 *        holds no case key, so it cannot tell who sealed it (the writer's
 *        rule, section 12, is what keeps non-members out).
 *   GET  /api/v1/settings            {"event_format": 1|2} for members
 *   POST /api/v1/settings            {"event_format": 1|2}, an admin's
 *        signed request; audit action "settings", target "event_format=N".
 *
 * The setting is stored under "team.event_format" as one ASCII digit, "1"
 * or "2" (bench/syncfill.c writes it so too). An instance
 * without it is format 1 (instances made before version 2 keep writing v1
 * until an admin switches); `refuge server init` records 2. A server that
 * lies about it can only switch writers between two formats every client
 * reads: availability, never confidentiality.
 */
#include "lib/casekey.h"
#include "lib/err.h"
#include "lib/event.h"
#include "server/api_priv.h"

#include <string.h>

/* The largest event v2: a signed event of RF_EVENT_BODY_MAX bytes, padded. */
static size_t ev2_max(void)
{
    return RF_EV2_HEADER_BYTES + rf_envelope_padded_len(RF_EVENT_HEADER_BYTES + RF_EVENT_BODY_MAX) +
           RF_EV2_TAG_BYTES;
}

int rf_api_is_ev2(const struct api_state *s)
{
    return s->mode == CASE_EVENT && s->head_len >= 3 && memcmp(s->head, RF_EV2_MAGIC, 3) == 0;
}

int rf_api_event_v2_end(struct rf_req *r, struct api_state *s)
{
    if (rf_casekey_event_version(s->head, s->head_len) != 2)
        return rf_api_error(r, 422, "bad_event", "not an event version 2 (\"RFE2\")");
    if (s->total < RF_EV2_MIN_BYTES || s->total > ev2_max())
        return rf_api_error(r, 422, "bad_event", "an event version 2 of impossible size");
    int rc = rf_op_object_put(&s->ops[0], s->src.id, RF_KIND_EVENT, s->put);
    if (rc != 0)
        return rf_api_store_error(r, rc);
    return rf_api_submit_with_audit(r, s, "event");
}

/* ------------------------------------------------------------ settings */

#define SET_EVENT_FORMAT "team.event_format"

int rf_api_event_format(struct rf_store *st, int *format)
{
    struct rf_buf b;
    *format = 1;
    rf_buf_init(&b, 16);
    int rc = rf_store_setting_get(st, SET_EVENT_FORMAT, &b);
    if (rc == RF_ERR_NOT_FOUND)
        rc = 0; /* an instance from before version 2 */
    else if (rc == 0 && b.len == 1 && (b.data[0] == '1' || b.data[0] == '2'))
        *format = b.data[0] - '0';
    else if (rc == 0)
        rc = RF_ERR_FORMAT;
    rf_buf_free(&b);
    return rc;
}

int rf_api_settings_get_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    int format = 1;
    int rc = rf_api_event_format(s->srv->store, &format);
    if (rc != 0)
        return rf_api_store_error(r, rc);
    return rf_api_json(r, 200, json_pack("{si}", "event_format", format));
}

static int settings_done(struct rf_req *r)
{
    struct api_state *s = rf_req_state(r);
    int rc = rf_api_op_rc(s, &s->ops[0]);
    if (rc != 0)
        return rf_api_store_error(r, rc);
    return rf_api_json(r, 200, json_pack("{si}", "event_format", s->setting[0] - '0'));
}

int rf_api_settings_post_end(struct rf_req *r)
{
    struct api_state *s = rf_api_ready(r);
    if (!s)
        return 0;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)s->body.data, s->body.len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *f = json_object_get(j, "event_format");
    int ok = json_is_object(j) && json_object_size(j) == 1 && json_is_integer(f) &&
             (json_integer_value(f) == 1 || json_integer_value(f) == 2);
    s->setting[0] = ok ? (uint8_t)('0' + json_integer_value(f)) : 0;
    json_decref(j);
    if (!ok)
        return rf_api_error(r, 400, "bad_request", "body must be {\"event_format\": 1|2}");
    snprintf(s->target, sizeof(s->target), "event_format=%c", (char)s->setting[0]);
    rf_op_setting_put(&s->ops[0], SET_EVENT_FORMAT, s->setting, 1);
    rf_api_audit_op_signed(&s->ops[1], s, "settings", s->target, NULL);
    return rf_api_submit(r, s, s->ops, 2, settings_done);
}
