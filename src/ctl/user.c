/* `popsctl user`: add, passwd, del and list users in the SQLite database.
 * Passwords come from stdin (one line; prompted twice without echo on a
 * terminal) or are generated. A typed one must pass the [passwords] checks
 * (auth/pwcheck.h). Both the Argon2id hash and the SCRAM-SHA-256 keys are
 * made here, so the database only ever sees verifiers. Exit status: 0 ok,
 * 1 operational failure, 2 usage error. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/pwcheck.h"
#include "auth/pwscheme.h"
#include "auth/userdb.h"
#include "common/secret.h"
#include "common/strnum.h"
#include "conf/conf.h"
#include "ctl/ctl.h"
#include "sasl/scram.h"

#define EXIT_OPFAIL CTL_EXIT_OPFAIL
#define EXIT_USAGE CTL_EXIT_USAGE

/* Same bound as pwscheme_hash: longer passwords could never be verified. */
#define PW_MAX_BYTES 512
#define GEN_LEN 20
/* No 0/O/o, 1/l/I: the generated password is read off a screen and typed. */
static const char gen_alphabet[] = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz";

static void usage(FILE *out)
{
    fprintf(out,
            "usage: popsctl [--db FILE] user COMMAND ...\n"
            "  user add NAME [--mail PATH] [--generate]   add a user\n"
            "  user passwd NAME [--generate]              set a user's password\n"
            "  user del NAME                              delete a user\n"
            "  user list [--json]                         list users (never their hashes)\n"
            "\n"
            "The password is read from stdin: one line, the trailing newline removed\n"
            "(on a terminal it is asked twice, without echo), at most %d bytes. It must\n"
            "pass the config's [passwords] checks: min_length characters (default 12),\n"
            "libpwquality's dictionary, user-name and pattern checks with a score of at\n"
            "least min_quality, and not be in breached_list. There is no override.\n"
            "--generate makes a %d-character password instead and prints it once on\n"
            "stdout as \"password: ...\".\n"
            "--mail PATH sets an absolute Maildir path overriding the config's template.\n"
            "\n"
            "Passwords are hashed with Argon2id (t=%u, m=%u KiB, p=%u), and SCRAM-SHA-256\n"
            "keys are derived with [userdb] scram_iterations. For tests only, the\n"
            "environment can change the Argon2 cost: POPSD_ARGON2_M_KIB (memory, KiB,\n"
            ">= 8) and POPSD_ARGON2_T (iterations, >= 1).\n"
            "\n"
            "Exit status: 0 ok, 1 operational failure, 2 usage error.\n",
            PW_MAX_BYTES, GEN_LEN, pwscheme_argon2_default.t_cost, pwscheme_argon2_default.m_cost_kib,
            pwscheme_argon2_default.parallelism);
}

static int fail(int status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("popsctl user: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return status;
}

/* ---- password input ---- */

struct pwbuf {
    char s[PW_MAX_BYTES + 2]; /* one spare byte tells "too long" from "exactly max" */
    size_t len;
};

static void pwbuf_wipe(struct pwbuf *p)
{
    secret_wipe(p, sizeof(*p));
}

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

/* Reads one line from fd byte by byte (no stdio buffer keeps a copy).
 * Returns 0, -1 with a message printed, or -2 if a prompt_tty signal hit. */
static int read_line(int fd, struct pwbuf *p)
{
    p->len = 0;
    bool any = false;
    for (;;) {
        char c;
        if (got_signal) /* arrived before the read started */
            return -2;
        ssize_t n = read(fd, &c, 1);
        if (n < 0 && errno == EINTR && !got_signal)
            continue;
        if (n < 0 && got_signal)
            return -2; /* prompt_tty restores the terminal, then reports it */
        if (n < 0)
            return fail(-1, "reading the password: %s", strerror(errno));
        if (n == 0) {
            if (!any)
                return fail(-1, "no password on stdin (or use --generate)");
            break;
        }
        any = true;
        if (c == '\n')
            break;
        if (p->len == sizeof(p->s) - 1) {
            secret_wipe(&c, 1);
            return fail(-1, "password longer than %d bytes", PW_MAX_BYTES);
        }
        p->s[p->len++] = c;
        secret_wipe(&c, 1);
    }
    if (p->len > 0 && p->s[p->len - 1] == '\r')
        p->len--;
    p->s[p->len] = '\0';
    if (p->len > PW_MAX_BYTES)
        return fail(-1, "password longer than %d bytes", PW_MAX_BYTES);
    if (memchr(p->s, '\0', p->len) != NULL)
        return fail(-1, "password contains a NUL byte");
    return 0;
}

/* Prompts on stderr with echo off. Signals that would leave the terminal
 * without echo (^C, ^Z, hangup) interrupt the read instead, and the terminal
 * is restored before we return either way. */
static int prompt_tty(const char *prompt, struct pwbuf *p)
{
    struct termios saved, quiet;
    if (tcgetattr(STDIN_FILENO, &saved) < 0)
        return fail(-1, "terminal: %s", strerror(errno));
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP, SIGTTIN, SIGTTOU};
    struct sigaction sa = {.sa_handler = on_signal}, old[sizeof(sigs) / sizeof(sigs[0])];
    sigemptyset(&sa.sa_mask);
    got_signal = 0;
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &sa, &old[i]); /* no SA_RESTART: read() returns EINTR */
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK);
    quiet.c_lflag |= ECHONL;
    int r;
    fputs(prompt, stderr);
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) < 0)
        r = fail(-1, "terminal: %s", strerror(errno));
    else
        r = read_line(STDIN_FILENO, p);
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved);
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
        sigaction(sigs[i], &old[i], NULL);
    if (got_signal) {
        fputc('\n', stderr);
        r = fail(-1, "interrupted");
    }
    return r;
}

