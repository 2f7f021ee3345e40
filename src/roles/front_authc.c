/* The front's client of authd: requests out, results back, matched by id.
 * authd is a separate trust domain: its answers are parsed fail-closed, and a
 * malformed one cuts the channel rather than being guessed at. */
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "common/secret.h"
#include "ipc/auth_msg.h"
#include "roles/front.h"

_Static_assert(IPC_NAME_MAX == SASL_NAME_MAX && IPC_SECRET_MAX == SASL_SECRET_MAX,
               "IPC and SASL limits must agree");

static void fail_all_pending(struct front *f)
{
    for (unsigned i = 0; i < FRONT_AUTH_SLOTS; i++) {
        struct front_conn *c = f->auth_pending[i];
        if (c == NULL)
            continue;
        f->auth_pending[i] = NULL;
        *front_conn_auth_id(c) = 0;
        struct pop3_auth_result r = {.status = POP3_AUTH_TEMPFAIL};
        front_conn_auth_result(c, &r);
    }
}

static void authd_lost(struct front *f, const char *why)
{
    log_event(LOG_LVL_ERR, "authd_lost", "reason=%s", why);
    event_free(f->auth_ev);
    f->auth_ev = NULL;
    close(f->auth_fd);
    f->auth_fd = -1;
    fail_all_pending(f);
}

static void auth_readcb(evutil_socket_t fd, short what, void *arg)
{
    struct front *f = arg;
    uint8_t buf[IPC_MSG_MAX];
    for (int budget = 0; budget < 256; budget++) {
        long n = ipc_recv(fd, buf);
        if (n < 0 && errno == EAGAIN)
            return;
        if (n <= 0) {
            authd_lost(f, n == 0 ? "eof" : "recv_error");
            return;
        }
        struct ipc_reader r;
        struct ipc_auth_res a;
        if (ipc_r_init(&r, buf, (size_t)n) != IPC_AUTH_RES || ipc_auth_res_read(&r, &a) < 0 ||
            a.status > POP3_AUTH_POLICY) {
            authd_lost(f, "malformed_message");
            return;
        }
        unsigned slot = a.id % FRONT_AUTH_SLOTS;
        struct front_conn *c = f->auth_pending[slot];
        if (c == NULL || f->auth_pending_id[slot] != a.id)
            continue; /* the connection went away meanwhile */
        f->auth_pending[slot] = NULL;
        *front_conn_auth_id(c) = 0;
        struct pop3_auth_result res = {
            .status = (enum pop3_auth_status)a.status,
            .delay_ms = a.delay_ms,
            .user = a.user,
            .mail_path = a.mail,
            .data = a.data,
            .data_len = a.data_len,
        };
        front_conn_auth_result(c, &res);
    }
}

void front_authc_init(struct front *f, int fd)
{
    f->auth_fd = fd;
    f->auth_ev = event_new(f->base, fd, EV_READ | EV_PERSIST, auth_readcb, f);
    if (f->auth_ev == NULL || event_add(f->auth_ev, NULL) < 0)
        log_fatal("cannot watch the authd socket");
}

int front_authc_request(struct front *f, struct front_conn *c, struct ipc_auth_req *q)
{
    if (f->auth_fd < 0) {
        secret_wipe(q, sizeof(*q));
        return -1;
    }
    uint32_t id = ++f->auth_next_id;
    if (id == 0)
        id = ++f->auth_next_id;
    unsigned slot = id % FRONT_AUTH_SLOTS;
    if (f->auth_pending[slot] != NULL) {
        secret_wipe(q, sizeof(*q));
        return -1; /* 4096 requests in flight: answer [SYS/TEMP] rather than queue without bound */
    }
    q->id = id;
    if (q->step == 0)
        q->conv = id;
    struct ipc_writer w;
    ipc_auth_req_write(&w, q);
    int rc = ipc_send(f->auth_fd, &w);
    int saved = errno;
    uint32_t conv = q->conv;
    char sid[sizeof(q->sid)];
    memcpy(sid, q->sid, sizeof(sid));
    secret_wipe(q, sizeof(*q));
    q->conv = conv;
    secret_wipe(&w, sizeof(w));
    if (rc < 0) {
        log_event(LOG_LVL_ERR, "authd_send_failed", "sid=%s errno=%d", sid, saved);
        return -1;
    }
    f->auth_pending[slot] = c;
    f->auth_pending_id[slot] = id;
    *front_conn_auth_id(c) = id;
    return 0;
}

void front_authc_cancel(struct front *f, struct front_conn *c)
{
    uint32_t *id = front_conn_auth_id(c);
    if (*id == 0)
        return;
    unsigned slot = *id % FRONT_AUTH_SLOTS;
    if (f->auth_pending[slot] == c)
        f->auth_pending[slot] = NULL;
    *id = 0;
}
