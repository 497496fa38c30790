/*
 * media_child.c - the decoding child (see media.h): refuge-media
 * (src/media_main.c) started with RF_MEDIA_CHILD_ARG. It confines itself before it reads a
 * byte of the file, then decodes with maintained libraries (libjpeg-turbo,
 * libpng, libexif) and answers over its socket (fd 0 in, fd 1 out):
 *
 *   request: u32 "RFM1", u8 op, u32 max_side, u32 page, u64 length, the
 *            file's bytes
 *   answer:  u32 status (0 or a negative rf_err), then the payload
 *            CHECK: u8 type, u8 count, count x u8 finding (ascending)
 *            PREVIEW: a PNG
 *            PDF_PAGE: u32 page count, a PNG
 *
 * The PDF child (RF_MEDIA_PDF_CHILD_ARG, poppler with cairo) renders a
 * built-in PDF before it confines itself (fontconfig and the font engine
 * set up), then gets a Landlock rule to read the font directories and a
 * seccomp filter that also allows opening read-only, reading, seeking, stat
 * and close; it refuses to start without Landlock.
 *
 * Confinement, in order: every fd but 0, 1, 2 closed; not dumpable;
 * RLIMIT_CPU, RLIMIT_AS (not in sanitizer builds: their shadow memory is
 * terabytes of address space), RLIMIT_FSIZE 0, RLIMIT_NOFILE 3, RLIMIT_CORE 0;
 * Landlock with every filesystem right handled and none granted; no new
 * privileges; seccomp allowing read(0), write(1) (and write(2) for sanitizer
 * reports), memory calls without PROT_EXEC, exit. Anything else is SIGSYS.
 * Own limits come first anyway: dimensions and pixel counts are checked
 * before any pixel buffer is allocated.
 */
#include "client/media.h"
#include "lib/err.h"

#include <cairo.h>
#include <errno.h>
#include <fcntl.h>
#include <fontconfig/fontconfig.h>
#include <poppler.h>
#include <stdio.h> /* before jpeglib.h, which needs FILE */
#include <jpeglib.h>
#include <libexif/exif-data.h>
#include <png.h>
#include <seccomp.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__) && !defined(RF_SANITIZER_BUILD)
#define RF_SANITIZER_BUILD 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(RF_SANITIZER_BUILD)
#define RF_SANITIZER_BUILD 1
#endif
#endif

#define MAGIC 0x52464d31u
#define CPU_SECONDS 10
#define AS_BYTES (1024ull << 20)
#define SIDE_MAX 20000u                /* either dimension */
#define JPEG_PIXELS_MAX (120ull << 20) /* before DCT scaling */
#define PNG_PIXELS_MAX (40ull << 20)   /* decoded whole, 4 bytes each */
#define DECODED_MAX (256ull << 20)     /* bytes of one decoded bitmap */
#define PDF_FDS 32                     /* RLIMIT_NOFILE of the PDF child */

struct bitmap {
    uint8_t *px;
    uint32_t w, h, c; /* c: 3 (RGB) or 4 (RGBA) */
};

static struct rlimit lim_as, lim_cpu;

/* ------------------------------------------------------------ confinement */

#define LL_FS_ALL_V1 ((1ull << 13) - 1) /* execute .. make_sym */
#define LL_FS_REFER (1ull << 13)
#define LL_FS_TRUNCATE (1ull << 14)
#define LL_FS_IOCTL_DEV (1ull << 15)
#define LL_SCOPE_ABSTRACT_UNIX_SOCKET (1ull << 0)
#define LL_SCOPE_SIGNAL (1ull << 1)

struct ll_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

