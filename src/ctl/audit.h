/* popsctl audit: a client that checks the hardening of any POP3S server the
 * way nmap's ssl-enum-ciphers and testssl.sh would, and grades it.
 *
 * Internal to src/ctl/audit*.c. The audit is a client, not server TLS policy,
 * so unlike the daemon it talks to OpenSSL directly (src/tls/ is the server's).
 *
 * Conventions: functions return 0 (or a count) on success and a negative
 * AUDIT_E* code on failure, with detail in struct error. Every network
 * operation takes a timeout; every connection counts against a probe budget. */
#ifndef POPSD_CTL_AUDIT_H
#define POPSD_CTL_AUDIT_H

#include "common/error.h"

#include <netinet/in.h>
#include <openssl/types.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define AUDIT_MAX_SUITES 192 /* per protocol version */
#define AUDIT_MAX_PROBES 400 /* connections per run, all checks together */
#define AUDIT_MAX_FINDINGS 48
#define AUDIT_MAX_CAPA 32  /* CAPA lines kept */
#define AUDIT_CAPA_LEN 96  /* bytes kept per CAPA line */
#define AUDIT_LINE_MAX 512 /* longest server line we read (RFC 2449 allows 512) */
#define AUDIT_MAX_GROUPS 16
#define AUDIT_AUTH_ATTEMPTS 4 /* --probe-auth attempts */
#define AUDIT_DEFAULT_TIMEOUT_MS 5000
#define AUDIT_MAX_ADDRS 8 /* addresses of HOST tried for reachability */

enum {
    AUDIT_EGENERIC = -1,
    AUDIT_EUNREACH = -2, /* TCP connect failed or timed out */
    AUDIT_EBUDGET = -3,  /* probe budget exhausted: no connection made */
    AUDIT_EPOP3 = -4,    /* POP3 exchange before TLS failed (no greeting, STLS refused) */
    AUDIT_ETIMEOUT = -5,
    AUDIT_EEOF = -6, /* peer closed the connection */
};

enum audit_ver { AV_SSL3, AV_TLS10, AV_TLS11, AV_TLS12, AV_TLS13, AV_COUNT };

enum audit_status { AUDIT_PASS, AUDIT_INFO, AUDIT_WARN, AUDIT_FAIL };

/* Ordered so that a larger value is a better grade. */
enum audit_grade { G_F, G_E, G_D, G_C, G_B, G_AMINUS, G_A, G_APLUS, G_NONE };

struct audit_target {
    char host[256];
    char addr_str[64];            /* numeric address actually used */
    struct sockaddr_storage addr; /* every probe talks to this one address */
    socklen_t addrlen;
    int naddr; /* what HOST resolved to */
    struct sockaddr_storage addrs[AUDIT_MAX_ADDRS];
    socklen_t addrlens[AUDIT_MAX_ADDRS];
    uint16_t port;
    bool starttls;
    bool host_is_ip;
    const char *sni;        /* name sent in SNI; NULL sends none */
    const char *check_name; /* name the certificate must match (host or --sni) */
    const char *ca_file;    /* --ca; NULL uses the system store */
    int timeout_ms;         /* every network operation */
};

/* Run state: the target and the probe budget shared by all checks. */
struct audit_ctx {
    struct audit_target t;
    int probes;
    int max_probes;
    bool budget_hit;
};

/* ---- suites (audit_suites.c) ---- */

enum {
    SF_FS = 1u << 0, /* forward secret key exchange */
    SF_AEAD = 1u << 1,
    SF_CBC = 1u << 2,
    SF_SHA1 = 1u << 3, /* HMAC-SHA1 record MAC */
    SF_MD5 = 1u << 4,  /* HMAC-MD5 record MAC */
    SF_NULL = 1u << 5, /* no encryption */
    SF_ANON = 1u << 6, /* no server authentication */
    SF_EXPORT = 1u << 7,
    SF_RC4 = 1u << 8,
    SF_DES = 1u << 9,    /* single DES, DES40, RC2 */
    SF_64BIT = 1u << 10, /* 64-bit block cipher: 3DES, IDEA (Sweet32) */
};

