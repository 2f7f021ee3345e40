#include "auth/guard.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/secret.h"
#include "common/strnum.h"

const struct guard_params guard_params_default = {
    .delay_base_ms = 2000,
    .delay_max_ms = 15000,
    .window_s = 3600,
    .ban_failures = 10,
    .ban_prefix_failures = 50,
    .ban_first_s = 900,
    .ban_max_s = 86400,
    .ban_memory_s = 7 * 86400,
    .spray_accounts = 5,
    .spray_password_accounts = 10,
    .account_lock_failures = 20,
    .account_lock_s = 900,
    .known_source_s = 60 * 86400,
    .table_cap = 65536,
};

enum {
    T_FAIL_SRC,  /* address -> failures */
    T_FAIL_PFX,  /* prefix -> failures */
    T_BAN,       /* address or prefix -> level, until the ban ends (labelled) */
    T_BAN_LEVEL, /* address or prefix -> times banned */
    T_FAIL_ACCT, /* account -> failures from unknown sources */
    T_LOCK,      /* account -> locked for unknown sources (labelled) */
    T_KNOWN,     /* account + source prefix -> logged in before */
    T_SRC_ACCTS, /* address -> distinct accounts failed */
    T_PW_ACCTS,  /* password fingerprint -> distinct accounts tried */
    T_MARK,      /* markers: (address, account), (address, account+password), (password, account) */
    T_COUNT
};

static const char *const table_names[T_COUNT] = {
    "fail_source", "fail_prefix", "bans", "ban_levels", "fail_account", "locks",
    "known_sources", "source_accounts", "password_accounts", "markers",
};

struct guard {
    struct guard_params p;
    uint8_t key[GUARD_KEYLEN];
    struct guard_table *t[T_COUNT];
    guard_emit_fn emit;
    void *ctx;
};

int guard_source_parse(const char *ip, struct guard_source *src)
{
    memset(src, 0, sizeof(*src));
    struct in6_addr a6;
    if (inet_pton(AF_INET, ip, src->addr) == 1) {
        src->family = AF_INET;
    } else if (inet_pton(AF_INET6, ip, &a6) == 1) {
        if (IN6_IS_ADDR_V4MAPPED(&a6)) {
            src->family = AF_INET;
            memcpy(src->addr, a6.s6_addr + 12, 4);
        } else {
            src->family = AF_INET6;
            memcpy(src->addr, a6.s6_addr, 16);
        }
    } else {
        return -1;
    }
    inet_ntop(src->family, src->addr, src->text, sizeof(src->text));
    return 0;
}

int guard_net_parse(const char *text, struct guard_net *net)
{
    char buf[64];
    const char *slash = strchr(text, '/');
    if (slash == NULL || (size_t)(slash - text) >= sizeof(buf))
        return -1;
    memcpy(buf, text, (size_t)(slash - text));
    buf[slash - text] = '\0';
    uint32_t bits;
    if (strnum_u32_str(slash + 1, &bits) < 0)
        return -1;
    memset(net, 0, sizeof(*net));
    if (inet_pton(AF_INET, buf, net->addr) == 1 && bits <= 32)
        net->family = AF_INET;
    else if (inet_pton(AF_INET6, buf, net->addr) == 1 && bits <= 128)
        net->family = AF_INET6;
    else
        return -1;
    net->prefix = bits;
    return 0;
}

static bool in_net(const struct guard_net *n, const struct guard_source *s)
{
    if (n->family != s->family)
        return false;
    unsigned full = n->prefix / 8, rest = n->prefix % 8;
    if (memcmp(n->addr, s->addr, full) != 0)
        return false;
    if (rest == 0)
        return true;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (n->addr[full] & mask) == (s->addr[full] & mask);
}

static bool trusted(const struct guard *g, const struct guard_source *s)
{
    for (unsigned i = 0; i < g->p.n_trusted; i++)
        if (in_net(&g->p.trusted[i], s))
            return true;
    return false;
}

/* ---- keys ---- */

