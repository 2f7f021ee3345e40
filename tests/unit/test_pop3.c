/* The POP3 layer without sockets: line framing, command parsing, message
 * numbers, and the session state machine driven through a fake struct pop3_ops
 * that records every byte written and every callback, over a real Maildir in
 * /tmp. Every reply is compared byte for byte. */
/* cmocka needs these before it, in this order. */
/* clang-format off */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
/* clang-format on */

#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/log.h"
#include "pop3/command.h"
#include "pop3/frame.h"
#include "conf/conf.h"
#include "pop3/session.h"
#include "store/mailbox.h"

/* ==== framing ==== */

struct fr {
    enum pop3_frame_status st;
    size_t linelen, consumed;
};

static struct fr frame(struct pop3_framer *f, const char *buf, size_t max)
{
    struct fr r;
    r.st = pop3_frame_next(f, buf, strlen(buf), max, &r.linelen, &r.consumed);
    return r;
}

static void test_frame_basic(void **state)
{
    struct pop3_framer f = {0};
    struct fr r = frame(&f, "CAPA\r\n", 255);
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 4);
    assert_int_equal(r.consumed, 6);
    r = frame(&f, "CAPA\n", 255); /* bare LF */
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 4);
    assert_int_equal(r.consumed, 5);
    r = frame(&f, "CA\rPA\r\n", 255); /* a CR inside the line stays in it */
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 5);
    assert_int_equal(r.consumed, 7);
    r = frame(&f, "CAPA\r\r\n", 255); /* only the CR right before LF is dropped */
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 5);
    r = frame(&f, "\r\n", 255);
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 0);
    assert_int_equal(r.consumed, 2);
    r = frame(&f, "\n", 255);
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 0);
    assert_int_equal(r.consumed, 1);
    r = frame(&f, "CAPA", 255); /* incomplete: nothing consumed */
    assert_int_equal(r.st, POP3_FRAME_NEED_MORE);
    assert_int_equal(r.consumed, 0);
    r = frame(&f, "", 255);
    assert_int_equal(r.st, POP3_FRAME_NEED_MORE);
    assert_int_equal(r.consumed, 0);
    r = frame(&f, "CAPA\r", 255);
    assert_int_equal(r.st, POP3_FRAME_NEED_MORE);
    assert_int_equal(r.consumed, 0);
    /* pipelined lines come out one per call */
    const char *two = "STAT\r\nLIST 1\n";
    r = frame(&f, two, 255);
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 4);
    assert_int_equal(r.consumed, 6);
    r = frame(&f, two + 6, 255);
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 6);
    assert_int_equal(r.consumed, 7);
    assert_false(f.discarding);
}

static void test_frame_limit(void **state)
{
    struct pop3_framer f = {0};
    /* exactly max octets (plus CRLF, or LF) is a line */
    struct fr r = frame(&f, "0123456789\r\n", 10);
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 10);
    assert_int_equal(r.consumed, 12);
    r = frame(&f, "0123456789\n", 10);
    assert_int_equal(r.st, POP3_FRAME_LINE);
    assert_int_equal(r.linelen, 10);
    /* one over is too long, consumed whole */
    r = frame(&f, "0123456789A\r\n", 10);
    assert_int_equal(r.st, POP3_FRAME_TOO_LONG);
    assert_int_equal(r.linelen, 0);
    assert_int_equal(r.consumed, 13);
    r = frame(&f, "0123456789A\nNOOP\n", 10);
    assert_int_equal(r.st, POP3_FRAME_TOO_LONG);
    assert_int_equal(r.consumed, 12);
    assert_false(f.discarding);
    /* max octets and a CR without LF yet may still become a valid line */
    r = frame(&f, "0123456789\r", 10);
    assert_int_equal(r.st, POP3_FRAME_NEED_MORE);
    assert_int_equal(r.consumed, 0);
    assert_false(f.discarding);
    /* one more octet cannot: the framer starts discarding */
    r = frame(&f, "0123456789AB", 10);
    assert_int_equal(r.st, POP3_FRAME_NEED_MORE);
    assert_int_equal(r.consumed, 12);
    assert_true(f.discarding);
}

/* A driver like the front's: a bounded input buffer, bytes arriving in chunks,
 * pop3_frame_next() called until it needs more. Records lines and TOO_LONGs. */
struct driver {
    struct pop3_framer f;
    char buf[64];
    size_t len;
    char events[512];
};

static void drive(struct driver *d, const char *chunk, size_t max)
{
    size_t n = strlen(chunk);
    assert_true(d->len + n <= sizeof(d->buf));
    memcpy(d->buf + d->len, chunk, n);
    d->len += n;
    for (;;) {
        size_t linelen, consumed;
        enum pop3_frame_status st = pop3_frame_next(&d->f, d->buf, d->len, max, &linelen, &consumed);
        assert_true(consumed <= d->len);
        if (st == POP3_FRAME_LINE)
            snprintf(d->events + strlen(d->events), sizeof(d->events) - strlen(d->events), "[%.*s]",
                     (int)linelen, d->buf);
        else if (st == POP3_FRAME_TOO_LONG)
            snprintf(d->events + strlen(d->events), sizeof(d->events) - strlen(d->events), "<TOO_LONG>");
        memmove(d->buf, d->buf + consumed, d->len - consumed);
        d->len -= consumed;
        if (st == POP3_FRAME_NEED_MORE)
            break;
    }
}

static void test_frame_split(void **state)
{
    struct driver d = {0};
    /* an over-long line across several calls: reported once, at its end */
    drive(&d, "STAT\r\n0123456789", 10);
    assert_string_equal(d.events, "[STAT]");
    drive(&d, "ABCDEF", 10);
    assert_string_equal(d.events, "[STAT]");
    assert_true(d.f.discarding);
    assert_int_equal(d.len, 0); /* nothing buffered while discarding */
    drive(&d, "GHIJKLMNOPQRSTUVWXYZ", 10);
    assert_string_equal(d.events, "[STAT]");
    drive(&d, "xyz\r", 10);
    assert_string_equal(d.events, "[STAT]");
    drive(&d, "\nNOOP\r\nLIST 1\r\n", 10);
    assert_string_equal(d.events, "[STAT]<TOO_LONG>[NOOP][LIST 1]");
    assert_false(d.f.discarding);

    /* a valid line one byte at a time */
    struct driver e = {0};
    const char *in = "0123456789\r\nQUIT\n";
    for (size_t i = 0; in[i] != '\0'; i++) {
        char one[2] = {in[i], '\0'};
        drive(&e, one, 10);
    }
    assert_string_equal(e.events, "[0123456789][QUIT]");

    /* an over-long line one byte at a time: still exactly one TOO_LONG */
    struct driver g = {0};
    in = "0123456789ABCDEFGHIJ\r\nNOOP\r\n";
    for (size_t i = 0; in[i] != '\0'; i++) {
        char one[2] = {in[i], '\0'};
        drive(&g, one, 10);
    }
    assert_string_equal(g.events, "<TOO_LONG>[NOOP]");
}

