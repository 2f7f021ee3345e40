/* The front role's process: set-up, privilege drop, listeners, connection
 * caps, and draining on reload. Started by the parent as
 *   popsd -x front -c CONF -w WORKER -l MODES [-m FD,SLOT]
 * with fd 3 = its authd channel and fds 4.. = listening sockets, MODES being
 * one letter per listener fd: 'i' implicit TLS, 's' STLS; -m names the shared
 * metrics region's fd (after the listeners) and this process's slot in it. */
#include <arpa/inet.h>
#include <errno.h>
#include <malloc.h>
#include <event2/listener.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "auth/netlist.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/strnum.h"
#include "ipc/spawn.h"
#include "roles/front.h"
#include "roles/roles.h"
#include "sandbox/privdrop.h"
#include "sandbox/seccomp.h"

static void source_key(const struct sockaddr *sa, uint8_t key[16])
{
    memset(key, 0, 16);
    if (sa->sa_family == AF_INET) {
        memcpy(key, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else {
        const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
        if (IN6_IS_ADDR_V4MAPPED((const struct in6_addr *)a))
            memcpy(key, a + 12, 4);
        else {
            key[15] = 6;
            memcpy(key, a, 8); /* one IPv6 customer usually holds a whole /64 */
        }
    }
}

static unsigned source_bucket(const uint8_t key[16])
{
    uint32_t h = 2166136261u;
    for (int i = 0; i < 16; i++)
        h = (h ^ key[i]) * 16777619u;
    return h % FRONT_SOURCE_BUCKETS;
}

bool front_source_acquire(struct front *f, const struct sockaddr *sa)
{
    uint8_t key[16];
    source_key(sa, key);
    unsigned b = source_bucket(key);
    struct front_source *s = f->sources[b];
    while (s != NULL && memcmp(s->key, key, 16) != 0)
        s = s->next;
    if (s != NULL && s->count >= f->conf.max_connections_per_source)
        return false;
    if (s == NULL) {
        s = calloc(1, sizeof(*s));
        if (s == NULL)
            return false;
        memcpy(s->key, key, 16);
        s->next = f->sources[b];
        f->sources[b] = s;
    }
    s->count++;
    return true;
}

void front_source_release(struct front *f, const struct sockaddr *sa)
{
    uint8_t key[16];
    source_key(sa, key);
    unsigned b = source_bucket(key);
    for (struct front_source **pp = &f->sources[b]; *pp != NULL; pp = &(*pp)->next) {
        struct front_source *s = *pp;
        if (memcmp(s->key, key, 16) != 0)
            continue;
        if (--s->count == 0) {
            *pp = s->next;
            free(s);
        }
        return;
    }
}

/* Sessions this front can hold with its descriptors: a logged-in session keeps
 * FRONT_FDS_PER_SESSION (socket, Maildir root, lock), and a few more are open
 * for moments (a message being sent, new/ and cur/ during a scan, authd, the
 * log). Without this cap a front that took more than its share of a shared
 * listening socket ran out of descriptors at the mailbox open, after PASS
 * (bench: 6,869 / 3,133 connections over 2 fronts, 204 "-ERR [SYS/TEMP]"). */
#define FRONT_FDS_PER_SESSION 3
#define FRONT_FD_RESERVE 64
static uint32_t fd_budget(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (rlim_t)UINT32_MAX)
        return UINT32_MAX;
    return rl.rlim_cur > FRONT_FD_RESERVE + FRONT_FDS_PER_SESSION
               ? (uint32_t)((rl.rlim_cur - FRONT_FD_RESERVE) / FRONT_FDS_PER_SESSION)
               : 1;
}

static void listeners_enable(struct front *f, bool on)
{
    for (unsigned i = 0; i < f->n_listeners; i++)
        if (on)
            evconnlistener_enable(f->listeners[i]);
        else
            evconnlistener_disable(f->listeners[i]);
}

void front_conn_gone(struct front *f)
{
    f->n_conns--;
    if (f->draining && f->n_conns == 0) {
        event_base_loopexit(f->base, NULL);
        return;
    }
    if (f->full && f->n_conns < f->fd_sessions && !f->draining) {
        f->full = false;
        listeners_enable(f, true);
    }
}

/* Refusals can come in floods: log the first in each second and count the rest. */
void front_log_refusal(const char *remote, const char *reason)
{
    static time_t last;
    static unsigned suppressed;
    time_t now = time(NULL);
    if (now == last) {
        suppressed++;
        return;
    }
    log_event(LOG_LVL_NOTICE, "conn_refused", "remote=%s reason=%s suppressed=%u", remote, reason, suppressed);
    last = now;
    suppressed = 0;
}

void front_sockaddr_ip(const struct sockaddr *sa, char *ip, size_t cap)
{
    snprintf(ip, cap, "?");
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, (socklen_t)cap);
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip, (socklen_t)cap);
}

