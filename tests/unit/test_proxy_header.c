/* PROXY protocol v2 header: the headers HAProxy sends (TCP over IPv4 and
 * IPv6, LOCAL health checks, TLVs), partial input at every length, and each
 * way a header can be wrong. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "event/proxy_header.h"

static const unsigned char SIG[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

/* Builds a header: version/command, family/transport, body. Returns its length. */
static size_t build(unsigned char *out, unsigned char ver_cmd, unsigned char fam, const unsigned char *body,
                    size_t body_len)
{
    memcpy(out, SIG, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (unsigned char)(body_len >> 8);
    out[15] = (unsigned char)body_len;
    if (body_len > 0)
        memcpy(out + 16, body, body_len);
    return 16 + body_len;
}

/* 192.0.2.7:51000 -> 198.51.100.1:995 */
static const unsigned char INET_BODY[12] = {192, 0, 2, 7, 198, 51, 100, 1, 0xC7, 0x38, 0x03, 0xE3};

static void test_inet(void **state)
{
    unsigned char h[64];
    size_t n = build(h, 0x21, 0x11, INET_BODY, sizeof(INET_BODY));
    struct proxy_info pi;
    size_t need;
    const char *why;
    assert_int_equal(proxy_v2_parse(h, n, &pi, &need, &why), PROXY_OK);
    assert_false(pi.local);
    assert_int_equal(pi.header_len, 28);
    const struct sockaddr_in *s = (const struct sockaddr_in *)&pi.src;
    assert_int_equal(s->sin_family, AF_INET);
    char ip[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &s->sin_addr, ip, sizeof(ip));
    assert_string_equal(ip, "192.0.2.7");
    assert_int_equal(ntohs(s->sin_port), 51000);
    assert_int_equal(pi.src_len, sizeof(struct sockaddr_in));
}

static void test_inet6_with_tlvs(void **state)
{
    unsigned char body[36 + 3 + 9 + 3 + 0];
    struct in6_addr a;
    inet_pton(AF_INET6, "2001:db8::42", &a);
    memcpy(body, &a, 16);
    memset(body + 16, 0, 16);
    body[32] = 0x12, body[33] = 0x34, body[34] = 0x03, body[35] = 0xE3;
    /* PP2_TYPE_AUTHORITY "localhost", then an empty PP2_TYPE_NOOP */
    body[36] = 0x02, body[37] = 0, body[38] = 9;
    memcpy(body + 39, "localhost", 9);
    body[48] = 0x04, body[49] = 0, body[50] = 0;
    unsigned char h[128];
    size_t n = build(h, 0x21, 0x21, body, sizeof(body));
    struct proxy_info pi;
    size_t need;
    const char *why;
    assert_int_equal(proxy_v2_parse(h, n, &pi, &need, &why), PROXY_OK);
    assert_int_equal(pi.header_len, n);
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)&pi.src;
    assert_int_equal(s->sin6_family, AF_INET6);
    assert_memory_equal(&s->sin6_addr, &a, 16);
    assert_int_equal(ntohs(s->sin6_port), 0x1234);
}

static void test_local_and_unspec(void **state)
{
    unsigned char h[64];
    struct proxy_info pi;
    size_t need;
    const char *why;
    /* LOCAL (health check), even with an address block: the peer stays the source. */
    size_t n = build(h, 0x20, 0x11, INET_BODY, sizeof(INET_BODY));
    assert_int_equal(proxy_v2_parse(h, n, &pi, &need, &why), PROXY_OK);
    assert_true(pi.local);
    assert_int_equal(pi.header_len, 28);
    /* LOCAL with no address at all, as HAProxy sends it. */
    n = build(h, 0x20, 0x00, NULL, 0);
    assert_int_equal(proxy_v2_parse(h, n, &pi, &need, &why), PROXY_OK);
    assert_true(pi.local);
    assert_int_equal(pi.header_len, 16);
    /* PROXY over UNSPEC, or from a UNIX socket: no TCP client to name. */
    n = build(h, 0x21, 0x00, NULL, 0);
    assert_int_equal(proxy_v2_parse(h, n, &pi, &need, &why), PROXY_OK);
    assert_true(pi.local);
    unsigned char unix_body[216] = {0};
    unsigned char big[256];
    n = build(big, 0x21, 0x31, unix_body, sizeof(unix_body));
    assert_int_equal(proxy_v2_parse(big, n, &pi, &need, &why), PROXY_OK);
    assert_true(pi.local);
    assert_int_equal(pi.header_len, 232);
}

