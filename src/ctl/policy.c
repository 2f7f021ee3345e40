/* `popsctl policy`: per-user login policy. Which credentials may open POP3
 * (methods; none set = the config's [userdb] methods), from which sources,
 * whether the account password is refused in favour of MFA-guarded app
 * passwords (require-mfa), and whether POP3 is on at all. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "auth/totp.h"
#include "auth/userdb.h"
#include "common/secret.h"
#include "common/strnum.h"
#include "conf/conf.h"
#include "ctl/ctl.h"

#define WHO "policy"

static const struct {
    const char *name;
    uint32_t bit;
} methods[] = {
    {"password", CONF_METHOD_PASSWORD},
    {"app", CONF_METHOD_APP},
    {"oauth", CONF_METHOD_OAUTH},
    {"scram", CONF_METHOD_SCRAM},
};
#define N_METHODS (sizeof(methods) / sizeof(methods[0]))

static void usage(FILE *out)
{
    fprintf(out, "usage: popsctl [--db FILE] policy COMMAND ...\n"
                 "  policy show USER\n"
                 "  policy set USER [--methods password,app,oauth,scram|default]\n"
                 "                  [--networks CIDR[,CIDR...]|any] [--require-mfa yes|no] [--pop3 on|off]\n"
                 "\n"
                 "--methods    credentials that may open POP3: the account password (PLAIN,\n"
                 "             USER/PASS), app passwords, OAuth 2.0 tokens, SCRAM-SHA-256;\n"
                 "             'default' follows the config's [userdb] methods.\n"
                 "--networks   sources allowed to log in as USER ('any' lifts the limit).\n"
                 "--require-mfa yes: the account password never opens POP3, and app passwords\n"
                 "             can only be made with a TOTP code (enrol with popsctl totp).\n"
                 "--pop3 off   refuses every POP3 login of USER.\n"
                 "Exit status: 0 ok, 1 operational failure, 2 usage error.\n");
}

static void methods_text(uint32_t bits, char *out, size_t outsz)
{
    size_t o = 0;
    out[0] = '\0';
    for (size_t i = 0; i < N_METHODS; i++)
        if ((bits & methods[i].bit) && o < outsz)
            o += (size_t)snprintf(out + o, outsz - o, "%s%s", o > 0 ? "," : "", methods[i].name);
    if (out[0] == '\0')
        snprintf(out, outsz, "none");
}

/* "password,app" (commas or spaces) or "default" (= 0). 0 or CTL_EXIT_USAGE. */
static int parse_methods(const char *in, uint32_t *bits)
{
    *bits = 0;
    if (strcmp(in, "default") == 0)
        return 0;
    const char *p = in;
    while (*p != '\0') {
        size_t n = strcspn(p, ", ");
        if (n > 0) {
            size_t i = 0;
            while (i < N_METHODS && !(strlen(methods[i].name) == n && strncmp(methods[i].name, p, n) == 0))
                i++;
            if (i == N_METHODS)
                return ctl_fail(CTL_EXIT_USAGE, WHO,
                                "--methods: unknown method '%.*s' (password, app, oauth, "
                                "scram, or 'default')",
                                (int)(n > 32 ? 32 : n), p);
            *bits |= methods[i].bit;
        }
        p += n;
        p += strspn(p, ", ");
    }
    if (*bits == 0)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "--methods needs at least one method, or 'default'");
    return 0;
}

/* -1 error (printed), 0 none, 1 pending, 2 confirmed. */
static int totp_state(struct userdb_admin *db, const char *user)
{
    char secret[TOTP_SECRET_B32_MAX];
    bool confirmed = false;
    int64_t last = 0;
    struct error err = {{0}};
    int r = userdb_admin_totp_get(db, user, secret, sizeof(secret), &confirmed, &last, &err);
    secret_wipe(secret, sizeof(secret));
    if (r < 0)
        return ctl_fail(-1, WHO, "%s", err.msg);
    return r == 0 ? 0 : confirmed ? 2 : 1;
}

static int count_cb(void *ctx, const struct userdb_app_info *ai)
{
    (*(unsigned *)ctx)++;
    return 0;
}

