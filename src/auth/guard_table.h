/* A bounded table of expiring counters: the storage primitive of the defence
 * engine. Keys are short byte strings; each entry holds a u32 value, an
 * absolute expiry (wall clock seconds, so state files survive a restart) and an
 * optional label (shown by popsctl). Expired entries vanish on access.
 *
 * When full, an insert evicts one entry chosen from a random sample of 8: the
 * one that expires first. Callers that must not lose an entry to a flood (bans,
 * locks) keep it in a table of its own, so floods of failure counters can only
 * evict other failure counters. Memory grows with use, never past the cap. */
#ifndef POPSD_AUTH_GUARD_TABLE_H
#define POPSD_AUTH_GUARD_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define GUARD_KEY_MAX 24
#define GUARD_LABEL_MAX 272 /* a user name (255) or an address with prefix */

struct guard_key {
    uint8_t len;
    uint8_t b[GUARD_KEY_MAX];
};

struct guard_entry {
    struct guard_key key;
    uint32_t value;
    int64_t expires;
    char *label; /* NULL or heap string */
};

struct guard_table;

struct guard_table *guard_table_new(const char *name, uint32_t cap);
void guard_table_free(struct guard_table **t);

/* The live entry for key, or NULL. */
struct guard_entry *guard_table_get(struct guard_table *t, const struct guard_key *k, int64_t now);
/* The live entry for key, created with value 0 and the given expiry when absent
 * (evicting if full). NULL only on allocation failure. *created says which. */
struct guard_entry *guard_table_upsert(struct guard_table *t, const struct guard_key *k, int64_t now,
                                       int64_t expires, bool *created);
/* Sets or replaces an entry's label. */
void guard_table_set_label(struct guard_entry *e, const char *label);
bool guard_table_del(struct guard_table *t, const struct guard_key *k);

/* Calls fn for every live entry; fn returns non-zero to stop. */
void guard_table_each(struct guard_table *t, int64_t now, int (*fn)(void *ctx, const struct guard_entry *e),
                      void *ctx);
uint32_t guard_table_count(const struct guard_table *t);
uint32_t guard_table_cap(const struct guard_table *t);
const char *guard_table_name(const struct guard_table *t);
/* Bytes currently allocated (entries, index, labels). */
size_t guard_table_bytes(const struct guard_table *t);
uint64_t guard_table_evictions(const struct guard_table *t);

#endif
