/* Alerts as data (src/auth/alert.c): the copy of a defence event with hostile
 * bytes escaped, its JSON (parsed back), its environment, the bounded queue
 * that drops the oldest; the metrics renderer (src/common/metrics.c) on a
 * region in memory; the [alerts] and [metrics] config sections. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/alert.h"
#include "common/metrics.h"
#include "conf/conf.h"

static struct alert_event ban_event(void)
{
    struct guard_event g = {.kind = GUARD_EV_BAN,
                            .subject = "192.0.2.7/32",
                            .user = NULL,
                            .remote = "192.0.2.7",
                            .reason = "brute_force",
                            .seconds = 900,
                            .count = 2};
    struct alert_event a;
    assert_int_equal(alert_from_guard(&g, 1700000000, &a), 0);
    return a;
}

static void test_from_guard(void **state)
{
    struct alert_event a = ban_event();
    assert_int_equal(a.kind, ALERT_BAN);
    assert_string_equal(a.subject, "192.0.2.7/32");
    assert_string_equal(a.user, "");
    assert_int_equal(a.seconds, 900);
    assert_int_equal(a.count, 2);
    /* Not an alert. */
    struct guard_event rep = {.kind = GUARD_EV_REPEAT_FAILURE, .subject = "x", .remote = "x", .reason = "r"};
    assert_int_equal(alert_from_guard(&rep, 0, &a), -1);
    /* Client text: control bytes, quotes and non-ASCII are escaped, never passed on. */
    struct guard_event lock = {.kind = GUARD_EV_ACCOUNT_LOCKED,
                               .subject = "u",
                               .user = "a\nb\"c\xff\x01",
                               .remote = "198.51.100.1",
                               .reason = "unknown_sources",
                               .seconds = 60,
                               .count = 20};
    assert_int_equal(alert_from_guard(&lock, 0, &a), 0);
    assert_string_equal(a.user, "a\\x0ab\"c\\xff\\x01");
    /* A long hostile name is cut at a whole escape, within the field. */
    char longname[1000];
    memset(longname, '\x80', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    lock.user = longname;
    assert_int_equal(alert_from_guard(&lock, 0, &a), 0);
    assert_true(strlen(a.user) < ALERT_USER_MAX);
    assert_int_equal(strlen(a.user) % 4, 0);
    assert_int_equal(a.kind, ALERT_ACCOUNT_LOCKED);
    assert_string_equal(alert_kind_name(ALERT_DISTRIBUTED_SPRAYING), "distributed_spraying");
    assert_int_equal(alert_kind_bit(ALERT_NEW_SOURCE), CONF_ALERT_NEW_SOURCE);
}

static void test_json(void **state)
{
    struct alert_event a = ban_event();
    char *s = alert_json(&a, "mx1.example");
    assert_non_null(s);
    assert_null(strchr(s, '\n'));
    json_error_t e;
    json_t *o = json_loads(s, 0, &e);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "event")), "ban");
    assert_string_equal(json_string_value(json_object_get(o, "time")), "2023-11-14T22:13:20Z");
    assert_string_equal(json_string_value(json_object_get(o, "host")), "mx1.example");
    assert_string_equal(json_string_value(json_object_get(o, "subject")), "192.0.2.7/32");
    assert_true(json_is_null(json_object_get(o, "user")));
    assert_string_equal(json_string_value(json_object_get(o, "remote")), "192.0.2.7");
    assert_string_equal(json_string_value(json_object_get(o, "reason")), "brute_force");
    assert_int_equal(json_integer_value(json_object_get(o, "seconds")), 900);
    assert_int_equal(json_integer_value(json_object_get(o, "count")), 2);
    assert_int_equal(json_object_size(o), 9);
    json_decref(o);
    free(s);
    /* Quotes and backslashes from a user name are JSON-escaped; no host, no key. */
    struct guard_event g = {.kind = GUARD_EV_NEW_SOURCE, .subject = "s", .user = "x\"y\\z", .remote = "r"};
    assert_int_equal(alert_from_guard(&g, 0, &a), 0);
    s = alert_json(&a, NULL);
    o = json_loads(s, 0, &e);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "user")), "x\"y\\z");
    assert_null(json_object_get(o, "host"));
    assert_true(json_is_null(json_object_get(o, "reason")));
    json_decref(o);
    free(s);
}

static void test_env(void **state)
{
    struct alert_event a = ban_event();
    char buf[1024];
    char *envp[ALERT_ENV_MAX];
    assert_int_equal(alert_env(&a, "mx1", buf, sizeof(buf), envp), 0);
    static const char *const want[] = {
        "POPSD_EVENT=ban",
        "POPSD_TIME=2023-11-14T22:13:20Z",
        "POPSD_HOST=mx1",
        "POPSD_SUBJECT=192.0.2.7/32",
        "POPSD_USER=",
        "POPSD_REMOTE=192.0.2.7",
        "POPSD_REASON=brute_force",
        "POPSD_SECONDS=900",
        "POPSD_COUNT=2",
        "PATH=/usr/local/bin:/usr/bin:/bin",
    };
    size_t n = 0;
    while (envp[n] != NULL) {
        assert_true(n < sizeof(want) / sizeof(want[0]));
        assert_string_equal(envp[n], want[n]);
        n++;
    }
    assert_int_equal(n, sizeof(want) / sizeof(want[0]));
    /* Too small a buffer is refused, not cut. */
    assert_int_equal(alert_env(&a, "mx1", buf, 100, envp), -1);
}

