/* userdb.h's driver-independent half: dispatch and the shared name rules. */
#include <stdlib.h>
#include <string.h>

#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "common/secret.h"

struct userdb {
    enum userdb_driver driver;
    union {
        struct userdb_sqlite *sqlite;
        struct userdb_passwd *passwd;
    } u;
};

bool userdb_name_valid(const char *name, size_t len)
{
    if (len == 0 || len > USERDB_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c < 0x20 || c == 0x7f || c == ':' || c == '/')
            return false;
    }
    return true;
}

int userdb_copy(char *dst, size_t dstsz, const char *src, size_t len)
{
    if (len >= dstsz)
        return -1;
    memcpy(dst, src, len);
    dst[len] = '\0';
    return 0;
}

int userdb_open(enum userdb_driver driver, const char *path, struct userdb **db_r, struct error *err)
{
    *db_r = NULL;
    if (path == NULL || path[0] == '\0')
        return error_set(err, "no user database path");
    struct userdb *db = calloc(1, sizeof(*db));
    if (db == NULL)
        return error_set(err, "out of memory");
    db->driver = driver;
    int r;
    switch (driver) {
    case USERDB_SQLITE: r = userdb_sqlite_open(path, &db->u.sqlite, err); break;
    case USERDB_PASSWD_FILE: r = userdb_passwd_open(path, &db->u.passwd, err); break;
    default: r = error_set(err, "unknown user database driver"); break;
    }
    if (r < 0) {
        free(db);
        return -1;
    }
    *db_r = db;
    return 0;
}

int userdb_lookup(struct userdb *db, const char *name, struct userdb_entry *e, struct error *err)
{
    memset(e, 0, sizeof(*e));
    if (db == NULL || name == NULL)
        return error_set(err, "userdb_lookup: no database or name");
    /* A name no backend could have stored is simply not found. */
    if (strnlen(name, USERDB_NAME_MAX + 1) > USERDB_NAME_MAX)
        return 0;
    switch (db->driver) {
    case USERDB_SQLITE: return userdb_sqlite_lookup(db->u.sqlite, name, e, err);
    case USERDB_PASSWD_FILE: return userdb_passwd_lookup(db->u.passwd, name, e);
    }
    return error_set(err, "unknown user database driver");
}

int userdb_sample_hash(struct userdb *db, char *out, size_t outsz, struct error *err)
{
    switch (db->driver) {
    case USERDB_SQLITE: return userdb_sqlite_sample(db->u.sqlite, out, outsz, err);
    case USERDB_PASSWD_FILE: return userdb_passwd_sample(db->u.passwd, out, outsz);
    }
    return error_set(err, "unknown user database driver");
}

int userdb_app_password_find(struct userdb *db, const char *user, const char *hash,
                             struct userdb_app_password *ap, struct error *err)
{
    memset(ap, 0, sizeof(*ap));
    if (db == NULL || user == NULL || hash == NULL)
        return error_set(err, "userdb_app_password_find: no database, user or hash");
    if (hash[0] == '\0')
        return 0;
    switch (db->driver) {
    case USERDB_SQLITE: return userdb_sqlite_app_find(db->u.sqlite, user, hash, ap, err);
    case USERDB_PASSWD_FILE: return 0; /* a passwd-file has no app passwords */
    }
    return error_set(err, "unknown user database driver");
}

/* The write entry points clear err first: a 0 may come with a reason (busy,
 * read-only after all) that the caller logs. */
static void err_clear(struct error *err)
{
    if (err != NULL)
        err->msg[0] = '\0';
}

int userdb_app_password_used(struct userdb *db, int64_t id, int64_t now, const char *source,
                             struct error *err)
{
    err_clear(err);
    if (db == NULL)
        return error_set(err, "userdb_app_password_used: no database");
    if (db->driver != USERDB_SQLITE)
        return 0;
    return userdb_sqlite_app_used(db->u.sqlite, id, now, source, err);
}

int userdb_upgrade_hash(struct userdb *db, const char *user, const char *old_hash, const char *new_hash,
                        struct error *err)
{
    err_clear(err);
    if (db == NULL || user == NULL || old_hash == NULL || new_hash == NULL)
        return error_set(err, "userdb_upgrade_hash: no database, user or hash");
    if (db->driver != USERDB_SQLITE)
        return 0;
    size_t n = strnlen(new_hash, PWSCHEME_HASH_MAX);
    if (n == 0 || n >= PWSCHEME_HASH_MAX || !userdb_text_ok(new_hash) || strchr(new_hash, ':') != NULL)
        return error_set(err, "userdb_upgrade_hash: invalid new hash");
    return userdb_sqlite_upgrade_hash(db->u.sqlite, user, old_hash, new_hash, err);
}

bool userdb_writable(struct userdb *db)
{
    return db != NULL && db->driver == USERDB_SQLITE && userdb_sqlite_writable(db->u.sqlite);
}

bool userdb_text_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

void userdb_entry_wipe(struct userdb_entry *e)
{
    if (e != NULL)
        secret_wipe(e, sizeof(*e));
}

void userdb_close(struct userdb **db)
{
    if (db == NULL || *db == NULL)
        return;
    switch ((*db)->driver) {
    case USERDB_SQLITE: userdb_sqlite_close(&(*db)->u.sqlite); break;
    case USERDB_PASSWD_FILE: userdb_passwd_close(&(*db)->u.passwd); break;
    }
    free(*db);
    *db = NULL;
}
