/* popsctl's side of app passwords: one row per device, stored only as the
 * hash apppw_hash() makes, revocable by label or by id. */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/netlist.h"
#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "common/strnum.h"

static int check_label(const char *label, struct error *err)
{
    size_t n = label != NULL ? strnlen(label, USERDB_LABEL_MAX + 1) : 0;
    /* "#ID" is how revoke names an app password by id, so no label looks like one. */
    if (n == 0 || n > USERDB_LABEL_MAX || !userdb_text_ok(label) || label[0] == '#')
        return error_set(err, "invalid label (1-%d bytes, no control characters, not starting with '#')",
                         USERDB_LABEL_MAX);
    return 0;
}

/* Exactly what apppw_hash() makes: anything else is a caller's bug, and a
 * plaintext app password stored by mistake must never get in. */
static int check_hash(const char *hash, struct error *err)
{
    size_t n = hash != NULL ? strnlen(hash, 80) : 0;
    bool ok = n == 7 + 64 && strncmp(hash, "sha256:", 7) == 0;
    for (size_t i = 7; ok && i < n; i++)
        ok = (hash[i] >= '0' && hash[i] <= '9') || (hash[i] >= 'a' && hash[i] <= 'f');
    return ok ? 0 : error_set(err, "invalid app password hash (want sha256:<64 hex digits>)");
}

static int check_networks(const char *networks, struct error *err)
{
    if (strnlen(networks, USERDB_NETWORKS_MAX) >= USERDB_NETWORKS_MAX)
        return error_set(err, "networks list longer than %d bytes", USERDB_NETWORKS_MAX - 1);
    return netlist_check(networks, err);
}

int userdb_admin_app_add(struct userdb_admin *a, const char *name, const char *label, const char *hash,
                         int64_t expires, const char *networks, int64_t *id_r, struct error *err)
{
    if (id_r != NULL)
        *id_r = 0;
    if (networks == NULL)
        networks = "";
    if (userdb_admin_check_name(name, err) < 0 || check_label(label, err) < 0 || check_hash(hash, err) < 0 ||
        check_networks(networks, err) < 0)
        return -1;
    if (expires < 0)
        return error_set(err, "negative expiry time");
    if (userdb_admin_exec(a, "BEGIN IMMEDIATE", "begin", err) < 0)
        return -1;
    int r = userdb_admin_user_exists(a, name, err) == 1 ? 0 : -1;
    if (r == 0) {
        int rc = userdb_admin_run(a,
                                  "INSERT INTO app_passwords(user, label, hash, created, expires, networks)"
                                  " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
                                  "tttiit", name, label, hash, (int64_t)time(NULL), expires, networks);
        if (rc == SQLITE_DONE) {
            if (id_r != NULL)
                *id_r = sqlite3_last_insert_rowid(a->db);
        } else if (rc != SQLITE_CONSTRAINT) {
            r = userdb_admin_sqlerr(a, "add app password", err);
        } else if (userdb_admin_run(a, "SELECT 1 FROM app_passwords WHERE user = ?1 AND label = ?2", "tt",
                                    name, label) == SQLITE_ROW) {
            r = error_set(err, "app password '%s' already exists for '%s'", label, name);
        } else {
            r = error_set(err, "app password hash already in use"); /* 2^-125: a caller storing one twice */
        }
    }
    return userdb_admin_end(a, r, err);
}

int userdb_admin_app_list(struct userdb_admin *a, const char *name,
                          int (*fn)(void *ctx, const struct userdb_app_info *a), void *ctx, struct error *err)
{
    if (userdb_admin_user_exists(a, name, err) != 1)
        return -1;
    sqlite3_stmt *st = NULL;
    if (userdb_admin_prepare(a, &st,
                             "SELECT id, label, created, expires, last_used, last_source, networks"
                             " FROM app_passwords WHERE user = ?1 ORDER BY id",
                             "t", name) < 0)
        return userdb_admin_sqlerr(a, "list app passwords", err);
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        struct userdb_app_info info = {.id = sqlite3_column_int64(st, 0),
                                       .created = sqlite3_column_int64(st, 2),
                                       .expires = sqlite3_column_int64(st, 3),
                                       .last_used = sqlite3_column_int64(st, 4)};
        const char *label = (const char *)sqlite3_column_text(st, 1);
        const char *src = (const char *)sqlite3_column_text(st, 5);
        const char *nets = (const char *)sqlite3_column_text(st, 6);
        snprintf(info.label, sizeof(info.label), "%s", label != NULL ? label : "");
        snprintf(info.last_source, sizeof(info.last_source), "%s", src != NULL ? src : "");
        snprintf(info.networks, sizeof(info.networks), "%s", nets != NULL ? nets : "");
        if (fn(ctx, &info) != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = userdb_admin_sqlerr(a, "list app passwords", err);
    sqlite3_finalize(st);
    return r;
}

int userdb_admin_app_revoke(struct userdb_admin *a, const char *name, const char *label_or_id,
                            struct error *err)
{
    if (name == NULL || label_or_id == NULL)
        return error_set(err, "no user name or app password");
    int rc;
    if (label_or_id[0] == '#') {
        uint64_t id;
        if (strnum_u64_str(label_or_id + 1, &id) < 0 || id > INT64_MAX)
            return error_set(err, "invalid app password id (want #NUMBER)");
        rc = userdb_admin_run(a, "DELETE FROM app_passwords WHERE user = ?1 AND id = ?2", "ti", name,
                              (int64_t)id);
    } else {
        rc = userdb_admin_run(a, "DELETE FROM app_passwords WHERE user = ?1 AND label = ?2", "tt", name,
                              label_or_id);
    }
    if (rc != SQLITE_DONE)
        return userdb_admin_sqlerr(a, "revoke app password", err);
    return sqlite3_changes(a->db) > 0 ? 1 : 0;
}
