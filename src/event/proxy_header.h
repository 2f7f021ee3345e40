/* The PROXY protocol version 2 header (HAProxy's "send-proxy-v2"): the
 * binary preamble a trusted load balancer sends before the client's first
 * byte, carrying the client's address. Specification: HAProxy's
 * doc/proxy-protocol.txt, section 2.2. Only listeners configured for it read
 * one, and only from the peers listed as trusted (front.c). */
#ifndef POPSD_EVENT_PROXY_HEADER_H
#define POPSD_EVENT_PROXY_HEADER_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_V2_PREFIX 16 /* signature, version and command, family, length */
#define PROXY_V2_MAX 2048  /* the largest header taken; HAProxy sends 28 to a few hundred bytes */

enum proxy_result {
    PROXY_NEED_MORE, /* *need: the bytes required in all before parsing can go on */
    PROXY_OK,
    PROXY_BAD, /* *why: what is wrong, for the log */
};

struct proxy_info {
    /* The balancer's own connection (LOCAL, e.g. a health check) or an address
     * family that names no TCP client (UNSPEC, UNIX): the socket's peer stays
     * the source, as the specification asks. */
    bool local;
    struct sockaddr_storage src; /* the client (AF_INET or AF_INET6) when !local */
    socklen_t src_len;
    size_t header_len; /* bytes the header takes; what follows is the client's */
};

/* Parses buf[0..len), the first bytes of a connection. A wrong signature is
 * PROXY_BAD as soon as a byte differs (a client speaking TLS or POP3 directly
 * is not kept waiting for 16 bytes). TLVs are checked for structure only. */
enum proxy_result proxy_v2_parse(const unsigned char *buf, size_t len, struct proxy_info *out, size_t *need,
                                 const char **why);

#endif