static void test_queue(void **state)
{
    struct alert_queue *q = alert_queue_new(3);
    assert_non_null(q);
    assert_null(alert_queue_head(q));
    alert_queue_pop(q); /* empty: nothing happens */
    struct alert_event a = ban_event();
    for (uint32_t i = 0; i < 3; i++) {
        a.count = i;
        assert_false(alert_queue_push(q, &a));
    }
    assert_int_equal(alert_queue_len(q), 3);
    /* Full: the oldest goes, the new one is kept, and the drop is counted. */
    a.count = 3;
    assert_true(alert_queue_push(q, &a));
    a.count = 4;
    assert_true(alert_queue_push(q, &a));
    assert_int_equal(alert_queue_len(q), 3);
    assert_int_equal(alert_queue_dropped(q), 2);
    for (uint32_t want = 2; want <= 4; want++) {
        struct alert_queue_item *it = alert_queue_head(q);
        assert_non_null(it);
        assert_int_equal(it->ev.count, want);
        assert_int_equal(it->tries, 0);
        alert_queue_pop(q);
    }
    assert_null(alert_queue_head(q));
    /* Round and round the ring. */
    for (uint32_t i = 0; i < 100; i++) {
        a.count = i;
        alert_queue_push(q, &a);
        if (i % 2)
            alert_queue_pop(q);
    }
    assert_int_equal(alert_queue_len(q), 2);
    assert_int_equal(alert_queue_head(q)->ev.count, 98);
    alert_queue_free(&q);
    assert_null(q);
    assert_null(alert_queue_new(0));
}

static void test_metrics_render(void **state)
{
    struct metrics_region *m = aligned_alloc(64, sizeof(*m));
    assert_non_null(m);
    memset(m, 0, sizeof(*m));
    m->slot[1].counter[METRIC_CONN_ACCEPTED] = 5;
    m->slot[7].counter[METRIC_CONN_ACCEPTED] = 6;
    m->slot[1].gauge[METRIC_SESSIONS] = 3;
    m->slot[2].gauge[METRIC_SESSIONS] = -1;
    m->slot[3].login[METRIC_LOGIN_SUCCESS][METRIC_MECH_PLAIN] = 4;
    m->slot[3].counter[METRIC_DELAY_MS] = 2500;
    m->slot[0].counter[METRIC_TLS13] = 9;
    const char *good = "bans", *bad = "x\"} 1\nevil";
    for (size_t k = 0; k <= strlen(good); k++)
        m->table[0].name[k] = (unsigned char)good[k];
    for (size_t k = 0; k <= strlen(bad); k++)
        m->table[1].name[k] = (unsigned char)bad[k];
    m->table[0].entries = 12;
    m->table[0].capacity = 64;
    static char buf[65536];
    size_t n = metrics_render(m, buf, sizeof(buf));
    assert_true(n > 0 && n < sizeof(buf));
    assert_int_equal(strlen(buf), n);
    assert_non_null(strstr(buf, "\npopsd_connections_accepted_total 11\n"));
    assert_non_null(strstr(buf, "\npopsd_sessions 2\n"));
    assert_non_null(strstr(buf, "\npopsd_logins_total{result=\"success\",mechanism=\"PLAIN\"} 4\n"));
    assert_non_null(strstr(buf, "\npopsd_logins_total{result=\"refused\",mechanism=\"USER\"} 0\n"));
    assert_non_null(strstr(buf, "\npopsd_auth_delay_seconds_total 2.500\n"));
    assert_non_null(strstr(buf, "\npopsd_tls_handshakes_total{version=\"1.3\"} 9\n"));
    assert_non_null(strstr(buf, "\npopsd_defence_table_entries{table=\"bans\"} 12\n"));
    assert_non_null(strstr(buf, "# TYPE popsd_bans_total counter\n"));
    assert_null(strstr(buf, "evil")); /* a name that is not an identifier is never printed */
    /* A transiently negative gauge sum shows 0. */
    m->slot[2].gauge[METRIC_SESSIONS] = -10;
    assert_true(metrics_render(m, buf, sizeof(buf)) > 0);
    assert_non_null(strstr(buf, "\npopsd_sessions 0\n"));
    /* Too small: 0, never a cut exposition. */
    assert_int_equal(metrics_render(m, buf, 100), 0);
    free(m);
}

#define BASE                                                                                                 \
    "[certificate main]\ncert = /etc/popsd/cert.pem\nkey = /etc/popsd/key.pem\n"                             \
    "[mail]\nroot = /srv/mail\nlocation = /srv/mail/%d/%n/Maildir\n"                                         \
    "[listener pop3s]\naddress = 127.0.0.1:995\n"

