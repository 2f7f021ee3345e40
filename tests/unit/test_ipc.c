/* IPC messages as hostile input: exact wire bytes, round trips of the auth
 * request and result, and every malformed variant failing closed (truncated,
 * trailing bytes, oversize strings, embedded NUL, bad flag, wrong type), then
 * ipc_send()/ipc_recv() over a real SOCK_SEQPACKET socketpair. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ipc/auth_msg.h"
#include "ipc/msg.h"

static void test_wire_format(void **state)
{
    struct ipc_writer w;
    ipc_w_init(&w, IPC_AUTH_REQ);
    ipc_w_u32(&w, 0x01020304);
    ipc_w_u8(&w, 0xfe);
    ipc_w_str(&w, "ab");
    ipc_w_bytes(&w, "\0x", 2);
    ipc_w_str(&w, "");
    static const uint8_t want[] = {1, 1, 2, 3, 4, 0xfe, 0, 2, 'a', 'b', 0, 2, 0, 'x', 0, 0};
    assert_false(w.overflow);
    assert_int_equal(w.len, sizeof(want));
    assert_memory_equal(w.buf, want, sizeof(want));

    struct ipc_reader r;
    assert_int_equal(ipc_r_init(&r, w.buf, w.len), IPC_AUTH_REQ);
    assert_int_equal(ipc_r_u32(&r), 0x01020304);
    assert_int_equal(ipc_r_u8(&r), 0xfe);
    char s[8];
    assert_int_equal(ipc_r_str(&r, s, sizeof(s)), 2);
    assert_string_equal(s, "ab");
    assert_int_equal(ipc_r_end(&r), -1); /* bytes left */
    assert_int_equal(ipc_r_str(&r, s, sizeof(s)), 0); /* "\0x": an embedded NUL */
    assert_string_equal(s, "");
    assert_int_equal(ipc_r_end(&r), -1);
    /* once bad, always bad, and getters return zeros */
    assert_int_equal(ipc_r_u8(&r), 0);
    assert_int_equal(ipc_r_u32(&r), 0);
    assert_int_equal(ipc_r_end(&r), -1);
}

static void test_reader_bounds(void **state)
{
    struct ipc_reader r;
    assert_int_equal(ipc_r_init(&r, (const uint8_t *)"", 0), -1); /* empty datagram */
    static const uint8_t one[] = {7};
    assert_int_equal(ipc_r_init(&r, one, 1), 7);
    assert_int_equal(ipc_r_end(&r), 0);
    /* short u32 */
    static const uint8_t short32[] = {1, 0, 0, 1};
    assert_int_equal(ipc_r_init(&r, short32, sizeof(short32)), 1);
    assert_int_equal(ipc_r_u32(&r), 0);
    assert_int_equal(ipc_r_end(&r), -1);
    /* a string whose length runs past the end */
    static const uint8_t longstr[] = {1, 0, 5, 'a', 'b'};
    char s[16];
    assert_int_equal(ipc_r_init(&r, longstr, sizeof(longstr)), 1);
    assert_int_equal(ipc_r_str(&r, s, sizeof(s)), 0);
    assert_string_equal(s, "");
    assert_int_equal(ipc_r_end(&r), -1);
    /* a string that does not fit the destination (cap - 1 is the most) */
    static const uint8_t fits[] = {1, 0, 3, 'a', 'b', 'c'};
    assert_int_equal(ipc_r_init(&r, fits, sizeof(fits)), 1);
    assert_int_equal(ipc_r_str(&r, s, 4), 3);
    assert_string_equal(s, "abc");
    assert_int_equal(ipc_r_end(&r), 0);
    assert_int_equal(ipc_r_init(&r, fits, sizeof(fits)), 1);
    assert_int_equal(ipc_r_str(&r, s, 3), 0);
    assert_string_equal(s, "");
    assert_int_equal(ipc_r_end(&r), -1);
}

