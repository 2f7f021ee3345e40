/* The authd role: owns the user database and decides every login. Started as
 *   popsd -x authd -c CONF -n NFRONTS [-k] [-m FD,SLOT]
 * with fds 3 .. 3+NFRONTS-1 = one channel per front, then (-k) popsctl's
 * listening socket, then (-m) the shared metrics region. Password hashing runs on a
 * small thread pool so the event loop never blocks; each worker has its own
 * database handle. Unknown users are verified against a dummy hash of the same
 * cost, so they take as long as known ones. */
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "auth/credcache.h"
#include "auth/oauth.h"
#include "auth/pwscheme.h"
#include "auth/userdb.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/secret.h"
#include "common/strnum.h"
#include "conf/conf.h"
#include "ipc/auth_msg.h"
#include "pop3/session.h"
#include "roles/authd_alert.h"
#include "roles/authd_defence.h"
#include "roles/authd_int.h"
#include "roles/authd_metrics.h"
#include "ipc/spawn.h"
#include "roles/roles.h"
#include "sandbox/privdrop.h"
#include "sandbox/seccomp.h"

#define AUTHD_MAX_FRONTS 256
#define AUTHD_MAX_QUEUE 10000
#define AUTHD_MAX_THREADS 64
#define LOGIN_DELAY_SLOTS 65536

struct jobq {
    struct job *head, *tail;
    unsigned len;
};

static struct {
    struct conf conf;
    struct event_base *base;
    int front_fd[AUTHD_MAX_FRONTS];
    struct event *front_ev[AUTHD_MAX_FRONTS];
    unsigned n_fronts, n_open;
    struct userdb *db[AUTHD_MAX_THREADS];
    struct authd_ctx x;
    pthread_mutex_t mu;
    pthread_cond_t cv, cv_hash;
    struct jobq todo, todo_hash, done; /* login threads' queue, hashing threads' queue, answers */
    int done_pipe[2];
    uint64_t login_delay_key;
    struct guard *guard;
    struct {
        uint64_t h;
        time_t at;
    } last_login[LOGIN_DELAY_SLOTS];
} A = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .cv_hash = PTHREAD_COND_INITIALIZER};

static void q_push(struct jobq *q, struct job *j)
{
    j->next = NULL;
    if (q->tail)
        q->tail->next = j;
    else
        q->head = j;
    q->tail = j;
    q->len++;
}

static struct job *q_pop(struct jobq *q)
{
    struct job *j = q->head;
    if (j != NULL) {
        q->head = j->next;
        if (q->head == NULL)
            q->tail = NULL;
        q->len--;
    }
    return j;
}

static struct job *wait_job(struct jobq *q, pthread_cond_t *cv)
{
    pthread_mutex_lock(&A.mu);
    struct job *j;
    while ((j = q_pop(q)) == NULL)
        pthread_cond_wait(cv, &A.mu);
    pthread_mutex_unlock(&A.mu);
    return j;
}

static void job_done(struct job *j)
{
    secret_wipe(j->req.secret, sizeof(j->req.secret));
    pthread_mutex_lock(&A.mu);
    q_push(&A.done, j);
    pthread_mutex_unlock(&A.mu);
    char b = 1;
    ssize_t w = write(A.done_pipe[1], &b, 1);
    (void)w; /* a full pipe already means "wake up" */
}

/* Login threads: every job first (see AUTHD_LOGIN_THREADS). */
static void *login_thread(void *arg)
{
    struct userdb *db = arg;
    for (;;) {
        struct job *j = wait_job(&A.todo, &A.cv);
        authd_verify(db, &A.x, j);
        if (!j->needs_hash) {
            job_done(j);
            continue;
        }
        pthread_mutex_lock(&A.mu);
        q_push(&A.todo_hash, j);
        pthread_cond_signal(&A.cv_hash);
        pthread_mutex_unlock(&A.mu);
    }
    return NULL;
}

