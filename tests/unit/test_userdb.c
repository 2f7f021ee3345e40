/* User databases: SQLite admin round trip seen through a read-only handle,
 * and the passwd-file parser and loader. Every test works in its own
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/apppw.h"
#include "auth/userdb.h"
#include "conf/conf.h"

#define H_ALICE                                                                                              \
    "{ARGON2ID}$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/"      \
    "Myoh5GZwk"
#define H_BOB                                                                                                \
    "{SHA512-CRYPT}$6$saltsalt$"                                                                             \
    "hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0"
#define SCRAM_A                                                                                              \
    "{SCRAM-SHA-256}4096,c2FsdHNhbHRzYWx0c2FsdA==,QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=,"             \
    "QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI="
#define H_NEW "$argon2id$v=19$m=64,t=1,p=2$c29tZXNhbHRzb21lc2FsdA$vnXYxPvf2nX+mBli9pMlKONYXiHquLCsjGLLhNWRSAU"

struct tmp {
    char dir[64];
    char path[128];
};

static int setup_tmp(void **state)
{
    struct tmp *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return -1;
    strcpy(t->dir, "/tmp/test_userdb.XXXXXX");
    if (mkdtemp(t->dir) == NULL)
        return -1;
    *state = t;
    return 0;
}

static int teardown_tmp(void **state)
{
    struct tmp *t = *state;
    if (getuid() == 0 && geteuid() != 0 && seteuid(0) != 0) /* a failed read-only test left us as nobody */
        return -1;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

static const char *in_tmp(struct tmp *t, const char *name)
{
    snprintf(t->path, sizeof(t->path), "%s/%s", t->dir, name);
    return t->path;
}

/* ---- SQLite ---- */

struct listed {
    int n;
    int stop_after;
    char names[8][64];
    char schemes[8][32];
    char mails[8][64];
    char updated[8][32];
    bool enabled[8];
};

static int list_cb(void *ctx, const char *name, const char *mail, bool pop3_enabled, const char *scheme,
                   const char *updated)
{
    struct listed *l = ctx;
    if (l->n < 8) {
        snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
        snprintf(l->schemes[l->n], sizeof(l->schemes[0]), "%s", scheme);
        snprintf(l->mails[l->n], sizeof(l->mails[0]), "%s", mail);
        snprintf(l->updated[l->n], sizeof(l->updated[0]), "%s", updated);
        l->enabled[l->n] = pop3_enabled;
    }
    l->n++;
    return l->stop_after != 0 && l->n >= l->stop_after;
}

