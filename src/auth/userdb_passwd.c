/* Dovecot-style passwd-file, read whole at open into a sorted array:
 *   user:{SCHEME}hash:uid:gid:gecos:home:shell:extra_fields
 * Everything after the seventh ':' is the extra fields (their values may
 * contain ':', as in "userdb_mail=maildir:~/Maildir"). A malformed line makes
 * the whole open fail with file:line, so a typo never silently locks a user
 * out or, worse, lets a restriction go unenforced. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/netlist.h"
#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "common/secret.h"
#include "common/strnum.h"
#include "conf/conf.h"

enum { F_NAME, F_PASS, F_UID, F_GID, F_GECOS, F_HOME, F_SHELL, F_EXTRA, F_COUNT };

struct field {
    const char *p;
    size_t len;
};

struct pw_rec {
    char *name; /* one allocation: name\0pwhash\0mail\0scram\0networks\0, wiped on close */
    char *pwhash;
    char *mail;
    char *scram;
    char *networks;
    size_t size;
    unsigned line;
    bool pop3_enabled;
    bool require_mfa;
    uint32_t methods;
};

struct userdb_passwd {
    struct pw_rec *recs;
    size_t n;
};

/* Extra fields that restrict logins in Dovecot. We cannot enforce them here,
 * and ignoring a restriction would widen access, so a line using one is refused. */
static const char *const unsupported_restrictions[] = {"allow_nets", "allow_real_nets", "nopassword",
                                                       "noauthenticate"};

static bool field_is(struct field f, const char *s)
{
    return f.len == strlen(s) && memcmp(f.p, s, f.len) == 0;
}

/* Resolves a mail location ("maildir:PATH[:options]", or a bare PATH) to an
 * absolute Maildir path; "~" is the home field. */
static int parse_mail(struct field v, struct field home, struct userdb_entry *e, struct error *err)
{
    const char *p = v.p, *end = v.p + v.len;
    const char *colon = memchr(p, ':', v.len);
    if (colon != NULL && p[0] != '/' && p[0] != '~') {
        if ((size_t)(colon - p) != 7 || strncasecmp(p, "maildir", 7) != 0)
            return error_set(err, "unsupported mail format (only maildir:)");
        p = colon + 1;
        colon = memchr(p, ':', (size_t)(end - p));
    }
    if (colon != NULL) /* ":INDEX=...", ":LAYOUT=..." and friends concern Dovecot only */
        end = colon;
    size_t len = (size_t)(end - p);
    if (len == 0)
        return error_set(err, "empty mail path");
    char *out = e->mail;
    size_t cap = sizeof(e->mail);
    if (p[0] == '~') {
        if (len > 1 && p[1] != '/')
            return error_set(err, "only ~/ (the home field) is supported in mail path");
        if (home.len == 0 || home.p[0] != '/')
            return error_set(err, "mail path uses ~ but the home field is not an absolute path");
        if (home.len >= cap)
            return error_set(err, "mail path too long");
        memcpy(out, home.p, home.len);
        out += home.len;
        cap -= home.len;
        p++;
        len--;
    } else if (p[0] != '/') {
        return error_set(err, "mail path must be absolute");
    }
    if (userdb_copy(out, cap, p, len) < 0)
        return error_set(err, "mail path too long");
    /* Checked on the result, so a home field cannot smuggle one in either. */
    if (strchr(e->mail, '%') != NULL)
        return error_set(err, "%%variables in mail path are not supported");
    return 0;
}

static const struct {
    const char *name;
    uint32_t bit;
} method_names[] = {
    {"password", CONF_METHOD_PASSWORD},
    {"app", CONF_METHOD_APP},
    {"oauth", CONF_METHOD_OAUTH},
    {"scram", CONF_METHOD_SCRAM},
};

/* "password,scram": an unknown name is an error, never a silently wider or
 * narrower grant. */
static int parse_methods(struct field v, uint32_t *out, struct error *err)
{
    *out = 0;
    const char *p = v.p, *end = v.p + v.len;
    for (;;) {
        const char *c = memchr(p, ',', (size_t)(end - p));
        struct field w = {p, c != NULL ? (size_t)(c - p) : (size_t)(end - p)};
        size_t i = 0;
        while (i < sizeof(method_names) / sizeof(method_names[0]) && !field_is(w, method_names[i].name))
            i++;
        if (i == sizeof(method_names) / sizeof(method_names[0]))
            return error_set(err, "popsd_methods: unknown method '%.*s' (password, app, oauth, scram)",
                             w.len > 32 ? 32 : (int)w.len, w.p);
        *out |= method_names[i].bit;
        if (c == NULL)
            return 0;
        p = c + 1;
    }
}

