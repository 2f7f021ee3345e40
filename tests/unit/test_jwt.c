/* Local validation of OAuth 2.0 bearer JWTs (src/auth/jwt.c, jwks.c, oauth.c):
 * keys are generated here, published as a JWKS file in a temporary directory,
 * and tokens are minted with EVP_DigestSign, good ones and every forgery we know. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <openssl/bio.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/oauth.h"
#include "conf/conf.h"

#define ISS "https://idp.example.com"
#define AUD "pop3.example.com"
#define OIDC "https://idp.example.com/.well-known/openid-configuration"

static struct {
    char dir[64];
    char jwks[128];
    EVP_PKEY *rsa, *ec, *ed, *rsa2;
    struct conf c;
    struct oauth *o;
    int64_t now;
} T;

/* ---- helpers: base64url, JWKs, files, minting ---- */

static void b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out[o++] = a[(acc >> bits) & 63];
        }
    }
    if (bits > 0)
        out[o++] = a[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

static void bn_b64url(EVP_PKEY *pk, const char *param, char *out)
{
    BIGNUM *bn = NULL;
    assert_int_equal(EVP_PKEY_get_bn_param(pk, param, &bn), 1);
    unsigned char buf[1024];
    int n = BN_bn2bin(bn, buf);
    b64url(buf, (size_t)n, out);
    BN_free(bn);
}

static char *jwk_rsa(EVP_PKEY *pk, const char *kid, const char *extra)
{
    char n[1400], e[16];
    bn_b64url(pk, OSSL_PKEY_PARAM_RSA_N, n);
    bn_b64url(pk, OSSL_PKEY_PARAM_RSA_E, e);
    char *s;
    assert_true(
        asprintf(&s, "{\"kty\":\"RSA\",\"kid\":\"%s\",\"n\":\"%s\",\"e\":\"%s\"%s}", kid, n, e, extra) > 0);
    return s;
}

static void ec_xy(EVP_PKEY *pk, char *x, char *y)
{
    unsigned char pub[65];
    size_t len;
    assert_int_equal(EVP_PKEY_get_octet_string_param(pk, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len), 1);
    assert_int_equal(len, 65);
    b64url(pub + 1, 32, x);
    b64url(pub + 33, 32, y);
}

static char *jwk_ec(EVP_PKEY *pk, const char *kid, const char *extra)
{
    char x[64], y[64], *s;
    ec_xy(pk, x, y);
    assert_true(asprintf(&s, "{\"kty\":\"EC\",\"crv\":\"P-256\",\"kid\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"%s}",
                         kid, x, y, extra) > 0);
    return s;
}

static char *jwk_ed(EVP_PKEY *pk, const char *kid, const char *extra)
{
    unsigned char raw[32];
    size_t len = sizeof(raw);
    assert_int_equal(EVP_PKEY_get_raw_public_key(pk, raw, &len), 1);
    char x[64], *s;
    b64url(raw, 32, x);
    assert_true(asprintf(&s, "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"%s\",\"x\":\"%s\"%s}", kid, x,
                         extra) > 0);
    return s;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

/* header.payload from two JSON texts. */
static char *signing_input(const char *header, const char *claims)
{
    char *h = malloc(strlen(header) * 2 + 4), *p = malloc(strlen(claims) * 2 + 4), *s;
    b64url((const unsigned char *)header, strlen(header), h);
    b64url((const unsigned char *)claims, strlen(claims), p);
    assert_true(asprintf(&s, "%s.%s", h, p) > 0);
    free(h);
    free(p);
    return s;
}

static char *with_sig(char *input, const unsigned char *sig, size_t n)
{
    char *b = malloc(n * 2 + 4), *s;
    b64url(sig, n, b);
    assert_true(asprintf(&s, "%s.%s", input, b) > 0);
    free(b);
    free(input);
    return s;
}

/* Signs as alg says: "RS256", "ES256" (JOSE r||s), "EdDSA"; der_es256 keeps OpenSSL's DER. */
static char *mint_with(EVP_PKEY *k, const char *alg, const char *header, const char *claims, bool der_es256)
{
    char *in = signing_input(header, claims);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    const EVP_MD *md = strcmp(alg, "EdDSA") == 0 ? NULL : EVP_sha256();
    assert_int_equal(EVP_DigestSignInit(ctx, NULL, md, NULL, k), 1);
    unsigned char sig[1024];
    size_t n = sizeof(sig);
    assert_int_equal(EVP_DigestSign(ctx, sig, &n, (unsigned char *)in, strlen(in)), 1);
    EVP_MD_CTX_free(ctx);
    if (strcmp(alg, "ES256") == 0 && !der_es256) {
        const unsigned char *p = sig;
        ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)n);
        assert_non_null(es);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
        assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
        ECDSA_SIG_free(es);
        n = 64;
    }
    return with_sig(in, sig, n);
}

