/* Private to src/auth/userdb_*.c: the per-driver entry points behind
 * userdb.h's dispatcher, and the rules every backend shares. */
#ifndef POPSD_AUTH_USERDB_INT_H
#define POPSD_AUTH_USERDB_INT_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/userdb.h"
#include "common/error.h"

/* Bounds on a passwd-file: a longer line or a bigger file is an error, never
 * silently truncated. */
#define USERDB_PASSWD_LINE_MAX 4096
#define USERDB_PASSWD_FILE_MAX (64u * 1024 * 1024)

/* The only schema this code reads and writes. */
#define USERDB_SCHEMA_VERSION 1


/* Copies src[0..len) into dst (capacity dstsz) with a NUL; -1 if it does not fit. */
int userdb_copy(char *dst, size_t dstsz, const char *src, size_t len);

struct userdb_sqlite;
int userdb_sqlite_open(const char *path, struct userdb_sqlite **db_r, struct error *err);
int userdb_sqlite_lookup(struct userdb_sqlite *db, const char *name, struct userdb_entry *e,
                         struct error *err);
int userdb_sqlite_sample(struct userdb_sqlite *db, char *out, size_t outsz, struct error *err);
void userdb_sqlite_close(struct userdb_sqlite **db);

struct userdb_passwd;
int userdb_passwd_open(const char *path, struct userdb_passwd **db_r, struct error *err);
int userdb_passwd_lookup(struct userdb_passwd *db, const char *name, struct userdb_entry *e);
int userdb_passwd_sample(struct userdb_passwd *db, char *out, size_t outsz);
void userdb_passwd_close(struct userdb_passwd **db);

#endif
