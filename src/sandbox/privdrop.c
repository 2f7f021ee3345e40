#include "sandbox/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

int privdrop_lookup(const char *user, struct privdrop_target *t, struct error *err)
{
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL)
        return errno ? error_set_errno(err, errno, "getpwnam(%s)", user)
                     : error_set(err, "no such user '%s' (create it, or set another in the config)", user);
    if (pw->pw_uid == 0)
        return error_set(err, "user '%s' is root; a dedicated unprivileged account is required", user);
    t->uid = pw->pw_uid;
    t->gid = pw->pw_gid;
    t->name = user;
    return 0;
}

int privdrop_apply(const struct privdrop_target *t, const char *chroot_dir, struct error *err)
{
    if (geteuid() == 0) {
        if (chroot_dir != NULL) {
            if (chroot(chroot_dir) < 0)
                return error_set_errno(err, errno, "chroot(%s)", chroot_dir);
            if (chdir("/") < 0)
                return error_set_errno(err, errno, "chdir(/)");
        }
        if (setgroups(1, &t->gid) < 0)
            return error_set_errno(err, errno, "setgroups");
        if (setresgid(t->gid, t->gid, t->gid) < 0)
            return error_set_errno(err, errno, "setresgid(%u)", (unsigned)t->gid);
        if (setresuid(t->uid, t->uid, t->uid) < 0)
            return error_set_errno(err, errno, "setresuid(%u)", (unsigned)t->uid);
        uid_t r, e, s;
        gid_t rg, eg, sg;
        if (getresuid(&r, &e, &s) < 0 || r != t->uid || e != t->uid || s != t->uid ||
            getresgid(&rg, &eg, &sg) < 0 || rg != t->gid || eg != t->gid || sg != t->gid)
            return error_set(err, "privilege drop did not take effect");
        if (setuid(0) == 0 || seteuid(0) == 0)
            return error_set(err, "root could be regained after the drop");
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return error_set_errno(err, errno, "PR_SET_NO_NEW_PRIVS");
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
        return error_set_errno(err, errno, "PR_SET_DUMPABLE");
    return 0;
}
