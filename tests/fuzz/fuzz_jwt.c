/* libFuzzer target for bearer JWTs: the input is a token as a client sends it.
 * It is decoded (jwt_decode), its signature checked against a fixed JWKS of an
 * RSA, an EC P-256, an Ed25519 and an oct key (jwt_verify), and validated whole
 * (oauth_validate) by an issuer configured with that JWKS. Checks, aborting on
 * any mismatch:
 *   - a decoded token has exactly the three-part shape it claims (signed_len
 *     ends at the last dot), a JSON object as claims, an algorithm we know or 0;
 *   - a signature verifies only for an algorithm we accept, never with the oct key;
 *   - oauth_validate never answers TEMPFAIL (there is no introspection), and is
 *     VALID only for a token that decodes and verifies, with a clean user name;
 *   - a refusal carries a reason and an RFC 7628 status that parses as JSON.
 * Two input forms: a token as is (the seeds were signed with the private halves
 * of the fixed keys, not kept, at NOW below), or, when the input starts with
 * '{', "header JSON \n claims JSON", which the harness encodes and signs with an
 * Ed25519 key it makes at start and publishes as kid "fz": so the claim checks
 * and header handling are explored behind a valid signature. A token signed
 * that way is VALID only with alg EdDSA and kid "fz" (another EdDSA key exists,
 * so a kid-less one is ambiguous). */
#include <jansson.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/jwks.h"
#include "auth/jwt.h"
#include "auth/oauth.h"
#include "conf/conf.h"
#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);

#define NOW 1700000000

static const char JWKS[] =
    "{\"keys\":[{\"kty\":\"RSA\",\"kid\":\"rsa1\",\"use\":\"sig\",\"alg\":\"RS256\",\"n\":\"80iIybLue"
    "3xQ5xRNhXjpnwYkikIYN4UcXI_CJzBPA0lQLZW7i7Fe5uCjQ4sNa3Lc5PllJLLdUWmKZajEoCl3zS3XwJbV7OylbIMpi_JPx"
    "OZLE47H59-muZev78E6N_Ow5MUDNApNxN9_PcS-Tk9CQ8kCIUfHGYeDrl0yP_bFB-4RydPIrT-w7SyyOV9HLz9IfrLVTOoqX"
    "bvKX1gfSNMAeqvYlSe3EL92-l-BC7SwGsPT86v0EB_0DqZjL0G9J3Yh_d4xs4mbd14w_2STYuOXmurhUipYXafOGkZLduUvN"
    "ZHoxM1F0vmDBK6Az1ZsJFzxWMfuxve2nTCKfXMOs4gWUw\",\"e\":\"AQAB\"},{\"kty\":\"EC\",\"kid\":\"ec1\","
    "\"crv\":\"P-256\",\"x\":\"5DWR5cnQN-Z_oNyKoHH532QCQWXH1dS5LkUlczLJnbY\",\"y\":\"NCQJLUFeQm8FkseJ"
    "a7tFGJhWP-yf6xiDcvSb2QmW3k4\"},{\"kty\":\"OKP\",\"kid\":\"ed1\",\"crv\":\"Ed25519\",\"x\":\"sMio"
    "flvbhc8cjH72lsYAD6viKs3bl377-bjW-7mxXd8\"},{\"kty\":\"oct\",\"kid\":\"hmac1\",\"k\":\"c2VjcmV0\""
    "}]}";

static struct jwks *keys;
static struct oauth *oa;
static EVP_PKEY *signer;

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
        acc &= 0xff;
    }
    if (bits > 0)
        out[o++] = a[(acc << (6 - bits)) & 63];
    out[o] = '\0';
}

/* The fixed set plus the harness's own Ed25519 key as kid "fz". */
static char *jwks_with_signer(void)
{
    unsigned char raw[32];
    size_t n = sizeof(raw);
    char x[64], *doc = malloc(sizeof(JWKS) + 128);
    if ((signer = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) == NULL ||
        EVP_PKEY_get_raw_public_key(signer, raw, &n) != 1 || doc == NULL)
        abort();
    b64url(raw, n, x);
    /* JWKS ends in "]}": insert before it */
    memcpy(doc, JWKS, sizeof(JWKS) - 3);
    sprintf(doc + sizeof(JWKS) - 3, ",{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"kid\":\"fz\",\"x\":\"%s\"}]}",
            x);
    return doc;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    struct error err = {{0}};
    char *doc = jwks_with_signer();
    if (jwks_parse(doc, strlen(doc), &keys, &err) < 0 || jwks_count(keys) != 4) {
        fprintf(stderr, "fuzz_jwt: JWKS: %s\n", err.msg);
        abort();
    }
    /* oauth_new reads a file: write one, load it, remove it. */
    char path[] = "/tmp/fuzz_jwt-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0 || write(fd, doc, strlen(doc)) != (ssize_t)strlen(doc))
        abort();
    close(fd);
    free(doc);
    static struct conf c;
    conf_defaults(&c);
    struct conf_oauth *o = &c.oauth[0];
    snprintf(o->name, sizeof(o->name), "corp");
    snprintf(o->issuer, sizeof(o->issuer), "https://idp.example.com");
    snprintf(o->audience, sizeof(o->audience), "pop3.example.com");
    snprintf(o->jwks_file, sizeof(o->jwks_file), "%s", path);
    o->algorithms = CONF_OAUTH_RS256 | CONF_OAUTH_ES256 | CONF_OAUTH_EDDSA;
    snprintf(o->scope, sizeof(o->scope), "mail.read");
    snprintf(o->username_claim, sizeof(o->username_claim), "email");
    o->clock_skew_ms = 60000;
    snprintf(o->openid_configuration, sizeof(o->openid_configuration),
             "https://idp.example.com/.well-known/openid-configuration");
    c.n_oauth = 1;
    int rc = oauth_new(&c, &oa, &err);
    unlink(path);
    if (rc < 0) {
        fprintf(stderr, "fuzz_jwt: oauth_new: %s\n", err.msg);
        abort();
    }
    return 0;
}

