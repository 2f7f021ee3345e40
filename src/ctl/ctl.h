/* popsctl subcommands. Each takes the arguments after its name (argv[0] is the
 * subcommand name) and returns the process exit status: 0 ok, 1 operational
 * failure (CTL_EXIT_OPFAIL), 2 usage error (CTL_EXIT_USAGE). */
#ifndef POPSD_CTL_CTL_H
#define POPSD_CTL_CTL_H

#include <stdbool.h>
#include <stddef.h>

#define CTL_EXIT_OPFAIL 1
#define CTL_EXIT_USAGE 2

struct conf;
struct userdb_admin;

/* Global options parsed by main, shared by subcommands. */
struct ctl_opts {
    const char *config_path; /* -c FILE, default /etc/popsd/popsd.conf */
    const char *db_path;     /* --db FILE overrides the config's userdb path */
    /* For the user-database commands: the loaded config, or the defaults when
     * only --db was given ([passwords], scram_iterations, methods). NULL for --help. */
    const struct conf *conf;
};

int ctl_user_main(const struct ctl_opts *o, int argc, char **argv);
int ctl_audit_main(const struct ctl_opts *o, int argc, char **argv);
/* bans, unban, locks, unlock, events, guard-stats: through authd's control socket. */
int ctl_defence_main(const struct ctl_opts *o, int argc, char **argv);
/* totp enroll|confirm|status|remove */
int ctl_totp_main(const struct ctl_opts *o, int argc, char **argv);
/* app-password add|list|revoke */
int ctl_apppw_main(const struct ctl_opts *o, int argc, char **argv);
/* policy show|set */
int ctl_policy_main(const struct ctl_opts *o, int argc, char **argv);

/* ---- helpers shared by the user-database commands (popsctl.c) ---- */

/* Prints "popsctl WHO: message" to stderr and returns status. */
int ctl_fail(int status, const char *who, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Copies s into dst for display, control bytes and '\' as \xNN, so text
 * written into the database by other means cannot drive the terminal. */
const char *ctl_printable(const char *s, char *dst, size_t dstsz);
/* Opens the user database read-write; returns 0 or CTL_EXIT_OPFAIL (message printed). */
int ctl_open_db(const struct ctl_opts *o, const char *who, struct userdb_admin **db);
/* Writes s[0..len) to stdout with write(2), so no stdio buffer keeps a copy of
 * a secret shown once. Returns 0 or CTL_EXIT_OPFAIL. */
int ctl_write_secret(const char *who, const char *s, size_t len);
/* "YYYY-MM-DD HH:MM UTC", or never_text for 0. */
const char *ctl_time(long long t, const char *never_text, char *dst, size_t dstsz);
/* "CIDR[,CIDR...]" or "any" (as typed) into the stored form: space-separated,
 * "" = any source. 0, or CTL_EXIT_USAGE (message printed). */
int ctl_parse_networks(const char *who, const char *in, char *out, size_t outsz);
/* true if s is --help, -h or help. */
bool ctl_is_help(const char *s);

/* ---- TOTP checks for other commands (src/ctl/totp.c) ---- */

/* Reads a TOTP code: arg itself, or one line of stdin when arg is "-". Spaces
 * are dropped ("123 456" as apps show it). Returns 0 with code set, or
 * CTL_EXIT_USAGE (message printed) unless it is 6 digits. */
int ctl_totp_read_code(const char *who, const char *arg, char code[8]);
/* The second factor for an admin action on user: if user has a confirmed TOTP
 * secret, or require_mfa is set, code must be a current code not used before
 * (it is then recorded as used). code NULL = none given. Returns 0 to go on,
 * or an exit status (message printed). */
int ctl_totp_gate(struct userdb_admin *db, const char *who, const char *user, const char *code,
                  bool require_mfa);

#endif
