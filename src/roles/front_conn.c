/* One client connection in the front: bytes in and out (plain or TLS, with the
 * STLS upgrade), line framing, idle timeouts, message streaming with
 * backpressure, and the pop3_ops the session state machine talks through. */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "common/secret.h"
#include "pop3/frame.h"
#include "roles/front.h"
#include "store/dotstuff.h"

#define STREAM_CHUNK 65536
#define STREAM_HIGH (512 * 1024) /* stop reading the file above this much queued output */
#define STREAM_LOW (128 * 1024)  /* refill when the client has taken the output down to this */
#define INPUT_HIGH (16 * 1024)   /* stop reading the socket while this much input waits */

struct front_conn {
    struct front *f;
    int fd;
    struct bufferevent *bev;
    bool bev_owns_fd;
    enum conf_tls_mode mode;
    uint32_t mechs;
    struct sockaddr_storage sa;
    char remote[INET6_ADDRSTRLEN];
    char sid[24];
    struct pop3_session *s;
    struct pop3_framer framer;
    struct event *timer;
    bool handshaking;
    bool stls_pending;
    bool closing;
    const char *close_reason;
    bool logged_in;
    int msg_fd;
    bool streaming;
    struct dotstuff ds;
    uint64_t bytes_in, bytes_out;
    struct timespec started;
    uint32_t auth_id;
    uint32_t auth_conv; /* authd's conversation for a multi-step exchange */
};

static void conn_readcb(struct bufferevent *bev, void *arg);
static void conn_writecb(struct bufferevent *bev, void *arg);
static void conn_eventcb(struct bufferevent *bev, short what, void *arg);

static uint64_t elapsed_ms(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)(now.tv_sec - t0->tv_sec) * 1000 + (uint64_t)((now.tv_nsec - t0->tv_nsec) / 1000000);
}

static void conn_free(struct front_conn *c)
{
    const char *user = c->s ? pop3_session_user(c->s) : NULL;
    char q[300];
    log_event(LOG_LVL_INFO, "disconnect", "sid=%s remote=%s user=%s reason=%s bytes_in=%llu bytes_out=%llu ms=%llu",
              c->sid, c->remote, user ? log_quote(q, sizeof(q), user, strlen(user)) : "-",
              c->close_reason ? c->close_reason : "unknown", (unsigned long long)c->bytes_in,
              (unsigned long long)c->bytes_out, (unsigned long long)elapsed_ms(&c->started));
    front_authc_cancel(c->f, c);
    pop3_session_free(&c->s); /* closes the mailbox without applying deletions */
    if (c->msg_fd >= 0)
        close(c->msg_fd);
    if (c->timer != NULL)
        event_free(c->timer);
    if (c->bev != NULL) {
        if (c->bev_owns_fd && !c->handshaking)
            tls_bev_shutdown(c->bev);
        bufferevent_free(c->bev);
    }
    if (!c->bev_owns_fd)
        close(c->fd);
    front_source_release(c->f, (const struct sockaddr *)&c->sa);
    metrics_gauge_add(METRIC_SESSIONS, -1);
    front_conn_gone(c->f);
    free(c);
}

static void set_close(struct front_conn *c, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->close_reason = reason;
    c->streaming = false;
    if (c->bev != NULL) {
        bufferevent_disable(c->bev, EV_READ);
        bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
        bufferevent_enable(c->bev, EV_WRITE);
    }
}

/* Frees the connection once it is closing and its output has drained. Must be
 * the last thing a callback does with c. */
static void check_done(struct front_conn *c)
{
    if (c->closing && (c->bev == NULL || evbuffer_get_length(bufferevent_get_output(c->bev)) == 0))
        conn_free(c);
}

static void set_timeouts(struct front_conn *c)
{
    uint64_t ms = c->logged_in ? c->f->conf.timeout_idle_ms : c->f->conf.timeout_login_ms;
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    bufferevent_set_timeouts(c->bev, &tv, &tv);
}

