/* Read-write management of the SQLite user database, for popsctl only.
 * authd never links this path in practice: it opens the file read-only. */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "auth/userdb_int.h"

#define BUSY_TIMEOUT_MS 2000
#define DB_FILE_MODE 0640

struct userdb_admin {
    sqlite3 *db;
};

/* journal_mode=DELETE (not WAL): WAL readers need write access to the -shm
 * file, and authd opens this file read-only. secure_delete overwrites the
 * pages of deleted users so their hashes do not linger in free pages. */
static const char setup_sql[] = "PRAGMA journal_mode=DELETE;"
                                "PRAGMA secure_delete=ON;";

static const char schema_sql[] = "CREATE TABLE IF NOT EXISTS schema_version ("
                                 " version INTEGER NOT NULL);"
                                 "CREATE TABLE IF NOT EXISTS users ("
                                 " name TEXT PRIMARY KEY NOT NULL,"
                                 " password TEXT NOT NULL,"
                                 " mail TEXT NOT NULL DEFAULT '',"
                                 " pop3_enabled INTEGER NOT NULL DEFAULT 1,"
                                 " created TEXT NOT NULL,"
                                 " updated TEXT NOT NULL);";

#define NOW_SQL "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

static int sql_error(struct userdb_admin *a, const char *what, struct error *err)
{
    return error_set(err, "%s: %s", what, sqlite3_errmsg(a->db));
}

static int exec(struct userdb_admin *a, const char *sql, const char *what, struct error *err)
{
    if (sqlite3_exec(a->db, sql, NULL, NULL, NULL) != SQLITE_OK)
        return sql_error(a, what, err);
    return 0;
}

/* Creates the tables if missing and checks the version, in one transaction so
 * two popsctl runs creating the same file cannot both insert a version row. */
static int init_schema(struct userdb_admin *a, struct error *err)
{
    if (exec(a, "BEGIN IMMEDIATE", "begin", err) < 0)
        return -1;
    sqlite3_stmt *st = NULL;
    int r = exec(a, schema_sql, "create schema", err);
    if (r == 0 &&
        sqlite3_prepare_v2(a->db, "SELECT max(version) FROM schema_version", -1, &st, NULL) != SQLITE_OK)
        r = sql_error(a, "schema version", err);
    if (r == 0 && sqlite3_step(st) != SQLITE_ROW)
        r = sql_error(a, "schema version", err);
    if (r == 0) {
        if (sqlite3_column_type(st, 0) == SQLITE_NULL) {
            sqlite3_finalize(st);
            st = NULL;
            char sql[96];
            snprintf(sql, sizeof(sql), "INSERT INTO schema_version(version) VALUES(%d)",
                     USERDB_SCHEMA_VERSION);
            r = exec(a, sql, "schema version", err);
        } else if (sqlite3_column_int64(st, 0) != USERDB_SCHEMA_VERSION) {
            r = error_set(err, "unsupported schema version %lld (this build manages %d)",
                          (long long)sqlite3_column_int64(st, 0), USERDB_SCHEMA_VERSION);
        }
    }
    sqlite3_finalize(st);
    if (r == 0)
        return exec(a, "COMMIT", "commit", err);
    sqlite3_exec(a->db, "ROLLBACK", NULL, NULL, NULL);
    return -1;
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
        int rc = fchmod(fd, DB_FILE_MODE);
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
    if (exec(a, setup_sql, path, err) < 0 || init_schema(a, err) < 0)
        goto fail;
    *db_r = a;
    return 0;
fail:
    userdb_admin_close(&a);
    if (created)
        unlink(path); /* do not leave an empty or half-made database behind */
    return -1;
}

static bool no_controls(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

static int check_name(const char *name, struct error *err)
{
    if (name == NULL || !userdb_name_valid(name, strnlen(name, USERDB_NAME_MAX + 1)))
        return error_set(err, "invalid user name (1-%d bytes, no control characters, ':' or '/')",
                         USERDB_NAME_MAX);
    return 0;
}

static int check_hash(const char *pwhash, struct error *err)
{
    if (pwhash == NULL || pwhash[0] == '\0' || strnlen(pwhash, PWSCHEME_HASH_MAX) >= PWSCHEME_HASH_MAX ||
        !no_controls(pwhash) || strchr(pwhash, ':') != NULL)
        return error_set(err, "invalid password hash");
    return 0;
}

static int check_mail(const char *mail, struct error *err)
{
    if (mail[0] == '\0')
        return 0;
    if (strnlen(mail, USERDB_PATH_MAX) >= USERDB_PATH_MAX)
        return error_set(err, "mail path longer than %d bytes", USERDB_PATH_MAX - 1);
    if (mail[0] != '/' || !no_controls(mail))
        return error_set(err, "mail path must be absolute, without control characters");
    return 0;
}

/* Runs one prepared statement with up to three text parameters; returns the
 * sqlite3_step code, or -1 if it could not even be prepared. */
static int run(struct userdb_admin *a, const char *sql, const char *p1, const char *p2, const char *p3)
{
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(a->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    const char *p[3] = {p1, p2, p3};
    for (int i = 0; i < 3; i++)
        if (p[i] != NULL && sqlite3_bind_text(st, i + 1, p[i], -1, SQLITE_STATIC) != SQLITE_OK) {
            sqlite3_finalize(st);
            return -1;
        }
    int rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc;
}

int userdb_admin_add(struct userdb_admin *a, const char *name, const char *pwhash, const char *mail,
                     struct error *err)
{
    if (mail == NULL)
        mail = "";
    if (check_name(name, err) < 0 || check_hash(pwhash, err) < 0 || check_mail(mail, err) < 0)
        return -1;
    int rc = run(a,
                 "INSERT INTO users(name, password, mail, pop3_enabled, created, updated)"
                 " VALUES(?1, ?2, ?3, 1, " NOW_SQL ", " NOW_SQL ")",
                 name, pwhash, mail);
    if (rc == SQLITE_DONE)
        return 0;
    if ((sqlite3_extended_errcode(a->db) & 0xff) == SQLITE_CONSTRAINT)
        return error_set(err, "user '%s' already exists", name);
    return sql_error(a, "add user", err);
}

int userdb_admin_set_password(struct userdb_admin *a, const char *name, const char *pwhash, struct error *err)
{
    if (check_name(name, err) < 0 || check_hash(pwhash, err) < 0)
        return -1;
    int rc =
        run(a, "UPDATE users SET password = ?2, updated = " NOW_SQL " WHERE name = ?1", name, pwhash, NULL);
    if (rc != SQLITE_DONE)
        return sql_error(a, "set password", err);
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
    int rc = run(a, "DELETE FROM users WHERE name = ?1", name, NULL, NULL);
    if (rc != SQLITE_DONE)
        return sql_error(a, "delete user", err);
    if (sqlite3_changes(a->db) == 0)
        return check_name(name, err) < 0 ? -1 : error_set(err, "no such user '%s'", name);
    return 0;
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
        return sql_error(a, "list users", err);
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
        r = sql_error(a, "list users", err);
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
