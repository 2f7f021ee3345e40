#include "auth/jwks.h"

#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/jwt.h"
#include "common/file.h"
#include "conf/conf.h"

#define RSA_BITS_MIN 2048
#define RSA_BITS_MAX 8192
#define RSA_N_CAP 2049 /* decoded bytes accepted before the size check (16384 bits) */

struct jwks_key {
    char kid[JWT_KID_MAX + 1];
    uint32_t algs; /* the one CONF_OAUTH_* bit this key verifies */
    EVP_PKEY *pk;
};

struct jwks {
    size_t n;
    struct jwks_key k[JWKS_MAX_KEYS];
};

enum { KEY_SKIP = 0, KEY_KEEP = 1 };

/* A required base64url member decoded to at most cap bytes. */
static long member_b64(json_t *o, const char *name, unsigned char *out, size_t cap)
{
    json_t *v = json_object_get(o, name);
    const char *s = json_string_value(v);
    if (s == NULL)
        return -1;
    return jwt_b64url_decode(s, json_string_length(v), out, cap);
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *b)
{
    EVP_PKEY *pk = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(b);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &pk, EVP_PKEY_PUBLIC_KEY, params) != 1)
        pk = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pk;
}

static int rsa_key(json_t *o, struct jwks_key *k, struct error *err)
{
    unsigned char n[RSA_N_CAP], e[8];
    long nl = member_b64(o, "n", n, sizeof(n)), el = member_b64(o, "e", e, sizeof(e));
    if (nl <= 0 || el <= 0)
        return error_set(err, "RSA key lacks n or e, or they are not base64url of a sane size");
    BIGNUM *bn = BN_bin2bn(n, (int)nl, NULL), *be = BN_bin2bn(e, (int)el, NULL);
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    int rc = error_set(err, "RSA key: out of memory");
    if (bn == NULL || be == NULL || b == NULL)
        goto out;
    int bits = BN_num_bits(bn);
    rc = KEY_SKIP; /* legal but not ours to trust: too weak, or absurdly large */
    if (bits < RSA_BITS_MIN || bits > RSA_BITS_MAX)
        goto out;
    rc = error_set(err, "RSA key has an even modulus or a bad exponent");
    if (!BN_is_odd(bn) || !BN_is_odd(be) || BN_num_bits(be) < 2)
        goto out;
    rc = error_set(err, "RSA key could not be built");
    if (OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_N, bn) != 1 ||
        OSSL_PARAM_BLD_push_BN(b, OSSL_PKEY_PARAM_RSA_E, be) != 1 || (k->pk = from_params("RSA", b)) == NULL)
        goto out;
    k->algs = CONF_OAUTH_RS256;
    rc = KEY_KEEP;
out:
    OSSL_PARAM_BLD_free(b);
    BN_free(bn);
    BN_free(be);
    return rc;
}

static int ec_key(json_t *o, struct jwks_key *k, struct error *err)
{
    const char *crv = json_string_value(json_object_get(o, "crv"));
    if (crv == NULL)
        return error_set(err, "EC key lacks crv");
    if (strcmp(crv, "P-256") != 0)
        return KEY_SKIP;
    unsigned char pub[65];
    pub[0] = 0x04; /* uncompressed point */
    /* RFC 7518 6.2.1.2: the coordinates are the full 32 bytes, not minimal. */
    if (member_b64(o, "x", pub + 1, 32) != 32 || member_b64(o, "y", pub + 33, 32) != 32)
        return error_set(err, "EC key: x and y must be base64url of 32 bytes each");
    OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
    if (b == NULL || OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "P-256", 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)) != 1 ||
        (k->pk = from_params("EC", b)) == NULL) {
        OSSL_PARAM_BLD_free(b);
        return error_set(err, "EC key: not a point on P-256");
    }
    OSSL_PARAM_BLD_free(b);
    /* An off-curve or small-order point is an invalid-curve attack waiting for a
     * verifier; check it once here rather than trusting every code path later. */
    EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(NULL, k->pk, NULL);
    int ok = c != NULL && EVP_PKEY_public_check(c) == 1;
    EVP_PKEY_CTX_free(c);
    if (!ok) {
        EVP_PKEY_free(k->pk);
        k->pk = NULL;
        return error_set(err, "EC key: not a point on P-256");
    }
    k->algs = CONF_OAUTH_ES256;
    return KEY_KEEP;
}

