/* SPDX-License-Identifier: MIT */
/* The GeoIP database behind geo.h: opens an MMDB file with libmaxminddb (memory-mapped),
 * refuses it unless its whole search tree and its data records check out, and answers
 * lookups with country, continent and coordinates. It knows nothing of regions (route.c)
 * or of where the client address came from (client_ip.c). */
#include "geo.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <arpa/inet.h>
#include <maxminddb.h>

#include "bigmem.h"
#include "geo_place.h"

/* At open, at most this many distinct data records are decoded (an even sample beyond
 * it): every record of a test or sample file, a part of a full GeoLite2-City, whose
 * hundreds of thousands would add most of a second to every reload (~0.5 us each). The
 * search tree itself is always walked in full. */
#define GEO_VERIFY_RECORDS 16384

/* IPv4 lookups do not walk libmaxminddb's tree: a 30 MB million-network file makes that
 * two dozen dependent loads, most of them cache misses, plus decoding the record: 1-2 us,
 * a tenth of a proxied request. At open, the IPv4 part of the tree is flattened into
 * sorted ranges with the record of each decoded once, and laid out as DPDK's LPM lays out
 * routes (DIR-24-8): one 32-bit entry per /24, which for a /24 that one range covers is
 * that range's record number, and otherwise points at the /24's few ranges (their first
 * addresses' low bytes and records, side by side). A lookup is one load from the /24
 * table and one from the record, each a cache line: two dependent misses where the
 * request path pays them (the rest of a request evicts the index between lookups), where
 * a binary search over ranges paid four to six. The /24 table is 64 MiB of address
 * space; only the 2 MiB pages that hold a network are ever written, so a small database
 * costs little, and a million-network one all of it. Past GEO_V4_MAX_RANGES ranges or
 * GEO_V4_MAX_RECORDS records there is no index and the tree answers. */
#define GEO_V4_MAX_RANGES (8u << 20)
#define GEO_V4_MAX_RECORDS ((1u << 24) - 2)
#define GEO_V4_NONE UINT32_MAX /* a range no network covers */

/* A /24's entry: 0, no network; GEO_V4_CORRUPT, a record that did not decode; else its
 * record number + 1, or GEO_V4_SPLIT | where its ranges are in chunks[]: chunks[i] their
 * count n, chunks[i + 1 ... i + n] each (low byte of its first address) << 24 | (an entry
 * as above, 24 bits), in address order, the first one starting at the /24's first
 * address. The entry alone answers found / not found / corrupt and the record number
 * (geo_lookup_place()): no need to read the record. */
#define GEO_V4_SPLIT 0x80000000u
#define GEO_V4_CORRUPT 0xffffffu

/* One per distinct data record, alone in its cache line: the second line geo_lookup()
 * reads (geo_lookup_place() reads only the entry). Corrupt ones are never read: their
 * entries say so. */
struct geo_v4_record {
    struct geo_info info;
} __attribute__((aligned(64)));

/* One block from bigmem_alloc() (huge pages: see bigmem.h): this header, records[],
 * by24[] and chunks[]. */
struct geo_v4 {
    size_t size;      /* of the whole block */
    uint32_t nranges; /* distinct ranges (for tests) */
    uint32_t nrecords;
    struct geo_v4_record *records; /* one per distinct data record */
    uint32_t *by24;                /* 1 << 24 entries (above) */
    uint32_t *chunks;              /* the split /24s' ranges */
};

struct geo_db {
    atomic_int refs;   /* generations sharing it (geo_ref) */
    struct stat st;    /* the file as opened, for geo_same_file() */
    char *path;        /* owns: as given to geo_open() */
    MMDB_s mmdb;       /* owns the mapping of the file */
    struct geo_v4 *v4; /* owns: the flat IPv4 index, or NULL (see above) */
    char desc[160];    /* geo_describe()'s answer, built once at open */
};

/* Record paths read by every lookup (GeoIP2/GeoLite2 City and Country, DB-IP Lite). */
static const char *const path_country[] = {"country", "iso_code", NULL};
static const char *const path_registered[] = {"registered_country", "iso_code", NULL};
static const char *const path_continent[] = {"continent", "code", NULL};
static const char *const path_location[] = {"location", NULL};
static const char *const path_latitude[] = {"latitude", NULL};   /* within location */
static const char *const path_longitude[] = {"longitude", NULL}; /* within location */

/* Addresses looked up through the same code as geo_lookup() once the tree walk passed:
 * spread over both families, and those of MaxMind's test files. Not finding one is fine. */
static const char *const probe_addrs[] = {
    "1.1.1.1",       "8.8.8.8",
    "81.2.69.142",   "89.160.20.112",
    "175.16.199.0",  "202.196.224.0",
    "216.160.83.56", "2.125.160.216",
    "67.43.156.0",   "128.101.101.101",
    "149.101.100.0", "192.0.2.1",
    "0.0.0.0",       "255.255.255.255",
    "2001:218::",    "2001:480::",
    "2a02:cf40::",   "2c0f:ff40::",
    "::1",           "::",
    "2001:db8:1::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
};