static int get_password(struct pwbuf *p)
{
    if (isatty(STDIN_FILENO)) {
        struct pwbuf again;
        int r = prompt_tty("New password: ", p);
        if (r == 0)
            r = prompt_tty("Retype new password: ", &again);
        if (r == 0 && (again.len != p->len || !secret_equal(again.s, p->s, p->len)))
            r = fail(-1, "passwords do not match");
        pwbuf_wipe(&again);
        if (r < 0)
            return -1;
    } else if (read_line(STDIN_FILENO, p) < 0) {
        return -1;
    }
    return 0;
}

/* Uniform over the alphabet: bytes at or above the largest multiple of its
 * size are rejected rather than folded in with a modulo bias. */
static int generate_password(struct pwbuf *p)
{
    const unsigned n = sizeof(gen_alphabet) - 1, limit = 256 - 256 % n;
    unsigned char rnd[64];
    p->len = 0;
    while (p->len < GEN_LEN) {
        if (secret_random(rnd, sizeof(rnd)) < 0) {
            secret_wipe(rnd, sizeof(rnd));
            return fail(-1, "random generator failure");
        }
        for (size_t i = 0; i < sizeof(rnd) && p->len < GEN_LEN; i++)
            if (rnd[i] < limit)
                p->s[p->len++] = gen_alphabet[rnd[i] % n];
    }
    p->s[p->len] = '\0';
    secret_wipe(rnd, sizeof(rnd));
    return 0;
}

/* Shows a generated password once, with write(2) so no stdio buffer keeps it. */
static int show_password(const struct pwbuf *p)
{
    char line[sizeof("password: \n") + sizeof(p->s)];
    int n = snprintf(line, sizeof(line), "password: %s\n", p->s);
    int r = n > 0 && (size_t)n < sizeof(line) ? ctl_write_secret("user", line, (size_t)n) : EXIT_OPFAIL;
    secret_wipe(line, sizeof(line));
    return r == 0 ? 0 : -1;
}

static int env_u32(const char *name, uint32_t min, uint32_t *v)
{
    const char *s = getenv(name);
    if (s == NULL)
        return 0;
    if (strnum_u32_str(s, v) < 0 || *v < min)
        return fail(-1, "%s must be a whole number >= %u", name, min);
    return 0;
}

/* Reads (and checks) or generates the password, and makes its verifiers:
 * hash[PWSCHEME_HASH_MAX] (Argon2id) and scram[USERDB_SCRAM_MAX]. A generated
 * password skips pwcheck: 20 symbols of a 56-letter alphabet are 116 bits. */
static int new_credentials(const struct conf *c, const char *name, bool generate, struct pwbuf *pw,
                           char *hash, char *scram)
{
    struct pwscheme_argon2_params p = pwscheme_argon2_default;
    if (env_u32("POPSD_ARGON2_M_KIB", 8, &p.m_cost_kib) < 0 || env_u32("POPSD_ARGON2_T", 1, &p.t_cost) < 0)
        return EXIT_USAGE;
    if ((generate ? generate_password(pw) : get_password(pw)) < 0)
        return EXIT_OPFAIL;
    struct error err = {{0}};
    if (!generate && pwcheck(c, name, pw->s, pw->len, &err) < 0)
        return fail(EXIT_OPFAIL, "%s", err.msg);
    if (pwscheme_hash(pw->s, pw->len, &p, hash, PWSCHEME_HASH_MAX, &err) < 0)
        return fail(EXIT_OPFAIL, "%s", err.msg);
    struct scram_keys k;
    int r = 0;
    if (scram_keys_derive(pw->s, pw->len, NULL, 0, c->scram_iterations, &k, &err) < 0)
        r = fail(EXIT_OPFAIL, "SCRAM keys: %s", err.msg);
    else if (scram_keys_format(&k, scram, USERDB_SCRAM_MAX) < 0)
        r = fail(EXIT_OPFAIL, "SCRAM keys: too long to store");
    secret_wipe(&k, sizeof(k));
    return r;
}

