/* Protocol and cipher suite enumeration, the way nmap's ssl-enum-ciphers does
 * it: per version and key exchange class, offer every remaining suite, note
 * the one the server picks, take it off the list and ask again, until the
 * server refuses. Each accepted suite gets a handshake of its own, and the
 * connections made are bounded by the suites accepted plus one per class,
 * not by the number known. The server's order is then found separately. */
#include "ctl/audit.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#define LIST_MAX 8192

static uint16_t wire_version(enum audit_ver v)
{
    return (uint16_t)(0x0300 + (int)v);
}

/* Joins the OpenSSL names of offer[i] for which left[i] into out. */
static void build_list(const struct audit_suite *offer, const bool *left, int n, char *out, size_t cap)
{
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (!left[i])
            continue;
        int w = snprintf(out + used, cap - used, "%s%s", used ? ":" : "", offer[i].ossl);
        if (w < 0 || (size_t)w >= cap - used) {
            out[used] = '\0';
            return;
        }
        used += (size_t)w;
    }
}

static int find_left(const struct audit_suite *offer, const bool *left, int n, uint16_t id)
{
    for (int i = 0; i < n; i++)
        if (left[i] && offer[i].id == id)
            return i;
    return -1;
}

static void add_suite(struct audit_proto_res *p, const struct audit_suite *s, const struct tls_probe_res *rs)
{
    if (p->n >= AUDIT_MAX_SUITES)
        return;
    struct audit_suite *d = &p->suites[p->n++];
    *d = *s;
    if (rs != NULL) {
        audit_copy(d->kx, sizeof(d->kx), rs->kx);
        d->kx_bits = rs->kx_bits;
    }
    p->accepted = true;
}

/* Which suite does the server pick when offered its first two choices in
 * the opposite order? */
static void probe_order(struct audit_ctx *a, struct audit_proto_res *p, enum audit_ver v)
{
    if (p->n < 2 || p->suites[0].ossl[0] == '\0' || p->suites[1].ossl[0] == '\0')
        return;
    char list[2 * sizeof(p->suites[0].ossl) + 2];
    snprintf(list, sizeof(list), "%s:%s", p->suites[1].ossl, p->suites[0].ossl);
    struct tls_probe_req rq = {.ver = v, .sni = a->t.sni};
    if (v == AV_TLS13)
        rq.suites13 = list;
    else
        rq.ciphers = list;
    struct tls_probe_res rs;
    struct error err = {{0}};
    if (audit_tls_probe(a, &rq, &rs, &err) < 0 || !rs.ok)
        return;
    if (rs.cipher_id == p->suites[0].id)
        p->server_order = 1;
    else if (rs.cipher_id == p->suites[1].id)
        p->server_order = 0;
}

/* The key exchange and authentication part of a suite's IANA name
 * ("TLS_ECDHE_RSA" of "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"); TLS 1.3
 * names carry none and form one class. */
static size_t kx_class(const char *name)
{
    const char *w = strstr(name, "_WITH_");
    return w != NULL ? (size_t)(w - name) : 0;
}

static bool same_class(const struct audit_suite *a, const struct audit_suite *b)
{
    size_t n = kx_class(a->name);
    return n == kx_class(b->name) && strncmp(a->name, b->name, n) == 0;
}

/* Elimination over the suites of offer[] still in `left` whose class is
 * member[]. Returns 0 when the server refused (done with this class), 1 when
 * it refused the protocol version outright, <0 to stop everything. */
static int eliminate(struct audit_ctx *a, struct audit_report *r, enum audit_ver v,
                     const struct audit_suite *offer, bool *left, const bool *member, int n)
{
    struct audit_proto_res *p = &r->proto[v];
    static char list[LIST_MAX];
    bool cand[AUDIT_MAX_SUITES];
    for (int round = 0; round < n; round++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            k += cand[i] = left[i] && member[i];
        if (k == 0)
            return 0;
        build_list(offer, cand, n, list, sizeof(list));
        struct tls_probe_req rq = {.ver = v, .sni = a->t.sni};
        if (v == AV_TLS13)
            rq.suites13 = list;
        else
            rq.ciphers = list;
        struct tls_probe_res rs;
        struct error err = {{0}};
        if (audit_tls_probe(a, &rq, &rs, &err) < 0) {
            p->incomplete = true;
            p->tested = p->n > 0; /* no transport at all (STLS refused) is no answer */
            audit_copy(p->note, sizeof(p->note), err.msg);
            return -1;
        }
        if (!rs.ok) {
            if (p->n == 0)
                audit_copy(p->note, sizeof(p->note), rs.why);
            /* protocol_version: the version itself is refused, whatever the class. */
            return p->n == 0 && rs.alert == SSL_AD_PROTOCOL_VERSION ? 1 : 0;
        }
        int i = find_left(offer, cand, n, rs.cipher_id);
        if (i < 0 || rs.version != audit_ver_openssl(v)) {
            p->incomplete = true;
            snprintf(p->note, sizeof(p->note), "server chose 0x%04X, which was not offered", rs.cipher_id);
            return 0;
        }
        add_suite(p, &offer[i], &rs);
        left[i] = false;
        /* RFC 5746 support, measured on the newest pre-1.3 version. */
        if (v != AV_TLS13 && r->tlsb.reneg < 0)
            r->tlsb.reneg = rs.secure_reneg ? 1 : 0;
    }
    return 0;
}

