/*
 * server.h - entry points of the server side of the refuge binary.
 *   refuge serve --data DIR --listen 127.0.0.1:PORT
 *   refuge server init --data DIR   (and later: status, purge, backup)
 */
#ifndef RF_SERVER_H
#define RF_SERVER_H

int rf_serve_main(int argc, char **argv);
int rf_server_admin_main(int argc, char **argv);

#endif
