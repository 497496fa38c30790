/*
 * media_main.c - refuge-media: the sandboxed decoders `refuge desk` and
 * `refuge files` start for previews and metadata (client/media.h). A program
 * of its own, so that libjpeg, libpng, libexif and poppler (with GLib, cairo
 * and fontconfig) are mapped only in these short-lived, confined children,
 * never in `refuge serve` or the desk itself. Each child confines itself
 * first thing (seccomp, Landlock, rlimits), then reads one request on its
 * standard input and answers on its standard output.
 */
#include "client/media.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], RF_MEDIA_CHILD_ARG) == 0)
        return rf_media_child_main();
    if (argc == 2 && strcmp(argv[1], RF_MEDIA_PDF_CHILD_ARG) == 0)
        return rf_media_pdf_child_main();
    fputs("refuge-media is started by refuge desk and refuge files, not by hand.\n", stderr);
    return 2;
}
