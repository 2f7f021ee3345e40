#include "conf/conf.h"

#include <ctype.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strnum.h"

/* inih calls the handler once per key; we stop at the first error and inih
 * returns that line number, which gives the "file:line:" prefix (errors about
 * a section header point at the header's line instead). */
struct parse_ctx {
    struct conf *c;
    char msg[200];
    struct conf_listener *cur_listener;
    struct conf_cert *cur_cert;
    struct conf_oauth *cur_oauth;
    char cur_section[CONF_NAME_MAX + 16];
    const struct line_src *src;
    unsigned cur_header; /* src->headers when the current section was entered */
    int key_line;        /* line of the key whose handler failed (and set msg) */
    int err_line;        /* where to report it: key_line, or the header's line */
};

/* inih reads its input through line_read() so that we see every physical line.
 * On its own, inih cuts a line longer than its buffer (INI_MAX_LINE) in two and
 * parses the remainder as a line of its own: a long value was truncated, and
 * then either silently accepted (remainder blank or starting with '#' or ';')
 * or reported as a syntax error on the wrong line. A NUL byte silently ended
 * the line. And the handler never learns that a section header was read, so a
 * "[listener a]" repeated right after itself merged into the first one instead
 * of being reported as a duplicate. The reader hands inih whole lines, and
 * notes headers itself. */
struct line_src {
    const char *str; /* string source, or */
    FILE *file;      /* file source */
    int lineno;
    unsigned headers; /* "[" lines read so far */
    int header_line;  /* the latest of them */
    char header[CONF_NAME_MAX + 16]; /* and its text up to "]" */
    int bad_line;     /* first over-long line or line with a NUL, 0 = none */
    const char *bad_msg;
};

static int src_getc(struct line_src *s)
{
    if (s->file != NULL)
        return getc(s->file);
    if (*s->str == '\0')
        return EOF;
    return (unsigned char)*s->str++;
}

/* fgets-style: one whole line (without its LF), or "" in place of a line that
 * cannot be taken whole, which is then reported by conf_parse_with(). */
static char *line_read(char *buf, int cap, void *stream)
{
    struct line_src *s = stream;
    int ch = src_getc(s);
    if (ch == EOF || cap < 2)
        return NULL;
    s->lineno++;
    size_t n = 0;
    const char *bad = NULL;
    for (; ch != EOF && ch != '\n'; ch = src_getc(s)) {
        if (ch == '\0')
            bad = "NUL byte in line";
        else if (n + 1 >= (size_t)cap)
            bad = "line too long";
        else
            buf[n++] = (char)ch;
    }
    buf[n] = '\0';
    if (bad != NULL) {
        if (s->bad_line == 0) {
            s->bad_line = s->lineno;
            s->bad_msg = bad;
        }
        buf[0] = '\0';
        n = 0;
    }
    /* Leading white space goes (and a UTF-8 BOM on line 1, which inih would
     * skip): inih would otherwise take an indented line after a key as a
     * continuation of that key's value, so "user = a" followed by an indented
     * "auth_user = b" silently set user to "auth_user = b". Every line is
     * then a header, a comment, a blank or a key of its own. */
    size_t k = 0;
    if (s->lineno == 1 && n >= 3 && memcmp(buf, "\xEF\xBB\xBF", 3) == 0)
        k = 3;
    while (k < n && isspace((unsigned char)buf[k]))
        k++;
    memmove(buf, buf + k, n - k + 1);
    if (buf[0] == '[') {
        s->headers++;
        s->header_line = s->lineno;
        snprintf(s->header, sizeof(s->header), "%.*s", (int)strcspn(buf + 1, "]"), buf + 1);
    }
    return buf;
}

void conf_defaults(struct conf *c)
{
    memset(c, 0, sizeof(*c));
    c->workers = 1;
    strcpy(c->front_user, "_popsd");
    strcpy(c->auth_user, "_popsd-auth");
    strcpy(c->mail_user, "vmail");
    c->log_level = LOG_LVL_INFO;
    c->max_connections = 10000;
    c->max_connections_per_source = 50;
    c->timeout_login_ms = 60000;
    c->timeout_idle_ms = 600000;
    c->max_bad_commands = 10;
    c->max_auth_attempts = 3;
    c->auth_fail_delay_ms = 2000;
    c->login_delay_s = 0;
    c->drain_timeout_ms = 3600000;
    c->tls12 = true;
    c->userdb_driver = CONF_USERDB_SQLITE;
    strcpy(c->userdb_path, "/var/lib/popsd/users.db");
    c->auth_threads = 2;
    c->argon2_m_kib = 65536;
    c->argon2_t = 3;
    c->cache_ttl_ms = 300000;
    c->cache_size = 65536;
    c->scram_iterations = 10000; /* NIST SP 800-63B's floor for PBKDF2; RFC 7677 asks for >= 4096 */
    c->default_methods = CONF_METHOD_ALL;
    c->pw_min_length = 12;
    c->pw_min_quality = 30;
    c->delay_max_ms = 15000;
    c->window_ms = 3600000;
    c->ban_failures = 10;
    c->ban_prefix_failures = 50;
    c->ban_time_ms = 900000;
    c->ban_time_max_ms = 86400000;
    c->ban_memory_ms = 7ull * 86400000;
    c->spray_accounts = 5;
    c->spray_password_accounts = 10;
    c->account_lock_failures = 20;
    c->account_lock_time_ms = 900000;
    c->known_source_time_ms = 60ull * 86400000;
    c->table_size = 65536;
    strcpy(c->control_socket, "/run/popsd/control.sock");
    strcpy(c->mail_location, "/var/vmail/%d/%n/Maildir");
    strcpy(c->mail_root, "/var/vmail");
    c->alert_webhook_timeout_ms = 5000;
    c->alert_webhook_retries = 3;
    c->alert_webhook_retry_delay_ms = 1000;
    c->alert_queue_size = 1000;
    c->alert_exec_timeout_ms = 10000;
    c->alert_exec_max_running = 4;
    c->alert_events = CONF_ALERT_ALL;
    strcpy(c->metrics_chroot, "/var/empty");
}

