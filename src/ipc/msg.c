#include "ipc/msg.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "common/secret.h"

void ipc_w_init(struct ipc_writer *w, enum ipc_type type)
{
    w->len = 0;
    w->overflow = false;
    ipc_w_u8(w, (uint8_t)type);
}

static void put(struct ipc_writer *w, const void *p, size_t n)
{
    if (w->overflow || n > sizeof(w->buf) - w->len) {
        w->overflow = true;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

void ipc_w_u8(struct ipc_writer *w, uint8_t v)
{
    put(w, &v, 1);
}

void ipc_w_u32(struct ipc_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

void ipc_w_bytes(struct ipc_writer *w, const void *p, size_t len)
{
    if (len > 0xffff) {
        w->overflow = true;
        return;
    }
    uint8_t b[2] = {(uint8_t)(len >> 8), (uint8_t)len};
    put(w, b, 2);
    put(w, p, len);
}

void ipc_w_str(struct ipc_writer *w, const char *s)
{
    ipc_w_bytes(w, s, strlen(s));
}

int ipc_r_init(struct ipc_reader *r, const uint8_t *buf, size_t len)
{
    r->p = buf;
    r->left = len;
    r->bad = false;
    uint8_t t = ipc_r_u8(r);
    return r->bad ? -1 : t;
}

static const uint8_t *take(struct ipc_reader *r, size_t n)
{
    if (r->bad || r->left < n) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += n;
    r->left -= n;
    return p;
}

uint8_t ipc_r_u8(struct ipc_reader *r)
{
    const uint8_t *p = take(r, 1);
    return p ? p[0] : 0;
}

uint32_t ipc_r_u32(struct ipc_reader *r)
{
    const uint8_t *p = take(r, 4);
    return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3] : 0;
}

size_t ipc_r_bytes(struct ipc_reader *r, void *dst, size_t cap)
{
    const uint8_t *lp = take(r, 2);
    if (lp == NULL)
        return 0;
    size_t n = (size_t)lp[0] << 8 | lp[1];
    const uint8_t *p = take(r, n);
    if (p == NULL || n > cap) {
        r->bad = true;
        return 0;
    }
    memcpy(dst, p, n);
    return n;
}

size_t ipc_r_str(struct ipc_reader *r, char *dst, size_t cap)
{
    size_t n = ipc_r_bytes(r, dst, cap - 1);
    if (r->bad || memchr(dst, '\0', n) != NULL) {
        r->bad = true;
        n = 0;
    }
    dst[n] = '\0';
    return n;
}

int ipc_r_end(const struct ipc_reader *r)
{
    return (r->bad || r->left != 0) ? -1 : 0;
}

int ipc_send(int fd, const struct ipc_writer *w)
{
    if (w->overflow) {
        errno = EMSGSIZE;
        return -1;
    }
    ssize_t n;
    do
        n = send(fd, w->buf, w->len, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    return n == (ssize_t)w->len ? 0 : -1;
}

long ipc_recv(int fd, uint8_t *buf)
{
    struct iovec iov = {.iov_base = buf, .iov_len = IPC_MSG_MAX};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    ssize_t n;
    do
        n = recvmsg(fd, &mh, MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n > 0 && (mh.msg_flags & MSG_TRUNC)) {
        secret_wipe(buf, IPC_MSG_MAX);
        errno = EMSGSIZE;
        return -1;
    }
    return n;
}
