/* The TLS probe: one connection, one handshake offering exactly what the
 * request says, and a record of what the server chose. Everything else in
 * the audit's TLS part is built from this primitive. */
#include "ctl/audit.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#define ALL_SUITES13                                                                                         \
    "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:TLS_AES_128_CCM_SHA256:"     \
    "TLS_AES_128_CCM_8_SHA256"
#define ALL_CIPHERS "ALL:COMPLEMENTOFALL:@SECLEVEL=0"

const struct audit_group_def audit_group_defs[] = {
    {"X25519", "x25519", NID_X25519, true},
    {"X448", "x448", NID_X448, true},
    {"P-256", "secp256r1", NID_X9_62_prime256v1, true},
    {"P-384", "secp384r1", NID_secp384r1, true},
    {"P-521", "secp521r1", NID_secp521r1, true},
    {"ffdhe2048", "ffdhe2048", NID_ffdhe2048, false},
    {"ffdhe3072", "ffdhe3072", NID_ffdhe3072, false},
    {"ffdhe4096", "ffdhe4096", NID_ffdhe4096, false},
    {"ffdhe6144", "ffdhe6144", NID_ffdhe6144, false},
    {"ffdhe8192", "ffdhe8192", NID_ffdhe8192, false},
};
const int audit_group_ndefs = (int)(sizeof(audit_group_defs) / sizeof(audit_group_defs[0]));

#define ALL_GROUPS "X25519:P-256:X448:P-521:P-384:ffdhe2048:ffdhe3072:ffdhe4096:ffdhe6144:ffdhe8192"

static void info_cb(const SSL *ssl, int where, int ret)
{
    /* SSL_CB_READ_ALERT shares its SSL_CB_ALERT bit with SSL_CB_WRITE_ALERT. */
    if ((where & SSL_CB_READ_ALERT) != SSL_CB_READ_ALERT)
        return;
    struct tls_probe_res *rs = SSL_get_app_data(ssl);
    if (rs != NULL && rs->alert < 0)
        rs->alert = ret & 0xff;
}

/* Records every verification error and lets the handshake go on: the audit
 * reports a bad chain, it does not refuse to look at it. */
static int verify_cb(int ok, X509_STORE_CTX *x)
{
    SSL *ssl = X509_STORE_CTX_get_ex_data(x, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_probe_res *rs = ssl != NULL ? SSL_get_app_data(ssl) : NULL;
    if (!ok && rs != NULL) {
        int e = X509_STORE_CTX_get_error(x);
        int depth = X509_STORE_CTX_get_error_depth(x);
        bool seen = false;
        for (int i = 0; i < rs->nverr; i++)
            seen |= rs->verr[i] == e && rs->verr_depth[i] == depth;
        if (!seen && rs->nverr < (int)(sizeof(rs->verr) / sizeof(rs->verr[0]))) {
            rs->verr[rs->nverr] = e;
            rs->verr_depth[rs->nverr++] = depth;
        }
    }
    return 1;
}

static SSL_CTX *make_ctx(const struct audit_target *t, const struct tls_probe_req *rq, struct error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return error_set(err, "SSL_CTX_new failed"), NULL;
    int v = audit_ver_openssl(rq->ver);
    /* Level 0 so TLS 1.0/1.1, SHA-1 signatures and small keys can be seen;
     * legacy server connect so a server without RFC 5746 is still measured. */
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_NO_TICKET);
    const char *what = NULL;
    if (!SSL_CTX_set_min_proto_version(ctx, v) || !SSL_CTX_set_max_proto_version(ctx, v))
        what = "protocol version";
    else if (rq->ver == AV_TLS13 &&
             !SSL_CTX_set_ciphersuites(ctx, rq->suites13 ? rq->suites13 : ALL_SUITES13))
        what = "TLS 1.3 suites";
    else if (rq->ver != AV_TLS13 && !SSL_CTX_set_cipher_list(ctx, rq->ciphers ? rq->ciphers : ALL_CIPHERS))
        what = "cipher list";
    else if (!SSL_CTX_set1_groups_list(ctx, rq->groups ? rq->groups : ALL_GROUPS))
        what = "groups";
    if (what == NULL && rq->verify) {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, verify_cb);
        int ok = t->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, t->ca_file, NULL)
                                    : SSL_CTX_set_default_verify_paths(ctx);
        if (!ok)
            what = t->ca_file != NULL ? "CA file" : "system trust store";
    }
    if (what != NULL) {
        error_set(err, "cannot set up the probe: %s", what);
        SSL_CTX_free(ctx);
        ERR_clear_error();
        return NULL;
    }
    return ctx;
}

static const char *group_name_by_nid(int nid)
{
    for (int i = 0; i < audit_group_ndefs; i++)
        if (audit_group_defs[i].nid == nid)
            return audit_group_defs[i].iana;
    return NULL;
}