/* ==== command parsing ==== */

static int parse(const char *text, struct pop3_cmd *c, char *buf, size_t bufsz)
{
    size_t n = strlen(text);
    assert_true(n + 1 <= bufsz);
    memcpy(buf, text, n + 1);
    return pop3_cmd_parse(buf, n, c);
}

static void test_cmd_parse(void **state)
{
    struct pop3_cmd c;
    char b[300];
    assert_int_equal(parse("capa", &c, b, sizeof(b)), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "CAPA");
    assert_int_equal(c.argc, 0);
    assert_int_equal(parse("Top 1 10", &c, b, sizeof(b)), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "TOP");
    assert_int_equal(c.argc, 2);
    assert_string_equal(c.argv[0], "1");
    assert_int_equal(c.arglen[0], 1);
    assert_string_equal(c.argv[1], "10");
    assert_int_equal(c.arglen[1], 2);
    assert_int_equal(parse("uSeR alice@example.org", &c, b, sizeof(b)), POP3_PARSE_OK);
    assert_string_equal(c.keyword, "USER");
    assert_int_equal(c.argc, 1);
    assert_string_equal(c.argv[0], "alice@example.org");
    assert_int_equal(c.arglen[0], 17);
    assert_int_equal(parse("USER caf\xc3\xa9", &c, b, sizeof(b)), POP3_PARSE_OK); /* 8-bit argument */
    assert_string_equal(c.argv[0], "caf\xc3\xa9");
    /* the parse works on len bytes, not up to a NUL */
    memcpy(b, "LIST 12345", 11);
    assert_int_equal(pop3_cmd_parse(b, 6, &c), POP3_PARSE_OK);
    assert_string_equal(c.argv[0], "1");
}

static void test_cmd_parse_bad(void **state)
{
    static const struct {
        const char *text;
        int want;
    } cases[] = {
        {"", POP3_PARSE_EMPTY},
        {"LIST\t1", POP3_PARSE_BADCHAR},
        {"LIST 1\r", POP3_PARSE_BADCHAR},
        {"\x7f", POP3_PARSE_BADCHAR},
        {"US\x1bR a", POP3_PARSE_BADCHAR},
        {"AB", POP3_PARSE_KEYWORD},
        {"ABCDE", POP3_PARSE_KEYWORD},
        {"CAP4", POP3_PARSE_KEYWORD},
        {"1234", POP3_PARSE_KEYWORD},
        {" CAPA", POP3_PARSE_KEYWORD},
        {"CA-P", POP3_PARSE_KEYWORD},
        {"\xc3\xa9TAT", POP3_PARSE_KEYWORD},
        {"LIST  1", POP3_PARSE_SPACING},
        {"LIST 1 ", POP3_PARSE_SPACING},
        {"LIST ", POP3_PARSE_SPACING},
        {"TOP 1  2", POP3_PARSE_SPACING},
        {"TOP 1 2 3", POP3_PARSE_TOO_MANY},
        {"USER a b c d", POP3_PARSE_TOO_MANY},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct pop3_cmd c;
        char b[64];
        int r = parse(cases[i].text, &c, b, sizeof(b));
        if (r != cases[i].want)
            fail_msg("\"%s\": got %d, want %d", cases[i].text, r, cases[i].want);
    }
    struct pop3_cmd c;
    char nul[] = "CA\0PA";
    assert_int_equal(pop3_cmd_parse(nul, 5, &c), POP3_PARSE_BADCHAR);
    char nul2[] = "LIST 1\0";
    assert_int_equal(pop3_cmd_parse(nul2, 7, &c), POP3_PARSE_BADCHAR);
}

static void test_msgnum(void **state)
{
    uint32_t idx = 99;
    assert_int_equal(pop3_msgnum("1", 1, 3, &idx), 0);
    assert_int_equal(idx, 0);
    assert_int_equal(pop3_msgnum("3", 1, 3, &idx), 0);
    assert_int_equal(idx, 2);
    assert_int_equal(pop3_msgnum("03", 2, 3, &idx), 0); /* leading zeros are decimal */
    assert_int_equal(idx, 2);
    assert_int_equal(pop3_msgnum("4294967295", 10, UINT32_MAX, &idx), 0);
    assert_int_equal(idx, UINT32_MAX - 1);
    idx = 99;
    assert_int_equal(pop3_msgnum("4", 1, 3, &idx), -2); /* beyond max: no such message */
    assert_int_equal(pop3_msgnum("1", 1, 0, &idx), -2);
    assert_int_equal(pop3_msgnum("4294967295", 10, 3, &idx), -2);
    static const char *const bad[] = {"4294967297", "4294967296", "0",   "00",  "1x", "-1",
                                      "+1",         " 1",         "",    "1.0", "00000000001"}; /* > 10 digits */
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (pop3_msgnum(bad[i], strlen(bad[i]), 10, &idx) != -1)
            fail_msg("msgnum accepted \"%s\"", bad[i]);
    assert_int_equal(idx, 99); /* untouched on error */
}

/* ==== the session, through fake ops ==== */

struct fake {
    struct pop3_session *s;
    char out[16384];
    size_t outlen;
    int start_tls;
    int auth_calls;
    char auth_mech[32];
    struct sasl_creds creds;
    int timers;
    uint64_t timer_ms;
    int opens;
    char open_path[256];
    int open_status; /* forced result, 0 = store_open() the real path */
    int sends;
    long long send_top;
    char sent[256]; /* the message file as read from the fd */
    int logged_in;
    int closes;
    char close_reason[64];
};

static void fake_write(void *io, const char *data, size_t len)
{
    struct fake *f = io;
    assert_true(f->outlen + len < sizeof(f->out));
    memcpy(f->out + f->outlen, data, len);
    f->outlen += len;
    f->out[f->outlen] = '\0';
}

static void fake_start_tls(void *io)
{
    ((struct fake *)io)->start_tls++;
}

static void fake_auth_request(void *io, const char *mech, const struct sasl_creds *creds, unsigned step,
                              bool plus_offered)
{
    struct fake *f = io;
    f->auth_calls++;
    snprintf(f->auth_mech, sizeof(f->auth_mech), "%s", mech);
    f->creds = *creds;
}

