/* Grading: every check becomes a finding (PASS, INFO, WARN or FAIL, with a
 * one-line fix), a finding that matters caps the grade, and the grade is the
 * lowest cap. The rules are listed in docs/AUDIT.md; keep the two in step. */
#include "ctl/audit.h"

#include <openssl/objects.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char *const grade_names[] = {"F", "E", "D", "C", "B", "A-", "A", "A+", "-"};

const char *audit_grade_name(enum audit_grade g)
{
    return (unsigned)g <= G_NONE ? grade_names[g] : "?";
}

int audit_grade_parse(const char *s, enum audit_grade *out)
{
    for (int g = G_F; g <= G_APLUS; g++)
        if (strcasecmp(s, grade_names[g]) == 0) {
            *out = (enum audit_grade)g;
            return 0;
        }
    return -1;
}

const char *audit_status_name(enum audit_status s)
{
    switch (s) {
    case AUDIT_PASS: return "PASS";
    case AUDIT_INFO: return "INFO";
    case AUDIT_WARN: return "WARN";
    default: return "FAIL";
    }
}

__attribute__((format(printf, 6, 7))) static void add(struct audit_report *r, const char *id,
                                                      enum audit_status st, enum audit_grade cap,
                                                      const char *fix, const char *fmt, ...)
{
    if (r->nfind >= AUDIT_MAX_FINDINGS)
        return;
    struct audit_finding *f = &r->find[r->nfind++];
    audit_copy(f->id, sizeof(f->id), id);
    f->status = st;
    f->cap = st == AUDIT_PASS || st == AUDIT_INFO ? G_NONE : cap;
    audit_copy(f->fix, sizeof(f->fix), st == AUDIT_PASS ? "" : fix);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof(f->detail), fmt, ap);
    va_end(ap);
}

/* ---- protocols ---- */

static void grade_protocols(struct audit_report *r)
{
    static const char *const ids[AV_COUNT] = {"protocol.sslv3", "protocol.tls1_0", "protocol.tls1_1",
                                              "protocol.tls1_2", "protocol.tls1_3"};
    const struct audit_proto_res *p = r->proto;
    bool any = false;
    for (int v = 0; v < AV_COUNT; v++)
        any |= p[v].accepted;
    for (int v = 0; v < AV_COUNT; v++) {
        const char *name = audit_ver_name((enum audit_ver)v);
        const char *inc = p[v].incomplete ? " (enumeration incomplete)" : "";
        if (!p[v].tested) {
            add(r, ids[v], AUDIT_INFO, G_NONE, "", "%s not tested: %s", name, p[v].note);
        } else if (v <= AV_TLS11) {
            if (p[v].accepted)
                add(r, ids[v], AUDIT_FAIL, v == AV_SSL3 ? G_F : G_C,
                    "Disable it: accept TLS 1.2 and 1.3 only (minimum protocol TLSv1.2)", "%s accepted%s",
                    name, inc);
            else
                add(r, ids[v], AUDIT_PASS, G_NONE, "", "%s refused", name);
        } else if (v == AV_TLS12) {
            add(r, ids[v], AUDIT_PASS, G_NONE, "", "%s %s%s", name,
                p[v].accepted          ? "accepted"
                : p[AV_TLS13].accepted ? "refused (TLS 1.3 only)"
                                       : "refused",
                inc);
        } else if (p[v].accepted) {
            add(r, ids[v], AUDIT_PASS, G_NONE, "", "%s accepted%s", name, inc);
        } else if (any) {
            add(r, ids[v], AUDIT_WARN, G_A, "Enable TLS 1.3 (OpenSSL 1.1.1 or later)", "%s refused", name);
        }
    }
    if (!any)
        add(r, "protocol.none", AUDIT_FAIL, G_F, "Enable TLS 1.2 and TLS 1.3 on this port",
            "no TLS handshake succeeded (TLS 1.3: %s; TLS 1.2: %s)", p[AV_TLS13].note, p[AV_TLS12].note);
}

/* ---- cipher suites ---- */