/* ---- subcommands ---- */

struct args {
    const char *name;
    const char *mail;
    bool generate;
    bool json;
};

static int open_db(const struct ctl_opts *o, struct userdb_admin **db)
{
    struct error err = {{0}};
    if (userdb_admin_open(o->db_path, db, &err) < 0)
        return fail(EXIT_OPFAIL, "%s", err.msg);
    return 0;
}

/* The rule userdb_admin_add enforces, checked before the prompt so nobody
 * types a password for a name that will be refused. */
static bool name_ok(const char *name)
{
    return userdb_name_valid(name, strnlen(name, USERDB_NAME_MAX + 1));
}

static int cmd_add_or_passwd(const struct ctl_opts *o, const struct args *a, bool add)
{
    if (add && !name_ok(a->name))
        return fail(EXIT_OPFAIL, "invalid user name (1-%d bytes, no control characters, ':' or '/')",
                    USERDB_NAME_MAX);
    struct userdb_admin *db = NULL;
    int r = open_db(o, &db); /* before the prompt: a bad path fails before any typing */
    if (r != 0)
        return r;
    struct pwbuf pw;
    char hash[PWSCHEME_HASH_MAX], scram[USERDB_SCRAM_MAX];
    char shown[4 * USERDB_NAME_MAX + 1];
    struct error err = {{0}};
    r = new_credentials(o->conf, a->name, a->generate, &pw, hash, scram);
    if (r == 0) {
        int rc = add ? userdb_admin_add(db, a->name, hash, scram, a->mail, &err)
                     : userdb_admin_set_password(db, a->name, hash, scram, &err);
        if (rc < 0)
            r = fail(EXIT_OPFAIL, "%s", err.msg);
    }
    /* Shown only once it is stored: a password for a user that does not exist helps nobody. */
    if (r == 0 && a->generate && show_password(&pw) < 0)
        r = EXIT_OPFAIL;
    if (r == 0)
        fprintf(stderr, "popsctl user: %s '%s'\n", add ? "added" : "password changed for",
                ctl_printable(a->name, shown, sizeof(shown)));
    pwbuf_wipe(&pw);
    secret_wipe(hash, sizeof(hash));
    secret_wipe(scram, sizeof(scram));
    userdb_admin_close(&db);
    return r;
}

static int cmd_del(const struct ctl_opts *o, const struct args *a)
{
    struct userdb_admin *db = NULL;
    int r = open_db(o, &db);
    if (r != 0)
        return r;
    struct error err = {{0}};
    char shown[4 * USERDB_NAME_MAX + 1];
    if (userdb_admin_delete(db, a->name, &err) < 0)
        r = fail(EXIT_OPFAIL, "%s", err.msg);
    else
        fprintf(stderr, "popsctl user: deleted '%s'\n", ctl_printable(a->name, shown, sizeof(shown)));
    userdb_admin_close(&db);
    return r;
}

/* JSON string: escapes what JSON requires, and replaces bytes that are not
 * valid UTF-8 with U+FFFD so the output always parses. */
static void json_str(const char *s)
{
    putchar('"');
    const unsigned char *p = (const unsigned char *)s;
    while (*p != '\0') {
        unsigned char c = *p;
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        bool ok = n > 0 && !(n == 2 && c < 0xc2) && !(n == 4 && c > 0xf4);
        for (size_t i = 1; ok && i < n; i++)
            ok = (p[i] & 0xc0) == 0x80;
        if (ok && n == 3) /* overlong or UTF-16 surrogate */
            ok = !(c == 0xe0 && p[1] < 0xa0) && !(c == 0xed && p[1] >= 0xa0);
        if (ok && n == 4)
            ok = !(c == 0xf0 && p[1] < 0x90) && !(c == 0xf4 && p[1] >= 0x90);
        if (!ok) {
            fputs("\\ufffd", stdout);
            p++;
        } else if (c == '"' || c == '\\') {
            printf("\\%c", c);
            p++;
        } else if (c < 0x20 || c == 0x7f) {
            printf("\\u%04x", c);
            p++;
        } else {
            fwrite(p, 1, n, stdout);
            p += n;
        }
    }
    putchar('"');
}

struct list_ctx {
    bool json;
    unsigned n;
};