/* "CIDR,CIDR" (the extra fields are space-separated); stored space-separated
 * like SQLite's column. Empty would mean "anywhere", the default: whoever
 * writes the field meant a restriction, so it is an error. */
static int parse_networks(struct field v, struct userdb_entry *e, struct error *err)
{
    if (v.len == 0)
        return error_set(err, "popsd_networks needs at least one network");
    if (userdb_copy(e->networks, sizeof(e->networks), v.p, v.len) < 0)
        return error_set(err, "popsd_networks longer than %d bytes", USERDB_NETWORKS_MAX - 1);
    for (char *c = e->networks; (c = strchr(c, ',')) != NULL;)
        *c = ' ';
    if (e->networks[strspn(e->networks, " ")] == '\0')
        return error_set(err, "popsd_networks needs at least one network");
    struct error nerr;
    if (netlist_check(e->networks, &nerr) < 0)
        return error_set(err, "popsd_networks: %s", nerr.msg);
    return 0;
}

/* A bare flag means yes, as Dovecot's "nologin" does. */
static int parse_bool(struct field v, bool bare, bool *out, struct error *err)
{
    char buf[8];
    if (bare) {
        *out = true;
        return 0;
    }
    if (userdb_copy(buf, sizeof(buf), v.p, v.len) < 0 || strnum_bool(buf, out) < 0)
        return error_set(err, "popsd_require_mfa: want yes or no");
    return 0;
}

static int parse_extra(struct field x, struct field home, struct userdb_entry *e, struct error *err)
{
    const char *p = x.p, *end = x.p + x.len;
    while (p < end) {
        if (*p == ' ' || *p == '\t') {
            p++;
            continue;
        }
        size_t n = 0; /* the line is not NUL-terminated: no strcspn */
        while (p + n < end && p[n] != ' ' && p[n] != '\t')
            n++;
        const char *eq = memchr(p, '=', n);
        struct field key = {p, eq != NULL ? (size_t)(eq - p) : n};
        struct field val = {eq != NULL ? eq + 1 : p + n, eq != NULL ? n - key.len - 1 : 0};
        bool bare = eq == NULL;
        p += n;
        if (key.len == 0)
            return error_set(err, "extra field without a name");
        if (field_is(key, "userdb_mail") || field_is(key, "mail")) {
            if (parse_mail(val, home, e, err) < 0)
                return -1;
        } else if (field_is(key, "popsd_methods")) {
            if (parse_methods(val, &e->methods, err) < 0)
                return -1;
        } else if (field_is(key, "popsd_networks")) {
            if (parse_networks(val, e, err) < 0)
                return -1;
        } else if (field_is(key, "popsd_require_mfa")) {
            if (parse_bool(val, bare, &e->require_mfa, err) < 0)
                return -1;
        } else if (field_is(key, "nologin") || field_is(key, "deny")) {
            /* Dovecot treats both as "refuse this login"; so do we, whatever the value. */
            e->pop3_enabled = false;
        } else {
            for (size_t i = 0; i < sizeof(unsupported_restrictions) / sizeof(unsupported_restrictions[0]);
                 i++)
                if (field_is(key, unsupported_restrictions[i]))
                    return error_set(err, "extra field %s is not supported", unsupported_restrictions[i]);
            /* Other fields (quota rules, uid overrides, ...) do not concern POP3. */
        }
    }
    return 0;
}