static char *claims_fmt(const char *iss, const char *aud_json, int64_t exp, const char *extra)
{
    char *s;
    assert_true(
        asprintf(&s,
                 "{\"iss\":\"%s\",\"aud\":%s,\"exp\":%lld,\"iat\":%lld,\"scope\":\"openid mail.read\","
                 "\"email\":\"alice@example.com\"%s}",
                 iss, aud_json, (long long)exp, (long long)T.now - 10, extra) > 0);
    return s;
}

static char *std_claims(void)
{
    return claims_fmt(ISS, "\"" AUD "\"", T.now + 600, "");
}

static char *mint(EVP_PKEY *k, const char *alg, const char *kid, const char *claims)
{
    char header[160];
    if (kid != NULL)
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"at+jwt\",\"kid\":\"%s\"}", alg, kid);
    else
        snprintf(header, sizeof(header), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", alg);
    return mint_with(k, alg, header, claims, false);
}

static enum oauth_verdict check(const char *tok, struct oauth_result *r)
{
    memset(r, 0x5a, sizeof(*r));
    return oauth_validate(T.o, tok, strlen(tok), T.now, r);
}

static void expect_refused(char *tok, const char *why)
{
    struct oauth_result r;
    enum oauth_verdict v = check(tok, &r);
    if (v != OAUTH_INVALID || strcmp(r.why, why) != 0)
        fail_msg("verdict %d why '%s', wanted INVALID '%s'", (int)v, r.why, why);
    assert_string_equal(r.user, "");
    assert_non_null(strstr(r.status_json, "\"status\":"));
    free(tok);
}

static void expect_valid(char *tok, const char *user)
{
    struct oauth_result r;
    enum oauth_verdict v = check(tok, &r);
    if (v != OAUTH_VALID)
        fail_msg("refused: %s", r.why);
    assert_string_equal(r.user, user);
    assert_string_equal(r.issuer_name, "corp");
    free(tok);
}

static void base_conf(struct conf *c)
{
    conf_defaults(c);
    struct conf_oauth *o = &c->oauth[0];
    memset(o, 0, sizeof(*o));
    snprintf(o->name, sizeof(o->name), "corp");
    snprintf(o->issuer, sizeof(o->issuer), ISS);
    snprintf(o->audience, sizeof(o->audience), AUD);
    snprintf(o->jwks_file, sizeof(o->jwks_file), "%s", T.jwks);
    o->algorithms = CONF_OAUTH_RS256 | CONF_OAUTH_ES256 | CONF_OAUTH_EDDSA;
    snprintf(o->scope, sizeof(o->scope), "mail.read");
    snprintf(o->username_claim, sizeof(o->username_claim), "email");
    o->clock_skew_ms = 60000;
    o->introspection_timeout_ms = 3000;
    o->introspection_cache_ms = 60000;
    snprintf(o->openid_configuration, sizeof(o->openid_configuration), OIDC);
    c->n_oauth = 1;
}

