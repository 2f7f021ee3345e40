/* --json: the whole report as one JSON document (jansson does the escaping).
 * Suite names are IANA names (SSL_CIPHER_standard_name), the ones nmap and
 * testssl.sh print, so outputs compare directly. */
#include "ctl/audit.h"

#include <jansson.h>
#include <stdio.h>

static json_t *str(const char *s)
{
    json_t *j = s != NULL ? json_string(s) : NULL;
    return j != NULL ? j : json_null();
}

static json_t *opt_str(const char *s)
{
    return s != NULL && s[0] != '\0' ? str(s) : json_null();
}

static json_t *protocols_json(const struct audit_report *r)
{
    json_t *arr = json_array();
    for (int v = AV_SSL3; v < AV_COUNT; v++) {
        const struct audit_proto_res *p = &r->proto[v];
        json_t *suites = json_array();
        for (int i = 0; i < p->n; i++) {
            const struct audit_suite *s = &p->suites[i];
            char id[8];
            snprintf(id, sizeof(id), "0x%04X", s->id);
            json_array_append_new(
                suites, json_pack("{s:o, s:o, s:s, s:o, s:o, s:b, s:b, s:b}", "name", str(s->name), "openssl",
                                  opt_str(s->ossl), "id", id, "kx", opt_str(s->kx), "kx_bits",
                                  s->kx_bits > 0 ? json_integer(s->kx_bits) : json_null(), "forward_secrecy",
                                  (s->flags & SF_FS) != 0, "aead", (s->flags & SF_AEAD) != 0, "raw_probe",
                                  s->ossl[0] == '\0'));
        }
        const char *order = p->server_order == 1 ? "server" : p->server_order == 0 ? "client" : NULL;
        json_array_append_new(
            arr, json_pack("{s:s, s:b, s:b, s:b, s:o, s:o, s:o}", "name", audit_ver_name((enum audit_ver)v),
                           "tested", p->tested, "accepted", p->accepted, "incomplete", p->incomplete,
                           "preference", opt_str(order), "note", opt_str(p->note), "ciphers", suites));
    }
    return arr;
}

static json_t *groups_json(const struct audit_report *r)
{
    json_t *arr = json_array();
    for (int i = 0; i < r->ngroups; i++)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:i}", "name", r->groups[i].name, "protocol",
                                             audit_ver_name(r->groups[i].ver), "bits", r->groups[i].bits));
    return arr;
}

static json_t *cert_json(const struct audit_report *r)
{
    const struct audit_cert_res *c = &r->cert;
    if (!c->have)
        return json_null();
    return json_pack("{s:o, s:o, s:o, s:s, s:i, s:s, s:s, s:s, s:I, s:b, s:b, s:b, s:i, s:b, s:o, s:s, s:b, "
                     "s:b, s:s}",
                     "subject", str(c->subject), "issuer", str(c->issuer), "san", str(c->sans), "key_type",
                     c->key_type, "key_bits", c->key_bits, "signature", c->sig_alg, "not_before",
                     c->not_before, "not_after", c->not_after, "days_left", (json_int_t)c->days_left,
                     "expired", c->expired, "not_yet_valid", c->not_yet_valid, "self_signed", c->self_signed,
                     "chain_length", c->chain_len, "trusted", c->chain_ok, "chain_error",
                     opt_str(c->chain_error), "checked_name", c->name, "name_match", c->name_ok,
                     "ocsp_stapled", c->ocsp_stapled, "sha256", c->sha256);
}

static json_t *tls_json(const struct audit_report *r)
{
    static const char *const alpn[] = {"untested", "rejected", "ignored", "accepted", "error"};
    static const char *const sni[] = {"untested", "refused", "default_certificate", "other_certificate",
                                      "error"};
    const struct audit_tlsb_res *b = &r->tlsb;
    return json_pack("{s:o, s:o, s:o, s:s, s:o, s:s}", "compression",
                     b->compression < 0 ? json_null() : json_boolean(b->compression), "compression_note",
                     opt_str(b->comp_note), "secure_renegotiation",
                     b->reneg < 0 ? json_null() : json_boolean(b->reneg), "foreign_alpn", alpn[b->alpn],
                     "alpn_selected", opt_str(b->alpn_sel), "unknown_sni", sni[b->sni]);
}

