/* The POP3 state machine. The state is data: one command table per state, a
 * guard per command separate from its action, and one enter_state() that logs
 * each transition. Handlers write their replies through reply_ok()/reply_err();
 * CAPA is derived from the session's flags, never hard-coded per state. */
#include "pop3/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/b64.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/strnum.h"
#include "conf/conf.h"
#include "pop3/command.h"
#include "pop3/frame.h"

struct pop3_session {
    struct pop3_params p;
    const struct pop3_ops *ops;
    void *io;
    enum pop3_state state;
    bool tls;
    uint32_t bad_commands;
    uint32_t auth_attempts;
    bool close_after_delay;

    char user_arg[SASL_NAME_MAX + 1]; /* from USER, waiting for PASS */
    bool have_user;
    char attempt_user[SASL_NAME_MAX + 1]; /* the name being verified, for the log */
    const char *attempt_mech;
    const struct sasl_mech *mech;
    struct sasl_exchange *sasl;
    unsigned sasl_step;   /* client messages of the current exchange sent to authd */
    bool final_ok;        /* success data sent; an empty line completes the login */
    bool final_fail;      /* failure status sent; any line gets the -ERR */
    uint32_t final_delay; /* the failure delay to run then */
    char ok_user[SASL_NAME_MAX + 1];
    char ok_mail[1024];
    char pending_reply[128];

    char user[SASL_NAME_MAX + 1]; /* authenticated */
    char user_q[4 * SASL_NAME_MAX + 3]; /* the same, quoted for log lines */
    struct store_mailbox *mb;
    uint32_t nmsgs;
    bool *deleted;
};

static const char *const state_names[] = {
    "authorization", "sasl", "wait_authd", "wait_delay", "stls", "transaction", "streaming", "closed",
};

static void enter_state(struct pop3_session *s, enum pop3_state st)
{
    if (s->state != st)
        log_event(LOG_LVL_DEBUG, "state", "sid=%s from=%s to=%s", s->p.sid, state_names[s->state],
                  state_names[st]);
    s->state = st;
}

static void reply_line(struct pop3_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply_line(struct pop3_session *s, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n > sizeof(buf) - 3)
        n = sizeof(buf) - 3;
    buf[n++] = '\r';
    buf[n++] = '\n';
    s->ops->write(s->io, buf, (size_t)n);
}

#define reply_ok(s, ...) reply_line(s, "+OK " __VA_ARGS__)
#define reply_err(s, ...) reply_line(s, "-ERR " __VA_ARGS__)

static void session_close(struct pop3_session *s, const char *reason)
{
    enter_state(s, POP3_STATE_CLOSED);
    s->ops->close(s->io, reason);
}

/* Counts a protocol error; past the limit the client is cut off. */
static void bad_command(struct pop3_session *s, const char *why)
{
    s->bad_commands++;
    if (s->bad_commands >= s->p.max_bad_commands) {
        reply_err(s, "%s; too many bad commands, closing.", why);
        log_event(LOG_LVL_NOTICE, "bad_commands", "sid=%s remote=%s count=%u", s->p.sid, s->p.remote_ip,
                  s->bad_commands);
        session_close(s, "bad_commands");
        return;
    }
    reply_err(s, "%s.", why);
}

/* ---- CAPA, derived from state ---- */

static bool credentials_allowed(const struct pop3_session *s)
{
    return s->tls; /* RFC 8314: no reusable secret crosses the wire in clear */
}

/* Every mechanism needs TLS (no credential of any kind before it), and the
 * listener's list decides among them. */
static bool mech_offered(const struct pop3_session *s, const struct sasl_mech *m)
{
    return credentials_allowed(s) && (s->p.mechs & m->bit) != 0;
}

static bool plus_offered(const struct pop3_session *s)
{
    return credentials_allowed(s) && (s->p.mechs & CONF_MECH_SCRAM_PLUS) != 0;
}

