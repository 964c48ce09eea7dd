/* SPDX-License-Identifier: MIT */
/* Region choice: ranks the regions for a client (country, then great-circle distance, then
 * the default region) and walks that order with the caller's view of each region's health,
 * spilling part of a weakened region's traffic onward. Pure arithmetic on a table built once
 * per config generation; it knows nothing of backends, sockets or the event loop. */
#include "route.h"

#include <math.h>
#include <string.h>

#include "geo_place.h"

#define ROUTE_EARTH_KM 6371.0

/* Squared chords closer than this count as equal (they run 0..4; 1e-12 is micrometres on
 * the ground between distant points, centimetres between points a kilometre apart), so that
 * ties are broken by config index and not by the last bits of sin() and cos(). */
#define ROUTE_TIE_EPS 1e-12

/* Squared chord between two unit vectors: monotonic in the great-circle distance like the
 * dot product, but without the dot product's loss of precision between near points. */
static double
route_chord2(const double a[3], const double b[3])
{
    double dx = a[0] - b[0], dy = a[1] - b[1], dz = a[2] - b[2];
    return dx * dx + dy * dy + dz * dz;
}

/* Appends every region but `skip` (SIZE_MAX for none) to order[start..], nearest to `from`
 * first, ties by index. Insertion sort: at most 16 entries. Returns the new length. */
static size_t
route_sort_from(const struct route_table *t, const double from[3], size_t skip, uint8_t *order,
                size_t start)
{
    double key[ROUTE_MAX_REGIONS];
    size_t len = start;
    for (size_t r = 0; r < t->nregions; r++) {
        if (r == skip)
            continue;
        double d = route_chord2(from, t->pos[r]);
        /* Regions arrive in index order, so an equal key stays behind its elders. */
        size_t j = len;
        while (j > start && key[j - 1] > d + ROUTE_TIE_EPS) {
            key[j] = key[j - 1];
            order[j] = order[j - 1];
            j--;
        }
        key[j] = d;
        order[j] = (uint8_t)r;
        len++;
    }
    return len;
}

/* Index into by_country of a two-letter upper-case code, or -1. */
static int
route_country_index(const char *cc)
{
    if (cc[0] < 'A' || cc[0] > 'Z' || cc[1] < 'A' || cc[1] > 'Z')
        return -1;
    return (cc[0] - 'A') * 26 + (cc[1] - 'A');
}

int
route_table_init(struct route_table *t, size_t n, const double *lat, const double *lon,
                 const char *const *countries, size_t default_region, float spill_below)
{
    memset(t, 0, sizeof(*t));
    if (n == 0 || n > ROUTE_MAX_REGIONS || default_region >= n)
        return -1;
    if (!(spill_below >= 0.0f && spill_below <= 1.0f)) /* also refuses NaN */
        return -1;
    t->nregions = n;
    t->default_region = default_region;
    t->spill_below = spill_below;

    for (size_t i = 0; i < n; i++) {
        if (!isfinite(lat[i]) || !isfinite(lon[i]))
            return -1;
        geo_place_unit(lat[i], lon[i], t->pos[i]);
    }

    for (size_t i = 0; i < n; i++) {
        const char *s = countries ? countries[i] : NULL;
        if (!s)
            continue;
        size_t len = strlen(s);
        if (len % 2 != 0)
            return -1;
        for (size_t k = 0; k < len; k += 2) {
            int c = route_country_index(s + k);
            if (c < 0)
                return -1;
            if (t->by_country[c] == 0)
                t->by_country[c] = (uint8_t)(i + 1);
        }
    }

    for (size_t i = 0; i < n; i++) {
        t->order_from[i][0] = (uint8_t)i;
        route_sort_from(t, t->pos[i], i, t->order_from[i], 1);
    }
    return 0;
}

