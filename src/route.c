/* SPDX-License-Identifier: MIT */
/* placeholder: being written */
#include "route.h"
#include <string.h>
int
route_table_init(struct route_table *t, size_t n, const double *lat, const double *lon,
                 const char *const *countries, size_t default_region, float spill_below)
{
    (void)lat; (void)lon; (void)countries;
    memset(t, 0, sizeof(*t));
    t->nregions = n;
    t->default_region = default_region;
    t->spill_below = spill_below;
    return 0;
}
void
route_rank(const struct route_table *t, const struct geo_info *where, uint8_t *order)
{
    (void)where;
    for (size_t i = 0; i < t->nregions; i++)
        order[i] = (uint8_t)i;
}
int
route_choose(const struct route_table *t, const struct geo_info *where, uint32_t rnd,
             route_health_fn health, const void *ctx, struct route_choice *out)
{
    (void)where; (void)rnd; (void)health; (void)ctx;
    out->region = out->nearest = (uint8_t)t->default_region;
    out->failed_over = out->spilled = false;
    return 0;
}
double
route_distance_km(double lat1, double lon1, double lat2, double lon2)
{
    (void)lat1; (void)lon1; (void)lat2; (void)lon2;
    return 0;
}
