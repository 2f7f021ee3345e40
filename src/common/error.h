/* Errors at one level: library code returns 0 (or a count) on success and a
 * negative code on failure, with detail written to an optional struct error.
 * Only the caller that decides what happens next logs it. */
#ifndef POPSD_COMMON_ERROR_H
#define POPSD_COMMON_ERROR_H

#include <stddef.h>

struct error {
    char msg[256];
};

/* Formats the detail into err (if non-NULL). Always returns -1 so callers can
 * write `return error_set(err, "...")`. */
int error_set(struct error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Same, appending ": strerror(errnum)". */
int error_set_errno(struct error *err, int errnum, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
