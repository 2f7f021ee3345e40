/* User databases: SQLite (default, managed by popsctl) and Dovecot-style
 * passwd-file (read-only, loaded in memory). One handle per thread: each
 * authd worker opens its own. */
#ifndef POPSD_AUTH_USERDB_H
#define POPSD_AUTH_USERDB_H

#include <stdbool.h>
#include <stddef.h>

#include "auth/pwscheme.h"
#include "common/error.h"

#define USERDB_NAME_MAX 255
#define USERDB_PATH_MAX 1024

enum userdb_driver { USERDB_SQLITE, USERDB_PASSWD_FILE };

struct userdb_entry {
    char name[USERDB_NAME_MAX + 1];
    char pwhash[PWSCHEME_HASH_MAX];   /* wiped by userdb_entry_wipe() */
    char mail[USERDB_PATH_MAX];       /* per-user Maildir override, "" = use the template */
    bool pop3_enabled;
};

struct userdb;

/* A user name may be 1..USERDB_NAME_MAX bytes with no control character, ':'
 * (the passwd-file separator) or '/' (it may end up in a path). */
bool userdb_name_valid(const char *name, size_t len);

/* Opens the database at path read-only (for authd). For passwd-file the file is
 * read whole now; it must not be group/world-writable. */
int userdb_open(enum userdb_driver driver, const char *path, struct userdb **db_r, struct error *err);

/* Looks name up (exact match; names are normalised by the caller). Returns 1 and
 * fills *e if found, 0 if not, -1 if the database cannot be read (the caller
 * answers [SYS/TEMP]). */
int userdb_lookup(struct userdb *db, const char *name, struct userdb_entry *e, struct error *err);

/* Copies one stored password hash (the oldest user's) into out, so that the
 * dummy hash for unknown users can cost what a real user's does. Returns 1, 0
 * for an empty database, or -1. */
int userdb_sample_hash(struct userdb *db, char *out, size_t outsz, struct error *err);

void userdb_entry_wipe(struct userdb_entry *e);
void userdb_close(struct userdb **db);

/* passwd-file line parser, exposed for unit tests and the fuzzer:
 * "user:{SCHEME}hash:uid:gid:gecos:home:shell:extra" (fields after the hash optional;
 * an extra field "userdb_mail=maildir:PATH" or "mail=PATH" sets e->mail). Returns 1 for an
 * entry, 0 for a blank/comment line, -1 for a malformed line. */
int userdb_passwd_parse_line(const char *line, size_t len, struct userdb_entry *e, struct error *err);

/* Management (popsctl only, SQLite only): opened read-write, created with the
 * schema if missing (file mode 0640). */
struct userdb_admin;
int userdb_admin_open(const char *path, struct userdb_admin **db_r, struct error *err);
int userdb_admin_add(struct userdb_admin *db, const char *name, const char *pwhash, const char *mail,
                     struct error *err); /* -1 with "exists" detail if present */
int userdb_admin_set_password(struct userdb_admin *db, const char *name, const char *pwhash,
                              struct error *err); /* 0, or -1 (no such user...) */
int userdb_admin_delete(struct userdb_admin *db, const char *name, struct error *err);
/* Calls fn for each user in name order; fn returns non-zero to stop. */
int userdb_admin_list(struct userdb_admin *db,
                      int (*fn)(void *ctx, const char *name, const char *mail, bool pop3_enabled,
                                const char *scheme, const char *updated),
                      void *ctx, struct error *err);
void userdb_admin_close(struct userdb_admin **db);

#endif
