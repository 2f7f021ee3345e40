/* The configuration parser: a good file parsed field by field, every kind of
 * error with its exact "name:LINE: message" (or "name: message" for whole-file
 * checks), conf_load() file checks, the conf_print() round trip, and
 * conf_mail_path() expansion against hostile user names. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf/conf.h"

/* The smallest complete configuration, in pieces so tests can drop or swap one. */
#define CERT "[certificate main]\ncert = /etc/popsd/cert.pem\nkey = /etc/popsd/key.pem\n"
#define MAIL "[mail]\nroot = /srv/mail\nlocation = /srv/mail/%d/%n/Maildir\n"
#define LISTENER "[listener pop3s]\naddress = 127.0.0.1:995\n"

static const char good_conf[] = "# popsd test configuration\n"
                                "[server]\n"
                                "workers = 4\n"
                                "user = popfront\n"
                                "implementation = popsd-test\n"
                                "log = syslog\n"
                                "log_level = debug\n"
                                "max_connections = 500\n"
                                "max_connections_per_source = 7\n"
                                "timeout_login = 45s\n"
                                "timeout_idle = 15m\n"
                                "max_bad_commands = 5\n"
                                "max_auth_attempts = 2\n"
                                "auth_fail_delay = 1500ms\n"
                                "login_delay = 60\n"
                                "drain_timeout = 2h\n"
                                "\n"
                                "[tls]\n"
                                "tls12 = no\n"
                                "session_tickets = yes\n"
                                "\n"
                                "[certificate main]\n"
                                "cert = /etc/popsd/cert.pem\n"
                                "key = /etc/popsd/key.pem\n"
                                "\n"
                                "[certificate other]\n"
                                "cert = /etc/popsd/other.pem\n"
                                "key = /etc/popsd/other.key\n"
                                "\n"
                                "[userdb]\n"
                                "driver = passwd-file\n"
                                "path = /etc/popsd/passwd\n"
                                "allow_weak_schemes = yes\n"
                                "threads = 3\n"
                                "argon2_memory_kib = 1024\n"
                                "argon2_iterations = 2\n"
                                "\n"
                                "[mail]\n"
                                "root = /srv/mail\n"
                                "location = /srv/mail/%d/%n/Maildir\n"
                                "create = yes\n"
                                "\n"
                                "[listener pop3s]\n"
                                "address = 127.0.0.1:995\n"
                                "address = [::1]:995\n"
                                "\n"
                                "[listener pop3]\n"
                                "tls = starttls\n"
                                "address = *:110\n";

static struct conf *conf_new(void)
{
    struct conf *c = malloc(sizeof(*c));
    assert_non_null(c);
    return c;
}

