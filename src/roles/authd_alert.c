#include "roles/authd_alert.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "auth/alert.h"
#include "common/file.h"
#include "common/log.h"
#include "common/metrics.h"

#define CA_BUNDLE_DEFAULT "/etc/ssl/certs/ca-certificates.crt"
#define CA_BUNDLE_MAX (8 << 20)
#define EXEC_SLOTS 64             /* the config's maximum of exec_max_running */
#define RETRY_DELAY_MAX_MS 300000 /* the doubling stops at 5 minutes */

struct hook {
    pid_t pid; /* 0 = free slot */
    struct event *timer;
    bool timed_out;
    enum alert_kind kind;
};

static struct {
    const struct conf *c;
    struct event_base *base;
    bool started, webhook, exec;
    char host[64];

    /* webhook: one delivery at a time, in order; the queue holds the waiting ones */
    CURLM *multi;
    struct event *curl_timer, *retry_timer;
    struct curl_slist *headers;
    struct curl_blob ca; /* CA bundle read before the privilege drop; data NULL = libcurl's default */
    struct alert_queue *wq;
    struct {
        bool busy;  /* an event is in flight or waiting for its retry */
        CURL *easy; /* non-NULL while in flight */
        struct alert_event ev;
        unsigned tries;
        char *body;
        char errbuf[CURL_ERROR_SIZE];
    } cur;

    /* exec hook */
    struct alert_queue *xq;
    struct hook hooks[EXEC_SLOTS];
    unsigned n_running;
    struct event *sigchld;
    int devnull;
} L = {.devnull = -1};

static void update_queued(void)
{
    uint64_t n =
        (L.wq ? alert_queue_len(L.wq) : 0) + (L.cur.busy ? 1 : 0) + (L.xq ? alert_queue_len(L.xq) : 0);
    metrics_alert_queued(n);
}

/* A flood can overflow a queue many times a second: log the first drop in each second. */
static void note_drop(const char *channel, enum metrics_counter m)
{
    static time_t last;
    static unsigned suppressed;
    metrics_inc(m);
    time_t now = time(NULL);
    if (now == last) {
        suppressed++;
        return;
    }
    log_event(LOG_LVL_WARN, "alert_dropped", "channel=%s reason=queue_full suppressed=%u", channel,
              suppressed);
    last = now;
    suppressed = 0;
}

static int read_file(const char *path, struct curl_blob *out, struct error *err)
{
    size_t n;
    char *buf = file_read_small(path, CA_BUNDLE_MAX, 0, "", &n, err);
    if (buf == NULL)
        return -1;
    out->data = buf;
    out->len = n;
    out->flags = CURL_BLOB_NOCOPY; /* kept for the life of the process */
    return 0;
}

