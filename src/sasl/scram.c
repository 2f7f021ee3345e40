/* SCRAM-SHA-256(-PLUS) server conversation (RFC 5802, RFC 7677). Parsing
 * follows the section 7 grammar strictly; every failure ends the exchange. */
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/b64.h"
#include "common/secret.h"
#include "sasl/scram.h"
#include "sasl/scram_int.h"

#define CLIENT_MSG_MAX 4096 /* client-first or client-final */
#define NONCE_MAX 256       /* the client's part */
#define SNONCE_RAW 24       /* server nonce bytes, 32 base64 characters */
#define SNONCE_MAX 64
#define CB_NAME_MAX 32
/* "p=" cb-name "," "a=" authzid "," with every authzid byte escaped. */
#define GS2_MAX (2 + CB_NAME_MAX + 1 + 2 + 3 * SCRAM_NAME_MAX + 1)

enum scram_state { ST_CLIENT_FIRST, ST_SERVER_FIRST, ST_CLIENT_FINAL, ST_DONE };

struct scram_server {
    enum scram_state state;
    bool plus_mech, plus_offered;
    char cb_type[CB_NAME_MAX + 1]; /* "" = this connection has no binding */
    unsigned char cb_data[SCRAM_CB_DATA_MAX];
    size_t cb_len;
    char flag; /* 'n', 'y' or 'p' */
    char gs2[GS2_MAX];
    size_t gs2_len;
    char bare[CLIENT_MSG_MAX]; /* client-first-message-bare, for AuthMessage */
    size_t bare_len;
    char nonce[NONCE_MAX + SNONCE_MAX];
    size_t cnonce_len, nonce_len;
    char sfirst[SCRAM_MSG_MAX];
    size_t sfirst_len;
    unsigned char client_key[SCRAM_KEY_LEN];
    bool have_client_key;
};

/* A read position in a client message. */
struct cur {
    const char *p;
    size_t len, pos;
};

struct scram_server *scram_server_new(bool plus_mech, bool plus_offered, const char *cb_type,
                                      const unsigned char *cb_data, size_t cb_len)
{
    /* A binding is a name and its data, both or neither. */
    bool have = cb_type != NULL && cb_type[0] != '\0';
    if (have != (cb_data != NULL && cb_len > 0) || cb_len > SCRAM_CB_DATA_MAX ||
        (have && strlen(cb_type) > CB_NAME_MAX))
        return NULL;
    struct scram_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return NULL;
    s->plus_mech = plus_mech;
    s->plus_offered = plus_offered;
    if (have) {
        strcpy(s->cb_type, cb_type);
        memcpy(s->cb_data, cb_data, cb_len);
        s->cb_len = cb_len;
    }
    return s;
}

void scram_server_free(struct scram_server **s)
{
    if (*s == NULL)
        return;
    secret_wipe(*s, sizeof(**s));
    free(*s);
    *s = NULL;
}

static bool take(struct cur *c, const char *lit)
{
    size_t n = strlen(lit);
    if (c->len - c->pos < n || memcmp(c->p + c->pos, lit, n) != 0)
        return false;
    c->pos += n;
    return true;
}

/* The bytes up to the next ',' (or the end); never empty. */
static bool field(struct cur *c, const char **f, size_t *flen)
{
    const char *start = c->p + c->pos;
    const char *comma = memchr(start, ',', c->len - c->pos);
    *f = start;
    *flen = comma != NULL ? (size_t)(comma - start) : c->len - c->pos;
    c->pos += *flen;
    return *flen > 0;
}

static bool at_end(const struct cur *c)
{
    return c->pos == c->len;
}

/* saslname: "=2C" and "=3D" are the only escapes, a raw ',' or '=' is not a
 * character. The result is UTF-8 without control characters (it is logged). */
static bool saslname(const char *f, size_t len, char out[SCRAM_NAME_MAX + 1])
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = f[i];
        if (ch == '=') {
            if (len - i < 3)
                return false;
            if (f[i + 1] == '2' && f[i + 2] == 'C')
                ch = ',';
            else if (f[i + 1] == '3' && f[i + 2] == 'D')
                ch = '=';
            else
                return false;
            i += 2;
        }
        if ((unsigned char)ch < 0x20 || ch == 0x7f || n == SCRAM_NAME_MAX)
            return false;
        out[n++] = ch;
    }
    out[n] = '\0';
    return n > 0 && scram_utf8_valid((const unsigned char *)out, n);
}

/* printable = %x21-2B / %x2D-7E */
static bool printable(const char *f, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if (f[i] < 0x21 || f[i] > 0x7e || f[i] == ',')
            return false;
    return true;
}

