/* App passwords: generation, the canonical form, and the stored hash. */
#include <openssl/evp.h>
#include <string.h>

#include "auth/apppw.h"
#include "common/secret.h"

#define GROUPS 5
#define GROUP_LEN 5
#define SYMBOLS (GROUPS * GROUP_LEN)
#define INPUT_MAX 64 /* a retyped app password with generous spacing; longer is not one */

static const char alphabet[] = "abcdefghijklmnopqrstuvwxyz234567";

/* Position i (0..24) of a symbol in the canonical form: after every fifth, a '-'. */
static size_t slot(size_t i)
{
    return i + i / GROUP_LEN;
}

static void put_dashes(char out[APPPW_LEN + 1])
{
    for (size_t g = 1; g < GROUPS; g++)
        out[g * (GROUP_LEN + 1) - 1] = '-';
    out[APPPW_LEN] = '\0';
}

int apppw_generate(char out[APPPW_LEN + 1])
{
    unsigned char rnd[SYMBOLS];
    if (secret_random(rnd, sizeof(rnd)) < 0) {
        memset(out, 0, APPPW_LEN + 1);
        return -1;
    }
    /* 256 is a multiple of 32: the low five bits of a uniform byte are uniform. */
    for (size_t i = 0; i < SYMBOLS; i++)
        out[slot(i)] = alphabet[rnd[i] & 31];
    put_dashes(out);
    secret_wipe(rnd, sizeof(rnd));
    return 0;
}

/* Separators may only stand between groups, one at a time: "correct horse
 * battery staple" is 25 letters of the alphabet too, but not an app password. */
bool apppw_normalise(const char *s, size_t len, char out[APPPW_LEN + 1])
{
    memset(out, 0, APPPW_LEN + 1);
    if (s == NULL || len > INPUT_MAX)
        return false;
    while (len > 0 && s[len - 1] == ' ')
        len--;
    size_t i = 0, n = 0;
    while (i < len && s[i] == ' ')
        i++;
    bool sep_ok = false;
    for (; i < len; i++) {
        char c = s[i];
        if (c == '-' || c == ' ') {
            if (!sep_ok)
                goto refuse;
            sep_ok = false;
            continue;
        }
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (!((c >= 'a' && c <= 'z') || (c >= '2' && c <= '7')) || n == SYMBOLS)
            goto refuse;
        out[slot(n++)] = c;
        sep_ok = n % GROUP_LEN == 0 && n < SYMBOLS;
    }
    if (n != SYMBOLS)
        goto refuse;
    put_dashes(out);
    return true;
refuse:
    secret_wipe(out, APPPW_LEN + 1);
    return false;
}

void apppw_hash(const char canonical[APPPW_LEN + 1], char out[APPPW_HASH_MAX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    out[0] = '\0';
    if (EVP_Digest(canonical, APPPW_LEN, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return;
    memcpy(out, "sha256:", 7);
    for (unsigned i = 0; i < mdlen; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[7 + 2 * i + 1] = hex[md[i] & 15];
    }
    out[7 + 2 * mdlen] = '\0';
    secret_wipe(md, sizeof(md));
}