static void test_sqlite_roundtrip(void **state)
{
    struct tmp *t = *state;
    const char *db_path = in_tmp(t, "users.db");
    struct error err = {{0}};
    struct userdb_admin *a = NULL;

    /* 0640 whatever the umask: a stricter one would lock authd's group out,
     * a looser one would expose the hashes. */
    mode_t old = umask(077);
    assert_int_equal(userdb_admin_open(db_path, &a, &err), 0);
    umask(old);
    struct stat st;
    assert_int_equal(stat(db_path, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0640);

    assert_int_equal(userdb_admin_add(a, "bob", H_BOB, "", NULL, &err), 0);
    assert_int_equal(userdb_admin_add(a, "alice", H_ALICE, "", "/var/vmail/alice", &err), 0);
    assert_int_equal(userdb_admin_add(a, "alice", H_BOB, "", "", &err), -1);
    assert_non_null(strstr(err.msg, "exists"));

    /* The reader opens read-only and sees what the admin wrote. */
    struct userdb *db = NULL;
    assert_int_equal(userdb_open(USERDB_SQLITE, db_path, &db, &err), 0);
    struct userdb_entry e;
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.name, "alice");
    assert_string_equal(e.pwhash, H_ALICE);
    assert_string_equal(e.mail, "/var/vmail/alice");
    assert_true(e.pop3_enabled);
    userdb_entry_wipe(&e);
    assert_int_equal(e.pwhash[0], 0);
    assert_int_equal(userdb_lookup(db, "bob", &e, &err), 1);
    assert_string_equal(e.mail, "");
    assert_int_equal(userdb_lookup(db, "Alice", &e, &err), 0); /* exact match */
    assert_int_equal(userdb_lookup(db, "carol", &e, &err), 0);
    assert_int_equal(e.pwhash[0], 0);

    struct listed l = {0};
    assert_int_equal(userdb_admin_list(a, list_cb, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.names[0], "alice"); /* name order */
    assert_string_equal(l.names[1], "bob");
    assert_string_equal(l.schemes[0], "ARGON2ID");
    assert_string_equal(l.schemes[1], "SHA512-CRYPT");
    assert_string_equal(l.mails[0], "/var/vmail/alice");
    assert_true(l.enabled[0]);
    assert_int_equal(strlen(l.updated[0]), strlen("2024-01-01T00:00:00Z"));
    struct listed l1 = {.stop_after = 1};
    assert_int_equal(userdb_admin_list(a, list_cb, &l1, &err), 0);
    assert_int_equal(l1.n, 1);

    /* Password change is visible to the already-open reader. */
    assert_int_equal(userdb_admin_set_password(a, "alice", H_NEW, "", &err), 0);
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.pwhash, H_NEW);
    assert_int_equal(userdb_admin_set_password(a, "carol", H_NEW, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no such user"));
    struct listed l2 = {0};
    assert_int_equal(userdb_admin_list(a, list_cb, &l2, &err), 0);
    assert_string_equal(l2.schemes[0], "ARGON2ID"); /* bare $argon2id$ */

    assert_int_equal(userdb_admin_delete(a, "bob", &err), 0);
    assert_int_equal(userdb_lookup(db, "bob", &e, &err), 0);
    assert_int_equal(userdb_admin_delete(a, "bob", &err), -1);
    assert_non_null(strstr(err.msg, "no such user"));
    userdb_entry_wipe(&e);

    userdb_admin_close(&a);
    assert_null(a);
    userdb_close(&db);
    assert_null(db);

    /* Reopening keeps the data; DELETE journal mode leaves no -wal file. */
    assert_int_equal(userdb_admin_open(db_path, &a, &err), 0);
    struct listed l3 = {0};
    assert_int_equal(userdb_admin_list(a, list_cb, &l3, &err), 0);
    assert_int_equal(l3.n, 1);
    assert_string_equal(l3.names[0], "alice");
    userdb_admin_close(&a);
    char wal[200];
    snprintf(wal, sizeof(wal), "%s-wal", db_path);
    assert_int_not_equal(access(wal, F_OK), 0);
    sqlite3 *raw = NULL;
    sqlite3_stmt *stmt = NULL;
    assert_int_equal(sqlite3_open(db_path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(raw, "PRAGMA journal_mode", -1, &stmt, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(stmt), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(stmt, 0), "delete");
    sqlite3_finalize(stmt);
    sqlite3_close(raw);
}

static void test_sqlite_admin_validation(void **state)
{
    struct tmp *t = *state;
    struct error err = {{0}};
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(in_tmp(t, "v.db"), &a, &err), 0);
    char longname[USERDB_NAME_MAX + 2];
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    const char *const bad_names[] = {"", "a:b", "a/b", "a\nb", "tab\there", "del\x7f", longname};
    for (size_t i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        if (userdb_admin_add(a, bad_names[i], H_ALICE, "", NULL, &err) != -1)
            fail_msg("bad name %zu accepted", i);
        assert_non_null(strstr(err.msg, "invalid user name"));
    }
    longname[USERDB_NAME_MAX] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(userdb_admin_add(a, longname, H_ALICE, "", NULL, &err), 0);
    assert_int_equal(userdb_admin_add(a, "j\xc3\xb6rg@example.org", H_ALICE, "", NULL, &err), 0);
    assert_int_equal(userdb_admin_add(a, "x", "", "", NULL, &err), -1);
    assert_int_equal(userdb_admin_add(a, "x", "has\nnewline", "", NULL, &err), -1);
    assert_int_equal(userdb_admin_add(a, "x", H_ALICE, "", "relative/path", &err), -1);
    assert_int_equal(userdb_admin_set_password(a, "x", "", "", &err), -1);
    /* SCRAM keys: Dovecot's notation or nothing. */
    assert_int_equal(userdb_admin_add(a, "s1", H_ALICE, "4096,salt,stored,server", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "SCRAM"));
    assert_int_equal(userdb_admin_add(a, "s1", H_ALICE, "{SCRAM-SHA-256}a\nb", NULL, &err), -1);
    char longscram[USERDB_SCRAM_MAX + 1];
    memset(longscram, 'A', sizeof(longscram) - 1);
    longscram[sizeof(longscram) - 1] = '\0';
    memcpy(longscram, "{SCRAM-SHA-256}", 15);
    assert_int_equal(userdb_admin_add(a, "s1", H_ALICE, longscram, NULL, &err), -1);
    assert_int_equal(userdb_admin_set_password(a, "x", H_ALICE, "bogus", &err), -1);
    userdb_admin_close(&a);

    /* The reader finds the longest name; a longer one cannot exist. */
    struct userdb *db = NULL;
    struct userdb_entry e;
    assert_int_equal(userdb_open(USERDB_SQLITE, in_tmp(t, "v.db"), &db, &err), 0);
    assert_int_equal(userdb_lookup(db, longname, &e, &err), 1);
    longname[USERDB_NAME_MAX] = 'n';
    assert_int_equal(userdb_lookup(db, longname, &e, &err), 0);
    userdb_close(&db);
}

static void test_sqlite_open_errors(void **state)
{
    struct tmp *t = *state;
    struct error err = {{0}};
    struct userdb *db = NULL;
    assert_int_equal(userdb_open(USERDB_SQLITE, in_tmp(t, "missing.db"), &db, &err), -1);
    assert_null(db);
    assert_int_not_equal(access(t->path, F_OK), 0); /* the reader creates nothing */

    FILE *f = fopen(in_tmp(t, "junk.db"), "w");
    assert_non_null(f);
    fputs("this is not a database, just some text that is long enough........\n", f);
    fclose(f);
    assert_int_equal(userdb_open(USERDB_SQLITE, t->path, &db, &err), -1);
    assert_int_not_equal(err.msg[0], 0);

    /* A database from a future version is refused by both sides. */
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(in_tmp(t, "future.db"), &a, &err), 0);
    userdb_admin_close(&a);
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(t->path, &raw), SQLITE_OK);
    assert_int_equal(sqlite3_exec(raw, "UPDATE schema_version SET version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(raw);
    assert_int_equal(userdb_open(USERDB_SQLITE, t->path, &db, &err), -1);
    assert_non_null(strstr(err.msg, "schema version"));
    assert_int_equal(userdb_admin_open(t->path, &a, &err), -1);
    assert_non_null(strstr(err.msg, "schema version"));
    assert_int_equal(access(t->path, F_OK), 0); /* an existing file is never removed */

    /* World-writable database refused by the reader. */
    assert_int_equal(chmod(t->path, 0646), 0);
    assert_int_equal(userdb_open(USERDB_SQLITE, t->path, &db, &err), -1);
    assert_non_null(strstr(err.msg, "world-writable"));

    /* The admin side cannot create a file where it may not. */
    assert_int_equal(userdb_admin_open("/nonexistent-dir/x.db", &a, &err), -1);
    assert_null(a);
    assert_int_equal(userdb_open(USERDB_SQLITE, NULL, &db, &err), -1);
}

/* ---- SQLite schema v2 ---- */

static sqlite3_int64 raw_int(const char *path, const char *sql)
{
    sqlite3 *raw = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open_v2(path, &raw, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    if (sqlite3_prepare_v2(raw, sql, -1, &st, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(raw));
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    sqlite3_int64 v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(raw);
    return v;
}

static void raw_exec(const char *path, const char *sql)
{
    sqlite3 *raw = NULL;
    assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
    if (sqlite3_exec(raw, sql, NULL, NULL, NULL) != SQLITE_OK)
        fail_msg("%s: %s", sql, sqlite3_errmsg(raw));
    sqlite3_close(raw);
}

/* Whether the raw bytes of a file (free pages included) contain s. */
static bool file_contains(const char *path, const char *s)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof(buf), f);
    fclose(f);
    assert_true(n < sizeof(buf));
    return memmem(buf, n, s, strlen(s)) != NULL;
}

/* What version 1 of popsd created. */
static const char schema_v1[] = "CREATE TABLE schema_version (version INTEGER NOT NULL);"
                                "CREATE TABLE users (name TEXT PRIMARY KEY NOT NULL, password TEXT NOT NULL,"
                                " mail TEXT NOT NULL DEFAULT '', pop3_enabled INTEGER NOT NULL DEFAULT 1,"
                                " created TEXT NOT NULL, updated TEXT NOT NULL);"
                                "INSERT INTO schema_version(version) VALUES(1);"
                                "INSERT INTO users VALUES('alice', '" H_ALICE "', '/var/vmail/alice', 1,"
                                " '2024-01-01T00:00:00Z', '2024-01-01T00:00:00Z');"
                                "INSERT INTO users VALUES('bob', '" H_BOB "', '', 0,"
                                " '2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z');";

static void test_sqlite_v2_created(void **state)
{
    struct tmp *t = *state;
    const char *path = in_tmp(t, "v2.db");
    struct error err = {{0}};
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(path, &a, &err), 0);
    userdb_admin_close(&a);
    assert_int_equal(raw_int(path, "SELECT max(version) FROM schema_version"), 2);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_version"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('users') WHERE name IN ('scram',"
                                   " 'methods', 'networks', 'require_mfa', 'totp_secret', 'totp_confirmed',"
                                   " 'totp_last_step')"),
                     7);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('app_passwords')"), 9);
    /* authd's lookup by hash is an index probe. */
    assert_int_equal(
        raw_int(path, "SELECT count(*) FROM pragma_index_list('app_passwords') WHERE \"unique\""), 2);
    /* Reopening an up-to-date file changes nothing. */
    assert_int_equal(userdb_admin_open(path, &a, &err), 0);
    userdb_admin_close(&a);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM schema_version"), 1);
}

