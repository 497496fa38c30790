/*
 * intake.c - the first-contact questions (see intake.h). To change them,
 * edit this table and the matching "intake.*" texts in po/en.po and
 * po/ru.po; option ids are what caseworkers' clients see, so keep them
 * stable once the line is open.
 */
#include "server/intake.h"

#include <string.h>

static const struct rf_intake_option need_opts[] = {
    {"leave", "intake.need.leave"},         {"asylum", "intake.need.asylum"},
    {"documents", "intake.need.documents"}, {"medical", "intake.need.medical"},
    {"other", "intake.need.other"},         {NULL, NULL},
};

static const struct rf_intake_option docs_opts[] = {
    {"passport_intl", "intake.docs.passport_intl"},
    {"passport_internal", "intake.docs.passport_internal"},
    {"military_id", "intake.docs.military_id"},
    {"visa", "intake.docs.visa"},
    {"residence_permit", "intake.docs.residence_permit"},
    {"none", "intake.docs.none"},
    {NULL, NULL},
};

static const struct rf_intake_option urgency_opts[] = {
    {"today", "intake.urgency.today"},
    {"week", "intake.urgency.week"},
    {"month", "intake.urgency.month"},
    {"not_urgent", "intake.urgency.not_urgent"},
    {NULL, NULL},
};

const struct rf_intake_field rf_intake_fields[] = {
    {"need", RF_INTAKE_CHOICE, "intake.need.label", NULL, 0, 0, need_opts},
    {"region", RF_INTAKE_LINE, "intake.region.label", "intake.region.hint", 0, 200, NULL},
    {"docs", RF_INTAKE_MULTI, "intake.docs.label", NULL, 0, 0, docs_opts},
    {"urgency", RF_INTAKE_CHOICE, "intake.urgency.label", NULL, 0, 0, urgency_opts},
    {"text", RF_INTAKE_TEXT, "intake.text.label", "intake.text.hint", 0, 0, NULL},
};
const size_t rf_intake_fields_n = sizeof(rf_intake_fields) / sizeof(rf_intake_fields[0]);

const struct rf_intake_field *rf_intake_field_find(const char *name)
{
    for (size_t i = 0; i < rf_intake_fields_n; i++)
        if (strcmp(rf_intake_fields[i].id, name) == 0)
            return &rf_intake_fields[i];
    return NULL;
}

int rf_intake_option_find(const struct rf_intake_field *f, const char *value, size_t len)
{
    if (f->options == NULL)
        return -1;
    for (int i = 0; f->options[i].id != NULL && i < RF_INTAKE_MAX_OPTIONS; i++)
        if (strlen(f->options[i].id) == len && memcmp(f->options[i].id, value, len) == 0)
            return i;
    return -1;
}
