/* Legacy unsalted/fast digest schemes, reachable only when allow_weak is set.
 * They exist so an old passwd-file can be migrated, not to be used. */
#include "auth/pwscheme_int.h"

#include <openssl/evp.h>
#include <string.h>

#include "common/b64.h"
#include "common/secret.h"

#define SSHA_SALT_MAX 64

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Strict hex of exactly 2*n characters into out[n]. */
static int hex_decode(const char *s, size_t len, unsigned char *out, size_t n)
{
    if (len != 2 * n)
        return -1;
    for (size_t i = 0; i < n; i++) {
        int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return 0;
}

/* Decodes a digest stored as hex or (padded) base64; the length tells which. */
static int digest_decode(const char *body, unsigned char *out, size_t n)
{
    size_t len = strlen(body);
    if (len == 2 * n)
        return hex_decode(body, len, out, n);
    if (len == B64_ENCODED_LEN(n) && b64_decode(body, len, out, n) == (long)n)
        return 0;
    return -1;
}

/* md(a || b); b may be empty. */
static int digest2(const EVP_MD *md, const void *a, size_t alen, const void *b, size_t blen,
                   unsigned char *out)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int outlen = 0;
    int ok = ctx != NULL && EVP_DigestInit_ex(ctx, md, NULL) == 1 && EVP_DigestUpdate(ctx, a, alen) == 1 &&
             (blen == 0 || EVP_DigestUpdate(ctx, b, blen) == 1) && EVP_DigestFinal_ex(ctx, out, &outlen) == 1;
    EVP_MD_CTX_free(ctx); /* EVP_MD_CTX_free cleanses the digest state */
    return ok ? 0 : -1;
}

/* Stored plaintext: hashing both sides first makes the comparison independent
 * of the lengths as well as the contents. */
static int verify_plain(const char *body, const char *pw, size_t pwlen, struct error *err)
{
    unsigned char a[32], b[32];
    int r;
    if (digest2(EVP_sha256(), body, strlen(body), NULL, 0, a) < 0 ||
        digest2(EVP_sha256(), pw, pwlen, NULL, 0, b) < 0)
        r = error_set(err, "SHA-256 digest failed");
    else
        r = secret_equal(a, b, sizeof(a)) ? 1 : 0;
    secret_wipe(a, sizeof(a));
    secret_wipe(b, sizeof(b));
    return r;
}

static int verify_digest(const EVP_MD *md, size_t n, const char *name, const char *body, const char *pw,
                         size_t pwlen, struct error *err)
{
    unsigned char want[EVP_MAX_MD_SIZE], got[EVP_MAX_MD_SIZE];
    int r;
    if (digest_decode(body, want, n) < 0)
        r = error_set(err, "malformed %s digest", name);
    else if (digest2(md, pw, pwlen, NULL, 0, got) < 0)
        r = error_set(err, "%s digest failed", name);
    else
        r = secret_equal(want, got, n) ? 1 : 0;
    secret_wipe(got, sizeof(got));
    return r;
}

static int verify_ssha(const char *body, const char *pw, size_t pwlen, struct error *err)
{
    enum { SHA1_LEN = 20 };
    unsigned char raw[SHA1_LEN + SSHA_SALT_MAX + 3], got[EVP_MAX_MD_SIZE];
    size_t len = strlen(body);
    if (len > B64_ENCODED_LEN(SHA1_LEN + SSHA_SALT_MAX))
        return error_set(err, "malformed SSHA digest");
    long n = b64_decode(body, len, raw, sizeof(raw));
    if (n <= SHA1_LEN)
        return error_set(err, "malformed SSHA digest");
    int r;
    if (digest2(EVP_sha1(), pw, pwlen, raw + SHA1_LEN, (size_t)n - SHA1_LEN, got) < 0)
        r = error_set(err, "SSHA digest failed");
    else
        r = secret_equal(raw, got, SHA1_LEN) ? 1 : 0;
    secret_wipe(got, sizeof(got));
    return r;
}

int pwscheme_weak_verify(enum pwscheme_weak_kind kind, const char *body, const char *pw, size_t pwlen,
                         struct error *err)
{
    switch (kind) {
    case PWSCHEME_WEAK_PLAIN: return verify_plain(body, pw, pwlen, err);
    case PWSCHEME_WEAK_PLAIN_MD5: return verify_digest(EVP_md5(), 16, "MD5", body, pw, pwlen, err);
    case PWSCHEME_WEAK_SHA1: return verify_digest(EVP_sha1(), 20, "SHA1", body, pw, pwlen, err);
    case PWSCHEME_WEAK_SSHA: return verify_ssha(body, pw, pwlen, err);
    }
    return error_set(err, "unknown weak scheme");
}