static void test_sqlite_migrate_v1(void **state)
{
    struct tmp *t = *state;
    const char *path = in_tmp(t, "v1.db");
    struct error err = {{0}};
    raw_exec(path, schema_v1);
    assert_int_equal(chmod(path, 0640), 0);

    /* authd never migrates: it says what to run. */
    struct userdb *db = NULL;
    assert_int_equal(userdb_open(USERDB_SQLITE, path, &db, &err), -1);
    char want[300];
    snprintf(want, sizeof(want),
             "%s: schema version 1 is older than this build's 2: run any popsctl command (e.g. `popsctl user "
             "list`) to upgrade it",
             path);
    assert_string_equal(err.msg, want);

    /* A migration that fails halfway leaves version 1 as it was. */
    raw_exec(path, "CREATE TABLE app_passwords (x)");
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(path, &a, &err), -1);
    assert_non_null(strstr(err.msg, "upgrade schema 1 to 2"));
    assert_int_equal(raw_int(path, "SELECT max(version) FROM schema_version"), 1);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM pragma_table_info('users')"), 6);
    raw_exec(path, "DROP TABLE app_passwords");

    assert_int_equal(userdb_admin_open(path, &a, &err), 0);
    assert_int_equal(raw_int(path, "SELECT max(version) FROM schema_version"), 2);
    struct listed l = {0};
    assert_int_equal(userdb_admin_list(a, list_cb, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.updated[1], "2024-01-02T00:00:00Z");
    assert_int_equal(userdb_admin_app_add(a, "alice", "phone",
                                          "sha256:"
                                          "0123456789abcdef0123456789abcdef"
                                          "0123456789abcdef0123456789abcdef",
                                          0, "", NULL, &err),
                     0);
    userdb_admin_close(&a);

    assert_int_equal(userdb_open(USERDB_SQLITE, path, &db, &err), 0);
    struct userdb_entry e;
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.pwhash, H_ALICE);
    assert_string_equal(e.mail, "/var/vmail/alice");
    assert_true(e.pop3_enabled);
    assert_string_equal(e.scram, "");
    assert_int_equal(e.methods, 0);
    assert_string_equal(e.networks, "");
    assert_false(e.require_mfa);
    assert_int_equal(userdb_lookup(db, "bob", &e, &err), 1);
    assert_false(e.pop3_enabled);
    userdb_entry_wipe(&e);
    userdb_close(&db);
}

static void test_sqlite_policy(void **state)
{
    struct tmp *t = *state;
    const char *path = in_tmp(t, "p.db");
    struct error err = {{0}};
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(path, &a, &err), 0);
    assert_int_equal(userdb_admin_add(a, "alice", H_ALICE, SCRAM_A, NULL, &err), 0);

    struct userdb_policy p;
    assert_int_equal(userdb_admin_get_policy(a, "alice", &p, &err), 1);
    assert_int_equal(p.methods, 0); /* the config default applies */
    assert_string_equal(p.networks, "");
    assert_false(p.require_mfa);
    assert_true(p.pop3_enabled);
    assert_int_equal(userdb_admin_get_policy(a, "nobody", &p, &err), 0);

    p = (struct userdb_policy){
        .methods = CONF_METHOD_APP | CONF_METHOD_SCRAM, .require_mfa = true, .pop3_enabled = false};
    strcpy(p.networks, "192.0.2.0/24 2001:db8::/32");
    assert_int_equal(userdb_admin_set_policy(a, "alice", &p, &err), 0);
    struct userdb_policy q;
    assert_int_equal(userdb_admin_get_policy(a, "alice", &q, &err), 1);
    assert_int_equal(q.methods, CONF_METHOD_APP | CONF_METHOD_SCRAM);
    assert_string_equal(q.networks, "192.0.2.0/24 2001:db8::/32");
    assert_true(q.require_mfa);
    assert_false(q.pop3_enabled);

    /* authd sees all of it. */
    struct userdb *db = NULL;
    assert_int_equal(userdb_open(USERDB_SQLITE, path, &db, &err), 0);
    struct userdb_entry e;
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.scram, SCRAM_A);
    assert_int_equal(e.methods, CONF_METHOD_APP | CONF_METHOD_SCRAM);
    assert_string_equal(e.networks, "192.0.2.0/24 2001:db8::/32");
    assert_true(e.require_mfa);
    assert_false(e.pop3_enabled);
    userdb_entry_wipe(&e);
    assert_int_equal(e.scram[0], 0);

    /* A new password replaces both verifiers in one statement. */
    assert_int_equal(userdb_admin_set_password(a, "alice", H_NEW, "", &err), 0);
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.pwhash, H_NEW);
    assert_string_equal(e.scram, "");
    assert_int_equal(userdb_admin_set_password(a, "alice", H_ALICE, SCRAM_A, &err), 0);
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.scram, SCRAM_A);

    /* Refused: unknown method bits, a bad network, no such user. */
    p.methods = 1u << 20;
    assert_int_equal(userdb_admin_set_policy(a, "alice", &p, &err), -1);
    assert_non_null(strstr(err.msg, "method"));
    p.methods = CONF_METHOD_PASSWORD;
    strcpy(p.networks, "192.0.2.0/24 not-a-net");
    assert_int_equal(userdb_admin_set_policy(a, "alice", &p, &err), -1);
    assert_non_null(strstr(err.msg, "not-a-net"));
    p.networks[0] = '\0';
    assert_int_equal(userdb_admin_set_policy(a, "carol", &p, &err), -1);
    assert_non_null(strstr(err.msg, "no such user"));
    assert_int_equal(userdb_admin_get_policy(a, "alice", &q, &err), 1);
    assert_int_equal(q.methods, CONF_METHOD_APP | CONF_METHOD_SCRAM); /* unchanged */

    /* A row this build cannot trust is an error, never a wider grant. */
    userdb_admin_close(&a);
    raw_exec(path, "UPDATE users SET methods = 1024 WHERE name = 'alice'");
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), -1);
    assert_int_equal(e.pwhash[0], 0);
    raw_exec(path, "UPDATE users SET methods = 0, scram = printf('%.*c', 300, 'x') WHERE name = 'alice'");
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), -1);
    userdb_close(&db);
}

