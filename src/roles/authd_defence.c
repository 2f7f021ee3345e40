#include "roles/authd_defence.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/secret.h"
#include "roles/authd_alert.h"
#include "roles/authd_metrics.h"

#define RING_SIZE 4096
#define CTL_LINE_MAX 512

struct ring_entry {
    int64_t at;
    char user[128];
    char remote[48];
    char mech[24];
    char result[40];
};

static struct {
    struct guard *g;
    struct event_base *base;
    const struct conf *conf;
    bool dirty;
    struct event *save_timer;
    struct evconnlistener *ctl;
    struct ring_entry ring[RING_SIZE];
    unsigned ring_next;
} D;

int64_t authd_now(void)
{
    return (int64_t)time(NULL);
}

static void ring_add(const char *user, const char *remote, const char *mech, const char *result)
{
    struct ring_entry *r = &D.ring[D.ring_next++ % RING_SIZE];
    r->at = authd_now();
    snprintf(r->user, sizeof(r->user), "%s", user ? user : "");
    snprintf(r->remote, sizeof(r->remote), "%s", remote ? remote : "");
    snprintf(r->mech, sizeof(r->mech), "%s", mech ? mech : "");
    snprintf(r->result, sizeof(r->result), "%s", result);
}

void authd_defence_record(const char *user, const char *remote, const char *mech, const char *result)
{
    ring_add(user, remote, mech, result);
}

/* One log line per event, at the moment it happens (fail2ban and alerting read these). */
static void on_event(void *ctx, const struct guard_event *ev)
{
    char qu[300];
    const char *user = ev->user ? log_quote(qu, sizeof(qu), ev->user, strlen(ev->user)) : "-";
    switch (ev->kind) {
    case GUARD_EV_BAN:
        log_event(LOG_LVL_WARN, "ban", "subject=%s remote=%s reason=%s seconds=%u level=%u", ev->subject,
                  ev->remote, ev->reason, ev->seconds, ev->count);
        D.dirty = true;
        break;
    case GUARD_EV_ACCOUNT_LOCKED:
        log_event(LOG_LVL_WARN, "account_locked", "user=%s remote=%s reason=%s seconds=%u failures=%u", user,
                  ev->remote, ev->reason, ev->seconds, ev->count);
        D.dirty = true;
        break;
    case GUARD_EV_SPRAYING:
        log_event(LOG_LVL_WARN, "spraying", "remote=%s accounts=%u", ev->remote, ev->count);
        break;
    case GUARD_EV_DISTRIBUTED_SPRAYING:
        log_event(LOG_LVL_WARN, "distributed_spraying", "remote=%s accounts=%u", ev->remote, ev->count);
        break;
    case GUARD_EV_REPEAT_FAILURE:
        log_event(LOG_LVL_NOTICE, "auth_failure_repeat", "user=%s remote=%s reason=%s counted_failures=%u", user,
                  ev->remote, ev->reason, ev->count);
        break;
    case GUARD_EV_NEW_SOURCE:
        log_event(LOG_LVL_NOTICE, "new_source", "user=%s remote=%s", user, ev->remote);
        break;
    }
    ring_add(ev->user, ev->remote, "",
             ev->kind == GUARD_EV_BAN              ? "ban"
             : ev->kind == GUARD_EV_ACCOUNT_LOCKED ? "account_locked"
             : ev->kind == GUARD_EV_NEW_SOURCE     ? "new_source"
             : ev->kind == GUARD_EV_REPEAT_FAILURE ? "repeat_failure"
                                                   : "spraying");
    authd_metrics_event(ev);
    authd_alert(ev);
}

void authd_defence_flush(void)
{
    if (!D.dirty || D.conf->state_file[0] == '\0')
        return;
    struct error err = {{0}};
    if (guard_save(D.g, authd_now(), D.conf->state_file, &err) < 0)
        log_event(LOG_LVL_ERR, "state_save_failed", "detail=\"%s\"", err.msg);
    else
        D.dirty = false;
}