static void process_input(struct front_conn *c)
{
    char line[POP3_FRAME_MAX + 1];
    while (!c->closing && c->s != NULL && pop3_session_wants_input(c->s)) {
        struct evbuffer *in = bufferevent_get_input(c->bev);
        size_t avail = evbuffer_get_length(in);
        if (avail == 0)
            break;
        size_t look = avail < POP3_FRAME_MAX + 2 ? avail : POP3_FRAME_MAX + 2;
        char *data = (char *)evbuffer_pullup(in, (ssize_t)look);
        if (data == NULL) {
            set_close(c, "out_of_memory");
            break;
        }
        size_t linelen, consumed;
        enum pop3_frame_status st =
            pop3_frame_next(&c->framer, data, look, pop3_session_line_max(c->s), &linelen, &consumed);
        if (st == POP3_FRAME_LINE)
            memcpy(line, data, linelen);
        evbuffer_drain(in, consumed);
        c->bytes_in += consumed;
        if (st == POP3_FRAME_LINE) {
            pop3_session_line(c->s, line, linelen, evbuffer_get_length(in) > 0);
            secret_wipe(line, linelen);
        } else if (st == POP3_FRAME_TOO_LONG) {
            pop3_session_line_too_long(c->s);
        } else if (consumed == 0) {
            break; /* a partial line: wait for more */
        }
    }
}

/* ---- message streaming ---- */

static void stream_end(struct front_conn *c)
{
    close(c->msg_fd);
    c->msg_fd = -1;
    c->streaming = false;
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
    pop3_session_resume(c->s);
    process_input(c);
}

static void stream_fill(struct front_conn *c)
{
    struct evbuffer *out = bufferevent_get_output(c->bev);
    unsigned char in[STREAM_CHUNK];
    while (c->streaming && evbuffer_get_length(out) < STREAM_HIGH) {
        ssize_t n = c->ds.done ? 0 : read(c->msg_fd, in, sizeof(in));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* "+OK" is already out: the only honest signal left is to drop the
             * connection, so the client sees a truncated message, never a short one. */
            log_event(LOG_LVL_ERR, "message_read_error", "sid=%s errno=%d", c->sid, errno);
            set_close(c, "store_read_error");
            return;
        }
        if (n == 0) {
            unsigned char tail[8];
            size_t k = dotstuff_finish(&c->ds, tail);
            bufferevent_write(c->bev, tail, k);
            c->bytes_out += k;
            stream_end(c);
            return;
        }
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(out, (ssize_t)DOTSTUFF_OUT_MAX((size_t)n), &v, 1) < 1) {
            set_close(c, "out_of_memory");
            return;
        }
        v.iov_len = dotstuff_feed(&c->ds, in, (size_t)n, v.iov_base);
        evbuffer_commit_space(out, &v, 1);
        c->bytes_out += v.iov_len;
    }
}

/* ---- pop3_ops ---- */

static void op_write(void *io, const char *data, size_t len)
{
    struct front_conn *c = io;
    if (c->bev == NULL)
        return;
    bufferevent_write(c->bev, data, len);
    c->bytes_out += len;
}

static void op_start_tls(void *io)
{
    struct front_conn *c = io;
    /* Read nothing more in clear: the next bytes are the ClientHello. The
     * switch happens in conn_writecb once "+OK" has left. */
    c->stls_pending = true;
    bufferevent_disable(c->bev, EV_READ);
    bufferevent_setwatermark(c->bev, EV_WRITE, 0, 0);
}

static void op_auth_request(void *io, const char *mech, const struct sasl_creds *creds, unsigned step,
                            bool plus_offered)
{
    struct front_conn *c = io;
    struct ipc_auth_req q;
    memset(&q, 0, sizeof(q));
    q.step = step > 255 ? 255 : (uint8_t)step;
    q.conv = c->auth_conv;
    q.plus_offered = plus_offered;
    q.tls = 1; /* the session asks only once TLS is up */
    snprintf(q.mech, sizeof(q.mech), "%s", mech);
    snprintf(q.sid, sizeof(q.sid), "%s", c->sid);
    snprintf(q.remote, sizeof(q.remote), "%s", c->remote);
    memcpy(q.authzid, creds->authzid, sizeof(q.authzid));
    memcpy(q.authcid, creds->authcid, sizeof(q.authcid));
    memcpy(q.secret, creds->secret, creds->secret_len);
    q.secret_len = creds->secret_len;
    if (step == 0 && strncmp(mech, "SCRAM-", 6) == 0) {
        int n = tls_bev_channel_binding(c->bev, q.cb_type, q.cb_data, sizeof(q.cb_data));
        q.cb_len = n > 0 ? (size_t)n : 0;
    }
    int rc = front_authc_request(c->f, c, &q);
    c->auth_conv = q.conv;
    if (rc < 0) {
        struct pop3_auth_result r = {.status = POP3_AUTH_TEMPFAIL};
        pop3_session_auth_result(c->s, &r);
    }
}

