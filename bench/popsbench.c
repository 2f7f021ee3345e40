/* popsbench: an event-driven POP3S load generator (one thread, one epoll loop,
 * non-blocking OpenSSL), plus the small helpers the side-by-side benchmark
 * needs. Every response is checked; a wrong answer is counted as an error,
 * never as a success.
 *
 *   popsbench session   -p PORT [-c CLIENTS] [-d SECONDS | -n SESSIONS] [-w WARMUP]
 *                       [-u FMT] [-U NUSERS] [-B FIRST] -P PASSWORD [-e MSGS] [-E OCTETS]
 *                       [--distinct-users]
 *       Full sessions, again and again on each of CLIENTS slots: connect, TLS 1.3
 *       handshake, greeting, CAPA, USER, PASS, STAT, UIDL, LIST 1, RETR 1, QUIT.
 *       Slot i always logs in as user FIRST + i % NUSERS (FMT with "%u" replaced);
 *       with --distinct-users every session takes the next user instead (cold logins).
 *   popsbench bulk      -p PORT -u USER -P PASSWORD [-m MSGS]
 *       One session: STAT, LIST, then RETR 1..MSGS; reports MB/s of message data.
 *   popsbench idle      -p PORT -n SESSIONS [-c INFLIGHT] [--ready-file F] [-d MAXHOLD] ...
 *       Opens SESSIONS authenticated sessions (users FIRST .. FIRST+SESSIONS-1, at
 *       most INFLIGHT logging in at a time), reports when all are up (stdout line
 *       "READY n" and the ready file), holds them until SIGUSR1/SIGTERM/SIGINT or
 *       MAXHOLD seconds, then sends QUIT on each and expects +OK (a session the
 *       server dropped is an error).
 *   popsbench handshake -p PORT [-c CLIENTS] [-d SECONDS | -n COUNT] [--resume]
 *       Connect, TLS handshake, read the "+OK" greeting, close. With --resume each
 *       slot offers the last session ticket it got (TLS 1.3 PSK with (EC)DHE).
 *   popsbench serve     -p PORT --cert FILE --key FILE [--tickets N]
 *       A trivial TLS 1.3 server: handshake, "+OK" greeting, wait for the client
 *       to close. Against it, "handshake" measures the TLS cost alone. --tickets:
 *       session tickets sent per handshake (OpenSSL's default is 2).
 *   popsbench genmsg    -s BYTES -i INDEX -o FILE
 *       Writes a self-checking message (LF line endings, lines that need
 *       dot-stuffing) and prints "FILE_BYTES WIRE_BYTES" (WIRE = CRLF octets).
 *   popsbench passwd    [-u FMT] -B FIRST -N COUNT -P PASSWORD
 *       Prints Dovecot passwd-file lines NAME:{SHA512-CRYPT}$6$... (libcrypt).
 *
 * Message checks: the byte count of every RETR (after undoing dot-stuffing,
 * without the terminating ".") must equal the size LIST gave; lines must end in
 * CRLF; and each message carries "X-Bench-Check: SIZE HASH", the octet count
 * and a hash of all its other lines in wire form, which the client recomputes
 * (--no-check accepts messages without that header). Output: one JSON line, then one human
 * line, on stdout. Exit status 0 if there was no error, 1 otherwise. */
#include <arpa/inet.h>
#include <crypt.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_LEN 4096    /* longest response line we accept (RFC 5322: 998 + CRLF) */
#define CMD_MAX 600          /* longest command we send */
#define READ_CHUNK 65536     /* one SSL_read (a record is at most 16 KiB) */
#define MAX_MSGS 1000000     /* STAT counts above this are refused */
#define MAX_CLIENTS 200000
#define ERR_DETAIL_SHOWN 10  /* errors described on stderr; the rest are only counted */