/* Sets bit number `bit` (0 is the most significant) of a 128-bit address. */
static void
addr_set_bit(uint8_t addr[16], unsigned bit)
{
    addr[bit / 8] |= (uint8_t)(0x80u >> (bit % 8));
}

/* Writes "a.b.c.d/len" or "x::/len" for the network of `depth` bits at `addr` into buf,
 * IPv4 for an IPv4 database and for the IPv4 part (::/96) of an IPv6 one. */
static void
format_network(const MMDB_s *mmdb, const uint8_t addr[16], unsigned depth, char *buf, size_t len)
{
    char text[INET6_ADDRSTRLEN];
    static const uint8_t zero[12];

    if (mmdb->metadata.ip_version == 4) {
        inet_ntop(AF_INET, addr, text, sizeof(text));
        snprintf(buf, len, "%s/%u", text, depth);
    } else if (depth >= 96 && memcmp(addr, zero, sizeof(zero)) == 0) {
        inet_ntop(AF_INET, addr + 12, text, sizeof(text));
        snprintf(buf, len, "%s/%u", text, depth - 96);
    } else {
        inet_ntop(AF_INET6, addr, text, sizeof(text));
        snprintf(buf, len, "%s/%u", text, depth);
    }
}

/* Copies a two-letter code ("DE", "EU") out of `data` into out[3], upper-cased. Anything
 * else (missing, another type, another length, not letters) leaves out empty: an odd
 * value is unknown, not an error. */
static void
copy_code(const MMDB_entry_data_s *data, char out[3])
{
    out[0] = '\0';
    if (!data->has_data || data->type != MMDB_DATA_TYPE_UTF8_STRING || data->data_size != 2) {
        return;
    }
    for (int i = 0; i < 2; i++) {
        char c = data->utf8_string[i];
        if (c >= 'a' && c <= 'z') {
            c = (char)(c - 'a' + 'A');
        }
        if (c < 'A' || c > 'Z') {
            out[0] = '\0';
            return;
        }
        out[i] = c;
    }
    out[2] = '\0';
}

/* Reads a coordinate as a double; float and integer encodings are accepted too, since
 * other writers use them. Returns false when absent or of another type. */
static bool
read_degrees(const MMDB_entry_data_s *data, double *out)
{
    if (!data->has_data) {
        return false;
    }
    switch (data->type) {
    case MMDB_DATA_TYPE_DOUBLE:
        *out = data->double_value;
        return true;
    case MMDB_DATA_TYPE_FLOAT:
        *out = data->float_value;
        return true;
    case MMDB_DATA_TYPE_INT32:
        *out = data->int32;
        return true;
    case MMDB_DATA_TYPE_UINT16:
        *out = data->uint16;
        return true;
    case MMDB_DATA_TYPE_UINT32:
        *out = data->uint32;
        return true;
    default:
        return false;
    }
}

/* Reads one path of a record. Returns an MMDB status; a path the record does not have,
 * or whose shape differs (a string where a map was expected), is MMDB_SUCCESS with
 * data->has_data false. Only a broken record (bad data, pointer off the end) fails. */
static int
get_path(MMDB_entry_s *entry, MMDB_entry_data_s *data, const char *const *path)
{
    int status = MMDB_aget_value(entry, data, path);
    if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR) {
        data->has_data = false;
        return MMDB_SUCCESS;
    }
    if (status != MMDB_SUCCESS) {
        data->has_data = false;
    }
    return status;
}

/* Decodes the record at `entry` into *out (cleared first). Returns an MMDB status; on
 * failure *out is all unknown. The one decoder used by lookups and by the check at open. */
static int
decode_record(MMDB_entry_s entry, struct geo_info *out)
{
    MMDB_entry_data_s data;
    double lat, lon;
    bool has_lat, has_lon;
    int status;

    memset(out, 0, sizeof(*out));
    if ((status = get_path(&entry, &data, path_country)) != MMDB_SUCCESS) {
        goto fail;
    }
    copy_code(&data, out->country);
    if (out->country[0] == '\0') {
        if ((status = get_path(&entry, &data, path_registered)) != MMDB_SUCCESS) {
            goto fail;
        }
        copy_code(&data, out->country);
    }
    if ((status = get_path(&entry, &data, path_continent)) != MMDB_SUCCESS) {
        goto fail;
    }
    copy_code(&data, out->continent);
    /* Both coordinates from the location map, not twice past a City record's names. */
    if ((status = get_path(&entry, &data, path_location)) != MMDB_SUCCESS) {
        goto fail;
    }
    has_lat = has_lon = false;
    if (data.has_data && data.type == MMDB_DATA_TYPE_MAP) {
        MMDB_entry_s location = {.mmdb = entry.mmdb, .offset = data.offset};
        if ((status = get_path(&location, &data, path_latitude)) != MMDB_SUCCESS) {
            goto fail;
        }
        has_lat = read_degrees(&data, &lat);
        if ((status = get_path(&location, &data, path_longitude)) != MMDB_SUCCESS) {
            goto fail;
        }
        has_lon = read_degrees(&data, &lon);
    }
    if (has_lat && has_lon && isfinite(lat) && isfinite(lon) && lat >= -90.0 && lat <= 90.0 &&
        lon >= -180.0 && lon <= 180.0)
        geo_place_set(out, (float)lat, (float)lon);
    return MMDB_SUCCESS;

fail:
    memset(out, 0, sizeof(*out));
    return status;
}

