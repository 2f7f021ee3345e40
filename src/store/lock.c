#include "store/lock.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/mailbox.h"

int store_lock_acquire(int dirfd, struct error *err)
{
    /* O_NONBLOCK: opening a FIFO planted under our name must not block. */
    int fd = openat(dirfd, STORE_LOCK_FILE, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
    if (fd < 0) {
        error_set_errno(err, errno, "open %s", STORE_LOCK_FILE);
        return STORE_ERR_TEMP;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        error_set(err, "%s is not a regular file", STORE_LOCK_FILE);
        close(fd);
        return STORE_ERR_TEMP;
    }
    struct flock fl;
    memset(&fl, 0, sizeof(fl)); /* l_pid must be 0 for OFD locks */
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    fl.l_start = 0;
    fl.l_len = 0; /* the whole file */
    if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
        int e = errno;
        close(fd);
        if (e == EAGAIN || e == EACCES) {
            error_set(err, "mailbox is locked by another session");
            return STORE_ERR_INUSE;
        }
        error_set_errno(err, e, "lock %s", STORE_LOCK_FILE);
        return STORE_ERR_TEMP;
    }
    return fd;
}

void store_lock_release(int *fd)
{
    if (*fd >= 0) {
        close(*fd); /* closing the only fd of the description drops the OFD lock */
        *fd = -1;
    }
}