static void cmd_capa(struct pop3_session *s, struct pop3_cmd *c)
{
    char buf[1024];
    size_t o = 0;
#define CAP(...) o += (size_t)snprintf(buf + o, sizeof(buf) - o, __VA_ARGS__)
    CAP("+OK Capability list follows\r\nCAPA\r\nTOP\r\nUIDL\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\nPIPELINING\r\n");
    CAP("EXPIRE NEVER\r\nLOGIN-DELAY %u\r\n", s->p.login_delay_s);
    if (s->state == POP3_STATE_AUTHORIZATION) {
        if (credentials_allowed(s)) {
            if (s->p.mechs & CONF_MECH_PLAIN)
                CAP("USER\r\n");
            CAP("SASL");
            for (size_t i = 0; sasl_mechs[i] != NULL; i++)
                if (mech_offered(s, sasl_mechs[i]))
                    CAP(" %s", sasl_mechs[i]->name);
            CAP("\r\n");
        }
        if (s->p.stls_allowed && !s->tls)
            CAP("STLS\r\n");
    }
    if (s->p.implementation != NULL && s->p.implementation[0] != '\0')
        CAP("IMPLEMENTATION %s\r\n", s->p.implementation);
    CAP(".\r\n");
#undef CAP
    if (o >= sizeof(buf))
        o = sizeof(buf) - 1;
    s->ops->write(s->io, buf, o);
}

/* ---- AUTHORIZATION ---- */

static void cmd_stls(struct pop3_session *s, struct pop3_cmd *c, bool more_pending)
{
    if (!s->p.stls_allowed || s->tls) {
        bad_command(s, s->tls ? "TLS is already active" : "STLS is not offered on this port");
        return;
    }
    if (more_pending) {
        /* Bytes behind STLS would be read as if they came through TLS: the
         * STARTTLS command-injection attack. Refuse and drop the connection. */
        reply_err(s, "Commands pipelined after STLS; closing.");
        log_event(LOG_LVL_WARN, "stls_injection", "sid=%s remote=%s", s->p.sid, s->p.remote_ip);
        session_close(s, "stls_injection");
        return;
    }
    reply_ok(s, "Begin TLS negotiation now.");
    enter_state(s, POP3_STATE_STLS);
    s->ops->start_tls(s->io);
}

static void refuse_cleartext(struct pop3_session *s)
{
    bad_command(s, "[AUTH] Plaintext authentication disallowed on non-secure connections; use STLS first");
}

static void cmd_user(struct pop3_session *s, struct pop3_cmd *c)
{
    if (!credentials_allowed(s)) {
        refuse_cleartext(s);
        return;
    }
    if (!(s->p.mechs & CONF_MECH_PLAIN)) {
        bad_command(s, "[AUTH] USER/PASS is not offered on this port; use AUTH");
        return;
    }
    if (c->arglen[0] > SASL_NAME_MAX) {
        bad_command(s, "User name too long");
        return;
    }
    memcpy(s->user_arg, c->argv[0], c->arglen[0] + 1);
    s->have_user = true;
    /* The same answer whether or not the user exists. */
    reply_ok(s, "Send your password.");
}

static void begin_verify(struct pop3_session *s, const char *mech, struct sasl_creds *creds)
{
    if (s->sasl_step == 0) {
        /* One attempt per exchange, however many messages it takes. The name
         * comes from the mechanism (for SCRAM only authd parses it). */
        s->auth_attempts++;
        snprintf(s->attempt_user, sizeof(s->attempt_user), "%s", creds->authcid);
    }
    s->attempt_mech = mech;
    enter_state(s, POP3_STATE_WAIT_AUTHD);
    s->ops->auth_request(s->io, mech, creds, s->sasl_step++, plus_offered(s));
    sasl_creds_wipe(creds);
}

static void cmd_pass(struct pop3_session *s, char *pw, size_t pwlen)
{
    if (!credentials_allowed(s)) {
        secret_wipe(pw, pwlen);
        refuse_cleartext(s);
        return;
    }
    if (!s->have_user) {
        secret_wipe(pw, pwlen);
        bad_command(s, "USER first");
        return;
    }
    struct sasl_creds creds;
    memset(&creds, 0, sizeof(creds));
    s->have_user = false;
    if (pwlen == 0 || pwlen > SASL_SECRET_MAX) {
        secret_wipe(pw, pwlen);
        bad_command(s, "Invalid password length");
        return;
    }
    memcpy(creds.authcid, s->user_arg, sizeof(creds.authcid));
    memcpy(creds.secret, pw, pwlen);
    creds.secret_len = pwlen;
    secret_wipe(pw, pwlen);
    s->sasl_step = 0;
    begin_verify(s, "USER", &creds);
}

