/* Secrets hygiene: wipe after use, compare in constant time. */
#ifndef POPSD_COMMON_SECRET_H
#define POPSD_COMMON_SECRET_H

#include <stdbool.h>
#include <stddef.h>

/* Overwrites n bytes at p so the compiler cannot elide it. */
void secret_wipe(void *p, size_t n);
/* Wipes and frees a NUL-terminated heap string; NULLs the caller's pointer. */
void secret_free_str(char **s);
/* Constant-time equality of two equal-length buffers. */
bool secret_equal(const void *a, const void *b, size_t n);
/* Keyed hash for table keys and fingerprints: HMAC-SHA256 over the n parts,
 * each followed by a NUL so ("ab","c") and ("a","bc") differ. Writes
 * min(outlen, 32) bytes to out. Returns 0, or -1 (out zeroed). No allocation
 * of the message: safe on hot paths and for secrets. For long-lived keys only:
 * each thread keeps a keyed context for the last 4 keys (of <= 64 bytes). */
int secret_mac(const void *key, size_t keylen, const void *const *parts, const size_t *lens, size_t n,
               unsigned char *out, size_t outlen);
/* Plain HMAC-SHA256 over the concatenation of the parts (protocols that define
 * their own message, e.g. SCRAM); otherwise as secret_mac. */
int secret_hmac(const void *key, size_t keylen, const void *const *parts, const size_t *lens, size_t n,
                unsigned char *out, size_t outlen);
/* Fills buf with n bytes from the CSPRNG; returns 0 or -1. */
int secret_random(void *buf, size_t n);

#endif
