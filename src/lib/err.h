/*
 * err.h - the one error vocabulary of Refuge.
 *
 * Every function that can fail returns 0 or a negative rf_err; results travel
 * through out-parameters. rf_strerror() gives the text a developer or admin
 * reads in a log or CLI message. Texts a person in danger reads are not here:
 * they live in the page catalogues (po/), keyed by what the person can do next.
 */
#ifndef RF_ERR_H
#define RF_ERR_H

enum rf_err {
    RF_OK = 0,
    RF_ERR_NOMEM = -1,          /* allocation failed */
    RF_ERR_TRUNCATED = -2,      /* input ended before the structure did */
    RF_ERR_FORMAT = -3,         /* input is malformed */
    RF_ERR_VERSION = -4,        /* unsupported format version */
    RF_ERR_LIMIT = -5,          /* input exceeds a named limit */
    RF_ERR_DECRYPT = -6,        /* authentication of ciphertext failed */
    RF_ERR_NOT_RECIPIENT = -7,  /* envelope holds no stanza for this key */
    RF_ERR_SIGNATURE = -8,      /* a signature does not verify */
    RF_ERR_IO = -9,             /* read/write/fsync failed */
    RF_ERR_NOSPACE = -10,       /* disk full or quota reached */
    RF_ERR_NOT_FOUND = -11,
    RF_ERR_EXISTS = -12,
    RF_ERR_BUSY = -13,          /* a bounded queue is full; try later */
    RF_ERR_INVALID = -14,       /* invalid argument (programming error or bad option) */
    RF_ERR_CRYPTO = -15,        /* libsodium reported a failure */
    RF_ERR_DB = -16,            /* database error */
    RF_ERR_ROSTER = -17,        /* roster chain does not verify */
    RF_ERR_PASSPHRASE = -18,    /* wrong passphrase or damaged key file */
    RF_ERR_AUTH = -19,          /* request authentication refused */
    RF_ERR_NET = -20,           /* network failure talking to a server */
    RF_ERR_PROTOCOL = -21,      /* the peer answered something unexpected */
    RF_ERR_CANCELLED = -22,     /* operation stopped on request */
};

#define RF_ERR_MIN (-22)

/* Human text for an error code; never NULL, never contains data. */
const char *rf_strerror(int err);

#endif