static void fake_start_timer(void *io, uint64_t ms)
{
    struct fake *f = io;
    f->timers++;
    f->timer_ms = ms;
}

static int fake_open_mailbox(void *io, const char *path, struct store_mailbox **mb, struct error *err)
{
    struct fake *f = io;
    f->opens++;
    snprintf(f->open_path, sizeof(f->open_path), "%s", path);
    if (f->open_status != 0) {
        *mb = NULL;
        error_set(err, "forced");
        return f->open_status;
    }
    return store_open(path, false, mb, err);
}

/* Reads the whole message (the real driver would dot-stuff it), closes the fd
 * it was given and resumes the session, as the contract says. */
static void fake_send_message(void *io, int fd, long long top_lines)
{
    struct fake *f = io;
    f->sends++;
    f->send_top = top_lines;
    assert_true(fd >= 0);
    ssize_t n = read(fd, f->sent, sizeof(f->sent) - 1);
    assert_true(n >= 0);
    f->sent[n] = '\0';
    assert_int_equal(close(fd), 0);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_STREAMING);
    assert_false(pop3_session_wants_input(f->s));
    pop3_session_resume(f->s);
}

static void fake_logged_in(void *io)
{
    ((struct fake *)io)->logged_in++;
}

static void fake_close(void *io, const char *reason)
{
    struct fake *f = io;
    f->closes++;
    snprintf(f->close_reason, sizeof(f->close_reason), "%s", reason);
}

static const struct pop3_ops fake_ops = {
    .write = fake_write,
    .start_tls = fake_start_tls,
    .auth_request = fake_auth_request,
    .start_timer = fake_start_timer,
    .open_mailbox = fake_open_mailbox,
    .send_message = fake_send_message,
    .logged_in = fake_logged_in,
    .close = fake_close,
};

/* The test Maildir: three messages, sizes as POP3 counts them (LF as CRLF). */
#define MSG1 "Subject: one\n\nbody one\n"              /* 23 octets, 3 LF: 26 */
#define MSG2 "Subject: two\n\nline1\nline2\nline3\n" /* 32 octets, 5 LF: 37 */
#define MSG3 "x\n"                                    /* 2 octets, 1 LF: 3 */

struct fixture {
    char dir[64];     /* the Maildir */
    char empty[80];   /* an empty Maildir */
    struct pop3_params p;
    struct fake f;
};

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void put(const char *dir, const char *rel, const char *data)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, strlen(data)), (ssize_t)strlen(data));
    close(fd);
}

static bool exists(const char *dir, const char *rel)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, rel);
    return access(p, F_OK) == 0;
}

static void make_maildir(const char *dir)
{
    static const char *const subs[] = {"new", "cur", "tmp"};
    char p[128];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s/%s", dir, subs[i]);
        assert_int_equal(mkdir(p, 0700), 0);
    }
}

