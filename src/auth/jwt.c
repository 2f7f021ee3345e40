/* JWS compact tokens, verified with OpenSSL 3 directly.
 *
 * Why not libjwt: Debian 12 ships libjwt 1.10, which has no JWKS and no EdDSA,
 * and verifies with whatever key the caller passes for whatever "alg" the token
 * names, so an RSA public key handed to an "HS256" token becomes an HMAC secret
 * (the algorithm-confusion attack). Here the key's type decides what it may
 * verify, and HMAC is never an option. */
#include "auth/jwt.h"

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwks.h"
#include "common/secret.h"
#include "conf/conf.h"

#define HEADER_MAX 1024 /* decoded; real headers are well under 200 bytes */

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t outcap)
{
    if (len % 4 == 1 || len > (size_t)1 << 30)
        return -1;
    size_t need = len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0);
    if (need > outcap)
        return -1;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_val((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* Leftover bits must be zero: "QQ" and "QR" must not both mean "A". */
    if (acc != 0)
        return -1;
    return (long)o;
}

static uint32_t alg_bit(const char *name)
{
    /* Exact, case-sensitive names (RFC 7518, RFC 8037): "rs256" is not RS256. */
    if (strcmp(name, "RS256") == 0)
        return CONF_OAUTH_RS256;
    if (strcmp(name, "ES256") == 0)
        return CONF_OAUTH_ES256;
    if (strcmp(name, "EdDSA") == 0)
        return CONF_OAUTH_EDDSA;
    return 0;
}

/* Decodes one base64url part and parses it as a JSON object. */
static json_t *part_json(const char *p, size_t n, size_t cap, struct error *err, const char *what)
{
    unsigned char *buf = malloc(cap ? cap : 1);
    if (buf == NULL) {
        error_set(err, "out of memory");
        return NULL;
    }
    long dl = jwt_b64url_decode(p, n, buf, cap);
    if (dl <= 0) {
        free(buf);
        error_set(err, "JWT %s is not base64url or too long", what);
        return NULL;
    }
    json_error_t je;
    json_t *v = json_loadb((const char *)buf, (size_t)dl, JSON_REJECT_DUPLICATES, &je);
    secret_wipe(buf, (size_t)dl);
    free(buf);
    if (v == NULL || !json_is_object(v)) {
        json_decref(v);
        error_set(err, "JWT %s is not a JSON object", what);
        return NULL;
    }
    return v;
}

static int parse_header(json_t *h, struct jwt *j, struct error *err)
{
    const char *alg = json_string_value(json_object_get(h, "alg"));
    if (alg == NULL)
        return error_set(err, "JWT header has no alg");
    j->alg = alg_bit(alg);
    json_t *kid = json_object_get(h, "kid");
    if (kid != NULL) {
        const char *k = json_string_value(kid);
        if (k == NULL || json_string_length(kid) > JWT_KID_MAX)
            return error_set(err, "JWT kid is not a string of at most %d bytes", JWT_KID_MAX);
        memcpy(j->kid, k, json_string_length(kid) + 1);
    }
    /* We understand no critical extension (RFC 7515 4.1.11), so any "crit" is
     * fatal; "b64" changes what is signed (RFC 7797) and "enc"/"zip" mean JWE. */
    static const char *const refused[] = {"crit", "b64", "enc", "zip"};
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        if (json_object_get(h, refused[i]) != NULL)
            return error_set(err, "JWT header carries %s", refused[i]);
    /* "jwk", "jku", "x5u", "x5c" would name keys of the token's choosing: they
     * are ignored, only configured keys are ever used. */
    return 0;
}

int jwt_decode(const char *token, size_t len, struct jwt *j, struct error *err)
{
    memset(j, 0, sizeof(*j));
    if (len == 0 || len > JWT_TOKEN_MAX)
        return error_set(err, "JWT is empty or longer than %d bytes", JWT_TOKEN_MAX);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
        return error_set(err, "JWT does not have exactly three parts");
    size_t hl = (size_t)(d1 - token), pl = (size_t)(d2 - d1 - 1), sl = len - (size_t)(d2 + 1 - token);
    json_t *h = part_json(token, hl, HEADER_MAX, err, "header");
    if (h == NULL)
        return -1;
    int rc = parse_header(h, j, err);
    json_decref(h);
    if (rc < 0) {
        jwt_clear(j);
        return -1;
    }
    long sig = jwt_b64url_decode(d2 + 1, sl, j->sig, sizeof(j->sig));
    if (sig < 0) {
        jwt_clear(j);
        return error_set(err, "JWT signature is not base64url or too long");
    }
    j->sig_len = (size_t)sig;
    /* The payload holds the claims; len bounds its decoded size. */
    j->claims = part_json(d1 + 1, pl, pl / 4 * 3 + 3, err, "payload");
    if (j->claims == NULL) {
        jwt_clear(j);
        return -1;
    }
    j->signed_len = (size_t)(d2 - token);
    return 0;
}

void jwt_clear(struct jwt *j)
{
    json_decref(j->claims);
    secret_wipe(j, sizeof(*j));
}

/* JOSE ES256 signatures are r||s, 32 bytes each (RFC 7518 3.4); OpenSSL wants DER. */
static int es256_der(const unsigned char *raw, size_t len, unsigned char *der, size_t cap, size_t *outlen)
{
    if (len != 64)
        return -1;
    ECDSA_SIG *s = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, 32, NULL), *ss = BN_bin2bn(raw + 32, 32, NULL);
    if (s == NULL || r == NULL || ss == NULL || ECDSA_SIG_set0(s, r, ss) != 1) {
        BN_free(r);
        BN_free(ss);
        ECDSA_SIG_free(s);
        return -1;
    }
    int n = i2d_ECDSA_SIG(s, NULL);
    unsigned char *p = der;
    if (n <= 0 || (size_t)n > cap || i2d_ECDSA_SIG(s, &p) != n) {
        ECDSA_SIG_free(s);
        return -1;
    }
    ECDSA_SIG_free(s);
    *outlen = (size_t)n;
    return 0;
}

