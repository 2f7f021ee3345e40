/* The configuration: one INI file (default /etc/popsd/popsd.conf), parsed
 * strictly. An unknown section or key, a bad value or a missing required value
 * is a "file:line: message" error. Defaults are the secure choice; a minimal file
 * needs only a certificate, a listener, the user database and the mail location. */
#ifndef POPSD_CONF_CONF_H
#define POPSD_CONF_CONF_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"
#include "common/log.h"

#define CONF_PATH_DEFAULT "/etc/popsd/popsd.conf"
#define CONF_PATH_MAX 1024
#define CONF_NAME_MAX 64
#define CONF_MAX_LISTENERS 16
#define CONF_MAX_ADDRS 16 /* per listener */
#define CONF_MAX_CERTS 16
#define CONF_MAX_TRUSTED 32
#define CONF_URL_MAX 1024

/* [alerts] events: which defence events are sent to the webhook and the exec hook. */
enum conf_alert_event {
    CONF_ALERT_BAN = 1u << 0,
    CONF_ALERT_ACCOUNT_LOCKED = 1u << 1,
    CONF_ALERT_SPRAYING = 1u << 2,
    CONF_ALERT_DISTRIBUTED_SPRAYING = 1u << 3,
    CONF_ALERT_NEW_SOURCE = 1u << 4,
    CONF_ALERT_ALL = (1u << 5) - 1,
};

enum conf_tls_mode { CONF_TLS_IMPLICIT, CONF_TLS_STARTTLS };

/* SASL mechanisms a listener may offer ([listener] mechanisms). */
enum conf_mech {
    CONF_MECH_PLAIN = 1u << 0, /* also USER/PASS */
    CONF_MECH_SCRAM = 1u << 1,
    CONF_MECH_SCRAM_PLUS = 1u << 2,
    CONF_MECH_OAUTHBEARER = 1u << 3,
    CONF_MECH_XOAUTH2 = 1u << 4,
    CONF_MECH_ALL = (1u << 5) - 1,
};

/* Credentials a user may open POP3 with (per-user policy; [userdb] methods is
 * the default for users without one, e.g. every passwd-file user). */
enum conf_method {
    CONF_METHOD_PASSWORD = 1u << 0, /* the account password (PLAIN, USER/PASS) */
    CONF_METHOD_APP = 1u << 1,      /* an app password */
    CONF_METHOD_OAUTH = 1u << 2,    /* an OAuth 2.0 bearer token */
    CONF_METHOD_SCRAM = 1u << 3,    /* SCRAM-SHA-256(-PLUS) */
    CONF_METHOD_ALL = (1u << 4) - 1,
};

#define CONF_MAX_OAUTH 8

/* [oauth NAME]: one trusted token issuer (see src/auth/oauth.h). */
struct conf_oauth {
    char name[CONF_NAME_MAX];
    char issuer[CONF_URL_MAX];     /* the "iss" a token must carry */
    char audience[256];            /* must appear in "aud" */
    char jwks_file[CONF_PATH_MAX]; /* local validation of JWTs; "" = introspection only */
    uint32_t algorithms;           /* OAUTH_ALG_* bits, default RS256 ES256 EdDSA */
    char scope[256];               /* space-separated scopes every token must hold, "" = none */
    char username_claim[64];       /* claim naming the user, default "email" */
    uint64_t clock_skew_ms;        /* tolerance on exp/nbf/iat, default 60 s, at most 300 s */
    char introspection_url[CONF_URL_MAX]; /* RFC 7662 endpoint, "" = none */
    char client_id[256];                  /* introspection client credentials */
    char client_secret_file[CONF_PATH_MAX];
    char introspection_ca[CONF_PATH_MAX]; /* PEM bundle, "" = the system's */
    uint64_t introspection_timeout_ms;    /* default 3 s */
    uint64_t introspection_cache_ms;      /* default 60 s; 0 = no cache */
    char openid_configuration[CONF_URL_MAX]; /* sent in the RFC 7628 failure status, "" = omitted */
};

/* Token signature algorithms ([oauth] algorithms); nothing else is ever accepted. */
enum conf_oauth_alg {
    CONF_OAUTH_RS256 = 1u << 0,
    CONF_OAUTH_ES256 = 1u << 1,
    CONF_OAUTH_EDDSA = 1u << 2,
};
enum conf_userdb_driver { CONF_USERDB_SQLITE, CONF_USERDB_PASSWD_FILE };

struct conf_listener {
    char name[CONF_NAME_MAX];
    char addrs[CONF_MAX_ADDRS][128]; /* "127.0.0.1:995", "[::1]:995", "*:995" */
    unsigned n_addrs;
    enum conf_tls_mode tls;
    uint32_t mechs; /* enum conf_mech bits, default all (OAuth ones only when an [oauth] issuer exists) */
    bool proxy;     /* proxy_protocol = yes: every connection starts with a PROXY v2 header */
    char proxy_trusted[512]; /* the balancers allowed to connect (addresses, CIDRs; space-separated) */
};

struct conf_cert {
    char name[CONF_NAME_MAX];
    char cert[CONF_PATH_MAX]; /* PEM: leaf first, then the chain */
    char key[CONF_PATH_MAX];  /* must not be group/world readable */
};

struct conf {
    char path[CONF_PATH_MAX];