/* The entry of `addr` (host order) in the flat index: 0, GEO_V4_CORRUPT or record + 1. */
static uint32_t
v4_entry_of(const struct geo_v4 *v4, uint32_t addr)
{
    uint32_t e = v4->by24[addr >> 8];
    if (e & GEO_V4_SPLIT) {
        /* The last range starting at or below addr's low byte; the first starts at 0. */
        const uint32_t *c = v4->chunks + (e & ~GEO_V4_SPLIT);
        uint32_t n = c[0], key = addr & 255;
        e = c[1] & 0xffffff;
        for (uint32_t i = 2; i <= n && c[i] >> 24 <= key; i++)
            e = c[i] & 0xffffff;
    }
    return e;
}

/* Looks `addr` (host order) up in the flat index. Same answers as the tree. */
static int
v4_lookup(const struct geo_v4 *v4, uint32_t addr, struct geo_info *out)
{
    uint32_t e = v4_entry_of(v4, addr);
    if (e == 0 || e == GEO_V4_CORRUPT) {
        memset(out, 0, sizeof(*out));
        return e == 0 ? 1 : -1;
    }
    *out = v4->records[e - 1].info;
    return 0;
}

/* geo_lookup() with the MMDB status of a failure in *status (MMDB_SUCCESS otherwise). */
static int
lookup_status(const struct geo_db *db, const struct sockaddr *sa, struct geo_info *out, int *status,
              bool use_index)
{
    struct sockaddr_in v4;
    MMDB_lookup_result_s res;
    int mmdb_error = MMDB_SUCCESS;

    memset(out, 0, sizeof(*out));
    *status = MMDB_SUCCESS;
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
            /* ::ffff:a.b.c.d is a.b.c.d: an IPv4 database has no IPv6 tree at all, and an
             * IPv6 one keeps IPv4 under ::/96, where libmaxminddb looks for AF_INET. */
            memset(&v4, 0, sizeof(v4));
            v4.sin_family = AF_INET;
            memcpy(&v4.sin_addr, &v6->sin6_addr.s6_addr[12], 4);
            sa = (const struct sockaddr *)&v4;
        }
    } else if (sa->sa_family != AF_INET) {
        *status = MMDB_INVALID_LOOKUP_PATH_ERROR;
        return -1;
    }
    if (sa->sa_family == AF_INET && db->v4 != NULL && use_index) {
        int rc = v4_lookup(db->v4, ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr), out);
        if (rc < 0)
            *status = MMDB_INVALID_DATA_ERROR;
        return rc;
    }

    res = MMDB_lookup_sockaddr(&db->mmdb, sa, &mmdb_error);
    if (mmdb_error == MMDB_IPV6_LOOKUP_IN_IPV4_DATABASE_ERROR) {
        return 1; /* an IPv4-only database does not know any IPv6 client */
    }
    if (mmdb_error != MMDB_SUCCESS) {
        *status = mmdb_error;
        return -1;
    }
    if (!res.found_entry) {
        return 1;
    }
    if ((*status = decode_record(res.entry, out)) != MMDB_SUCCESS) {
        return -1;
    }
    return 0;
}

/* Walks the whole search tree from the root, each node once (an IPv6 tree shares its
 * IPv4 subtree between ::/96, ::ffff:0:0/96 and 6to4), and checks that every record is a
 * node, empty, or data inside the data section; marks each data record's offset in
 * `seen` (one bit per byte of the data section) and counts the distinct ones.
 * Returns 0, or -1 with the reason in err. */
