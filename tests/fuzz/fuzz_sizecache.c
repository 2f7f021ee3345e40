/* libFuzzer target for the whole size-cache file (popsd.sizes), as another
 * program with the mail owner's rights (or a torn write) may leave it. The
 * line parser alone is covered by fuzz_maildir_name; this drives the file
 * reader, its merge against the snapshot and the writer.
 *
 * The input is the file. The snapshot items are derived from it (the bases and
 * physical sizes of its parseable lines, some with a changed physical size,
 * plus names the file cannot know and names that cannot be cached), so that
 * hits, misses and stale lines all occur. Checks, aborting on any violation:
 *   - a known item has a cacheable name and physical <= wire <= 2 * physical;
 *   - a file that sets no item known and is not dirty only happens when
 *     nothing is cacheable;
 *   - not dirty means the file is byte for byte what sizecache_store() writes
 *     for these items;
 *   - what sizecache_store() writes loads back: every cacheable item known,
 *     with the same wire size, and not dirty. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "store/sizecache.h"

#define MAX_INPUT 65536
#define MAX_ITEMS 64

static int dir_in = -1, dir_out = -1;
static char path_in[256], path_out[256];

static int make_dir(const char *tmpl_base, char *path, size_t size)
{
    snprintf(path, size, "%s/popsd-fuzz-sizecache-XXXXXX", tmpl_base);
    if (mkdtemp(path) == NULL)
        return -1;
    return open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

static void remove_dir(int dirfd, const char *path)
{
    unlinkat(dirfd, SIZECACHE_FILE, 0);
    unlinkat(dirfd, SIZECACHE_TMP_FILE, 0);
    close(dirfd);
    rmdir(path);
}

static void cleanup(void)
{
    remove_dir(dir_in, path_in);
    remove_dir(dir_out, path_out);
}

static void setup(void)
{
    if (dir_in >= 0)
        return;
    /* tmpfs if there is one: sizecache_store() fsyncs, which is free there. */
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    dir_in = make_dir(base, path_in, sizeof(path_in));
    dir_out = make_dir(base, path_out, sizeof(path_out));
    CHECK(dir_in >= 0 && dir_out >= 0);
    atexit(cleanup);
}

static void write_file(int dirfd, const uint8_t *data, size_t size)
{
    int fd = openat(dirfd, SIZECACHE_FILE, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, data, size) == (ssize_t)size);
    CHECK(close(fd) == 0);
}

static char *read_file(int dirfd, size_t *len)
{
    int fd = openat(dirfd, SIZECACHE_FILE, O_RDONLY | O_CLOEXEC);
    CHECK(fd >= 0);
    struct stat st;
    CHECK(fstat(fd, &st) == 0);
    char *buf = malloc((size_t)st.st_size + 1);
    CHECK(buf != NULL);
    CHECK(read(fd, buf, (size_t)st.st_size) == st.st_size);
    close(fd);
    *len = (size_t)st.st_size;
    return buf;
}

struct name {
    char s[256];
    size_t len;
    uint64_t physical;
};

static int cmp_name(const void *va, const void *vb)
{
    const struct name *a = va, *b = vb;
    int r = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    if (r != 0)
        return r;
    return (a->len > b->len) - (a->len < b->len);
}

static size_t add_name(struct name *names, size_t n, const char *s, size_t len, uint64_t physical)
{
    if (n >= MAX_ITEMS || len == 0 || len >= sizeof(names[0].s))
        return n;
    memcpy(names[n].s, s, len);
    names[n].len = len;
    names[n].physical = physical;
    return n + 1;
}

/* Snapshot items: sorted strictly ascending, as maildir_list_sort() gives them. */
static size_t derive_items(const uint8_t *data, size_t size, struct name *names)
{
    size_t n = 0;
    const char *p = (const char *)data, *end = p + size;
    unsigned k = 0;
    while (p < end && n < MAX_ITEMS - 4) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        struct sizecache_line l;
        if (sizecache_parse_line(p, len, &l) == 0) {
            /* Every third line goes stale: the message was replaced. */
            uint64_t phys = (k++ % 3 == 2) ? l.physical + 1 : l.physical;
            n = add_name(names, n, l.base, l.base_len, phys);
        }
        p += len + 1;
    }
    n = add_name(names, n, "0000000000.unknown.host", 23, 42);
    n = add_name(names, n, "zzzz.unknown.host", 17, 7);
    n = add_name(names, n, "bad name", 8, 10); /* a space: never cached */
    n = add_name(names, n,
                 "\x7f"
                 "del",
                 4, 3);
    qsort(names, n, sizeof(*names), cmp_name);
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (out == 0 || cmp_name(&names[out - 1], &names[i]) != 0)
            names[out++] = names[i];
    return out;
}

static size_t make_items(const struct name *names, size_t n, struct sizecache_item *items)
{
    size_t cacheable = 0;
    for (size_t i = 0; i < n; i++) {
        items[i] = (struct sizecache_item){
            .base = names[i].s, .base_len = names[i].len, .physical = names[i].physical};
        cacheable += sizecache_name_ok(names[i].s, names[i].len);
    }
    return cacheable;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    setup();
    static struct name names[MAX_ITEMS];
    struct sizecache_item items[MAX_ITEMS], again[MAX_ITEMS];
    size_t n = derive_items(data, size, names);
    size_t cacheable = make_items(names, n, items);

    write_file(dir_in, data, size);
    bool dirty = false;
    sizecache_load(dir_in, items, n, &dirty);
    size_t known = 0;
    for (size_t i = 0; i < n; i++) {
        if (!items[i].known)
            continue;
        known++;
        CHECK(sizecache_name_ok(items[i].base, items[i].base_len));
        CHECK(items[i].wire >= items[i].physical && items[i].wire - items[i].physical <= items[i].physical);
    }
    if (!dirty) {
        /* Everything cacheable was found, and the file is exactly ours. */
        CHECK(known == cacheable);
        CHECK(sizecache_store(dir_out, items, n, NULL) == 0);
        size_t len;
        char *ours = read_file(dir_out, &len);
        CHECK(len == size && memcmp(ours, data, size) == 0);
        free(ours);
    }

    /* Complete the sizes as a session would (measuring), write, read back. */
    for (size_t i = 0; i < n; i++) {
        if (!items[i].known) {
            uint64_t ph = items[i].physical;
            items[i].wire = (ph & 1) && ph < UINT64_MAX ? ph + 1 : ph;
            items[i].known = true;
        }
    }
    CHECK(sizecache_store(dir_out, items, n, NULL) == 0);
    make_items(names, n, again);
    bool dirty2 = true;
    sizecache_load(dir_out, again, n, &dirty2);
    CHECK(!dirty2);
    for (size_t i = 0; i < n; i++) {
        if (!sizecache_name_ok(again[i].base, again[i].base_len)) {
            CHECK(!again[i].known);
            continue;
        }
        CHECK(again[i].known && again[i].wire == items[i].wire);
    }
    return 0;
}
