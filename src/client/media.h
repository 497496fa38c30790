/*
 * media.h - what the client does with a decrypted file's bytes besides
 * saving them: the type by content, a preview (images decoded and re-encoded
 * to PNG), the identifying metadata it carries, and a copy without it.
 *
 * Decoding a file a stranger sent is the riskiest thing the client does, so
 * it never happens in the process that holds the keys: every decode runs in a
 * fresh child (refuge-media, its own program: src/media_main.c; it
 * shares no memory with this process and alone maps the decoding libraries)
 * that gets the bytes over a socket, has
 * no filesystem (Landlock, no rights), may make almost no system call
 * (seccomp: read its socket, write its socket, memory, exit; anything else
 * kills it with SIGSYS), runs under RLIMIT_CPU and RLIMIT_AS, and is killed
 * when it overruns its time. Its answer is bounded in size and parsed here
 * like any untrusted input. The only parsing in this process is the
 * container walk of lib/imgseg.c (fuzzed) used to strip metadata losslessly.
 * Nothing here writes to disk; buffers holding file bytes are secure bufs.
 */
#ifndef RF_CLIENT_MEDIA_H
#define RF_CLIENT_MEDIA_H

#include "lib/buf.h"
#include "lib/codename.h"
#include "lib/imgseg.h"

#include <stddef.h>
#include <stdint.h>

/* The hidden argv[1] that makes the refuge binary the decoding child. */
#define RF_MEDIA_CHILD_ARG "__media-child"
/* ... and the PDF child (poppler; fonts readable, see docs/desk.md). */
#define RF_MEDIA_PDF_CHILD_ARG "__media-child-pdf"
#define RF_MEDIA_HEAD_LEN 21u      /* the request's head (media_child.c) */
#define RF_MEDIA_PDF_PAGES_MAX 20u /* PDF pages that may be previewed */

#define RF_MEDIA_IN_MAX (256u << 20)     /* bytes handed to the child */
#define RF_MEDIA_PREVIEW_MAX (32u << 20) /* bytes of a preview PNG */
#define RF_MEDIA_SIDE_DEFAULT 1600u      /* long side of a preview, pixels */
#define RF_MEDIA_SIDE_MAX 4096u
#define RF_MEDIA_TIMEOUT_MS 20000u /* wall clock for one child */

/* What identifying metadata a file carries: kinds, never values. */
enum rf_media_finding {
    RF_MF_GPS = 1,   /* EXIF GPS IFD */
    RF_MF_SERIAL,    /* body / lens serial number */
    RF_MF_CAMERA,    /* make, model, lens, PNG Source */
    RF_MF_DATE,      /* date taken / modified */
    RF_MF_OWNER,     /* artist, copyright, camera owner */
    RF_MF_AUTHOR,    /* document / PNG author */
    RF_MF_CREATOR,   /* creating or producing application (PDF) */
    RF_MF_SOFTWARE,  /* editing software */
    RF_MF_UNIQUE_ID, /* EXIF ImageUniqueID */
    RF_MF_MAKERNOTE, /* vendor maker note */
    RF_MF_THUMBNAIL, /* embedded thumbnail */
    RF_MF_XMP,       /* XMP packet */
    RF_MF_IPTC,      /* IPTC / Photoshop (APP13) */
    RF_MF_COMMENT,   /* comments, titles, descriptions, text chunks */
    RF_MF_EXIF,      /* EXIF with none of the above */
    RF_MF_OTHER,     /* other vendor metadata blocks */
    RF_MF_TRAILING,  /* bytes after the end of the image */
    RF_MF_COUNT
};

struct rf_media_report {
    enum rf_media_type type;
    unsigned n;
    uint8_t f[RF_MF_COUNT]; /* distinct findings, in enum order */
};

/* A finding's label: its msgid in the desk's catalogues ("desk.mf.gps"),
 * and that text in lang ("location (GPS coordinates)"). */
const char *rf_media_finding_msgid(int f);
const char *rf_media_finding_label(int f, enum rf_lang lang);
/* The caseworker's language for the CLI, from the environment as gettext
 * reads it (LANGUAGE, LC_ALL, LC_MESSAGES, LANG): ru, uk, else English. */