static void test_good(void **state)
{
    struct conf *c = conf_new();
    struct error err = {{0}};
    assert_int_equal(conf_parse_string(good_conf, "good.conf", c, &err), 0);
    assert_string_equal(err.msg, "");
    assert_string_equal(c->path, "good.conf");
    assert_int_equal(c->workers, 4);
    assert_string_equal(c->front_user, "popfront");
    assert_string_equal(c->auth_user, "_popsd-auth"); /* default kept */
    assert_string_equal(c->implementation, "popsd-test");
    assert_true(c->log_syslog);
    assert_int_equal(c->log_level, LOG_LVL_DEBUG);
    assert_int_equal(c->max_connections, 500);
    assert_int_equal(c->max_connections_per_source, 7);
    assert_int_equal(c->timeout_login_ms, 45000);
    assert_int_equal(c->timeout_idle_ms, 900000);
    assert_int_equal(c->max_bad_commands, 5);
    assert_int_equal(c->max_auth_attempts, 2);
    assert_int_equal(c->auth_fail_delay_ms, 1500);
    assert_int_equal(c->login_delay_s, 60);
    assert_int_equal(c->drain_timeout_ms, 7200000);
    assert_false(c->tls12);
    assert_true(c->session_tickets);
    assert_int_equal(c->n_certs, 2);
    assert_string_equal(c->certs[0].name, "main");
    assert_string_equal(c->certs[0].cert, "/etc/popsd/cert.pem");
    assert_string_equal(c->certs[0].key, "/etc/popsd/key.pem");
    assert_string_equal(c->certs[1].name, "other");
    assert_string_equal(c->certs[1].key, "/etc/popsd/other.key");
    assert_int_equal(c->userdb_driver, CONF_USERDB_PASSWD_FILE);
    assert_string_equal(c->userdb_path, "/etc/popsd/passwd");
    assert_true(c->allow_weak_schemes);
    assert_int_equal(c->auth_threads, 3);
    assert_int_equal(c->argon2_m_kib, 1024);
    assert_int_equal(c->argon2_t, 2);
    assert_string_equal(c->mail_root, "/srv/mail");
    assert_string_equal(c->mail_location, "/srv/mail/%d/%n/Maildir");
    assert_true(c->mail_create);
    assert_int_equal(c->n_listeners, 2);
    assert_string_equal(c->listeners[0].name, "pop3s");
    assert_int_equal(c->listeners[0].tls, CONF_TLS_IMPLICIT);
    assert_int_equal(c->listeners[0].n_addrs, 2);
    assert_string_equal(c->listeners[0].addrs[0], "127.0.0.1:995");
    assert_string_equal(c->listeners[0].addrs[1], "[::1]:995");
    assert_string_equal(c->listeners[1].name, "pop3");
    assert_int_equal(c->listeners[1].tls, CONF_TLS_STARTTLS);
    assert_int_equal(c->listeners[1].n_addrs, 1);
    assert_string_equal(c->listeners[1].addrs[0], "*:110");
    free(c);
}

static void test_minimal_defaults(void **state)
{
    struct conf *c = conf_new(), *d = conf_new();
    struct error err = {{0}};
    assert_int_equal(conf_parse_string(CERT MAIL LISTENER, "min.conf", c, &err), 0);
    conf_defaults(d);
    /* everything not in the file is the default */
    assert_int_equal(c->workers, d->workers);
    assert_string_equal(c->front_user, "_popsd");
    assert_int_equal(c->timeout_idle_ms, 600000);
    assert_int_equal(c->max_bad_commands, 10);
    assert_int_equal(c->max_auth_attempts, 3);
    assert_true(c->tls12);
    assert_false(c->session_tickets);
    assert_false(c->mail_create);
    assert_int_equal(c->userdb_driver, CONF_USERDB_SQLITE);
    assert_string_equal(c->implementation, "");
    assert_int_equal(c->n_listeners, 1);
    assert_int_equal(c->listeners[0].tls, CONF_TLS_IMPLICIT);
    /* comments, blank lines, CRLF, spaces around '=' and "workers = auto" */
    assert_int_equal(conf_parse_string("; comment\r\n\r\n[server]\r\n  workers=auto  \r\nlog = stderr ; why\r\n" CERT
                                       MAIL LISTENER,
                                       "crlf.conf", c, &err),
                     0);
    assert_int_equal(c->workers, 0);
    assert_false(c->log_syslog);
    free(c);
    free(d);
}

/* Parses text and checks that it fails with exactly this message. */
static void expect_error(const char *text, const char *msg)
{
    struct conf *c = conf_new();
    struct error err = {{0}};
    int r = conf_parse_string(text, "t.conf", c, &err);
    if (r != -1 || strcmp(err.msg, msg) != 0)
        fail_msg("parse returned %d with \"%s\"\n  expected \"%s\"\n  for:\n%s", r, err.msg, msg, text);
    free(c);
}

