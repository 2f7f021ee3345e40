/* A small POP3 client for the audit: greeting, CAPA before and after TLS,
 * what the server offers in clear, and the STLS command injection probe.
 * Every read has the run's timeout; every connection is one probe. */
#include "ctl/audit.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* The injection probe waits this long for an answer to the injected command:
 * a vulnerable server answers at once, a safe one never does. */
#define INJECTION_WAIT_MS 2000

int audit_pop3_cmd(struct audit_conn *c, const char *cmd, char *reply, size_t cap, int timeout_ms,
                   struct error *err)
{
    char line[AUDIT_LINE_MAX];
    int n = snprintf(line, sizeof(line), "%s\r\n", cmd);
    if (n < 0 || (size_t)n >= sizeof(line))
        return error_set(err, "command too long"), AUDIT_EGENERIC;
    int rc = audit_conn_write(c, line, (size_t)n, timeout_ms, err);
    if (rc < 0)
        return rc;
    rc = audit_conn_read_line(c, reply, cap, timeout_ms, err);
    if (rc < 0)
        return rc;
    audit_sanitize(reply);
    return strncmp(reply, "+OK", 3) == 0 ? 1 : 0;
}

int audit_pop3_multiline(struct audit_conn *c, char (*lines)[AUDIT_CAPA_LEN], int max, int timeout_ms,
                         struct error *err)
{
    char line[AUDIT_LINE_MAX];
    int n = 0;
    /* Bounded: a server streaming endless lines is cut off. */
    for (int i = 0; i < 4 * AUDIT_MAX_CAPA; i++) {
        int rc = audit_conn_read_line(c, line, sizeof(line), timeout_ms, err);
        if (rc < 0)
            return rc;
        if (strcmp(line, ".") == 0)
            return n;
        const char *s = line[0] == '.' ? line + 1 : line;
        if (n < max) {
            audit_copy(lines[n], AUDIT_CAPA_LEN, s);
            audit_sanitize(lines[n]);
            n++;
        }
    }
    return error_set(err, "multi-line response too long"), AUDIT_EGENERIC;
}

static int read_greeting(struct audit_ctx *a, struct audit_conn *c, char *out, size_t cap, struct error *err)
{
    int rc = audit_conn_read_line(c, out, cap, a->t.timeout_ms, err);
    if (rc == AUDIT_ETIMEOUT) {
        error_set(err, "no POP3 greeting within %d ms", a->t.timeout_ms);
        return AUDIT_EPOP3;
    }
    if (rc < 0)
        return rc;
    audit_sanitize(out);
    if (strncmp(out, "+OK", 3) != 0)
        return error_set(err, "not a POP3 greeting: %.60s", out), AUDIT_EPOP3;
    return 0;
}

int audit_pop3_open_transport(struct audit_ctx *a, struct audit_conn *c, struct error *err)
{
    int rc = audit_connect(a, c, err);
    if (rc < 0 || !a->t.starttls)
        return rc;
    char line[AUDIT_LINE_MAX];
    if ((rc = read_greeting(a, c, line, sizeof(line), err)) < 0)
        goto fail;
    rc = audit_pop3_cmd(c, "STLS", line, sizeof(line), a->t.timeout_ms, err);
    if (rc == 0) {
        error_set(err, "STLS refused: %.60s", line);
        rc = AUDIT_EPOP3;
    }
    if (rc < 0)
        goto fail;
    if (c->len != 0) {
        error_set(err, "server sent data after its STLS reply");
        rc = AUDIT_EPOP3;
        goto fail;
    }
    return 0;
fail:
    audit_conn_close(c);
    return rc == AUDIT_EUNREACH || rc == AUDIT_EBUDGET ? rc : AUDIT_EPOP3;
}

int audit_pop3_session(struct audit_ctx *a, struct audit_conn *c, struct error *err)
{
    int rc = audit_pop3_open_transport(a, c, err);
    if (rc < 0)
        return rc;
    if ((rc = audit_tls_start(a, c, err)) < 0)
        goto fail;
    if (!a->t.starttls) {
        char line[AUDIT_LINE_MAX];
        if ((rc = read_greeting(a, c, line, sizeof(line), err)) < 0)
            goto fail;
    }
    return 0;
fail:
    audit_conn_close(c);
    return rc;
}

static bool word_eq(const char *s, const char *w)
{
    size_t n = strlen(w);
    return strncasecmp(s, w, n) == 0 && (s[n] == '\0' || s[n] == ' ');
}