static void test_sqlite_totp(void **state)
{
    struct tmp *t = *state;
    struct error err = {{0}};
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(in_tmp(t, "t.db"), &a, &err), 0);
    assert_int_equal(userdb_admin_add(a, "alice", H_ALICE, "", NULL, &err), 0);
    char sec[160];
    bool confirmed = true;
    int64_t step = -1;
    assert_int_equal(userdb_admin_totp_get(a, "alice", sec, sizeof(sec), &confirmed, &step, &err), 0);
    assert_false(confirmed);
    assert_int_equal(step, 0);
    assert_int_equal(userdb_admin_totp_get(a, "carol", sec, sizeof(sec), &confirmed, &step, &err), -1);

    static const char s1[] = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", s2[] = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    assert_int_equal(userdb_admin_totp_set(a, "alice", s1, false, &err), 0);
    assert_int_equal(userdb_admin_totp_get(a, "alice", sec, sizeof(sec), &confirmed, &step, &err), 1);
    assert_string_equal(sec, s1);
    assert_false(confirmed);
    char small[8];
    assert_int_equal(userdb_admin_totp_get(a, "alice", small, sizeof(small), &confirmed, &step, &err), -1);

    /* Each time step is used once; only a newer one is accepted. */
    assert_int_equal(userdb_admin_totp_use_step(a, "alice", 1000, &err), 1);
    assert_int_equal(userdb_admin_totp_use_step(a, "alice", 1000, &err), 0);
    assert_int_equal(userdb_admin_totp_use_step(a, "alice", 999, &err), 0);
    assert_int_equal(userdb_admin_totp_use_step(a, "alice", 1001, &err), 1);
    assert_int_equal(userdb_admin_totp_use_step(a, "carol", 5000, &err), -1);
    assert_non_null(strstr(err.msg, "no such user"));
    assert_int_equal(userdb_admin_totp_use_step(a, "alice", -1, &err), -1);

    /* Confirming keeps the step the confirmation code used; a new secret starts over. */
    assert_int_equal(userdb_admin_totp_set(a, "alice", s1, true, &err), 0);
    assert_int_equal(userdb_admin_totp_get(a, "alice", sec, sizeof(sec), &confirmed, &step, &err), 1);
    assert_true(confirmed);
    assert_int_equal(step, 1001);
    assert_int_equal(userdb_admin_totp_set(a, "alice", s2, false, &err), 0);
    assert_int_equal(userdb_admin_totp_get(a, "alice", sec, sizeof(sec), &confirmed, &step, &err), 1);
    assert_string_equal(sec, s2);
    assert_false(confirmed);
    assert_int_equal(step, 0);

    static const char *const bad[] = {"JBSWY3DP", "JBSWY3DPEHPK3PXP1BSWY3DP", "JBSWY3DPEHPK3PXP=JBSWY3DP",
                                      "JBSWY3DP EHPK3PXP JBSW"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (userdb_admin_totp_set(a, "alice", bad[i], true, &err) != -1)
            fail_msg("secret '%s' accepted", bad[i]);
    assert_int_equal(userdb_admin_totp_set(a, "alice", "jbswy3dpehpk3pxp====", false, &err), 0);
    assert_int_equal(userdb_admin_totp_set(a, "carol", s1, false, &err), -1);

    /* "" removes it, confirmed or not. */
    assert_int_equal(userdb_admin_totp_set(a, "alice", "", true, &err), 0);
    assert_int_equal(userdb_admin_totp_get(a, "alice", sec, sizeof(sec), &confirmed, &step, &err), 0);
    assert_false(confirmed);
    assert_false(file_contains(in_tmp(t, "t.db"), s1));
    assert_false(file_contains(t->path, s2));
    userdb_admin_close(&a);
}

struct apps {
    int n;
    struct userdb_app_info a[4];
};

static int app_cb(void *ctx, const struct userdb_app_info *info)
{
    struct apps *l = ctx;
    if (l->n < 4)
        l->a[l->n] = *info;
    l->n++;
    return 0;
}

static void new_app_password(char hash[APPPW_HASH_MAX])
{
    char pw[APPPW_LEN + 1];
    assert_int_equal(apppw_generate(pw), 0);
    apppw_hash(pw, hash);
}