static int setup(void **state)
{
    struct fixture *x = calloc(1, sizeof(*x));
    assert_non_null(x);
    strcpy(x->dir, "/tmp/popsd-pop3-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    make_maildir(x->dir);
    put(x->dir, "new/1.msg", MSG1);
    put(x->dir, "cur/2.msg:2,S", MSG2);
    put(x->dir, "new/3.msg", MSG3);
    snprintf(x->empty, sizeof(x->empty), "%s/empty", x->dir);
    assert_int_equal(mkdir(x->empty, 0700), 0);
    make_maildir(x->empty);
    x->p = (struct pop3_params){
        .sid = "t1",
        .remote_ip = "192.0.2.1",
        .tls_active = true,
        .stls_allowed = false,
        .implementation = "popsd",
        .login_delay_s = 0,
        .max_bad_commands = 10,
        .max_auth_attempts = 3,
        .mechs = CONF_MECH_ALL,
    };
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *x = *state;
    pop3_session_free(&x->f.s);
    nftw(x->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(x);
    return 0;
}

static struct pop3_session *start(struct fake *f, const struct pop3_params *p)
{
    memset(f, 0, sizeof(*f));
    f->s = pop3_session_new(p, &fake_ops, f);
    assert_non_null(f->s);
    pop3_session_greet(f->s);
    assert_string_equal(f->out, "+OK POP3 server ready.\r\n");
    f->outlen = 0;
    f->out[0] = '\0';
    return f->s;
}

/* Feeds one line (without its line end) and returns everything written in
 * response, clearing the record. */
static const char *line_more(struct fake *f, const char *text, size_t len, bool more_pending)
{
    static char ret[sizeof(f->out)];
    char *buf = malloc(len + 1);
    assert_non_null(buf);
    memcpy(buf, text, len);
    buf[len] = 'Z'; /* the session may use the extra byte */
    f->outlen = 0;
    f->out[0] = '\0';
    pop3_session_line(f->s, buf, len, more_pending);
    free(buf);
    memcpy(ret, f->out, f->outlen + 1);
    f->outlen = 0;
    f->out[0] = '\0';
    return ret;
}

static const char *line(struct fake *f, const char *text)
{
    return line_more(f, text, strlen(text), false);
}

static const char *take_out(struct fake *f)
{
    static char ret[sizeof(f->out)];
    memcpy(ret, f->out, f->outlen + 1);
    f->outlen = 0;
    f->out[0] = '\0';
    return ret;
}

#define CAPA_HEAD                                                                                            \
    "+OK Capability list follows\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n"  \
    "EXPIRE NEVER\r\n"
#define REFUSED "-ERR [AUTH] Plaintext authentication disallowed on non-secure connections; use STLS first.\r\n"

static void test_greeting_and_capa_implicit(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    start(f, &x->p);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    assert_true(pop3_session_wants_input(f->s));
    assert_int_equal(pop3_session_line_max(f->s), POP3_FRAME_MAX);
    assert_null(pop3_session_user(f->s));
    assert_string_equal(line(f, "CAPA"), CAPA_HEAD "LOGIN-DELAY 0\r\nUSER\r\nSASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 OAUTHBEARER XOAUTH2 PLAIN\r\nIMPLEMENTATION popsd\r\n.\r\n");
    assert_string_equal(line(f, "capa"), CAPA_HEAD "LOGIN-DELAY 0\r\nUSER\r\nSASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 OAUTHBEARER XOAUTH2 PLAIN\r\nIMPLEMENTATION popsd\r\n.\r\n");
    /* STLS on an implicit-TLS port */
    assert_string_equal(line(f, "STLS"), "-ERR TLS is already active.\r\n");
    assert_string_equal(line(f, "AUTH"), "+OK Mechanisms follow\r\nSCRAM-SHA-256-PLUS\r\nSCRAM-SHA-256\r\nOAUTHBEARER\r\nXOAUTH2\r\nPLAIN\r\n.\r\n");
    assert_int_equal(f->start_tls, 0);
    pop3_session_free(&f->s);
    assert_null(f->s);

    /* no IMPLEMENTATION when not configured; LOGIN-DELAY as configured */
    x->p.implementation = "";
    x->p.login_delay_s = 900;
    start(f, &x->p);
    assert_string_equal(line(f, "CAPA"), CAPA_HEAD "LOGIN-DELAY 900\r\nUSER\r\nSASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 OAUTHBEARER XOAUTH2 PLAIN\r\n.\r\n");
}

static void test_stls(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    x->p.tls_active = false;
    x->p.stls_allowed = true;
    start(f, &x->p);
    /* before TLS: STLS offered, no USER, no SASL */
    assert_string_equal(line(f, "CAPA"), CAPA_HEAD "LOGIN-DELAY 0\r\nSTLS\r\nIMPLEMENTATION popsd\r\n.\r\n");
    assert_string_equal(line(f, "AUTH"), "+OK Mechanisms follow\r\n.\r\n");
    /* no credentials in clear, whatever the mechanism or command */
    assert_string_equal(line(f, "USER bob"), REFUSED);
    assert_string_equal(line(f, "PASS secret"), REFUSED);
    assert_string_equal(line(f, "AUTH PLAIN"), REFUSED);
    assert_string_equal(line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ="), REFUSED);
    assert_int_equal(f->auth_calls, 0);
    assert_string_equal(line(f, "STLS x"), "-ERR STLS takes no arguments.\r\n");
    /* STLS */
    assert_string_equal(line(f, "STLS"), "+OK Begin TLS negotiation now.\r\n");
    assert_int_equal(f->start_tls, 1);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_STLS);
    assert_false(pop3_session_wants_input(f->s));
    /* a line fed during the handshake is ignored */
    assert_string_equal(line(f, "CAPA"), "");
    pop3_session_tls_ready(f->s);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    assert_true(pop3_session_wants_input(f->s));
    assert_string_equal(take_out(f), "");
    /* after TLS: USER and SASL PLAIN, no STLS */
    assert_string_equal(line(f, "CAPA"), CAPA_HEAD "LOGIN-DELAY 0\r\nUSER\r\nSASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 OAUTHBEARER XOAUTH2 PLAIN\r\nIMPLEMENTATION popsd\r\n.\r\n");
    assert_string_equal(line(f, "AUTH"), "+OK Mechanisms follow\r\nSCRAM-SHA-256-PLUS\r\nSCRAM-SHA-256\r\nOAUTHBEARER\r\nXOAUTH2\r\nPLAIN\r\n.\r\n");
    assert_string_equal(line(f, "STLS"), "-ERR TLS is already active.\r\n");
    assert_string_equal(line(f, "USER bob"), "+OK Send your password.\r\n");
    /* a second tls_ready is ignored */
    pop3_session_tls_ready(f->s);
    assert_string_equal(take_out(f), "");
    assert_int_equal(f->closes, 0);
}

static void test_stls_injection(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    x->p.tls_active = false;
    x->p.stls_allowed = true;
    start(f, &x->p);
    /* "STLS\r\nUSER evil\r\n" in one packet: refused and closed */
    assert_string_equal(line_more(f, "STLS", 4, true), "-ERR Commands pipelined after STLS; closing.\r\n");
    assert_int_equal(f->start_tls, 0);
    assert_int_equal(f->closes, 1);
    assert_string_equal(f->close_reason, "stls_injection");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_CLOSED);
    assert_false(pop3_session_wants_input(f->s));
    assert_string_equal(line(f, "USER evil"), "");
    pop3_session_tls_ready(f->s); /* no effect after close */
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_CLOSED);

    /* a port without STLS */
    x->p.stls_allowed = false;
    pop3_session_free(&f->s);
    start(f, &x->p);
    assert_string_equal(line(f, "STLS"), "-ERR STLS is not offered on this port.\r\n");
    assert_int_equal(f->start_tls, 0);
    assert_string_equal(line(f, "CAPA"), CAPA_HEAD "LOGIN-DELAY 0\r\nIMPLEMENTATION popsd\r\n.\r\n");
}

static void test_user_pass(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    start(f, &x->p);
    assert_string_equal(line(f, "PASS secret"), "-ERR USER first.\r\n");
    assert_string_equal(line(f, "USER bob@example.org"), "+OK Send your password.\r\n");
    assert_string_equal(line(f, "USER alice"), "+OK Send your password.\r\n"); /* the last USER counts */
    /* the password is the rest of the line, spaces included; the buffer is wiped */
    char buf[64] = "PASS  correct horse battery ";
    size_t len = strlen(buf);
    pop3_session_line(f->s, buf, len, false);
    for (size_t i = 0; i < len; i++)
        assert_int_equal(buf[i], 0);
    assert_string_equal(take_out(f), "");
    assert_int_equal(f->auth_calls, 1);
    assert_string_equal(f->auth_mech, "USER");
    assert_string_equal(f->creds.authcid, "alice");
    assert_string_equal(f->creds.authzid, "");
    assert_int_equal(f->creds.secret_len, 23);
    assert_memory_equal(f->creds.secret, " correct horse battery ", 23);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_WAIT_AUTHD);
    assert_false(pop3_session_wants_input(f->s));
    /* nothing is taken while authd is asked */
    assert_string_equal(line(f, "CAPA"), "");
    pop3_session_timer(f->s); /* a stray timer does nothing */
    pop3_session_resume(f->s);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_WAIT_AUTHD);
    assert_string_equal(take_out(f), "");

    struct pop3_auth_result r = {.status = POP3_AUTH_TEMPFAIL};
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "-ERR [SYS/TEMP] Authentication is temporarily unavailable; try again later.\r\n");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    /* a result nobody waits for is ignored */
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "");

    /* USER is used once: PASS again needs USER again */
    assert_string_equal(line(f, "PASS x"), "-ERR USER first.\r\n");
    assert_string_equal(line(f, "user carol"), "+OK Send your password.\r\n");
    assert_string_equal(line(f, "PASS"), "-ERR Invalid password length.\r\n");
    assert_string_equal(line(f, "USER carol"), "+OK Send your password.\r\n");
    assert_string_equal(line(f, "PASS "), "-ERR Invalid password length.\r\n");
    assert_string_equal(line(f, "USER carol"), "+OK Send your password.\r\n");
    assert_string_equal(line(f, "pass pw"), "");
    assert_int_equal(f->auth_calls, 2);
    assert_string_equal(f->creds.authcid, "carol");
    assert_string_equal(f->creds.secret, "pw");
    /* PASSWORD is not PASS */
    pop3_session_auth_result(f->s, &r);
    take_out(f);
    assert_string_equal(line(f, "PASSWORD x"), "-ERR Unknown command.\r\n");
    assert_string_equal(line(f, "USER a b"), "-ERR Wrong number of arguments.\r\n");
    assert_string_equal(line(f, "USER"), "-ERR Wrong number of arguments.\r\n");
}

