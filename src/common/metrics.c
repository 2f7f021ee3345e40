#include "common/metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/strnum.h"

_Static_assert(ATOMIC_LLONG_LOCK_FREE == 2, "shared counters need lock-free 64-bit atomics");
_Static_assert(sizeof(struct metrics_region) < UINT32_MAX, "region size fits its header");

#define METRICS_MAGIC 0x706f7073644d6574ull /* "popsdMet" */
#define METRICS_VERSION 1

static struct metrics_slot private_slot; /* until (or unless) a region is attached */
static struct metrics_slot *mine = &private_slot;
static struct metrics_region *region;
static bool slot_used[METRICS_SLOTS]; /* the parent's bookkeeping */

const struct metrics_region *metrics_region(void)
{
    return region;
}

int metrics_attach(const char *arg, bool writable, struct error *err)
{
    char fdbuf[16];
    const char *comma = strchr(arg, ',');
    uint32_t fd, slot;
    if (comma == NULL || (size_t)(comma - arg) >= sizeof(fdbuf))
        return error_set(err, "metrics: expected -m FD,SLOT");
    memcpy(fdbuf, arg, (size_t)(comma - arg));
    fdbuf[comma - arg] = '\0';
    if (strnum_u32_str(fdbuf, &fd) < 0 || fd < 3 || fd > 65535 || strnum_u32_str(comma + 1, &slot) < 0 ||
        slot >= METRICS_SLOTS)
        return error_set(err, "metrics: bad -m %s", arg);
    struct stat st;
    if (fstat((int)fd, &st) < 0)
        return error_set_errno(err, errno, "metrics: fd %u", fd);
    if (!S_ISREG(st.st_mode) || (size_t)st.st_size != sizeof(struct metrics_region))
        return error_set(err, "metrics: fd %u is not the metrics region", fd);
    void *p = mmap(NULL, sizeof(struct metrics_region), writable ? PROT_READ | PROT_WRITE : PROT_READ,
                   MAP_SHARED, (int)fd, 0);
    if (p == MAP_FAILED)
        return error_set_errno(err, errno, "metrics: mmap");
    close((int)fd); /* the mapping stays */
    struct metrics_region *m = p;
    if (m->magic != METRICS_MAGIC || m->version != METRICS_VERSION || m->size != sizeof(*m)) {
        munmap(p, sizeof(*m));
        return error_set(err, "metrics: the region has a bad header");
    }
    region = m;
    if (writable)
        mine = &m->slot[slot];
    return 0;
}

void metrics_inc(enum metrics_counter c)
{
    atomic_fetch_add_explicit(&mine->counter[c], 1, memory_order_relaxed);
}

void metrics_add(enum metrics_counter c, uint64_t n)
{
    atomic_fetch_add_explicit(&mine->counter[c], n, memory_order_relaxed);
}

void metrics_gauge_add(enum metrics_gauge g, int64_t delta)
{
    atomic_fetch_add_explicit(&mine->gauge[g], delta, memory_order_relaxed);
}

/* The mechanism label of popsd_logins_total, in enum metrics_mech order. */
static const char *const mech_names[METRIC_MECHS] = {"USER",        "PLAIN",   "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS",
                                                     "OAUTHBEARER", "XOAUTH2", "other"};

void metrics_login(enum metrics_login_result result, const char *mech)
{
    enum metrics_mech m = METRIC_MECH_OTHER;
    for (int i = 0; mech != NULL && i < METRIC_MECH_OTHER; i++)
        if (strcmp(mech, mech_names[i]) == 0)
            m = (enum metrics_mech)i;
    if ((unsigned)result < METRIC_LOGIN_RESULTS)
        atomic_fetch_add_explicit(&mine->login[result][m], 1, memory_order_relaxed);
}

