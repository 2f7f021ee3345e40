/* The front role: network, TLS and the POP3 state machine, unprivileged and
 * chrooted. Shared between its files; nothing outside roles/ includes this. */
#ifndef POPSD_ROLES_FRONT_H
#define POPSD_ROLES_FRONT_H

#include <event2/event.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdint.h>

#include "conf/conf.h"
#include "ipc/auth_msg.h"
#include "pop3/session.h"
#include "tls/tls.h"

struct front_conn;

/* Connections per source: IPv4 address, or IPv6 /64. */
struct front_source {
    uint8_t key[16];
    uint32_t count;
    struct front_source *next;
};

#define FRONT_SOURCE_BUCKETS 4096
#define FRONT_AUTH_SLOTS 4096

struct front {
    struct conf conf;
    struct event_base *base;
    struct tls_server *tls;
    struct evconnlistener *listeners[CONF_MAX_LISTENERS * CONF_MAX_ADDRS];
    enum conf_tls_mode listener_mode[CONF_MAX_LISTENERS * CONF_MAX_ADDRS];
    uint32_t listener_mechs[CONF_MAX_LISTENERS * CONF_MAX_ADDRS];                   /* enum conf_mech */
    const struct conf_listener *listener_conf[CONF_MAX_LISTENERS * CONF_MAX_ADDRS]; /* into conf */
    unsigned n_listeners;
    uint32_t n_conns;
    uint32_t fd_sessions; /* sessions its descriptors allow (front.c, fd_budget) */
    bool full;            /* at fd_sessions: not accepting, so sibling fronts take the connections */
    uint64_t next_sid;
    unsigned worker;
    bool draining;
    bool chrooted; /* at conf.mail_root */
    struct event *drain_timer;
    struct event *accept_pause; /* accepting paused after EMFILE */
    /* Login and idle timeouts as libevent common timeouts: thousands of
     * sessions share two queues instead of a heap (front_conn.c). */
    const struct timeval *tv_login, *tv_idle;
    struct front_source *sources[FRONT_SOURCE_BUCKETS];

    /* authd client */
    int auth_fd;
    struct event *auth_ev;
    uint32_t auth_next_id;
    struct front_conn *auth_pending[FRONT_AUTH_SLOTS];
    uint32_t auth_pending_id[FRONT_AUTH_SLOTS];
};

int front_main(int argc, char **argv);

/* front_conn.c */
/* ip: sa as text (front_sockaddr_ip). proxy: a PROXY v2 header comes first
 * (the peer is a trusted balancer); the connection then holds no per-source
 * count until the header names the client. */
void front_conn_accept(struct front *f, int fd, const struct sockaddr *sa, int salen, const char *ip,
                       enum conf_tls_mode mode, uint32_t mechs, bool proxy);
void front_conn_auth_result(struct front_conn *c, const struct pop3_auth_result *r);
/* The id of the connection's pending authd request (0 = none). */
uint32_t *front_conn_auth_id(struct front_conn *c);

/* front_authc.c */
void front_authc_init(struct front *f, int fd);
/* Sends q (everything but id; conv for steps after the first) and wipes it;
 * returns 0 with q->conv set, or -1 when authd is unreachable. */
int front_authc_request(struct front *f, struct front_conn *c, struct ipc_auth_req *q);
/* The connection is going away: drop its pending request. */
void front_authc_cancel(struct front *f, struct front_conn *c);

/* Source accounting (front.c). */
bool front_source_acquire(struct front *f, const struct sockaddr *sa);
void front_source_release(struct front *f, const struct sockaddr *sa);
void front_conn_gone(struct front *f);

/* Refusing at accept, and again once a PROXY header names the client (front.c). */
void front_log_refusal(const char *remote, const char *reason); /* the first each second, then a count */
/* An IPv4 or IPv6 address as text ("?" for another family); cap >= INET6_ADDRSTRLEN. */
void front_sockaddr_ip(const struct sockaddr *sa, char *ip, size_t cap);
/* Said in clear on a STLS listener when a connection cap refuses a client. */
#define FRONT_MSG_TOO_MANY "-ERR [SYS/TEMP] Too many connections; try again later.\r\n"

#endif
