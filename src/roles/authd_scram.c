/* SCRAM-SHA-256(-PLUS) conversations in authd. The front relays each client
 * message; the stored keys never leave this process. The table is bounded and
 * its entries age out, so clients that walk away mid-exchange cost nothing for
 * long. The event loop owns the table; a worker touches only the conversation
 * its job has claimed. */
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/secret.h"
#include "roles/authd_int.h"
#include "sasl/scram.h"

#define SCRAM_CONVS 4096
#define SCRAM_CONV_TTL_S 120 /* a client has this long to send its proof */

struct scram_conv {
    bool in_use, busy;
    int front;
    uint32_t id;
    int64_t started;
    struct scram_server *srv;
    char srv_mech[32]; /* the mechanism it was opened for: later steps must agree */
    char user[SCRAM_NAME_MAX + 1];
    char authzid[SCRAM_NAME_MAX + 1];
    struct scram_keys keys;
    bool known; /* keys are the user's own, not fake ones */
};

static struct scram_conv convs[SCRAM_CONVS];

static void conv_free(struct scram_conv *c)
{
    scram_server_free(&c->srv);
    secret_wipe(c, sizeof(*c));
}

int authd_scram_open(struct job *j, int64_t now, bool fold_names)
{
    struct scram_conv *slot = NULL;
    for (unsigned i = 0; i < SCRAM_CONVS; i++) {
        struct scram_conv *c = &convs[i];
        if (c->in_use && !c->busy && now - c->started > SCRAM_CONV_TTL_S)
            conv_free(c);
        if (!c->in_use && slot == NULL)
            slot = c;
    }
    if (slot == NULL) {
        log_event(LOG_LVL_WARN, "scram_table_full", "sid=%s", j->req.sid);
        return -1;
    }
    const struct ipc_auth_req *q = &j->req;
    bool plus_mech = strcmp(q->mech, "SCRAM-SHA-256-PLUS") == 0;
    slot->srv = scram_server_new(plus_mech, q->plus_offered, q->cb_len ? q->cb_type : NULL, q->cb_data, q->cb_len);
    if (slot->srv == NULL)
        return -1;
    const char *reply = NULL;
    struct error err = {{0}};
    if (scram_server_client_first(slot->srv, (const unsigned char *)q->secret, q->secret_len, slot->user,
                                  slot->authzid, &reply, &err) < 0) {
        char qd[300];
        log_event(LOG_LVL_NOTICE, "scram_refused", "sid=%s remote=%s mech=%s step=client_first detail=%s", q->sid,
                  q->remote, q->mech, log_quote(qd, sizeof(qd), err.msg, strlen(err.msg)));
        conv_free(slot);
        return -1;
    }
    /* Only the lookup name is folded: the proof covers the message as the client sent it. */
    authd_fold_name(fold_names, slot->user);
    authd_fold_name(fold_names, slot->authzid);
    snprintf(slot->srv_mech, sizeof(slot->srv_mech), "%s", q->mech);
    slot->in_use = slot->busy = true;
    slot->front = j->front;
    slot->id = q->conv;
    slot->started = now;
    snprintf(j->req.authcid, sizeof(j->req.authcid), "%s", slot->user);
    snprintf(j->req.authzid, sizeof(j->req.authzid), "%s", slot->authzid);
    j->conv = slot;
    return 0;
}

int authd_scram_resume(struct job *j)
{
    for (unsigned i = 0; i < SCRAM_CONVS; i++) {
        struct scram_conv *c = &convs[i];
        if (c->in_use && c->front == j->front && c->id == j->req.conv) {
            if (c->busy || strcmp(c->srv_mech, j->req.mech) != 0)
                return -1;
            c->busy = true;
            j->conv = c;
            snprintf(j->req.authcid, sizeof(j->req.authcid), "%s", c->user);
            snprintf(j->req.authzid, sizeof(j->req.authzid), "%s", c->authzid);
            return 0;
        }
    }
    return -1;
}

void authd_scram_release(struct scram_conv *c, bool continues)
{
    if (continues)
        c->busy = false;
    else
        conv_free(c);
}

void authd_scram_front_gone(int front)
{
    for (unsigned i = 0; i < SCRAM_CONVS; i++)
        if (convs[i].in_use && !convs[i].busy && convs[i].front == front)
            conv_free(&convs[i]);
}