static int okp_key(json_t *o, struct jwks_key *k, struct error *err)
{
    const char *crv = json_string_value(json_object_get(o, "crv"));
    if (crv == NULL)
        return error_set(err, "OKP key lacks crv");
    if (strcmp(crv, "Ed25519") != 0)
        return KEY_SKIP; /* Ed448, X25519, X448 */
    unsigned char x[32];
    if (member_b64(o, "x", x, sizeof(x)) != 32)
        return error_set(err, "Ed25519 key: x must be base64url of 32 bytes");
    if ((k->pk = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, NULL, x, sizeof(x))) == NULL)
        return error_set(err, "Ed25519 key could not be built");
    k->algs = CONF_OAUTH_EDDSA;
    return KEY_KEEP;
}

/* "use" and "key_ops" (RFC 7517 4.2, 4.3) must allow verification if present. */
static int usage(json_t *o, bool *sig, struct error *err)
{
    *sig = true;
    json_t *use = json_object_get(o, "use");
    if (use != NULL) {
        if (!json_is_string(use))
            return error_set(err, "key use is not a string");
        *sig = *sig && strcmp(json_string_value(use), "sig") == 0;
    }
    json_t *ops = json_object_get(o, "key_ops");
    if (ops != NULL) {
        if (!json_is_array(ops))
            return error_set(err, "key_ops is not an array");
        bool verify = false;
        size_t i;
        json_t *op;
        json_array_foreach(ops, i, op)
        {
            const char *s = json_string_value(op);
            if (s == NULL)
                return error_set(err, "key_ops holds a non-string");
            verify = verify || strcmp(s, "verify") == 0;
        }
        *sig = *sig && verify;
    }
    return 0;
}

/* Returns KEY_KEEP (k filled), KEY_SKIP, or -1 for a malformed key. */
static int parse_key(json_t *o, struct jwks_key *k, struct error *err)
{
    memset(k, 0, sizeof(*k));
    if (!json_is_object(o))
        return error_set(err, "a key is not a JSON object");
    const char *kty = json_string_value(json_object_get(o, "kty"));
    if (kty == NULL)
        return error_set(err, "a key lacks kty");
    uint32_t type_alg = strcmp(kty, "RSA") == 0   ? CONF_OAUTH_RS256
                        : strcmp(kty, "EC") == 0  ? CONF_OAUTH_ES256
                        : strcmp(kty, "OKP") == 0 ? CONF_OAUTH_EDDSA
                                                  : 0;
    if (type_alg == 0)
        return KEY_SKIP; /* "oct" above all: a shared secret is never a verification key here */
    json_t *kid = json_object_get(o, "kid");
    if (kid != NULL) {
        if (!json_is_string(kid) || json_string_length(kid) > JWT_KID_MAX)
            return error_set(err, "kid is not a string of at most %d bytes", JWT_KID_MAX);
        memcpy(k->kid, json_string_value(kid), json_string_length(kid) + 1);
    }
    /* A public key set that carries private parts has leaked its signing key. */
    static const char *const priv[] = {"d", "p", "q", "dp", "dq", "qi", "oth"};
    for (size_t i = 0; i < sizeof(priv) / sizeof(priv[0]); i++)
        if (json_object_get(o, priv[i]) != NULL)
            return error_set(err, "key %s holds private key material (%s)", k->kid, priv[i]);
    bool sig;
    if (usage(o, &sig, err) < 0)
        return -1;
    json_t *alg = json_object_get(o, "alg");
    if (alg != NULL && !json_is_string(alg))
        return error_set(err, "key alg is not a string");
    /* A declared alg binds the key to it (RFC 7517 4.4): an RSA key for PS256 or
     * RS384 never verifies RS256. */
    const char *a = json_string_value(alg);
    if (!sig || (a != NULL && strcmp(a, type_alg == CONF_OAUTH_RS256   ? "RS256"
                                        : type_alg == CONF_OAUTH_ES256 ? "ES256"
                                                                       : "EdDSA") != 0))
        return KEY_SKIP;
    int rc = type_alg == CONF_OAUTH_RS256   ? rsa_key(o, k, err)
             : type_alg == CONF_OAUTH_ES256 ? ec_key(o, k, err)
                                            : okp_key(o, k, err);
    ERR_clear_error();
    return rc;
}

