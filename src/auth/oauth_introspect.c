#include "auth/oauth_introspect.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/file.h"
#include "common/secret.h"

#define CA_BUNDLE_DEFAULT "/etc/ssl/certs/ca-certificates.crt"
#define CA_BUNDLE_MAX (8 << 20)
#define SECRET_FILE_MAX 4096
#define RESPONSE_MAX (64 << 10) /* an introspection answer is a few hundred bytes */

/* Reads a whole regular file of 1..max bytes into a NUL-terminated buffer. */
int oauth_introspect_load(struct oauth_issuer *is, struct error *err)
{
    const struct conf_oauth *c = &is->c;
    if (strncmp(c->introspection_url, "https://", 8) != 0 && strncmp(c->introspection_url, "http://", 7) != 0)
        return error_set(err, "introspection_url must be http:// or https://");
    size_t n;
    is->secret = file_read_small(c->client_secret_file, SECRET_FILE_MAX, S_IRWXG | S_IRWXO,
                                 "group- or world-accessible; chmod 600 it", &n, err);
    if (is->secret == NULL)
        return -1;
    while (n > 0 && (is->secret[n - 1] == '\n' || is->secret[n - 1] == '\r'))
        is->secret[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)is->secret[i] < 0x20 || is->secret[i] == 0x7f)
            n = 0;
    if (n == 0)
        return error_set(err, "%s: the client secret is empty or holds control characters",
                         c->client_secret_file);
    if (strncmp(c->introspection_url, "https://", 8) != 0)
        return 0;
    /* Read while still root, like the alert webhook's bundle. */
    struct error cerr = {{0}};
    if (c->introspection_ca[0] != '\0') {
        if ((is->ca = file_read_small(c->introspection_ca, CA_BUNDLE_MAX, 0, "", &is->ca_len, err)) == NULL)
            return -1;
    } else {
        is->ca = file_read_small(CA_BUNDLE_DEFAULT, CA_BUNDLE_MAX, 0, "", &is->ca_len, &cerr); /* else libcurl's */
    }
    return 0;
}

void oauth_introspect_unload(struct oauth_issuer *is)
{
    secret_free_str(&is->secret);
    free(is->ca);
    is->ca = NULL;
    is->ca_len = 0;
}

struct body {
    char buf[RESPONSE_MAX];
    size_t len;
};

static size_t collect(char *p, size_t size, size_t n, void *arg)
{
    struct body *b = arg;
    size_t k = size * n;
    if (k > sizeof(b->buf) - b->len)
        return 0; /* too large: abort the transfer */
    memcpy(b->buf + b->len, p, k);
    b->len += k;
    return k;
}

/* RFC 6749 2.3.1: the client id and secret are form-encoded before Basic. */
static char *escaped(CURL *e, const char *s)
{
    return curl_easy_escape(e, s, (int)strlen(s));
}

static void wipe_curl_str(char *s)
{
    if (s != NULL) {
        secret_wipe(s, strlen(s));
        curl_free(s);
    }
}

int oauth_introspect_fetch(const struct oauth_issuer *is, const char *token, size_t len, json_t **resp,
                           const char **why)
{
    *resp = NULL;
    *why = "introspection_unreachable";
    const struct conf_oauth *c = &is->c;
    CURL *e = curl_easy_init();
    struct body *b = calloc(1, sizeof(*b));
    char *tok = e ? curl_easy_escape(e, token, (int)len) : NULL;
    char *user = e ? escaped(e, c->client_id) : NULL, *pass = e ? escaped(e, is->secret) : NULL;
    struct curl_slist *hdr = curl_slist_append(NULL, "Accept: application/json");
    static const char pre[] = "token=", post[] = "&token_type_hint=access_token";
    size_t plen = tok ? sizeof(pre) - 1 + strlen(tok) + sizeof(post) - 1 : 0;
    char *form = tok ? malloc(plen + 1) : NULL;
    int rc = -1;
    if (b == NULL || form == NULL || user == NULL || pass == NULL || hdr == NULL)
        goto out;
    snprintf(form, plen + 1, "%s%s%s", pre, tok, post);
    long ms = (long)c->introspection_timeout_ms;
    int set = (int)curl_easy_setopt(e, CURLOPT_URL, c->introspection_url);
    set |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    set |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L); /* worker threads: no SIGALRM for DNS timeouts */
    set |= curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    set |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, ms);
    set |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, ms);
    set |= curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    set |= curl_easy_setopt(e, CURLOPT_USERNAME, user);
    set |= curl_easy_setopt(e, CURLOPT_PASSWORD, pass);
    set |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, form);
    set |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)plen);
    set |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdr);
    set |= curl_easy_setopt(e, CURLOPT_USERAGENT, "popsd");
    set |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    set |= curl_easy_setopt(e, CURLOPT_WRITEDATA, b);
    if (is->ca != NULL) {
        struct curl_blob ca = {.data = is->ca, .len = is->ca_len, .flags = CURL_BLOB_NOCOPY};
        set |= curl_easy_setopt(e, CURLOPT_CAINFO_BLOB, &ca);
    }
    if (set != 0)
        goto out;
    CURLcode cc = curl_easy_perform(e);
    long status = 0;
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        *why = cc == CURLE_OPERATION_TIMEDOUT ? "introspection_timeout"
               : cc == CURLE_WRITE_ERROR      ? "introspection_response"
                                              : "introspection_unreachable";
        goto out;
    }
    if (status != 200) {
        *why = "introspection_http"; /* 5xx, or 401: our own client credentials are wrong */
        goto out;
    }
    *why = "introspection_response";
    json_error_t je;
    json_t *v = json_loadb(b->buf, b->len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(v)) {
        json_decref(v);
        goto out;
    }
    *resp = v;
    rc = 0;