static void sasl_abort(struct pop3_session *s)
{
    if (s->sasl != NULL)
        s->mech->finish(&s->sasl);
    s->mech = NULL;
    s->final_ok = s->final_fail = false;
    secret_wipe(s->ok_mail, sizeof(s->ok_mail));
    secret_wipe(s->ok_user, sizeof(s->ok_user));
}

/* "+ base64(data)": a challenge, or the data that ends an exchange. */
static bool send_challenge(struct pop3_session *s, const unsigned char *data, size_t len)
{
    char enc[B64_ENCODED_LEN(SASL_MSG_MAX) + 1];
    if (len > SASL_MSG_MAX || b64_encode(data, len, enc, sizeof(enc)) < 0)
        return false;
    reply_line(s, "+ %s", enc);
    return true;
}

/* Runs one SASL step on a base64 client message. */
static void sasl_input(struct pop3_session *s, const char *b64, size_t len)
{
    unsigned char in[SASL_MSG_MAX], out[SASL_MSG_MAX];
    struct sasl_creds creds;
    struct error err = {{0}};
    long n = (len == 1 && b64[0] == '=') ? 0 : b64_decode(b64, len, in, sizeof(in));
    if (n < 0) {
        sasl_abort(s);
        enter_state(s, POP3_STATE_AUTHORIZATION);
        bad_command(s, "[AUTH] Invalid base64 data");
        return;
    }
    size_t outlen = 0;
    memset(&creds, 0, sizeof(creds));
    enum sasl_step_result r = s->mech->step(s->sasl, in, (size_t)n, out, sizeof(out), &outlen, &creds, &err);
    secret_wipe(in, sizeof(in));
    if (r == SASL_STEP_CONTINUE) {
        enter_state(s, POP3_STATE_SASL);
        if (!send_challenge(s, out, outlen)) {
            sasl_abort(s);
            enter_state(s, POP3_STATE_AUTHORIZATION);
            reply_err(s, "[SYS/TEMP] Internal error.");
        }
        return;
    }
    const char *mech = s->mech->name;
    if (r == SASL_STEP_FAIL || !s->mech->relay)
        sasl_abort(s); /* a relayed exchange lives on in authd until it ends */
    if (r == SASL_STEP_FAIL) {
        sasl_creds_wipe(&creds);
        enter_state(s, POP3_STATE_AUTHORIZATION);
        s->auth_attempts++;
        char q[300];
        log_event(LOG_LVL_NOTICE, "auth_failure", "sid=%s remote=%s mech=%s reason=malformed detail=%s", s->p.sid,
                  s->p.remote_ip, mech, log_quote(q, sizeof(q), err.msg, strlen(err.msg)));
        bad_command(s, "[AUTH] Malformed authentication exchange");
        return;
    }
    begin_verify(s, mech, &creds);
}

static void cmd_auth(struct pop3_session *s, struct pop3_cmd *c)
{
    if (c->argc == 0) {
        /* Bare AUTH lists the mechanisms usable now (old Outlook asks this way). */
        char buf[256];
        size_t o = (size_t)snprintf(buf, sizeof(buf), "+OK Mechanisms follow\r\n");
        for (size_t i = 0; sasl_mechs[i] != NULL; i++)
            if (mech_offered(s, sasl_mechs[i]))
                o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%s\r\n", sasl_mechs[i]->name);
        o += (size_t)snprintf(buf + o, sizeof(buf) - o, ".\r\n");
        s->ops->write(s->io, buf, o < sizeof(buf) ? o : sizeof(buf) - 1);
        return;
    }
    char name[SASL_NAME_MAX + 1];
    snprintf(name, sizeof(name), "%.*s", (int)c->arglen[0], c->argv[0]);
    const struct sasl_mech *m = sasl_mech_find(name);
    if (m == NULL) {
        bad_command(s, "Unsupported authentication mechanism");
        return;
    }
    if (!credentials_allowed(s)) {
        refuse_cleartext(s);
        return;
    }
    if (!mech_offered(s, m)) {
        bad_command(s, "Unsupported authentication mechanism");
        return;
    }
    s->mech = m;
    s->sasl_step = 0;
    s->sasl = m->start();
    if (s->sasl == NULL) {
        s->mech = NULL;
        reply_err(s, "[SYS/TEMP] Out of memory.");
        return;
    }
    if (c->argc == 2) {
        sasl_input(s, c->argv[1], c->arglen[1]);
        return;
    }
    enter_state(s, POP3_STATE_SASL);
    reply_line(s, "+ ");
}

