/* popsctl: popsd's admin and audit tool. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/conf.h"
#include "ctl/ctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: popsctl [-c CONFIG] [--db FILE] COMMAND ...\n"
                 "  user add NAME [--mail PATH] [--generate]   add a user (password from stdin or generated)\n"
                 "  user passwd NAME [--generate]              set a user's password\n"
                 "  user del NAME                              delete a user\n"
                 "  user list [--json]                         list users\n"
                 "  bans | unban ADDRESS/BITS                  list or lift the defence engine's bans\n"
                 "  locks | unlock USER                        accounts locked for unknown sources\n"
                 "  events USER                                recent authentication events of a user\n"
                 "  guard-stats                                sizes of the defence tables\n"
                 "  audit HOST [--port N] [--starttls] ...     check a POP3S server's hardening (audit --help)\n"
                 "The user database is the config's [userdb] path (default " CONF_PATH_DEFAULT "), or --db FILE.\n");
}

int main(int argc, char **argv)
{
    struct ctl_opts o = {.config_path = NULL, .db_path = NULL};
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage(stdout);
            return 0;
        }
        if (i + 1 >= argc) {
            usage(stderr);
            return 2;
        }
        if (strcmp(argv[i], "-c") == 0)
            o.config_path = argv[++i];
        else if (strcmp(argv[i], "--db") == 0)
            o.db_path = argv[++i];
        else {
            fprintf(stderr, "popsctl: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[i];
    if (strcmp(cmd, "audit") == 0)
        return ctl_audit_main(&o, argc - i, argv + i);
    if (strcmp(cmd, "bans") == 0 || strcmp(cmd, "unban") == 0 || strcmp(cmd, "locks") == 0 ||
        strcmp(cmd, "unlock") == 0 || strcmp(cmd, "events") == 0 || strcmp(cmd, "guard-stats") == 0)
        return ctl_defence_main(&o, argc - i, argv + i);
    if (strcmp(cmd, "user") == 0) {
        static struct conf c;
        bool wants_help = argc - i >= 2 && (strcmp(argv[i + 1], "--help") == 0 || strcmp(argv[i + 1], "-h") == 0);
        if (o.db_path == NULL && !wants_help) {
            struct error err = {{0}};
            const char *path = o.config_path ? o.config_path : CONF_PATH_DEFAULT;
            if (conf_load(path, &c, &err) < 0) {
                fprintf(stderr, "popsctl: %s (or give --db FILE)\n", err.msg);
                return 1;
            }
            if (c.userdb_driver != CONF_USERDB_SQLITE) {
                fprintf(stderr, "popsctl: the configured user database is a passwd-file (%s); edit it directly\n",
                        c.userdb_path);
                return 1;
            }
            o.db_path = c.userdb_path;
        }
        return ctl_user_main(&o, argc - i, argv + i);
    }
    fprintf(stderr, "popsctl: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
