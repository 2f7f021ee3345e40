/* One client connection in the front: bytes in and out (plain or TLS, with the
 * STLS upgrade), line framing, idle timeouts, message streaming with
 * backpressure, and the pop3_ops the session state machine talks through.
 *
 * The socket is driven directly (no bufferevent): a persistent read event that
 * carries the login or idle timeout, and a write event only while the socket
 * has not taken everything. Every entry point (readable, writable, authd's
 * answer, the session timer) ends in conn_after(), which encrypts what the
 * session wrote, sends it with one writev, refills a message being streamed,
 * and frees the connection once it is closing and its output has left. */
#include <errno.h>
#include <event2/buffer.h>
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
#include "event/proxy_header.h"
#include "pop3/frame.h"
#include "roles/front.h"
#include "store/dotstuff.h"

#define STREAM_CHUNK 65536
#define STREAM_HIGH (512 * 1024) /* stop reading the file above this much queued output */
#define STREAM_LOW (128 * 1024)  /* refill when the client has taken the output down to this */
#define INPUT_HIGH (16 * 1024)   /* stop reading the socket while this much input waits */
#define RECORD_MAX 16384         /* plaintext per TLS record */

struct front_conn {
    struct front *f;
    int fd;
    struct event *ev_read;  /* persistent; its timeout is the login or idle timeout */
    struct event *ev_write; /* added only while wire holds bytes the socket did not take */
    bool reading, writing;  /* whether ev_read / ev_write are added */
    const struct timeval *tv;
    struct evbuffer *in;   /* plaintext from the client */
    struct evbuffer *out;  /* plaintext to the client, not yet encrypted */
    struct evbuffer *wire; /* bytes for the socket (TLS records, or plain text before STLS) */
    struct tls_conn *tls;  /* NULL before STLS on a plain listener */
    enum conf_tls_mode mode;
    uint32_t mechs;
    struct sockaddr_storage sa;
    char remote[INET6_ADDRSTRLEN];
    char sid[24];
    struct pop3_session *s;
    struct pop3_framer framer;
    struct event *timer;
    bool awaiting_proxy; /* a PROXY v2 header comes before anything else */
    bool source_held;    /* counted against sa's per-source limit */
    bool handshaking;
    bool stls_pending;
    bool closing; /* close once the output has left */
    bool dead;    /* the socket is unusable: close now, send nothing more */
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

static void conn_after(struct front_conn *c);

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
    if (c->tls != NULL && !c->dead && !c->handshaking) {
        /* close_notify, best effort and never waiting: after the client's EOF too. */
        tls_conn_shutdown(c->tls);
        if (c->wire != NULL && evbuffer_get_length(c->wire) > 0)
            (void)evbuffer_write(c->wire, c->fd);
    }
    tls_conn_free(&c->tls);
    if (c->ev_read != NULL)
        event_free(c->ev_read);
    if (c->ev_write != NULL)
        event_free(c->ev_write);
    if (c->in != NULL)
        evbuffer_free(c->in);
    if (c->out != NULL)
        evbuffer_free(c->out);
    if (c->wire != NULL)
        evbuffer_free(c->wire);
    close(c->fd);
    if (c->source_held)
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
}

/* The socket failed or the peer went away: nothing more can be sent. */
static void set_dead(struct front_conn *c, const char *reason)
{
    if (!c->closing || c->close_reason == NULL)
        c->close_reason = reason;
    c->closing = true;
    c->dead = true;
    c->streaming = false;
}

static void set_timeouts(struct front_conn *c)
{
    c->tv = c->logged_in ? c->f->tv_idle : c->f->tv_login;
    if (c->reading)
        event_add(c->ev_read, c->tv); /* already polled: only the timeout changes */
}