static int
verify_tree(const MMDB_s *mmdb, uint8_t *visited, uint8_t *seen, uint32_t *distinct, char *err,
            size_t errlen)
{
    struct frame {
        uint32_t node;
        uint16_t depth;
        uint8_t addr[16];
    } stack[2 * 129];
    size_t top = 0;
    unsigned bits = mmdb->metadata.ip_version == 6 ? 128 : 32;
    uint32_t node_count = mmdb->metadata.node_count;
    char net[64];

    memset(&stack[0], 0, sizeof(stack[0]));
    top = 1;
    while (top > 0) {
        struct frame f = stack[--top];
        MMDB_search_node_s node;
        int status;

        if (visited[f.node / 8] & (1u << (f.node % 8))) {
            continue;
        }
        visited[f.node / 8] |= (uint8_t)(1u << (f.node % 8));
        status = MMDB_read_node(mmdb, f.node, &node);
        if (status != MMDB_SUCCESS) {
            format_network(mmdb, f.addr, f.depth, net, sizeof(net));
            snprintf(err, errlen, "corrupt search tree at %s (node %" PRIu32 "): %s", net, f.node,
                     MMDB_strerror(status));
            return -1;
        }
        /* Right first, so that the left (lower) half is walked first. */
        for (int side = 1; side >= 0; side--) {
            uint64_t record = side ? node.right_record : node.left_record;
            uint8_t type = side ? node.right_record_type : node.left_record_type;
            MMDB_entry_s entry = side ? node.right_record_entry : node.left_record_entry;
            struct frame child = f;

            child.depth = (uint16_t)(f.depth + 1);
            if (side) {
                addr_set_bit(child.addr, f.depth);
            }
            switch (type) {
            case MMDB_RECORD_TYPE_SEARCH_NODE:
                if (child.depth >= bits) {
                    format_network(mmdb, child.addr, child.depth, net, sizeof(net));
                    snprintf(err, errlen,
                             "corrupt search tree at %s: deeper than %u bits (node %" PRIu32 ")",
                             net, bits, f.node);
                    return -1;
                }
                child.node = (uint32_t)record;
                stack[top++] = child;
                break;
            case MMDB_RECORD_TYPE_EMPTY:
                break;
            case MMDB_RECORD_TYPE_DATA:
                /* A record just past the nodes points into the 16-byte separator, which
                 * libmaxminddb turns into a huge offset. */
                if (entry.offset >= mmdb->data_section_size) {
                    goto outside;
                }
                if (!(seen[entry.offset / 8] & (1u << (entry.offset % 8)))) {
                    seen[entry.offset / 8] |= (uint8_t)(1u << (entry.offset % 8));
                    (*distinct)++;
                }
                break;
            default:
            outside:
                format_network(mmdb, child.addr, child.depth, net, sizeof(net));
                if (record == 0) {
                    /* libmaxminddb's one loop check: nothing may point at the root */
                    snprintf(err, errlen,
                             "corrupt search tree at %s: record points back to the root "
                             "(node %" PRIu32 ")",
                             net, f.node);
                    return -1;
                }
                snprintf(err, errlen,
                         "corrupt search tree at %s: record %" PRIu64
                         " points outside the data section (%" PRIu32 " nodes, %" PRIu32
                         " data bytes)",
                         net, record, node_count, mmdb->data_section_size);
                return -1;
            }
        }
    }
    return 0;
}

/* Decodes the data records marked in `seen` the way a lookup does: all of them when
 * there are at most GEO_VERIFY_RECORDS, else every k-th in file order. Returns 0, or -1
 * with the reason in err. */
static int
verify_records(const MMDB_s *mmdb, const uint8_t *seen, uint32_t distinct, char *err, size_t errlen)
{
    uint32_t stride = distinct / GEO_VERIFY_RECORDS + 1;
    uint32_t n = 0;

    for (uint32_t off = 0; off < mmdb->data_section_size; off++) {
        struct geo_info info;
        MMDB_entry_s entry = {.mmdb = mmdb, .offset = off};
        int status;

        if (off % 8 == 0 && seen[off / 8] == 0) {
            off += 7; /* nothing starts in these 8 bytes */
            continue;
        }
        if (!(seen[off / 8] & (1u << (off % 8))) || n++ % stride != 0) {
            continue;
        }
        status = decode_record(entry, &info);
        if (status != MMDB_SUCCESS) {
            snprintf(err, errlen, "corrupt data record at data offset %" PRIu32 ": %s", off,
                     MMDB_strerror(status));
            return -1;
        }
    }
    return 0;
}

/* Looks up probe_addrs through lookup_status(). Returns 0, or -1 with the reason. */
static int
verify_probes(const struct geo_db *db, char *err, size_t errlen)
{
    for (size_t i = 0; i < sizeof(probe_addrs) / sizeof(probe_addrs[0]); i++) {
        struct sockaddr_storage ss;
        struct geo_info info;
        int status;

        memset(&ss, 0, sizeof(ss));
        if (strchr(probe_addrs[i], ':') != NULL) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            s6->sin6_family = AF_INET6;
            inet_pton(AF_INET6, probe_addrs[i], &s6->sin6_addr);
        } else {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            s4->sin_family = AF_INET;
            inet_pton(AF_INET, probe_addrs[i], &s4->sin_addr);
        }
        if (lookup_status(db, (const struct sockaddr *)&ss, &info, &status, false) < 0) {
            snprintf(err, errlen, "lookup of %s failed: %s", probe_addrs[i], MMDB_strerror(status));
            return -1;
        }
    }
    return 0;
}