static int clean(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return 0;
    return 1;
}

/* "header \n claims" -> a token signed by the harness key, or NULL. */
static char *sign_structured(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    if (nl == NULL || size > JWT_TOKEN_MAX)
        return NULL;
    size_t hl = (size_t)(nl - data), pl = size - hl - 1;
    char *tok = malloc(2 * size + 128);
    if (tok == NULL)
        abort();
    b64url(data, hl, tok);
    size_t n = strlen(tok);
    tok[n++] = '.';
    b64url(nl + 1, pl, tok + n);
    n += strlen(tok + n);
    unsigned char sig[64];
    size_t sl = sizeof(sig);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL || EVP_DigestSignInit(ctx, NULL, NULL, NULL, signer) != 1 ||
        EVP_DigestSign(ctx, sig, &sl, (unsigned char *)tok, n) != 1)
        abort();
    EVP_MD_CTX_free(ctx);
    tok[n++] = '.';
    b64url(sig, sl, tok + n);
    return tok;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *signed_tok = size > 0 && data[0] == '{' ? sign_structured(data, size) : NULL;
    const char *tok = signed_tok ? signed_tok : (const char *)data;
    if (signed_tok != NULL)
        size = strlen(signed_tok);
    struct jwt j;
    struct error err = {{0}};
    int decoded = jwt_decode(tok, size, &j, &err) == 0, verified = 0;
    int by_harness = decoded && signed_tok != NULL && j.alg == CONF_OAUTH_EDDSA && strcmp(j.kid, "fz") == 0;
    if (decoded) {
        CHECK(json_is_object(j.claims));
        CHECK(j.signed_len < size && tok[j.signed_len] == '.' &&
              memchr(tok + j.signed_len + 1, '.', size - j.signed_len - 1) == NULL);
        CHECK(j.sig_len <= JWT_SIG_MAX && strlen(j.kid) <= JWT_KID_MAX);
        CHECK(j.alg == 0 || j.alg == CONF_OAUTH_RS256 || j.alg == CONF_OAUTH_ES256 ||
              j.alg == CONF_OAUTH_EDDSA);
        const char *why = NULL;
        verified =
            jwt_verify(&j, tok, keys, CONF_OAUTH_RS256 | CONF_OAUTH_ES256 | CONF_OAUTH_EDDSA, &why) == 0;
        if (verified)
            CHECK(j.alg != 0 && strcmp(j.kid, "hmac1") != 0);
        else
            CHECK(why != NULL &&
                  (!strcmp(why, "algorithm") || !strcmp(why, "unknown_key") || !strcmp(why, "signature")));
        /* an algorithm outside the allowed set never verifies */
        CHECK(jwt_verify(&j, tok, keys, 0, &why) == -1);
        jwt_clear(&j);
    } else {
        CHECK(err.msg[0] != '\0' && j.claims == NULL);
    }

    struct oauth_result r;
    enum oauth_verdict v = oauth_validate(oa, tok, size, NOW, &r);
    CHECK(v == OAUTH_VALID || v == OAUTH_INVALID);
    if (v == OAUTH_VALID) {
        CHECK(decoded && verified);
        CHECK(signed_tok == NULL || by_harness);
        CHECK(r.user[0] != '\0' && strlen(r.user) <= 255 && clean(r.user));
        CHECK(strcmp(r.issuer_name, "corp") == 0 && r.why[0] == '\0' && r.status_json[0] == '\0');
    } else {
        CHECK(r.why[0] != '\0' && r.user[0] == '\0');
        json_error_t je;
        json_t *s = json_loads(r.status_json, 0, &je);
        CHECK(s != NULL && json_is_string(json_object_get(s, "status")));
        json_decref(s);
    }
    free(signed_tok);
    return 0;
}