static void test_writer_overflow(void **state)
{
    struct ipc_writer *w = malloc(sizeof(*w));
    assert_non_null(w);
    static uint8_t big[70000];
    ipc_w_init(w, IPC_AUTH_REQ);
    ipc_w_bytes(w, big, 0x10000); /* longer than a u16 length */
    assert_true(w->overflow);
    ipc_w_init(w, IPC_AUTH_REQ); /* init clears it */
    assert_false(w->overflow);
    assert_int_equal(w->len, 1);
    ipc_w_bytes(w, big, IPC_MSG_MAX - 3); /* 1 + 2 + (MAX - 3): exactly full */
    assert_false(w->overflow);
    assert_int_equal(w->len, IPC_MSG_MAX);
    ipc_w_u8(w, 1);
    assert_true(w->overflow);
    assert_int_equal(w->len, IPC_MSG_MAX);
    ipc_w_init(w, IPC_AUTH_REQ);
    ipc_w_bytes(w, big, IPC_MSG_MAX - 2);
    assert_true(w->overflow);
    /* an overflowed message is never sent */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    errno = 0;
    assert_int_equal(ipc_send(sv[0], w), -1);
    assert_int_equal(errno, EMSGSIZE);
    uint8_t buf[IPC_MSG_MAX];
    errno = 0;
    assert_int_equal(ipc_recv(sv[1], buf), -1);
    assert_int_equal(errno, EAGAIN);
    close(sv[0]);
    close(sv[1]);
    free(w);
}

static void fill_req(struct ipc_auth_req *q)
{
    memset(q, 0, sizeof(*q));
    q->id = 0xdeadbeef;
    strcpy(q->mech, "PLAIN");
    strcpy(q->sid, "a1b2c3");
    strcpy(q->remote, "2001:db8::1");
    q->tls = 1;
    strcpy(q->authzid, "admin");
    strcpy(q->authcid, "bob@example.org");
    memcpy(q->secret, "p w\x01\xff", 5);
    q->secret_len = 5;
}

static void fill_res(struct ipc_auth_res *a)
{
    memset(a, 0, sizeof(*a));
    a->id = 42;
    a->status = 3;
    a->delay_ms = 2500;
    strcpy(a->user, "bob@example.org");
    strcpy(a->mail, "/srv/mail/example.org/bob/Maildir");
}

static void test_req_roundtrip(void **state)
{
    struct ipc_auth_req q, back;
    fill_req(&q);
    struct ipc_writer w;
    ipc_auth_req_write(&w, &q);
    assert_false(w.overflow);
    struct ipc_reader r;
    assert_int_equal(ipc_r_init(&r, w.buf, w.len), IPC_AUTH_REQ);
    assert_int_equal(ipc_auth_req_read(&r, &back), 0);
    assert_int_equal(back.id, 0xdeadbeef);
    assert_string_equal(back.mech, "PLAIN");
    assert_string_equal(back.sid, "a1b2c3");
    assert_string_equal(back.remote, "2001:db8::1");
    assert_int_equal(back.tls, 1);
    assert_string_equal(back.authzid, "admin");
    assert_string_equal(back.authcid, "bob@example.org");
    assert_int_equal(back.secret_len, 5);
    assert_memory_equal(back.secret, "p w\x01\xff", 6); /* NUL-terminated */

    /* every field at its largest */
    memset(q.mech, 'm', sizeof(q.mech) - 1);
    memset(q.sid, 's', sizeof(q.sid) - 1);
    memset(q.remote, 'r', sizeof(q.remote) - 1);
    memset(q.authzid, 'z', IPC_NAME_MAX);
    memset(q.authcid, 'c', IPC_NAME_MAX);
    memset(q.secret, 'p', IPC_SECRET_MAX);
    q.secret_len = IPC_SECRET_MAX;
    q.tls = 0;
    ipc_auth_req_write(&w, &q);
    assert_false(w.overflow);
    assert_int_equal(ipc_r_init(&r, w.buf, w.len), IPC_AUTH_REQ);
    assert_int_equal(ipc_auth_req_read(&r, &back), 0);
    assert_memory_equal(&back, &q, sizeof(q));
}

