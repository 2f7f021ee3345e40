/* Starting a child role: fork, move the given fds to 3, 4, ... (everything
 * else closed), and re-exec the popsd binary as "popsd -x ROLE ...", so each
 * role starts from a clean image (fresh ASLR, no inherited heap secrets). */
#ifndef POPSD_IPC_SPAWN_H
#define POPSD_IPC_SPAWN_H

#include <sys/types.h>

#include "common/error.h"

/* Returns the child's pid or -1. argv[0] is ignored and replaced by exe. */
pid_t ipc_spawn(const char *exe, char *const argv[], const int *fds, int nfds, struct error *err);

/* In a child: tells the parent this child is set up (one byte on the fd named
 * by "-r FD"), then closes it. NULL or a bad number does nothing. */
void ipc_report_ready(const char *fd_arg);

#endif
