/* JSON Web Key Sets (RFC 7517, key types of RFC 7518 and RFC 8037): an
 * issuer's public signing keys, read from a local file, turned into OpenSSL
 * keys once. Only signature keys of the types we verify are kept: RSA of
 * 2048..8192 bits, EC P-256 and OKP Ed25519. */
#ifndef POPSD_AUTH_JWKS_H
#define POPSD_AUTH_JWKS_H

#include <openssl/types.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define JWKS_MAX_KEYS 64
#define JWKS_FILE_MAX (1 << 20)

struct jwks;

/* Parses a JWKS document {"keys":[...]} from memory. Keys of types, curves or
 * uses we do not verify with (oct, RSA-OAEP, P-384, "use":"enc", RSA under 2048
 * bits, ...) are skipped; a key of a supported type that is malformed (bad
 * base64url, wrong coordinate length, EC point off the curve, private members)
 * fails the whole set. Zero usable keys is not an error. Returns 0 with *out
 * set (free with jwks_free), or -1 with detail in err. */
int jwks_parse(const char *json, size_t len, struct jwks **out, struct error *err);

/* Same from a file of at most JWKS_FILE_MAX bytes that is not group- or
 * world-writable (anyone who can write it can sign tokens). */
int jwks_load(const char *path, struct jwks **out, struct error *err);

/* Frees the keys; NULLs *k. */
void jwks_free(struct jwks **k);

/* Number of usable keys kept. */
size_t jwks_count(const struct jwks *k);

/* The key for alg (one CONF_OAUTH_* bit) and kid: with a kid, a key carrying
 * that kid that can verify alg; without one ("" or NULL), the only key that can
 * verify alg. Returns NULL with *why "unknown_key" (no such kid, none or
 * several candidates) or "algorithm" (the kid names a key of another type or
 * another declared "alg"). The key stays owned by k. */
EVP_PKEY *jwks_find(const struct jwks *k, uint32_t alg, const char *kid, const char **why);

#endif
