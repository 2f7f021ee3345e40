/* The Maildir store on real directories under /tmp: snapshot order and
 * isolation, sizes from names / cache / reading, cache corruption, the
 * session lock, deletions at commit, renames by other agents, UIDL hashing. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/dotstuff.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"
#include "store/maildir_scan.h"
#include "store/sizecache.h"

struct fixture {
    char root[64];
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    strcpy(f->root, "/tmp/popsd-maildir-XXXXXX");
    assert_non_null(mkdtemp(f->root));
    char p[128];
    static const char *subs[] = {"new", "cur", "tmp"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", f->root, subs[i]);
        assert_int_equal(mkdir(p, 0700), 0);
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void path_of(const struct fixture *f, const char *rel, char *out, size_t outsz)
{
    int n = snprintf(out, outsz, "%s/%s", f->root, rel);
    assert_true(n > 0 && (size_t)n < outsz);
}

static void put_len(const struct fixture *f, const char *rel, const char *data, size_t len)
{
    char p[512];
    path_of(f, rel, p, sizeof(p));
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void put(const struct fixture *f, const char *rel, const char *data)
{
    put_len(f, rel, data, strlen(data));
}

static bool exists(const struct fixture *f, const char *rel)
{
    char p[512];
    struct stat st;
    path_of(f, rel, p, sizeof(p));
    return lstat(p, &st) == 0;
}

static ino_t inode_of(const struct fixture *f, const char *rel)
{
    char p[512];
    struct stat st;
    path_of(f, rel, p, sizeof(p));
    assert_int_equal(lstat(p, &st), 0);
    return st.st_ino;
}

/* Open fds of this process: error paths must not leak any. */
static int fd_count(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static struct store_mailbox *open_ok(const struct fixture *f)
{
    struct store_mailbox *mb = NULL;
    struct error err = {""};
    int rc = store_open(f->root, false, &mb, &err);
    if (rc != STORE_OK)
        fail_msg("store_open: %d %s", rc, err.msg);
    assert_non_null(mb);
    return mb;
}

/* Opens, returns the size of message i, closes. */
static uint64_t size_of(const struct fixture *f, uint32_t i)
{
    struct store_mailbox *mb = open_ok(f);
    assert_true(i < store_count(mb));
    uint64_t s = store_get(mb, i)->size;
    store_close(&mb);
    return s;
}

static void read_all(int fd, char *buf, size_t cap, size_t *len)
{
    ssize_t r;
    *len = 0;
    while ((r = read(fd, buf + *len, cap - *len)) > 0)
        *len += (size_t)r;
    assert_true(r == 0);
}

static void test_scan_order(void **state)
{
    struct fixture *f = *state;
    put(f, "new/3.a.host", "x\n");
    put(f, "cur/1.a.host:2,S", "x\n");
    put(f, "new/2.a.host", "x\n");
    put(f, "cur/10.a.host:2,", "x\n");
    put(f, "new/.hidden", "not mail\n");
    put(f, "cur/:2,S", "no base name\n");
    put(f, "tmp/0.being.delivered", "partial\n");
    char p[512], target[512];
    path_of(f, "cur/5.a.dir", p, sizeof(p));
    assert_int_equal(mkdir(p, 0700), 0);
    path_of(f, "new/4.a.link", p, sizeof(p));
    path_of(f, "new/3.a.host", target, sizeof(target));
    assert_int_equal(symlink(target, p), 0);
    path_of(f, "new/6.a.fifo", p, sizeof(p));
    assert_int_equal(mkfifo(p, 0600), 0);

    struct store_mailbox *mb = open_ok(f);
    static const char *want[] = {"1.a.host", "10.a.host", "2.a.host", "3.a.host"};
    assert_int_equal(store_count(mb), 4);
    for (uint32_t i = 0; i < 4; i++) {
        assert_string_equal(store_get(mb, i)->uidl, want[i]);
        assert_int_equal(store_get(mb, i)->size, 3);
    }
    assert_null(store_get(mb, 4));
    store_close(&mb);
    assert_null(mb);
    store_close(&mb); /* safe on NULL */
}

static void test_duplicate_base(void **state)
{
    /* Seen in new/ and cur/ (moved while we listed): one message, cur/ wins. */
    struct fixture *f = *state;
    put(f, "new/1.dup", "new copy\n");
    put(f, "cur/1.dup:2,S", "cur\n");
    struct store_mailbox *mb = open_ok(f);
    assert_int_equal(store_count(mb), 1);
    assert_int_equal(store_get(mb, 0)->size, 5);
    store_close(&mb);
}

static void test_name_parse(void **state)
{
    struct maildir_name n;
    const char *s = "123.M1P2.host,S=100,W=104:2,S";
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_int_equal(n.base_len, strlen("123.M1P2.host,S=100,W=104"));
    assert_true(n.has_size && n.has_wire);
    assert_int_equal(n.size, 100);
    assert_int_equal(n.wire_size, 104);

    s = "1.h,S=10";
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_true(n.has_size && !n.has_wire);
    s = "1.h,W=5";
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_true(!n.has_size && n.has_wire);
    assert_int_equal(n.wire_size, 5);
    s = "1.h,S=abc,W=5";
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_true(!n.has_size && n.has_wire);
    s = "1.h,S=10,W=21"; /* W can be at most 2*S */
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_true(n.has_size && !n.has_wire);
    s = "1.h,S=10,W=20";
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_true(n.has_wire);
    s = "1.h,S=10,W=9"; /* W below S */
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_true(n.has_size && !n.has_wire);
    s = "1.h,S=1,S=2"; /* ambiguous: trusted neither */
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_false(n.has_size);
    s = "1.h,S=,W=-1,S=+4";
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_false(n.has_size || n.has_wire);
    s = "1.h,S=99999999999999999999999"; /* overflow */
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_false(n.has_size);
    s = "1.h:2,S=5"; /* the info part is not the base */
    assert_int_equal(maildir_name_parse(s, strlen(s), &n), 0);
    assert_int_equal(n.base_len, 3);
    assert_false(n.has_size);

    assert_int_equal(maildir_name_parse("", 0, &n), -1);
    assert_int_equal(maildir_name_parse(".x", 2, &n), -1);
    assert_int_equal(maildir_name_parse(":2,S", 4, &n), -1);
    assert_int_equal(maildir_name_parse("a/b", 3, &n), -1);
    assert_int_equal(maildir_name_parse("a\0b", 3, &n), -1);
    char longname[MAILDIR_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname));
    assert_int_equal(maildir_name_parse(longname, MAILDIR_NAME_MAX, &n), 0);
    assert_int_equal(maildir_name_parse(longname, MAILDIR_NAME_MAX + 1, &n), -1);
}

