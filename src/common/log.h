/* One key=value line per event, to stderr or syslog. Client-supplied text goes
 * through log_quote() first; secrets are never passed in. */
#ifndef POPSD_COMMON_LOG_H
#define POPSD_COMMON_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_NOTICE, LOG_LVL_WARN, LOG_LVL_ERR };

/* role names the process in each line ("front", "authd", ...). */
void log_init(const char *role, bool use_syslog, enum log_level min_level);
void log_set_role(const char *role);

/* Writes "popsd[pid]: role=ROLE event=EVENT <fmt...>" at the given level. */
void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Fatal broken invariant: log and exit(1). */
_Noreturn void log_fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Copies len bytes of untrusted text into dst as a double-quoted value with
 * control bytes, quotes, backslashes and non-ASCII escaped (\xNN), truncated
 * to fit. Always NUL-terminates; returns dst. */
char *log_quote(char *dst, size_t dstsz, const char *src, size_t len);

#endif
