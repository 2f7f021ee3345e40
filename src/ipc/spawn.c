#include "ipc/spawn.h"

#include "common/strnum.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

/* In the child between fork and exec only async-signal-safe calls are allowed. */
static void child_exec(const char *exe, char *const argv[], const int *fds, int nfds)
{
    /* First move every fd above the target range so dup2 never clobbers one still needed. */
    int high[64];
    if (nfds > 64)
        _exit(127);
    for (int i = 0; i < nfds; i++) {
        high[i] = fcntl(fds[i], F_DUPFD, 3 + nfds);
        if (high[i] < 0)
            _exit(127);
    }
    for (int i = 0; i < nfds; i++)
        if (dup2(high[i], 3 + i) < 0)
            _exit(127);
    closefrom(3 + nfds);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    execv(exe, argv);
    _exit(127);
}

pid_t ipc_spawn(const char *exe, char *const argv[], const int *fds, int nfds, struct error *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return error_set_errno(err, errno, "fork");
    if (pid == 0)
        child_exec(exe, argv, fds, nfds);
    return pid;
}

void ipc_report_ready(const char *fd_arg)
{
    uint32_t fd;
    if (fd_arg == NULL || strnum_u32_str(fd_arg, &fd) < 0 || fd < 3 || fd > 1024)
        return;
    ssize_t w = write((int)fd, "R", 1);
    (void)w; /* a parent that went away has nothing to be told */
    close((int)fd);
}
