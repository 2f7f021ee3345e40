/* popsctl subcommands. Each takes the arguments after its name (argv[0] is the
 * subcommand name) and returns the process exit status. */
#ifndef POPSD_CTL_CTL_H
#define POPSD_CTL_CTL_H

/* Global options parsed by main, shared by subcommands. */
struct ctl_opts {
    const char *config_path; /* -c FILE, default /etc/popsd/popsd.conf */
    const char *db_path;     /* --db FILE overrides the config's userdb path */
};

int ctl_user_main(const struct ctl_opts *o, int argc, char **argv);
int ctl_audit_main(const struct ctl_opts *o, int argc, char **argv);
/* bans, unban, locks, unlock, events, guard-stats: through authd's control socket. */
int ctl_defence_main(const struct ctl_opts *o, int argc, char **argv);

#endif
