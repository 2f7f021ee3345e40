/* SCRAM-SHA-256 and SCRAM-SHA-256-PLUS (RFC 5802, RFC 7677), server side, as
 * pure functions: no I/O, no database. authd runs the conversation (it holds
 * the keys); the front only relays messages and supplies the channel binding.
 * Stored keys use Dovecot's notation so passwd-files carry over:
 *   {SCRAM-SHA-256}ITERATIONS,BASE64(salt),BASE64(StoredKey),BASE64(ServerKey) */
#ifndef POPSD_SASL_SCRAM_H
#define POPSD_SASL_SCRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define SCRAM_KEY_LEN 32     /* SHA-256 */
#define SCRAM_SALT_MAX 64
#define SCRAM_SALT_LEN 16    /* for new keys */
#define SCRAM_NAME_MAX 255
#define SCRAM_CB_DATA_MAX 64 /* tls-exporter is 32 bytes, tls-unique 12..36 */
#define SCRAM_MSG_MAX 1024   /* server-first / server-final */

struct scram_keys {
    uint32_t iterations;
    unsigned char salt[SCRAM_SALT_MAX];
    size_t salt_len;
    unsigned char stored_key[SCRAM_KEY_LEN];
    unsigned char server_key[SCRAM_KEY_LEN];
};

/* SaltedPassword = PBKDF2-HMAC-SHA-256(SASLprep(password), salt, iterations),
 * then StoredKey and ServerKey. salt NULL = a fresh random SCRAM_SALT_LEN salt. */
int scram_keys_derive(const char *password, size_t pwlen, const unsigned char *salt, size_t salt_len,
                      uint32_t iterations, struct scram_keys *k, struct error *err);
/* "{SCRAM-SHA-256}..." into out; 0 or -1 (too small). */
int scram_keys_format(const struct scram_keys *k, char *out, size_t outsz);
/* Parses the stored form (with or without the "{SCRAM-SHA-256}" prefix). 0 or -1. */
int scram_keys_parse(const char *stored, struct scram_keys *k, struct error *err);
/* 1 if password derives to k's StoredKey (constant-time compare), 0 if not, -1 on error.
 * Lets PLAIN log in users whose only stored verifier is a SCRAM one. */
int scram_keys_check_password(const struct scram_keys *k, const char *password, size_t pwlen, struct error *err);
/* Keys for an unknown user, so that the exchange looks the same and fails only
 * at the proof: the salt is HMAC(secret, user) (stable per name), the keys random. */
void scram_keys_fake(const unsigned char secret[32], const char *user, uint32_t iterations, struct scram_keys *k);

/* One server-side conversation. */
struct scram_server;

/* plus_mech: the client chose SCRAM-SHA-256-PLUS. plus_offered: the server
 * advertised -PLUS on this connection. cb_type/cb_data: the binding this
 * connection has ("tls-exporter" on TLS 1.3, "tls-unique" on TLS 1.2; NULL/0 if none). */
struct scram_server *scram_server_new(bool plus_mech, bool plus_offered, const char *cb_type,
                                      const unsigned char *cb_data, size_t cb_len);
void scram_server_free(struct scram_server **s);

/* Parses client-first-message. On 0, user (saslname-decoded) and authzid ("" if
 * none) are set. On -1 err says why and *reply holds the "e=..." to send (may be
 * empty when the message is simply malformed). Channel-binding rules of RFC 5802
 * section 6 are enforced here: 'y' while -PLUS was offered, 'p' on plain SCRAM,
 * 'p' with a binding type this connection does not have, 'n'/'y' on -PLUS. */
int scram_server_client_first(struct scram_server *s, const unsigned char *msg, size_t len,
                              char user[SCRAM_NAME_MAX + 1], char authzid[SCRAM_NAME_MAX + 1],
                              const char **reply, struct error *err);
/* Builds server-first-message "r=<cnonce><snonce>,s=<salt>,i=<iter>" with a
 * random server nonce. Returns its length, or -1. */
int scram_server_first(struct scram_server *s, const struct scram_keys *k, char *out, size_t outsz);
/* Same with a given server nonce (RFC 7677 test vector). */
int scram_server_first_nonce(struct scram_server *s, const struct scram_keys *k, const char *snonce, char *out,
                             size_t outsz);
/* Checks client-final-message (channel binding echo, nonce, proof). Returns 1 on
 * success with "v=<ServerSignature>" in out, 0 on a wrong proof or binding with
 * "e=..." in out, -1 on a malformed message (err). *outlen is set on 0 and 1. */
int scram_server_final(struct scram_server *s, const struct scram_keys *k, const unsigned char *msg, size_t len,
                       char *out, size_t outsz, size_t *outlen, struct error *err);
/* ClientKey recovered from the last proof (for the defence engine's password
 * fingerprint); false until scram_server_final ran. */
bool scram_server_client_key(const struct scram_server *s, unsigned char out[SCRAM_KEY_LEN]);

#endif
