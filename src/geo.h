/* SPDX-License-Identifier: MIT */
/* The GeoIP database: an MMDB file (MaxMind GeoIP2/GeoLite2 City or Country, DB-IP Lite)
 * opened read-only with libmaxminddb, memory-mapped. A database belongs to one config
 * generation: it is opened and checked when the generation is loaded, so `meridian -t`
 * and a reload refuse a missing, truncated or corrupt file and keep the old one; it is
 * closed when the generation is freed. Lookups are thread-safe (libmaxminddb only reads
 * the map) and allocate nothing. */
#ifndef MERIDIAN_GEO_H
#define MERIDIAN_GEO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "geo-t.h"

struct geo_db;

/* Open and check `path`: the metadata must be readable, the database an IP database
 * (not, say, an ASN one without country data is fine, but a file that is not MMDB is
 * not), and a set of probe lookups (IPv4 and IPv6) must walk the tree and decode their
 * records without error. Returns the database, or NULL with a one-line reason in `err`
 * ("cannot open: No such file", "not a MaxMind DB file", "corrupt search tree ..."). */
struct geo_db *geo_open(const char *path, char *err, size_t errlen);
/* Generations loaded from the same, unchanged file share one database: geo_ref() takes a
 * reference and geo_close() lets one go (the last one closes). Any thread. */
struct geo_db *geo_ref(struct geo_db *db);
void geo_close(struct geo_db *db);
/* Whether `db` was opened from `path` and the file there is still that one, unchanged. */
bool geo_same_file(const struct geo_db *db, const char *path);

/* IPv4 lookups are answered from a flat index of the database's IPv4 ranges built at
 * open (see geo.c); these say how many entries it holds (its distinct ranges; 0: no
 * index, the tree answers) and give the tree's own answer, for tests that check the two
 * agree. */
size_t geo_v4_ranges(const struct geo_db *db);

/* True when geo_lookup() answers `sa` from the IPv4 index: a few cache lines, no cheaper
 * for a cache in front of it (geo_cache.c asks). */
bool geo_lookup_is_indexed(const struct geo_db *db, const struct sockaddr *sa);
int geo_lookup_tree(const struct geo_db *db, const struct sockaddr *sa, struct geo_info *out);

/* The request path's lookup: IPv4 addresses that the index answers yield a place, the
 * number of the database record, 0 .. geo_places() - 1, without reading the record (one
 * cache line where geo_lookup() reads two); route.c turns each place into its region order
 * once per generation (route_places_init()), so a request needs nothing else of it.
 * Returns 0 with *place set, 1 not in the database, -1 a corrupt record, 2 not answered
 * by the index (IPv6, no index): ask geo_lookup(). */
int geo_lookup_place(const struct geo_db *db, const struct sockaddr *sa, uint32_t *place);
/* How many places the index has (0: none); what geo_lookup() answers for place `place`. */
uint32_t geo_places(const struct geo_db *db);
void geo_place_info(const struct geo_db *db, uint32_t place, struct geo_info *out);

/* A short description for logs and /status: "GeoIP2-City, 2 KiB, built 2024-..." */
const char *geo_describe(const struct geo_db *db);

/* Look up `sa` (AF_INET, or AF_INET6; an IPv4-mapped IPv6 address is looked up as IPv4).
 * Fills *out with what the record has: country.iso_code (else registered_country),
 * continent.code, location.latitude/longitude. Returns 0 found, 1 not in the database
 * (*out all unknown), -1 on a lookup or decoding error (corrupt data: *out all unknown;
 * counted by the caller, never fatal). */
int geo_lookup(const struct geo_db *db, const struct sockaddr *sa, struct geo_info *out);

#endif
