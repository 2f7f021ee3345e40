#include "common/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_role = "popsd";
static bool log_syslog;
static enum log_level log_min = LOG_LVL_INFO;
/* getpid() is a system call on every log line otherwise (glibc stopped caching
 * it); a child forked after log_init gets its own through the atfork hook. */
static pid_t log_pid;

static void log_forget_pid(void)
{
    log_pid = 0;
}

void log_init(const char *role, bool use_syslog, enum log_level min_level)
{
    log_role = role;
    log_syslog = use_syslog;
    log_min = min_level;
    static bool hooked;
    if (!hooked && pthread_atfork(NULL, NULL, log_forget_pid) == 0)
        hooked = true;
    log_pid = 0;
    if (use_syslog)
        openlog("popsd", LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void log_set_role(const char *role)
{
    log_role = role;
}

static int syslog_prio(enum log_level lvl)
{
    switch (lvl) {
    case LOG_LVL_DEBUG: return LOG_DEBUG;
    case LOG_LVL_INFO: return LOG_INFO;
    case LOG_LVL_NOTICE: return LOG_NOTICE;
    case LOG_LVL_WARN: return LOG_WARNING;
    default: return LOG_ERR;
    }
}

static void log_vwrite(enum log_level lvl, const char *event, const char *fmt, va_list ap)
{
    char body[1024];
    vsnprintf(body, sizeof(body), fmt, ap);
    if (log_syslog) {
        syslog(syslog_prio(lvl), "role=%s event=%s %s", log_role, event, body);
        return;
    }
    struct timespec ts;
    struct tm tm;
    char when[32];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    /* One write() per line so lines from several processes never interleave. */
    char line[1200];
    if (log_pid == 0)
        log_pid = getpid();
    int n = snprintf(line, sizeof(line), "%s.%03ldZ popsd[%ld]: role=%s event=%s %s\n", when,
                     ts.tv_nsec / 1000000, (long)log_pid, log_role, event, body);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line)) {
        n = sizeof(line) - 1;
        line[n - 1] = '\n';
    }
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

void log_event(enum log_level lvl, const char *event, const char *fmt, ...)
{
    if (lvl < log_min)
        return;
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(lvl, event, fmt, ap);
    va_end(ap);
}

_Noreturn void log_fatal(const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char q[600];
    log_event(LOG_LVL_ERR, "fatal", "msg=%s", log_quote(q, sizeof(q), msg, strlen(msg)));
    exit(1);
}

char *log_quote(char *dst, size_t dstsz, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    if (dstsz < 3) {
        if (dstsz > 0)
            dst[0] = '\0';
        return dst;
    }
    dst[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        char esc[5];
        size_t k = 0;
        if (c == '"' || c == '\\') {
            esc[k++] = '\\';
            esc[k++] = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            esc[k++] = '\\';
            esc[k++] = 'x';
            esc[k++] = hex[c >> 4];
            esc[k++] = hex[c & 15];
        } else {
            esc[k++] = (char)c;
        }
        if (o + k + 2 > dstsz) /* room for closing quote and NUL */
            break;
        memcpy(dst + o, esc, k);
        o += k;
    }
    dst[o++] = '"';
    dst[o] = '\0';
    return dst;
}