static void timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct front_conn *c = arg;
    pop3_session_timer(c->s);
    if (!c->closing)
        bufferevent_enable(c->bev, EV_READ);
    process_input(c);
    check_done(c);
}

static void op_start_timer(void *io, uint64_t ms)
{
    struct front_conn *c = io;
    if (c->timer == NULL)
        c->timer = evtimer_new(c->f->base, timer_cb, c);
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    if (c->timer == NULL || evtimer_add(c->timer, &tv) < 0)
        set_close(c, "out_of_memory");
}

static int op_open_mailbox(void *io, const char *path, struct store_mailbox **mb, struct error *err)
{
    struct front_conn *c = io;
    const struct conf *cf = &c->f->conf;
    const char *p = path;
    size_t rl = strlen(cf->mail_root);
    while (rl > 1 && cf->mail_root[rl - 1] == '/')
        rl--;
    if (strncmp(path, cf->mail_root, rl) != 0 || path[rl] != '/') {
        error_set(err, "mail path %s is outside the mail root", path);
        return STORE_ERR_PERM;
    }
    if (c->f->chrooted && rl > 1)
        p = path + rl; /* chrooted at mail_root: "/var/vmail/d/u" is "/d/u" */
    return store_open(p, cf->mail_create, mb, err);
}

static void op_send_message(void *io, int fd, long long top_lines)
{
    struct front_conn *c = io;
    c->msg_fd = fd;
    c->streaming = true;
    dotstuff_init(&c->ds, top_lines);
    bufferevent_setwatermark(c->bev, EV_WRITE, STREAM_LOW, 0);
    stream_fill(c);
}

static void op_logged_in(void *io)
{
    struct front_conn *c = io;
    c->logged_in = true;
    set_timeouts(c);
}

static void op_close(void *io, const char *reason)
{
    set_close(io, reason);
}

static const struct pop3_ops front_ops = {
    .write = op_write,
    .start_tls = op_start_tls,
    .auth_request = op_auth_request,
    .start_timer = op_start_timer,
    .open_mailbox = op_open_mailbox,
    .send_message = op_send_message,
    .logged_in = op_logged_in,
    .close = op_close,
};

/* ---- libevent callbacks ---- */

static void conn_readcb(struct bufferevent *bev, void *arg)
{
    struct front_conn *c = arg;
    process_input(c);
    /* While the session is busy, let input pile up only to a bound. */
    if (!c->closing && evbuffer_get_length(bufferevent_get_input(bev)) >= INPUT_HIGH)
        bufferevent_disable(bev, EV_READ);
    check_done(c);
}

static void start_session(struct front_conn *c, bool tls_active)
{
    struct pop3_params p = {
        .sid = c->sid,
        .remote_ip = c->remote,
        .tls_active = tls_active,
        .stls_allowed = c->mode == CONF_TLS_STARTTLS,
        .implementation = c->f->conf.implementation,
        .mechs = c->mechs,
        .login_delay_s = c->f->conf.login_delay_s,
        .max_bad_commands = c->f->conf.max_bad_commands,
        .max_auth_attempts = c->f->conf.max_auth_attempts,
    };
    c->s = pop3_session_new(&p, &front_ops, c);
    if (c->s == NULL) {
        set_close(c, "out_of_memory");
        return;
    }
    pop3_session_greet(c->s);
}

static void log_tls(struct front_conn *c)
{
    const char *version, *cipher;
    tls_bev_describe(c->bev, &version, &cipher);
    log_event(LOG_LVL_INFO, "tls", "sid=%s remote=%s version=%s cipher=%s", c->sid, c->remote, version, cipher);
    metrics_tls(version);
}