static void test_size_fields(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.h,W=999", "abc");       /* W= is used as is */
    put(f, "new/2.h,S=4", "a\nb\n");      /* S= only: measured */
    put(f, "new/3.h,S=4,W=6", "a\nb\n");  /* both */
    put(f, "new/4.h,S=1,W=50", "a\nb\n"); /* inconsistent W=: measured */
    struct store_mailbox *mb = open_ok(f);
    assert_int_equal(store_count(mb), 4);
    assert_int_equal(store_get(mb, 0)->size, 999);
    assert_int_equal(store_get(mb, 1)->size, 6);
    assert_int_equal(store_get(mb, 2)->size, 6);
    assert_int_equal(store_get(mb, 3)->size, 6);
    store_close(&mb);
}

static void test_size_matches_dotstuff(void **state)
{
    struct fixture *f = *state;
    static const char msg[] = "H: .x\r\n\r\n.\n..\r\r\nbare\rcr\n\n.last";
    put_len(f, "new/1.tricky", msg, sizeof(msg) - 1);
    uint64_t listed = size_of(f, 0);

    unsigned char out[2 * sizeof(msg) + 8];
    struct dotstuff st;
    dotstuff_init(&st, -1);
    size_t n = dotstuff_feed(&st, (const unsigned char *)msg, sizeof(msg) - 1, out);
    size_t dots = 0; /* stuffing dots: a line-start dot is followed by its copy */
    for (size_t i = 0; i + 1 < n; i++) {
        if ((i == 0 || out[i - 1] == '\n') && out[i] == '.') {
            dots++;
            i++;
        }
    }
    assert_int_equal(listed, st.wire_bytes);
    assert_int_equal(listed, n - dots);
    assert_int_equal(dots, 3);
    /* Cached on the first open: the second one answers the same. */
    assert_true(exists(f, SIZECACHE_FILE));
    assert_int_equal(size_of(f, 0), listed);
}

