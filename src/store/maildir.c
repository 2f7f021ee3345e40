/* The Maildir mailbox: open + lock + snapshot, message fds, UPDATE deletions.
 * Everything is reached through directory fds with O_NOFOLLOW, so a symlink
 * planted inside the Maildir never leads us outside it. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/dotstuff.h"
#include "store/lock.h"
#include "store/mailbox.h"
#include "store/maildir_name.h"
#include "store/maildir_scan.h"
#include "store/sizecache.h"

#define READ_CHUNK 65536
/* A message that keeps being renamed under us is retried this often. */
#define RENAME_RETRIES 3
/* Marks a snapshot entry that vanished while we were measuring it. */
#define SIZE_GONE UINT64_MAX

struct store_mailbox {
    int root_fd;
    int sub_fd[2]; /* indexed by enum maildir_sub; -1 while idle (see subdirs_close) */
    int lock_fd;
    struct maildir_list list; /* the snapshot: list.ents[i] is message i */
    struct store_msg *msgs;
    uint32_t count;
};

static const char *const sub_names[2] = {"new", "cur"};

/* errno of a failed open of the mailbox itself: the admin's problem, or a passing one? */
static int open_status(int e)
{
    return (e == ENOENT || e == ENOTDIR || e == ELOOP || e == EACCES || e == EPERM) ? STORE_ERR_PERM
                                                                                    : STORE_ERR_TEMP;
}

/* Opens (creating it first if allowed) the subdirectory name of root_fd.
 * With fd_r NULL only makes sure it exists. */
static int open_subdir(int root_fd, const char *name, bool create, int *fd_r, struct error *err)
{
    if (create && mkdirat(root_fd, name, 0700) < 0 && errno != EEXIST) {
        int e = errno;
        error_set_errno(err, e, "mkdir %s", name);
        return open_status(e);
    }
    int fd = openat(root_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        error_set_errno(err, e, "open %s/", name);
        return open_status(e);
    }
    if (fd_r != NULL)
        *fd_r = fd;
    else
        close(fd);
    return STORE_OK;
}

/* mkdir -p of the directories above path (not path itself), mode 0700. The
 * caller is chrooted at the mail root, whose existence the config check
 * ensures, so nothing can be built outside it. */
static int make_parents(const char *path)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; (p = strchr(p, '/')) != NULL; p++) {
        *p = '\0';
        if (mkdir(buf, 0700) < 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return 0;
}

static int open_dirs(struct store_mailbox *mb, const char *path, bool create, struct error *err)
{
    int flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC;
    mb->root_fd = open(path, flags);
    /* A user with no mail yet has no Maildir (and a new domain no directory):
     * with [mail] create, build the path beneath the mail root. */
    if (mb->root_fd < 0 && errno == ENOENT && create) {
        if ((make_parents(path) < 0 || mkdir(path, 0700) < 0) && errno != EEXIST) {
            int e = errno;
            error_set_errno(err, e, "mkdir maildir");
            return open_status(e);
        }
        mb->root_fd = open(path, flags);
    }
    if (mb->root_fd < 0) {
        int e = errno;
        error_set_errno(err, e, "open maildir");
        return open_status(e);
    }
    int rc = open_subdir(mb->root_fd, "new", create, &mb->sub_fd[MAILDIR_NEW], err);
    if (rc == STORE_OK)
        rc = open_subdir(mb->root_fd, "cur", create, &mb->sub_fd[MAILDIR_CUR], err);
    if (rc == STORE_OK)
        rc = open_subdir(mb->root_fd, "tmp", create, NULL, err);
    return rc;
}

/* Opens a message file read-only; never a symlink, never blocks on a FIFO.
 * Returns the fd, or -1 with errno (ENOENT also for a non-regular file). */
static int open_msg_file(int sub_fd, const char *name)
{
    int fd = openat(sub_fd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ELOOP)
            errno = ENOENT; /* a symlink where the message was: not our message */
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        errno = ENOENT; /* a FIFO or device swapped in: not our message either */
        return -1;
    }
    /* The caller gets a plain blocking fd; O_NONBLOCK was only for the open.
     * F_SETFL changes only the status flags (O_NONBLOCK, O_APPEND, O_ASYNC,
     * O_DIRECT, O_NOATIME), of which we set none but O_NONBLOCK: no F_GETFL. */
    if (fcntl(fd, F_SETFL, 0) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

/* Reads a message once to count its wire size. Returns 0, 1 if it is gone,
 * or STORE_ERR_TEMP. */
static int measure(int sub_fd, const char *name, unsigned char *buf, uint64_t *wire_r, struct error *err)
{
    int fd = open_msg_file(sub_fd, name);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        error_set_errno(err, errno, "open %s", name);
        return STORE_ERR_TEMP;
    }
    struct dotstuff st;
    dotstuff_init(&st, -1);
    for (;;) {
        ssize_t r = read(fd, buf, READ_CHUNK);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            error_set_errno(err, errno, "read %s", name);
            close(fd);
            return STORE_ERR_TEMP;
        }
        if (r == 0)
            break;
        dotstuff_count(&st, buf, (size_t)r);
    }
    close(fd);
    *wire_r = st.wire_bytes;
    return 0;
}

