/* SPDX-License-Identifier: MIT */
/* The per-worker GeoIP answer cache (see geo_cache.h). */
#include "geo_cache.h"

#include <netinet/in.h>
#include <string.h>

#include "bigmem.h"
#include "geo.h"

struct geo_cache_slot {
    uint64_t hi, lo;     /* the address: IPv4 as ::ffff:a.b.c.d, so one key space */
    unsigned generation; /* 0: empty */
    int8_t rc;           /* geo_lookup's answer */
    struct geo_info info;
};

/* An address as two 64-bit halves, IPv4 mapped into IPv6. Returns -1 for other
 * families. */
static int
key_of(const struct sockaddr *sa, uint64_t *hi, uint64_t *lo)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
        uint32_t a;
        memcpy(&a, &sin->sin_addr, 4);
        *hi = 0;
        *lo = 0xffff00000000ull | a;
        return 0;
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
        memcpy(hi, sin6->sin6_addr.s6_addr, 8);
        memcpy(lo, sin6->sin6_addr.s6_addr + 8, 8);
        return 0;
    }
    return -1;
}

int
geo_cache_lookup(struct geo_cache *c, const struct geo_db *db, unsigned generation,
                 const struct sockaddr *sa, struct geo_info *out)
{
    uint64_t hi, lo;
    if (geo_lookup_is_indexed(db, sa) || key_of(sa, &hi, &lo) < 0)
        return geo_lookup(db, sa, out);
    if (c->slots == NULL) {
        c->slots = bigmem_alloc(2 * GEO_CACHE_SETS * sizeof(*c->slots));
        if (c->slots == NULL)
            return geo_lookup(db, sa, out);
    }
    /* A multiplicative hash of both halves; the top bits pick the set. */
    uint64_t h = (hi ^ (lo * 0x9e3779b97f4a7c15ull)) * 0xff51afd7ed558ccdull;
    _Static_assert(GEO_CACHE_SETS == 1 << 14, "the shift below takes 14 bits");
    struct geo_cache_slot *set = &c->slots[2 * (h >> (64 - 14))];
    for (int way = 0; way < 2; way++) {
        struct geo_cache_slot *slot = &set[way];
        if (slot->generation == generation && slot->hi == hi && slot->lo == lo) {
            c->hits++;
            *out = slot->info;
            if (way == 1) { /* most recently used first: the other is evicted next */
                struct geo_cache_slot tmp = set[0];
                set[0] = set[1];
                set[1] = tmp;
            }
            return set[0].rc;
        }
    }
    c->misses++;
    int rc = geo_lookup(db, sa, out);
    set[1] = set[0];
    struct geo_cache_slot *slot = &set[0];
    slot->hi = hi;
    slot->lo = lo;
    slot->generation = generation;
    slot->rc = (int8_t)rc;
    slot->info = *out;
    return rc;
}

void
geo_cache_deinit(struct geo_cache *c)
{
    bigmem_free(c->slots, 2 * GEO_CACHE_SETS * sizeof(*c->slots));
    c->slots = NULL;
}
