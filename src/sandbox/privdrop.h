/* Privilege drop: one ordered, fully checked routine. Any failure is fatal to
 * the caller (it must exit): a half-dropped process is never allowed to run. */
#ifndef POPSD_SANDBOX_PRIVDROP_H
#define POPSD_SANDBOX_PRIVDROP_H

#include <sys/types.h>

#include "common/error.h"

struct privdrop_target {
    uid_t uid;
    gid_t gid;
    const char *name;
};

/* Looks the account up (before any chroot). Returns 0 or -1. */
int privdrop_lookup(const char *user, struct privdrop_target *t, struct error *err);

/* If running as root: chroot(chroot_dir) when non-NULL and chdir("/"), setgroups to
 * the single gid, setresgid, setresuid, then verifies that uid 0 cannot be
 * regained; sets PR_SET_NO_NEW_PRIVS and PR_SET_DUMPABLE=0 in every case.
 * When not root (development runs) only the last two happen. Returns 0 or -1. */
int privdrop_apply(const struct privdrop_target *t, const char *chroot_dir, struct error *err);

#endif