/* Fills wire[i] for every snapshot entry: from ",W=", else the size cache
 * (validated by the physical size), else by reading the file. SIZE_GONE marks
 * files that vanished meanwhile: they are left out of this session (a rename
 * by another agent just makes them appear in the next one). */
static int compute_sizes(struct store_mailbox *mb, uint64_t *wire, struct error *err)
{
    struct maildir_list *l = &mb->list;
    struct sizecache_item *items = calloc(l->count != 0 ? l->count : 1, sizeof(*items));
    size_t *item_ent = calloc(l->count != 0 ? l->count : 1, sizeof(*item_ent));
    unsigned char *buf = malloc(READ_CHUNK);
    int rc = STORE_OK;
    size_t n = 0;
    if (items == NULL || item_ent == NULL || buf == NULL) {
        error_set(err, "out of memory sizing %zu messages", l->count);
        rc = STORE_ERR_TEMP;
        goto out;
    }
    for (size_t i = 0; i < l->count; i++) {
        struct maildir_entry *e = &l->ents[i];
        const char *name = maildir_entry_name(l, e);
        if (e->parsed.has_wire) {
            wire[i] = e->parsed.wire_size;
            continue;
        }
        if (!e->parsed.has_size && !e->has_stat) {
            struct stat st;
            if (fstatat(mb->sub_fd[e->sub], name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT) {
                    wire[i] = SIZE_GONE;
                    continue;
                }
                error_set_errno(err, errno, "stat %s/%s", sub_names[e->sub], name);
                rc = STORE_ERR_TEMP;
                goto out;
            }
            if (!S_ISREG(st.st_mode)) {
                wire[i] = SIZE_GONE;
                continue;
            }
            e->physical = (uint64_t)st.st_size;
            e->has_stat = true;
        }
        items[n] = (struct sizecache_item){.base = name, .base_len = e->base_len, .physical = e->physical};
        item_ent[n++] = i;
    }

    bool dirty = false;
    sizecache_load(mb->root_fd, items, n, &dirty);
    for (size_t k = 0; k < n; k++) {
        size_t i = item_ent[k];
        if (!items[k].known) {
            const struct maildir_entry *e = &l->ents[i];
            int r = measure(mb->sub_fd[e->sub], maildir_entry_name(l, e), buf, &items[k].wire, err);
            if (r < 0) {
                rc = r;
                goto out;
            }
            if (r == 1) {
                wire[i] = SIZE_GONE;
                dirty = true;
                continue;
            }
            items[k].known = true;
        }
        wire[i] = items[k].wire;
    }
    /* The cache only saves work: failing to write it (read-only or full
     * file system) must not cost the user their mail, so it is not an error. */
    if (dirty)
        (void)sizecache_store(mb->root_fd, items, n, NULL);
out:
    free(items);
    free(item_ent);
    free(buf);
    return rc;
}

/* Drops vanished entries and builds the array store_get() returns. */
static int build_snapshot(struct store_mailbox *mb, const uint64_t *wire, struct error *err)
{
    struct maildir_list *l = &mb->list;
    mb->msgs = calloc(l->count != 0 ? l->count : 1, sizeof(*mb->msgs));
    if (mb->msgs == NULL) {
        error_set(err, "out of memory for %zu messages", l->count);
        return STORE_ERR_TEMP;
    }
    size_t out = 0;
    for (size_t i = 0; i < l->count; i++) {
        if (wire[i] == SIZE_GONE)
            continue;
        const struct maildir_entry *e = &l->ents[i];
        struct store_msg *m = &mb->msgs[out];
        if (maildir_name_uidl(maildir_entry_name(l, e), e->base_len, m->uidl) < 0) {
            error_set(err, "cannot compute a UIDL (SHA-256 unavailable)");
            return STORE_ERR_TEMP;
        }
        m->size = wire[i];
        l->ents[out++] = *e;
    }
    l->count = out;
    mb->count = (uint32_t)out; /* <= MAILDIR_MAX_MSGS */
    return STORE_OK;
}

/* An idle logged-in session should cost as few fds as possible (10,000 of
 * them per front under a 20,000-fd limit): once the snapshot is taken, new/
 * and cur/ are closed and reopened beneath the root fd when a message is read
 * or deleted. The root fd (same directory, whatever renames happen above it)
 * and the lock stay. */
