/* SPDX-License-Identifier: MIT */
/* Where a client is, as far as we know: the types shared by the GeoIP lookup (geo.c), the
 * CDN's location headers (client_ip.c) and the region choice (route.c). Types only; the
 * one way to set coordinates is geo_place_set() (geo_place.h). */
#ifndef MERIDIAN_GEO_T_H
#define MERIDIAN_GEO_T_H

#include <stdbool.h>

/* A client's place. Every field may be unknown: a Country database has no coordinates, a
 * private address has nothing at all. Codes are upper case ISO 3166-1 alpha-2 countries
 * ("GB") and MaxMind's two-letter continents ("EU"), "" when unknown. */
struct geo_info {
    char country[3];
    char continent[3];
    bool has_coords;
    float lat, lon; /* degrees; valid only with has_coords */
    /* The same point as a unit vector, what route.c measures distance with: computed once
     * where the place is learnt (a database record, at open; the CDN's headers) so that
     * no request pays for sin() and cos(). Valid only with has_coords. */
    double unit[3];
};

#endif
