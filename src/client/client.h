/*
 * client.h - entry point of the staff client: every refuge subcommand that is
 * not "serve" or "server" (init, sync, cases, show, reply, files, ...).
 */
#ifndef RF_CLIENT_H
#define RF_CLIENT_H

int rf_client_main(int argc, char **argv);

#endif
