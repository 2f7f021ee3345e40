/* Hand-built ClientHellos for what this OpenSSL can no longer offer: SSLv3,
 * suites compiled out of it (RC4, 3DES, DES, EXPORT, IDEA, SEED, static DH),
 * and TLS compression. We only read the ServerHello (or an alert) and close:
 * the server's choice is all the measurement needs. */
#include "ctl/audit.h"

#include "common/secret.h"

#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>

#define RAW_MAX_IDS 400
#define RAW_MAX_RECORD (16384 + 2048)

struct wbuf {
    unsigned char b[2048];
    size_t n;
    bool overflow;
};

static void put8(struct wbuf *w, unsigned v)
{
    if (w->n >= sizeof(w->b)) {
        w->overflow = true;
        return;
    }
    w->b[w->n++] = (unsigned char)v;
}

static void put16(struct wbuf *w, unsigned v)
{
    put8(w, (v >> 8) & 0xff);
    put8(w, v & 0xff);
}

/* Patches a length field of `bytes` octets at off, counting what follows it. */
static void patch_len(struct wbuf *w, size_t off, int bytes)
{
    if (w->overflow)
        return;
    size_t len = w->n - off - (size_t)bytes;
    for (int i = bytes - 1; i >= 0; i--, len >>= 8)
        w->b[off + (size_t)i] = (unsigned char)(len & 0xff);
}

static void put_extensions(struct wbuf *w, const struct audit_target *t, uint16_t version)
{
    size_t ext = w->n;
    put16(w, 0);
    if (t->sni != NULL) {
        size_t nl = strlen(t->sni);
        put16(w, 0x0000); /* server_name */
        put16(w, (unsigned)(nl + 5));
        put16(w, (unsigned)(nl + 3));
        put8(w, 0); /* host_name */
        put16(w, (unsigned)nl);
        for (size_t i = 0; i < nl; i++)
            put8(w, (unsigned char)t->sni[i]);
    }
    static const uint16_t groups[] = {0x001d, 0x0017, 0x0018, 0x0019, 0x001e, 0x0100, 0x0101};
    put16(w, 0x000a); /* supported_groups */
    put16(w, 2 + 2 * (unsigned)(sizeof(groups) / sizeof(groups[0])));
    put16(w, 2 * (unsigned)(sizeof(groups) / sizeof(groups[0])));
    for (size_t i = 0; i < sizeof(groups) / sizeof(groups[0]); i++)
        put16(w, groups[i]);
    put16(w, 0x000b); /* ec_point_formats: uncompressed */
    put16(w, 2);
    put8(w, 1);
    put8(w, 0);
    if (version >= 0x0303) {
        static const uint16_t sigalgs[] = {0x0804, 0x0805, 0x0806, 0x0401, 0x0501, 0x0601, 0x0403,
                                           0x0503, 0x0603, 0x0807, 0x0808, 0x0201, 0x0203, 0x0202};
        put16(w, 0x000d); /* signature_algorithms */
        put16(w, 2 + 2 * (unsigned)(sizeof(sigalgs) / sizeof(sigalgs[0])));
        put16(w, 2 * (unsigned)(sizeof(sigalgs) / sizeof(sigalgs[0])));
        for (size_t i = 0; i < sizeof(sigalgs) / sizeof(sigalgs[0]); i++)
            put16(w, sigalgs[i]);
    }
    patch_len(w, ext, 2);
}

static int build_hello(struct wbuf *w, const struct audit_target *t, uint16_t version, const uint16_t *ids,
                       int nids, const uint8_t *comp, int ncomp)
{
    unsigned char random[32];
    if (secret_random(random, sizeof(random)) < 0)
        return -1;
    put8(w, 0x16);
    put16(w, version == 0x0300 ? 0x0300 : 0x0301);
    size_t rec = w->n;
    put16(w, 0);
    put8(w, 0x01); /* ClientHello */
    size_t hs = w->n;
    put8(w, 0);
    put16(w, 0);
    put16(w, version);
    for (size_t i = 0; i < sizeof(random); i++)
        put8(w, random[i]);
    put8(w, 0); /* no session id */
    put16(w, 2 * (unsigned)nids + 2);
    for (int i = 0; i < nids; i++)
        put16(w, ids[i]);
    put16(w, 0x00ff); /* TLS_EMPTY_RENEGOTIATION_INFO_SCSV */
    put8(w, (unsigned)ncomp);
    for (int i = 0; i < ncomp; i++)
        put8(w, comp[i]);
    if (version >= 0x0301)
        put_extensions(w, t, version);
    patch_len(w, hs, 3);
    patch_len(w, rec, 2);
    return w->overflow ? -1 : 0;
}

