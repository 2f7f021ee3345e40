/* App passwords: random per-device secrets a user can revoke one by one, so
 * the account password never has to be typed into a mail client. */
#ifndef POPSD_AUTH_APPPW_H
#define POPSD_AUTH_APPPW_H

#include <stdbool.h>
#include <stddef.h>

#define APPPW_LEN 29      /* "xxxxx-xxxxx-xxxxx-xxxxx-xxxxx": 25 symbols of a 32-letter alphabet = 125 bits */
#define APPPW_HASH_MAX 80 /* "sha256:" + 64 hex digits + NUL fits */

/* A fresh app password from the CSPRNG (secret_random), lower-case base32
 * (RFC 4648 alphabet a-z2-7) in 5 groups of 5 separated by '-'. Returns 0, or
 * -1 (out emptied) if the CSPRNG failed. */
int apppw_generate(char out[APPPW_LEN + 1]);

/* Canonical form if s[0..len) looks like an app password: case-insensitive,
 * with or without the dashes or with spaces instead (people retype them), a
 * separator only ever between two groups of five; returns false otherwise
 * (out emptied). */
bool apppw_normalise(const char *s, size_t len, char out[APPPW_LEN + 1]);

/* "sha256:" + hex(SHA-256(canonical)): app passwords carry 125 random bits, so
 * a fast hash is safe (nobody brute-forces 2^125) and a lookup by hash is one
 * index probe. out is emptied if the digest fails. */
void apppw_hash(const char canonical[APPPW_LEN + 1], char out[APPPW_HASH_MAX]);

#endif