/* Zero or more ("," attr-val), attr-val = ALPHA "=" 1*value-char, to the end.
 * Extensions are legal and ignored; a malformed one is an error. */
static bool extensions(struct cur *c)
{
    while (!at_end(c)) {
        const char *f;
        size_t n;
        if (!take(c, ",") || !field(c, &f, &n))
            return false;
        bool alpha = (f[0] >= 'a' && f[0] <= 'z') || (f[0] >= 'A' && f[0] <= 'Z');
        if (n < 3 || !alpha || f[1] != '=' || !scram_utf8_valid((const unsigned char *)f + 2, n - 2))
            return false;
    }
    return true;
}

static bool cb_name_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
           ch == '-';
}

/* gs2-header = gs2-cbind-flag "," [ authzid ] "," */
static int parse_gs2(struct scram_server *s, struct cur *c, char *cbname, char *authzid, const char **reply,
                     struct error *err)
{
    const char *f;
    size_t n;
    if (take(c, "n,") || take(c, "y,")) {
        s->flag = c->p[0];
    } else if (take(c, "p=")) {
        if (!field(c, &f, &n) || n > CB_NAME_MAX || !take(c, ","))
            return error_set(err, "SCRAM: bad channel binding name");
        for (size_t i = 0; i < n; i++)
            if (!cb_name_char(f[i]))
                return error_set(err, "SCRAM: bad channel binding name");
        memcpy(cbname, f, n);
        cbname[n] = '\0';
        s->flag = 'p';
    } else {
        return error_set(err, "SCRAM: bad gs2 channel binding flag");
    }
    if (take(c, "a=")) {
        if (!field(c, &f, &n) || !saslname(f, n, authzid)) {
            *reply = "e=invalid-username-encoding";
            return error_set(err, "SCRAM: bad authzid encoding");
        }
    }
    if (!take(c, ","))
        return error_set(err, "SCRAM: malformed gs2 header");
    s->gs2_len = c->pos;
    memcpy(s->gs2, c->p, c->pos);
    return 0;
}

/* RFC 5802 section 6: a client that saw no -PLUS ('y') while we offered it
 * was downgraded; -PLUS must bind ('p') and plain SCRAM must not; the type
 * must be the one this connection has. */
static int check_binding(const struct scram_server *s, const char *cbname, const char **reply,
                         struct error *err)
{
    if (s->plus_mech && s->flag != 'p') {
        *reply = "e=other-error";
        return error_set(err, "SCRAM-PLUS without channel binding");
    }
    if (!s->plus_mech && s->flag == 'p') {
        *reply = "e=other-error";
        return error_set(err, "SCRAM without -PLUS asked for channel binding");
    }
    if (s->flag == 'y' && s->plus_offered) {
        *reply = "e=server-does-support-channel-binding";
        return error_set(err, "SCRAM: client thinks we lack channel binding (downgrade?)");
    }
    if (s->flag == 'p' && s->cb_type[0] == '\0') {
        *reply = "e=channel-binding-not-supported";
        return error_set(err, "SCRAM-PLUS on a connection without channel binding");
    }
    if (s->flag == 'p' && strcmp(cbname, s->cb_type) != 0) {
        *reply = "e=unsupported-channel-binding-type";
        return error_set(err, "SCRAM-PLUS: unsupported channel binding type");
    }
    return 0;
}

int scram_server_client_first(struct scram_server *s, const unsigned char *msg, size_t len,
                              char user[SCRAM_NAME_MAX + 1], char authzid[SCRAM_NAME_MAX + 1],
                              const char **reply, struct error *err)
{
    *reply = "";
    user[0] = authzid[0] = '\0';
    if (s->state != ST_CLIENT_FIRST)
        return error_set(err, "SCRAM: client-first out of order");
    s->state = ST_DONE;
    if (len == 0 || len > CLIENT_MSG_MAX || memchr(msg, '\0', len) != NULL)
        return error_set(err, "SCRAM: client-first empty, too long or contains NUL");
    struct cur c = {(const char *)msg, len, 0};
    char cbname[CB_NAME_MAX + 1] = "";
    const char *f;
    size_t n;
    if (parse_gs2(s, &c, cbname, authzid, reply, err) < 0)
        goto fail;
    size_t bare = c.pos;
    if (take(&c, "m=")) {
        *reply = "e=extensions-not-supported";
        error_set(err, "SCRAM: mandatory extension not supported");
        goto fail;
    }
    if (!take(&c, "n=") || !field(&c, &f, &n)) {
        error_set(err, "SCRAM: client-first lacks n=");
        goto fail;
    }
    if (!saslname(f, n, user)) {
        *reply = "e=invalid-username-encoding";
        error_set(err, "SCRAM: bad username encoding");
        goto fail;
    }
    if (!take(&c, ",r=") || !field(&c, &f, &n) || n > NONCE_MAX || !printable(f, n) || !extensions(&c)) {
        error_set(err, "SCRAM: client-first has a bad or missing nonce or extension");
        goto fail;
    }
    if (check_binding(s, cbname, reply, err) < 0)
        goto fail;
    memcpy(s->nonce, f, n);
    s->cnonce_len = s->nonce_len = n;
    s->bare_len = len - bare;
    memcpy(s->bare, msg + bare, s->bare_len);
    s->state = ST_SERVER_FIRST;
    return 0;
fail:
    user[0] = authzid[0] = '\0';
    return -1;
}