static void accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    struct front *f = arg;
    enum conf_tls_mode mode = CONF_TLS_IMPLICIT;
    uint32_t mechs = 0;
    const struct conf_listener *lc = NULL;
    for (unsigned i = 0; i < f->n_listeners; i++)
        if (f->listeners[i] == l) {
            mode = f->listener_mode[i];
            mechs = f->listener_mechs[i];
            lc = f->listener_conf[i];
        }
    bool proxy = lc != NULL && lc->proxy;
    char ip[INET6_ADDRSTRLEN];
    front_sockaddr_ip(sa, ip, sizeof(ip));
    const char *reason = NULL;
    enum metrics_counter refused = METRIC_CONN_REFUSED_MAX;
    if (f->n_conns >= f->conf.max_connections) {
        reason = "max_connections";
    } else if (f->n_conns >= f->fd_sessions) {
        reason = "fd_limit";
        refused = METRIC_CONN_REFUSED_FD;
    } else if (proxy && netlist_allow(lc->proxy_trusted, ip) != 1) {
        /* Only a listed balancer may name the source: anyone else could pose
         * as any address to the limits and the defence engine. */
        reason = "proxy_untrusted";
        refused = METRIC_CONN_REFUSED_PROXY;
    } else if (!proxy && !front_source_acquire(f, sa)) {
        /* Behind a balancer, the client's count is taken once its header is read. */
        reason = "max_connections_per_source";
        refused = METRIC_CONN_REFUSED_PER_SOURCE;
    }
    if (reason != NULL) {
        front_log_refusal(ip, reason);
        metrics_inc(refused);
        if (mode == CONF_TLS_STARTTLS && !proxy) {
            static const char msg[] = FRONT_MSG_TOO_MANY;
            ssize_t w = send(fd, msg, sizeof(msg) - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
            (void)w;
        }
        close(fd);
        return;
    }
    f->n_conns++;
    /* At its descriptor budget, a front with siblings stops accepting, so they
     * take the next connections from the shared socket; it accepts again when
     * a session ends. A lone front refuses instead (above), as at max_connections. */
    if (f->n_conns >= f->fd_sessions && conf_fronts(&f->conf) > 1 && !f->full) {
        f->full = true;
        listeners_enable(f, false);
        log_event(LOG_LVL_NOTICE, "accept_paused", "worker=%u sessions=%u reason=fd_limit", f->worker, f->n_conns);
    }
    front_conn_accept(f, fd, sa, salen, ip, mode, mechs, proxy);
}

static void resume_accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct front *f = arg;
    if (!f->full && !f->draining)
        listeners_enable(f, true);
}

/* accept() failed. Out of descriptors (or memory), the pending connection stays
 * in the queue and the listener would fire again at once: pause accepting for
 * a moment instead of spinning, and say so once a second at most. */