/* ---------------------------------------------------------------- utilities */

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("popsbench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void *xcalloc(size_t n, size_t sz)
{
    void *p = calloc(n ? n : 1, sz ? sz : 1);
    if (p == NULL)
        die("out of memory");
    return p;
}

/* Strict decimal: digits only, no sign, no overflow. */
static bool parse_u64(const char *s, size_t len, uint64_t *out)
{
    if (len == 0 || len > 20)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static uint64_t opt_u64(const char *s, const char *what)
{
    uint64_t v;
    if (!parse_u64(s, strlen(s), &v))
        die("bad %s: %s", what, s);
    return v;
}

static double opt_double(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < 0)
        die("bad %s: %s", what, s);
    return v;
}

/* The body hash: 64-bit little-endian words, multiply-rotate mixing, in four
 * independent lanes (word i goes to lane i % 4) so the CPU overlaps the
 * multiplies: one lane was a serial chain and 23% of the client's bulk CPU.
 * The same code writes (genmsg) and checks it. */
#define BH_LANES 4
struct bhash {
    uint64_t h[BH_LANES], n;
    uint8_t tail[8 * BH_LANES];
    unsigned tl;
};

static inline uint64_t bh_mix(uint64_t h, uint64_t w)
{
    h ^= w * 0x9E3779B97F4A7C15ull;
    h = (h << 27) | (h >> 37);
    return h * 0xff51afd7ed558ccdull + 0x632be59bd9b4e019ull;
}

static void bh_init(struct bhash *b)
{
    memset(b, 0, sizeof(*b));
    for (int i = 0; i < BH_LANES; i++)
        b->h[i] = 0x243F6A8885A308D3ull + (uint64_t)i;
}

static inline void bh_block(struct bhash *b, const uint8_t *p)
{
    for (int i = 0; i < BH_LANES; i++) {
        uint64_t w;
        memcpy(&w, p + 8 * i, 8);
        b->h[i] = bh_mix(b->h[i], w);
    }
}

static void bh_feed(struct bhash *b, const void *data, size_t n)
{
    const uint8_t *p = data;
    b->n += n;
    if (b->tl > 0) {
        size_t k = sizeof(b->tail) - b->tl < n ? sizeof(b->tail) - b->tl : n;
        memcpy(b->tail + b->tl, p, k);
        b->tl += (unsigned)k;
        p += k;
        n -= k;
        if (b->tl < sizeof(b->tail))
            return;
        bh_block(b, b->tail);
        b->tl = 0;
    }
    for (; n >= sizeof(b->tail); p += sizeof(b->tail), n -= sizeof(b->tail))
        bh_block(b, p);
    memcpy(b->tail, p, n);
    b->tl = (unsigned)n;
}

static uint64_t bh_final(const struct bhash *b)
{
    uint8_t last[sizeof(b->tail)] = {0};
    memcpy(last, b->tail, b->tl);
    struct bhash t = *b;
    bh_block(&t, last);
    uint64_t h = t.n;
    for (int i = 0; i < BH_LANES; i++)
        h = bh_mix(h, t.h[i]);
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 33;
    return h;
}

/* "%u" in fmt becomes n; anything else is copied. */
static void user_name(char *out, size_t cap, const char *fmt, uint64_t n)
{
    size_t o = 0;
    for (const char *p = fmt; *p && o + 1 < cap; p++) {
        if (p[0] == '%' && p[1] == 'u') {
            int k = snprintf(out + o, cap - o, "%" PRIu64, n);
            if (k < 0 || (size_t)k >= cap - o)
                die("user name too long");
            o += (size_t)k;
            p++;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* ---------------------------------------------------------------- options */

enum mode { M_SESSION, M_BULK, M_IDLE, M_HANDSHAKE, M_SERVE, M_GENMSG, M_PASSWD };

static struct {
    enum mode mode;
    const char *host, *sni, *ca, *user_fmt, *password, *label, *ready_file, *cert, *key, *out;
    unsigned port, clients;
    uint64_t count, nusers, first_user, bulk_msgs, max_errors, gen_size, gen_index;
    double duration, warmup, timeout;
    long long expect_msgs, expect_octets;
    bool require_check, duration_set, count_set, resume, slow_cert_decode, distinct_users;
    long tickets;
} O = {
    .host = "127.0.0.1",
    .sni = "localhost",
    .user_fmt = "u%u@bench.example",
    .password = NULL,
    .label = "run",
    .clients = 1,
    .first_user = 1,
    .bulk_msgs = 200,
    .max_errors = 1000,
    .timeout = 30,
    .expect_msgs = -1,
    .expect_octets = -1,
    .require_check = true,
    .tickets = -1,
};

static void usage(void)
{
    fputs("usage: popsbench session|bulk|idle|handshake|serve|genmsg|passwd [options]\n"
          "  -H HOST  -p PORT  -c CLIENTS  -d SECONDS  -n COUNT  -w WARMUP  -t TIMEOUT\n"
          "  -u USERFMT (%u = number)  -U NUSERS  -B FIRST  -P PASSWORD  -e STAT_MSGS  -E STAT_OCTETS\n"
          "  -m BULK_MSGS  -l LABEL  --sni NAME  --ca FILE  --ready-file FILE  --max-errors N  --no-check\n"
          "  --provider-cert-decode (clients: OpenSSL 3.0's slow decoder path, as before)\n"
          "  session: --distinct-users (every session the next user, FIRST .. FIRST+NUSERS-1: cold logins)\n"
          "  handshake: --resume   serve: --cert FILE --key FILE [--tickets N]   genmsg: -s BYTES -i INDEX -o FILE   passwd: -B FIRST -N COUNT\n",
          stderr);
    exit(2);
}

static void parse_args(int argc, char **argv)
{
    if (argc < 2)
        usage();
    static const struct {
        const char *name;
        enum mode m;
    } modes[] = {{"session", M_SESSION}, {"bulk", M_BULK},       {"idle", M_IDLE},    {"handshake", M_HANDSHAKE},
                 {"serve", M_SERVE},     {"genmsg", M_GENMSG}, {"passwd", M_PASSWD}};
    bool found = false;
    for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++)
        if (strcmp(argv[1], modes[i].name) == 0) {
            O.mode = modes[i].m;
            found = true;
        }
    if (!found)
        usage();
    enum { OPT_SNI = 256, OPT_CA, OPT_READY, OPT_MAXERR, OPT_NOCHECK, OPT_CERT, OPT_KEY, OPT_RESUME, OPT_TICKETS, OPT_SLOWDEC, OPT_DISTINCT };
    static const struct option lo[] = {
        {"sni", required_argument, NULL, OPT_SNI},         {"ca", required_argument, NULL, OPT_CA},
        {"ready-file", required_argument, NULL, OPT_READY}, {"max-errors", required_argument, NULL, OPT_MAXERR},
        {"no-check", no_argument, NULL, OPT_NOCHECK},      {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},         {"resume", no_argument, NULL, OPT_RESUME},
        {"tickets", required_argument, NULL, OPT_TICKETS}, {"provider-cert-decode", no_argument, NULL, OPT_SLOWDEC},
        {"distinct-users", no_argument, NULL, OPT_DISTINCT},
        {NULL, 0, NULL, 0}};
    optind = 2;
    int ch;
    while ((ch = getopt_long(argc, argv, "H:p:c:d:n:w:t:u:U:B:P:e:E:m:l:s:i:o:N:", lo, NULL)) != -1) {
        switch (ch) {
        case 'H': O.host = optarg; break;
        case 'p': O.port = (unsigned)opt_u64(optarg, "port"); break;
        case 'c': O.clients = (unsigned)opt_u64(optarg, "clients"); break;
        case 'd': O.duration = opt_double(optarg, "duration"); O.duration_set = true; break;
        case 'n': case 'N': O.count = opt_u64(optarg, "count"); O.count_set = true; break;
        case 'w': O.warmup = opt_double(optarg, "warmup"); break;
        case 't': O.timeout = opt_double(optarg, "timeout"); break;
        case 'u': O.user_fmt = optarg; break;
        case 'U': O.nusers = opt_u64(optarg, "user count"); break;
        case 'B': O.first_user = opt_u64(optarg, "first user"); break;
        case 'P': O.password = optarg; break;
        case 'e': O.expect_msgs = (long long)opt_u64(optarg, "expected messages"); break;
        case 'E': O.expect_octets = (long long)opt_u64(optarg, "expected octets"); break;
        case 'm': O.bulk_msgs = opt_u64(optarg, "bulk messages"); break;
        case 'l': O.label = optarg; break;
        case 's': O.gen_size = opt_u64(optarg, "size"); break;
        case 'i': O.gen_index = opt_u64(optarg, "index"); break;
        case 'o': O.out = optarg; break;
        case OPT_SNI: O.sni = optarg[0] ? optarg : NULL; break;
        case OPT_CA: O.ca = optarg; break;
        case OPT_READY: O.ready_file = optarg; break;
        case OPT_MAXERR: O.max_errors = opt_u64(optarg, "max errors"); break;
        case OPT_NOCHECK: O.require_check = false; break;
        case OPT_CERT: O.cert = optarg; break;
        case OPT_KEY: O.key = optarg; break;
        case OPT_RESUME: O.resume = true; break;
        case OPT_SLOWDEC: O.slow_cert_decode = true; break;
        case OPT_DISTINCT: O.distinct_users = true; break;
        case OPT_TICKETS: O.tickets = (long)opt_u64(optarg, "tickets"); break;
        default: usage();
        }
    }
    if (optind != argc)
        usage();
    for (const char *p = O.label; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_' || *p == '.'))
            die("label: letters, digits, '-', '_', '.' only");
    if (O.clients == 0 || O.clients > MAX_CLIENTS)
        die("clients must be 1..%d", MAX_CLIENTS);
    if (O.mode != M_GENMSG && O.mode != M_PASSWD && (O.port == 0 || O.port > 65535))
        die("-p PORT is required");
    bool needs_login = O.mode == M_SESSION || O.mode == M_BULK || O.mode == M_IDLE;
    if ((needs_login || O.mode == M_PASSWD) && O.password == NULL)
        die("-P PASSWORD is required");
    if (O.password != NULL && strlen(O.password) > 200)
        die("password too long");
    if (strlen(O.user_fmt) > 200)
        die("user format too long");
    if (O.nusers == 0)
        O.nusers = O.clients;
    if ((O.mode == M_SESSION || O.mode == M_HANDSHAKE) && !O.duration_set && !O.count_set)
        O.duration = 10, O.duration_set = true;
    if (O.mode == M_IDLE) {
        if (!O.count_set || O.count == 0 || O.count > MAX_CLIENTS)
            die("idle: -n SESSIONS (1..%d) is required", MAX_CLIENTS);
        if (!O.duration_set)
            O.duration = 600; /* the longest hold, a safety bound */
        if (O.clients > O.count)
            O.clients = (unsigned)O.count;
    }
    if (O.mode == M_BULK)
        O.clients = 1;
    if (O.mode == M_SERVE && (O.cert == NULL || O.key == NULL))
        die("serve: --cert and --key are required");
    if (O.mode == M_GENMSG && (O.gen_size == 0 || O.out == NULL))
        die("genmsg: -s BYTES and -o FILE are required");
    if (O.mode == M_PASSWD && !O.count_set)
        die("passwd: -N COUNT is required");
}

/* ---------------------------------------------------------------- client state */

enum cstate {
    ST_FREE,
    ST_CONNECTING,
    ST_HANDSHAKE,
    ST_GREETING,
    ST_CAPA,
    ST_USER,
    ST_PASS,
    ST_STAT,
    ST_UIDL,
    ST_LIST1,
    ST_LIST,
    ST_RETR,
    ST_QUIT,
    ST_IDLE,
    ST_HS_GREETING,
};

static const char *const state_names[] = {"free", "connect", "handshake", "greeting", "capa",
                                          "user", "pass",    "stat",      "uidl",     "list1",
                                          "list", "retr",    "quit",      "idle",     "greeting"};

enum ekind { E_CONNECT, E_TLS, E_TIMEOUT, E_EOF, E_ERR_REPLY, E_PROTO, E_STAT, E_SIZE, E_CHECK, E_DROPPED, E_COUNT };
static const char *const ekind_names[] = {"connect", "tls",  "timeout", "eof",   "err_reply",
                                          "proto",   "stat", "size",    "check", "dropped"};

struct conn {
    int fd;
    SSL *ssl;
    enum cstate st;
    uint32_t slot;
    uint64_t user;
    uint32_t epmask;
    uint64_t t_start, t_last;
    bool ml;             /* inside a multi-line response */
    char out[CMD_MAX];
    size_t out_len;
    char carry[LINE_MAX_LEN];
    size_t carry_len;
    uint64_t stat_n, stat_octets;
    uint64_t ml_lines; /* data lines of the current multi-line response */
    uint64_t *sizes;   /* bulk: LIST sizes, index 1..stat_n */
    uint64_t list1;    /* the size of the message being retrieved */
    uint64_t retr_no;  /* which message RETR is fetching */
    uint64_t retr_bytes, retr_total;
    uint64_t t_retr;
    bool in_body, have_check, capa_user;
    uint64_t chk_size, chk_hash, body_bytes;
    struct bhash bh;
    const char *span;  /* hashed lines not yet fed: contiguous bytes of the read buffer */
    size_t span_len;
};

static struct {
    SSL_CTX *ctx;
    int ep;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct conn *conns;
    uint32_t nconns;
    uint64_t started, done, errors, ekinds[E_COUNT], err_shown;
    uint64_t warm_done;
    uint64_t t0, t_measure, t_end, t_last_done;
    bool stopping; /* no new sessions */
    uint64_t *lat;
    size_t nlat, caplat;
    uint64_t *lat_retr;
    size_t nlat_retr, caplat_retr;
    uint64_t bytes;     /* message octets retrieved in the measured window */
    uint64_t bulk_t0, bulk_t1;
    char tls_version[32], tls_cipher[64], tls_group[32], cert_desc[96];
    uint32_t *restart, *restart_now;
    SSL_SESSION **sess; /* --resume: the session each slot offers next */
    uint64_t resumed;
    size_t nrestart;
    /* idle */
    uint64_t idle_up, idle_est, idle_next, idle_quit_ok;
    bool idle_ready, idle_quitting;
    uint64_t t_ready;
    unsigned char rbuf[READ_CHUNK];
} G;

static volatile sig_atomic_t got_signal;

static void on_signal(int sig)
{
    got_signal = sig;
}

static void lat_add(uint64_t **v, size_t *n, size_t *cap, uint64_t x)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 4096;
        uint64_t *p = realloc(*v, nc * sizeof(*p));
        if (p == NULL)
            die("out of memory");
        *v = p;
        *cap = nc;
    }
    (*v)[(*n)++] = x;
}

static void set_epoll(struct conn *c, uint32_t mask)
{
    if (c->epmask == mask)
        return;
    struct epoll_event ev = {.events = mask, .data.u32 = c->slot};
    if (epoll_ctl(G.ep, c->epmask == 0 ? EPOLL_CTL_ADD : EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->epmask = mask;
}

static void conn_close(struct conn *c, bool clean)
{
    if (c->ssl != NULL) {
        if (clean)
            (void)SSL_shutdown(c->ssl); /* one close_notify; we do not wait for the peer's */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd); /* also removes it from the epoll set */
    ERR_clear_error();
    free(c->sizes);
    uint32_t slot = c->slot;
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->slot = slot;
    c->st = ST_FREE;
}

static void schedule_restart(struct conn *c)
{
    if (O.mode == M_SESSION || O.mode == M_HANDSHAKE)
        G.restart[G.nrestart++] = c->slot;
}

__attribute__((format(printf, 3, 4))) static void fail(struct conn *c, enum ekind k, const char *fmt, ...)
{
    G.errors++;
    G.ekinds[k]++;
    if (G.err_shown < ERR_DETAIL_SHOWN) {
        G.err_shown++;
        char user[256] = "-";
        if (O.mode != M_HANDSHAKE)
            user_name(user, sizeof(user), O.user_fmt, c->user);
        char detail[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(detail, sizeof(detail), fmt, ap);
        va_end(ap);
        unsigned long e = ERR_peek_error();
        char ebuf[200] = "";
        if (e != 0)
            ERR_error_string_n(e, ebuf, sizeof(ebuf));
        fprintf(stderr, "popsbench: error kind=%s state=%s user=%s: %s%s%s\n", ekind_names[k], state_names[c->st],
                user, detail, ebuf[0] ? " / " : "", ebuf);
    }
    if (O.mode == M_IDLE) {
        if (c->st == ST_IDLE)
            G.idle_up--; /* dropped while held */
        else
            G.done++; /* a finished set-up attempt, counted towards "all set up" */
    }
    conn_close(c, false);
    schedule_restart(c);
    if (G.errors >= O.max_errors && !G.stopping) {
        fprintf(stderr, "popsbench: %" PRIu64 " errors, stopping\n", G.errors);
        G.stopping = true;
    }
}

/* Sends (or queues) one command line. */
__attribute__((format(printf, 2, 3))) static void send_cmd(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(c->out, sizeof(c->out) - 2, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(c->out) - 2)
        die("command too long");
    memcpy(c->out + n, "\r\n", 2);
    c->out_len = (size_t)n + 2;
    c->ml = false;
    c->ml_lines = 0;
}

static void start_conn(uint32_t slot);

static void session_done(struct conn *c)
{
    uint64_t t = now_ns();
    G.done++;
    if (O.mode == M_SESSION || O.mode == M_HANDSHAKE) {
        if (t >= G.t_measure && c->t_start >= G.t_measure) {
            lat_add(&G.lat, &G.nlat, &G.caplat, t - c->t_start);
            G.bytes += c->retr_total;
            G.t_last_done = t;
        } else {
            G.warm_done++;
        }
    } else {
        G.bytes += c->retr_total;
        G.t_last_done = t;
    }
    conn_close(c, true);
    schedule_restart(c);
}

static void record_tls(struct conn *c)
{
    if (G.tls_version[0])
        return;
    snprintf(G.tls_version, sizeof(G.tls_version), "%s", SSL_get_version(c->ssl));
    snprintf(G.tls_cipher, sizeof(G.tls_cipher), "%s", SSL_get_cipher_name(c->ssl));
    int nid = SSL_get_negotiated_group(c->ssl);
    const char *g = nid ? OBJ_nid2sn(nid & ~TLSEXT_nid_unknown) : NULL;
    snprintf(G.tls_group, sizeof(G.tls_group), "%s", g ? g : "?");
    X509 *x = SSL_get0_peer_certificate(c->ssl);
    if (x != NULL) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        X509_digest(x, EVP_sha256(), md, &mdlen);
        EVP_PKEY *pk = X509_get0_pubkey(x);
        char fp[17] = "";
        for (unsigned i = 0; i < 8 && i < mdlen; i++)
            snprintf(fp + 2 * i, 3, "%02x", md[i]);
        snprintf(G.cert_desc, sizeof(G.cert_desc), "%s-%d sha256:%s", pk ? EVP_PKEY_get0_type_name(pk) : "?",
                 pk ? EVP_PKEY_get_bits(pk) : 0, fp);
    }
}

/* "+OK" alone or followed by a space. */
static bool is_ok(const char *p, size_t n)
{
    return n >= 5 && memcmp(p, "+OK", 3) == 0 && (p[3] == ' ' || (p[3] == '\r' && n == 5));
}

/* Splits a "+OK a b" reply into two numbers; strict. */
static bool two_numbers(const char *p, size_t n, uint64_t *a, uint64_t *b)
{
    /* p = "+OK A B ...\r\n" */
    if (n < 8)
        return false;
    const char *s = p + 4, *end = p + n - 2;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (sp == NULL || !parse_u64(s, (size_t)(sp - s), a))
        return false;
    const char *t = sp + 1;
    const char *sp2 = memchr(t, ' ', (size_t)(end - t));
    const char *e2 = sp2 ? sp2 : end;
    return parse_u64(t, (size_t)(e2 - t), b);
}

/* A data line "A B" of a multi-line LIST/UIDL answer, without CRLF. For UIDL, b_text is set. */
static bool data_pair(const char *p, size_t n, uint64_t *a, const char **b, size_t *blen)
{
    const char *sp = memchr(p, ' ', n);
    if (sp == NULL || !parse_u64(p, (size_t)(sp - p), a))
        return false;
    *b = sp + 1;
    *blen = n - (size_t)(sp - p) - 1;
    return *blen > 0;
}

/* Feeds the pending span of body lines to the hash. Lines arrive one by one,
 * but consecutive lines that sit back to back in the read buffer are hashed as
 * one run: the per-line tail handling of the hash was a fifth of the client's
 * bulk CPU. The hash is defined on the byte stream, so the result is the same. */
static void span_flush(struct conn *c)
{
    if (c->span_len > 0)
        bh_feed(&c->bh, c->span, c->span_len);
    c->span_len = 0;
}

/* p..p+n is read-buffer memory that stays put until feed() returns; the carry
 * buffer does not (the caller flushes for it). */
static void span_add(struct conn *c, const char *p, size_t n)
{
    if (c->span_len > 0 && c->span + c->span_len == p) {
        c->span_len += n;
        return;
    }
    span_flush(c);
    c->span = p;
    c->span_len = n;
}

static void retr_begin(struct conn *c, uint64_t msgno, uint64_t size)
{
    c->retr_no = msgno;
    c->list1 = size;
    c->retr_bytes = 0;
    c->in_body = false;
    c->have_check = false;
    c->body_bytes = 0;
    bh_init(&c->bh);
    c->span_len = 0;
    c->t_retr = now_ns();
    send_cmd(c, "RETR %" PRIu64, msgno);
    c->st = ST_RETR;
}

/* The end of a RETR: every check. Returns false after failing the conn. */
static bool retr_end(struct conn *c)
{
    if (c->retr_bytes != c->list1) {
        fail(c, E_SIZE, "RETR %" PRIu64 " gave %" PRIu64 " octets, LIST said %" PRIu64, c->retr_no, c->retr_bytes,
             c->list1);
        return false;
    }
    span_flush(c);
    if (c->have_check) {
        uint64_t h = bh_final(&c->bh);
        if (c->body_bytes != c->chk_size || h != c->chk_hash) {
            fail(c, E_CHECK, "RETR %" PRIu64 ": %" PRIu64 " octets hash %016" PRIx64 ", expected %" PRIu64
                             " / %016" PRIx64, c->retr_no, c->body_bytes, h, c->chk_size, c->chk_hash);
            return false;
        }
    } else if (O.require_check) {
        fail(c, E_CHECK, "RETR %" PRIu64 ": no X-Bench-Check header", c->retr_no);
        return false;
    }
    c->retr_total += c->retr_bytes;
    if (O.mode == M_BULK)
        lat_add(&G.lat_retr, &G.nlat_retr, &G.caplat_retr, now_ns() - c->t_retr);
    return true;
}

/* One line of a RETR answer, dot-stuffing undone, CRLF included. Every line
 * but the X-Bench-Check header itself goes into the check. */
static void retr_line(struct conn *c, const char *p, size_t n)
{
    c->retr_bytes += n;
    static const char hdr[] = "X-Bench-Check: ";
    if (c->in_body || c->have_check || n <= sizeof(hdr) - 1 || memcmp(p, hdr, sizeof(hdr) - 1) != 0) {
        if (n == 2)
            c->in_body = true;
        span_add(c, p, n);
        c->body_bytes += n;
        return;
    }
    span_flush(c); /* the check line itself is not hashed */
    const char *s = p + sizeof(hdr) - 1, *end = p + n - 2;
    const char *sp = memchr(s, ' ', (size_t)(end - s));
    if (sp != NULL && parse_u64(s, (size_t)(sp - s), &c->chk_size) && end - sp == 17) {
        char hex[17];
        memcpy(hex, sp + 1, 16);
        hex[16] = '\0';
        char *e;
        c->chk_hash = strtoull(hex, &e, 16);
        c->have_check = *e == '\0';
    }
}

enum { LINE_OK = 0, LINE_SENT = 1, LINE_GONE = -1 };

/* One complete line (CRLF included) in state c->st. */
static int on_line(struct conn *c, const char *p, size_t n)
{
    if (n < 2 || p[n - 2] != '\r') {
        fail(c, E_PROTO, "line not ended by CRLF");
        return LINE_GONE;
    }
    /* Multi-line responses: data lines and the terminating dot. */
    if (c->ml) {
        bool end = n == 3 && p[0] == '.';
        if (!end && p[0] == '.') {
            p++;
            n--;
        }
        switch (c->st) {
        case ST_CAPA:
            if (end) {
                if (!c->capa_user) {
                    fail(c, E_PROTO, "CAPA does not list USER");
                    return LINE_GONE;
                }
                char user[256];
                user_name(user, sizeof(user), O.user_fmt, c->user);
                send_cmd(c, "USER %s", user);
                c->st = ST_USER;
                return LINE_SENT;
            }
            if (n == 6 && memcmp(p, "USER\r\n", 6) == 0)
                c->capa_user = true;
            if (++c->ml_lines > 100) {
                fail(c, E_PROTO, "CAPA longer than 100 lines");
                return LINE_GONE;
            }
            return LINE_OK;
        case ST_UIDL: {
            if (end) {
                if (c->ml_lines != c->stat_n) {
                    fail(c, E_PROTO, "UIDL listed %" PRIu64 " messages, STAT said %" PRIu64, c->ml_lines,
                         c->stat_n);
                    return LINE_GONE;
                }
                if (c->stat_n == 0) {
                    send_cmd(c, "QUIT");
                    c->st = ST_QUIT;
                } else {
                    send_cmd(c, "LIST 1");
                    c->st = ST_LIST1;
                }
                return LINE_SENT;
            }
            uint64_t k;
            const char *u;
            size_t ul;
            bool good = data_pair(p, n - 2, &k, &u, &ul) && k == c->ml_lines + 1 && ul <= 70;
            for (size_t i = 0; good && i < ul; i++)
                good = u[i] >= 0x21 && u[i] <= 0x7e;
            if (!good) {
                fail(c, E_PROTO, "bad UIDL line %" PRIu64, c->ml_lines + 1);
                return LINE_GONE;
            }
            c->ml_lines++;
            return LINE_OK;
        }
        case ST_LIST: {
            if (end) {
                if (c->ml_lines != c->stat_n) {
                    fail(c, E_PROTO, "LIST listed %" PRIu64 " messages, STAT said %" PRIu64, c->ml_lines,
                         c->stat_n);
                    return LINE_GONE;
                }
                uint64_t sum = 0;
                for (uint64_t i = 1; i <= c->stat_n; i++)
                    sum += c->sizes[i];
                if (sum != c->stat_octets) {
                    fail(c, E_STAT, "LIST sizes sum to %" PRIu64 ", STAT said %" PRIu64, sum, c->stat_octets);
                    return LINE_GONE;
                }
                G.bulk_t0 = now_ns();
                retr_begin(c, 1, c->sizes[1]);
                return LINE_SENT;
            }
            uint64_t k, sz;
            const char *s;
            size_t sl;
            if (!data_pair(p, n - 2, &k, &s, &sl) || k != c->ml_lines + 1 || k > c->stat_n ||
                !parse_u64(s, sl, &sz)) {
                fail(c, E_PROTO, "bad LIST line %" PRIu64, c->ml_lines + 1);
                return LINE_GONE;
            }
            c->sizes[k] = sz;
            c->ml_lines++;
            return LINE_OK;
        }
        case ST_RETR:
            if (!end) {
                retr_line(c, p, n);
                return LINE_OK;
            }
            if (!retr_end(c))
                return LINE_GONE;
            if (O.mode == M_BULK && c->retr_no < O.bulk_msgs) {
                retr_begin(c, c->retr_no + 1, c->sizes[c->retr_no + 1]);
                return LINE_SENT;
            }
            if (O.mode == M_BULK)
                G.bulk_t1 = now_ns();
            send_cmd(c, "QUIT");
            c->st = ST_QUIT;
            return LINE_SENT;
        default:
            fail(c, E_PROTO, "multi-line answer in a single-line state");
            return LINE_GONE;
        }
    }

    /* First (or only) line of a response. */
    if (n >= 4 && memcmp(p, "-ERR", 4) == 0) {
        char q[120];
        size_t k = n - 2 < sizeof(q) - 1 ? n - 2 : sizeof(q) - 1;
        for (size_t i = 0; i < k; i++)
            q[i] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
        q[k] = '\0';
        fail(c, E_ERR_REPLY, "%s", q);
        return LINE_GONE;
    }
    if (!is_ok(p, n)) {
        fail(c, E_PROTO, "neither +OK nor -ERR");
        return LINE_GONE;
    }
    switch (c->st) {
    case ST_HS_GREETING:
        if (O.resume) {
            /* TLS 1.3 tickets arrive after the handshake; the greeting came after them. */
            G.resumed += SSL_session_reused(c->ssl) == 1;
            SSL_SESSION *ns = SSL_get1_session(c->ssl);
            if (ns != NULL && SSL_SESSION_is_resumable(ns)) {
                SSL_SESSION_free(G.sess[c->slot]);
                G.sess[c->slot] = ns;
            } else {
                SSL_SESSION_free(ns);
            }
        }
        session_done(c);
        return LINE_GONE;
    case ST_GREETING:
        send_cmd(c, "CAPA");
        c->st = ST_CAPA;
        return LINE_SENT;
    case ST_CAPA:
    case ST_UIDL:
    case ST_LIST:
    case ST_RETR:
        c->ml = true;
        return LINE_OK;
    case ST_USER:
        send_cmd(c, "PASS %s", O.password);
        c->st = ST_PASS;
        return LINE_SENT;
    case ST_PASS:
        send_cmd(c, "STAT");
        c->st = ST_STAT;
        return LINE_SENT;
    case ST_STAT:
        if (!two_numbers(p, n, &c->stat_n, &c->stat_octets) || c->stat_n > MAX_MSGS) {
            fail(c, E_PROTO, "malformed STAT answer");
            return LINE_GONE;
        }
        if ((O.expect_msgs >= 0 && c->stat_n != (uint64_t)O.expect_msgs) ||
            (O.expect_octets >= 0 && c->stat_octets != (uint64_t)O.expect_octets) ||
            (c->stat_n == 0 && c->stat_octets != 0)) {
            fail(c, E_STAT, "STAT %" PRIu64 " %" PRIu64 ", expected %lld %lld", c->stat_n, c->stat_octets,
                 O.expect_msgs, O.expect_octets);
            return LINE_GONE;
        }
        if (O.mode == M_IDLE) {
            c->st = ST_IDLE;
            G.idle_up++;
            G.idle_est++;
            G.done++;
            return LINE_OK;
        }
        if (O.mode == M_BULK) {
            if (c->stat_n < O.bulk_msgs || c->stat_n < 1) {
                fail(c, E_STAT, "STAT says %" PRIu64 " messages, bulk wants %" PRIu64, c->stat_n, O.bulk_msgs);
                return LINE_GONE;
            }
            c->sizes = xcalloc(c->stat_n + 1, sizeof(uint64_t));
            send_cmd(c, "LIST");
            c->st = ST_LIST;
            return LINE_SENT;
        }
        send_cmd(c, "UIDL");
        c->st = ST_UIDL;
        return LINE_SENT;
    case ST_LIST1: {
        uint64_t k, sz;
        if (!two_numbers(p, n, &k, &sz) || k != 1 || (c->stat_n == 1 && sz != c->stat_octets) ||
            sz > c->stat_octets) {
            fail(c, E_PROTO, "malformed LIST 1 answer");
            return LINE_GONE;
        }
        retr_begin(c, 1, sz);
        return LINE_SENT;
    }
    case ST_QUIT:
        session_done(c);
        return LINE_GONE;
    case ST_IDLE:
        if (G.idle_quitting) {
            G.idle_quit_ok++;
            G.idle_up--;
            conn_close(c, true);
            return LINE_GONE;
        }
        fail(c, E_DROPPED, "unsolicited line while idle");
        return LINE_GONE;
    default:
        fail(c, E_PROTO, "unexpected line");
        return LINE_GONE;
    }
}

/* Splits decrypted bytes into lines. */
static int feed(struct conn *c, const char *buf, size_t len)
{
    c->t_last = now_ns(); /* once per chunk read: a clock call per line was 14% of bulk */
    size_t off = 0;
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t ln = nl ? (size_t)(nl - (buf + off)) + 1 : len - off;
        if (c->carry_len + ln > sizeof(c->carry) && (c->carry_len > 0 || nl == NULL)) {
            fail(c, E_PROTO, "line longer than %d octets", LINE_MAX_LEN);
            return LINE_GONE;
        }
        if (nl == NULL) {
            memcpy(c->carry + c->carry_len, buf + off, ln);
            c->carry_len += ln;
            span_flush(c); /* the read buffer is reused */
            return LINE_OK;
        }
        int r;
        if (c->carry_len > 0) {
            memcpy(c->carry + c->carry_len, buf + off, ln);
            size_t cl = c->carry_len + ln;
            c->carry_len = 0;
            r = on_line(c, c->carry, cl);
            span_flush(c); /* the carry buffer is reused */
        } else {
            r = on_line(c, buf + off, ln);
        }
        off += ln;
        if (r == LINE_GONE)
            return r;
        if (r == LINE_SENT && off < len) {
            fail(c, E_PROTO, "data after the end of a response");
            return LINE_GONE;
        }
    }
    span_flush(c); /* the read buffer is reused */
    return LINE_OK;
}

static void drive(struct conn *c, uint32_t events)
{
    for (;;) {
        if (c->st == ST_CONNECTING) {
            int err = 0;
            socklen_t el = sizeof(err);
            if (events == 0) {
                set_epoll(c, EPOLLOUT);
                return;
            }
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0 || err != 0) {
                fail(c, E_CONNECT, "connect: %s", strerror(err ? err : errno));
                return;
            }
            c->st = ST_HANDSHAKE;
        }
        if (c->st == ST_HANDSHAKE) {
            int r = SSL_connect(c->ssl);
            if (r == 1) {
                c->t_last = now_ns();
                record_tls(c);
                c->st = O.mode == M_HANDSHAKE ? ST_HS_GREETING : ST_GREETING;
                continue;
            }
            int e = SSL_get_error(c->ssl, r);
            if (e == SSL_ERROR_WANT_READ) {
                set_epoll(c, EPOLLIN);
                return;
            }
            if (e == SSL_ERROR_WANT_WRITE) {
                set_epoll(c, EPOLLOUT);
                return;
            }
            fail(c, E_TLS, "handshake failed (ssl error %d)", e);
            return;
        }
        if (c->out_len > 0) {
            int r = SSL_write(c->ssl, c->out, (int)c->out_len);
            if (r > 0) {
                c->out_len = 0;
                c->t_last = now_ns();
            } else {
                int e = SSL_get_error(c->ssl, r);
                if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
                    set_epoll(c, e == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
                    return;
                }
                fail(c, E_EOF, "write failed (ssl error %d)", e);
                return;
            }
        }
        int r = SSL_read(c->ssl, G.rbuf, sizeof(G.rbuf));
        if (r > 0) {
            if (feed(c, (const char *)G.rbuf, (size_t)r) == LINE_GONE)
                return;
            continue;
        }
        int e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            set_epoll(c, EPOLLIN);
            return;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            set_epoll(c, EPOLLOUT);
            return;
        }
        if (c->st == ST_IDLE && !G.idle_quitting)
            fail(c, E_DROPPED, "the server closed an idle session");
        else
            fail(c, E_EOF, "connection closed (ssl error %d)", e);
        return;
    }
}

static void start_conn(uint32_t slot)
{
    struct conn *c = &G.conns[slot];
    memset(c, 0, sizeof(*c));
    c->slot = slot;
    c->fd = -1;
    if (O.mode == M_IDLE)
        c->user = O.first_user + G.idle_next++;
    else if (O.mode == M_BULK)
        c->user = O.first_user;
    else if (O.distinct_users)
        c->user = O.first_user + G.idle_next++ % O.nusers; /* a user not seen before, until NUSERS */
    else
        c->user = O.first_user + slot % O.nusers;
    c->t_start = c->t_last = now_ns();
    G.started++;
    c->st = ST_CONNECTING;
    c->fd = socket(G.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fail(c, E_CONNECT, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    c->ssl = SSL_new(G.ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1)
        die("SSL_new failed");
    if (O.sni != NULL)
        SSL_set_tlsext_host_name(c->ssl, O.sni);
    if (O.resume && G.sess[slot] != NULL)
        SSL_set_session(c->ssl, G.sess[slot]);
    if (connect(c->fd, (struct sockaddr *)&G.addr, G.addrlen) < 0 && errno != EINPROGRESS) {
        fail(c, E_CONNECT, "connect: %s", strerror(errno));
        return;
    }
    c->st = ST_CONNECTING;
    drive(c, 0);
}

static void resolve(void)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *res;
    char port[16];
    snprintf(port, sizeof(port), "%u", O.port);
    int r = getaddrinfo(O.host, port, &hints, &res);
    if (r != 0)
        die("%s: %s", O.host, gai_strerror(r));
    memcpy(&G.addr, res->ai_addr, res->ai_addrlen);
    G.addrlen = res->ai_addrlen;
    freeaddrinfo(res);
}

/* OpenSSL 3.0 decodes every certificate's public key through the provider
 * decoder framework, which builds a fresh decoder chain per certificate: 40%
 * of this client's CPU per handshake (perf), enough to make the client, not
 * the server, the limit. An ENGINE that claims EC keys sends X509 down 3.0's
 * legacy decode path (d2i of the point into an EC_KEY; verification then uses
 * the built-in EC method). Client side only: both servers face the same
 * client, and the CertificateVerify signature is still checked. The ENGINE API
 * is deprecated in 3.0 but present; this is a load generator, not the product. */
#ifndef OPENSSL_NO_ENGINE
#include <openssl/engine.h>
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static int legacy_ec_pkey_meths(ENGINE *e, EVP_PKEY_METHOD **pmeth, const int **nids, int nid)
{
    static const int ids[] = {EVP_PKEY_EC};
    (void)e;
    if (pmeth == NULL) {
        *nids = ids;
        return 1;
    }
    *pmeth = nid == EVP_PKEY_EC ? (EVP_PKEY_METHOD *)EVP_PKEY_meth_find(EVP_PKEY_EC) : NULL;
    return *pmeth != NULL;
}

static void client_fast_cert_decode(void)
{
    ENGINE *e = ENGINE_new();
    if (e == NULL || !ENGINE_set_id(e, "popsbench-legacy-ec") ||
        !ENGINE_set_name(e, "popsbench: legacy EC public key decoding") ||
        !ENGINE_set_pkey_meths(e, legacy_ec_pkey_meths) || !ENGINE_set_default_pkey_meths(e))
        die("cannot set up the legacy EC engine");
    ENGINE_free(e); /* the pkey-method table keeps its own reference */
}
#pragma GCC diagnostic pop
#else
static void client_fast_cert_decode(void)
{
}
#endif

static int skip_chain_check(X509_STORE_CTX *x, void *arg)
{
    (void)x;
    (void)arg;
    return 1;
}

static void client_ctx(void)
{
    if (!O.slow_cert_decode)
        client_fast_cert_decode();
    G.ctx = SSL_CTX_new(TLS_client_method());
    if (G.ctx == NULL)
        die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(G.ctx, TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(G.ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(G.ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (O.mode == M_IDLE) {
        SSL_CTX_set_mode(G.ctx, SSL_MODE_RELEASE_BUFFERS); /* thousands of quiet sessions */
    } else {
        /* Read whatever the socket has (up to 4 records) in one read() instead
         * of a header read and a body read per record: drive() reads until
         * WANT_READ, so nothing waits in OpenSSL's buffer unseen. */
        SSL_CTX_set_read_ahead(G.ctx, 1);
        SSL_CTX_set_default_read_buffer_len(G.ctx, 4 * (16384 + 256));
    }
    /* Every session is a full handshake unless --resume. */
    if (O.resume) {
        SSL_CTX_set_session_cache_mode(G.ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    } else {
        SSL_CTX_set_session_cache_mode(G.ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(G.ctx, SSL_OP_NO_TICKET);
    }
    if (O.ca != NULL) {
        if (SSL_CTX_load_verify_locations(G.ctx, O.ca, NULL) != 1)
            die("cannot load CA file %s", O.ca);
        SSL_CTX_set_verify(G.ctx, SSL_VERIFY_PEER, NULL);
    } else {
        /* Without --ca the chain is not checked; the handshake signature
         * (CertificateVerify) still is, as TLS 1.3 always does. OpenSSL would
         * still build and check the chain (X509_verify_cert, 3% of the
         * client's CPU) and then ignore the result: skip that work. */
        SSL_CTX_set_cert_verify_callback(G.ctx, skip_chain_check, NULL);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct_ms(uint64_t *v, size_t n, double q)
{
    if (n == 0)
        return 0;
    size_t k = (size_t)(q * (double)n + 0.999999);
    if (k < 1)
        k = 1;
    if (k > n)
        k = n;
    return (double)v[k - 1] / 1e6;
}

static void print_errors_json(void)
{
    printf("\"errors\":%" PRIu64 ",\"error_kinds\":{", G.errors);
    bool first = true;
    for (int k = 0; k < E_COUNT; k++)
        if (G.ekinds[k] != 0) {
            printf("%s\"%s\":%" PRIu64, first ? "" : ",", ekind_names[k], G.ekinds[k]);
            first = false;
        }
    printf("}");
}

static void print_tls_json(void)
{
    printf(",\"tls\":\"%s\",\"cipher\":\"%s\",\"group\":\"%s\",\"cert\":\"%s\"", G.tls_version, G.tls_cipher,
           G.tls_group, G.cert_desc);
}

/* This process's CPU time so far: how close the load generator itself is to
 * its core's limit (it must stay below it for a rate to be the server's). */
static double self_cpu_s(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) < 0)
        return 0;
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

static void report(void)
{
    const char *mname = O.mode == M_SESSION ? "session" : O.mode == M_BULK ? "bulk" : O.mode == M_IDLE ? "idle"
                                                                                                       : "handshake";
    qsort(G.lat, G.nlat, sizeof(uint64_t), cmp_u64);
    if (O.mode == M_SESSION || O.mode == M_HANDSHAKE) {
        uint64_t t1 = G.t_last_done > G.t_measure ? G.t_last_done : now_ns();
        double secs = (double)(t1 - G.t_measure) / 1e9;
        double rate = secs > 0 ? (double)G.nlat / secs : 0;
        double mbs = secs > 0 ? (double)G.bytes / 1e6 / secs : 0;
        printf("{\"tool\":\"popsbench\",\"mode\":\"%s\",\"label\":\"%s\",\"clients\":%u,\"sessions\":%zu,"
               "\"warmup_sessions\":%" PRIu64 ",\"elapsed_s\":%.3f,\"sessions_per_s\":%.1f,"
               "\"lat_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,\"max\":%.3f},\"retr_bytes\":%" PRIu64
               ",\"mb_per_s\":%.3f,\"client_cpu_s\":%.3f,",
               mname, O.label, O.clients, G.nlat, G.warm_done, secs, rate, pct_ms(G.lat, G.nlat, 0.50),
               pct_ms(G.lat, G.nlat, 0.90), pct_ms(G.lat, G.nlat, 0.99), G.nlat ? (double)G.lat[G.nlat - 1] / 1e6 : 0,
               G.bytes, mbs, self_cpu_s());
        print_errors_json();
        print_tls_json();
        if (O.resume)
            printf(",\"resumed\":%" PRIu64, G.resumed);
        printf("}\n");
        printf("# %s %s: %u clients, %zu sessions in %.2f s = %.1f sessions/s; latency p50 %.2f ms, p90 %.2f ms, "
               "p99 %.2f ms; %.2f MB/s of messages; %" PRIu64 " errors; %s %s %s\n",
               O.label, mname, O.clients, G.nlat, secs, rate, pct_ms(G.lat, G.nlat, 0.50),
               pct_ms(G.lat, G.nlat, 0.90), pct_ms(G.lat, G.nlat, 0.99), mbs, G.errors, G.tls_version, G.tls_cipher,
               G.tls_group);
    } else if (O.mode == M_BULK) {
        qsort(G.lat_retr, G.nlat_retr, sizeof(uint64_t), cmp_u64);
        bool ok = G.bulk_t1 > G.bulk_t0 && G.errors == 0;
        double secs = ok ? (double)(G.bulk_t1 - G.bulk_t0) / 1e9 : 0;
        double mbs = secs > 0 ? (double)G.bytes / 1e6 / secs : 0;
        printf("{\"tool\":\"popsbench\",\"mode\":\"bulk\",\"label\":\"%s\",\"messages\":%zu,\"bytes\":%" PRIu64
               ",\"elapsed_s\":%.3f,\"mb_per_s\":%.2f,\"retr_ms\":{\"p50\":%.3f,\"p99\":%.3f},"
               "\"client_cpu_s\":%.3f,",
               O.label, G.nlat_retr, G.bytes, secs, mbs, pct_ms(G.lat_retr, G.nlat_retr, 0.5),
               pct_ms(G.lat_retr, G.nlat_retr, 0.99), self_cpu_s());
        print_errors_json();
        print_tls_json();
        printf("}\n");
        printf("# %s bulk: %zu messages, %.1f MB in %.3f s = %.1f MB/s; RETR p50 %.2f ms; %" PRIu64 " errors\n", O.label,
               G.nlat_retr, (double)G.bytes / 1e6, secs, mbs, pct_ms(G.lat_retr, G.nlat_retr, 0.5), G.errors);
    } else {
        double setup = G.idle_ready ? (double)(G.t_ready - G.t0) / 1e9 : (double)(now_ns() - G.t0) / 1e9;
        printf("{\"tool\":\"popsbench\",\"mode\":\"idle\",\"label\":\"%s\",\"target\":%" PRIu64
               ",\"established\":%" PRIu64 ",\"setup_s\":%.3f,\"quit_ok\":%" PRIu64 ",",
               O.label, O.count, G.idle_est, setup, G.idle_quit_ok);
        print_errors_json();
        print_tls_json();
        printf("}\n");
        printf("# %s idle: %" PRIu64 " of %" PRIu64 " sessions up after %.2f s, %" PRIu64
               " still answering QUIT at the end; %" PRIu64 " errors\n",
               O.label, G.idle_est, O.count, setup, G.idle_quit_ok, G.errors);
    }
    fflush(stdout);
}

static void check_timeouts(uint64_t t)
{
    uint64_t lim = (uint64_t)(O.timeout * 1e9);
    for (uint32_t i = 0; i < G.nconns; i++) {
        struct conn *c = &G.conns[i];
        if (c->st == ST_FREE || (c->st == ST_IDLE && !G.idle_quitting))
            continue;
        if (t - c->t_last > lim)
            fail(c, E_TIMEOUT, "no progress for %.0f s", O.timeout);
    }
}

static uint32_t active_conns(void)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < G.nconns; i++)
        n += G.conns[i].st != ST_FREE;
    return n;
}

static void idle_ready(void)
{
    G.idle_ready = true;
    G.t_ready = now_ns();
    printf("READY %" PRIu64 " of %" PRIu64 " in %.2f s\n", G.idle_up, O.count, (double)(G.t_ready - G.t0) / 1e9);
    fflush(stdout);
    if (O.ready_file != NULL) {
        FILE *f = fopen(O.ready_file, "w");
        if (f == NULL)
            die("%s: %s", O.ready_file, strerror(errno));
        fprintf(f, "%" PRIu64 "\n", G.idle_up);
        fclose(f);
    }
}

static void idle_quit_all(void)
{
    G.idle_quitting = true;
    uint64_t t = now_ns();
    for (uint32_t i = 0; i < G.nconns; i++) {
        struct conn *c = &G.conns[i];
        if (c->st != ST_IDLE)
            continue;
        c->t_last = t;
        send_cmd(c, "QUIT");
        drive(c, EPOLLOUT);
    }
}

static int run_client(void)
{
    resolve();
    client_ctx();
    G.ep = epoll_create1(EPOLL_CLOEXEC);
    if (G.ep < 0)
        die("epoll_create1: %s", strerror(errno));
    G.nconns = O.mode == M_IDLE ? (uint32_t)O.count : O.clients;
    G.conns = xcalloc(G.nconns, sizeof(struct conn));
    G.restart = xcalloc(G.nconns, sizeof(uint32_t));
    G.restart_now = xcalloc(G.nconns, sizeof(uint32_t));
    G.sess = xcalloc(G.nconns, sizeof(SSL_SESSION *));
    for (uint32_t i = 0; i < G.nconns; i++) {
        G.conns[i].fd = -1;
        G.conns[i].slot = i;
    }
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGUSR1, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    G.t0 = now_ns();
    G.t_measure = G.t0 + (uint64_t)(O.warmup * 1e9);
    /* In idle mode -d bounds the hold, not the set-up (that is bounded by -t per session). */
    G.t_end = O.duration_set && O.mode != M_IDLE ? G.t_measure + (uint64_t)(O.duration * 1e9) : UINT64_MAX;
    uint64_t hold_end = UINT64_MAX;
    unsigned initial = O.mode == M_IDLE ? O.clients : G.nconns;
    for (uint32_t i = 0; i < initial; i++)
        start_conn(i);
    uint32_t next_idle_slot = initial;

    struct epoll_event evs[512];
    uint64_t last_scan = G.t0;
    for (;;) {
        int n = epoll_wait(G.ep, evs, 512, 50);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = &G.conns[evs[i].data.u32];
            if (c->st != ST_FREE)
                drive(c, evs[i].events);
        }
        uint64_t t = now_ns();
        if (t - last_scan > 200000000u) {
            check_timeouts(t);
            last_scan = t;
        }
        if (t >= G.t_end || (O.count_set && O.mode != M_IDLE && G.started >= O.count))
            G.stopping = true;
        if (O.mode == M_SESSION || O.mode == M_HANDSHAKE) {
            /* Restarts that fail at once queue themselves again for the next turn. */
            size_t k = G.nrestart;
            memcpy(G.restart_now, G.restart, k * sizeof(uint32_t));
            G.nrestart = 0;
            for (size_t j = 0; j < k; j++)
                if (!G.stopping && !(O.count_set && G.started >= O.count))
                    start_conn(G.restart_now[j]);
            if (G.stopping && active_conns() == 0)
                break;
        } else if (O.mode == M_BULK) {
            G.nrestart = 0;
            if (active_conns() == 0)
                break;
        } else { /* idle */
            while (!G.stopping && !G.idle_ready && next_idle_slot < G.nconns &&
                   (G.started - G.done) < O.clients)
                start_conn(next_idle_slot++);
            if (!G.idle_ready && G.done >= O.count) {
                idle_ready();
                hold_end = t + (uint64_t)(O.duration * 1e9);
            }
            if (G.stopping && !G.idle_ready)
                break;
            if (G.idle_ready && !G.idle_quitting && (got_signal || t >= hold_end))
                idle_quit_all();
            if (G.idle_quitting && active_conns() == 0)
                break;
        }
        if (got_signal && O.mode != M_IDLE)
            G.stopping = true;
    }
    report();
    return G.errors == 0 ? 0 : 1;
}

/* ---------------------------------------------------------------- serve */

struct sconn {
    int fd;
    SSL *ssl;
    int st; /* 0 handshake, 1 greeting, 2 wait for close */
};

static int run_serve(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        die("SSL_CTX_new failed");
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (O.tickets >= 0)
        SSL_CTX_set_num_tickets(ctx, (size_t)O.tickets);
    if (SSL_CTX_use_certificate_chain_file(ctx, O.cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, O.key, SSL_FILETYPE_PEM) != 1)
        die("cannot load %s / %s", O.cert, O.key);
    resolve();
    int lfd = socket(G.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&G.addr, G.addrlen) < 0 || listen(lfd, 4096) < 0)
        die("listen on port %u: %s", O.port, strerror(errno));
    int ep = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev);
    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    uint64_t handshakes = 0, failed = 0;
    static const char greet[] = "+OK popsbench\r\n";
    printf("serving on port %u\n", O.port);
    fflush(stdout);
    struct epoll_event evs[256];
    while (!got_signal) {
        int n = epoll_wait(ep, evs, 256, 200);
        for (int i = 0; i < n; i++) {
            struct sconn *s = evs[i].data.ptr;
            if (s == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    s = xcalloc(1, sizeof(*s));
                    s->fd = fd;
                    /* As popsd and Dovecot do: no Nagle wait behind the ticket. */
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    s->ssl = SSL_new(ctx);
                    SSL_set_fd(s->ssl, fd);
                    struct epoll_event e2 = {.events = EPOLLIN, .data.ptr = s};
                    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e2);
                }
                continue;
            }
            bool done = false;
            for (;;) {
                int r, e;
                if (s->st == 0) {
                    r = SSL_accept(s->ssl);
                    if (r == 1) {
                        s->st = 1;
                        handshakes++;
                        continue;
                    }
                } else if (s->st == 1) {
                    r = SSL_write(s->ssl, greet, sizeof(greet) - 1);
                    if (r > 0) {
                        s->st = 2;
                        continue;
                    }
                } else {
                    r = SSL_read(s->ssl, G.rbuf, sizeof(G.rbuf));
                    if (r > 0)
                        continue;
                }
                e = SSL_get_error(s->ssl, r);
                if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
                    struct epoll_event e2 = {.events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT, .data.ptr = s};
                    epoll_ctl(ep, EPOLL_CTL_MOD, s->fd, &e2);
                    break;
                }
                if (s->st == 0)
                    failed++;
                done = true;
                break;
            }
            if (done) {
                SSL_free(s->ssl);
                close(s->fd);
                free(s);
                ERR_clear_error();
            }
        }
    }
    printf("{\"tool\":\"popsbench\",\"mode\":\"serve\",\"handshakes\":%" PRIu64 ",\"failed\":%" PRIu64 "}\n",
           handshakes, failed);
    return 0;
}