static void test_conf_sections(void **state)
{
    static struct conf c;
    struct error err = {{0}};
    assert_int_equal(conf_parse_string(BASE, "t", &c, &err), 0);
    assert_string_equal(c.alert_webhook_url, "");
    assert_string_equal(c.alert_exec, "");
    assert_int_equal(c.alert_events, CONF_ALERT_ALL);
    assert_int_equal(c.alert_queue_size, 1000);
    assert_int_equal(c.alert_webhook_retries, 3);
    assert_string_equal(c.metrics_address, "");
    assert_string_equal(c.metrics_chroot, "/var/empty");
    assert_int_equal(
        conf_parse_string(BASE "[alerts]\nwebhook_url = https://h.example/p?x=1\nwebhook_timeout = 2s\n"
                               "webhook_retries = 0\nwebhook_retry_delay = 250ms\nqueue_size = 10\n"
                               "exec = /usr/local/bin/hook\nexec_timeout = 3s\nexec_max_running = 2\n"
                               "events = spraying,distributed_spraying\n"
                               "[metrics]\naddress = 9154\nchroot = /var/empty/popsd\n",
                          "t", &c, &err),
        0);
    assert_string_equal(c.alert_webhook_url, "https://h.example/p?x=1");
    assert_int_equal(c.alert_webhook_timeout_ms, 2000);
    assert_int_equal(c.alert_webhook_retries, 0);
    assert_int_equal(c.alert_webhook_retry_delay_ms, 250);
    assert_int_equal(c.alert_queue_size, 10);
    assert_string_equal(c.alert_exec, "/usr/local/bin/hook");
    assert_int_equal(c.alert_exec_timeout_ms, 3000);
    assert_int_equal(c.alert_exec_max_running, 2);
    assert_int_equal(c.alert_events, CONF_ALERT_SPRAYING | CONF_ALERT_DISTRIBUTED_SPRAYING);
    assert_string_equal(c.metrics_address, "127.0.0.1:9154"); /* a bare port is on loopback */
    assert_string_equal(c.metrics_chroot, "/var/empty/popsd");
    assert_int_equal(conf_parse_string(BASE "[metrics]\naddress = [::1]:9154\n", "t", &c, &err), 0);
    assert_string_equal(c.metrics_address, "[::1]:9154");
    static const struct {
        const char *text, *msg;
    } bad[] = {
        {"[alerts]\nwebhook_url = gopher://x/\n", "t:10: expected an http:// or https:// URL"},
        {"[alerts]\nwebhook_url = http://x/\x01\n", "t:10: the URL must be printable ASCII without spaces"},
        {"[alerts]\nevents = ban bans\n", "t:10: 'bans' is not an event"},
        {"[alerts]\nevents = ,\n", "t:10: expected at least one event"},
        {"[alerts]\nwebhook_retries = 21\n", "t:10: expected an integer in 0..20"},
        {"[alerts]\nexec_max_running = 65\n", "t:10: expected an integer in 1..64"},
        {"[alerts]\nexec_timeout = 10ms\n", "t:10: expected a duration"},
        {"[alerts]\nwebhook = x\n", "t:10: unknown key 'webhook' in [alerts]"},
        {"[metrics]\naddress = 0\n", "t:10: expected a port 1..65535 or HOST:PORT"},
        {"[metrics]\naddress = localhost\n", "t:10: expected a port 1..65535 or HOST:PORT"},
        {"[metrics]\nchroot = var/empty\n", "t:10: expected an absolute path"},
        {"[alert]\nexec = /bin/true\n", "t:9: unknown section [alert]"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), "%s%s", BASE, bad[i].text);
        memset(&err, 0, sizeof(err));
        assert_int_equal(conf_parse_string(text, "t", &c, &err), -1);
        if (strncmp(err.msg, bad[i].msg, strlen(bad[i].msg)) != 0)
            fail_msg("%s: got '%s', want '%s'", bad[i].text, err.msg, bad[i].msg);
    }
}

static void test_conf_print_roundtrip(void **state)
{
    static struct conf a, b;
    struct error err = {{0}};
    assert_int_equal(conf_parse_string(BASE
                                       "[alerts]\nwebhook_url = http://127.0.0.1:8080/x\nexec = /bin/true\n"
                                       "events = ban new_source\n[metrics]\naddress = 127.0.0.1:9154\n",
                                       "t", &a, &err),
                     0);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    assert_non_null(f);
    conf_print(&a, f);
    fclose(f);
    assert_int_equal(conf_parse_string(text, "t", &b, &err), 0);
    assert_string_equal(b.alert_webhook_url, a.alert_webhook_url);
    assert_string_equal(b.alert_exec, a.alert_exec);
    assert_int_equal(b.alert_events, a.alert_events);
    assert_string_equal(b.metrics_address, a.metrics_address);
    assert_int_equal(b.alert_webhook_timeout_ms, a.alert_webhook_timeout_ms);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_from_guard),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_env),
        cmocka_unit_test(test_queue),
        cmocka_unit_test(test_metrics_render),
        cmocka_unit_test(test_conf_sections),
        cmocka_unit_test(test_conf_print_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
