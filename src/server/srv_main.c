#include "server/server.h"
#include <stdio.h>
int rf_serve_main(int argc, char **argv) { (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
int rf_server_admin_main(int argc, char **argv) { (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
