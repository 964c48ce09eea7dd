/* SPDX-License-Identifier: MIT */
/* Which region serves a request: the nearest healthy one. "Nearest" is a region that
 * lists the client's country (an explicit country wins), else the smallest great-circle
 * distance from the client's coordinates, else - when the client has neither - the
 * default region; the rest follow by distance (from the client's coordinates when
 * known, else from the first region), ties broken by the order of the config file.
 * "Healthy" comes from the caller through a callback, as lb.h does for backends, so this
 * is pure code: no allocation, no locks, no I/O; table-tested.
 *
 * A region whose share of backends not down (up, or not checked yet) is below
 * `spill_below` keeps only share / spill_below of its traffic and passes the rest on to the next
 * region in order (Envoy's priority levels with overprovisioning): a region left with one backend
 * of four does not take all of its clients onto that one. */
#ifndef MERIDIAN_ROUTE_H
#define MERIDIAN_ROUTE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "geo-t.h"

#define ROUTE_MAX_REGIONS 16

/* What route_choose needs of the config, precomputed once per generation. */
struct route_table {
    size_t nregions; /* 1..ROUTE_MAX_REGIONS */
    size_t default_region;
    float spill_below;                /* 0..1; 0 turns spilling off (default 0.5) */
    double pos[ROUTE_MAX_REGIONS][3]; /* each region's location as a unit vector */
    /* Region index + 1 for each country ("AA".."ZZ" as (c0-'A')*26 + c1-'A') that a
     * region lists; 0 for countries no region lists. */
    uint8_t by_country[26 * 26];
    /* Each region's other regions by distance from it (itself first): the order for a
     * client that has a country but no coordinates, or none at all. */
    uint8_t order_from[ROUTE_MAX_REGIONS][ROUTE_MAX_REGIONS];
};

/* Fill `t` for `n` regions at lat[i]/lon[i] (degrees), `default_region`, and the
 * countries: countries[i] is a string of concatenated two-letter codes ("GBDEFR") or
 * NULL. A country listed by two regions goes to the first. Returns 0, or -1 when n is 0
 * or above ROUTE_MAX_REGIONS, default_region >= n, spill_below is not within 0..1, a
 * coordinate is not finite, or a code is not two letters A..Z. */
int route_table_init(struct route_table *t, size_t n, const double *lat, const double *lon,
                     const char *const *countries, size_t default_region, float spill_below);

/* A region's health as the caller sees it now: backends up, backends not yet checked
 * (UNCHECKED: a region with none up but some unchecked is used only when no region has
 * any backend up), and the total. */
struct route_health {
    uint32_t up;
    uint32_t unchecked;
    uint32_t total;
};
typedef void (*route_health_fn)(const void *ctx, size_t region, struct route_health *out);

/* The regions in order of preference for a client at `where` (see the file comment):
 * fills order[0..nregions-1]. Distance is measured from where->unit, so coordinates must
 * have been set with geo_place_set(). A NaN or infinite coordinate counts as no coordinates; a
 * country that is not two upper-case letters, or that no region lists, as no country. */
void route_rank(const struct route_table *t, const struct geo_info *where, uint8_t *order);

struct route_choice {
    uint8_t region;   /* the region chosen */
    uint8_t nearest;  /* order[0]: where the client would go if all were well */
    bool failed_over; /* region != nearest */
    bool spilled;     /* ... because the nearer one(s) had too few backends up */
};

/* Choose a region for a client at `where`. `rnd` is a uniformly random 32-bit number
 * (the caller's cheap generator): it decides spilling. Returns 0 with *out set, or -1
 * when no region has a backend up or unchecked (the caller answers 503; out->nearest is
 * still set, for its log line). */
int route_choose(const struct route_table *t, const struct geo_info *where, uint32_t rnd,
                 route_health_fn health, const void *ctx, struct route_choice *out);

/* route_choose() for a client whose order route_rank() has already given (a failover's
 * second choice; a place's order made once per generation: route_places.h). */
int route_choose_in_order(const struct route_table *t, const uint8_t *order, uint32_t rnd,
                          route_health_fn health, const void *ctx, struct route_choice *out);

/* Great-circle distance in km between two points in degrees (haversine, mean Earth
 * radius 6371 km); NaN if an input is NaN. For /route's answer and the tests. */
double route_distance_km(double lat1, double lon1, double lat2, double lon2);

#endif
