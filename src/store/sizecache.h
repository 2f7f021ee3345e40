/* The per-mailbox size cache, <maildir>/popsd.sizes, so a STAT does not read
 * every message whose name carries no ",W=". Format (all ASCII):
 *   popsd-sizes 1\n
 *   <base name> <physical size> <wire size>\n     (strictly ascending by base)
 * An entry is used only when its physical size equals the message's current
 * one (",S=" or fstatat). Anything unexpected in the file (bad header, a bad or
 * unordered line, a truncated last line, sizes that cannot belong together,
 * too many entries) makes the whole file count as absent: it is rebuilt, never
 * trusted in part. The caller holds the mailbox lock, so we are the only writer. */
#ifndef POPSD_STORE_SIZECACHE_H
#define POPSD_STORE_SIZECACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define SIZECACHE_FILE "popsd.sizes"
#define SIZECACHE_TMP_FILE "popsd.sizes.tmp"
#define SIZECACHE_HEADER "popsd-sizes 1"
/* Same bound as the snapshot: a bigger file cannot be ours. */
#define SIZECACHE_MAX_ENTRIES 1000000u
/* base (<= 255) + two u64 (<= 20 digits each) + two spaces. */
#define SIZECACHE_LINE_MAX (255 + 2 * 20 + 2)

struct sizecache_item {
    const char *base; /* not NUL-terminated; items strictly ascending (memcmp order) */
    size_t base_len;
    uint64_t physical; /* current physical size: the validation key */
    uint64_t wire;     /* out of load (when known), into store */
    bool known;        /* the caller sets false before load; load sets true on a hit */
};

struct sizecache_line {
    const char *base;
    size_t base_len;
    uint64_t physical;
    uint64_t wire;
};

/* True if base[0..len) can be stored in the cache: 1..255 octets of
 * 0x21..0x7E. Other names are simply measured each session. */
bool sizecache_name_ok(const char *base, size_t len);

/* Parses one entry line (without its '\n'). Canonical form only: single
 * spaces, decimal without leading zeros, physical <= wire <= 2 * physical.
 * Returns 0 or -1. out->base points into line. */
int sizecache_parse_line(const char *line, size_t len, struct sizecache_line *out);

/* Formats an entry line with its '\n' into buf (room for SIZECACHE_LINE_MAX + 2).
 * Returns the length. The result always parses back to the same entry. */
size_t sizecache_format_line(const struct sizecache_line *l, char *buf);

/* Fills items[i].wire/known from dirfd/popsd.sizes for every cacheable item
 * whose base and physical size match a line. Sets *dirty_r when the file is not
 * exactly what sizecache_store() would write for the cacheable items once all
 * are known (missing, corrupt, stale or incomplete). Never fails: a file that
 * cannot be read or parsed is treated as absent and no item is marked known. */
void sizecache_load(int dirfd, struct sizecache_item *items, size_t n, bool *dirty_r);

/* Atomically replaces dirfd/popsd.sizes with the cacheable, known items:
 * written to a fresh tmp file (O_EXCL|O_NOFOLLOW, 0600), fsynced, renamed over
 * the old one, then the directory is fsynced. Returns 0 or -1 with detail; on
 * failure the old file is left in place and the tmp file removed. */
int sizecache_store(int dirfd, const struct sizecache_item *items, size_t n, struct error *err);

#endif
