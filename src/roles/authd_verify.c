/* authd's decisions, on a worker thread: which credential the client offered,
 * whether it is right, and whether this user's policy lets it open POP3.
 * The credential is always checked first and the policy after, so a refusal
 * by policy costs what a wrong password costs and says nothing more to the
 * client (the log says why). */
#include <stdio.h>
#include <string.h>

#include "auth/apppw.h"
#include "auth/netlist.h"
#include "auth/oauth.h"
#include "common/log.h"
#include "common/secret.h"
#include "pop3/session.h"
#include "roles/authd_defence.h"
#include "roles/authd_int.h"

static uint32_t methods_of(const struct authd_ctx *x, const struct userdb_entry *e)
{
    return e->methods != 0 ? e->methods : x->conf->default_methods;
}

/* NULL if this user may open POP3 with method from remote, else why not. */
static const char *policy_refusal(const struct authd_ctx *x, const struct userdb_entry *e, uint32_t method,
                                  const char *remote)
{
    if (!(methods_of(x, e) & method))
        return "method_not_allowed";
    if (method == CONF_METHOD_PASSWORD && e->require_mfa)
        return "require_mfa";
    int n = netlist_allow(e->networks, remote);
    if (n < 0)
        return "bad_networks_policy";
    if (n == 0)
        return "network";
    return NULL;
}

static bool beneath_root(const struct authd_ctx *x, const char *path)
{
    const char *root = x->conf->mail_root;
    size_t n = strlen(root);
    while (n > 1 && root[n - 1] == '/')
        n--;
    return strncmp(path, root, n) == 0 && path[n] == '/' && strstr(path, "/../") == NULL;
}

uint32_t authd_jitter(uint64_t base)
{
    uint32_t r = 0;
    secret_random(&r, sizeof(r));
    return (uint32_t)(base * 3 / 4 + (base ? r % (base / 2 + 1) : 0));
}

void authd_fold_name(bool fold, char *name)
{
    /* ASCII only, as Dovecot's %Lu does in practice for mail addresses; bytes
     * beyond ASCII (UTF-8 local parts) are left as they are. */
    for (; fold && *name != '\0'; name++)
        if (*name >= 'A' && *name <= 'Z')
            *name = (char)(*name - 'A' + 'a');
}

void authd_fail(const struct authd_ctx *x, struct ipc_auth_res *a, enum pop3_auth_status st)
{
    a->status = (uint8_t)st;
    a->delay_ms = authd_jitter(x->conf->auth_fail_delay_ms);
    a->user[0] = a->mail[0] = '\0';
}

/* The proven user e may log in with method: the policy, POP3 on/off, the mail path. */
void authd_admit(const struct authd_ctx *x, struct job *j, const struct userdb_entry *e, uint32_t method)
{
    struct ipc_auth_res *a = &j->res;
    char qn[300];
    log_quote(qn, sizeof(qn), e->name, strlen(e->name));
    const char *why = policy_refusal(x, e, method, j->req.remote);
    if (why != NULL) {
        log_event(LOG_LVL_NOTICE, "auth_policy_refused", "sid=%s user=%s remote=%s mech=%s method=%s reason=%s",
                  j->req.sid, qn, j->req.remote, j->req.mech, j->method, why);
        authd_fail(x, a, POP3_AUTH_POLICY);
        return;
    }
    if (!e->pop3_enabled) {
        authd_fail(x, a, POP3_AUTH_DISABLED);
        return;
    }
    struct error err = {{0}};
    snprintf(a->user, sizeof(a->user), "%s", e->name);
    if (e->mail[0] != '\0')
        snprintf(a->mail, sizeof(a->mail), "%s", e->mail);
    else if (conf_mail_path(x->conf, e->name, a->mail, sizeof(a->mail), &err) < 0)
        a->mail[0] = '\0';
    if (a->mail[0] == '\0' || !beneath_root(x, a->mail)) {
        log_event(LOG_LVL_ERR, "bad_mail_path", "user=%s detail=%s", qn,
                  a->mail[0] ? "outside the mail root" : err.msg);
        a->status = POP3_AUTH_TEMPFAIL;
        a->user[0] = a->mail[0] = '\0';
        return;
    }
    a->status = POP3_AUTH_OK;
}

static void db_error(struct job *j, const struct error *err)
{
    char q[300];
    log_event(LOG_LVL_ERR, "userdb_error", "sid=%s detail=%s", j->req.sid, log_quote(q, sizeof(q), err->msg, strlen(err->msg)));
    j->res.status = POP3_AUTH_TEMPFAIL;
}