static bool has_version(const char *s)
{
    for (; s[0] != '\0' && s[1] != '\0' && s[2] != '\0'; s++)
        if (isdigit((unsigned char)s[0]) && s[1] == '.' && isdigit((unsigned char)s[2]))
            return true;
    return false;
}

/* An RFC 1939 APOP timestamp: <...@...> in the greeting. */
static bool has_apop(const char *g)
{
    const char *lt = strchr(g, '<');
    const char *gt = lt != NULL ? strchr(lt, '>') : NULL;
    const char *at = lt != NULL ? strchr(lt, '@') : NULL;
    return gt != NULL && at != NULL && at < gt;
}

static void scan_capa(struct audit_pop3_res *r, char (*capa)[AUDIT_CAPA_LEN], int n, bool clear)
{
    for (int i = 0; i < n; i++) {
        const char *l = capa[i];
        if (word_eq(l, "IMPLEMENTATION") && r->implementation[0] == '\0')
            audit_copy(r->implementation, sizeof(r->implementation), l + (l[14] ? 15 : 14));
        if (!clear)
            continue;
        if (word_eq(l, "STLS"))
            r->stls_offered = true;
        if (word_eq(l, "USER"))
            r->user_clear = true;
        if (word_eq(l, "SASL")) {
            /* Mechanisms that send the password itself. */
            static const char *const weak[] = {"PLAIN", "LOGIN"};
            for (size_t k = 0; k < sizeof(weak) / sizeof(weak[0]); k++) {
                const char *p = l + 4;
                size_t wl = strlen(weak[k]);
                while ((p = strcasestr(p, weak[k])) != NULL) {
                    if (p[-1] == ' ' && (p[wl] == ' ' || p[wl] == '\0')) {
                        size_t used = strlen(r->sasl_clear);
                        snprintf(r->sasl_clear + used, sizeof(r->sasl_clear) - used, "%s%s", used ? " " : "",
                                 weak[k]);
                        break;
                    }
                    p += wl;
                }
            }
        }
    }
}

static int read_capa(struct audit_ctx *a, struct audit_conn *c, char (*capa)[AUDIT_CAPA_LEN], int *n,
                     struct error *err)
{
    char line[AUDIT_LINE_MAX];
    int rc = audit_pop3_cmd(c, "CAPA", line, sizeof(line), a->t.timeout_ms, err);
    if (rc <= 0)
        return rc == 0 ? (error_set(err, "CAPA refused: %.60s", line), AUDIT_EPOP3) : rc;
    rc = audit_pop3_multiline(c, capa, AUDIT_MAX_CAPA, a->t.timeout_ms, err);
    if (rc < 0)
        return rc;
    *n = rc;
    return 0;
}

/* STARTTLS mode: greeting and CAPA in clear, STLS, CAPA again over TLS. */
static void check_starttls(struct audit_ctx *a, struct audit_pop3_res *r)
{
    struct audit_conn c;
    struct error err = {{0}};
    char line[AUDIT_LINE_MAX];
    if (audit_connect(a, &c, &err) < 0 || read_greeting(a, &c, r->greeting, sizeof(r->greeting), &err) < 0)
        goto out;
    r->greeting_ok = true;
    if (read_capa(a, &c, r->capa_plain, &r->ncapa_plain, &err) == 0) {
        r->capa_plain_ok = true;
        scan_capa(r, r->capa_plain, r->ncapa_plain, true);
    }
    if (audit_pop3_cmd(&c, "STLS", line, sizeof(line), a->t.timeout_ms, &err) != 1) {
        if (err.msg[0] == '\0')
            error_set(&err, "STLS refused: %.60s", line);
        goto out;
    }
    if (audit_tls_start(a, &c, &err) < 0)
        goto out;
    if (read_capa(a, &c, r->capa_tls, &r->ncapa_tls, &err) == 0) {
        r->capa_tls_ok = true;
        scan_capa(r, r->capa_tls, r->ncapa_tls, false);
    }
    (void)audit_pop3_cmd(&c, "QUIT", line, sizeof(line), a->t.timeout_ms, NULL);
    audit_conn_close(&c);

    /* A second session: does the server take USER before TLS, whatever CAPA
     * says? No password is ever sent in clear. */
    if (audit_connect(a, &c, &err) < 0 || read_greeting(a, &c, line, sizeof(line), &err) < 0)
        goto out;
    int ok = audit_pop3_cmd(&c, "USER popsctl-audit-nonexistent", line, sizeof(line), a->t.timeout_ms, &err);
    if (ok == 1)
        r->user_accepted_clear = true;
    (void)audit_pop3_cmd(&c, "QUIT", line, sizeof(line), a->t.timeout_ms, NULL);
    err.msg[0] = '\0';
out:
    if (err.msg[0] != '\0')
        audit_copy(r->note, sizeof(r->note), err.msg);
    audit_conn_close(&c);
}