static void fail_after_delay(struct pop3_session *s, uint32_t delay_ms)
{
    snprintf(s->pending_reply, sizeof(s->pending_reply), "-ERR [AUTH] Authentication failed.\r\n");
    s->close_after_delay = s->auth_attempts >= s->p.max_auth_attempts;
    enter_state(s, POP3_STATE_WAIT_DELAY);
    s->ops->start_timer(s->io, delay_ms);
}

static void login(struct pop3_session *s, const struct pop3_auth_result *r);

static void sasl_line(struct pop3_session *s, const char *line, size_t len)
{
    if (s->final_fail) {
        /* RFC 7628 3.2.3: the client acknowledged the error status (with 0x01, or anything). */
        uint32_t d = s->final_delay;
        sasl_abort(s);
        fail_after_delay(s, d);
        return;
    }
    if (s->final_ok) {
        if (len == 0) {
            char user[SASL_NAME_MAX + 1], mail[sizeof(s->ok_mail)];
            memcpy(user, s->ok_user, sizeof(user));
            memcpy(mail, s->ok_mail, sizeof(mail));
            struct pop3_auth_result r = {.status = POP3_AUTH_OK, .user = user, .mail_path = mail};
            sasl_abort(s);
            login(s, &r);
            return;
        }
        /* The client refused our server signature (or sent junk): no login. */
        sasl_abort(s);
        enter_state(s, POP3_STATE_AUTHORIZATION);
        reply_err(s, "[AUTH] Authentication cancelled.");
        return;
    }
    if (len == 1 && line[0] == '*') {
        sasl_abort(s);
        enter_state(s, POP3_STATE_AUTHORIZATION);
        s->auth_attempts++;
        reply_err(s, "[AUTH] Authentication cancelled.");
        return;
    }
    sasl_input(s, line, len);
}

/* ---- TRANSACTION ---- */

static bool valid_msg(struct pop3_session *s, struct pop3_cmd *c, unsigned argi, uint32_t *idx)
{
    int r = pop3_msgnum(c->argv[argi], c->arglen[argi], s->nmsgs, idx);
    if (r == -1) {
        bad_command(s, "Invalid message number");
        return false;
    }
    if (r == -2) {
        reply_err(s, "There is no such message.");
        return false;
    }
    if (s->deleted[*idx]) {
        reply_err(s, "Message is deleted.");
        return false;
    }
    return true;
}

static void cmd_stat(struct pop3_session *s, struct pop3_cmd *c)
{
    uint32_t n = 0;
    uint64_t total = 0;
    for (uint32_t i = 0; i < s->nmsgs; i++)
        if (!s->deleted[i]) {
            n++;
            total += store_get(s->mb, i)->size;
        }
    reply_ok(s, "%u %llu", n, (unsigned long long)total);
}

/* Multi-line listings are written in chunks so a huge mailbox needs no huge buffer. */
static void list_all(struct pop3_session *s, bool uidl)
{
    reply_ok(s, "%s", uidl ? "Unique-ID listing follows" : "Scan listing follows");
    char buf[4096];
    size_t o = 0;
    for (uint32_t i = 0; i < s->nmsgs; i++) {
        if (s->deleted[i])
            continue;
        const struct store_msg *m = store_get(s->mb, i);
        if (uidl)
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%u %s\r\n", i + 1, m->uidl);
        else
            o += (size_t)snprintf(buf + o, sizeof(buf) - o, "%u %llu\r\n", i + 1, (unsigned long long)m->size);
        if (o > sizeof(buf) - 128) {
            s->ops->write(s->io, buf, o);
            o = 0;
        }
    }
    memcpy(buf + o, ".\r\n", 3);
    s->ops->write(s->io, buf, o + 3);
}

static void cmd_list(struct pop3_session *s, struct pop3_cmd *c)
{
    uint32_t i;
    if (c->argc == 0)
        list_all(s, false);
    else if (valid_msg(s, c, 0, &i))
        reply_ok(s, "%u %llu", i + 1, (unsigned long long)store_get(s->mb, i)->size);
}

