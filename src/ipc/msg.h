/* Messages between popsd's processes. The peer may be compromised, so every
 * message is parsed like client input: typed getters that fail closed on short
 * input, oversize strings, embedded NULs or trailing bytes. One datagram per
 * message over SOCK_SEQPACKET socketpairs. */
#ifndef POPSD_IPC_MSG_H
#define POPSD_IPC_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IPC_MSG_MAX 8192

enum ipc_type {
    IPC_AUTH_REQ = 1, /* front -> authd */
    IPC_AUTH_RES = 2, /* authd -> front */
};

struct ipc_writer {
    uint8_t buf[IPC_MSG_MAX];
    size_t len;
    bool overflow;
};

struct ipc_reader {
    const uint8_t *p;
    size_t left;
    bool bad;
};

void ipc_w_init(struct ipc_writer *w, enum ipc_type type);
void ipc_w_u8(struct ipc_writer *w, uint8_t v);
void ipc_w_u32(struct ipc_writer *w, uint32_t v);
/* A length-prefixed byte string (u16 length). */
void ipc_w_bytes(struct ipc_writer *w, const void *p, size_t len);
void ipc_w_str(struct ipc_writer *w, const char *s);

/* Starts reading a datagram; returns its type or -1. */
int ipc_r_init(struct ipc_reader *r, const uint8_t *buf, size_t len);
uint8_t ipc_r_u8(struct ipc_reader *r);
uint32_t ipc_r_u32(struct ipc_reader *r);
/* Copies a string of at most cap-1 bytes without NULs and NUL-terminates it;
 * anything else marks the reader bad. Returns the length. */
size_t ipc_r_str(struct ipc_reader *r, char *dst, size_t cap);
/* Copies a byte string of at most cap bytes (any bytes); returns its length. */
size_t ipc_r_bytes(struct ipc_reader *r, void *dst, size_t cap);
/* 0 if every getter succeeded and no byte is left over, else -1. */
int ipc_r_end(const struct ipc_reader *r);

/* Sends one datagram without blocking. Returns 0 or -1 (errno set; EAGAIN when the peer is behind). */
int ipc_send(int fd, const struct ipc_writer *w);
/* Receives one datagram into buf (IPC_MSG_MAX bytes). Returns its length,
 * 0 on EOF, -1 on error (errno EAGAIN when none is waiting, EMSGSIZE if truncated). */
long ipc_recv(int fd, uint8_t *buf);

#endif
