/* TLS policy and contexts. The only module that includes <openssl/ssl.h>:
 * everything above it sees opaque handles.
 *
 * Policy (not configurable below it): TLS 1.3, plus TLS 1.2 limited to ECDHE with
 * AES-GCM or ChaCha20-Poly1305; groups X25519, P-256, P-384; server preference;
 * no compression, no renegotiation, no 0-RTT; ALPN "pop3" (a client offering
 * only other protocols is refused: ALPACA). Several certificates, chosen by SNI;
 * ECDSA and RSA certificates for the same names share one context so each
 * client gets the key type it supports. */
#ifndef POPSD_TLS_TLS_H
#define POPSD_TLS_TLS_H

#include <event2/buffer.h>
#include <stdbool.h>
#include <stddef.h>

#include "common/error.h"
#include "conf/conf.h"

struct tls_server;

/* Loads every [certificate] (full chains) and builds the contexts. Logs a
 * warning for certificates expiring within 30 days. Returns 0 or -1. */
int tls_server_new(const struct conf *c, struct tls_server **ts_r, struct error *err);
void tls_server_free(struct tls_server **ts);

/* One server-side TLS connection on a socket the caller owns and polls
 * (tls_conn.c). SSL reads the socket itself, with read-ahead; every record it
 * produces (handshake, data, close_notify) is appended to wire, which the
 * caller sends when it likes. NULL on allocation failure. */
struct tls_conn;
struct tls_conn *tls_conn_new(struct tls_server *ts, int fd, struct evbuffer *wire);
void tls_conn_free(struct tls_conn **t);

enum tls_step {
    TLS_DONE,   /* handshake complete */
    TLS_AGAIN,  /* wait until the socket is readable again */
    TLS_EOF,    /* the client closed */
    TLS_FAILED, /* protocol or socket error: tls_conn_error() says which */
};

enum tls_step tls_conn_handshake(struct tls_conn *t);
/* TLS 1.3, our flight is out and the client's Finished is not yet in: data
 * written now leaves with the flight ("0.5-RTT", to a client not yet proven
 * to hold the keys: only what any client may see, such as the greeting). */
bool tls_conn_early_writable(const struct tls_conn *t);
/* Decrypts what the socket and SSL's buffer hold into in, while in holds less
 * than max. TLS_AGAIN: all taken, or in is full. */
enum tls_step tls_conn_read(struct tls_conn *t, struct evbuffer *in, size_t max);
/* Bytes already inside SSL (read from the socket, not yet decrypted): epoll
 * cannot report them, so the caller reads again when it stopped at max. */
bool tls_conn_pending(const struct tls_conn *t);
/* Encrypts into wire; before the handshake is done only while
 * tls_conn_early_writable(). Returns 0 or -1. */
int tls_conn_write(struct tls_conn *t, const void *data, size_t len);
/* Queues close_notify (once; nothing before the handshake is done) so the
 * client sees a clean end of the stream rather than a truncation. */
void tls_conn_shutdown(struct tls_conn *t);

/* After the handshake: negotiated version and cipher names for the log. */
void tls_conn_describe(const struct tls_conn *t, const char **version, const char **cipher);

/* The channel binding of this connection for SCRAM-SHA-256-PLUS: on TLS 1.3
 * "tls-exporter" (RFC 9266: 32 bytes exported with label
 * "EXPORTER-Channel-Binding" and an empty context), on TLS 1.2 "tls-unique"
 * (RFC 5929: the first Finished message). Returns the length written to out, or
 * -1 (nothing to bind to). type receives the binding's name. */
int tls_conn_channel_binding(const struct tls_conn *t, char type[16], unsigned char *out, size_t cap);

/* Why the handshake failed, for the log. */
const char *tls_conn_error(const struct tls_conn *t);

#endif
