/* OAuth 2.0 bearer tokens (RFC 6750) for AUTH OAUTHBEARER (RFC 7628) and
 * XOAUTH2, validated in authd: locally as signed JWTs against each issuer's
 * JWKS file, or by asking the issuer's introspection endpoint (RFC 7662). The
 * token is never logged or kept; only its SHA-256 keys the introspection cache. */
#ifndef POPSD_AUTH_OAUTH_H
#define POPSD_AUTH_OAUTH_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "conf/conf.h"

#define OAUTH_TOKEN_MAX 6144 /* bytes, as the client sent it */

struct oauth;

/* Built from c->oauth[0..n_oauth): reads every jwks_file, client_secret_file
 * and introspection_ca now (authd calls this before dropping privileges, and
 * before starting threads: it initialises libcurl). Fails on an unreadable or
 * malformed file, a JWKS without a usable key, or a secret file that is group-
 * or world-accessible. Returns 0, or -1 with detail in err. */
int oauth_new(const struct conf *c, struct oauth **o, struct error *err);
/* Frees and wipes; NULLs *o. */
void oauth_free(struct oauth **o);

enum oauth_verdict { OAUTH_VALID, OAUTH_INVALID, OAUTH_TEMPFAIL };

struct oauth_result {
    char user[256];        /* from the issuer's username_claim */
    char issuer_name[64];  /* which [oauth NAME] accepted it (or refused it, when known) */
    char why[128];         /* for the log when not valid: "expired", "audience", "issuer", "signature",
                              "algorithm", "scope", "not_active", "malformed", "unknown_key",
                              "not_yet_valid", "username", "introspection_unreachable", ...; never the token */
    char status_json[512]; /* RFC 7628 3.2.2 error JSON for the client when not valid */
};

/* Validates token[0..len). now = unix seconds. Thread-safe; may block up to
 * the introspection timeout of each issuer it asks (authd calls it on a worker
 * thread). On OAUTH_VALID r->user and r->issuer_name are set; otherwise r->why
 * and r->status_json. OAUTH_TEMPFAIL means no definite answer could be had
 * (introspection endpoint unreachable, slow, 5xx or garbage): [SYS/TEMP]. */
enum oauth_verdict oauth_validate(struct oauth *o, const char *token, size_t len, int64_t now,
                                  struct oauth_result *r);

/* Turns a valid r into a refusal decided by the caller (the token is fine, but
 * its user is not who the client named, or not a user here): sets why and the
 * status JSON of r->issuer_name's issuer, and clears the user. */
void oauth_refuse(const struct oauth *o, const char *why, struct oauth_result *r);

#endif