struct audit_suite {
    uint16_t id;
    char name[64]; /* IANA name (SSL_CIPHER_standard_name) */
    char ossl[48]; /* OpenSSL name; "" when found by the raw prober */
    char kx[24];   /* server's ephemeral key: "x25519", "secp256r1", "dh2048", "" */
    int kx_bits;
    unsigned flags; /* SF_* */
};

/* Classifies a suite by its IANA name. */
unsigned audit_suite_classify(const char *iana);
/* Fills out with the suites this OpenSSL can offer for version v (TLS 1.0..1.3),
 * id, name and ossl set. Returns the count or a negative code. */
int audit_suites_openssl(enum audit_ver v, struct audit_suite *out, int max, struct error *err);
/* Suites this OpenSSL cannot offer (RC4, 3DES, DES, EXPORT, IDEA, SEED, static
 * DH/ECDH), probed with hand-built ClientHellos. */
int audit_suites_legacy(struct audit_suite *out, int max);
const char *audit_ver_name(enum audit_ver v);
int audit_ver_openssl(enum audit_ver v);

/* ---- network (audit_net.c) ---- */

struct audit_conn {
    int fd;
    SSL *ssl; /* NULL while plaintext */
    size_t len;
    char buf[4096];
};

int64_t audit_now_ms(void);
/* Copies src (NULL reads as "") into dst of capacity cap, truncating;
 * always NUL-terminates. */
void audit_copy(char *dst, size_t cap, const char *src);
/* Replaces control and non-ASCII bytes of server-supplied text with '?'. */
void audit_sanitize(char *s);
/* Resolves t->host (name or literal) with a timeout into addrs[] and selects
 * the first one. */
int audit_resolve(struct audit_target *t, struct error *err);
/* Selects addrs[i] as the address every probe connects to. */
void audit_use_address(struct audit_target *t, int i);
/* Opens a TCP connection (one probe). c->fd = -1 on failure. */
int audit_connect(struct audit_ctx *a, struct audit_conn *c, struct error *err);
/* Frees the SSL (without waiting for the peer) and closes the socket. */
void audit_conn_close(struct audit_conn *c);
int audit_conn_write(struct audit_conn *c, const void *p, size_t n, int timeout_ms, struct error *err);
/* Reads one line into line (CRLF stripped, NUL-terminated, truncated to cap).
 * Returns its length, AUDIT_ETIMEOUT, AUDIT_EEOF or AUDIT_EGENERIC. */
int audit_conn_read_line(struct audit_conn *c, char *line, size_t cap, int timeout_ms, struct error *err);
/* Reads exactly n plaintext bytes. */
int audit_conn_read_exact(struct audit_conn *c, void *p, size_t n, int timeout_ms, struct error *err);
/* Runs the client handshake of ssl on c->fd; on success c->ssl = ssl (owned). */
int audit_conn_handshake(struct audit_conn *c, SSL *ssl, int timeout_ms, struct error *err);

/* ---- POP3 (audit_pop3.c) ---- */

enum audit_inj { INJ_UNTESTED, INJ_SAFE_REFUSED, INJ_SAFE_IGNORED, INJ_VULNERABLE, INJ_ERROR };

struct audit_pop3_res {
    bool greeting_ok;
    char greeting[AUDIT_LINE_MAX];
    bool apop;
    bool capa_plain_ok, capa_tls_ok;
    int ncapa_plain, ncapa_tls;
    char capa_plain[AUDIT_MAX_CAPA][AUDIT_CAPA_LEN];
    char capa_tls[AUDIT_MAX_CAPA][AUDIT_CAPA_LEN];
    bool stls_offered;        /* in CAPA before TLS (STARTTLS mode) */
    bool user_clear;          /* USER advertised before TLS */
    bool user_accepted_clear; /* USER answered +OK before TLS */
    char sasl_clear[128];     /* cleartext-equivalent SASL mechanisms before TLS */
    char implementation[AUDIT_CAPA_LEN];
    bool version_leak; /* IMPLEMENTATION or greeting names a version number */
    enum audit_inj injection;
    char inj_detail[192];
    char note[192];
};

