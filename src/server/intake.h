/*
 * intake.h - the questions of a person's first message, as data.
 *
 * The inbox page renders this table as the first-contact form, and POST /send
 * turns the answers into the intake JSON of notes/plaintext-formats
 * ({"id", "label" (English), "value"}), in table order. An organization
 * changes its questions here and their texts in po/LANG.po (docs/pages.md);
 * gen-pages fails the build if an "intake.*" msgid named here is missing
 * from a catalogue.
 */
#ifndef RF_INTAKE_H
#define RF_INTAKE_H

#include <stddef.h>

/* Marks a msgid named in C, so that gen-pages checks it exists. */
#define RF_MSGID(id) id

enum rf_intake_kind {
    RF_INTAKE_CHOICE, /* one of the options (radio buttons) */
    RF_INTAKE_MULTI,  /* any of the options (check boxes); the value is a list */
    RF_INTAKE_LINE,   /* short free text */
    RF_INTAKE_TEXT,   /* the message itself: the JSON's top-level "text" */
};

#define RF_INTAKE_MAX_OPTIONS 16

struct rf_intake_option {
    const char *id;    /* stable value id sent to caseworkers, e.g. "passport_intl" */
    const char *label; /* msgid */
};

struct rf_intake_field {
    const char *id; /* form field name and answer id: [a-z0-9_] */
    enum rf_intake_kind kind;
    const char *label; /* msgid */
    const char *hint;  /* msgid or NULL */
    int required;      /* the answer must be given (choice: one option) */
    size_t max_len;    /* bytes of a LINE answer; TEXT is bounded by limits.message_max */
    const struct rf_intake_option *options; /* CHOICE/MULTI: terminated by {NULL, NULL} */
};

extern const struct rf_intake_field rf_intake_fields[];
extern const size_t rf_intake_fields_n;

/* The field called name, or NULL. */
const struct rf_intake_field *rf_intake_field_find(const char *name);
/* Index of option value in field f, or -1. */
int rf_intake_option_find(const struct rf_intake_field *f, const char *value, size_t len);

#endif