enum rf_lang rf_media_lang_env(void);
/* Whether rf_media_strip can remove metadata of this type. */
int rf_media_can_strip(enum rf_media_type t);

/* Type and findings of p (JPEG: container walk + libexif; PNG: chunks +
 * eXIf via libexif; PDF: document info and XMP keys found in the file's
 * uncompressed bytes; other: type only). Decoded in the child. */
int rf_media_check(struct rf_media_report *rep, const uint8_t *p, size_t n);
/* A PNG of the image p, its long side at most max_side (0: default), in
 * out (a secure buf). JPEG and PNG only (RF_ERR_INVALID otherwise: PDFs are
 * not previewed, docs/desk.md says why). Decoded in the child. */
int rf_media_preview(struct rf_buf *out, const uint8_t *p, size_t n, unsigned max_side);
/* A copy of p without its metadata in out (a secure buf, see
 * rf_img_strip), then checked in the child: it must decode, and *after (may
 * be NULL) gets what findings remain. RF_ERR_INVALID for a type that
 * cannot be stripped. p is never changed. */
int rf_media_strip(struct rf_buf *out, struct rf_media_report *after, const uint8_t *p, size_t n);

/* A PNG of page `page` (0-based, below RF_MEDIA_PDF_PAGES_MAX) of the PDF
 * p, rendered by poppler in the PDF child, its long side max_side (0:
 * default); *pages (may be NULL) gets the document's page count.
 * RF_ERR_NOT_FOUND for a page the document does not have; RF_ERR_INVALID
 * when p is not a PDF. */
int rf_media_pdf_preview(struct rf_buf *out, unsigned *pages, const uint8_t *p, size_t n,
                         unsigned page, unsigned max_side);

/* The children's entry points (main() calls them for RF_MEDIA_CHILD_ARG
 * and RF_MEDIA_PDF_CHILD_ARG). */
int rf_media_child_main(void);
/* For a test program that dispatches the two arguments itself: the children
 * are that program (/proc/self/exe), not refuge-media. Call before the first
 * child. */
void rf_media_child_self(void);
int rf_media_pdf_child_main(void);

/* ---- one child run; exposed for the tests ---- */
enum rf_media_op {
    RF_MOP_CHECK = 1,
    RF_MOP_PREVIEW = 2,
    RF_MOP_PDF_PAGE = 3, /* the PDF child only */
    /* test hooks: what a compromised decoder might try */
    RF_MOP_TEST_OPEN = 100, /* open("/etc/passwd") */
    RF_MOP_TEST_SOCKET,     /* socket(AF_INET) */
    RF_MOP_TEST_SPIN,       /* loop forever */
    RF_MOP_TEST_ALLOC,      /* allocate and touch 4 GiB */
    RF_MOP_TEST_FLOOD,      /* answer without end */
    RF_MOP_TEST_LIMITS,     /* answer its RLIMIT_AS and RLIMIT_CPU */
    RF_MOP_TEST_WRITE,      /* open("/usr/share/fonts/x", O_WRONLY|O_CREAT) */
};

struct rf_media_run {
    int op;
    int pdf; /* run the PDF child (RF_MEDIA_PDF_CHILD_ARG) */
    unsigned max_side;
    unsigned page;
    unsigned timeout_ms; /* 0: RF_MEDIA_TIMEOUT_MS */
    size_t out_max;      /* 0: RF_MEDIA_PREVIEW_MAX */
    /* results */
    int child_rc;  /* the status the child answered (0 or rf_err) */
    int signal;    /* the signal that ended it, or 0 */
    int exit_code; /* its exit code when it exited */
    int timed_out; /* killed for overrunning timeout_ms */
};

/* Runs the child on p; out gets its answer's payload. 0 only when the child
 * answered 0 and exited cleanly; RF_ERR_CANCELLED when it was killed (time,
 * signal); RF_ERR_LIMIT when its answer was too long; its own status
 * otherwise. */
int rf_media_run(struct rf_media_run *run, struct rf_buf *out, const uint8_t *p, size_t n);

#endif
