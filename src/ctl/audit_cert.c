/* The server's certificate, from one handshake at the best protocol with SNI,
 * the trust store (system or --ca) and an OCSP status request: chain, name,
 * validity period, key, signature and stapling. */
#include "ctl/audit.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static void name_str(const X509_NAME *n, char *out, size_t cap)
{
    out[0] = '\0';
    BIO *b = BIO_new(BIO_s_mem());
    if (b == NULL)
        return;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        int k = BIO_read(b, out, (int)cap - 1);
        out[k > 0 ? k : 0] = '\0';
    }
    BIO_free(b);
    audit_sanitize(out);
}

static void time_str(const ASN1_TIME *t, char *out, size_t cap)
{
    struct tm tm;
    if (t == NULL || !ASN1_TIME_to_tm(t, &tm) || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, cap, "?");
}

static void append(char *out, size_t cap, const char *s)
{
    size_t used = strlen(out);
    if (used < cap)
        snprintf(out + used, cap - used, "%s%s", used ? ", " : "", s);
}

static void sans_str(X509 *leaf, char *out, size_t cap)
{
    out[0] = '\0';
    GENERAL_NAMES *gens = X509_get_ext_d2i(leaf, NID_subject_alt_name, NULL, NULL);
    if (gens == NULL)
        return;
    for (int i = 0; i < sk_GENERAL_NAME_num(gens); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(gens, i);
        char item[300];
        item[0] = '\0';
        if (g->type == GEN_DNS) {
            const ASN1_IA5STRING *s = g->d.dNSName;
            snprintf(item, sizeof(item), "DNS:%.*s",
                     ASN1_STRING_length(s) > 255 ? 255 : ASN1_STRING_length(s),
                     (const char *)ASN1_STRING_get0_data(s));
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING *s = g->d.iPAddress;
            char ip[INET6_ADDRSTRLEN];
            int len = ASN1_STRING_length(s);
            int af = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (af != 0 && inet_ntop(af, ASN1_STRING_get0_data(s), ip, sizeof(ip)) != NULL)
                snprintf(item, sizeof(item), "IP:%s", ip);
        }
        if (item[0] != '\0')
            append(out, cap, item);
    }
    GENERAL_NAMES_free(gens);
    audit_sanitize(out);
}

static void key_info(X509 *leaf, struct audit_cert_res *c)
{
    EVP_PKEY *pk = X509_get0_pubkey(leaf);
    if (pk == NULL) {
        snprintf(c->key_type, sizeof(c->key_type), "?");
        return;
    }
    c->key_bits = EVP_PKEY_get_bits(pk);
    switch (EVP_PKEY_get_base_id(pk)) {
    case EVP_PKEY_RSA: snprintf(c->key_type, sizeof(c->key_type), "RSA"); break;
    case EVP_PKEY_EC: snprintf(c->key_type, sizeof(c->key_type), "EC"); break;
    case EVP_PKEY_ED25519: snprintf(c->key_type, sizeof(c->key_type), "Ed25519"); break;
    case EVP_PKEY_ED448: snprintf(c->key_type, sizeof(c->key_type), "Ed448"); break;
    case EVP_PKEY_DSA: snprintf(c->key_type, sizeof(c->key_type), "DSA"); break;
    default: snprintf(c->key_type, sizeof(c->key_type), "other"); break;
    }
}

static void fingerprint(X509 *leaf, char *out, size_t cap)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    out[0] = '\0';
    if (!X509_digest(leaf, EVP_sha256(), md, &n))
        return;
    size_t used = 0;
    for (unsigned i = 0; i < n && used + 4 <= cap; i++) {
        int k = snprintf(out + used, cap - used, "%s%02X", i ? ":" : "", md[i]);
        used += k > 0 ? (size_t)k : 0;
    }
}

/* Chain errors other than the leaf's own validity period (reported apart). */
static void chain_verdict(const struct tls_probe_res *rs, struct audit_cert_res *c)
{
    c->chain_ok = true;
    for (int i = 0; i < rs->nverr; i++) {
        int e = rs->verr[i];
        if (rs->verr_depth[i] == 0 &&
            (e == X509_V_ERR_CERT_HAS_EXPIRED || e == X509_V_ERR_CERT_NOT_YET_VALID))
            continue;
        if (c->chain_ok)
            snprintf(c->chain_error, sizeof(c->chain_error), "%s (depth %d)",
                     X509_verify_cert_error_string(e), rs->verr_depth[i]);
        c->chain_ok = false;
    }
}

void audit_cert_check(struct audit_ctx *a, struct audit_report *r, X509 **leaf_out)
{
    struct audit_cert_res *c = &r->cert;
    *leaf_out = NULL;
    enum audit_ver v = audit_best_ver(r);
    if (v == AV_COUNT)
        return;
    struct tls_probe_req rq = {.ver = v, .sni = a->t.sni, .verify = true, .ocsp = true, .keep_chain = true};
    struct tls_probe_res rs;
    struct error err = {{0}};
    if (audit_tls_probe(a, &rq, &rs, &err) < 0 || !rs.ok || rs.leaf == NULL) {
        audit_tls_res_free(&rs);
        return;
    }
    X509 *leaf = rs.leaf;
    c->have = true;
    name_str(X509_get_subject_name(leaf), c->subject, sizeof(c->subject));
    name_str(X509_get_issuer_name(leaf), c->issuer, sizeof(c->issuer));
    sans_str(leaf, c->sans, sizeof(c->sans));
    key_info(leaf, c);

    int sig = X509_get_signature_nid(leaf), md = NID_undef, pkn = NID_undef;
    audit_copy(c->sig_alg, sizeof(c->sig_alg), sig != NID_undef ? OBJ_nid2ln(sig) : "?");
    if (OBJ_find_sigid_algs(sig, &md, &pkn))
        c->sig_md = md;

    const ASN1_TIME *nb = X509_get0_notBefore(leaf), *na = X509_get0_notAfter(leaf);
    time_str(nb, c->not_before, sizeof(c->not_before));
    time_str(na, c->not_after, sizeof(c->not_after));
    int days = 0, secs = 0;
    /* Whole days left, rounded up while any time is left: a certificate
     * issued for 30 days has 30 days left on its first day. */
    if (na != NULL && ASN1_TIME_diff(&days, &secs, NULL, na))
        c->days_left = days + (days >= 0 && secs > 0 ? 1 : 0);
    c->expired = na == NULL || X509_cmp_current_time(na) <= 0;
    c->not_yet_valid = nb == NULL || X509_cmp_current_time(nb) >= 0;
    c->self_signed = X509_self_signed(leaf, 0) == 1;
    c->chain_len = rs.chain != NULL ? sk_X509_num(rs.chain) : 1;
    chain_verdict(&rs, c);

    /* The name a client would check: --sni, else HOST; an IP literal HOST
     * without --sni must be in an IP SAN. */
    c->name_checked = true;
    if (a->t.check_name != NULL) {
        audit_copy(c->name, sizeof(c->name), a->t.check_name);
        c->name_ok = X509_check_host(leaf, a->t.check_name, 0, 0, NULL) == 1;
    } else {
        audit_copy(c->name, sizeof(c->name), a->t.host);
        c->name_ok = X509_check_ip_asc(leaf, a->t.host, 0) == 1;
    }
    c->ocsp_stapled = rs.ocsp_stapled;
    fingerprint(leaf, c->sha256, sizeof(c->sha256));

    if (X509_up_ref(leaf))
        *leaf_out = leaf;
    audit_tls_res_free(&rs);
}
