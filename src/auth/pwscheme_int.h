/* Private to src/auth/pwscheme*.c: the legacy digest schemes, kept apart from
 * the dispatcher so the weak code is easy to find (and one day to delete). */
#ifndef POPSD_AUTH_PWSCHEME_INT_H
#define POPSD_AUTH_PWSCHEME_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/pwscheme.h"
#include "common/error.h"

/* Longest password any scheme accepts. libxcrypt refuses phrases longer than
 * CRYPT_MAX_PASSPHRASE_SIZE (512); one bound for every scheme keeps behaviour
 * (and the cost an attacker can force per attempt) the same whatever the scheme. */
#define PWSCHEME_PW_MAX 512

enum pwscheme_weak_kind {
    PWSCHEME_WEAK_PLAIN,     /* {PLAIN}, {CLEAR}, {CLEARTEXT}: the password itself */
    PWSCHEME_WEAK_PLAIN_MD5, /* {PLAIN-MD5}, {LDAP-MD5}: MD5(pw), hex or base64 */
    PWSCHEME_WEAK_SHA1,      /* {SHA}, {SHA1}: SHA1(pw), base64 or hex */
    PWSCHEME_WEAK_SSHA,      /* {SSHA}: base64(SHA1(pw || salt) || salt) */
};

/* Compares password with body (the stored string after "{SCHEME}") in
 * constant time with respect to the contents. Returns 1 match, 0 mismatch,
 * -1 malformed body or digest failure (detail in err). */
int pwscheme_weak_verify(enum pwscheme_weak_kind kind, const char *body, const char *pw, size_t pwlen,
                         struct error *err);

/* Argon2 (pwscheme_argon2.c). enc is the encoded string without "{SCHEME}".
 * pwscheme_argon2_parse checks the "$argon2id$v=19$m=..,t=..,p=..$salt$hash"
 * shape strictly (id selects argon2id, else argon2i) and returns the cost;
 * 0 or -1. pwscheme_argon2_verify returns 1 match, 0 mismatch, -1 malformed. */
int pwscheme_argon2_parse(const char *enc, bool id, struct pwscheme_argon2_params *p);
int pwscheme_argon2_verify(const char *enc, bool id, const char *pw, size_t pwlen, struct error *err);

/* SCRAM-SHA-256 keys (pwscheme_scram.c); body is "ITER,salt,StoredKey,ServerKey".
 * pwscheme_scram_verify returns 1 match, 0 mismatch, -1 malformed.
 * pwscheme_scram_dummy writes "{SCRAM-SHA-256}..." keys of pw with body's
 * iteration count and a fresh salt; 0 or -1. */
int pwscheme_scram_verify(const char *body, const char *pw, size_t pwlen, struct error *err);
int pwscheme_scram_dummy(const char *body, const char *pw, char *out, size_t outsz);

#endif
