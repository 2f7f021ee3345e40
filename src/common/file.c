#include "common/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/secret.h"

char *file_read_small(const char *path, size_t max, mode_t forbidden, const char *hint, size_t *len,
                      struct error *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        error_set_errno(err, errno, "%s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size <= 0 || (size_t)st.st_size > max) {
        close(fd);
        error_set(err, "%s: not a regular file of 1 .. %zu bytes", path, max);
        return NULL;
    }
    if (st.st_mode & forbidden) {
        close(fd);
        error_set(err, "%s: mode %03o: %s", path, (unsigned)(st.st_mode & 0777), hint);
        return NULL;
    }
    size_t n = (size_t)st.st_size, got = 0;
    char *buf = malloc(n + 1);
    while (buf != NULL && got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    close(fd);
    if (buf == NULL || got != n) {
        if (buf != NULL)
            secret_wipe(buf, n);
        free(buf);
        error_set(err, "%s: read failed", path);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}