/* Every prefix of a valid header asks for more, never accepts or refuses early,
 * and says how much it needs. Bytes after the header are not the parser's. */
static void test_partial(void **state)
{
    unsigned char h[80];
    size_t n = build(h, 0x21, 0x11, INET_BODY, sizeof(INET_BODY));
    memcpy(h + n, "\x16\x03\x01", 3); /* a ClientHello starts right after */
    for (size_t len = 0; len < n; len++) {
        struct proxy_info pi;
        size_t need;
        const char *why;
        assert_int_equal(proxy_v2_parse(h, len, &pi, &need, &why), PROXY_NEED_MORE);
        assert_true(need > len);
        assert_int_equal(need, len < 16 ? 16 : n);
    }
    struct proxy_info pi;
    size_t need;
    const char *why;
    assert_int_equal(proxy_v2_parse(h, n + 3, &pi, &need, &why), PROXY_OK);
    assert_int_equal(pi.header_len, n);
}

static void expect_bad(const unsigned char *h, size_t n, const char *fragment)
{
    struct proxy_info pi;
    size_t need;
    const char *why;
    assert_int_equal(proxy_v2_parse(h, n, &pi, &need, &why), PROXY_BAD);
    assert_non_null(why);
    assert_non_null(strstr(why, fragment));
}

static void test_refused(void **state)
{
    unsigned char h[4096];
    /* A client speaking TLS or POP3 directly: refused at the first byte. */
    expect_bad((const unsigned char *)"\x16\x03\x01", 3, "no PROXY protocol v2 header");
    expect_bad((const unsigned char *)"\r\n\r\n\0\r\nX", 8, "no PROXY protocol v2 header");
    expect_bad((const unsigned char *)"PROXY TCP4 192.0.2.7 198.51.100.1 51000 995\r\n", 45, "send-proxy-v2");
    size_t n = build(h, 0x11, 0x11, INET_BODY, sizeof(INET_BODY));
    expect_bad(h, n, "version");
    n = build(h, 0x22, 0x11, INET_BODY, sizeof(INET_BODY));
    expect_bad(h, n, "command");
    n = build(h, 0x21, 0x41, INET_BODY, sizeof(INET_BODY));
    expect_bad(h, n, "family");
    n = build(h, 0x21, 0x13, INET_BODY, sizeof(INET_BODY));
    expect_bad(h, n, "transport");
    n = build(h, 0x21, 0x12, INET_BODY, sizeof(INET_BODY));
    expect_bad(h, n, "datagram");
    n = build(h, 0x21, 0x21, INET_BODY, sizeof(INET_BODY)); /* IPv6 needs 36 bytes */
    expect_bad(h, n, "truncated");
    unsigned char body[12 + 3 + 2];
    memcpy(body, INET_BODY, 12);
    body[12] = 0x02, body[13] = 0, body[14] = 5; /* a TLV claiming 5 bytes, 2 present */
    n = build(h, 0x21, 0x11, body, sizeof(body));
    expect_bad(h, n, "TLV");
    n = build(h, 0x21, 0x11, body, 14); /* 2 bytes of a TLV header */
    expect_bad(h, n, "TLV");
    /* Too long: refused from the prefix alone, without waiting for the rest. */
    memcpy(h, SIG, 12);
    h[12] = 0x21, h[13] = 0x11, h[14] = 0xFF, h[15] = 0xFF;
    expect_bad(h, 16, "too long");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inet),
        cmocka_unit_test(test_inet6_with_tlvs),
        cmocka_unit_test(test_local_and_unspec),
        cmocka_unit_test(test_partial),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