static void test_res_roundtrip(void **state)
{
    struct ipc_auth_res a, back;
    fill_res(&a);
    struct ipc_writer w;
    ipc_auth_res_write(&w, &a);
    assert_false(w.overflow);
    struct ipc_reader r;
    assert_int_equal(ipc_r_init(&r, w.buf, w.len), IPC_AUTH_RES);
    assert_int_equal(ipc_auth_res_read(&r, &back), 0);
    assert_memory_equal(&back, &a, sizeof(a));
    /* largest fields; empty fields (a failure carries no user or path) */
    memset(a.user, 'u', IPC_NAME_MAX);
    memset(a.mail, 'm', sizeof(a.mail) - 1);
    ipc_auth_res_write(&w, &a);
    assert_int_equal(ipc_r_init(&r, w.buf, w.len), IPC_AUTH_RES);
    assert_int_equal(ipc_auth_res_read(&r, &back), 0);
    assert_memory_equal(&back, &a, sizeof(a));
    memset(&a, 0, sizeof(a));
    a.status = 1;
    ipc_auth_res_write(&w, &a);
    assert_int_equal(w.len, 1 + 4 + 1 + 4 + 2 + 2 + 2);
    assert_int_equal(ipc_r_init(&r, w.buf, w.len), IPC_AUTH_RES);
    assert_int_equal(ipc_auth_res_read(&r, &back), 0);
    assert_memory_equal(&back, &a, sizeof(a));
}

static bool all_zero(const void *p, size_t n)
{
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return false;
    return true;
}

static int read_req(const uint8_t *buf, size_t len, struct ipc_auth_req *q)
{
    struct ipc_reader r;
    if (ipc_r_init(&r, buf, len) != IPC_AUTH_REQ)
        return -2;
    memset(q, 0x5a, sizeof(*q));
    return ipc_auth_req_read(&r, q);
}

static int read_res(const uint8_t *buf, size_t len, struct ipc_auth_res *a)
{
    struct ipc_reader r;
    if (ipc_r_init(&r, buf, len) != IPC_AUTH_RES)
        return -2;
    return ipc_auth_res_read(&r, a);
}

/* The fields of a request before mech: conversation, step, binding. */
static void req_head(struct ipc_writer *o)
{
    ipc_w_u32(o, 7);
    ipc_w_u8(o, 0);
    ipc_w_u8(o, 1);
    ipc_w_bytes(o, "tls-exporter", 12);
    ipc_w_bytes(o, "\0\1\2", 3);
}

static void test_req_hostile(void **state)
{
    struct ipc_auth_req q, back;
    fill_req(&q);
    struct ipc_writer w;
    ipc_auth_req_write(&w, &q);
    uint8_t buf[IPC_MSG_MAX + 1];
    memcpy(buf, w.buf, w.len);
    /* every truncation fails, and leaves no secret behind */
    for (size_t len = 1; len < w.len; len++) {
        if (read_req(buf, len, &back) != -1)
            fail_msg("truncated request of %zu/%zu bytes accepted", len, w.len);
        assert_true(all_zero(&back, sizeof(back)));
    }
    assert_int_equal(read_req(buf, 0, &back), -2);
    /* a trailing byte */
    buf[w.len] = 0;
    assert_int_equal(read_req(buf, w.len + 1, &back), -1);
    assert_true(all_zero(&back, sizeof(back)));
    assert_int_equal(read_req(buf, w.len, &back), 0);

    /* tls and plus_offered must be 0 or 1 */
    q.tls = 2;
    ipc_auth_req_write(&w, &q);
    assert_int_equal(read_req(w.buf, w.len, &back), -1);
    assert_true(all_zero(&back, sizeof(back)));
    q.tls = 1;
    q.plus_offered = 2;
    ipc_auth_req_write(&w, &q);
    assert_int_equal(read_req(w.buf, w.len, &back), -1);
    q.plus_offered = 0;
    /* channel-binding data over IPC_CB_MAX */
    ipc_w_init(&w, IPC_AUTH_REQ);
    ipc_w_u32(&w, 1);
    ipc_w_u32(&w, 1);
    ipc_w_u8(&w, 0);
    ipc_w_u8(&w, 1);
    ipc_w_bytes(&w, "tls-unique", 10);
    static const uint8_t cb[IPC_CB_MAX + 1];
    ipc_w_bytes(&w, cb, sizeof(cb));
    assert_int_equal(read_req(w.buf, w.len, &back), -1);

    /* an oversize string in each position */
    static const size_t caps[] = {sizeof(q.mech), sizeof(q.sid), sizeof(q.remote), IPC_NAME_MAX + 1,
                                  IPC_NAME_MAX + 1, IPC_SECRET_MAX + 1};
    char big[IPC_SECRET_MAX + 2];
    memset(big, 'x', sizeof(big));
    for (int field = 0; field < 6; field++) {
        struct ipc_writer *o = &w;
        ipc_w_init(o, IPC_AUTH_REQ);
        ipc_w_u32(o, 1);
        req_head(o);
        for (int k = 0; k < 6; k++) {
            if (k == 3)
                ipc_w_u8(o, 1); /* tls */
            ipc_w_bytes(o, big, k == field ? caps[k] : 1);
        }
        assert_false(o->overflow);
        if (read_req(o->buf, o->len, &back) != -1)
            fail_msg("oversize field %d accepted", field);
        assert_true(all_zero(&back, sizeof(back)));
        /* one less fits */
        ipc_w_init(o, IPC_AUTH_REQ);
        ipc_w_u32(o, 1);
        req_head(o);
        for (int k = 0; k < 6; k++) {
            if (k == 3)
                ipc_w_u8(o, 1);
            ipc_w_bytes(o, big, k == field ? caps[k] - 1 : 1);
        }
        assert_int_equal(read_req(o->buf, o->len, &back), 0);
    }
    /* an embedded NUL in each position */
    for (int field = 0; field < 6; field++) {
        ipc_w_init(&w, IPC_AUTH_REQ);
        ipc_w_u32(&w, 1);
        req_head(&w);
        for (int k = 0; k < 6; k++) {
            if (k == 3)
                ipc_w_u8(&w, 0);
            ipc_w_bytes(&w, k == field ? "a\0b" : "abc", 3);
        }
        if (read_req(w.buf, w.len, &back) != -1)
            fail_msg("NUL in field %d accepted", field);
        assert_true(all_zero(&back, sizeof(back)));
    }
    /* a result is not a request */
    struct ipc_auth_res a;
    fill_res(&a);
    ipc_auth_res_write(&w, &a);
    assert_int_equal(read_req(w.buf, w.len, &back), -2);
    /* nor does it parse as one when the type byte is forged */
    w.buf[0] = IPC_AUTH_REQ;
    assert_int_equal(read_req(w.buf, w.len, &back), -1);
}

