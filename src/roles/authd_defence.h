/* authd's use of the defence engine: building it from the config, logging
 * its events, persisting its state, the recent-events ring and the control
 * socket that popsctl talks to. Event-loop thread only, except where noted. */
#ifndef POPSD_ROLES_AUTHD_DEFENCE_H
#define POPSD_ROLES_AUTHD_DEFENCE_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "auth/guard.h"
#include "conf/conf.h"

/* Creates the engine (loading the state file if configured). Fatal on error. */
struct guard *authd_defence_init(const struct conf *c, struct event_base *base);
/* Serves popsctl on a listening unix socket (fd already bound by the parent). */
void authd_defence_control(int fd);
/* Stops serving popsctl (this authd is draining after a reload). */
void authd_defence_control_stop(void);
/* Writes the state file now if anything changed (on shutdown). */
void authd_defence_flush(void);
/* Records an authentication outcome in the recent-events ring. */
void authd_defence_record(const char *user, const char *remote, const char *mech, const char *result);
/* Wall-clock seconds. */
int64_t authd_now(void);

#endif
