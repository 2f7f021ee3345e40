/* The parent: root, never reads a client byte. It binds the listeners, starts
 * a generation of children (one authd and N fronts, re-executed from our own
 * binary on fixed fds), restarts a generation whose child died, and on SIGHUP
 * starts a new generation from the re-read config while the old one drains:
 * sessions in progress finish on the old fronts, new connections go to the new.
 * It also owns the shared metrics region (created once, passed to every child)
 * and starts the metrics process of each generation when [metrics] is set; a
 * metrics process that dies is restarted alone, never the generation. */
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "conf/conf.h"
#include "ipc/spawn.h"
#include "roles/roles.h"

#define MAX_FDS (CONF_MAX_LISTENERS * CONF_MAX_ADDRS)
#define MAX_WORKERS CONF_MAX_FRONTS

struct generation {
    unsigned id;
    pid_t authd;
    pid_t fronts[MAX_WORKERS];
    unsigned n_fronts;
    pid_t metrics; /* 0 = none */
    unsigned authd_slot, front_slots[MAX_WORKERS], metrics_slot; /* in the metrics region */
    struct timespec metrics_started;
    bool current; /* serves new connections (or will, once ready, if nothing else does) */
    bool pending; /* started beside a working generation: takes over only once ready */
    bool ready;
    int ready_rd; /* each child writes one byte here when it is set up */
    struct event *ready_ev;
    unsigned ready_needed, ready_got;
    struct timespec started;
    struct generation *next;
};

static struct {
    const char *conf_path, *exe;
    struct conf conf;
    int lfd[MAX_FDS];
    char lmode[MAX_FDS + 1];
    unsigned n_lfd;
    int ctl_fd; /* popsctl's unix socket, served by the current authd; -1 = none */
    char ctl_path[CONF_PATH_MAX];
    struct event_base *base;
    struct generation *gens;
    unsigned next_gen;
    bool stopping;
    unsigned restart_backoff_s;
    struct event *restart_timer, *kill_timer;
    int metrics_fd;                 /* the shared counters (memfd), -1 = none */
    int metrics_lfd;                /* the metrics endpoint's listening socket, -1 = off */
    char metrics_addr[128];         /* what metrics_lfd is bound to */
    unsigned metrics_backoff_s;
    struct event *metrics_timer;
} P;

static int bind_one(const char *spec, struct error *err)
{
    char host[128], port[16];
    const char *colon = strrchr(spec, ':');
    if (colon == NULL || colon == spec || strlen(colon + 1) >= sizeof(port))
        return error_set(err, "listener address '%s': expected HOST:PORT", spec);
    size_t hl = (size_t)(colon - spec);
    if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
        spec++;
        hl -= 2;
    }
    snprintf(host, sizeof(host), "%.*s", (int)hl, spec);
    snprintf(port, sizeof(port), "%s", colon + 1);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV};
    struct addrinfo *ai;
    int rc = getaddrinfo(strcmp(host, "*") == 0 ? NULL : host, port, &hints, &ai);
    if (rc != 0)
        return error_set(err, "listener address '%s': %s", spec, gai_strerror(rc));
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        (ai->ai_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0) ||
        bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return error_set_errno(err, e, "listen on %s", spec);
    }
    freeaddrinfo(ai);
    return fd;
}

static void close_listeners(int *fds, unsigned n)
{
    for (unsigned i = 0; i < n; i++)
        close(fds[i]);
}

/* Binds every address of every listener; all or nothing. */
static int bind_all(const struct conf *c, int *fds, char *modes, unsigned *n, struct error *err)
{
    *n = 0;
    for (unsigned i = 0; i < c->n_listeners; i++)
        for (unsigned j = 0; j < c->listeners[i].n_addrs; j++) {
            int fd = bind_one(c->listeners[i].addrs[j], err);
            if (fd < 0) {
                close_listeners(fds, *n);
                return -1;
            }
            modes[*n] = c->listeners[i].tls == CONF_TLS_STARTTLS ? 's' : 'i';
            fds[(*n)++] = fd;
        }
    modes[*n] = '\0';
    return 0;
}

