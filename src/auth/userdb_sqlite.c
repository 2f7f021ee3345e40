/* Read-only SQLite user database for authd. Each handle is opened with
 * SQLITE_OPEN_NOMUTEX, so it belongs to one thread: every worker opens its own. */
#include <errno.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "common/secret.h"

#define BUSY_TIMEOUT_MS 2000

struct userdb_sqlite {
    sqlite3 *db;
    sqlite3_stmt *lookup;
};

static const char lookup_sql[] = "SELECT password, mail, pop3_enabled FROM users WHERE name = ?1";

static int check_schema(sqlite3 *db, const char *path, struct error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return error_set(err, "%s: not a popsd user database: %s", path, sqlite3_errmsg(db));
    int r = 0;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        r = error_set(err, "%s: reading schema version: %s", path, sqlite3_errmsg(db));
    else if (sqlite3_column_int64(st, 0) != USERDB_SCHEMA_VERSION)
        r = error_set(err, "%s: unsupported schema version %lld (this build reads %d)", path,
                      (long long)sqlite3_column_int64(st, 0), USERDB_SCHEMA_VERSION);
    sqlite3_finalize(st);
    return r;
}

int userdb_sqlite_open(const char *path, struct userdb_sqlite **db_r, struct error *err)
{
    *db_r = NULL;
    /* SQLite would open a missing path lazily and fail on first use; say so now. */
    struct stat st;
    if (stat(path, &st) < 0)
        return error_set_errno(err, errno, "%s", path);
    if (!S_ISREG(st.st_mode))
        return error_set(err, "%s: not a regular file", path);
    if (st.st_mode & S_IWOTH)
        return error_set(err, "%s: world-writable user database refused", path);

    struct userdb_sqlite *u = calloc(1, sizeof(*u));
    if (u == NULL)
        return error_set(err, "out of memory");
    int rc = sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        error_set(err, "%s: %s", path, u->db != NULL ? sqlite3_errmsg(u->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(u->db, BUSY_TIMEOUT_MS);
    if (check_schema(u->db, path, err) < 0)
        goto fail;
    if (sqlite3_prepare_v3(u->db, lookup_sql, -1, SQLITE_PREPARE_PERSISTENT, &u->lookup, NULL) != SQLITE_OK) {
        error_set(err, "%s: %s", path, sqlite3_errmsg(u->db));
        goto fail;
    }
    *db_r = u;
    return 0;
fail:
    userdb_sqlite_close(&u);
    return -1;
}

/* Copies a text column, refusing NULL, embedded NULs and anything too long
 * rather than truncating a hash or a path. */
static int column_copy(sqlite3_stmt *st, int col, char *dst, size_t dstsz)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    int n = sqlite3_column_bytes(st, col);
    if (t == NULL || n < 0 || strlen((const char *)t) != (size_t)n)
        return -1;
    return userdb_copy(dst, dstsz, (const char *)t, (size_t)n);
}

int userdb_sqlite_sample(struct userdb_sqlite *u, char *out, size_t outsz, struct error *err)
{
    sqlite3_stmt *st = NULL;
    int r;
    if (sqlite3_prepare_v2(u->db, "SELECT password FROM users ORDER BY rowid LIMIT 1", -1, &st, NULL) != SQLITE_OK)
        return error_set(err, "userdb sample: %s", sqlite3_errmsg(u->db));
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        r = 0;
    else if (rc != SQLITE_ROW || column_copy(st, 0, out, outsz) < 0)
        r = error_set(err, "userdb sample: %s", sqlite3_errmsg(u->db));
    else
        r = 1;
    sqlite3_finalize(st);
    return r;
}

int userdb_sqlite_lookup(struct userdb_sqlite *u, const char *name, struct userdb_entry *e, struct error *err)
{
    sqlite3_stmt *st = u->lookup;
    int r;
    sqlite3_reset(st);
    if (sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC) != SQLITE_OK) {
        r = error_set(err, "userdb lookup: %s", sqlite3_errmsg(u->db));
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = 0;
    } else if (rc != SQLITE_ROW) {
        r = error_set(err, "userdb lookup: %s", sqlite3_errmsg(u->db));
    } else if (userdb_copy(e->name, sizeof(e->name), name, strlen(name)) < 0 ||
               column_copy(st, 0, e->pwhash, sizeof(e->pwhash)) < 0 || e->pwhash[0] == '\0' ||
               column_copy(st, 1, e->mail, sizeof(e->mail)) < 0) {
        /* The caller answers [SYS/TEMP]: a bad row is an admin's problem, not a wrong password. */
        r = error_set(err, "userdb lookup: malformed row (empty/NULL/oversized password or mail)");
    } else {
        e->pop3_enabled = sqlite3_column_int64(st, 2) != 0;
        r = 1;
    }
out:
    if (r != 1)
        userdb_entry_wipe(e);
    /* Releases the row (and SQLite's copy of the hash) and the bound name. */
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

void userdb_sqlite_close(struct userdb_sqlite **u)
{
    if (u == NULL || *u == NULL)
        return;
    sqlite3_finalize((*u)->lookup);
    sqlite3_close((*u)->db);
    free(*u);
    *u = NULL;
}