static void test_sqlite_app_passwords(void **state)
{
    struct tmp *t = *state;
    const char *path = in_tmp(t, "a.db");
    struct error err = {{0}};
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(path, &a, &err), 0);
    assert_int_equal(userdb_admin_add(a, "alice", H_ALICE, "", NULL, &err), 0);
    assert_int_equal(userdb_admin_add(a, "bob", H_BOB, "", NULL, &err), 0);
    char h1[APPPW_HASH_MAX], h2[APPPW_HASH_MAX], h3[APPPW_HASH_MAX], hb[APPPW_HASH_MAX];
    new_app_password(h1);
    new_app_password(h2);
    new_app_password(h3);
    new_app_password(hb);

    int64_t id1 = 0, id2 = 0, idb = 0;
    assert_int_equal(userdb_admin_app_add(a, "alice", "phone", h1, 0, "", &id1, &err), 0);
    assert_int_equal(userdb_admin_app_add(a, "alice", "laptop", h2, 4102444800, "192.0.2.0/24", &id2, &err),
                     0);
    assert_int_equal(userdb_admin_app_add(a, "bob", "phone", hb, 0, NULL, &idb, &err),
                     0); /* labels per user */
    assert_true(id1 > 0 && id2 > id1);
    assert_int_equal(userdb_admin_app_add(a, "alice", "phone", h3, 0, "", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "exists"));
    assert_int_equal(userdb_admin_app_add(a, "alice", "tablet", h1, 0, "", NULL, &err), -1); /* same hash */
    assert_int_equal(userdb_admin_app_add(a, "carol", "phone", h3, 0, "", NULL, &err), -1);
    assert_non_null(strstr(err.msg, "no such user"));
    assert_int_equal(userdb_admin_app_add(a, "alice", "", h3, 0, "", NULL, &err), -1);
    assert_int_equal(userdb_admin_app_add(a, "alice", "#1", h3, 0, "", NULL, &err), -1);
    assert_int_equal(userdb_admin_app_add(a, "alice", "a\nb", h3, 0, "", NULL, &err), -1);
    assert_int_equal(
        userdb_admin_app_add(a, "alice", "x", "abcde-fghij-klmno-pqrst-uvwx2", 0, "", NULL, &err), -1);
    assert_int_equal(userdb_admin_app_add(a, "alice", "x", h3, 0, "10.0.0.0/40", NULL, &err), -1);
    assert_int_equal(userdb_admin_app_add(a, "alice", "x", h3, -5, "", NULL, &err), -1);

    struct apps l = {0};
    assert_int_equal(userdb_admin_app_list(a, "alice", app_cb, &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.a[0].label, "phone");
    assert_int_equal(l.a[0].id, id1);
    assert_true(l.a[0].created > 1700000000);
    assert_int_equal(l.a[0].expires, 0);
    assert_int_equal(l.a[0].last_used, 0);
    assert_string_equal(l.a[1].label, "laptop");
    assert_int_equal(l.a[1].expires, 4102444800);
    assert_string_equal(l.a[1].networks, "192.0.2.0/24");
    assert_int_equal(userdb_admin_app_list(a, "carol", app_cb, &l, &err), -1);

    /* authd finds it by hash, only for its own user, and records its use. */
    struct userdb *db = NULL;
    assert_int_equal(userdb_open(USERDB_SQLITE, path, &db, &err), 0);
    assert_true(userdb_writable(db));
    struct userdb_app_password ap;
    assert_int_equal(userdb_app_password_find(db, "alice", h2, &ap, &err), 1);
    assert_int_equal(ap.id, id2);
    assert_string_equal(ap.label, "laptop");
    assert_int_equal(ap.expires, 4102444800);
    assert_string_equal(ap.networks, "192.0.2.0/24");
    assert_int_equal(userdb_app_password_find(db, "bob", h2, &ap, &err), 0);
    assert_int_equal(userdb_app_password_find(db, "alice", hb, &ap, &err), 0);
    assert_int_equal(userdb_app_password_find(db, "alice", "", &ap, &err), 0);
    assert_int_equal(userdb_app_password_used(db, id2, 1750000000, "2001:db8::7", &err), 1);
    assert_int_equal(userdb_app_password_used(db, 999999, 1750000000, "192.0.2.1", &err), 0);
    assert_int_equal(userdb_app_password_used(db, id1, 1750000001, "bad\nsource", &err), 1);
    /* The same source within a minute is not written again; a new source or a minute later is. */
    assert_int_equal(userdb_app_password_used(db, id2, 1750000030, "2001:db8::7", &err), 0);
    assert_int_equal(userdb_app_password_used(db, id2, 1750000059, "2001:db8::7", &err), 0);
    assert_int_equal(userdb_app_password_used(db, id2, 1750000060, "2001:db8::8", &err), 1);
    assert_int_equal(userdb_app_password_used(db, id2, 1750000060, "2001:db8::7", &err), 1);
    l.n = 0;
    assert_int_equal(userdb_admin_app_list(a, "alice", app_cb, &l, &err), 0);
    assert_int_equal(l.a[1].last_used, 1750000060);
    assert_string_equal(l.a[1].last_source, "2001:db8::7");
    assert_string_equal(l.a[0].last_source, "bad?source"); /* the front's text is not trusted */

    /* Revoked by label or by "#ID", only the user's own; nothing left in the file. */
    assert_true(file_contains(path, h1));
    assert_int_equal(userdb_admin_app_revoke(a, "alice", "phone", &err), 1);
    assert_int_equal(userdb_admin_app_revoke(a, "alice", "phone", &err), 0);
    char ref[32];
    snprintf(ref, sizeof(ref), "#%lld", (long long)idb);
    assert_int_equal(userdb_admin_app_revoke(a, "alice", ref, &err), 0); /* bob's */
    snprintf(ref, sizeof(ref), "#%lld", (long long)id2);
    assert_int_equal(userdb_admin_app_revoke(a, "alice", ref, &err), 1);
    assert_int_equal(userdb_admin_app_revoke(a, "alice", "#x1", &err), -1);
    assert_int_equal(userdb_admin_app_revoke(a, "alice", "#", &err), -1);
    assert_int_equal(userdb_admin_app_revoke(a, "alice", "#99999999999999999999", &err), -1);
    assert_int_equal(userdb_app_password_find(db, "alice", h1, &ap, &err), 0);
    assert_false(file_contains(path, h1));
    assert_false(file_contains(path, h2));

    /* Deleting a user deletes their app passwords, without relying on the foreign key. */
    assert_true(file_contains(path, hb));
    assert_int_equal(userdb_admin_delete(a, "bob", &err), 0);
    assert_int_equal(raw_int(path, "SELECT count(*) FROM app_passwords"), 0);
    assert_false(file_contains(path, hb));
    assert_false(file_contains(path, H_BOB));
    assert_int_equal(userdb_admin_add(a, "bob", H_BOB, "", NULL, &err), 0);
    assert_int_equal(userdb_app_password_find(db, "bob", hb, &ap, &err), 0);
    userdb_close(&db);
    userdb_admin_close(&a);
}

