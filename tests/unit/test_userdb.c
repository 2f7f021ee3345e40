/* User databases: SQLite admin round trip seen through a read-only handle,
 * and the passwd-file parser and loader. Every test works in its own
 * temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/userdb.h"

#define H_ALICE                                                                                              \
    "{ARGON2ID}$argon2id$v=19$m=1024,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$MO33cCFnqSA8SskhR8/i5r/vajJ3mDxwI/"      \
    "Myoh5GZwk"
#define H_BOB                                                                                                \
    "{SHA512-CRYPT}$6$saltsalt$"                                                                             \
    "hRM5XZ86KXEw9UOmjigeVqFgULtFB2sgpC9lXQDfMib3Zgw7mEiUvBJI2EplzfAqxL5Vvwp2scFtv/uamSo5z0"
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

    assert_int_equal(userdb_admin_add(a, "bob", H_BOB, NULL, &err), 0);
    assert_int_equal(userdb_admin_add(a, "alice", H_ALICE, "/var/vmail/alice", &err), 0);
    assert_int_equal(userdb_admin_add(a, "alice", H_BOB, "", &err), -1);
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
    assert_int_equal(userdb_admin_set_password(a, "alice", H_NEW, &err), 0);
    assert_int_equal(userdb_lookup(db, "alice", &e, &err), 1);
    assert_string_equal(e.pwhash, H_NEW);
    assert_int_equal(userdb_admin_set_password(a, "carol", H_NEW, &err), -1);
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
        if (userdb_admin_add(a, bad_names[i], H_ALICE, NULL, &err) != -1)
            fail_msg("bad name %zu accepted", i);
        assert_non_null(strstr(err.msg, "invalid user name"));
    }
    longname[USERDB_NAME_MAX] = '\0'; /* exactly the maximum is fine */
    assert_int_equal(userdb_admin_add(a, longname, H_ALICE, NULL, &err), 0);
    assert_int_equal(userdb_admin_add(a, "j\xc3\xb6rg@example.org", H_ALICE, NULL, &err), 0);
    assert_int_equal(userdb_admin_add(a, "x", "", NULL, &err), -1);
    assert_int_equal(userdb_admin_add(a, "x", "has\nnewline", NULL, &err), -1);
    assert_int_equal(userdb_admin_add(a, "x", H_ALICE, "relative/path", &err), -1);
    assert_int_equal(userdb_admin_set_password(a, "x", "", &err), -1);
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
    assert_int_equal(sqlite3_exec(raw, "UPDATE schema_version SET version = 2", NULL, NULL, NULL), SQLITE_OK);
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
        cmocka_unit_test(test_passwd_parse_good),
        cmocka_unit_test(test_passwd_parse_bad),
        cmocka_unit_test_setup_teardown(test_passwd_file, setup_tmp, teardown_tmp),
        cmocka_unit_test_setup_teardown(test_passwd_file_refused, setup_tmp, teardown_tmp),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