/* The control socket is root's only (mode 600 in a 700 directory): popsctl runs as root. */
static int bind_control(const char *path, struct error *err)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path))
        return error_set(err, "control socket path too long: %s", path);
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    char dir[CONF_PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash != NULL && slash != dir) {
        *slash = '\0';
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
            return error_set_errno(err, errno, "mkdir %s", dir);
    }
    unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    mode_t old = umask(077);
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (rc < 0 || listen(fd, 16) < 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return error_set_errno(err, e, "control socket %s", path);
    }
    return fd;
}

static unsigned worker_count(void)
{
    return conf_fronts(&P.conf);
}

/* The metrics process: fd 3 = the endpoint's listening socket, fd 4 = the region. */
static void spawn_metrics(struct generation *g)
{
    if (P.metrics_lfd < 0 || P.metrics_fd < 0 || P.stopping)
        return;
    struct error err = {{0}};
    char mb[32];
    g->metrics_slot = metrics_slot_acquire();
    snprintf(mb, sizeof(mb), "4,%u", g->metrics_slot);
    int fds[2] = {P.metrics_lfd, P.metrics_fd};
    char *argv[] = {"popsd", "-x", "metrics", "-c", (char *)P.conf_path, "-m", mb, NULL};
    g->metrics = ipc_spawn(P.exe, argv, fds, 2, &err);
    clock_gettime(CLOCK_MONOTONIC, &g->metrics_started);
    if (g->metrics <= 0) {
        log_event(LOG_LVL_ERR, "metrics_spawn_failed", "detail=\"%s\"", err.msg);
        metrics_slot_release(g->metrics_slot);
        g->metrics = 0;
    }
}

static void metrics_restart_cb(evutil_socket_t fd, short what, void *arg)
{
    for (struct generation *g = P.gens; g != NULL; g = g->next)
        if (g->current && g->metrics == 0)
            spawn_metrics(g);
}

/* Only the endpoint is lost while it is down: the generation keeps serving. */
static void schedule_metrics_restart(struct generation *g)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (now.tv_sec - g->metrics_started.tv_sec < 5)
        P.metrics_backoff_s = P.metrics_backoff_s ? (P.metrics_backoff_s * 2 > 60 ? 60 : P.metrics_backoff_s * 2) : 1;
    else
        P.metrics_backoff_s = 1;
    struct timeval tv = {.tv_sec = P.metrics_backoff_s};
    event_add(P.metrics_timer, &tv);
}

static void drain_old(void);

static void ready_done(struct generation *g)
{
    if (g->ready_ev != NULL) {
        event_free(g->ready_ev);
        g->ready_ev = NULL;
        close(g->ready_rd);
        g->ready_rd = -1;
    }
}

static void ready_cb(evutil_socket_t fd, short what, void *arg)
{
    struct generation *g = arg;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0)
        return;
    if (n == 0) { /* every child closed its end: the ones that did not report have died */
        ready_done(g);
        return;
    }
    g->ready_got += (unsigned)n;
    if (g->ready || g->ready_got < g->ready_needed)
        return;
    g->ready = true;
    ready_done(g);
    if (g->pending) {
        for (struct generation *o = P.gens; o != NULL; o = o->next)
            o->current = false;
        g->pending = false;
        g->current = true;
    }
    log_event(LOG_LVL_INFO, "generation_ready", "gen=%u", g->id);
    /* systemd (Type=notify): started, or a reload finished. A no-op without NOTIFY_SOCKET. */
    sd_notifyf(0, "READY=1\nSTATUS=serving (generation %u)", g->id);
    if (g->current)
        drain_old();
}