static void test_long_lines_auth(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    start(f, &x->p);
    char text[2048];
    /* RFC 2449: 255 octets with the CRLF is the most a command line may have */
    assert_int_equal(POP3_CMD_TEXT_MAX, 253);
    memset(text, 'u', sizeof(text));
    memcpy(text, "USER ", 5);
    text[POP3_CMD_TEXT_MAX] = '\0';
    assert_string_equal(line(f, text), "+OK Send your password.\r\n");
    text[POP3_CMD_TEXT_MAX] = 'u';
    text[POP3_CMD_TEXT_MAX + 1] = '\0';
    assert_string_equal(line(f, text), "-ERR Line too long.\r\n");
    memcpy(text, "PASS ", 5);
    assert_string_equal(line(f, text), "-ERR Line too long.\r\n");
    assert_int_equal(f->auth_calls, 0);
    /* AUTH may exceed it: a 600-byte password in the initial response */
    unsigned char plain[700];
    memcpy(plain, "\0bob\0", 5);
    memset(plain + 5, 'p', 600);
    char enc[B64_ENCODED_LEN(700) + 1];
    long n = b64_encode(plain, 605, enc, sizeof(enc));
    assert_true(n > 255);
    snprintf(text, sizeof(text), "AUTH PLAIN %s", enc);
    assert_string_equal(line(f, text), "");
    assert_int_equal(f->auth_calls, 1);
    assert_int_equal(f->creds.secret_len, 600);
    /* the framer's report of an over-long line */
    struct pop3_auth_result r = {.status = POP3_AUTH_TEMPFAIL};
    pop3_session_auth_result(f->s, &r);
    take_out(f);
    pop3_session_line_too_long(f->s);
    assert_string_equal(take_out(f), "-ERR Line too long.\r\n");
    /* ... which also ends a SASL exchange */
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    pop3_session_line_too_long(f->s);
    assert_string_equal(take_out(f), "-ERR Line too long.\r\n");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    assert_string_equal(line(f, "NOOP"), "-ERR Command not valid in this state.\r\n");
}

static void test_auth_plain(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    struct pop3_auth_result temp = {.status = POP3_AUTH_TEMPFAIL};
    x->p.max_bad_commands = 100;
    start(f, &x->p);
    /* initial response: "\0bob\0s3cret" */
    assert_string_equal(line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ="), "");
    assert_int_equal(f->auth_calls, 1);
    assert_string_equal(f->auth_mech, "PLAIN");
    assert_string_equal(f->creds.authzid, "");
    assert_string_equal(f->creds.authcid, "bob");
    assert_string_equal(f->creds.secret, "s3cret");
    assert_int_equal(f->creds.secret_len, 6);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_WAIT_AUTHD);
    pop3_session_auth_result(f->s, &temp);
    take_out(f);

    /* with an authzid, mechanism name in lower case: "admin\0bob\0pw" */
    assert_string_equal(line(f, "auth plain YWRtaW4AYm9iAHB3"), "");
    assert_int_equal(f->auth_calls, 2);
    assert_string_equal(f->creds.authzid, "admin");
    assert_string_equal(f->creds.authcid, "bob");
    assert_string_equal(f->creds.secret, "pw");
    pop3_session_auth_result(f->s, &temp);
    take_out(f);

    /* continuation: "+ " then the response, which is wiped from the line buffer */
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_SASL);
    assert_true(pop3_session_wants_input(f->s));
    char resp[] = "AGNhcm9sAHAgdyBk"; /* "\0carol\0p w d" */
    pop3_session_line(f->s, resp, strlen(resp), false);
    for (size_t i = 0; i < sizeof(resp) - 1; i++)
        assert_int_equal(resp[i], 0);
    assert_string_equal(take_out(f), "");
    assert_int_equal(f->auth_calls, 3);
    assert_string_equal(f->creds.authcid, "carol");
    assert_string_equal(f->creds.secret, "p w d");
    pop3_session_auth_result(f->s, &temp);
    take_out(f);

    /* "*" cancels */
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    assert_string_equal(line(f, "*"), "-ERR [AUTH] Authentication cancelled.\r\n");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    assert_int_equal(f->auth_calls, 3);

    /* "=" is an empty response: not a valid PLAIN message */
    assert_string_equal(line(f, "AUTH PLAIN ="), "-ERR [AUTH] Malformed authentication exchange.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    assert_string_equal(line(f, "="), "-ERR [AUTH] Malformed authentication exchange.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    assert_string_equal(line(f, ""), "-ERR [AUTH] Malformed authentication exchange.\r\n");
    /* well-formed base64 of a malformed PLAIN message ("bob\0pw": one separator) */
    assert_string_equal(line(f, "AUTH PLAIN Ym9iAHB3"), "-ERR [AUTH] Malformed authentication exchange.\r\n");

    /* invalid base64, in the initial response and in a continuation */
    assert_string_equal(line(f, "AUTH PLAIN !!!!"), "-ERR [AUTH] Invalid base64 data.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ"), "-ERR [AUTH] Invalid base64 data.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    assert_string_equal(line(f, "AGJvYgBzM2NyZXQ= "), "-ERR [AUTH] Invalid base64 data.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    assert_string_equal(line_more(f, "AGJv\0gBz", 8, false), "-ERR [AUTH] Invalid base64 data.\r\n");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    /* a command is not a way out of an exchange: "QUIT" is valid base64 */
    assert_string_equal(line(f, "AUTH PLAIN"), "+ \r\n");
    assert_string_equal(line(f, "QUIT"), "-ERR [AUTH] Malformed authentication exchange.\r\n");
    assert_int_equal(f->closes, 0);

    /* unknown mechanisms, bad argument counts */
    assert_string_equal(line(f, "AUTH CRAM-MD5"), "-ERR Unsupported authentication mechanism.\r\n");
    assert_string_equal(line(f, "AUTH LOGIN"), "-ERR Unsupported authentication mechanism.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN a b"), "-ERR Too many arguments.\r\n");
    assert_int_equal(f->auth_calls, 3);
    assert_int_equal(f->closes, 0);
}