/* With a server-side order, list the accepted suites in that order: offer
 * them all, take the server's pick off, repeat (n - 1 probes). */
static void sort_by_server(struct audit_ctx *a, struct audit_proto_res *p, enum audit_ver v)
{
    static struct audit_suite acc[AUDIT_MAX_SUITES];
    static char list[LIST_MAX];
    bool left[AUDIT_MAX_SUITES];
    int n = p->n, done = 0;
    for (int i = 0; i < n; i++) {
        acc[i] = p->suites[i];
        left[i] = acc[i].ossl[0] != '\0';
    }
    for (int round = 0; round + 1 < n; round++) {
        build_list(acc, left, n, list, sizeof(list));
        struct tls_probe_req rq = {.ver = v, .sni = a->t.sni};
        if (v == AV_TLS13)
            rq.suites13 = list;
        else
            rq.ciphers = list;
        struct tls_probe_res rs;
        struct error err = {{0}};
        if (audit_tls_probe(a, &rq, &rs, &err) < 0 || !rs.ok)
            return; /* keep the elimination order */
        int i = find_left(acc, left, n, rs.cipher_id);
        if (i < 0)
            return;
        p->suites[done++] = acc[i];
        left[i] = false;
    }
    for (int i = 0; i < n; i++)
        if (left[i] || acc[i].ossl[0] == '\0')
            p->suites[done++] = acc[i];
}

static void enum_openssl(struct audit_ctx *a, struct audit_report *r, enum audit_ver v)
{
    struct audit_proto_res *p = &r->proto[v];
    static struct audit_suite offer[AUDIT_MAX_SUITES];
    bool left[AUDIT_MAX_SUITES], member[AUDIT_MAX_SUITES], class_done[AUDIT_MAX_SUITES];
    struct error err = {{0}};
    p->server_order = -1;
    int n = audit_suites_openssl(v, offer, AUDIT_MAX_SUITES, &err);
    if (n <= 0) {
        snprintf(p->note, sizeof(p->note), "not tested: %.100s", n < 0 ? err.msg : "no suites");
        return;
    }
    p->tested = true;
    for (int i = 0; i < n; i++) {
        left[i] = true;
        class_done[i] = false;
    }
    /* One elimination per key exchange class, as ssl-enum-ciphers does: a
     * server that picks a suite it cannot complete (DHE without parameters)
     * then hides only that class, not every suite after it. */
    for (int c = 0; c < n; c++) {
        if (class_done[c])
            continue;
        for (int i = 0; i < n; i++) {
            member[i] = same_class(&offer[i], &offer[c]);
            class_done[i] |= member[i];
        }
        if (eliminate(a, r, v, offer, left, member, n) != 0)
            break;
    }
    if (p->accepted && !p->incomplete)
        p->note[0] = '\0';
    probe_order(a, p, v);
    if (p->server_order == 1 && p->n > 2)
        sort_by_server(a, p, v);
}

/* Raw elimination over offer[] at a wire version; adds what the server takes. */
static void enum_raw(struct audit_ctx *a, struct audit_proto_res *p, enum audit_ver v,
                     const struct audit_suite *offer, int n)
{
    bool left[2 * AUDIT_MAX_SUITES];
    uint16_t ids[2 * AUDIT_MAX_SUITES];
    static const uint8_t comp_null[] = {0};
    for (int i = 0; i < n; i++)
        left[i] = true;
    for (int round = 0; round < n; round++) {
        int k = 0;
        for (int i = 0; i < n; i++)
            if (left[i])
                ids[k++] = offer[i].id;
        struct raw_hello_res rr;
        struct error err = {{0}};
        if (audit_raw_hello(a, wire_version(v), ids, k, comp_null, 1, &rr, &err) < 0) {
            p->incomplete = true;
            p->tested = p->tested && p->accepted;
            audit_copy(p->note, sizeof(p->note), err.msg);
            return;
        }
        if (!rr.ok || rr.version != wire_version(v)) {
            if (!p->accepted && p->note[0] == '\0')
                audit_copy(p->note, sizeof(p->note), rr.ok ? "server answered another version" : rr.why);
            return;
        }
        int i = find_left(offer, left, n, rr.cipher);
        if (i < 0) {
            p->incomplete = true;
            snprintf(p->note, sizeof(p->note), "server chose 0x%04X, which was not offered", rr.cipher);
            return;
        }
        add_suite(p, &offer[i], NULL);
        left[i] = false;
    }
}

