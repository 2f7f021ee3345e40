/* Simulates attackers against the defence engine with its default settings,
 * in simulated time, and prints how many guesses get a password check per
 * hour and how long until the first ban. Not a test: a measurement for
 * docs and the issue notes. Build: make build/guard-sim */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/guard.h"

static unsigned bans;
static void on_event(void *ctx, const struct guard_event *ev)
{
    (void)ctx;
    if (ev->kind == GUARD_EV_BAN)
        bans++;
}

/* conns parallel connections, each waiting out its delay; time in ms. */
static void run(const char *name, unsigned conns, double hours)
{
    static const uint8_t key[GUARD_KEYLEN] = {7};
    struct guard *g = guard_new(&guard_params_default, key, on_event, NULL);
    struct guard_source src;
    guard_source_parse("203.0.113.66", &src);
    bans = 0;
    double end = hours * 3600e3, first_ban = -1;
    double *next = calloc(conns, sizeof(double));
    unsigned long checked = 0, refused = 0, n = 0;
    unsigned long per_hour[64] = {0};
    for (;;) {
        unsigned c = 0;
        for (unsigned i = 1; i < conns; i++)
            if (next[i] < next[c])
                c = i;
        double now = next[c];
        if (now >= end)
            break;
        char user[32], pw[32];
        snprintf(user, sizeof(user), "user%lu", n % 3); /* a few targeted accounts */
        snprintf(pw, sizeof(pw), "guess%lu", n++);
        uint32_t delay;
        int64_t t = 1800000000 + (int64_t)(now / 1000);
        if (guard_check(g, t, &src, user, &delay) != GUARD_PROCEED) {
            refused++;
        } else {
            struct guard_fp fp;
            guard_fingerprint(g, user, pw, strlen(pw), &fp);
            delay = guard_failure(g, t, &src, user, &fp);
            checked++;
            per_hour[(int)(now / 3600e3)]++;
            if (bans && first_ban < 0)
                first_ban = now;
        }
        next[c] = now + delay + 5; /* 5 ms for the round trip */
    }
    printf("%-34s guesses checked: %lu in %.0f h (refused unchecked: %lu); first ban after %.3f s; per hour:",
           name, checked, hours, refused, first_ban / 1000);
    for (int h = 0; h < (int)hours && h < 24; h++)
        printf(" %lu", per_hour[h]);
    printf("\n");
    free(next);
    guard_free(&g);
}

int main(void)
{
    run("1 connection, defaults", 1, 24);
    run("50 parallel connections, defaults", 50, 24);
    return 0;
}
