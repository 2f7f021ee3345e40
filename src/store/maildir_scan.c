#include "store/maildir_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/mailbox.h"

/* One message file found by walk_dir(). */
struct found {
    const char *name;
    size_t len;
    struct maildir_name parsed;
    bool has_stat;
    uint64_t physical;
};

typedef int (*walk_fn)(void *ctx, const struct found *f, struct error *err);

/* One directory entry: skips what is not a message file, else calls fn. */
static int walk_one(int sub_fd, const char *name, unsigned char type, walk_fn fn, void *ctx, struct error *err)
{
    struct found f = {.name = name, .len = strlen(name)};
    /* Dotfiles (and . / ..) are not mail; over-long or base-less names
     * cannot be Maildir messages: skip rather than guess. */
    if (maildir_name_parse(f.name, f.len, &f.parsed) < 0)
        return 0;
    if (type == DT_UNKNOWN) {
        struct stat st;
        if (fstatat(sub_fd, f.name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT)
                return 0; /* vanished while we listed */
            error_set_errno(err, errno, "stat %s", f.name);
            return STORE_ERR_TEMP;
        }
        if (!S_ISREG(st.st_mode))
            return 0;
        f.has_stat = true;
        f.physical = (uint64_t)st.st_size;
    } else if (type != DT_REG) {
        return 0; /* symlinks, directories, FIFOs, sockets, devices */
    }
    return fn(ctx, &f, err);
}

/* Calls fn for every message file in sub_fd. fn returns 0 to go on, 1 to
 * stop, or a negative store status. Returns 0, 1 or a negative store status.
 *
 * Lists with getdents64 on sub_fd itself, rewound first, rather than
 * fdopendir on a second descriptor: glibc's fdopendir costs an fstat and two
 * fcntl per directory, and a polling session lists two directories on every
 * login (bench/RESULTS.md, run 10). sub_fd's offset is used by nothing else:
 * openat and fstatat ignore it. The records come from the kernel. */
static int walk_dir(int sub_fd, walk_fn fn, void *ctx, struct error *err)
{
    if (lseek(sub_fd, 0, SEEK_SET) < 0) {
        error_set_errno(err, errno, "rewind maildir subdirectory");
        return STORE_ERR_TEMP;
    }
    _Alignas(struct dirent64) char buf[16384];
    for (;;) {
        ssize_t n = getdents64(sub_fd, buf, sizeof(buf));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error_set_errno(err, errno, "list maildir subdirectory");
            return STORE_ERR_TEMP;
        }
        if (n == 0)
            return 0;
        for (size_t off = 0; off < (size_t)n;) {
            const struct dirent64 *de = (const struct dirent64 *)(buf + off);
            off += de->d_reclen;
            int rc = walk_one(sub_fd, de->d_name, de->d_type, fn, ctx, err);
            if (rc != 0)
                return rc;
        }
    }
}

long maildir_list_add_name(struct maildir_list *l, const char *name, size_t len)
{
    size_t need = len + 1;
    if (l->pool_len > UINT32_MAX - need)
        return -1;
    if (l->pool_cap - l->pool_len < need) {
        size_t cap = l->pool_cap != 0 ? l->pool_cap : 4096;
        while (cap - l->pool_len < need)
            cap *= 2;
        char *p = realloc(l->pool, cap);
        if (p == NULL)
            return -1;
        l->pool = p;
        l->pool_cap = cap;
    }
    size_t off = l->pool_len;
    memcpy(l->pool + off, name, len);
    l->pool[off + len] = '\0';
    l->pool_len += need;
    return (long)off;
}

struct scan_ctx {
    struct maildir_list *l;
    enum maildir_sub sub;
};

