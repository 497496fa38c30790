/*
 * main.c - the refuge binary: dispatches to the server (serve, server ...) or
 * to the staff client (everything else). The two sides share src/lib and
 * src/store and never include each other.
 */
#include "client/client.h"
#include "server/server.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
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