int userdb_passwd_parse_line(const char *line, size_t len, struct userdb_entry *e, struct error *err)
{
    memset(e, 0, sizeof(*e));
    if (line == NULL)
        return error_set(err, "no line");
    if (len > 0 && line[len - 1] == '\n')
        len--;
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len > USERDB_PASSWD_LINE_MAX)
        return error_set(err, "line longer than %d bytes", USERDB_PASSWD_LINE_MAX);
    size_t i = 0;
    while (i < len && (line[i] == ' ' || line[i] == '\t'))
        i++;
    if (i == len || line[i] == '#')
        return 0;
    for (size_t k = 0; k < len; k++) {
        unsigned char c = (unsigned char)line[k];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return error_set(err, "control character at column %zu", k + 1);
    }

    struct field f[F_COUNT] = {{0}};
    const char *p = line, *end = line + len;
    int nf = 0;
    while (nf < F_COUNT) {
        /* The extra fields take the rest of the line, ':' included. */
        const char *c = nf < F_EXTRA ? memchr(p, ':', (size_t)(end - p)) : NULL;
        f[nf].p = p;
        f[nf].len = c != NULL ? (size_t)(c - p) : (size_t)(end - p);
        nf++;
        if (c == NULL)
            break;
        p = c + 1;
    }
    if (nf < 2)
        return error_set(err, "expected user:password[:...]");
    if (!userdb_name_valid(f[F_NAME].p, f[F_NAME].len))
        return error_set(err, "invalid user name (1-%d bytes, no control characters or '/')",
                         USERDB_NAME_MAX);
    if (f[F_PASS].len == 0)
        /* Dovecot lets an empty field mean "no password" in some setups; we
         * cannot tell which was meant, so make the admin say it explicitly. */
        return error_set(err, "empty password field");
    if (memchr(f[F_PASS].p, '\t', f[F_PASS].len) != NULL)
        return error_set(err, "tab in password field");
    e->pop3_enabled = true;
    struct field home = nf > F_HOME ? f[F_HOME] : (struct field){"", 0};
    if (userdb_copy(e->name, sizeof(e->name), f[F_NAME].p, f[F_NAME].len) < 0 ||
        userdb_copy(e->pwhash, sizeof(e->pwhash), f[F_PASS].p, f[F_PASS].len) < 0) {
        userdb_entry_wipe(e);
        return error_set(err, "password field longer than %d bytes", PWSCHEME_HASH_MAX - 1);
    }
    /* pwhash keeps the SCRAM keys too: PLAIN can verify a password against them. */
    static const char scram_prefix[] = "{SCRAM-SHA-256}";
    if (f[F_PASS].len >= sizeof(scram_prefix) - 1 &&
        strncasecmp(f[F_PASS].p, scram_prefix, sizeof(scram_prefix) - 1) == 0 &&
        userdb_copy(e->scram, sizeof(e->scram), f[F_PASS].p, f[F_PASS].len) < 0) {
        userdb_entry_wipe(e);
        return error_set(err, "SCRAM keys longer than %d bytes", USERDB_SCRAM_MAX - 1);
    }
    if (nf > F_EXTRA && parse_extra(f[F_EXTRA], home, e, err) < 0) {
        userdb_entry_wipe(e);
        return -1;
    }
    return 1;
}

static int rec_cmp(const void *a, const void *b)
{
    return strcmp(((const struct pw_rec *)a)->name, ((const struct pw_rec *)b)->name);
}

static int rec_add(struct userdb_passwd *u, size_t *cap, const struct userdb_entry *e, unsigned line)
{
    if (u->n == *cap) {
        size_t ncap = *cap != 0 ? *cap * 2 : 64;
        struct pw_rec *r = realloc(u->recs, ncap * sizeof(*r));
        if (r == NULL)
            return -1;
        u->recs = r;
        *cap = ncap;
    }
    size_t nl = strlen(e->name) + 1, pl = strlen(e->pwhash) + 1, ml = strlen(e->mail) + 1,
           sl = strlen(e->scram) + 1, wl = strlen(e->networks) + 1;
    char *blk = malloc(nl + pl + ml + sl + wl);
    if (blk == NULL)
        return -1;
    struct pw_rec *r = &u->recs[u->n++];
    r->name = memcpy(blk, e->name, nl);
    r->pwhash = memcpy(blk + nl, e->pwhash, pl);
    r->mail = memcpy(blk + nl + pl, e->mail, ml);
    r->scram = memcpy(blk + nl + pl + ml, e->scram, sl);
    r->networks = memcpy(blk + nl + pl + ml + sl, e->networks, wl);
    r->size = nl + pl + ml + sl + wl;
    r->line = line;
    r->pop3_enabled = e->pop3_enabled;
    r->require_mfa = e->require_mfa;
    r->methods = e->methods;
    return 0;
}

/* Reads the file whole (bounded); the caller wipes and frees *buf_r. */
static int read_file(const char *path, char **buf_r, size_t *len_r, struct error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return error_set_errno(err, errno, "%s", path);
    struct stat st;
    int r = -1;
    char *buf = NULL;
    if (fstat(fd, &st) < 0) {
        error_set_errno(err, errno, "%s: stat", path);
    } else if (!S_ISREG(st.st_mode)) {
        error_set(err, "%s: not a regular file", path);
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        error_set(err, "%s: group- or world-writable passwd-file refused", path);
    } else if ((uintmax_t)st.st_size > USERDB_PASSWD_FILE_MAX) {
        error_set(err, "%s: larger than %u bytes", path, USERDB_PASSWD_FILE_MAX);
    } else if ((buf = malloc((size_t)st.st_size + 1)) == NULL) {
        error_set(err, "%s: out of memory", path);
    } else {
        /* Read to EOF but never past the size we sized for: a file growing
         * under us is an error, not an overflow. */
        size_t len = 0, cap = (size_t)st.st_size + 1;
        ssize_t n = 0;
        while (len < cap && (n = read(fd, buf + len, cap - len)) != 0) {
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                break;
            len += (size_t)n;
        }
        if (len == cap)
            error_set(err, "%s: changed while being read", path);
        else if (n < 0)
            error_set_errno(err, errno, "%s: read", path);
        else {
            *buf_r = buf;
            *len_r = len;
            r = 0;
        }
    }
    close(fd);
    if (r < 0 && buf != NULL) {
        secret_wipe(buf, (size_t)st.st_size + 1);
        free(buf);
    }
    return r;
}