/* Parses a ServerHello body (after the 4-byte handshake header). */
static int parse_server_hello(const unsigned char *p, size_t n, struct raw_hello_res *r)
{
    if (n < 2 + 32 + 1)
        return -1;
    r->version = (uint16_t)(p[0] << 8 | p[1]);
    size_t off = 2 + 32;
    size_t sid = p[off++];
    if (sid > 32 || off + sid + 3 > n)
        return -1;
    off += sid;
    r->cipher = (uint16_t)(p[off] << 8 | p[off + 1]);
    r->compression = p[off + 2];
    return 0;
}

/* Fills r from the server's first record; failures to read are results
 * (r->why), not errors. */
static void read_reply(struct audit_ctx *a, struct audit_conn *c, struct raw_hello_res *r)
{
    struct error e = {{0}}, *err = &e;
    unsigned char hdr[5];
    int rc = audit_conn_read_exact(c, hdr, sizeof(hdr), a->t.timeout_ms, err);
    if (rc < 0) {
        audit_copy(r->why, sizeof(r->why), rc == AUDIT_EEOF ? "connection closed" : err->msg);
        return;
    }
    size_t len = (size_t)hdr[3] << 8 | hdr[4];
    if (hdr[0] == 0x15 && len >= 2) {
        unsigned char al[2];
        if (audit_conn_read_exact(c, al, 2, a->t.timeout_ms, err) == 0) {
            r->alert = al[1];
            snprintf(r->why, sizeof(r->why), "alert %s", SSL_alert_desc_string_long(al[1]));
        } else {
            snprintf(r->why, sizeof(r->why), "truncated alert");
        }
        return;
    }
    if (hdr[0] != 0x16 || hdr[1] != 0x03 || len < 4 || len > RAW_MAX_RECORD) {
        snprintf(r->why, sizeof(r->why), "not a TLS handshake record");
        return;
    }
    unsigned char body[RAW_MAX_RECORD];
    if (audit_conn_read_exact(c, body, len, a->t.timeout_ms, err) < 0) {
        snprintf(r->why, sizeof(r->why), "truncated record: %.90s", err->msg);
        return;
    }
    size_t hlen = (size_t)body[1] << 16 | (size_t)body[2] << 8 | body[3];
    if (body[0] != 0x02 || hlen + 4 > len || parse_server_hello(body + 4, hlen, r) < 0) {
        snprintf(r->why, sizeof(r->why), "malformed ServerHello");
        return;
    }
    r->ok = true;
    return;
}

int audit_raw_hello(struct audit_ctx *a, uint16_t version, const uint16_t *ids, int nids, const uint8_t *comp,
                    int ncomp, struct raw_hello_res *r, struct error *err)
{
    memset(r, 0, sizeof(*r));
    r->alert = -1;
    if (nids <= 0 || nids > RAW_MAX_IDS || ncomp <= 0 || ncomp > 8)
        return error_set(err, "raw hello: bad arguments"), AUDIT_EGENERIC;
    struct wbuf w = {.n = 0};
    if (build_hello(&w, &a->t, version, ids, nids, comp, ncomp) < 0)
        return error_set(err, "raw hello: ClientHello too large"), AUDIT_EGENERIC;
    struct audit_conn c;
    int rc = audit_pop3_open_transport(a, &c, err);
    if (rc < 0)
        return rc;
    struct error werr = {{0}};
    if (audit_conn_write(&c, w.b, w.n, a->t.timeout_ms, &werr) < 0)
        audit_copy(r->why, sizeof(r->why), werr.msg);
    else
        read_reply(a, &c, r);
    audit_conn_close(&c);
    return 0;
}
