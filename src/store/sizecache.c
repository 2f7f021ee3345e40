#include "store/sizecache.h"

#include "common/strnum.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h> /* renameat */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define IO_CHUNK 65536

bool sizecache_name_ok(const char *base, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)base[i];
        if (c < 0x21 || c > 0x7e)
            return false;
    }
    return true;
}

/* Canonical decimal: what we write is what we accept, so "007" or "+7" in the
 * file means someone else wrote it. */
static int parse_canon_u64(const char *s, size_t len, uint64_t *out)
{
    if (len > 1 && s[0] == '0')
        return -1;
    return strnum_u64(s, len, out);
}

int sizecache_parse_line(const char *line, size_t len, struct sizecache_line *out)
{
    const char *sp1 = memchr(line, ' ', len);
    if (sp1 == NULL)
        return -1;
    size_t base_len = (size_t)(sp1 - line);
    const char *f2 = sp1 + 1;
    size_t rest = len - base_len - 1;
    const char *sp2 = memchr(f2, ' ', rest);
    if (sp2 == NULL)
        return -1;
    size_t f2_len = (size_t)(sp2 - f2);
    const char *f3 = sp2 + 1;
    size_t f3_len = rest - f2_len - 1;
    if (!sizecache_name_ok(line, base_len))
        return -1;
    uint64_t phys, wire;
    if (parse_canon_u64(f2, f2_len, &phys) < 0 || parse_canon_u64(f3, f3_len, &wire) < 0)
        return -1;
    /* Converting bare LFs adds at most one octet per octet. */
    if (wire < phys || wire - phys > phys)
        return -1;
    out->base = line;
    out->base_len = base_len;
    out->physical = phys;
    out->wire = wire;
    return 0;
}

static size_t format_u64(uint64_t v, char *buf)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t sizecache_format_line(const struct sizecache_line *l, char *buf)
{
    size_t o = 0;
    memcpy(buf, l->base, l->base_len);
    o += l->base_len;
    buf[o++] = ' ';
    o += format_u64(l->physical, buf + o);
    buf[o++] = ' ';
    o += format_u64(l->wire, buf + o);
    buf[o++] = '\n';
    return o;
}

static int cmp_base(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, alen < blen ? alen : blen);
    if (r != 0)
        return r;
    return (alen > blen) - (alen < blen);
}

/* State of one merge walk of the file against the sorted items. */
struct load_ctx {
    struct sizecache_item *items;
    size_t n;
    size_t next;  /* first item not yet passed */
    size_t lines; /* entry lines seen */
    bool header_ok;
    bool dirty;
    char prev[256]; /* previous base, to require strictly ascending order */
    size_t prev_len;
};

/* Skips items that can never be in the cache. */
static void skip_uncacheable(struct load_ctx *c)
{
    while (c->next < c->n && !sizecache_name_ok(c->items[c->next].base, c->items[c->next].base_len))
        c->next++;
}

/* Handles one line (without '\n'). Returns 0, or -1 if the file is corrupt. */
static int load_line(struct load_ctx *c, const char *line, size_t len)
{
    if (!c->header_ok) {
        if (len != strlen(SIZECACHE_HEADER) || memcmp(line, SIZECACHE_HEADER, len) != 0)
            return -1;
        c->header_ok = true;
        return 0;
    }
    struct sizecache_line l;
    if (++c->lines > SIZECACHE_MAX_ENTRIES || sizecache_parse_line(line, len, &l) < 0)
        return -1;
    if (c->lines > 1 && cmp_base(c->prev, c->prev_len, l.base, l.base_len) >= 0)
        return -1;
    memcpy(c->prev, l.base, l.base_len);
    c->prev_len = l.base_len;

    skip_uncacheable(c);
    while (c->next < c->n) {
        struct sizecache_item *it = &c->items[c->next];
        int r = cmp_base(it->base, it->base_len, l.base, l.base_len);
        if (r > 0)
            break;
        c->next++;
        if (r == 0) {
            if (it->physical == l.physical) {
                it->known = true;
                it->wire = l.wire;
            } else {
                c->dirty = true; /* message replaced or the line is stale */
            }
            skip_uncacheable(c);
            return 0;
        }
        c->dirty = true; /* an item the file does not know */
        skip_uncacheable(c);
    }
    c->dirty = true; /* a line for a message that is gone */
    return 0;
}

/* Reads the whole file line by line through a bounded buffer. Returns 0, or
 * -1 if it is unreadable or corrupt. */