int jwks_parse(const char *json, size_t len, struct jwks **out, struct error *err)
{
    *out = NULL;
    if (len > JWKS_FILE_MAX)
        return error_set(err, "JWKS larger than %d bytes", JWKS_FILE_MAX);
    json_error_t je;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL)
        return error_set(err, "JWKS is not JSON: line %d: %.80s", je.line, je.text);
    json_t *keys = json_object_get(doc, "keys");
    if (!json_is_array(keys) || json_array_size(keys) > JWKS_MAX_KEYS) {
        json_decref(doc);
        return error_set(err, "JWKS needs a \"keys\" array of at most %d keys", JWKS_MAX_KEYS);
    }
    struct jwks *ks = calloc(1, sizeof(*ks));
    if (ks == NULL) {
        json_decref(doc);
        return error_set(err, "out of memory");
    }
    size_t i;
    json_t *o;
    json_array_foreach(keys, i, o)
    {
        struct error kerr = {{0}};
        int rc = parse_key(o, &ks->k[ks->n], &kerr);
        if (rc < 0) {
            json_decref(doc);
            jwks_free(&ks);
            return error_set(err, "JWKS key %zu: %s", i, kerr.msg);
        }
        if (rc == KEY_KEEP)
            ks->n++;
    }
    json_decref(doc);
    *out = ks;
    return 0;
}

int jwks_load(const char *path, struct jwks **out, struct error *err)
{
    *out = NULL;
    size_t n;
    char *buf = file_read_small(path, JWKS_FILE_MAX, S_IWGRP | S_IWOTH,
                                "group- or world-writable: whoever can write it can sign tokens", &n, err);
    if (buf == NULL)
        return -1;
    struct error perr = {{0}};
    int rc = jwks_parse(buf, n, out, &perr);
    free(buf);
    if (rc < 0)
        return error_set(err, "%s: %s", path, perr.msg);
    return 0;
}

void jwks_free(struct jwks **k)
{
    if (*k == NULL)
        return;
    for (size_t i = 0; i < (*k)->n; i++)
        EVP_PKEY_free((*k)->k[i].pk);
    free(*k);
    *k = NULL;
}

size_t jwks_count(const struct jwks *k)
{
    return k ? k->n : 0;
}

EVP_PKEY *jwks_find(const struct jwks *k, uint32_t alg, const char *kid, const char **why)
{
    *why = "unknown_key";
    if (k == NULL)
        return NULL;
    if (kid != NULL && kid[0] != '\0') {
        bool seen = false;
        for (size_t i = 0; i < k->n; i++) {
            if (strcmp(k->k[i].kid, kid) != 0)
                continue;
            if (k->k[i].algs & alg)
                return k->k[i].pk;
            seen = true;
        }
        if (seen)
            *why = "algorithm"; /* e.g. RS256 in the header, kid of an EC key */
        return NULL;
    }
    EVP_PKEY *found = NULL;
    unsigned n = 0;
    for (size_t i = 0; i < k->n; i++)
        if (k->k[i].algs & alg) {
            found = k->k[i].pk;
            n++;
        }
    return n == 1 ? found : NULL;
}