static void cmd_uidl(struct pop3_session *s, struct pop3_cmd *c)
{
    uint32_t i;
    if (c->argc == 0)
        list_all(s, true);
    else if (valid_msg(s, c, 0, &i))
        reply_ok(s, "%u %s", i + 1, store_get(s->mb, i)->uidl);
}

static void send_msg(struct pop3_session *s, uint32_t i, long long top)
{
    struct error err = {{0}};
    int fd = store_msg_open(s->mb, i, &err);
    if (fd < 0) {
        char q[300];
        log_event(LOG_LVL_WARN, "message_unreadable", "sid=%s user=%s msg=%u uidl=%s detail=%s", s->p.sid, s->user_q,
                  i + 1, store_get(s->mb, i)->uidl, log_quote(q, sizeof(q), err.msg, strlen(err.msg)));
        if (fd == STORE_ERR_GONE)
            reply_err(s, "[SYS/PERM] The message was removed by another program.");
        else
            reply_err(s, "[SYS/TEMP] The message cannot be read now.");
        return;
    }
    if (top < 0)
        reply_ok(s, "%llu octets", (unsigned long long)store_get(s->mb, i)->size);
    else
        reply_ok(s, "Top of message follows");
    enter_state(s, POP3_STATE_STREAMING);
    s->ops->send_message(s->io, fd, top);
}

static void cmd_retr(struct pop3_session *s, struct pop3_cmd *c)
{
    uint32_t i;
    if (valid_msg(s, c, 0, &i))
        send_msg(s, i, -1);
}

static void cmd_top(struct pop3_session *s, struct pop3_cmd *c)
{
    uint32_t i, lines;
    if (strnum_u32(c->argv[1], c->arglen[1], &lines) < 0) {
        bad_command(s, "Invalid line count");
        return;
    }
    if (valid_msg(s, c, 0, &i))
        send_msg(s, i, (long long)lines);
}

static void cmd_dele(struct pop3_session *s, struct pop3_cmd *c)
{
    uint32_t i;
    if (valid_msg(s, c, 0, &i)) {
        s->deleted[i] = true;
        reply_ok(s, "Message %u marked for deletion.", i + 1);
    }
}

static void cmd_noop(struct pop3_session *s, struct pop3_cmd *c)
{
    reply_line(s, "+OK");
}

static void cmd_rset(struct pop3_session *s, struct pop3_cmd *c)
{
    memset(s->deleted, 0, s->nmsgs * sizeof(bool));
    reply_ok(s, "%u messages", s->nmsgs);
}

static void cmd_quit(struct pop3_session *s, struct pop3_cmd *c)
{
    if (s->state != POP3_STATE_TRANSACTION) {
        reply_ok(s, "Logging out.");
        session_close(s, "quit");
        return;
    }
    /* UPDATE state (RFC 1939 section 6): only now are deletions applied. */
    uint32_t ndel = 0;
    for (uint32_t i = 0; i < s->nmsgs; i++)
        ndel += s->deleted[i];
    struct error err = {{0}};
    int r = ndel ? store_commit(s->mb, s->deleted, &err) : STORE_OK;
    if (r != STORE_OK) {
        char q[300];
        log_event(LOG_LVL_ERR, "update_failed", "sid=%s user=%s detail=%s", s->p.sid, s->user_q,
                  log_quote(q, sizeof(q), err.msg, strlen(err.msg)));
        reply_err(s, "[SYS/TEMP] Some deleted messages could not be removed.");
    } else {
        log_event(LOG_LVL_INFO, "update", "sid=%s user=%s deleted=%u kept=%u", s->p.sid, s->user_q, ndel,
                  s->nmsgs - ndel);
        reply_ok(s, "Logging out, %u messages deleted.", ndel);
    }
    store_close(&s->mb);
    session_close(s, "quit");
}

/* ---- command tables ---- */

struct cmd_def {
    const char *keyword;
    unsigned min_args, max_args;
    void (*action)(struct pop3_session *s, struct pop3_cmd *c);
};