static void process_input(struct front_conn *c)
{
    char line[POP3_FRAME_MAX + 1];
    while (!c->closing && c->s != NULL && pop3_session_wants_input(c->s)) {
        size_t avail = evbuffer_get_length(c->in);
        if (avail == 0)
            break;
        size_t look = avail < POP3_FRAME_MAX + 2 ? avail : POP3_FRAME_MAX + 2;
        char *data = (char *)evbuffer_pullup(c->in, (ssize_t)look);
        if (data == NULL) {
            set_close(c, "out_of_memory");
            break;
        }
        size_t linelen, consumed;
        enum pop3_frame_status st =
            pop3_frame_next(&c->framer, data, look, pop3_session_line_max(c->s), &linelen, &consumed);
        if (st == POP3_FRAME_LINE)
            memcpy(line, data, linelen);
        evbuffer_drain(c->in, consumed);
        c->bytes_in += consumed;
        if (st == POP3_FRAME_LINE) {
            pop3_session_line(c->s, line, linelen, evbuffer_get_length(c->in) > 0);
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
    pop3_session_resume(c->s);
    process_input(c);
}

/* Reads the message into out (dot-stuffed) up to STREAM_HIGH. */
static void stream_fill(struct front_conn *c)
{
    unsigned char in[STREAM_CHUNK];
    while (c->streaming && evbuffer_get_length(c->out) + evbuffer_get_length(c->wire) < STREAM_HIGH) {
        ssize_t n = c->ds.done ? 0 : read(c->msg_fd, in, sizeof(in));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            /* "+OK" is already out: the only honest signal left is to drop the
             * connection, so the client sees a truncated message, never a short one. */
            log_event(LOG_LVL_ERR, "message_read_error", "sid=%s errno=%d", c->sid, errno);
            set_dead(c, "store_read_error");
            return;
        }
        if (n == 0) {
            unsigned char tail[8];
            size_t k = dotstuff_finish(&c->ds, tail);
            evbuffer_add(c->out, tail, k);
            c->bytes_out += k;
            stream_end(c);
            return;
        }
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(c->out, (ssize_t)DOTSTUFF_OUT_MAX((size_t)n), &v, 1) < 1) {
            set_dead(c, "out_of_memory"); /* mid-message too: drop, never end it cleanly */
            return;
        }
        v.iov_len = dotstuff_feed(&c->ds, in, (size_t)n, v.iov_base);
        evbuffer_commit_space(c->out, &v, 1);
        c->bytes_out += v.iov_len;
    }
}

/* ---- the socket ---- */

/* Encrypts what the session wrote, queues close_notify when closing, and
 * sends as much of wire as the socket takes, in one writev. */
static void flush(struct front_conn *c)
{
    if (c->tls != NULL) {
        size_t left;
        while ((left = evbuffer_get_length(c->out)) > 0) {
            size_t n = left < RECORD_MAX ? left : RECORD_MAX;
            unsigned char *p = evbuffer_pullup(c->out, (ssize_t)n);
            if (p == NULL || tls_conn_write(c->tls, p, n) < 0) {
                set_dead(c, p == NULL ? "out_of_memory" : "io_error");
                return;
            }
            evbuffer_drain(c->out, n);
        }
        if (c->closing && !c->handshaking)
            tls_conn_shutdown(c->tls);
    } else if (evbuffer_add_buffer(c->wire, c->out) < 0) {
        set_dead(c, "out_of_memory");
        return;
    }
    if (evbuffer_get_length(c->wire) == 0)
        return;
    int n = evbuffer_write(c->wire, c->fd);
    if (n < 0 && errno != EAGAIN && errno != EINTR)
        set_dead(c, "io_error");
}

/* The server side of a TLS handshake on the socket: at accept on an implicit
 * listener, or after "+OK" to STLS. */
static void start_tls(struct front_conn *c)
{
    c->tls = tls_conn_new(c->f->tls, c->fd, c->wire);
    if (c->tls == NULL) {
        set_close(c, "out_of_memory");
        return;
    }
    c->handshaking = true;
}

/* "+OK" to STLS has left: the next bytes on the socket are the ClientHello. */
static void stls_switch(struct front_conn *c)
{
    c->stls_pending = false;
    if (evbuffer_get_length(c->in) > 0) {
        log_event(LOG_LVL_WARN, "stls_injection", "sid=%s remote=%s", c->sid, c->remote);
        set_close(c, "stls_injection");
        return;
    }
    start_tls(c);
}