static void test_cache_created_and_reused(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.b", "a\nb\n");
    put(f, "cur/2.b:2,S", "xyz\n");
    put(f, "new/3.b,W=7", "123456\n"); /* W= needs no cache line */
    assert_false(exists(f, SIZECACHE_FILE));
    assert_int_equal(size_of(f, 0), 6);

    char p[512], buf[512];
    path_of(f, SIZECACHE_FILE, p, sizeof(p));
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, "popsd-sizes 1\n1.b 4 6\n2.b 4 5\n");
    ino_t ino = inode_of(f, SIZECACHE_FILE);

    /* Same physical size, different content: the cached wire size wins,
     * which shows the file was not read again; nothing rewritten. */
    put(f, "new/1.b", "a\r\nb");
    assert_int_equal(size_of(f, 0), 6);
    assert_int_equal(inode_of(f, SIZECACHE_FILE), ino);

    /* A different physical size invalidates the entry and rewrites the cache. */
    put(f, "new/1.b", "a\r\nbc");
    assert_int_equal(size_of(f, 0), 5);
    assert_true(inode_of(f, SIZECACHE_FILE) != ino);
    assert_false(exists(f, SIZECACHE_TMP_FILE));

    /* A vanished message drops its line. */
    char q[512];
    path_of(f, "cur/2.b:2,S", q, sizeof(q));
    assert_int_equal(unlink(q), 0);
    assert_int_equal(size_of(f, 0), 5);
    fp = fopen(p, "r");
    assert_non_null(fp);
    n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, "popsd-sizes 1\n1.b 5 5\n");
}

