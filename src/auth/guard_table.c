#include "auth/guard_table.h"

#include <stdlib.h>
#include <string.h>

#include "common/secret.h"

/* Chained hash index over a growable entry array: index[h] is the first slot
 * (1-based, 0 = none), next[] links slots in the same bucket. */
struct guard_table {
    const char *name;
    uint32_t cap, used, alloc, nbuckets;
    struct guard_entry *e;
    uint32_t *next;
    uint32_t *index;
    uint64_t seed;
    uint64_t rng;
    uint64_t evictions;
    size_t label_bytes;
};

static uint64_t hash_key(const struct guard_table *t, const struct guard_key *k)
{
    /* FNV-1a seeded per table: keys are already keyed hashes or addresses, so
     * this only needs to spread them, not resist collisions chosen by a client. */
    uint64_t h = 1469598103934665603ull ^ t->seed;
    for (unsigned i = 0; i < k->len; i++)
        h = (h ^ k->b[i]) * 1099511628211ull;
    return h;
}

static uint64_t rng_next(struct guard_table *t)
{
    t->rng ^= t->rng << 13;
    t->rng ^= t->rng >> 7;
    t->rng ^= t->rng << 17;
    return t->rng;
}

struct guard_table *guard_table_new(const char *name, uint32_t cap)
{
    struct guard_table *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    t->name = name;
    t->cap = cap ? cap : 1;
    t->nbuckets = 64;
    while (t->nbuckets < t->cap && t->nbuckets < (1u << 24))
        t->nbuckets <<= 1;
    t->index = calloc(t->nbuckets, sizeof(uint32_t));
    if (t->index == NULL) {
        free(t);
        return NULL;
    }
    secret_random(&t->seed, sizeof(t->seed));
    secret_random(&t->rng, sizeof(t->rng));
    t->rng |= 1;
    return t;
}

void guard_table_free(struct guard_table **tp)
{
    struct guard_table *t = *tp;
    if (t == NULL)
        return;
    for (uint32_t i = 0; i < t->used; i++)
        free(t->e[i].label);
    free(t->e);
    free(t->next);
    free(t->index);
    free(t);
    *tp = NULL;
}

static bool key_eq(const struct guard_key *a, const struct guard_key *b)
{
    return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

/* Unlinks slot s from its bucket and moves the last slot into its place. */
static void remove_slot(struct guard_table *t, uint32_t s)
{
    uint32_t *pp = &t->index[hash_key(t, &t->e[s].key) & (t->nbuckets - 1)];
    while (*pp != s + 1)
        pp = &t->next[*pp - 1];
    *pp = t->next[s];
    if (t->e[s].label) {
        t->label_bytes -= strlen(t->e[s].label) + 1;
        free(t->e[s].label);
    }
    uint32_t last = t->used - 1;
    if (s != last) {
        uint32_t *lp = &t->index[hash_key(t, &t->e[last].key) & (t->nbuckets - 1)];
        while (*lp != last + 1)
            lp = &t->next[*lp - 1];
        *lp = s + 1;
        t->e[s] = t->e[last];
        t->next[s] = t->next[last];
    }
    t->used--;
}

static uint32_t find(struct guard_table *t, const struct guard_key *k)
{
    uint32_t s = t->index[hash_key(t, k) & (t->nbuckets - 1)];
    while (s != 0 && !key_eq(&t->e[s - 1].key, k))
        s = t->next[s - 1];
    return s;
}

struct guard_entry *guard_table_get(struct guard_table *t, const struct guard_key *k, int64_t now)
{
    uint32_t s = find(t, k);
    if (s == 0)
        return NULL;
    if (t->e[s - 1].expires <= now) {
        remove_slot(t, s - 1);
        return NULL;
    }
    return &t->e[s - 1];
}

static void evict_one(struct guard_table *t, int64_t now)
{
    uint32_t victim = (uint32_t)(rng_next(t) % t->used);
    for (int i = 0; i < 8; i++) {
        uint32_t c = (uint32_t)(rng_next(t) % t->used);
        if (t->e[c].expires < t->e[victim].expires)
            victim = c;
    }
    if (t->e[victim].expires > now)
        t->evictions++;
    remove_slot(t, victim);
}

static int grow(struct guard_table *t)
{
    uint32_t n = t->alloc ? t->alloc * 2 : 64;
    if (n > t->cap)
        n = t->cap;
    struct guard_entry *e = realloc(t->e, (size_t)n * sizeof(*e));
    if (e == NULL)
        return -1;
    t->e = e;
    uint32_t *nx = realloc(t->next, (size_t)n * sizeof(*nx));
    if (nx == NULL)
        return -1;
    t->next = nx;
    t->alloc = n;
    return 0;
}

struct guard_entry *guard_table_upsert(struct guard_table *t, const struct guard_key *k, int64_t now,
                                       int64_t expires, bool *created)
{
    struct guard_entry *e = guard_table_get(t, k, now);
    if (e != NULL) {
        *created = false;
        return e;
    }
    if (t->used >= t->cap)
        evict_one(t, now);
    if (t->used >= t->alloc && grow(t) < 0)
        return NULL;
    uint32_t s = t->used++;
    e = &t->e[s];
    memset(e, 0, sizeof(*e));
    e->key = *k;
    e->expires = expires;
    uint32_t b = (uint32_t)(hash_key(t, k) & (t->nbuckets - 1));
    t->next[s] = t->index[b];
    t->index[b] = s + 1;
    *created = true;
    return e;
}

void guard_table_set_label(struct guard_entry *e, const char *label)
{
    free(e->label);
    e->label = label ? strndup(label, GUARD_LABEL_MAX) : NULL;
}

bool guard_table_del(struct guard_table *t, const struct guard_key *k)
{
    uint32_t s = find(t, k);
    if (s == 0)
        return false;
    remove_slot(t, s - 1);
    return true;
}

void guard_table_each(struct guard_table *t, int64_t now, int (*fn)(void *ctx, const struct guard_entry *e),
                      void *ctx)
{
    for (uint32_t i = 0; i < t->used;) {
        if (t->e[i].expires <= now) {
            remove_slot(t, i); /* the last entry moved into i: look at i again */
            continue;
        }
        if (fn(ctx, &t->e[i]) != 0)
            return;
        i++;
    }
}

uint32_t guard_table_count(const struct guard_table *t)
{
    return t->used;
}

uint32_t guard_table_cap(const struct guard_table *t)
{
    return t->cap;
}

const char *guard_table_name(const struct guard_table *t)
{
    return t->name;
}

size_t guard_table_bytes(const struct guard_table *t)
{
    size_t labels = 0;
    for (uint32_t i = 0; i < t->used; i++)
        if (t->e[i].label)
            labels += strlen(t->e[i].label) + 1;
    return sizeof(*t) + (size_t)t->alloc * (sizeof(struct guard_entry) + sizeof(uint32_t)) +
           (size_t)t->nbuckets * sizeof(uint32_t) + labels;
}

uint64_t guard_table_evictions(const struct guard_table *t)
{
    return t->evictions;
}
