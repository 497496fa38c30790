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

int main(int argc, char **argv)
{
    /* the decoding child is this program re-executed (media.h) */
    if (argc == 2 && strcmp(argv[1], RF_MEDIA_CHILD_ARG) == 0)
        return rf_media_child_main();
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