/* Legacy suites at a version OpenSSL already found accepted. */
static void enum_legacy(struct audit_ctx *a, struct audit_report *r, enum audit_ver v)
{
    struct audit_proto_res *p = &r->proto[v];
    static struct audit_suite legacy[AUDIT_MAX_SUITES], offer[AUDIT_MAX_SUITES];
    int nl = audit_suites_legacy(legacy, AUDIT_MAX_SUITES);
    int n = 0;
    for (int i = 0; i < nl; i++) {
        bool known = false;
        for (int j = 0; j < p->n; j++)
            known |= p->suites[j].id == legacy[i].id;
        if (!known)
            offer[n++] = legacy[i];
    }
    if (n > 0)
        enum_raw(a, p, v, offer, n);
}

static void enum_sslv3(struct audit_ctx *a, struct audit_report *r)
{
    struct audit_proto_res *p = &r->proto[AV_SSL3];
    static struct audit_suite offer[2 * AUDIT_MAX_SUITES];
    struct error err = {{0}};
    p->server_order = -1;
    int n = audit_suites_openssl(AV_TLS10, offer, AUDIT_MAX_SUITES, &err);
    if (n < 0)
        n = 0;
    n += audit_suites_legacy(offer + n, AUDIT_MAX_SUITES);
    p->tested = true;
    enum_raw(a, p, AV_SSL3, offer, n);
}

void audit_enum_protocols(struct audit_ctx *a, struct audit_report *r)
{
    for (int v = AV_TLS13; v >= AV_TLS10; v--)
        enum_openssl(a, r, (enum audit_ver)v);
    for (int v = AV_TLS12; v >= AV_TLS10; v--)
        if (r->proto[v].accepted)
            enum_legacy(a, r, (enum audit_ver)v);
    enum_sslv3(a, r);
}

enum audit_ver audit_best_ver(const struct audit_report *r)
{
    for (int v = AV_TLS13; v >= AV_TLS10; v--)
        if (r->proto[v].accepted && r->proto[v].suites[0].ossl[0] != '\0')
            return (enum audit_ver)v;
    return AV_COUNT;
}

static void add_group(struct audit_report *r, const struct audit_group_def *g, enum audit_ver v, int bits)
{
    if (r->ngroups >= AUDIT_MAX_GROUPS)
        return;
    struct audit_group *d = &r->groups[r->ngroups++];
    audit_copy(d->name, sizeof(d->name), g->iana);
    d->ver = v;
    d->bits = bits;
}

void audit_enum_groups(struct audit_ctx *a, struct audit_report *r)
{
    struct error err = {{0}};
    struct tls_probe_res rs;
    if (r->proto[AV_TLS13].accepted) {
        for (int i = 0; i < audit_group_ndefs; i++) {
            struct tls_probe_req rq = {.ver = AV_TLS13, .sni = a->t.sni, .groups = audit_group_defs[i].ossl};
            if (audit_tls_probe(a, &rq, &rs, &err) < 0)
                return;
            if (rs.ok)
                add_group(r, &audit_group_defs[i], AV_TLS13, rs.kx_bits);
        }
    }
    /* TLS 1.2: curves only matter to ECDHE suites; offer just those. */
    const struct audit_proto_res *p = &r->proto[AV_TLS12];
    static char list[LIST_MAX];
    size_t used = 0;
    list[0] = '\0';
    for (int i = 0; i < p->n; i++) {
        if (strncmp(p->suites[i].name, "TLS_ECDHE_", 10) != 0 || p->suites[i].ossl[0] == '\0')
            continue;
        int w = snprintf(list + used, sizeof(list) - used, "%s%s", used ? ":" : "", p->suites[i].ossl);
        if (w < 0 || (size_t)w >= sizeof(list) - used)
            break;
        used += (size_t)w;
    }
    if (used == 0)
        return;
    for (int i = 0; i < audit_group_ndefs; i++) {
        if (!audit_group_defs[i].ec)
            continue;
        struct tls_probe_req rq = {
            .ver = AV_TLS12, .sni = a->t.sni, .ciphers = list, .groups = audit_group_defs[i].ossl};
        if (audit_tls_probe(a, &rq, &rs, &err) < 0)
            return;
        if (rs.ok)
            add_group(r, &audit_group_defs[i], AV_TLS12, rs.kx_bits);
    }
}
