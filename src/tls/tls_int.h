/* Shared inside src/tls only. */
#ifndef POPSD_TLS_TLS_INT_H
#define POPSD_TLS_TLS_INT_H

#include <openssl/ssl.h>

#include "tls/tls.h"

/* The context a new connection starts in, before SNI picks its site. */
SSL_CTX *tls_server_default_ctx(struct tls_server *ts);

#endif
