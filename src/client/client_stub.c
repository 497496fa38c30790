#include "client/client.h"
#include <stdio.h>
int rf_client_main(int argc, char **argv) { (void)argc; (void)argv; fputs("not yet\n", stderr); return 1; }
