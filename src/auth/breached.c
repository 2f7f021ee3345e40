/* Binary search of a sorted "SHA1HEX:COUNT" file by byte offset. See breached.h. */
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/breached.h"
#include "common/secret.h"

#define HASH_HEX 40
#define COUNT_MAX_DIGITS 20
#define LINE_MAX_BYTES 128 /* 40 + ':' + a count + CRLF is ~55; more is not this format */

struct bfile {
    int fd;
    off_t size;
    const char *path;
};

/* Reads up to n bytes at off; short only at end of file. */
static ssize_t read_at(const struct bfile *f, char *buf, size_t n, off_t off)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = pread(f->fd, buf + got, n - got, off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

static int bad_line(const struct bfile *f, off_t off, struct error *err)
{
    return error_set(err, "%s: malformed line at byte %lld (expected SHA1HEX:COUNT)", f->path,
                     (long long)off);
}

/* Parses the line starting at off into hash (upper case) and the offset of the
 * next line (f->size after the last one). */
static int line_at(const struct bfile *f, off_t off, char hash[HASH_HEX], off_t *next, struct error *err)
{
    char buf[LINE_MAX_BYTES];
    ssize_t n = read_at(f, buf, sizeof(buf), off);
    if (n < 0)
        return error_set_errno(err, errno, "%s", f->path);
    if (n < HASH_HEX + 2 || buf[HASH_HEX] != ':')
        return bad_line(f, off, err);
    for (size_t i = 0; i < HASH_HEX; i++) {
        char c = buf[i];
        if (c >= 'a' && c <= 'f')
            c = (char)(c - 'a' + 'A');
        if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
            return bad_line(f, off, err);
        hash[i] = c;
    }
    ssize_t i = HASH_HEX + 1;
    while (i < n && buf[i] >= '0' && buf[i] <= '9' && i - (HASH_HEX + 1) <= COUNT_MAX_DIGITS)
        i++;
    if (i == HASH_HEX + 1 || i - (HASH_HEX + 1) > COUNT_MAX_DIGITS)
        return bad_line(f, off, err);
    if (i < n && buf[i] == '\r')
        i++;
    if (i < n && buf[i] == '\n') {
        *next = off + i + 1;
        return 0;
    }
    if (i == n && off + n == f->size) { /* the last line may lack its newline */
        *next = f->size;
        return 0;
    }
    return bad_line(f, off, err);
}

/* The first line start at or after mid (f->size if there is none). */
static int start_at_or_after(const struct bfile *f, off_t mid, off_t *start, struct error *err)
{
    if (mid == 0) {
        *start = 0;
        return 0;
    }
    char buf[LINE_MAX_BYTES];
    ssize_t n = read_at(f, buf, sizeof(buf), mid - 1); /* a '\n' just before mid makes mid a start */
    if (n < 0)
        return error_set_errno(err, errno, "%s", f->path);
    const char *nl = memchr(buf, '\n', (size_t)n);
    if (nl != NULL)
        *start = mid - 1 + (nl - buf) + 1;
    else if (mid - 1 + n >= f->size)
        *start = f->size;
    else
        return error_set(err, "%s: line longer than %d bytes near byte %lld", f->path, LINE_MAX_BYTES,
                         (long long)mid);
    return 0;
}

static int sha1_hex(const char *pw, size_t len, char out[HASH_HEX], struct error *err)
{
    static const char hex[] = "0123456789ABCDEF";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (EVP_Digest(pw, len, md, &mdlen, EVP_sha1(), NULL) != 1 || mdlen * 2 != HASH_HEX)
        return error_set(err, "SHA-1 failed");
    for (unsigned i = 0; i < mdlen; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    secret_wipe(md, sizeof(md));
    return 0;
}

/* Invariant: lo is a line start and every line before it is < want; every line
 * starting at or after hi is > want. The lines read bound the ones read later,
 * so a region out of order is caught when the search passes through it. */
static int search(const struct bfile *f, const char want[HASH_HEX], struct error *err)
{
    off_t lo = 0, hi = f->size;
    char lo_hash[HASH_HEX], hi_hash[HASH_HEX], h[HASH_HEX];
    bool have_lo = false, have_hi = false;
    while (lo < hi) {
        off_t mid = lo + (hi - lo) / 2, s = 0, next = 0;
        if (start_at_or_after(f, mid, &s, err) < 0)
            return -1;
        if (s >= hi) { /* no line starts in [mid, hi) */
            hi = mid;
            continue;
        }
        if (line_at(f, s, h, &next, err) < 0)
            return -1;
        if ((have_lo && memcmp(h, lo_hash, HASH_HEX) <= 0) || (have_hi && memcmp(h, hi_hash, HASH_HEX) >= 0))
            return error_set(err, "%s: not sorted by hash (line at byte %lld)", f->path, (long long)s);
        int c = memcmp(h, want, HASH_HEX);
        if (c == 0)
            return 1;
        if (c < 0) {
            lo = next;
            memcpy(lo_hash, h, HASH_HEX);
            have_lo = true;
        } else {
            hi = s;
            memcpy(hi_hash, h, HASH_HEX);
            have_hi = true;
        }
    }
    return 0;
}

int breached_check(const char *path, const char *pw, size_t len, struct error *err)
{
    struct bfile f = {.fd = open(path, O_RDONLY | O_CLOEXEC), .path = path};
    if (f.fd < 0)
        return error_set_errno(err, errno, "breached password list %s", path);
    struct stat st;
    int r;
    char want[HASH_HEX];
    if (fstat(f.fd, &st) < 0) {
        r = error_set_errno(err, errno, "breached password list %s", path);
    } else if (!S_ISREG(st.st_mode)) {
        r = error_set(err, "breached password list %s: not a regular file", path);
    } else {
        f.size = st.st_size;
        r = sha1_hex(pw, len, want, err);
        if (r == 0)
            r = search(&f, want, err);
    }
    secret_wipe(want, sizeof(want));
    close(f.fd);
    return r;
}
