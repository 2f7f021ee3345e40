/* TLS behaviour beyond suites: compression (CRIME), and the two handshake
 * checks against cross-protocol (ALPACA) attacks: a foreign ALPN protocol and
 * an unknown SNI name. Secure renegotiation is measured during enumeration. */
#include "ctl/audit.h"

#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <string.h>

#define UNKNOWN_SNI "popsctl-audit.invalid"

/* A raw hello offering DEFLATE before null, with suites the server accepted. */
static void check_compression(struct audit_ctx *a, struct audit_report *r)
{
    struct audit_tlsb_res *b = &r->tlsb;
    b->compression = -1;
    int v = -1;
    for (int i = AV_TLS12; i >= AV_TLS10 && v < 0; i--)
        if (r->proto[i].accepted)
            v = i;
    if (v < 0) {
        if (r->proto[AV_TLS13].accepted) {
            b->compression = 0;
            snprintf(b->comp_note, sizeof(b->comp_note), "TLS 1.3 has no compression");
        }
        return;
    }
    const struct audit_proto_res *p = &r->proto[v];
    uint16_t ids[AUDIT_MAX_SUITES];
    for (int i = 0; i < p->n; i++)
        ids[i] = p->suites[i].id;
    static const uint8_t comp[] = {1, 0}; /* DEFLATE, null */
    struct raw_hello_res rr;
    struct error err = {{0}};
    if (audit_raw_hello(a, (uint16_t)(0x0300 + v), ids, p->n, comp, 2, &rr, &err) < 0) {
        snprintf(b->comp_note, sizeof(b->comp_note), "not tested: %.100s", err.msg);
        return;
    }
    if (!rr.ok) {
        snprintf(b->comp_note, sizeof(b->comp_note), "not tested: %.100s", rr.why);
        return;
    }
    b->compression = rr.compression != 0;
    audit_copy(b->comp_note, sizeof(b->comp_note), rr.compression ? "server chose DEFLATE" : "none");
}

static void check_alpn(struct audit_ctx *a, struct audit_report *r, enum audit_ver v)
{
    struct audit_tlsb_res *b = &r->tlsb;
    static const unsigned char http[] = "\x08http/1.1";
    struct tls_probe_req rq = {.ver = v, .sni = a->t.sni, .alpn = http, .alpn_len = sizeof(http) - 1};
    struct tls_probe_res rs;
    struct error err = {{0}};
    if (audit_tls_probe(a, &rq, &rs, &err) < 0) {
        b->alpn = ALPN_ERROR;
        return;
    }
    if (rs.ok && rs.alpn[0] != '\0') {
        b->alpn = ALPN_ACCEPTED;
        audit_copy(b->alpn_sel, sizeof(b->alpn_sel), rs.alpn);
    } else if (rs.ok) {
        b->alpn = ALPN_IGNORED;
    } else if (rs.alert == SSL_AD_NO_APPLICATION_PROTOCOL) {
        b->alpn = ALPN_REJECTED;
    } else {
        b->alpn = ALPN_ERROR;
        snprintf(b->note, sizeof(b->note), "ALPN probe: %.100s", rs.why);
    }
}

static void check_sni(struct audit_ctx *a, struct audit_report *r, enum audit_ver v, X509 *leaf)
{
    struct audit_tlsb_res *b = &r->tlsb;
    struct tls_probe_req rq = {.ver = v, .sni = UNKNOWN_SNI, .keep_chain = true};
    struct tls_probe_res rs;
    struct error err = {{0}};
    if (audit_tls_probe(a, &rq, &rs, &err) < 0) {
        b->sni = SNI_ERROR;
        return;
    }
    if (!rs.ok)
        b->sni = SNI_REFUSED;
    else if (leaf != NULL && rs.leaf != NULL && X509_cmp(leaf, rs.leaf) == 0)
        b->sni = SNI_DEFAULT;
    else
        b->sni = SNI_OTHER_CERT;
    audit_tls_res_free(&rs);
}

void audit_tlsb_check(struct audit_ctx *a, struct audit_report *r, X509 *leaf)
{
    check_compression(a, r);
    enum audit_ver v = audit_best_ver(r);
    if (v == AV_COUNT)
        return;
    check_alpn(a, r, v);
    check_sni(a, r, v, leaf);
}