static const struct cmd_def auth_cmds[] = {
    {"CAPA", 0, 0, cmd_capa},
    {"USER", 1, 1, cmd_user},
    {"AUTH", 0, 2, cmd_auth},
    {"QUIT", 0, 0, cmd_quit},
    {NULL, 0, 0, NULL},
};

static const struct cmd_def trans_cmds[] = {
    {"STAT", 0, 0, cmd_stat}, {"LIST", 0, 1, cmd_list}, {"RETR", 1, 1, cmd_retr}, {"DELE", 1, 1, cmd_dele},
    {"NOOP", 0, 0, cmd_noop}, {"RSET", 0, 0, cmd_rset}, {"QUIT", 0, 0, cmd_quit}, {"TOP", 2, 2, cmd_top},
    {"UIDL", 0, 1, cmd_uidl}, {"CAPA", 0, 0, cmd_capa}, {NULL, 0, 0, NULL},
};

static const struct cmd_def *lookup(const struct cmd_def *table, const char *kw)
{
    for (; table->keyword != NULL; table++)
        if (strcmp(table->keyword, kw) == 0)
            return table;
    return NULL;
}

/* ---- entry points ---- */

struct pop3_session *pop3_session_new(const struct pop3_params *p, const struct pop3_ops *ops, void *io)
{
    struct pop3_session *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->p = *p;
    s->ops = ops;
    s->io = io;
    s->tls = p->tls_active;
    s->state = POP3_STATE_AUTHORIZATION;
    return s;
}

void pop3_session_free(struct pop3_session **sp)
{
    struct pop3_session *s = *sp;
    if (s == NULL)
        return;
    sasl_abort(s);
    store_close(&s->mb); /* no UPDATE: a dropped connection deletes nothing */
    free(s->deleted);
    secret_wipe(s, sizeof(*s));
    free(s);
    *sp = NULL;
}

void pop3_session_greet(struct pop3_session *s)
{
    reply_ok(s, "POP3 server ready.");
}

static bool is_pass(const char *line, size_t len)
{
    return len >= 4 && strncasecmp(line, "PASS", 4) == 0 && (len == 4 || line[4] == ' ');
}

void pop3_session_line(struct pop3_session *s, char *line, size_t len, bool more_pending)
{
    if (s->state == POP3_STATE_SASL) {
        sasl_line(s, line, len);
        secret_wipe(line, len);
        return;
    }
    if (s->state != POP3_STATE_AUTHORIZATION && s->state != POP3_STATE_TRANSACTION)
        return; /* the driver must not feed us now; ignore rather than misbehave */
    if (memchr(line, '\0', len) != NULL) {
        secret_wipe(line, len);
        bad_command(s, "NUL byte in command");
        return;
    }
    /* PASS takes the rest of the line: passwords may contain spaces (RFC 1939 7). */
    if (s->state == POP3_STATE_AUTHORIZATION && is_pass(line, len)) {
        if (len > POP3_CMD_TEXT_MAX) {
            secret_wipe(line, len);
            bad_command(s, "Line too long");
            return;
        }
        cmd_pass(s, line + (len > 5 ? 5 : len), len > 5 ? len - 5 : 0);
        secret_wipe(line, len);
        return;
    }
    struct pop3_cmd c;
    int r = pop3_cmd_parse(line, len, &c);
    bool is_auth = r == POP3_PARSE_OK && strcmp(c.keyword, "AUTH") == 0;
    if (len > POP3_CMD_TEXT_MAX && !(is_auth && s->state == POP3_STATE_AUTHORIZATION)) {
        bad_command(s, "Line too long");
        return;
    }
    if (r != POP3_PARSE_OK) {
        static const char *why[] = {"", "Empty command", "Invalid character in command", "Unknown command",
                                    "Too many arguments", "Invalid spacing in command"};
        bad_command(s, why[-r]);
        return;
    }
    if (strcmp(c.keyword, "STLS") == 0 && s->state == POP3_STATE_AUTHORIZATION) {
        if (c.argc != 0)
            bad_command(s, "STLS takes no arguments");
        else
            cmd_stls(s, &c, more_pending);
        return;
    }
    const struct cmd_def *d = lookup(s->state == POP3_STATE_TRANSACTION ? trans_cmds : auth_cmds, c.keyword);
    if (d == NULL) {
        bool other = lookup(s->state == POP3_STATE_TRANSACTION ? auth_cmds : trans_cmds, c.keyword) != NULL ||
                     strcmp(c.keyword, "PASS") == 0 || strcmp(c.keyword, "STLS") == 0;
        bad_command(s, other ? "Command not valid in this state" : "Unknown command");
        return;
    }
    if (c.argc < d->min_args || c.argc > d->max_args) {
        bad_command(s, "Wrong number of arguments");
        return;
    }
    d->action(s, &c);
    if (is_auth)
        secret_wipe(line, len);
}