static void key_init(struct guard_key *k, char tag)
{
    memset(k, 0, sizeof(*k));
    k->b[0] = (uint8_t)tag;
    k->len = 1;
}

static void key_add(struct guard_key *k, const void *p, size_t n)
{
    size_t room = (size_t)(GUARD_KEY_MAX - k->len);
    if (n > room)
        n = room;
    memcpy(k->b + k->len, p, n);
    k->len = (uint8_t)(k->len + n);
}

/* Bytes of the address kept for a prefix length of v4bits/v6bits. */
static void key_addr(struct guard_key *k, const struct guard_source *s, unsigned v4bits, unsigned v6bits)
{
    uint8_t fam = s->family == AF_INET ? 4 : 6;
    key_add(k, &fam, 1);
    key_add(k, s->addr, (s->family == AF_INET ? v4bits : v6bits) / 8);
}

static void addr_label(const struct guard_source *s, unsigned v4bits, unsigned v6bits, char *out, size_t n)
{
    uint8_t a[16] = {0};
    unsigned bits = s->family == AF_INET ? v4bits : v6bits;
    memcpy(a, s->addr, bits / 8);
    char ip[INET6_ADDRSTRLEN];
    inet_ntop(s->family, a, ip, sizeof(ip));
    snprintf(out, n, "%s/%u", ip, bits);
}

/* A keyed hash of (domain, a, b), truncated to 8 bytes: enough to tell entries
 * apart in a table, useless for recovering what was hashed. */
static void hmac8(const struct guard *g, char domain, const void *a, size_t alen, const void *b, size_t blen,
                  uint8_t out[8])
{
    const void *parts[] = {&domain, a, b};
    const size_t lens[] = {1, alen, blen};
    secret_mac(g->key, GUARD_KEYLEN, parts, lens, 3, out, 8);
}

static void user_hash(const struct guard *g, const char *user, uint8_t out[8])
{
    hmac8(g, 'u', user, strlen(user), NULL, 0, out);
}

void guard_fingerprint(const struct guard *g, const char *user, const char *pw, size_t pwlen, struct guard_fp *fp)
{
    hmac8(g, 'a', user, strlen(user), pw, pwlen, fp->user_pw);
    hmac8(g, 'p', pw, pwlen, NULL, 0, fp->pw);
}

/* ---- life cycle ---- */

struct guard *guard_new(const struct guard_params *p, const uint8_t key[GUARD_KEYLEN], guard_emit_fn emit, void *ctx)
{
    struct guard *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return NULL;
    g->p = *p;
    memcpy(g->key, key, GUARD_KEYLEN);
    g->emit = emit;
    g->ctx = ctx;
    for (int i = 0; i < T_COUNT; i++) {
        /* Bans and locks get their own tables, so a flood of new failure
         * counters can never push them out. */
        uint32_t cap = p->table_cap;
        if (i == T_MARK)
            cap = p->table_cap * 4;
        g->t[i] = guard_table_new(table_names[i], cap);
        if (g->t[i] == NULL) {
            guard_free(&g);
            return NULL;
        }
    }
    return g;
}

void guard_free(struct guard **gp)
{
    struct guard *g = *gp;
    if (g == NULL)
        return;
    for (int i = 0; i < T_COUNT; i++)
        guard_table_free(&g->t[i]);
    secret_wipe(g->key, sizeof(g->key));
    free(g);
    *gp = NULL;
}

static void emit(struct guard *g, enum guard_event_kind kind, const char *subject, const char *user,
                 const struct guard_source *src, const char *reason, uint32_t seconds, uint32_t count)
{
    if (g->emit == NULL)
        return;
    struct guard_event ev = {.kind = kind, .subject = subject, .user = user, .remote = src ? src->text : NULL,
                             .reason = reason, .seconds = seconds, .count = count};
    g->emit(g->ctx, &ev);
}

/* ---- counters ---- */

static uint32_t incr(struct guard *g, int t, const struct guard_key *k, int64_t now, uint32_t ttl)
{
    bool created;
    struct guard_entry *e = guard_table_upsert(g->t[t], k, now, now + ttl, &created);
    if (e == NULL)
        return 0;
    if (e->value < UINT32_MAX)
        e->value++;
    e->expires = now + ttl; /* sliding window: counters fade after a quiet period */
    return e->value;
}

