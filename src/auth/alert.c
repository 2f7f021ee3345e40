#include "auth/alert.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "conf/conf.h"

static const char *const kind_names[ALERT_KINDS] = {"ban", "account_locked", "spraying",
                                                    "distributed_spraying", "new_source"};
static const uint32_t kind_bits[ALERT_KINDS] = {CONF_ALERT_BAN, CONF_ALERT_ACCOUNT_LOCKED,
                                                CONF_ALERT_SPRAYING, CONF_ALERT_DISTRIBUTED_SPRAYING,
                                                CONF_ALERT_NEW_SOURCE};

const char *alert_kind_name(enum alert_kind k)
{
    return (unsigned)k < ALERT_KINDS ? kind_names[k] : "unknown";
}

uint32_t alert_kind_bit(enum alert_kind k)
{
    return (unsigned)k < ALERT_KINDS ? kind_bits[k] : 0;
}

/* Printable ASCII stays; every other byte becomes "\xNN" (the log's escaping,
 * without quotes), so the text is valid UTF-8 JSON and a safe environment value.
 * Cut at a whole escape when dst is full. */
static void escape(char *dst, size_t dstsz, const char *src)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)(src ? src : ""); *p; p++) {
        char e[4];
        size_t k = 0;
        if (*p >= 0x20 && *p < 0x7f) {
            e[k++] = (char)*p;
        } else {
            e[k++] = '\\';
            e[k++] = 'x';
            e[k++] = hex[*p >> 4];
            e[k++] = hex[*p & 15];
        }
        if (o + k >= dstsz)
            break;
        memcpy(dst + o, e, k);
        o += k;
    }
    dst[o] = '\0';
}

int alert_from_guard(const struct guard_event *ev, int64_t now, struct alert_event *out)
{
    enum alert_kind k;
    switch (ev->kind) {
    case GUARD_EV_BAN: k = ALERT_BAN; break;
    case GUARD_EV_ACCOUNT_LOCKED: k = ALERT_ACCOUNT_LOCKED; break;
    case GUARD_EV_SPRAYING: k = ALERT_SPRAYING; break;
    case GUARD_EV_DISTRIBUTED_SPRAYING: k = ALERT_DISTRIBUTED_SPRAYING; break;
    case GUARD_EV_NEW_SOURCE: k = ALERT_NEW_SOURCE; break;
    default: return -1;
    }
    memset(out, 0, sizeof(*out));
    out->kind = k;
    out->time = now;
    escape(out->subject, sizeof(out->subject), ev->subject);
    escape(out->user, sizeof(out->user), ev->user);
    escape(out->remote, sizeof(out->remote), ev->remote);
    escape(out->reason, sizeof(out->reason), ev->reason);
    out->seconds = ev->seconds;
    out->count = ev->count;
    return 0;
}

static void rfc3339(int64_t t, char out[32])
{
    struct tm tm;
    time_t tt = (time_t)t;
    if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, 32, "1970-01-01T00:00:00Z");
}

/* Every string is printable ASCII by now, so json_string() cannot fail on encoding. */
static int set_str(json_t *o, const char *key, const char *v)
{
    return json_object_set_new(o, key, v[0] ? json_string(v) : json_null());
}

char *alert_json(const struct alert_event *ev, const char *host)
{
    char when[32], h[ALERT_FIELD_MAX];
    rfc3339(ev->time, when);
    json_t *o = json_object();
    if (o == NULL)
        return NULL;
    int rc = json_object_set_new(o, "event", json_string(alert_kind_name(ev->kind)));
    rc |= json_object_set_new(o, "time", json_string(when));
    if (host != NULL) {
        escape(h, sizeof(h), host);
        rc |= set_str(o, "host", h);
    }
    rc |= set_str(o, "subject", ev->subject);
    rc |= set_str(o, "user", ev->user);
    rc |= set_str(o, "remote", ev->remote);
    rc |= set_str(o, "reason", ev->reason);
    rc |= json_object_set_new(o, "seconds", json_integer(ev->seconds));
    rc |= json_object_set_new(o, "count", json_integer(ev->count));
    char *s = rc == 0 ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return s;
}

int alert_env(const struct alert_event *ev, const char *host, char *buf, size_t bufsz, char **envp)
{
    char when[32], h[ALERT_FIELD_MAX], secs[16], count[16];
    rfc3339(ev->time, when);
    escape(h, sizeof(h), host);
    snprintf(secs, sizeof(secs), "%u", ev->seconds);
    snprintf(count, sizeof(count), "%u", ev->count);
    const char *vars[][2] = {
        {"POPSD_EVENT", alert_kind_name(ev->kind)},
        {"POPSD_TIME", when},
        {"POPSD_HOST", h},
        {"POPSD_SUBJECT", ev->subject},
        {"POPSD_USER", ev->user},
        {"POPSD_REMOTE", ev->remote},
        {"POPSD_REASON", ev->reason},
        {"POPSD_SECONDS", secs},
        {"POPSD_COUNT", count},
        {"PATH", "/usr/local/bin:/usr/bin:/bin"},
    };
    _Static_assert(sizeof(vars) / sizeof(vars[0]) < ALERT_ENV_MAX, "room for the NULL");
    size_t o = 0, n = 0;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++) {
        int w = snprintf(buf + o, bufsz - o, "%s=%s", vars[i][0], vars[i][1]);
        if (w < 0 || (size_t)w >= bufsz - o)
            return -1;
        envp[n++] = buf + o;
        o += (size_t)w + 1;
    }
    envp[n] = NULL;
    return 0;
}

/* ---- queue: a ring of cap items ---- */

struct alert_queue {
    unsigned cap, head, len;
    uint64_t dropped;
    struct alert_queue_item items[];
};

struct alert_queue *alert_queue_new(unsigned cap)
{
    if (cap == 0)
        return NULL;
    struct alert_queue *q = calloc(1, sizeof(*q) + (size_t)cap * sizeof(q->items[0]));
    if (q != NULL)
        q->cap = cap;
    return q;
}

void alert_queue_free(struct alert_queue **q)
{
    free(*q);
    *q = NULL;
}

bool alert_queue_push(struct alert_queue *q, const struct alert_event *ev)
{
    bool dropped = false;
    if (q->len == q->cap) {
        alert_queue_pop(q);
        q->dropped++;
        dropped = true;
    }
    struct alert_queue_item *it = &q->items[(q->head + q->len) % q->cap];
    it->ev = *ev;
    it->tries = 0;
    q->len++;
    return dropped;
}

struct alert_queue_item *alert_queue_head(struct alert_queue *q)
{
    return q->len ? &q->items[q->head] : NULL;
}

void alert_queue_pop(struct alert_queue *q)
{
    if (q->len == 0)
        return;
    q->head = (q->head + 1) % q->cap;
    q->len--;
}

unsigned alert_queue_len(const struct alert_queue *q)
{
    return q->len;
}

uint64_t alert_queue_dropped(const struct alert_queue *q)
{
    return q->dropped;
}