/* Step 0: the user's keys (or fake ones: an unknown user, or one without SCRAM
 * keys, gets a stable salt and fails only at the proof), then server-first. */
static void first_step(struct userdb *db, const struct authd_ctx *x, struct job *j, struct scram_conv *c)
{
    struct userdb_entry e;
    struct error err = {{0}};
    int found = userdb_lookup(db, c->user, &e, &err);
    if (found < 0) {
        char q[300];
        log_event(LOG_LVL_ERR, "userdb_error", "sid=%s detail=%s", j->req.sid, log_quote(q, sizeof(q), err.msg, strlen(err.msg)));
        j->res.status = POP3_AUTH_TEMPFAIL;
        return;
    }
    c->known = found == 1 && e.scram[0] != '\0' && scram_keys_parse(e.scram, &c->keys, &err) == 0;
    if (found == 1 && e.scram[0] != '\0' && !c->known) {
        char q[300];
        log_event(LOG_LVL_ERR, "bad_scram_keys", "user=%s detail=\"%s\"", log_quote(q, sizeof(q), c->user, strlen(c->user)),
                  err.msg);
    }
    userdb_entry_wipe(&e);
    if (!c->known)
        scram_keys_fake(x->scram_secret, c->user, x->conf->scram_iterations, &c->keys);
    char out[SCRAM_MSG_MAX];
    int n = scram_server_first(c->srv, &c->keys, out, sizeof(out));
    if (n <= 0 || (size_t)n > sizeof(j->res.data)) {
        j->res.status = POP3_AUTH_TEMPFAIL;
        return;
    }
    memcpy(j->res.data, out, (size_t)n);
    j->res.data_len = (size_t)n;
    j->res.status = POP3_AUTH_CONTINUE;
    snprintf(j->res.user, sizeof(j->res.user), "%s", c->user); /* for the front's log lines */
}

/* Step 1: the proof. Only a right proof by a known user, for itself, gets in. */
static void final_step(struct userdb *db, const struct authd_ctx *x, struct job *j, struct scram_conv *c)
{
    char out[SCRAM_MSG_MAX];
    size_t outlen = 0;
    struct error err = {{0}};
    int r = scram_server_final(c->srv, &c->keys, (const unsigned char *)j->req.secret, j->req.secret_len, out,
                               sizeof(out), &outlen, &err);
    unsigned char ck[SCRAM_KEY_LEN];
    if (scram_server_client_key(c->srv, ck)) {
        guard_fingerprint(x->guard, c->user, (const char *)ck, sizeof(ck), &j->fp);
        j->have_fp = true;
        secret_wipe(ck, sizeof(ck));
    }
    char q[300];
    log_quote(q, sizeof(q), c->user, strlen(c->user));
    if (r < 0 || (r == 0 && strcmp(out, "e=invalid-proof") != 0))
        log_event(LOG_LVL_NOTICE, "scram_refused", "sid=%s user=%s remote=%s mech=%s step=client_final detail=\"%s\"",
                  j->req.sid, q, j->req.remote, j->req.mech, r < 0 ? err.msg : out);
    bool authz_ok = c->authzid[0] == '\0' || strcmp(c->authzid, c->user) == 0;
    if (r != 1 || !c->known || !authz_ok) {
        authd_fail(x, &j->res, POP3_AUTH_FAIL);
        return;
    }
    /* The policy as it is now, not as it was at the first message. */
    struct userdb_entry e;
    int found = userdb_lookup(db, c->user, &e, &err);
    if (found != 1) {
        if (found < 0)
            j->res.status = POP3_AUTH_TEMPFAIL;
        else
            authd_fail(x, &j->res, POP3_AUTH_FAIL);
        return;
    }
    authd_admit(x, j, &e, CONF_METHOD_SCRAM);
    userdb_entry_wipe(&e);
    if (j->res.status == POP3_AUTH_OK && outlen <= sizeof(j->res.data)) {
        memcpy(j->res.data, out, outlen);
        j->res.data_len = outlen;
    }
}

void authd_scram_step(struct userdb *db, const struct authd_ctx *x, struct job *j)
{
    j->method = "scram";
    if (j->req.step == 0)
        first_step(db, x, j, j->conv);
    else if (j->req.step == 1)
        final_step(db, x, j, j->conv);
    else
        authd_fail(x, &j->res, POP3_AUTH_FAIL);
}