/* ---------------------------------------------------------------- genmsg, passwd */

static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1Dull;
}

static int run_genmsg(void)
{
    static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 ,.-";
    size_t cap = O.gen_size + 1024;
    char *body = xcalloc(cap, 1);
    size_t blen = 0, lines = 0;
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ (O.gen_index * 0x100000001B3ull) ^ O.gen_size;
    if (seed == 0)
        seed = 1;
    size_t target = O.gen_size > 400 ? O.gen_size - 400 : 64; /* the header is about 400 octets */
    while (blen < target) {
        size_t len = 40 + (size_t)(rng_next(&seed) % 37);
        if (blen + len + 1 > target)
            len = target - blen > 1 ? target - blen - 1 : 0;
        lines++;
        /* Lines that must be dot-stuffed: a lone ".", "..", and ".text" now and then. */
        if (lines == 3) {
            memcpy(body + blen, ".\n", 2);
            blen += 2;
            continue;
        }
        if (lines == 5) {
            memcpy(body + blen, "..\n", 3);
            blen += 3;
            continue;
        }
        size_t k = 0;
        if (lines % 37 == 0 && len > 0) {
            body[blen] = '.';
            k = 1;
        }
        for (; k < len; k++)
            body[blen + k] = alphabet[rng_next(&seed) % (sizeof(alphabet) - 1)];
        if (len > 0 && body[blen + len - 1] == ' ')
            body[blen + len - 1] = 'x'; /* no trailing white space */
        blen += len;
        body[blen++] = '\n';
    }
    char hdr[1024];
    int hl = snprintf(hdr, sizeof(hdr),
                      "Return-Path: <bench@bench.example>\n"
                      "From: popsbench <bench@bench.example>\n"
                      "To: <user@bench.example>\n"
                      "Subject: popsbench message %" PRIu64 " of %" PRIu64 " octets\n"
                      "Date: Mon, 01 Jan 2024 00:00:00 +0000\n"
                      "Message-ID: <%" PRIu64 ".%" PRIu64 ".popsbench@bench.example>\n"
                      "MIME-Version: 1.0\n"
                      "Content-Type: text/plain; charset=us-ascii\n",
                      O.gen_index, O.gen_size, O.gen_index, O.gen_size);
    if (hl < 0 || (size_t)hl >= sizeof(hdr) - 2)
        die("header too long");
    memcpy(hdr + hl, "\n", 2); /* the empty line that ends the header */
    hl++;
    /* Size and hash of everything but the check line, as it travels: LF -> CRLF. */
    struct bhash bh;
    bh_init(&bh);
    uint64_t wire = 0;
    const char *parts[2] = {hdr, body};
    size_t lens[2] = {(size_t)hl, blen};
    for (int k = 0; k < 2; k++) {
        size_t s = 0;
        for (size_t i = 0; i < lens[k]; i++)
            if (parts[k][i] == '\n') {
                bh_feed(&bh, parts[k] + s, i - s);
                bh_feed(&bh, "\r\n", 2);
                wire += i - s + 2;
                s = i + 1;
            }
    }
    char chk[96];
    int cl = snprintf(chk, sizeof(chk), "X-Bench-Check: %" PRIu64 " %016" PRIx64 "\n", wire, bh_final(&bh));
    FILE *f = fopen(O.out, "wb");
    if (f == NULL)
        die("%s: %s", O.out, strerror(errno));
    /* The check line goes last in the header, before the empty line. */
    if (fwrite(hdr, 1, (size_t)hl - 1, f) != (size_t)hl - 1 || fwrite(chk, 1, (size_t)cl, f) != (size_t)cl ||
        fwrite("\n", 1, 1, f) != 1 || fwrite(body, 1, blen, f) != blen || fclose(f) != 0)
        die("%s: write failed", O.out);
    uint64_t file_bytes = (uint64_t)hl + (uint64_t)cl + blen;
    printf("%" PRIu64 " %" PRIu64 "\n", file_bytes, wire + (uint64_t)cl + 1);
    free(body);
    return 0;
}

static int run_passwd(void)
{
    struct crypt_data *cd = xcalloc(1, sizeof(*cd));
    for (uint64_t i = 0; i < O.count; i++) {
        char setting[CRYPT_GENSALT_OUTPUT_SIZE];
        if (crypt_gensalt_rn("$6$", 0, NULL, 0, setting, sizeof(setting)) == NULL)
            die("crypt_gensalt_rn failed");
        const char *h = crypt_rn(O.password, setting, cd, (int)sizeof(*cd));
        if (h == NULL || h[0] != '$')
            die("crypt_rn failed");
        char user[256];
        user_name(user, sizeof(user), O.user_fmt, O.first_user + i);
        printf("%s:{SHA512-CRYPT}%s\n", user, h);
    }
    free(cd);
    return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    parse_args(argc, argv);
    switch (O.mode) {
    case M_GENMSG:
        return run_genmsg();
    case M_PASSWD:
        return run_passwd();
    case M_SERVE:
        return run_serve();
    default:
        return run_client();
    }
}