static void watch(struct front_conn *c, struct event *ev, bool *on, bool want, const struct timeval *tv)
{
    if (want == *on)
        return;
    *on = want;
    if (want)
        event_add(ev, tv);
    else
        event_del(ev);
}

static void read_input(struct front_conn *c);

/* The tail of every entry point; c may be freed: the caller returns at once. */
static void conn_after(struct front_conn *c)
{
    for (;;) {
        if (!c->dead)
            flush(c);
        if (c->dead) {
            conn_free(c);
            return;
        }
        if (c->streaming && evbuffer_get_length(c->wire) < STREAM_LOW) {
            stream_fill(c);
            continue;
        }
        if (c->stls_pending && evbuffer_get_length(c->wire) == 0) {
            stls_switch(c);
            continue;
        }
        if (c->closing && evbuffer_get_length(c->wire) == 0) {
            conn_free(c);
            return;
        }
        /* Stopped at INPUT_HIGH with bytes still inside SSL, and the session
         * has taken some: epoll will not report those bytes, so read them now. */
        if (!c->closing && !c->stls_pending && c->tls != NULL && !c->handshaking &&
            evbuffer_get_length(c->in) < INPUT_HIGH && tls_conn_pending(c->tls)) {
            size_t before = evbuffer_get_length(c->in);
            uint64_t taken = c->bytes_in;
            read_input(c);
            /* Progress (bytes read or lines taken, and so replies to send): go round again. */
            if (c->dead || c->closing || evbuffer_get_length(c->in) != before || c->bytes_in != taken)
                continue;
        }
        break;
    }
    bool want_read = !c->closing && !c->stls_pending && evbuffer_get_length(c->in) < INPUT_HIGH;
    watch(c, c->ev_read, &c->reading, want_read, c->tv);
    watch(c, c->ev_write, &c->writing, evbuffer_get_length(c->wire) > 0, c->tv);
}

static void log_tls(struct front_conn *c)
{
    const char *version, *cipher;
    tls_conn_describe(c->tls, &version, &cipher);
    log_event(LOG_LVL_INFO, "tls", "sid=%s remote=%s version=%s cipher=%s", c->sid, c->remote, version, cipher);
    metrics_tls(version);
}

static void start_session(struct front_conn *c, bool tls_active);

static void begin(struct front_conn *c);
static void op_write(void *io, const char *data, size_t len);

/* The client's address from a PROXY header, then what accept would have done. */
static void proxy_accepted(struct front_conn *c, const struct proxy_info *pi)
{
    char balancer[INET6_ADDRSTRLEN];
    memcpy(balancer, c->remote, sizeof(balancer));
    c->awaiting_proxy = false;
    if (!pi->local) {
        memset(&c->sa, 0, sizeof(c->sa));
        memcpy(&c->sa, &pi->src, pi->src_len);
        front_sockaddr_ip((const struct sockaddr *)&c->sa, c->remote, sizeof(c->remote));
    }
    log_event(LOG_LVL_INFO, "proxy", "sid=%s remote=%s balancer=%s command=%s", c->sid, c->remote, balancer,
              pi->local ? "local" : "proxy");
    if (!front_source_acquire(c->f, (const struct sockaddr *)&c->sa)) {
        front_log_refusal(c->remote, "max_connections_per_source");
        metrics_inc(METRIC_CONN_REFUSED_PER_SOURCE);
        if (c->mode == CONF_TLS_STARTTLS) {
            static const char msg[] = FRONT_MSG_TOO_MANY;
            op_write(c, msg, sizeof(msg) - 1); /* in clear: no TLS yet on this listener */
        }
        set_close(c, "max_connections_per_source");
        return;
    }
    c->source_held = true;
    begin(c);
}

/* Reads the PROXY v2 header and never a byte past it: what follows is the
 * client's, for SSL (which reads the socket itself) or for the session. */
