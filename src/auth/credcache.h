/* The verified-credential cache: polling clients log in every few minutes with
 * the same password, and must not pay a full Argon2id each time. Only
 * successful verifications are stored, keyed by a keyed hash of (user,
 * password, stored hash), so
 *  - a wrong guess can never hit it: an attacker still pays the full hash;
 *  - a password change or a disabled account (a new stored row) misses at once,
 *    with no invalidation message, because the stored hash is part of the key;
 *  - the cache holds no password and nothing that verifies one offline.
 * Bounded (evicts the entry expiring first among a sample) and thread-safe. */
#ifndef POPSD_AUTH_CREDCACHE_H
#define POPSD_AUTH_CREDCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct credcache;

/* ttl_s = 0 disables the cache (every call misses, nothing is stored). */
struct credcache *credcache_new(uint32_t capacity, uint32_t ttl_s);
void credcache_free(struct credcache **c);

/* True if this exact (user, password, stored hash) verified within the TTL. */
bool credcache_hit(struct credcache *c, int64_t now, const char *user, const char *pw, size_t pwlen,
                   const char *stored);
void credcache_put(struct credcache *c, int64_t now, const char *user, const char *pw, size_t pwlen,
                   const char *stored);
uint32_t credcache_count(struct credcache *c);

#endif