static int set_str(struct parse_ctx *p, char *dst, size_t dstsz, const char *value)
{
    size_t n = strlen(value);
    if (n == 0 || n >= dstsz) {
        snprintf(p->msg, sizeof(p->msg), "value must be 1..%zu characters", dstsz - 1);
        return 0;
    }
    /* A leading ';' or '#' would read back as a comment in `popsd -n` output;
     * control bytes have no business in a name or a path. */
    if (value[0] == ';' || value[0] == '#') {
        snprintf(p->msg, sizeof(p->msg), "a value must not start with '%c'", value[0]);
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)value[i] < 0x20 || value[i] == 0x7f) {
            snprintf(p->msg, sizeof(p->msg), "control character in value");
            return 0;
        }
    memcpy(dst, value, n + 1);
    return 1;
}

static int set_u32(struct parse_ctx *p, uint32_t *dst, const char *value, uint32_t min, uint32_t max)
{
    uint32_t v;
    if (strnum_u32_str(value, &v) < 0 || v < min || v > max) {
        snprintf(p->msg, sizeof(p->msg), "expected an integer in %u..%u", min, max);
        return 0;
    }
    *dst = v;
    return 1;
}

static int set_ms(struct parse_ctx *p, uint64_t *dst, const char *value, uint64_t min_ms)
{
    uint64_t v;
    if (strnum_duration_ms(value, &v) < 0 || v < min_ms) {
        snprintf(p->msg, sizeof(p->msg), "expected a duration such as 30s, 10m, 500ms (at least %llums)",
                 (unsigned long long)min_ms);
        return 0;
    }
    *dst = v;
    return 1;
}

static int set_bool(struct parse_ctx *p, bool *dst, const char *value)
{
    if (strnum_bool(value, dst) < 0) {
        snprintf(p->msg, sizeof(p->msg), "expected yes or no");
        return 0;
    }
    return 1;
}

static int set_path(struct parse_ctx *p, char *dst, const char *value)
{
    if (value[0] != '/') {
        snprintf(p->msg, sizeof(p->msg), "expected an absolute path");
        return 0;
    }
    return set_str(p, dst, CONF_PATH_MAX, value);
}

static int server_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf *c = p->c;
    if (strcmp(k, "workers") == 0) {
        if (strcmp(v, "auto") == 0) {
            c->workers = 0;
            return 1;
        }
        uint32_t w;
        if (!set_u32(p, &w, v, 1, CONF_MAX_FRONTS))
            return 0;
        c->workers = w;
        return 1;
    }
    if (strcmp(k, "user") == 0)
        return set_str(p, c->front_user, sizeof(c->front_user), v);
    if (strcmp(k, "auth_user") == 0)
        return set_str(p, c->auth_user, sizeof(c->auth_user), v);
    if (strcmp(k, "mail_user") == 0)
        return set_str(p, c->mail_user, sizeof(c->mail_user), v);
    if (strcmp(k, "implementation") == 0) {
        /* It goes on the wire in CAPA: printable ASCII only. */
        for (const char *q = v; *q; q++)
            if ((unsigned char)*q < 0x20 || (unsigned char)*q > 0x7e) {
                snprintf(p->msg, sizeof(p->msg), "implementation must be printable ASCII");
                return 0;
            }
        return set_str(p, c->implementation, sizeof(c->implementation), v);
    }
    if (strcmp(k, "log") == 0) {
        if (strcmp(v, "syslog") == 0 || strcmp(v, "stderr") == 0) {
            c->log_syslog = strcmp(v, "syslog") == 0;
            return 1;
        }
        snprintf(p->msg, sizeof(p->msg), "expected stderr or syslog");
        return 0;
    }
    if (strcmp(k, "log_level") == 0) {
        static const char *names[] = {"debug", "info", "notice", "warning", "error"};
        for (int i = 0; i < 5; i++)
            if (strcmp(v, names[i]) == 0) {
                c->log_level = (enum log_level)i;
                return 1;
            }
        snprintf(p->msg, sizeof(p->msg), "expected debug, info, notice, warning or error");
        return 0;
    }
    if (strcmp(k, "max_connections") == 0)
        return set_u32(p, &c->max_connections, v, 1, 1000000);
    if (strcmp(k, "max_connections_per_source") == 0)
        return set_u32(p, &c->max_connections_per_source, v, 1, 1000000);
    if (strcmp(k, "timeout_login") == 0)
        return set_ms(p, &c->timeout_login_ms, v, 1000);
    if (strcmp(k, "timeout_idle") == 0)
        return set_ms(p, &c->timeout_idle_ms, v, 600000); /* RFC 1939 section 3: at least 10 minutes */
    if (strcmp(k, "max_bad_commands") == 0)
        return set_u32(p, &c->max_bad_commands, v, 1, 1000);
    if (strcmp(k, "max_auth_attempts") == 0)
        return set_u32(p, &c->max_auth_attempts, v, 1, 100);
    if (strcmp(k, "auth_fail_delay") == 0)
        return set_ms(p, &c->auth_fail_delay_ms, v, 0);
    if (strcmp(k, "login_delay") == 0)
        return set_u32(p, &c->login_delay_s, v, 0, 86400);
    if (strcmp(k, "drain_timeout") == 0)
        return set_ms(p, &c->drain_timeout_ms, v, 1000);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [server]", k);
    return 0;
}

