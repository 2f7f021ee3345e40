#include "sasl/sasl.h"

#include <strings.h>

#include "common/secret.h"

extern const struct sasl_mech sasl_mech_plain, sasl_mech_scram, sasl_mech_scram_plus, sasl_mech_oauthbearer,
    sasl_mech_xoauth2;

/* Strongest first: clients that take the first usable one should pick SCRAM-PLUS. */
const struct sasl_mech *const sasl_mechs[] = {&sasl_mech_scram_plus, &sasl_mech_scram,  &sasl_mech_oauthbearer,
                                              &sasl_mech_xoauth2,    &sasl_mech_plain, NULL};

const struct sasl_mech *sasl_mech_find(const char *name)
{
    for (size_t i = 0; sasl_mechs[i] != NULL; i++)
        if (strcasecmp(sasl_mechs[i]->name, name) == 0)
            return sasl_mechs[i];
    return NULL;
}

void sasl_creds_wipe(struct sasl_creds *c)
{
    secret_wipe(c, sizeof(*c));
}