void authd_alert_init(const struct conf *c)
{
    L.c = c;
    L.webhook = c->alert_webhook_url[0] != '\0';
    L.exec = c->alert_exec[0] != '\0';
    if (gethostname(L.host, sizeof(L.host)) < 0)
        snprintf(L.host, sizeof(L.host), "unknown");
    L.host[sizeof(L.host) - 1] = '\0';
    if (L.exec && (L.devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0)
        log_fatal("alerts: /dev/null: %s", strerror(errno));
    if (!L.webhook)
        return;
    /* Before any thread exists (curl_global_init is not thread-safe). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        log_fatal("alerts: curl_global_init failed");
    if (strncmp(c->alert_webhook_url, "https://", 8) != 0)
        return;
    /* Read while still root: the account authd drops to may not read a private CA. */
    struct error err = {{0}};
    if (c->alert_webhook_ca[0] != '\0') {
        if (read_file(c->alert_webhook_ca, &L.ca, &err) < 0)
            log_fatal("alerts: webhook_ca: %s", err.msg);
    } else if (read_file(CA_BUNDLE_DEFAULT, &L.ca, &err) < 0) {
        log_event(LOG_LVL_WARN, "alert_ca_missing", "detail=\"%s\" using=libcurl_default", err.msg);
    }
}

/* ---- webhook: libcurl multi driven by libevent ---- */

static void webhook_pump(void);

static void finish_current(void)
{
    free(L.cur.body);
    L.cur.body = NULL;
    L.cur.busy = false;
}

/* A try failed: schedule the next one, or give up. */
static void webhook_failed(CURLcode rc, long status)
{
    char q[CURL_ERROR_SIZE + 16];
    const char *why =
        rc == CURLE_OK ? "http_status" : (L.cur.errbuf[0] ? L.cur.errbuf : curl_easy_strerror(rc));
    log_quote(q, sizeof(q), why, strlen(why));
    /* 4xx (but for timeouts and rate limits) will not change by asking again. */
    bool permanent = rc == CURLE_OK && status >= 400 && status < 500 && status != 408 && status != 429;
    L.cur.tries++;
    if (!permanent && L.cur.tries <= L.c->alert_webhook_retries) {
        uint64_t ms = L.c->alert_webhook_retry_delay_ms;
        for (unsigned i = 1; i < L.cur.tries && ms < RETRY_DELAY_MAX_MS; i++)
            ms *= 2;
        if (ms > RETRY_DELAY_MAX_MS)
            ms = RETRY_DELAY_MAX_MS;
        log_event(LOG_LVL_NOTICE, "alert_webhook_retry", "alert=%s try=%u status=%ld error=%s retry_ms=%llu",
                  alert_kind_name(L.cur.ev.kind), L.cur.tries, status, q, (unsigned long long)ms);
        metrics_inc(METRIC_WEBHOOK_RETRIES);
        struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
        if (evtimer_add(L.retry_timer, &tv) == 0)
            return;
    }
    log_event(LOG_LVL_WARN, "alert_webhook_failed", "alert=%s tries=%u status=%ld error=%s",
              alert_kind_name(L.cur.ev.kind), L.cur.tries, status, q);
    metrics_inc(METRIC_WEBHOOK_FAILED);
    finish_current();
}

static size_t discard_body(char *p, size_t size, size_t n, void *arg)
{
    return size * n;
}

/* Starts the current event's next try. Returns 0, or -1 if it could not start. */
static int webhook_send(void)
{
    L.cur.errbuf[0] = '\0';
    CURL *e = curl_easy_init();
    if (e == NULL)
        return -1;
    const struct conf *c = L.c;
    int rc = (int)curl_easy_setopt(e, CURLOPT_URL, c->alert_webhook_url);
    rc |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    rc |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    rc |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, L.cur.body);
    rc |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(L.cur.body));
    rc |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, L.headers);
    rc |= curl_easy_setopt(e, CURLOPT_USERAGENT, "popsd");
    rc |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->alert_webhook_timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->alert_webhook_timeout_ms);
    rc |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    rc |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, L.cur.errbuf);
    if (L.ca.data != NULL)
        rc |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &L.ca);
    if (rc != 0 || curl_multi_add_handle(L.multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        return -1;
    }
    L.cur.easy = e;
    return 0;
}

/* Takes the next waiting event when nothing is being delivered. */
static void webhook_pump(void)
{
    struct alert_queue_item *it;
    while (!L.cur.busy && (it = alert_queue_head(L.wq)) != NULL) {
        L.cur.ev = it->ev;
        L.cur.tries = 0;
        alert_queue_pop(L.wq);
        L.cur.body = alert_json(&L.cur.ev, L.host);
        L.cur.busy = true;
        if (L.cur.body == NULL) {
            log_event(LOG_LVL_ERR, "alert_webhook_failed", "alert=%s error=out_of_memory",
                      alert_kind_name(L.cur.ev.kind));
            metrics_inc(METRIC_WEBHOOK_FAILED);
            finish_current();
        } else if (webhook_send() < 0) {
            webhook_failed(CURLE_FAILED_INIT, 0);
        }
    }
    update_queued();
}

static void retry_cb(evutil_socket_t fd, short what, void *arg)
{
    if (webhook_send() < 0)
        webhook_failed(CURLE_FAILED_INIT, 0);
    webhook_pump();
}

static void check_done(void)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(L.multi, &left)) != NULL) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *e = msg->easy_handle;
        CURLcode rc = msg->data.result;
        long status = 0;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(L.multi, e);
        curl_easy_cleanup(e);
        if (e != L.cur.easy)
            continue;
        L.cur.easy = NULL;
        if (rc == CURLE_OK && status >= 200 && status < 300) {
            log_event(LOG_LVL_DEBUG, "alert_webhook_sent", "alert=%s tries=%u status=%ld",
                      alert_kind_name(L.cur.ev.kind), L.cur.tries + 1, status);
            metrics_inc(METRIC_WEBHOOK_SENT);
            finish_current();
        } else {
            webhook_failed(rc, status);
        }
    }
    webhook_pump();
}

static void sock_event_cb(evutil_socket_t fd, short what, void *arg)
{
    int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    int running = 0;
    curl_multi_socket_action(L.multi, fd, flags, &running);
    check_done();
    if (running <= 0)
        evtimer_del(L.curl_timer);
}

