/* SPDX-License-Identifier: MIT */
/* The per-generation table of route_places.h: each place ranked by route_rank(), equal
 * orders stored once (found through a hash table that lives only while building). */
#include "route_places.h"

#include <stdlib.h>
#include <string.h>

#define ROUTE_PLACES_MAX_ORDERS 65535u

static uint32_t
order_hash(const uint8_t *order)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < ROUTE_MAX_REGIONS; i++)
        h = (h ^ order[i]) * 16777619u;
    return h;
}

int
route_places_init(struct route_places *p, const struct route_table *t, uint32_t n,
                  route_place_info_fn info, const void *ctx)
{
    memset(p, 0, sizeof(*p));
    if (n == 0)
        return 0;
    uint32_t cap = 64, hcap = 128;
    uint16_t *slots = calloc(hcap, sizeof(*slots)); /* order index + 1; 0 empty */
    p->places = malloc((size_t)n * sizeof(*p->places));
    p->orders = malloc(cap * sizeof(*p->orders));
    if (slots == NULL || p->places == NULL || p->orders == NULL)
        goto fail;
    for (uint32_t i = 0; i < n; i++) {
        struct geo_info where;
        uint8_t order[ROUTE_MAX_REGIONS] = {0};
        info(ctx, i, &where);
        route_rank(t, &where, order);
        p->places[i].country[0] = where.country[0];
        p->places[i].country[1] = where.country[0] ? where.country[1] : '\0';

        uint32_t h = order_hash(order) & (hcap - 1);
        while (slots[h] != 0 && memcmp(p->orders[slots[h] - 1], order, sizeof(order)) != 0)
            h = (h + 1) & (hcap - 1);
        if (slots[h] == 0) {
            if (p->norders == ROUTE_PLACES_MAX_ORDERS)
                goto fail;
            if (p->norders == cap) {
                cap *= 2;
                uint8_t(*grown)[ROUTE_MAX_REGIONS] = realloc(p->orders, cap * sizeof(*grown));
                if (grown == NULL)
                    goto fail;
                p->orders = grown;
            }
            memcpy(p->orders[p->norders], order, sizeof(order));
            slots[h] = (uint16_t)++p->norders;
            if (p->norders * 2 > hcap) { /* keep it half empty: rehash into twice the size */
                uint32_t ncap = hcap * 2;
                uint16_t *grown = calloc(ncap, sizeof(*grown));
                if (grown == NULL)
                    goto fail;
                for (uint32_t k = 0; k < p->norders; k++) {
                    uint32_t g = order_hash(p->orders[k]) & (ncap - 1);
                    while (grown[g] != 0)
                        g = (g + 1) & (ncap - 1);
                    grown[g] = (uint16_t)(k + 1);
                }
                free(slots);
                slots = grown;
                hcap = ncap;
            }
            p->places[i].order = (uint16_t)(p->norders - 1);
        } else {
            p->places[i].order = (uint16_t)(slots[h] - 1);
        }
    }
    free(slots);
    p->nplaces = n;
    return 0;

fail:
    free(slots);
    route_places_free(p);
    return -1;
}

void
route_places_free(struct route_places *p)
{
    free(p->places);
    free(p->orders);
    memset(p, 0, sizeof(*p));
}
