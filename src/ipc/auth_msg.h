/* The front <-> authd protocol: one request per authentication attempt, one
 * result per request, matched by id. */
#ifndef POPSD_IPC_AUTH_MSG_H
#define POPSD_IPC_AUTH_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "ipc/msg.h"

/* Sizes match the SASL layer's limits (checked there with static asserts). */
#define IPC_NAME_MAX 255
#define IPC_SECRET_MAX 1024

struct ipc_auth_req {
    uint32_t id;
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
};

void ipc_auth_req_write(struct ipc_writer *w, const struct ipc_auth_req *q);
/* Parses an IPC_AUTH_REQ body (after ipc_r_init). Returns 0 or -1. */
int ipc_auth_req_read(struct ipc_reader *r, struct ipc_auth_req *q);
void ipc_auth_res_write(struct ipc_writer *w, const struct ipc_auth_res *a);
int ipc_auth_res_read(struct ipc_reader *r, struct ipc_auth_res *a);

#endif
