/* Password hash schemes, in Dovecot's notation so existing passwd-files work
 * unchanged: "{ARGON2ID}$argon2id$...", "{BLF-CRYPT}$2y$...", "{SHA512-CRYPT}$6$...",
 * "{SHA256-CRYPT}$5$...", "{CRYPT}...", bare crypt(3) strings and "{SCRAM-SHA-256}..."
 * (PBKDF2 keys, see sasl/scram.h). Weak schemes ({PLAIN}, {CLEAR}, {MD5},
 * {MD5-CRYPT}, {SHA1}, {SHA}, {PLAIN-MD5}, DES crypt) are refused unless allow_weak is set. Verification is slow on purpose: callers
 * run it on a worker thread, never on an event loop. Thread-safe. */
#ifndef POPSD_AUTH_PWSCHEME_H
#define POPSD_AUTH_PWSCHEME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Argon2id cost used for new hashes (RFC 9106 second recommended option, scaled). */
struct pwscheme_argon2_params {
    uint32_t t_cost;      /* iterations, default 3 */
    uint32_t m_cost_kib;  /* memory, default 65536 (64 MiB) */
    uint32_t parallelism; /* lanes, default 1 */
};
extern const struct pwscheme_argon2_params pwscheme_argon2_default;

#define PWSCHEME_HASH_MAX 512

/* Returns 1 if password matches stored, 0 if not, -1 if stored is malformed,
 * uses an unknown scheme, or a weak one while !allow_weak (detail in err). */
int pwscheme_verify(const char *stored, const char *password, size_t pwlen, bool allow_weak,
                    struct error *err);

/* Hashes password with Argon2id into out as "{ARGON2ID}$argon2id$v=19$m=..,t=..,p=..$salt$hash".
 * Returns 0 or -1. */
int pwscheme_hash(const char *password, size_t pwlen, const struct pwscheme_argon2_params *p,
                  char *out, size_t outsz, struct error *err);

/* A valid hash of a random password with the given cost, made once per process:
 * verifying against it costs an unknown user the same time as a known one. */
const char *pwscheme_dummy_hash(const struct pwscheme_argon2_params *p);

/* A hash of a random password with the same scheme and cost as sample (its
 * salt/cost setting for crypt schemes, its parameters for Argon2), so unknown
 * users cost what the installation's real users cost. Returns 0, or -1 when
 * sample is unusable (weak or malformed): then use pwscheme_dummy_hash(). */
int pwscheme_dummy_like(const char *sample, char *out, size_t outsz);

/* True if stored uses a scheme weaker than the current default (for rehash-on-login later). */
bool pwscheme_needs_upgrade(const char *stored);

#endif