static int setup(void **state)
{
    snprintf(T.dir, sizeof(T.dir), "/tmp/popsd-jwt-XXXXXX");
    if (mkdtemp(T.dir) == NULL)
        return -1;
    T.now = (int64_t)time(NULL);
    T.rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    T.rsa2 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    T.ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    T.ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    if (!T.rsa || !T.rsa2 || !T.ec || !T.ed)
        return -1;
    /* The issuer's set, plus keys we must skip: a shared secret under a kid a
     * forger might name, an encryption key, a P-384 key. */
    char *r = jwk_rsa(T.rsa, "rsa1", ",\"use\":\"sig\",\"alg\":\"RS256\""), *e = jwk_ec(T.ec, "ec1", ""),
         *d = jwk_ed(T.ed, "ed1", ",\"key_ops\":[\"verify\"]"),
         *renc = jwk_rsa(T.rsa2, "enc1", ",\"use\":\"enc\"");
    char *doc;
    assert_true(asprintf(&doc,
                         "{\"keys\":[%s,%s,%s,%s,{\"kty\":\"oct\",\"kid\":\"hmac1\",\"k\":\"c2VjcmV0\"},"
                         "{\"kty\":\"EC\",\"crv\":\"P-384\",\"kid\":\"p384\",\"x\":\"AA\",\"y\":\"AA\"}]}",
                         r, e, d, renc) > 0);
    snprintf(T.jwks, sizeof(T.jwks), "%s/jwks.json", T.dir);
    write_file(T.jwks, doc, 0644);
    free(r);
    free(e);
    free(d);
    free(renc);
    free(doc);
    base_conf(&T.c);
    struct error err = {{0}};
    if (oauth_new(&T.c, &T.o, &err) < 0) {
        fprintf(stderr, "oauth_new: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    oauth_free(&T.o);
    EVP_PKEY_free(T.rsa);
    EVP_PKEY_free(T.rsa2);
    EVP_PKEY_free(T.ec);
    EVP_PKEY_free(T.ed);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", T.dir);
    return system(cmd) == 0 ? 0 : -1;
}

/* ---- base64url ---- */

static void test_b64url(void **state)
{
    unsigned char out[16];
    assert_int_equal(jwt_b64url_decode("", 0, out, sizeof(out)), 0);
    assert_int_equal(jwt_b64url_decode("QQ", 2, out, sizeof(out)), 1);
    assert_int_equal(out[0], 'A');
    assert_int_equal(jwt_b64url_decode("QUI", 3, out, sizeof(out)), 2);
    assert_int_equal(jwt_b64url_decode("QUJD", 4, out, sizeof(out)), 3);
    assert_int_equal(jwt_b64url_decode("-_8", 3, out, sizeof(out)), 2);
    assert_int_equal(out[0], 0xfb);
    assert_int_equal(out[1], 0xff);
    assert_int_equal(jwt_b64url_decode("QQ==", 4, out, sizeof(out)), -1); /* padding */
    assert_int_equal(jwt_b64url_decode("QR", 2, out, sizeof(out)), -1);   /* non-zero spare bits */
    assert_int_equal(jwt_b64url_decode("Q", 1, out, sizeof(out)), -1);    /* 4k+1 */
    assert_int_equal(jwt_b64url_decode("+/8", 3, out, sizeof(out)), -1);  /* plain base64 alphabet */
    assert_int_equal(jwt_b64url_decode("QU I", 4, out, sizeof(out)), -1);
    assert_int_equal(jwt_b64url_decode("QUJD", 4, out, 2), -1); /* does not fit */
}

/* ---- JWKS ---- */

static struct jwks *parse_ok(const char *doc, size_t want)
{
    struct jwks *k = NULL;
    struct error err = {{0}};
    if (jwks_parse(doc, strlen(doc), &k, &err) < 0)
        fail_msg("jwks_parse: %s", err.msg);
    assert_int_equal(jwks_count(k), want);
    return k;
}

static void parse_bad(const char *doc)
{
    struct jwks *k = (struct jwks *)1;
    struct error err = {{0}};
    if (jwks_parse(doc, strlen(doc), &k, &err) == 0)
        fail_msg("accepted bad JWKS: %.200s", doc);
    assert_null(k);
    assert_true(err.msg[0] != '\0');
}

static void test_jwks(void **state)
{
    struct jwks *k = NULL;
    struct error err = {{0}};
    assert_int_equal(jwks_load(T.jwks, &k, &err), 0);
    assert_int_equal(jwks_count(k), 3); /* rsa1, ec1, ed1; enc, oct and P-384 skipped */
    const char *why;
    assert_ptr_equal(jwks_find(k, CONF_OAUTH_RS256, "rsa1", &why),
                     jwks_find(k, CONF_OAUTH_RS256, NULL, &why));
    assert_non_null(jwks_find(k, CONF_OAUTH_ES256, "ec1", &why));
    assert_null(jwks_find(k, CONF_OAUTH_RS256, "ec1", &why));
    assert_string_equal(why, "algorithm");
    assert_null(jwks_find(k, CONF_OAUTH_RS256, "nope", &why));
    assert_string_equal(why, "unknown_key");
    assert_null(jwks_find(k, CONF_OAUTH_RS256, "enc1", &why));
    jwks_free(&k);
    assert_null(k);

    char *r = jwk_rsa(T.rsa, "a", ""), *e = jwk_ec(T.ec, "b", ""), *d = jwk_ed(T.ed, "c", ""), *doc;
    /* two RSA keys without kid: a kid-less token cannot choose */
    assert_true(asprintf(&doc, "{\"keys\":[%s,%s]}", r, r) > 0);
    k = parse_ok(doc, 2);
    assert_null(jwks_find(k, CONF_OAUTH_RS256, NULL, &why));
    assert_string_equal(why, "unknown_key");
    jwks_free(&k);
    free(doc);
    /* declared alg binds: PS256/RS384 RSA keys never verify RS256 */
    char *ps = jwk_rsa(T.rsa, "ps", ",\"alg\":\"PS256\""),
         *ops = jwk_ed(T.ed, "o", ",\"key_ops\":[\"sign\"]");
    assert_true(
        asprintf(&doc, "{\"keys\":[%s,%s,{\"kty\":\"OKP\",\"crv\":\"X25519\",\"x\":\"AA\"}]}", ps, ops) > 0);
    k = parse_ok(doc, 0);
    jwks_free(&k);
    free(doc);
    free(ps);
    free(ops);
    k = parse_ok("{\"keys\":[]}", 0);
    jwks_free(&k);
    /* a weak RSA key is skipped, not trusted */
    EVP_PKEY *weak = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    char *w = jwk_rsa(weak, "w", "");
    assert_true(asprintf(&doc, "{\"keys\":[%s]}", w) > 0);
    k = parse_ok(doc, 0);
    jwks_free(&k);
    free(doc);
    free(w);
    EVP_PKEY_free(weak);

    /* malformed keys of supported types fail the set */
    parse_bad("");
    parse_bad("[]");
    parse_bad("{\"keys\":{}}");
    parse_bad("{\"keys\":[1]}");
    parse_bad("{\"keys\":[{\"n\":\"AQAB\"}]}");
    parse_bad("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"AQAB\"}]}");
    parse_bad("{\"keys\":[{\"kty\":\"RSA\",\"n\":\"!!\",\"e\":\"AQAB\"}]}");
    parse_bad("{\"keys\":[{\"kty\":\"EC\",\"x\":\"AA\",\"y\":\"AA\"}]}");
    parse_bad("{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}]}");
    parse_bad("{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AAAA\"}]}");
    parse_bad("{\"keys\":[{\"kty\":\"RSA\",\"kid\":7,\"n\":\"AQAB\",\"e\":\"AQAB\"}]}");
    parse_bad("{\"keys\":[],\"keys\":[]}"); /* duplicate names */
    /* an EC point off the curve: y + 1 */
    char x[64], y[64];
    unsigned char pub[65];
    size_t plen;
    EVP_PKEY_get_octet_string_param(T.ec, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &plen);
    pub[64] ^= 1;
    b64url(pub + 1, 32, x);
    b64url(pub + 33, 32, y);
    assert_true(asprintf(&doc, "{\"keys\":[{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"}]}", x,
                         y) > 0);
    parse_bad(doc);
    free(doc);
    /* private key material in a public set */
    char *priv = jwk_ec(T.ec, "p", ",\"d\":\"AAAA\"");
    assert_true(asprintf(&doc, "{\"keys\":[%s]}", priv) > 0);
    parse_bad(doc);
    free(doc);
    free(priv);
    /* at most 64 keys */
    size_t cap = 70 * (strlen(d) + 1) + 16;
    doc = malloc(cap);
    strcpy(doc, "{\"keys\":[");
    for (int i = 0; i < 65; i++) {
        strcat(doc, d);
        strcat(doc, i < 64 ? "," : "]}");
    }
    parse_bad(doc);
    free(doc);
    free(r);
    free(e);
    free(d);

    /* whoever can write the file can sign tokens */
    char path[160];
    snprintf(path, sizeof(path), "%s/gw.json", T.dir);
    write_file(path, "{\"keys\":[]}", 0664);
    assert_int_equal(jwks_load(path, &k, &err), -1);
    assert_non_null(strstr(err.msg, "writable"));
    assert_int_equal(jwks_load("/nonexistent/jwks.json", &k, &err), -1);
}

