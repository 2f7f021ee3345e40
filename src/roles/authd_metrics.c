#include "roles/authd_metrics.h"

#include "common/metrics.h"
#include "pop3/session.h"

static bool retired;

void authd_metrics_result(bool refused, int status, const char *mech, uint32_t delay_ms)
{
    enum metrics_login_result r;
    switch (status) {
    case POP3_AUTH_OK: r = METRIC_LOGIN_SUCCESS; break;
    case POP3_AUTH_FAIL:
    case POP3_AUTH_DISABLED:
    case POP3_AUTH_POLICY: r = refused ? METRIC_LOGIN_REFUSED : METRIC_LOGIN_FAILURE; break;
    case POP3_AUTH_LOGIN_DELAY: r = METRIC_LOGIN_LOGIN_DELAY; break;
    default: r = METRIC_LOGIN_TEMPFAIL; break;
    }
    metrics_login(r, mech);
    if (delay_ms > 0 && status != POP3_AUTH_OK) {
        metrics_inc(METRIC_DELAYS);
        metrics_add(METRIC_DELAY_MS, delay_ms);
    }
}

void authd_metrics_event(const struct guard_event *ev)
{
    switch (ev->kind) {
    case GUARD_EV_BAN: metrics_inc(METRIC_BANS); break;
    case GUARD_EV_ACCOUNT_LOCKED: metrics_inc(METRIC_ACCOUNT_LOCKS); break;
    case GUARD_EV_SPRAYING: metrics_inc(METRIC_SPRAYING); break;
    case GUARD_EV_DISTRIBUTED_SPRAYING: metrics_inc(METRIC_DISTRIBUTED_SPRAYING); break;
    case GUARD_EV_NEW_SOURCE: metrics_inc(METRIC_NEW_SOURCE); break;
    case GUARD_EV_REPEAT_FAILURE: break;
    }
}

struct table_ctx {
    unsigned i;
};

static int table_cb(void *ctx, const char *table, uint32_t count, uint32_t cap, size_t bytes,
                    uint64_t evictions)
{
    struct table_ctx *t = ctx;
    metrics_table_set(t->i++, table, count, cap, bytes, evictions);
    return 0;
}

void authd_metrics_tables(struct guard *g)
{
    if (retired)
        return;
    struct table_ctx t = {0};
    guard_stats(g, table_cb, &t);
}

void authd_metrics_retire(void)
{
    retired = true;
}