/* An app password: found by its hash, so it costs one index probe, not Argon2.
 * Returns 1 if it decided the job, 0 if the secret is no app password of this user. */
static int try_app_password(struct userdb *db, const struct authd_ctx *x, struct job *j,
                            const struct userdb_entry *e)
{
    char canon[APPPW_LEN + 1], hash[APPPW_HASH_MAX];
    if (!apppw_normalise(j->req.secret, j->req.secret_len, canon))
        return 0;
    apppw_hash(canon, hash);
    secret_wipe(canon, sizeof(canon));
    struct userdb_app_password ap;
    struct error err = {{0}};
    int r = userdb_app_password_find(db, e->name, hash, &ap, &err);
    if (r < 0) {
        db_error(j, &err);
        return 1;
    }
    if (r == 0)
        return 0;
    j->method = "app";
    char qn[300], ql[200];
    log_quote(qn, sizeof(qn), e->name, strlen(e->name));
    log_quote(ql, sizeof(ql), ap.label, strlen(ap.label));
    int64_t now = authd_now();
    const char *why = NULL;
    if (ap.expires != 0 && ap.expires <= now)
        why = "app_password_expired";
    else if (netlist_allow(ap.networks, j->req.remote) != 1)
        why = "app_password_network";
    if (why != NULL) {
        log_event(LOG_LVL_NOTICE, "auth_policy_refused", "sid=%s user=%s remote=%s mech=%s method=app label=%s reason=%s",
                  j->req.sid, qn, j->req.remote, j->req.mech, ql, why);
        authd_fail(x, &j->res, POP3_AUTH_POLICY);
        return 1;
    }
    authd_admit(x, j, e, CONF_METHOD_APP);
    if (j->res.status == POP3_AUTH_OK) {
        log_event(LOG_LVL_INFO, "app_password_used", "sid=%s user=%s label=%s remote=%s", j->req.sid, qn, ql,
                  j->req.remote);
        /* -1 is an error; 0 with a reason is a busy or read-only database. Never fails the login. */
        if (userdb_writable(db) && userdb_app_password_used(db, ap.id, now, j->req.remote, &err) <= 0 &&
            err.msg[0] != '\0')
            log_event(LOG_LVL_WARN, "app_password_record_failed", "user=%s detail=\"%s\"", qn, err.msg);
    }
    return 1;
}

/* A legacy hash that just verified is replaced by Argon2id, while we hold the password. */
static void upgrade_hash(struct userdb *db, const struct authd_ctx *x, const struct job *j,
                         const struct userdb_entry *e)
{
    if (!pwscheme_needs_upgrade(e->pwhash))
        return;
    if (!userdb_writable(db)) {
        log_event(LOG_LVL_DEBUG, "hash_upgrade_unavailable", "reason=read_only_database");
        return;
    }
    char fresh[PWSCHEME_HASH_MAX], qn[300];
    struct error err = {{0}};
    log_quote(qn, sizeof(qn), e->name, strlen(e->name));
    char scheme[40] = "crypt";
    if (e->pwhash[0] == '{')
        snprintf(scheme, sizeof(scheme), "%.*s", (int)strcspn(e->pwhash + 1, "}"), e->pwhash + 1);
    int r = pwscheme_hash(j->req.secret, j->req.secret_len, &x->argon2, fresh, sizeof(fresh), &err);
    if (r == 0)
        r = userdb_upgrade_hash(db, e->name, e->pwhash, fresh, &err);
    if (r < 0 || (r == 0 && err.msg[0] != '\0'))
        log_event(LOG_LVL_WARN, "hash_upgrade_failed", "user=%s from=%s detail=\"%s\"", qn, scheme, err.msg);
    else if (r == 1)
        log_event(LOG_LVL_NOTICE, "hash_upgraded", "user=%s from=%s to=ARGON2ID", qn, scheme);
    secret_wipe(fresh, sizeof(fresh));
}

