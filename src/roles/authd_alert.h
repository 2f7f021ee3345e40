/* authd's alert delivery: each defence event chosen by [alerts] events goes
 * to a webhook (HTTP(S) POST of the event's JSON, libcurl's multi interface
 * on authd's event loop, retried with a doubling delay) and to an exec hook
 * (fork + exec of one program, no shell, the event in its environment and its
 * JSON on stdin, a bounded number at once, killed after exec_timeout, reaped
 * on SIGCHLD). Each channel has its own bounded queue that drops the oldest
 * event when full. Nothing here blocks the loop. Event-loop thread only. */
#ifndef POPSD_ROLES_AUTHD_ALERT_H
#define POPSD_ROLES_AUTHD_ALERT_H

#include <event2/event.h>

#include "auth/guard.h"
#include "conf/conf.h"

/* Before the privilege drop and before any thread starts: initialises libcurl
 * and reads the CA bundle for an https:// webhook. Fatal on error. */
void authd_alert_init(const struct conf *c);
/* After the drop, once the loop exists. */
void authd_alert_start(struct event_base *base);
/* Queues an alert for a defence event (ignored if its kind is not chosen). */
void authd_alert(const struct guard_event *ev);
/* authd is exiting: running hooks are killed (their process groups). */
void authd_alert_stop(void);

#endif