static void test_section_errors(void **state)
{
    expect_error("[server]\nworkers = 1\n\n[bogus]\nx = 1\n" CERT MAIL LISTENER, "t.conf:4: unknown section [bogus]");
    expect_error("[server]\n[Server]\nworkers = 1\n", "t.conf:2: unknown section [Server]");
    expect_error("workers = 1\n[server]\n", "t.conf:1: key 'workers' outside any section");
    expect_error("\n\n[server\nworkers = 1\n", "t.conf:3: syntax error (expected [section] or key = value)");
    expect_error("[server]\nworkers\n", "t.conf:2: syntax error (expected [section] or key = value)");
    expect_error(CERT "[listener a/b]\naddress = x\n", "t.conf:4: bad listener name or too many listeners");
    expect_error(CERT "[listener ]\naddress = x\n", "t.conf:4: bad listener name or too many listeners");
    expect_error("[certificate ..x!]\ncert = /a\n", "t.conf:1: bad certificate name or too many certificates");
    /* duplicates, both apart and one right after the other (not merged) */
    expect_error(CERT MAIL "[listener a]\naddress = x\n[server]\nworkers = 1\n[listener a]\naddress = y\n",
                 "t.conf:11: duplicate section [listener a]");
    expect_error(CERT MAIL "[listener a]\ntls = starttls\naddress = :110\n[listener a]\naddress = :995\n",
                 "t.conf:10: duplicate section [listener a]");
    expect_error(CERT CERT MAIL LISTENER, "t.conf:4: duplicate section [certificate main]");
}

static void test_key_errors(void **state)
{
    expect_error("[server]\nworkers = 1\nfrobnicate = 2\n", "t.conf:3: unknown key 'frobnicate' in [server]");
    expect_error("[tls]\ntls13 = yes\n", "t.conf:2: unknown key 'tls13' in [tls]");
    expect_error("[userdb]\ndriverx = sqlite\n", "t.conf:2: unknown key 'driverx' in [userdb]");
    expect_error("[mail]\nroot = /a\nhome = /b\n", "t.conf:3: unknown key 'home' in [mail]");
    expect_error("[listener a]\nport = 1\n", "t.conf:2: unknown key 'port' in [listener]");
    expect_error("[certificate a]\nchain = /x\n", "t.conf:2: unknown key 'chain' in [certificate]");
    /* keys are case-sensitive */
    expect_error("[server]\nWorkers = 1\n", "t.conf:2: unknown key 'Workers' in [server]");
}

