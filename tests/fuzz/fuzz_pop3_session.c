/* libFuzzer target for the POP3 session state machine, driven as the front
 * drives it: the input is a client byte stream split into lines by
 * pop3_frame_next() with the session's own line limit, and every callback the
 * session asks for (authd's answer, the failure delay, the TLS handshake, the
 * end of a RETR/TOP) is answered before the next line is fed.
 *
 * Input: byte 0 sets up the listener and limits
 *   bit 0: implicit TLS, bit 1: STLS offered, bits 2-4: max bad commands - 1,
 *   bits 5-6: max auth attempts - 1, bit 7: open_mailbox fails with IN-USE;
 * the rest is what the client sends. A NUL byte right after a line end marks
 * the end of a packet: the line before it is fed with more_pending false (the
 * only way STLS is accepted); otherwise more_pending says whether any input
 * follows.
 * authd's rule: user "u" with password "p" logs in to a small Maildir created
 * once under /tmp (restored after every run, since QUIT may delete from it);
 * user "t" gets TEMPFAIL, "d" LOGIN-DELAY, "x" DISABLED, anyone else FAIL.
 *
 * Aborts on: a reply that is not CRLF-terminated lines of printable text,
 * output after close(), credentials requested before TLS, a callback out of
 * its state, or a leaked message fd; ASan/LSan catch the rest (the session is
 * freed every run). */
#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "conf/conf.h"
#include "fuzz_check.h"
#include "pop3/frame.h"
#include "pop3/session.h"
#include "store/mailbox.h"

static const struct {
    const char *rel, *data;
} msgs[] = {
    {"new/1.fz", "Subject: one\n\nbody one\n"},
    {"cur/2.fz:2,S", "Subject: two\n\n.line1\nline2\n"},
    {"new/3.fz,W=3", "x\n"},
};

static char maildir[64];

