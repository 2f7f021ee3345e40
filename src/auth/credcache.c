#include "auth/credcache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "auth/guard_table.h"
#include "common/secret.h"

struct credcache {
    pthread_mutex_t mu;
    struct guard_table *t;
    uint32_t ttl;
    uint8_t key[32];
};

struct credcache *credcache_new(uint32_t capacity, uint32_t ttl_s)
{
    struct credcache *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return NULL;
    pthread_mutex_init(&c->mu, NULL);
    c->ttl = ttl_s;
    c->t = guard_table_new("credentials", capacity);
    if (c->t == NULL || secret_random(c->key, sizeof(c->key)) < 0) {
        credcache_free(&c);
        return NULL;
    }
    return c;
}

void credcache_free(struct credcache **cp)
{
    struct credcache *c = *cp;
    if (c == NULL)
        return;
    guard_table_free(&c->t);
    pthread_mutex_destroy(&c->mu);
    secret_wipe(c, sizeof(*c));
    free(c);
    *cp = NULL;
}

static bool make_key(const struct credcache *c, const char *user, const char *pw, size_t pwlen,
                     const char *stored, struct guard_key *k)
{
    const void *parts[] = {user, pw, stored};
    const size_t lens[] = {strlen(user), pwlen, strlen(stored)};
    k->len = GUARD_KEY_MAX;
    return secret_mac(c->key, sizeof(c->key), parts, lens, 3, k->b, GUARD_KEY_MAX) == 0;
}

bool credcache_hit(struct credcache *c, int64_t now, const char *user, const char *pw, size_t pwlen,
                   const char *stored)
{
    struct guard_key k;
    if (c == NULL || c->ttl == 0 || !make_key(c, user, pw, pwlen, stored, &k))
        return false;
    pthread_mutex_lock(&c->mu);
    bool hit = guard_table_get(c->t, &k, now) != NULL;
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void credcache_put(struct credcache *c, int64_t now, const char *user, const char *pw, size_t pwlen,
                   const char *stored)
{
    struct guard_key k;
    if (c == NULL || c->ttl == 0 || !make_key(c, user, pw, pwlen, stored, &k))
        return;
    bool created;
    pthread_mutex_lock(&c->mu);
    struct guard_entry *e = guard_table_upsert(c->t, &k, now, now + c->ttl, &created);
    if (e != NULL && !created)
        e->expires = now + c->ttl; /* a verified re-login does not extend beyond one TTL from now */
    pthread_mutex_unlock(&c->mu);
}

uint32_t credcache_count(struct credcache *c)
{
    pthread_mutex_lock(&c->mu);
    uint32_t n = guard_table_count(c->t);
    pthread_mutex_unlock(&c->mu);
    return n;
}