int jwt_verify(const struct jwt *j, const char *token, const struct jwks *keys, uint32_t allowed_algs,
               const char **why)
{
    *why = "algorithm";
    uint32_t alg = j->alg & allowed_algs;
    if (alg == 0 || (alg & (alg - 1)) != 0)
        return -1;
    EVP_PKEY *pk = jwks_find(keys, alg, j->kid, why);
    if (pk == NULL)
        return -1;
    /* jwks_find already matched the type; check again where it matters. */
    const char *type = alg == CONF_OAUTH_RS256 ? "RSA" : alg == CONF_OAUTH_ES256 ? "EC" : "ED25519";
    *why = "algorithm";
    if (!EVP_PKEY_is_a(pk, type))
        return -1;
    *why = "signature";
    const unsigned char *sig = j->sig;
    size_t sig_len = j->sig_len;
    unsigned char der[80];
    if (alg == CONF_OAUTH_ES256) {
        if (es256_der(j->sig, j->sig_len, der, sizeof(der), &sig_len) < 0)
            return -1;
        sig = der;
    } else if (alg == CONF_OAUTH_RS256 && sig_len != (size_t)EVP_PKEY_get_size(pk)) {
        return -1;
    } else if (alg == CONF_OAUTH_EDDSA && sig_len != 64) {
        return -1;
    }
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_PKEY_CTX *pctx = NULL;
    if (ctx == NULL)
        return -1;
    /* Ed25519 is "pure": no separate digest. */
    const EVP_MD *md = alg == CONF_OAUTH_EDDSA ? NULL : EVP_sha256();
    int ok = EVP_DigestVerifyInit(ctx, &pctx, md, NULL, pk) == 1;
    if (ok && alg == CONF_OAUTH_RS256)
        ok = EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PADDING) > 0; /* RS256, never PSS */
    ok = ok && EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)token, j->signed_len) == 1;
    EVP_MD_CTX_free(ctx);
    ERR_clear_error(); /* a failed verify leaves entries in this thread's queue */
    return ok ? 0 : -1;
}