void metrics_tls(const char *version)
{
    if (strcmp(version, "TLSv1.3") == 0)
        metrics_inc(METRIC_TLS13);
    else if (strcmp(version, "TLSv1.2") == 0)
        metrics_inc(METRIC_TLS12);
    else
        metrics_inc(METRIC_TLS_OTHER);
}

void metrics_table_set(unsigned i, const char *name, uint64_t entries, uint64_t capacity, uint64_t bytes,
                       uint64_t evictions)
{
    if (region == NULL || i >= METRICS_TABLES)
        return;
    struct metrics_table *t = &region->table[i];
    size_t n = strlen(name);
    for (size_t k = 0; k < METRICS_TABLE_NAME; k++)
        atomic_store_explicit(&t->name[k], k < n && k + 1 < METRICS_TABLE_NAME ? (unsigned char)name[k] : 0,
                              memory_order_relaxed);
    atomic_store_explicit(&t->entries, entries, memory_order_relaxed);
    atomic_store_explicit(&t->capacity, capacity, memory_order_relaxed);
    atomic_store_explicit(&t->bytes, bytes, memory_order_relaxed);
    atomic_store_explicit(&t->evictions, evictions, memory_order_relaxed);
}

void metrics_alert_queued(uint64_t n)
{
    if (region != NULL)
        atomic_store_explicit(&region->alert_queued, n, memory_order_relaxed);
}

/* ---- the parent ---- */

int metrics_create(struct error *err)
{
    int fd = memfd_create("popsd-metrics", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0)
        return error_set_errno(err, errno, "metrics: memfd_create");
    /* Sealed at its size: a child cannot shrink it under the others (SIGBUS). */
    if (ftruncate(fd, (off_t)sizeof(struct metrics_region)) < 0 ||
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
        int e = errno;
        close(fd);
        return error_set_errno(err, e, "metrics: sizing the region");
    }
    void *p = mmap(NULL, sizeof(struct metrics_region), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        close(fd);
        return error_set_errno(err, e, "metrics: mmap");
    }
    region = p;
    region->magic = METRICS_MAGIC;
    region->version = METRICS_VERSION;
    region->size = (uint32_t)sizeof(*region);
    mine = &region->slot[0];
    slot_used[0] = true;
    return fd;
}

unsigned metrics_slot_acquire(void)
{
    for (unsigned i = 1; i < METRICS_SLOTS; i++)
        if (!slot_used[i]) {
            slot_used[i] = true;
            return i;
        }
    return 0;
}

void metrics_slot_release(unsigned slot)
{
    if (slot == 0 || slot >= METRICS_SLOTS)
        return;
    slot_used[slot] = false;
    if (region != NULL)
        for (int g = 0; g < METRIC_GAUGES; g++)
            atomic_store_explicit(&region->slot[slot].gauge[g], 0, memory_order_relaxed);
}

/* ---- rendering ---- */

struct out {
    char *buf;
    size_t cap, len;
    bool overflow;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *fmt, ...)
{
    if (o->overflow)
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->overflow = true;
    else
        o->len += (size_t)n;
}

static void head(struct out *o, const char *name, const char *type, const char *help)
{
    put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static uint64_t sum(const struct metrics_region *m, enum metrics_counter c)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < METRICS_SLOTS; i++)
        v += atomic_load_explicit(&m->slot[i].counter[c], memory_order_relaxed);
    return v;
}

static int64_t gauge_sum(const struct metrics_region *m, enum metrics_gauge g)
{
    /* Unsigned arithmetic: slots hold whatever a front wrote; no signed overflow. */
    uint64_t v = 0;
    for (unsigned i = 0; i < METRICS_SLOTS; i++)
        v += (uint64_t)atomic_load_explicit(&m->slot[i].gauge[g], memory_order_relaxed);
    return v > INT64_MAX ? 0 : (int64_t)v; /* a negative sum is a transient race: show 0 */
}

static void counter(struct out *o, const char *name, const char *help, uint64_t v)
{
    head(o, name, "counter", help);
    put(o, "%s %llu\n", name, (unsigned long long)v);
}