static void test_value_errors(void **state)
{
    static const char *const bad_ints[] = {"12x", "0", "-1", "+5", "1000001", "4294967297", "0x10", "1 2"};
    for (size_t i = 0; i < sizeof(bad_ints) / sizeof(bad_ints[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "[server]\n\nmax_connections = %s\n", bad_ints[i]);
        expect_error(text, "t.conf:3: expected an integer in 1..1000000");
    }
    expect_error("[server]\nworkers = 257\n", "t.conf:2: expected an integer in 1..256");
    expect_error("[server]\nworkers = 0\n", "t.conf:2: expected an integer in 1..256");
    expect_error("[server]\nworkers =\n", "t.conf:2: expected an integer in 1..256");
    expect_error("[userdb]\nthreads = 65\n", "t.conf:2: expected an integer in 1..64");
    /* RFC 1939: the autologout timer is at least 10 minutes */
    expect_error("[server]\ntimeout_idle = 9m\n",
                 "t.conf:2: expected a duration such as 30s, 10m, 500ms (at least 600000ms)");
    expect_error("[server]\ntimeout_idle = 599999ms\n",
                 "t.conf:2: expected a duration such as 30s, 10m, 500ms (at least 600000ms)");
    expect_error("[server]\ntimeout_idle = 10 m\n",
                 "t.conf:2: expected a duration such as 30s, 10m, 500ms (at least 600000ms)");
    expect_error("[server]\ntimeout_login = 999ms\n",
                 "t.conf:2: expected a duration such as 30s, 10m, 500ms (at least 1000ms)");
    expect_error("[server]\nauth_fail_delay = 2x\n",
                 "t.conf:2: expected a duration such as 30s, 10m, 500ms (at least 0ms)");
    expect_error("[server]\nlog = journald\n", "t.conf:2: expected stderr or syslog");
    expect_error("[server]\nlog_level = INFO\n", "t.conf:2: expected debug, info, notice, warning or error");
    expect_error("[tls]\ntls12 = maybe\n", "t.conf:2: expected yes or no");
    expect_error("[userdb]\ndriver = ldap\n", "t.conf:2: expected sqlite or passwd-file");
    expect_error("[userdb]\npath = users.db\n", "t.conf:2: expected an absolute path");
    expect_error("[mail]\nroot = srv/mail\n", "t.conf:2: expected an absolute path");
    expect_error("[listener a]\ntls = yes\n", "t.conf:2: expected implicit or starttls");
    expect_error("[server]\nuser =\n", "t.conf:2: value must be 1..63 characters");
    expect_error("[server]\nuser = "
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", /* 64 */
                 "t.conf:2: value must be 1..63 characters");
    /* too many addresses on one listener */
    char text[2048] = "[listener a]\n";
    for (int i = 0; i <= CONF_MAX_ADDRS; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "address = 10.0.0.%d:995\n", i);
    expect_error(text, "t.conf:18: too many addresses (max 16)");
    /* too many listeners */
    text[0] = '\0';
    for (int i = 0; i <= CONF_MAX_LISTENERS; i++)
        snprintf(text + strlen(text), sizeof(text) - strlen(text), "[listener l%d]\naddress = :%d\n", i, 1000 + i);
    expect_error(text, "t.conf:33: bad listener name or too many listeners");
}

static void test_indentation(void **state)
{
    /* An indented line is a line of its own, never the continuation of the
     * previous value (inih's multi-line values): otherwise user would be
     * "auth_user = b" and auth_user the default. */
    struct conf *c = conf_new();
    struct error err = {{0}};
    assert_int_equal(conf_parse_string("[server]\nuser = a\n  auth_user = b\n\timplementation = x ; c\n" CERT MAIL
                                       LISTENER,
                                       "t.conf", c, &err),
                     0);
    assert_string_equal(c->front_user, "a");
    assert_string_equal(c->auth_user, "b");
    assert_string_equal(c->implementation, "x");
    free(c);
    expect_error("[server]\nuser = a\n   bogus = 1\n", "t.conf:3: unknown key 'bogus' in [server]");
    expect_error("[userdb]\npath = /a\n   /b\n", "t.conf:3: syntax error (expected [section] or key = value)");
    /* indented headers are headers, duplicates included */
    expect_error(CERT MAIL "[listener a]\naddress = x\n  [listener a]\naddress = y\n",
                 "t.conf:9: duplicate section [listener a]");
}

static void test_first_error_wins(void **state)
{
    /* a handler error after a syntax error: the syntax error, with its own message */
    expect_error("[server]\ngarbage\nbogus = 1\n", "t.conf:2: syntax error (expected [section] or key = value)");
    /* a syntax error after a handler error: the handler's */
    expect_error("[server]\nbogus = 1\ngarbage\n", "t.conf:2: unknown key 'bogus' in [server]");
    expect_error("[server]\nworkers = 0\nmax_connections = 0\n", "t.conf:2: expected an integer in 1..256");
}

static void test_long_lines(void **state)
{
    /* A line longer than inih's buffer is an error on its own line, never a
     * silently truncated value. Here the cut would fall on a ';' comment. */
    char text[1024];
    char val[300];
    memset(val, 'a', sizeof(val));
    val[0] = '/';
    val[180] = ';';
    val[sizeof(val) - 1] = '\0';
    snprintf(text, sizeof(text), "[server]\nworkers = 2\n[userdb]\npath = %s\n%s", val, CERT MAIL LISTENER);
    expect_error(text, "t.conf:4: line too long");
    memset(val, ' ', sizeof(val));
    memcpy(val, "/x", 2);
    val[sizeof(val) - 1] = '\0';
    snprintf(text, sizeof(text), "[userdb]\npath = %s\n[server]\nbogus = 1\n", val);
    expect_error(text, "t.conf:2: line too long");
    /* errors after a long line keep their own line numbers */
    snprintf(text, sizeof(text), "# %s\n[server]\nbogus = 1\n", val);
    expect_error(text, "t.conf:1: line too long");
    snprintf(text, sizeof(text), "[server]\nbogus = 1\n# %s\n", val);
    expect_error(text, "t.conf:2: unknown key 'bogus' in [server]");
    /* a line that just fits is fine */
    char fits[200];
    memset(fits, 'b', sizeof(fits));
    memcpy(fits, "implementation = ", 17);
    fits[sizeof(fits) - 1] = '\0';
    snprintf(text, sizeof(text), "[server]\n%s\n%s", fits, CERT MAIL LISTENER);
    expect_error(text, "t.conf:2: value must be 1..63 characters");
}

static void test_whole_file_errors(void **state)
{
    expect_error(CERT MAIL, "t.conf: no [listener NAME] section");
    expect_error(CERT MAIL "[listener a]\ntls = starttls\n", "t.conf: [listener a] has no address");
    expect_error(CERT MAIL LISTENER "[listener b]\ntls = implicit\n", "t.conf: [listener b] has no address");
    expect_error(MAIL LISTENER, "t.conf: no [certificate NAME] section; TLS is mandatory");
    expect_error("[certificate c]\ncert = /a.pem\n" MAIL LISTENER, "t.conf: [certificate c] needs cert and key");
    expect_error("[certificate c]\nkey = /a.key\n" MAIL LISTENER, "t.conf: [certificate c] needs cert and key");
    expect_error(CERT LISTENER "[mail]\nroot = /srv/mail\nlocation = /srv/other/%u\n",
                 "t.conf: [mail] location /srv/other/%u is not beneath root /srv/mail");
    expect_error(CERT LISTENER "[mail]\nroot = /srv/mail\nlocation = /srv/mailx/%u\n",
                 "t.conf: [mail] location /srv/mailx/%u is not beneath root /srv/mail");
    expect_error(CERT LISTENER "[mail]\nroot = /srv/mail/\nlocation = /srv/mail\n",
                 "t.conf: [mail] location /srv/mail is not beneath root /srv/mail");
    expect_error(CERT LISTENER "[mail]\nroot = /srv/mail\nlocation = /srv/mail/../../etc/%u\n",
                 "t.conf: [mail] location must not contain '..'");
    /* the default location is beneath the default root */
    struct conf *c = conf_new();
    struct error err = {{0}};
    assert_int_equal(conf_parse_string(CERT LISTENER, "t.conf", c, &err), 0);
    assert_string_equal(c->mail_location, "/var/vmail/%d/%n/Maildir");
    assert_int_equal(conf_parse_string(CERT LISTENER "[mail]\nroot = /srv/mail//\nlocation = /srv/mail/%u\n",
                                       "t.conf", c, &err),
                     0);
    assert_int_equal(conf_parse_string(CERT LISTENER "[mail]\nroot = /\nlocation = /%u\n", "t.conf", c, &err), 0);
    free(c);
}

/* ---- conf_load ---- */

static void write_file(const char *path, const char *data, size_t len, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void test_load(void **state)
{
    char dir[] = "/tmp/popsd-conf-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char conf[128], key[128], cert[128], text[1024];
    snprintf(conf, sizeof(conf), "%s/popsd.conf", dir);
    snprintf(key, sizeof(key), "%s/key.pem", dir);
    snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
    int n = snprintf(text, sizeof(text), "[certificate c]\ncert = %s\nkey = %s\n%s", cert, key, MAIL LISTENER);
    struct conf *c = conf_new();
    struct error err = {{0}};
    char want[512];

    write_file(conf, text, (size_t)n, 0600);
    write_file(cert, "x", 1, 0644);
    /* the key file is missing */
    assert_int_equal(conf_load(conf, c, &err), -1);
    snprintf(want, sizeof(want), "%s: [certificate c] key %s: No such file or directory", conf, key);
    assert_string_equal(err.msg, want);
    /* the key is readable by others */
    write_file(key, "k", 1, 0640);
    assert_int_equal(conf_load(conf, c, &err), -1);
    snprintf(want, sizeof(want), "%s: [certificate c] key %s is group- or world-accessible (mode 640); chmod 600 it",
             conf, key);
    assert_string_equal(err.msg, want);
    assert_int_equal(chmod(key, 0600), 0);
    assert_int_equal(conf_load(conf, c, &err), 0);
    assert_string_equal(c->path, conf);
    assert_string_equal(c->certs[0].key, key);
    /* a group-writable config is refused before it is read */
    assert_int_equal(chmod(conf, 0620), 0);
    assert_int_equal(conf_load(conf, c, &err), -1);
    snprintf(want, sizeof(want), "%s: group- or world-writable (mode 620); refusing it", conf);
    assert_string_equal(err.msg, want);
    /* a NUL byte in a line is an error at that line */
    static const char with_nul[] = "[server]\nworkers = 2\nuser = a\0b\n";
    write_file(conf, with_nul, sizeof(with_nul) - 1, 0600);
    assert_int_equal(conf_load(conf, c, &err), -1);
    snprintf(want, sizeof(want), "%s:3: NUL byte in line", conf);
    assert_string_equal(err.msg, want);
    /* not a regular file; missing */
    assert_int_equal(conf_load(dir, c, &err), -1);
    snprintf(want, sizeof(want), "%s: not a regular file", dir);
    assert_string_equal(err.msg, want);
    assert_int_equal(conf_load("/nonexistent/popsd.conf", c, &err), -1);
    assert_string_equal(err.msg, "/nonexistent/popsd.conf: No such file or directory");

    unlink(conf);
    unlink(key);
    unlink(cert);
    rmdir(dir);
    free(c);
}

/* ---- conf_print ---- */

static void test_print_roundtrip(void **state)
{
    struct conf *a = conf_new(), *b = conf_new();
    struct error err = {{0}};
    assert_int_equal(conf_parse_string(good_conf, "x", a, &err), 0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    conf_print(a, f);
    assert_int_equal(fclose(f), 0);
    if (conf_parse_string(text, "x", b, &err) != 0)
        fail_msg("printed configuration does not parse: %s\n%s", err.msg, text);
    assert_memory_equal(a, b, sizeof(*a));
    free(text);

    /* the largest durations print in a form that parses back */
    assert_int_equal(conf_parse_string("[server]\ntimeout_idle = 213503982334d\ndrain_timeout = 18446744073709551615ms\n"
                                       CERT MAIL LISTENER,
                                       "x", a, &err),
                     0);
    f = open_memstream(&text, &len);
    assert_non_null(f);
    conf_print(a, f);
    assert_int_equal(fclose(f), 0);
    if (conf_parse_string(text, "x", b, &err) != 0)
        fail_msg("printed configuration does not parse: %s\n%s", err.msg, text);
    assert_true(b->timeout_idle_ms == 213503982334ull * 86400000ull);
    assert_true(b->drain_timeout_ms == UINT64_MAX);
    assert_memory_equal(a, b, sizeof(*a));
    free(text);
    free(a);
    free(b);
}

/* ---- conf_mail_path ---- */

static int mail_path(const char *location, const char *user, char *out, size_t outsz, struct error *err)
{
    struct conf *c = conf_new();
    conf_defaults(c);
    snprintf(c->mail_location, sizeof(c->mail_location), "%s", location);
    int r = conf_mail_path(c, user, out, outsz, err);
    free(c);
    return r;
}

static void expect_path(const char *location, const char *user, const char *want)
{
    char out[512];
    struct error err = {{0}};
    if (mail_path(location, user, out, sizeof(out), &err) != 0)
        fail_msg("\"%s\" with \"%s\" failed: %s", location, user, err.msg);
    assert_string_equal(out, want);
}

static void expect_path_error(const char *location, const char *user, const char *msg)
{
    char out[512];
    struct error err = {{0}};
    if (mail_path(location, user, out, sizeof(out), &err) != -1)
        fail_msg("\"%s\" with \"%s\" gave \"%s\"", location, user, out);
    assert_string_equal(err.msg, msg);
}

static void test_mail_path(void **state)
{
    expect_path("/srv/mail/%d/%n/Maildir", "alice@example.org", "/srv/mail/example.org/alice/Maildir");
    expect_path("/srv/mail/%u", "alice@example.org", "/srv/mail/alice@example.org");
    expect_path("/srv/mail/%u", "bob", "/srv/mail/bob");
    expect_path("/srv/mail/%n", "bob", "/srv/mail/bob");
    expect_path("/srv/100%%/%n", "bob", "/srv/100%/bob");
    expect_path("/srv/%%u/%n", "bob", "/srv/%u/bob");
    expect_path("/srv/mail/%d/%n", "a@b@c.org", "/srv/mail/c.org/a@b"); /* the last '@' splits */
    expect_path("/srv/mail/%n", "x@", "/srv/mail/x");
    expect_path("/srv/mail/%u/%u", "a.b", "/srv/mail/a.b/a.b");
    expect_path("/srv/mail/%u", "caf\xc3\xa9", "/srv/mail/caf\xc3\xa9");
}

static void test_mail_path_hostile(void **state)
{
    static const char *const bad_users[] = {
        "",    ".",     "..",    "../x",  "..\\x", "a/b",    "/etc",   ".hidden", "a\\b",  "a b",
        "a\tb", "a\nb", "a\rb",  "a\x01", "a\x7f", "@example.org", ".@x.org", "..@x.org", "x/..@x.org",
    };
    for (size_t i = 0; i < sizeof(bad_users) / sizeof(bad_users[0]); i++)
        expect_path_error("/srv/mail/%u", bad_users[i], "user name not usable in a mail path");
    expect_path_error("/srv/mail/%d/%n", "x@", "user name has no usable domain for %d");
    expect_path_error("/srv/mail/%d/%n", "x", "user name has no usable domain for %d");
    expect_path_error("/srv/mail/%d/%n", "x@..", "user name has no usable domain for %d");
    expect_path_error("/srv/mail/%d/%n", "x@.", "user name has no usable domain for %d");
    expect_path_error("/srv/mail/%d/%n", "x@.evil", "user name has no usable domain for %d");
    char long_user[300];
    memset(long_user, 'u', sizeof(long_user));
    long_user[256] = '\0';
    expect_path_error("/srv/mail/%u", long_user, "user name not usable in a mail path");
    long_user[255] = '\0';
    char want[320];
    snprintf(want, sizeof(want), "/srv/mail/%s", long_user);
    expect_path("/srv/mail/%u", long_user, want);
    /* bad templates */
    expect_path_error("/srv/mail/%x", "bob", "bad % escape in mail location");
    expect_path_error("/srv/mail/%", "bob", "bad % escape in mail location");
    /* output capacity: exactly fitting, and one short */
    char out[32];
    struct error err = {{0}};
    assert_int_equal(mail_path("/srv/%u", "bob", out, 9, &err), 0); /* "/srv/bob" + NUL */
    assert_string_equal(out, "/srv/bob");
    assert_int_equal(mail_path("/srv/%u", "bob", out, 8, &err), -1);
    assert_string_equal(err.msg, "mail path too long");
    assert_int_equal(mail_path("/srv/%u", "bob", out, 1, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good),
        cmocka_unit_test(test_minimal_defaults),
        cmocka_unit_test(test_section_errors),
        cmocka_unit_test(test_key_errors),
        cmocka_unit_test(test_value_errors),
        cmocka_unit_test(test_indentation),
        cmocka_unit_test(test_first_error_wins),
        cmocka_unit_test(test_long_lines),
        cmocka_unit_test(test_whole_file_errors),
        cmocka_unit_test(test_load),
        cmocka_unit_test(test_print_roundtrip),
        cmocka_unit_test(test_mail_path),
        cmocka_unit_test(test_mail_path_hostile),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