void pop3_session_line_too_long(struct pop3_session *s)
{
    if (s->state == POP3_STATE_SASL) {
        sasl_abort(s);
        enter_state(s, POP3_STATE_AUTHORIZATION);
    }
    bad_command(s, "Line too long");
}

static void login(struct pop3_session *s, const struct pop3_auth_result *r)
{
    struct error err = {{0}};
    int rc = s->ops->open_mailbox(s->io, r->mail_path, &s->mb, &err);
    char q[300];
    if (rc != STORE_OK) {
        log_event(rc == STORE_ERR_INUSE ? LOG_LVL_NOTICE : LOG_LVL_ERR, "mailbox_open_failed",
                  "sid=%s user=%s remote=%s status=%d detail=%s", s->p.sid, r->user, s->p.remote_ip, rc,
                  log_quote(q, sizeof(q), err.msg, strlen(err.msg)));
        enter_state(s, POP3_STATE_AUTHORIZATION);
        if (rc == STORE_ERR_INUSE)
            reply_err(s, "[IN-USE] The mailbox is in use by another POP3 session.");
        else if (rc == STORE_ERR_PERM)
            reply_err(s, "[SYS/PERM] The mailbox is not available.");
        else
            reply_err(s, "[SYS/TEMP] The mailbox cannot be opened now; try again later.");
        return;
    }
    s->nmsgs = store_count(s->mb);
    s->deleted = calloc(s->nmsgs ? s->nmsgs : 1, sizeof(bool));
    if (s->deleted == NULL) {
        store_close(&s->mb);
        enter_state(s, POP3_STATE_AUTHORIZATION);
        reply_err(s, "[SYS/TEMP] Out of memory.");
        return;
    }
    snprintf(s->user, sizeof(s->user), "%s", r->user);
    log_quote(s->user_q, sizeof(s->user_q), s->user, strlen(s->user));
    log_event(LOG_LVL_INFO, "login", "sid=%s user=%s mech=%s remote=%s messages=%u", s->p.sid, s->user_q,
              s->attempt_mech, s->p.remote_ip, s->nmsgs);
    enter_state(s, POP3_STATE_TRANSACTION);
    s->ops->logged_in(s->io);
    reply_ok(s, "Logged in, %u messages.", s->nmsgs);
}

