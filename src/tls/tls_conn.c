/* One server-side TLS connection, driven by the front's own event loop.
 *
 * Why not bufferevent_openssl: it reads each record with two read() calls
 * (header, then body), cannot read ahead safely (libevent #854: bytes left in
 * SSL's buffer are never seen by epoll), and turns write interest on and off
 * around every reply, two epoll_ctl per reply. Here SSL reads the socket
 * directly with read-ahead, so one read() takes a whole flight, and it writes
 * its records into an evbuffer the caller sends with one writev per batch:
 * the reply, or the last reply and close_notify, leave in one segment and no
 * write interest is needed unless the socket is full (bench/RESULTS.md, run 10). */
#include <errno.h>
#include <event2/buffer.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"
#include "tls/tls_int.h"

struct tls_conn {
    SSL *ssl;
    bool shut;
    bool flight_out; /* past the early-data entry point: our first flight, or a HelloRetryRequest, is out */
    char error[160];
};

/* ---- the write side: a BIO that appends to the caller's evbuffer ---- */

static int wire_write(BIO *b, const char *data, int len)
{
    struct evbuffer *wire = BIO_get_data(b);
    if (len <= 0)
        return 0;
    return evbuffer_add(wire, data, (size_t)len) == 0 ? len : -1;
}

static long wire_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    /* Flush: the caller sends the evbuffer when the step is over. Pending
     * counts: nothing is held inside the BIO. Anything else is unsupported. */
    return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static BIO_METHOD *wire_method(void)
{
    static BIO_METHOD *m;
    if (m == NULL) {
        m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "popsd evbuffer wire");
        if (m != NULL && (!BIO_meth_set_write(m, wire_write) || !BIO_meth_set_ctrl(m, wire_ctrl))) {
            BIO_meth_free(m);
            m = NULL;
        }
    }
    return m;
}

struct tls_conn *tls_conn_new(struct tls_server *ts, int fd, struct evbuffer *wire)
{
    BIO_METHOD *m = wire_method();
    struct tls_conn *t = calloc(1, sizeof(*t));
    BIO *rbio = BIO_new_socket(fd, BIO_NOCLOSE);
    BIO *wbio = m != NULL ? BIO_new(m) : NULL;
    SSL *ssl = SSL_new(tls_server_default_ctx(ts));
    if (t == NULL || rbio == NULL || wbio == NULL || ssl == NULL) {
        free(t);
        BIO_free(rbio);
        BIO_free(wbio);
        SSL_free(ssl);
        ERR_clear_error();
        return NULL;
    }
    BIO_set_data(wbio, wire);
    BIO_set_init(wbio, 1);
    SSL_set0_rbio(ssl, rbio);
    SSL_set0_wbio(ssl, wbio);
    /* Read as much as the socket has into SSL's buffer in one read(). */
    SSL_set_read_ahead(ssl, 1);
    SSL_set_accept_state(ssl);
    t->ssl = ssl;
    return t;
}

void tls_conn_free(struct tls_conn **tp)
{
    struct tls_conn *t = *tp;
    if (t == NULL)
        return;
    SSL_free(t->ssl); /* frees both BIOs; the socket stays open (BIO_NOCLOSE) */
    free(t);
    *tp = NULL;
}

static void keep_error(struct tls_conn *t, const char *fallback)
{
    unsigned long e = ERR_peek_last_error();
    if (e != 0)
        ERR_error_string_n(e, t->error, sizeof(t->error));
    else
        snprintf(t->error, sizeof(t->error), "%s", fallback);
    ERR_clear_error();
}

static enum tls_step handshake_error(struct tls_conn *t, int r)
{
    switch (SSL_get_error(t->ssl, r)) {
    case SSL_ERROR_WANT_READ:
        return TLS_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        keep_error(t, "connection closed during handshake");
        return TLS_EOF;
    case SSL_ERROR_SYSCALL: {
        /* A reset, or another socket error: say which, not just "closed". */
        char what[96];
        snprintf(what, sizeof(what), "socket error during handshake: %s",
                 errno != 0 ? strerror(errno) : "connection closed");
        keep_error(t, what);
        return TLS_FAILED;
    }
    default:
        keep_error(t, "handshake failed");
        return TLS_FAILED;
    }
}

enum tls_step tls_conn_handshake(struct tls_conn *t)
{
    ERR_clear_error();
    if (!t->flight_out) {
        /* Up to our first flight (or a HelloRetryRequest) through the
         * early-data entry point: only after it may a server write before the
         * client's Finished (TLS 1.3 "0.5-RTT" data, RFC 8446 section 2). The
         * server never accepts 0-RTT data (max_early_data stays 0). */
        unsigned char none[1];
        size_t n = 0;
        int r = SSL_read_early_data(t->ssl, none, sizeof(none), &n);
        if (r == SSL_READ_EARLY_DATA_SUCCESS) {
            keep_error(t, "early data refused");
            return TLS_FAILED;
        }
        if (r != SSL_READ_EARLY_DATA_FINISH)
            return handshake_error(t, 0);
        t->flight_out = true;
    }
    int r = SSL_do_handshake(t->ssl);
    return r == 1 ? TLS_DONE : handshake_error(t, r);
}

