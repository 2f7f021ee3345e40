/* Private to src/sasl/scram*.c: the primitives both the key code and the
 * conversation use, so each exists once. */
#ifndef POPSD_SASL_SCRAM_INT_H
#define POPSD_SASL_SCRAM_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "sasl/scram.h"

/* RFC 7677 asks for at least 4096; the top keeps a hostile stored string (or
 * server-first we build) from costing a client minutes. */
#define SCRAM_ITER_MIN 4096u
#define SCRAM_ITER_MAX 10000000u

/* HMAC-SHA-256 over the concatenation of the n parts. 0 or -1. */
int scram_hmac(const unsigned char *key, size_t keylen, const void *const *parts, const size_t *lens,
               size_t n, unsigned char out[SCRAM_KEY_LEN]);
/* SHA-256. 0 or -1. */
int scram_hash(const unsigned char *in, size_t len, unsigned char out[SCRAM_KEY_LEN]);
/* Strict UTF-8: no overlong forms, surrogates or code points above U+10FFFF. */
bool scram_utf8_valid(const unsigned char *s, size_t n);

#endif