void
route_rank(const struct route_table *t, const struct geo_info *where, uint8_t *order)
{
    size_t first = SIZE_MAX;
    int c = route_country_index(where->country);
    if (c >= 0 && where->country[2] == '\0' && t->by_country[c] != 0)
        first = (size_t)t->by_country[c] - 1;

    /* A NaN or infinite coordinate is no coordinate: comparing NaN keys would give an
     * order that depends on the sort's path, not on the client. */
    if (where->has_coords && isfinite(where->lat) && isfinite(where->lon)) {
        size_t start = 0;
        if (first != SIZE_MAX)
            order[start++] = (uint8_t)first;
        route_sort_from(t, where->unit, first, order, start);
        return;
    }
    size_t from = first != SIZE_MAX ? first : t->default_region;
    memcpy(order, t->order_from[from], t->nregions);
}

/* murmur3's 32-bit finaliser over a Weyl step: a fresh, independent-looking number for the
 * next region's spill decision from the previous one (the step keeps 0 from being fixed). */
static uint32_t
route_mix(uint32_t x)
{
    x += 0x9e3779b9u;
    x ^= x >> 16;
    x *= 0x85ebca6bu;
    x ^= x >> 13;
    x *= 0xc2b2ae35u;
    x ^= x >> 16;
    return x;
}

int
route_choose(const struct route_table *t, const struct geo_info *where, uint32_t rnd,
             route_health_fn health, const void *ctx, struct route_choice *out)
{
    uint8_t order[ROUTE_MAX_REGIONS];
    route_rank(t, where, order);
    return route_choose_in_order(t, order, rnd, health, ctx, out);
}

int
route_choose_in_order(const struct route_table *t, const uint8_t *order, uint32_t rnd,
                      route_health_fn health, const void *ctx, struct route_choice *out)
{
    struct route_health h[ROUTE_MAX_REGIONS];
    size_t n = t->nregions;

    out->nearest = order[0];
    out->region = order[0];
    out->failed_over = false;
    out->spilled = false;

    /* Pass 1: regions with backends up; a weakened one keeps share / spill_below. */
    size_t fallback = SIZE_MAX;
    for (size_t k = 0; k < n; k++) {
        health(ctx, order[k], &h[k]);
        if (h[k].up == 0)
            continue;
        /* Backends not checked yet are not known to be down: a region coming up (its
         * first checks in flight) does not spill. */
        uint32_t alive = h[k].up + h[k].unchecked;
        if (alive < h[k].total && t->spill_below > 0.0f) {
            double share = (double)alive / (double)h[k].total;
            if (share < (double)t->spill_below) {
                double keep = share / (double)t->spill_below;
                double u = (double)(rnd >> 8) * (1.0 / 16777216.0);
                rnd = route_mix(rnd);
                if (!(u < keep)) {
                    if (fallback == SIZE_MAX)
                        fallback = k;
                    continue;
                }
            }
        }
        out->region = order[k];
        out->spilled = fallback != SIZE_MAX;
        out->failed_over = out->region != out->nearest;
        return 0;
    }
    /* Everyone with backends up spilled: the first of them takes its traffic back. */
    if (fallback != SIZE_MAX) {
        out->region = order[fallback];
        out->failed_over = out->region != out->nearest;
        return 0;
    }

    /* Pass 2: no backend up anywhere; try the nearest region with some not yet checked. */
    for (size_t k = 0; k < n; k++) {
        if (h[k].unchecked > 0) {
            out->region = order[k];
            out->failed_over = out->region != out->nearest;
            return 0;
        }
    }
    return -1;
}

double
route_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    double s_dlat = sin((lat2 - lat1) * GEO_PLACE_DEG / 2.0);
    double s_dlon = sin((lon2 - lon1) * GEO_PLACE_DEG / 2.0);
    double a =
        s_dlat * s_dlat + geo_place_cos_lat(lat1) * geo_place_cos_lat(lat2) * s_dlon * s_dlon;
    /* Rounding can push a just past 1 near the antipodes; comparisons keep a NaN a NaN. */
    if (a > 1.0)
        a = 1.0;
    if (a < 0.0)
        a = 0.0;
    return 2.0 * ROUTE_EARTH_KM * asin(sqrt(a));
}
