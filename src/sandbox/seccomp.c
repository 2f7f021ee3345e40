#include "sandbox/seccomp.h"

#include <errno.h>
#include <string.h>
#include <seccomp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#if defined(__SANITIZE_ADDRESS__)
#define POPSD_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(undefined_behavior_sanitizer)
#define POPSD_SANITIZED 1
#endif
#endif

/* What a front does after start-up, as seen with strace over the integration
 * suite, plus what glibc, libevent and OpenSSL may need on rarer paths. */
static const int front_allowed[] = {
    /* descriptors and files beneath the chroot */
    SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev), SCMP_SYS(pread64), SCMP_SYS(lseek),
    SCMP_SYS(close), SCMP_SYS(openat), SCMP_SYS(newfstatat), SCMP_SYS(fstat), SCMP_SYS(statx),
    SCMP_SYS(getdents64), SCMP_SYS(fcntl), SCMP_SYS(mkdir), SCMP_SYS(mkdirat), SCMP_SYS(unlinkat),
    SCMP_SYS(renameat), SCMP_SYS(renameat2), SCMP_SYS(fsync), SCMP_SYS(fdatasync), SCMP_SYS(ftruncate),
    SCMP_SYS(pipe2),
    /* sockets it was given or accepted */
    SCMP_SYS(accept4), SCMP_SYS(accept), SCMP_SYS(listen), SCMP_SYS(setsockopt), SCMP_SYS(getsockopt),
    SCMP_SYS(getsockname), SCMP_SYS(getpeername), SCMP_SYS(shutdown), SCMP_SYS(sendto), SCMP_SYS(recvfrom),
    SCMP_SYS(sendmsg), SCMP_SYS(recvmsg),
    /* event loop, memory, time, randomness, signals, exit */
    SCMP_SYS(epoll_create1), SCMP_SYS(epoll_ctl), SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(brk),
    SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap), SCMP_SYS(mprotect), SCMP_SYS(madvise),
    SCMP_SYS(getrandom), SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time), SCMP_SYS(nanosleep),
    SCMP_SYS(clock_nanosleep), SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(getuid), SCMP_SYS(geteuid),
    SCMP_SYS(getgid), SCMP_SYS(getegid), SCMP_SYS(rt_sigaction), SCMP_SYS(rt_sigprocmask), SCMP_SYS(rt_sigreturn),
    SCMP_SYS(restart_syscall), SCMP_SYS(futex), SCMP_SYS(sched_yield), SCMP_SYS(exit), SCMP_SYS(exit_group),
    SCMP_SYS(tgkill), /* abort() on a broken invariant */
};

static const int front_fatal[] = {
    SCMP_SYS(execve),  SCMP_SYS(execveat), SCMP_SYS(ptrace),   SCMP_SYS(process_vm_readv),
    SCMP_SYS(process_vm_writev), SCMP_SYS(fork), SCMP_SYS(vfork), SCMP_SYS(setuid), SCMP_SYS(setgid),
    SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(chroot), SCMP_SYS(mount), SCMP_SYS(bpf),
};

#ifndef POPSD_SANITIZED
/* Adds one rule per listed call, all with the same action (rc: the first error stops it). */
static int add_rules(scmp_filter_ctx ctx, uint32_t action, const int *calls, size_t n, int rc)
{
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = seccomp_rule_add(ctx, action, calls[i], 0);
    return rc;
}

/* Loads the filter unless building it failed, and releases it either way. */
static int load_filter(scmp_filter_ctx ctx, int rc, struct error *err)
{
    if (rc == 0)
        rc = seccomp_load(ctx);
    seccomp_release(ctx);
    if (rc != 0)
        return error_set(err, "seccomp: %s", strerror(-rc));
    return 0;
}
#endif

int sandbox_seccomp_front(struct error *err)
{
#ifdef POPSD_SANITIZED
    (void)front_allowed;
    (void)front_fatal;
    (void)err;
    return 0;
#else
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (ctx == NULL)
        return error_set(err, "seccomp_init failed");
    int rc = add_rules(ctx, SCMP_ACT_ALLOW, front_allowed, sizeof(front_allowed) / sizeof(front_allowed[0]), 0);
    rc = add_rules(ctx, SCMP_ACT_KILL_PROCESS, front_fatal, sizeof(front_fatal) / sizeof(front_fatal[0]), rc);
    /* ioctl only to ask how many bytes are waiting (libevent) or to set non-blocking. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, FIONREAD));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1, SCMP_A1(SCMP_CMP_EQ, FIONBIO));
    /* syslog(3) may reconnect to /dev/log: local sockets only, never the network. */
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1, SCMP_A0(SCMP_CMP_EQ, AF_UNIX));
    if (rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0);
    return load_filter(ctx, rc, err);
#endif
}

/* authd runs SQLite, libcurl (webhook, token introspection: DNS, outbound
 * sockets, resolver threads), Argon2 threads and the exec hook, so an
 * allow-list would be long and brittle. It gets the other half: calls that
 * no part of it ever makes, and that an attacker who took it over would want
 * (debugging or reading other processes, namespaces and mounts, kernel
 * modules and BPF, changing identity), kill it. exec only with an exec hook. */
static const int authd_fatal[] = {
    SCMP_SYS(ptrace), SCMP_SYS(process_vm_readv), SCMP_SYS(process_vm_writev), SCMP_SYS(mount),
    SCMP_SYS(umount2), SCMP_SYS(pivot_root), SCMP_SYS(chroot), SCMP_SYS(setns), SCMP_SYS(unshare),
    SCMP_SYS(bpf), SCMP_SYS(perf_event_open), SCMP_SYS(kexec_load), SCMP_SYS(kexec_file_load),
    SCMP_SYS(init_module), SCMP_SYS(finit_module), SCMP_SYS(delete_module), SCMP_SYS(keyctl),
    SCMP_SYS(add_key), SCMP_SYS(request_key), SCMP_SYS(userfaultfd), SCMP_SYS(open_by_handle_at),
    SCMP_SYS(name_to_handle_at), SCMP_SYS(swapon), SCMP_SYS(swapoff), SCMP_SYS(reboot), SCMP_SYS(acct),
    SCMP_SYS(quotactl), SCMP_SYS(personality), SCMP_SYS(setuid), SCMP_SYS(setgid), SCMP_SYS(setreuid),
    SCMP_SYS(setregid), SCMP_SYS(setresuid), SCMP_SYS(setresgid), SCMP_SYS(setgroups), SCMP_SYS(setfsuid),
    SCMP_SYS(setfsgid), SCMP_SYS(io_uring_setup), SCMP_SYS(io_uring_enter), SCMP_SYS(io_uring_register),
};

int sandbox_seccomp_authd(bool allow_exec, struct error *err)
{
#ifdef POPSD_SANITIZED
    (void)authd_fatal;
    (void)allow_exec;
    (void)err;
    return 0;
#else
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == NULL)
        return error_set(err, "seccomp_init failed");
    int rc = add_rules(ctx, SCMP_ACT_KILL_PROCESS, authd_fatal, sizeof(authd_fatal) / sizeof(authd_fatal[0]), 0);
    if (!allow_exec && rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(execve), 0);
    if (!allow_exec && rc == 0)
        rc = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(execveat), 0);
    return load_filter(ctx, rc, err);
#endif
}