/* A table name is printed only if it is a plain identifier. */
static bool table_name(const struct metrics_table *t, char out[METRICS_TABLE_NAME])
{
    for (size_t k = 0; k < METRICS_TABLE_NAME; k++) {
        unsigned char ch = atomic_load_explicit(&t->name[k], memory_order_relaxed);
        out[k] = (char)ch;
        if (ch == 0)
            return k > 0;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '_'))
            return false;
    }
    return false;
}

static void tables(struct out *o, const struct metrics_region *m)
{
    static const struct {
        const char *name, *type, *help;
        size_t off;
    } cols[] = {
        {"popsd_defence_table_entries", "gauge", "Entries in a defence table.",
         offsetof(struct metrics_table, entries)},
        {"popsd_defence_table_capacity", "gauge", "Size cap of a defence table.",
         offsetof(struct metrics_table, capacity)},
        {"popsd_defence_table_bytes", "gauge", "Memory held by a defence table.",
         offsetof(struct metrics_table, bytes)},
        {"popsd_defence_table_evictions_total", "counter",
         "Entries evicted from a full defence table since authd started.",
         offsetof(struct metrics_table, evictions)},
    };
    char name[METRICS_TABLE_NAME];
    bool any = false;
    for (unsigned i = 0; i < METRICS_TABLES && !any; i++)
        any = table_name(&m->table[i], name);
    if (!any)
        return;
    for (size_t c = 0; c < sizeof(cols) / sizeof(cols[0]); c++) {
        head(o, cols[c].name, cols[c].type, cols[c].help);
        for (unsigned i = 0; i < METRICS_TABLES; i++) {
            const struct metrics_table *t = &m->table[i];
            if (!table_name(t, name))
                continue;
            const _Atomic uint64_t *v = (const _Atomic uint64_t *)((const char *)t + cols[c].off);
            put(o, "%s{table=\"%s\"} %llu\n", cols[c].name, name,
                (unsigned long long)atomic_load_explicit(v, memory_order_relaxed));
        }
    }
}