static void record_kx(SSL *ssl, struct tls_probe_res *rs)
{
    EVP_PKEY *pk = NULL;
    if (!SSL_get_peer_tmp_key(ssl, &pk) || pk == NULL)
        return;
    rs->kx_bits = EVP_PKEY_get_bits(pk);
    const char *name = group_name_by_nid(SSL_get_negotiated_group(ssl));
    char gname[64];
    size_t glen = 0;
    if (name != NULL)
        audit_copy(rs->kx, sizeof(rs->kx), name);
    else if (EVP_PKEY_get_base_id(pk) == EVP_PKEY_DH)
        snprintf(rs->kx, sizeof(rs->kx), "dh%d", rs->kx_bits);
    else if (EVP_PKEY_get_group_name(pk, gname, sizeof(gname), &glen))
        audit_copy(rs->kx, sizeof(rs->kx), gname);
    else
        audit_copy(rs->kx, sizeof(rs->kx), OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
    EVP_PKEY_free(pk);
}

static void record_success(SSL *ssl, const struct tls_probe_req *rq, struct tls_probe_res *rs)
{
    rs->ok = true;
    rs->version = SSL_version(ssl);
    const SSL_CIPHER *c = SSL_get_current_cipher(ssl);
    if (c != NULL) {
        rs->cipher_id = SSL_CIPHER_get_protocol_id(c);
        audit_copy(rs->cipher_name, sizeof(rs->cipher_name), SSL_CIPHER_standard_name(c));
        audit_copy(rs->cipher_ossl, sizeof(rs->cipher_ossl), SSL_CIPHER_get_name(c));
    }
    record_kx(ssl, rs);
    rs->secure_reneg = SSL_get_secure_renegotiation_support(ssl) == 1;
    const unsigned char *alpn = NULL;
    unsigned alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    if (alpn != NULL && alen > 0) {
        snprintf(rs->alpn, sizeof(rs->alpn), "%.*s", (int)alen, (const char *)alpn);
        audit_sanitize(rs->alpn);
    }
    if (rq->ocsp) {
        const unsigned char *resp = NULL;
        rs->ocsp_stapled = SSL_get_tlsext_status_ocsp_resp(ssl, &resp) > 0 && resp != NULL;
    }
    if (rq->keep_chain) {
        rs->leaf = SSL_get1_peer_certificate(ssl);
        STACK_OF(X509) *sk = SSL_get_peer_cert_chain(ssl);
        rs->chain = sk != NULL ? X509_chain_up_ref(sk) : NULL;
    }
}

int audit_tls_probe(struct audit_ctx *a, const struct tls_probe_req *rq, struct tls_probe_res *rs,
                    struct error *err)
{
    memset(rs, 0, sizeof(*rs));
    rs->alert = -1;
    SSL_CTX *ctx = make_ctx(&a->t, rq, err);
    if (ctx == NULL)
        return AUDIT_EGENERIC;
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx); /* the SSL holds its own reference */
    if (ssl == NULL)
        return error_set(err, "SSL_new failed"), AUDIT_EGENERIC;
    SSL_set_app_data(ssl, rs);
    SSL_set_info_callback(ssl, info_cb);
    if (rq->sni != NULL)
        SSL_set_tlsext_host_name(ssl, rq->sni);
    if (rq->alpn != NULL)
        SSL_set_alpn_protos(ssl, rq->alpn, rq->alpn_len);
    if (rq->ocsp)
        SSL_set_tlsext_status_type(ssl, TLSEXT_STATUSTYPE_ocsp);

    struct audit_conn c;
    int rc = audit_pop3_open_transport(a, &c, err);
    if (rc < 0) {
        SSL_free(ssl);
        return rc;
    }
    struct error herr = {{0}};
    if (audit_conn_handshake(&c, ssl, a->t.timeout_ms, &herr) < 0) {
        if (rs->alert >= 0)
            snprintf(rs->why, sizeof(rs->why), "alert %s", SSL_alert_desc_string_long(rs->alert));
        else
            audit_copy(rs->why, sizeof(rs->why), herr.msg);
        SSL_set_app_data(ssl, NULL);
        SSL_free(ssl);
        audit_conn_close(&c);
        return 0;
    }
    record_success(ssl, rq, rs);
    SSL_set_app_data(ssl, NULL);
    audit_conn_close(&c);
    return 0;
}

void audit_tls_res_free(struct tls_probe_res *rs)
{
    X509_free(rs->leaf);
    rs->leaf = NULL;
    sk_X509_pop_free(rs->chain, X509_free);
    rs->chain = NULL;
}

int audit_tls_start(struct audit_ctx *a, struct audit_conn *c, struct error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return error_set(err, "SSL_CTX_new failed"), AUDIT_EGENERIC;
    SSL_CTX_set_security_level(ctx, 0);
    SSL_CTX_set_options(ctx, SSL_OP_LEGACY_SERVER_CONNECT | SSL_OP_NO_TICKET);
    SSL_CTX_set_min_proto_version(ctx, TLS1_VERSION);
    SSL_CTX_set_cipher_list(ctx, ALL_CIPHERS);
    SSL *ssl = SSL_new(ctx);
    SSL_CTX_free(ctx);
    if (ssl == NULL)
        return error_set(err, "SSL_new failed"), AUDIT_EGENERIC;
    if (a->t.sni != NULL)
        SSL_set_tlsext_host_name(ssl, a->t.sni);
    int rc = audit_conn_handshake(c, ssl, a->t.timeout_ms, err);
    if (rc < 0)
        SSL_free(ssl);
    return rc;
}