/* ---- tokens ---- */

static void test_valid(void **state)
{
    char *c = std_claims();
    expect_valid(mint(T.rsa, "RS256", "rsa1", c), "alice@example.com");
    expect_valid(mint(T.ec, "ES256", "ec1", c), "alice@example.com");
    expect_valid(mint(T.ed, "EdDSA", "ed1", c), "alice@example.com");
    /* no kid: the only key for that algorithm */
    expect_valid(mint(T.rsa, "RS256", NULL, c), "alice@example.com");
    expect_valid(mint(T.ed, "EdDSA", NULL, c), "alice@example.com");
    free(c);
    /* aud as an array, scopes as "scp" array, a fractional exp */
    c = claims_fmt(ISS, "[\"other\",\"" AUD "\"]", T.now + 60, "");
    expect_valid(mint(T.ec, "ES256", "ec1", c), "alice@example.com");
    free(c);
    char *s;
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld.5,\"scp\":[\"mail.read\"],"
                         "\"email\":\"bob@example.com\"}",
                         (long long)T.now + 60) > 0);
    expect_valid(mint(T.rsa, "RS256", "rsa1", s), "bob@example.com");
    free(s);
    /* UTF-8 names pass through */
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld,\"scope\":\"mail.read\","
                         "\"email\":\"j\\u00f6rg@example.com\"}",
                         (long long)T.now + 60) > 0);
    expect_valid(mint(T.ed, "EdDSA", "ed1", s), "j\xc3\xb6rg@example.com");
    free(s);
    /* a duplicate claim is refused before anything else looks at it */
    c = claims_fmt(ISS, "\"" AUD "\"", T.now + 60, ",\"email\":\"mallory@example.com\"");
    expect_refused(mint(T.rsa, "RS256", "rsa1", c), "malformed");
    free(c);
}

