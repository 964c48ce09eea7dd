/* SPDX-License-Identifier: MIT */
/* Points on the globe as unit vectors: the one conversion from degrees, shared by the
 * places of clients (geo.c, client_ip.c) and of regions (route.c), so that a client and a
 * region at the same coordinates are at the same point, bit for bit. */
#ifndef MERIDIAN_GEO_PLACE_H
#define MERIDIAN_GEO_PLACE_H

#include <math.h>

#include "geo-t.h"

#define GEO_PLACE_DEG (3.14159265358979323846 / 180.0)

/* cos(lat) for a latitude in degrees. cos(90 deg) is 6e-17 in floating point, which would
 * leave the longitude a say at the poles (in ties, in a distance of 1e-12 km); pin it. */
static inline double
geo_place_cos_lat(double lat)
{
    return fabs(lat) == 90.0 ? 0.0 : cos(lat * GEO_PLACE_DEG);
}

/* Unit vector of a point given in degrees. */
static inline void
geo_place_unit(double lat, double lon, double v[3])
{
    double lambda = lon * GEO_PLACE_DEG;
    double clat = geo_place_cos_lat(lat);
    v[0] = clat * cos(lambda);
    v[1] = clat * sin(lambda);
    v[2] = sin(lat * GEO_PLACE_DEG);
}

/* Give `g` the coordinates lat/lon (degrees, as floats: what a record or a header holds)
 * and their unit vector. Coordinates that are not finite or out of range leave g without
 * coordinates. */
static inline void
geo_place_set(struct geo_info *g, float lat, float lon)
{
    if (!(isfinite(lat) && isfinite(lon) && lat >= -90.0f && lat <= 90.0f && lon >= -180.0f &&
          lon <= 180.0f)) {
        g->has_coords = false;
        return;
    }
    g->has_coords = true;
    g->lat = lat;
    g->lon = lon;
    geo_place_unit((double)lat, (double)lon, g->unit);
}

#endif