static int load(struct userdb_passwd *u, const char *path, const char *buf, size_t len, struct error *err)
{
    size_t cap = 0;
    unsigned lineno = 0;
    struct userdb_entry e;
    struct error perr = {{0}};
    for (size_t off = 0; off < len;) {
        lineno++;
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t ll = nl != NULL ? (size_t)(nl - (buf + off)) : len - off;
        if (ll > USERDB_PASSWD_LINE_MAX)
            return error_set(err, "%s:%u: line longer than %d bytes", path, lineno, USERDB_PASSWD_LINE_MAX);
        int r = userdb_passwd_parse_line(buf + off, ll, &e, &perr);
        off += ll + (nl != NULL ? 1 : 0);
        if (r < 0)
            return error_set(err, "%s:%u: %s", path, lineno, perr.msg);
        if (r == 0)
            continue;
        r = rec_add(u, &cap, &e, lineno);
        userdb_entry_wipe(&e);
        if (r < 0)
            return error_set(err, "%s: out of memory", path);
    }
    if (u->n > 1)
        qsort(u->recs, u->n, sizeof(u->recs[0]), rec_cmp);
    for (size_t i = 1; i < u->n; i++) {
        if (strcmp(u->recs[i - 1].name, u->recs[i].name) == 0) {
            unsigned a = u->recs[i - 1].line, b = u->recs[i].line;
            return error_set(err, "%s:%u: duplicate user (also on line %u)", path, a > b ? a : b,
                             a < b ? a : b);
        }
    }
    return 0;
}

int userdb_passwd_open(const char *path, struct userdb_passwd **db_r, struct error *err)
{
    *db_r = NULL;
    char *buf = NULL;
    size_t len = 0;
    if (read_file(path, &buf, &len, err) < 0)
        return -1;
    struct userdb_passwd *u = calloc(1, sizeof(*u));
    int r = u != NULL ? load(u, path, buf, len, err) : error_set(err, "out of memory");
    secret_wipe(buf, len);
    free(buf);
    if (r < 0) {
        userdb_passwd_close(&u);
        return -1;
    }
    *db_r = u;
    return 0;
}

int userdb_passwd_lookup(struct userdb_passwd *u, const char *name, struct userdb_entry *e)
{
    struct pw_rec key = {.name = (char *)name};
    const struct pw_rec *r = u->n > 0 ? bsearch(&key, u->recs, u->n, sizeof(u->recs[0]), rec_cmp) : NULL;
    if (r == NULL)
        return 0;
    /* Each field was bounded by the same buffers when the line was parsed. */
    userdb_copy(e->name, sizeof(e->name), r->name, strlen(r->name));
    userdb_copy(e->pwhash, sizeof(e->pwhash), r->pwhash, strlen(r->pwhash));
    userdb_copy(e->mail, sizeof(e->mail), r->mail, strlen(r->mail));
    userdb_copy(e->scram, sizeof(e->scram), r->scram, strlen(r->scram));
    userdb_copy(e->networks, sizeof(e->networks), r->networks, strlen(r->networks));
    e->pop3_enabled = r->pop3_enabled;
    e->require_mfa = r->require_mfa;
    e->methods = r->methods;
    return 1;
}

int userdb_passwd_sample(struct userdb_passwd *u, char *out, size_t outsz)
{
    /* The records are sorted by name: take the first line of the file instead. */
    const struct pw_rec *first = NULL;
    for (size_t i = 0; i < u->n; i++)
        if (first == NULL || u->recs[i].line < first->line)
            first = &u->recs[i];
    if (first == NULL)
        return 0;
    return userdb_copy(out, outsz, first->pwhash, strlen(first->pwhash)) < 0 ? -1 : 1;
}

void userdb_passwd_close(struct userdb_passwd **u)
{
    if (u == NULL || *u == NULL)
        return;
    for (size_t i = 0; i < (*u)->n; i++) {
        secret_wipe((*u)->recs[i].name, (*u)->recs[i].size);
        free((*u)->recs[i].name);
    }
    free((*u)->recs);
    free(*u);
    *u = NULL;
}
