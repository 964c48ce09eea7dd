/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for cfg_load_text: any bytes must give either a complete generation
 * or a non-empty list of "fuzz.yaml..." error lines, never both, never a crash, a leak
 * or a walk that runs away on aliases. Seeds: corpus/cfg/; dictionary: yaml.dict. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_load.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_cfg(const struct cfg *cfg)
{
    if (cfg->nlisteners == 0 || cfg->nregions == 0 || cfg->default_region >= cfg->nregions ||
        !cfg->regions[cfg->default_region].is_default)
        abort();
    for (size_t i = 0; i < cfg->nlisteners; i++)
        if (cfg->listeners[i].name == NULL || cfg->listeners[i].addr.salen == 0)
            abort();
    for (size_t i = 0; i < cfg->nregions; i++) {
        const struct cfg_region *r = &cfg->regions[i];
        /* A region may have no backend yet only when names stand for them (a load
         * without a resolver, as here, gives names no address). */
        if (r->name == NULL || (r->nbackends == 0 && r->nnames == 0) ||
            cfg_region_index(cfg, r->name) != (int)i)
            abort();
        for (size_t n = 0; n < r->nnames; n++)
            if (r->names[n].host == NULL || r->names[n].text == NULL || r->names[n].naddrs != 0 ||
                strlen(r->names[n].host) > CFG_NAME_MAX)
                abort();
        if (!(r->lat >= -90 && r->lat <= 90 && r->lon >= -180 && r->lon <= 180))
            abort();
    }
}

static void
check_errors(const char *errors)
{
    size_t len;

    if (errors == NULL)
        abort();
    len = strlen(errors);
    if (len == 0 || errors[len - 1] != '\n')
        abort();
    for (const char *line = errors; *line; line = strchr(line, '\n') + 1)
        if (strncmp(line, "fuzz.yaml", 9) != 0)
            abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *errors = (char *)"unset";
    struct cfg *cfg = cfg_load_text("fuzz.yaml", (const char *)data, size, &errors);

    if (cfg != NULL) {
        if (errors != NULL)
            abort();
        check_cfg(cfg);
        cfg_unref(cfg);
    } else {
        check_errors(errors);
        free(errors);
    }
    return 0;
}
