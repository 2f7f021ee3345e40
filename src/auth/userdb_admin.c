/* Read-write management of the SQLite user database, for popsctl only:
 * creation and migration of the schema, and the users themselves.
 * App passwords are in userdb_admin_app.c, policy and TOTP in userdb_admin_totp.c. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "auth/userdb_int.h"

#define BUSY_TIMEOUT_MS 2000
#define DB_FILE_MODE 0640

/* journal_mode=DELETE (not WAL): WAL readers need write access to the -shm
 * file, and authd may open this file read-only. secure_delete overwrites the
 * pages of deleted users and app passwords so their hashes do not linger in
 * free pages. foreign_keys: an app password never outlives its user (delete
 * also removes them explicitly, so nothing depends on it). */
static const char setup_sql[] = "PRAGMA journal_mode=DELETE;"
                                "PRAGMA secure_delete=ON;"
                                "PRAGMA foreign_keys=ON;";

/* A new file gets version 1 and then every migration, so the upgrade path of
 * existing installations is the path every database takes. */
static const char schema_v1_sql[] = "CREATE TABLE users ("
                                    " name TEXT PRIMARY KEY NOT NULL,"
                                    " password TEXT NOT NULL,"
                                    " mail TEXT NOT NULL DEFAULT '',"
                                    " pop3_enabled INTEGER NOT NULL DEFAULT 1,"
                                    " created TEXT NOT NULL,"
                                    " updated TEXT NOT NULL);"
                                    "INSERT INTO schema_version(version) VALUES(1);";

/* migrations[v] takes a database from version v to v + 1. */
static const char *const migrations[USERDB_SCHEMA_VERSION] = {
    [1] = "ALTER TABLE users ADD COLUMN scram TEXT NOT NULL DEFAULT '';"
          "ALTER TABLE users ADD COLUMN methods INTEGER NOT NULL DEFAULT 0;"
          "ALTER TABLE users ADD COLUMN networks TEXT NOT NULL DEFAULT '';"
          "ALTER TABLE users ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;"
          "ALTER TABLE users ADD COLUMN totp_secret TEXT NOT NULL DEFAULT '';"
          "ALTER TABLE users ADD COLUMN totp_confirmed INTEGER NOT NULL DEFAULT 0;"
          "ALTER TABLE users ADD COLUMN totp_last_step INTEGER NOT NULL DEFAULT 0;"
          /* UNIQUE(hash) is the index authd's lookup by hash probes. */
          "CREATE TABLE app_passwords ("
          " id INTEGER PRIMARY KEY,"
          " user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,"
          " label TEXT NOT NULL,"
          " hash TEXT NOT NULL UNIQUE,"
          " created INTEGER NOT NULL,"
          " expires INTEGER NOT NULL DEFAULT 0,"
          " networks TEXT NOT NULL DEFAULT '',"
          " last_used INTEGER NOT NULL DEFAULT 0,"
          " last_source TEXT NOT NULL DEFAULT '',"
          " UNIQUE(user, label));",
};

int userdb_admin_sqlerr(struct userdb_admin *a, const char *what, struct error *err)
{
    return error_set(err, "%s: %s", what, sqlite3_errmsg(a->db));
}