static void read_proxy_header(struct front_conn *c)
{
    for (;;) {
        size_t have = evbuffer_get_length(c->in), need;
        struct proxy_info pi;
        const char *why;
        const unsigned char *p = have > 0 ? evbuffer_pullup(c->in, -1) : NULL;
        enum proxy_result r = proxy_v2_parse(p, have, &pi, &need, &why);
        if (r == PROXY_BAD) {
            char q[160];
            log_event(LOG_LVL_NOTICE, "proxy_header_invalid", "sid=%s remote=%s error=%s", c->sid, c->remote,
                      log_quote(q, sizeof(q), why, strlen(why)));
            set_dead(c, "proxy_header_invalid");
            return;
        }
        if (r == PROXY_OK) {
            evbuffer_drain(c->in, pi.header_len);
            proxy_accepted(c, &pi);
            return;
        }
        int n = evbuffer_read(c->in, c->fd, (int)(need - have));
        if (n <= 0) {
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            set_dead(c, n == 0 ? "client_closed" : "io_error");
            return;
        }
    }
}

/* Takes what the socket has: handshake progress, then client bytes into in. */
static void read_input(struct front_conn *c)
{
    if (c->awaiting_proxy) {
        read_proxy_header(c);
        if (c->awaiting_proxy || c->closing)
            return;
        /* Header done: the client's first bytes may be waiting already. */
    }
    if (c->tls != NULL && c->handshaking) {
        enum tls_step st = tls_conn_handshake(c->tls);
        if (st == TLS_AGAIN) {
            /* Our flight is out, the client's Finished is not in: the greeting
             * leaves with the flight, a round trip earlier (TLS 1.3 only). */
            if (c->s == NULL && tls_conn_early_writable(c->tls))
                start_session(c, true);
            return;
        }
        if (st == TLS_FAILED) {
            char q[200];
            const char *e = tls_conn_error(c->tls);
            log_event(LOG_LVL_NOTICE, "tls_failed", "sid=%s remote=%s error=%s", c->sid, c->remote,
                      log_quote(q, sizeof(q), e, strlen(e)));
            metrics_inc(METRIC_TLS_FAILED);
        }
        if (st != TLS_DONE) {
            set_dead(c, st == TLS_EOF ? "client_closed" : "tls_failed");
            return;
        }
        c->handshaking = false;
        log_tls(c);
        if (c->s == NULL)
            start_session(c, true);
        else if (c->mode == CONF_TLS_STARTTLS)
            pop3_session_tls_ready(c->s); /* else greeted already, with our flight */
        /* The client's first command may have come with its Finished. */
        if (c->closing || !tls_conn_pending(c->tls))
            return;
    }
    if (c->tls != NULL) {
        enum tls_step st = tls_conn_read(c->tls, c->in, INPUT_HIGH);
        if (st == TLS_EOF || st == TLS_FAILED) {
            process_input(c); /* complete lines that came with the EOF still count */
            set_dead(c, st == TLS_EOF ? "client_closed" : "io_error");
            return;
        }
    } else {
        int n = evbuffer_read(c->in, c->fd, INPUT_HIGH);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
            process_input(c);
            set_dead(c, n == 0 ? "client_closed" : "io_error");
            return;
        }
    }
    process_input(c);
}

/* ---- pop3_ops ---- */

static void op_write(void *io, const char *data, size_t len)
{
    struct front_conn *c = io;
    if (c->dead)
        return;
    if (evbuffer_add(c->out, data, len) < 0)
        set_dead(c, "out_of_memory");
    c->bytes_out += len;
}