static void test_sqlite_upgrade_hash(void **state)
{
    struct tmp *t = *state;
    const char *path = in_tmp(t, "u.db");
    struct error err = {{0}};
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(path, &a, &err), 0);
    assert_int_equal(userdb_admin_add(a, "bob", H_BOB, SCRAM_A, NULL, &err), 0);
    struct userdb *db = NULL;
    assert_int_equal(userdb_open(USERDB_SQLITE, path, &db, &err), 0);
    struct userdb_entry e;

    assert_int_equal(userdb_upgrade_hash(db, "bob", H_BOB, H_NEW, &err), 1);
    assert_int_equal(err.msg[0], '\0');
    assert_int_equal(userdb_lookup(db, "bob", &e, &err), 1);
    assert_string_equal(e.pwhash, H_NEW);
    assert_string_equal(e.scram, SCRAM_A);    /* untouched */
    assert_false(file_contains(path, H_BOB)); /* secure_delete on authd's connection too */

    /* The admin changed it in between: their hash wins. */
    assert_int_equal(userdb_admin_set_password(a, "bob", H_ALICE, "", &err), 0);
    assert_int_equal(userdb_upgrade_hash(db, "bob", H_NEW, H_BOB, &err), 0);
    assert_int_equal(userdb_lookup(db, "bob", &e, &err), 1);
    assert_string_equal(e.pwhash, H_ALICE);
    assert_int_equal(userdb_upgrade_hash(db, "carol", H_ALICE, H_BOB, &err), 0);
    assert_int_equal(userdb_upgrade_hash(db, "bob", H_ALICE, "", &err), -1);
    assert_int_equal(userdb_upgrade_hash(db, "bob", H_ALICE, "a\nb", &err), -1);
    userdb_entry_wipe(&e);
    userdb_close(&db);
    userdb_admin_close(&a);
}

/* Under root the test drops to nobody's effective uid, as authd does after
 * opening the database; under another user it write-protects the files. */
static uid_t nobody_uid(void)
{
    struct passwd *pw = getpwnam("nobody");
    return pw != NULL ? pw->pw_uid : 65534;
}

static void as_uid(uid_t uid)
{
    assert_int_equal(seteuid(uid), 0);
}

static void test_sqlite_read_only(void **state)
{
    struct tmp *t = *state;
    const char *path = in_tmp(t, "ro.db");
    char dbpath[128];
    snprintf(dbpath, sizeof(dbpath), "%s", path);
    struct error err = {{0}};
    struct userdb_admin *a = NULL;
    assert_int_equal(userdb_admin_open(dbpath, &a, &err), 0);
    assert_int_equal(userdb_admin_add(a, "bob", H_BOB, "", NULL, &err), 0);
    char h[APPPW_HASH_MAX];
    new_app_password(h);
    int64_t id = 0;
    assert_int_equal(userdb_admin_app_add(a, "bob", "phone", h, 0, "", &id, &err), 0);
    userdb_admin_close(&a);
    assert_int_equal(chmod(t->dir, 0755), 0);
    assert_int_equal(chmod(dbpath, 0644), 0);

    bool root = geteuid() == 0;
    uid_t nobody = nobody_uid();
    struct userdb *db = NULL;
    if (!root) {
        assert_int_equal(chmod(dbpath, 0444), 0);
        assert_int_equal(chmod(t->dir, 0555), 0);
    }
    assert_int_equal(userdb_open(USERDB_SQLITE, dbpath, &db, &err), 0);
    if (root) {
        assert_true(userdb_writable(db)); /* root may write anything ... */
        as_uid(nobody);                   /* ... but authd's user may not */
    }
    assert_false(userdb_writable(db));
    assert_int_equal(userdb_upgrade_hash(db, "bob", H_BOB, H_NEW, &err), 0);
    assert_int_equal(userdb_app_password_used(db, id, 1750000000, "192.0.2.1", &err), 0);
    /* Everything else works as before. */
    struct userdb_entry e;
    assert_int_equal(userdb_lookup(db, "bob", &e, &err), 1);
    assert_string_equal(e.pwhash, H_BOB);
    struct userdb_app_password ap;
    assert_int_equal(userdb_app_password_find(db, "bob", h, &ap, &err), 1);
    assert_int_equal(ap.id, id);
    userdb_entry_wipe(&e);
    if (root)
        as_uid(0);
    userdb_close(&db);

    if (root) {
        /* The file alone is not enough: SQLite writes its journal beside it.
         * (The answer holds for the handle's life: authd restarts to see new modes.) */
        assert_int_equal(chown(dbpath, nobody, (gid_t)-1), 0);
        assert_int_equal(userdb_open(USERDB_SQLITE, dbpath, &db, &err), 0);
        as_uid(nobody);
        assert_false(userdb_writable(db));
        as_uid(0);
        userdb_close(&db);
        assert_int_equal(chown(t->dir, nobody, (gid_t)-1), 0);
        assert_int_equal(userdb_open(USERDB_SQLITE, dbpath, &db, &err), 0);
        as_uid(nobody);
        assert_true(userdb_writable(db));
        assert_int_equal(userdb_upgrade_hash(db, "bob", H_BOB, H_NEW, &err), 1);
        assert_int_equal(userdb_app_password_used(db, id, 1750000000, "192.0.2.1", &err), 1);
        as_uid(0);
    }
    userdb_close(&db);
    assert_int_equal(chmod(t->dir, 0700), 0);
}

/* ---- passwd-file: line parser ---- */

static int parse(const char *line, struct userdb_entry *e, struct error *err)
{
    return userdb_passwd_parse_line(line, strlen(line), e, err);
}

