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