static int scan_one(void *vctx, const struct found *f, struct error *err)
{
    struct scan_ctx *c = vctx;
    struct maildir_list *l = c->l;
    size_t max = l->max_entries != 0 ? l->max_entries : MAILDIR_MAX_MSGS;
    if (l->count >= max) {
        error_set(err, "mailbox holds more than %zu messages", max);
        return STORE_ERR_TEMP;
    }
    if (l->count == l->cap) {
        size_t cap = l->cap != 0 ? l->cap * 2 : 64;
        if (cap > max)
            cap = max;
        struct maildir_entry *e = realloc(l->ents, cap * sizeof(*e));
        if (e == NULL) {
            error_set(err, "out of memory listing %zu messages", l->count);
            return STORE_ERR_TEMP;
        }
        l->ents = e;
        l->cap = cap;
    }
    long off = maildir_list_add_name(l, f->name, f->len);
    if (off < 0) {
        error_set(err, "out of memory listing %zu messages", l->count);
        return STORE_ERR_TEMP;
    }
    struct maildir_entry *e = &l->ents[l->count++];
    memset(e, 0, sizeof(*e));
    e->name_off = (uint32_t)off;
    e->name_len = (uint16_t)f->len; /* <= MAILDIR_NAME_MAX, checked by the parser */
    e->base_len = (uint16_t)f->parsed.base_len;
    e->sub = (uint8_t)c->sub;
    e->parsed = f->parsed;
    e->has_stat = f->has_stat;
    e->physical = f->parsed.has_size ? f->parsed.size : f->physical;
    return 0;
}

int maildir_scan(int sub_fd, enum maildir_sub sub, struct maildir_list *l, struct error *err)
{
    struct scan_ctx c = {l, sub};
    int rc = walk_dir(sub_fd, scan_one, &c, err);
    return rc < 0 ? rc : STORE_OK;
}

static int cmp_base(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return (alen > blen) - (alen < blen);
}

static int cmp_entries(const void *va, const void *vb, void *vpool)
{
    const char *pool = vpool;
    const struct maildir_entry *a = va, *b = vb;
    int r = cmp_base(pool + a->name_off, a->base_len, pool + b->name_off, b->base_len);
    if (r != 0)
        return r;
    /* Same message twice: cur/ first, so dedup keeps it. */
    return (int)b->sub - (int)a->sub;
}

void maildir_list_sort(struct maildir_list *l)
{
    if (l->count < 2)
        return;
    qsort_r(l->ents, l->count, sizeof(*l->ents), cmp_entries, l->pool);
    size_t out = 1;
    for (size_t i = 1; i < l->count; i++) {
        const struct maildir_entry *prev = &l->ents[out - 1], *cur = &l->ents[i];
        if (cmp_base(l->pool + prev->name_off, prev->base_len, l->pool + cur->name_off, cur->base_len) == 0)
            continue;
        l->ents[out++] = *cur;
    }
    l->count = out;
}

const struct maildir_entry *maildir_list_find(const struct maildir_list *l, const char *base, size_t base_len)
{
    size_t lo = 0, hi = l->count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const struct maildir_entry *e = &l->ents[mid];
        int r = cmp_base(l->pool + e->name_off, e->base_len, base, base_len);
        if (r == 0)
            return e;
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

void maildir_list_free(struct maildir_list *l)
{
    free(l->ents);
    free(l->pool);
    memset(l, 0, sizeof(*l));
}

struct find_ctx {
    const char *base;
    size_t base_len;
    char *name_out;
};

static int find_one(void *vctx, const struct found *f, struct error *err)
{
    struct find_ctx *c = vctx;
    if (f->parsed.base_len != c->base_len || memcmp(f->name, c->base, c->base_len) != 0)
        return 0;
    memcpy(c->name_out, f->name, f->len + 1);
    return 1;
}

int maildir_find_base(const int sub_fds[2], const char *base, size_t len, enum maildir_sub *sub_r,
                      char *name_out, struct error *err)
{
    /* cur/ first: a message only ever moves from new/ to cur/. */
    static const enum maildir_sub order[2] = {MAILDIR_CUR, MAILDIR_NEW};
    struct find_ctx c = {base, len, name_out};
    for (size_t i = 0; i < 2; i++) {
        int rc = walk_dir(sub_fds[order[i]], find_one, &c, err);
        if (rc < 0)
            return rc;
        if (rc == 1) {
            *sub_r = order[i];
            return 1;
        }
    }
    return 0;
}