/* Runs the checks geo_open() promises on an opened database. Returns 0 or -1 with err. */
static int
verify(const struct geo_db *db, char *err, size_t errlen)
{
    const MMDB_s *mmdb = &db->mmdb;
    uint8_t *visited, *seen;
    uint32_t distinct = 0;
    int rc = -1;

    if (mmdb->metadata.ip_version != 4 && mmdb->metadata.ip_version != 6) {
        snprintf(err, errlen, "not an IP database (metadata ip_version %u)",
                 (unsigned)mmdb->metadata.ip_version);
        return -1;
    }
    if (mmdb->metadata.node_count == 0) {
        snprintf(err, errlen, "corrupt search tree: no nodes");
        return -1;
    }
    visited = calloc((size_t)mmdb->metadata.node_count / 8 + 1, 1);
    seen = calloc((size_t)mmdb->data_section_size / 8 + 1, 1);
    if (visited == NULL || seen == NULL) {
        snprintf(err, errlen, "out of memory checking the database");
        goto free_maps;
    }
    if (verify_tree(mmdb, visited, seen, &distinct, err, errlen) < 0 ||
        verify_records(mmdb, seen, distinct, err, errlen) < 0 ||
        verify_probes(db, err, errlen) < 0) {
        goto free_maps;
    }
    rc = 0;

free_maps:
    free(seen);
    free(visited);
    return rc;
}

/* Fills db->desc from the metadata: "GeoIP2-City (22 KiB, IPv6, 1234 nodes, built
 * 2023-09-26)". database_type comes from the file, so only printable ASCII is kept. */
/* ---- the flat IPv4 index ---- */

struct v4_builder {
    /* The ranges in address order, before they are laid out by /24. */
    struct v4_range {
        uint32_t start;  /* first address */
        uint32_t record; /* index into records, or GEO_V4_NONE */
    } * ranges;
    uint32_t nranges, cap;
    /* Data offset -> record index, open addressing (offset + 1; 0 = empty). */
    uint32_t *keys, *vals;
    uint32_t hcap;
    /* Each distinct record, decoded (not yet in its cache line: realloc'ed). */
    struct v4_decoded {
        struct geo_info info;
        int8_t rc;
    } * records;
    uint32_t nrecords, rcap;
    const MMDB_s *mmdb;
};

static void
v4_free(struct geo_v4 *v4)
{
    if (v4 != NULL)
        bigmem_free(v4, v4->size);
}

/* The record index for data at `offset`, decoded the first time. UINT32_MAX: out of
 * memory, or more records than an index holds. */
static uint32_t
v4_record(struct v4_builder *b, uint32_t offset)
{
    if (b->nrecords * 2 >= b->hcap) {
        uint32_t ncap = b->hcap ? b->hcap * 2 : 4096;
        uint32_t *keys = calloc(ncap, sizeof(*keys)), *vals = calloc(ncap, sizeof(*vals));
        if (keys == NULL || vals == NULL) {
            free(keys);
            free(vals);
            return UINT32_MAX;
        }
        for (uint32_t i = 0; i < b->hcap; i++) {
            if (b->keys[i] == 0)
                continue;
            uint32_t h = (b->keys[i] * 2654435761u) & (ncap - 1);
            while (keys[h] != 0)
                h = (h + 1) & (ncap - 1);
            keys[h] = b->keys[i];
            vals[h] = b->vals[i];
        }
        free(b->keys);
        free(b->vals);
        b->keys = keys;
        b->vals = vals;
        b->hcap = ncap;
    }
    uint32_t key = offset + 1, h = (key * 2654435761u) & (b->hcap - 1);
    while (b->keys[h] != 0) {
        if (b->keys[h] == key)
            return b->vals[h];
        h = (h + 1) & (b->hcap - 1);
    }
    if (b->nrecords >= GEO_V4_MAX_RECORDS)
        return UINT32_MAX;
    if (b->nrecords == b->rcap) {
        uint32_t ncap = b->rcap ? b->rcap * 2 : 1024;
        struct v4_decoded *grown = realloc(b->records, ncap * sizeof(*grown));
        if (grown == NULL)
            return UINT32_MAX;
        b->records = grown;
        b->rcap = ncap;
    }
    struct v4_decoded *rec = &b->records[b->nrecords];
    MMDB_entry_s entry = {.mmdb = b->mmdb, .offset = offset};
    rec->rc = decode_record(entry, &rec->info) == MMDB_SUCCESS ? 0 : -1;
    b->keys[h] = key;
    b->vals[h] = b->nrecords;
    return b->nrecords++;
}

/* Append the range starting at `start` with `record`, merged with the one before when
 * they answer alike. Returns 0, or -1 when full or out of memory. */
