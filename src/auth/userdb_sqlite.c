/* SQLite user database for authd. Each handle is opened with
 * SQLITE_OPEN_NOMUTEX, so it belongs to one thread: every worker opens its own.
 *
 * Reads go through a read-only connection opened at start (as root, before the
 * privilege drop). authd's few writes (app password last use, hash upgrades)
 * go through a second, read-write connection opened on first use, under the
 * credentials authd has then: the database is writable only if the authd user
 * itself may write the file and its directory (SQLite puts its journal there).
 * Deciding that at open would ask root, who may write anything. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "common/secret.h"
#include "conf/conf.h"

#define BUSY_TIMEOUT_MS 2000
/* A login never waits long for bookkeeping: a busy database skips the write. */
#define WRITE_BUSY_TIMEOUT_MS 200

struct userdb_sqlite {
    sqlite3 *db; /* read-only */
    sqlite3_stmt *lookup, *app_find;
    char *path, *dir; /* absolute, for the lazy read-write open */
    /* Write side, valid for the effective ids it was decided under. */
    bool probed, writable;
    uid_t probe_uid;
    gid_t probe_gid;
    sqlite3 *rw;
    sqlite3_stmt *app_used, *upgrade;
};

static const char lookup_sql[] = "SELECT password, mail, pop3_enabled, scram, methods, networks, require_mfa"
                                 " FROM users WHERE name = ?1";
static const char app_find_sql[] =
    "SELECT id, label, expires, networks FROM app_passwords WHERE hash = ?1 AND user = ?2";
/* A client polling every minute from the same place rewrites the row at most
 * once a minute: a matching row is only changed when it would say something new. */
static const char app_used_sql[] = "UPDATE app_passwords SET last_used = ?2, last_source = ?3"
                                   " WHERE id = ?1 AND (last_used <= ?2 - 60 OR last_source <> ?3)";
static const char upgrade_sql[] =
    "UPDATE users SET password = ?3, updated = " USERDB_NOW_SQL " WHERE name = ?1 AND password = ?2";

static int check_schema(sqlite3 *db, const char *path, struct error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(db, "SELECT max(version) FROM schema_version", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return error_set(err, "%s: not a popsd user database: %s", path, sqlite3_errmsg(db));
    int r = 0;
    rc = sqlite3_step(st);
    long long v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
    if (rc != SQLITE_ROW)
        r = error_set(err, "%s: reading schema version: %s", path, sqlite3_errmsg(db));
    else if (v < USERDB_SCHEMA_VERSION)
        /* authd opens it read-only: only popsctl migrates. */
        r = error_set(err,
                      "%s: schema version %lld is older than this build's %d: run any popsctl command "
                      "(e.g. `popsctl user list`) to upgrade it",
                      path, v, USERDB_SCHEMA_VERSION);
    else if (v != USERDB_SCHEMA_VERSION)
        r = error_set(err, "%s: unsupported schema version %lld (this build reads %d)", path, v,
                      USERDB_SCHEMA_VERSION);
    sqlite3_finalize(st);
    return r;
}

static int prepare(sqlite3 *db, const char *sql, sqlite3_stmt **st, const char *path, struct error *err)
{
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, st, NULL) != SQLITE_OK)
        return error_set(err, "%s: %s", path, sqlite3_errmsg(db));
    return 0;
}

/* Remembers the absolute path and its directory: authd may change directory
 * before its first write. */