/* Lists up to three suite names matching mask (and not skip) into out. */
static int list_suites(const struct audit_report *r, unsigned mask, unsigned skip, bool want_no_fs, char *out,
                       size_t cap)
{
    int count = 0;
    size_t used = 0;
    out[0] = '\0';
    for (int v = 0; v < AV_COUNT; v++) {
        for (int i = 0; i < r->proto[v].n; i++) {
            unsigned f = r->proto[v].suites[i].flags;
            bool hit = want_no_fs ? !(f & SF_FS) : (f & mask) != 0;
            if (!hit || (f & skip))
                continue;
            bool dup = false; /* the same suite at several versions counts once */
            for (int w = 0; w < v && !dup; w++)
                for (int j = 0; j < r->proto[w].n && !dup; j++)
                    dup = r->proto[w].suites[j].id == r->proto[v].suites[i].id;
            if (dup)
                continue;
            if (count < 3 && used < cap) {
                int k =
                    snprintf(out + used, cap - used, "%s%s", count ? ", " : "", r->proto[v].suites[i].name);
                used = k > 0 ? used + (size_t)k : used;
            }
            count++;
        }
    }
    if (count > 3 && used < cap)
        snprintf(out + used, cap - used, ", and %d more", count - 3);
    return count;
}

static void grade_ciphers(struct audit_report *r)
{
    char names[200];
    const unsigned broken = SF_NULL | SF_ANON | SF_EXPORT | SF_RC4 | SF_DES;
    int total = 0, modern = 0;
    for (int v = 0; v < AV_COUNT; v++)
        for (int i = 0; i < r->proto[v].n; i++) {
            total++;
            unsigned f = r->proto[v].suites[i].flags;
            modern += (f & SF_FS) && (f & SF_AEAD) && !(f & broken);
        }
    if (total == 0)
        return;
    int n = list_suites(r, broken, 0, false, names, sizeof(names));
    if (n > 0)
        add(r, "ciphers.broken", AUDIT_FAIL, G_F, "Remove NULL, anonymous, EXPORT, RC4 and DES suites",
            "%d broken suite(s): %s", n, names);
    else
        add(r, "ciphers.broken", AUDIT_PASS, G_NONE, "", "no NULL, anonymous, EXPORT, RC4 or DES suites");
    n = list_suites(r, SF_64BIT, broken, false, names, sizeof(names));
    if (n > 0)
        add(r, "ciphers.sweet32", AUDIT_FAIL, G_C, "Remove 3DES and IDEA suites (64-bit blocks, Sweet32)",
            "%d suite(s) with a 64-bit block cipher: %s", n, names);
    n = list_suites(r, 0, SF_ANON, true, names, sizeof(names));
    if (n > 0)
        add(r, "ciphers.forward_secrecy", AUDIT_FAIL, G_B,
            "Remove static RSA/DH key exchange; offer ECDHE (and DHE) suites only",
            "%d suite(s) without forward secrecy: %s", n, names);
    else
        add(r, "ciphers.forward_secrecy", AUDIT_PASS, G_NONE, "", "every suite has forward secrecy");
    n = list_suites(r, SF_CBC, broken | SF_64BIT, false, names, sizeof(names));
    if (n > 0)
        add(r, "ciphers.cbc", AUDIT_WARN, G_AMINUS,
            "Offer only AEAD suites (AES-GCM, ChaCha20-Poly1305); drop CBC and SHA-1 MAC suites",
            "%d CBC suite(s): %s", n, names);
    else
        add(r, "ciphers.cbc", AUDIT_PASS, G_NONE, "", "no CBC suites");
    if (modern == 0)
        add(r, "ciphers.aead", AUDIT_FAIL, G_B, "Offer ECDHE with AES-GCM or ChaCha20-Poly1305",
            "no suite with both forward secrecy and AEAD");

    /* Client order is fine when every suite is strong. */
    for (int v = AV_COUNT - 1; v >= 0; v--) {
        const struct audit_proto_res *p = &r->proto[v];
        bool weak = false;
        for (int i = 0; i < p->n; i++)
            weak |= !((p->suites[i].flags & SF_FS) && (p->suites[i].flags & SF_AEAD));
        if (p->server_order == 0 && weak) {
            add(r, "ciphers.order", AUDIT_WARN, G_AMINUS,
                "Enforce the server's suite order (e.g. Dovecot ssl_prefer_server_ciphers = yes)",
                "%s: the client's order wins and weaker suites are accepted",
                audit_ver_name((enum audit_ver)v));
            return;
        }
    }
    add(r, "ciphers.order", AUDIT_PASS, G_NONE, "", "server order enforced, or only strong suites offered");
}

