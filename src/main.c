/*
 * main.c - the refuge binary: dispatches to the server (serve, server ...) or
 * to the staff client (everything else). The two sides share src/lib and
 * src/store and never include each other.
 */
#include "client/client.h"
#include "client/media.h"
#include "server/server.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    /* the sandboxed decoder (client/media.h): confines itself first thing */
    if (argc == 2 && strcmp(argv[1], RF_MEDIA_CHILD_ARG) == 0)
        return rf_media_child_main();
    if (argc == 2 && strcmp(argv[1], RF_MEDIA_PDF_CHILD_ARG) == 0)
        return rf_media_pdf_child_main();
    if (sodium_init() < 0) {
        fputs("refuge: cannot initialise libsodium\n", stderr);
        return 1;
    }
    if (argc >= 2 && strcmp(argv[1], "serve") == 0)
        return rf_serve_main(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "server") == 0)
        return rf_server_admin_main(argc - 1, argv + 1);
    return rf_client_main(argc, argv);
}