static void test_time(void **state)
{
    /* exp 30 s ago with 60 s skew: accepted; 61 s ago: refused */
    char *c = claims_fmt(ISS, "\"" AUD "\"", T.now - 30, "");
    expect_valid(mint(T.rsa, "RS256", "rsa1", c), "alice@example.com");
    free(c);
    c = claims_fmt(ISS, "\"" AUD "\"", T.now - 61, "");
    expect_refused(mint(T.rsa, "RS256", "rsa1", c), "expired");
    free(c);
    char *s;
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                         "\",\"exp\":%lld,\"nbf\":%lld,\"scope\":\"mail.read\","
                         "\"email\":\"a@b\"}",
                         (long long)T.now + 600, (long long)T.now + 120) > 0);
    expect_refused(mint(T.ed, "EdDSA", "ed1", s), "not_yet_valid");
    free(s);
    /* nbf within the skew is fine */
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                         "\",\"exp\":%lld,\"nbf\":%lld,\"scope\":\"mail.read\","
                         "\"email\":\"a@b\"}",
                         (long long)T.now + 600, (long long)T.now + 30) > 0);
    expect_valid(mint(T.ed, "EdDSA", "ed1", s), "a@b");
    free(s);
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                         "\",\"exp\":%lld,\"iat\":%lld,\"scope\":\"mail.read\","
                         "\"email\":\"a@b\"}",
                         (long long)T.now + 600, (long long)T.now + 3600) > 0);
    expect_refused(mint(T.ed, "EdDSA", "ed1", s), "not_yet_valid");
    free(s);
    /* exp is required, and must be a number */
    expect_refused(mint(T.ed, "EdDSA", "ed1",
                        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                        "\",\"scope\":\"mail.read\",\"email\":\"a@b\"}"),
                   "malformed");
    expect_refused(mint(T.ed, "EdDSA", "ed1",
                        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                        "\",\"exp\":\"tomorrow\",\"scope\":\"mail.read\","
                        "\"email\":\"a@b\"}"),
                   "malformed");
    /* absurd dates do not overflow into validity */
    expect_refused(mint(T.ed, "EdDSA", "ed1",
                        "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":-1e300,\"scope\":\"mail.read\","
                        "\"email\":\"a@b\"}"),
                   "expired");
    expect_valid(mint(T.ed, "EdDSA", "ed1",
                      "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                      "\",\"exp\":9223372036854775807,\"scope\":\"mail.read\","
                      "\"email\":\"a@b\"}"),
                 "a@b");
}

static void test_claims(void **state)
{
    char *c = claims_fmt(ISS, "\"someone-else\"", T.now + 600, "");
    expect_refused(mint(T.rsa, "RS256", "rsa1", c), "audience");
    free(c);
    c = claims_fmt(ISS, "[]", T.now + 600, "");
    expect_refused(mint(T.rsa, "RS256", "rsa1", c), "audience");
    free(c);
    /* issuer must match exactly: no trailing slash, no case folding */
    c = claims_fmt(ISS "/", "\"" AUD "\"", T.now + 600, "");
    expect_refused(mint(T.rsa, "RS256", "rsa1", c), "issuer");
    free(c);
    c = claims_fmt("https://IDP.example.com", "\"" AUD "\"", T.now + 600, "");
    expect_refused(mint(T.rsa, "RS256", "rsa1", c), "issuer");
    free(c);
    expect_refused(mint(T.rsa, "RS256", "rsa1", "{\"aud\":\"" AUD "\",\"exp\":99999999999}"), "issuer");
    /* scope: "mail.readonly" is not "mail.read" */
    char *s;
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD
                         "\",\"exp\":%lld,\"scope\":\"openid mail.readonly\","
                         "\"email\":\"a@b\"}",
                         (long long)T.now + 600) > 0);
    struct oauth_result r;
    char *tok = mint(T.ec, "ES256", "ec1", s);
    assert_int_equal(check(tok, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "scope");
    assert_string_equal(
        r.status_json,
        "{\"status\":\"insufficient_scope\",\"scope\":\"mail.read\",\"openid-configuration\":\"" OIDC "\"}");
    free(tok);
    free(s);
    /* username claim: missing, empty, not a string, with a control character, too long */
    static const char *const users[] = {"", ",\"email\":\"\"", ",\"email\":7", ",\"email\":\"a\\nb\"",
                                        ",\"email\":\"a\\u007fb\""};
    for (size_t i = 0; i < sizeof(users) / sizeof(users[0]); i++) {
        assert_true(
            asprintf(&s, "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld,\"scope\":\"mail.read\"%s}",
                     (long long)T.now + 600, users[i]) > 0);
        expect_refused(mint(T.ed, "EdDSA", "ed1", s), "username");
        free(s);
    }
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = '\0';
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld,\"scope\":\"mail.read\","
                         "\"email\":\"%s\"}",
                         (long long)T.now + 600, longname) > 0);
    expect_refused(mint(T.ed, "EdDSA", "ed1", s), "username");
    free(s);
    longname[255] = '\0';
    assert_true(asprintf(&s,
                         "{\"iss\":\"" ISS "\",\"aud\":\"" AUD "\",\"exp\":%lld,\"scope\":\"mail.read\","
                         "\"email\":\"%s\"}",
                         (long long)T.now + 600, longname) > 0);
    expect_valid(mint(T.ed, "EdDSA", "ed1", s), longname);
    free(s);
}

