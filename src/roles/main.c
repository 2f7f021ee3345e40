/* popsd: the hardened POP3/POP3S server. See docs/ARCHITECTURE.md. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/conf.h"
#include "roles/roles.h"
#include "tls/tls.h"

#ifndef POPSD_VERSION
#define POPSD_VERSION "0.1.0"
#endif

static void usage(FILE *out)
{
    fprintf(out, "usage: popsd [-c FILE] [-t | -n | -V]\n"
                 "  -c FILE  configuration file (default " CONF_PATH_DEFAULT ")\n"
                 "  -t       check the configuration (including certificates and key modes) and exit\n"
                 "  -n       print the effective configuration and exit\n"
                 "  -V       print the version and exit\n"
                 "popsd runs in the foreground and logs to stderr or syslog; SIGHUP reloads\n"
                 "configuration and certificates without dropping sessions; SIGTERM stops.\n");
}

int main(int argc, char **argv)
{
    log_init("popsd", false, LOG_LVL_INFO);
    /* Child roles: "popsd -x ROLE ..." (internal, started by the parent). */
    if (argc >= 3 && strcmp(argv[1], "-x") == 0) {
        if (strcmp(argv[2], "front") == 0)
            return front_main(argc, argv);
        if (strcmp(argv[2], "authd") == 0)
            return authd_main(argc, argv);
        if (strcmp(argv[2], "metrics") == 0)
            return metricsd_main(argc, argv);
        fprintf(stderr, "popsd: unknown role '%s'\n", argv[2]);
        return 2;
    }
    const char *conf_path = CONF_PATH_DEFAULT;
    int opt, mode = 0;
    while ((opt = getopt(argc, argv, "c:tnVh")) != -1) {
        switch (opt) {
        case 'c': conf_path = optarg; break;
        case 't':
        case 'n':
        case 'V': mode = opt; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    if (mode == 'V') {
        printf("popsd %s\n", POPSD_VERSION);
        return 0;
    }
    static struct conf c;
    struct error err = {{0}};
    if (mode == 't' || mode == 'n') {
        if (conf_load(conf_path, &c, &err) < 0) {
            fprintf(stderr, "popsd: %s\n", err.msg);
            return 1;
        }
        if (mode == 'n') {
            conf_print(&c, stdout);
            return 0;
        }
        /* Load the certificates and keys the way a front will, so -t catches a
         * key that does not match its certificate or a broken chain. */
        struct tls_server *ts = NULL;
        if (tls_server_new(&c, &ts, &err) < 0) {
            fprintf(stderr, "popsd: %s\n", err.msg);
            return 1;
        }
        tls_server_free(&ts);
        printf("popsd: configuration %s is valid\n", conf_path);
        return 0;
    }
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n <= 0)
        log_fatal("cannot find our own binary in /proc/self/exe");
    exe[n] = '\0';
    return parent_main(conf_path, exe);
}
