/* OAuth 2.0 bearer tokens, part two: RFC 7662 introspection against a small
 * libmicrohttpd endpoint run inside the test (client authentication, the posted
 * token, caching, failures that must become TEMPFAIL quickly), and the
 * OAUTHBEARER (RFC 7628) and XOAUTH2 message parsers. Local JWT validation is
 * in test_jwt.c. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/oauth.h"
#include "common/b64.h"
#include "conf/conf.h"
#include "sasl/sasl.h"

extern const struct sasl_mech sasl_mech_oauthbearer;
extern const struct sasl_mech sasl_mech_xoauth2;

#define ISS "https://idp.example.com"
#define ISS_B "https://b.example.net"
#define AUD "pop3.example.com"
#define CLIENT_ID "popsd-pop3"
#define SECRET "s3cr+t/x"

struct req {
    char body[8192];
    size_t len;
};

static struct {
    char dir[64];
    struct MHD_Daemon *d;
    unsigned port;
    atomic_uint hits;
    char expect_auth[256];
    pthread_mutex_t mu;
    char last_body[8192];
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* ---- the introspection endpoint ---- */

static enum MHD_Result respond(struct MHD_Connection *conn, unsigned code, const char *body)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, code, r);
    MHD_destroy_response(r);
    return ret;
}

static int hexval(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                  : -1;
}

/* "token=<percent-encoded>&token_type_hint=access_token" -> the token, or "". */
static void form_token(const char *body, char *out, size_t cap)
{
    static const char suffix[] = "&token_type_hint=access_token";
    size_t n = strlen(body), o = 0;
    out[0] = '\0';
    if (strncmp(body, "token=", 6) != 0 || n < 6 + sizeof(suffix) - 1 ||
        strcmp(body + n - (sizeof(suffix) - 1), suffix) != 0)
        return;
    for (size_t i = 6; i < n - (sizeof(suffix) - 1) && o + 1 < cap; i++) {
        if (body[i] == '%' && hexval(body[i + 1]) >= 0 && hexval(body[i + 2]) >= 0) {
            out[o++] = (char)(hexval(body[i + 1]) * 16 + hexval(body[i + 2]));
            i += 2;
        } else {
            out[o++] = body[i];
        }
    }
    out[o] = '\0';
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload, size_t *upload_size,
                                  void **con_cls)
{
    struct req *rq = *con_cls;
    if (rq == NULL) {
        *con_cls = rq = calloc(1, sizeof(*rq));
        return rq ? MHD_YES : MHD_NO;
    }
    if (*upload_size > 0) {
        size_t k =
            *upload_size < sizeof(rq->body) - 1 - rq->len ? *upload_size : sizeof(rq->body) - 1 - rq->len;
        memcpy(rq->body + rq->len, upload, k);
        rq->len += k;
        *upload_size = 0;
        return MHD_YES;
    }
    atomic_fetch_add(&S.hits, 1);
    pthread_mutex_lock(&S.mu);
    snprintf(S.last_body, sizeof(S.last_body), "%s", rq->body);
    pthread_mutex_unlock(&S.mu);
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *ctype = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (strcmp(method, "POST") != 0 || auth == NULL || strcmp(auth, S.expect_auth) != 0 || ctype == NULL ||
        strcmp(ctype, "application/x-www-form-urlencoded") != 0)
        return respond(conn, 401, "{\"error\":\"invalid_client\"}");
    char tok[8192], body[1024];
    form_token(rq->body, tok, sizeof(tok));
    long long now = (long long)time(NULL);
    if (strcmp(url, "/b") == 0) {
        snprintf(body, sizeof(body),
                 "{\"active\":true,\"iss\":\"" ISS_B "\",\"exp\":%lld,\"scope\":\"mail.read\","
                 "\"username\":\"erin@example.com\"}",
                 now + 3600);
        return respond(conn, 200, body);
    }
    if (strncmp(tok, "slow", 4) == 0) {
        sleep(2);
        return respond(conn, 200, "{\"active\":false}");
    }
    if (strncmp(tok, "inact", 5) == 0)
        return respond(conn, 200, "{\"active\":false}");
    if (strncmp(tok, "e500", 4) == 0)
        return respond(conn, 500, "{}");
    if (strncmp(tok, "garb", 4) == 0)
        return respond(conn, 200, "<html>oops</html>");
    if (strncmp(tok, "noactive", 8) == 0)
        return respond(conn, 200, "{\"scope\":\"mail.read\"}");
    const char *scope = strncmp(tok, "noscope", 7) == 0 ? "openid" : "openid mail.read";
    const char *iss = strncmp(tok, "wrongiss", 8) == 0 ? "https://evil.example" : ISS;
    long long exp = strncmp(tok, "expired", 7) == 0 ? now - 3600
                    : strncmp(tok, "short", 5) == 0 ? now + 1
                                                    : now + 3600;
    const char *email = strncmp(tok, "email", 5) == 0 ? ",\"email\":\"dave@example.com\"" : "";
    const char *user = strncmp(tok, "eyJ", 3) == 0 ? "jwt-user@example.com" : "carol@example.com";
    snprintf(body, sizeof(body),
             "{\"active\":true,\"iss\":\"%s\",\"aud\":[\"" AUD "\"],\"exp\":%lld,\"scope\":\"%s\","
             "\"username\":\"%s\"%s}",
             iss, exp, scope, user, email);
    return respond(conn, 200, body);
}

