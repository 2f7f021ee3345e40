/* Alerts about defence events, as data: the event copied out of the engine
 * (every text field made printable ASCII), its JSON for a webhook, its
 * environment for an exec hook, and a bounded FIFO that drops the oldest event
 * when full. No I/O here: authd (src/roles/authd_alert.c) delivers them.
 * A password, or anything derived from one, is never part of an alert. */
#ifndef POPSD_AUTH_ALERT_H
#define POPSD_AUTH_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/guard.h"

#define ALERT_USER_MAX 256 /* escaped: a hostile name grows up to 4x and is cut here */
#define ALERT_FIELD_MAX 64
#define ALERT_ENV_MAX 12 /* entries alert_env() may fill, the terminating NULL included */

enum alert_kind {
    ALERT_BAN,
    ALERT_ACCOUNT_LOCKED,
    ALERT_SPRAYING,
    ALERT_DISTRIBUTED_SPRAYING,
    ALERT_NEW_SOURCE,
    ALERT_KINDS
};

struct alert_event {
    enum alert_kind kind;
    int64_t time; /* Unix seconds */
    char subject[ALERT_FIELD_MAX];
    char user[ALERT_USER_MAX]; /* "" = none */
    char remote[ALERT_FIELD_MAX];
    char reason[ALERT_FIELD_MAX];
    uint32_t seconds, count;
};

/* "ban", "account_locked", "spraying", "distributed_spraying", "new_source". */
const char *alert_kind_name(enum alert_kind k);
/* Its bit in conf.alert_events (enum conf_alert_event). */
uint32_t alert_kind_bit(enum alert_kind k);

/* Copies a defence event. Returns 0, or -1 for kinds that are not alerts
 * (a repeated stale password). Bytes outside 0x20..0x7e become "\xNN". */
int alert_from_guard(const struct guard_event *ev, int64_t now, struct alert_event *out);

/* The JSON object, compact, one line, NUL-terminated:
 * {"event","time" (RFC 3339, UTC),"host","subject","user" (null if none),
 *  "remote","reason","seconds","count"}. host may be NULL (then omitted).
 * Returns a malloc'd string (free() it), or NULL when out of memory. */
char *alert_json(const struct alert_event *ev, const char *host);

/* Fills envp (ALERT_ENV_MAX entries, NULL-terminated) with "NAME=value"
 * strings laid out in buf: POPSD_EVENT, POPSD_TIME, POPSD_HOST, POPSD_SUBJECT,
 * POPSD_USER, POPSD_REMOTE, POPSD_REASON, POPSD_SECONDS, POPSD_COUNT and PATH.
 * Returns 0, or -1 if buf is too small. Built before fork(): the child only execs. */
int alert_env(const struct alert_event *ev, const char *host, char *buf, size_t bufsz, char **envp);

/* A bounded FIFO of events, each with a try counter. */
struct alert_queue;
struct alert_queue_item {
    struct alert_event ev;
    unsigned tries;
};

/* cap >= 1. Returns NULL when out of memory. */
struct alert_queue *alert_queue_new(unsigned cap);
void alert_queue_free(struct alert_queue **q);
/* Appends; when full the oldest item is dropped first. Returns true if one was dropped. */
bool alert_queue_push(struct alert_queue *q, const struct alert_event *ev);
/* The oldest item, or NULL when empty. Stays valid until the next push or pop. */
struct alert_queue_item *alert_queue_head(struct alert_queue *q);
void alert_queue_pop(struct alert_queue *q);
unsigned alert_queue_len(const struct alert_queue *q);
/* Items dropped because the queue was full, since it was made. */
uint64_t alert_queue_dropped(const struct alert_queue *q);

#endif