static void test_auth_results(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    x->p.login_delay_s = 300;
    start(f, &x->p);

    /* FAIL: the -ERR only after the delay */
    line(f, "USER bob");
    line(f, "PASS wrong");
    struct pop3_auth_result r = {.status = POP3_AUTH_FAIL, .delay_ms = 1234};
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "");
    assert_int_equal(f->timers, 1);
    assert_int_equal(f->timer_ms, 1234);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_WAIT_DELAY);
    assert_false(pop3_session_wants_input(f->s));
    assert_string_equal(line(f, "CAPA"), "");
    pop3_session_timer(f->s);
    assert_string_equal(take_out(f), "-ERR [AUTH] Authentication failed.\r\n");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    pop3_session_timer(f->s); /* once only */
    assert_string_equal(take_out(f), "");

    /* LOGIN-DELAY */
    line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
    r = (struct pop3_auth_result){.status = POP3_AUTH_LOGIN_DELAY};
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "-ERR [LOGIN-DELAY] Logged in too recently; wait 300 seconds between logins.\r\n");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
    assert_int_equal(f->closes, 0);
    assert_int_equal(f->timers, 1);

    /* OK: the mailbox is opened and the session is in TRANSACTION */
    line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
    r = (struct pop3_auth_result){.status = POP3_AUTH_OK, .user = "bob", .mail_path = x->dir};
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "+OK Logged in, 3 messages.\r\n");
    assert_int_equal(f->opens, 1);
    assert_string_equal(f->open_path, x->dir);
    assert_int_equal(f->logged_in, 1);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_TRANSACTION);
    assert_int_equal(pop3_session_line_max(f->s), POP3_CMD_TEXT_MAX);
    assert_string_equal(pop3_session_user(f->s), "bob");
    /* CAPA after login: no USER, SASL or STLS */
    assert_string_equal(line(f, "CAPA"), CAPA_HEAD "LOGIN-DELAY 300\r\nIMPLEMENTATION popsd\r\n.\r\n");
    /* AUTHORIZATION commands are now refused */
    assert_string_equal(line(f, "USER bob"), "-ERR Command not valid in this state.\r\n");
    assert_string_equal(line(f, "PASS x"), "-ERR Command not valid in this state.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ="), "-ERR Command not valid in this state.\r\n");
    assert_string_equal(line(f, "STLS"), "-ERR Command not valid in this state.\r\n");
    assert_int_equal(f->auth_calls, 3);
}

static void test_disabled_and_open_errors(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    start(f, &x->p);
    line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
    struct pop3_auth_result r = {.status = POP3_AUTH_DISABLED, .delay_ms = 5};
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "");
    assert_int_equal(f->timer_ms, 5);
    pop3_session_timer(f->s);
    assert_string_equal(take_out(f), "-ERR [AUTH] Authentication failed.\r\n");

    static const struct {
        int status;
        const char *reply;
    } cases[] = {
        {STORE_ERR_PERM, "-ERR [SYS/PERM] The mailbox is not available.\r\n"},
        {STORE_ERR_TEMP, "-ERR [SYS/TEMP] The mailbox cannot be opened now; try again later.\r\n"},
        {STORE_ERR_INUSE, "-ERR [IN-USE] The mailbox is in use by another POP3 session.\r\n"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        f->open_status = cases[i].status;
        line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
        r = (struct pop3_auth_result){.status = POP3_AUTH_OK, .user = "bob", .mail_path = x->dir};
        pop3_session_auth_result(f->s, &r);
        assert_string_equal(take_out(f), cases[i].reply);
        assert_int_equal(pop3_session_state(f->s), POP3_STATE_AUTHORIZATION);
        assert_null(pop3_session_user(f->s));
    }
    assert_int_equal(f->logged_in, 0);
    /* a missing Maildir through the real store */
    f->open_status = 0;
    char missing[128];
    snprintf(missing, sizeof(missing), "%s/nope", x->dir);
    line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
    r = (struct pop3_auth_result){.status = POP3_AUTH_OK, .user = "bob", .mail_path = missing};
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "-ERR [SYS/PERM] The mailbox is not available.\r\n");
    assert_int_equal(f->closes, 0);
}

static void fail_once(struct fake *f, uint32_t delay)
{
    line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
    struct pop3_auth_result r = {.status = POP3_AUTH_FAIL, .delay_ms = delay};
    pop3_session_auth_result(f->s, &r);
    assert_string_equal(take_out(f), "");
    pop3_session_timer(f->s);
}

static void test_max_auth_attempts(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    start(f, &x->p); /* max_auth_attempts = 3 */
    fail_once(f, 10);
    assert_string_equal(take_out(f), "-ERR [AUTH] Authentication failed.\r\n");
    fail_once(f, 10);
    assert_string_equal(take_out(f), "-ERR [AUTH] Authentication failed.\r\n");
    assert_int_equal(f->closes, 0);
    fail_once(f, 10);
    assert_string_equal(take_out(f), "-ERR [AUTH] Authentication failed.\r\n");
    assert_int_equal(f->closes, 1);
    assert_string_equal(f->close_reason, "auth_attempts");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_CLOSED);
    assert_string_equal(line(f, "CAPA"), "");

    /* a cancelled or malformed exchange counts as an attempt too */
    pop3_session_free(&f->s);
    start(f, &x->p);
    line(f, "AUTH PLAIN");
    assert_string_equal(line(f, "*"), "-ERR [AUTH] Authentication cancelled.\r\n");
    assert_string_equal(line(f, "AUTH PLAIN ="), "-ERR [AUTH] Malformed authentication exchange.\r\n");
    fail_once(f, 0);
    assert_string_equal(take_out(f), "-ERR [AUTH] Authentication failed.\r\n");
    assert_int_equal(f->closes, 1);
    assert_string_equal(f->close_reason, "auth_attempts");
}

