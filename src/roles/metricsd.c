/* The metrics role: serves the counters every process keeps in the shared
 * region (src/common/metrics.h) as Prometheus text, over HTTP with
 * libmicrohttpd. Started by the parent, one per generation, when [metrics]
 * address is set, as
 *   popsd -x metrics -c CONF -m FD,SLOT
 * with fd 3 = the listening socket (bound by the parent) and FD = the region,
 * mapped read-only. It runs as [server] user in an empty chroot ([metrics]
 * chroot): it holds no secret, reads no file after start-up and can write
 * nowhere. Only GET and HEAD of /metrics are served. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/metrics.h"
#include "conf/conf.h"
#include "roles/roles.h"
#include "sandbox/privdrop.h"

#define METRICSD_LISTEN_FD 3
#define METRICSD_BODY_MAX 65536

/* The chroot must be a root-owned directory nobody else can write to, and
 * empty, so the process can see nothing after the drop. Created if missing. */
static void prepare_chroot(const char *dir)
{
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        log_fatal("metrics chroot %s: %s", dir, strerror(errno));
    struct stat st;
    if (lstat(dir, &st) < 0)
        log_fatal("metrics chroot %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)))
        log_fatal("metrics chroot %s must be a directory owned by root and writable by root only", dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        log_fatal("metrics chroot %s: %s", dir, strerror(errno));
    struct dirent *e;
    unsigned n = 0;
    while ((e = readdir(d)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    if (n != 0)
        log_fatal("metrics chroot %s is not empty", dir);
}

__attribute__((format(printf, 2, 0))) static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char msg[256], q[300];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strcspn(msg, "\r\n");
    log_event(LOG_LVL_NOTICE, "http_error", "detail=%s", log_quote(q, sizeof(q), msg, n));
}

static enum MHD_Result reply(struct MHD_Connection *conn, unsigned code, const char *body, size_t len,
                             const char *type)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (code == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

/* One polling thread calls this: the static buffer is never shared. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size, void **state)
{
    static int seen;
    static char body[METRICSD_BODY_MAX];
    static const char text[] = "text/plain; charset=utf-8";
    if (*state == NULL) { /* headers only so far; answer once the request is complete */
        *state = &seen;
        return MHD_YES;
    }
    if (*upload_size != 0) { /* a body is read and ignored (the connection memory limit bounds it) */
        *upload_size = 0;
        return MHD_YES;
    }
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0) {
        static const char m[] = "Method not allowed.\n";
        return reply(conn, MHD_HTTP_METHOD_NOT_ALLOWED, m, sizeof(m) - 1, text);
    }
    if (strcmp(url, "/metrics") != 0) {
        static const char m[] = "Not found; the metrics are at /metrics.\n";
        return reply(conn, MHD_HTTP_NOT_FOUND, m, sizeof(m) - 1, text);
    }
    size_t len = metrics_render(metrics_region(), body, sizeof(body));
    if (len == 0) {
        static const char m[] = "Metrics do not fit the buffer.\n";
        return reply(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, m, sizeof(m) - 1, text);
    }
    return reply(conn, MHD_HTTP_OK, body, len, "text/plain; version=0.0.4; charset=utf-8");
}

int metricsd_main(int argc, char **argv)
{
    static struct conf c;
    const char *conf_path = CONF_PATH_DEFAULT, *metrics_arg = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt(argc, argv, "x:c:m:")) != -1) {
        if (opt == 'c')
            conf_path = optarg;
        else if (opt == 'm')
            metrics_arg = optarg;
    }
    log_set_role("metrics");
    struct error err = {{0}};
    if (conf_load(conf_path, &c, &err) < 0)
        log_fatal("%s", err.msg);
    log_init("metrics", c.log_syslog, c.log_level);
    if (metrics_arg == NULL || metrics_attach(metrics_arg, false, &err) < 0)
        log_fatal("%s", metrics_arg == NULL ? "no -m FD,SLOT" : err.msg);
    struct privdrop_target t;
    if (privdrop_lookup(c.front_user, &t, &err) < 0)
        log_fatal("%s", err.msg);
    bool chrooted = geteuid() == 0;
    if (chrooted)
        prepare_chroot(c.metrics_chroot);
    if (privdrop_apply(&t, chrooted ? c.metrics_chroot : NULL, &err) < 0)
        log_fatal("privilege drop: %s", err.msg);

    /* Signals are taken by sigwaitinfo() below; the HTTP thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGINT);
    if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
        log_fatal("sigprocmask: %s", strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    int fl = fcntl(METRICSD_LISTEN_FD, F_GETFL);
    if (fl < 0 || fcntl(METRICSD_LISTEN_FD, F_SETFL, fl | O_NONBLOCK) < 0)
        log_fatal("no listening socket on fd %d", METRICSD_LISTEN_FD);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ITC | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        on_request, NULL, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)METRICSD_LISTEN_FD,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)32, MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)8,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)16384,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, MHD_OPTION_END);
    if (d == NULL)
        log_fatal("cannot start the HTTP server");
    log_event(LOG_LVL_INFO, "started", "address=%s user=%s chroot=%s", c.metrics_address, c.front_user,
              chrooted ? c.metrics_chroot : "-");
    for (;;) {
        int sig = sigwaitinfo(&set, NULL);
        if (sig == SIGTERM || sig == SIGUSR2)
            break;
        /* SIGINT: the parent decides when we stop. */
    }
    /* The listening socket is shared with the parent and the next generation's
     * metrics process: MHD must not shut it down, only forget it. */
    MHD_quiesce_daemon(d);
    MHD_stop_daemon(d);
    log_event(LOG_LVL_INFO, "exiting", "pid=%ld", (long)getpid());
    return 0;
}