int scram_server_first(struct scram_server *s, const struct scram_keys *k, char *out, size_t outsz)
{
    unsigned char raw[SNONCE_RAW];
    char snonce[B64_ENCODED_LEN(SNONCE_RAW) + 1];
    int r = -1;
    if (secret_random(raw, sizeof(raw)) == 0 && b64_encode(raw, sizeof(raw), snonce, sizeof(snonce)) > 0)
        r = scram_server_first_nonce(s, k, snonce, out, outsz);
    else
        s->state = ST_DONE;
    secret_wipe(raw, sizeof(raw));
    return r;
}

int scram_server_first_nonce(struct scram_server *s, const struct scram_keys *k, const char *snonce,
                             char *out, size_t outsz)
{
    char salt[B64_ENCODED_LEN(SCRAM_SALT_MAX) + 1];
    if (s->state != ST_SERVER_FIRST)
        return -1;
    s->state = ST_DONE;
    size_t sn = strlen(snonce);
    if (sn == 0 || sn > SNONCE_MAX || !printable(snonce, sn) || k->salt_len == 0 ||
        k->salt_len > SCRAM_SALT_MAX || k->iterations < SCRAM_ITER_MIN || k->iterations > SCRAM_ITER_MAX ||
        b64_encode(k->salt, k->salt_len, salt, sizeof(salt)) < 0)
        return -1;
    memcpy(s->nonce + s->cnonce_len, snonce, sn);
    s->nonce_len = s->cnonce_len + sn;
    int n = snprintf(s->sfirst, sizeof(s->sfirst), "r=%.*s,s=%s,i=%u", (int)s->nonce_len, s->nonce, salt,
                     k->iterations);
    if (n < 0 || (size_t)n >= sizeof(s->sfirst) || (size_t)n >= outsz)
        return -1;
    s->sfirst_len = (size_t)n;
    memcpy(out, s->sfirst, s->sfirst_len + 1);
    s->state = ST_CLIENT_FINAL;
    return n;
}

/* client-final-message-without-proof "," proof, proof last. */
struct final_msg {
    unsigned char cbind[GS2_MAX + SCRAM_CB_DATA_MAX];
    size_t cbind_len;
    const char *nonce;
    size_t nonce_len;
    size_t without_proof; /* length of client-final-message-without-proof */
    unsigned char proof[SCRAM_KEY_LEN];
};

static int parse_final(const unsigned char *msg, size_t len, struct final_msg *m, struct error *err)
{
    struct cur c = {(const char *)msg, len, 0};
    const char *f;
    size_t n;
    if (len == 0 || len > CLIENT_MSG_MAX || memchr(msg, '\0', len) != NULL)
        return error_set(err, "SCRAM: client-final empty, too long or contains NUL");
    if (!take(&c, "c=") || !field(&c, &f, &n))
        return error_set(err, "SCRAM: client-final lacks c=");
    long cl = b64_decode(f, n, m->cbind, sizeof(m->cbind));
    if (cl <= 0)
        return error_set(err, "SCRAM: bad base64 in c=");
    m->cbind_len = (size_t)cl;
    if (!take(&c, ",r=") || !field(&c, &m->nonce, &m->nonce_len))
        return error_set(err, "SCRAM: client-final lacks r=");
    /* Extensions until ",p=", which must be the last attribute. */
    for (;;) {
        m->without_proof = c.pos;
        if (take(&c, ",p="))
            break;
        if (!take(&c, ",") || !field(&c, &f, &n) || n < 3 || f[1] != '=' ||
            !((f[0] >= 'a' && f[0] <= 'z') || (f[0] >= 'A' && f[0] <= 'Z')) ||
            !scram_utf8_valid((const unsigned char *)f + 2, n - 2))
            return error_set(err, "SCRAM: client-final lacks p= or has a bad extension");
    }
    if (!field(&c, &f, &n) || !at_end(&c) || n != B64_ENCODED_LEN(SCRAM_KEY_LEN) ||
        b64_decode(f, n, m->proof, sizeof(m->proof)) != SCRAM_KEY_LEN)
        return error_set(err, "SCRAM: bad proof");
    return 0;
}

