/* Blocking-style client I/O built on non-blocking sockets and poll(), so that
 * every operation (resolve, connect, handshake, read, write) ends by an
 * absolute deadline whatever the peer does. */
#include "ctl/audit.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void audit_copy(char *dst, size_t cap, const char *src)
{
    if (cap == 0)
        return;
    if (src == NULL)
        src = "";
    size_t n = strnlen(src, cap - 1);
    memcpy(dst, src, n);
    dst[n] = '\0';
}

void audit_sanitize(char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
            *s = '?';
}

int64_t audit_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits for events on fd until deadline. 0, AUDIT_ETIMEOUT or AUDIT_EGENERIC. */
static int wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - audit_now_ms();
        if (left <= 0)
            return AUDIT_ETIMEOUT;
        struct pollfd p = {.fd = fd, .events = events};
        int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return AUDIT_EGENERIC;
    }
}

int audit_resolve(struct audit_target *t, struct error *err)
{
    struct in6_addr a6;
    struct in_addr a4;
    t->host_is_ip = inet_pton(AF_INET, t->host, &a4) == 1 || inet_pton(AF_INET6, t->host, &a6) == 1;

    /* getaddrinfo_a so a slow resolver is bounded by our timeout too. The
     * request is static: if cancelling fails, the resolver thread may still
     * write it after we return. */
    static struct addrinfo hints;
    static struct gaicb req;
    static char port[8];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = t->host_is_ip ? AI_NUMERICHOST : 0;
    snprintf(port, sizeof(port), "%u", (unsigned)t->port);
    memset(&req, 0, sizeof(req));
    req.ar_name = t->host;
    req.ar_service = port;
    req.ar_request = &hints;
    struct gaicb *list[1] = {&req};
    int rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL);
    if (rc != 0)
        return error_set(err, "resolve %s: %s", t->host, gai_strerror(rc));
    struct timespec ts = {.tv_sec = t->timeout_ms / 1000, .tv_nsec = (long)(t->timeout_ms % 1000) * 1000000};
    const struct gaicb *wait_list[1] = {&req};
    int64_t deadline = audit_now_ms() + t->timeout_ms;
    while ((rc = gai_error(&req)) == EAI_INPROGRESS && audit_now_ms() < deadline) {
        int64_t left = deadline - audit_now_ms();
        ts.tv_sec = left / 1000;
        ts.tv_nsec = (long)(left % 1000) * 1000000;
        gai_suspend(wait_list, 1, &ts);
    }
    if (rc == EAI_INPROGRESS) {
        gai_cancel(&req);
        return error_set(err, "resolve %s: timed out", t->host);
    }
    if (rc != 0)
        return error_set(err, "resolve %s: %s", t->host, gai_strerror(rc));
    t->naddr = 0;
    for (struct addrinfo *ai = req.ar_result; ai != NULL && t->naddr < AUDIT_MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof(t->addrs[0]) || (ai->ai_family != AF_INET && ai->ai_family != AF_INET6))
            continue;
        memcpy(&t->addrs[t->naddr], ai->ai_addr, ai->ai_addrlen);
        t->addrlens[t->naddr++] = ai->ai_addrlen;
    }
    if (req.ar_result != NULL)
        freeaddrinfo(req.ar_result);
    if (t->naddr == 0)
        return error_set(err, "resolve %s: no address", t->host);
    audit_use_address(t, 0);
    return 0;
}

void audit_use_address(struct audit_target *t, int i)
{
    memcpy(&t->addr, &t->addrs[i], sizeof(t->addr));
    t->addrlen = t->addrlens[i];
    const struct sockaddr *sa = (const struct sockaddr *)&t->addr;
    const void *src = sa->sa_family == AF_INET6 ? (const void *)&((const struct sockaddr_in6 *)sa)->sin6_addr
                                                : (const void *)&((const struct sockaddr_in *)sa)->sin_addr;
    if (inet_ntop(sa->sa_family, src, t->addr_str, sizeof(t->addr_str)) == NULL)
        snprintf(t->addr_str, sizeof(t->addr_str), "?");
}

int audit_connect(struct audit_ctx *a, struct audit_conn *c, struct error *err)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    if (a->probes >= a->max_probes) {
        a->budget_hit = true;
        return error_set(err, "probe budget of %d connections exhausted", a->max_probes), AUDIT_EBUDGET;
    }
    a->probes++;
    int fd = socket(a->t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return error_set_errno(err, errno, "socket"), AUDIT_EUNREACH;
    if (connect(fd, (const struct sockaddr *)&a->t.addr, a->t.addrlen) < 0) {
        if (errno != EINPROGRESS) {
            int e = errno;
            close(fd);
            return error_set_errno(err, e, "connect %s port %u", a->t.addr_str, (unsigned)a->t.port),
                   AUDIT_EUNREACH;
        }
        int rc = wait_fd(fd, POLLOUT, audit_now_ms() + a->t.timeout_ms);
        int soerr = 0;
        socklen_t sl = sizeof(soerr);
        if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0)
            soerr = errno;
        if (rc != 0 || soerr != 0) {
            close(fd);
            if (rc == AUDIT_ETIMEOUT)
                return error_set(err, "connect %s port %u: timed out", a->t.addr_str, (unsigned)a->t.port),
                       AUDIT_EUNREACH;
            return error_set_errno(err, soerr, "connect %s port %u", a->t.addr_str, (unsigned)a->t.port),
                   AUDIT_EUNREACH;
        }
    }
    c->fd = fd;
    return 0;
}