static int show(const struct ctl_opts *o, struct userdb_admin *db, const char *user, const char *shown,
                const struct userdb_policy *p)
{
    char m[64], def[64], nets[4 * USERDB_NETWORKS_MAX + 1];
    unsigned apps = 0;
    struct error err = {{0}};
    int t = totp_state(db, user);
    if (t < 0)
        return CTL_EXIT_OPFAIL;
    if (userdb_admin_app_list(db, user, count_cb, &apps, &err) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    methods_text(p->methods, m, sizeof(m));
    methods_text(o->conf->default_methods, def, sizeof(def));
    printf("user:          %s\n", shown);
    if (p->methods == 0)
        printf("methods:       default (%s)\n", def);
    else
        printf("methods:       %s\n", m);
    printf("networks:      %s\n", p->networks[0] ? ctl_printable(p->networks, nets, sizeof(nets)) : "any");
    printf("require-mfa:   %s\n", p->require_mfa ? "yes" : "no");
    printf("pop3:          %s\n", p->pop3_enabled ? "on" : "off");
    printf("totp:          %s\n", t == 0 ? "none" : t == 1 ? "pending (not confirmed)" : "confirmed");
    printf("app-passwords: %u\n", apps);
    return 0;
}

/* Notes on combinations that are allowed but probably not meant. */
static void warn(const struct ctl_opts *o, struct userdb_admin *db, const char *user, const char *shown,
                 const struct userdb_policy *p)
{
    uint32_t eff = p->methods != 0 ? p->methods : o->conf->default_methods;
    if (p->require_mfa && (eff & ~(uint32_t)CONF_METHOD_PASSWORD) == 0)
        fprintf(stderr,
                "popsctl policy: note: with require-mfa the account password does not open POP3 and no "
                "other method is allowed: '%s' cannot log in\n",
                shown);
    if (p->require_mfa && (eff & CONF_METHOD_APP) && totp_state(db, user) != 2)
        fprintf(stderr,
                "popsctl policy: note: '%s' has no confirmed TOTP secret; app passwords can be made "
                "once one is enrolled (popsctl totp enroll)\n",
                shown);
}

struct args {
    const char *user;
    const char *methods, *networks, *require_mfa, *pop3;
};

/* What set changes, parsed before the database is opened. */
struct change {
    bool methods, networks, require_mfa, pop3;
    struct userdb_policy v;
};

static int parse_change(const struct args *a, struct change *c)
{
    int r;
    if ((c->methods = a->methods != NULL) && (r = parse_methods(a->methods, &c->v.methods)) != 0)
        return r;
    if ((c->networks = a->networks != NULL) &&
        (r = ctl_parse_networks(WHO, a->networks, c->v.networks, sizeof(c->v.networks))) != 0)
        return r;
    if ((c->require_mfa = a->require_mfa != NULL) && strnum_bool(a->require_mfa, &c->v.require_mfa) < 0)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "--require-mfa takes yes or no");
    if ((c->pop3 = a->pop3 != NULL) && strnum_bool(a->pop3, &c->v.pop3_enabled) < 0)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "--pop3 takes on or off");
    return 0;
}

static int cmd_set(const struct ctl_opts *o, struct userdb_admin *db, const char *user, const char *shown,
                   const struct change *c, struct userdb_policy *p)
{
    struct error err = {{0}};
    if (c->methods)
        p->methods = c->v.methods;
    if (c->networks)
        memcpy(p->networks, c->v.networks, sizeof(p->networks));
    if (c->require_mfa)
        p->require_mfa = c->v.require_mfa;
    if (c->pop3)
        p->pop3_enabled = c->v.pop3_enabled;
    if (userdb_admin_set_policy(db, user, p, &err) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    fprintf(stderr, "popsctl policy: updated '%s'\n", shown);
    warn(o, db, user, shown, p);
    return show(o, db, user, shown, p);
}

int ctl_policy_main(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2 || ctl_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : 0;
    }
    bool set = strcmp(argv[1], "set") == 0;
    if (!set && strcmp(argv[1], "show") != 0) {
        ctl_fail(0, WHO, "unknown command '%s'", argv[1]);
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    struct args a = {0};
    static const char *const opts[] = {"--methods", "--networks", "--require-mfa", "--pop3"};
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        size_t k = 0;
        while (set && k < sizeof(opts) / sizeof(opts[0]) && strcmp(s, opts[k]) != 0)
            k++;
        if (set && k < sizeof(opts) / sizeof(opts[0])) {
            if (i + 1 >= argc)
                return ctl_fail(CTL_EXIT_USAGE, WHO, "%s needs a value", s);
            const char **dst = k == 0 ? &a.methods : k == 1 ? &a.networks : k == 2 ? &a.require_mfa : &a.pop3;
            *dst = argv[++i];
        } else if (s[0] == '-' && s[1] != '\0') {
            return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: unknown option %s (see popsctl policy --help)", argv[1],
                            s);
        } else if (a.user == NULL) {
            a.user = s;
        } else {
            return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: unexpected argument (see popsctl policy --help)",
                            argv[1]);
        }
    }
    if (a.user == NULL)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: missing USER", argv[1]);
    if (set && a.methods == NULL && a.networks == NULL && a.require_mfa == NULL && a.pop3 == NULL)
        return ctl_fail(CTL_EXIT_USAGE, WHO,
                        "set: nothing to change (--methods, --networks, --require-mfa, --pop3)");
    struct change c = {0};
    int r = set ? parse_change(&a, &c) : 0;
    if (r != 0)
        return r;
    struct userdb_admin *db = NULL;
    r = ctl_open_db(o, WHO, &db);
    if (r != 0)
        return r;
    char shown[4 * USERDB_NAME_MAX + 1];
    ctl_printable(a.user, shown, sizeof(shown));
    struct userdb_policy p;
    struct error err = {{0}};
    int e = userdb_admin_get_policy(db, a.user, &p, &err);
    if (e < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    else if (e == 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "no such user '%s'", shown);
    else
        r = set ? cmd_set(o, db, a.user, shown, &c, &p) : show(o, db, a.user, shown, &p);
    userdb_admin_close(&db);
    return r;
}