static void on_done(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode t)
{
    free(*con_cls);
    *con_cls = NULL;
}

static int setup(void **state)
{
    snprintf(S.dir, sizeof(S.dir), "/tmp/popsd-oauth-XXXXXX");
    if (mkdtemp(S.dir) == NULL)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    S.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION, 0, NULL, NULL,
                           on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                           MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_END);
    if (S.d == NULL)
        return -1;
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(S.d, MHD_DAEMON_INFO_BIND_PORT);
    if (info == NULL || info->port == 0)
        return -1;
    S.port = info->port;
    /* RFC 6749 2.3.1: id and secret are form-encoded, then Basic */
    static const char cred[] = CLIENT_ID ":s3cr%2Bt%2Fx";
    char b64[128];
    b64_encode((const unsigned char *)cred, sizeof(cred) - 1, b64, sizeof(b64));
    snprintf(S.expect_auth, sizeof(S.expect_auth), "Basic %s", b64);
    return 0;
}

static int teardown(void **state)
{
    MHD_stop_daemon(S.d);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", S.dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(fchmod(fd, mode), 0);
    close(fd);
}

static void issuer(struct conf_oauth *o, const char *name, const char *iss, const char *url)
{
    memset(o, 0, sizeof(*o));
    snprintf(o->name, sizeof(o->name), "%s", name);
    snprintf(o->issuer, sizeof(o->issuer), "%s", iss);
    snprintf(o->audience, sizeof(o->audience), AUD);
    o->algorithms = CONF_OAUTH_RS256 | CONF_OAUTH_ES256 | CONF_OAUTH_EDDSA;
    snprintf(o->scope, sizeof(o->scope), "mail.read");
    snprintf(o->username_claim, sizeof(o->username_claim), "email");
    o->clock_skew_ms = 60000;
    snprintf(o->introspection_url, sizeof(o->introspection_url), "%s", url);
    snprintf(o->client_id, sizeof(o->client_id), CLIENT_ID);
    snprintf(o->client_secret_file, sizeof(o->client_secret_file), "%s/secret", S.dir);
    o->introspection_timeout_ms = 2000;
    o->introspection_cache_ms = 60000;
}

static struct oauth *make(struct conf *c, unsigned n)
{
    write_file(c->oauth[0].client_secret_file, SECRET "\n", 0600);
    c->n_oauth = n;
    struct oauth *o = NULL;
    struct error err = {{0}};
    if (oauth_new(c, &o, &err) < 0)
        fail_msg("oauth_new: %s", err.msg);
    return o;
}

static struct oauth *make_default(void)
{
    static struct conf c;
    conf_defaults(&c);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/a", S.port);
    issuer(&c.oauth[0], "idp", ISS, url);
    return make(&c, 1);
}

