/* SPDX-License-Identifier: MIT */
/* Region choice. */
#include "route.h"

size_t
route_pick_region(const struct cfg *cfg, const struct sockaddr *client)
{
    (void)client;
    return cfg->default_region;
}