static void grade_kx(struct audit_report *r)
{
    int min_dh = 0;
    for (int v = 0; v < AV_COUNT; v++)
        for (int i = 0; i < r->proto[v].n; i++) {
            const struct audit_suite *s = &r->proto[v].suites[i];
            if (strncmp(s->kx, "dh", 2) == 0 && s->kx_bits > 0 && (min_dh == 0 || s->kx_bits < min_dh))
                min_dh = s->kx_bits;
        }
    if (min_dh > 0 && min_dh < 1024)
        add(r, "kx.dh", AUDIT_FAIL, G_F, "Use DH parameters of 2048 bits or more, or drop DHE suites",
            "DHE with %d-bit parameters (Logjam)", min_dh);
    else if (min_dh > 0 && min_dh < 2048)
        add(r, "kx.dh", AUDIT_WARN, G_B, "Use DH parameters of 2048 bits or more, or drop DHE suites",
            "DHE with %d-bit parameters", min_dh);
    else if (min_dh > 0)
        add(r, "kx.dh", AUDIT_PASS, G_NONE, "", "DHE parameters of %d bits or more", min_dh);
    if (r->ngroups > 0) {
        char list[200] = "";
        size_t used = 0;
        for (int i = 0; i < r->ngroups && used < sizeof(list); i++) {
            const struct audit_group *g = &r->groups[i];
            bool dup = false;
            for (int j = 0; j < i; j++)
                dup |= strcmp(r->groups[j].name, g->name) == 0;
            if (dup)
                continue;
            int k = snprintf(list + used, sizeof(list) - used, "%s%s", used ? ", " : "", g->name);
            used = k > 0 ? used + (size_t)k : used;
        }
        add(r, "kx.groups", AUDIT_INFO, G_NONE, "", "groups accepted: %s", list);
    }
}

/* ---- certificate ---- */

static void grade_cert(struct audit_report *r)
{
    const struct audit_cert_res *c = &r->cert;
    if (!c->have) {
        if (audit_best_ver(r) != AV_COUNT)
            add(r, "cert", AUDIT_INFO, G_NONE, "", "certificate not retrieved");
        return;
    }
    if (c->chain_ok)
        add(r, "cert.chain", AUDIT_PASS, G_NONE, "", "chain trusted by %s",
            r->t->ca_file != NULL ? r->t->ca_file : "the system store");
    else
        add(r, "cert.chain", AUDIT_FAIL, G_F,
            c->self_signed ? "Replace the self-signed certificate with one from a trusted CA"
                           : "Use a certificate from a trusted CA and send the intermediates with it",
            "%s%s", c->self_signed ? "self-signed: " : "", c->chain_error);
    if (c->name_ok)
        add(r, "cert.name", AUDIT_PASS, G_NONE, "", "matches %s", c->name);
    else
        add(r, "cert.name", AUDIT_FAIL, G_F, "Add the server's name to the certificate's subjectAltName",
            "does not match %s (SAN: %s)", c->name, c->sans[0] ? c->sans : "none");
    if (c->expired)
        add(r, "cert.expiry", AUDIT_FAIL, G_F, "Renew the certificate now", "expired on %s (%ld days ago)",
            c->not_after, -c->days_left);
    else if (c->not_yet_valid)
        add(r, "cert.expiry", AUDIT_FAIL, G_F, "Check the server clock or the certificate's notBefore",
            "not valid before %s", c->not_before);
    else if (c->days_left < 30)
        add(r, "cert.expiry", AUDIT_WARN, G_AMINUS, "Renew the certificate (automate renewal)",
            "expires in %ld days (%s)", c->days_left, c->not_after);
    else
        add(r, "cert.expiry", AUDIT_PASS, G_NONE, "", "valid until %s (%ld days)", c->not_after,
            c->days_left);

    bool rsa_like = strcmp(c->key_type, "RSA") == 0 || strcmp(c->key_type, "DSA") == 0;
    bool ec = strcmp(c->key_type, "EC") == 0;
    if (rsa_like && c->key_bits < 1024)
        add(r, "cert.key", AUDIT_FAIL, G_F, "Use an RSA key of 2048+ bits or an EC P-256 key", "%s %d bits",
            c->key_type, c->key_bits);
    else if ((rsa_like && c->key_bits < 2048) || (ec && c->key_bits < 256))
        add(r, "cert.key", AUDIT_FAIL, G_B, "Use an RSA key of 2048+ bits or an EC P-256 key", "%s %d bits",
            c->key_type, c->key_bits);
    else
        add(r, "cert.key", AUDIT_PASS, G_NONE, "", "%s %d bits", c->key_type, c->key_bits);

    if (c->sig_md == NID_md5 || c->sig_md == NID_md2 || c->sig_md == NID_md4)
        add(r, "cert.signature", AUDIT_FAIL, G_F, "Reissue the certificate with SHA-256", "%s", c->sig_alg);
    else if (c->sig_md == NID_sha1)
        add(r, "cert.signature", AUDIT_FAIL, G_B, "Reissue the certificate with SHA-256", "%s", c->sig_alg);
    else
        add(r, "cert.signature", AUDIT_PASS, G_NONE, "", "%s", c->sig_alg);

    if (c->ocsp_stapled)
        add(r, "cert.ocsp_stapling", AUDIT_PASS, G_NONE, "", "OCSP response stapled");
    else
        add(r, "cert.ocsp_stapling", AUDIT_WARN, G_NONE, "Enable OCSP stapling if the server supports it",
            "no OCSP response stapled");
}

