/*
 * err.c - texts for rf_err. A table, indexed by the negated code, so that a
 * new code without a text fails the static assert below rather than printing
 * garbage.
 */
#include "lib/err.h"

static const char *const texts[] = {
    [0] = "success",
    [-RF_ERR_NOMEM] = "out of memory",
    [-RF_ERR_TRUNCATED] = "input is truncated",
    [-RF_ERR_FORMAT] = "input is malformed",
    [-RF_ERR_VERSION] = "unsupported format version",
    [-RF_ERR_LIMIT] = "input exceeds a size limit",
    [-RF_ERR_DECRYPT] = "decryption failed: data was altered or the key is wrong",
    [-RF_ERR_NOT_RECIPIENT] = "this key is not among the envelope's recipients",
    [-RF_ERR_SIGNATURE] = "signature does not verify",
    [-RF_ERR_IO] = "input/output error",
    [-RF_ERR_NOSPACE] = "no space left to store data",
    [-RF_ERR_NOT_FOUND] = "not found",
    [-RF_ERR_EXISTS] = "already exists",
    [-RF_ERR_BUSY] = "busy, try again later",
    [-RF_ERR_INVALID] = "invalid argument",
    [-RF_ERR_CRYPTO] = "cryptographic library failure",
    [-RF_ERR_DB] = "database error",
    [-RF_ERR_ROSTER] = "roster does not verify against the pinned admin key",
    [-RF_ERR_PASSPHRASE] = "wrong passphrase or damaged key file",
    [-RF_ERR_AUTH] = "authentication refused",
    [-RF_ERR_NET] = "network error",
    [-RF_ERR_PROTOCOL] = "unexpected answer from the server",
    [-RF_ERR_CANCELLED] = "cancelled",
};

_Static_assert(sizeof(texts) / sizeof(texts[0]) == 1 - RF_ERR_MIN, "every rf_err needs a text");

const char *rf_strerror(int err)
{
    if (err > 0 || err < RF_ERR_MIN || texts[-err] == 0)
        return "unknown error";
    return texts[-err];
}
