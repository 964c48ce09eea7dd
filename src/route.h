/* SPDX-License-Identifier: MIT */
/* Which region serves a request. Today: the configured default region. This is the seam
 * where geo routing (client location -> nearest healthy region, failover to the next
 * nearest) plugs in; callers already pass what it will need. Pure code. */
#ifndef MERIDIAN_ROUTE_H
#define MERIDIAN_ROUTE_H

#include <stddef.h>
#include <sys/socket.h>

#include "cfg.h"

/* The index of the region for a client at `client`. */
size_t route_pick_region(const struct cfg *cfg, const struct sockaddr *client);

#endif