static void accept_error_cb(struct evconnlistener *l, void *arg)
{
    struct front *f = arg;
    int e = EVUTIL_SOCKET_ERROR();
    static time_t last;
    static unsigned suppressed;
    time_t now = time(NULL);
    if (now != last) {
        log_event(LOG_LVL_ERR, "accept_failed", "errno=%d detail=\"%s\" suppressed=%u", e, strerror(e), suppressed);
        last = now;
        suppressed = 0;
    } else {
        suppressed++;
    }
    if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
        for (unsigned i = 0; i < f->n_listeners; i++)
            evconnlistener_disable(f->listeners[i]);
        if (f->accept_pause == NULL)
            f->accept_pause = evtimer_new(f->base, resume_accept_cb, f);
        struct timeval tv = {.tv_sec = 0, .tv_usec = 100000};
        if (f->accept_pause != NULL)
            evtimer_add(f->accept_pause, &tv);
    }
}

static void drain_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct front *f = arg;
    log_event(LOG_LVL_NOTICE, "drain_timeout", "worker=%u sessions=%u", f->worker, f->n_conns);
    event_base_loopexit(f->base, NULL);
}

/* Reload: stop accepting, let the sessions in progress finish. */
static void drain_cb(evutil_socket_t sig, short what, void *arg)
{
    struct front *f = arg;
    if (f->draining)
        return;
    f->draining = true;
    if (f->accept_pause != NULL)
        evtimer_del(f->accept_pause);
    for (unsigned i = 0; i < f->n_listeners; i++) {
        evconnlistener_free(f->listeners[i]);
        f->listeners[i] = NULL;
    }
    f->n_listeners = 0;
    log_event(LOG_LVL_INFO, "draining", "worker=%u sessions=%u", f->worker, f->n_conns);
    if (f->n_conns == 0) {
        event_base_loopexit(f->base, NULL);
        return;
    }
    uint64_t ms = f->conf.drain_timeout_ms;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    f->drain_timer = evtimer_new(f->base, drain_timeout_cb, f);
    if (f->drain_timer != NULL)
        evtimer_add(f->drain_timer, &tv);
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    struct front *f = arg;
    log_event(LOG_LVL_INFO, "stopping", "worker=%u sessions=%u", f->worker, f->n_conns);
    /* Sessions end without UPDATE: nothing is deleted. */
    exit(0);
}

