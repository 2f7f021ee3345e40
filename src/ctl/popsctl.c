/* popsctl: popsd's admin and audit tool. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/netlist.h"
#include "auth/userdb.h"
#include "conf/conf.h"
#include "ctl/ctl.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: popsctl [-c CONFIG] [--db FILE] COMMAND ...\n"
            "  user add NAME [--mail PATH] [--generate]   add a user (password from stdin or generated)\n"
            "  user passwd NAME [--generate]              set a user's password\n"
            "  user del NAME                              delete a user\n"
            "  user list [--json]                         list users\n"
            "  totp enroll USER [--issuer NAME] [--no-qr] start TOTP enrolment: otpauth URI and QR code\n"
            "  totp confirm USER CODE                     activate it with a code from the app\n"
            "  totp status USER                           show whether USER has TOTP\n"
            "  totp remove USER --code CODE               remove USER's TOTP secret\n"
            "  app-password add USER --label LABEL [--expires DAYS|never]\n"
            "               [--networks CIDR[,CIDR...]] [--totp CODE]\n"
            "                                             make an app password (shown once)\n"
            "  app-password list USER                     list USER's app passwords\n"
            "  app-password revoke USER LABEL|#ID         revoke one\n"
            "  policy show USER                           show USER's login policy\n"
            "  policy set USER [--methods password,app,oauth,scram|default]\n"
            "             [--networks CIDR,...|any] [--require-mfa yes|no] [--pop3 on|off]\n"
            "  bans | unban ADDRESS/BITS                  list or lift the defence engine's bans\n"
            "  locks | unlock USER                        accounts locked for unknown sources\n"
            "  events USER                                recent authentication events of a user\n"
            "  guard-stats                                sizes of the defence tables\n"
            "  audit HOST [--port N] [--starttls] ...     check a POP3S server's hardening (audit --help)\n"
            "A TOTP CODE may be given as '-' to read it from stdin. COMMAND --help has the details.\n"
            "The user database is the config's [userdb] path (default " CONF_PATH_DEFAULT "), or --db FILE\n"
            "(with --db alone, the [passwords] and [userdb] defaults apply; add -c CONFIG for yours).\n");
}

/* ---- helpers shared by the user-database commands ---- */

int ctl_fail(int status, const char *who, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "popsctl %s: ", who);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}

const char *ctl_printable(const char *s, char *dst, size_t dstsz)
{
    size_t o = 0;
    for (; *s != '\0' && o + 5 < dstsz; s++) {
        unsigned char c = (unsigned char)*s;
        if (c < 0x20 || c == 0x7f || c == '\\')
            o += (size_t)snprintf(dst + o, dstsz - o, "\\x%02x", c);
        else
            dst[o++] = (char)c;
    }
    dst[o] = '\0';
    return dst;
}

int ctl_open_db(const struct ctl_opts *o, const char *who, struct userdb_admin **db)
{
    if (o == NULL || o->db_path == NULL || o->db_path[0] == '\0' || o->conf == NULL)
        return ctl_fail(CTL_EXIT_USAGE, who, "no user database: give --db FILE or set the userdb path in the config");
    struct error err = {{0}};
    if (userdb_admin_open(o->db_path, db, &err) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, who, "%s", err.msg);
    return 0;
}