static uint32_t value(struct guard *g, int t, const struct guard_key *k, int64_t now)
{
    struct guard_entry *e = guard_table_get(g->t[t], k, now);
    return e ? e->value : 0;
}

/* Sets a marker; returns true if it was new. */
static bool mark(struct guard *g, const struct guard_key *k, int64_t now)
{
    bool created;
    struct guard_entry *e = guard_table_upsert(g->t[T_MARK], k, now, now + g->p.window_s, &created);
    if (e != NULL)
        e->expires = now + g->p.window_s;
    return e != NULL && created;
}

static uint32_t backoff(const struct guard *g, uint32_t failures)
{
    if (failures == 0)
        return g->p.delay_base_ms;
    uint64_t d = g->p.delay_base_ms;
    for (uint32_t i = 1; i < failures && d < g->p.delay_max_ms; i++)
        d *= 2;
    return d > g->p.delay_max_ms ? g->p.delay_max_ms : (uint32_t)d;
}

static void known_key(const struct guard *g, struct guard_key *k, const uint8_t uh[8], const struct guard_source *s)
{
    key_init(k, 'k');
    key_add(k, uh, 8);
    key_addr(k, s, 24, 56); /* a device keeps its /24 or /56 across address changes */
}

static bool is_known(struct guard *g, int64_t now, const uint8_t uh[8], const struct guard_source *s)
{
    if (trusted(g, s))
        return true;
    struct guard_key k;
    known_key(g, &k, uh, s);
    return guard_table_get(g->t[T_KNOWN], &k, now) != NULL;
}

/* Bans an address (v4bits/v6bits = 32/64) or a prefix (24/48); repeat offenders get longer bans. */
static void ban(struct guard *g, int64_t now, const struct guard_source *s, unsigned v4bits, unsigned v6bits,
                const char *reason, uint32_t count)
{
    struct guard_key k;
    key_init(&k, 'b');
    key_addr(&k, s, v4bits, v6bits);
    if (guard_table_get(g->t[T_BAN], &k, now) != NULL)
        return;
    uint32_t level = incr(g, T_BAN_LEVEL, &k, now, g->p.ban_memory_s);
    uint64_t secs = g->p.ban_first_s;
    for (uint32_t i = 1; i < level && secs < g->p.ban_max_s; i++)
        secs *= 2;
    if (secs > g->p.ban_max_s)
        secs = g->p.ban_max_s;
    bool created;
    struct guard_entry *e = guard_table_upsert(g->t[T_BAN], &k, now, now + (int64_t)secs, &created);
    if (e == NULL)
        return;
    e->value = level;
    char label[64];
    addr_label(s, v4bits, v6bits, label, sizeof(label));
    guard_table_set_label(e, label);
    /* The ban replaces the count: when it ends, the address starts afresh (but its level stays). */
    struct guard_key f;
    key_init(&f, v4bits == 32 ? 's' : 'x');
    key_addr(&f, s, v4bits, v6bits);
    guard_table_del(g->t[v4bits == 32 ? T_FAIL_SRC : T_FAIL_PFX], &f);
    emit(g, GUARD_EV_BAN, label, NULL, s, reason, (uint32_t)secs, level);
    (void)count;
}

static bool banned(struct guard *g, int64_t now, const struct guard_source *s)
{
    struct guard_key k;
    key_init(&k, 'b');
    key_addr(&k, s, 32, 64);
    if (guard_table_get(g->t[T_BAN], &k, now) != NULL)
        return true;
    key_init(&k, 'b');
    key_addr(&k, s, 24, 48);
    return guard_table_get(g->t[T_BAN], &k, now) != NULL;
}

