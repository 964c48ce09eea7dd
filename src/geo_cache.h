/* SPDX-License-Identifier: MIT */
/* A worker's cache of recent GeoIP answers, in front of geo_lookup(): a two-way
 * set-associative table keyed by client address and tagged with the config generation
 * whose database answered, so a reload never serves an answer from the database it
 * replaced. Walking a large City database's tree (about 24 nodes, most of them cache
 * misses in a 30 MB file) and decoding the record costs 1-2 microseconds, about a tenth
 * of a proxied request; the clients of an edge node come back (keep-alive, page loads,
 * a CDN's viewers), so most requests find their answer here. One per worker: no lock,
 * no atomic. Only lookups that walk the tree use it (IPv6 clients; IPv4 ones when the
 * database has no IPv4 index): an indexed IPv4 lookup costs about what a probe of a
 * table this size does, since both miss the CPU's caches. */
#ifndef MERIDIAN_GEO_CACHE_H
#define MERIDIAN_GEO_CACHE_H

#include <stdint.h>
#include <sys/socket.h>

#include "geo-t.h"

#define GEO_CACHE_SETS 16384 /* a power of two; two 64-byte slots each: 2 MiB per worker */

struct geo_db;
struct geo_cache_slot;

struct geo_cache {
    struct geo_cache_slot *slots; /* owns; allocated at the first lookup */
    uint64_t hits, misses;        /* the owning worker's, for a debugger or a profile */
};

/* geo_lookup() through the cache. `generation` tags the database `db` belongs to (a
 * config generation number, never 0). Same return values as geo_lookup(); when the cache
 * cannot be allocated, it simply asks the database. */
int geo_cache_lookup(struct geo_cache *c, const struct geo_db *db, unsigned generation,
                     const struct sockaddr *sa, struct geo_info *out);

void geo_cache_deinit(struct geo_cache *c);

#endif