static void check_implicit(struct audit_ctx *a, struct audit_pop3_res *r)
{
    struct audit_conn c;
    struct error err = {{0}};
    char line[AUDIT_LINE_MAX];
    if (audit_connect(a, &c, &err) < 0 || audit_tls_start(a, &c, &err) < 0 ||
        read_greeting(a, &c, r->greeting, sizeof(r->greeting), &err) < 0)
        goto out;
    r->greeting_ok = true;
    if (read_capa(a, &c, r->capa_tls, &r->ncapa_tls, &err) == 0) {
        r->capa_tls_ok = true;
        scan_capa(r, r->capa_tls, r->ncapa_tls, false);
    }
    (void)audit_pop3_cmd(&c, "QUIT", line, sizeof(line), a->t.timeout_ms, NULL);
out:
    if (err.msg[0] != '\0')
        audit_copy(r->note, sizeof(r->note), err.msg);
    audit_conn_close(&c);
}

void audit_pop3_check(struct audit_ctx *a, struct audit_pop3_res *r)
{
    if (a->t.starttls)
        check_starttls(a, r);
    else
        check_implicit(a, r);
    if (r->greeting_ok) {
        r->apop = has_apop(r->greeting);
        r->version_leak = has_version(r->implementation) || has_version(r->greeting);
    }
}

void audit_pop3_injection(struct audit_ctx *a, struct audit_pop3_res *r)
{
    struct audit_conn c;
    struct error err = {{0}};
    char line[AUDIT_LINE_MAX];
    r->injection = INJ_ERROR;
    if (audit_connect(a, &c, &err) < 0 || read_greeting(a, &c, line, sizeof(line), &err) < 0) {
        snprintf(r->inj_detail, sizeof(r->inj_detail), "not tested: %.150s", err.msg);
        goto out;
    }
    /* One write, so both commands reach the server in the same segment. */
    static const char pipelined[] = "STLS\r\nCAPA\r\n";
    int rc = audit_conn_write(&c, pipelined, sizeof(pipelined) - 1, a->t.timeout_ms, &err);
    if (rc == 0)
        rc = audit_conn_read_line(&c, line, sizeof(line), a->t.timeout_ms, &err);
    if (rc < 0 || strncmp(line, "+OK", 3) != 0) {
        if (rc >= 0)
            audit_sanitize(line);
        r->injection = INJ_SAFE_REFUSED;
        snprintf(r->inj_detail, sizeof(r->inj_detail), "pipelined STLS refused (%.100s)",
                 rc < 0 ? err.msg : line);
        goto out;
    }
    if (c.len != 0) {
        snprintf(r->inj_detail, sizeof(r->inj_detail),
                 "server answered the pipelined command in clear before TLS");
        goto out;
    }
    if (audit_tls_start(a, &c, &err) < 0) {
        r->injection = INJ_SAFE_REFUSED;
        snprintf(r->inj_detail, sizeof(r->inj_detail), "no TLS after pipelined STLS (%.100s)", err.msg);
        goto out;
    }
    int wait = a->t.timeout_ms < INJECTION_WAIT_MS ? a->t.timeout_ms : INJECTION_WAIT_MS;
    rc = audit_conn_read_line(&c, line, sizeof(line), wait, &err);
    if (rc >= 0) {
        audit_sanitize(line);
        r->injection = INJ_VULNERABLE;
        snprintf(r->inj_detail, sizeof(r->inj_detail),
                 "CAPA sent in clear before the handshake was answered inside TLS: \"%.60s\"", line);
    } else if (rc == AUDIT_ETIMEOUT) {
        r->injection = INJ_SAFE_IGNORED;
        snprintf(r->inj_detail, sizeof(r->inj_detail), "pipelined command discarded (no answer in %d ms)",
                 wait);
    } else {
        r->injection = INJ_SAFE_REFUSED;
        snprintf(r->inj_detail, sizeof(r->inj_detail), "connection closed after the handshake");
    }
    (void)audit_pop3_cmd(&c, "QUIT", line, sizeof(line), a->t.timeout_ms, NULL);
out:
    audit_conn_close(&c);
}