static void test_passwd_parse_good(void **state)
{
    struct userdb_entry e;
    struct error err = {{0}};
    assert_int_equal(parse("alice:" H_BOB ":1000:1000::/home/alice::userdb_mail=maildir:~/Maildir", &e, &err),
                     1);
    assert_string_equal(e.name, "alice");
    assert_string_equal(e.pwhash, H_BOB);
    assert_string_equal(e.mail, "/home/alice/Maildir");
    assert_true(e.pop3_enabled);

    assert_int_equal(parse("bob:{PLAIN}pw", &e, &err), 1);
    assert_string_equal(e.name, "bob");
    assert_string_equal(e.pwhash, "{PLAIN}pw");
    assert_string_equal(e.mail, "");

    assert_int_equal(
        parse("carol:" H_ALICE "::::::mail=maildir:/var/vmail/carol:INDEX=/var/idx/carol", &e, &err), 1);
    assert_string_equal(e.pwhash, H_ALICE);
    assert_string_equal(e.mail, "/var/vmail/carol");

    assert_int_equal(
        parse("dave:x::::::quota_rule=*:storage=1G  mail=/var/vmail/dave\tuserdb_uid=vmail", &e, &err), 1);
    assert_string_equal(e.mail, "/var/vmail/dave");

    assert_int_equal(parse("erin:x:1:1:Erin E:/home/erin:/bin/false:nologin", &e, &err), 1);
    assert_false(e.pop3_enabled);
    assert_int_equal(parse("fred:x::::::deny=yes", &e, &err), 1);
    assert_false(e.pop3_enabled);

    assert_int_equal(parse("gina:x\r\n", &e, &err), 1);
    assert_string_equal(e.pwhash, "x");
    assert_int_equal(parse("hank:x:::::", &e, &err), 1);             /* trailing empty fields */
    assert_int_equal(parse("ivan:x:::::/home/ivan::", &e, &err), 1); /* empty extra fields */
    assert_int_equal(parse("jo:x::::/h::mail=~", &e, &err), 1);
    assert_string_equal(e.mail, "/h");
    assert_int_equal(parse("user@example.org:x", &e, &err), 1);
    assert_string_equal(e.name, "user@example.org");

    /* The line does not need a NUL: only len bytes are read. */
    const char buf[] = "kate:secret:trailing-garbage-not-in-len";
    assert_int_equal(userdb_passwd_parse_line(buf, 11, &e, &err), 1);
    assert_string_equal(e.pwhash, "secret");

    /* Our own extra fields: the per-user policy SQLite keeps in columns. */
    assert_int_equal(
        parse("lena:x::::::popsd_methods=password,scram popsd_networks=192.0.2.0/24,2001:db8::/32"
              " popsd_require_mfa=yes",
              &e, &err),
        1);
    assert_int_equal(e.methods, CONF_METHOD_PASSWORD | CONF_METHOD_SCRAM);
    assert_string_equal(e.networks, "192.0.2.0/24 2001:db8::/32");
    assert_true(e.require_mfa);
    assert_int_equal(parse("lena:x::::::popsd_methods=app popsd_require_mfa=no popsd_unknown=1", &e, &err),
                     1);
    assert_int_equal(e.methods, CONF_METHOD_APP);
    assert_string_equal(e.networks, "");
    assert_false(e.require_mfa);
    assert_int_equal(parse("lena:x::::::popsd_require_mfa", &e, &err), 1); /* a bare flag is yes */
    assert_true(e.require_mfa);
    assert_int_equal(e.methods, 0); /* the [userdb] default applies */
    assert_int_equal(parse("lena:x::::::popsd_methods=oauth,app,oauth", &e, &err), 1);
    assert_int_equal(e.methods, CONF_METHOD_OAUTH | CONF_METHOD_APP);

    /* A SCRAM verifier is both the SCRAM keys and what PLAIN checks against. */
    assert_int_equal(parse("sam:" SCRAM_A "::::::mail=/var/vmail/sam", &e, &err), 1);
    assert_string_equal(e.scram, SCRAM_A);
    assert_string_equal(e.pwhash, SCRAM_A);
    assert_string_equal(e.mail, "/var/vmail/sam");
    assert_int_equal(parse("sam:{scram-sha-256}4096,c2FsdA==,QQ==,Qg==", &e, &err), 1);
    assert_string_equal(e.scram, "{scram-sha-256}4096,c2FsdA==,QQ==,Qg==");
    assert_int_equal(parse("sam:" H_BOB, &e, &err), 1);
    assert_string_equal(e.scram, "");

    static const char *const skip[] = {"", "\n", "   ", "\t\n", "# comment", "  # indented comment", "#:x:y"};
    for (size_t i = 0; i < sizeof(skip) / sizeof(skip[0]); i++)
        if (parse(skip[i], &e, &err) != 0)
            fail_msg("line %zu not skipped", i);
    userdb_entry_wipe(&e);
}

static void test_passwd_parse_bad(void **state)
{
    static char longline[USERDB_PATH_MAX + 100], longhash[PWSCHEME_HASH_MAX + 20], longname[300],
        hugeline[5000];
    memcpy(longline, "u:x::::::mail=/", 15);
    memset(longline + 15, 'm', sizeof(longline) - 16);
    memcpy(longhash, "u:", 2);
    memset(longhash + 2, 'h', sizeof(longhash) - 3);
    memset(longname, 'n', sizeof(longname) - 3);
    memcpy(longname + sizeof(longname) - 3, ":x", 2);
    memcpy(hugeline, "u:", 2);
    memset(hugeline + 2, 'h', sizeof(hugeline) - 3);
    static char longscram_line[USERDB_SCRAM_MAX + 20]; /* fits the hash, not the SCRAM keys */
    memset(longscram_line, 'A', sizeof(longscram_line) - 1);
    memcpy(longscram_line, "u:{SCRAM-SHA-256}", 17);
    const char *const bad[] = {
        "alice",
        ":hash",
        "alice:",
        "alice::1000",
        "a/b:x",
        "al\x01ice:x",
        "alice:x\x7f",
        "alice:x::::::mail=mbox:~/mail",
        "alice:x::::::userdb_mail=maildir:~/Maildir", /* ~ but no home */
        "alice:x::::relative::mail=~/Maildir",        /* home not absolute */
        "alice:x::::/home/a::mail=~alice/Maildir",    /* ~user unsupported */
        "alice:x::::::mail=relative/path",
        "alice:x::::::mail=maildir:",
        "alice:x::::::mail=",
        "alice:x::::::mail=/var/vmail/%d/%n",
        "alice:x::::/home/%u::mail=~/Maildir", /* %var via the home field */
        "alice:x::::::allow_nets=127.0.0.1/8",
        "alice:x::::::nopassword",
        "alice:x::::::=value",
        "alice:pass\tword",
        "alice:x::::::popsd_methods=password,imap",
        "alice:x::::::popsd_methods=",
        "alice:x::::::popsd_methods",
        "alice:x::::::popsd_methods=password,",
        "alice:x::::::popsd_methods=PASSWORD",
        "alice:x::::::popsd_networks=192.0.2.0/33",
        "alice:x::::::popsd_networks=192.0.2.0/24,example.org",
        "alice:x::::::popsd_networks=",
        "alice:x::::::popsd_networks=,",
        "alice:x::::::popsd_networks",
        "alice:x::::::popsd_require_mfa=maybe",
        "alice:x::::::popsd_require_mfa=",
        longscram_line,
        longline,
        longhash,
        longname,
        hugeline,
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct userdb_entry e;
        struct error err = {{0}};
        memset(&e, 0x55, sizeof(e));
        if (parse(bad[i], &e, &err) != -1)
            fail_msg("bad line %zu accepted: %.60s", i, bad[i]);
        if (err.msg[0] == '\0')
            fail_msg("bad line %zu: no detail", i);
        /* A refused line leaves nothing behind. */
        assert_int_equal(e.pwhash[0], 0);
        assert_int_equal(e.name[0], 0);
    }
    /* A NUL inside the line is a control character, not an end. */
    struct userdb_entry e;
    struct error err = {{0}};
    assert_int_equal(userdb_passwd_parse_line("alice:x\0y", 9, &e, &err), -1);
    assert_int_equal(userdb_passwd_parse_line(NULL, 0, &e, &err), -1);
    /* Errors never quote the hash. */
    assert_int_equal(parse("alice:{PLAIN}topsecret::::::allow_nets=1.2.3.4", &e, &err), -1);
    assert_null(strstr(err.msg, "topsecret"));
}