/* Connects and, in STARTTLS mode, runs greeting + STLS, leaving c ready for a
 * ClientHello. AUDIT_EPOP3 if the server does not speak POP3/STLS. */
int audit_pop3_open_transport(struct audit_ctx *a, struct audit_conn *c, struct error *err);
/* Greeting, CAPA before/after TLS, cleartext credentials, APOP, IMPLEMENTATION. */
void audit_pop3_check(struct audit_ctx *a, struct audit_pop3_res *r);
/* STLS command injection probe (STARTTLS mode only). */
void audit_pop3_injection(struct audit_ctx *a, struct audit_pop3_res *r);
/* Opens a TLS POP3 session and reads the greeting (for the auth probe). */
int audit_pop3_session(struct audit_ctx *a, struct audit_conn *c, struct error *err);
/* Sends a command line and reads the one-line reply; true if it was +OK. */
int audit_pop3_cmd(struct audit_conn *c, const char *cmd, char *reply, size_t cap, int timeout_ms,
                   struct error *err);
/* Reads a multi-line response into capa[] (max lines), dot-unstuffed. */
int audit_pop3_multiline(struct audit_conn *c, char (*lines)[AUDIT_CAPA_LEN], int max, int timeout_ms,
                         struct error *err);

/* ---- TLS probes (audit_tls.c) ---- */

struct tls_probe_req {
    enum audit_ver ver;   /* the only version offered */
    const char *ciphers;  /* TLS <= 1.2 cipher string; NULL = everything */
    const char *suites13; /* TLS 1.3 suites; NULL = everything */
    const char *groups;   /* NULL = all groups */
    const char *sni;      /* NULL = none */
    const unsigned char *alpn;
    unsigned alpn_len;
    bool verify;     /* load trust store, record verification errors */
    bool ocsp;       /* request a stapled OCSP response */
    bool keep_chain; /* return the peer's certificates */
};

struct tls_probe_res {
    bool ok; /* handshake completed */
    int version;
    uint16_t cipher_id;
    char cipher_name[64];
    char cipher_ossl[48];
    char kx[24];
    int kx_bits;
    bool secure_reneg;
    char alpn[32];
    bool ocsp_stapled;
    int alert;     /* alert received from the server, -1 if none */
    char why[160]; /* why the handshake failed */
    X509 *leaf;    /* owned when keep_chain */
    STACK_OF(X509) * chain;
    int nverr;
    int verr[8]; /* distinct verification errors, in order seen */
    int verr_depth[8];
};

/* One connection, one handshake. Returns 0 (see res->ok) or a negative code
 * when no transport could be set up. */
int audit_tls_probe(struct audit_ctx *a, const struct tls_probe_req *rq, struct tls_probe_res *rs,
                    struct error *err);
void audit_tls_res_free(struct tls_probe_res *rs);
/* Runs a permissive client handshake (any version, SNI) on an open transport,
 * for the POP3 checks that need a session rather than a measurement. */
int audit_tls_start(struct audit_ctx *a, struct audit_conn *c, struct error *err);

/* Key exchange groups the audit offers one at a time. */
struct audit_group_def {
    const char *ossl; /* OpenSSL list name */
    const char *iana; /* name in reports (nmap's and IANA's) */
    int nid;
    bool ec; /* usable with ECDHE suites in TLS <= 1.2 */
};
extern const struct audit_group_def audit_group_defs[];
extern const int audit_group_ndefs;

/* ---- raw hellos (audit_raw.c), for what this OpenSSL cannot offer ---- */

struct raw_hello_res {
    bool ok; /* ServerHello received */
    uint16_t version;
    uint16_t cipher;
    uint8_t compression;
    int alert; /* -1 if none */
    char why[128];
};

/* Sends one hand-built ClientHello offering ids[] and reads the ServerHello. */
int audit_raw_hello(struct audit_ctx *a, uint16_t version, const uint16_t *ids, int nids, const uint8_t *comp,
                    int ncomp, struct raw_hello_res *r, struct error *err);

/* ---- results ---- */

