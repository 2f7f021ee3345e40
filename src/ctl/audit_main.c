/* popsctl audit HOST [options]: options, the order of the checks, exit status.
 *
 * Exit status: 0 grade at or above --min-grade (or no minimum), 1 below it,
 * 2 usage error, 3 target unreachable. The report goes to stdout, errors to
 * stderr, nothing else is printed. */
#include "ctl/audit.h"
#include "ctl/ctl.h"

#include "common/strnum.h"

#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EXIT_BELOW 1
#define EXIT_USAGE 2
#define EXIT_UNREACHABLE 3

struct audit_opts {
    const char *host;
    uint32_t port; /* 0 = default for the mode */
    bool starttls;
    const char *sni;
    const char *ca;
    bool json;
    enum audit_grade min_grade;
    const char *probe_user;
    uint64_t timeout_ms;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: popsctl audit HOST [--port N] [--starttls] [--sni NAME] [--ca FILE] [--json]\n"
               "                      [--min-grade A+|A|A-|B|C|D|E|F] [--probe-auth USER] [--timeout SECS]\n"
               "Checks the TLS and POP3 hardening of a POP3S server you are authorised to test.\n"
               "Exit status: 0 grade >= --min-grade, 1 below it, 2 usage error, 3 unreachable.\n");
}

/* Printable ASCII without spaces: host names, addresses, user names. */
static bool token_ok(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

/* Returns the value of option `name` at argv[*i] ("--name V" or "--name=V"),
 * advancing *i; NULL if argv[*i] is not that option. *missing on no value. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, bool *missing)
{
    size_t n = strlen(name);
    if (strncmp(argv[*i], name, n) != 0)
        return NULL;
    if (argv[*i][n] == '=')
        return argv[*i] + n + 1;
    if (argv[*i][n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = true;
        return NULL;
    }
    return argv[++*i];
}

/* 0 to run, 1 for --help, -1 on a usage error (already explained on stderr). */
static int parse_args(int argc, char **argv, struct audit_opts *op)
{
    memset(op, 0, sizeof(*op));
    op->min_grade = G_NONE;
    op->timeout_ms = AUDIT_DEFAULT_TIMEOUT_MS;
    bool only_args = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v;
        bool missing = false;
        if (only_args || a[0] != '-') {
            if (op->host != NULL)
                return fprintf(stderr, "popsctl audit: one HOST only (got \"%s\")\n", a), -1;
            op->host = a;
        } else if (strcmp(a, "--") == 0) {
            only_args = true;
        } else if (strcmp(a, "--starttls") == 0) {
            op->starttls = true;
        } else if (strcmp(a, "--json") == 0) {
            op->json = true;
        } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            return 1;
        } else if ((v = opt_value(argc, argv, &i, "--port", &missing)) != NULL) {
            if (strnum_u32_str(v, &op->port) < 0 || op->port == 0 || op->port > 65535)
                return fprintf(stderr, "popsctl audit: bad --port \"%s\"\n", v), -1;
        } else if ((v = opt_value(argc, argv, &i, "--sni", &missing)) != NULL) {
            if (!token_ok(v, 253))
                return fprintf(stderr, "popsctl audit: bad --sni name\n"), -1;
            op->sni = v;
        } else if ((v = opt_value(argc, argv, &i, "--ca", &missing)) != NULL) {
            if (access(v, R_OK) != 0)
                return fprintf(stderr, "popsctl audit: cannot read --ca file %s\n", v), -1;
            op->ca = v;
        } else if ((v = opt_value(argc, argv, &i, "--min-grade", &missing)) != NULL) {
            if (audit_grade_parse(v, &op->min_grade) < 0)
                return fprintf(stderr, "popsctl audit: bad --min-grade \"%s\" (A+ A A- B C D E F)\n", v), -1;
        } else if ((v = opt_value(argc, argv, &i, "--probe-auth", &missing)) != NULL) {
            if (!token_ok(v, 128))
                return fprintf(stderr, "popsctl audit: bad --probe-auth user name\n"), -1;
            op->probe_user = v;
        } else if ((v = opt_value(argc, argv, &i, "--timeout", &missing)) != NULL) {
            if (strnum_duration_ms(v, &op->timeout_ms) < 0 || op->timeout_ms < 100 || op->timeout_ms > 300000)
                return fprintf(stderr, "popsctl audit: bad --timeout \"%s\" (seconds, 0.1s..300s)\n", v), -1;
        } else {
            if (missing)
                return fprintf(stderr, "popsctl audit: %s needs a value\n", a), -1;
            return fprintf(stderr, "popsctl audit: unknown option %s\n", a), -1;
        }
        if (missing)
            return fprintf(stderr, "popsctl audit: %s needs a value\n", a), -1;
    }
    if (op->host == NULL)
        return fprintf(stderr, "popsctl audit: HOST is required\n"), -1;
    return 0;
}

