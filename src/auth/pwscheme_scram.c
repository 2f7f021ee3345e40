/* {SCRAM-SHA-256} stored keys as a password scheme, so PLAIN (and USER/PASS)
 * can log in users whose only verifier is a SCRAM one, e.g. from Dovecot. */
#include <string.h>

#include "auth/pwscheme_int.h"
#include "common/secret.h"
#include "sasl/scram.h"

int pwscheme_scram_verify(const char *body, const char *pw, size_t pwlen, struct error *err)
{
    struct scram_keys k;
    /* The dispatcher took the prefix: a second one is not Dovecot's format. */
    if (body[0] == '{')
        return error_set(err, "malformed {SCRAM-SHA-256} keys");
    int r = scram_keys_parse(body, &k, err);
    if (r == 0)
        r = scram_keys_check_password(&k, pw, pwlen, err);
    secret_wipe(&k, sizeof(k));
    return r;
}

int pwscheme_scram_dummy(const char *body, const char *pw, char *out, size_t outsz)
{
    struct scram_keys k;
    int r = scram_keys_parse(body, &k, NULL);
    uint32_t iterations = k.iterations;
    /* Same iterations, so checking against it costs what a real user's keys cost. */
    if (r == 0)
        r = scram_keys_derive(pw, strlen(pw), NULL, 0, iterations, &k, NULL);
    if (r == 0)
        r = scram_keys_format(&k, out, outsz);
    secret_wipe(&k, sizeof(k));
    return r;
}
