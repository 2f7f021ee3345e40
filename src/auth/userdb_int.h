/* Private to src/auth/userdb_*.c: the per-driver entry points behind
 * userdb.h's dispatcher, and the rules every backend shares. */
#ifndef POPSD_AUTH_USERDB_INT_H
#define POPSD_AUTH_USERDB_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/userdb.h"
#include "common/error.h"

/* Bounds on a passwd-file: a longer line or a bigger file is an error, never
 * silently truncated. */
#define USERDB_PASSWD_LINE_MAX 4096
#define USERDB_PASSWD_FILE_MAX (64u * 1024 * 1024)

/* The only schema this code reads and writes. */
#define USERDB_SCHEMA_VERSION 2

/* Copies src[0..len) into dst (capacity dstsz) with a NUL; -1 if it does not fit. */
int userdb_copy(char *dst, size_t dstsz, const char *src, size_t len);

struct userdb_sqlite;
int userdb_sqlite_open(const char *path, struct userdb_sqlite **db_r, struct error *err);
int userdb_sqlite_lookup(struct userdb_sqlite *db, const char *name, struct userdb_entry *e,
                         struct error *err);
int userdb_sqlite_sample(struct userdb_sqlite *db, char *out, size_t outsz, struct error *err);
int userdb_sqlite_app_find(struct userdb_sqlite *db, const char *user, const char *hash,
                           struct userdb_app_password *ap, struct error *err);
int userdb_sqlite_app_used(struct userdb_sqlite *db, int64_t id, int64_t now, const char *source,
                           struct error *err);
int userdb_sqlite_upgrade_hash(struct userdb_sqlite *db, const char *user, const char *old_hash,
                               const char *new_hash, struct error *err);
bool userdb_sqlite_writable(struct userdb_sqlite *db);
void userdb_sqlite_close(struct userdb_sqlite **db);

struct userdb_passwd;
int userdb_passwd_open(const char *path, struct userdb_passwd **db_r, struct error *err);
int userdb_passwd_lookup(struct userdb_passwd *db, const char *name, struct userdb_entry *e);
int userdb_passwd_sample(struct userdb_passwd *db, char *out, size_t outsz);
void userdb_passwd_close(struct userdb_passwd **db);

/* The admin side (userdb_admin*.c), split by subject; sqlite3.h stays out of
 * this header (its types are these structs). */
struct sqlite3;
struct sqlite3_stmt;
struct userdb_admin {
    struct sqlite3 *db;
};
int userdb_admin_sqlerr(struct userdb_admin *a, const char *what, struct error *err);
/* Prepares sql and binds one argument per letter of types: 't' a const char *
 * (NULL binds NULL), 'i' an int64_t (pass exactly that type). 0 or -1. */
int userdb_admin_prepare(struct userdb_admin *a, struct sqlite3_stmt **st, const char *sql, const char *types,
                         ...);
/* Prepares, binds, steps once, finalizes: the sqlite3_step code, or -1. */
int userdb_admin_run(struct userdb_admin *a, const char *sql, const char *types, ...);
int userdb_admin_exec(struct userdb_admin *a, const char *sql, const char *what, struct error *err);
/* Ends a transaction begun with BEGIN IMMEDIATE: commits if r == 0, else rolls back; returns r or -1. */
int userdb_admin_end(struct userdb_admin *a, int r, struct error *err);
int userdb_admin_check_name(const char *name, struct error *err);
/* 1 if the user exists, 0 if not (err says so), -1. */
int userdb_admin_user_exists(struct userdb_admin *a, const char *name, struct error *err);
/* No control characters (text that ends up in logs and on terminals). */
bool userdb_text_ok(const char *s);

#define USERDB_NOW_SQL "strftime('%Y-%m-%dT%H:%M:%SZ','now')"

#endif