enum guard_decision guard_check(struct guard *g, int64_t now, const struct guard_source *src, const char *user,
                                uint32_t *delay_ms)
{
    *delay_ms = g->p.delay_base_ms;
    if (trusted(g, src))
        return GUARD_PROCEED;
    if (banned(g, now, src)) {
        *delay_ms = g->p.delay_max_ms;
        return GUARD_REFUSE_BANNED;
    }
    uint8_t uh[8];
    user_hash(g, user, uh);
    struct guard_key k;
    key_init(&k, 'l');
    key_add(&k, uh, 8);
    if (guard_table_get(g->t[T_LOCK], &k, now) != NULL && !is_known(g, now, uh, src)) {
        *delay_ms = g->p.delay_max_ms;
        return GUARD_REFUSE_LOCKED;
    }
    return GUARD_PROCEED;
}

uint32_t guard_failure(struct guard *g, int64_t now, const struct guard_source *src, const char *user,
                       const struct guard_fp *fp)
{
    if (trusted(g, src))
        return g->p.delay_base_ms;
    uint8_t uh[8];
    user_hash(g, user, uh);
    struct guard_key ks, kp, k;
    key_init(&ks, 's');
    key_addr(&ks, src, 32, 64);
    key_init(&kp, 'x');
    key_addr(&kp, src, 24, 48);

    /* A polling client with a stale password repeats the same attempt: count it once. */
    key_init(&k, 'r');
    key_addr(&k, src, 32, 64);
    key_add(&k, fp->user_pw, 8);
    if (!mark(g, &k, now)) {
        uint32_t n = value(g, T_FAIL_SRC, &ks, now);
        emit(g, GUARD_EV_REPEAT_FAILURE, src->text, user, src, "same_password_again", 0, n);
        return backoff(g, n);
    }

    uint32_t n_src = incr(g, T_FAIL_SRC, &ks, now, g->p.window_s);
    uint32_t n_pfx = incr(g, T_FAIL_PFX, &kp, now, g->p.window_s);

    uint32_t n_accts = 0;
    key_init(&k, 'a');
    key_addr(&k, src, 32, 64);
    key_add(&k, uh, 8);
    if (mark(g, &k, now)) {
        key_init(&k, 'c');
        key_addr(&k, src, 32, 64);
        n_accts = incr(g, T_SRC_ACCTS, &k, now, g->p.window_s);
    }

    uint32_t n_pw = 0;
    key_init(&k, 'q');
    key_add(&k, fp->pw, 8);
    key_add(&k, uh, 8);
    if (mark(g, &k, now)) {
        key_init(&k, 'p');
        key_add(&k, fp->pw, 8);
        n_pw = incr(g, T_PW_ACCTS, &k, now, g->p.window_s);
    } else {
        key_init(&k, 'p');
        key_add(&k, fp->pw, 8);
        n_pw = value(g, T_PW_ACCTS, &k, now);
    }

    uint32_t n_acct = 0;
    bool known = is_known(g, now, uh, src);
    if (!known) {
        key_init(&k, 'f');
        key_add(&k, uh, 8);
        n_acct = incr(g, T_FAIL_ACCT, &k, now, g->p.window_s);
    }

    if (n_accts >= g->p.spray_accounts && n_accts != 0) {
        if (n_accts == g->p.spray_accounts)
            emit(g, GUARD_EV_SPRAYING, src->text, NULL, src, "many_accounts", 0, n_accts);
        ban(g, now, src, 32, 64, "spraying", n_accts);
    }
    if (n_pw >= g->p.spray_password_accounts) {
        if (n_pw == g->p.spray_password_accounts)
            emit(g, GUARD_EV_DISTRIBUTED_SPRAYING, "password", NULL, src, "same_password_many_accounts", 0, n_pw);
        ban(g, now, src, 32, 64, "distributed_spraying", n_pw);
    }
    if (n_src >= g->p.ban_failures)
        ban(g, now, src, 32, 64, "brute_force", n_src);
    if (n_pfx >= g->p.ban_prefix_failures)
        ban(g, now, src, 24, 48, "brute_force_prefix", n_pfx);
    if (!known && n_acct >= g->p.account_lock_failures) {
        key_init(&k, 'l');
        key_add(&k, uh, 8);
        if (guard_table_get(g->t[T_LOCK], &k, now) == NULL) {
            bool created;
            struct guard_entry *e = guard_table_upsert(g->t[T_LOCK], &k, now, now + g->p.account_lock_s, &created);
            if (e != NULL) {
                e->value = n_acct;
                guard_table_set_label(e, user);
                emit(g, GUARD_EV_ACCOUNT_LOCKED, user, user, src, "unknown_sources", g->p.account_lock_s, n_acct);
            }
        }
    }
    uint32_t worst = n_src > n_acct ? n_src : n_acct;
    return backoff(g, worst);
}