struct audit_proto_res {
    bool tested;
    bool accepted;
    bool incomplete; /* enumeration stopped early (budget, transport error) */
    char note[128];
    int n;
    struct audit_suite suites[AUDIT_MAX_SUITES]; /* in the order the server chose them */
    int server_order;                            /* 1 server's order, 0 client's, -1 unknown */
};

struct audit_group {
    char name[24]; /* IANA name: x25519, secp256r1, ffdhe2048 */
    enum audit_ver ver;
    int bits;
};

struct audit_cert_res {
    bool have;
    char subject[256];
    char issuer[256];
    char sans[512];
    char key_type[16];
    int key_bits;
    char sig_alg[64];
    int sig_md; /* NID of the signature digest */
    char not_before[32], not_after[32];
    long days_left;
    bool expired, not_yet_valid, self_signed;
    int chain_len;
    bool chain_ok;
    char chain_error[160];
    bool name_checked, name_ok;
    char name[256];
    bool ocsp_stapled;
    char sha256[100];
};

enum audit_alpn { ALPN_UNTESTED, ALPN_REJECTED, ALPN_IGNORED, ALPN_ACCEPTED, ALPN_ERROR };
enum audit_sni { SNI_UNTESTED, SNI_REFUSED, SNI_DEFAULT, SNI_OTHER_CERT, SNI_ERROR };

struct audit_tlsb_res {
    int compression; /* -1 untested, 0 none, 1 offered by the server */
    char comp_note[128];
    int reneg; /* -1 not applicable/untested, 0 unsupported, 1 secure renegotiation */
    enum audit_alpn alpn;
    char alpn_sel[32];
    enum audit_sni sni;
    char note[128];
};

struct audit_auth_res {
    bool run;
    char method[16];
    int attempts;
    int delay_ms[AUDIT_AUTH_ATTEMPTS];
    bool cut[AUDIT_AUTH_ATTEMPTS]; /* connection closed after this attempt */
    bool no_reply;                 /* a reply took longer than the timeout */
    bool throttled;
    char note[192];
};

struct audit_finding {
    char id[32];
    enum audit_status status;
    enum audit_grade cap; /* G_NONE when it does not limit the grade */
    char detail[256];
    char fix[160];
};

struct audit_report {
    const struct audit_target *t;
    struct audit_proto_res proto[AV_COUNT];
    int ngroups;
    struct audit_group groups[AUDIT_MAX_GROUPS];
    struct audit_cert_res cert;
    struct audit_tlsb_res tlsb;
    struct audit_pop3_res pop3;
    struct audit_auth_res auth;
    int nfind;
    struct audit_finding find[AUDIT_MAX_FINDINGS];
    enum audit_grade grade;
    char grade_rule[256];
    enum audit_grade min_grade; /* G_NONE when not given */
    int probes;
    bool budget_hit;
    long elapsed_ms;
};

/* audit_enum.c: protocols, suites, server order, groups. */
void audit_enum_protocols(struct audit_ctx *a, struct audit_report *r);
void audit_enum_groups(struct audit_ctx *a, struct audit_report *r);
enum audit_ver audit_best_ver(const struct audit_report *r); /* AV_COUNT if none */

/* audit_cert.c: the certificate of the best handshake. */
void audit_cert_check(struct audit_ctx *a, struct audit_report *r, X509 **leaf_out);
/* audit_tlsb.c: compression, renegotiation, ALPN, unknown SNI. */
void audit_tlsb_check(struct audit_ctx *a, struct audit_report *r, X509 *leaf);
/* audit_auth.c: --probe-auth USER. */
void audit_auth_probe(struct audit_ctx *a, const char *user, struct audit_auth_res *r);

/* audit_grade.c */
void audit_grade(struct audit_report *r);
const char *audit_grade_name(enum audit_grade g);
int audit_grade_parse(const char *s, enum audit_grade *out);
const char *audit_status_name(enum audit_status s);

/* audit_report.c / audit_json.c */
void audit_report_print(const struct audit_report *r, bool colour);
int audit_report_json(const struct audit_report *r, struct error *err);

#endif
