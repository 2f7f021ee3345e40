/* The defence engine: decides, per login attempt, whether it may proceed and
 * how long a failure is delayed, and detects brute force, password spraying
 * and account attacks. Lives in authd's event-loop thread (not thread-safe),
 * except guard_fingerprint(), which workers call.
 *
 * All state is expiring counters in bounded tables (guard_table.h), keyed by
 * source address (/32, /64), prefix (/24, /48), a keyed hash of the account
 * name, and keyed fingerprints of tried passwords (never the passwords). The
 * same keys map onto a shared store (Redis INCR/EXPIRE, SET NX EX) for a
 * cluster; only guard_table.c would change.
 *
 * The user is protected from being locked out by an attacker: failures from
 * sources unknown for an account lock it for unknown sources only; a source
 * prefix that logged in successfully before (a known device) keeps working. */
#ifndef POPSD_AUTH_GUARD_H
#define POPSD_AUTH_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/guard_table.h"
#include "common/error.h"

#define GUARD_MAX_TRUSTED 32
#define GUARD_KEYLEN 32

struct guard_net {
    int family; /* AF_INET or AF_INET6 */
    uint8_t addr[16];
    unsigned prefix;
};

struct guard_params {
    uint32_t delay_base_ms, delay_max_ms;
    uint32_t window_s;            /* failure counters live this long after their last failure */
    uint32_t ban_failures;        /* per address (IPv4 /32, IPv6 /64) */
    uint32_t ban_prefix_failures; /* per IPv4 /24, IPv6 /48 */
    uint32_t ban_first_s, ban_max_s;
    uint32_t ban_memory_s;        /* how long a repeat offender's level is remembered */
    uint32_t spray_accounts;      /* distinct accounts failed from one address */
    uint32_t spray_password_accounts; /* distinct accounts tried with one password, any source */
    uint32_t account_lock_failures;   /* failures from unknown sources */
    uint32_t account_lock_s;
    uint32_t known_source_s;
    uint32_t table_cap;
    struct guard_net trusted[GUARD_MAX_TRUSTED];
    unsigned n_trusted;
};

extern const struct guard_params guard_params_default;

struct guard_source {
    int family;
    uint8_t addr[16];
    char text[48];
};

/* Parses an IPv4/IPv6 literal (IPv4-mapped IPv6 becomes IPv4). Returns 0 or -1. */
int guard_source_parse(const char *ip, struct guard_source *src);
/* Parses "10.0.0.0/8" or "2001:db8::/32". Returns 0 or -1. */
int guard_net_parse(const char *text, struct guard_net *net);

enum guard_event_kind {
    GUARD_EV_BAN,                  /* subject = address or prefix */
    GUARD_EV_ACCOUNT_LOCKED,       /* subject = user */
    GUARD_EV_SPRAYING,             /* one source, many accounts */
    GUARD_EV_DISTRIBUTED_SPRAYING, /* one password, many accounts */
    GUARD_EV_REPEAT_FAILURE,       /* same wrong password again: counted once */
    GUARD_EV_NEW_SOURCE,           /* successful login from a source never seen for the account */
};

struct guard_event {
    enum guard_event_kind kind;
    const char *subject; /* address/prefix or user */
    const char *user;    /* may be NULL */
    const char *remote;
    const char *reason;
    uint32_t seconds; /* ban or lock length */
    uint32_t count;   /* failures, accounts or level, by kind */
};

typedef void (*guard_emit_fn)(void *ctx, const struct guard_event *ev);

struct guard;

/* key: 32 secret bytes for the keyed hashes (persisted with the state). */
struct guard *guard_new(const struct guard_params *p, const uint8_t key[GUARD_KEYLEN], guard_emit_fn emit, void *ctx);
void guard_free(struct guard **g);

/* Keyed fingerprints of a tried password: bound to the account (for repeats)
 * and not (for distributed spraying). Thread-safe. */
struct guard_fp {
    uint8_t user_pw[8];
    uint8_t pw[8];
};
void guard_fingerprint(const struct guard *g, const char *user, const char *pw, size_t pwlen, struct guard_fp *fp);

enum guard_decision {
    GUARD_PROCEED,
    GUARD_REFUSE_BANNED, /* the source or its prefix is banned */
    GUARD_REFUSE_LOCKED, /* the account is locked for unknown sources, and this is one */
};

/* Before verifying. On refusal, *delay_ms is how long to wait before answering. */
enum guard_decision guard_check(struct guard *g, int64_t now, const struct guard_source *src, const char *user,
                                uint32_t *delay_ms);
/* After a wrong password (or unknown user). Returns the delay before the answer. */
uint32_t guard_failure(struct guard *g, int64_t now, const struct guard_source *src, const char *user,
                       const struct guard_fp *fp);
/* After a right password: records the known source. */
void guard_success(struct guard *g, int64_t now, const struct guard_source *src, const char *user);

/* Administration (popsctl through authd's control socket). */
enum guard_list { GUARD_LIST_BANS, GUARD_LIST_LOCKS };
void guard_each(struct guard *g, int64_t now, enum guard_list which,
                int (*fn)(void *ctx, const char *label, uint32_t level, int64_t expires), void *ctx);
/* Lifts a ban by its label ("192.0.2.7/32"); returns true if one was lifted. */
bool guard_unban(struct guard *g, int64_t now, const char *label);
bool guard_unlock(struct guard *g, const char *user);

/* Table sizes for metrics and the caps test. */
void guard_stats(struct guard *g, int (*fn)(void *ctx, const char *table, uint32_t count, uint32_t cap,
                                            size_t bytes, uint64_t evictions),
                 void *ctx);

/* State file: every live entry and the key, written atomically (tmp, fsync,
 * rename). Loading ignores expired entries and refuses a malformed file. */
int guard_save(struct guard *g, int64_t now, const char *path, struct error *err);
/* Creates an engine from a state file; key_out receives the stored key. */
int guard_load(struct guard *g, int64_t now, const char *path, struct error *err);
/* Reads only the key from a state file (to construct the engine). Returns 0, or -1 if absent/bad. */
int guard_load_key(const char *path, uint8_t key[GUARD_KEYLEN]);

#endif