static void save_cb(evutil_socket_t fd, short what, void *arg)
{
    /* Bans and locks mark the state dirty and are saved within a second; the
     * counters in between are saved every minute. */
    static unsigned ticks;
    if (++ticks % 60 == 0)
        D.dirty = true;
    authd_defence_flush();
    authd_metrics_tables(D.g);
}

struct guard *authd_defence_init(const struct conf *c, struct event_base *base)
{
    struct guard_params p = guard_params_default;
    p.delay_base_ms = (uint32_t)c->auth_fail_delay_ms;
    p.delay_max_ms = (uint32_t)(c->delay_max_ms > c->auth_fail_delay_ms ? c->delay_max_ms : c->auth_fail_delay_ms);
    p.window_s = (uint32_t)(c->window_ms / 1000);
    p.ban_failures = c->ban_failures;
    p.ban_prefix_failures = c->ban_prefix_failures;
    p.ban_first_s = (uint32_t)(c->ban_time_ms / 1000);
    p.ban_max_s = (uint32_t)(c->ban_time_max_ms / 1000);
    p.ban_memory_s = (uint32_t)(c->ban_memory_ms / 1000);
    p.spray_accounts = c->spray_accounts;
    p.spray_password_accounts = c->spray_password_accounts;
    p.account_lock_failures = c->account_lock_failures;
    p.account_lock_s = (uint32_t)(c->account_lock_time_ms / 1000);
    p.known_source_s = (uint32_t)(c->known_source_time_ms / 1000);
    p.table_cap = c->table_size;
    for (unsigned i = 0; i < c->n_trusted; i++)
        if (guard_net_parse(c->trusted[i], &p.trusted[p.n_trusted]) == 0)
            p.n_trusted++;
    D.conf = c;
    D.base = base;
    uint8_t key[GUARD_KEYLEN];
    bool have_state = c->state_file[0] != '\0' && guard_load_key(c->state_file, key) == 0;
    if (!have_state && secret_random(key, sizeof(key)) < 0)
        log_fatal("no randomness for the defence key");
    D.g = guard_new(&p, key, on_event, NULL);
    secret_wipe(key, sizeof(key));
    if (D.g == NULL)
        log_fatal("cannot create the defence engine");
    if (have_state) {
        struct error err = {{0}};
        if (guard_load(D.g, authd_now(), c->state_file, &err) < 0)
            log_event(LOG_LVL_ERR, "state_load_failed", "detail=\"%s\"", err.msg);
        else
            log_event(LOG_LVL_INFO, "state_loaded", "file=%s", c->state_file);
    }
    D.save_timer = event_new(base, -1, EV_PERSIST, save_cb, NULL);
    struct timeval tv = {.tv_sec = 1};
    if (D.save_timer == NULL || event_add(D.save_timer, &tv) < 0)
        log_fatal("cannot arm the state timer");
    return D.g;
}

/* ---- control socket: one request line, a reply ending in ".", close ---- */

struct ctl_out {
    struct evbuffer *out;
};

static int list_cb(void *ctx, const char *label, uint32_t level, int64_t expires)
{
    struct ctl_out *o = ctx;
    evbuffer_add_printf(o->out, "%s %u %lld\n", label, level, (long long)(expires - authd_now()));
    return 0;
}

static int stats_cb(void *ctx, const char *table, uint32_t count, uint32_t cap, size_t bytes, uint64_t ev)
{
    struct ctl_out *o = ctx;
    evbuffer_add_printf(o->out, "%s %u %u %zu %llu\n", table, count, cap, bytes, (unsigned long long)ev);
    return 0;
}

static bool arg_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 255)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] == 0x7f)
            return false;
    return true;
}

