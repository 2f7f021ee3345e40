/* Cipher suite catalogue: what this OpenSSL can offer per version, the legacy
 * suites it cannot (probed with hand-built hellos), and a classification by
 * IANA name so both kinds are judged by one rule. */
#include "ctl/audit.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

const char *audit_ver_name(enum audit_ver v)
{
    switch (v) {
    case AV_SSL3: return "SSLv3";
    case AV_TLS10: return "TLSv1.0";
    case AV_TLS11: return "TLSv1.1";
    case AV_TLS12: return "TLSv1.2";
    case AV_TLS13: return "TLSv1.3";
    default: return "?";
    }
}

int audit_ver_openssl(enum audit_ver v)
{
    switch (v) {
    case AV_SSL3: return SSL3_VERSION;
    case AV_TLS10: return TLS1_VERSION;
    case AV_TLS11: return TLS1_1_VERSION;
    case AV_TLS12: return TLS1_2_VERSION;
    case AV_TLS13: return TLS1_3_VERSION;
    default: return 0;
    }
}

static bool has(const char *s, const char *sub)
{
    return strstr(s, sub) != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

unsigned audit_suite_classify(const char *n)
{
    unsigned f = 0;
    /* TLS 1.3 suites name no key exchange: it is always (EC)DHE. */
    bool tls13 = strncmp(n, "TLS_AES_", 8) == 0 || strncmp(n, "TLS_CHACHA20_", 13) == 0;
    if (tls13 || strncmp(n, "TLS_ECDHE_", 10) == 0 || strncmp(n, "TLS_DHE_", 8) == 0 || has(n, "_DHE_PSK_") ||
        has(n, "_PSK_DHE_"))
        f |= SF_FS;
    if (has(n, "_anon_") || strncmp(n, "TLS_NULL_", 9) == 0)
        f |= SF_ANON;
    if (has(n, "_WITH_NULL_") || ends_with(n, "_NULL"))
        f |= SF_NULL;
    if (has(n, "EXPORT"))
        f |= SF_EXPORT;
    if (has(n, "_RC4_"))
        f |= SF_RC4;
    if (has(n, "_DES_CBC_") || has(n, "DES40") || has(n, "_RC2_"))
        f |= SF_DES;
    if (has(n, "3DES") || has(n, "_IDEA_"))
        f |= SF_64BIT;
    if (has(n, "_GCM_") || has(n, "_CCM") || has(n, "CHACHA20_POLY1305"))
        f |= SF_AEAD;
    else if (!(f & (SF_NULL | SF_RC4)))
        f |= SF_CBC;
    if (!(f & SF_AEAD)) {
        if (ends_with(n, "_SHA"))
            f |= SF_SHA1;
        else if (ends_with(n, "_MD5"))
            f |= SF_MD5;
    }
    return f;
}

int audit_suites_openssl(enum audit_ver v, struct audit_suite *out, int max, struct error *err)
{
    if (v < AV_TLS10 || v > AV_TLS13)
        return error_set(err, "no OpenSSL suite list for %s", audit_ver_name(v));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return error_set(err, "SSL_CTX_new failed");
    int ret = AUDIT_EGENERIC;
    SSL *ssl = NULL;
    STACK_OF(SSL_CIPHER) *sk = NULL;
    SSL_CTX_set_security_level(ctx, 0);
    if (!SSL_CTX_set_min_proto_version(ctx, audit_ver_openssl(v)) ||
        !SSL_CTX_set_max_proto_version(ctx, audit_ver_openssl(v)) ||
        !SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL:@SECLEVEL=0")) {
        error_set(err, "this OpenSSL cannot offer %s", audit_ver_name(v));
        goto out;
    }
    ssl = SSL_new(ctx);
    if (ssl == NULL || (sk = SSL_get1_supported_ciphers(ssl)) == NULL) {
        error_set(err, "this OpenSSL has no %s suites", audit_ver_name(v));
        goto out;
    }
    int n = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(sk) && n < max; i++) {
        const SSL_CIPHER *c = sk_SSL_CIPHER_value(sk, i);
        /* SSL_get1_supported_ciphers also lists TLS 1.3 suites for <= 1.2
         * contexts on some builds; keep each version's own. */
        bool is13 = strcmp(SSL_CIPHER_get_version(c), "TLSv1.3") == 0;
        if (is13 != (v == AV_TLS13))
            continue;
        struct audit_suite *s = &out[n++];
        memset(s, 0, sizeof(*s));
        s->id = SSL_CIPHER_get_protocol_id(c);
        audit_copy(s->name, sizeof(s->name), SSL_CIPHER_standard_name(c));
        audit_copy(s->ossl, sizeof(s->ossl), SSL_CIPHER_get_name(c));
        s->flags = audit_suite_classify(s->name);
    }
    ret = n;
out:
    sk_SSL_CIPHER_free(sk);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return ret;
}