out:
    if (form != NULL) {
        secret_wipe(form, plen);
        free(form);
    }
    wipe_curl_str(tok);
    wipe_curl_str(user);
    wipe_curl_str(pass);
    curl_slist_free_all(hdr);
    if (b != NULL) {
        secret_wipe(b, sizeof(*b)); /* the answer may echo claims; cheap to clear */
        free(b);
    }
    if (e != NULL)
        curl_easy_cleanup(e);
    return rc;
}

/* ---- cache ---- */

struct cache_entry {
    unsigned char key[32];
    int64_t expires_ms;
    enum oauth_verdict v;
    unsigned issuer;
    char user[256];
    char why[32];
};

struct oauth_cache {
    pthread_mutex_t mu;
    size_t cap, used, next; /* a ring: next is the oldest once full */
    struct cache_entry e[];
};

struct oauth_cache *oauth_cache_new(size_t cap)
{
    if (cap == 0)
        return NULL;
    struct oauth_cache *c = calloc(1, sizeof(*c) + cap * sizeof(c->e[0]));
    if (c == NULL)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->cap = cap;
    return c;
}

void oauth_cache_free(struct oauth_cache **c)
{
    if (*c == NULL)
        return;
    pthread_mutex_destroy(&(*c)->mu);
    secret_wipe((*c)->e, (*c)->cap * sizeof((*c)->e[0]));
    free(*c);
    *c = NULL;
}

bool oauth_cache_get(struct oauth_cache *c, const unsigned char key[32], int64_t now_ms,
                     enum oauth_verdict *v, unsigned *issuer, struct oauth_result *r)
{
    if (c == NULL)
        return false;
    bool hit = false;
    pthread_mutex_lock(&c->mu);
    for (size_t i = 0; i < c->used && !hit; i++) {
        const struct cache_entry *e = &c->e[i];
        if (e->expires_ms > now_ms && memcmp(e->key, key, 32) == 0) {
            *v = e->v;
            *issuer = e->issuer;
            snprintf(r->user, sizeof(r->user), "%s", e->user);
            snprintf(r->why, sizeof(r->why), "%s", e->why);
            hit = true;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return hit;
}

void oauth_cache_put(struct oauth_cache *c, const unsigned char key[32], int64_t expires_ms,
                     enum oauth_verdict v, unsigned issuer, const struct oauth_result *r)
{
    if (c == NULL || v == OAUTH_TEMPFAIL)
        return;
    pthread_mutex_lock(&c->mu);
    struct cache_entry *e = &c->e[c->next];
    memset(e, 0, sizeof(*e));
    memcpy(e->key, key, 32);
    e->expires_ms = expires_ms;
    e->v = v;
    e->issuer = issuer;
    snprintf(e->user, sizeof(e->user), "%s", r->user);
    size_t wl = strnlen(r->why, sizeof(e->why) - 1); /* our reasons are short words */
    memcpy(e->why, r->why, wl);
    c->next = (c->next + 1) % c->cap;
    if (c->used < c->cap)
        c->used++;
    pthread_mutex_unlock(&c->mu);
}