void guard_success(struct guard *g, int64_t now, const struct guard_source *src, const char *user)
{
    uint8_t uh[8];
    user_hash(g, user, uh);
    struct guard_key k;
    known_key(g, &k, uh, src);
    bool created;
    struct guard_entry *e = guard_table_upsert(g->t[T_KNOWN], &k, now, now + g->p.known_source_s, &created);
    if (e == NULL)
        return;
    e->expires = now + g->p.known_source_s;
    if (created && !trusted(g, src))
        emit(g, GUARD_EV_NEW_SOURCE, src->text, user, src, "first_login_from_prefix", 0, 0);
}

/* ---- administration ---- */

struct each_ctx {
    int (*fn)(void *ctx, const char *label, uint32_t level, int64_t expires);
    void *ctx;
};

static int each_cb(void *ctx, const struct guard_entry *e)
{
    struct each_ctx *c = ctx;
    return c->fn(c->ctx, e->label ? e->label : "?", e->value, e->expires);
}

void guard_each(struct guard *g, int64_t now, enum guard_list which,
                int (*fn)(void *ctx, const char *label, uint32_t level, int64_t expires), void *ctx)
{
    struct each_ctx c = {fn, ctx};
    guard_table_each(g->t[which == GUARD_LIST_BANS ? T_BAN : T_LOCK], now, each_cb, &c);
}

struct find_ctx {
    const char *label;
    struct guard_key key;
    bool found;
};

static int find_label(void *ctx, const struct guard_entry *e)
{
    struct find_ctx *f = ctx;
    if (e->label && strcmp(e->label, f->label) == 0) {
        f->key = e->key;
        f->found = true;
        return 1;
    }
    return 0;
}

bool guard_unban(struct guard *g, int64_t now, const char *label)
{
    struct find_ctx f = {.label = label};
    guard_table_each(g->t[T_BAN], now, find_label, &f);
    return f.found && guard_table_del(g->t[T_BAN], &f.key);
}

bool guard_unlock(struct guard *g, const char *user)
{
    uint8_t uh[8];
    user_hash(g, user, uh);
    struct guard_key k;
    key_init(&k, 'l');
    key_add(&k, uh, 8);
    bool r = guard_table_del(g->t[T_LOCK], &k);
    key_init(&k, 'f');
    key_add(&k, uh, 8);
    guard_table_del(g->t[T_FAIL_ACCT], &k);
    return r;
}

void guard_stats(struct guard *g, int (*fn)(void *ctx, const char *table, uint32_t count, uint32_t cap,
                                            size_t bytes, uint64_t evictions),
                 void *ctx)
{
    for (int i = 0; i < T_COUNT; i++)
        if (fn(ctx, table_names[i], guard_table_count(g->t[i]), guard_table_cap(g->t[i]),
               guard_table_bytes(g->t[i]), guard_table_evictions(g->t[i])) != 0)
            return;
}

/* The state file helpers need the tables: guard_state.c reaches them through these. */
struct guard_table *guard_state_table(struct guard *g, unsigned i);
unsigned guard_state_ntables(void);
const uint8_t *guard_state_key(const struct guard *g);

struct guard_table *guard_state_table(struct guard *g, unsigned i)
{
    return i < T_COUNT ? g->t[i] : NULL;
}

unsigned guard_state_ntables(void)
{
    return T_COUNT;
}

const uint8_t *guard_state_key(const struct guard *g)
{
    return g->key;
}