static int list_cb(void *ctx, const char *name, const char *mail, bool pop3_enabled, const char *scheme,
                   const char *updated)
{
    struct list_ctx *l = ctx;
    if (l->json) {
        fputs(l->n == 0 ? "[\n  {\"name\": " : ",\n  {\"name\": ", stdout);
        json_str(name);
        fputs(", \"scheme\": ", stdout);
        json_str(scheme);
        printf(", \"pop3_enabled\": %s, \"mail\": ", pop3_enabled ? "true" : "false");
        json_str(mail);
        fputs(", \"updated\": ", stdout);
        json_str(updated);
        putchar('}');
    } else {
        char n[4 * USERDB_NAME_MAX + 1], m[4 * USERDB_PATH_MAX + 1], u[64];
        if (l->n == 0)
            printf("%-24s %-14s %-4s %-20s %s\n", "NAME", "SCHEME", "POP3", "UPDATED", "MAIL");
        printf("%-24s %-14s %-4s %-20s %s\n", ctl_printable(name, n, sizeof(n)), scheme,
               pop3_enabled ? "yes" : "no", ctl_printable(updated, u, sizeof(u)),
               mail[0] != '\0' ? ctl_printable(mail, m, sizeof(m)) : "-");
    }
    l->n++;
    return 0;
}

static int cmd_list(const struct ctl_opts *o, const struct args *a)
{
    struct userdb_admin *db = NULL;
    int r = open_db(o, &db);
    if (r != 0)
        return r;
    struct list_ctx l = {.json = a->json};
    struct error err = {{0}};
    if (userdb_admin_list(db, list_cb, &l, &err) < 0)
        r = fail(EXIT_OPFAIL, "%s", err.msg);
    else if (a->json)
        fputs(l.n == 0 ? "[]\n" : "\n]\n", stdout);
    userdb_admin_close(&db);
    if (fflush(stdout) != 0 && r == 0)
        r = fail(EXIT_OPFAIL, "writing the list: %s", strerror(errno));
    return r;
}

/* ---- argument parsing ---- */

enum cmd { CMD_ADD, CMD_PASSWD, CMD_DEL, CMD_LIST };

static const struct {
    const char *name;
    enum cmd cmd;
    bool takes_name, mail, generate, json;
} cmds[] = {
    {"add", CMD_ADD, true, true, true, false},
    {"passwd", CMD_PASSWD, true, false, true, false},
    {"del", CMD_DEL, true, false, false, false},
    {"list", CMD_LIST, false, false, false, true},
};

int ctl_user_main(const struct ctl_opts *o, int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(stdout);
        return 0;
    }
    size_t c = 0;
    while (c < sizeof(cmds) / sizeof(cmds[0]) && strcmp(argv[1], cmds[c].name) != 0)
        c++;
    if (c == sizeof(cmds) / sizeof(cmds[0])) {
        fail(0, "unknown command '%s'", argv[1]);
        usage(stderr);
        return EXIT_USAGE;
    }
    struct args a = {0};
    bool opts_done = false;
    for (int i = 2; i < argc; i++) {
        const char *s = argv[i];
        if (!opts_done && (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0)) {
            usage(stdout);
            return 0;
        } else if (!opts_done && strcmp(s, "--") == 0) {
            opts_done = true;
        } else if (!opts_done && cmds[c].mail && strcmp(s, "--mail") == 0) {
            if (i + 1 >= argc)
                return fail(EXIT_USAGE, "--mail needs a PATH");
            a.mail = argv[++i];
        } else if (!opts_done && cmds[c].mail && strncmp(s, "--mail=", 7) == 0) {
            a.mail = s + 7;
        } else if (!opts_done && cmds[c].generate && strcmp(s, "--generate") == 0) {
            a.generate = true;
        } else if (!opts_done && cmds[c].json && strcmp(s, "--json") == 0) {
            a.json = true;
        } else if (!opts_done && s[0] == '-' && s[1] != '\0') {
            return fail(EXIT_USAGE, "%s: unknown option %s (see popsctl user --help)", cmds[c].name, s);
        } else if (cmds[c].takes_name && a.name == NULL) {
            a.name = s;
        } else {
            return fail(EXIT_USAGE, "%s: unexpected argument (see popsctl user --help)", cmds[c].name);
        }
    }
    if (cmds[c].takes_name && a.name == NULL)
        return fail(EXIT_USAGE, "%s: missing user NAME", cmds[c].name);
    if (o == NULL || o->db_path == NULL || o->db_path[0] == '\0' || o->conf == NULL)
        return fail(EXIT_USAGE, "no user database: give --db FILE or set the userdb path in the config");

    switch (cmds[c].cmd) {
    case CMD_ADD: return cmd_add_or_passwd(o, &a, true);
    case CMD_PASSWD: return cmd_add_or_passwd(o, &a, false);
    case CMD_DEL: return cmd_del(o, &a);
    case CMD_LIST: return cmd_list(o, &a);
    }
    return EXIT_USAGE;
}
