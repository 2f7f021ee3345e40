/* User databases: SQLite (default, managed by popsctl) and Dovecot-style
 * passwd-file (read-only, loaded in memory). One handle per thread: each
 * authd worker opens its own. */
#ifndef POPSD_AUTH_USERDB_H
#define POPSD_AUTH_USERDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/pwscheme.h"
#include "common/error.h"

#define USERDB_NAME_MAX 255
#define USERDB_PATH_MAX 1024
#define USERDB_SCRAM_MAX 256    /* "{SCRAM-SHA-256}iter,salt,StoredKey,ServerKey" (Dovecot's format) */
#define USERDB_NETWORKS_MAX 512 /* space-separated CIDRs, "" = any source */
#define USERDB_LABEL_MAX 64

enum userdb_driver { USERDB_SQLITE, USERDB_PASSWD_FILE };

struct userdb_entry {
    char name[USERDB_NAME_MAX + 1];
    char pwhash[PWSCHEME_HASH_MAX];   /* wiped by userdb_entry_wipe() */
    char mail[USERDB_PATH_MAX];       /* per-user Maildir override, "" = use the template */
    bool pop3_enabled;
    /* Per-user policy (SQLite columns; passwd-file extras popsd_methods=, popsd_networks=,
     * popsd_require_mfa=). methods = 0: [userdb] methods applies. */
    char scram[USERDB_SCRAM_MAX];         /* SCRAM keys, "" = none; wiped with the entry */
    uint32_t methods;                     /* enum conf_method bits */
    char networks[USERDB_NETWORKS_MAX];   /* sources allowed to log in as this user, "" = any */
    bool require_mfa;                     /* the account password never opens POP3 */
};

/* One app password as authd sees it (found by its hash). */
struct userdb_app_password {
    int64_t id;
    char label[USERDB_LABEL_MAX + 1];
    int64_t expires;                     /* unix seconds, 0 = never */
    char networks[USERDB_NETWORKS_MAX];  /* "" = any source */
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

/* Finds user's app password whose stored hash is hash (see auth/apppw.h).
 * Returns 1, 0 if none (or not SQLite), -1 on a database error. */
int userdb_app_password_find(struct userdb *db, const char *user, const char *hash,
                             struct userdb_app_password *ap, struct error *err);

/* authd's only writes, done when the database is writable by it (else they are
 * skipped and 0 is returned): an app password's last use, and a legacy hash
 * replaced by an Argon2id one (only if the row still holds old_hash, so an
 * admin's password change in between wins). Return 1 if written, 0, or -1. */
int userdb_app_password_used(struct userdb *db, int64_t id, int64_t now, const char *source,
                             struct error *err);
int userdb_upgrade_hash(struct userdb *db, const char *user, const char *old_hash, const char *new_hash,
                        struct error *err);
bool userdb_writable(struct userdb *db);

void userdb_entry_wipe(struct userdb_entry *e);
void userdb_close(struct userdb **db);

/* passwd-file line parser, exposed for unit tests and the fuzzer:
 * "user:{SCHEME}hash:uid:gid:gecos:home:shell:extra" (fields after the hash optional;
 * an extra field "userdb_mail=maildir:PATH" or "mail=PATH" sets e->mail). Returns 1 for an
 * entry, 0 for a blank/comment line, -1 for a malformed line. */
int userdb_passwd_parse_line(const char *line, size_t len, struct userdb_entry *e, struct error *err);

/* Management (popsctl only, SQLite only): opened read-write, created with the
 * schema if missing (file mode 0640), and an older schema is migrated. */
struct userdb_admin;

/* Per-user policy (see struct userdb_entry). methods = 0: [userdb] methods applies. */
struct userdb_policy {
    uint32_t methods;
    char networks[USERDB_NETWORKS_MAX];
    bool require_mfa;
    bool pop3_enabled;
};

/* One app password as popsctl lists it (never its hash). */
struct userdb_app_info {
    int64_t id;
    char label[USERDB_LABEL_MAX + 1];
    int64_t created, expires, last_used; /* unix seconds; 0 = never / not yet */
    char last_source[64];
    char networks[USERDB_NETWORKS_MAX];
};

int userdb_admin_open(const char *path, struct userdb_admin **db_r, struct error *err);
/* scram may be "" (no SCRAM keys). */
int userdb_admin_add(struct userdb_admin *db, const char *name, const char *pwhash, const char *scram,
                     const char *mail, struct error *err); /* -1 with "exists" detail if present */
int userdb_admin_set_password(struct userdb_admin *db, const char *name, const char *pwhash, const char *scram,
                              struct error *err); /* 0, or -1 (no such user...) */
int userdb_admin_delete(struct userdb_admin *db, const char *name, struct error *err);
/* Calls fn for each user in name order; fn returns non-zero to stop. */
int userdb_admin_list(struct userdb_admin *db,
                      int (*fn)(void *ctx, const char *name, const char *mail, bool pop3_enabled,
                                const char *scheme, const char *updated),
                      void *ctx, struct error *err);
int userdb_admin_get_policy(struct userdb_admin *db, const char *name, struct userdb_policy *p,
                            struct error *err); /* 1, 0 = no such user, -1 */
int userdb_admin_set_policy(struct userdb_admin *db, const char *name, const struct userdb_policy *p,
                            struct error *err); /* 0, or -1 (no such user...) */

/* TOTP enrolment: a pending secret becomes active once a code from it is confirmed. */
int userdb_admin_totp_get(struct userdb_admin *db, const char *name, char *secret_b32, size_t cap,
                          bool *confirmed, int64_t *last_step, struct error *err); /* 1 enrolled, 0 none, -1 */
int userdb_admin_totp_set(struct userdb_admin *db, const char *name, const char *secret_b32, bool confirmed,
                          struct error *err); /* secret "" removes it */
/* Records that the code of time step `step` was used; 1 if step is newer than
 * any used before (atomically), 0 if it is a replay, -1 on error. */
int userdb_admin_totp_use_step(struct userdb_admin *db, const char *name, int64_t step, struct error *err);

/* App passwords (hash as made by apppw_hash()). */
int userdb_admin_app_add(struct userdb_admin *db, const char *name, const char *label, const char *hash,
                         int64_t expires, const char *networks, int64_t *id_r,
                         struct error *err); /* -1 with "exists" detail for a duplicate label */
int userdb_admin_app_list(struct userdb_admin *db, const char *name,
                          int (*fn)(void *ctx, const struct userdb_app_info *a), void *ctx, struct error *err);
/* Revokes by label (or by id when the text is "#ID"): 1 revoked, 0 no such, -1 error. */
int userdb_admin_app_revoke(struct userdb_admin *db, const char *name, const char *label_or_id,
                            struct error *err);
void userdb_admin_close(struct userdb_admin **db);

#endif