/* ---- passwd-file: loader ---- */

static const char *write_file(struct tmp *t, const char *name, const char *content, mode_t mode)
{
    const char *p = in_tmp(t, name);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
    return p;
}

static void test_passwd_file(void **state)
{
    struct tmp *t = *state;
    const char *p = write_file(t, "passwd",
                               "# Dovecot passwd-file\n"
                               "\n"
                               "zed:" H_ALICE "\n"
                               "alice:" H_BOB ":1000:1000::/home/alice::userdb_mail=maildir:~/Maildir\r\n"
                               "   \n"
                               "bob:{PLAIN}pw::::::nologin\n"
                               "sam:" SCRAM_A "::::::popsd_methods=scram popsd_networks=10.0.0.0/8"
                               " popsd_require_mfa=yes\n"
                               "mike:x::::::mail=maildir:/var/vmail/mike", /* no final newline */
                               0640);
    struct userdb *db = NULL;
    struct error err = {{0}};
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, p, &db, &err), 0);
    struct userdb_entry e;
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.pwhash, H_BOB);
    assert_string_equal(e.mail, "/home/alice/Maildir");
    assert_true(e.pop3_enabled);
    assert_int_equal(userdb_lookup(db, "zed", &e, &err), 1);
    assert_string_equal(e.pwhash, H_ALICE);
    assert_int_equal(userdb_lookup(db, "bob", &e, &err), 1);
    assert_false(e.pop3_enabled);
    assert_int_equal(userdb_lookup(db, "mike", &e, &err), 1);
    assert_string_equal(e.mail, "/var/vmail/mike");
    assert_int_equal(e.methods, 0);
    assert_string_equal(e.scram, "");
    assert_int_equal(userdb_lookup(db, "sam", &e, &err), 1);
    assert_string_equal(e.scram, SCRAM_A);
    assert_string_equal(e.pwhash, SCRAM_A);
    assert_int_equal(e.methods, CONF_METHOD_SCRAM);
    assert_string_equal(e.networks, "10.0.0.0/8");
    assert_true(e.require_mfa);
    /* No app passwords and no writes in a passwd-file. */
    struct userdb_app_password ap;
    assert_false(userdb_writable(db));
    assert_int_equal(userdb_app_password_find(db, "sam", "sha256:00", &ap, &err), 0);
    assert_int_equal(userdb_app_password_used(db, 1, 1750000000, "192.0.2.1", &err), 0);
    assert_int_equal(userdb_upgrade_hash(db, "sam", SCRAM_A, H_NEW, &err), 0);
    assert_int_equal(userdb_lookup(db, "carol", &e, &err), 0);
    assert_int_equal(userdb_lookup(db, "", &e, &err), 0);
    assert_int_equal(userdb_lookup(db, "ALICE", &e, &err), 0);
    userdb_entry_wipe(&e);
    userdb_close(&db);
    assert_null(db);

    p = write_file(t, "empty", "", 0600);
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, p, &db, &err), 0);
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 0);
    userdb_close(&db);
}

static void test_passwd_file_refused(void **state)
{
    struct tmp *t = *state;
    struct userdb *db = NULL;
    struct error err = {{0}};
    const char *good = "alice:{PLAIN}pw\n";

    const char *p = write_file(t, "gw", good, 0660);
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, p, &db, &err), -1);
    assert_non_null(strstr(err.msg, "group- or world-writable"));
    assert_null(db);
    p = write_file(t, "ww", good, 0602);
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, p, &db, &err), -1);
    assert_non_null(strstr(err.msg, "group- or world-writable"));

    /* A malformed line names file:line. */
    p = write_file(t, "bad", "# c\nalice:{PLAIN}pw\nbroken line without colon\nbob:x\n", 0600);
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, p, &db, &err), -1);
    char want[160];
    snprintf(want, sizeof(want), "%s:3: ", p);
    if (strncmp(err.msg, want, strlen(want)) != 0)
        fail_msg("unexpected error '%s'", err.msg);

    p = write_file(t, "dup", "alice:x\nbob:y\nalice:z\n", 0600);
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, p, &db, &err), -1);
    assert_non_null(strstr(err.msg, ":3: duplicate user (also on line 1)"));

    static char big[6000];
    memset(big, 'x', sizeof(big) - 2);
    memcpy(big, "alice:{PLAIN}ok\nu:", 18);
    big[sizeof(big) - 2] = '\n';
    p = write_file(t, "long", big, 0600);
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, p, &db, &err), -1);
    assert_non_null(strstr(err.msg, ":2: line longer than"));

    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, in_tmp(t, "missing"), &db, &err), -1);
    assert_int_equal(userdb_open(USERDB_PASSWD_FILE, t->dir, &db, &err), -1);
    assert_non_null(strstr(err.msg, "not a regular file"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sqlite_roundtrip, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_admin_validation, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_open_errors, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_v2_created, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_migrate_v1, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_policy, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_totp, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_app_passwords, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_upgrade_hash, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_sqlite_read_only, setup_tmp, teardown_tmp),
        cmocka_unit_test(test_passwd_parse_good),
        cmocka_unit_test(test_passwd_parse_bad),
        cmocka_unit_test_setup_teardown(test_passwd_file, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_passwd_file_refused, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