bool tls_conn_early_writable(const struct tls_conn *t)
{
    /* Our Finished must be out, not merely a flight: after a HelloRetryRequest
     * the early-data entry point also returns, with no keys to write under yet
     * (the client then failed with "unexpected message"). */
    unsigned char fin[EVP_MAX_MD_SIZE];
    return !SSL_is_init_finished(t->ssl) && SSL_version(t->ssl) == TLS1_3_VERSION &&
           SSL_get_finished(t->ssl, fin, sizeof(fin)) > 0;
}

enum tls_step tls_conn_read(struct tls_conn *t, struct evbuffer *in, size_t max)
{
    while (evbuffer_get_length(in) < max) {
        struct evbuffer_iovec v;
        if (evbuffer_reserve_space(in, 4096, &v, 1) < 1)
            return TLS_FAILED;
        size_t room = max - evbuffer_get_length(in);
        int want = (int)(v.iov_len < room ? v.iov_len : room);
        ERR_clear_error();
        int r = SSL_read(t->ssl, v.iov_base, want);
        if (r > 0) {
            v.iov_len = (size_t)r;
            evbuffer_commit_space(in, &v, 1);
            /* Nothing left inside SSL: whatever else the client sent is still
             * in the socket, and epoll (level-triggered) reports it. Stopping
             * here saves the read() that would only return EAGAIN. */
            if (!SSL_has_pending(t->ssl))
                return TLS_AGAIN;
            continue;
        }
        evbuffer_commit_space(in, &v, 0);
        switch (SSL_get_error(t->ssl, r)) {
        case SSL_ERROR_WANT_READ:
            return TLS_AGAIN;
        case SSL_ERROR_ZERO_RETURN:
            return TLS_EOF; /* close_notify, or (SSL_OP_IGNORE_UNEXPECTED_EOF) a plain EOF */
        default:
            keep_error(t, "read failed");
            return TLS_FAILED;
        }
    }
    return TLS_AGAIN;
}

bool tls_conn_pending(const struct tls_conn *t)
{
    return SSL_has_pending(t->ssl) != 0;
}

int tls_conn_write(struct tls_conn *t, const void *data, size_t len)
{
    ERR_clear_error();
    if (len > INT_MAX) {
        snprintf(t->error, sizeof(t->error), "write of %zu bytes refused", len);
        return -1;
    }
    if (len == 0)
        return 0;
    if (!SSL_is_init_finished(t->ssl)) {
        size_t done = 0;
        if (!tls_conn_early_writable(t) || SSL_write_early_data(t->ssl, data, len, &done) != 1 ||
            done != len) {
            keep_error(t, "write before the handshake");
            return -1;
        }
        return 0;
    }
    /* The wire BIO never refuses, so SSL_write takes everything at once. */
    if (SSL_write(t->ssl, data, (int)len) != (int)len) {
        keep_error(t, "write failed");
        return -1;
    }
    return 0;
}

void tls_conn_shutdown(struct tls_conn *t)
{
    if (t->shut || !SSL_is_init_finished(t->ssl))
        return;
    t->shut = true;
    SSL_shutdown(t->ssl); /* queues close_notify; we never wait for the client's */
    ERR_clear_error();
}

const char *tls_conn_error(const struct tls_conn *t)
{
    return t->error[0] != '\0' ? t->error : "connection closed during handshake";
}

void tls_conn_describe(const struct tls_conn *t, const char **version, const char **cipher)
{
    *version = SSL_get_version(t->ssl);
    *cipher = SSL_get_cipher_name(t->ssl);
}

int tls_conn_channel_binding(const struct tls_conn *t, char type[16], unsigned char *out, size_t cap)
{
    static const char label[] = "EXPORTER-Channel-Binding";
    SSL *ssl = t->ssl;
    if (!SSL_is_init_finished(ssl))
        return -1;
    if (SSL_version(ssl) == TLS1_3_VERSION) {
        if (cap < 32 || SSL_export_keying_material(ssl, out, 32, label, sizeof(label) - 1, NULL, 0, 0) != 1)
            return -1;
        strcpy(type, "tls-exporter");
        return 32;
    }
    /* tls-unique: the client's Finished on a full handshake, ours on a resumed one. */
    size_t n = SSL_session_reused(ssl) ? SSL_get_finished(ssl, out, cap) : SSL_get_peer_finished(ssl, out, cap);
    if (n == 0 || n > cap)
        return -1;
    strcpy(type, "tls-unique");
    return (int)n;
}
