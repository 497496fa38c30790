/* media_test.c - what a caseworker (and an attacker sending files) sees of
 * client/media.c: the type comes from the bytes, not the name; a photo's GPS
 * and serial number are reported and gone from the stripped copy, which still
 * decodes, while the original is untouched; a preview is a bounded PNG; a
 * hostile image makes the decoding child fail cleanly; the child dies of
 * SIGSYS when it tries to open a file or a socket, and is killed when it
 * spins or floods. The test images are made here with libjpeg and by hand. */
#include "client/media.h"
#include "lib/buf.h"
#include "lib/err.h"
#include "lib/imgseg.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <jpeglib.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__SANITIZE_ADDRESS__)
#define SANITIZED 1
#else
#define SANITIZED 0
#endif

/* ---------------------------------------------------------------- images */

static void put16(struct rf_buf *b, uint16_t v)
{
    assert_int_equal(rf_buf_put_u16(b, v), 0);
}

static void put32(struct rf_buf *b, uint32_t v)
{
    assert_int_equal(rf_buf_put_u32(b, v), 0);
}

static void entry(struct rf_buf *b, uint16_t tag, uint16_t type, uint32_t count, uint32_t val)
{
    put16(b, tag);
    put16(b, type);
    put32(b, count);
    put32(b, val);
}

/* "Exif\0\0" + a big-endian TIFF: IFD0 {Make, ExifIFD, GPSInfo}, Exif IFD
 * {BodySerialNumber}, GPS IFD {VersionID, LatitudeRef, Latitude}. */
static void exif_app1(struct rf_buf *b)
{
    assert_int_equal(rf_buf_put(b, "Exif\0\0", 6), 0);
    assert_int_equal(rf_buf_put(b, "MM\0\x2a", 4), 0);
    put32(b, 8);
    put16(b, 3); /* IFD0 at 8 */
    entry(b, 0x010f, 2, 6, 50);
    entry(b, 0x8769, 4, 1, 56);
    entry(b, 0x8825, 4, 1, 84);
    put32(b, 0);
    assert_int_equal(rf_buf_put(b, "Canon\0", 6), 0); /* 50 */
    put16(b, 1);                                      /* Exif IFD at 56 */
    entry(b, 0xa431, 2, 10, 74);
    put32(b, 0);
    assert_int_equal(rf_buf_put(b, "123456789\0", 10), 0); /* 74 */
    put16(b, 3);                                           /* GPS IFD at 84 */
    entry(b, 0x0000, 1, 4, 0x02020000);
    entry(b, 0x0001, 2, 2, 0x4e000000);
    entry(b, 0x0002, 5, 3, 126);
    put32(b, 0);
    uint32_t rat[6] = {50, 1, 27, 1, 1234, 100}; /* 126 */
    for (int i = 0; i < 6; i++)
        put32(b, rat[i]);
    assert_int_equal(b->len, 6 + 150);
}

/* A w x h JPEG (gradient), with the EXIF above when exif is set (and, when
 * exif is 2, an XMP packet, an IPTC block and a comment too). */
