/* popsctl bans / unban / locks / unlock / events / guard-stats: talks to authd
 * over its control socket (root only), one request per connection. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "conf/conf.h"
#include "ctl/ctl.h"

static int request(const char *path, const char *line, FILE *out)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "popsctl: control socket path too long\n");
        return 1;
    }
    snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) < 0) {
        fprintf(stderr, "popsctl: cannot reach popsd at %s: %s (is popsd running?)\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return 1;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    size_t n = strlen(line);
    if (write(fd, line, n) != (ssize_t)n || write(fd, "\n", 1) != 1) {
        fprintf(stderr, "popsctl: write: %s\n", strerror(errno));
        close(fd);
        return 1;
    }
    /* Read the whole reply (bounded), then check it ends with ".\n". */
    size_t cap = 1 << 20, len = 0;
    char *buf = malloc(cap + 1);
    if (buf == NULL) {
        close(fd);
        return 1;
    }
    ssize_t r;
    while (len < cap && (r = read(fd, buf + len, cap - len)) > 0)
        len += (size_t)r;
    close(fd);
    buf[len] = '\0';
    if (len < 2 || strcmp(buf + len - 2, ".\n") != 0) {
        fprintf(stderr, "popsctl: incomplete reply from popsd\n");
        free(buf);
        return 1;
    }
    buf[len - 2] = '\0';
    int rc = strncmp(buf, "ERR ", 4) == 0 ? 1 : 0;
    fputs(buf, rc ? stderr : out);
    free(buf);
    return rc;
}

/* Runs one request and hands back its reply as a heap string (*reply, NULL on failure). */
static int request_text(const char *path, const char *line, char **reply)
{
    size_t len = 0;
    *reply = NULL;
    FILE *mem = open_memstream(reply, &len);
    if (mem == NULL)
        return 1;
    int rc = request(path, line, mem);
    fclose(mem);
    return rc;
}

static int print_table(const char *path, const char *cmd, const char *h1)
{
    char *tmp;
    int rc = request_text(path, cmd, &tmp);
    if (rc == 0) {
        printf("%-44s %6s %12s\n", h1, strcmp(cmd, "BANS") == 0 ? "level" : "fails", "expires_in_s");
        char *save = NULL;
        for (char *l = strtok_r(tmp, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
            char *sp2 = strrchr(l, ' ');
            if (sp2 == NULL)
                continue;
            *sp2 = '\0';
            char *sp1 = strrchr(l, ' ');
            if (sp1 == NULL)
                continue;
            *sp1 = '\0';
            printf("%-44s %6s %12s\n", l, sp1 + 1, sp2 + 1);
        }
    }
    free(tmp);
    return rc;
}

static int print_events(const char *path, const char *user)
{
    char line[600], *tmp;
    snprintf(line, sizeof(line), "EVENTS %s", user);
    int rc = request_text(path, line, &tmp);
    if (rc == 0) {
        printf("%-20s %-16s %-40s %s\n", "time (UTC)", "event", "remote", "mechanism");
        char *save = NULL;
        for (char *l = strtok_r(tmp, "\n", &save); l != NULL; l = strtok_r(NULL, "\n", &save)) {
            long long at;
            char ev[41], remote[49], mech[25];
            if (sscanf(l, "%lld %40s %48s %24s", &at, ev, remote, mech) != 4)
                continue;
            time_t t = (time_t)at;
            struct tm tm;
            char when[32];
            gmtime_r(&t, &tm);
            strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
            printf("%-20s %-16s %-40s %s\n", when, ev, remote, mech);
        }
    }
    free(tmp);
    return rc;
}

int ctl_defence_main(const struct ctl_opts *o, int argc, char **argv)
{
    static struct conf c;
    struct error err = {{0}};
    const char *path = o->config_path ? o->config_path : CONF_PATH_DEFAULT;
    if (conf_load(path, &c, &err) < 0) {
        fprintf(stderr, "popsctl: %s\n", err.msg);
        return 1;
    }
    if (c.control_socket[0] == '\0') {
        fprintf(stderr, "popsctl: the configuration has control_socket = none\n");
        return 1;
    }
    const char *cmd = argv[0];
    if (strcmp(cmd, "bans") == 0 && argc == 1)
        return print_table(c.control_socket, "BANS", "banned address/prefix");
    if (strcmp(cmd, "locks") == 0 && argc == 1)
        return print_table(c.control_socket, "LOCKS", "account locked for unknown sources");
    if (strcmp(cmd, "guard-stats") == 0 && argc == 1) {
        printf("table count cap bytes evictions\n");
        return request(c.control_socket, "STATS", stdout);
    }
    if ((strcmp(cmd, "unban") == 0 || strcmp(cmd, "unlock") == 0 || strcmp(cmd, "events") == 0) && argc == 2) {
        if (strlen(argv[1]) > 255 || strpbrk(argv[1], " \t\r\n") != NULL) {
            fprintf(stderr, "popsctl: bad argument\n");
            return 2;
        }
        if (strcmp(cmd, "events") == 0)
            return print_events(c.control_socket, argv[1]);
        char line[300];
        snprintf(line, sizeof(line), "%s %s", strcmp(cmd, "unban") == 0 ? "UNBAN" : "UNLOCK", argv[1]);
        return request(c.control_socket, line, stdout);
    }
    fprintf(stderr, "usage: popsctl [-c CONFIG] bans | unban ADDRESS/BITS | locks | unlock USER | events USER | "
                    "guard-stats\n");
    return 2;
}