/* Hashing threads: full password verifications, below the loops' priority. */
static void *hash_thread(void *arg)
{
    struct userdb *db = arg;
    if (setpriority(PRIO_PROCESS, (id_t)gettid(), A.x.base_nice + AUTHD_HASH_NICE) < 0)
        log_event(LOG_LVL_WARN, "hash_priority", "detail=\"cannot lower a hashing thread's priority: %s\"",
                  strerror(errno));
    for (;;) {
        struct job *j = wait_job(&A.todo_hash, &A.cv_hash);
        j->on_hash_thread = true;
        authd_verify(db, &A.x, j);
        job_done(j);
    }
    return NULL;
}

/* RFC 2449 LOGIN-DELAY: a bounded table of last logins keyed by a keyed hash of
 * the name; a collision can only let a login through early, never block one. */
static bool login_too_soon(const char *user)
{
    if (A.conf.login_delay_s == 0)
        return false;
    uint64_t h = A.login_delay_key;
    for (const char *p = user; *p; p++)
        h = (h ^ (unsigned char)*p) * 0x100000001b3ull;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    unsigned slot = (unsigned)(h % LOGIN_DELAY_SLOTS);
    if (A.last_login[slot].h == h && now.tv_sec - A.last_login[slot].at < (time_t)A.conf.login_delay_s)
        return true;
    A.last_login[slot].h = h;
    A.last_login[slot].at = now.tv_sec;
    return false;
}

/* Feeds the outcome to the defence engine, which may lengthen the delay. */
static void defend(struct job *j)
{
    int64_t now = authd_now();
    const char *user = j->req.authcid;
    switch (j->res.status) {
    case POP3_AUTH_CONTINUE:
        break; /* nothing decided yet */
    case POP3_AUTH_FAIL:
    case POP3_AUTH_POLICY:
        if (!j->have_fp)
            secret_random(&j->fp, sizeof(j->fp)); /* no secret to fingerprint: counts as a distinct guess */
        j->res.delay_ms = authd_jitter(guard_failure(A.guard, now, &j->src, user, &j->fp));
        authd_defence_record(user, j->src.text, j->req.mech,
                             j->res.status == POP3_AUTH_POLICY ? "policy_refused" : "failure");
        break;
    case POP3_AUTH_OK:
        guard_success(A.guard, now, &j->src, j->res.user);
        authd_defence_record(user, j->src.text, j->req.mech, "success");
        break;
    case POP3_AUTH_DISABLED:
        authd_defence_record(user, j->src.text, j->req.mech, "pop3_disabled");
        break;
    default:
        authd_defence_record(user, j->src.text, j->req.mech, "tempfail");
        break;
    }
}

static void send_result(struct job *j)
{
    if (!j->refused)
        defend(j);
    if (j->conv != NULL)
        authd_scram_release(j->conv, j->res.status == POP3_AUTH_CONTINUE);
    if (j->res.status == POP3_AUTH_OK && login_too_soon(j->res.user)) {
        j->res.status = POP3_AUTH_LOGIN_DELAY;
        j->res.user[0] = j->res.mail[0] = '\0';
    }
    if (j->res.status != POP3_AUTH_CONTINUE)
        authd_metrics_result(j->refused, j->res.status, j->req.mech, j->res.delay_ms);
    int fd = A.front_fd[j->front];
    if (fd >= 0) {
        struct ipc_writer w;
        ipc_auth_res_write(&w, &j->res);
        if (ipc_send(fd, &w) < 0)
            log_event(LOG_LVL_ERR, "front_send_failed", "front=%d errno=%d", j->front, errno);
    }
    secret_wipe(j, sizeof(*j));
    free(j);
}

static void done_cb(evutil_socket_t fd, short what, void *arg)
{
    char buf[256];
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    for (;;) {
        pthread_mutex_lock(&A.mu);
        struct job *j = q_pop(&A.done);
        pthread_mutex_unlock(&A.mu);
        if (j == NULL)
            return;
        send_result(j);
    }
}