struct ll_path_beneath {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

#define LL_FS_READ_FILE (1ull << 2)
#define LL_FS_READ_DIR (1ull << 3)

/* Read-only places the PDF child may open after confinement: the fonts, the
 * fontconfig configuration and cache, poppler's CMaps (docs/desk.md). */
static const char *const pdf_ro_paths[] = {
    "/usr/share/fonts",      "/usr/local/share/fonts", "/etc/fonts",
    "/var/cache/fontconfig", "/usr/share/fontconfig",  "/usr/share/poppler",
};

/* Landlock: every filesystem right handled; with ro != 0, reading files and
 * directories under pdf_ro_paths granted. Returns the ABI (0: no Landlock;
 * negative: the ruleset could not be applied). */
static long landlock_restrict(int ro)
{
#ifdef SYS_landlock_create_ruleset
    long abi = syscall(SYS_landlock_create_ruleset, NULL, 0, 1u /* VERSION */);
    if (abi < 1)
        return 0; /* seccomp below still forbids every open */
    struct ll_attr a;
    size_t sz = abi >= 6 ? sizeof(a) : abi >= 4 ? 2 * sizeof(uint64_t) : sizeof(uint64_t);
    memset(&a, 0, sizeof(a));
    a.handled_access_fs = LL_FS_ALL_V1;
    if (abi >= 2)
        a.handled_access_fs |= LL_FS_REFER;
    if (abi >= 3)
        a.handled_access_fs |= LL_FS_TRUNCATE;
    if (abi >= 5)
        a.handled_access_fs |= LL_FS_IOCTL_DEV;
    if (abi >= 4)
        a.handled_access_net = 3; /* bind and connect TCP */
    if (abi >= 6)
        a.scoped = LL_SCOPE_ABSTRACT_UNIX_SOCKET | LL_SCOPE_SIGNAL;
    long fd = syscall(SYS_landlock_create_ruleset, &a, sz, 0);
    if (fd < 0)
        return -1;
    for (size_t i = 0; ro && i < sizeof(pdf_ro_paths) / sizeof(pdf_ro_paths[0]); i++) {
        int dfd = open(pdf_ro_paths[i], O_PATH | O_CLOEXEC | O_DIRECTORY);
        if (dfd < 0)
            continue; /* not on this system: nothing to grant */
        struct ll_path_beneath pb = {LL_FS_READ_FILE | LL_FS_READ_DIR, dfd};
        long k = syscall(SYS_landlock_add_rule, (int)fd, 1 /* PATH_BENEATH */, &pb, 0);
        close(dfd);
        if (k != 0) {
            close((int)fd);
            return -1;
        }
    }
    long k = syscall(SYS_landlock_restrict_self, (int)fd, 0);
    close((int)fd);
    return k == 0 ? abi : -1;
#else
    (void)ro;
    return 0;
#endif
}

/* The PDF child's additions: opening read-only (Landlock decides where:
 * only the fonts and their configuration), reading, seeking, stat and close
 * of what it opened (as measured with strace: fontconfig and FreeType open
 * a font file, stat, seek and read it, close it). Still no write but fd 1, no socket, no exec, no
 * clone, no PROT_EXEC. */
static int seccomp_pdf_rules(scmp_filter_ctx ctx)
{
    /* O_TMPFILE includes O_DIRECTORY, which opendir() uses */
    const uint64_t wr =
        O_WRONLY | O_RDWR | O_CREAT | O_TRUNC | O_APPEND | (O_TMPFILE & ~O_DIRECTORY);
    int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                              SCMP_A2(SCMP_CMP_MASKED_EQ, wr, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(read), 1, SCMP_A0(SCMP_CMP_GE, 3));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(lseek), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(newfstatat), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(close), 0);
    return rc;
}

static int seccomp_strict(int pdf)
{
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
    if (ctx == NULL)
        return -1;
    int rc = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(read), 1, SCMP_A0(SCMP_CMP_EQ, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 1));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(exit_group), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(brk), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                           SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(munmap), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mremap), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(madvise), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigreturn), 0);
    if (pdf)
        rc |= seccomp_pdf_rules(ctx);
#ifdef RF_SANITIZER_BUILD
    /* what the sanitizer runtimes do while running and to print a report
     * (their symbolizer's opens still die: a report then ends in SIGSYS) */
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(write), 1, SCMP_A0(SCMP_CMP_EQ, 2));
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sched_yield), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(getpid), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(gettid), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigprocmask), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(sigaltstack), 0);
    rc |= seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(futex), 0);
#endif
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    return rc == 0 ? 0 : -1;
}

/* pdf: the PDF child's looser filesystem rules (fonts, read-only) and a
 * few more descriptors; it also needs Landlock, or it does not start. */
static int confine(int pdf)
{
    syscall(SYS_close_range, 3u, ~0u, 0u);
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    struct rlimit zero = {0, 0}, three = {3, 3}, nfd = {PDF_FDS, PDF_FDS};
    if (pdf)
        three = nfd;
    lim_cpu.rlim_cur = lim_cpu.rlim_max = CPU_SECONDS;
    if (setrlimit(RLIMIT_CPU, &lim_cpu) != 0 || setrlimit(RLIMIT_FSIZE, &zero) != 0 ||
        setrlimit(RLIMIT_CORE, &zero) != 0 || setrlimit(RLIMIT_NOFILE, &three) != 0)
        return -1;
#ifndef RF_SANITIZER_BUILD
    lim_as.rlim_cur = lim_as.rlim_max = AS_BYTES;
    if (setrlimit(RLIMIT_AS, &lim_as) != 0)
        return -1;
#else
    lim_as.rlim_cur = lim_as.rlim_max = RLIM_INFINITY;
#endif
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
        return -1;
    long ll = landlock_restrict(pdf);
    /* without Landlock, the image child's seccomp alone forbids every open;
     * the PDF child's would allow reading any file: it refuses to start */
    if (pdf && ll < 1)
        return -1;
    return seccomp_strict(pdf);
}

/* ------------------------------------------------------------ I/O */