static void ctl_command(char *line, struct evbuffer *out)
{
    struct ctl_out o = {out};
    char *arg = strchr(line, ' ');
    if (arg != NULL)
        *arg++ = '\0';
    int64_t now = authd_now();
    if (strcmp(line, "BANS") == 0 && arg == NULL) {
        guard_each(D.g, now, GUARD_LIST_BANS, list_cb, &o);
    } else if (strcmp(line, "LOCKS") == 0 && arg == NULL) {
        guard_each(D.g, now, GUARD_LIST_LOCKS, list_cb, &o);
    } else if (strcmp(line, "STATS") == 0 && arg == NULL) {
        guard_stats(D.g, stats_cb, &o);
    } else if (strcmp(line, "UNBAN") == 0 && arg != NULL && arg_ok(arg)) {
        bool ok = guard_unban(D.g, now, arg);
        evbuffer_add_printf(out, ok ? "OK lifted\n" : "ERR no such ban\n");
        if (ok) {
            log_event(LOG_LVL_NOTICE, "unban", "subject=%s by=popsctl", arg);
            D.dirty = true;
        }
    } else if (strcmp(line, "UNLOCK") == 0 && arg != NULL && arg_ok(arg)) {
        bool ok = guard_unlock(D.g, arg);
        char q[300];
        evbuffer_add_printf(out, ok ? "OK unlocked\n" : "ERR not locked\n");
        if (ok) {
            log_event(LOG_LVL_NOTICE, "unlock", "user=%s by=popsctl", log_quote(q, sizeof(q), arg, strlen(arg)));
            D.dirty = true;
        }
    } else if (strcmp(line, "EVENTS") == 0 && arg != NULL && arg_ok(arg)) {
        for (unsigned i = 0; i < RING_SIZE; i++) {
            const struct ring_entry *r = &D.ring[(D.ring_next + i) % RING_SIZE];
            if (r->at != 0 && strcmp(r->user, arg) == 0)
                evbuffer_add_printf(out, "%lld %s %s %s\n", (long long)r->at, r->result,
                                    r->remote[0] ? r->remote : "-", r->mech[0] ? r->mech : "-");
        }
    } else {
        evbuffer_add_printf(out, "ERR unknown command\n");
    }
    evbuffer_add_printf(out, ".\n");
}

static void ctl_writecb(struct bufferevent *bev, void *arg)
{
    if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        bufferevent_free(bev);
}

static void ctl_eventcb(struct bufferevent *bev, short what, void *arg)
{
    bufferevent_free(bev);
}

static void ctl_readcb(struct bufferevent *bev, void *arg)
{
    struct evbuffer *in = bufferevent_get_input(bev);
    size_t n;
    char *line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF);
    if (line == NULL) {
        if (evbuffer_get_length(in) > CTL_LINE_MAX)
            bufferevent_free(bev);
        return;
    }
    if (n > CTL_LINE_MAX || memchr(line, '\0', n) != NULL)
        evbuffer_add_printf(bufferevent_get_output(bev), "ERR bad request\n.\n");
    else
        ctl_command(line, bufferevent_get_output(bev));
    free(line);
    bufferevent_disable(bev, EV_READ);
    bufferevent_setcb(bev, NULL, ctl_writecb, ctl_eventcb, NULL);
}

static void ctl_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(D.base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (bev == NULL) {
        close(fd);
        return;
    }
    struct timeval tv = {.tv_sec = 5};
    bufferevent_set_timeouts(bev, &tv, &tv);
    bufferevent_setcb(bev, ctl_readcb, NULL, ctl_eventcb, NULL);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

void authd_defence_control(int fd)
{
    evutil_make_socket_nonblocking(fd);
    D.ctl = evconnlistener_new(D.base, ctl_accept, NULL, LEV_OPT_CLOSE_ON_FREE, -1, fd);
    if (D.ctl == NULL)
        log_fatal("cannot serve the control socket");
}

void authd_defence_control_stop(void)
{
    if (D.ctl != NULL) {
        evconnlistener_free(D.ctl);
        D.ctl = NULL;
    }
}