static int tls_key(struct parse_ctx *p, const char *k, const char *v)
{
    if (strcmp(k, "tls12") == 0)
        return set_bool(p, &p->c->tls12, v);
    if (strcmp(k, "session_tickets") == 0)
        return set_bool(p, &p->c->session_tickets, v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [tls]", k);
    return 0;
}

static int cert_key(struct parse_ctx *p, const char *k, const char *v)
{
    if (strcmp(k, "cert") == 0)
        return set_path(p, p->cur_cert->cert, v);
    if (strcmp(k, "key") == 0)
        return set_path(p, p->cur_cert->key, v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [certificate]", k);
    return 0;
}

struct conf_word {
    const char *name;
    uint32_t bit;
};

static const struct conf_word method_words[] = {
    {"password", CONF_METHOD_PASSWORD}, {"app", CONF_METHOD_APP},
    {"oauth", CONF_METHOD_OAUTH},       {"scram", CONF_METHOD_SCRAM},
};
static const struct conf_word mech_words[] = {
    {"PLAIN", CONF_MECH_PLAIN},
    {"SCRAM-SHA-256", CONF_MECH_SCRAM},
    {"SCRAM-SHA-256-PLUS", CONF_MECH_SCRAM_PLUS},
    {"OAUTHBEARER", CONF_MECH_OAUTHBEARER},
    {"XOAUTH2", CONF_MECH_XOAUTH2},
};
static const struct conf_word alg_words[] = {
    {"RS256", CONF_OAUTH_RS256}, {"ES256", CONF_OAUTH_ES256}, {"EdDSA", CONF_OAUTH_EDDSA}};
#define NWORDS(a) (sizeof(a) / sizeof(a[0]))

/* A space-separated set of words from a fixed list, as bits; at least one. */
static int set_words(struct parse_ctx *p, uint32_t *dst, const char *v, const struct conf_word *w, size_t nw)
{
    uint32_t bits = 0;
    while (*v) {
        size_t n = strcspn(v, " \t,");
        if (n > 0) {
            size_t i = 0;
            while (i < nw && !(strlen(w[i].name) == n && strncasecmp(w[i].name, v, n) == 0))
                i++;
            if (i == nw) {
                int o = snprintf(p->msg, sizeof(p->msg), "unknown word '%.*s'; expected any of:", (int)(n > 40 ? 40 : n), v);
                for (size_t j = 0; j < nw && o > 0 && (size_t)o < sizeof(p->msg); j++)
                    o += snprintf(p->msg + o, sizeof(p->msg) - (size_t)o, " %s", w[j].name);
                return 0;
            }
            bits |= w[i].bit;
        }
        v += n;
        v += strspn(v, " \t,");
    }
    if (bits == 0) {
        snprintf(p->msg, sizeof(p->msg), "expected at least one word");
        return 0;
    }
    *dst = bits;
    return 1;
}

static void print_words(FILE *out, uint32_t bits, const struct conf_word *w, size_t nw)
{
    for (size_t i = 0; i < nw; i++)
        if (bits & w[i].bit)
            fprintf(out, " %s", w[i].name);
    fputc('\n', out);
}

static int passwords_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf *c = p->c;
    if (strcmp(k, "min_length") == 0)
        return set_u32(p, &c->pw_min_length, v, 8, 256);
    if (strcmp(k, "min_quality") == 0)
        return set_u32(p, &c->pw_min_quality, v, 0, 100);
    if (strcmp(k, "breached_list") == 0)
        return set_path(p, c->pw_breached_list, v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [passwords]", k);
    return 0;
}

static int oauth_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf_oauth *o = p->cur_oauth;
    if (strcmp(k, "issuer") == 0)
        return set_str(p, o->issuer, sizeof(o->issuer), v);
    if (strcmp(k, "audience") == 0)
        return set_str(p, o->audience, sizeof(o->audience), v);
    if (strcmp(k, "jwks_file") == 0)
        return set_path(p, o->jwks_file, v);
    if (strcmp(k, "algorithms") == 0)
        return set_words(p, &o->algorithms, v, alg_words, NWORDS(alg_words));
    if (strcmp(k, "scope") == 0)
        return set_str(p, o->scope, sizeof(o->scope), v);
    if (strcmp(k, "username_claim") == 0)
        return set_str(p, o->username_claim, sizeof(o->username_claim), v);
    if (strcmp(k, "clock_skew") == 0) {
        if (!set_ms(p, &o->clock_skew_ms, v, 0))
            return 0;
        if (o->clock_skew_ms > 300000) {
            snprintf(p->msg, sizeof(p->msg), "clock_skew is at most 300s");
            return 0;
        }
        return 1;
    }
    if (strcmp(k, "introspection_url") == 0)
        return set_str(p, o->introspection_url, sizeof(o->introspection_url), v);
    if (strcmp(k, "client_id") == 0)
        return set_str(p, o->client_id, sizeof(o->client_id), v);
    if (strcmp(k, "client_secret_file") == 0)
        return set_path(p, o->client_secret_file, v);
    if (strcmp(k, "introspection_ca") == 0)
        return set_path(p, o->introspection_ca, v);
    if (strcmp(k, "introspection_timeout") == 0)
        return set_ms(p, &o->introspection_timeout_ms, v, 100);
    if (strcmp(k, "introspection_cache") == 0)
        return set_ms(p, &o->introspection_cache_ms, v, 0);
    if (strcmp(k, "openid_configuration") == 0)
        return set_str(p, o->openid_configuration, sizeof(o->openid_configuration), v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [oauth]", k);
    return 0;
}

static int userdb_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf *c = p->c;
    if (strcmp(k, "driver") == 0) {
        if (strcmp(v, "sqlite") == 0)
            c->userdb_driver = CONF_USERDB_SQLITE;
        else if (strcmp(v, "passwd-file") == 0)
            c->userdb_driver = CONF_USERDB_PASSWD_FILE;
        else {
            snprintf(p->msg, sizeof(p->msg), "expected sqlite or passwd-file");
            return 0;
        }
        return 1;
    }
    if (strcmp(k, "path") == 0)
        return set_path(p, c->userdb_path, v);
    if (strcmp(k, "allow_weak_schemes") == 0)
        return set_bool(p, &c->allow_weak_schemes, v);
    if (strcmp(k, "lowercase_names") == 0)
        return set_bool(p, &c->lowercase_names, v);
    if (strcmp(k, "threads") == 0) {
        uint32_t t;
        if (!set_u32(p, &t, v, 1, 64))
            return 0;
        c->auth_threads = t;
        return 1;
    }
    if (strcmp(k, "argon2_memory_kib") == 0)
        return set_u32(p, &c->argon2_m_kib, v, 8, 4194304);
    if (strcmp(k, "argon2_iterations") == 0)
        return set_u32(p, &c->argon2_t, v, 1, 100);
    if (strcmp(k, "cache_ttl") == 0)
        return set_ms(p, &c->cache_ttl_ms, v, 0);
    if (strcmp(k, "cache_size") == 0)
        return set_u32(p, &c->cache_size, v, 16, 16777216);
    if (strcmp(k, "scram_iterations") == 0)
        return set_u32(p, &c->scram_iterations, v, 4096, 10000000);
    if (strcmp(k, "methods") == 0)
        return set_words(p, &c->default_methods, v, method_words, NWORDS(method_words));
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [userdb]", k);
    return 0;
}

static int mail_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf *c = p->c;
    if (strcmp(k, "location") == 0)
        return set_path(p, c->mail_location, v);
    if (strcmp(k, "root") == 0) {
        if (!set_path(p, c->mail_root, v))
            return 0;
        /* "/var/vmail/" and "//" mean "/var/vmail" and "/": one spelling for every later comparison. */
        size_t n = strlen(c->mail_root);
        while (n > 1 && c->mail_root[n - 1] == '/')
            c->mail_root[--n] = '\0';
        return 1;
    }
    if (strcmp(k, "create") == 0)
        return set_bool(p, &c->mail_create, v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [mail]", k);
    return 0;
}

/* "ADDR/BITS" with a numeric address; the defence engine re-parses it. */
static bool cidr_ok(const char *v)
{
    char buf[64];
    const char *slash = strchr(v, '/');
    uint32_t bits;
    unsigned char a[16];
    if (slash == NULL || (size_t)(slash - v) >= sizeof(buf) || strnum_u32_str(slash + 1, &bits) < 0)
        return false;
    memcpy(buf, v, (size_t)(slash - v));
    buf[slash - v] = '\0';
    if (inet_pton(AF_INET, buf, a) == 1)
        return bits <= 32;
    return inet_pton(AF_INET6, buf, a) == 1 && bits <= 128;
}

static int defence_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf *c = p->c;
    if (strcmp(k, "delay_max") == 0)
        return set_ms(p, &c->delay_max_ms, v, 0);
    if (strcmp(k, "window") == 0)
        return set_ms(p, &c->window_ms, v, 1000);
    if (strcmp(k, "ban_failures") == 0)
        return set_u32(p, &c->ban_failures, v, 1, 1000000);
    if (strcmp(k, "ban_prefix_failures") == 0)
        return set_u32(p, &c->ban_prefix_failures, v, 1, 1000000);
    if (strcmp(k, "ban_time") == 0)
        return set_ms(p, &c->ban_time_ms, v, 1000);
    if (strcmp(k, "ban_time_max") == 0)
        return set_ms(p, &c->ban_time_max_ms, v, 1000);
    if (strcmp(k, "ban_memory") == 0)
        return set_ms(p, &c->ban_memory_ms, v, 1000);
    if (strcmp(k, "spray_accounts") == 0)
        return set_u32(p, &c->spray_accounts, v, 2, 1000000);
    if (strcmp(k, "spray_password_accounts") == 0)
        return set_u32(p, &c->spray_password_accounts, v, 2, 1000000);
    if (strcmp(k, "account_lock_failures") == 0)
        return set_u32(p, &c->account_lock_failures, v, 1, 1000000);
    if (strcmp(k, "account_lock_time") == 0)
        return set_ms(p, &c->account_lock_time_ms, v, 1000);
    if (strcmp(k, "known_source_time") == 0)
        return set_ms(p, &c->known_source_time_ms, v, 1000);
    if (strcmp(k, "table_size") == 0)
        return set_u32(p, &c->table_size, v, 16, 16777216);
    if (strcmp(k, "state_file") == 0)
        return set_path(p, c->state_file, v);
    if (strcmp(k, "control_socket") == 0) {
        if (strcmp(v, "none") == 0) {
            c->control_socket[0] = '\0';
            return 1;
        }
        return set_path(p, c->control_socket, v);
    }
    if (strcmp(k, "trusted_networks") == 0) {
        char buf[CONF_PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", v);
        char *save = NULL;
        for (char *tok = strtok_r(buf, " \t,", &save); tok != NULL; tok = strtok_r(NULL, " \t,", &save)) {
            if (!cidr_ok(tok) || strlen(tok) >= sizeof(c->trusted[0])) {
                snprintf(p->msg, sizeof(p->msg), "'%.64s' is not a network such as 10.0.0.0/8 or 2001:db8::/32", tok);
                return 0;
            }
            if (c->n_trusted >= CONF_MAX_TRUSTED) {
                snprintf(p->msg, sizeof(p->msg), "too many trusted networks (max %d)", CONF_MAX_TRUSTED);
                return 0;
            }
            snprintf(c->trusted[c->n_trusted++], sizeof(c->trusted[0]), "%s", tok);
        }
        return 1;
    }
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [defence]", k);
    return 0;
}

static const struct {
    const char *name;
    uint32_t bit;
} alert_event_names[] = {
    {"ban", CONF_ALERT_BAN},
    {"account_locked", CONF_ALERT_ACCOUNT_LOCKED},
    {"spraying", CONF_ALERT_SPRAYING},
    {"distributed_spraying", CONF_ALERT_DISTRIBUTED_SPRAYING},
    {"new_source", CONF_ALERT_NEW_SOURCE},
};

static int alert_events(struct parse_ctx *p, uint32_t *dst, const char *v)
{
    char buf[CONF_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", v);
    uint32_t bits = 0;
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t,", &save); tok != NULL; tok = strtok_r(NULL, " \t,", &save)) {
        size_t i = 0, n = sizeof(alert_event_names) / sizeof(alert_event_names[0]);
        while (i < n && strcmp(tok, alert_event_names[i].name) != 0)
            i++;
        if (i == n) {
            snprintf(p->msg, sizeof(p->msg),
                     "'%.40s' is not an event (ban, account_locked, spraying, distributed_spraying, new_source)", tok);
            return 0;
        }
        bits |= alert_event_names[i].bit;
    }
    if (bits == 0) {
        snprintf(p->msg, sizeof(p->msg), "expected at least one event");
        return 0;
    }
    *dst = bits;
    return 1;
}

static int alerts_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf *c = p->c;
    if (strcmp(k, "webhook_url") == 0) {
        /* No spaces or control bytes: the URL goes to libcurl as it is. */
        for (const char *q = v; *q; q++)
            if ((unsigned char)*q <= 0x20 || (unsigned char)*q >= 0x7f) {
                snprintf(p->msg, sizeof(p->msg), "the URL must be printable ASCII without spaces");
                return 0;
            }
        if (strncmp(v, "http://", 7) != 0 && strncmp(v, "https://", 8) != 0) {
            snprintf(p->msg, sizeof(p->msg), "expected an http:// or https:// URL");
            return 0;
        }
        return set_str(p, c->alert_webhook_url, sizeof(c->alert_webhook_url), v);
    }
    if (strcmp(k, "webhook_ca") == 0)
        return set_path(p, c->alert_webhook_ca, v);
    if (strcmp(k, "webhook_timeout") == 0)
        return set_ms(p, &c->alert_webhook_timeout_ms, v, 100);
    if (strcmp(k, "webhook_retries") == 0)
        return set_u32(p, &c->alert_webhook_retries, v, 0, 20);
    if (strcmp(k, "webhook_retry_delay") == 0)
        return set_ms(p, &c->alert_webhook_retry_delay_ms, v, 100);
    if (strcmp(k, "queue_size") == 0)
        return set_u32(p, &c->alert_queue_size, v, 1, 100000);
    if (strcmp(k, "exec") == 0)
        return set_path(p, c->alert_exec, v);
    if (strcmp(k, "exec_timeout") == 0)
        return set_ms(p, &c->alert_exec_timeout_ms, v, 100);
    if (strcmp(k, "exec_max_running") == 0)
        return set_u32(p, &c->alert_exec_max_running, v, 1, 64);
    if (strcmp(k, "events") == 0)
        return alert_events(p, &c->alert_events, v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [alerts]", k);
    return 0;
}

static int metrics_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf *c = p->c;
    if (strcmp(k, "address") == 0) {
        /* A bare port is on loopback: the counters are for the local collector. */
        uint32_t port;
        if (strnum_u32_str(v, &port) == 0) {
            if (port == 0 || port > 65535) {
                snprintf(p->msg, sizeof(p->msg), "expected a port 1..65535 or HOST:PORT");
                return 0;
            }
            snprintf(c->metrics_address, sizeof(c->metrics_address), "127.0.0.1:%u", port);
            return 1;
        }
        const char *colon = strrchr(v, ':');
        if (colon == NULL || colon == v || strnum_u32_str(colon + 1, &port) < 0 || port == 0 || port > 65535) {
            snprintf(p->msg, sizeof(p->msg), "expected a port 1..65535 or HOST:PORT");
            return 0;
        }
        return set_str(p, c->metrics_address, sizeof(c->metrics_address), v);
    }
    if (strcmp(k, "chroot") == 0)
        return set_path(p, c->metrics_chroot, v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [metrics]", k);
    return 0;
}

/* Appends addresses or networks ("192.0.2.7 10.0.0.0/8, 2001:db8::/32") to a
 * space-separated list, each checked. */
static int add_hosts(struct parse_ctx *p, char *list, size_t cap, const char *v)
{
    char buf[CONF_PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", v);
    char *save = NULL;
    for (char *tok = strtok_r(buf, " \t,", &save); tok != NULL; tok = strtok_r(NULL, " \t,", &save)) {
        unsigned char a[16];
        if (!cidr_ok(tok) && inet_pton(AF_INET, tok, a) != 1 && inet_pton(AF_INET6, tok, a) != 1) {
            snprintf(p->msg, sizeof(p->msg), "'%.64s' is not an address or a network such as 10.0.0.0/8",
                     tok);
            return 0;
        }
        size_t used = strlen(list);
        if (used + (used > 0) + strlen(tok) >= cap) {
            snprintf(p->msg, sizeof(p->msg), "list too long (max %zu characters)", cap - 1);
            return 0;
        }
        snprintf(list + used, cap - used, "%s%s", used > 0 ? " " : "", tok);
    }
    return 1;
}

static int listener_key(struct parse_ctx *p, const char *k, const char *v)
{
    struct conf_listener *l = p->cur_listener;
    if (strcmp(k, "address") == 0) {
        if (l->n_addrs >= CONF_MAX_ADDRS) {
            snprintf(p->msg, sizeof(p->msg), "too many addresses (max %d)", CONF_MAX_ADDRS);
            return 0;
        }
        if (!set_str(p, l->addrs[l->n_addrs], sizeof(l->addrs[0]), v))
            return 0;
        l->n_addrs++;
        return 1;
    }
    if (strcmp(k, "tls") == 0) {
        if (strcmp(v, "implicit") == 0)
            l->tls = CONF_TLS_IMPLICIT;
        else if (strcmp(v, "starttls") == 0)
            l->tls = CONF_TLS_STARTTLS;
        else {
            snprintf(p->msg, sizeof(p->msg), "expected implicit or starttls");
            return 0;
        }
        return 1;
    }
    if (strcmp(k, "mechanisms") == 0)
        return set_words(p, &l->mechs, v, mech_words, NWORDS(mech_words));
    if (strcmp(k, "proxy_protocol") == 0)
        return set_bool(p, &l->proxy, v);
    if (strcmp(k, "proxy_trusted") == 0)
        return add_hosts(p, l->proxy_trusted, sizeof(l->proxy_trusted), v);
    snprintf(p->msg, sizeof(p->msg), "unknown key '%s' in [listener]", k);
    return 0;
}

static int name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n >= CONF_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return 0;
    return 1;
}

/* A new "[listener NAME]" or "[certificate NAME]" section starts a new entry. */
static int enter_section(struct parse_ctx *p, const char *section)
{
    struct conf *c = p->c;
    snprintf(p->cur_section, sizeof(p->cur_section), "%s", section);
    p->cur_listener = NULL;
    p->cur_oauth = NULL;
    p->cur_cert = NULL;
    if (strncmp(section, "listener ", 9) == 0) {
        if (!name_ok(section + 9) || c->n_listeners >= CONF_MAX_LISTENERS) {
            snprintf(p->msg, sizeof(p->msg), "bad listener name or too many listeners");
            return 0;
        }
        for (unsigned i = 0; i < c->n_listeners; i++)
            if (strcmp(c->listeners[i].name, section + 9) == 0) {
                snprintf(p->msg, sizeof(p->msg), "duplicate section [%s]", section);
                return 0;
            }
        p->cur_listener = &c->listeners[c->n_listeners++];
        snprintf(p->cur_listener->name, CONF_NAME_MAX, "%s", section + 9);
        p->cur_listener->tls = CONF_TLS_IMPLICIT;
        p->cur_listener->mechs = CONF_MECH_ALL;
    } else if (strncmp(section, "certificate ", 12) == 0) {
        if (!name_ok(section + 12) || c->n_certs >= CONF_MAX_CERTS) {
            snprintf(p->msg, sizeof(p->msg), "bad certificate name or too many certificates");
            return 0;
        }
        for (unsigned i = 0; i < c->n_certs; i++)
            if (strcmp(c->certs[i].name, section + 12) == 0) {
                snprintf(p->msg, sizeof(p->msg), "duplicate section [%s]", section);
                return 0;
            }
        p->cur_cert = &c->certs[c->n_certs++];
        snprintf(p->cur_cert->name, CONF_NAME_MAX, "%s", section + 12);
    } else if (strncmp(section, "oauth ", 6) == 0) {
        if (!name_ok(section + 6) || c->n_oauth >= CONF_MAX_OAUTH) {
            snprintf(p->msg, sizeof(p->msg), "bad oauth issuer name or too many issuers (max %d)", CONF_MAX_OAUTH);
            return 0;
        }
        for (unsigned i = 0; i < c->n_oauth; i++)
            if (strcmp(c->oauth[i].name, section + 6) == 0) {
                snprintf(p->msg, sizeof(p->msg), "duplicate section [%s]", section);
                return 0;
            }
        struct conf_oauth *o = &c->oauth[c->n_oauth++];
        p->cur_oauth = o;
        snprintf(o->name, CONF_NAME_MAX, "%s", section + 6);
        o->algorithms = CONF_OAUTH_RS256 | CONF_OAUTH_ES256 | CONF_OAUTH_EDDSA;
        strcpy(o->username_claim, "email");
        o->clock_skew_ms = 60000;
        o->introspection_timeout_ms = 3000;
        o->introspection_cache_ms = 60000;
    } else if (strcmp(section, "server") && strcmp(section, "tls") && strcmp(section, "userdb") &&
               strcmp(section, "passwords") &&
               strcmp(section, "mail") && strcmp(section, "defence") && strcmp(section, "alerts") &&
               strcmp(section, "metrics")) {
        snprintf(p->msg, sizeof(p->msg), "unknown section [%s]", section);
        return 0;
    }
    return 1;
}

static int handle_key(struct parse_ctx *p, const char *section, const char *name, const char *value)
{
    if (section[0] == '\0') {
        snprintf(p->msg, sizeof(p->msg), "key '%s' outside any section", name);
        return 0;
    }
    if (p->src->headers != p->cur_header || strcmp(section, p->cur_section) != 0) {
        p->cur_header = p->src->headers;
        if (!enter_section(p, section)) {
            if (strcmp(section, p->src->header) == 0)
                p->err_line = p->src->header_line;
            return 0;
        }
    }
    if (strcmp(section, "server") == 0)
        return server_key(p, name, value);
    if (strcmp(section, "tls") == 0)
        return tls_key(p, name, value);
    if (strcmp(section, "userdb") == 0)
        return userdb_key(p, name, value);
    if (strcmp(section, "mail") == 0)
        return mail_key(p, name, value);
    if (strcmp(section, "defence") == 0)
        return defence_key(p, name, value);
    if (strcmp(section, "alerts") == 0)
        return alerts_key(p, name, value);
    if (strcmp(section, "metrics") == 0)
        return metrics_key(p, name, value);
    if (strcmp(section, "passwords") == 0)
        return passwords_key(p, name, value);
    if (p->cur_oauth != NULL)
        return oauth_key(p, name, value);
    if (p->cur_listener != NULL)
        return listener_key(p, name, value);
    return cert_key(p, name, value);
}

static int on_key(void *user, const char *section, const char *name, const char *value)
{
    struct parse_ctx *p = user;
    if (p->msg[0] != '\0')
        return 0; /* report only the first error */
    if (handle_key(p, section, name, value))
        return 1;
    /* inih goes on after a syntax error, so the line it returns may be an
     * earlier syntax error rather than this one: remember where this was. */
    p->key_line = p->src->lineno;
    if (p->err_line == 0)
        p->err_line = p->key_line;
    return 0;
}

static bool path_beneath(const char *path, const char *root)
{
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    return strncmp(path, root, n) == 0 && (path[n] == '/' || (n == 1 && root[0] == '/'));
}

/* Checks that need the whole file: required values and cross-references. */
static int conf_check(const char *name, struct conf *c, bool check_files, struct error *err)
{
    if (c->n_listeners == 0)
        return error_set(err, "%s: no [listener NAME] section", name);
    for (unsigned i = 0; i < c->n_listeners; i++) {
        const struct conf_listener *l = &c->listeners[i];
        if (l->n_addrs == 0)
            return error_set(err, "%s: [listener %s] has no address", name, l->name);
        /* An empty list would trust everyone to name any source address. */
        if (l->proxy && l->proxy_trusted[0] == '\0')
            return error_set(
                err, "%s: [listener %s] proxy_protocol = yes needs proxy_trusted (the balancers' addresses)",
                name, l->name);
        if (!l->proxy && l->proxy_trusted[0] != '\0')
            return error_set(err, "%s: [listener %s] proxy_trusted is set but proxy_protocol is not yes",
                             name, l->name);
    }
    if (c->n_certs == 0)
        return error_set(err, "%s: no [certificate NAME] section; TLS is mandatory", name);
    for (unsigned i = 0; i < c->n_certs; i++) {
        struct conf_cert *ct = &c->certs[i];
        if (ct->cert[0] == '\0' || ct->key[0] == '\0')
            return error_set(err, "%s: [certificate %s] needs cert and key", name, ct->name);
        if (!check_files)
            continue;
        struct stat st;
        if (stat(ct->key, &st) < 0)
            return error_set_errno(err, errno, "%s: [certificate %s] key %s", name, ct->name, ct->key);
        if (st.st_mode & (S_IRWXG | S_IRWXO))
            return error_set(err, "%s: [certificate %s] key %s is group- or world-accessible (mode %03o); "
                                  "chmod 600 it",
                             name, ct->name, ct->key, (unsigned)(st.st_mode & 0777));
        if (stat(ct->cert, &st) < 0)
            return error_set_errno(err, errno, "%s: [certificate %s] cert %s", name, ct->name, ct->cert);
    }
    for (unsigned i = 0; i < c->n_oauth; i++) {
        const struct conf_oauth *o = &c->oauth[i];
        if (o->issuer[0] == '\0')
            return error_set(err, "%s: [oauth %s] needs issuer", name, o->name);
        if (o->jwks_file[0] == '\0' && o->introspection_url[0] == '\0')
            return error_set(err, "%s: [oauth %s] needs jwks_file or introspection_url", name, o->name);
        if (o->jwks_file[0] != '\0' && o->audience[0] == '\0')
            return error_set(err, "%s: [oauth %s] needs audience to validate tokens locally", name, o->name);
        if (o->introspection_url[0] != '\0' && (o->client_id[0] == '\0' || o->client_secret_file[0] == '\0'))
            return error_set(err, "%s: [oauth %s] introspection needs client_id and client_secret_file", name,
                             o->name);
    }
    if (!path_beneath(c->mail_location, c->mail_root))
        return error_set(err, "%s: [mail] location %s is not beneath root %s", name, c->mail_location,
                         c->mail_root);
    if (strstr(c->mail_location, "..") != NULL)
        return error_set(err, "%s: [mail] location must not contain '..'", name);
    if (check_files && c->alert_exec[0] != '\0') {
        /* Run by authd for every alert: it must not be replaceable by anyone but root. */
        struct stat st;
        if (stat(c->alert_exec, &st) < 0)
            return error_set_errno(err, errno, "%s: [alerts] exec %s", name, c->alert_exec);
        if (!S_ISREG(st.st_mode) || !(st.st_mode & S_IXOTH) || (st.st_mode & (S_IWGRP | S_IWOTH)))
            return error_set(err, "%s: [alerts] exec %s must be a regular file, executable by all and writable "
                                  "by its owner only",
                             name, c->alert_exec);
    }
    return 0;
}

static int conf_parse_with(struct line_src *src, const char *name, struct conf *c, bool check_files,
                           struct error *err)
{
    conf_defaults(c);
    snprintf(c->path, sizeof(c->path), "%s", name);
    struct parse_ctx p = {.c = c, .src = src};
    p.cur_section[0] = '\x01'; /* never equal to a real section: forces enter_section */
    int line = ini_parse_stream(line_read, src, on_key, &p);
    if (src->file != NULL && ferror(src->file))
        return error_set(err, "%s: read error", name);
    if (line < 0)
        return error_set(err, "%s: out of memory", name);
    /* Report the first of: a line we could not read whole, a value refused by
     * a handler, a line inih could not parse. */
    int at = 0;
    const char *msg = NULL;
    if (src->bad_line != 0) {
        at = src->bad_line;
        msg = src->bad_msg;
    }
    if (p.msg[0] != '\0' && (at == 0 || p.err_line < at)) {
        at = p.err_line;
        msg = p.msg;
    }
    if (line > 0 && (p.msg[0] == '\0' || line < p.key_line) && (at == 0 || line < at)) {
        at = line;
        msg = "syntax error (expected [section] or key = value)";
    }
    if (at != 0)
        return error_set(err, "%s:%d: %s", name, at, msg);
    return conf_check(name, c, check_files, err);
}

int conf_load(const char *path, struct conf *c, struct error *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return error_set_errno(err, errno, "%s", path);
    if (!S_ISREG(st.st_mode))
        return error_set(err, "%s: not a regular file", path);
    if (st.st_mode & (S_IWGRP | S_IWOTH))
        return error_set(err, "%s: group- or world-writable (mode %03o); refusing it", path,
                         (unsigned)(st.st_mode & 0777));
    struct line_src src = {.file = fopen(path, "re")};
    if (src.file == NULL)
        return error_set_errno(err, errno, "%s", path);
    int r = conf_parse_with(&src, path, c, true, err);
    fclose(src.file);
    return r;
}

int conf_parse_string(const char *text, const char *name, struct conf *c, struct error *err)
{
    struct line_src src = {.str = text};
    return conf_parse_with(&src, name, c, false, err);
}

static const char *ms_str(uint64_t ms, char *buf, size_t n)
{
    if (ms % 1000 == 0)
        snprintf(buf, n, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(buf, n, "%llums", (unsigned long long)ms);
    return buf;
}

unsigned conf_fronts(const struct conf *c)
{
    if (c->workers != 0)
        return c->workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : (n > CONF_MAX_FRONTS ? CONF_MAX_FRONTS : (unsigned)n);
}

void conf_print(const struct conf *c, FILE *out)
{
    static const char *lvl[] = {"debug", "info", "notice", "warning", "error"};
    char b1[32], b2[32], b3[32], b4[32];
    fprintf(out, "# effective configuration of %s\n[server]\n", c->path);
    if (c->workers == 0)
        fprintf(out, "workers = auto\n");
    else
        fprintf(out, "workers = %u\n", c->workers);
    fprintf(out,
            "user = %s\nauth_user = %s\nmail_user = %s\n%simplementation = %s\nlog = %s\nlog_level = %s\n"
            "max_connections = %u\nmax_connections_per_source = %u\ntimeout_login = %s\n"
            "timeout_idle = %s\nmax_bad_commands = %u\nmax_auth_attempts = %u\nauth_fail_delay = %s\n"
            "login_delay = %u\ndrain_timeout = %s\n",
            c->front_user, c->auth_user, c->mail_user, c->implementation[0] ? "" : "# ",
            c->implementation[0] ? c->implementation : "(not advertised)", c->log_syslog ? "syslog" : "stderr",
            lvl[c->log_level], c->max_connections, c->max_connections_per_source,
            ms_str(c->timeout_login_ms, b1, sizeof(b1)), ms_str(c->timeout_idle_ms, b2, sizeof(b2)),
            c->max_bad_commands, c->max_auth_attempts, ms_str(c->auth_fail_delay_ms, b3, sizeof(b3)),
            c->login_delay_s, ms_str(c->drain_timeout_ms, b4, sizeof(b4)));
    fprintf(out, "\n[tls]\ntls12 = %s\nsession_tickets = %s\n", c->tls12 ? "yes" : "no",
            c->session_tickets ? "yes" : "no");
    for (unsigned i = 0; i < c->n_certs; i++)
        fprintf(out, "\n[certificate %s]\ncert = %s\nkey = %s\n", c->certs[i].name, c->certs[i].cert,
                c->certs[i].key);
    fprintf(
        out,
        "\n[userdb]\ndriver = %s\npath = %s\nallow_weak_schemes = %s\nlowercase_names = %s\nthreads = %u\n"
        "argon2_memory_kib = %u\nargon2_iterations = %u\ncache_ttl = %llus\ncache_size = %u\n",
        c->userdb_driver == CONF_USERDB_SQLITE ? "sqlite" : "passwd-file", c->userdb_path,
        c->allow_weak_schemes ? "yes" : "no", c->lowercase_names ? "yes" : "no", c->auth_threads,
        c->argon2_m_kib, c->argon2_t, (unsigned long long)(c->cache_ttl_ms / 1000), c->cache_size);
    fprintf(out, "scram_iterations = %u\nmethods =", c->scram_iterations);
    print_words(out, c->default_methods, method_words, NWORDS(method_words));
    fprintf(out, "\n[passwords]\nmin_length = %u\nmin_quality = %u\n%sbreached_list = %s\n", c->pw_min_length,
            c->pw_min_quality, c->pw_breached_list[0] ? "" : "# ",
            c->pw_breached_list[0] ? c->pw_breached_list : "(not checked)");
    for (unsigned i = 0; i < c->n_oauth; i++) {
        const struct conf_oauth *o = &c->oauth[i];
        char sk[32], it[32], ic[32];
        fprintf(out, "\n[oauth %s]\nissuer = %s\n", o->name, o->issuer);
        const char *opt[][2] = {{"audience", o->audience},
                                {"jwks_file", o->jwks_file},
                                {"scope", o->scope},
                                {"introspection_url", o->introspection_url},
                                {"client_id", o->client_id},
                                {"client_secret_file", o->client_secret_file},
                                {"introspection_ca", o->introspection_ca},
                                {"openid_configuration", o->openid_configuration}};
        for (size_t j = 0; j < sizeof(opt) / sizeof(opt[0]); j++)
            if (opt[j][1][0] != '\0')
                fprintf(out, "%s = %s\n", opt[j][0], opt[j][1]);
        fprintf(out, "username_claim = %s\nclock_skew = %s\nintrospection_timeout = %s\nintrospection_cache = %s\n"
                     "algorithms =",
                o->username_claim, ms_str(o->clock_skew_ms, sk, sizeof(sk)),
                ms_str(o->introspection_timeout_ms, it, sizeof(it)), ms_str(o->introspection_cache_ms, ic, sizeof(ic)));
        print_words(out, o->algorithms, alg_words, NWORDS(alg_words));
    }
    fprintf(out, "\n[mail]\nlocation = %s\nroot = %s\ncreate = %s\n", c->mail_location, c->mail_root,
            c->mail_create ? "yes" : "no");
    char d[9][32];
    fprintf(out,
            "\n[defence]\ndelay_max = %s\nwindow = %s\nban_failures = %u\nban_prefix_failures = %u\n"
            "ban_time = %s\nban_time_max = %s\nban_memory = %s\nspray_accounts = %u\n"
            "spray_password_accounts = %u\naccount_lock_failures = %u\naccount_lock_time = %s\n"
            "known_source_time = %s\ntable_size = %u\n",
            ms_str(c->delay_max_ms, d[0], 32), ms_str(c->window_ms, d[1], 32), c->ban_failures,
            c->ban_prefix_failures, ms_str(c->ban_time_ms, d[2], 32), ms_str(c->ban_time_max_ms, d[3], 32),
            ms_str(c->ban_memory_ms, d[4], 32), c->spray_accounts, c->spray_password_accounts,
            c->account_lock_failures, ms_str(c->account_lock_time_ms, d[5], 32),
            ms_str(c->known_source_time_ms, d[6], 32), c->table_size);
    for (unsigned i = 0; i < c->n_trusted; i++)
        fprintf(out, "trusted_networks = %s\n", c->trusted[i]);
    fprintf(out, "%sstate_file = %s\ncontrol_socket = %s\n", c->state_file[0] ? "" : "# ",
            c->state_file[0] ? c->state_file : "(not kept)", c->control_socket[0] ? c->control_socket : "none");
    fprintf(out, "\n[alerts]\n%swebhook_url = %s\n%swebhook_ca = %s\nwebhook_timeout = %s\nwebhook_retries = %u\n"
                 "webhook_retry_delay = %s\nqueue_size = %u\n%sexec = %s\nexec_timeout = %s\nexec_max_running = %u\n"
                 "events =",
            c->alert_webhook_url[0] ? "" : "# ", c->alert_webhook_url[0] ? c->alert_webhook_url : "(none)",
            c->alert_webhook_ca[0] ? "" : "# ", c->alert_webhook_ca[0] ? c->alert_webhook_ca : "(the system's)",
            ms_str(c->alert_webhook_timeout_ms, d[7], 32), c->alert_webhook_retries,
            ms_str(c->alert_webhook_retry_delay_ms, d[8], 32), c->alert_queue_size, c->alert_exec[0] ? "" : "# ",
            c->alert_exec[0] ? c->alert_exec : "(none)", ms_str(c->alert_exec_timeout_ms, b1, sizeof(b1)),
            c->alert_exec_max_running);
    for (size_t i = 0; i < sizeof(alert_event_names) / sizeof(alert_event_names[0]); i++)
        if (c->alert_events & alert_event_names[i].bit)
            fprintf(out, " %s", alert_event_names[i].name);
    fprintf(out, "\n\n[metrics]\n%saddress = %s\nchroot = %s\n", c->metrics_address[0] ? "" : "# ",
            c->metrics_address[0] ? c->metrics_address : "(off)", c->metrics_chroot);
    for (unsigned i = 0; i < c->n_listeners; i++) {
        const struct conf_listener *l = &c->listeners[i];
        fprintf(out, "\n[listener %s]\ntls = %s\n", l->name, l->tls == CONF_TLS_IMPLICIT ? "implicit" : "starttls");
        fprintf(out, "mechanisms =");
        print_words(out, l->mechs, mech_words, NWORDS(mech_words));
        fprintf(out, "proxy_protocol = %s\n", l->proxy ? "yes" : "no");
        /* One entry a line, as they may have been given: a line has a length limit. */
        for (const char *t = l->proxy_trusted; *t != '\0';) {
            size_t n = strcspn(t, " ");
            fprintf(out, "proxy_trusted = %.*s\n", (int)n, t);
            t += n + (t[n] == ' ');
        }
        for (unsigned j = 0; j < l->n_addrs; j++)
            fprintf(out, "address = %s\n", l->addrs[j]);
    }
}

/* A user name may become a path component only if it cannot climb or hide. */
static bool component_ok(const char *s, size_t n)
{
    if (n == 0 || n > 255 || (n <= 2 && s[0] == '.' && (n == 1 || s[1] == '.')))
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch < 0x21 || ch == 0x7f || ch == '/' || ch == '\\')
            return false;
    }
    return s[0] != '.';
}

int conf_mail_path(const struct conf *c, const char *user, char *out, size_t outsz, struct error *err)
{
    const char *at = strrchr(user, '@');
    size_t ulen = strlen(user);
    size_t nlen = at ? (size_t)(at - user) : ulen;
    const char *dom = at ? at + 1 : "";
    if (!component_ok(user, ulen) || !component_ok(user, nlen))
        return error_set(err, "user name not usable in a mail path");
    size_t o = 0;
    for (const char *t = c->mail_location; *t; t++) {
        const char *piece = t;
        size_t plen = 1;
        if (*t == '%') {
            t++;
            switch (*t) {
            case 'u': piece = user; plen = ulen; break;
            case 'n': piece = user; plen = nlen; break;
            case 'd':
                piece = dom;
                plen = strlen(dom);
                if (plen == 0 || !component_ok(dom, plen))
                    return error_set(err, "user name has no usable domain for %%d");
                break;
            case '%': piece = "%"; plen = 1; break;
            default: return error_set(err, "bad %% escape in mail location");
            }
        }
        if (o + plen >= outsz)
            return error_set(err, "mail path too long");
        memcpy(out + o, piece, plen);
        o += plen;
    }
    out[o] = '\0';
    return 0;
}
