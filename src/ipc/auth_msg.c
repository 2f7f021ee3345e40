#include "ipc/auth_msg.h"

#include <string.h>

#include "common/secret.h"

void ipc_auth_req_write(struct ipc_writer *w, const struct ipc_auth_req *q)
{
    ipc_w_init(w, IPC_AUTH_REQ);
    ipc_w_u32(w, q->id);
    ipc_w_u32(w, q->conv);
    ipc_w_u8(w, q->step);
    ipc_w_u8(w, q->plus_offered);
    ipc_w_str(w, q->cb_type);
    ipc_w_bytes(w, q->cb_data, q->cb_len);
    ipc_w_str(w, q->mech);
    ipc_w_str(w, q->sid);
    ipc_w_str(w, q->remote);
    ipc_w_u8(w, q->tls);
    ipc_w_str(w, q->authzid);
    ipc_w_str(w, q->authcid);
    ipc_w_bytes(w, q->secret, q->secret_len);
}

int ipc_auth_req_read(struct ipc_reader *r, struct ipc_auth_req *q)
{
    memset(q, 0, sizeof(*q));
    q->id = ipc_r_u32(r);
    q->conv = ipc_r_u32(r);
    q->step = ipc_r_u8(r);
    q->plus_offered = ipc_r_u8(r);
    ipc_r_str(r, q->cb_type, sizeof(q->cb_type));
    q->cb_len = ipc_r_bytes(r, q->cb_data, sizeof(q->cb_data));
    ipc_r_str(r, q->mech, sizeof(q->mech));
    ipc_r_str(r, q->sid, sizeof(q->sid));
    ipc_r_str(r, q->remote, sizeof(q->remote));
    q->tls = ipc_r_u8(r);
    ipc_r_str(r, q->authzid, sizeof(q->authzid));
    ipc_r_str(r, q->authcid, sizeof(q->authcid));
    q->secret_len = ipc_r_str(r, q->secret, sizeof(q->secret));
    if (ipc_r_end(r) < 0 || q->tls > 1 || q->plus_offered > 1) {
        secret_wipe(q, sizeof(*q));
        return -1;
    }
    return 0;
}

void ipc_auth_res_write(struct ipc_writer *w, const struct ipc_auth_res *a)
{
    ipc_w_init(w, IPC_AUTH_RES);
    ipc_w_u32(w, a->id);
    ipc_w_u8(w, a->status);
    ipc_w_u32(w, a->delay_ms);
    ipc_w_str(w, a->user);
    ipc_w_str(w, a->mail);
    ipc_w_bytes(w, a->data, a->data_len);
}

int ipc_auth_res_read(struct ipc_reader *r, struct ipc_auth_res *a)
{
    memset(a, 0, sizeof(*a));
    a->id = ipc_r_u32(r);
    a->status = ipc_r_u8(r);
    a->delay_ms = ipc_r_u32(r);
    ipc_r_str(r, a->user, sizeof(a->user));
    ipc_r_str(r, a->mail, sizeof(a->mail));
    a->data_len = ipc_r_bytes(r, a->data, sizeof(a->data));
    return ipc_r_end(r);
}