static void front_closed(int i)
{
    event_free(A.front_ev[i]);
    A.front_ev[i] = NULL;
    close(A.front_fd[i]);
    A.front_fd[i] = -1;
    authd_scram_front_gone(i);
    if (--A.n_open == 0) {
        log_event(LOG_LVL_INFO, "exiting", "reason=all_fronts_gone");
        authd_alert_stop();
        authd_defence_flush();
        event_base_loopexit(A.base, NULL);
    }
}

static void front_cb(evutil_socket_t fd, short what, void *arg)
{
    int i = (int)(intptr_t)arg;
    uint8_t buf[IPC_MSG_MAX];
    for (int budget = 0; budget < 64; budget++) {
        long n = ipc_recv(fd, buf);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            front_closed(i);
            return;
        }
        struct ipc_reader r;
        struct job *j = calloc(1, sizeof(*j));
        if (j == NULL) {
            secret_wipe(buf, sizeof(buf));
            return;
        }
        j->front = i;
        int type = ipc_r_init(&r, buf, (size_t)n);
        int ok = type == IPC_AUTH_REQ ? ipc_auth_req_read(&r, &j->req) : -1;
        secret_wipe(buf, (size_t)n);
        if (ok < 0) {
            /* A front that sends garbage is compromised or broken: stop serving it. */
            log_event(LOG_LVL_ERR, "front_protocol_error", "front=%d type=%d", i, type);
            free(j);
            front_closed(i);
            return;
        }
        if (guard_source_parse(j->req.remote, &j->src) < 0) {
            log_event(LOG_LVL_ERR, "front_protocol_error", "front=%d detail=bad_remote_address", i);
            secret_wipe(j, sizeof(*j));
            free(j);
            front_closed(i);
            return;
        }
        authd_fold_name(A.conf.lowercase_names, j->req.authcid);
        authd_fold_name(A.conf.lowercase_names, j->req.authzid);
        if (strncmp(j->req.mech, "SCRAM-", 6) == 0) {
            int rc = j->req.step == 0 ? authd_scram_open(j, authd_now(), A.conf.lowercase_names)
                                      : authd_scram_resume(j);
            if (rc < 0) {
                /* Malformed, out of order or expired: a failure like any other. */
                j->res.id = j->req.id;
                authd_fail(&A.x, &j->res, POP3_AUTH_FAIL);
                secret_wipe(j->req.secret, sizeof(j->req.secret));
                send_result(j);
                continue;
            }
        }
        uint32_t delay = 0;
        enum guard_decision d = j->req.step == 0 ? guard_check(A.guard, authd_now(), &j->src, j->req.authcid, &delay)
                                                 : GUARD_PROCEED; /* checked when the exchange began */
        if (d != GUARD_PROCEED) {
            /* Answered like any failure, after the longest delay, without spending a hash on it. */
            char q[300];
            const char *why = d == GUARD_REFUSE_BANNED ? "banned" : "account_locked";
            log_event(LOG_LVL_NOTICE, "auth_refused", "sid=%s user=%s remote=%s reason=%s", j->req.sid,
                      log_quote(q, sizeof(q), j->req.authcid, strlen(j->req.authcid)), j->src.text, why);
            authd_defence_record(j->req.authcid, j->src.text, j->req.mech, why);
            j->refused = true;
            j->res.id = j->req.id;
            j->res.status = POP3_AUTH_FAIL;
            j->res.delay_ms = authd_jitter(delay);
            secret_wipe(j->req.secret, sizeof(j->req.secret));
            send_result(j);
            continue;
        }
        pthread_mutex_lock(&A.mu);
        bool full = A.todo.len + A.todo_hash.len >= AUTHD_MAX_QUEUE;
        if (!full) {
            q_push(&A.todo, j);
            pthread_cond_signal(&A.cv);
        }
        pthread_mutex_unlock(&A.mu);
        if (full) {
            j->res.id = j->req.id;
            j->res.status = POP3_AUTH_TEMPFAIL;
            log_event(LOG_LVL_WARN, "auth_queue_full", "sid=%s", j->req.sid);
            send_result(j);
        }
    }
}