static int start_generation(void)
{
    struct error err = {{0}};
    unsigned nw = worker_count();
    struct generation *g = calloc(1, sizeof(*g));
    if (g == NULL)
        return -1;
    int sp[MAX_WORKERS][2];
    for (unsigned i = 0; i < nw; i++) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp[i]) < 0) {
            log_event(LOG_LVL_ERR, "socketpair_failed", "errno=%d", errno);
            for (unsigned k = 0; k < i; k++) {
                close(sp[k][0]);
                close(sp[k][1]);
            }
            free(g);
            return -1;
        }
        int sz = 1 << 20;
        setsockopt(sp[i][0], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
        setsockopt(sp[i][1], SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
    }
    int rp[2];
    if (pipe2(rp, O_CLOEXEC | O_NONBLOCK) < 0) {
        log_event(LOG_LVL_ERR, "pipe_failed", "errno=%d", errno);
        for (unsigned k = 0; k < nw; k++) {
            close(sp[k][0]);
            close(sp[k][1]);
        }
        free(g);
        return -1;
    }
    g->id = ++P.next_gen;
    clock_gettime(CLOCK_MONOTONIC, &g->started);
    char nbuf[16], wbuf[16];
    snprintf(nbuf, sizeof(nbuf), "%u", nw);
    int afds[MAX_WORKERS + 3];
    for (unsigned i = 0; i < nw; i++)
        afds[i] = sp[i][0];
    int nafds = (int)nw;
    if (P.ctl_fd >= 0)
        afds[nafds++] = P.ctl_fd;
    /* The metrics region goes after the fixed fds; its number and the child's slot are in "-m FD,SLOT". */
    char amb[32];
    char *aargv[14] = {"popsd", "-x", "authd", "-c", (char *)P.conf_path, "-n", nbuf};
    int na = 7;
    char arb[16];
    snprintf(arb, sizeof(arb), "%d", 3 + nafds);
    afds[nafds++] = rp[1];
    aargv[na++] = "-r";
    aargv[na++] = arb;
    if (P.ctl_fd >= 0)
        aargv[na++] = "-k";
    if (P.metrics_fd >= 0) {
        g->authd_slot = metrics_slot_acquire();
        snprintf(amb, sizeof(amb), "%d,%u", 3 + nafds, g->authd_slot);
        afds[nafds++] = P.metrics_fd;
        aargv[na++] = "-m";
        aargv[na++] = amb;
    }
    aargv[na] = NULL;
    g->authd = ipc_spawn(P.exe, aargv, afds, nafds, &err);
    if (g->authd <= 0)
        metrics_slot_release(g->authd_slot);
    for (unsigned i = 0; i < nw; i++) {
        int ffds[3 + MAX_FDS];
        int nffds = (int)(1 + P.n_lfd);
        ffds[0] = sp[i][1];
        memcpy(ffds + 1, P.lfd, P.n_lfd * sizeof(int));
        snprintf(wbuf, sizeof(wbuf), "%u", i);
        char fmb[32], frb[16];
        char *fargv[14] = {"popsd", "-x", "front", "-c", (char *)P.conf_path, "-w", wbuf, "-l", P.lmode};
        int nf = 9;
        snprintf(frb, sizeof(frb), "%d", 3 + nffds);
        ffds[nffds++] = rp[1];
        fargv[nf++] = "-r";
        fargv[nf++] = frb;
        if (P.metrics_fd >= 0 && g->authd > 0) {
            g->front_slots[i] = metrics_slot_acquire();
            snprintf(fmb, sizeof(fmb), "%d,%u", 3 + nffds, g->front_slots[i]);
            ffds[nffds++] = P.metrics_fd;
            fargv[nf++] = "-m";
            fargv[nf++] = fmb;
        }
        g->fronts[i] = g->authd > 0 ? ipc_spawn(P.exe, fargv, ffds, nffds, &err) : -1;
        if (g->fronts[i] <= 0)
            metrics_slot_release(g->front_slots[i]);
        g->n_fronts++;
    }
    if (g->authd > 0)
        spawn_metrics(g);
    for (unsigned i = 0; i < nw; i++) {
        close(sp[i][0]);
        close(sp[i][1]);
    }
    close(rp[1]);
    g->ready_rd = rp[0];
    g->ready_needed = g->authd > 0 ? 1 : 0;
    for (unsigned i = 0; i < nw; i++)
        g->ready_needed += g->fronts[i] > 0;
    g->ready_ev = event_new(P.base, rp[0], EV_READ | EV_PERSIST, ready_cb, g);
    if (g->ready_ev == NULL || event_add(g->ready_ev, NULL) < 0)
        log_fatal("cannot watch a generation's readiness");
    /* Beside a working generation, the new one takes over only once all its
     * children are set up (ready_cb); until then the old one keeps serving. */
    bool serving = false;
    for (struct generation *o = P.gens; o != NULL; o = o->next)
        serving |= o->current;
    g->current = !serving;
    g->pending = serving;
    g->next = P.gens;
    P.gens = g;
    log_event(LOG_LVL_INFO, "generation_started", "gen=%u authd_pid=%ld fronts=%u", g->id, (long)g->authd, nw);
    return g->authd > 0 ? 0 : -1;
}

