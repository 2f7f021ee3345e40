/* The human-readable report: what was measured, then one line per finding
 * with its fix, then the grade. Colour only when asked (stdout is a tty). */
#include "ctl/audit.h"

#include <stdio.h>
#include <string.h>

struct style {
    const char *pass, *info, *warn, *fail, *bold, *dim, *off;
};

static const struct style colour_on = {"\033[32m", "\033[36m", "\033[33m", "\033[31m",
                                       "\033[1m",  "\033[2m",  "\033[0m"};
static const struct style colour_off = {"", "", "", "", "", "", ""};

static const char *status_colour(const struct style *st, enum audit_status s)
{
    switch (s) {
    case AUDIT_PASS: return st->pass;
    case AUDIT_INFO: return st->info;
    case AUDIT_WARN: return st->warn;
    default: return st->fail;
    }
}

static const char *grade_colour(const struct style *st, enum audit_grade g)
{
    return g >= G_A ? st->pass : g >= G_B ? st->warn : st->fail;
}

static void print_protocols(const struct audit_report *r, const struct style *st)
{
    printf("\n%sProtocols%s\n", st->bold, st->off);
    for (int v = AV_TLS13; v >= AV_SSL3; v--) {
        const struct audit_proto_res *p = &r->proto[v];
        const char *ans = !p->tested ? "untested" : p->accepted ? "yes" : "no";
        const char *col = !p->accepted ? "" : v <= AV_TLS11 ? st->fail : st->pass;
        printf("  %-8s %s%-8s%s", audit_ver_name((enum audit_ver)v), col, ans, *col ? st->off : "");
        if (p->accepted)
            printf(" %d suite%s, %s order%s", p->n, p->n == 1 ? "" : "s",
                   p->server_order == 1   ? "server"
                   : p->server_order == 0 ? "client"
                                          : "unknown",
                   p->incomplete ? " (incomplete)" : "");
        else if (p->note[0] != '\0')
            printf(" %s%s%s", st->dim, p->note, st->off);
        printf("\n");
    }
}

static void print_suites(const struct audit_report *r, const struct style *st)
{
    bool any = false;
    for (int v = AV_TLS13; v >= AV_SSL3; v--)
        any |= r->proto[v].n > 0;
    if (!any)
        return;
    printf("\n%sCipher suites%s %s(in the server's order where it has one)%s\n", st->bold, st->off, st->dim,
           st->off);
    for (int v = AV_TLS13; v >= AV_SSL3; v--) {
        const struct audit_proto_res *p = &r->proto[v];
        for (int i = 0; i < p->n; i++) {
            const struct audit_suite *s = &p->suites[i];
            unsigned f = s->flags;
            bool bad = f & (SF_NULL | SF_ANON | SF_EXPORT | SF_RC4 | SF_DES | SF_64BIT);
            bool weak = !(f & SF_FS) || !(f & SF_AEAD);
            const char *col = bad ? st->fail : weak ? st->warn : "";
            char kx[40] = "";
            if (s->kx[0] != '\0')
                snprintf(kx, sizeof(kx), "%s %d", s->kx, s->kx_bits);
            printf("  %-8s %s%-48s%s %-16s %s%s%s%s\n", audit_ver_name((enum audit_ver)v), col, s->name,
                   *col ? st->off : "", kx, f & SF_FS ? "FS " : "noFS ", f & SF_AEAD ? "AEAD" : "CBC/stream",
                   s->ossl[0] ? "" : " (raw probe)", bad ? " BROKEN" : "");
        }
    }
    for (int v = AV_TLS13; v >= AV_TLS12; v--) {
        bool first = true;
        for (int i = 0; i < r->ngroups; i++) {
            if (r->groups[i].ver != (enum audit_ver)v)
                continue;
            if (first)
                printf("  %-8s groups:", audit_ver_name((enum audit_ver)v));
            printf(" %s", r->groups[i].name);
            first = false;
        }
        if (!first)
            printf("\n");
    }
}

static void print_cert(const struct audit_report *r, const struct style *st)
{
    const struct audit_cert_res *c = &r->cert;
    if (!c->have)
        return;
    printf("\n%sCertificate%s\n", st->bold, st->off);
    printf("  subject   %s\n", c->subject);
    printf("  issuer    %s\n", c->issuer);
    printf("  SAN       %s\n", c->sans[0] ? c->sans : "(none)");
    printf("  key       %s %d bits, %s\n", c->key_type, c->key_bits, c->sig_alg);
    printf("  valid     %s .. %s (%ld days left)\n", c->not_before, c->not_after, c->days_left);
    printf("  chain     %d certificate%s sent%s\n", c->chain_len, c->chain_len == 1 ? "" : "s",
           c->self_signed ? ", self-signed" : "");
    printf("  sha256    %s\n", c->sha256);
}

static void print_capa(const char *label, const char (*capa)[AUDIT_CAPA_LEN], int n)
{
    printf("  %-11s", label);
    for (int i = 0; i < n; i++)
        printf("%s%s", i ? " | " : "", capa[i]);
    printf("\n");
}

static void print_pop3(const struct audit_report *r, const struct style *st)
{
    const struct audit_pop3_res *p = &r->pop3;
    if (!p->greeting_ok)
        return;
    printf("\n%sPOP3%s\n", st->bold, st->off);
    printf("  greeting  %s\n", p->greeting);
    if (p->capa_plain_ok)
        print_capa("CAPA clear", p->capa_plain, p->ncapa_plain);
    if (p->capa_tls_ok)
        print_capa("CAPA TLS", p->capa_tls, p->ncapa_tls);
}

static void print_findings(const struct audit_report *r, const struct style *st)
{
    printf("\n%sFindings%s\n", st->bold, st->off);
    for (int i = 0; i < r->nfind; i++) {
        const struct audit_finding *f = &r->find[i];
        printf("  %s%-4s%s  %-24s %s", status_colour(st, f->status), audit_status_name(f->status), st->off,
               f->id, f->detail);
        if (f->cap != G_NONE)
            printf(" %s[caps %s]%s", st->dim, audit_grade_name(f->cap), st->off);
        printf("\n");
        if (f->fix[0] != '\0')
            printf("        %-24s %sfix:%s %s\n", "", st->dim, st->off, f->fix);
    }
}

void audit_report_print(const struct audit_report *r, bool colour)
{
    const struct style *st = colour ? &colour_on : &colour_off;
    const struct audit_target *t = r->t;
    printf("%spopsctl audit%s %s port %u (%s%s%s), address %s\n", st->bold, st->off, t->host,
           (unsigned)t->port, t->starttls ? "STLS" : "implicit TLS", t->sni ? ", SNI " : "",
           t->sni ? t->sni : "", t->addr_str);
    print_protocols(r, st);
    print_suites(r, st);
    print_cert(r, st);
    print_pop3(r, st);
    print_findings(r, st);
    printf("\n%sGrade %s%s%s  %s\n", st->bold, grade_colour(st, r->grade), audit_grade_name(r->grade),
           st->off, r->grade_rule);
    if (r->min_grade != G_NONE)
        printf("minimum %s: %s\n", audit_grade_name(r->min_grade),
               r->grade >= r->min_grade ? "met" : "NOT MET");
    printf("%s%d connections, %.1f s%s\n", st->dim, r->probes, (double)r->elapsed_ms / 1000.0, st->off);
}
