/* One POP3 session per mailbox: an exclusive Linux open-file-description lock
 * on <maildir>/popsd.lock. OFD locks belong to the open file, not the process,
 * so a second open in the same process conflicts too, and the kernel drops the
 * lock when the last fd of it is closed or the process dies: no stale locks. */
#ifndef POPSD_STORE_LOCK_H
#define POPSD_STORE_LOCK_H

#include "common/error.h"

#define STORE_LOCK_FILE "popsd.lock"

/* Opens (creating, mode 0600, never following a symlink) dirfd/popsd.lock and
 * takes a non-blocking exclusive lock on it. Returns the lock fd (>= 0), or
 * STORE_ERR_INUSE if another holder has it, or STORE_ERR_TEMP with detail. */
int store_lock_acquire(int dirfd, struct error *err);

/* Releases the lock by closing the fd; sets *fd to -1. Safe on -1. */
void store_lock_release(int *fd);

#endif