/* ---- TLS behaviour ---- */

static void grade_tlsb(struct audit_report *r)
{
    const struct audit_tlsb_res *b = &r->tlsb;
    if (audit_best_ver(r) == AV_COUNT)
        return;
    if (b->compression == 1)
        add(r, "tls.compression", AUDIT_FAIL, G_C, "Disable TLS compression (CRIME)", "%s", b->comp_note);
    else if (b->compression == 0)
        add(r, "tls.compression", AUDIT_PASS, G_NONE, "", "%s", b->comp_note);
    else
        add(r, "tls.compression", AUDIT_INFO, G_NONE, "", "%s", b->comp_note);

    if (b->reneg == 1)
        add(r, "tls.renegotiation", AUDIT_PASS, G_NONE, "", "secure renegotiation (RFC 5746) supported");
    else if (b->reneg == 0)
        add(r, "tls.renegotiation", AUDIT_FAIL, G_B, "Upgrade the TLS library: RFC 5746 is missing",
            "no secure renegotiation support");
    else
        add(r, "tls.renegotiation", AUDIT_INFO, G_NONE, "", "not applicable (TLS 1.3 only)");

    const char *alpacafix = "Reject ALPN protocols other than \"pop3\" (ALPACA)";
    switch (b->alpn) {
    case ALPN_REJECTED:
        add(r, "tls.alpn", AUDIT_PASS, G_NONE, "", "foreign ALPN \"http/1.1\" refused");
        break;
    case ALPN_IGNORED:
        add(r, "tls.alpn", AUDIT_WARN, G_NONE, alpacafix, "ALPN ignored: a foreign protocol is not refused");
        break;
    case ALPN_ACCEPTED:
        add(r, "tls.alpn", AUDIT_FAIL, G_B, alpacafix, "server selected foreign ALPN \"%s\"", b->alpn_sel);
        break;
    default: add(r, "tls.alpn", AUDIT_INFO, G_NONE, "", "not tested %s", b->note); break;
    }
    const char *snifix = "Refuse handshakes for unknown SNI names (strict SNI, ALPACA)";
    switch (b->sni) {
    case SNI_REFUSED: add(r, "tls.sni", AUDIT_PASS, G_NONE, "", "unknown SNI name refused"); break;
    case SNI_DEFAULT:
        add(r, "tls.sni", AUDIT_WARN, G_NONE, snifix,
            "unknown SNI name accepted with the default certificate");
        break;
    case SNI_OTHER_CERT:
        add(r, "tls.sni", AUDIT_WARN, G_NONE, snifix, "unknown SNI name accepted with another certificate");
        break;
    default: add(r, "tls.sni", AUDIT_INFO, G_NONE, "", "not tested"); break;
    }
}

/* ---- POP3 ---- */