static uint8_t *make_jpeg(size_t *len, unsigned w, unsigned h, int exif)
{
    struct jpeg_compress_struct ci;
    struct jpeg_error_mgr je;
    unsigned char *out = NULL;
    unsigned long outlen = 0;
    ci.err = jpeg_std_error(&je);
    jpeg_create_compress(&ci);
    jpeg_mem_dest(&ci, &out, &outlen);
    ci.image_width = w;
    ci.image_height = h;
    ci.input_components = 3;
    ci.in_color_space = JCS_RGB;
    jpeg_set_defaults(&ci);
    jpeg_set_quality(&ci, 90, TRUE);
    jpeg_start_compress(&ci, TRUE);
    if (exif) {
        struct rf_buf b;
        rf_buf_init(&b, 4096);
        exif_app1(&b);
        jpeg_write_marker(&ci, JPEG_APP0 + 1, b.data, (unsigned)b.len);
        rf_buf_free(&b);
    }
    if (exif == 2) {
        static const char xmp[] = "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta>Someone</x:xmpmeta>";
        static const char iptc[] = "Photoshop 3.0\0008BIM\004\004";
        static const char com[] = "taken at 12 Some Street";
        jpeg_write_marker(&ci, JPEG_APP0 + 1, (const JOCTET *)xmp, sizeof(xmp) - 1);
        jpeg_write_marker(&ci, JPEG_APP0 + 13, (const JOCTET *)iptc, sizeof(iptc) - 1);
        jpeg_write_marker(&ci, JPEG_COM, (const JOCTET *)com, sizeof(com) - 1);
    }
    uint8_t *row = malloc((size_t)w * 3);
    assert_non_null(row);
    while (ci.next_scanline < h) {
        for (unsigned x = 0; x < w; x++) {
            row[x * 3] = (uint8_t)(x * 255 / w);
            row[x * 3 + 1] = (uint8_t)(ci.next_scanline * 255 / h);
            row[x * 3 + 2] = 128;
        }
        JSAMPROW r = row;
        jpeg_write_scanlines(&ci, &r, 1);
    }
    jpeg_finish_compress(&ci);
    jpeg_destroy_compress(&ci);
    free(row);
    *len = outlen;
    return out;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void chunk(struct rf_buf *b, const char *type, const uint8_t *data, size_t n)
{
    put32(b, (uint32_t)n);
    size_t at = b->len;
    assert_int_equal(rf_buf_put(b, type, 4), 0);
    if (n)
        assert_int_equal(rf_buf_put(b, data, n), 0);
    put32(b, crc32_png(b->data + at, n + 4));
}

/* A 2x2 grey PNG (stored deflate block), with an Author tEXt when text is
 * set; IHDR claims w x h. */
static void make_png(struct rf_buf *b, uint32_t w, uint32_t h, int text)
{
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    uint8_t ihdr[13] = {0, 0, 0, 0, 0, 0, 0, 0, 8, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        ihdr[i] = (uint8_t)(w >> (24 - 8 * i));
        ihdr[4 + i] = (uint8_t)(h >> (24 - 8 * i));
    }
    /* zlib: header, one stored block of 2 rows x (filter byte + 2 pixels) */
    static const uint8_t idat[] = {0x78, 0x01, 0x01, 0x06, 0x00, 0xf9, 0xff, 0,   10,
                                   200,  0,    20,   30,   0x03, 0x9e, 0x01, 0x05};
    assert_int_equal(rf_buf_put(b, sig, 8), 0);
    chunk(b, "IHDR", ihdr, sizeof(ihdr));
    if (text)
        chunk(b, "tEXt", (const uint8_t *)"Author\0Somebody", 15);
    chunk(b, "IDAT", idat, sizeof(idat));
    chunk(b, "IEND", NULL, 0);
}

/* The segment a JPEG has at marker (0xE1...) or NULL. */
struct find {
    uint8_t marker;
    size_t off, total;
};

static int find_seg(void *ctx, const struct rf_imgseg *s)
{
    struct find *f = ctx;
    if (s->kind == RF_SEG_SEGMENT && s->marker == f->marker && f->total == 0) {
        f->off = s->off;
        f->total = s->total;
    }
    return 0;
}

static int has(const struct rf_media_report *r, int f)
{
    for (unsigned i = 0; i < r->n; i++)
        if (r->f[i] == f)
            return 1;
    return 0;
}

static void png_dims(const struct rf_buf *b, uint32_t *w, uint32_t *h)
{
    assert_true(b->len > 24);
    assert_memory_equal(b->data + 12, "IHDR", 4);
    *w = (uint32_t)b->data[16] << 24 | (uint32_t)b->data[17] << 16 | b->data[18] << 8 | b->data[19];
    *h = (uint32_t)b->data[20] << 24 | (uint32_t)b->data[21] << 16 | b->data[22] << 8 | b->data[23];
}

/* ---------------------------------------------------------------- tests */

static void detects_by_content(void **state)
{
    (void)state;
    size_t jn;
    uint8_t *jpg = make_jpeg(&jn, 8, 8, 0);
    struct rf_buf png;
    rf_buf_init(&png, 4096);
    make_png(&png, 2, 2, 0);
    const char pdf[] = "%PDF-1.4\n1 0 obj << /Author (X) >> endobj\n%%EOF\n";
    assert_int_equal(rf_media_detect(jpg, jn), RF_MEDIA_JPEG);
    assert_int_equal(rf_media_detect(png.data, png.len), RF_MEDIA_PNG);
    assert_int_equal(rf_media_detect((const uint8_t *)pdf, sizeof(pdf) - 1), RF_MEDIA_PDF);
    assert_int_equal(rf_media_detect((const uint8_t *)"GIF89a", 6), RF_MEDIA_OTHER);
    assert_int_equal(rf_media_detect(jpg, 2), RF_MEDIA_OTHER);
    /* the child says the same, and reads a PDF's author field */
    struct rf_media_report rep;
    assert_int_equal(rf_media_check(&rep, png.data, png.len), 0);
    assert_int_equal(rep.type, RF_MEDIA_PNG);
    assert_int_equal(rep.n, 0);
    assert_int_equal(rf_media_check(&rep, (const uint8_t *)pdf, sizeof(pdf) - 1), 0);
    assert_int_equal(rep.type, RF_MEDIA_PDF);
    assert_true(has(&rep, RF_MF_AUTHOR));
    /* PDFs are not previewed nor stripped */
    struct rf_buf out;
    rf_buf_init_secure(&out, RF_MEDIA_PREVIEW_MAX);
    assert_int_equal(rf_media_preview(&out, (const uint8_t *)pdf, sizeof(pdf) - 1, 0),
                     RF_ERR_INVALID);
    assert_int_equal(rf_media_strip(&out, NULL, (const uint8_t *)pdf, sizeof(pdf) - 1),
                     RF_ERR_INVALID);
    rf_buf_free(&out);
    rf_buf_free(&png);
    free(jpg);
}

static void jpeg_gps_serial_reported_and_stripped(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpg = make_jpeg(&n, 64, 48, 1);
    uint8_t *orig = malloc(n);
    assert_non_null(orig);
    memcpy(orig, jpg, n);
    struct rf_media_report rep;
    assert_int_equal(rf_media_check(&rep, jpg, n), 0);
    assert_int_equal(rep.type, RF_MEDIA_JPEG);
    assert_true(has(&rep, RF_MF_GPS));
    assert_true(has(&rep, RF_MF_SERIAL));
    assert_true(has(&rep, RF_MF_CAMERA));
    assert_false(has(&rep, RF_MF_OWNER));

    struct rf_buf out;
    rf_buf_init_secure(&out, n);
    struct rf_media_report after;
    assert_int_equal(rf_media_strip(&out, &after, jpg, n), 0);
    assert_int_equal(after.type, RF_MEDIA_JPEG);
    assert_int_equal(after.n, 0);
    assert_memory_equal(jpg, orig, n); /* the original (evidence) untouched */
    /* lossless: exactly the original without its APP1 segment */
    struct find f = {0xe1, 0, 0};
    assert_int_equal(rf_jpeg_walk(jpg, n, find_seg, &f, NULL), 0);
    assert_true(f.total > 150);
    assert_int_equal(out.len, n - f.total);
    assert_memory_equal(out.data, jpg, f.off);
    assert_memory_equal(out.data + f.off, jpg + f.off + f.total, n - f.off - f.total);
    assert_null(memmem(out.data, out.len, "123456789", 9));
    /* and it still decodes */
    struct rf_buf prev;
    rf_buf_init_secure(&prev, RF_MEDIA_PREVIEW_MAX);
    assert_int_equal(rf_media_preview(&prev, out.data, out.len, 0), 0);
    uint32_t w, h;
    png_dims(&prev, &w, &h);
    assert_int_equal(w, 64);
    assert_int_equal(h, 48);
    rf_buf_free(&prev);
    rf_buf_free(&out);
    free(orig);
    free(jpg);
}

static void jpeg_xmp_iptc_comment_trailing(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpg = make_jpeg(&n, 32, 32, 2);
    uint8_t *p = malloc(n + 16);
    assert_non_null(p);
    memcpy(p, jpg, n);
    memcpy(p + n, "appended secret!", 16);
    struct rf_media_report rep, after;
    assert_int_equal(rf_media_check(&rep, p, n + 16), 0);
    int want[] = {RF_MF_GPS, RF_MF_SERIAL, RF_MF_XMP, RF_MF_IPTC, RF_MF_COMMENT, RF_MF_TRAILING};
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_true(has(&rep, want[i]));
    struct rf_buf out;
    rf_buf_init_secure(&out, n + 16);
    assert_int_equal(rf_media_strip(&out, &after, p, n + 16), 0);
    assert_int_equal(after.n, 0);
    assert_null(memmem(out.data, out.len, "Someone", 7));
    assert_null(memmem(out.data, out.len, "Some Street", 11));
    assert_null(memmem(out.data, out.len, "appended", 8));
    assert_null(memmem(out.data, out.len, "8BIM", 4));
    /* stripping the stripped copy changes nothing */
    struct rf_buf again;
    unsigned dropped = 99;
    rf_buf_init_secure(&again, out.len);
    assert_int_equal(rf_img_strip(&again, out.data, out.len, &dropped), 0);
    assert_int_equal(dropped, 0);
    assert_int_equal(again.len, out.len);
    assert_memory_equal(again.data, out.data, out.len);
    rf_buf_free(&again);
    rf_buf_free(&out);
    free(p);
    free(jpg);
}

static void png_text_reported_and_stripped(void **state)
{
    (void)state;
    struct rf_buf png, out;
    rf_buf_init(&png, 4096);
    make_png(&png, 2, 2, 1);
    struct rf_media_report rep;
    assert_int_equal(rf_media_check(&rep, png.data, png.len), 0);
    assert_true(has(&rep, RF_MF_AUTHOR));
    rf_buf_init_secure(&out, png.len);
    struct rf_media_report after;
    assert_int_equal(rf_media_strip(&out, &after, png.data, png.len), 0);
    assert_int_equal(after.n, 0);
    assert_int_equal(out.len, png.len - (12 + 15));
    assert_null(memmem(out.data, out.len, "Somebody", 8));
    /* trailing bytes after IEND are found and dropped */
    assert_int_equal(rf_buf_put(&png, "hidden", 6), 0);
    assert_int_equal(rf_media_check(&rep, png.data, png.len), 0);
    assert_true(has(&rep, RF_MF_TRAILING));
    rf_buf_reset(&out);
    out.max = png.len;
    assert_int_equal(rf_media_strip(&out, NULL, png.data, png.len), 0);
    assert_null(memmem(out.data, out.len, "hidden", 6));
    rf_buf_free(&out);
    rf_buf_free(&png);
}

static void preview_is_scaled_png(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpg = make_jpeg(&n, 3000, 2000, 1);
    struct rf_buf prev;
    rf_buf_init_secure(&prev, RF_MEDIA_PREVIEW_MAX);
    assert_int_equal(rf_media_preview(&prev, jpg, n, 0), 0);
    uint32_t w, h;
    png_dims(&prev, &w, &h);
    assert_int_equal(w, 1600);
    assert_true(h >= 1065 && h <= 1067);
    /* the preview carries no metadata of the original */
    assert_null(memmem(prev.data, prev.len, "123456789", 9));
    assert_null(memmem(prev.data, prev.len, "Canon", 5));
    rf_buf_reset(&prev);
    assert_int_equal(rf_media_preview(&prev, jpg, n, 100), 0);
    png_dims(&prev, &w, &h);
    assert_int_equal(w, 100);
    rf_buf_free(&prev);
    free(jpg);
}

static void hostile_images_fail_cleanly(void **state)
{
    (void)state;
    size_t n;
    uint8_t *jpg = make_jpeg(&n, 256, 256, 0);
    struct rf_buf prev;
    struct rf_media_report rep;
    rf_buf_init_secure(&prev, RF_MEDIA_PREVIEW_MAX);
    time_t t0 = time(NULL);

    /* truncated: half the file (libjpeg may show the top half: a PNG or
     * an error, never a crash) */
    int rc = rf_media_preview(&prev, jpg, n / 2, 0);
    assert_true(rc == 0 || rc == RF_ERR_FORMAT);
    rf_buf_reset(&prev);
    assert_int_not_equal(rf_media_check(&rep, jpg, n / 2), 0);
    assert_int_not_equal(rf_media_strip(&prev, NULL, jpg, n / 2), 0);
    assert_int_equal(prev.len, 0);

    /* 65535 x 65535 in the SOF0 header */
    uint8_t *big = malloc(n);
    memcpy(big, jpg, n);
    struct find f = {0xc0, 0, 0};
    assert_int_equal(rf_jpeg_walk(big, n, find_seg, &f, NULL), 0);
    assert_true(f.total > 9);
    memset(big + f.off + 5, 0xff, 4); /* height, width: libjpeg's own limit */
    rc = rf_media_preview(&prev, big, n, 0);
    assert_true(rc == RF_ERR_LIMIT || rc == RF_ERR_FORMAT);
    const uint8_t dims[4] = {0xfd, 0xe8, 0xfd, 0xe8}; /* 65000 x 65000: ours */
    memcpy(big + f.off + 5, dims, 4);
    assert_int_equal(rf_media_preview(&prev, big, n, 0), RF_ERR_LIMIT);
    assert_int_equal(prev.len, 0);

    /* corrupt Huffman data: the scan overwritten with noise */
    memcpy(big, jpg, n);
    struct find s = {0xda, 0, 0};
    assert_int_equal(rf_jpeg_walk(big, n, find_seg, &s, NULL), 0);
    uint32_t seed = 12345;
    for (size_t i = s.off + s.total; i + 2 < n; i++) {
        seed = seed * 1103515245u + 12345u;
        big[i] = (uint8_t)(seed >> 16);
    }
    rc = rf_media_preview(&prev, big, n, 0);
    assert_true(rc == 0 || rc == RF_ERR_FORMAT || rc == RF_ERR_TRUNCATED);
    rf_buf_reset(&prev);

    /* PNG claiming 65535 x 65535 */
    struct rf_buf png;
    rf_buf_init(&png, 4096);
    make_png(&png, 65535, 65535, 0);
    rc = rf_media_preview(&prev, png.data, png.len, 0);
    assert_true(rc == RF_ERR_LIMIT || rc == RF_ERR_FORMAT);
    /* PNG with a damaged IDAT (CRC) */
    rf_buf_reset(&png);
    make_png(&png, 2, 2, 0);
    png.data[png.len - 20] ^= 0x55;
    assert_int_not_equal(rf_media_preview(&prev, png.data, png.len, 0), 0);
    /* random bytes behind a JPEG signature */
    for (size_t i = 3; i < n; i++) {
        seed = seed * 1103515245u + 12345u;
        big[i] = (uint8_t)(seed >> 16);
    }
    assert_int_not_equal(rf_media_preview(&prev, big, n, 0), 0);
    assert_true(time(NULL) - t0 < 60);
    rf_buf_free(&png);
    rf_buf_free(&prev);
    free(big);
    free(jpg);
}

static void child_forbidden_calls_die(void **state)
{
    (void)state;
    struct rf_buf out;
    rf_buf_init(&out, 1024);
    struct rf_media_run run = {.op = RF_MOP_TEST_OPEN};
    assert_int_equal(rf_media_run(&run, &out, (const uint8_t *)"x", 1), RF_ERR_CANCELLED);
    assert_int_equal(run.signal, SIGSYS);
    struct rf_media_run run2 = {.op = RF_MOP_TEST_SOCKET};
    assert_int_equal(rf_media_run(&run2, &out, (const uint8_t *)"x", 1), RF_ERR_CANCELLED);
    assert_int_equal(run2.signal, SIGSYS);
    /* its limits are in place */
    struct rf_media_run run3 = {.op = RF_MOP_TEST_LIMITS};
    assert_int_equal(rf_media_run(&run3, &out, NULL, 0), 0);
    assert_int_equal(out.len, 16);
    struct rf_reader r;
    uint64_t as, cpu;
    rf_reader_init(&r, out.data, out.len);
    assert_int_equal(rf_get_u64(&r, &as), 0);
    assert_int_equal(rf_get_u64(&r, &cpu), 0);
    assert_int_equal(cpu, 10);
    if (!SANITIZED)
        assert_int_equal(as, 1024ull << 20);
    rf_buf_free(&out);
}

static void child_spinning_or_flooding_is_killed(void **state)
{
    (void)state;
    struct rf_buf out;
    rf_buf_init(&out, 1u << 20);
    time_t t0 = time(NULL);
    struct rf_media_run run = {.op = RF_MOP_TEST_SPIN, .timeout_ms = 1500};
    assert_int_equal(rf_media_run(&run, &out, (const uint8_t *)"x", 1), RF_ERR_CANCELLED);
    assert_true(run.timed_out);
    assert_int_equal(run.signal, SIGKILL);
    assert_true(time(NULL) - t0 <= 5);
    struct rf_media_run run2 = {.op = RF_MOP_TEST_FLOOD, .out_max = 1u << 20};
    assert_int_equal(rf_media_run(&run2, &out, (const uint8_t *)"x", 1), RF_ERR_LIMIT);
    /* killed, or died of the closed socket (SIGPIPE, or its write failing
     * when the test runner left SIGPIPE ignored): never a clean answer */
    assert_true(run2.signal != 0 || run2.exit_code != 0);
    assert_int_equal(out.len, 0);
    if (!SANITIZED) { /* RLIMIT_AS (not set in sanitizer builds) */
        struct rf_media_run run3 = {.op = RF_MOP_TEST_ALLOC};
        int rc = rf_media_run(&run3, &out, (const uint8_t *)"x", 1);
        assert_true(rc == RF_ERR_NOMEM || rc == RF_ERR_CANCELLED);
    }
    rf_buf_free(&out);
}

/* ---------------------------------------------------------------- PDFs */

/* A valid PDF with `pages` pages of 200 x 100 points (each a filled square
 * and a line of Helvetica), its xref table with true offsets. extra: more
 * objects' text appended to the catalog object (actions, names ...). */
static void make_pdf(struct rf_buf *b, unsigned pages, const char *catalog_extra, const char *info)
{
    char tmp[1024];
    size_t off[64];
    unsigned nobj = 0;
    b->len = 0;
    assert_int_equal(rf_buf_put(b, "%PDF-1.4\n", 9), 0);
#define OBJ(...)                                                                                   \
    do {                                                                                           \
        off[++nobj] = b->len;                                                                      \
        int k_ = snprintf(tmp, sizeof(tmp), __VA_ARGS__);                                          \
        assert_int_equal(rf_buf_put(b, tmp, (size_t)k_), 0);                                       \
    } while (0)
    OBJ("1 0 obj<</Type/Catalog/Pages 2 0 R%s>>endobj\n", catalog_extra ? catalog_extra : "");
    char kids[512] = "";
    for (unsigned i = 0; i < pages; i++) {
        char one[16];
        snprintf(one, sizeof(one), "%u 0 R ", 5 + i);
        strcat(kids, one);
    }
    OBJ("2 0 obj<</Type/Pages/Kids[%s]/Count %u>>endobj\n", kids, pages);
    const char content[] = "0 0 0 rg 10 10 80 80 re f BT /F1 12 Tf 100 40 Td (Page) Tj ET\n";
    OBJ("3 0 obj<</Length %zu>>stream\n%sendstream endobj\n", sizeof(content) - 1, content);
    OBJ("4 0 obj<</Type/Font/Subtype/Type1/BaseFont/Helvetica>>endobj\n");
    for (unsigned i = 0; i < pages; i++)
        OBJ("%u 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 200 100]/Contents 3 0 R"
            "/Resources<</Font<</F1 4 0 R>>>>>>endobj\n",
            5 + i);
    unsigned info_obj = 0;
    if (info) {
        info_obj = nobj + 1;
        OBJ("%u 0 obj<<%s>>endobj\n", info_obj, info);
    }
#undef OBJ
    size_t xref = b->len;
    int k = snprintf(tmp, sizeof(tmp), "xref\n0 %u\n0000000000 65535 f \n", nobj + 1);
    assert_int_equal(rf_buf_put(b, tmp, (size_t)k), 0);
    for (unsigned i = 1; i <= nobj; i++) {
        k = snprintf(tmp, sizeof(tmp), "%010zu 00000 n \n", off[i]);
        assert_int_equal(rf_buf_put(b, tmp, (size_t)k), 0);
    }
    if (info_obj)
        k = snprintf(tmp, sizeof(tmp),
                     "trailer<</Size %u/Root 1 0 R/Info %u 0 R>>\nstartxref\n%zu\n%%%%EOF\n",
                     nobj + 1, info_obj, xref);
    else
        k = snprintf(tmp, sizeof(tmp), "trailer<</Size %u/Root 1 0 R>>\nstartxref\n%zu\n%%%%EOF\n",
                     nobj + 1, xref);
    assert_int_equal(rf_buf_put(b, tmp, (size_t)k), 0);
}

static void pdf_pages_previewed(void **state)
{
    (void)state;
    struct rf_buf pdf, out;
    rf_buf_init(&pdf, 1 << 16);
    rf_buf_init_secure(&out, RF_MEDIA_PREVIEW_MAX);
    make_pdf(&pdf, 3, NULL, NULL);
    unsigned pages = 0;
    uint32_t w, h;
    assert_int_equal(rf_media_pdf_preview(&out, &pages, pdf.data, pdf.len, 0, 0), 0);
    assert_int_equal(pages, 3);
    png_dims(&out, &w, &h);
    assert_int_equal(w, RF_MEDIA_SIDE_DEFAULT);
    assert_int_equal(h, RF_MEDIA_SIDE_DEFAULT / 2);
    out.len = 0;
    assert_int_equal(rf_media_pdf_preview(&out, &pages, pdf.data, pdf.len, 2, 400), 0);
    png_dims(&out, &w, &h);
    assert_int_equal(w, 400);
    assert_int_equal(h, 200);
    /* the page is drawn: the black square (10..90 pt, so 20..180 px), white
     * paper, and the word "Page" in a system font that the child opened
     * after it confined itself (100 pt from the left, baseline 40 pt up) */
    png_image img;
    memset(&img, 0, sizeof(img));
    img.version = PNG_IMAGE_VERSION;
    assert_true(png_image_begin_read_from_memory(&img, out.data, out.len));
    img.format = PNG_FORMAT_GRAY;
    uint8_t *px = malloc(PNG_IMAGE_SIZE(img));
    assert_non_null(px);
    assert_true(png_image_finish_read(&img, NULL, px, 0, NULL));
    assert_true(px[100 * 400 + 100] < 30);  /* in the square */
    assert_true(px[10 * 400 + 390] > 225);  /* paper */
    assert_true(px[190 * 400 + 300] > 225); /* paper */
    unsigned ink = 0;
    for (unsigned y = 90; y < 130; y++)
        for (unsigned x = 195; x < 300; x++)
            ink += px[y * 400 + x] < 128;
    assert_true(ink > 50); /* the glyphs */
    free(px);
    out.len = 0;
    /* a page it does not have; a page beyond the preview limit; not a PDF */
    assert_int_not_equal(rf_media_pdf_preview(&out, &pages, pdf.data, pdf.len, 3, 0), 0);
    assert_int_equal(out.len, 0);
    assert_int_equal(
        rf_media_pdf_preview(&out, &pages, pdf.data, pdf.len, RF_MEDIA_PDF_PAGES_MAX, 0),
        RF_ERR_INVALID);
    assert_int_equal(rf_media_pdf_preview(&out, &pages, (const uint8_t *)"GIF89a", 6, 0, 0),
                     RF_ERR_INVALID);
    /* images still go through the image child: a PDF is not an image */
    assert_int_equal(rf_media_preview(&out, pdf.data, pdf.len, 0), RF_ERR_INVALID);
    rf_buf_free(&out);
    rf_buf_free(&pdf);
}

static void pdf_info_read_by_poppler(void **state)
{
    (void)state;
    struct rf_buf pdf;
    struct rf_media_report rep;
    rf_buf_init(&pdf, 1 << 16);
    make_pdf(&pdf, 1, NULL, NULL);
    assert_int_equal(rf_media_check(&rep, pdf.data, pdf.len), 0);
    assert_int_equal(rep.type, RF_MEDIA_PDF);
    assert_int_equal(rep.n, 0);
    /* names written with #-escapes: no "/Author" in the bytes, but the
     * document's Author, Producer and CreationDate for poppler */
    make_pdf(&pdf, 1, NULL,
             "/Au#74hor(Jane Roe)/Pro#64ucer(Writer 7)/Cr#65ationDate(D:20240102030405Z)");
    assert_null(memmem(pdf.data, pdf.len, "/Author", 7));
    assert_int_equal(rf_media_check(&rep, pdf.data, pdf.len), 0);
    assert_true(has(&rep, RF_MF_AUTHOR));
    assert_true(has(&rep, RF_MF_CREATOR));
    assert_true(has(&rep, RF_MF_DATE));
    assert_false(has(&rep, RF_MF_XMP));
    rf_buf_free(&pdf);
}

static void hostile_pdfs_fail_cleanly(void **state)
{
    (void)state;
    struct rf_buf pdf, out;
    rf_buf_init(&pdf, 1 << 20);
    rf_buf_init_secure(&out, RF_MEDIA_PREVIEW_MAX);
    unsigned pages;
    /* JavaScript on open, a /Launch action: rendered as a page, nothing run */
    make_pdf(&pdf, 1,
             "/OpenAction<</S/JavaScript/JS(app.alert(1))>>"
             "/AA<</WC<</S/Launch/F(/bin/sh)>>>>",
             NULL);
    assert_int_equal(rf_media_pdf_preview(&out, &pages, pdf.data, pdf.len, 0, 64), 0);
    assert_int_equal(pages, 1);
    out.len = 0;
    /* a page count of a million claimed, three pages there */
    make_pdf(&pdf, 3, NULL, NULL);
    char *cnt = memmem(pdf.data, pdf.len, "/Count 3", 8);
    assert_non_null(cnt);
    memcpy(cnt, "/Count 9", 8);
    int rc = rf_media_pdf_preview(&out, &pages, pdf.data, pdf.len, 0, 64);
    assert_true(rc == 0 || rc < 0);
    out.len = 0;
    /* a malformed xref (poppler reconstructs it, or fails): no crash */
    make_pdf(&pdf, 1, NULL, NULL);
    char *x = memmem(pdf.data, pdf.len, "xref", 4);
    assert_non_null(x);
    memset(x + 5, '9', (size_t)(pdf.data + pdf.len - (uint8_t *)x) - 5 - 8);
    rc = rf_media_pdf_preview(&out, &pages, pdf.data, pdf.len, 0, 64);
    assert_true(rc == 0 || rc < 0);
    out.len = 0;
    /* garbage behind a PDF signature */
    uint8_t junk[4096];
    memcpy(junk, "%PDF-1.7\n", 9);
    randombytes_buf(junk + 9, sizeof(junk) - 9);
    assert_int_not_equal(rf_media_pdf_preview(&out, &pages, junk, sizeof(junk), 0, 0), 0);
    assert_int_equal(out.len, 0);
    struct rf_media_report rep;
    rc = rf_media_check(&rep, junk, sizeof(junk));
    assert_true(rc == 0 || rc < 0);
    rf_buf_free(&out);
    rf_buf_free(&pdf);
}

static void pdf_child_confined(void **state)
{
    (void)state;
    struct rf_buf out;
    rf_buf_init(&out, 1024);
    /* it may open read-only, but Landlock lets it see only the fonts */
    struct rf_media_run run = {.op = RF_MOP_TEST_OPEN, .pdf = 1};
    assert_int_equal(rf_media_run(&run, &out, (const uint8_t *)"x", 1), RF_ERR_IO);
    assert_int_equal(run.signal, 0);
    /* opening to write, a socket: SIGSYS, as in the image child */
    struct rf_media_run run2 = {.op = RF_MOP_TEST_WRITE, .pdf = 1};
    assert_int_equal(rf_media_run(&run2, &out, (const uint8_t *)"x", 1), RF_ERR_CANCELLED);
    assert_int_equal(run2.signal, SIGSYS);
    struct rf_media_run run3 = {.op = RF_MOP_TEST_SOCKET, .pdf = 1};
    assert_int_equal(rf_media_run(&run3, &out, (const uint8_t *)"x", 1), RF_ERR_CANCELLED);
    assert_int_equal(run3.signal, SIGSYS);
    /* and the image child still may not open even a font read-only */
    struct rf_media_run run4 = {.op = RF_MOP_TEST_OPEN};
    assert_int_equal(rf_media_run(&run4, &out, (const uint8_t *)"x", 1), RF_ERR_CANCELLED);
    assert_int_equal(run4.signal, SIGSYS);
    /* the same limits */
    struct rf_media_run run5 = {.op = RF_MOP_TEST_LIMITS, .pdf = 1};
    assert_int_equal(rf_media_run(&run5, &out, NULL, 0), 0);
    struct rf_reader r;
    uint64_t as, cpu;
    rf_reader_init(&r, out.data, out.len);
    assert_int_equal(rf_get_u64(&r, &as), 0);
    assert_int_equal(rf_get_u64(&r, &cpu), 0);
    assert_int_equal(cpu, 10);
    if (!SANITIZED)
        assert_int_equal(as, 1024ull << 20);
    rf_buf_free(&out);
}

int main(int argc, char **argv)
{
    /* the decoding child is this program re-executed (media.h) */
    if (argc == 2 && strcmp(argv[1], RF_MEDIA_CHILD_ARG) == 0)
        return rf_media_child_main();
    if (argc == 2 && strcmp(argv[1], RF_MEDIA_PDF_CHILD_ARG) == 0)
        return rf_media_pdf_child_main();
    rf_media_child_self();
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(detects_by_content),
        cmocka_unit_test(jpeg_gps_serial_reported_and_stripped),
        cmocka_unit_test(jpeg_xmp_iptc_comment_trailing),
        cmocka_unit_test(png_text_reported_and_stripped),
        cmocka_unit_test(preview_is_scaled_png),
        cmocka_unit_test(hostile_images_fail_cleanly),
        cmocka_unit_test(child_forbidden_calls_die),
        cmocka_unit_test(child_spinning_or_flooding_is_killed),
        cmocka_unit_test(pdf_pages_previewed),
        cmocka_unit_test(pdf_info_read_by_poppler),
        cmocka_unit_test(hostile_pdfs_fail_cleanly),
        cmocka_unit_test(pdf_child_confined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
