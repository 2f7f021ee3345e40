/* Shared between authd's event loop (authd.c) and the verification that runs
 * on its worker threads (authd_verify.c, authd_scram.c). */
#ifndef POPSD_ROLES_AUTHD_INT_H
#define POPSD_ROLES_AUTHD_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/credcache.h"
#include "auth/guard.h"
#include "auth/pwscheme.h"
#include "auth/userdb.h"
#include "conf/conf.h"
#include "ipc/auth_msg.h"
#include "pop3/session.h"

struct scram_conv;
struct oauth;

struct job {
    struct job *next;
    int front;
    bool refused; /* turned away by the defence engine without verifying */
    struct ipc_auth_req req;
    struct ipc_auth_res res;
    struct guard_source src;
    struct guard_fp fp;       /* keyed fingerprints of the tried secret, made on the worker */
    bool have_fp;
    struct scram_conv *conv;  /* SCRAM: the conversation this step belongs to */
    const char *method;       /* which credential opened (or was tried): "password", "app", "oauth", "scram" */
    bool needs_hash;          /* a login thread found no shortcut: a hashing thread takes the job over */
    bool on_hash_thread;      /* ... and starts it again from the top, this time hashing */
};

/* Read-only after start-up, shared by the workers. */
struct authd_ctx {
    const struct conf *conf;
    const char *dummy; /* hash that unknown users are verified against */
    struct pwscheme_argon2_params argon2;
    struct credcache *cache;
    struct oauth *oauth; /* NULL without [oauth] issuers */
    struct guard *guard;
    unsigned char scram_secret[32]; /* salts of unknown users' fake SCRAM keys */
    int base_nice;                  /* the loop's nice value at start */
};

/* Two pools of worker threads. Login threads take every job; a password login
 * that the verified-credential cache cannot answer (and an unknown user, so it
 * costs the same) is handed to a hashing thread, which runs AUTHD_HASH_NICE
 * levels below the event loops. So a burst of cold Argon2id logins (hundreds
 * of ms each) waits only for its own CPU: polling logins answered from the
 * cache, app passwords, tokens and SCRAM never queue behind it, and on a busy
 * machine the fronts' loops run first. */
#define AUTHD_HASH_NICE 10
#define AUTHD_LOGIN_THREADS 2
/* Worker thread: decides j (fills j->res) for every mechanism. */
void authd_verify(struct userdb *db, const struct authd_ctx *x, struct job *j);
/* [userdb] lowercase_names: a login name in ASCII lower case, in place, before
 * anything (lookup, defence counters, logs) sees it; otherwise unchanged. */
void authd_fold_name(bool fold, char *name);

/* Worker thread helpers shared by the mechanisms: a failure with its delay, and
 * the admission of a user whose credential (of kind method, enum conf_method)
 * was proven: per-user policy, POP3 on/off, mail path. */
/* base ms +-25%, so the delay itself reveals nothing about the path an answer took. */
uint32_t authd_jitter(uint64_t base);
void authd_fail(const struct authd_ctx *x, struct ipc_auth_res *a, enum pop3_auth_status st);
void authd_admit(const struct authd_ctx *x, struct job *j, const struct userdb_entry *e, uint32_t method);

/* Event loop: SCRAM conversations, keyed by (front, conversation id), bounded
 * in number and age. open parses the client-first message and, on success,
 * puts the claimed user name into j->req.authcid (for the defence engine). */
int authd_scram_open(struct job *j, int64_t now, bool fold_names);
/* Claims the open conversation j->req.conv of j->front for a later step (sets
 * j->conv and the user name in j->req); -1 if unknown, expired or busy. */
int authd_scram_resume(struct job *j);
/* After the step's answer: a conversation that continues is released for the
 * next step, any other is closed. */
void authd_scram_release(struct scram_conv *c, bool continues);
void authd_scram_front_gone(int front);
/* Worker thread: runs step j->req.step of j->conv. */
void authd_scram_step(struct userdb *db, const struct authd_ctx *x, struct job *j);

#endif
