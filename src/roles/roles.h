/* Entry points of popsd's processes (see docs/ARCHITECTURE.md). */
#ifndef POPSD_ROLES_ROLES_H
#define POPSD_ROLES_ROLES_H

int parent_main(const char *conf_path, const char *exe);
int front_main(int argc, char **argv);
int authd_main(int argc, char **argv);
int metricsd_main(int argc, char **argv);

#endif