static void op_start_tls(void *io)
{
    struct front_conn *c = io;
    /* Read nothing more in clear: the next bytes are the ClientHello. The
     * switch happens in conn_after once "+OK" has left. */
    c->stls_pending = true;
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
    if (step == 0 && strncmp(mech, "SCRAM-", 6) == 0 && c->tls != NULL) {
        int n = tls_conn_channel_binding(c->tls, q.cb_type, q.cb_data, sizeof(q.cb_data));
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
    process_input(c);
    conn_after(c);
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
    /* conn_after() fills and sends, as far as the socket takes it. */
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

/* No input for the login or idle timeout (the read event's own timeout). */
static void read_timed_out(struct front_conn *c)
{
    if (c->streaming || evbuffer_get_length(c->wire) > 0)
        return; /* the client is busy receiving, not idle; the write timeout watches that */
    if (c->awaiting_proxy) {
        set_dead(c, "proxy_header_timeout"); /* nobody to say anything to yet */
        return;
    }
    if (!c->handshaking && !c->closing && !c->stls_pending) {
        static const char msg[] = "-ERR Disconnected for inactivity.\r\n";
        op_write(c, msg, sizeof(msg) - 1);
    }
    set_close(c, c->handshaking ? "tls_handshake_timeout" : "idle_timeout");
}

static void conn_readcb(evutil_socket_t fd, short what, void *arg)
{
    struct front_conn *c = arg;
    if (what & EV_TIMEOUT)
        read_timed_out(c);
    else
        read_input(c);
    conn_after(c);
}

static void conn_writecb(evutil_socket_t fd, short what, void *arg)
{
    struct front_conn *c = arg;
    if (what & EV_TIMEOUT)
        set_dead(c, c->closing && c->close_reason != NULL ? c->close_reason : "idle_timeout"); /* output stuck */
    conn_after(c);
}

static const struct timeval *common_timeout(struct event_base *base, uint64_t ms)
{
    struct timeval tv = {.tv_sec = (time_t)(ms / 1000), .tv_usec = (suseconds_t)(ms % 1000) * 1000};
    const struct timeval *ct = event_base_init_common_timeout(base, &tv);
    if (ct == NULL)
        log_fatal("cannot set up the session timeouts");
    return ct;
}

void front_conn_accept(struct front *f, int fd, const struct sockaddr *sa, int salen, const char *ip,
                       enum conf_tls_mode mode, uint32_t mechs, bool proxy)
{
    if (f->tv_login == NULL) {
        f->tv_login = common_timeout(f->base, f->conf.timeout_login_ms);
        f->tv_idle = common_timeout(f->base, f->conf.timeout_idle_ms);
    }
    struct front_conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        close(fd);
        if (!proxy)
            front_source_release(f, sa);
        front_conn_gone(f);
        return;
    }
    c->f = f;
    c->fd = fd;
    c->mode = mode;
    c->mechs = mechs;
    c->source_held = !proxy;
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
    snprintf(c->remote, sizeof(c->remote), "%s", ip);
    log_event(LOG_LVL_INFO, "connect", "sid=%s remote=%s tls=%s", c->sid, c->remote,
              mode == CONF_TLS_IMPLICIT ? "implicit" : "starttls");
    metrics_inc(METRIC_CONN_ACCEPTED);
    metrics_gauge_add(METRIC_SESSIONS, 1);
    c->tv = f->tv_login;
    c->in = evbuffer_new();
    c->out = evbuffer_new();
    c->wire = evbuffer_new();
    c->ev_read = event_new(f->base, fd, EV_READ | EV_PERSIST, conn_readcb, c);
    c->ev_write = event_new(f->base, fd, EV_WRITE | EV_PERSIST, conn_writecb, c);
    if (c->in == NULL || c->out == NULL || c->wire == NULL || c->ev_read == NULL || c->ev_write == NULL)
        set_dead(c, "out_of_memory");
    else if (proxy)
        c->awaiting_proxy = true;
    else
        begin(c);
    conn_after(c);
}

/* The client is known: TLS handshake (implicit TLS) or greeting (STLS listener). */
static void begin(struct front_conn *c)
{
    if (c->mode == CONF_TLS_IMPLICIT)
        start_tls(c);
    else
        start_session(c, false);
}

void front_conn_auth_result(struct front_conn *c, const struct pop3_auth_result *r)
{
    pop3_session_auth_result(c->s, r);
    process_input(c);
    conn_after(c);
}

uint32_t *front_conn_auth_id(struct front_conn *c)
{
    return &c->auth_id;
}