/* "+OK" to STLS has been sent: replace the plain bufferevent by a TLS one on the same socket. */
static void stls_switch(struct front_conn *c)
{
    c->stls_pending = false;
    if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
        log_event(LOG_LVL_WARN, "stls_injection", "sid=%s remote=%s", c->sid, c->remote);
        set_close(c, "stls_injection");
        return;
    }
    bufferevent_free(c->bev);
    c->bev = tls_bev_accept(c->f->tls, c->f->base, c->fd);
    if (c->bev == NULL) {
        set_close(c, "out_of_memory");
        return;
    }
    c->bev_owns_fd = true;
    c->handshaking = true;
    bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
    set_timeouts(c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_HIGH);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void conn_writecb(struct bufferevent *bev, void *arg)
{
    struct front_conn *c = arg;
    if (c->streaming)
        stream_fill(c);
    else if (c->stls_pending && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        stls_switch(c);
    check_done(c);
}

static void conn_eventcb(struct bufferevent *bev, short what, void *arg)
{
    struct front_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        c->handshaking = false;
        log_tls(c);
        if (c->s == NULL)
            start_session(c, true);
        else
            pop3_session_tls_ready(c->s);
        process_input(c);
        check_done(c);
        return;
    }
    if (what & BEV_EVENT_TIMEOUT) {
        if (c->streaming && !(what & BEV_EVENT_WRITING)) {
            /* The client is busy receiving a message, not idle. */
            bufferevent_enable(bev, EV_READ);
            return;
        }
        if (!c->handshaking && !c->closing && !c->stls_pending) {
            static const char msg[] = "-ERR Disconnected for inactivity.\r\n";
            bufferevent_write(bev, msg, sizeof(msg) - 1);
            c->bytes_out += sizeof(msg) - 1;
        }
        c->closing = false;
        set_close(c, c->handshaking ? "tls_handshake_timeout" : "idle_timeout");
        check_done(c);
        return;
    }
    if (what & BEV_EVENT_ERROR && c->handshaking) {
        char q[200];
        const char *e = tls_bev_error(bev);
        log_event(LOG_LVL_NOTICE, "tls_failed", "sid=%s remote=%s error=%s", c->sid, c->remote,
                  log_quote(q, sizeof(q), e, strlen(e)));
        metrics_inc(METRIC_TLS_FAILED);
    }
    /* EOF or error: nothing more can be written; a session without QUIT deletes nothing. */
    if (!c->closing)
        c->close_reason = (what & BEV_EVENT_EOF) ? "client_closed" : (c->handshaking ? "tls_failed" : "io_error");
    c->closing = true;
    conn_free(c);
}

void front_conn_accept(struct front *f, int fd, const struct sockaddr *sa, int salen, enum conf_tls_mode mode,
                       uint32_t mechs)
{
    struct front_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        return;
    }
    c->f = f;
    c->fd = fd;
    c->mode = mode;
    c->mechs = mechs;
    /* Issue 7 (latency under test): with Nagle on, the POP3S greeting queued
     * behind the TLS 1.3 session tickets waited for the client's delayed ACK,
     * 40 ms on every session. Our writes are whole replies or large stream
     * chunks, so disabling Nagle sends no tinygrams. Best effort. */
    int one = 1;
    (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->msg_fd = -1;
    memcpy(&c->sa, sa, (size_t)salen < sizeof(c->sa) ? (size_t)salen : sizeof(c->sa));
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    snprintf(c->sid, sizeof(c->sid), "%x-%llx", f->worker, (unsigned long long)++f->next_sid);
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, c->remote, sizeof(c->remote));
    else
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, c->remote, sizeof(c->remote));
    log_event(LOG_LVL_INFO, "connect", "sid=%s remote=%s tls=%s", c->sid, c->remote,
              mode == CONF_TLS_IMPLICIT ? "implicit" : "starttls");
    metrics_inc(METRIC_CONN_ACCEPTED);
    metrics_gauge_add(METRIC_SESSIONS, 1);
    if (mode == CONF_TLS_IMPLICIT) {
        c->bev = tls_bev_accept(f->tls, f->base, fd);
        c->bev_owns_fd = true;
        c->handshaking = true;
    } else {
        c->bev = bufferevent_socket_new(f->base, fd, BEV_OPT_DEFER_CALLBACKS);
    }
    if (c->bev == NULL) {
        c->close_reason = "out_of_memory";
        conn_free(c);
        return;
    }
    bufferevent_setcb(c->bev, conn_readcb, conn_writecb, conn_eventcb, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, INPUT_HIGH);
    set_timeouts(c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    if (mode == CONF_TLS_STARTTLS)
        start_session(c, false);
    check_done(c);
}

void front_conn_auth_result(struct front_conn *c, const struct pop3_auth_result *r)
{
    pop3_session_auth_result(c->s, r);
    process_input(c);
    check_done(c);
}

uint32_t *front_conn_auth_id(struct front_conn *c)
{
    return &c->auth_id;
}
