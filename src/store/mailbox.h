/* The mailbox interface: the only way the POP3 layer reaches mail.
 *
 * A session opens a mailbox once (taking the one-session-per-mailbox lock and
 * scanning a snapshot), reads messages through file descriptors, and at QUIT
 * commits its deletions. Today the implementation is Maildir in-process; a later
 * step moves it behind the `stored` process, which will hand the same fds over
 * SCM_RIGHTS, so nothing here may assume shared memory with the caller beyond
 * the snapshot array. */
#ifndef POPSD_STORE_MAILBOX_H
#define POPSD_STORE_MAILBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* Negative return codes, mapped by the caller onto RFC 3206 response codes. */
enum store_status {
    STORE_OK = 0,
    STORE_ERR_INUSE = -2, /* another session holds the mailbox: [IN-USE] */
    STORE_ERR_TEMP = -3,  /* I/O error, may succeed later: [SYS/TEMP] */
    STORE_ERR_PERM = -4,  /* mailbox missing/misconfigured: [SYS/PERM] */
    STORE_ERR_GONE = -5,  /* message vanished since the snapshot */
};

/* POP3 unique-ids are 1..70 printable characters (RFC 1939 7). */
#define STORE_UIDL_MAX 70

struct store_msg {
    char uidl[STORE_UIDL_MAX + 1]; /* Maildir base name, or a hash of it if not a valid uid */
    uint64_t size;                 /* octets on the wire: LF counted as CRLF, no dot-stuffing */
};

struct store_mailbox;

/* Opens the Maildir at path (which must contain cur/ new/ tmp/; missing
 * subdirectories are created when create is true, mode 0700), takes the
 * exclusive session lock (a Linux OFD lock on path/popsd.lock, released when the
 * mailbox is closed or the process dies) and scans new/ and cur/ into a
 * snapshot sorted by base name. Sizes come from ",W=" in the name when
 * present, else from the size cache file (path/popsd.sizes), else by reading
 * the file once (the cache is then rewritten atomically). Returns STORE_OK or a
 * negative enum store_status. */
int store_open(const char *path, bool create, struct store_mailbox **mb_r, struct error *err);

/* Number of messages in the snapshot; message i is 0-based here. */
uint32_t store_count(const struct store_mailbox *mb);
const struct store_msg *store_get(const struct store_mailbox *mb, uint32_t i);

/* Opens message i read-only (O_NOFOLLOW|O_CLOEXEC), following a rename from
 * new/ to cur/ or a flag change by another agent. Returns an fd >= 0, or
 * STORE_ERR_GONE / STORE_ERR_TEMP. The caller closes the fd. */
int store_msg_open(struct store_mailbox *mb, uint32_t i, struct error *err);

/* UPDATE state: unlinks every message i with deleted[i] true (ENOENT counts as
 * done), then fsyncs new/ and cur/. Messages delivered after the snapshot are
 * never touched. Returns STORE_OK or STORE_ERR_TEMP (some deletions may then
 * not have happened; none of the undeleted messages is ever lost). */
int store_commit(struct store_mailbox *mb, const bool *deleted, struct error *err);

/* Releases the lock and frees everything; NULLs *mb. Safe on NULL. */
void store_close(struct store_mailbox **mb);

#endif