void pop3_session_auth_result(struct pop3_session *s, const struct pop3_auth_result *r)
{
    if (s->state != POP3_STATE_WAIT_AUTHD)
        return;
    char q[300];
    log_quote(q, sizeof(q), s->attempt_user, strlen(s->attempt_user));
    if (r->status == POP3_AUTH_CONTINUE) {
        if (s->mech == NULL || !s->mech->relay || r->data_len == 0) {
            /* authd asked to continue an exchange we do not have: treat as an internal error. */
            sasl_abort(s);
            enter_state(s, POP3_STATE_AUTHORIZATION);
            reply_err(s, "[SYS/TEMP] Authentication is temporarily unavailable; try again later.");
            return;
        }
        if (r->user != NULL && r->user[0] != '\0')
            snprintf(s->attempt_user, sizeof(s->attempt_user), "%s", r->user); /* as authd parsed it */
        enter_state(s, POP3_STATE_SASL);
        if (!send_challenge(s, r->data, r->data_len)) {
            sasl_abort(s);
            enter_state(s, POP3_STATE_AUTHORIZATION);
            reply_err(s, "[SYS/TEMP] Internal error.");
        }
        return;
    }
    sasl_abort(s); /* whatever follows, the exchange is over in authd */
    switch (r->status) {
    case POP3_AUTH_CONTINUE:
        return; /* handled above */
    case POP3_AUTH_OK:
        if (r->data_len > 0) {
            snprintf(s->ok_user, sizeof(s->ok_user), "%s", r->user);
            snprintf(s->ok_mail, sizeof(s->ok_mail), "%s", r->mail_path);
            enter_state(s, POP3_STATE_SASL);
            if (send_challenge(s, r->data, r->data_len)) {
                s->final_ok = true;
                return;
            }
            sasl_abort(s);
            enter_state(s, POP3_STATE_AUTHORIZATION);
            reply_err(s, "[SYS/TEMP] Internal error.");
            return;
        }
        login(s, r);
        return;
    case POP3_AUTH_TEMPFAIL:
        log_event(LOG_LVL_ERR, "auth_tempfail", "sid=%s user=%s mech=%s remote=%s", s->p.sid, q, s->attempt_mech,
                  s->p.remote_ip);
        enter_state(s, POP3_STATE_AUTHORIZATION);
        reply_err(s, "[SYS/TEMP] Authentication is temporarily unavailable; try again later.");
        return;
    case POP3_AUTH_LOGIN_DELAY:
        log_event(LOG_LVL_NOTICE, "auth_login_delay", "sid=%s user=%s mech=%s remote=%s", s->p.sid, q,
                  s->attempt_mech, s->p.remote_ip);
        enter_state(s, POP3_STATE_AUTHORIZATION);
        reply_err(s, "[LOGIN-DELAY] Logged in too recently; wait %u seconds between logins.", s->p.login_delay_s);
        return;
    case POP3_AUTH_FAIL:
    case POP3_AUTH_DISABLED:
    case POP3_AUTH_POLICY:
        /* Logged now, when it happens, so fail2ban can react at once. */
        log_event(LOG_LVL_NOTICE, "auth_failure", "sid=%s user=%s mech=%s remote=%s reason=%s attempt=%u delay_ms=%u",
                  s->p.sid, q, s->attempt_mech, s->p.remote_ip,
                  r->status == POP3_AUTH_DISABLED ? "pop3_disabled"
                  : r->status == POP3_AUTH_POLICY ? "policy"
                                                  : "bad_credentials",
                  s->auth_attempts, r->delay_ms);
        if (r->data_len > 0) {
            enter_state(s, POP3_STATE_SASL);
            if (send_challenge(s, r->data, r->data_len)) {
                s->final_fail = true;
                s->final_delay = r->delay_ms;
                return;
            }
        }
        fail_after_delay(s, r->delay_ms);
        return;
    }
}

void pop3_session_timer(struct pop3_session *s)
{
    if (s->state != POP3_STATE_WAIT_DELAY)
        return;
    s->ops->write(s->io, s->pending_reply, strlen(s->pending_reply));
    enter_state(s, POP3_STATE_AUTHORIZATION);
    if (s->close_after_delay) {
        log_event(LOG_LVL_NOTICE, "auth_attempts_exceeded", "sid=%s remote=%s attempts=%u", s->p.sid,
                  s->p.remote_ip, s->auth_attempts);
        session_close(s, "auth_attempts");
    }
}

void pop3_session_tls_ready(struct pop3_session *s)
{
    if (s->state != POP3_STATE_STLS)
        return;
    /* Forget everything said in clear (RFC 2595 4): it may have been forged. */
    s->tls = true;
    s->have_user = false;
    secret_wipe(s->user_arg, sizeof(s->user_arg));
    sasl_abort(s);
    enter_state(s, POP3_STATE_AUTHORIZATION);
}

void pop3_session_resume(struct pop3_session *s)
{
    if (s->state == POP3_STATE_STREAMING)
        enter_state(s, POP3_STATE_TRANSACTION);
}

bool pop3_session_wants_input(const struct pop3_session *s)
{
    return s->state == POP3_STATE_AUTHORIZATION || s->state == POP3_STATE_TRANSACTION ||
           s->state == POP3_STATE_SASL;
}

enum pop3_state pop3_session_state(const struct pop3_session *s)
{
    return s->state;
}

size_t pop3_session_line_max(const struct pop3_session *s)
{
    return s->state == POP3_STATE_TRANSACTION ? POP3_CMD_TEXT_MAX : POP3_FRAME_MAX;
}

const char *pop3_session_user(const struct pop3_session *s)
{
    return s->user[0] ? s->user : NULL;
}