/* out has room for FINAL_OUT_MIN bytes (checked by the caller). */
static int set_reply(const char *text, char *out, size_t *outlen)
{
    size_t n = strlen(text);
    memcpy(out, text, n + 1);
    *outlen = n;
    return 0;
}

/* Longest answer: "v=" and base64 of a key. */
#define FINAL_OUT_MIN (2 + B64_ENCODED_LEN(SCRAM_KEY_LEN) + 1)

/* The checks on a parsed client-final whose nonce matched: proof, then
 * binding. A binding mismatch is reported whatever the proof, so a relay
 * learns nothing about the password from the answer. */
static int verify_final(struct scram_server *s, const struct scram_keys *k, const unsigned char *msg,
                        const struct final_msg *m, char *out, size_t outsz, size_t *outlen, struct error *err)
{
    /* AuthMessage = client-first-message-bare "," server-first "," client-final-without-proof */
    const void *am[] = {s->bare, ",", s->sfirst, ",", msg};
    const size_t aml[] = {s->bare_len, 1, s->sfirst_len, 1, m->without_proof};
    unsigned char sig[SCRAM_KEY_LEN], hashed[SCRAM_KEY_LEN];
    char b64[B64_ENCODED_LEN(SCRAM_KEY_LEN) + 1];
    int r;
    if (scram_hmac(k->stored_key, SCRAM_KEY_LEN, am, aml, 5, sig) < 0)
        return error_set(err, "SCRAM: HMAC failed");
    /* ClientKey = ClientProof XOR ClientSignature; right if H(ClientKey) = StoredKey. */
    for (size_t i = 0; i < SCRAM_KEY_LEN; i++)
        s->client_key[i] = m->proof[i] ^ sig[i];
    s->have_client_key = true;
    bool proof_ok = scram_hash(s->client_key, SCRAM_KEY_LEN, hashed) == 0 &&
                    CRYPTO_memcmp(hashed, k->stored_key, SCRAM_KEY_LEN) == 0;
    /* c= must echo the gs2 header as sent, plus our binding data for 'p'. */
    size_t want = s->gs2_len + (s->flag == 'p' ? s->cb_len : 0);
    bool cb_ok = m->cbind_len == want && memcmp(m->cbind, s->gs2, s->gs2_len) == 0 &&
                 (s->flag != 'p' || CRYPTO_memcmp(m->cbind + s->gs2_len, s->cb_data, s->cb_len) == 0);
    if (!cb_ok) {
        r = set_reply("e=channel-bindings-dont-match", out, outlen);
    } else if (!proof_ok) {
        r = set_reply("e=invalid-proof", out, outlen);
    } else if (scram_hmac(k->server_key, SCRAM_KEY_LEN, am, aml, 5, sig) < 0 ||
               b64_encode(sig, sizeof(sig), b64, sizeof(b64)) < 0) {
        r = error_set(err, "SCRAM: HMAC failed");
    } else {
        *outlen = (size_t)snprintf(out, outsz, "v=%s", b64); /* ServerSignature */
        r = 1;
    }
    secret_wipe(sig, sizeof(sig));
    secret_wipe(hashed, sizeof(hashed));
    return r;
}

int scram_server_final(struct scram_server *s, const struct scram_keys *k, const unsigned char *msg,
                       size_t len, char *out, size_t outsz, size_t *outlen, struct error *err)
{
    *outlen = 0;
    if (outsz > 0)
        out[0] = '\0';
    if (s->state != ST_CLIENT_FINAL)
        return error_set(err, "SCRAM: client-final out of order");
    s->state = ST_DONE;
    if (outsz < FINAL_OUT_MIN)
        return error_set(err, "SCRAM: output buffer too small");
    struct final_msg m;
    int r = parse_final(msg, len, &m, err);
    if (r == 0 && (m.nonce_len != s->nonce_len || memcmp(m.nonce, s->nonce, s->nonce_len) != 0))
        r = error_set(err, "SCRAM: nonce mismatch");
    if (r == 0)
        r = verify_final(s, k, msg, &m, out, outsz, outlen, err);
    secret_wipe(&m, sizeof(m));
    return r;
}

bool scram_server_client_key(const struct scram_server *s, unsigned char out[SCRAM_KEY_LEN])
{
    if (!s->have_client_key)
        return false;
    memcpy(out, s->client_key, SCRAM_KEY_LEN);
    return true;
}
