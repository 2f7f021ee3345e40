#include "auth/oauth.h"

#include <curl/curl.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/oauth_introspect.h"
#include "common/secret.h"

#define TIME_MAX ((int64_t)1 << 40) /* seconds; later dates are clamped so ms arithmetic cannot overflow */

struct oauth {
    unsigned n;
    struct oauth_issuer iss[CONF_MAX_OAUTH];
    bool curl; /* curl_global_init done */
    struct oauth_cache *cache;
};

/* Loads one issuer's files. Returns 0 or -1. */
static int issuer_load(struct oauth *o, struct oauth_issuer *is, struct error *err)
{
    if (is->c.jwks_file[0] != '\0') {
        if (jwks_load(is->c.jwks_file, &is->keys, err) < 0)
            return -1;
        if (jwks_count(is->keys) == 0)
            return error_set(err, "%s holds no RS256, ES256 or EdDSA signature key", is->c.jwks_file);
    }
    if (is->c.introspection_url[0] == '\0')
        return 0;
    /* Not thread-safe: hence "before threads" in the contract. */
    if (!o->curl && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return error_set(err, "curl_global_init failed");
    o->curl = true;
    return oauth_introspect_load(is, err);
}

int oauth_new(const struct conf *c, struct oauth **out, struct error *err)
{
    *out = NULL;
    struct oauth *o = calloc(1, sizeof(*o));
    if (o == NULL)
        return error_set(err, "out of memory");
    json_object_seed(0); /* jansson seeds its hash once; do it before there are threads */
    o->n = c->n_oauth < CONF_MAX_OAUTH ? c->n_oauth : CONF_MAX_OAUTH;
    bool cache = false;
    for (unsigned i = 0; i < o->n; i++) {
        struct oauth_issuer *is = &o->iss[i];
        is->c = c->oauth[i];
        struct error e = {{0}};
        if (issuer_load(o, is, &e) < 0) {
            oauth_free(&o);
            return error_set(err, "[oauth %s] %s", c->oauth[i].name, e.msg);
        }
        cache = cache || (is->c.introspection_url[0] != '\0' && is->c.introspection_cache_ms > 0);
    }
    if (cache && (o->cache = oauth_cache_new(OAUTH_CACHE_SIZE)) == NULL) {
        oauth_free(&o);
        return error_set(err, "out of memory");
    }
    *out = o;
    return 0;
}

void oauth_free(struct oauth **op)
{
    struct oauth *o = *op;
    if (o == NULL)
        return;
    for (unsigned i = 0; i < o->n; i++) {
        jwks_free(&o->iss[i].keys);
        oauth_introspect_unload(&o->iss[i]);
    }
    oauth_cache_free(&o->cache);
    if (o->curl)
        curl_global_cleanup();
    secret_wipe(o, sizeof(*o));
    free(o);
    *op = NULL;
}

/* ---- the answer ---- */

/* Fills why and the RFC 7628 3.2.2 status for the client; is may be NULL. */
static enum oauth_verdict refuse(const struct oauth_issuer *is, enum oauth_verdict v, const char *why,
                                 struct oauth_result *r)
{
    r->user[0] = '\0';
    snprintf(r->why, sizeof(r->why), "%s", why);
    if (is != NULL)
        snprintf(r->issuer_name, sizeof(r->issuer_name), "%s", is->c.name);
    const char *status = strcmp(why, "scope") == 0 ? "insufficient_scope" : "invalid_token";
    /* Drop optional members until it fits (the config allows long URLs). */
    for (int extra = 2; extra >= 0; extra--) {
        json_t *j = json_object();
        json_object_set_new(j, "status", json_string(status));
        if (extra >= 1 && is != NULL && is->c.scope[0] != '\0')
            json_object_set_new(j, "scope", json_string(is->c.scope));
        if (extra >= 2 && is != NULL && is->c.openid_configuration[0] != '\0')
            json_object_set_new(j, "openid-configuration", json_string(is->c.openid_configuration));
        char *s = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(j);
        size_t n = s ? strlen(s) : 0;
        if (s != NULL && n < sizeof(r->status_json)) {
            memcpy(r->status_json, s, n + 1);
            free(s);
            return v;
        }
        free(s);
    }
    snprintf(r->status_json, sizeof(r->status_json), "{\"status\":\"%s\"}", status);
    return v;
}

void oauth_refuse(const struct oauth *o, const char *why, struct oauth_result *r)
{
    const struct oauth_issuer *is = NULL;
    for (unsigned i = 0; i < o->n && is == NULL; i++)
        if (strcmp(o->iss[i].c.name, r->issuer_name) == 0)
            is = &o->iss[i];
    refuse(is, OAUTH_INVALID, why, r);
}

/* ---- claims, shared by JWTs and introspection answers ---- */

/* A NumericDate (RFC 7519 2): 1 present (*t set), 0 absent, -1 not a number. */
static int date_claim(json_t *claims, const char *name, int64_t *t)
{
    json_t *v = json_object_get(claims, name);
    if (v == NULL)
        return 0;
    double d;
    if (json_is_integer(v))
        d = (double)json_integer_value(v);
    else if (json_is_real(v) && isfinite(json_real_value(v)))
        d = floor(json_real_value(v));
    else
        return -1;
    *t = d > (double)TIME_MAX ? TIME_MAX : d < -(double)TIME_MAX ? -TIME_MAX : (int64_t)d;
    return 1;
}

static bool aud_has(json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    size_t i;
    json_t *a;
    json_array_foreach(aud, i, a)
    {
        if (json_is_string(a) && strcmp(json_string_value(a), want) == 0)
            return true;
    }
    return false;
}

/* Whether the space-separated list holds the word w[0..wl). */
static bool words_have(const char *list, const char *w, size_t wl)
{
    for (const char *p = list; *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (n == wl && memcmp(p, w, wl) == 0)
            return true;
        p += n;
        p += strspn(p, " ");
    }
    return false;
}

/* Whether the token grants scope w: "scope" (RFC 8693 / 9068, a string) or
 * "scp" (an array, or a string as some issuers send it). */
static bool scope_has(json_t *claims, const char *w, size_t wl)
{
    json_t *s = json_object_get(claims, "scope");
    if (json_is_string(s) && words_have(json_string_value(s), w, wl))
        return true;
    json_t *scp = json_object_get(claims, "scp");
    if (json_is_string(scp))
        return words_have(json_string_value(scp), w, wl);
    size_t i;
    json_t *a;
    json_array_foreach(scp, i, a)
    {
        if (json_is_string(a) && json_string_length(a) == wl && memcmp(json_string_value(a), w, wl) == 0)
            return true;
    }
    return false;
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return false;
    return true;
}

/* Everything but the signature and "iss" of a JWT (checked by the caller), or
 * of an introspection answer (introspected: "exp" and "aud" optional there). */
static enum oauth_verdict check_claims(const struct oauth_issuer *is, json_t *claims, int64_t now,
                                       bool introspected, struct oauth_result *r)
{
    const struct conf_oauth *c = &is->c;
    int64_t now_ms = (now > TIME_MAX ? TIME_MAX : now < -TIME_MAX ? -TIME_MAX : now) * 1000;
    int64_t skew = (int64_t)c->clock_skew_ms, t;
    int rc = date_claim(claims, "exp", &t);
    if (rc < 0 || (rc == 0 && !introspected))
        return refuse(is, OAUTH_INVALID, "malformed", r);
    if (rc > 0 && t * 1000 + skew <= now_ms)
        return refuse(is, OAUTH_INVALID, "expired", r);
    static const char *const not_before[] = {"nbf", "iat"};
    for (size_t i = 0; i < 2; i++) {
        if ((rc = date_claim(claims, not_before[i], &t)) < 0)
            return refuse(is, OAUTH_INVALID, "malformed", r);
        if (rc > 0 && t * 1000 > now_ms + skew)
            return refuse(is, OAUTH_INVALID, "not_yet_valid", r);
    }
    json_t *aud = json_object_get(claims, "aud");
    if (aud != NULL && !json_is_string(aud) && !json_is_array(aud))
        return refuse(is, OAUTH_INVALID, "malformed", r);
    bool need_aud = c->audience[0] != '\0' && (!introspected || aud != NULL);
    if (need_aud && !aud_has(aud, c->audience))
        return refuse(is, OAUTH_INVALID, "audience", r);
    for (const char *p = c->scope + strspn(c->scope, " "); *p != '\0';) {
        size_t n = strcspn(p, " ");
        if (!scope_has(claims, p, n))
            return refuse(is, OAUTH_INVALID, "scope", r);
        p += n;
        p += strspn(p, " ");
    }
    json_t *u = json_object_get(claims, c->username_claim);
    if (u == NULL && introspected)
        u = json_object_get(claims, "username"); /* RFC 7662 2.2 */
    if (!json_is_string(u) || !name_ok(json_string_value(u), json_string_length(u)))
        return refuse(is, OAUTH_INVALID, "username", r);
    memcpy(r->user, json_string_value(u), json_string_length(u) + 1);
    snprintf(r->issuer_name, sizeof(r->issuer_name), "%s", c->name);
    return OAUTH_VALID;
}

/* ---- introspection ---- */

static enum oauth_verdict introspect(struct oauth *o, const unsigned *idx, unsigned n, const char *token,
                                     size_t len, int64_t now, struct oauth_result *r)
{
    unsigned char key[32];
    if (EVP_Digest(token, len, key, NULL, EVP_sha256(), NULL) != 1)
        return refuse(&o->iss[idx[0]], OAUTH_TEMPFAIL, "internal", r);
    int64_t now_ms = (now > TIME_MAX ? TIME_MAX : now < -TIME_MAX ? -TIME_MAX : now) * 1000;
    enum oauth_verdict v;
    unsigned who;
    if (oauth_cache_get(o->cache, key, now_ms, &v, &who, r)) {
        const struct oauth_issuer *is = &o->iss[who < o->n ? who : 0];
        if (v == OAUTH_VALID) {
            snprintf(r->issuer_name, sizeof(r->issuer_name), "%s", is->c.name);
            return v;
        }
        char why[sizeof(r->why)];
        memcpy(why, r->why, sizeof(why));
        return refuse(is, v, why, r);
    }
    const char *temp = NULL;
    uint64_t inactive_ttl = UINT64_MAX;
    for (unsigned k = 0; k < n; k++) {
        const struct oauth_issuer *is = &o->iss[idx[k]];
        json_t *resp;
        const char *why;
        if (oauth_introspect_fetch(is, token, len, &resp, &why) < 0) {
            temp = temp ? temp : why;
            continue;
        }
        json_t *active = json_object_get(resp, "active");
        if (!json_is_boolean(active)) {
            json_decref(resp);
            temp = temp ? temp : "introspection_response";
            continue;
        }
        if (!json_is_true(active)) {
            json_decref(resp);
            if (is->c.introspection_cache_ms < inactive_ttl)
                inactive_ttl = is->c.introspection_cache_ms;
            continue; /* another issuer may know it */
        }
        const char *iss = json_string_value(json_object_get(resp, "iss"));
        int64_t exp = 0;
        int has_exp = date_claim(resp, "exp", &exp);
        if (json_object_get(resp, "iss") != NULL && (iss == NULL || strcmp(iss, is->c.issuer) != 0))
            v = refuse(is, OAUTH_INVALID, "issuer", r);
        else
            v = check_claims(is, resp, now, true, r);
        json_decref(resp);
        /* A token is not good for longer than it lives. */
        int64_t ttl =
            (int64_t)(is->c.introspection_cache_ms > (uint64_t)TIME_MAX ? TIME_MAX
                                                                        : is->c.introspection_cache_ms);
        if (has_exp > 0 && exp * 1000 - now_ms < ttl)
            ttl = exp * 1000 - now_ms;
        if (ttl > 0)
            oauth_cache_put(o->cache, key, now_ms + ttl, v, idx[k], r);
        return v;
    }
    if (temp != NULL)
        return refuse(&o->iss[idx[0]], OAUTH_TEMPFAIL, temp, r);
    refuse(&o->iss[idx[0]], OAUTH_INVALID, "not_active", r);
    if (inactive_ttl > 0 && inactive_ttl < (uint64_t)TIME_MAX)
        oauth_cache_put(o->cache, key, now_ms + (int64_t)inactive_ttl, OAUTH_INVALID, idx[0], r);
    return OAUTH_INVALID;
}

/* ---- entry ---- */

/* RFC 6750 2.1 b64token; anything else never reaches a parser or the network. */
static bool b64token_ok(const char *t, size_t n)
{
    size_t i = 0;
    while (i < n && ((t[i] >= 'A' && t[i] <= 'Z') || (t[i] >= 'a' && t[i] <= 'z') ||
                     (t[i] >= '0' && t[i] <= '9') || memchr("-._~+/", t[i], 6) != NULL))
        i++;
    if (i == 0)
        return false;
    while (i < n && t[i] == '=')
        i++;
    return i == n;
}

static enum oauth_verdict validate_jwt(struct oauth *o, const struct jwt *j, const char *token, size_t len,
                                       int64_t now, struct oauth_result *r)
{
    const struct oauth_issuer *first = o->n ? &o->iss[0] : NULL;
    const char *iss = json_string_value(json_object_get(j->claims, "iss"));
    if (iss == NULL)
        return refuse(first, OAUTH_INVALID, "issuer", r);
    unsigned i = 0;
    while (i < o->n && strcmp(o->iss[i].c.issuer, iss) != 0)
        i++;
    if (i == o->n)
        return refuse(first, OAUTH_INVALID, "issuer", r);
    const struct oauth_issuer *is = &o->iss[i];
    if (is->keys == NULL) /* this issuer is asked, not checked locally */
        return introspect(o, &i, 1, token, len, now, r);
    const char *why;
    if (jwt_verify(j, token, is->keys, is->c.algorithms, &why) < 0)
        return refuse(is, OAUTH_INVALID, why, r);
    return check_claims(is, j->claims, now, false, r);
}

enum oauth_verdict oauth_validate(struct oauth *o, const char *token, size_t len, int64_t now,
                                  struct oauth_result *r)
{
    memset(r, 0, sizeof(*r));
    const struct oauth_issuer *first = o->n ? &o->iss[0] : NULL;
    if (len == 0 || len > OAUTH_TOKEN_MAX || !b64token_ok(token, len))
        return refuse(first, OAUTH_INVALID, "malformed", r);
    struct jwt j;
    struct error err = {{0}};
    if (jwt_decode(token, len, &j, &err) == 0) {
        enum oauth_verdict v = validate_jwt(o, &j, token, len, now, r);
        jwt_clear(&j);
        return v;
    }
    /* Not a JWS (an opaque token, a JWE): only an issuer's endpoint can judge it. */
    unsigned idx[CONF_MAX_OAUTH], n = 0;
    for (unsigned i = 0; i < o->n; i++)
        if (o->iss[i].c.introspection_url[0] != '\0')
            idx[n++] = i;
    if (n == 0)
        return refuse(first, OAUTH_INVALID, "malformed", r);
    return introspect(o, idx, n, token, len, now, r);
}