static void test_res_hostile(void **state)
{
    struct ipc_auth_res a, back;
    fill_res(&a);
    struct ipc_writer w;
    ipc_auth_res_write(&w, &a);
    uint8_t buf[IPC_MSG_MAX + 1];
    memcpy(buf, w.buf, w.len);
    for (size_t len = 1; len < w.len; len++)
        if (read_res(buf, len, &back) != -1)
            fail_msg("truncated result of %zu/%zu bytes accepted", len, w.len);
    buf[w.len] = 'x';
    assert_int_equal(read_res(buf, w.len + 1, &back), -1);
    assert_int_equal(read_res(buf, w.len, &back), 0);
    /* oversize user and mail path */
    char big[1100];
    memset(big, 'x', sizeof(big));
    for (int field = 0; field < 2; field++) {
        size_t cap = field == 0 ? sizeof(a.user) : sizeof(a.mail);
        for (int over = 0; over <= 1; over++) {
            ipc_w_init(&w, IPC_AUTH_RES);
            ipc_w_u32(&w, 1);
            ipc_w_u8(&w, 0);
            ipc_w_u32(&w, 0);
            ipc_w_bytes(&w, big, field == 0 ? cap - 1 + (size_t)over : 3);
            ipc_w_bytes(&w, big, field == 1 ? cap - 1 + (size_t)over : 3);
            ipc_w_bytes(&w, "", 0);
            assert_int_equal(read_res(w.buf, w.len, &back), over ? -1 : 0);
        }
    }
    /* embedded NUL */
    ipc_w_init(&w, IPC_AUTH_RES);
    ipc_w_u32(&w, 1);
    ipc_w_u8(&w, 0);
    ipc_w_u32(&w, 0);
    ipc_w_bytes(&w, "bob", 3);
    ipc_w_bytes(&w, "/srv/mail\0/etc", 14);
    ipc_w_bytes(&w, "", 0);
    assert_int_equal(read_res(w.buf, w.len, &back), -1);
    /* challenge data: binary is fine, over IPC_DATA_MAX is not */
    static uint8_t data[IPC_DATA_MAX + 1];
    for (int over = 0; over <= 1; over++) {
        ipc_w_init(&w, IPC_AUTH_RES);
        ipc_w_u32(&w, 1);
        ipc_w_u8(&w, 0);
        ipc_w_u32(&w, 0);
        ipc_w_bytes(&w, "bob", 3);
        ipc_w_bytes(&w, "/m", 2);
        ipc_w_bytes(&w, data, IPC_DATA_MAX + (size_t)over);
        assert_int_equal(read_res(w.buf, w.len, &back), over ? -1 : 0);
    }
    /* a request is not a result */
    struct ipc_auth_req q;
    fill_req(&q);
    ipc_auth_req_write(&w, &q);
    assert_int_equal(read_res(w.buf, w.len, &back), -2);
    w.buf[0] = IPC_AUTH_RES;
    assert_int_equal(read_res(w.buf, w.len, &back), -1);
}