/* Suites a Debian OpenSSL 3 (no-weak-ssl-ciphers, no EXPORT, no static DH)
 * cannot negotiate. Offering them in raw hellos still tells whether a server
 * accepts them. */
static const struct {
    uint16_t id;
    const char *name;
} legacy[] = {
    {0x0003, "TLS_RSA_EXPORT_WITH_RC4_40_MD5"},
    {0x0004, "TLS_RSA_WITH_RC4_128_MD5"},
    {0x0005, "TLS_RSA_WITH_RC4_128_SHA"},
    {0x0006, "TLS_RSA_EXPORT_WITH_RC2_CBC_40_MD5"},
    {0x0007, "TLS_RSA_WITH_IDEA_CBC_SHA"},
    {0x0008, "TLS_RSA_EXPORT_WITH_DES40_CBC_SHA"},
    {0x0009, "TLS_RSA_WITH_DES_CBC_SHA"},
    {0x000A, "TLS_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x0011, "TLS_DHE_DSS_EXPORT_WITH_DES40_CBC_SHA"},
    {0x0012, "TLS_DHE_DSS_WITH_DES_CBC_SHA"},
    {0x0013, "TLS_DHE_DSS_WITH_3DES_EDE_CBC_SHA"},
    {0x0014, "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"},
    {0x0015, "TLS_DHE_RSA_WITH_DES_CBC_SHA"},
    {0x0016, "TLS_DHE_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0x0017, "TLS_DH_anon_EXPORT_WITH_RC4_40_MD5"},
    {0x0018, "TLS_DH_anon_WITH_RC4_128_MD5"},
    {0x0019, "TLS_DH_anon_EXPORT_WITH_DES40_CBC_SHA"},
    {0x001A, "TLS_DH_anon_WITH_DES_CBC_SHA"},
    {0x001B, "TLS_DH_anon_WITH_3DES_EDE_CBC_SHA"},
    {0x0030, "TLS_DH_DSS_WITH_AES_128_CBC_SHA"},
    {0x0031, "TLS_DH_RSA_WITH_AES_128_CBC_SHA"},
    {0x0036, "TLS_DH_DSS_WITH_AES_256_CBC_SHA"},
    {0x0037, "TLS_DH_RSA_WITH_AES_256_CBC_SHA"},
    {0x0096, "TLS_RSA_WITH_SEED_CBC_SHA"},
    {0x009A, "TLS_DHE_RSA_WITH_SEED_CBC_SHA"},
    {0xC002, "TLS_ECDH_ECDSA_WITH_RC4_128_SHA"},
    {0xC003, "TLS_ECDH_ECDSA_WITH_3DES_EDE_CBC_SHA"},
    {0xC004, "TLS_ECDH_ECDSA_WITH_AES_128_CBC_SHA"},
    {0xC005, "TLS_ECDH_ECDSA_WITH_AES_256_CBC_SHA"},
    {0xC007, "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA"},
    {0xC008, "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA"},
    {0xC00C, "TLS_ECDH_RSA_WITH_RC4_128_SHA"},
    {0xC00D, "TLS_ECDH_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0xC00E, "TLS_ECDH_RSA_WITH_AES_128_CBC_SHA"},
    {0xC00F, "TLS_ECDH_RSA_WITH_AES_256_CBC_SHA"},
    {0xC011, "TLS_ECDHE_RSA_WITH_RC4_128_SHA"},
    {0xC012, "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA"},
    {0xC016, "TLS_ECDH_anon_WITH_RC4_128_SHA"},
    {0xC017, "TLS_ECDH_anon_WITH_3DES_EDE_CBC_SHA"},
    {0xC02D, "TLS_ECDH_ECDSA_WITH_AES_128_GCM_SHA256"},
    {0xC031, "TLS_ECDH_RSA_WITH_AES_128_GCM_SHA256"},
};

int audit_suites_legacy(struct audit_suite *out, int max)
{
    int n = 0;
    for (size_t i = 0; i < sizeof(legacy) / sizeof(legacy[0]) && n < max; i++) {
        struct audit_suite *s = &out[n++];
        memset(s, 0, sizeof(*s));
        s->id = legacy[i].id;
        audit_copy(s->name, sizeof(s->name), legacy[i].name);
        s->flags = audit_suite_classify(s->name);
    }
    return n;
}