static int read_full(void *p, size_t n)
{
    uint8_t *q = p;
    while (n > 0) {
        ssize_t k = read(0, q, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return RF_ERR_TRUNCATED;
        q += k;
        n -= (size_t)k;
    }
    return 0;
}

static void write_full(const void *p, size_t n)
{
    const uint8_t *q = p;
    while (n > 0) {
        ssize_t k = write(1, q, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            _exit(3);
        q += k;
        n -= (size_t)k;
    }
}

static void answer(int status, const uint8_t *p, size_t n)
{
    uint8_t h[4] = {(uint8_t)((uint32_t)status >> 24), (uint8_t)((uint32_t)status >> 16),
                    (uint8_t)((uint32_t)status >> 8), (uint8_t)(uint32_t)status};
    write_full(h, 4);
    if (status == 0 && n > 0)
        write_full(p, n);
}

/* ------------------------------------------------------------ findings */

struct found {
    uint8_t has[RF_MF_COUNT];
};

static void add(struct found *f, int k)
{
    if (k > 0 && k < RF_MF_COUNT)
        f->has[k] = 1;
}

static int exif_has(ExifData *ed, unsigned tag)
{
    for (int i = 0; i < EXIF_IFD_COUNT; i++)
        if (ed->ifd[i] && exif_content_get_entry(ed->ifd[i], (ExifTag)tag))
            return 1;
    return 0;
}

/* p: "Exif\0\0" + a TIFF structure. */
static void exif_findings(struct found *f, const uint8_t *p, size_t n)
{
    static const struct {
        unsigned tag;
        int kind;
    } tags[] = {
        {0xa431, RF_MF_SERIAL},    {0xa435, RF_MF_SERIAL},    {0xc62f, RF_MF_SERIAL},
        {0x010f, RF_MF_CAMERA},    {0x0110, RF_MF_CAMERA},    {0xa433, RF_MF_CAMERA},
        {0xa434, RF_MF_CAMERA},    {0x0132, RF_MF_DATE},      {0x9003, RF_MF_DATE},
        {0x9004, RF_MF_DATE},      {0x013b, RF_MF_OWNER},     {0x8298, RF_MF_OWNER},
        {0xa430, RF_MF_OWNER},     {0x9c9d, RF_MF_AUTHOR},    {0x0131, RF_MF_SOFTWARE},
        {0xa420, RF_MF_UNIQUE_ID}, {0x927c, RF_MF_MAKERNOTE}, {0x9286, RF_MF_COMMENT},
        {0x010e, RF_MF_COMMENT},   {0x9c9b, RF_MF_COMMENT},   {0x9c9c, RF_MF_COMMENT},
        {0x9c9e, RF_MF_COMMENT},   {0x9c9f, RF_MF_COMMENT},
    };
    if (n > UINT32_MAX)
        return;
    ExifData *ed = exif_data_new();
    if (ed == NULL)
        return;
    exif_data_unset_option(ed, EXIF_DATA_OPTION_FOLLOW_SPECIFICATION);
    exif_data_unset_option(ed, EXIF_DATA_OPTION_IGNORE_UNKNOWN_TAGS);
    exif_data_load_data(ed, p, (unsigned int)n);
    int any = 0;
    if (ed->ifd[EXIF_IFD_GPS] && ed->ifd[EXIF_IFD_GPS]->count > 0) {
        add(f, RF_MF_GPS);
        any = 1;
    }
    for (size_t i = 0; i < sizeof(tags) / sizeof(tags[0]); i++)
        if (exif_has(ed, tags[i].tag)) {
            add(f, tags[i].kind);
            any = 1;
        }
    if (ed->data && ed->size > 0) {
        add(f, RF_MF_THUMBNAIL);
        any = 1;
    }
    if (!any)
        add(f, RF_MF_EXIF);
    exif_data_unref(ed);
}

static int prefix(const struct rf_imgseg *s, const char *id)
{
    size_t n = strlen(id);
    return s->len >= n && memcmp(s->data, id, n) == 0;
}

static int jpeg_finding(void *ctx, const struct rf_imgseg *s)
{
    struct found *f = ctx;
    if (s->kind != RF_SEG_SEGMENT || rf_jpeg_keep(s))
        return 0;
    if (s->marker == 0xe1 && prefix(s, "Exif"))
        exif_findings(f, s->data, s->len);
    else if (s->marker == 0xe1 && prefix(s, "http://ns.adobe.com/"))
        add(f, RF_MF_XMP);
    else if (s->marker == 0xed)
        add(f, RF_MF_IPTC);
    else if (s->marker == 0xfe)
        add(f, RF_MF_COMMENT);
    else if (s->marker == 0xe0)
        add(f, RF_MF_THUMBNAIL);
    else
        add(f, RF_MF_OTHER);
    return 0;
}

static int png_text_kind(const uint8_t *p, size_t n)
{
    static const struct {
        const char *key;
        int kind;
    } keys[] = {
        {"Author", RF_MF_AUTHOR},
        {"Copyright", RF_MF_OWNER},
        {"Creation Time", RF_MF_DATE},
        {"Software", RF_MF_SOFTWARE},
        {"Source", RF_MF_CAMERA},
        {"XML:com.adobe.xmp", RF_MF_XMP},
        {"Raw profile type exif", RF_MF_EXIF},
        {"Raw profile type APP1", RF_MF_EXIF},
        {"Raw profile type iptc", RF_MF_IPTC},
    };
    size_t k = 0;
    while (k < n && k < 80 && p[k] != 0)
        k++;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (strlen(keys[i].key) == k && memcmp(p, keys[i].key, k) == 0)
            return keys[i].kind;
    return RF_MF_COMMENT;
}

static int png_finding(void *ctx, const struct rf_imgseg *s)
{
    struct found *f = ctx;
    if (s->kind != RF_SEG_SEGMENT || rf_png_keep(s))
        return 0;
    if (!memcmp(s->type, "tEXt", 4) || !memcmp(s->type, "zTXt", 4) || !memcmp(s->type, "iTXt", 4))
        add(f, png_text_kind(s->data, s->len));
    else if (!memcmp(s->type, "tIME", 4))
        add(f, RF_MF_DATE);
    else if (!memcmp(s->type, "eXIf", 4)) {
        uint8_t *e = malloc(s->len + 6);
        if (e == NULL)
            return RF_ERR_NOMEM;
        memcpy(e, "Exif\0\0", 6);
        memcpy(e + 6, s->data, s->len);
        exif_findings(f, e, s->len + 6);
        free(e);
    } else
        add(f, RF_MF_OTHER);
    return 0;
}

/* PDF: names of the document information dictionary and XMP, where they
 * stand uncompressed (in object streams they are not seen: docs/desk.md). */
static void pdf_findings(struct found *f, const uint8_t *p, size_t n)
{
    static const struct {
        const char *key;
        int kind;
    } keys[] = {
        {"/Author", RF_MF_AUTHOR},     {"/Creator", RF_MF_CREATOR},  {"/Producer", RF_MF_CREATOR},
        {"/CreationDate", RF_MF_DATE}, {"/ModDate", RF_MF_DATE},     {"/Title", RF_MF_COMMENT},
        {"/Subject", RF_MF_COMMENT},   {"/Keywords", RF_MF_COMMENT}, {"<x:xmpmeta", RF_MF_XMP},
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
        if (memmem(p, n, keys[i].key, strlen(keys[i].key)))
            add(f, keys[i].kind);
}

static int child_pdf; /* this child is the PDF child (RF_MEDIA_PDF_CHILD_ARG) */
static void pdf_info_findings(struct found *f, const uint8_t *p, size_t n);

static void op_check(const uint8_t *p, size_t n)
{
    struct found f;
    size_t end = 0;
    int rc = 0;
    memset(&f, 0, sizeof(f));
    enum rf_media_type t = rf_media_detect(p, n);
    if (t == RF_MEDIA_JPEG)
        rc = rf_jpeg_walk(p, n, jpeg_finding, &f, &end);
    else if (t == RF_MEDIA_PNG)
        rc = rf_png_walk(p, n, png_finding, &f, &end);
    else if (t == RF_MEDIA_PDF && child_pdf)
        pdf_info_findings(&f, p, n);
    else if (t == RF_MEDIA_PDF)
        pdf_findings(&f, p, n);
    if (rc != 0) {
        answer(rc, NULL, 0);
        return;
    }
    if ((t == RF_MEDIA_JPEG || t == RF_MEDIA_PNG) && end < n)
        add(&f, RF_MF_TRAILING);
    uint8_t out[2 + RF_MF_COUNT];
    size_t k = 2;
    for (int i = 1; i < RF_MF_COUNT; i++)
        if (f.has[i])
            out[k++] = (uint8_t)i;
    out[0] = (uint8_t)t;
    out[1] = (uint8_t)(k - 2);
    answer(0, out, k);
}

/* ------------------------------------------------------------ pixels */

struct jerr {
    struct jpeg_error_mgr pub;
    jmp_buf jb;
};

static void jerr_exit(j_common_ptr c)
{
    longjmp(((struct jerr *)c->err)->jb, 1);
}

static void jerr_quiet(j_common_ptr c)
{
    (void)c;
}

static int decode_jpeg(struct bitmap *bm, const uint8_t *p, size_t n, unsigned max_side)
{
    struct jpeg_decompress_struct ci;
    struct jerr je;
    uint8_t *volatile px = NULL;
    memset(&ci, 0, sizeof(ci));
    ci.err = jpeg_std_error(&je.pub);
    je.pub.error_exit = jerr_exit;
    je.pub.output_message = jerr_quiet;
    if (setjmp(je.jb)) {
        jpeg_destroy_decompress(&ci);
        free(px);
        return RF_ERR_FORMAT;
    }
    jpeg_create_decompress(&ci);
    ci.mem->max_memory_to_use = 256L << 20;
    jpeg_mem_src(&ci, p, (unsigned long)n);
    if (jpeg_read_header(&ci, TRUE) != JPEG_HEADER_OK)
        longjmp(je.jb, 1);
    uint32_t w = ci.image_width, h = ci.image_height;
    if (w == 0 || h == 0 || w > SIDE_MAX || h > SIDE_MAX || (uint64_t)w * h > JPEG_PIXELS_MAX) {
        jpeg_destroy_decompress(&ci);
        return RF_ERR_LIMIT;
    }
    uint32_t lng = w > h ? w : h;
    unsigned d = 1;
    while (d < 8 && lng / (d * 2) >= max_side)
        d *= 2;
    ci.scale_num = 1;
    ci.scale_denom = d;
    ci.out_color_space = JCS_RGB;
    jpeg_start_decompress(&ci);
    if (ci.output_components != 3)
        longjmp(je.jb, 1);
    uint64_t size = (uint64_t)ci.output_width * ci.output_height * 3;
    if (size > DECODED_MAX) {
        jpeg_destroy_decompress(&ci);
        return RF_ERR_LIMIT;
    }
    px = malloc((size_t)size);
    if (px == NULL) {
        jpeg_destroy_decompress(&ci);
        return RF_ERR_NOMEM;
    }
    while (ci.output_scanline < ci.output_height) {
        JSAMPROW row = px + (size_t)ci.output_scanline * ci.output_width * 3;
        if (jpeg_read_scanlines(&ci, &row, 1) != 1)
            longjmp(je.jb, 1);
    }
    /* no jpeg_finish_decompress: whatever follows the last row (junk,
     * trailing data) is no business of the preview; destroy never fails */
    bm->w = ci.output_width;
    bm->h = ci.output_height;
    bm->c = 3;
    jpeg_destroy_decompress(&ci);
    bm->px = px;
    return 0;
}

struct memsrc {
    struct rf_reader r;
};

static void png_mem_read(png_structp png, png_bytep out, size_t n)
{
    struct memsrc *m = png_get_io_ptr(png);
    if (rf_get_bytes(&m->r, out, n) != 0)
        png_error(png, "truncated");
}

static void png_quiet(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

static void png_fail(png_structp png, png_const_charp msg)
{
    (void)msg;
    png_longjmp(png, 1);
}

static int decode_png(struct bitmap *bm, const uint8_t *p, size_t n)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, NULL, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    uint8_t *volatile px = NULL;
    png_bytep *volatile rows = NULL;
    struct memsrc m;
    if (info == NULL) {
        png_destroy_read_struct(&png, NULL, NULL);
        return RF_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(px);
        free(rows);
        return RF_ERR_FORMAT;
    }
    rf_reader_init(&m.r, p, n);
    png_set_read_fn(png, &m, png_mem_read);
    png_set_user_limits(png, SIDE_MAX, SIDE_MAX);
    png_set_chunk_cache_max(png, 256);
    png_set_chunk_malloc_max(png, 8u << 20);
    png_read_info(png, info);
    uint32_t w = png_get_image_width(png, info), h = png_get_image_height(png, info);
    if ((uint64_t)w * h > PNG_PIXELS_MAX) {
        png_destroy_read_struct(&png, &info, NULL);
        return RF_ERR_LIMIT;
    }
    png_set_expand(png);
    png_set_strip_16(png);
    png_set_gray_to_rgb(png);
    png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != (size_t)w * 4)
        png_error(png, "unexpected row size");
    px = malloc((size_t)w * h * 4);
    rows = malloc(sizeof(png_bytep) * h);
    if (px == NULL || rows == NULL)
        png_error(png, "out of memory");
    for (uint32_t y = 0; y < h; y++)
        rows[y] = px + (size_t)y * w * 4;
    png_read_image(png, rows);
    free(rows);
    png_destroy_read_struct(&png, &info, NULL);
    bm->px = px;
    bm->w = w;
    bm->h = h;
    bm->c = 4;
    return 0;
}

/* Box filter down to at most max_side on the long side. */
static int scale(struct bitmap *bm, unsigned max_side)
{
    uint32_t lng = bm->w > bm->h ? bm->w : bm->h, ch = bm->c;
    if (ch == 0 || ch > 4 || max_side == 0 || lng == 0)
        return RF_ERR_INVALID;
    if (lng <= max_side)
        return 0;
    uint32_t ow = (uint32_t)((uint64_t)bm->w * max_side / lng);
    uint32_t oh = (uint32_t)((uint64_t)bm->h * max_side / lng);
    if (ow == 0)
        ow = 1;
    if (oh == 0)
        oh = 1;
    uint8_t *out = malloc((size_t)ow * oh * ch);
    if (out == NULL)
        return RF_ERR_NOMEM;
    for (uint32_t y = 0; y < oh; y++) {
        uint32_t y0 = (uint32_t)((uint64_t)y * bm->h / oh);
        uint32_t y1 = (uint32_t)((uint64_t)(y + 1) * bm->h / oh);
        if (y1 <= y0)
            y1 = y0 + 1;
        for (uint32_t x = 0; x < ow; x++) {
            uint32_t x0 = (uint32_t)((uint64_t)x * bm->w / ow);
            uint32_t x1 = (uint32_t)((uint64_t)(x + 1) * bm->w / ow);
            if (x1 <= x0)
                x1 = x0 + 1;
            uint64_t sum[4] = {0, 0, 0, 0};
            for (uint32_t sy = y0; sy < y1; sy++)
                for (uint32_t sx = x0; sx < x1; sx++)
                    for (uint32_t c = 0; c < ch; c++)
                        sum[c] += bm->px[((size_t)sy * bm->w + sx) * ch + c];
            uint64_t cnt = (uint64_t)(y1 - y0) * (x1 - x0);
            for (uint32_t c = 0; c < ch; c++)
                out[((size_t)y * ow + x) * ch + c] = (uint8_t)(sum[c] / cnt);
        }
    }
    free(bm->px);
    bm->px = out;
    bm->w = ow;
    bm->h = oh;
    return 0;
}

struct memdst {
    uint8_t *p;
    size_t len, cap;
};

static void png_mem_write(png_structp png, png_bytep data, size_t n)
{
    struct memdst *d = png_get_io_ptr(png);
    if (n > RF_MEDIA_PREVIEW_MAX - d->len)
        png_error(png, "too large");
    if (d->len + n > d->cap) {
        size_t cap = d->cap ? d->cap : 65536;
        while (cap < d->len + n)
            cap *= 2;
        uint8_t *q = realloc(d->p, cap);
        if (q == NULL)
            png_error(png, "out of memory");
        d->p = q;
        d->cap = cap;
    }
    memcpy(d->p + d->len, data, n);
    d->len += n;
}

static void png_no_flush(png_structp png)
{
    (void)png;
}

static int encode_png(struct memdst *d, const struct bitmap *bm)
{
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, png_fail, png_quiet);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (info == NULL) {
        png_destroy_write_struct(&png, NULL);
        return RF_ERR_NOMEM;
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return RF_ERR_LIMIT;
    }
    png_set_write_fn(png, d, png_mem_write, png_no_flush);
    png_set_IHDR(png, info, bm->w, bm->h, 8,
                 bm->c == 4 ? PNG_COLOR_TYPE_RGB_ALPHA : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (uint32_t y = 0; y < bm->h; y++)
        png_write_row(png, bm->px + (size_t)y * bm->w * bm->c);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    return 0;
}

static void op_preview(const uint8_t *p, size_t n, unsigned max_side)
{
    struct bitmap bm = {NULL, 0, 0, 0};
    struct memdst d = {NULL, 0, 0};
    int rc;
    if (max_side == 0 || max_side > RF_MEDIA_SIDE_MAX) {
        answer(RF_ERR_INVALID, NULL, 0);
        return;
    }
    enum rf_media_type t = rf_media_detect(p, n);
    if (t == RF_MEDIA_JPEG)
        rc = decode_jpeg(&bm, p, n, max_side);
    else if (t == RF_MEDIA_PNG)
        rc = decode_png(&bm, p, n);
    else
        rc = RF_ERR_INVALID;
    if (rc == 0)
        rc = scale(&bm, max_side);
    if (rc == 0)
        rc = encode_png(&d, &bm);
    answer(rc, d.p, d.len);
    free(bm.px);
    free(d.p);
}

/* ------------------------------------------------------------ PDF */

/* A one-page PDF with a line of Helvetica (a font it does not embed): the
 * PDF child renders it before confinement, so fontconfig has read its
 * configuration and cache, poppler has set up its font engine and the
 * common substitute font is open. Fonts a hostile PDF asks for later are
 * opened read-only under the Landlock rule (pdf_ro_paths). */
static const char warm_pdf[] =
    "%PDF-1.4\n"
    "1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    "2 0 obj<</Type/Pages/Kids[3 0 R]/Count 1>>endobj\n"
    "3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 50]/Contents 4 0 R"
    "/Resources<</Font<</F1 5 0 R>>>>>>endobj\n"
    "4 0 obj<</Length 41>>stream\nBT /F1 12 Tf 10 20 Td (Warm up 123) Tj ET\nendstream endobj\n"
    "5 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n"
    "trailer<</Root 1 0 R>>\n%%EOF\n";

static PopplerDocument *pdf_open(const uint8_t *p, size_t n)
{
    GBytes *b = g_bytes_new_static(p, n);
    PopplerDocument *doc = poppler_document_new_from_bytes(b, NULL, NULL);
    g_bytes_unref(b);
    return doc;
}

/* The page as an RGB bitmap, its long side max_side pixels, on white.
 * Annotations are drawn (an appearance is only drawing); nothing in the
 * file is run: poppler has no JavaScript engine, and rendering follows no
 * action, link, launch or embedded file. */
static int pdf_render(struct bitmap *bm, PopplerDocument *doc, unsigned page, unsigned max_side)
{
    PopplerPage *pg = poppler_document_get_page(doc, (int)page);
    if (pg == NULL)
        return RF_ERR_FORMAT;
    double w = 0, h = 0;
    poppler_page_get_size(pg, &w, &h);
    if (!(w >= 1 && h >= 1 && w <= 1e6 && h <= 1e6)) {
        g_object_unref(pg);
        return RF_ERR_FORMAT;
    }
    double lng = w > h ? w : h, k = (double)max_side / lng;
    uint32_t pw = (uint32_t)(w * k + 0.5), ph = (uint32_t)(h * k + 0.5);
    if (pw < 1)
        pw = 1;
    if (ph < 1)
        ph = 1;
    cairo_surface_t *sf = cairo_image_surface_create(CAIRO_FORMAT_RGB24, (int)pw, (int)ph);
    if (cairo_surface_status(sf) != CAIRO_STATUS_SUCCESS) {
        cairo_surface_destroy(sf);
        g_object_unref(pg);
        return RF_ERR_NOMEM;
    }
    cairo_t *cr = cairo_create(sf);
    cairo_set_source_rgb(cr, 1, 1, 1);
    cairo_paint(cr);
    cairo_scale(cr, (double)pw / w, (double)ph / h);
    poppler_page_render(pg, cr);
    int st = cairo_status(cr);
    cairo_destroy(cr);
    cairo_surface_flush(sf);
    g_object_unref(pg);
    int rc = st == CAIRO_STATUS_SUCCESS ? 0 : RF_ERR_FORMAT;
    uint8_t *px = rc == 0 ? malloc((size_t)pw * ph * 3) : NULL;
    if (rc == 0 && px == NULL)
        rc = RF_ERR_NOMEM;
    if (rc == 0) {
        const uint8_t *d = cairo_image_surface_get_data(sf);
        int stride = cairo_image_surface_get_stride(sf);
        for (uint32_t y = 0; y < ph; y++)
            for (uint32_t x = 0; x < pw; x++) {
                uint32_t v;
                memcpy(&v, d + (size_t)y * (size_t)stride + (size_t)x * 4, 4);
                uint8_t *o = px + ((size_t)y * pw + x) * 3;
                o[0] = (uint8_t)(v >> 16);
                o[1] = (uint8_t)(v >> 8);
                o[2] = (uint8_t)v;
            }
        bm->px = px;
        bm->w = pw;
        bm->h = ph;
        bm->c = 3;
    }
    cairo_surface_destroy(sf);
    return rc;
}

static void quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *msg, gpointer data)
{
    (void)domain, (void)level, (void)msg, (void)data;
}

static GLogWriterOutput quiet_writer(GLogLevelFlags level, const GLogField *fields, gsize n,
                                     gpointer data)
{
    (void)level, (void)fields, (void)n, (void)data;
    return G_LOG_WRITER_HANDLED;
}

static void pdf_warm_up(void)
{
    /* GLib's warnings would write to fd 2, which seccomp forbids in a
     * release build (SIGSYS): a warning about a hostile file is no reason
     * to die, and says nothing the caseworker needs */
    g_log_set_default_handler(quiet_log, NULL);
    g_log_set_writer_func(quiet_writer, NULL, NULL);
    FcInit();
    PopplerDocument *doc = pdf_open((const uint8_t *)warm_pdf, sizeof(warm_pdf) - 1);
    if (doc == NULL)
        return;
    struct bitmap bm = {NULL, 0, 0, 0};
    if (pdf_render(&bm, doc, 0, 64) == 0)
        free(bm.px);
    g_object_unref(doc);
}

static int has_text(gchar *s)
{
    int r = s != NULL && s[0] != 0;
    g_free(s);
    return r;
}

/* The document information dictionary and the XMP packet, read by poppler
 * (also from compressed object streams), plus the uncompressed keys. */
static void pdf_info_findings(struct found *f, const uint8_t *p, size_t n)
{
    pdf_findings(f, p, n);
    PopplerDocument *doc = pdf_open(p, n);
    if (doc == NULL)
        return;
    if (has_text(poppler_document_get_author(doc)))
        add(f, RF_MF_AUTHOR);
    if (has_text(poppler_document_get_creator(doc)) || has_text(poppler_document_get_producer(doc)))
        add(f, RF_MF_CREATOR);
    if (poppler_document_get_creation_date(doc) > 0 ||
        poppler_document_get_modification_date(doc) > 0)
        add(f, RF_MF_DATE);
    if (has_text(poppler_document_get_title(doc)) || has_text(poppler_document_get_subject(doc)) ||
        has_text(poppler_document_get_keywords(doc)))
        add(f, RF_MF_COMMENT);
    if (has_text(poppler_document_get_metadata(doc)))
        add(f, RF_MF_XMP);
    g_object_unref(doc);
}

/* answer: u32 page count, then the PNG of page `page` (0-based) */
static void op_pdf_page(const uint8_t *p, size_t n, unsigned page, unsigned max_side)
{
    struct bitmap bm = {NULL, 0, 0, 0};
    struct memdst d = {NULL, 0, 0};
    int rc = 0;
    if (max_side == 0 || max_side > RF_MEDIA_SIDE_MAX || page >= RF_MEDIA_PDF_PAGES_MAX ||
        rf_media_detect(p, n) != RF_MEDIA_PDF) {
        answer(RF_ERR_INVALID, NULL, 0);
        return;
    }
    PopplerDocument *doc = pdf_open(p, n);
    if (doc == NULL) {
        answer(RF_ERR_FORMAT, NULL, 0);
        return;
    }
    int np = poppler_document_get_n_pages(doc);
    if (np < 1 || page >= (unsigned)np)
        rc = RF_ERR_NOT_FOUND;
    if (rc == 0)
        rc = pdf_render(&bm, doc, page, max_side);
    g_object_unref(doc);
    uint8_t cnt[4] = {(uint8_t)((uint32_t)np >> 24), (uint8_t)((uint32_t)np >> 16),
                      (uint8_t)((uint32_t)np >> 8), (uint8_t)np};
    if (rc == 0) {
        /* the count first, then the PNG, in one buffer */
        d.p = malloc(65536);
        d.cap = 65536;
        if (d.p == NULL)
            rc = RF_ERR_NOMEM;
        else {
            memcpy(d.p, cnt, 4);
            d.len = 4;
            rc = encode_png(&d, &bm);
        }
    }
    answer(rc, d.p, d.len);
    free(bm.px);
    free(d.p);
}

/* ------------------------------------------------------------ test hooks */

static void op_test(int op)
{
    if (op == RF_MOP_TEST_OPEN) {
        int fd = (int)syscall(SYS_openat, -100 /* AT_FDCWD */, "/etc/passwd", 0);
        answer(fd >= 0 ? 0 : RF_ERR_IO, NULL, 0);
    } else if (op == RF_MOP_TEST_WRITE) {
        int fd = (int)syscall(SYS_openat, -100, "/usr/share/fonts/x", O_WRONLY | O_CREAT, 0600);
        answer(fd >= 0 ? 0 : RF_ERR_IO, NULL, 0);
    } else if (op == RF_MOP_TEST_SOCKET) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        answer(fd >= 0 ? 0 : RF_ERR_IO, NULL, 0);
    } else if (op == RF_MOP_TEST_SPIN) {
        for (volatile unsigned long i = 0;; i++)
            ;
    } else if (op == RF_MOP_TEST_ALLOC) {
        size_t chunk = 64u << 20, got = 0;
        while (got < (4ull << 30)) {
            uint8_t *q = malloc(chunk);
            if (q == NULL)
                break;
            memset(q, 1, chunk);
            got += chunk;
        }
        answer(got >= (4ull << 30) ? 0 : RF_ERR_NOMEM, NULL, 0);
    } else if (op == RF_MOP_TEST_FLOOD) {
        static uint8_t junk[65536];
        answer(0, NULL, 0);
        for (;;)
            write_full(junk, sizeof(junk));
    } else if (op == RF_MOP_TEST_LIMITS) {
        uint8_t out[16];
        uint64_t v[2] = {(uint64_t)lim_as.rlim_cur, (uint64_t)lim_cpu.rlim_cur};
        for (int i = 0; i < 2; i++)
            for (int b = 0; b < 8; b++)
                out[i * 8 + b] = (uint8_t)(v[i] >> (56 - 8 * b));
        answer(0, out, sizeof(out));
    } else {
        answer(RF_ERR_INVALID, NULL, 0);
    }
}