static void test_socket(void **state)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv), 0);
    uint8_t *buf = malloc(IPC_MSG_MAX + 16);
    assert_non_null(buf);

    /* nothing waiting */
    errno = 0;
    assert_int_equal(ipc_recv(sv[1], buf), -1);
    assert_int_equal(errno, EAGAIN);

    /* a request, then a result the other way: one datagram each, in order */
    struct ipc_auth_req q, qb;
    fill_req(&q);
    struct ipc_writer w;
    ipc_auth_req_write(&w, &q);
    assert_int_equal(ipc_send(sv[0], &w), 0);
    struct ipc_auth_res a, ab;
    fill_res(&a);
    struct ipc_writer w2;
    ipc_auth_res_write(&w2, &a);
    assert_int_equal(ipc_send(sv[1], &w2), 0);
    a.id = 43;
    ipc_auth_res_write(&w2, &a);
    assert_int_equal(ipc_send(sv[1], &w2), 0);

    long n = ipc_recv(sv[1], buf);
    assert_int_equal(n, (long)w.len);
    struct ipc_reader r;
    assert_int_equal(ipc_r_init(&r, buf, (size_t)n), IPC_AUTH_REQ);
    assert_int_equal(ipc_auth_req_read(&r, &qb), 0);
    assert_memory_equal(&qb, &q, sizeof(q));
    n = ipc_recv(sv[0], buf);
    assert_int_equal(read_res(buf, (size_t)n, &ab), 0);
    assert_int_equal(ab.id, 42);
    n = ipc_recv(sv[0], buf);
    assert_int_equal(read_res(buf, (size_t)n, &ab), 0);
    assert_int_equal(ab.id, 43);
    assert_int_equal(ipc_recv(sv[0], buf), -1);

    /* the largest datagram passes; one byte more is refused, and wiped */
    memset(buf, 'A', IPC_MSG_MAX + 1);
    assert_int_equal(send(sv[0], buf, IPC_MSG_MAX, 0), IPC_MSG_MAX);
    memset(buf, 0, IPC_MSG_MAX);
    assert_int_equal(ipc_recv(sv[1], buf), IPC_MSG_MAX);
    assert_int_equal(buf[IPC_MSG_MAX - 1], 'A');
    memset(buf, 'A', IPC_MSG_MAX + 1);
    assert_int_equal(send(sv[0], buf, IPC_MSG_MAX + 1, 0), IPC_MSG_MAX + 1);
    errno = 0;
    assert_int_equal(ipc_recv(sv[1], buf), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_true(all_zero(buf, IPC_MSG_MAX));
    /* the next datagram is intact: the bad one was consumed whole */
    ipc_auth_req_write(&w, &q);
    assert_int_equal(ipc_send(sv[0], &w), 0);
    n = ipc_recv(sv[1], buf);
    assert_int_equal(read_req(buf, (size_t)n, &qb), 0);

    /* EOF when the peer is gone; sending to it fails without SIGPIPE */
    close(sv[0]);
    assert_int_equal(ipc_recv(sv[1], buf), 0);
    assert_int_equal(ipc_send(sv[1], &w), -1);
    assert_int_equal(errno, EPIPE);
    close(sv[1]);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_format),   cmocka_unit_test(test_reader_bounds),
        cmocka_unit_test(test_writer_overflow), cmocka_unit_test(test_req_roundtrip),
        cmocka_unit_test(test_res_roundtrip), cmocka_unit_test(test_req_hostile),
        cmocka_unit_test(test_res_hostile),   cmocka_unit_test(test_socket),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
