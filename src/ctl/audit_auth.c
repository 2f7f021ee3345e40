/* --probe-auth USER: a handful of failed logins over TLS with a random
 * password, timing each reply, to see whether the server slows failures down
 * or cuts the connection. Bounded: AUDIT_AUTH_ATTEMPTS attempts, at most
 * twice as many rounds (reconnects included). */
#include "ctl/audit.h"

#include "common/b64.h"
#include "common/secret.h"

#include <stdio.h>
#include <string.h>

/* A reply slower than this counts as a deliberate delay. */
#define THROTTLE_MS 500

static int random_password(char *out, size_t cap)
{
    unsigned char raw[16];
    if (cap < 2 * sizeof(raw) + 1 || secret_random(raw, sizeof(raw)) < 0)
        return -1;
    for (size_t i = 0; i < sizeof(raw); i++)
        snprintf(out + 2 * i, cap - 2 * i, "%02x", raw[i]);
    secret_wipe(raw, sizeof(raw));
    return 0;
}

/* Builds "AUTH PLAIN base64(NUL user NUL password)" into cmd; 0 or -1. */
static int build_auth_plain(const char *user, const char *pw, char *cmd, size_t cap)
{
    unsigned char raw[300];
    size_t ul = strlen(user), pl = strlen(pw);
    if (ul + pl + 2 > sizeof(raw))
        return -1;
    raw[0] = '\0';
    memcpy(raw + 1, user, ul);
    raw[1 + ul] = '\0';
    memcpy(raw + 2 + ul, pw, pl);
    char b64[B64_ENCODED_LEN(sizeof(raw)) + 1];
    long n = b64_encode(raw, ul + pl + 2, b64, sizeof(b64));
    secret_wipe(raw, sizeof(raw));
    int w = n < 0 ? -1 : snprintf(cmd, cap, "AUTH PLAIN %s", b64);
    secret_wipe(b64, sizeof(b64));
    return w < 0 || (size_t)w >= cap ? -1 : 0;
}

/* One failed login on an open session. Returns 0 with *delay set, AUDIT_EEOF
 * if the connection was closed (before or after the reply), or another code. */
static int one_attempt(struct audit_ctx *a, struct audit_conn *c, const char *user, struct audit_auth_res *r,
                       int *delay, struct error *err)
{
    char pw[40], cmd[AUDIT_LINE_MAX], reply[AUDIT_LINE_MAX];
    if (random_password(pw, sizeof(pw)) < 0)
        return error_set(err, "no randomness"), AUDIT_EGENERIC;
    int rc = 0;
    if (strcmp(r->method, "AUTH PLAIN") != 0) {
        snprintf(cmd, sizeof(cmd), "USER %s", user);
        rc = audit_pop3_cmd(c, cmd, reply, sizeof(reply), a->t.timeout_ms, err);
        if (rc == 0)
            snprintf(r->method, sizeof(r->method), "AUTH PLAIN");
        else if (rc == 1)
            snprintf(r->method, sizeof(r->method), "USER/PASS");
    }
    if (rc >= 0) {
        if (strcmp(r->method, "AUTH PLAIN") == 0)
            rc = build_auth_plain(user, pw, cmd, sizeof(cmd));
        else
            rc = snprintf(cmd, sizeof(cmd), "PASS %s", pw) < 0 ? -1 : 0;
        if (rc < 0)
            error_set(err, "credentials too long");
    }
    if (rc >= 0) {
        size_t len = strlen(cmd);
        memcpy(cmd + len, "\r\n", 3);
        rc = audit_conn_write(c, cmd, len + 2, a->t.timeout_ms, err);
    }
    secret_wipe(cmd, sizeof(cmd));
    secret_wipe(pw, sizeof(pw));
    if (rc < 0)
        return rc;
    int64_t t0 = audit_now_ms();
    rc = audit_conn_read_line(c, reply, sizeof(reply), a->t.timeout_ms, err);
    *delay = (int)(audit_now_ms() - t0);
    if (rc < 0)
        return rc;
    audit_sanitize(reply);
    if (strncmp(reply, "+OK", 3) == 0)
        snprintf(r->note, sizeof(r->note), "a random password was ACCEPTED for this user");
    return 0;
}

void audit_auth_probe(struct audit_ctx *a, const char *user, struct audit_auth_res *r)
{
    struct audit_conn c = {.fd = -1};
    struct error err = {{0}};
    r->run = true;
    for (int round = 0; round < 2 * AUDIT_AUTH_ATTEMPTS && r->attempts < AUDIT_AUTH_ATTEMPTS; round++) {
        if (c.fd < 0 && audit_pop3_session(a, &c, &err) < 0) {
            snprintf(r->note, sizeof(r->note), "stopped: %.150s", err.msg);
            break;
        }
        int delay = 0;
        int rc = one_attempt(a, &c, user, r, &delay, &err);
        if (rc == 0) {
            r->delay_ms[r->attempts++] = delay;
            continue;
        }
        audit_conn_close(&c);
        if (rc == AUDIT_ETIMEOUT) {
            r->delay_ms[r->attempts] = delay;
            r->cut[r->attempts++] = false;
            r->no_reply = true;
            break;
        }
        if (rc != AUDIT_EEOF) {
            snprintf(r->note, sizeof(r->note), "stopped: %.150s", err.msg);
            break;
        }
        /* Closed: the previous failure cut the connection (or this one did,
         * without a reply). Reconnect and go on. */
        if (r->attempts > 0)
            r->cut[r->attempts - 1] = true;
    }
    audit_conn_close(&c);
    for (int i = 0; i < r->attempts; i++)
        r->throttled |= r->cut[i] || r->delay_ms[i] >= THROTTLE_MS;
    r->throttled |= r->no_reply;
}