static int child_run(int pdf)
{
    child_pdf = pdf;
    if (pdf)
        pdf_warm_up(); /* before confinement: fontconfig, the font engine */
    if (confine(pdf) != 0)
        _exit(4);
    uint8_t head[RF_MEDIA_HEAD_LEN];
    struct rf_reader r;
    uint32_t magic, side, page;
    uint8_t op;
    uint64_t len;
    if (read_full(head, sizeof(head)) != 0)
        _exit(5);
    rf_reader_init(&r, head, sizeof(head));
    if (rf_get_u32(&r, &magic) != 0 || rf_get_u8(&r, &op) != 0 || rf_get_u32(&r, &side) != 0 ||
        rf_get_u32(&r, &page) != 0 || rf_get_u64(&r, &len) != 0 || magic != MAGIC) {
        answer(RF_ERR_PROTOCOL, NULL, 0);
        _exit(0);
    }
    if (len > RF_MEDIA_IN_MAX) {
        answer(RF_ERR_LIMIT, NULL, 0);
        _exit(0);
    }
    uint8_t *p = malloc(len ? (size_t)len : 1);
    if (p == NULL) {
        answer(RF_ERR_NOMEM, NULL, 0);
        _exit(0);
    }
    if (read_full(p, (size_t)len) != 0) {
        answer(RF_ERR_TRUNCATED, NULL, 0);
        _exit(0);
    }
    if (op == RF_MOP_CHECK)
        op_check(p, (size_t)len);
    else if (op == RF_MOP_PREVIEW && !pdf)
        op_preview(p, (size_t)len, side);
    else if (op == RF_MOP_PDF_PAGE && pdf)
        op_pdf_page(p, (size_t)len, page, side);
    else
        op_test(op);
    _exit(0);
}

int rf_media_child_main(void)
{
    return child_run(0);
}

int rf_media_pdf_child_main(void)
{
    return child_run(1);
}
