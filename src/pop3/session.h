/* The POP3 session state machine (RFC 1939, 2449, 2595, 3206, 5034).
 *
 * Pure protocol logic: it consumes complete command lines and answers through
 * struct pop3_ops, which the front process implements over a real socket and
 * the unit tests and fuzzer implement over memory. The driver feeds lines only
 * while pop3_session_wants_input() is true (not while waiting for authd, a
 * failure delay, a TLS handshake or a message being streamed). */
#ifndef POPSD_POP3_SESSION_H
#define POPSD_POP3_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "sasl/sasl.h"
#include "store/mailbox.h"

enum pop3_state {
    POP3_STATE_AUTHORIZATION,
    POP3_STATE_SASL,       /* AUTH exchange waiting for the client's next response */
    POP3_STATE_WAIT_AUTHD, /* credentials sent to authd */
    POP3_STATE_WAIT_DELAY, /* failure delay running before the -ERR */
    POP3_STATE_STLS,       /* "+OK" to STLS sent, handshake pending */
    POP3_STATE_TRANSACTION,
    POP3_STATE_STREAMING, /* RETR/TOP body being sent */
    POP3_STATE_CLOSED,
};

enum pop3_auth_status {
    POP3_AUTH_OK,
    POP3_AUTH_FAIL,        /* wrong credentials (or unknown user: indistinguishable) */
    POP3_AUTH_TEMPFAIL,    /* user database unreachable: [SYS/TEMP] */
    POP3_AUTH_LOGIN_DELAY, /* logged in too recently: [LOGIN-DELAY] */
    POP3_AUTH_DISABLED,    /* POP3 is off for this user: [AUTH] like a failure, logged differently */
    POP3_AUTH_CONTINUE,    /* multi-step mechanism: send data as a challenge, feed the answer back */
    POP3_AUTH_POLICY,      /* right credentials, but this user's policy refuses them: [AUTH] like a failure */
};

struct pop3_auth_result {
    enum pop3_auth_status status;
    uint32_t delay_ms;     /* wait this long before answering a failure */
    const char *user;      /* canonical name (OK) */
    const char *mail_path; /* absolute Maildir path (OK) */
    /* CONTINUE: the challenge. OK: additional data with success (SCRAM's
     * server-final), sent as a challenge that the client answers with an empty
     * line (RFC 5034 4). FAIL: an error status the client acknowledges before the
     * -ERR (RFC 7628 3.2.3). len 0 = none. */
    const unsigned char *data;
    size_t data_len;
};

struct pop3_ops {
    void (*write)(void *io, const char *data, size_t len);
    /* "+OK" to STLS is queued: flush it, then handshake; call pop3_session_tls_ready() after. */
    void (*start_tls)(void *io);
    /* Ask authd; answer later with pop3_session_auth_result(). creds are wiped after the call.
     * step counts the client messages of one exchange (0 = the first); plus_offered
     * says whether SCRAM-SHA-256-PLUS was advertised (for the downgrade check). */
    void (*auth_request)(void *io, const char *mech, const struct sasl_creds *creds, unsigned step,
                         bool plus_offered);
    /* Call pop3_session_timer() after ms milliseconds. */
    void (*start_timer)(void *io, uint64_t ms);
    int (*open_mailbox)(void *io, const char *path, struct store_mailbox **mb, struct error *err);
    /* Stream message fd (ownership passes), TOP lines or -1 for RETR, then the
     * terminator, then call pop3_session_resume(). */
    void (*send_message)(void *io, int fd, long long top_lines);
    /* Authenticated: switch to the post-login idle timeout. */
    void (*logged_in)(void *io);
    /* Close after the queued output is flushed. reason is for the log. */
    void (*close)(void *io, const char *reason);
};

struct pop3_params {
    const char *sid;       /* session id for log lines */
    const char *remote_ip; /* for log lines */
    bool tls_active;       /* implicit TLS listener: TLS is up before the greeting */
    bool stls_allowed;     /* STLS listener */
    const char *implementation; /* CAPA IMPLEMENTATION, NULL or "" = not advertised */
    uint32_t mechs;             /* enum conf_mech bits this listener offers (once TLS is up) */
    uint32_t login_delay_s;
    uint32_t max_bad_commands;
    uint32_t max_auth_attempts;
};

struct pop3_session;

struct pop3_session *pop3_session_new(const struct pop3_params *p, const struct pop3_ops *ops, void *io);
/* Closes the mailbox (without applying deletions) and frees; NULLs *s. */
void pop3_session_free(struct pop3_session **s);

void pop3_session_greet(struct pop3_session *s);
/* One line without its line end (line has len+1 bytes of storage; it is modified).
 * more_pending: further client bytes are already buffered behind this line. */
void pop3_session_line(struct pop3_session *s, char *line, size_t len, bool more_pending);
/* An over-long line ended. */
void pop3_session_line_too_long(struct pop3_session *s);
void pop3_session_auth_result(struct pop3_session *s, const struct pop3_auth_result *r);
void pop3_session_timer(struct pop3_session *s);
void pop3_session_tls_ready(struct pop3_session *s);
void pop3_session_resume(struct pop3_session *s);

bool pop3_session_wants_input(const struct pop3_session *s);
enum pop3_state pop3_session_state(const struct pop3_session *s);
/* Maximum line length acceptable in the current state (AUTH exchanges take longer lines). */
size_t pop3_session_line_max(const struct pop3_session *s);
/* The authenticated user, or NULL. */
const char *pop3_session_user(const struct pop3_session *s);

#endif