static void test_bad_commands(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    x->p.max_bad_commands = 12;
    start(f, &x->p);
    assert_string_equal(line(f, "FOO"), "-ERR Unknown command.\r\n");
    assert_string_equal(line(f, ""), "-ERR Empty command.\r\n");
    assert_string_equal(line(f, "CAPA\x01"), "-ERR Invalid character in command.\r\n");
    assert_string_equal(line(f, "TOP 1 2 3"), "-ERR Too many arguments.\r\n");
    assert_string_equal(line(f, "USER  bob"), "-ERR Invalid spacing in command.\r\n");
    assert_string_equal(line(f, "USER bob "), "-ERR Invalid spacing in command.\r\n");
    assert_string_equal(line(f, "STAT"), "-ERR Command not valid in this state.\r\n");
    assert_string_equal(line(f, "CAPA x"), "-ERR Wrong number of arguments.\r\n");
    assert_string_equal(line_more(f, "CA\0PA", 5, false), "-ERR NUL byte in command.\r\n");
    assert_string_equal(line_more(f, "PASS a\0b", 8, false), "-ERR NUL byte in command.\r\n");
    assert_string_equal(line(f, "NOOP"), "-ERR Command not valid in this state.\r\n");
    assert_int_equal(f->closes, 0);
    /* the twelfth closes */
    assert_string_equal(line(f, "FOO"), "-ERR Unknown command; too many bad commands, closing.\r\n");
    assert_int_equal(f->closes, 1);
    assert_string_equal(f->close_reason, "bad_commands");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_CLOSED);
    assert_string_equal(line(f, "CAPA"), "");

    /* good commands do not reset the count */
    pop3_session_free(&f->s);
    x->p.max_bad_commands = 2;
    start(f, &x->p);
    assert_string_equal(line(f, "FOO"), "-ERR Unknown command.\r\n");
    line(f, "CAPA");
    assert_string_equal(line(f, "BAR"), "-ERR Unknown command; too many bad commands, closing.\r\n");
    assert_int_equal(f->closes, 1);
}

/* Logs in to x->dir with f (a fresh session). */
static void login_to(struct fixture *x, struct fake *f, const char *path)
{
    start(f, &x->p);
    line(f, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
    struct pop3_auth_result r = {.status = POP3_AUTH_OK, .user = "bob", .mail_path = path};
    pop3_session_auth_result(f->s, &r);
}

static void test_transaction(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    x->p.max_bad_commands = 100;
    login_to(x, f, x->dir);
    assert_string_equal(take_out(f), "+OK Logged in, 3 messages.\r\n");
    assert_string_equal(line(f, "STAT"), "+OK 3 66\r\n");
    assert_string_equal(line(f, "LIST"), "+OK Scan listing follows\r\n1 26\r\n2 37\r\n3 3\r\n.\r\n");
    assert_string_equal(line(f, "list 2"), "+OK 2 37\r\n");
    assert_string_equal(line(f, "LIST 4"), "-ERR There is no such message.\r\n");
    assert_string_equal(line(f, "UIDL"), "+OK Unique-ID listing follows\r\n1 1.msg\r\n2 2.msg\r\n3 3.msg\r\n.\r\n");
    assert_string_equal(line(f, "UIDL 3"), "+OK 3 3.msg\r\n");
    assert_string_equal(line(f, "NOOP"), "+OK\r\n");

    /* RETR and TOP hand the message's fd to send_message */
    assert_string_equal(line(f, "RETR 1"), "+OK 26 octets\r\n");
    assert_int_equal(f->sends, 1);
    assert_int_equal(f->send_top, -1);
    assert_string_equal(f->sent, MSG1);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_TRANSACTION);
    assert_string_equal(line(f, "TOP 2 1"), "+OK Top of message follows\r\n");
    assert_int_equal(f->sends, 2);
    assert_int_equal(f->send_top, 1);
    assert_string_equal(f->sent, MSG2);
    assert_string_equal(line(f, "TOP 3 0"), "+OK Top of message follows\r\n");
    assert_int_equal(f->send_top, 0);
    assert_string_equal(line(f, "TOP 2 4294967295"), "+OK Top of message follows\r\n");
    assert_int_equal(f->send_top, 4294967295LL);
    assert_string_equal(line(f, "TOP 2 4294967296"), "-ERR Invalid line count.\r\n");
    assert_string_equal(line(f, "TOP 2 x"), "-ERR Invalid line count.\r\n");
    assert_string_equal(line(f, "TOP 2 -1"), "-ERR Invalid line count.\r\n");
    assert_string_equal(line(f, "TOP 9 0"), "-ERR There is no such message.\r\n");
    assert_string_equal(line(f, "TOP 0 0"), "-ERR Invalid message number.\r\n");
    assert_string_equal(line(f, "TOP 2"), "-ERR Wrong number of arguments.\r\n");
    assert_string_equal(line(f, "RETR"), "-ERR Wrong number of arguments.\r\n");
    assert_string_equal(line(f, "STAT 1"), "-ERR Wrong number of arguments.\r\n");
    assert_int_equal(f->sends, 4);

    /* strict message numbers: no wrap-around, no trailing noise, no sign */
    assert_string_equal(line(f, "RETR 4294967297"), "-ERR Invalid message number.\r\n");
    assert_string_equal(line(f, "RETR 0"), "-ERR Invalid message number.\r\n");
    assert_string_equal(line(f, "RETR 1x"), "-ERR Invalid message number.\r\n");
    assert_string_equal(line(f, "RETR -1"), "-ERR Invalid message number.\r\n");
    assert_string_equal(line(f, "RETR 4"), "-ERR There is no such message.\r\n");
    assert_string_equal(line(f, "DELE 4294967297"), "-ERR Invalid message number.\r\n");
    assert_string_equal(line(f, "UIDL 0"), "-ERR Invalid message number.\r\n");
    assert_int_equal(f->sends, 4);

    /* DELE marks; the message is then refused everywhere; RSET undoes */
    assert_string_equal(line(f, "DELE 1"), "+OK Message 1 marked for deletion.\r\n");
    assert_string_equal(line(f, "DELE 1"), "-ERR Message is deleted.\r\n");
    assert_string_equal(line(f, "RETR 1"), "-ERR Message is deleted.\r\n");
    assert_string_equal(line(f, "TOP 1 0"), "-ERR Message is deleted.\r\n");
    assert_string_equal(line(f, "LIST 1"), "-ERR Message is deleted.\r\n");
    assert_string_equal(line(f, "UIDL 1"), "-ERR Message is deleted.\r\n");
    assert_string_equal(line(f, "STAT"), "+OK 2 40\r\n");
    assert_string_equal(line(f, "LIST"), "+OK Scan listing follows\r\n2 37\r\n3 3\r\n.\r\n");
    assert_string_equal(line(f, "UIDL"), "+OK Unique-ID listing follows\r\n2 2.msg\r\n3 3.msg\r\n.\r\n");
    assert_string_equal(line(f, "RSET"), "+OK 3 messages\r\n");
    assert_string_equal(line(f, "STAT"), "+OK 3 66\r\n");
    assert_string_equal(line(f, "RETR 1"), "+OK 26 octets\r\n");
    assert_int_equal(f->sends, 5);
    assert_int_equal(f->closes, 0);

    /* one octet over is too long after login too (the framer's limit there) */
    char big[300];
    memset(big, '1', sizeof(big));
    memcpy(big, "LIST ", 5);
    big[POP3_CMD_TEXT_MAX + 1] = '\0';
    assert_string_equal(line(f, big), "-ERR Line too long.\r\n");
}