size_t metrics_render(const struct metrics_region *m, char *buf, size_t cap)
{
    static const char *const results[METRIC_LOGIN_RESULTS] = {"success", "failure", "refused", "tempfail",
                                                              "login_delay"};
    struct out o = {.buf = buf, .cap = cap};
    if (cap == 0)
        return 0;
    counter(&o, "popsd_connections_accepted_total", "Connections accepted by the fronts.",
            sum(m, METRIC_CONN_ACCEPTED));
    head(&o, "popsd_connections_refused_total", "counter",
         "Connections refused at accept, by the cap crossed.");
    put(&o, "popsd_connections_refused_total{reason=\"max_connections\"} %llu\n",
        (unsigned long long)sum(m, METRIC_CONN_REFUSED_MAX));
    put(&o, "popsd_connections_refused_total{reason=\"max_connections_per_source\"} %llu\n",
        (unsigned long long)sum(m, METRIC_CONN_REFUSED_PER_SOURCE));
    put(&o, "popsd_connections_refused_total{reason=\"fd_limit\"} %llu\n",
        (unsigned long long)sum(m, METRIC_CONN_REFUSED_FD));
    put(&o, "popsd_connections_refused_total{reason=\"proxy_untrusted\"} %llu\n",
        (unsigned long long)sum(m, METRIC_CONN_REFUSED_PROXY));
    head(&o, "popsd_sessions", "gauge", "Client connections open now, TLS handshakes included.");
    put(&o, "popsd_sessions %lld\n", (long long)gauge_sum(m, METRIC_SESSIONS));
    head(&o, "popsd_tls_handshakes_total", "counter", "TLS handshakes completed, by protocol version.");
    put(&o, "popsd_tls_handshakes_total{version=\"1.2\"} %llu\n", (unsigned long long)sum(m, METRIC_TLS12));
    put(&o, "popsd_tls_handshakes_total{version=\"1.3\"} %llu\n", (unsigned long long)sum(m, METRIC_TLS13));
    put(&o, "popsd_tls_handshakes_total{version=\"other\"} %llu\n",
        (unsigned long long)sum(m, METRIC_TLS_OTHER));
    counter(&o, "popsd_tls_handshake_failures_total", "TLS handshakes that failed.",
            sum(m, METRIC_TLS_FAILED));
    head(&o, "popsd_logins_total", "counter", "Login attempts answered by authd, by result and mechanism.");
    for (int r = 0; r < METRIC_LOGIN_RESULTS; r++)
        for (int k = 0; k < METRIC_MECHS; k++) {
            uint64_t v = 0;
            for (unsigned i = 0; i < METRICS_SLOTS; i++)
                v += atomic_load_explicit(&m->slot[i].login[r][k], memory_order_relaxed);
            put(&o, "popsd_logins_total{result=\"%s\",mechanism=\"%s\"} %llu\n", results[r], mech_names[k],
                (unsigned long long)v);
        }
    counter(&o, "popsd_auth_delays_total", "Failed logins answered after a delay.", sum(m, METRIC_DELAYS));
    uint64_t ms = sum(m, METRIC_DELAY_MS);
    head(&o, "popsd_auth_delay_seconds_total", "counter",
         "Sum of the delays before failed logins were answered.");
    put(&o, "popsd_auth_delay_seconds_total %llu.%03llu\n", (unsigned long long)(ms / 1000),
        (unsigned long long)(ms % 1000));
    counter(&o, "popsd_bans_total", "Bans of an address or prefix by the defence engine.",
            sum(m, METRIC_BANS));
    counter(&o, "popsd_account_locks_total", "Accounts locked for unknown sources.",
            sum(m, METRIC_ACCOUNT_LOCKS));
    head(&o, "popsd_spraying_detections_total", "counter", "Password spraying detected, by kind.");
    put(&o, "popsd_spraying_detections_total{kind=\"single_source\"} %llu\n",
        (unsigned long long)sum(m, METRIC_SPRAYING));
    put(&o, "popsd_spraying_detections_total{kind=\"distributed\"} %llu\n",
        (unsigned long long)sum(m, METRIC_DISTRIBUTED_SPRAYING));
    counter(&o, "popsd_new_source_logins_total", "Logins from a source never seen for the account.",
            sum(m, METRIC_NEW_SOURCE));
    head(&o, "popsd_alerts_total", "counter", "Alerts by channel and outcome.");
    static const struct {
        const char *channel, *outcome;
        enum metrics_counter c;
    } alerts[] = {
        {"webhook", "sent", METRIC_WEBHOOK_SENT},       {"webhook", "failed", METRIC_WEBHOOK_FAILED},
        {"webhook", "dropped", METRIC_WEBHOOK_DROPPED}, {"exec", "sent", METRIC_EXEC_RUN},
        {"exec", "failed", METRIC_EXEC_FAILED},         {"exec", "dropped", METRIC_EXEC_DROPPED},
    };
    for (size_t i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
        put(&o, "popsd_alerts_total{channel=\"%s\",outcome=\"%s\"} %llu\n", alerts[i].channel,
            alerts[i].outcome, (unsigned long long)sum(m, alerts[i].c));
    counter(&o, "popsd_webhook_retries_total", "Webhook deliveries tried again after a failure.",
            sum(m, METRIC_WEBHOOK_RETRIES));
    head(&o, "popsd_alert_queue_length", "gauge", "Alerts waiting to be delivered.");
    put(&o, "popsd_alert_queue_length %llu\n",
        (unsigned long long)atomic_load_explicit(&m->alert_queued, memory_order_relaxed));
    tables(&o, m);
    return o.overflow ? 0 : o.len;
}
