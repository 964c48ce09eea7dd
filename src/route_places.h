/* SPDX-License-Identifier: MIT */
/* Each GeoIP place's region order, made once per config generation. A place is a record of
 * the GeoIP database's IPv4 index (geo_lookup_place()); what route_rank() makes of it
 * depends only on the record and the regions, so it is ranked here, once for all
 * requests, and a request from an indexed IPv4 client reads its country and order from
 * a table that stays in the CPU's caches (4 bytes a place; the distinct orders, a few
 * dozen, shared) instead of the record itself. IPv6 clients and the CDN's location
 * headers are ranked per request as before. */
#ifndef MERIDIAN_ROUTE_PLACES_H
#define MERIDIAN_ROUTE_PLACES_H

#include <stdint.h>

#include "geo-t.h"
#include "route.h"

struct route_place {
    char country[2]; /* upper-case ISO code, or "\0\0" when unknown */
    uint16_t order;  /* index into orders */
};

struct route_places {
    uint32_t nplaces; /* 0: no table; rank per request */
    uint32_t norders;
    struct route_place *places;           /* owns */
    uint8_t (*orders)[ROUTE_MAX_REGIONS]; /* owns: the distinct orders */
};

/* What the database answers for place i (geo_place_info()). */
typedef void (*route_place_info_fn)(const void *ctx, uint32_t place, struct geo_info *out);

/* Rank `n` places for the regions of `t`. Returns 0, or -1 (with *p empty: requests rank
 * as they come) when memory ran out or the places have more than 65,535 distinct orders. */
int route_places_init(struct route_places *p, const struct route_table *t, uint32_t n,
                      route_place_info_fn info, const void *ctx);
void route_places_free(struct route_places *p);

static inline const uint8_t *
route_place_order(const struct route_places *p, uint32_t place)
{
    return p->orders[p->places[place].order];
}

#endif