static void test_quit_applies_deletions(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    login_to(x, f, x->dir);
    take_out(f);
    assert_string_equal(line(f, "DELE 1"), "+OK Message 1 marked for deletion.\r\n");
    assert_string_equal(line(f, "DELE 2"), "+OK Message 2 marked for deletion.\r\n");
    /* nothing is removed before QUIT */
    assert_true(exists(x->dir, "new/1.msg"));
    assert_true(exists(x->dir, "cur/2.msg:2,S"));
    assert_string_equal(line(f, "QUIT"), "+OK Logging out, 2 messages deleted.\r\n");
    assert_int_equal(f->closes, 1);
    assert_string_equal(f->close_reason, "quit");
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_CLOSED);
    assert_false(exists(x->dir, "new/1.msg"));
    assert_false(exists(x->dir, "cur/2.msg:2,S"));
    assert_true(exists(x->dir, "new/3.msg"));
    pop3_session_free(&f->s);

    /* the lock was released: a new session sees one message */
    login_to(x, f, x->dir);
    assert_string_equal(take_out(f), "+OK Logged in, 1 messages.\r\n");
    assert_string_equal(line(f, "UIDL"), "+OK Unique-ID listing follows\r\n1 3.msg\r\n.\r\n");
    assert_string_equal(line(f, "QUIT"), "+OK Logging out, 0 messages deleted.\r\n");
    assert_true(exists(x->dir, "new/3.msg"));
}

static void test_free_without_quit(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    login_to(x, f, x->dir);
    take_out(f);
    assert_string_equal(line(f, "DELE 1"), "+OK Message 1 marked for deletion.\r\n");
    assert_string_equal(line(f, "DELE 3"), "+OK Message 3 marked for deletion.\r\n");
    pop3_session_free(&f->s); /* connection dropped: no UPDATE state */
    assert_null(f->s);
    assert_int_equal(f->closes, 0);
    assert_true(exists(x->dir, "new/1.msg"));
    assert_true(exists(x->dir, "new/3.msg"));
    login_to(x, f, x->dir);
    assert_string_equal(take_out(f), "+OK Logged in, 3 messages.\r\n");

    /* QUIT before login deletes nothing and says so */
    struct fake g;
    start(&g, &x->p);
    assert_string_equal(line(&g, "QUIT"), "+OK Logging out.\r\n");
    assert_int_equal(g.closes, 1);
    assert_string_equal(g.close_reason, "quit");
    pop3_session_free(&g.s);
    pop3_session_free(&g.s); /* NULL is fine */
}

static void test_in_use(void **state)
{
    struct fixture *x = *state;
    struct fake *a = &x->f, b;
    login_to(x, a, x->dir);
    assert_string_equal(take_out(a), "+OK Logged in, 3 messages.\r\n");
    login_to(x, &b, x->dir);
    assert_string_equal(take_out(&b), "-ERR [IN-USE] The mailbox is in use by another POP3 session.\r\n");
    assert_int_equal(pop3_session_state(b.s), POP3_STATE_AUTHORIZATION);
    assert_int_equal(b.logged_in, 0);
    assert_null(pop3_session_user(b.s));
    /* once the first session is gone, the second may log in */
    pop3_session_free(&a->s);
    line(&b, "AUTH PLAIN AGJvYgBzM2NyZXQ=");
    struct pop3_auth_result r = {.status = POP3_AUTH_OK, .user = "bob", .mail_path = x->dir};
    pop3_session_auth_result(b.s, &r);
    assert_string_equal(take_out(&b), "+OK Logged in, 3 messages.\r\n");
    pop3_session_free(&b.s);
}

static void test_empty_and_vanished(void **state)
{
    struct fixture *x = *state;
    struct fake *f = &x->f;
    login_to(x, f, x->empty);
    assert_string_equal(take_out(f), "+OK Logged in, 0 messages.\r\n");
    assert_string_equal(line(f, "STAT"), "+OK 0 0\r\n");
    assert_string_equal(line(f, "LIST"), "+OK Scan listing follows\r\n.\r\n");
    assert_string_equal(line(f, "UIDL"), "+OK Unique-ID listing follows\r\n.\r\n");
    assert_string_equal(line(f, "RETR 1"), "-ERR There is no such message.\r\n");
    assert_string_equal(line(f, "RSET"), "+OK 0 messages\r\n");
    assert_string_equal(line(f, "QUIT"), "+OK Logging out, 0 messages deleted.\r\n");
    pop3_session_free(&f->s);

    /* a message removed by another program after the snapshot */
    login_to(x, f, x->dir);
    take_out(f);
    char p[256];
    snprintf(p, sizeof(p), "%s/new/3.msg", x->dir);
    assert_int_equal(unlink(p), 0);
    assert_string_equal(line(f, "RETR 3"), "-ERR [SYS/PERM] The message was removed by another program.\r\n");
    assert_int_equal(f->sends, 0);
    assert_int_equal(pop3_session_state(f->s), POP3_STATE_TRANSACTION);
    /* still listed (the snapshot), and deleting it at QUIT is fine */
    assert_string_equal(line(f, "DELE 3"), "+OK Message 3 marked for deletion.\r\n");
    assert_string_equal(line(f, "QUIT"), "+OK Logging out, 1 messages deleted.\r\n");
}

int main(void)
{
    /* Quiet unless asked: the session logs every refusal. */
    log_init("test", false, getenv("TEST_LOG") ? LOG_LVL_DEBUG : (enum log_level)(LOG_LVL_ERR + 1));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_basic),
        cmocka_unit_test(test_frame_limit),
        cmocka_unit_test(test_frame_split),
        cmocka_unit_test(test_cmd_parse),
        cmocka_unit_test(test_cmd_parse_bad),
        cmocka_unit_test(test_msgnum),
        cmocka_unit_test_setup_teardown(test_greeting_and_capa_implicit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stls, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stls_injection, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_pass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_lines_auth, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_auth_results, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disabled_and_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_auth_attempts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_commands, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transaction, setup, teardown),
        cmocka_unit_test_setup_teardown(test_quit_applies_deletions, setup, teardown),
        cmocka_unit_test_setup_teardown(test_free_without_quit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_in_use, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_and_vanished, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