int ctl_write_secret(const char *who, const char *s, size_t len)
{
    fflush(stdout); /* what was printed before comes first */
    for (size_t off = 0; off < len;) {
        ssize_t w = write(STDOUT_FILENO, s + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return ctl_fail(CTL_EXIT_OPFAIL, who, "writing to stdout: %s", strerror(errno));
        off += (size_t)w;
    }
    return 0;
}

const char *ctl_time(long long t, const char *never_text, char *dst, size_t dstsz)
{
    if (t == 0) {
        snprintf(dst, dstsz, "%s", never_text);
        return dst;
    }
    time_t tt = (time_t)t;
    struct tm tm;
    if (gmtime_r(&tt, &tm) == NULL || strftime(dst, dstsz, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(dst, dstsz, "@%lld", t);
    return dst;
}

int ctl_parse_networks(const char *who, const char *in, char *out, size_t outsz)
{
    struct error err = {{0}};
    if (strcmp(in, "any") == 0) {
        out[0] = '\0';
        return 0;
    }
    size_t n = strlen(in);
    if (n == 0)
        return ctl_fail(CTL_EXIT_USAGE, who, "--networks needs CIDR[,CIDR...] or 'any'");
    if (n >= outsz)
        return ctl_fail(CTL_EXIT_USAGE, who, "--networks: list longer than %zu bytes", outsz - 1);
    for (size_t i = 0; i <= n; i++)
        out[i] = in[i] == ',' ? ' ' : in[i];
    if (netlist_check(out, &err) < 0)
        return ctl_fail(CTL_EXIT_USAGE, who, "--networks: %s", err.msg);
    return 0;
}

bool ctl_is_help(const char *s)
{
    return strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0 || strcmp(s, "help") == 0;
}

/* The user-database commands need its path and the settings for what they
 * write ([passwords], scram_iterations, default methods): from the config, or
 * the defaults when only --db is given (a database being set up before popsd). */
static int load_db_conf(struct ctl_opts *o, bool wants_help)
{
    static struct conf c;
    if (wants_help)
        return 0;
    if (o->db_path != NULL && o->config_path == NULL) {
        conf_defaults(&c);
    } else {
        struct error err = {{0}};
        const char *path = o->config_path ? o->config_path : CONF_PATH_DEFAULT;
        if (conf_load(path, &c, &err) < 0) {
            fprintf(stderr, "popsctl: %s (or give --db FILE)\n", err.msg);
            return 1;
        }
        if (o->db_path == NULL && c.userdb_driver != CONF_USERDB_SQLITE) {
            fprintf(stderr, "popsctl: the configured user database is a passwd-file (%s); edit it directly\n",
                    c.userdb_path);
            return 1;
        }
        if (o->db_path == NULL)
            o->db_path = c.userdb_path;
    }
    o->conf = &c;
    return 0;
}

static const struct {
    const char *name;
    int (*run)(const struct ctl_opts *o, int argc, char **argv);
} db_cmds[] = {
    {"user", ctl_user_main},
    {"totp", ctl_totp_main},
    {"app-password", ctl_apppw_main},
    {"policy", ctl_policy_main},
};

int main(int argc, char **argv)
{
    struct ctl_opts o = {.config_path = NULL, .db_path = NULL, .conf = NULL};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "-c") == 0)
            o.config_path = argv[++i];
        else if (strcmp(argv[i], "--db") == 0)
            o.db_path = argv[++i];
        else {
            fprintf(stderr, "popsctl: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "audit") == 0)
        return ctl_audit_main(&o, argc - i, argv + i);
    if (strcmp(cmd, "bans") == 0 || strcmp(cmd, "unban") == 0 || strcmp(cmd, "locks") == 0 ||
        strcmp(cmd, "unlock") == 0 || strcmp(cmd, "events") == 0 || strcmp(cmd, "guard-stats") == 0)
        return ctl_defence_main(&o, argc - i, argv + i);
    for (size_t k = 0; k < sizeof(db_cmds) / sizeof(db_cmds[0]); k++) {
        if (strcmp(cmd, db_cmds[k].name) != 0)
            continue;
        /* Help needs no config (there may be none yet). */
        bool wants_help = argc - i >= 2 && ctl_is_help(argv[i + 1]);
        for (int j = i + 1; j < argc && !wants_help; j++)
            wants_help = strcmp(argv[j], "--help") == 0 || strcmp(argv[j], "-h") == 0;
        if (load_db_conf(&o, wants_help) != 0)
            return 1;
        return db_cmds[k].run(&o, argc - i, argv + i);
    }
    fprintf(stderr, "popsctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