int front_main(int argc, char **argv)
{
    static struct front f; /* large (per-source table, auth slots): not on the stack */
    const char *ready_arg = NULL;
    const char *conf_path = CONF_PATH_DEFAULT, *modes = "";
    uint32_t worker = 0;
    int opt;
    optind = 1;
    const char *metrics_arg = NULL;
    while ((opt = getopt(argc, argv, "x:c:w:l:m:r:")) != -1) {
        if (opt == 'c')
            conf_path = optarg;
        else if (opt == 'w' && strnum_u32_str(optarg, &worker) < 0)
            log_fatal("bad -w");
        else if (opt == 'l')
            modes = optarg;
        else if (opt == 'm')
            metrics_arg = optarg;
        else if (opt == 'r')
            ready_arg = optarg;
    }
    f.worker = worker;
    log_set_role("front");
    /* A RETR stream reserves ~128 KiB output chains, right at glibc's default mmap
     * threshold: every chain was an mmap, a page fault per page and a munmap (10% of
     * the front's bulk CPU in a profile). Serve them from the heap instead, and keep
     * a few MiB of freed heap rather than handing it back to the kernel each time. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    mallopt(M_TRIM_THRESHOLD, 8 << 20);
    struct error err = {{0}};
    if (conf_load(conf_path, &f.conf, &err) < 0)
        log_fatal("%s", err.msg);
    log_init("front", f.conf.log_syslog, f.conf.log_level);
    if (metrics_arg != NULL && metrics_attach(metrics_arg, true, &err) < 0)
        log_event(LOG_LVL_WARN, "metrics_unavailable", "detail=\"%s\"", err.msg);
    /* Read the keys while still root; the chroot below cannot see them. */
    if (tls_server_new(&f.conf, &f.tls, &err) < 0)
        log_fatal("%s", err.msg);
    struct privdrop_target t;
    if (privdrop_lookup(f.conf.mail_user, &t, &err) < 0)
        log_fatal("%s", err.msg);
    f.chrooted = geteuid() == 0;
    if (privdrop_apply(&t, f.chrooted ? f.conf.mail_root : NULL, &err) < 0)
        log_fatal("privilege drop: %s", err.msg);

    f.base = event_base_new();
    if (f.base == NULL)
        log_fatal("event_base_new failed");
    front_authc_init(&f, 3);
    size_t n = strlen(modes);
    if (n == 0 || n > CONF_MAX_LISTENERS * CONF_MAX_ADDRS)
        log_fatal("no listeners passed");
    for (size_t i = 0; i < n; i++) {
        f.listener_mode[i] = modes[i] == 's' ? CONF_TLS_STARTTLS : CONF_TLS_IMPLICIT;
        evutil_make_socket_nonblocking(4 + (int)i);
        f.listeners[i] = evconnlistener_new(f.base, accept_cb, &f, LEV_OPT_CLOSE_ON_FREE, -1, 4 + (int)i);
        if (f.listeners[i] == NULL)
            log_fatal("cannot use listening socket %zu", i);
        evconnlistener_set_error_cb(f.listeners[i], accept_error_cb);
    }
    f.n_listeners = (unsigned)n;
    /* The parent bound the sockets in config order (listener, then address);
     * each gets its listener's mechanisms. OAuth ones need an issuer. */
    size_t k = 0;
    for (unsigned i = 0; i < f.conf.n_listeners; i++)
        for (unsigned j = 0; j < f.conf.listeners[i].n_addrs && k < n; j++, k++) {
            uint32_t m = f.conf.listeners[i].mechs;
            if (f.conf.n_oauth == 0)
                m &= ~(uint32_t)(CONF_MECH_OAUTHBEARER | CONF_MECH_XOAUTH2);
            f.listener_mechs[k] = m;
            f.listener_conf[k] = &f.conf.listeners[i];
            if ((f.conf.listeners[i].tls == CONF_TLS_STARTTLS) != (f.listener_mode[k] == CONF_TLS_STARTTLS))
                log_fatal("listening sockets do not match the configuration (changed during a reload?)");
        }
    if (k != n)
        log_fatal("listening sockets do not match the configuration (changed during a reload?)");
    struct event *ev_drain = evsignal_new(f.base, SIGUSR2, drain_cb, &f);
    struct event *ev_term = evsignal_new(f.base, SIGTERM, stop_cb, &f);
    struct event *ev_int = evsignal_new(f.base, SIGINT, stop_cb, &f);
    if (ev_drain == NULL || ev_term == NULL || ev_int == NULL || evsignal_add(ev_drain, NULL) < 0 ||
        evsignal_add(ev_term, NULL) < 0 || evsignal_add(ev_int, NULL) < 0)
        log_fatal("cannot install signal handlers");
    signal(SIGPIPE, SIG_IGN);
    f.fd_sessions = fd_budget();
    log_event(LOG_LVL_INFO, "started", "worker=%u listeners=%zu user=%s chroot=%s fd_sessions=%u", f.worker, n,
              f.conf.mail_user, f.chrooted ? f.conf.mail_root : "-", f.fd_sessions);
    /* Last step of set-up: from here on the front can only serve. */
    if (sandbox_seccomp_front(&err) < 0)
        log_fatal("%s", err.msg);
    ipc_report_ready(ready_arg);
    event_base_dispatch(f.base);
    log_event(LOG_LVL_INFO, "exiting", "worker=%u", f.worker);
    return 0;
}