static json_t *capa_json(const char (*capa)[AUDIT_CAPA_LEN], int n, bool ok)
{
    if (!ok)
        return json_null();
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr, str(capa[i]));
    return arr;
}

static json_t *pop3_json(const struct audit_report *r)
{
    static const char *const inj[] = {"untested", "refused", "ignored", "vulnerable", "error"};
    const struct audit_pop3_res *p = &r->pop3;
    return json_pack("{s:o, s:o, s:o, s:b, s:b, s:b, s:o, s:b, s:o, s:b, s:s, s:o, s:o}", "greeting",
                     p->greeting_ok ? str(p->greeting) : json_null(), "capa_before_tls",
                     capa_json(p->capa_plain, p->ncapa_plain, p->capa_plain_ok), "capa_after_tls",
                     capa_json(p->capa_tls, p->ncapa_tls, p->capa_tls_ok), "stls_offered", p->stls_offered,
                     "user_before_tls", p->user_clear, "user_accepted_before_tls", p->user_accepted_clear,
                     "sasl_cleartext_before_tls", opt_str(p->sasl_clear), "apop", p->apop, "implementation",
                     opt_str(p->implementation), "version_disclosed", p->version_leak, "stls_injection",
                     inj[p->injection], "stls_injection_detail", opt_str(p->inj_detail), "note",
                     opt_str(p->note));
}

static json_t *auth_json(const struct audit_report *r)
{
    const struct audit_auth_res *a = &r->auth;
    if (!a->run)
        return json_null();
    json_t *att = json_array();
    for (int i = 0; i < a->attempts; i++)
        json_array_append_new(att,
                              json_pack("{s:i, s:b}", "delay_ms", a->delay_ms[i], "disconnected", a->cut[i]));
    return json_pack("{s:o, s:o, s:b, s:b, s:o}", "method", opt_str(a->method), "attempts", att, "throttled",
                     a->throttled, "reply_withheld", a->no_reply, "note", opt_str(a->note));
}

static json_t *findings_json(const struct audit_report *r)
{
    json_t *arr = json_array();
    for (int i = 0; i < r->nfind; i++) {
        const struct audit_finding *f = &r->find[i];
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o, s:o, s:o}", "id", f->id, "status",
                                             audit_status_name(f->status), "detail", str(f->detail), "fix",
                                             opt_str(f->fix), "caps",
                                             f->cap == G_NONE ? json_null() : str(audit_grade_name(f->cap))));
    }
    return arr;
}

int audit_report_json(const struct audit_report *r, struct error *err)
{
    const struct audit_target *t = r->t;
    json_t *root = json_pack(
        "{s:{s:s, s:s, s:i, s:s, s:o}, s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:i, s:I}",
        "target", "host", t->host, "address", t->addr_str, "port", (int)t->port, "mode",
        t->starttls ? "starttls" : "implicit", "sni", opt_str(t->sni), "grade", audit_grade_name(r->grade),
        "grade_rule", r->grade_rule, "min_grade",
        r->min_grade == G_NONE ? json_null() : str(audit_grade_name(r->min_grade)), "min_grade_met",
        r->min_grade == G_NONE ? json_null() : json_boolean(r->grade >= r->min_grade), "protocols",
        protocols_json(r), "groups", groups_json(r), "certificate", cert_json(r), "tls", tls_json(r), "pop3",
        pop3_json(r), "auth_probe", auth_json(r), "findings", findings_json(r), "connections", r->probes,
        "elapsed_ms", (json_int_t)r->elapsed_ms);
    if (root == NULL)
        return error_set(err, "cannot build the JSON report");
    int rc = json_dumpf(root, stdout, JSON_INDENT(2));
    json_decref(root);
    if (rc != 0)
        return error_set(err, "cannot write the JSON report");
    fputc('\n', stdout);
    return 0;
}