    /* [server] */
    unsigned workers; /* front processes; 0 = one per core */
    char front_user[CONF_NAME_MAX];
    char auth_user[CONF_NAME_MAX];
    char mail_user[CONF_NAME_MAX];
    char implementation[CONF_NAME_MAX]; /* CAPA IMPLEMENTATION, "" = not advertised */
    bool log_syslog;
    enum log_level log_level;
    uint32_t max_connections;            /* whole server */
    uint32_t max_connections_per_source; /* per IPv4 address or IPv6 /64 */
    uint64_t timeout_login_ms;           /* idle before authentication (and TLS handshake) */
    uint64_t timeout_idle_ms;            /* idle after authentication, >= 10 minutes (RFC 1939) */
    uint32_t max_bad_commands;
    uint32_t max_auth_attempts; /* per connection */
    uint64_t auth_fail_delay_ms;
    uint32_t login_delay_s; /* advertised LOGIN-DELAY and enforced per user */
    uint64_t drain_timeout_ms; /* how long an old generation may finish sessions after reload */

    /* [tls] */
    struct conf_cert certs[CONF_MAX_CERTS];
    unsigned n_certs;
    bool tls12;           /* allow TLS 1.2 beside 1.3 */
    bool session_tickets; /* issue TLS resumption tickets (off by default, see tls.c) */

    /* [userdb] */
    enum conf_userdb_driver userdb_driver;
    char userdb_path[CONF_PATH_MAX];
    bool allow_weak_schemes;
    bool lowercase_names; /* fold login names to lower case before lookup (Dovecot's %Lu) */
    unsigned auth_threads;
    uint32_t argon2_m_kib, argon2_t; /* cost for the dummy hash and new hashes */
    uint64_t cache_ttl_ms;           /* verified-credential cache; 0 = off */
    uint32_t cache_size;
    uint32_t scram_iterations; /* PBKDF2 rounds of SCRAM keys made when a password is set */
    uint32_t default_methods;  /* enum conf_method bits for users without a policy of their own */

    /* [passwords] (checked by popsctl when an admin sets a password) */
    uint32_t pw_min_length;               /* default 12 (NIST SP 800-63B) */
    uint32_t pw_min_quality;              /* libpwquality score 0..100 a password must reach */
    char pw_breached_list[CONF_PATH_MAX]; /* sorted "SHA1HEX:count" lines, "" = not checked */

    /* [oauth NAME] */
    struct conf_oauth oauth[CONF_MAX_OAUTH];
    unsigned n_oauth;

    /* [mail] */
    char mail_location[CONF_PATH_MAX]; /* template with %u %n %d, under mail_root */
    char mail_root[CONF_PATH_MAX];     /* the front's chroot: every mailbox is beneath it */
    bool mail_create;                  /* create a missing Maildir at first login */

    /* [defence] (see src/auth/guard.h) */
    uint64_t delay_max_ms;
    uint64_t window_ms;
    uint32_t ban_failures, ban_prefix_failures;
    uint64_t ban_time_ms, ban_time_max_ms, ban_memory_ms;
    uint32_t spray_accounts, spray_password_accounts;
    uint32_t account_lock_failures;
    uint64_t account_lock_time_ms, known_source_time_ms;
    uint32_t table_size;
    char trusted[CONF_MAX_TRUSTED][64]; /* "10.0.0.0/8" */
    unsigned n_trusted;
    char state_file[CONF_PATH_MAX];     /* "" = defence state is not kept across restarts */
    char control_socket[CONF_PATH_MAX]; /* for popsctl ban/unlock/events; "" = none */

    /* [alerts] (see src/roles/authd_alert.h); both channels off when unset */
    char alert_webhook_url[CONF_URL_MAX]; /* http:// or https://, "" = no webhook */
    char alert_webhook_ca[CONF_PATH_MAX]; /* PEM bundle read before the privilege drop; "" = the system's */
    uint64_t alert_webhook_timeout_ms;
    uint32_t alert_webhook_retries; /* tries after the first failed one */
    uint64_t alert_webhook_retry_delay_ms; /* doubled after each failed try */
    uint32_t alert_queue_size; /* per channel; when full the oldest event is dropped */
    char alert_exec[CONF_PATH_MAX]; /* program run per event (no shell), "" = none */
    uint64_t alert_exec_timeout_ms;
    uint32_t alert_exec_max_running;
    uint32_t alert_events; /* enum conf_alert_event bits */

    /* [metrics] */
    char metrics_address[128]; /* "127.0.0.1:9154", "" = no metrics endpoint */
    char metrics_chroot[CONF_PATH_MAX]; /* empty directory the metrics process is confined to */

    struct conf_listener listeners[CONF_MAX_LISTENERS];
    unsigned n_listeners;
};

/* Fills c with defaults. */
void conf_defaults(struct conf *c);

/* Parses the file at path into c (defaults first) and checks it as a whole:
 * file mode (not group/world-writable), required values, key files' modes,
 * mail_location beneath mail_root. Returns 0, or -1 with "path:line: message". */
int conf_load(const char *path, struct conf *c, struct error *err);

/* Same, from a string (tests, fuzzing); no file-mode checks. */
int conf_parse_string(const char *text, const char *name, struct conf *c, struct error *err);

/* Writes the effective configuration in the file's own syntax (popsd -n). */
/* How many fronts run: [server] workers, or one per online CPU for "auto". */
#define CONF_MAX_FRONTS 256
unsigned conf_fronts(const struct conf *c);

void conf_print(const struct conf *c, FILE *out);

/* Expands the mail location for user ("%u" full name, "%n" local part, "%d" domain,
 * "%%"). Refuses names that would escape the directory ("..", "/", control bytes).
 * Returns 0 or -1. */
int conf_mail_path(const struct conf *c, const char *user, char *out, size_t outsz, struct error *err);

#endif
