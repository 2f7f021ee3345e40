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

#include <event2/bufferevent.h>
#include <stddef.h>

#include "common/error.h"
#include "conf/conf.h"

struct tls_server;

/* Loads every [certificate] (full chains) and builds the contexts. Logs a
 * warning for certificates expiring within 30 days. Returns 0 or -1. */
int tls_server_new(const struct conf *c, struct tls_server **ts_r, struct error *err);
void tls_server_free(struct tls_server **ts);

/* Starts a server-side TLS handshake on fd (which the bufferevent then owns
 * and closes on free). Returns NULL on allocation failure. */
struct bufferevent *tls_bev_accept(struct tls_server *ts, struct event_base *base, int fd);

/* After the handshake: negotiated version and cipher names for the log. */
void tls_bev_describe(struct bufferevent *bev, const char **version, const char **cipher);

/* The channel binding of this connection for SCRAM-SHA-256-PLUS: on TLS 1.3
 * "tls-exporter" (RFC 9266: 32 bytes exported with label
 * "EXPORTER-Channel-Binding" and an empty context), on TLS 1.2 "tls-unique"
 * (RFC 5929: the first Finished message). Returns the length written to out, or
 * -1 (no TLS, or nothing to bind to). type receives the binding's name. */
int tls_bev_channel_binding(struct bufferevent *bev, char type[16], unsigned char *out, size_t cap);

/* Sends close_notify (best effort, never blocks) so the client sees a clean
 * end of the stream rather than a truncation. Call just before freeing bev. */
void tls_bev_shutdown(struct bufferevent *bev);

/* Why the last handshake on bev failed, for the log (static storage). */
const char *tls_bev_error(struct bufferevent *bev);

#endif