/* Old fronts stop accepting and finish their sessions; their authd exits after them. */
static void drain_old(void)
{
    for (struct generation *g = P.gens; g != NULL; g = g->next)
        if (!g->current) {
            if (g->authd > 0)
                kill(g->authd, SIGUSR2); /* hands popsctl over to the new authd */
            if (g->metrics > 0)
                kill(g->metrics, SIGUSR2); /* the new generation's serves the endpoint */
            for (unsigned i = 0; i < g->n_fronts; i++)
                if (g->fronts[i] > 0)
                    kill(g->fronts[i], SIGUSR2);
        }
}

static bool gen_alive(const struct generation *g)
{
    if (g->authd > 0 || g->metrics > 0)
        return true;
    for (unsigned i = 0; i < g->n_fronts; i++)
        if (g->fronts[i] > 0)
            return true;
    return false;
}

static void prune_generations(void)
{
    for (struct generation **pp = &P.gens; *pp != NULL;) {
        struct generation *g = *pp;
        if (!gen_alive(g)) {
            *pp = g->next;
            ready_done(g);
            free(g);
        } else {
            pp = &g->next;
        }
    }
}

static void restart_cb(evutil_socket_t fd, short what, void *arg)
{
    if (P.stopping)
        return;
    start_generation(); /* the old generation drains once this one is ready */
}

static void schedule_restart(struct generation *g)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    /* A generation that dies at once is probably misconfigured: back off. */
    if (now.tv_sec - g->started.tv_sec < 5)
        P.restart_backoff_s = P.restart_backoff_s ? (P.restart_backoff_s * 2 > 10 ? 10 : P.restart_backoff_s * 2) : 1;
    else
        P.restart_backoff_s = 0;
    g->current = false;
    struct timeval tv = {.tv_sec = P.restart_backoff_s};
    event_add(P.restart_timer, &tv);
}