int userdb_admin_exec(struct userdb_admin *a, const char *sql, const char *what, struct error *err)
{
    if (sqlite3_exec(a->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return userdb_admin_sqlerr(a, what, err);
    return 0;
}

int userdb_admin_end(struct userdb_admin *a, int r, struct error *err)
{
    if (r == 0)
        return userdb_admin_exec(a, "COMMIT", "commit", err);
    sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

/* Creates or migrates the schema in one transaction: two popsctl runs cannot
 * both create it, and a failed migration leaves the old version intact. */
static int init_schema(struct userdb_admin *a, struct error *err)
{
    if (userdb_admin_exec(a, "BEGIN IMMEDIATE", "begin", err) < 0)
        return -1;
    sqlite3_stmt *st = NULL;
    int r = userdb_admin_exec(a, "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
                              "create schema", err);
    if (r == 0 &&
        sqlite3_prepare_v2(a->db, "SELECT max(version) FROM schema_version", -1, &st, NULL) != SQLITE_OK)
        r = userdb_admin_sqlerr(a, "schema version", err);
    if (r == 0 && sqlite3_step(st) != SQLITE_ROW)
        r = userdb_admin_sqlerr(a, "schema version", err);
    bool fresh = r == 0 && sqlite3_column_type(st, 0) == SQLITE_NULL;
    long long v = r == 0 ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_finalize(st);
    if (r == 0 && fresh) {
        r = userdb_admin_exec(a, schema_v1_sql, "create schema", err);
        v = 1;
    }
    if (r == 0 && (v < 1 || v > USERDB_SCHEMA_VERSION))
        r = error_set(err, "unsupported schema version %lld (this build manages %d)", v,
                      USERDB_SCHEMA_VERSION);
    for (; r == 0 && v < USERDB_SCHEMA_VERSION; v++) {
        char what[48];
        snprintf(what, sizeof(what), "upgrade schema %lld to %lld", v, v + 1);
        r = userdb_admin_exec(a, migrations[v], what, err);
        if (r == 0 && userdb_admin_run(a, "UPDATE schema_version SET version = ?1", "i", (int64_t)(v + 1)) !=
                          SQLITE_DONE)
            r = userdb_admin_sqlerr(a, what, err);
    }
    return userdb_admin_end(a, r, err);
}

int userdb_admin_open(const char *path, struct userdb_admin **db_r, struct error *err)
{
    *db_r = NULL;
    if (path == NULL || path[0] == '\0')
        return error_set(err, "no user database path");
    /* Create the file ourselves so its mode is 0640 whatever the umask, before
     * SQLite (which would use 0644) sees it. The journal inherits the mode. */
    bool created = false;
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, DB_FILE_MODE);
    if (fd >= 0) {
        created = true;
        /* The file takes its directory's group (install -d -g _popsd-auth), so
         * authd can read it; and if that group may write the directory, the
         * file too (authd's last-use records and hash upgrades). */
        mode_t mode = DB_FILE_MODE;
        char dir[USERDB_PATH_MAX];
        snprintf(dir, sizeof(dir), "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash == dir)
            slash[1] = '\0';
        else if (slash != NULL)
            *slash = '\0';
        else
            strcpy(dir, ".");
        struct stat dst;
        if (stat(dir, &dst) == 0) {
            if (fchown(fd, (uid_t)-1, dst.st_gid) < 0) {
                /* not fatal: the admin can chgrp it */
            }
            if (dst.st_mode & S_IWGRP)
                mode |= S_IWGRP;
        }
        int rc = fchmod(fd, mode);
        int saved = errno;
        close(fd);
        if (rc < 0) {
            unlink(path);
            return error_set_errno(err, saved, "%s: chmod", path);
        }
    } else if (errno != EEXIST) {
        return error_set_errno(err, errno, "%s: create", path);
    }

    struct userdb_admin *a = calloc(1, sizeof(*a));
    if (a == NULL) {
        error_set(err, "out of memory");
        goto fail;
    }
    int rc = sqlite3_open_v2(path, &a->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        error_set(err, "%s: %s", path, a->db != NULL ? sqlite3_errmsg(a->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(a->db, BUSY_TIMEOUT_MS);
    if (userdb_admin_exec(a, setup_sql, path, err) < 0 || init_schema(a, err) < 0)
        goto fail;
    *db_r = a;
    return 0;
fail:
    userdb_admin_close(&a);
    if (created)
        unlink(path); /* do not leave an empty or half-made database behind */
    return -1;
}

int userdb_admin_check_name(const char *name, struct error *err)
{
    if (name == NULL || !userdb_name_valid(name, strnlen(name, USERDB_NAME_MAX + 1)))
        return error_set(err, "invalid user name (1-%d bytes, no control characters, ':' or '/')",
                         USERDB_NAME_MAX);
    return 0;
}

static int check_hash(const char *pwhash, struct error *err)
{
    if (pwhash == NULL || pwhash[0] == '\0' || strnlen(pwhash, PWSCHEME_HASH_MAX) >= PWSCHEME_HASH_MAX ||
        !userdb_text_ok(pwhash) || strchr(pwhash, ':') != NULL)
        return error_set(err, "invalid password hash");
    return 0;
}

static int check_mail(const char *mail, struct error *err)
{
    if (mail[0] == '\0')
        return 0;
    if (strnlen(mail, USERDB_PATH_MAX) >= USERDB_PATH_MAX)
        return error_set(err, "mail path longer than %d bytes", USERDB_PATH_MAX - 1);
    if (mail[0] != '/' || !userdb_text_ok(mail))
        return error_set(err, "mail path must be absolute, without control characters");
    return 0;
}

/* SCRAM keys in Dovecot's notation, or "" for none. Their content is the
 * SCRAM module's business; here only what could break a row or a terminal. */
static int check_scram(const char *scram, struct error *err)
{
    static const char prefix[] = "{SCRAM-SHA-256}";
    if (scram[0] == '\0')
        return 0;
    if (strnlen(scram, USERDB_SCRAM_MAX) >= USERDB_SCRAM_MAX || !userdb_text_ok(scram) ||
        strncasecmp(scram, prefix, sizeof(prefix) - 1) != 0 || strchr(scram, ':') != NULL)
        return error_set(err, "invalid SCRAM keys (want {SCRAM-SHA-256}..., under %d bytes)",
                         USERDB_SCRAM_MAX);
    return 0;
}

static int vprepare(struct userdb_admin *a, sqlite3_stmt **st, const char *sql, const char *types, va_list ap)
{
    *st = NULL;
    if (sqlite3_prepare_v2(a->db, sql, -1, st, NULL) != SQLITE_OK)
        return -1;
    int rc = SQLITE_OK;
    for (int i = 0; types[i] != '\0' && rc == SQLITE_OK; i++) {
        if (types[i] == 'i') {
            rc = sqlite3_bind_int64(*st, i + 1, va_arg(ap, int64_t));
        } else {
            const char *t = va_arg(ap, const char *);
            rc = t != NULL ? sqlite3_bind_text(*st, i + 1, t, -1, SQLITE_STATIC)
                           : sqlite3_bind_null(*st, i + 1);
        }
    }
    if (rc == SQLITE_OK)
        return 0;
    sqlite3_finalize(*st);
    *st = NULL;
    return -1;
}

int userdb_admin_prepare(struct userdb_admin *a, sqlite3_stmt **st, const char *sql, const char *types, ...)
{
    va_list ap;
    va_start(ap, types);
    int r = vprepare(a, st, sql, types, ap);
    va_end(ap);
    return r;
}

int userdb_admin_run(struct userdb_admin *a, const char *sql, const char *types, ...)
{
    sqlite3_stmt *st = NULL;
    va_list ap;
    va_start(ap, types);
    int r = vprepare(a, &st, sql, types, ap);
    va_end(ap);
    if (r < 0)
        return -1;
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

int userdb_admin_user_exists(struct userdb_admin *a, const char *name, struct error *err)
{
    int rc = userdb_admin_run(a, "SELECT 1 FROM users WHERE name = ?1", "t", name);
    if (rc == SQLITE_ROW)
        return 1;
    if (rc != SQLITE_DONE)
        return userdb_admin_sqlerr(a, "look up user", err);
    if (userdb_admin_check_name(name, err) == 0) /* an invalid name is not echoed */
        error_set(err, "no such user '%s'", name);
    return 0;
}

int userdb_admin_add(struct userdb_admin *a, const char *name, const char *pwhash, const char *scram,
                     const char *mail, struct error *err)
{
    if (mail == NULL)
        mail = "";
    if (scram == NULL)
        scram = "";
    if (userdb_admin_check_name(name, err) < 0 || check_hash(pwhash, err) < 0 ||
        check_scram(scram, err) < 0 || check_mail(mail, err) < 0)
        return -1;
    int rc = userdb_admin_run(a,
                              "INSERT INTO users(name, password, scram, mail, pop3_enabled, created, updated)"
                              " VALUES(?1, ?2, ?3, ?4, 1, " USERDB_NOW_SQL ", " USERDB_NOW_SQL ")",
                              "tttt", name, pwhash, scram, mail);
    if (rc == SQLITE_DONE)
        return 0;
    if ((sqlite3_extended_errcode(a->db) & 0xff) == SQLITE_CONSTRAINT)
        return error_set(err, "user '%s' already exists", name);
    return userdb_admin_sqlerr(a, "add user", err);
}

/* One statement replaces both verifiers: no reader ever sees the new
 * password hash with the old SCRAM keys or the reverse. */
int userdb_admin_set_password(struct userdb_admin *a, const char *name, const char *pwhash, const char *scram,
                              struct error *err)
{
    if (scram == NULL)
        scram = "";
    if (userdb_admin_check_name(name, err) < 0 || check_hash(pwhash, err) < 0 || check_scram(scram, err) < 0)
        return -1;
    int rc = userdb_admin_run(
        a, "UPDATE users SET password = ?2, scram = ?3, updated = " USERDB_NOW_SQL " WHERE name = ?1", "ttt",
        name, pwhash, scram);
    if (rc != SQLITE_DONE)
        return userdb_admin_sqlerr(a, "set password", err);
    if (sqlite3_changes(a->db) == 0)
        return error_set(err, "no such user '%s'", name);
    return 0;
}

int userdb_admin_delete(struct userdb_admin *a, const char *name, struct error *err)
{
    /* No name check beyond presence: a row with a name we would no longer
     * accept must still be removable. The name is not echoed if invalid. */
    if (name == NULL)
        return error_set(err, "no user name");
    if (userdb_admin_exec(a, "BEGIN IMMEDIATE", "begin", err) < 0)
        return -1;
    int r = 0;
    if (userdb_admin_run(a, "DELETE FROM app_passwords WHERE user = ?1", "t", name) != SQLITE_DONE ||
        userdb_admin_run(a, "DELETE FROM users WHERE name = ?1", "t", name) != SQLITE_DONE)
        r = userdb_admin_sqlerr(a, "delete user", err);
    else if (sqlite3_changes(a->db) == 0)
        r = userdb_admin_check_name(name, err) < 0 ? -1 : error_set(err, "no such user '%s'", name);
    return userdb_admin_end(a, r, err);
}

/* The scheme shown by `popsctl user list`: the "{SCHEME}" of a stored hash, or
 * the family of a bare one. Never any part of the hash itself. */
static const char *scheme_of(const char *h, char *buf, size_t bufsz)
{
    static const struct {
        const char *prefix, *scheme;
    } bare[] = {
        {"$argon2id$", "ARGON2ID"}, {"$argon2i$", "ARGON2I"}, {"$2", "BLF-CRYPT"},  {"$6$", "SHA512-CRYPT"},
        {"$5$", "SHA256-CRYPT"},    {"$y$", "YESCRYPT"},      {"$1$", "MD5-CRYPT"},
    };
    if (h == NULL)
        return "?";
    if (h[0] == '{') {
        size_t n = strcspn(h + 1, "}");
        if (h[1 + n] != '}' || n == 0 || n >= bufsz || n > 32)
            return "?";
        for (size_t i = 0; i < n; i++) {
            char c = h[1 + i];
            if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                  c == '_' || c == '.'))
                return "?";
            buf[i] = (char)((c >= 'a' && c <= 'z') ? c - 'a' + 'A' : c);
        }
        buf[n] = '\0';
        return buf;
    }
    for (size_t i = 0; i < sizeof(bare) / sizeof(bare[0]); i++)
        if (strncmp(h, bare[i].prefix, strlen(bare[i].prefix)) == 0)
            return bare[i].scheme;
    return "CRYPT";
}

int userdb_admin_list(struct userdb_admin *a,
                      int (*fn)(void *ctx, const char *name, const char *mail, bool pop3_enabled,
                                const char *scheme, const char *updated),
                      void *ctx, struct error *err)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db,
                           "SELECT name, mail, pop3_enabled, password, updated FROM users ORDER BY name", -1,
                           &st, NULL) != SQLITE_OK)
        return userdb_admin_sqlerr(a, "list users", err);
    int rc, r = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        char sbuf[40];
        const char *name = (const char *)sqlite3_column_text(st, 0);
        const char *mail = (const char *)sqlite3_column_text(st, 1);
        const char *updated = (const char *)sqlite3_column_text(st, 4);
        const char *scheme = scheme_of((const char *)sqlite3_column_text(st, 3), sbuf, sizeof(sbuf));
        if (fn(ctx, name != NULL ? name : "", mail != NULL ? mail : "", sqlite3_column_int64(st, 2) != 0,
               scheme, updated != NULL ? updated : "") != 0)
            break;
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        r = userdb_admin_sqlerr(a, "list users", err);
    sqlite3_finalize(st);
    return r;
}

void userdb_admin_close(struct userdb_admin **a)
{
    if (a == NULL || *a == NULL)
        return;
    sqlite3_close((*a)->db);
    free(*a);
    *a = NULL;
}
