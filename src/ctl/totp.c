/* `popsctl totp`: enrol, confirm, show and remove a user's TOTP secret, and
 * the second-factor check other commands ask for (ctl_totp_gate). An
 * enrolment stays pending, unused by anything, until a code from the app
 * proves the secret reached it. Every accepted code's time step is recorded,
 * so the same code never works twice. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth/totp.h"
#include "auth/userdb.h"
#include "common/secret.h"
#include "ctl/ctl.h"
#include "ctl/qr.h"

#define WHO "totp"
#define DEFAULT_ISSUER "popsd"
#define CODE_INPUT_MAX 32
#define SHOW_MAX (64 * 1024) /* URI + QR code; a version-40 code drawn is ~52 KiB */

static void usage(FILE *out)
{
    fprintf(out,
            "usage: popsctl [--db FILE] totp COMMAND ...\n"
            "  totp enroll USER [--issuer NAME] [--no-qr]\n"
            "      Makes a new secret for USER, pending until confirmed, and prints its\n"
            "      otpauth:// URI and a QR code to scan with an authenticator app\n"
            "      (issuer default \"" DEFAULT_ISSUER "\"). A pending secret is replaced by a new\n"
            "      enrolment; a confirmed one must be removed first.\n"
            "  totp confirm USER CODE\n"
            "      Activates the pending secret with a current code from the app.\n"
            "  totp status USER\n"
            "      none, pending or confirmed, and when a code was last used.\n"
            "  totp remove USER --code CODE\n"
            "      Removes USER's secret; a confirmed one needs a current code.\n"
            "\n"
            "Codes are %d digits, valid %d s (one step of clock drift either way) and\n"
            "only once. CODE '-' reads it from stdin.\n"
            "Exit status: 0 ok, 1 operational failure (wrong code...), 2 usage error.\n",
            TOTP_DIGITS, TOTP_PERIOD);
}

/* ---- reading and checking codes ---- */

static int normalise_code(const char *who, const char *in, char code[8])
{
    size_t n = 0;
    for (; *in != '\0'; in++) {
        if (*in == ' ')
            continue;
        if (n == 7 || *in < '0' || *in > '9')
            break;
        code[n++] = *in;
    }
    code[n] = '\0';
    if (*in != '\0' || !totp_code_syntax_ok(code)) {
        secret_wipe(code, 8);
        return ctl_fail(CTL_EXIT_USAGE, who, "a TOTP code is %d digits", TOTP_DIGITS);
    }
    return 0;
}

