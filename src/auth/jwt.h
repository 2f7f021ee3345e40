/* JSON Web Tokens (RFC 7519) in JWS compact serialization (RFC 7515) as OAuth
 * 2.0 access tokens: split, decode and verify the signature against keys we
 * were configured with. Deciding whether the claims are acceptable is
 * oauth.c's job; this file only proves who signed what. */
#ifndef POPSD_AUTH_JWT_H
#define POPSD_AUTH_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

struct jwks;

#define JWT_TOKEN_MAX 6144 /* as it arrives; larger tokens are refused unread */
#define JWT_SIG_MAX 1024   /* RSA 8192 bits */
#define JWT_KID_MAX 255

/* Algorithms are the config's bits (enum conf_oauth_alg in conf/conf.h), so an
 * issuer's allowed set is a mask; 0 = an algorithm we never accept. */
struct jwt {
    uint32_t alg;              /* one CONF_OAUTH_* bit, or 0 ("none", HS256, PS256, ...) */
    char kid[JWT_KID_MAX + 1]; /* "" when the header has none */
    json_t *claims;            /* the payload object; owned, released by jwt_clear() */
    unsigned char sig[JWT_SIG_MAX];
    size_t sig_len;
    size_t signed_len; /* length of "header.payload", the bytes the signature covers */
};

/* Strict base64url (RFC 4648 section 5) without padding, as JOSE uses it: any
 * other character, a length of 4k+1 or non-zero bits after the last byte is an
 * error, so each byte string has exactly one accepted encoding. Returns the
 * decoded length or -1 (also when it would not fit outcap). */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap);

/* Splits token[0..len) into exactly three base64url parts and parses header
 * and payload as JSON objects (duplicate names refused). An unsupported "alg"
 * is not an error here (j->alg = 0, reported by jwt_verify) so the caller can
 * tell "not a JWT" from "a JWT we refuse". Refuses "crit", JWE headers and
 * any other form. On success the caller must call jwt_clear(). Returns 0 or -1
 * (j cleared, detail in err; never any token bytes). */
int jwt_decode(const char *token, size_t len, struct jwt *j, struct error *err);

/* Releases the claims and wipes j. Safe on a cleared or zeroed j. */
void jwt_clear(struct jwt *j);

/* Verifies j's signature over token[0..j->signed_len) with the key keys hold
 * for j->alg and j->kid, if j->alg is in allowed_algs. The key's type must
 * match the algorithm. Returns 0, or -1 with *why one of "algorithm",
 * "unknown_key", "signature" (static strings for the log). */
int jwt_verify(const struct jwt *j, const char *token, const struct jwks *keys, uint32_t allowed_algs,
               const char **why);

#endif
