/* Listing new/ and cur/ of a Maildir into a compact, sortable list of entries
 * (one name pool, no per-entry allocation), and finding a message again by
 * its base name after another agent renamed it. */
#ifndef POPSD_STORE_MAILDIR_SCAN_H
#define POPSD_STORE_MAILDIR_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "store/maildir_name.h"

/* Most messages one snapshot holds; beyond it store_open answers
 * STORE_ERR_TEMP instead of growing without bound. */
#define MAILDIR_MAX_MSGS 1000000u

enum maildir_sub { MAILDIR_NEW = 0, MAILDIR_CUR = 1 };

struct maildir_entry {
    uint32_t name_off; /* NUL-terminated name in the list's pool */
    uint16_t name_len;
    uint16_t base_len;
    uint8_t sub;   /* enum maildir_sub */
    bool has_stat; /* physical came from fstatat during the scan */
    struct maildir_name parsed;
    uint64_t physical; /* valid if parsed.has_size or has_stat */
};

struct maildir_list {
    struct maildir_entry *ents;
    size_t count, cap;
    char *pool;
    size_t pool_len, pool_cap;
    size_t max_entries; /* 0 means MAILDIR_MAX_MSGS */
};

/* Appends the message files of the directory sub_fd (tagged sub) to l:
 * regular files only (d_type, or fstatat without following links when the
 * file system does not say), no dotfiles, only names maildir_name_parse()
 * accepts. Uses its own open file description, so sub_fd's offset is
 * untouched and the scan can be repeated. Returns STORE_OK, or STORE_ERR_TEMP
 * with detail (I/O error, out of memory, more than max_entries entries). */
int maildir_scan(int sub_fd, enum maildir_sub sub, struct maildir_list *l, struct error *err);

static inline const char *maildir_entry_name(const struct maildir_list *l, const struct maildir_entry *e)
{
    return l->pool + e->name_off;
}

/* Sorts by base name (strcmp order) and keeps one entry per base name,
 * preferring cur/ (a file seen in both was being moved new/ -> cur/ while we
 * listed, or changed flags twice: it is one message). */
void maildir_list_sort(struct maildir_list *l);

/* Binary search in a sorted list. Returns the entry or NULL. */
const struct maildir_entry *maildir_list_find(const struct maildir_list *l, const char *base,
                                              size_t base_len);

/* Adds name to the pool (for renamed messages). Returns its offset, or -1. */
long maildir_list_add_name(struct maildir_list *l, const char *name, size_t len);

void maildir_list_free(struct maildir_list *l);

/* Looks through cur/ then new/ for a file whose base name is base[0..len).
 * On success copies its name into name_out (MAILDIR_NAME_MAX + 1 bytes) and
 * its subdir into *sub_r, returns 1; returns 0 if none, or STORE_ERR_TEMP. */
int maildir_find_base(const int sub_fds[2], const char *base, size_t len, enum maildir_sub *sub_r,
                      char *name_out, struct error *err);

#endif
