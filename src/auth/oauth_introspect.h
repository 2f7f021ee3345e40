/* OAuth 2.0 token introspection (RFC 7662) for oauth.c: one blocking request
 * per call, and a small cache of definite answers. Internal to src/auth/oauth*. */
#ifndef POPSD_AUTH_OAUTH_INTROSPECT_H
#define POPSD_AUTH_OAUTH_INTROSPECT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/oauth.h"
#include "common/error.h"
#include "conf/conf.h"

struct jwks;

/* One [oauth NAME] as authd holds it: everything read from disk at start. */
struct oauth_issuer {
    struct conf_oauth c;
    struct jwks *keys; /* NULL without jwks_file */
    char *secret;      /* client secret (introspection), wiped when freed */
    char *ca;          /* PEM bundle for https, NULL = libcurl's default */
    size_t ca_len;
};

/* Reads what introspection needs for is (client secret, CA bundle) while the
 * caller can still read them. Returns 0 or -1. */
int oauth_introspect_load(struct oauth_issuer *is, struct error *err);
/* Wipes and frees what oauth_introspect_load read. */
void oauth_introspect_unload(struct oauth_issuer *is);

/* POSTs the token to is's endpoint (HTTP Basic client authentication, at most
 * the configured timeout). Returns 0 with *resp the response object (the
 * caller decrefs), or -1 with *why for the log when there is no usable answer:
 * "introspection_unreachable", "introspection_timeout", "introspection_http",
 * "introspection_response". Thread-safe. */
int oauth_introspect_fetch(const struct oauth_issuer *is, const char *token, size_t len, json_t **resp,
                           const char **why);

/* Definite answers keyed by the token's SHA-256, oldest evicted first. */
#define OAUTH_CACHE_SIZE 4096
struct oauth_cache;
struct oauth_cache *oauth_cache_new(size_t cap);
void oauth_cache_free(struct oauth_cache **c);
/* On a live entry fills *v, user, issuer index and why, and returns true. */
bool oauth_cache_get(struct oauth_cache *c, const unsigned char key[32], int64_t now_ms,
                     enum oauth_verdict *v, unsigned *issuer, struct oauth_result *r);
void oauth_cache_put(struct oauth_cache *c, const unsigned char key[32], int64_t expires_ms,
                     enum oauth_verdict v, unsigned issuer, const struct oauth_result *r);

#endif
