/* libFuzzer target for the SCRAM-SHA-256(-PLUS) server (RFC 5802).
 * Input: client-first NUL client-final (no NUL: client-first only). Each input
 * runs a whole conversation in four configurations: plain SCRAM without and
 * with -PLUS offered, -PLUS over tls-exporter and over tls-unique. Keys are the
 * RFC 7677 ones ("pencil") and the server nonce is fixed, so seeds can be real
 * exchanges that reach a valid proof. Checks, aborting on any mismatch:
 *   - client-first: 0 with a non-empty name within SCRAM_NAME_MAX and no reply,
 *     or -1 with empty names and a reply that is "" or "e=...";
 *   - client-final: 1 with "v=<44 base64>", 0 with "e=...", or -1; outlen agrees;
 *     a ClientKey exists exactly when a proof was checked, and 1 means
 *     H(ClientKey) = StoredKey;
 *   - the stored-keys parser: whatever it accepts formats back to the same string. */
#include <openssl/sha.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/b64.h"
#include "fuzz_check.h"
#include "sasl/scram.h"

#define SNONCE "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

static const unsigned char exporter[32] = "0123456789abcdef0123456789abcdef";
static const unsigned char unique[12] = "tls-unique12";

static const struct {
    bool plus_mech, plus_offered;
    const char *cb_type;
    const unsigned char *cb;
    size_t cb_len;
} configs[] = {
    {false, false, NULL, NULL, 0},
    {false, true, "tls-exporter", exporter, 32},
    {true, true, "tls-exporter", exporter, 32},
    {true, true, "tls-unique", unique, 12},
};

static const struct scram_keys *keys(void)
{
    static struct scram_keys k;
    static bool done;
    if (!done) {
        unsigned char salt[16];
        CHECK(b64_decode("W22ZaJ0SNY7soEsUEjb6gQ==", 24, salt, sizeof(salt)) == 16);
        CHECK(scram_keys_derive("pencil", 6, salt, 16, 4096, &k, NULL) == 0);
        done = true;
    }
    return &k;
}

static void conversation(size_t ci, const uint8_t *first, size_t flen, const uint8_t *cfinal, size_t finlen,
                         bool has_final)
{
    const struct scram_keys *k = keys();
    struct scram_server *s = scram_server_new(configs[ci].plus_mech, configs[ci].plus_offered,
                                              configs[ci].cb_type, configs[ci].cb, configs[ci].cb_len);
    CHECK(s != NULL);
    char user[SCRAM_NAME_MAX + 1], authzid[SCRAM_NAME_MAX + 1];
    const char *reply = NULL;
    struct error err = {{0}};
    int r = scram_server_client_first(s, first, flen, user, authzid, &reply, &err);
    CHECK(reply != NULL);
    if (r != 0) {
        CHECK(r == -1 && err.msg[0] != '\0' && user[0] == '\0' && authzid[0] == '\0');
        CHECK(reply[0] == '\0' || strncmp(reply, "e=", 2) == 0);
        scram_server_free(&s);
        return;
    }
    size_t ul = strlen(user);
    CHECK(ul >= 1 && ul <= SCRAM_NAME_MAX && strlen(authzid) <= SCRAM_NAME_MAX && reply[0] == '\0');
    for (size_t i = 0; i < ul; i++)
        CHECK((unsigned char)user[i] >= 0x20 && user[i] != 0x7f);

    char sfirst[SCRAM_MSG_MAX];
    int n = scram_server_first_nonce(s, k, SNONCE, sfirst, sizeof(sfirst));
    CHECK(n > 0 && (size_t)n == strlen(sfirst) && strncmp(sfirst, "r=", 2) == 0);
    unsigned char ck[SCRAM_KEY_LEN];
    CHECK(!scram_server_client_key(s, ck));
    if (has_final) {
        char out[SCRAM_MSG_MAX];
        size_t outlen = 12345;
        r = scram_server_final(s, k, cfinal, finlen, out, sizeof(out), &outlen, &err);
        bool have = scram_server_client_key(s, ck);
        if (r == 1) {
            CHECK(outlen == 46 && strlen(out) == 46 && strncmp(out, "v=", 2) == 0);
            unsigned char h[SCRAM_KEY_LEN];
            CHECK(have);
            SHA256(ck, sizeof(ck), h);
            CHECK(memcmp(h, k->stored_key, SCRAM_KEY_LEN) == 0);
        } else if (r == 0) {
            CHECK(have && outlen == strlen(out) && strncmp(out, "e=", 2) == 0);
        } else {
            CHECK(r == -1 && err.msg[0] != '\0' && outlen == 0 && out[0] == '\0');
        }
        /* Over after one client-final, whatever happened. */
        CHECK(scram_server_final(s, k, cfinal, finlen, out, sizeof(out), &outlen, &err) == -1);
    }
    scram_server_free(&s);
    CHECK(s == NULL);
}

/* Accepted stored keys format back to the same text (canonical base64, no
 * leading zeros), with the prefix in our spelling. */
static void stored_keys(const uint8_t *data, size_t size)
{
    char in[600], out[600];
    if (size >= sizeof(in))
        return;
    memcpy(in, data, size);
    in[size] = '\0';
    struct scram_keys k;
    struct error err = {{0}};
    if (scram_keys_parse(in, &k, &err) < 0) {
        CHECK(err.msg[0] != '\0');
        return;
    }
    CHECK(k.iterations >= 4096 && k.iterations <= 10000000 && k.salt_len >= 1 &&
          k.salt_len <= SCRAM_SALT_MAX);
    CHECK(scram_keys_format(&k, out, sizeof(out)) == 0);
    const char *body = strncasecmp(in, "{SCRAM-SHA-256}", 15) == 0 ? in + 15 : in;
    CHECK(strcmp(out + 15, body) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nul = memchr(data, '\0', size);
    size_t flen = nul != NULL ? (size_t)(nul - data) : size;
    const uint8_t *cfinal = nul != NULL ? nul + 1 : NULL;
    size_t finlen = nul != NULL ? size - flen - 1 : 0;
    for (size_t ci = 0; ci < sizeof(configs) / sizeof(configs[0]); ci++)
        conversation(ci, data, flen, cfinal, finlen, nul != NULL);
    stored_keys(data, flen);
    return 0;
}