static int keep_path(struct userdb_sqlite *u, const char *path, struct error *err)
{
    char abs[PATH_MAX];
    if (realpath(path, abs) == NULL)
        return error_set_errno(err, errno, "%s", path);
    u->path = strdup(abs);
    u->dir = strdup(abs);
    if (u->path == NULL || u->dir == NULL)
        return error_set(err, "out of memory");
    char *d = dirname(u->dir); /* "/x/users.db" gives "/x" in place, "/users.db" gives "/" (static) */
    if (d != u->dir)
        memmove(u->dir, d, strlen(d) + 1);
    return 0;
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
    if (keep_path(u, path, err) < 0)
        goto fail;
    int rc = sqlite3_open_v2(path, &u->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        error_set(err, "%s: %s", path, u->db != NULL ? sqlite3_errmsg(u->db) : sqlite3_errstr(rc));
        goto fail;
    }
    sqlite3_busy_timeout(u->db, BUSY_TIMEOUT_MS);
    if (check_schema(u->db, path, err) < 0 || prepare(u->db, lookup_sql, &u->lookup, path, err) < 0 ||
        prepare(u->db, app_find_sql, &u->app_find, path, err) < 0)
        goto fail;
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
    if (sqlite3_prepare_v2(u->db, "SELECT password FROM users ORDER BY rowid LIMIT 1", -1, &st, NULL) !=
        SQLITE_OK)
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

/* A methods value this build does not know is a bad row, not a wider grant. */
static int column_methods(sqlite3_stmt *st, int col, uint32_t *out)
{
    sqlite3_int64 v = sqlite3_column_int64(st, col);
    if (sqlite3_column_type(st, col) != SQLITE_INTEGER || v < 0 || (v & ~(sqlite3_int64)CONF_METHOD_ALL) != 0)
        return -1;
    *out = (uint32_t)v;
    return 0;
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
               column_copy(st, 1, e->mail, sizeof(e->mail)) < 0 ||
               column_copy(st, 3, e->scram, sizeof(e->scram)) < 0 || column_methods(st, 4, &e->methods) < 0 ||
               column_copy(st, 5, e->networks, sizeof(e->networks)) < 0) {
        /* The caller answers [SYS/TEMP]: a bad row is an admin's problem, not a wrong password. */
        r = error_set(err, "userdb lookup: malformed row (empty/NULL/oversized password, mail, scram or "
                           "networks, or unknown methods)");
    } else {
        e->pop3_enabled = sqlite3_column_int64(st, 2) != 0;
        e->require_mfa = sqlite3_column_int64(st, 6) != 0;
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

int userdb_sqlite_app_find(struct userdb_sqlite *u, const char *user, const char *hash,
                           struct userdb_app_password *ap, struct error *err)
{
    sqlite3_stmt *st = u->app_find;
    int r;
    sqlite3_reset(st);
    if (sqlite3_bind_text(st, 1, hash, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, user, -1, SQLITE_STATIC) != SQLITE_OK) {
        r = error_set(err, "app password lookup: %s", sqlite3_errmsg(u->db));
        goto out;
    }
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        r = 0;
    } else if (rc != SQLITE_ROW) {
        r = error_set(err, "app password lookup: %s", sqlite3_errmsg(u->db));
    } else if (column_copy(st, 1, ap->label, sizeof(ap->label)) < 0 ||
               column_copy(st, 3, ap->networks, sizeof(ap->networks)) < 0 ||
               sqlite3_column_int64(st, 2) < 0) {
        r = error_set(err, "app password lookup: malformed row (label, networks or expiry)");
    } else {
        ap->id = sqlite3_column_int64(st, 0);
        ap->expires = sqlite3_column_int64(st, 2);
        r = 1;
    }
out:
    if (r != 1)
        memset(ap, 0, sizeof(*ap));
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static void rw_close(struct userdb_sqlite *u)
{
    sqlite3_finalize(u->app_used);
    sqlite3_finalize(u->upgrade);
    sqlite3_close(u->rw);
    u->app_used = u->upgrade = NULL;
    u->rw = NULL;
}

/* The read-write connection, opened under the current credentials. SQLite
 * quietly opens a write-protected file read-only: that counts as "not writable". */
static bool rw_open(struct userdb_sqlite *u)
{
    if (faccessat(AT_FDCWD, u->path, R_OK | W_OK, AT_EACCESS) < 0 ||
        faccessat(AT_FDCWD, u->dir, W_OK | X_OK, AT_EACCESS) < 0)
        return false;
    if (sqlite3_open_v2(u->path, &u->rw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK ||
        sqlite3_db_readonly(u->rw, "main") != 0)
        goto fail;
    sqlite3_busy_timeout(u->rw, WRITE_BUSY_TIMEOUT_MS);
    /* Like popsctl's connection: a replaced hash must not linger in a free page. */
    if (sqlite3_exec(u->rw, "PRAGMA secure_delete=ON", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v3(u->rw, app_used_sql, -1, SQLITE_PREPARE_PERSISTENT, &u->app_used, NULL) !=
            SQLITE_OK ||
        sqlite3_prepare_v3(u->rw, upgrade_sql, -1, SQLITE_PREPARE_PERSISTENT, &u->upgrade, NULL) != SQLITE_OK)
        goto fail;
    return true;
fail:
    rw_close(u);
    return false;
}

bool userdb_sqlite_writable(struct userdb_sqlite *u)
{
    uid_t uid = geteuid();
    gid_t gid = getegid();
    if (!u->probed || uid != u->probe_uid || gid != u->probe_gid) {
        rw_close(u);
        u->probed = true;
        u->probe_uid = uid;
        u->probe_gid = gid;
        u->writable = rw_open(u);
    }
    return u->writable;
}

/* Runs one bound write. Busy or suddenly read-only is not an error for the
 * login that triggered it: 0 with err saying why, for the caller to log. */
static int write_step(struct userdb_sqlite *u, sqlite3_stmt *st, const char *what, struct error *err)
{
    int rc = sqlite3_step(st), r;
    if (rc == SQLITE_DONE) {
        r = sqlite3_changes(u->rw) > 0 ? 1 : 0;
    } else if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        r = 0;
        error_set(err, "%s skipped: database busy", what);
    } else if (rc == SQLITE_READONLY || rc == SQLITE_CANTOPEN || rc == SQLITE_PERM) {
        r = 0;
        error_set(err, "%s skipped: database not writable (%s)", what, sqlite3_errmsg(u->rw));
        u->writable = false; /* until authd's credentials change */
    } else {
        r = error_set(err, "%s: %s", what, sqlite3_errmsg(u->rw));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (!u->writable)
        rw_close(u);
    return r;
}

int userdb_sqlite_app_used(struct userdb_sqlite *u, int64_t id, int64_t now, const char *source,
                           struct error *err)
{
    if (!userdb_sqlite_writable(u))
        return 0;
    /* The source comes from the front: keep it short and printable. */
    char src[64];
    size_t n = 0;
    for (; source != NULL && source[n] != '\0' && n < sizeof(src) - 1; n++)
        src[n] = (source[n] > 0x20 && source[n] < 0x7f) ? source[n] : '?';
    src[n] = '\0';
    sqlite3_stmt *st = u->app_used;
    if (sqlite3_bind_int64(st, 1, id) != SQLITE_OK || sqlite3_bind_int64(st, 2, now) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, src, -1, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_clear_bindings(st);
        return error_set(err, "app password last use: %s", sqlite3_errmsg(u->rw));
    }
    return write_step(u, st, "app password last use", err);
}

int userdb_sqlite_upgrade_hash(struct userdb_sqlite *u, const char *user, const char *old_hash,
                               const char *new_hash, struct error *err)
{
    if (!userdb_sqlite_writable(u))
        return 0;
    sqlite3_stmt *st = u->upgrade;
    if (sqlite3_bind_text(st, 1, user, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 2, old_hash, -1, SQLITE_STATIC) != SQLITE_OK ||
        sqlite3_bind_text(st, 3, new_hash, -1, SQLITE_STATIC) != SQLITE_OK) {
        sqlite3_clear_bindings(st);
        return error_set(err, "hash upgrade: %s", sqlite3_errmsg(u->rw));
    }
    return write_step(u, st, "hash upgrade", err);
}

void userdb_sqlite_close(struct userdb_sqlite **u)
{
    if (u == NULL || *u == NULL)
        return;
    rw_close(*u);
    sqlite3_finalize((*u)->lookup);
    sqlite3_finalize((*u)->app_find);
    sqlite3_close((*u)->db);
    free((*u)->path);
    free((*u)->dir);
    free(*u);
    *u = NULL;
}