static int
v4_append(struct v4_builder *b, uint32_t start, uint32_t record)
{
    if (b->nranges > 0 && b->ranges[b->nranges - 1].record == record)
        return 0;
    if (b->nranges == b->cap) {
        if (b->cap >= GEO_V4_MAX_RANGES)
            return -1;
        uint32_t ncap = b->cap ? b->cap * 2 : 65536;
        struct v4_range *grown = realloc(b->ranges, ncap * sizeof(*grown));
        if (grown == NULL)
            return -1;
        b->ranges = grown;
        b->cap = ncap;
    }
    b->ranges[b->nranges++] = (struct v4_range){start, record};
    return 0;
}

/* A range's record as a /24 entry or chunk element holds it: number + 1, 0 for none,
 * GEO_V4_CORRUPT for one that did not decode. */
static uint32_t
v4_entry(const struct v4_builder *b, uint32_t record)
{
    if (record == GEO_V4_NONE)
        return 0;
    return b->records[record].rc < 0 ? GEO_V4_CORRUPT : record + 1;
}

/* The next /24 from ranges[*k] on that more than one range meets (a range starts inside
 * it): sets *blk, *first (the range covering its first address) and *end (past the last
 * range starting in it), and moves *k past it. Returns false when there is none. */
static bool
v4_next_split(const struct v4_builder *b, uint32_t *k, uint32_t *blk, uint32_t *first,
              uint32_t *end)
{
    while (*k < b->nranges) {
        uint32_t j = *k, x = b->ranges[j].start >> 8;
        while (*k < b->nranges && b->ranges[*k].start >> 8 == x)
            (*k)++;
        if (*k - j == 1 && (b->ranges[j].start & 255) == 0)
            continue; /* one range, starting at the /24's first address */
        /* ranges[0] starts at 0, so a range starting inside a /24 has one before it. */
        *blk = x;
        *first = (b->ranges[j].start & 255) == 0 ? j : j - 1;
        *end = *k;
        return true;
    }
    return false;
}

/* Lays the builder's ranges out by /24 (see struct geo_v4) in one block with its records.
 * Returns the index, or NULL when out of memory. */
static struct geo_v4 *
v4_pack(const struct v4_builder *b)
{
    uint32_t k = 0, blk, first, end;
    size_t nchunks = 0;
    while (v4_next_split(b, &k, &blk, &first, &end))
        nchunks += 1 + end - first;
    if (nchunks >= GEO_V4_SPLIT)
        return NULL;
    size_t records_at = (sizeof(struct geo_v4) + 63) & ~(size_t)63,
           by24_at = records_at + (size_t)b->nrecords * sizeof(struct geo_v4_record),
           chunks_at = by24_at + ((size_t)1 << 24) * sizeof(uint32_t),
           size = chunks_at + nchunks * sizeof(uint32_t);
    uint8_t *block = bigmem_alloc(size);
    if (block == NULL)
        return NULL;
    struct geo_v4 *v4 = (struct geo_v4 *)block;
    v4->size = size;
    v4->nranges = b->nranges;
    v4->nrecords = b->nrecords;
    v4->records = (struct geo_v4_record *)(block + records_at);
    v4->by24 = (uint32_t *)(block + by24_at);
    v4->chunks = (uint32_t *)(block + chunks_at);
    for (uint32_t i = 0; i < b->nrecords; i++)
        v4->records[i].info = b->records[i].info;

    /* Each range's whole /24s. Entries that stay 0 (no network) are never written, so the
     * pages of unrouted space are never touched. */
    for (uint32_t r = 0; r < b->nranges; r++) {
        uint32_t e = v4_entry(b, b->ranges[r].record);
        uint64_t from = ((uint64_t)b->ranges[r].start + 255) >> 8,
                 to = (r + 1 < b->nranges ? b->ranges[r + 1].start : (uint64_t)1 << 32) >> 8;
        for (uint64_t x = from; e != 0 && x < to; x++)
            v4->by24[x] = e;
    }
    /* Then the split ones. */
    uint32_t at = 0;
    k = 0;
    while (v4_next_split(b, &k, &blk, &first, &end)) {
        uint32_t *c = v4->chunks + at;
        c[0] = end - first;
        for (uint32_t i = first; i < end; i++) {
            uint32_t low = i == first ? 0 : b->ranges[i].start & 255;
            c[1 + i - first] = low << 24 | v4_entry(b, b->ranges[i].record);
        }
        v4->by24[blk] = GEO_V4_SPLIT | at;
        at += 1 + end - first;
    }
    return v4;
}

/* Flattens the IPv4 tree (the whole tree of an IPv4 database, ::/96 of an IPv6 one),
 * which verify() has already walked and found sound. Returns the index, or NULL when
 * there is no IPv4 part, it is too large, or memory ran out: lookups then walk the
 * tree. */
