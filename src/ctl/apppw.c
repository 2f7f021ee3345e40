/* `popsctl app-password`: per-device passwords a user can lose one at a time.
 * Made here from the CSPRNG, shown once, stored only as their hash. When the
 * user has TOTP (or must use MFA), making one needs a current code: whoever
 * can run popsctl as the admin still cannot mint a credential for a protected
 * account without its second factor at hand. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/apppw.h"
#include "auth/userdb.h"
#include "common/secret.h"
#include "common/strnum.h"
#include "conf/conf.h"
#include "ctl/ctl.h"

#define WHO "app-password"
#define MAX_DAYS 3650

static void usage(FILE *out)
{
    fprintf(out,
            "usage: popsctl [--db FILE] app-password COMMAND ...\n"
            "  app-password add USER --label LABEL [--expires DAYS|never]\n"
            "                   [--networks CIDR[,CIDR...]] [--totp CODE]\n"
            "      Makes a random app password for one device or client, prints it once\n"
            "      and stores only its hash. LABEL (1-%d bytes, not starting with '#')\n"
            "      names the device; --expires defaults to never (at most %d days);\n"
            "      --networks limits the sources it works from (default: any).\n"
            "      If USER has a confirmed TOTP secret or require-mfa, --totp CODE (a\n"
            "      current code, not used before; '-' reads it from stdin) is required.\n"
            "  app-password list USER\n"
            "      Label, created, expiry, last use and its source, networks (never the hash).\n"
            "  app-password revoke USER LABEL|#ID\n"
            "\n"
            "Exit status: 0 ok, 1 operational failure, 2 usage error.\n",
            USERDB_LABEL_MAX, MAX_DAYS);
}

struct args {
    const char *user;
    const char *label; /* add: --label; revoke: LABEL or #ID */
    const char *expires;
    const char *networks;
    const char *totp;
};

static int parse_expires(const char *in, int64_t *expires)
{
    uint32_t days;
    if (in == NULL || strcmp(in, "never") == 0) {
        *expires = 0;
        return 0;
    }
    if (strnum_u32_str(in, &days) < 0 || days == 0 || days > MAX_DAYS)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "--expires takes DAYS (1-%d) or 'never'", MAX_DAYS);
    *expires = (int64_t)time(NULL) + (int64_t)days * 86400;
    return 0;
}

/* The methods USER's policy allows (its own, else the configured default). */
static uint32_t effective_methods(const struct ctl_opts *o, const struct userdb_policy *p)
{
    return p->methods != 0 ? p->methods : o->conf->default_methods;
}

struct label_ctx {
    const char *label;
    bool found;
};

static int label_cb(void *ctx, const struct userdb_app_info *ai)
{
    struct label_ctx *l = ctx;
    l->found = strcmp(ai->label, l->label) == 0;
    return l->found;
}