static void grade_pop3(struct audit_report *r)
{
    const struct audit_pop3_res *p = &r->pop3;
    bool stls = r->t->starttls;
    if (!p->greeting_ok) {
        add(r, "pop3.greeting", AUDIT_WARN, G_NONE, "Check that this port serves POP3",
            "no POP3 session, POP3 checks skipped: %s", p->note);
        return;
    }
    add(r, "pop3.greeting", AUDIT_PASS, G_NONE, "", "%.200s", p->greeting);
    if (stls) {
        if (p->stls_offered)
            add(r, "pop3.stls", AUDIT_PASS, G_NONE, "", "STLS advertised on the plain port");
        else
            add(r, "pop3.stls", AUDIT_WARN, G_AMINUS, "Advertise STLS in CAPA (RFC 2595)", "%s",
                p->capa_plain_ok ? "STLS not advertised in CAPA" : "CAPA not supported before TLS");
        char what[200] = "";
        if (p->user_clear)
            snprintf(what, sizeof(what), "USER advertised");
        if (p->sasl_clear[0] != '\0')
            snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sSASL %s advertised",
                     what[0] ? "; " : "", p->sasl_clear);
        if (p->user_accepted_clear)
            snprintf(what + strlen(what), sizeof(what) - strlen(what), "%sUSER accepted",
                     what[0] ? "; " : "");
        if (what[0] != '\0')
            add(r, "pop3.cleartext_auth", AUDIT_FAIL, G_C,
                "Refuse USER/PASS, PLAIN and LOGIN before STLS (Dovecot: ssl = required)", "before TLS: %s",
                what);
        else
            add(r, "pop3.cleartext_auth", AUDIT_PASS, G_NONE, "", "no cleartext login offered before TLS");
    }
    if (p->capa_tls_ok)
        add(r, "pop3.capa", AUDIT_PASS, G_NONE, "", "CAPA over TLS: %d capabilities", p->ncapa_tls);
    else
        add(r, "pop3.capa", AUDIT_WARN, G_NONE, "Support CAPA (RFC 2449)", "CAPA over TLS failed: %s",
            p->note);
    if (p->apop)
        add(r, "pop3.apop", AUDIT_WARN, G_AMINUS,
            "Disable APOP: it relies on MD5 and on passwords stored in clear",
            "APOP timestamp in the greeting");
    else
        add(r, "pop3.apop", AUDIT_PASS, G_NONE, "", "no APOP timestamp in the greeting");
    if (p->version_leak)
        add(r, "pop3.version", AUDIT_WARN, G_A, "Do not reveal the software version in the greeting or CAPA",
            "version disclosed: %.120s", p->implementation[0] ? p->implementation : p->greeting);
    else
        add(r, "pop3.version", AUDIT_PASS, G_NONE, "", "no version number disclosed");
    if (stls) {
        if (p->injection == INJ_VULNERABLE)
            add(r, "pop3.stls_injection", AUDIT_FAIL, G_F,
                "Discard or refuse input pipelined behind STLS before the handshake", "%s", p->inj_detail);
        else if (p->injection == INJ_SAFE_REFUSED || p->injection == INJ_SAFE_IGNORED)
            add(r, "pop3.stls_injection", AUDIT_PASS, G_NONE, "", "%s", p->inj_detail);
        else
            add(r, "pop3.stls_injection", AUDIT_WARN, G_NONE, "Check STLS handling by hand", "%s",
                p->inj_detail);
    }
}

static void grade_auth(struct audit_report *r)
{
    const struct audit_auth_res *a = &r->auth;
    if (!a->run)
        return;
    char obs[160] = "";
    size_t used = 0;
    for (int i = 0; i < a->attempts && used < sizeof(obs); i++) {
        int k = snprintf(obs + used, sizeof(obs) - used, "%s%d ms%s", i ? ", " : "", a->delay_ms[i],
                         a->cut[i] ? " then disconnect" : "");
        used = k > 0 ? used + (size_t)k : used;
    }
    if (strstr(a->note, "ACCEPTED") != NULL)
        add(r, "auth.throttling", AUDIT_FAIL, G_F, "Check the user database: a random password logged in",
            "%s", a->note);
    else if (a->attempts == 0)
        add(r, "auth.throttling", AUDIT_INFO, G_NONE, "", "not measured: %s", a->note);
    else if (a->throttled)
        add(r, "auth.throttling", AUDIT_PASS, G_NONE, "", "%s: %s%s", a->method, obs,
            a->no_reply ? " (reply withheld past the timeout)" : "");
    else
        add(r, "auth.throttling", AUDIT_WARN, G_NONE,
            "Delay failed logins and limit them per address and per user",
            "%s: %d failures answered at once (%s)", a->method, a->attempts, obs);
}

void audit_grade(struct audit_report *r)
{
    r->nfind = 0;
    grade_protocols(r);
    grade_ciphers(r);
    grade_kx(r);
    grade_cert(r);
    grade_tlsb(r);
    grade_pop3(r);
    grade_auth(r);
    bool incomplete = r->budget_hit;
    for (int v = 0; v < AV_COUNT; v++)
        incomplete |= r->proto[v].incomplete;
    if (incomplete)
        add(r, "audit.incomplete", AUDIT_WARN, G_NONE, "Run again with a longer --timeout",
            "some probes could not run (%d connections made); results are incomplete", r->probes);

    r->grade = G_APLUS;
    for (int i = 0; i < r->nfind; i++)
        if (r->find[i].cap < r->grade)
            r->grade = r->find[i].cap;
    if (r->grade == G_APLUS) {
        snprintf(r->grade_rule, sizeof(r->grade_rule), "no finding lowers the grade");
        return;
    }
    size_t used =
        (size_t)snprintf(r->grade_rule, sizeof(r->grade_rule), "capped at %s by", audit_grade_name(r->grade));
    for (int i = 0; i < r->nfind && used < sizeof(r->grade_rule); i++) {
        if (r->find[i].cap != r->grade)
            continue;
        int k = snprintf(r->grade_rule + used, sizeof(r->grade_rule) - used, " %s", r->find[i].id);
        used = k > 0 ? used + (size_t)k : used;
    }
}
