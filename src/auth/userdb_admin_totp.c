/* popsctl's side of the per-user login policy: which credentials may open
 * POP3, from where, whether a second factor is required, and the TOTP
 * secret that provides it. */
#include <sqlite3.h>
#include <stdint.h>
#include <string.h>

#include "auth/netlist.h"
#include "auth/totp.h"
#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "common/secret.h"
#include "conf/conf.h"

#define TOTP_SECRET_MIN 16 /* 80 bits, what common authenticator apps accept as a minimum */
#define TOTP_SECRET_MAX (TOTP_SECRET_B32_MAX - 1) /* what auth/totp.h's buffers hold */

int userdb_admin_get_policy(struct userdb_admin *a, const char *name, struct userdb_policy *p,
                            struct error *err)
{
    memset(p, 0, sizeof(*p));
    sqlite3_stmt *st = NULL;
    if (userdb_admin_prepare(a, &st,
                             "SELECT methods, networks, require_mfa, pop3_enabled FROM users WHERE name = ?1",
                             "t", name) < 0)
        return userdb_admin_sqlerr(a, "get policy", err);
    int rc = sqlite3_step(st), r;
    const char *nets = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 1) : NULL;
    if (rc == SQLITE_DONE) {
        r = 0;
    } else if (rc != SQLITE_ROW) {
        r = userdb_admin_sqlerr(a, "get policy", err);
    } else if (nets == NULL || userdb_copy(p->networks, sizeof(p->networks), nets, strlen(nets)) < 0) {
        r = error_set(err, "get policy: malformed networks of '%s'", name);
    } else {
        p->methods = (uint32_t)sqlite3_column_int64(st, 0);
        p->require_mfa = sqlite3_column_int64(st, 2) != 0;
        p->pop3_enabled = sqlite3_column_int64(st, 3) != 0;
        r = 1;
    }
    sqlite3_finalize(st);
    return r;
}

int userdb_admin_set_policy(struct userdb_admin *a, const char *name, const struct userdb_policy *p,
                            struct error *err)
{
    if (userdb_admin_check_name(name, err) < 0)
        return -1;
    if ((p->methods & ~(uint32_t)CONF_METHOD_ALL) != 0)
        return error_set(err, "unknown authentication method bits 0x%x",
                         p->methods & ~(uint32_t)CONF_METHOD_ALL);
    if (strnlen(p->networks, sizeof(p->networks)) >= sizeof(p->networks))
        return error_set(err, "networks list longer than %d bytes", USERDB_NETWORKS_MAX - 1);
    if (netlist_check(p->networks, err) < 0)
        return -1;
    int rc = userdb_admin_run(
        a,
        "UPDATE users SET methods = ?2, networks = ?3, require_mfa = ?4, pop3_enabled = ?5,"
        " updated = " USERDB_NOW_SQL " WHERE name = ?1",
        "titii", name, (int64_t)p->methods, p->networks, (int64_t)p->require_mfa, (int64_t)p->pop3_enabled);
    if (rc != SQLITE_DONE)
        return userdb_admin_sqlerr(a, "set policy", err);
    if (sqlite3_changes(a->db) == 0)
        return error_set(err, "no such user '%s'", name);
    return 0;
}

/* Base32 (RFC 4648) with optional '=' padding at the end, either case. */
static int check_totp_secret(const char *s, struct error *err)
{
    size_t n = strnlen(s, TOTP_SECRET_MAX + 1), pad = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool b32 = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
        if (c == '=')
            pad++;
        else if (!b32 || pad > 0)
            return error_set(err, "TOTP secret is not base32");
    }
    if (n - pad < TOTP_SECRET_MIN || n > TOTP_SECRET_MAX)
        return error_set(err, "TOTP secret must be %d to %d base32 characters", TOTP_SECRET_MIN,
                         TOTP_SECRET_MAX);
    return 0;
}

int userdb_admin_totp_get(struct userdb_admin *a, const char *name, char *secret_b32, size_t cap,
                          bool *confirmed, int64_t *last_step, struct error *err)
{
    if (cap > 0)
        secret_b32[0] = '\0';
    *confirmed = false;
    *last_step = 0;
    sqlite3_stmt *st = NULL;
    if (userdb_admin_prepare(a, &st,
                             "SELECT totp_secret, totp_confirmed, totp_last_step FROM users WHERE name = ?1",
                             "t", name) < 0)
        return userdb_admin_sqlerr(a, "get TOTP", err);
    int rc = sqlite3_step(st), r;
    const char *sec = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    if (rc == SQLITE_DONE) {
        r = error_set(err, "no such user '%s'", name);
    } else if (rc != SQLITE_ROW) {
        r = userdb_admin_sqlerr(a, "get TOTP", err);
    } else if (sec == NULL || sec[0] == '\0') {
        r = 0;
    } else if (userdb_copy(secret_b32, cap, sec, strlen(sec)) < 0) {
        r = error_set(err, "get TOTP: secret longer than the buffer");
    } else {
        *confirmed = sqlite3_column_int64(st, 1) != 0;
        *last_step = sqlite3_column_int64(st, 2);
        r = 1;
    }
    /* Finalizing releases SQLite's copy of the secret with the row. */
    sqlite3_finalize(st);
    return r;
}

/* A new secret starts with no used step; confirming the same secret keeps the
 * step its confirmation code may already have recorded. */
int userdb_admin_totp_set(struct userdb_admin *a, const char *name, const char *secret_b32, bool confirmed,
                          struct error *err)
{
    if (userdb_admin_check_name(name, err) < 0)
        return -1;
    if (secret_b32 == NULL)
        secret_b32 = "";
    if (secret_b32[0] != '\0' && check_totp_secret(secret_b32, err) < 0)
        return -1;
    int64_t on = secret_b32[0] != '\0' && confirmed;
    int rc = userdb_admin_run(a,
                              "UPDATE users SET totp_secret = ?2, totp_confirmed = ?3,"
                              " totp_last_step = CASE WHEN totp_secret = ?2 THEN totp_last_step ELSE 0 END,"
                              " updated = " USERDB_NOW_SQL " WHERE name = ?1",
                              "tti", name, secret_b32, on);
    if (rc != SQLITE_DONE)
        return userdb_admin_sqlerr(a, "set TOTP", err);
    if (sqlite3_changes(a->db) == 0)
        return error_set(err, "no such user '%s'", name);
    return 0;
}

/* The comparison is in the UPDATE itself, so two logins racing with the same
 * code cannot both win. */
int userdb_admin_totp_use_step(struct userdb_admin *a, const char *name, int64_t step, struct error *err)
{
    if (step < 0)
        return error_set(err, "negative TOTP time step");
    int rc = userdb_admin_run(
        a, "UPDATE users SET totp_last_step = ?2 WHERE name = ?1 AND totp_last_step < ?2", "ti", name, step);
    if (rc != SQLITE_DONE)
        return userdb_admin_sqlerr(a, "use TOTP step", err);
    if (sqlite3_changes(a->db) > 0)
        return 1;
    int e = userdb_admin_user_exists(a, name, err);
    return e == 1 ? 0 : -1;
}