static int load_file(int fd, struct load_ctx *c)
{
    char *buf = malloc(IO_CHUNK);
    if (buf == NULL)
        return -1;
    size_t start = 0, fill = 0;
    int rc = -1;
    for (;;) {
        char *nl;
        while ((nl = memchr(buf + start, '\n', fill - start)) != NULL) {
            if (load_line(c, buf + start, (size_t)(nl - (buf + start))) < 0)
                goto out;
            start = (size_t)(nl - buf) + 1;
        }
        if (fill - start > SIZECACHE_LINE_MAX)
            goto out;
        memmove(buf, buf + start, fill - start);
        fill -= start;
        start = 0;
        ssize_t r = read(fd, buf + fill, IO_CHUNK - fill);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            goto out;
        if (r == 0)
            break;
        fill += (size_t)r;
    }
    /* A partial last line means an interrupted writer; a missing header an empty file. */
    if (fill == 0 && c->header_ok)
        rc = 0;
out:
    free(buf);
    return rc;
}

static void forget_all(struct sizecache_item *items, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        items[i].known = false;
        items[i].wire = 0;
    }
}

void sizecache_load(int dirfd, struct sizecache_item *items, size_t n, bool *dirty_r)
{
    struct load_ctx c = {.items = items, .n = n};
    /* O_NONBLOCK: a FIFO planted under our name must not hang the session. */
    int fd = openat(dirfd, SIZECACHE_FILE, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        c.next = 0;
        skip_uncacheable(&c);
        *dirty_r = c.next < n; /* nothing to rewrite if nothing is cacheable */
        return;
    }
    struct stat st;
    bool ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
              (uint64_t)st.st_size <= (uint64_t)SIZECACHE_MAX_ENTRIES * (SIZECACHE_LINE_MAX + 1) + 64 &&
              load_file(fd, &c) == 0;
    close(fd);
    if (!ok) {
        forget_all(items, n);
        *dirty_r = true;
        return;
    }
    skip_uncacheable(&c);
    if (c.next < n)
        c.dirty = true; /* items sorting after the last line */
    *dirty_r = c.dirty;
}

/* Buffered writer for the tmp file. */
struct wbuf {
    int fd;
    size_t len;
    int err; /* first errno */
    char data[IO_CHUNK];
};

static void wbuf_flush(struct wbuf *w)
{
    size_t off = 0;
    while (w->err == 0 && off < w->len) {
        ssize_t r = write(w->fd, w->data + off, w->len - off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            w->err = r < 0 ? errno : EIO;
        else
            off += (size_t)r;
    }
    w->len = 0;
}

static void wbuf_put(struct wbuf *w, const char *s, size_t n)
{
    if (sizeof(w->data) - w->len < n)
        wbuf_flush(w);
    memcpy(w->data + w->len, s, n);
    w->len += n;
}

int sizecache_store(int dirfd, const struct sizecache_item *items, size_t n, struct error *err)
{
    /* A tmp file left by a crash is ours (we hold the mailbox lock): remove it
     * so O_EXCL guarantees we write into a file we created. */
    if (unlinkat(dirfd, SIZECACHE_TMP_FILE, 0) < 0 && errno != ENOENT)
        return error_set_errno(err, errno, "unlink %s", SIZECACHE_TMP_FILE);
    struct wbuf *w = malloc(sizeof(*w));
    if (w == NULL)
        return error_set(err, "out of memory writing %s", SIZECACHE_FILE);
    w->len = 0;
    w->err = 0;
    w->fd = openat(dirfd, SIZECACHE_TMP_FILE, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (w->fd < 0) {
        int e = errno;
        free(w);
        return error_set_errno(err, e, "create %s", SIZECACHE_TMP_FILE);
    }
    wbuf_put(w, SIZECACHE_HEADER "\n", strlen(SIZECACHE_HEADER) + 1);
    char line[SIZECACHE_LINE_MAX + 2];
    for (size_t i = 0; i < n; i++) {
        const struct sizecache_item *it = &items[i];
        if (!it->known || !sizecache_name_ok(it->base, it->base_len))
            continue;
        struct sizecache_line l = {it->base, it->base_len, it->physical, it->wire};
        wbuf_put(w, line, sizecache_format_line(&l, line));
    }
    wbuf_flush(w);
    int e = w->err;
    const char *what = "write";
    if (e == 0 && fsync(w->fd) < 0) {
        e = errno;
        what = "fsync";
    }
    if (close(w->fd) < 0 && e == 0) {
        e = errno;
        what = "close";
    }
    free(w);
    if (e == 0 && renameat(dirfd, SIZECACHE_TMP_FILE, dirfd, SIZECACHE_FILE) < 0) {
        e = errno;
        what = "rename";
    }
    if (e != 0) {
        unlinkat(dirfd, SIZECACHE_TMP_FILE, 0);
        return error_set_errno(err, e, "%s %s", what, SIZECACHE_TMP_FILE);
    }
    /* The rename is durable only once the directory is; EINVAL: no dir fsync here. */
    if (fsync(dirfd) < 0 && errno != EINVAL)
        return error_set_errno(err, errno, "fsync maildir after writing %s", SIZECACHE_FILE);
    return 0;
}