static struct geo_v4 *
v4_build(const MMDB_s *mmdb)
{
    struct v4_builder b = {.mmdb = mmdb};
    struct frame {
        uint32_t node; /* a search node, or for a leaf: the record index */
        uint32_t start;
        uint8_t depth;
        bool leaf;
    } stack[2 * 34];
    size_t top = 0;
    uint32_t node = 0;

    if (mmdb->metadata.ip_version == 6) {
        /* IPv4 a.b.c.d lives at ::a.b.c.d. */
        for (int i = 0; i < 96; i++) {
            MMDB_search_node_s n;
            if (MMDB_read_node(mmdb, node, &n) != MMDB_SUCCESS ||
                n.left_record_type != MMDB_RECORD_TYPE_SEARCH_NODE)
                return NULL; /* no IPv4 networks, or all of IPv4 is one: the tree will do */
            node = (uint32_t)n.left_record;
        }
    }
    /* Each node of a tree is reached once; a file whose records share nodes could make
     * this walk exponential, so it stops (and the tree serves) past the node count. */
    uint64_t budget = (uint64_t)mmdb->metadata.node_count + 64;
    stack[top++] = (struct frame){node, 0, 0, false};
    while (top > 0) {
        struct frame f = stack[--top];
        if (!f.leaf && budget-- == 0)
            goto fail;
        if (f.leaf) {
            if (v4_append(&b, f.start, f.node) < 0)
                goto fail;
            continue;
        }
        MMDB_search_node_s n;
        if (f.depth >= 32 || MMDB_read_node(mmdb, f.node, &n) != MMDB_SUCCESS)
            goto fail;
        /* Right first on the stack, so that the lower half comes out first. */
        for (int side = 1; side >= 0; side--) {
            uint8_t type = side ? n.right_record_type : n.left_record_type;
            struct frame child = {0, f.start | (side ? 1u << (31 - f.depth) : 0),
                                  (uint8_t)(f.depth + 1), true};
            if (type == MMDB_RECORD_TYPE_SEARCH_NODE) {
                child.node = (uint32_t)(side ? n.right_record : n.left_record);
                child.leaf = false;
            } else if (type == MMDB_RECORD_TYPE_DATA) {
                MMDB_entry_s e = side ? n.right_record_entry : n.left_record_entry;
                child.node = v4_record(&b, e.offset);
                if (child.node == UINT32_MAX)
                    goto fail;
            } else {
                child.node = GEO_V4_NONE;
            }
            stack[top++] = child;
        }
    }
    struct geo_v4 *v4 = NULL;
    if (b.nranges > 0 && b.ranges[0].start == 0)
        v4 = v4_pack(&b);
    free(b.ranges);
    free(b.records);
    free(b.keys);
    free(b.vals);
    return v4;

fail:
    free(b.ranges);
    free(b.records);
    free(b.keys);
    free(b.vals);
    return NULL;
}

static void
describe(struct geo_db *db)
{
    const MMDB_metadata_s *md = &db->mmdb.metadata;
    char type[64] = "unknown type";
    char built[32] = "unknown";
    time_t epoch = (time_t)md->build_epoch;
    struct tm tm;
    long long kib;

    if (md->database_type != NULL && md->database_type[0] != '\0') {
        size_t i;
        for (i = 0; md->database_type[i] != '\0' && i < sizeof(type) - 1; i++) {
            char c = md->database_type[i];
            type[i] = (c >= 0x20 && c < 0x7f) ? c : '?';
        }
        type[i] = '\0';
    }
    if (md->build_epoch > 0 && gmtime_r(&epoch, &tm) != NULL) {
        strftime(built, sizeof(built), "%Y-%m-%d", &tm);
    }
    kib = (db->mmdb.file_size + 512) / 1024;
    snprintf(db->desc, sizeof(db->desc), "%s (%lld KiB, IPv%u, %" PRIu32 " nodes, built %s)", type,
             (long long)(kib > 0 ? kib : 1), (unsigned)md->ip_version, md->node_count, built);
}

/* Turns an MMDB_open() failure into geo_open()'s one-line reason. */
static void
open_error(int status, int saved_errno, char *err, size_t errlen)
{
    switch (status) {
    case MMDB_FILE_OPEN_ERROR:
    case MMDB_IO_ERROR:
        snprintf(err, errlen, "cannot open: %s", strerror(saved_errno));
        break;
    case MMDB_INVALID_METADATA_ERROR:
        snprintf(err, errlen, "not a MaxMind DB file, or truncated (invalid metadata)");
        break;
    case MMDB_INVALID_DATA_ERROR:
        /* the metadata marker is there but its map does not decode: cut in the map */
        snprintf(err, errlen, "not a MaxMind DB file, or truncated (corrupt metadata)");
        break;
    case MMDB_UNKNOWN_DATABASE_FORMAT_ERROR:
        snprintf(err, errlen, "unsupported MaxMind DB format version (%s)", MMDB_strerror(status));
        break;
    default:
        snprintf(err, errlen, "cannot open: %s", MMDB_strerror(status));
        break;
    }
}

