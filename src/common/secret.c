#include "common/secret.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

void secret_wipe(void *p, size_t n)
{
    if (p != NULL)
        explicit_bzero(p, n);
}

void secret_free_str(char **s)
{
    if (*s == NULL)
        return;
    explicit_bzero(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

bool secret_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int secret_random(void *buf, size_t n)
{
    return RAND_bytes(buf, (int)n) == 1 ? 0 : -1;
}

/* HMAC-SHA256 over the parts, streamed (no copy of the message), each
 * followed by a NUL when separate is set. */
static int hmac_parts(const void *key, size_t keylen, const void *const *parts, const size_t *lens, size_t n,
                      bool separate, unsigned char *out, size_t outlen)
{
    static const unsigned char sep = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    int rc = -1;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    memset(out, 0, outlen);
    if (ctx != NULL && EVP_MAC_init(ctx, key, keylen, params) == 1) {
        rc = 0;
        for (size_t i = 0; i < n && rc == 0; i++)
            if (EVP_MAC_update(ctx, parts[i], lens[i]) != 1 || (separate && EVP_MAC_update(ctx, &sep, 1) != 1))
                rc = -1;
        if (rc == 0 && EVP_MAC_final(ctx, md, &mdlen, sizeof(md)) == 1) {
            memcpy(out, md, outlen < mdlen ? outlen : mdlen);
        } else {
            rc = -1;
        }
    }
    EVP_MAC_CTX_free(ctx); /* cleanses the keyed state */
    EVP_MAC_free(mac);
    explicit_bzero(md, sizeof(md));
    return rc;
}

int secret_mac(const void *key, size_t keylen, const void *const *parts, const size_t *lens, size_t n,
               unsigned char *out, size_t outlen)
{
    return hmac_parts(key, keylen, parts, lens, n, true, out, outlen);
}

int secret_hmac(const void *key, size_t keylen, const void *const *parts, const size_t *lens, size_t n,
                unsigned char *out, size_t outlen)
{
    return hmac_parts(key, keylen, parts, lens, n, false, out, outlen);
}