void audit_conn_close(struct audit_conn *c)
{
    if (c->ssl != NULL) {
        /* One close_notify attempt; we never wait for the peer's. */
        SSL_set_quiet_shutdown(c->ssl, 0);
        (void)SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
    ERR_clear_error();
}

int audit_conn_write(struct audit_conn *c, const void *p, size_t n, int timeout_ms, struct error *err)
{
    int64_t deadline = audit_now_ms() + timeout_ms;
    const char *s = p;
    while (n > 0) {
        short want = POLLOUT;
        if (c->ssl != NULL) {
            size_t w = 0;
            ERR_clear_error();
            if (SSL_write_ex(c->ssl, s, n, &w) == 1) {
                s += w;
                n -= w;
                continue;
            }
            int e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_READ)
                want = POLLIN;
            else if (e != SSL_ERROR_WANT_WRITE)
                return error_set(err, "TLS write failed"), AUDIT_EEOF;
        } else {
            ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
            if (w > 0) {
                s += w;
                n -= (size_t)w;
                continue;
            }
            if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return error_set_errno(err, errno, "write"), AUDIT_EEOF;
        }
        int rc = wait_fd(c->fd, want, deadline);
        if (rc != 0)
            return error_set(err, "write timed out"), rc;
    }
    return 0;
}

/* Appends at least one byte to c->buf, or fails. */
static int fill(struct audit_conn *c, int64_t deadline, struct error *err)
{
    if (c->len >= sizeof(c->buf))
        return error_set(err, "server line too long"), AUDIT_EGENERIC;
    for (;;) {
        short want = POLLIN;
        if (c->ssl != NULL) {
            size_t got = 0;
            ERR_clear_error();
            if (SSL_read_ex(c->ssl, c->buf + c->len, sizeof(c->buf) - c->len, &got) == 1) {
                c->len += got;
                return 0;
            }
            int e = SSL_get_error(c->ssl, 0);
            if (e == SSL_ERROR_WANT_WRITE)
                want = POLLOUT;
            else if (e == SSL_ERROR_ZERO_RETURN || e == SSL_ERROR_SYSCALL)
                return error_set(err, "connection closed"), AUDIT_EEOF;
            else if (e != SSL_ERROR_WANT_READ)
                return error_set(err, "TLS read failed"), AUDIT_EEOF;
        } else {
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
            if (r > 0) {
                c->len += (size_t)r;
                return 0;
            }
            if (r == 0)
                return error_set(err, "connection closed"), AUDIT_EEOF;
            if (errno == ECONNRESET || errno == EPIPE)
                return error_set_errno(err, errno, "read"), AUDIT_EEOF;
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                return error_set_errno(err, errno, "read"), AUDIT_EGENERIC;
        }
        int rc = wait_fd(c->fd, want, deadline);
        if (rc == AUDIT_ETIMEOUT)
            return error_set(err, "timed out waiting for the server"), rc;
        if (rc != 0)
            return error_set_errno(err, errno, "poll"), rc;
    }
}

int audit_conn_read_line(struct audit_conn *c, char *line, size_t cap, int timeout_ms, struct error *err)
{
    int64_t deadline = audit_now_ms() + timeout_ms;
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->len);
        if (nl != NULL) {
            size_t used = (size_t)(nl - c->buf) + 1;
            size_t n = used - 1;
            if (n > 0 && c->buf[n - 1] == '\r')
                n--;
            if (n >= cap)
                n = cap - 1;
            memcpy(line, c->buf, n);
            line[n] = '\0';
            memmove(c->buf, c->buf + used, c->len - used);
            c->len -= used;
            return (int)n;
        }
        int rc = fill(c, deadline, err);
        if (rc < 0)
            return rc;
    }
}

int audit_conn_read_exact(struct audit_conn *c, void *p, size_t n, int timeout_ms, struct error *err)
{
    int64_t deadline = audit_now_ms() + timeout_ms;
    unsigned char *out = p;
    while (n > 0) {
        if (c->len == 0) {
            int rc = fill(c, deadline, err);
            if (rc < 0)
                return rc;
        }
        size_t k = c->len < n ? c->len : n;
        memcpy(out, c->buf, k);
        memmove(c->buf, c->buf + k, c->len - k);
        c->len -= k;
        out += k;
        n -= k;
    }
    return 0;
}

int audit_conn_handshake(struct audit_conn *c, SSL *ssl, int timeout_ms, struct error *err)
{
    int64_t deadline = audit_now_ms() + timeout_ms;
    if (c->len != 0)
        return error_set(err, "unread plaintext before the TLS handshake"), AUDIT_EGENERIC;
    if (!SSL_set_fd(ssl, c->fd))
        return error_set(err, "SSL_set_fd failed"), AUDIT_EGENERIC;
    for (;;) {
        ERR_clear_error();
        int r = SSL_connect(ssl);
        if (r == 1) {
            c->ssl = ssl;
            return 0;
        }
        int e = SSL_get_error(ssl, r);
        short want;
        if (e == SSL_ERROR_WANT_READ)
            want = POLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            want = POLLOUT;
        else {
            unsigned long le = ERR_peek_last_error();
            const char *reason = le != 0 ? ERR_reason_error_string(le) : NULL;
            if (reason != NULL)
                error_set(err, "handshake failed: %s", reason);
            else
                error_set(err, "handshake failed: connection closed");
            return AUDIT_EGENERIC;
        }
        int rc = wait_fd(c->fd, want, deadline);
        if (rc != 0)
            return error_set(err, "handshake timed out"), rc;
    }
}
