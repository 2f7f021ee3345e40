/* The front <-> authd protocol: one request per authentication attempt, one
 * result per request, matched by id. */
#ifndef POPSD_IPC_AUTH_MSG_H
#define POPSD_IPC_AUTH_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/msg.h"

/* Sizes match the SASL layer's limits (checked there with static asserts). */
#define IPC_NAME_MAX 255
#define IPC_SECRET_MAX 6144 /* a password, a bearer token or a SCRAM message */
#define IPC_CB_MAX 64
#define IPC_DATA_MAX 1024   /* a SASL challenge, server-final or failure status */

/* A multi-step mechanism (SCRAM) sends one request per client message: step 0
 * opens conversation conv in authd, later steps continue it. */
struct ipc_auth_req {
    uint32_t id;
    uint32_t conv; /* conversation id, unique per front; = id at step 0 */
    uint8_t step;
    uint8_t plus_offered; /* -PLUS was advertised on this connection */
    char cb_type[16];     /* "tls-exporter", "tls-unique" or "" */
    uint8_t cb_data[IPC_CB_MAX];
    size_t cb_len;
    char mech[32];
    char sid[32];
    char remote[64];
    uint8_t tls;
    char authzid[IPC_NAME_MAX + 1];
    char authcid[IPC_NAME_MAX + 1];
    char secret[IPC_SECRET_MAX + 1]; /* wiped by both sides after use */
    size_t secret_len;
};

/* enum pop3_auth_status values travel as u8. */
struct ipc_auth_res {
    uint32_t id;
    uint8_t status;
    uint32_t delay_ms;
    char user[IPC_NAME_MAX + 1];
    char mail[1024];
    uint8_t data[IPC_DATA_MAX]; /* CONTINUE: challenge; OK: server-final; FAIL: status for the client */
    size_t data_len;
};

void ipc_auth_req_write(struct ipc_writer *w, const struct ipc_auth_req *q);
/* Parses an IPC_AUTH_REQ body (after ipc_r_init). Returns 0 or -1. */
int ipc_auth_req_read(struct ipc_reader *r, struct ipc_auth_req *q);
void ipc_auth_res_write(struct ipc_writer *w, const struct ipc_auth_res *a);
int ipc_auth_res_read(struct ipc_reader *r, struct ipc_auth_res *a);

#endif
