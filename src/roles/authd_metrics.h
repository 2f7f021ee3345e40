/* authd's counters for the metrics endpoint (src/common/metrics.h): login
 * results by mechanism, delays, defence events, and the defence tables'
 * sizes. Event-loop thread only. */
#ifndef POPSD_ROLES_AUTHD_METRICS_H
#define POPSD_ROLES_AUTHD_METRICS_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/guard.h"

/* One answer sent to a front: refused = turned away by the defence engine;
 * status = enum pop3_auth_status; delay_ms = the delay the front will apply. */
void authd_metrics_result(bool refused, int status, const char *mech, uint32_t delay_ms);
/* A defence event (ban, lock, spraying, new source). */
void authd_metrics_event(const struct guard_event *ev);
/* Publishes the table sizes (called every second) unless retired. */
void authd_metrics_tables(struct guard *g);
/* This authd is draining: the new one publishes the tables from now on. */
void authd_metrics_retire(void);

#endif
