/* System-call filters (seccomp-bpf via libseccomp), installed after the
 * privilege drop. The front, which parses hostile bytes all day, may only do
 * what serving POP3 needs: I/O on the descriptors it has, files beneath its
 * chroot, memory, time and its event loop. It cannot execute programs, open
 * network connections, trace or signal other processes, or change identity.
 *
 * An unlisted call fails with EPERM rather than killing the process: an
 * attacker gains nothing from the error, and a rare path we did not foresee
 * (say, a syslog reconnect) degrades instead of dropping every session. The
 * plainly hostile calls (exec, ptrace, ...) kill the process. */
#ifndef POPSD_SANDBOX_SECCOMP_H
#define POPSD_SANDBOX_SECCOMP_H

#include <stdbool.h>

#include "common/error.h"

/* Installs the front's filter. Returns 0, or -1 with detail. In sanitizer
 * builds (whose runtimes need more calls) it installs nothing and returns 0. */
int sandbox_seccomp_front(struct error *err);

/* Installs authd's filter (a deny-list: see seccomp.c), before its threads
 * start so they inherit it. allow_exec: an [alerts] exec hook is configured. */
int sandbox_seccomp_authd(bool allow_exec, struct error *err);

#endif
