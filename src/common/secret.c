#include "common/secret.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <pthread.h>
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

/* secret_mac: a keyed HMAC-SHA256 context per (thread, key), made once and
 * copied per call. Its callers MAC with a handful of long-lived keys (the
 * defence engine's, the credential cache's) several times a login; fetching HMAC and
 * SHA-256 and keying a fresh context each time was a fifth of authd's CPU
 * under polling load (OpenSSL 3.0 fetches are lookups under locks). A key
 * not seen before replaces the oldest slot; the copy held here is wiped when
 * replaced. Thread-local, so no lock: authd hashes on several threads. */
#define MAC_SLOTS 4
#define MAC_KEY_MAX 64
struct mac_slot {
    EVP_MAC_CTX *keyed;
    size_t keylen;
    unsigned char key[MAC_KEY_MAX];
};
static _Thread_local struct mac_slot mac_slots[MAC_SLOTS];
static _Thread_local unsigned mac_next;
static pthread_key_t mac_exit_key;
static pthread_once_t mac_exit_once = PTHREAD_ONCE_INIT;

/* Runs when a thread that made templates exits: wipe and free them. */
static void mac_slots_free(void *unused)
{
    (void)unused;
    for (unsigned i = 0; i < MAC_SLOTS; i++) {
        EVP_MAC_CTX_free(mac_slots[i].keyed);
        mac_slots[i].keyed = NULL;
        explicit_bzero(mac_slots[i].key, sizeof(mac_slots[i].key));
    }
}

static void mac_exit_key_make(void)
{
    (void)pthread_key_create(&mac_exit_key, mac_slots_free);
}

static EVP_MAC_CTX *keyed_ctx_new(const void *key, size_t keylen)
{
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
    EVP_MAC_free(mac); /* the context holds its own reference */
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
                           OSSL_PARAM_construct_end()};
    if (ctx != NULL && EVP_MAC_init(ctx, key, keylen, params) != 1) {
        EVP_MAC_CTX_free(ctx);
        ctx = NULL;
    }
    return ctx;
}

/* A fresh keyed context (the caller frees it), from this thread's template
 * for the key when there is room to keep one. */
static EVP_MAC_CTX *keyed_ctx(const void *key, size_t keylen)
{
    if (keylen > MAC_KEY_MAX)
        return keyed_ctx_new(key, keylen);
    for (unsigned i = 0; i < MAC_SLOTS; i++) {
        struct mac_slot *m = &mac_slots[i];
        if (m->keyed != NULL && m->keylen == keylen && memcmp(m->key, key, keylen) == 0)
            return EVP_MAC_CTX_dup(m->keyed);
    }
    (void)pthread_once(&mac_exit_once, mac_exit_key_make);
    (void)pthread_setspecific(mac_exit_key, mac_slots); /* non-NULL: the destructor runs */
    struct mac_slot *m = &mac_slots[mac_next++ % MAC_SLOTS];
    EVP_MAC_CTX_free(m->keyed);
    explicit_bzero(m->key, sizeof(m->key));
    m->keyed = keyed_ctx_new(key, keylen);
    if (m->keyed == NULL)
        return NULL;
    memcpy(m->key, key, keylen);
    m->keylen = keylen;
    return EVP_MAC_CTX_dup(m->keyed);
}

/* HMAC-SHA256 over the parts, streamed (no copy of the message), each
 * followed by a NUL when separate is set. Only secret_mac's long-lived keys go
 * through the per-thread templates: secret_hmac's keys are per-user protocol
 * secrets (SCRAM) that must not outlive the call in a cache. */
static int hmac_parts(const void *key, size_t keylen, const void *const *parts, const size_t *lens, size_t n,
                      bool separate, unsigned char *out, size_t outlen)
{
    static const unsigned char sep = 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    size_t mdlen = 0;
    int rc = -1;
    EVP_MAC_CTX *ctx = separate ? keyed_ctx(key, keylen) : keyed_ctx_new(key, keylen);
    memset(out, 0, outlen);
    if (ctx != NULL) {
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