/* CURLMOPT_SOCKETFUNCTION: one libevent event per socket libcurl watches. */
static int sock_cb(CURL *e, curl_socket_t s, int what, void *userp, void *socketp)
{
    struct event *ev = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (ev != NULL)
            event_free(ev);
        return 0;
    }
    short kind =
        (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) | ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    if (ev == NULL) {
        ev = event_new(L.base, s, kind, sock_event_cb, NULL);
        if (ev == NULL || curl_multi_assign(L.multi, s, ev) != CURLM_OK) {
            if (ev != NULL)
                event_free(ev);
            return -1;
        }
    } else {
        event_del(ev);
        event_assign(ev, L.base, s, kind, sock_event_cb, NULL);
    }
    return event_add(ev, NULL) == 0 ? 0 : -1;
}

static void curl_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    int running = 0;
    curl_multi_socket_action(L.multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done();
}

/* CURLMOPT_TIMERFUNCTION: libcurl asks to be called after timeout_ms (-1 = never). */
static int timer_fn(CURLM *m, long timeout_ms, void *userp)
{
    if (timeout_ms < 0)
        return evtimer_del(L.curl_timer) == 0 ? 0 : -1;
    struct timeval tv = {.tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000};
    return evtimer_add(L.curl_timer, &tv) == 0 ? 0 : -1;
}

/* ---- exec hook ---- */

static void exec_pump(void);

/* Between fork and exec in a threaded process: async-signal-safe calls only. */
static _Noreturn void hook_child(int in, char *const argv[], char *const envp[])
{
    setpgid(0, 0); /* its own group, so a timeout kills whatever it started too */
    if (dup2(in, 0) < 0 || dup2(L.devnull, 1) < 0)
        _exit(126);
    closefrom(3);
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    /* authd ignores these; an ignored disposition would survive exec. */
    sigaction(SIGPIPE, &dfl, NULL);
    sigaction(SIGINT, &dfl, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(argv[0], argv, envp);
    _exit(127);
}

static void hook_spawn(const struct alert_event *ev)
{
    char envbuf[4096];
    char *envp[ALERT_ENV_MAX];
    char *argv[] = {(char *)L.c->alert_exec, NULL};
    struct hook *h = NULL;
    for (unsigned i = 0; i < EXEC_SLOTS && h == NULL; i++)
        if (L.hooks[i].pid == 0)
            h = &L.hooks[i];
    char *body = alert_json(ev, L.host);
    int p[2] = {-1, -1};
    if (h == NULL || body == NULL || alert_env(ev, L.host, envbuf, sizeof(envbuf), envp) < 0 ||
        pipe2(p, O_CLOEXEC) < 0) {
        log_event(LOG_LVL_ERR, "alert_exec_failed", "alert=%s error=cannot_prepare errno=%d",
                  alert_kind_name(ev->kind), errno);
        metrics_inc(METRIC_EXEC_FAILED);
        free(body);
        return;
    }
    pid_t pid = fork();
    if (pid == 0)
        hook_child(p[0], argv, envp);
    int e = errno;
    close(p[0]);
    if (pid > 0) {
        /* The JSON is far smaller than a pipe's buffer: one write that never waits. */
        size_t n = strlen(body);
        fcntl(p[1], F_SETFL, O_NONBLOCK);
        ssize_t w = write(p[1], body, n);
        if (w != (ssize_t)n)
            log_event(LOG_LVL_NOTICE, "alert_exec_stdin", "alert=%s pid=%ld written=%zd",
                      alert_kind_name(ev->kind), (long)pid, w);
    }
    close(p[1]);
    free(body);
    if (pid < 0) {
        log_event(LOG_LVL_ERR, "alert_exec_failed", "alert=%s error=fork errno=%d", alert_kind_name(ev->kind),
                  e);
        metrics_inc(METRIC_EXEC_FAILED);
        return;
    }
    h->pid = pid;
    h->timed_out = false;
    h->kind = ev->kind;
    uint64_t ms = L.c->alert_exec_timeout_ms;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(h->timer, &tv);
    L.n_running++;
    log_event(LOG_LVL_DEBUG, "alert_exec_started", "alert=%s pid=%ld", alert_kind_name(ev->kind), (long)pid);
}

static void hook_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hook *h = arg;
    if (h->pid <= 0)
        return;
    h->timed_out = true;
    log_event(LOG_LVL_NOTICE, "alert_exec_timeout", "alert=%s pid=%ld", alert_kind_name(h->kind),
              (long)h->pid);
    kill(-h->pid, SIGKILL);
    kill(h->pid, SIGKILL);
    /* Reaped by sigchld_cb like any other exit. */
}