int ctl_totp_read_code(const char *who, const char *arg, char code[8])
{
    if (strcmp(arg, "-") != 0)
        return normalise_code(who, arg, code);
    char line[CODE_INPUT_MAX + 1];
    size_t n = 0;
    for (;;) { /* byte by byte: what follows on stdin is not ours */
        char c;
        ssize_t r = read(STDIN_FILENO, &c, 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ctl_fail(CTL_EXIT_OPFAIL, who, "reading the code: %s", strerror(errno));
        if (r == 0 || c == '\n')
            break;
        if (n == CODE_INPUT_MAX) {
            secret_wipe(line, sizeof(line));
            return ctl_fail(CTL_EXIT_USAGE, who, "a TOTP code is %d digits", TOTP_DIGITS);
        }
        line[n++] = c;
    }
    if (n > 0 && line[n - 1] == '\r')
        n--;
    line[n] = '\0';
    int r = normalise_code(who, line, code);
    secret_wipe(line, sizeof(line));
    return r;
}

/* 1 if the user exists, else an exit status (message printed). */
static int user_exists(struct userdb_admin *db, const char *who, const char *user, struct userdb_policy *p)
{
    struct error err = {{0}};
    char shown[4 * USERDB_NAME_MAX + 1];
    int r = userdb_admin_get_policy(db, user, p, &err);
    if (r < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, who, "%s", err.msg);
    if (r == 0)
        return ctl_fail(CTL_EXIT_OPFAIL, who, "no such user '%s'", ctl_printable(user, shown, sizeof(shown)));
    return 1;
}

/* Checks code against secret and records its step. 0, or an exit status. */
static int accept_code(struct userdb_admin *db, const char *who, const char *user, const char *secret,
                       int64_t last_step, const char *code)
{
    struct error err = {{0}};
    int64_t step = 0;
    switch (totp_verify(secret, code, time(NULL), last_step, &step, &err)) {
    case TOTP_OK: break;
    case TOTP_WRONG:
        return ctl_fail(CTL_EXIT_OPFAIL, who,
                        "wrong TOTP code (is the app's clock right, and is it the entry "
                        "for this user?)");
    case TOTP_REPLAYED:
        return ctl_fail(CTL_EXIT_OPFAIL, who, "TOTP code already used; wait for the next one");
    default: return ctl_fail(CTL_EXIT_OPFAIL, who, "%s", err.msg);
    }
    int r = userdb_admin_totp_use_step(db, user, step, &err);
    if (r < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, who, "%s", err.msg);
    if (r == 0) /* another popsctl took the same code in between */
        return ctl_fail(CTL_EXIT_OPFAIL, who, "TOTP code already used; wait for the next one");
    return 0;
}

int ctl_totp_gate(struct userdb_admin *db, const char *who, const char *user, const char *code,
                  bool require_mfa)
{
    char secret[TOTP_SECRET_B32_MAX];
    bool confirmed = false;
    int64_t last = 0;
    struct error err = {{0}};
    char shown[4 * USERDB_NAME_MAX + 1];
    ctl_printable(user, shown, sizeof(shown));
    int r = userdb_admin_totp_get(db, user, secret, sizeof(secret), &confirmed, &last, &err);
    if (r < 0) {
        r = ctl_fail(CTL_EXIT_OPFAIL, who, "%s", err.msg);
    } else if (r == 0 || !confirmed) {
        if (require_mfa)
            r = ctl_fail(CTL_EXIT_OPFAIL, who,
                         "'%s' must use MFA (require-mfa) but has no confirmed TOTP "
                         "secret: enrol TOTP first (popsctl totp enroll)",
                         shown);
        else if (code != NULL)
            r = ctl_fail(CTL_EXIT_USAGE, who, "a TOTP code was given but '%s' has no confirmed TOTP secret",
                         shown);
        else
            r = 0;
    } else if (code == NULL) {
        r = ctl_fail(CTL_EXIT_OPFAIL, who,
                     "'%s' has TOTP: a current code is required (--totp CODE, or "
                     "--totp - to read it from stdin)",
                     shown);
    } else {
        r = accept_code(db, who, user, secret, last, code);
    }
    secret_wipe(secret, sizeof(secret));
    return r;
}

/* ---- subcommands ---- */

struct args {
    const char *user;
    const char *issuer;
    const char *code_arg;
    bool no_qr;
};

/* Appends to a fixed buffer that is wiped after use (it holds the secret). */
static void add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void add(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (*len < cap) {
        int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
        *len = n < 0 ? cap : *len + (size_t)n;
    }
    va_end(ap);
}

static int show_enrolment(const struct args *a, const char *secret, const char *shown)
{
    static char out[SHOW_MAX], qr[SHOW_MAX];
    char uri[TOTP_URI_MAX];
    struct error err = {{0}};
    size_t len = 0;
    int r = 0;
    if (totp_uri(a->issuer, a->user, secret, uri, sizeof(uri), &err) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (!a->no_qr && qr_render(uri, isatty(STDOUT_FILENO) == 1, qr, sizeof(qr), &err) < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s (use --no-qr and type the URI or key)", err.msg);
    if (r == 0) {
        add(out, sizeof(out), &len, "TOTP enrolment for '%s' (pending until confirmed).\n", shown);
        add(out, sizeof(out), &len, "Scan this with an authenticator app, or open the URI on the phone:\n\n");
        if (!a->no_qr)
            add(out, sizeof(out), &len, "%s\n", qr);
        add(out, sizeof(out), &len, "%s\n\nKey for typing it in: ", uri);
        for (size_t i = 0; secret[i] != '\0'; i++)
            add(out, sizeof(out), &len, "%s%c", i > 0 && i % 4 == 0 ? " " : "", secret[i]);
        add(out, sizeof(out), &len,
            "\n(SHA-1, %d digits, %d s)\n\nThen confirm with a code the app shows:\n"
            "  popsctl totp confirm %s CODE\n",
            TOTP_DIGITS, TOTP_PERIOD, shown);
        r = len >= sizeof(out) ? ctl_fail(CTL_EXIT_OPFAIL, WHO, "output too long")
                               : ctl_write_secret(WHO, out, len);
    }
    secret_wipe(out, sizeof(out));
    secret_wipe(qr, sizeof(qr));
    secret_wipe(uri, sizeof(uri));
    return r;
}

static int cmd_enroll(struct userdb_admin *db, const struct args *a, const char *shown)
{
    struct userdb_policy p;
    struct error err = {{0}};
    char secret[TOTP_SECRET_B32_MAX];
    bool confirmed = false;
    int64_t last = 0;
    int r = user_exists(db, WHO, a->user, &p);
    if (r != 1)
        return r;
    r = userdb_admin_totp_get(db, a->user, secret, sizeof(secret), &confirmed, &last, &err);
    secret_wipe(secret, sizeof(secret));
    if (r < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (r == 1 && confirmed)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO,
                        "'%s' already has a confirmed TOTP secret; remove it first "
                        "(popsctl totp remove %s --code CODE)",
                        shown, shown);
    if (totp_secret_new(secret, &err) < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (userdb_admin_totp_set(db, a->user, secret, false, &err) < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    else
        r = show_enrolment(a, secret, shown);
    secret_wipe(secret, sizeof(secret));
    return r;
}

static int cmd_confirm(struct userdb_admin *db, const struct args *a, const char *shown)
{
    struct userdb_policy p;
    struct error err = {{0}};
    char secret[TOTP_SECRET_B32_MAX], code[8];
    bool confirmed = false;
    int64_t last = 0;
    int r = ctl_totp_read_code(WHO, a->code_arg, code);
    if (r != 0)
        return r;
    if ((r = user_exists(db, WHO, a->user, &p)) != 1)
        return r;
    r = userdb_admin_totp_get(db, a->user, secret, sizeof(secret), &confirmed, &last, &err);
    if (r < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    else if (r == 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "'%s' has no TOTP enrolment (popsctl totp enroll %s)", shown,
                     shown);
    else if (confirmed)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "'%s' already has a confirmed TOTP secret", shown);
    else if ((r = accept_code(db, WHO, a->user, secret, last, code)) == 0 &&
             userdb_admin_totp_set(db, a->user, secret, true, &err) < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    if (r == 0)
        fprintf(stderr, "popsctl totp: TOTP confirmed for '%s'\n", shown);
    secret_wipe(secret, sizeof(secret));
    secret_wipe(code, sizeof(code));
    return r;
}

static int cmd_status(struct userdb_admin *db, const struct args *a, const char *shown)
{
    struct userdb_policy p;
    struct error err = {{0}};
    char secret[TOTP_SECRET_B32_MAX], when[64];
    bool confirmed = false;
    int64_t last = 0;
    int r = user_exists(db, WHO, a->user, &p);
    if (r != 1)
        return r;
    r = userdb_admin_totp_get(db, a->user, secret, sizeof(secret), &confirmed, &last, &err);
    secret_wipe(secret, sizeof(secret));
    if (r < 0)
        return ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    printf("user:         %s\n", shown);
    printf("totp:         %s\n", r == 0 ? "none" : confirmed ? "confirmed" : "pending (not confirmed)");
    if (r == 1)
        printf("last code:    %s\n",
               ctl_time(last > 0 ? (long long)last * TOTP_PERIOD : 0, "never", when, sizeof(when)));
    printf("require-mfa:  %s\n", p.require_mfa ? "yes" : "no");
    return 0;
}

static int cmd_remove(struct userdb_admin *db, const struct args *a, const char *shown)
{
    struct userdb_policy p;
    struct error err = {{0}};
    char secret[TOTP_SECRET_B32_MAX], code[8] = "";
    bool confirmed = false;
    int64_t last = 0;
    int r = a->code_arg != NULL ? ctl_totp_read_code(WHO, a->code_arg, code) : 0;
    if (r != 0)
        return r;
    if ((r = user_exists(db, WHO, a->user, &p)) != 1)
        return r;
    r = userdb_admin_totp_get(db, a->user, secret, sizeof(secret), &confirmed, &last, &err);
    if (r < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    else if (r == 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "'%s' has no TOTP secret", shown);
    else if (confirmed && a->code_arg == NULL)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO,
                     "removing a confirmed TOTP secret needs a current code (--code CODE)");
    else if (a->code_arg != NULL && (r = accept_code(db, WHO, a->user, secret, last, code)) != 0)
        ; /* message printed */
    else if (userdb_admin_totp_set(db, a->user, "", false, &err) < 0)
        r = ctl_fail(CTL_EXIT_OPFAIL, WHO, "%s", err.msg);
    else
        r = 0;
    if (r == 0) {
        fprintf(stderr, "popsctl totp: TOTP removed for '%s'\n", shown);
        if (p.require_mfa)
            fprintf(stderr,
                    "popsctl totp: note: '%s' has require-mfa: no new app password can be made "
                    "until TOTP is enrolled again\n",
                    shown);
    }
    secret_wipe(secret, sizeof(secret));
    secret_wipe(code, sizeof(code));
    return r;
}

/* ---- argument parsing ---- */

enum cmd { CMD_ENROLL, CMD_CONFIRM, CMD_STATUS, CMD_REMOVE };

static const struct {
    const char *name;
    enum cmd cmd;
} cmds[] = {
    {"enroll", CMD_ENROLL}, {"enrol", CMD_ENROLL},  {"confirm", CMD_CONFIRM},
    {"status", CMD_STATUS}, {"remove", CMD_REMOVE},
};

int ctl_totp_main(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2 || ctl_is_help(argv[1])) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CTL_EXIT_USAGE : 0;
    }
    size_t c = 0;
    while (c < sizeof(cmds) / sizeof(cmds[0]) && strcmp(argv[1], cmds[c].name) != 0)
        c++;
    if (c == sizeof(cmds) / sizeof(cmds[0])) {
        ctl_fail(0, WHO, "unknown command '%s'", argv[1]);
        usage(stderr);
        return CTL_EXIT_USAGE;
    }
    enum cmd cmd = cmds[c].cmd;
    struct args a = {.issuer = DEFAULT_ISSUER};
    int npos = 0;
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (cmd == CMD_ENROLL && strcmp(s, "--issuer") == 0) {
            if (i + 1 >= argc)
                return ctl_fail(CTL_EXIT_USAGE, WHO, "--issuer needs a NAME");
            a.issuer = argv[++i];
        } else if (cmd == CMD_ENROLL && strcmp(s, "--no-qr") == 0) {
            a.no_qr = true;
        } else if (cmd == CMD_REMOVE && strcmp(s, "--code") == 0) {
            if (i + 1 >= argc)
                return ctl_fail(CTL_EXIT_USAGE, WHO, "--code needs a CODE (or '-')");
            a.code_arg = argv[++i];
        } else if (s[0] == '-' && s[1] != '\0' && !(cmd == CMD_CONFIRM && npos == 1)) {
            return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: unknown option %s (see popsctl totp --help)", argv[1],
                            s);
        } else if (npos == 0) {
            a.user = s;
            npos++;
        } else if (cmd == CMD_CONFIRM && npos == 1) {
            a.code_arg = s;
            npos++;
        } else {
            return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: unexpected argument (see popsctl totp --help)",
                            argv[1]);
        }
    }
    if (a.user == NULL)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "%s: missing USER", argv[1]);
    if (cmd == CMD_CONFIRM && a.code_arg == NULL)
        return ctl_fail(CTL_EXIT_USAGE, WHO, "confirm: missing CODE");
    if (!totp_issuer_valid(a.issuer))
        return ctl_fail(CTL_EXIT_USAGE, WHO,
                        "--issuer must be 1-%d characters without ':' or control characters",
                        TOTP_ISSUER_MAX);
    struct userdb_admin *db = NULL;
    int r = ctl_open_db(o, WHO, &db);
    if (r != 0)
        return r;
    char shown[4 * USERDB_NAME_MAX + 1];
    ctl_printable(a.user, shown, sizeof(shown));
    switch (cmd) {
    case CMD_ENROLL: r = cmd_enroll(db, &a, shown); break;
    case CMD_CONFIRM: r = cmd_confirm(db, &a, shown); break;
    case CMD_STATUS: r = cmd_status(db, &a, shown); break;
    case CMD_REMOVE: r = cmd_remove(db, &a, shown); break;
    }
    userdb_admin_close(&db);
    return r;
}