static void stop_cb(evutil_socket_t sig, short what, void *arg)
{
    authd_alert_stop();
    authd_defence_flush();
    exit(0);
}

static void drain_cb(evutil_socket_t sig, short what, void *arg)
{
    /* A newer authd serves popsctl now; this one only finishes its fronts' logins. */
    authd_defence_control_stop();
    authd_metrics_retire();
}

int authd_main(int argc, char **argv)
{
    const char *ready_arg = NULL;
    const char *conf_path = CONF_PATH_DEFAULT;
    uint32_t nfronts = 0;
    bool control = false;
    int opt;
    optind = 1;
    const char *metrics_arg = NULL;
    while ((opt = getopt(argc, argv, "x:c:n:km:r:")) != -1) {
        if (opt == 'k')
            control = true;
        else if (opt == 'c')
            conf_path = optarg;
        else if (opt == 'n' && (strnum_u32_str(optarg, &nfronts) < 0 || nfronts == 0 || nfronts > AUTHD_MAX_FRONTS))
            log_fatal("bad -n");
        else if (opt == 'm')
            metrics_arg = optarg;
        else if (opt == 'r')
            ready_arg = optarg;
    }
    log_set_role("authd");
    struct error err = {{0}};
    if (conf_load(conf_path, &A.conf, &err) < 0)
        log_fatal("%s", err.msg);
    log_init("authd", A.conf.log_syslog, A.conf.log_level);
    if (metrics_arg != NULL && metrics_attach(metrics_arg, true, &err) < 0)
        log_event(LOG_LVL_WARN, "metrics_unavailable", "detail=\"%s\"", err.msg);
    /* db[i]: the login threads' handles first, then the hashing threads' ([userdb] threads, >= 1). */
    unsigned nhash = A.conf.auth_threads;
    if (nhash > AUTHD_MAX_THREADS - AUTHD_LOGIN_THREADS)
        nhash = AUTHD_MAX_THREADS - AUTHD_LOGIN_THREADS;
    unsigned nthreads = AUTHD_LOGIN_THREADS + nhash;
    enum userdb_driver drv = A.conf.userdb_driver == CONF_USERDB_SQLITE ? USERDB_SQLITE : USERDB_PASSWD_FILE;
    /* Open the database while still privileged, one handle per worker. */
    for (unsigned i = 0; i < nthreads; i++)
        if (userdb_open(drv, A.conf.userdb_path, &A.db[i], &err) < 0)
            log_fatal("user database: %s", err.msg);
    authd_alert_init(&A.conf);
    /* Token issuers' key sets and client secrets are read while still privileged. */
    if (A.conf.n_oauth > 0 && oauth_new(&A.conf, &A.x.oauth, &err) < 0)
        log_fatal("oauth: %s", err.msg);
    errno = 0;
    int base_nice = getpriority(PRIO_PROCESS, 0); /* hashing threads run AUTHD_HASH_NICE below it */
    A.x.base_nice = errno == 0 ? base_nice : 0;
    struct privdrop_target t;
    if (privdrop_lookup(A.conf.auth_user, &t, &err) < 0)
        log_fatal("%s", err.msg);
    if (privdrop_apply(&t, NULL, &err) < 0)
        log_fatal("privilege drop: %s", err.msg);
    if (sandbox_seccomp_authd(A.conf.alert_exec[0] != '\0', &err) < 0)
        log_fatal("%s", err.msg);

    A.x.conf = &A.conf;
    A.x.argon2 = pwscheme_argon2_default;
    A.x.argon2.m_cost_kib = A.conf.argon2_m_kib;
    A.x.argon2.t_cost = A.conf.argon2_t;
    secret_random(A.x.scram_secret, sizeof(A.x.scram_secret));
    /* Unknown users are verified against a dummy that costs what a real user's
     * hash costs: same scheme and cost as a sample user, else the Argon2 default. */
    static char dummy_like[PWSCHEME_HASH_MAX];
    char sample[PWSCHEME_HASH_MAX];
    int have = userdb_sample_hash(A.db[0], sample, sizeof(sample), &err);
    if (have == 1 && pwscheme_dummy_like(sample, dummy_like, sizeof(dummy_like)) == 0)
        A.x.dummy = dummy_like;
    else
        A.x.dummy = pwscheme_dummy_hash(&A.x.argon2);
    secret_wipe(sample, sizeof(sample));
    if (A.x.dummy == NULL)
        log_fatal("cannot make the dummy hash");
    char scheme[40] = "ARGON2ID";
    if (A.x.dummy[0] == '{')
        snprintf(scheme, sizeof(scheme), "%.*s", (int)strcspn(A.x.dummy + 1, "}"), A.x.dummy + 1);
    secret_random(&A.login_delay_key, sizeof(A.login_delay_key));

    if (pipe2(A.done_pipe, O_NONBLOCK | O_CLOEXEC) < 0)
        log_fatal("pipe2: %s", strerror(errno));
    A.base = event_base_new();
    if (A.base == NULL)
        log_fatal("event_base_new failed");
    struct event *ev_done = event_new(A.base, A.done_pipe[0], EV_READ | EV_PERSIST, done_cb, NULL);
    if (ev_done == NULL || event_add(ev_done, NULL) < 0)
        log_fatal("event_new failed");
    authd_alert_start(A.base);
    A.guard = authd_defence_init(&A.conf, A.base);
    A.x.guard = A.guard;
    A.x.cache = credcache_new(A.conf.cache_size, (uint32_t)(A.conf.cache_ttl_ms / 1000));
    if (A.x.cache == NULL)
        log_fatal("cannot create the credential cache");
    if (control)
        authd_defence_control(3 + (int)nfronts);
    A.n_fronts = A.n_open = nfronts;
    for (unsigned i = 0; i < nfronts; i++) {
        A.front_fd[i] = 3 + (int)i;
        A.front_ev[i] = event_new(A.base, A.front_fd[i], EV_READ | EV_PERSIST, front_cb, (void *)(intptr_t)i);
        if (A.front_ev[i] == NULL || event_add(A.front_ev[i], NULL) < 0)
            log_fatal("event_new failed");
    }
    for (unsigned i = 0; i < nthreads; i++) {
        pthread_t th;
        if (pthread_create(&th, NULL, i < AUTHD_LOGIN_THREADS ? login_thread : hash_thread, A.db[i]) != 0)
            log_fatal("pthread_create failed");
        pthread_detach(th);
    }
    struct event *ev_term = evsignal_new(A.base, SIGTERM, stop_cb, NULL);
    struct event *ev_drain = evsignal_new(A.base, SIGUSR2, drain_cb, NULL);
    if (ev_term == NULL || evsignal_add(ev_term, NULL) < 0 || ev_drain == NULL || evsignal_add(ev_drain, NULL) < 0)
        log_fatal("signal set-up failed");
    signal(SIGPIPE, SIG_IGN);
    signal(SIGINT, SIG_IGN); /* the parent decides when we stop */
    log_event(LOG_LVL_INFO, "started", "fronts=%u threads=%u hash_threads=%u user=%s dummy_scheme=%s", nfronts,
              AUTHD_LOGIN_THREADS, nhash, A.conf.auth_user, scheme);
    ipc_report_ready(ready_arg);
    event_base_dispatch(A.base);
    return 0;
}