static void put(const char *rel, const char *text)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", maildir, rel);
    if (access(p, F_OK) == 0)
        return;
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK(fd >= 0);
    CHECK(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void remove_maildir(void)
{
    nftw(maildir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

static void init_once(void)
{
    if (maildir[0] != '\0')
        return;
    /* Refusals are logged at NOTICE; millions of runs need none of it. */
    log_init("fuzz", false, (enum log_level)(LOG_LVL_ERR + 1));
    strcpy(maildir, "/tmp/popsd-fuzz-session-XXXXXX");
    CHECK(mkdtemp(maildir) != NULL);
    atexit(remove_maildir);
    static const char *const subs[] = {"new", "cur", "tmp"};
    for (int i = 0; i < 3; i++) {
        char p[96];
        snprintf(p, sizeof(p), "%s/%s", maildir, subs[i]);
        CHECK(mkdir(p, 0700) == 0);
    }
}

enum pending { P_NONE, P_AUTH, P_TIMER, P_TLS, P_SEND };

struct fake {
    struct pop3_session *s;
    bool tls;    /* what the session may rely on */
    bool closed; /* close() was called */
    bool inuse;  /* open_mailbox answers IN-USE */
    enum pending pending;
    enum pop3_auth_status answer;
    const char *data; /* challenge / additional data with the answer */
    int fd;           /* message being "sent" */
    size_t written;
};

static void f_write(void *io, const char *d, size_t len)
{
    struct fake *f = io;
    CHECK(!f->closed);
    CHECK(len >= 2 && d[len - 2] == '\r' && d[len - 1] == '\n');
    /* Replies never echo raw client bytes: printable text, CR only before LF. */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '\r')
            CHECK(i + 1 < len && d[i + 1] == '\n');
        else if (c == '\n')
            CHECK(i > 0 && d[i - 1] == '\r');
        else
            CHECK(c >= 0x20 && c < 0x7f);
    }
    f->written += len;
}

static void f_start_tls(void *io)
{
    struct fake *f = io;
    CHECK(f->pending == P_NONE && !f->tls);
    f->pending = P_TLS;
}

static void f_auth_request(void *io, const char *mech, const struct sasl_creds *creds, unsigned step,
                           bool plus_offered)
{
    struct fake *f = io;
    CHECK(f->pending == P_NONE);
    CHECK(f->tls); /* no credential of any kind before TLS */
    CHECK(creds->secret_len <= SASL_SECRET_MAX && creds->secret[creds->secret_len] == '\0');
    CHECK(plus_offered);
    f->pending = P_AUTH;
    f->data = NULL;
    if (strncmp(mech, "SCRAM-", 6) == 0) {
        /* authd's part in miniature: a challenge, then success with data or a failure. */
        CHECK(step <= 1);
        if (step == 0) {
            f->answer = POP3_AUTH_CONTINUE;
            f->data = "r=abc,s=c2FsdA==,i=4096";
        } else {
            f->answer = creds->secret_len > 0 && creds->secret[0] == 'c' ? POP3_AUTH_OK : POP3_AUTH_FAIL;
            f->data = f->answer == POP3_AUTH_OK ? "v=c2lnbmF0dXJl" : NULL;
        }
        return;
    }
    CHECK(step == 0);
    if (strcmp(mech, "OAUTHBEARER") == 0 || strcmp(mech, "XOAUTH2") == 0) {
        CHECK(creds->secret_len > 0);
        f->answer = creds->secret[0] == 'g' ? POP3_AUTH_OK : POP3_AUTH_FAIL;
        f->data = f->answer == POP3_AUTH_OK ? NULL : "{\"status\":\"invalid_token\"}";
        return;
    }
    CHECK(strcmp(mech, "USER") == 0 || strcmp(mech, "PLAIN") == 0);
    CHECK(creds->authcid[0] != '\0' && creds->secret_len > 0);
    const char *u = creds->authcid;
    if (strcmp(u, "u") == 0 && creds->secret_len == 1 && creds->secret[0] == 'p')
        f->answer = POP3_AUTH_OK;
    else if (strcmp(u, "t") == 0)
        f->answer = POP3_AUTH_TEMPFAIL;
    else if (strcmp(u, "d") == 0)
        f->answer = POP3_AUTH_LOGIN_DELAY;
    else if (strcmp(u, "x") == 0)
        f->answer = POP3_AUTH_DISABLED;
    else if (strcmp(u, "y") == 0)
        f->answer = POP3_AUTH_POLICY;
    else
        f->answer = POP3_AUTH_FAIL;
}

static void f_start_timer(void *io, uint64_t ms)
{
    struct fake *f = io;
    CHECK(f->pending == P_NONE);
    f->pending = P_TIMER;
}

static int f_open_mailbox(void *io, const char *path, struct store_mailbox **mb, struct error *err)
{
    struct fake *f = io;
    CHECK(strcmp(path, maildir) == 0);
    if (f->inuse) {
        *mb = NULL;
        error_set(err, "in use");
        return STORE_ERR_INUSE;
    }
    return store_open(path, false, mb, err);
}

static void f_send_message(void *io, int fd, long long top_lines)
{
    struct fake *f = io;
    CHECK(f->pending == P_NONE && fd >= 0 && top_lines >= -1);
    f->fd = fd;
    f->pending = P_SEND;
}

static void f_logged_in(void *io)
{
    struct fake *f = io;
    CHECK(f->tls);
    const char *u = pop3_session_user(f->s);
    CHECK(u != NULL && strcmp(u, "u") == 0);
}

static void f_close(void *io, const char *reason)
{
    struct fake *f = io;
    CHECK(!f->closed);
    f->closed = true;
}

static const struct pop3_ops ops = {
    .write = f_write,
    .start_tls = f_start_tls,
    .auth_request = f_auth_request,
    .start_timer = f_start_timer,
    .open_mailbox = f_open_mailbox,
    .send_message = f_send_message,
    .logged_in = f_logged_in,
    .close = f_close,
};

/* Answers whatever the session is waiting for, as the event loop would. */
static void settle(struct fake *f)
{
    while (f->pending != P_NONE && !f->closed) {
        enum pending p = f->pending;
        f->pending = P_NONE;
        switch (p) {
        case P_AUTH: {
            CHECK(pop3_session_state(f->s) == POP3_STATE_WAIT_AUTHD);
            struct pop3_auth_result r = {.status = f->answer, .delay_ms = 10};
            if (f->data != NULL) {
                r.data = (const unsigned char *)f->data;
                r.data_len = strlen(f->data);
            }
            if (f->answer == POP3_AUTH_OK) {
                r.user = "u";
                r.mail_path = maildir;
            }
            pop3_session_auth_result(f->s, &r);
            break;
        }
        case P_TIMER:
            CHECK(pop3_session_state(f->s) == POP3_STATE_WAIT_DELAY);
            pop3_session_timer(f->s);
            break;
        case P_TLS:
            CHECK(pop3_session_state(f->s) == POP3_STATE_STLS);
            f->tls = true;
            pop3_session_tls_ready(f->s);
            break;
        case P_SEND: {
            CHECK(pop3_session_state(f->s) == POP3_STATE_STREAMING);
            char buf[64];
            CHECK(read(f->fd, buf, sizeof(buf)) >= 0);
            CHECK(close(f->fd) == 0);
            f->fd = -1;
            pop3_session_resume(f->s);
            break;
        }
        case P_NONE: break;
        }
    }
    CHECK(f->closed || pop3_session_wants_input(f->s) || f->pending != P_NONE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    init_once();
    if (size < 1)
        return 0;
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++)
        put(msgs[i].rel, msgs[i].data);

    uint8_t cfg = data[0];
    struct pop3_params p = {
        .sid = "fz",
        .remote_ip = "192.0.2.7",
        .tls_active = cfg & 1,
        .stls_allowed = (cfg & 2) != 0,
        .implementation = "popsd",
        .login_delay_s = 60,
        .max_bad_commands = 1u + ((cfg >> 2) & 7),
        .max_auth_attempts = 1u + ((cfg >> 5) & 3),
        .mechs = CONF_MECH_ALL,
    };
    struct fake f = {.tls = p.tls_active, .inuse = (cfg & 0x80) != 0, .fd = -1};
    f.s = pop3_session_new(&p, &ops, &f);
    CHECK(f.s != NULL);
    pop3_session_greet(f.s);

    const char *in = (const char *)data + 1;
    size_t left = size - 1;
    struct pop3_framer fr = {0};
    char *line = malloc(POP3_FRAME_MAX + 1);
    CHECK(line != NULL);
    while (left > 0 && !f.closed) {
        CHECK(pop3_session_wants_input(f.s));
        size_t max = pop3_session_line_max(f.s), linelen, consumed;
        enum pop3_frame_status st = pop3_frame_next(&fr, in, left, max, &linelen, &consumed);
        CHECK(consumed <= left && linelen <= max);
        const char *l = in;
        in += consumed;
        left -= consumed;
        if (st == POP3_FRAME_NEED_MORE) {
            if (consumed == 0)
                break; /* an unterminated last line: the client went away */
            continue;
        }
        bool boundary = left > 0 && in[0] == '\0';
        if (boundary) {
            in++;
            left--;
        }
        if (st == POP3_FRAME_TOO_LONG) {
            pop3_session_line_too_long(f.s);
        } else {
            memcpy(line, l, linelen);
            line[linelen] = '\0';
            pop3_session_line(f.s, line, linelen, left > 0 && !boundary);
        }
        settle(&f);
    }
    free(line);
    if (f.fd >= 0)
        close(f.fd);
    pop3_session_free(&f.s);
    CHECK(f.s == NULL);
    return 0;
}