static void on_child_exit(pid_t pid, int status)
{
    for (struct generation *g = P.gens; g != NULL; g = g->next) {
        const char *role = NULL;
        if (g->authd == pid) {
            g->authd = 0;
            role = "authd";
            metrics_slot_release(g->authd_slot);
        }
        for (unsigned i = 0; i < g->n_fronts && role == NULL; i++)
            if (g->fronts[i] == pid) {
                g->fronts[i] = 0;
                role = "front";
                metrics_slot_release(g->front_slots[i]); /* its sessions are gone */
            }
        if (role == NULL && g->metrics == pid) {
            g->metrics = 0;
            metrics_slot_release(g->metrics_slot);
            bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
            log_event(clean ? LOG_LVL_INFO : LOG_LVL_ERR, "child_exit", "gen=%u role=metrics pid=%ld %s=%d", g->id,
                      (long)pid, WIFSIGNALED(status) ? "signal" : "status",
                      WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
            if (g->current && !P.stopping)
                schedule_metrics_restart(g);
            return;
        }
        if (role == NULL)
            continue;
        bool clean = WIFEXITED(status) && WEXITSTATUS(status) == 0;
        log_event(clean ? LOG_LVL_INFO : LOG_LVL_ERR, "child_exit", "gen=%u role=%s pid=%ld %s=%d", g->id, role,
                  (long)pid, WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        if (g->pending && !P.stopping) {
            /* The new generation failed before it was up: keep the working one. */
            log_event(LOG_LVL_ERR, "generation_failed", "gen=%u detail=\"the previous generation keeps serving\"",
                      g->id);
            sd_notifyf(0, "READY=1\nSTATUS=reload failed (generation %u); the previous one keeps serving", g->id);
            g->pending = false;
            if (g->authd > 0)
                kill(g->authd, SIGTERM);
            if (g->metrics > 0)
                kill(g->metrics, SIGTERM);
            for (unsigned i = 0; i < g->n_fronts; i++)
                if (g->fronts[i] > 0)
                    kill(g->fronts[i], SIGTERM);
        } else if (g->current && !P.stopping) {
            schedule_restart(g);
        }
        return;
    }
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
        on_child_exit(pid, status);
    prune_generations();
    if (P.stopping && P.gens == NULL)
        event_base_loopexit(P.base, NULL);
}

static bool same_listeners(const struct conf *a, const struct conf *b)
{
    if (a->n_listeners != b->n_listeners)
        return false;
    for (unsigned i = 0; i < a->n_listeners; i++)
        if (memcmp(&a->listeners[i], &b->listeners[i], sizeof(a->listeners[i])) != 0)
            return false;
    return true;
}

static void sighup_cb(evutil_socket_t sig, short what, void *arg)
{
    static struct conf nc;
    struct error err = {{0}};
    if (conf_load(P.conf_path, &nc, &err) < 0) {
        log_event(LOG_LVL_ERR, "reload_failed", "detail=\"%s\"", err.msg);
        return;
    }
    if (!same_listeners(&P.conf, &nc)) {
        int fds[MAX_FDS];
        char modes[MAX_FDS + 1];
        unsigned n;
        if (bind_all(&nc, fds, modes, &n, &err) < 0) {
            log_event(LOG_LVL_ERR, "reload_failed", "detail=\"%s\"", err.msg);
            return;
        }
        close_listeners(P.lfd, P.n_lfd);
        memcpy(P.lfd, fds, sizeof(fds));
        memcpy(P.lmode, modes, sizeof(modes));
        P.n_lfd = n;
    }
    if (strcmp(nc.metrics_address, P.metrics_addr) != 0) {
        /* A new address that cannot be bound leaves the endpoint where it was (retried at the next reload). */
        int fd = -1;
        if (nc.metrics_address[0] != '\0' && (fd = bind_one(nc.metrics_address, &err)) < 0) {
            log_event(LOG_LVL_ERR, "metrics_bind_failed", "detail=\"%s\"", err.msg);
        } else {
            if (P.metrics_lfd >= 0)
                close(P.metrics_lfd);
            P.metrics_lfd = fd;
            snprintf(P.metrics_addr, sizeof(P.metrics_addr), "%s", nc.metrics_address);
        }
    }
    if (strcmp(nc.control_socket, P.ctl_path) != 0) {
        if (P.ctl_fd >= 0)
            close(P.ctl_fd);
        P.ctl_fd = -1;
        snprintf(P.ctl_path, sizeof(P.ctl_path), "%s", nc.control_socket);
        if (P.ctl_path[0] != '\0' && (P.ctl_fd = bind_control(P.ctl_path, &err)) < 0)
            log_event(LOG_LVL_ERR, "control_socket_failed", "detail=\"%s\"", err.msg);
    }
    P.conf = nc;
    log_init("parent", P.conf.log_syslog, P.conf.log_level);
    log_event(LOG_LVL_INFO, "reloading", "config=%s", P.conf_path);
    sd_notify(0, "RELOADING=1\nSTATUS=reloading");
    start_generation(); /* the old generation drains once this one is ready */
}

static void kill_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    for (struct generation *g = P.gens; g != NULL; g = g->next) {
        if (g->metrics > 0)
            kill(g->metrics, SIGKILL);
        if (g->authd > 0)
            kill(g->authd, SIGKILL);
        for (unsigned i = 0; i < g->n_fronts; i++)
            if (g->fronts[i] > 0)
                kill(g->fronts[i], SIGKILL);
    }
}

static void sigterm_cb(evutil_socket_t sig, short what, void *arg)
{
    if (P.stopping)
        return;
    P.stopping = true;
    log_event(LOG_LVL_INFO, "stopping", "signal=%d", (int)sig);
    sd_notify(0, "STOPPING=1");
    for (struct generation *g = P.gens; g != NULL; g = g->next) {
        for (unsigned i = 0; i < g->n_fronts; i++)
            if (g->fronts[i] > 0)
                kill(g->fronts[i], SIGTERM);
        if (g->authd > 0)
            kill(g->authd, SIGTERM);
        if (g->metrics > 0)
            kill(g->metrics, SIGTERM);
    }
    if (P.gens == NULL) {
        event_base_loopexit(P.base, NULL);
        return;
    }
    struct timeval tv = {.tv_sec = 5};
    event_add(P.kill_timer, &tv);
}

/* Each idle session holds a few descriptors (socket, Maildir, lock): lift the
 * soft limit to the hard one so the connection caps, not EMFILE, decide. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
            log_event(LOG_LVL_WARN, "fd_limit", "detail=\"cannot raise RLIMIT_NOFILE\"");
    }
}

int parent_main(const char *conf_path, const char *exe)
{
    struct error err = {{0}};
    raise_fd_limit();
    P.conf_path = conf_path;
    P.exe = exe;
    if (conf_load(conf_path, &P.conf, &err) < 0)
        log_fatal("%s", err.msg);
    log_init("parent", P.conf.log_syslog, P.conf.log_level);
    if (geteuid() != 0)
        log_event(LOG_LVL_WARN, "not_root", "detail=\"running unprivileged: no chroot and no privilege separation by "
                                            "user; for development only\"");
    if (bind_all(&P.conf, P.lfd, P.lmode, &P.n_lfd, &err) < 0)
        log_fatal("%s", err.msg);
    P.ctl_fd = -1;
    snprintf(P.ctl_path, sizeof(P.ctl_path), "%s", P.conf.control_socket);
    if (P.ctl_path[0] != '\0' && (P.ctl_fd = bind_control(P.ctl_path, &err)) < 0)
        log_fatal("%s", err.msg);
    /* Counters are kept whether or not the endpoint is on (it can be turned on by a reload). */
    if ((P.metrics_fd = metrics_create(&err)) < 0)
        log_event(LOG_LVL_WARN, "metrics_unavailable", "detail=\"%s\"", err.msg);
    P.metrics_lfd = -1;
    snprintf(P.metrics_addr, sizeof(P.metrics_addr), "%s", P.conf.metrics_address);
    if (P.metrics_addr[0] != '\0' && (P.metrics_lfd = bind_one(P.metrics_addr, &err)) < 0)
        log_fatal("metrics: %s", err.msg);
    P.base = event_base_new();
    if (P.base == NULL)
        log_fatal("event_base_new failed");
    struct event *evs[] = {
        evsignal_new(P.base, SIGCHLD, sigchld_cb, NULL), evsignal_new(P.base, SIGHUP, sighup_cb, NULL),
        evsignal_new(P.base, SIGTERM, sigterm_cb, NULL), evsignal_new(P.base, SIGINT, sigterm_cb, NULL),
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        if (evs[i] == NULL || evsignal_add(evs[i], NULL) < 0)
            log_fatal("cannot install signal handlers");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGUSR2, SIG_IGN);
    P.restart_timer = evtimer_new(P.base, restart_cb, NULL);
    P.kill_timer = evtimer_new(P.base, kill_timer_cb, NULL);
    P.metrics_timer = evtimer_new(P.base, metrics_restart_cb, NULL);
    if (P.restart_timer == NULL || P.kill_timer == NULL || P.metrics_timer == NULL)
        log_fatal("evtimer_new failed");
    log_event(LOG_LVL_INFO, "started", "config=%s listeners=%u workers=%u", conf_path, P.n_lfd, worker_count());
    if (start_generation() < 0)
        log_fatal("cannot start the children");
    event_base_dispatch(P.base);
    log_event(LOG_LVL_INFO, "stopped", "pid=%ld", (long)getpid());
    return 0;
}