static void subdirs_close(struct store_mailbox *mb)
{
    for (int s = 0; s < 2; s++)
        if (mb->sub_fd[s] >= 0) {
            close(mb->sub_fd[s]);
            mb->sub_fd[s] = -1;
        }
}

static int subdirs_open(struct store_mailbox *mb, struct error *err)
{
    for (int s = 0; s < 2; s++) {
        if (mb->sub_fd[s] >= 0)
            continue;
        mb->sub_fd[s] = openat(mb->root_fd, sub_names[s], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (mb->sub_fd[s] < 0) {
            error_set_errno(err, errno, "open %s/", sub_names[s]);
            return STORE_ERR_TEMP;
        }
    }
    return STORE_OK;
}

int store_open(const char *path, bool create, struct store_mailbox **mb_r, struct error *err)
{
    *mb_r = NULL;
    struct store_mailbox *mb = calloc(1, sizeof(*mb));
    if (mb == NULL) {
        error_set(err, "out of memory");
        return STORE_ERR_TEMP;
    }
    mb->root_fd = mb->sub_fd[0] = mb->sub_fd[1] = mb->lock_fd = -1;
    uint64_t *wire = NULL;

    int rc = open_dirs(mb, path, create, err);
    if (rc != STORE_OK)
        goto fail;
    /* Lock before listing, so two sessions never hold overlapping snapshots. */
    int lfd = store_lock_acquire(mb->root_fd, err);
    if (lfd < 0) {
        rc = lfd;
        goto fail;
    }
    mb->lock_fd = lfd;
    rc = maildir_scan(mb->sub_fd[MAILDIR_NEW], MAILDIR_NEW, &mb->list, err);
    if (rc == STORE_OK)
        rc = maildir_scan(mb->sub_fd[MAILDIR_CUR], MAILDIR_CUR, &mb->list, err);
    if (rc != STORE_OK)
        goto fail;
    maildir_list_sort(&mb->list);

    wire = calloc(mb->list.count != 0 ? mb->list.count : 1, sizeof(*wire));
    if (wire == NULL) {
        error_set(err, "out of memory for %zu messages", mb->list.count);
        rc = STORE_ERR_TEMP;
        goto fail;
    }
    rc = compute_sizes(mb, wire, err);
    if (rc == STORE_OK)
        rc = build_snapshot(mb, wire, err);
    if (rc != STORE_OK)
        goto fail;
    free(wire);
    subdirs_close(mb);
    *mb_r = mb;
    return STORE_OK;
fail:
    free(wire);
    store_close(&mb);
    return rc;
}

uint32_t store_count(const struct store_mailbox *mb)
{
    return mb->count;
}

const struct store_msg *store_get(const struct store_mailbox *mb, uint32_t i)
{
    return i < mb->count ? &mb->msgs[i] : NULL;
}

/* Finds message i again by its base name after its remembered name vanished,
 * and remembers the new location. Returns 1 if found, 0 if gone, or
 * STORE_ERR_TEMP. */
static int relocate(struct store_mailbox *mb, uint32_t i, struct error *err)
{
    struct maildir_entry *e = &mb->list.ents[i];
    char base[MAILDIR_NAME_MAX + 1], name[MAILDIR_NAME_MAX + 1];
    /* Copied: adding the new name may move the pool. */
    memcpy(base, maildir_entry_name(&mb->list, e), e->base_len);
    enum maildir_sub sub;
    int r = maildir_find_base(mb->sub_fd, base, e->base_len, &sub, name, err);
    if (r <= 0)
        return r;
    size_t len = strlen(name);
    long off = maildir_list_add_name(&mb->list, name, len);
    if (off < 0) {
        error_set(err, "out of memory");
        return STORE_ERR_TEMP;
    }
    e->name_off = (uint32_t)off;
    e->name_len = (uint16_t)len;
    e->sub = (uint8_t)sub;
    return 1;
}

int store_msg_open(struct store_mailbox *mb, uint32_t i, struct error *err)
{
    if (i >= mb->count) {
        error_set(err, "no message %u", i + 1u);
        return STORE_ERR_GONE;
    }
    if (subdirs_open(mb, err) != STORE_OK)
        return STORE_ERR_TEMP;
    for (int attempt = 0; attempt <= RENAME_RETRIES; attempt++) {
        const struct maildir_entry *e = &mb->list.ents[i];
        const char *name = maildir_entry_name(&mb->list, e);
        int fd = open_msg_file(mb->sub_fd[e->sub], name);
        if (fd >= 0)
            return fd;
        if (errno != ENOENT) {
            error_set_errno(err, errno, "open %s/%s", sub_names[e->sub], name);
            return STORE_ERR_TEMP;
        }
        int r = relocate(mb, i, err);
        if (r < 0)
            return r;
        if (r == 0) {
            error_set(err, "message %u is gone", i + 1u);
            return STORE_ERR_GONE;
        }
    }
    error_set(err, "message %u keeps being renamed", i + 1u);
    return STORE_ERR_TEMP;
}

/* State of one commit: the current directory contents, listed once on the
 * first message that moved, so many renamed messages cost one scan. */
struct commit_ctx {
    struct store_mailbox *mb;
    struct maildir_list now;
    bool scanned;
};

static int rescan(struct commit_ctx *c, struct error *err)
{
    if (c->scanned)
        return STORE_OK;
    int rc = maildir_scan(c->mb->sub_fd[MAILDIR_NEW], MAILDIR_NEW, &c->now, err);
    if (rc == STORE_OK)
        rc = maildir_scan(c->mb->sub_fd[MAILDIR_CUR], MAILDIR_CUR, &c->now, err);
    if (rc != STORE_OK) {
        maildir_list_free(&c->now);
        return rc;
    }
    maildir_list_sort(&c->now);
    c->scanned = true;
    return STORE_OK;
}

/* Unlinks message i, following renames by its base name. Only a file with
 * the very base name of the snapshot entry is ever unlinked, so mail
 * delivered after the snapshot cannot be touched. */
static int delete_one(struct commit_ctx *c, uint32_t i, struct error *err)
{
    struct store_mailbox *mb = c->mb;
    const struct maildir_entry *e = &mb->list.ents[i];
    const char *name = maildir_entry_name(&mb->list, e);
    if (unlinkat(mb->sub_fd[e->sub], name, 0) == 0)
        return STORE_OK;
    if (errno != ENOENT) {
        error_set_errno(err, errno, "unlink %s/%s", sub_names[e->sub], name);
        return STORE_ERR_TEMP;
    }
    int rc = rescan(c, err);
    if (rc != STORE_OK)
        return rc;
    const struct maildir_entry *now = maildir_list_find(&c->now, name, e->base_len);
    if (now == NULL)
        return STORE_OK; /* already deleted by someone else */
    const char *now_name = maildir_entry_name(&c->now, now);
    if (unlinkat(mb->sub_fd[now->sub], now_name, 0) == 0)
        return STORE_OK;
    if (errno != ENOENT) {
        error_set_errno(err, errno, "unlink %s/%s", sub_names[now->sub], now_name);
        return STORE_ERR_TEMP;
    }
    /* Moved again since the rescan: chase it by name a few times. */
    for (int attempt = 0; attempt < RENAME_RETRIES; attempt++) {
        rc = relocate(mb, i, err);
        if (rc <= 0)
            return rc; /* 0: gone, which is what we wanted */
        e = &mb->list.ents[i];
        name = maildir_entry_name(&mb->list, e);
        if (unlinkat(mb->sub_fd[e->sub], name, 0) == 0)
            return STORE_OK;
        if (errno != ENOENT) {
            error_set_errno(err, errno, "unlink %s/%s", sub_names[e->sub], name);
            return STORE_ERR_TEMP;
        }
    }
    error_set(err, "message %u keeps being renamed", i + 1u);
    return STORE_ERR_TEMP;
}

int store_commit(struct store_mailbox *mb, const bool *deleted, struct error *err)
{
    struct commit_ctx c = {.mb = mb};
    int rc = subdirs_open(mb, err);
    if (rc != STORE_OK)
        return rc;
    struct error later;
    /* Best effort: one failed unlink does not keep the user's other
     * deletions from happening. The first error's detail is reported. */
    for (uint32_t i = 0; deleted != NULL && i < mb->count; i++) {
        if (!deleted[i])
            continue;
        int r = delete_one(&c, i, rc == STORE_OK ? err : &later);
        if (r < 0 && rc == STORE_OK)
            rc = STORE_ERR_TEMP;
    }
    if (c.scanned)
        maildir_list_free(&c.now);
    /* Make the unlinks durable before the client hears +OK. */
    for (int s = 0; s < 2; s++) {
        if (fsync(mb->sub_fd[s]) < 0 && errno != EINVAL && rc == STORE_OK) {
            error_set_errno(err, errno, "fsync %s/", sub_names[s]);
            rc = STORE_ERR_TEMP;
        }
    }
    return rc;
}

void store_close(struct store_mailbox **mbp)
{
    struct store_mailbox *mb = *mbp;
    if (mb == NULL)
        return;
    store_lock_release(&mb->lock_fd);
    for (int s = 0; s < 2; s++) {
        if (mb->sub_fd[s] >= 0)
            close(mb->sub_fd[s]);
    }
    if (mb->root_fd >= 0)
        close(mb->root_fd);
    maildir_list_free(&mb->list);
    free(mb->msgs);
    free(mb);
    *mbp = NULL;
}