/* PLAIN and USER/PASS: an app password, else the account password. */
static void verify_password(struct userdb *db, const struct authd_ctx *x, struct job *j)
{
    struct ipc_auth_req *q = &j->req;
    struct userdb_entry e;
    struct error err = {{0}};
    char qn[300];
    j->method = "password";
    int found = userdb_lookup(db, q->authcid, &e, &err);
    if (found < 0) {
        db_error(j, &err);
        return;
    }
    bool authz_ok = q->authzid[0] == '\0' || strcmp(q->authzid, q->authcid) == 0;
    if (found && authz_ok && try_app_password(db, x, j, &e)) {
        userdb_entry_wipe(&e);
        return;
    }
    const char *hash = found ? e.pwhash : x->dummy;
    /* A polling client's right password, verified minutes ago against this very
     * stored hash, skips the hash; a wrong one can never be in the cache. */
    bool cached = found && credcache_hit(x->cache, authd_now(), e.name, q->secret, q->secret_len, e.pwhash);
    if (!cached && !j->on_hash_thread) {
        j->needs_hash = true; /* nothing has been decided or written yet */
        userdb_entry_wipe(&e);
        return;
    }
    int ok = cached ? 1 : pwscheme_verify(hash, q->secret, q->secret_len, x->conf->allow_weak_schemes, &err);
    if (found && ok == 1 && !cached)
        credcache_put(x->cache, authd_now(), e.name, q->secret, q->secret_len, e.pwhash);
    if (found && ok < 0)
        log_event(LOG_LVL_ERR, "bad_password_hash", "user=%s detail=%s",
                  log_quote(qn, sizeof(qn), e.name, strlen(e.name)), err.msg);
    if (!found || ok != 1 || !authz_ok) {
        authd_fail(x, &j->res, POP3_AUTH_FAIL);
    } else {
        authd_admit(x, j, &e, CONF_METHOD_PASSWORD);
        if (j->res.status == POP3_AUTH_OK && !cached)
            upgrade_hash(db, x, j, &e);
    }
    userdb_entry_wipe(&e);
}

/* OAUTHBEARER and XOAUTH2: the token names the user; a name the client gave must agree. */
static void verify_token(struct userdb *db, const struct authd_ctx *x, struct job *j)
{
    struct ipc_auth_req *q = &j->req;
    struct ipc_auth_res *a = &j->res;
    j->method = "oauth";
    if (x->oauth == NULL) {
        authd_fail(x, a, POP3_AUTH_FAIL);
        return;
    }
    struct oauth_result r;
    memset(&r, 0, sizeof(r));
    enum oauth_verdict v = oauth_validate(x->oauth, q->secret, q->secret_len, authd_now(), &r);
    char qn[300];
    if (v == OAUTH_TEMPFAIL) {
        log_event(LOG_LVL_ERR, "oauth_unavailable", "sid=%s detail=%s", q->sid, r.why);
        a->status = POP3_AUTH_TEMPFAIL;
        return;
    }
    authd_fold_name(x->conf->lowercase_names, r.user);
    if (v == OAUTH_VALID && q->authcid[0] != '\0' && strcmp(q->authcid, r.user) != 0)
        oauth_refuse(x->oauth, "user_mismatch", &r);
    struct userdb_entry e;
    struct error err = {{0}};
    int found = 0;
    if (r.user[0] != '\0') {
        /* From here on the defence engine and the log know the user by the token's name. */
        snprintf(q->authcid, sizeof(q->authcid), "%s", r.user);
        found = userdb_lookup(db, r.user, &e, &err);
        if (found < 0) {
            db_error(j, &err);
            return;
        }
        if (found == 0)
            oauth_refuse(x->oauth, "unknown_user", &r);
    }
    if (found == 0) {
        log_event(LOG_LVL_NOTICE, "oauth_refused", "sid=%s user=%s remote=%s reason=%s issuer=%s", q->sid,
                  log_quote(qn, sizeof(qn), q->authcid, strlen(q->authcid)), q->remote, r.why,
                  r.issuer_name[0] ? r.issuer_name : "none");
        authd_fail(x, a, POP3_AUTH_FAIL);
        size_t n = strlen(r.status_json);
        if (n > 0 && n <= sizeof(a->data)) {
            memcpy(a->data, r.status_json, n);
            a->data_len = n;
        }
        return;
    }
    authd_admit(x, j, &e, CONF_METHOD_OAUTH);
    userdb_entry_wipe(&e);
}

void authd_verify(struct userdb *db, const struct authd_ctx *x, struct job *j)
{
    memset(&j->res, 0, sizeof(j->res));
    j->res.id = j->req.id;
    const char *m = j->req.mech;
    if (j->conv != NULL) {
        authd_scram_step(db, x, j);
    } else if (strcmp(m, "OAUTHBEARER") == 0 || strcmp(m, "XOAUTH2") == 0) {
        guard_fingerprint(x->guard, j->req.authcid, j->req.secret, j->req.secret_len, &j->fp);
        j->have_fp = true;
        verify_token(db, x, j);
    } else {
        guard_fingerprint(x->guard, j->req.authcid, j->req.secret, j->req.secret_len, &j->fp);
        j->have_fp = true;
        verify_password(db, x, j);
    }
}
