#include "tls/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/log.h"
#include "tls/tls_int.h"

#define TLS12_CIPHERS                                                                                     \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:"            \
    "ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"
#define TLS13_SUITES "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
#define TLS_GROUPS "X25519:P-256:P-384"
#define TLS_MAX_NAMES 64

/* One context per distinct set of certificate names. */
struct tls_site {
    SSL_CTX *ctx;
    char *names[TLS_MAX_NAMES]; /* DNS SANs (or CN when no SAN), lower case */
    unsigned n_names;
};

struct tls_server {
    struct tls_site sites[CONF_MAX_CERTS];
    unsigned n_sites;
};

static const unsigned char alpn_pop3[] = {4, 'p', 'o', 'p', '3'};

/* ALPACA defence: a client that speaks ALPN must name pop3; one that offers
 * none is an ordinary POP3 client and proceeds. */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg)
{
    unsigned char *sel;
    if (SSL_select_next_proto(&sel, outlen, alpn_pop3, sizeof(alpn_pop3), in, inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static bool name_matches(const char *pattern, const char *host)
{
    if (strcasecmp(pattern, host) == 0)
        return true;
    /* "*.example.org" covers exactly one label. */
    if (pattern[0] == '*' && pattern[1] == '.') {
        const char *dot = strchr(host, '.');
        return dot != NULL && dot != host && strcasecmp(pattern + 1, dot) == 0;
    }
    return false;
}

static int sni_select(SSL *ssl, int *alert, void *arg)
{
    struct tls_server *ts = arg;
    const char *host = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (host == NULL)
        return SSL_TLSEXT_ERR_OK;
    for (unsigned i = 0; i < ts->n_sites; i++)
        for (unsigned j = 0; j < ts->sites[i].n_names; j++)
            if (name_matches(ts->sites[i].names[j], host)) {
                if (SSL_get_SSL_CTX(ssl) != ts->sites[i].ctx)
                    SSL_set_SSL_CTX(ssl, ts->sites[i].ctx);
                return SSL_TLSEXT_ERR_OK;
            }
    /* Unknown name: the default certificate answers, as clients expect. */
    return SSL_TLSEXT_ERR_OK;
}

static int ssl_err(struct error *err, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[200];
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return error_set(err, "%s: %s", what, buf);
}

static SSL_CTX *ctx_new(struct tls_server *ts, const struct conf *c, struct error *err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        ssl_err(err, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, c->tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_PRIORITIZE_CHACHA |
                                 /* a client that just closes is an EOF, not an error: a command
                                  * cut short has no LF and is never executed */
                                 SSL_OP_IGNORE_UNEXPECTED_EOF);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_max_early_data(ctx, 0);
    /* Resumption tickets are off unless configured. The ticket key lives in the
     * front's memory for the generation's lifetime: whoever reads it can resume
     * as the server until it changes. Each front has its own key, so with N
     * fronts a ticket works on 1 in N connections. And with OpenSSL 3.0 a
     * resumed handshake (it issues a new ticket) costs the server about what a
     * full one without tickets does, while each ticket costs ~70 us
     * (bench/RESULTS.md, runs 7-9). When enabled: one ticket, not OpenSSL's
     * two; POP3 clients rarely hold more than one. */
    if (c->session_tickets) {
        SSL_CTX_set_num_tickets(ctx, 1);
    } else {
        SSL_CTX_set_num_tickets(ctx, 0);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    if (SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS) != 1 || SSL_CTX_set_ciphersuites(ctx, TLS13_SUITES) != 1 ||
        SSL_CTX_set1_groups_list(ctx, TLS_GROUPS) != 1) {
        ssl_err(err, "TLS policy");
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    SSL_CTX_set_tlsext_servername_callback(ctx, sni_select);
    SSL_CTX_set_tlsext_servername_arg(ctx, ts);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"popsd", 5);
    return ctx;
}

static void add_name(char **names, unsigned *n, const char *s, size_t len)
{
    if (*n >= TLS_MAX_NAMES || len == 0 || memchr(s, '\0', len) != NULL)
        return;
    char *d = strndup(s, len);
    if (d == NULL)
        return;
    for (char *p = d; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    names[(*n)++] = d;
}

static void cert_names(X509 *x, char **names, unsigned *n)
{
    GENERAL_NAMES *sans = X509_get_ext_d2i(x, NID_subject_alt_name, NULL, NULL);
    if (sans != NULL) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
            GENERAL_NAME *g = sk_GENERAL_NAME_value(sans, i);
            if (g->type == GEN_DNS)
                add_name(names, n, (const char *)ASN1_STRING_get0_data(g->d.dNSName),
                         (size_t)ASN1_STRING_length(g->d.dNSName));
        }
        GENERAL_NAMES_free(sans);
    }
    if (*n == 0) {
        char cn[256];
        int len = X509_NAME_get_text_by_NID(X509_get_subject_name(x), NID_commonName, cn, sizeof(cn));
        if (len > 0)
            add_name(names, n, cn, (size_t)len);
    }
}

static bool same_names(const struct tls_site *s, char **names, unsigned n)
{
    if (s->n_names != n)
        return false;
    for (unsigned i = 0; i < n; i++)
        if (strcmp(s->names[i], names[i]) != 0)
            return false;
    return true;
}

static void warn_expiry(const struct conf_cert *cc, X509 *x)
{
    int days = 0, secs = 0;
    if (ASN1_TIME_diff(&days, &secs, NULL, X509_get0_notAfter(x)) != 1)
        return;
    if (days < 0 || (days == 0 && secs <= 0))
        log_event(LOG_LVL_ERR, "tls_cert_expired", "certificate=%s file=%s", cc->name, cc->cert);
    else if (days < 30)
        log_event(LOG_LVL_WARN, "tls_cert_expiring", "certificate=%s file=%s days_left=%d", cc->name, cc->cert,
                  days);
}

/* Loads one certificate chain and key, into the site with the same names or a new one. */
static int load_cert(struct tls_server *ts, const struct conf *c, const struct conf_cert *cc, struct error *err)
{
    SSL_CTX *probe = SSL_CTX_new(TLS_server_method());
    if (probe == NULL)
        return ssl_err(err, "SSL_CTX_new");
    if (SSL_CTX_use_certificate_chain_file(probe, cc->cert) != 1) {
        SSL_CTX_free(probe);
        char what[CONF_PATH_MAX + CONF_NAME_MAX + 32];
        snprintf(what, sizeof(what), "[certificate %s] %s", cc->name, cc->cert);
        return ssl_err(err, what);
    }
    X509 *leaf = SSL_CTX_get0_certificate(probe);
    char *names[TLS_MAX_NAMES];
    unsigned n = 0;
    cert_names(leaf, names, &n);
    warn_expiry(cc, leaf);
    SSL_CTX_free(probe);

    struct tls_site *site = NULL;
    for (unsigned i = 0; i < ts->n_sites; i++)
        if (same_names(&ts->sites[i], names, n))
            site = &ts->sites[i];
    if (site == NULL) {
        site = &ts->sites[ts->n_sites];
        site->ctx = ctx_new(ts, c, err);
        if (site->ctx == NULL) {
            for (unsigned i = 0; i < n; i++)
                free(names[i]);
            return -1;
        }
        ts->n_sites++;
        memcpy(site->names, names, n * sizeof(names[0]));
        site->n_names = n;
    } else {
        for (unsigned i = 0; i < n; i++)
            free(names[i]);
    }
    char what[CONF_PATH_MAX + CONF_NAME_MAX + 32];
    snprintf(what, sizeof(what), "[certificate %s] %s", cc->name, cc->key);
    if (SSL_CTX_use_certificate_chain_file(site->ctx, cc->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(site->ctx, cc->key, SSL_FILETYPE_PEM) != 1)
        return ssl_err(err, what);
    if (SSL_CTX_check_private_key(site->ctx) != 1)
        return ssl_err(err, what);
    return 0;
}

int tls_server_new(const struct conf *c, struct tls_server **ts_r, struct error *err)
{
    struct tls_server *ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        return error_set(err, "out of memory");
    for (unsigned i = 0; i < c->n_certs; i++)
        if (load_cert(ts, c, &c->certs[i], err) < 0) {
            tls_server_free(&ts);
            return -1;
        }
    *ts_r = ts;
    return 0;
}

void tls_server_free(struct tls_server **tsp)
{
    struct tls_server *ts = *tsp;
    if (ts == NULL)
        return;
    for (unsigned i = 0; i < ts->n_sites; i++) {
        SSL_CTX_free(ts->sites[i].ctx);
        for (unsigned j = 0; j < ts->sites[i].n_names; j++)
            free(ts->sites[i].names[j]);
    }
    free(ts);
    *tsp = NULL;
}

SSL_CTX *tls_server_default_ctx(struct tls_server *ts)
{
    return ts->sites[0].ctx; /* SNI (sni_select) moves the connection to its site */
}