static enum oauth_verdict ask(struct oauth *o, const char *tok, int64_t now, struct oauth_result *r)
{
    memset(r, 0x5a, sizeof(*r));
    return oauth_validate(o, tok, strlen(tok), now, r);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- introspection ---- */

static void test_introspect_active(void **state)
{
    struct oauth *o = make_default();
    struct oauth_result r;
    int64_t now = (int64_t)time(NULL);
    unsigned h0 = atomic_load(&S.hits);
    assert_int_equal(ask(o, "act+good/1==", now, &r), OAUTH_VALID);
    assert_string_equal(r.user, "carol@example.com"); /* "email" absent: RFC 7662 "username" */
    assert_string_equal(r.issuer_name, "idp");
    assert_int_equal(atomic_load(&S.hits), h0 + 1);
    pthread_mutex_lock(&S.mu);
    assert_string_equal(S.last_body, "token=act%2Bgood%2F1%3D%3D&token_type_hint=access_token");
    pthread_mutex_unlock(&S.mu);
    /* cached: the endpoint is not asked again */
    assert_int_equal(ask(o, "act+good/1==", now + 5, &r), OAUTH_VALID);
    assert_string_equal(r.user, "carol@example.com");
    assert_string_equal(r.issuer_name, "idp");
    assert_int_equal(atomic_load(&S.hits), h0 + 1);
    /* ... until the cache time is over */
    assert_int_equal(ask(o, "act+good/1==", now + 61, &r), OAUTH_VALID);
    assert_int_equal(atomic_load(&S.hits), h0 + 2);
    /* the configured claim wins over "username" when present */
    assert_int_equal(ask(o, "email-1", now, &r), OAUTH_VALID);
    assert_string_equal(r.user, "dave@example.com");
    /* a token that lives 1 s is not cached for 60 */
    h0 = atomic_load(&S.hits);
    assert_int_equal(ask(o, "short-1", now, &r), OAUTH_VALID);
    assert_int_equal(ask(o, "short-1", now + 3, &r), OAUTH_VALID);
    assert_int_equal(atomic_load(&S.hits), h0 + 2);
    /* a JWT-shaped token whose issuer has no JWKS is asked about, not checked here */
    static const char jwt[] = "eyJhbGciOiJSUzI1NiJ9."
                              "eyJpc3MiOiJodHRwczovL2lkcC5leGFtcGxlLmNvbSJ9.c2ln";
    assert_int_equal(ask(o, jwt, now, &r), OAUTH_VALID);
    assert_string_equal(r.user, "jwt-user@example.com");
    oauth_free(&o);
}

static void test_introspect_refused(void **state)
{
    struct oauth *o = make_default();
    struct oauth_result r;
    int64_t now = (int64_t)time(NULL);
    unsigned h0 = atomic_load(&S.hits);
    assert_int_equal(ask(o, "inact-1", now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "not_active");
    assert_string_equal(r.status_json, "{\"status\":\"invalid_token\",\"scope\":\"mail.read\"}");
    assert_string_equal(r.user, "");
    /* the definite "no" is cached too */
    assert_int_equal(ask(o, "inact-1", now + 1, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "not_active");
    assert_string_equal(r.status_json, "{\"status\":\"invalid_token\",\"scope\":\"mail.read\"}");
    assert_int_equal(atomic_load(&S.hits), h0 + 1);
    assert_int_equal(ask(o, "noscope-1", now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "scope");
    assert_string_equal(r.status_json, "{\"status\":\"insufficient_scope\",\"scope\":\"mail.read\"}");
    assert_int_equal(ask(o, "wrongiss-1", now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "issuer");
    assert_int_equal(ask(o, "expired-1", now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "expired");
    /* a JWT naming an issuer we do not know is refused without asking anyone */
    h0 = atomic_load(&S.hits);
    static const char jwt[] = "eyJhbGciOiJSUzI1NiJ9."
                              "eyJpc3MiOiJodHRwczovL2V2aWwuZXhhbXBsZSJ9.c2ln"; /* iss https://evil.example */
    assert_int_equal(ask(o, jwt, now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "issuer");
    assert_int_equal(ask(o, "bad token", now, &r), OAUTH_INVALID);
    assert_string_equal(r.why, "malformed");
    assert_int_equal(atomic_load(&S.hits), h0);
    oauth_free(&o);
}

static void test_introspect_tempfail(void **state)
{
    struct oauth *o = make_default();
    struct oauth_result r;
    int64_t now = (int64_t)time(NULL);
    unsigned h0 = atomic_load(&S.hits);
    assert_int_equal(ask(o, "e500-1", now, &r), OAUTH_TEMPFAIL);
    assert_string_equal(r.why, "introspection_http");
    /* never cached: the next try asks again */
    assert_int_equal(ask(o, "e500-1", now, &r), OAUTH_TEMPFAIL);
    assert_int_equal(atomic_load(&S.hits), h0 + 2);
    assert_int_equal(ask(o, "garb-1", now, &r), OAUTH_TEMPFAIL);
    assert_string_equal(r.why, "introspection_response");
    assert_int_equal(ask(o, "noactive-1", now, &r), OAUTH_TEMPFAIL);
    assert_string_equal(r.why, "introspection_response");
    oauth_free(&o);

    /* our own client credentials refused (401): not the user's fault */
    static struct conf c;
    conf_defaults(&c);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/a", S.port);
    issuer(&c.oauth[0], "idp", ISS, url);
    snprintf(c.oauth[0].client_id, sizeof(c.oauth[0].client_id), "someone-else");
    o = make(&c, 1);
    assert_int_equal(ask(o, "act-2", now, &r), OAUTH_TEMPFAIL);
    assert_string_equal(r.why, "introspection_http");
    oauth_free(&o);

    /* nothing listens: refused at once */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    close(s);
    snprintf(c.oauth[0].introspection_url, sizeof(c.oauth[0].introspection_url), "http://127.0.0.1:%u/a",
             ntohs(sa.sin_port));
    o = make(&c, 1);
    int64_t t0 = mono_ms();
    assert_int_equal(ask(o, "act-3", now, &r), OAUTH_TEMPFAIL);
    assert_string_equal(r.why, "introspection_unreachable");
    assert_true(mono_ms() - t0 < 1000);
    oauth_free(&o);

    /* a listener that never answers: bounded by the timeout */
    s = socket(AF_INET, SOCK_STREAM, 0);
    sa.sin_port = 0;
    assert_int_equal(bind(s, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(s, 8), 0);
    sl = sizeof(sa);
    assert_int_equal(getsockname(s, (struct sockaddr *)&sa, &sl), 0);
    snprintf(c.oauth[0].introspection_url, sizeof(c.oauth[0].introspection_url), "http://127.0.0.1:%u/a",
             ntohs(sa.sin_port));
    c.oauth[0].introspection_timeout_ms = 300;
    o = make(&c, 1);
    t0 = mono_ms();
    assert_int_equal(ask(o, "act-4", now, &r), OAUTH_TEMPFAIL);
    assert_string_equal(r.why, "introspection_timeout");
    int64_t took = mono_ms() - t0;
    assert_true(took >= 250 && took < 1500);
    oauth_free(&o);
    close(s);

    /* the real endpoint, slower than the timeout */
    snprintf(c.oauth[0].introspection_url, sizeof(c.oauth[0].introspection_url), "http://127.0.0.1:%u/a",
             S.port);
    snprintf(c.oauth[0].client_id, sizeof(c.oauth[0].client_id), CLIENT_ID);
    o = make(&c, 1);
    t0 = mono_ms();
    assert_int_equal(ask(o, "slow-1", now, &r), OAUTH_TEMPFAIL);
    assert_string_equal(r.why, "introspection_timeout");
    assert_true(mono_ms() - t0 < 1500);
    oauth_free(&o);
}

static void test_introspect_two_issuers(void **state)
{
    static struct conf c;
    conf_defaults(&c);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/a", S.port);
    issuer(&c.oauth[0], "idp", ISS, url);
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/b", S.port);
    issuer(&c.oauth[1], "b", ISS_B, url);
    struct oauth *o = make(&c, 2);
    struct oauth_result r;
    int64_t now = (int64_t)time(NULL);
    /* the first does not know it, the second does */
    unsigned h0 = atomic_load(&S.hits);
    assert_int_equal(ask(o, "inact-2", now, &r), OAUTH_VALID);
    assert_string_equal(r.user, "erin@example.com");
    assert_string_equal(r.issuer_name, "b");
    assert_int_equal(atomic_load(&S.hits), h0 + 2);
    assert_int_equal(ask(o, "inact-2", now, &r), OAUTH_VALID);
    assert_string_equal(r.issuer_name, "b");
    assert_int_equal(atomic_load(&S.hits), h0 + 2);
    /* the first one's answer stands when it knows the token */
    assert_int_equal(ask(o, "act-5", now, &r), OAUTH_VALID);
    assert_string_equal(r.issuer_name, "idp");
    /* the first one fails: the second still decides */
    assert_int_equal(ask(o, "e500-2", now, &r), OAUTH_VALID);
    assert_string_equal(r.issuer_name, "b");
    oauth_free(&o);
}

struct worker {
    struct oauth *o;
    int64_t now;
    int bad;
};

static void *hammer(void *arg)
{
    struct worker *w = arg;
    char tok[32];
    for (int i = 0; i < 40; i++) {
        struct oauth_result r;
        snprintf(tok, sizeof(tok), i % 2 ? "act-t%d" : "inact-t%d", i % 6);
        enum oauth_verdict v = oauth_validate(w->o, tok, strlen(tok), w->now, &r);
        if (v != (i % 2 ? OAUTH_VALID : OAUTH_INVALID))
            w->bad++;
    }
    return NULL;
}

static void test_introspect_threads(void **state)
{
    struct oauth *o = make_default();
    struct worker w[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct worker){.o = o, .now = (int64_t)time(NULL)};
        assert_int_equal(pthread_create(&th[i], NULL, hammer, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].bad, 0);
    }
    oauth_free(&o);
}

static void test_introspect_config(void **state)
{
    static struct conf c;
    conf_defaults(&c);
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/a", S.port);
    issuer(&c.oauth[0], "idp", ISS, url);
    c.n_oauth = 1;
    struct oauth *o = NULL;
    struct error err = {{0}};
    /* the client secret must be private */
    write_file(c.oauth[0].client_secret_file, SECRET, 0640);
    assert_int_equal(oauth_new(&c, &o, &err), -1);
    assert_non_null(strstr(err.msg, "group- or world-accessible"));
    write_file(c.oauth[0].client_secret_file, "\n", 0600);
    assert_int_equal(oauth_new(&c, &o, &err), -1);
    write_file(c.oauth[0].client_secret_file, SECRET, 0600);
    snprintf(c.oauth[0].introspection_url, sizeof(c.oauth[0].introspection_url), "ftp://127.0.0.1/x");
    assert_int_equal(oauth_new(&c, &o, &err), -1);
    assert_null(o);
    /* https with a CA file that is missing */
    snprintf(c.oauth[0].introspection_url, sizeof(c.oauth[0].introspection_url), "https://127.0.0.1/x");
    snprintf(c.oauth[0].introspection_ca, sizeof(c.oauth[0].introspection_ca), "%s/nope.pem", S.dir);
    assert_int_equal(oauth_new(&c, &o, &err), -1);
    /* with no issuer at all, nothing is valid */
    c.n_oauth = 0;
    assert_int_equal(oauth_new(&c, &o, &err), 0);
    struct oauth_result r;
    assert_int_equal(ask(o, "act-6", (int64_t)time(NULL), &r), OAUTH_INVALID);
    assert_string_equal(r.status_json, "{\"status\":\"invalid_token\"}");
    oauth_free(&o);
}

/* ---- SASL: OAUTHBEARER ---- */

static int ob(const char *msg, size_t len, struct sasl_creds *c, struct error *err)
{
    memset(c, 0x5a, sizeof(*c));
    err->msg[0] = '\0';
    return sasl_oauthbearer_parse((const unsigned char *)msg, len, c, err);
}

#define OB(lit, c, e) ob(lit, sizeof(lit) - 1, c, e)

static void test_oauthbearer_good(void **state)
{
    struct sasl_creds c;
    struct error err;
    /* RFC 7628 3.1's example */
    assert_int_equal(OB("n,a=user@example.com,\x01host=server.example.com\x01port=143\x01"
                        "auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
                        &c, &err),
                     0);
    assert_string_equal(c.authcid, "user@example.com");
    assert_string_equal(c.authzid, "");
    assert_string_equal(c.secret, "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==");
    assert_int_equal(c.secret_len, 42);
    /* no authzid: the token's claim decides; 'y' flag; scheme in any case */
    assert_int_equal(OB("y,,\x01"
                        "auth=bEARER a.b.c\x01\x01",
                        &c, &err),
                     0);
    assert_string_equal(c.authcid, "");
    assert_string_equal(c.secret, "a.b.c");
    /* escaped authzid; unknown keys ignored; several spaces after the scheme */
    assert_int_equal(OB("n,a=a=2Cb=3dc,\x01"
                        "foo=bar baz\x01"
                        "auth=Bearer   -._~+/x=\x01\x01",
                        &c, &err),
                     0);
    assert_string_equal(c.authcid, "a,b=c");
    assert_string_equal(c.secret, "-._~+/x=");
    /* a token of exactly SASL_SECRET_MAX bytes */
    size_t n = 4 + 13 + SASL_SECRET_MAX + 2;
    char *m = malloc(n);
    memcpy(m,
           "n,,\x01"
           "auth=Bearer ",
           4 + 12);
    memset(m + 16, 'T', SASL_SECRET_MAX);
    memcpy(m + 16 + SASL_SECRET_MAX, "\x01\x01", 2);
    assert_int_equal(ob(m, 16 + SASL_SECRET_MAX + 2, &c, &err), 0);
    assert_int_equal(c.secret_len, SASL_SECRET_MAX);
    assert_int_equal(strlen(c.secret), SASL_SECRET_MAX);
    /* one more is too many */
    m = realloc(m, n + 1);
    memset(m + 16, 'T', SASL_SECRET_MAX + 1);
    memcpy(m + 17 + SASL_SECRET_MAX, "\x01\x01", 2);
    assert_int_equal(ob(m, 16 + SASL_SECRET_MAX + 3, &c, &err), -1);
    free(m);
    sasl_creds_wipe(&c);
}

static void ob_bad(const char *msg, size_t len, const char *why)
{
    struct sasl_creds c;
    struct error err;
    if (ob(msg, len, &c, &err) != -1)
        fail_msg("accepted bad OAUTHBEARER message %zu bytes", len);
    if (why != NULL && strstr(err.msg, why) == NULL)
        fail_msg("error '%s' lacks '%s'", err.msg, why);
    /* nothing half-parsed is left behind */
    static const struct sasl_creds zero;
    assert_memory_equal(&c, &zero, sizeof(c));
}

#define OB_BAD(lit, why) ob_bad(lit, sizeof(lit) - 1, why)

static void test_oauthbearer_bad(void **state)
{
    OB_BAD("", "short");
    OB_BAD("\x01", NULL); /* the client's reply to an error challenge is no credential */
    OB_BAD("n,,\x01"
           "auth=Bearer tok\x01",
           "\\x01\\x01");
    OB_BAD("n,,\x01"
           "auth=Bearer tok",
           "\\x01\\x01");
    OB_BAD("n,,\x01\x01", "no auth");
    OB_BAD("n,,\x01host=x\x01\x01", "no auth");
    OB_BAD("n,,auth=Bearer tok\x01\x01", "\\x01\\x01");
    OB_BAD("n,,\x01"
           "auth=Basic dXNlcjpwYXNz\x01\x01",
           "Bearer");
    OB_BAD("n,,\x01"
           "auth=Bearertok\x01\x01",
           "Bearer");
    OB_BAD("n,,\x01"
           "auth=Bearer \x01\x01",
           "empty");
    OB_BAD("n,,\x01"
           "auth=Bearer a b\x01\x01",
           "b64token");
    OB_BAD("n,,\x01"
           "auth=Bearer a=b\x01\x01",
           "b64token");
    OB_BAD("n,,\x01"
           "auth=Bearer tok \x01\x01",
           "b64token");
    OB_BAD("n,,\x01"
           "auth=Bearer t\"k\x01\x01",
           "b64token");
    OB_BAD("n,,\x01"
           "auth=Bearer =abc\x01\x01",
           "empty");
    OB_BAD("n,,\x01"
           "auth=Bearer tok\x01"
           "auth=Bearer tok\x01\x01",
           "two auth");
    OB_BAD("p=tls-unique,,\x01"
           "auth=Bearer tok\x01\x01",
           "channel binding");
    OB_BAD("x,,\x01"
           "auth=Bearer tok\x01\x01",
           "GS2");
    OB_BAD("n,b=u,\x01"
           "auth=Bearer tok\x01\x01",
           "GS2");
    OB_BAD("n,a=u\x01"
           "auth=Bearer tok\x01\x01",
           "not terminated");
    OB_BAD("n,a=,\x01"
           "auth=Bearer tok\x01\x01",
           "empty");
    OB_BAD("n,a=a=2Xb,\x01"
           "auth=Bearer tok\x01\x01",
           "escape");
    OB_BAD("n,a=ab=2,\x01"
           "auth=Bearer tok\x01\x01",
           "escape");
    OB_BAD("n,a=a\tb,\x01"
           "auth=Bearer tok\x01\x01",
           "control");
    OB_BAD("n,,\x01"
           "port=http\x01"
           "auth=Bearer tok\x01\x01",
           "port");
    OB_BAD("n,,\x01"
           "host=\xc3\xa9\x01"
           "auth=Bearer tok\x01\x01",
           "VCHAR");
    OB_BAD("n,,\x01"
           "=x\x01"
           "auth=Bearer tok\x01\x01",
           "pair");
    OB_BAD("n,,\x01"
           "auth-x=y\x01"
           "auth=Bearer tok\x01\x01",
           "pair");
    OB_BAD("n,,\x01"
           "auth=Bearer tok\x01\x01x",
           "after");
    static const char nul[] = "n,,\x01"
                              "auth=Bearer t\0k\x01\x01";
    ob_bad(nul, sizeof(nul) - 1, "VCHAR");
    /* an authzid of SASL_NAME_MAX + 1 bytes */
    char m[400];
    int n = snprintf(m, sizeof(m),
                     "n,a=%0*d,\x01"
                     "auth=Bearer tok\x01\x01",
                     SASL_NAME_MAX + 1, 0);
    ob_bad(m, (size_t)n, "longer");
}

/* ---- SASL: XOAUTH2 ---- */

static int x2(const char *msg, size_t len, struct sasl_creds *c, struct error *err)
{
    memset(c, 0x5a, sizeof(*c));
    err->msg[0] = '\0';
    return sasl_xoauth2_parse((const unsigned char *)msg, len, c, err);
}

#define X2(lit, c, e) x2(lit, sizeof(lit) - 1, c, e)

static void x2_bad(const char *msg, size_t len, const char *why)
{
    struct sasl_creds c;
    struct error err;
    if (x2(msg, len, &c, &err) != -1)
        fail_msg("accepted bad XOAUTH2 message %zu bytes", len);
    if (strstr(err.msg, why) == NULL)
        fail_msg("error '%s' lacks '%s'", err.msg, why);
    static const struct sasl_creds zero;
    assert_memory_equal(&c, &zero, sizeof(c));
}

#define X2_BAD(lit, why) x2_bad(lit, sizeof(lit) - 1, why)

static void test_xoauth2(void **state)
{
    struct sasl_creds c;
    struct error err;
    assert_int_equal(X2("user=someuser@example.com\x01"
                        "auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg\x01\x01",
                        &c, &err),
                     0);
    assert_string_equal(c.authcid, "someuser@example.com");
    assert_string_equal(c.authzid, "");
    assert_string_equal(c.secret, "ya29.vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg");
    assert_int_equal(c.secret_len, strlen(c.secret));
    assert_int_equal(X2("user=J\xc3\xb6rg\x01"
                        "auth=bearer t\x01\x01",
                        &c, &err),
                     0);
    assert_string_equal(c.authcid, "J\xc3\xb6rg");
    sasl_creds_wipe(&c);

    X2_BAD("", "user=");
    X2_BAD("auth=Bearer t\x01\x01", "user=");
    X2_BAD("user=\x01"
           "auth=Bearer t\x01\x01",
           "empty");
    X2_BAD("user=bob", "not terminated");
    X2_BAD("user=b\tb\x01"
           "auth=Bearer t\x01\x01",
           "control");
    X2_BAD("user=bob\x01\x01", "auth=");
    X2_BAD("user=bob\x01host=x\x01"
           "auth=Bearer t\x01\x01",
           "auth=");
    X2_BAD("user=bob\x01"
           "auth=Basic t\x01\x01",
           "Bearer");
    X2_BAD("user=bob\x01"
           "auth=Bearer t\x01",
           "\\x01\\x01");
    X2_BAD("user=bob\x01"
           "auth=Bearer t",
           "\\x01\\x01");
    X2_BAD("user=bob\x01"
           "auth=Bearer t\x01\x01\x01",
           "\\x01\\x01");
    X2_BAD("user=bob\x01"
           "auth=Bearer t!\x01\x01",
           "b64token");
    X2_BAD("user=bob\x01"
           "auth=Bearer \x01\x01",
           "empty");
    char m[400];
    int n = snprintf(m, sizeof(m),
                     "user=%0*d\x01"
                     "auth=Bearer t\x01\x01",
                     SASL_NAME_MAX + 1, 0);
    x2_bad(m, (size_t)n, "longer");
}

static void run_mech(const struct sasl_mech *m, const char *msg, size_t len, const char *user)
{
    struct sasl_exchange *ex = m->start();
    assert_non_null(ex);
    struct sasl_creds c;
    struct error err = {{0}};
    unsigned char out[64];
    size_t outlen = 99;
    assert_true(m->plaintext_secret);
    assert_int_equal(m->step(ex, (const unsigned char *)msg, len, out, sizeof(out), &outlen, &c, &err),
                     SASL_STEP_VERIFY);
    assert_int_equal(outlen, 0);
    assert_string_equal(c.authcid, user);
    assert_string_equal(c.secret, "tok");
    /* after authd says no, the client's acknowledgement ends it */
    assert_int_equal(m->step(ex, (const unsigned char *)"\x01", 1, out, sizeof(out), &outlen, &c, &err),
                     SASL_STEP_FAIL);
    assert_int_equal(c.secret_len, 0);
    m->finish(&ex);
    assert_null(ex);
    ex = m->start();
    assert_int_equal(m->step(ex, (const unsigned char *)"x", 1, out, sizeof(out), &outlen, &c, &err),
                     SASL_STEP_FAIL);
    m->finish(&ex);
}

static void test_mechs(void **state)
{
    assert_string_equal(sasl_mech_oauthbearer.name, "OAUTHBEARER");
    assert_string_equal(sasl_mech_xoauth2.name, "XOAUTH2");
    assert_int_equal(sasl_mech_oauthbearer.bit, CONF_MECH_OAUTHBEARER);
    assert_int_equal(sasl_mech_xoauth2.bit, CONF_MECH_XOAUTH2);
    assert_false(sasl_mech_oauthbearer.relay);
    static const char a[] = "n,a=bob,\x01"
                            "auth=Bearer tok\x01\x01";
    run_mech(&sasl_mech_oauthbearer, a, sizeof(a) - 1, "bob");
    static const char b[] = "user=bob\x01"
                            "auth=Bearer tok\x01\x01";
    run_mech(&sasl_mech_xoauth2, b, sizeof(b) - 1, "bob");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_introspect_active),
        cmocka_unit_test(test_introspect_refused),
        cmocka_unit_test(test_introspect_tempfail),
        cmocka_unit_test(test_introspect_two_issuers),
        cmocka_unit_test(test_introspect_threads),
        cmocka_unit_test(test_introspect_config),
        cmocka_unit_test(test_oauthbearer_good),
        cmocka_unit_test(test_oauthbearer_bad),
        cmocka_unit_test(test_xoauth2),
        cmocka_unit_test(test_mechs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