static void test_forgeries(void **state)
{
    char *c = std_claims();
    /* a flipped bit anywhere in the signature */
    char *tok = mint(T.rsa, "RS256", "rsa1", c);
    char *dot = strrchr(tok, '.');
    dot[5] = dot[5] == 'A' ? 'B' : 'A';
    expect_refused(tok, "signature");
    tok = mint(T.ed, "EdDSA", "ed1", c);
    dot = strrchr(tok, '.');
    dot[10] = dot[10] == 'A' ? 'B' : 'A';
    expect_refused(tok, "signature");
    /* a flipped claim under a valid signature */
    tok = mint(T.ec, "ES256", "ec1", c);
    char *p = strchr(tok, '.') + 3;
    *p = *p == 'A' ? 'B' : 'A';
    struct oauth_result r;
    assert_int_not_equal(check(tok, &r), OAUTH_VALID);
    free(tok);
    /* another RSA key with the same kid */
    expect_refused(mint(T.rsa2, "RS256", "rsa1", c), "signature");
    /* ES256 in OpenSSL's DER form instead of JOSE r||s */
    expect_refused(mint_with(T.ec, "ES256", "{\"alg\":\"ES256\",\"kid\":\"ec1\"}", c, true), "signature");

    /* alg none, with an empty signature part and with none at all */
    expect_refused(with_sig(signing_input("{\"alg\":\"none\"}", c), (const unsigned char *)"", 0),
                   "algorithm");
    expect_refused(signing_input("{\"alg\":\"none\"}", c), "malformed");
    expect_refused(
        with_sig(signing_input("{\"alg\":\"None\",\"kid\":\"rsa1\"}", c), (const unsigned char *)"x", 1),
        "algorithm");

    /* HS256 keyed with the RSA public key's PEM and DER bytes (algorithm confusion) */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, T.rsa), 1);
    char *pem;
    long pemlen = BIO_get_mem_data(bio, &pem);
    unsigned char *der = NULL;
    int derlen = i2d_PUBKEY(T.rsa, &der);
    assert_true(derlen > 0);
    struct {
        const void *key;
        size_t len;
    } keys[] = {{pem, (size_t)pemlen}, {der, (size_t)derlen}};
    for (size_t i = 0; i < 2; i++) {
        for (int withkid = 0; withkid < 2; withkid++) {
            char *in =
                signing_input(withkid ? "{\"alg\":\"HS256\",\"kid\":\"rsa1\"}" : "{\"alg\":\"HS256\"}", c);
            unsigned char mac[32];
            size_t maclen;
            assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, keys[i].key, keys[i].len,
                                      (unsigned char *)in, strlen(in), mac, sizeof(mac), &maclen));
            expect_refused(with_sig(in, mac, maclen), "algorithm");
        }
    }
    /* ... and keyed with the oct key the JWKS carries (skipped at load) */
    {
        char *in = signing_input("{\"alg\":\"HS256\",\"kid\":\"hmac1\"}", c);
        unsigned char mac[32];
        size_t maclen;
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, "secret", 6, (unsigned char *)in,
                                  strlen(in), mac, sizeof(mac), &maclen));
        expect_refused(with_sig(in, mac, maclen), "algorithm");
    }
    BIO_free(bio);
    OPENSSL_free(der);

    /* RS256 in the header, kid naming the EC key (signed with RSA or EC) */
    expect_refused(mint_with(T.rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", c, false), "algorithm");
    expect_refused(mint_with(T.ec, "ES256", "{\"alg\":\"RS256\",\"kid\":\"ec1\"}", c, false), "algorithm");
    expect_refused(mint_with(T.ed, "EdDSA", "{\"alg\":\"ES256\",\"kid\":\"ed1\"}", c, false), "algorithm");
    /* PS256 and RS512 are not offered */
    expect_refused(mint_with(T.rsa, "RS256", "{\"alg\":\"PS256\",\"kid\":\"rsa1\"}", c, false), "algorithm");
    expect_refused(mint_with(T.rsa, "RS256", "{\"alg\":\"RS512\",\"kid\":\"rsa1\"}", c, false), "algorithm");
    /* unknown kid, the encryption key's kid */
    expect_refused(mint(T.rsa, "RS256", "rsa9", c), "unknown_key");
    expect_refused(mint(T.rsa2, "RS256", "enc1", c), "unknown_key");
    /* "crit" we cannot honour; an embedded "jwk" is never used */
    expect_refused(
        mint_with(T.rsa, "RS256", "{\"alg\":\"RS256\",\"kid\":\"rsa1\",\"crit\":[\"exp\"]}", c, false),
        "malformed");
    char *evil = jwk_rsa(T.rsa2, "rsa1", ""), *hdr;
    assert_true(asprintf(&hdr, "{\"alg\":\"RS256\",\"jwk\":%s}", evil) > 0);
    expect_refused(mint_with(T.rsa2, "RS256", hdr, c, false), "signature");
    free(hdr);
    free(evil);
    free(c);
}

static void test_alg_policy(void **state)
{
    /* the issuer allows only EdDSA */
    struct conf c2;
    base_conf(&c2);
    c2.oauth[0].algorithms = CONF_OAUTH_EDDSA;
    struct oauth *o = NULL;
    struct error err = {{0}};
    assert_int_equal(oauth_new(&c2, &o, &err), 0);
    char *cl = std_claims(), *tok = mint(T.rsa, "RS256", "rsa1", cl);
    struct oauth_result r;
    assert_int_equal(oauth_validate(o, tok, strlen(tok), T.now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "algorithm");
    free(tok);
    tok = mint(T.ed, "EdDSA", "ed1", cl);
    assert_int_equal(oauth_validate(o, tok, strlen(tok), T.now, &r), OAUTH_VALID);
    free(tok);
    free(cl);
    oauth_free(&o);
    assert_null(o);
}

static void test_malformed(void **state)
{
    struct oauth_result r;
    static const char *const bad[] = {
        "",
        "abc",
        "a.b",
        "a.b.c.d",
        "a.b.c.d.e", /* JWE compact form */
        "eyJhbGciOiJSUzI1NiJ9.e30.",
        "eyJhbGciOiJSUzI1NiJ9=.e30.AAAA",
        "eyJhbGciOiJSUzI1NiJ9.e30.AA AA",
        "eyJhbGciOiJSUzI1NiJ9..",
        "bm90IGpzb24.e30.AAAA", /* header "not json" */
        "eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.AAAA",
        "W10.e30.AAAA",          /* header [] */
        "eyJhbGciOjF9.e30.AAAA", /* alg 1 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&r, 0x5a, sizeof(r));
        assert_int_equal(oauth_validate(T.o, bad[i], strlen(bad[i]), T.now, &r), OAUTH_INVALID);
        if (strcmp(r.why, "malformed") != 0 && strcmp(r.why, "algorithm") != 0 &&
            strcmp(r.why, "issuer") != 0)
            fail_msg("'%s' refused for %s", bad[i], r.why);
    }
    /* JWE: five parts, well-formed pieces */
    char *c = std_claims(), *tok = mint(T.rsa, "RS256", "rsa1", c), *jwe;
    assert_true(asprintf(&jwe, "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.%s.AAAA.BBBB", tok) > 0);
    memset(&r, 0x5a, sizeof(r));
    assert_int_equal(oauth_validate(T.o, jwe, strlen(jwe), T.now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "malformed");
    free(jwe);
    /* the token as it arrives: a byte of garbage, NUL, over the size limit */
    tok[3] = '\0';
    assert_int_equal(oauth_validate(T.o, tok, strlen(tok) + 5, T.now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "malformed");
    char *big = malloc(OAUTH_TOKEN_MAX + 2);
    memset(big, 'A', OAUTH_TOKEN_MAX + 1);
    big[OAUTH_TOKEN_MAX + 1] = '\0';
    assert_int_equal(oauth_validate(T.o, big, OAUTH_TOKEN_MAX + 1, T.now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "malformed");
    free(big);
    free(tok);
    free(c);
    /* jwt_decode directly: a decoded JWT exposes alg and kid, never more */
    struct jwt j;
    struct error err = {{0}};
    c = std_claims();
    tok = mint(T.ec, "ES256", "ec1", c);
    assert_int_equal(jwt_decode(tok, strlen(tok), &j, &err), 0);
    assert_int_equal(j.alg, CONF_OAUTH_ES256);
    assert_string_equal(j.kid, "ec1");
    assert_int_equal(j.sig_len, 64);
    assert_int_equal(j.signed_len, (size_t)(strrchr(tok, '.') - tok));
    jwt_clear(&j);
    assert_null(j.claims);
    free(tok);
    free(c);
}

static void test_status_json(void **state)
{
    struct oauth_result r;
    char *c = claims_fmt(ISS, "\"x\"", T.now + 600, ""), *tok = mint(T.rsa, "RS256", "rsa1", c);
    assert_int_equal(check(tok, &r), OAUTH_INVALID);
    assert_string_equal(
        r.status_json,
        "{\"status\":\"invalid_token\",\"scope\":\"mail.read\",\"openid-configuration\":\"" OIDC "\"}");
    assert_string_equal(r.issuer_name, "corp");
    /* nothing optional configured: just the status */
    struct conf c2;
    base_conf(&c2);
    c2.oauth[0].scope[0] = '\0';
    c2.oauth[0].openid_configuration[0] = '\0';
    struct oauth *o = NULL;
    struct error err = {{0}};
    assert_int_equal(oauth_new(&c2, &o, &err), 0);
    assert_int_equal(oauth_validate(o, tok, strlen(tok), T.now, &r), OAUTH_INVALID);
    assert_string_equal(r.status_json, "{\"status\":\"invalid_token\"}");
    oauth_free(&o);
    /* an openid URL too long for the buffer is dropped, the rest kept */
    memset(c2.oauth[0].openid_configuration, 'u', 900);
    c2.oauth[0].openid_configuration[900] = '\0';
    snprintf(c2.oauth[0].scope, sizeof(c2.oauth[0].scope), "mail.read");
    assert_int_equal(oauth_new(&c2, &o, &err), 0);
    assert_int_equal(oauth_validate(o, tok, strlen(tok), T.now, &r), OAUTH_INVALID);
    assert_string_equal(r.status_json, "{\"status\":\"invalid_token\",\"scope\":\"mail.read\"}");
    oauth_free(&o);
    free(tok);
    free(c);
    /* the token never appears in what is reported */
    c = std_claims();
    tok = mint(T.rsa, "RS256", "rsa9", c);
    assert_int_equal(check(tok, &r), OAUTH_INVALID);
    char head[16];
    memcpy(head, tok, 15);
    head[15] = '\0';
    assert_null(strstr(r.why, head));
    assert_null(strstr(r.status_json, head));
    assert_null(strstr(r.status_json, strrchr(tok, '.') + 1));
    free(tok);
    free(c);
}

static void test_new_errors(void **state)
{
    struct conf c2;
    struct oauth *o = NULL;
    struct error err = {{0}};
    base_conf(&c2);
    snprintf(c2.oauth[0].jwks_file, sizeof(c2.oauth[0].jwks_file), "%s/missing.json", T.dir);
    assert_int_equal(oauth_new(&c2, &o, &err), -1);
    assert_null(o);
    assert_non_null(strstr(err.msg, "[oauth corp]"));
    /* a JWKS with nothing usable is a configuration error, not silent refusal */
    snprintf(c2.oauth[0].jwks_file, sizeof(c2.oauth[0].jwks_file), "%s/empty.json", T.dir);
    write_file(c2.oauth[0].jwks_file, "{\"keys\":[{\"kty\":\"oct\",\"k\":\"AA\"}]}", 0600);
    assert_int_equal(oauth_new(&c2, &o, &err), -1);
    assert_non_null(strstr(err.msg, "no RS256"));
    /* a second issuer's unknown-iss token is not tried against the first's keys */
    base_conf(&c2);
    c2.oauth[1] = c2.oauth[0];
    snprintf(c2.oauth[1].name, sizeof(c2.oauth[1].name), "other");
    snprintf(c2.oauth[1].issuer, sizeof(c2.oauth[1].issuer), "https://other.example.net");
    snprintf(c2.oauth[1].jwks_file, sizeof(c2.oauth[1].jwks_file), "%s/other.json", T.dir);
    char *k = jwk_rsa(T.rsa2, "rsa1", ""), *doc;
    assert_true(asprintf(&doc, "{\"keys\":[%s]}", k) > 0);
    write_file(c2.oauth[1].jwks_file, doc, 0600);
    free(k);
    free(doc);
    c2.n_oauth = 2;
    assert_int_equal(oauth_new(&c2, &o, &err), 0);
    char *cl = claims_fmt("https://other.example.net", "\"" AUD "\"", T.now + 600, "");
    char *tok = mint(T.rsa, "RS256", "rsa1", cl); /* signed with corp's key, claims other's iss */
    struct oauth_result r;
    assert_int_equal(oauth_validate(o, tok, strlen(tok), T.now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "signature");
    assert_string_equal(r.issuer_name, "other");
    free(tok);
    tok = mint(T.rsa2, "RS256", "rsa1", cl);
    assert_int_equal(oauth_validate(o, tok, strlen(tok), T.now, &r), OAUTH_VALID);
    assert_string_equal(r.issuer_name, "other");
    free(tok);
    free(cl);
    oauth_free(&o);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),      cmocka_unit_test(test_jwks),
        cmocka_unit_test(test_valid),       cmocka_unit_test(test_time),
        cmocka_unit_test(test_claims),      cmocka_unit_test(test_forgeries),
        cmocka_unit_test(test_alg_policy),  cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_status_json), cmocka_unit_test(test_new_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