/* Writes cache content, opens, and checks the size of message 0 is the real one. */
static void expect_cache_ignored(const struct fixture *f, const char *cache, size_t len)
{
    put_len(f, SIZECACHE_FILE, cache, len);
    assert_int_equal(size_of(f, 0), 6);
    char p[512], buf[64];
    path_of(f, SIZECACHE_FILE, p, sizeof(p));
    FILE *fp = fopen(p, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    assert_string_equal(buf, "popsd-sizes 1\n1.c 4 6\n"); /* rebuilt */
}

static void ignored(const struct fixture *f, const char *cache)
{
    expect_cache_ignored(f, cache, strlen(cache));
}

static void test_cache_corrupt(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.c", "a\nb\n"); /* physical 4, wire 6 */
    static const char garbage[] = "garbage\n\0\xff\n1.c 4\n";
    expect_cache_ignored(f, garbage, sizeof(garbage) - 1);
    expect_cache_ignored(f, "", 0);
    /* Right header, wrong things: each makes the whole file untrusted, so
     * the plausible-looking but wrong "1.c 4 7" is never used. */
    ignored(f, "popsd-sizes 2\n1.c 4 7\n");
    ignored(f, "popsd-sizes 1\n1.c 4 7\nzz garbage\n");
    ignored(f, "popsd-sizes 1\n1.c 4 7\n0.c 4 4\n"); /* unsorted */
    ignored(f, "popsd-sizes 1\n1.c 4 7\n1.c 4 7\n"); /* duplicate */
    ignored(f, "popsd-sizes 1\n1.c 4 7");            /* truncated */
    ignored(f, "popsd-sizes 1\n1.c 4 9\n");          /* wire > 2*phys */
    ignored(f, "popsd-sizes 1\n1.c 4 07\n");         /* not canonical */
    ignored(f, "popsd-sizes 1\n1.c  4 7\n");         /* double space */
    ignored(f, "popsd-sizes 1\n1.c 4 7 \n");         /* trailing space */
    /* Well-formed but stale: the entry's physical size does not match. */
    ignored(f, "popsd-sizes 1\n1.c 5 7\n");
    /* A directory where the cache should be: ignored, and popsd.sizes is
     * then not writable, which must not fail the open either. */
    char p[512];
    path_of(f, SIZECACHE_FILE, p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    assert_int_equal(size_of(f, 0), 6);
    assert_false(exists(f, SIZECACHE_TMP_FILE));
}

static void test_cache_line_parse(void **state)
{
    struct sizecache_line l;
    const char *s = "1.a 10 12";
    assert_int_equal(sizecache_parse_line(s, strlen(s), &l), 0);
    assert_int_equal(l.base_len, 3);
    assert_int_equal(l.physical, 10);
    assert_int_equal(l.wire, 12);
    char buf[SIZECACHE_LINE_MAX + 2];
    size_t n = sizecache_format_line(&l, buf);
    assert_int_equal(n, strlen(s) + 1);
    assert_memory_equal(buf, "1.a 10 12\n", n);
    static const char *bad[] = {"",
                                "1.a",
                                "1.a 10",
                                "1.a 10 12 13",
                                " 10 12",
                                "1.a 10 x",
                                "1\x01 1 1",
                                "1.a 0 1",
                                "1.a 18446744073709551616 1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(sizecache_parse_line(bad[i], strlen(bad[i]), &l), -1);
    s = "1.a 0 0";
    assert_int_equal(sizecache_parse_line(s, strlen(s), &l), 0);
}

/* An idle session holds the root and the lock only (issue 6: 10,000 sessions per front). */
static void test_idle_fds(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.u", "1\n");
    put(f, "cur/2.u:2,S", "2\n");
    int fds = fd_count();
    struct store_mailbox *mb = open_ok(f);
    assert_int_equal(fd_count(), fds + 2);
    struct error err = {""};
    int fd = store_msg_open(mb, 1, &err);
    assert_true(fd >= 0);
    close(fd);
    bool del[2] = {true, false};
    assert_int_equal(store_commit(mb, del, &err), STORE_OK);
    store_close(&mb);
    assert_int_equal(fd_count(), fds);
    char p[512];
    path_of(f, "new/1.u", p, sizeof(p));
    assert_int_equal(access(p, F_OK), -1);
}

static void test_inuse(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.u", "1\n");
    int fds = fd_count();
    struct store_mailbox *mb = open_ok(f), *mb2 = NULL;
    struct error err = {""};
    assert_int_equal(store_open(f->root, false, &mb2, &err), STORE_ERR_INUSE);
    assert_null(mb2);
    assert_true(err.msg[0] != '\0');
    store_close(&mb);
    mb2 = open_ok(f);
    int fd = store_msg_open(mb2, 0, &err);
    assert_true(fd >= 0);
    assert_false(fcntl(fd, F_GETFL) & O_NONBLOCK);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    close(fd);
    store_close(&mb2);
    assert_int_equal(fd_count(), fds);
    struct stat st;
    char p[512];
    path_of(f, "popsd.lock", p, sizeof(p));
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
}

static void test_snapshot_isolation(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.s", "one\n");
    put(f, "cur/2.s:2,S", "two\n");
    struct store_mailbox *mb = open_ok(f);
    assert_int_equal(store_count(mb), 2);
    put(f, "new/3.s", "delivered during the session\n");
    put(f, "new/0.s", "sorts first, still not ours\n");
    assert_int_equal(store_count(mb), 2);
    assert_string_equal(store_get(mb, 0)->uidl, "1.s");
    bool del[2] = {true, true};
    struct error err = {""};
    assert_int_equal(store_commit(mb, del, &err), STORE_OK);
    store_close(&mb);
    assert_false(exists(f, "new/1.s"));
    assert_false(exists(f, "cur/2.s:2,S"));
    assert_true(exists(f, "new/3.s"));
    assert_true(exists(f, "new/0.s"));
    mb = open_ok(f);
    assert_int_equal(store_count(mb), 2);
    store_close(&mb);
}

static void test_commit_only_marked(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.m", "1\n");
    put(f, "new/2.m", "2\n");
    put(f, "cur/3.m:2,S", "3\n");
    struct store_mailbox *mb = open_ok(f);
    bool del[3] = {false, true, false};
    struct error err = {""};
    assert_int_equal(store_commit(mb, del, &err), STORE_OK);
    store_close(&mb);
    assert_true(exists(f, "new/1.m"));
    assert_false(exists(f, "new/2.m"));
    assert_true(exists(f, "cur/3.m:2,S"));

    /* No deletions: nothing happens. */
    mb = open_ok(f);
    bool none[2] = {false, false};
    assert_int_equal(store_commit(mb, none, &err), STORE_OK);
    store_close(&mb);
    assert_true(exists(f, "new/1.m"));
    assert_true(exists(f, "cur/3.m:2,S"));
}

static void test_vanished(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.v", "1\n");
    put(f, "new/2.v", "2\n");
    struct store_mailbox *mb = open_ok(f);
    char p[512];
    path_of(f, "new/1.v", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    struct error err = {""};
    assert_int_equal(store_msg_open(mb, 0, &err), STORE_ERR_GONE);
    assert_int_equal(store_msg_open(mb, 2, &err), STORE_ERR_GONE); /* out of range */
    int fd = store_msg_open(mb, 1, &err);
    assert_true(fd >= 0);
    close(fd);
    /* Deleting a message someone else already removed is success. */
    bool del[2] = {true, false};
    assert_int_equal(store_commit(mb, del, &err), STORE_OK);
    store_close(&mb);
    assert_true(exists(f, "new/2.v"));
}

static void test_commit_error(void **state)
{
    /* An unlink that fails (here: a directory took the message's name) makes
     * the commit answer TEMP; the other marked message is still deleted and
     * the unmarked one kept. */
    struct fixture *f = *state;
    put(f, "new/1.e", "1\n");
    put(f, "new/2.e", "2\n");
    put(f, "new/3.e", "3\n");
    struct store_mailbox *mb = open_ok(f);
    char p[512];
    path_of(f, "new/1.e", p, sizeof(p));
    assert_int_equal(unlink(p), 0);
    assert_int_equal(mkdir(p, 0700), 0);
    bool del[3] = {true, true, false};
    struct error err = {""};
    assert_int_equal(store_commit(mb, del, &err), STORE_ERR_TEMP);
    assert_non_null(strstr(err.msg, "1.e"));
    store_close(&mb);
    assert_true(exists(f, "new/1.e"));
    assert_false(exists(f, "new/2.e"));
    assert_true(exists(f, "new/3.e"));
}

static void test_replaced_by_symlink(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.l", "1\n");
    put(f, "tmp/secret", "not for the client\n");
    struct store_mailbox *mb = open_ok(f);
    char p[512], target[512];
    path_of(f, "new/1.l", p, sizeof(p));
    path_of(f, "tmp/secret", target, sizeof(target));
    assert_int_equal(unlink(p), 0);
    assert_int_equal(symlink(target, p), 0);
    struct error err = {""};
    assert_int_equal(store_msg_open(mb, 0, &err), STORE_ERR_GONE);
    store_close(&mb);
}

static void test_renamed(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.r", "moved\n");
    put(f, "cur/2.r:2,", "flagged\n");
    struct store_mailbox *mb = open_ok(f);
    char a[512], b[512];
    path_of(f, "new/1.r", a, sizeof(a));
    path_of(f, "cur/1.r:2,S", b, sizeof(b));
    assert_int_equal(rename(a, b), 0);
    path_of(f, "cur/2.r:2,", a, sizeof(a));
    path_of(f, "cur/2.r:2,RS", b, sizeof(b));
    assert_int_equal(rename(a, b), 0);

    struct error err = {""};
    char buf[64];
    size_t n;
    int fd = store_msg_open(mb, 0, &err);
    if (fd < 0)
        fail_msg("store_msg_open: %s", err.msg);
    read_all(fd, buf, sizeof(buf), &n);
    close(fd);
    assert_int_equal(n, 6);
    assert_memory_equal(buf, "moved\n", 6);
    /* Renamed again after we followed it once. */
    path_of(f, "cur/1.r:2,S", a, sizeof(a));
    path_of(f, "cur/1.r:2,ST", b, sizeof(b));
    assert_int_equal(rename(a, b), 0);
    fd = store_msg_open(mb, 0, &err);
    assert_true(fd >= 0);
    close(fd);

    /* Message 2 was renamed and never opened: commit finds it by base name. */
    bool del[2] = {true, true};
    assert_int_equal(store_commit(mb, del, &err), STORE_OK);
    store_close(&mb);
    assert_false(exists(f, "cur/1.r:2,ST"));
    assert_false(exists(f, "cur/2.r:2,RS"));
}

static void test_uidl(void **state)
{
    struct fixture *f = *state;
    char name[128];
    memset(name, 'A', 80);
    memcpy(name + 80, ":2,S", 5);
    char rel[160];
    snprintf(rel, sizeof(rel), "cur/%s", name);
    put(f, rel, "long\n");
    put(f, "new/1 2.host", "space\n");
    put(f, "new/1\x7f.host", "del\n");
    struct store_mailbox *mb = open_ok(f);
    assert_int_equal(store_count(mb), 3);
    /* Sorted by base name: "1 2.host" < "1\x7f.host" < "AAA..." */
    assert_string_equal(store_get(mb, 0)->uidl, "830d0a2d15f13b46354a9eb148f06b4b");
    assert_string_equal(store_get(mb, 1)->uidl, "f1af16690f0b6e08168ef0509f3e9b97");
    assert_string_equal(store_get(mb, 2)->uidl, "d9b1f3e2c6d528668a73f22575c44ed9");
    store_close(&mb);

    char out[STORE_UIDL_MAX + 1], x[72];
    memset(x, 'x', sizeof(x));
    assert_true(maildir_name_uidl_valid(x, 70));
    assert_false(maildir_name_uidl_valid(x, 71));
    assert_false(maildir_name_uidl_valid(x, 0));
    assert_int_equal(maildir_name_uidl(x, 70, out), 0);
    assert_int_equal(strlen(out), 70);
    assert_int_equal(maildir_name_uidl(x, 71, out), 0);
    assert_string_equal(out, "87a1e4c1c92b7b7a7c46433d780de6cc");
    assert_int_equal(maildir_name_uidl("1.ok", 4, out), 0);
    assert_string_equal(out, "1.ok");
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
    struct store_mailbox *mb = NULL;
    struct error err = {""};
    char p[512];
    int fds = fd_count();
    path_of(f, "missing", p, sizeof(p));
    assert_int_equal(store_open(p, false, &mb, &err), STORE_ERR_PERM);
    assert_null(mb);
    /* create: the Maildir and its subdirectories appear, mode 0700. */
    assert_int_equal(store_open(p, true, &mb, &err), STORE_OK);
    assert_int_equal(store_count(mb), 0);
    store_close(&mb);
    assert_true(exists(f, "missing/new") && exists(f, "missing/cur") && exists(f, "missing/tmp"));
    struct stat st;
    path_of(f, "missing/cur", p, sizeof(p));
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);

    /* A Maildir without tmp/ is misconfigured unless we may create it. */
    path_of(f, "tmp", p, sizeof(p));
    assert_int_equal(rmdir(p), 0);
    assert_int_equal(store_open(f->root, false, &mb, &err), STORE_ERR_PERM);
    assert_int_equal(store_open(f->root, true, &mb, &err), STORE_OK);
    store_close(&mb);

    /* The Maildir path itself must not be a symlink (O_NOFOLLOW). */
    char link[512];
    path_of(f, "link", link, sizeof(link));
    assert_int_equal(symlink(f->root, link), 0);
    assert_int_equal(store_open(link, false, &mb, &err), STORE_ERR_PERM);
    /* Nor a subdirectory. */
    path_of(f, "cur", p, sizeof(p));
    assert_int_equal(rmdir(p), 0);
    path_of(f, "missing/cur", link, sizeof(link));
    assert_int_equal(symlink(link, p), 0);
    assert_int_equal(store_open(f->root, false, &mb, &err), STORE_ERR_PERM);
    assert_null(mb);
    assert_int_equal(fd_count(), fds);
}

static void test_max_messages(void **state)
{
    struct fixture *f = *state;
    put(f, "new/1.x", "1\n");
    put(f, "new/2.x", "2\n");
    put(f, "new/3.x", "3\n");
    char p[512];
    path_of(f, "new", p, sizeof(p));
    int dfd = open(p, O_RDONLY | O_DIRECTORY);
    assert_true(dfd >= 0);
    struct maildir_list l = {.max_entries = 2};
    struct error err = {""};
    assert_int_equal(maildir_scan(dfd, MAILDIR_NEW, &l, &err), STORE_ERR_TEMP);
    assert_non_null(strstr(err.msg, "more than 2 messages"));
    maildir_list_free(&l);
    l.max_entries = 3;
    assert_int_equal(maildir_scan(dfd, MAILDIR_NEW, &l, &err), STORE_OK);
    assert_int_equal(l.count, 3);
    maildir_list_sort(&l);
    assert_non_null(maildir_list_find(&l, "2.x", 3));
    assert_null(maildir_list_find(&l, "2.", 2));
    maildir_list_free(&l);
    close(dfd);
}

static void test_empty_mailbox(void **state)
{
    struct fixture *f = *state;
    struct store_mailbox *mb = open_ok(f);
    assert_int_equal(store_count(mb), 0);
    assert_null(store_get(mb, 0));
    struct error err = {""};
    assert_int_equal(store_commit(mb, NULL, &err), STORE_OK);
    store_close(&mb);
    assert_false(exists(f, SIZECACHE_FILE)); /* nothing worth caching */
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_scan_order),
        T(test_duplicate_base),
        T(test_name_parse),
        T(test_size_fields),
        T(test_size_matches_dotstuff),
        T(test_cache_created_and_reused),
        T(test_cache_corrupt),
        T(test_cache_line_parse),
        T(test_idle_fds),
        T(test_inuse),
        T(test_snapshot_isolation),
        T(test_commit_only_marked),
        T(test_vanished),
        T(test_commit_error),
        T(test_replaced_by_symlink),
        T(test_renamed),
        T(test_uidl),
        T(test_open_errors),
        T(test_max_messages),
        T(test_empty_mailbox),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
