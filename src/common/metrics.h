/* Counters shared by every popsd process, for the Prometheus endpoint.
 *
 * The parent creates one region (memfd, sealed against resizing, mapped
 * MAP_SHARED) before it starts any child and passes it to each child as an
 * extra fd, named in argv as "-m FD,SLOT". Each process counts into its own
 * cache-line-aligned slot with relaxed C11 atomics (no locks, no contention);
 * the metrics process sums the slots when it is scraped. A slot belongs to one
 * live process at a time: when the child exits, the parent zeroes the slot's
 * gauges (its sessions are gone) and may give the slot to another child, whose
 * counts go on from the same values, so every sum stays monotonic. Slot 0 is
 * shared by the parent and by children beyond METRICS_SLOTS - 1.
 *
 * The region is writable by the unprivileged fronts, so nothing trusts what it
 * reads from it: the parent only ever writes to it, and the renderer prints
 * numbers, and table names only after checking every byte.
 *
 * Every counting call is safe before or without metrics_attach() (it then
 * counts into private memory) and from any thread. */
#ifndef POPSD_COMMON_METRICS_H
#define POPSD_COMMON_METRICS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define METRICS_SLOTS 256
#define METRICS_TABLES 16
#define METRICS_TABLE_NAME 24

enum metrics_counter {
    METRIC_CONN_ACCEPTED,
    METRIC_CONN_REFUSED_MAX,        /* max_connections */
    METRIC_CONN_REFUSED_PER_SOURCE, /* max_connections_per_source */
    METRIC_CONN_REFUSED_FD,         /* fd_limit: the front's descriptor budget */
    METRIC_CONN_REFUSED_PROXY,      /* proxy_untrusted: not a listed balancer */
    METRIC_TLS12,
    METRIC_TLS13,
    METRIC_TLS_OTHER,
    METRIC_TLS_FAILED,
    METRIC_DELAYS,   /* failed logins answered after a delay */
    METRIC_DELAY_MS, /* the sum of those delays */
    METRIC_BANS,
    METRIC_ACCOUNT_LOCKS,
    METRIC_SPRAYING,
    METRIC_DISTRIBUTED_SPRAYING,
    METRIC_NEW_SOURCE,
    METRIC_WEBHOOK_SENT,
    METRIC_WEBHOOK_FAILED,  /* given up after every retry */
    METRIC_WEBHOOK_RETRIES, /* tries after a failed one */
    METRIC_WEBHOOK_DROPPED, /* pushed out of a full queue */
    METRIC_EXEC_RUN,        /* exited with status 0 */
    METRIC_EXEC_FAILED,     /* non-zero status, signal, timeout or could not start */
    METRIC_EXEC_DROPPED,
    METRIC_COUNTERS
};

enum metrics_gauge { METRIC_SESSIONS, METRIC_GAUGES };

enum metrics_login_result {
    METRIC_LOGIN_SUCCESS,
    METRIC_LOGIN_FAILURE,     /* wrong password, unknown user, POP3 disabled */
    METRIC_LOGIN_REFUSED,     /* turned away by the defence engine without a check */
    METRIC_LOGIN_TEMPFAIL,    /* database error, queue full */
    METRIC_LOGIN_LOGIN_DELAY, /* right password, but too soon after the last login (RFC 2449) */
    METRIC_LOGIN_RESULTS
};

enum metrics_mech {
    METRIC_MECH_USER,
    METRIC_MECH_PLAIN,
    METRIC_MECH_SCRAM,
    METRIC_MECH_SCRAM_PLUS,
    METRIC_MECH_OAUTHBEARER,
    METRIC_MECH_XOAUTH2,
    METRIC_MECH_OTHER,
    METRIC_MECHS
};

struct metrics_slot {
    _Alignas(64) _Atomic uint64_t counter[METRIC_COUNTERS];
    _Atomic uint64_t login[METRIC_LOGIN_RESULTS][METRIC_MECHS];
    _Atomic int64_t gauge[METRIC_GAUGES];
};

/* The defence tables, published by the authd that serves popsctl. */
struct metrics_table {
    _Atomic unsigned char name[METRICS_TABLE_NAME]; /* NUL-terminated; checked before printing */
    _Atomic uint64_t entries, capacity, bytes, evictions;
};

struct metrics_region {
    uint64_t magic;
    uint32_t version, size;
    struct metrics_table table[METRICS_TABLES];
    _Atomic uint64_t alert_queued; /* events waiting for the webhook and the exec hook */
    struct metrics_slot slot[METRICS_SLOTS];
};

/* ---- every process ---- */

/* Maps the region named by "-m FD,SLOT" (read-only when !writable). Returns 0,
 * or -1 and counting goes on in private memory. */
int metrics_attach(const char *arg, bool writable, struct error *err);
/* The mapped region, or NULL. */
const struct metrics_region *metrics_region(void);

void metrics_inc(enum metrics_counter c);
void metrics_add(enum metrics_counter c, uint64_t n);
void metrics_gauge_add(enum metrics_gauge g, int64_t delta);
/* result: enum metrics_login_result; mech: the mechanism name ("USER", "PLAIN", ...). */
void metrics_login(enum metrics_login_result result, const char *mech);
/* version: as OpenSSL names it ("TLSv1.3"). */
void metrics_tls(const char *version);
/* Publishes defence table i (i < METRICS_TABLES). */
void metrics_table_set(unsigned i, const char *name, uint64_t entries, uint64_t capacity, uint64_t bytes,
                       uint64_t evictions);
void metrics_alert_queued(uint64_t n);

/* ---- the parent ---- */

/* Creates, seals and maps the region; returns its fd (close-on-exec), or -1. */
int metrics_create(struct error *err);
/* A free slot for a new child (1 .. METRICS_SLOTS-1), or 0 (shared) when none is free. */
unsigned metrics_slot_acquire(void);
/* The child owning slot has exited: its gauges are zeroed and the slot is free again. */
void metrics_slot_release(unsigned slot);

/* ---- the metrics process ---- */

/* Writes the Prometheus text exposition (format 0.0.4) of m into buf.
 * Returns the length, or 0 if cap is too small. */
size_t metrics_render(const struct metrics_region *m, char *buf, size_t cap);

#endif