static void hook_reaped(struct hook *h, int status)
{
    evtimer_del(h->timer);
    bool ok = !h->timed_out && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (ok) {
        metrics_inc(METRIC_EXEC_RUN);
        log_event(LOG_LVL_DEBUG, "alert_exec_done", "alert=%s pid=%ld", alert_kind_name(h->kind),
                  (long)h->pid);
    } else {
        metrics_inc(METRIC_EXEC_FAILED);
        log_event(LOG_LVL_WARN, "alert_exec_failed", "alert=%s pid=%ld %s=%d timed_out=%s",
                  alert_kind_name(h->kind), (long)h->pid, WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status), h->timed_out ? "yes" : "no");
    }
    h->pid = 0;
    L.n_running--;
}

static void sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    /* Only our own hooks, by pid: never reap a child someone else waits for. */
    for (unsigned i = 0; i < EXEC_SLOTS; i++) {
        struct hook *h = &L.hooks[i];
        if (h->pid <= 0)
            continue;
        int status = 0;
        pid_t r = waitpid(h->pid, &status, WNOHANG);
        if (r == h->pid)
            hook_reaped(h, status);
        else if (r < 0 && errno == ECHILD)
            hook_reaped(h, 0x7f00); /* gone without a status: counted as failed */
    }
    exec_pump();
}

static void exec_pump(void)
{
    struct alert_queue_item *it;
    while (L.n_running < L.c->alert_exec_max_running && (it = alert_queue_head(L.xq)) != NULL) {
        struct alert_event ev = it->ev;
        alert_queue_pop(L.xq);
        hook_spawn(&ev);
    }
    update_queued();
}

/* ---- set-up and the hook from the defence engine ---- */

void authd_alert_start(struct event_base *base)
{
    const struct conf *c = L.c;
    if (c == NULL || (!L.webhook && !L.exec))
        return;
    L.base = base;
    if (L.webhook) {
        L.wq = alert_queue_new(c->alert_queue_size);
        L.multi = curl_multi_init();
        L.curl_timer = evtimer_new(base, curl_timer_cb, NULL);
        L.retry_timer = evtimer_new(base, retry_cb, NULL);
        L.headers = curl_slist_append(NULL, "Content-Type: application/json");
        if (L.headers != NULL)
            L.headers = curl_slist_append(L.headers, "Expect:");
        if (L.wq == NULL || L.multi == NULL || L.curl_timer == NULL || L.retry_timer == NULL ||
            L.headers == NULL || curl_multi_setopt(L.multi, CURLMOPT_SOCKETFUNCTION, sock_cb) != CURLM_OK ||
            curl_multi_setopt(L.multi, CURLMOPT_TIMERFUNCTION, timer_fn) != CURLM_OK)
            log_fatal("alerts: cannot set up the webhook client");
    }
    if (L.exec) {
        L.xq = alert_queue_new(c->alert_queue_size);
        L.sigchld = evsignal_new(base, SIGCHLD, sigchld_cb, NULL);
        if (L.xq == NULL || L.sigchld == NULL || evsignal_add(L.sigchld, NULL) < 0)
            log_fatal("alerts: cannot set up the exec hook");
        for (unsigned i = 0; i < EXEC_SLOTS; i++)
            if ((L.hooks[i].timer = evtimer_new(base, hook_timeout_cb, &L.hooks[i])) == NULL)
                log_fatal("alerts: evtimer_new failed");
    }
    L.started = true;
    log_event(LOG_LVL_INFO, "alerts_ready", "webhook=%s exec=%s queue_size=%u", L.webhook ? "yes" : "no",
              L.exec ? "yes" : "no", c->alert_queue_size);
}

void authd_alert(const struct guard_event *ev)
{
    struct alert_event a;
    if (!L.started || alert_from_guard(ev, (int64_t)time(NULL), &a) < 0 ||
        !(L.c->alert_events & alert_kind_bit(a.kind)))
        return;
    if (L.webhook) {
        if (alert_queue_push(L.wq, &a))
            note_drop("webhook", METRIC_WEBHOOK_DROPPED);
        webhook_pump();
    }
    if (L.exec) {
        if (alert_queue_push(L.xq, &a))
            note_drop("exec", METRIC_EXEC_DROPPED);
        exec_pump();
    }
}

void authd_alert_stop(void)
{
    for (unsigned i = 0; i < EXEC_SLOTS; i++)
        if (L.hooks[i].pid > 0) {
            kill(-L.hooks[i].pid, SIGKILL);
            kill(L.hooks[i].pid, SIGKILL);
        }
}