static int setup_target(const struct audit_opts *op, struct audit_target *t)
{
    memset(t, 0, sizeof(*t));
    /* "[::1]" is accepted for an IPv6 literal. */
    const char *h = op->host;
    size_t hl = strlen(h);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl == 0 || hl >= sizeof(t->host))
        return fprintf(stderr, "popsctl audit: bad HOST\n"), -1;
    memcpy(t->host, h, hl);
    t->host[hl] = '\0';
    if (!token_ok(t->host, sizeof(t->host) - 1))
        return fprintf(stderr, "popsctl audit: bad HOST\n"), -1;
    t->port = (uint16_t)(op->port != 0 ? op->port : op->starttls ? 110 : 995);
    t->starttls = op->starttls;
    t->ca_file = op->ca;
    t->timeout_ms = (int)op->timeout_ms;
    return 0;
}

/* Names for SNI and the certificate check, once we know whether HOST is an
 * address (SNI carries names only). */
static void setup_names(const struct audit_opts *op, struct audit_target *t)
{
    if (op->sni != NULL)
        t->sni = op->sni;
    else if (!t->host_is_ip)
        t->sni = t->host;
    t->check_name = t->sni;
}

static void run_checks(struct audit_ctx *a, const struct audit_opts *op, struct audit_report *r)
{
    audit_enum_protocols(a, r);
    X509 *leaf = NULL;
    audit_cert_check(a, r, &leaf);
    audit_enum_groups(a, r);
    audit_tlsb_check(a, r, leaf);
    X509_free(leaf);
    audit_pop3_check(a, &r->pop3);
    if (a->t.starttls)
        audit_pop3_injection(a, &r->pop3);
    if (op->probe_user != NULL)
        audit_auth_probe(a, op->probe_user, &r->auth);
}

int ctl_audit_main(const struct ctl_opts *o, int argc, char **argv)
{
    (void)o;
    struct audit_opts op;
    int prc = parse_args(argc, argv, &op);
    if (prc != 0) {
        usage(prc > 0 ? stdout : stderr);
        return prc > 0 ? 0 : EXIT_USAGE;
    }
    /* A server closing mid-write must not kill us; we report it. */
    signal(SIGPIPE, SIG_IGN);

    struct audit_ctx a = {.max_probes = AUDIT_MAX_PROBES};
    if (setup_target(&op, &a.t) < 0) {
        usage(stderr);
        return EXIT_USAGE;
    }
    struct error err = {{0}};
    int64_t t0 = audit_now_ms();
    if (audit_resolve(&a.t, &err) < 0) {
        fprintf(stderr, "popsctl audit: %s\n", err.msg);
        return EXIT_UNREACHABLE;
    }
    setup_names(&op, &a.t);

    /* The first address of HOST that accepts a connection is the one audited. */
    int rc = AUDIT_EUNREACH;
    for (int i = 0; i < a.t.naddr && rc == AUDIT_EUNREACH; i++) {
        struct audit_conn c;
        audit_use_address(&a.t, i);
        rc = audit_pop3_open_transport(&a, &c, &err);
        if (rc == 0)
            audit_conn_close(&c);
    }
    if (rc == AUDIT_EUNREACH) {
        fprintf(stderr, "popsctl audit: cannot reach %s: %s\n", a.t.host, err.msg);
        return EXIT_UNREACHABLE;
    }

    struct audit_report *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        fprintf(stderr, "popsctl audit: out of memory\n");
        return EXIT_UNREACHABLE;
    }
    r->t = &a.t;
    r->min_grade = op.min_grade;
    r->tlsb.compression = -1;
    r->tlsb.reneg = -1;
    run_checks(&a, &op, r);
    r->probes = a.probes;
    r->budget_hit = a.budget_hit;
    r->elapsed_ms = (long)(audit_now_ms() - t0);
    audit_grade(r);

    int status = op.min_grade != G_NONE && r->grade < op.min_grade ? EXIT_BELOW : 0;
    if (op.json) {
        if (audit_report_json(r, &err) < 0) {
            fprintf(stderr, "popsctl audit: %s\n", err.msg);
            status = EXIT_BELOW;
        }
    } else {
        const char *term = getenv("TERM");
        bool colour = isatty(STDOUT_FILENO) && getenv("NO_COLOR") == NULL &&
                      (term == NULL || strcmp(term, "dumb") != 0);
        audit_report_print(r, colour);
    }
    fflush(stdout);
    free(r);
    return status;
}