static int cmd_add(const struct ctl_opts *o, struct userdb_admin *db, const struct args *a, const char *shown)
{
    char networks[USERDB_NETWORKS_MAX] = "", code[8] = "", pw[APPPW_LEN + 1], hash[APPPW_HASH_MAX];
    char label[4 * USERDB_LABEL_MAX + 1];
    int64_t expires = 0, id = 0;
    struct userdb_policy p;
    struct error err = {{0}};
    int r;
    if ((r = parse_expires(a->expires, &expires)) != 0 ||
        (a->networks != NULL &&
         (r = ctl_parse_networks(WHO, a->networks, networks, sizeof(networks))) != 0) ||
        (a->totp != NULL && (r = ctl_totp_read_code(WHO, a->totp, code)) != 0))
        return r;
    int e = userdb_admin_get_policy(db, a->user, &p, &err);
    if (e < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (e == 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "no such user '%s'", shown);
    /* A taken label is refused before the TOTP code is spent on it. */
    struct label_ctx taken = {.label = a->label};
    if (userdb_admin_app_list(db, a->user, label_cb, &taken, &err) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (taken.found)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "app password '%s' already exists for '%s'",
                        ctl_printable(a->label, label, sizeof(label)), shown);
    r = ctl_totp_gate(db, WHO, a->user, a->totp != NULL ? code : NULL, p.require_mfa);
    secret_wipe(code, sizeof(code));
    if (r != 0)
        return r;
    if (apppw_generate(pw) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "random generator failure");
    apppw_hash(pw, hash);
    if (hash[0] == '\0')
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "hashing the app password failed");
    else if (userdb_admin_app_add(db, a->user, a->label, hash, expires, networks, &id, &err) < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (r == 0) { /* shown only once it is stored */
        char line[sizeof("app password: \n") + APPPW_LEN];
        int n = snprintf(line, sizeof(line), "app password: %s\n", pw);
        r = ctl_write_secret(WHO, line, (size_t)n);
        secret_wipe(line, sizeof(line));
    }
    if (r == 0) {
        char when[64];
        printf("This app password will not be shown again: enter it in the mail client now.\n");
        fprintf(stderr, "popsctl app-password: added '%s' (#%lld) for '%s', expires %s\n",
                ctl_printable(a->label, label, sizeof(label)), (long long)id, shown,
                ctl_time(expires, "never", when, sizeof(when)));
        if (!(effective_methods(o, &p) & CONF_METHOD_APP))
            fprintf(stderr,
                    "popsctl app-password: note: the policy of '%s' does not allow app passwords; "
                    "this one works once it does (popsctl policy set %s --methods ...)\n",
                    shown, shown);
        if (!p.pop3_enabled)
            fprintf(stderr, "popsctl app-password: note: POP3 is off for '%s'\n", shown);
    }
    secret_wipe(pw, sizeof(pw));
    secret_wipe(hash, sizeof(hash));
    return r;
}

struct list_ctx {
    unsigned n;
    time_t now;
};

static int list_cb(void *ctx, const struct userdb_app_info *ai)
{
    struct list_ctx *l = ctx;
    char label[4 * USERDB_LABEL_MAX + 1], src[4 * sizeof(ai->last_source) + 1],
        nets[4 * USERDB_NETWORKS_MAX + 1];
    char created[64], expires[64], used[64];
    if (l->n++ == 0)
        printf("%-5s %-20s %-20s %-28s %-20s %-24s %s\n", "ID", "LABEL", "CREATED", "EXPIRES", "LAST USED",
               "FROM", "NETWORKS");
    bool expired = ai->expires != 0 && ai->expires <= l->now;
    ctl_time(ai->expires, "never", expires, sizeof(expires));
    printf("%-5lld %-20s %-20s %s%-*s %-20s %-24s %s\n", (long long)ai->id,
           ctl_printable(ai->label, label, sizeof(label)),
           ctl_time(ai->created, "-", created, sizeof(created)), expired ? "EXPIRED " : "", expired ? 20 : 28,
           expires, ctl_time(ai->last_used, "never", used, sizeof(used)),
           ai->last_source[0] != '\0' ? ctl_printable(ai->last_source, src, sizeof(src)) : "-",
           ai->networks[0] != '\0' ? ctl_printable(ai->networks, nets, sizeof(nets)) : "any");
    return 0;
}

static int cmd_list(struct userdb_admin *db, const struct args *a, const char *shown)
{
    struct list_ctx l = {.now = time(NULL)};
    struct error err = {{0}};
    if (userdb_admin_app_list(db, a->user, list_cb, &l, &err) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (l.n == 0)
        fprintf(stderr, "popsctl app-password: '%s' has no app passwords\n", shown);
    if (fflush(stdout) != 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "writing the list failed");
    return 0;
}

static int cmd_revoke(struct userdb_admin *db, const struct args *a, const char *shown)
{
    struct error err = {{0}};
    char label[4 * USERDB_LABEL_MAX + 16];
    ctl_printable(a->label, label, sizeof(label));
    int r = userdb_admin_app_revoke(db, a->user, a->label, &err);
    if (r < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (r == 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "'%s' has no app password '%s'", shown, label);
    fprintf(stderr, "popsctl app-password: revoked '%s' of '%s'\n", label, shown);
    return 0;
}

enum cmd { CMD_ADD, CMD_LIST, CMD_REVOKE };

/* Takes the value of --opt VALUE or --opt=VALUE; 1 if s was opt, -1 if its value is missing. */
static int opt_value(const char *opt, int argc, char **argv, int *i, const char **v)
{
    size_t n = strlen(opt);
    if (strncmp(argv[*i], opt, n) != 0)
        return 0;
    if (argv[*i][n] == '=') {
        *v = argv[*i] + n + 1;
        return 1;
    }
    if (argv[*i][n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *v = argv[++*i];
    return 1;
}

int ctl_apppw_main(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2 || ctl_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : 0;
    }
    enum cmd cmd;
    if (strcmp(argv[1], "add") == 0)
        cmd = CMD_ADD;
    else if (strcmp(argv[1], "list") == 0)
        cmd = CMD_LIST;
    else if (strcmp(argv[1], "revoke") == 0)
        cmd = CMD_REVOKE;
    else {
        ctl_fail(0, WHO, "unknown command '%s'", argv[1]);
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    struct args a = {0};
    static const char *const add_opts[] = {"--label", "--expires", "--networks", "--totp"};
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        int matched = 0;
        for (size_t k = 0; cmd == CMD_ADD && matched == 0 && k < sizeof(add_opts) / sizeof(add_opts[0]);
             k++) {
            const char **dst = k == 0 ? &a.label : k == 1 ? &a.expires : k == 2 ? &a.networks : &a.totp;
            if ((matched = opt_value(add_opts[k], argc, argv, &i, dst)) < 0)
                return ctl_fail(CTL_EXIT_USAGE, WHO, "%s needs a value", add_opts[k]);
        }
        if (matched)
            continue;
        if (s[0] == '-' && s[1] != '\0' && !(cmd == CMD_REVOKE && a.user != NULL))
            return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: unknown option %s (see popsctl app-password --help)",
                            argv[1], s);
        if (a.user == NULL)
            a.user = s;
        else if (cmd == CMD_REVOKE && a.label == NULL)
            a.label = s;
        else
            return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: unexpected argument (see popsctl app-password --help)",
                            argv[1]);
    }
    if (a.user == NULL)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: missing USER", argv[1]);
    if (cmd != CMD_LIST && (a.label == NULL || a.label[0] == '\0'))
        return ctl_fail(CTL_EXIT_USAGE, WHO,
                        cmd == CMD_ADD ? "add: --label LABEL is required" : "revoke: missing LABEL or #ID");
    if (cmd == CMD_ADD && (strnlen(a.label, USERDB_LABEL_MAX + 1) > USERDB_LABEL_MAX || a.label[0] == '#'))
        return ctl_fail(CTL_EXIT_USAGE, WHO, "--label: 1-%d bytes, not starting with '#'", USERDB_LABEL_MAX);
    struct userdb_admin *db = NULL;
    int r = ctl_open_db(o, WHO, &db);
    if (r != 0)
        return r;
    char shown[4 * USERDB_NAME_MAX + 1];
    ctl_printable(a.user, shown, sizeof(shown));
    switch (cmd) {
    case CMD_ADD: r = cmd_add(o, db, &a, shown); break;
    case CMD_LIST: r = cmd_list(db, &a, shown); break;
    case CMD_REVOKE: r = cmd_revoke(db, &a, shown); break;
    }
    userdb_admin_close(&db);
    return r;
}