struct geo_db *
geo_open(const char *path, char *err, size_t errlen)
{
    struct geo_db *db;
    struct stat st;
    int status;

    if (path == NULL || path[0] == '\0') {
        snprintf(err, errlen, "no file name");
        return NULL;
    }
    /* libmaxminddb's own answers to these are "Invalid argument" from mmap. */
    if (stat(path, &st) < 0) {
        snprintf(err, errlen, "cannot open: %s", strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "not a regular file");
        return NULL;
    }
    if (st.st_size == 0) {
        snprintf(err, errlen, "empty file");
        return NULL;
    }

    db = calloc(1, sizeof(*db));
    if (db == NULL || (db->path = strdup(path)) == NULL) {
        free(db);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&db->refs, 1);
    db->st = st;
    errno = 0;
    status = MMDB_open(path, MMDB_MODE_MMAP, &db->mmdb);
    if (status != MMDB_SUCCESS) {
        open_error(status, errno, err, errlen);
        goto free_db; /* MMDB_open() already released what it had taken */
    }
    if (verify(db, err, errlen) < 0) {
        goto close_mmdb;
    }
    db->v4 = v4_build(&db->mmdb);
    describe(db);
    return db;

close_mmdb:
    MMDB_close(&db->mmdb);
free_db:
    free(db->path);
    free(db);
    return NULL;
}

struct geo_db *
geo_ref(struct geo_db *db)
{
    if (db != NULL)
        atomic_fetch_add_explicit(&db->refs, 1, memory_order_relaxed);
    return db;
}

/* The same path, and the file there is the one that was opened, unchanged: same inode,
 * size and modification time (a database replaced by rename, as geoipupdate does, or
 * rewritten in place, is opened anew). */
bool
geo_same_file(const struct geo_db *db, const char *path)
{
    struct stat st;
    if (db == NULL || path == NULL || strcmp(db->path, path) != 0 || stat(path, &st) < 0)
        return false;
    return st.st_dev == db->st.st_dev && st.st_ino == db->st.st_ino &&
           st.st_size == db->st.st_size && st.st_mtim.tv_sec == db->st.st_mtim.tv_sec &&
           st.st_mtim.tv_nsec == db->st.st_mtim.tv_nsec;
}

void
geo_close(struct geo_db *db)
{
    if (db == NULL || atomic_fetch_sub_explicit(&db->refs, 1, memory_order_acq_rel) != 1) {
        return;
    }
    v4_free(db->v4);
    MMDB_close(&db->mmdb);
    free(db->path);
    free(db);
}

const char *
geo_describe(const struct geo_db *db)
{
    return db != NULL ? db->desc : "no database";
}

int
geo_lookup(const struct geo_db *db, const struct sockaddr *sa, struct geo_info *out)
{
    int status;

    if (db == NULL || sa == NULL) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return lookup_status(db, sa, out, &status, true);
}

int
geo_lookup_tree(const struct geo_db *db, const struct sockaddr *sa, struct geo_info *out)
{
    int status;

    if (db == NULL || sa == NULL) {
        memset(out, 0, sizeof(*out));
        return -1;
    }
    return lookup_status(db, sa, out, &status, false);
}

size_t
geo_v4_ranges(const struct geo_db *db)
{
    return db != NULL && db->v4 != NULL ? db->v4->nranges : 0;
}

bool
geo_lookup_is_indexed(const struct geo_db *db, const struct sockaddr *sa)
{
    if (db == NULL || db->v4 == NULL)
        return false;
    if (sa->sa_family == AF_INET)
        return true;
    return sa->sa_family == AF_INET6 &&
           IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr);
}

uint32_t
geo_places(const struct geo_db *db)
{
    return db != NULL && db->v4 != NULL ? db->v4->nrecords : 0;
}

void
geo_place_info(const struct geo_db *db, uint32_t place, struct geo_info *out)
{
    *out = db->v4->records[place].info;
}

int
geo_lookup_place(const struct geo_db *db, const struct sockaddr *sa, uint32_t *place)
{
    uint32_t addr;
    if (db == NULL || db->v4 == NULL)
        return 2;
    if (sa->sa_family == AF_INET) {
        addr = ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr);
    } else if (sa->sa_family == AF_INET6 &&
               IN6_IS_ADDR_V4MAPPED(&((const struct sockaddr_in6 *)sa)->sin6_addr)) {
        const uint8_t *b = &((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr[12];
        addr = (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
    } else {
        return 2;
    }
    uint32_t e = v4_entry_of(db->v4, addr);
    if (e == 0)
        return 1;
    if (e == GEO_V4_CORRUPT)
        return -1;
    *place = e - 1;
    return 0;
}
