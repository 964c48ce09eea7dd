/* SPDX-License-Identifier: MIT */
/* Tests for geo.c against real MMDB files: MaxMind's own test databases (../shared/geoip,
 * City, Country and the deliberately broken ones), files this test damages itself, and the
 * project's sample database built from geoip/sample.json into the build tree. */
#include "geo.h"
#include "geo_cache.h"

#include <maxminddb.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* MaxMind's test databases sit beside the checkout (SRCDIR/../shared/geoip), or where
 * $MERIDIAN_SHARED_GEOIP says. A tree that has neither (`make distcheck` unpacks the
 * tarball elsewhere) skips the tests that need them. */
static char shared_dir[1024];

/* Returns the path of `name` in the shared directory (a static buffer, one at a time),
 * or skips the calling test when there is no shared directory. */
static const char *
shared(const char *name)
{
    static char path[1200];
    if (shared_dir[0] == '\0') {
        print_message("  ../shared/geoip not found: skipped\n");
        skip();
    }
    snprintf(path, sizeof(path), "%s/%s", shared_dir, name);
    return path;
}

#define CITY shared("GeoIP2-City-Test.mmdb")

/* One expected lookup: rc 0 found (then the fields), 1 not in the database. */
struct lookup_case {
    const char *addr;
    int rc;
    const char *country;
    const char *continent;
    bool has_coords;
    double lat, lon;
};

/* Fills *ss from "1.2.3.4" or "2001:db8::1". */
static void
make_sa(const char *text, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (strchr(text, ':') != NULL) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
        s6->sin6_family = AF_INET6;
        assert_int_equal(inet_pton(AF_INET6, text, &s6->sin6_addr), 1);
    } else {
        struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
        s4->sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, text, &s4->sin_addr), 1);
    }
}

static struct geo_db *
open_ok(const char *path)
{
    char err[256] = "";
    struct geo_db *db = geo_open(path, err, sizeof(err));
    if (db == NULL) {
        fail_msg("geo_open(%s): %s", path, err);
    }
    return db;
}

/* Opens `path`, expects refusal, and checks the reason contains `want`. */
static void
expect_refused(const char *path, const char *want)
{
    char err[256] = "";
    struct geo_db *db = geo_open(path, err, sizeof(err));
    if (db != NULL) {
        geo_close(db);
        fail_msg("geo_open(%s) accepted the file", path);
    }
    print_message("  %s: %s\n", path, err);
    assert_true(err[0] != '\0');
    assert_null(strchr(err, '\n'));
    if (strstr(err, want) == NULL) {
        fail_msg("geo_open(%s): reason \"%s\" lacks \"%s\"", path, err, want);
    }
}

static void
check_cases(const struct geo_db *db, const struct lookup_case *cases, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const struct lookup_case *c = &cases[i];
        struct sockaddr_storage ss;
        struct geo_info info;
        int rc;

        make_sa(c->addr, &ss);
        memset(&info, 0x5a, sizeof(info));
        rc = geo_lookup(db, (const struct sockaddr *)&ss, &info);
        if (rc != c->rc) {
            fail_msg("%s: rc %d, want %d", c->addr, rc, c->rc);
        }
        if (rc != 0) {
            assert_string_equal(info.country, "");
            assert_string_equal(info.continent, "");
            assert_false(info.has_coords);
            continue;
        }
        if (strcmp(info.country, c->country) != 0 || strcmp(info.continent, c->continent) != 0 ||
            info.has_coords != c->has_coords) {
            fail_msg("%s: got %s/%s coords %d, want %s/%s coords %d", c->addr, info.country,
                     info.continent, info.has_coords, c->country, c->continent, c->has_coords);
        }
        if (c->has_coords) {
            if (fabs(info.lat - c->lat) > 1e-3 || fabs(info.lon - c->lon) > 1e-3) {
                fail_msg("%s: got %f,%f, want %f,%f", c->addr, info.lat, info.lon, c->lat, c->lon);
            }
        }
    }
}

/* Writes `len` bytes of `data` to a new temporary file; returns its malloc'd name. */
static char *
temp_file(const void *data, size_t len)
{
    char *name = strdup("/tmp/test_geo.XXXXXX");
    int fd;

    assert_non_null(name);
    fd = mkstemp(name);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    return name;
}

/* Reads a whole file into a malloc'd buffer. */
static unsigned char *
slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    unsigned char *buf;
    long size;

    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    size = ftell(f);
    assert_true(size > 0);
    rewind(f);
    buf = malloc((size_t)size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *len = (size_t)size;
    return buf;
}

/* Generations share a database while its file is unchanged: geo_ref and geo_close count
 * (the last close frees it: ASan would see a leak or a double free), geo_same_file holds
 * for the path it was opened from and not for another path, nor once the file is
 * rewritten (new mtime) or replaced by rename (new inode). */
static void
test_shared_while_unchanged(void **state)
{
    (void)state;
    size_t len;
    unsigned char *data = slurp(CITY, &len);
    char *path = temp_file(data, len);
    struct geo_db *db = open_ok(path);

    assert_true(geo_same_file(db, path));
    assert_false(geo_same_file(db, CITY));
    assert_false(geo_same_file(NULL, path));
    assert_ptr_equal(geo_ref(db), db);
    geo_close(db); /* one of two */
    struct sockaddr_storage ss;
    struct geo_info info;
    make_sa("2.125.160.216", &ss);
    assert_int_equal(geo_lookup(db, (struct sockaddr *)&ss, &info), 0);

    struct timespec times[2] = {{0, UTIME_OMIT}, {12345, 0}}; /* a rewrite's new mtime */
    assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
    assert_false(geo_same_file(db, path));

    char *other = temp_file(data, len);
    assert_int_equal(utimensat(AT_FDCWD, other, times, 0), 0);
    assert_int_equal(rename(other, path), 0); /* same content and mtime, another inode */
    assert_false(geo_same_file(db, path));
    geo_close(db);
    unlink(path);
    free(path);
    free(other);
    free(data);
}

/* From GeoIP2-City-Test.json: country wins over registered_country; a record may hold
 * only a continent, or nothing we read (214.1.1.0/24 is only traits.is_anycast). */
static const struct lookup_case city_v4[] = {
    {"81.2.69.142", 0, "GB", "EU", true, 51.5142, -0.0931},
    {"81.2.69.143", 0, "GB", "EU", true, 51.5142, -0.0931},
    {"81.2.69.150", 0, "GB", "EU", true, 51.5142, -0.0931},
    {"81.2.69.200", 0, "GB", "EU", true, 51.5142, -0.0931},
    {"89.160.20.112", 0, "SE", "EU", true, 58.4167, 15.6167},
    {"89.160.20.255", 0, "SE", "EU", true, 58.4167, 15.6167},
    {"216.160.83.56", 0, "US", "NA", true, 47.2513, -122.3149},
    {"216.160.83.64", 0, "US", "NA", true, 47.7511, -120.7401},
    {"149.101.100.0", 0, "US", "NA", true, 37.751, -97.822},
    {"175.16.199.0", 0, "CN", "AS", true, 43.88, 125.3228},
    {"175.16.199.255", 0, "CN", "AS", true, 43.88, 125.3228},
    {"202.196.224.0", 0, "PH", "AS", true, 13, 122},
    {"202.196.239.255", 0, "PH", "AS", true, 13, 122},
    {"67.43.156.1", 0, "BT", "AS", true, 27.5, 90.5},
    {"2.125.160.216", 0, "GB", "EU", true, 51.75, -1.25},
    {"2.2.3.1", 0, "GB", "EU", true, 51.75, -1.25},
    {"214.78.120.5", 0, "US", "NA", true, 32.7405, -117.0935},
    {"214.78.124.9", 0, "US", "NA", true, 36.7783, -119.4179},
    {"214.0.0.1", 0, "SG", "AS", true, 1.336, 103.7716},
    {"214.0.1.1", 0, "AU", "OC", true, -37.8159, 144.9669},
    {"2.3.3.1", 0, "", "EU", false, 0, 0},
    {"214.1.1.1", 0, "", "", false, 0, 0},
    {"10.0.0.1", 1, NULL, NULL, false, 0, 0},
    {"127.0.0.1", 1, NULL, NULL, false, 0, 0},
    {"192.168.1.1", 1, NULL, NULL, false, 0, 0},
    {"8.8.8.8", 1, NULL, NULL, false, 0, 0},
    {"0.0.0.0", 1, NULL, NULL, false, 0, 0},
    {"255.255.255.255", 1, NULL, NULL, false, 0, 0},
    {"81.2.69.141", 1, NULL, NULL, false, 0, 0},
    {"202.196.240.0", 1, NULL, NULL, false, 0, 0},
};

static const struct lookup_case city_v6[] = {
    {"2001:218::1", 0, "JP", "AS", true, 35.68536, 139.75309},
    {"2001:220:1::1", 0, "KR", "AS", true, 37, 127.5},
    {"2001:251:ffff::1", 0, "CN", "AS", true, 35, 105},
    {"2001:288::", 0, "TW", "AS", true, 24, 121},
    {"2001:2e0::5", 0, "HK", "AS", true, 22.25, 114.16667},
    {"2001:480:10::1", 0, "US", "NA", true, 32.7203, -117.1552},
    {"2a02:cf40::1", 0, "NO", "EU", true, 62, 10},
    {"2a02:d3c0::1", 0, "GB", "EU", true, 54.75844, -2.69531},
    {"2a02:e700::1", 0, "LY", "AF", true, 28, 17},
    {"2a02:ffc7:ffff::1", 0, "GI", "EU", true, 36.13333, -5.35},
    {"2a02:d500::1", 0, "", "EU", true, 48.69096, 9.14062},
    /* IPv4 inside the IPv6 tree, as ::a.b.c.d and as ::ffff:a.b.c.d */
    {"::81.2.69.142", 0, "GB", "EU", true, 51.5142, -0.0931},
    {"::ffff:81.2.69.142", 0, "GB", "EU", true, 51.5142, -0.0931},
    {"::ffff:175.16.199.7", 0, "CN", "AS", true, 43.88, 125.3228},
    {"::ffff:214.0.1.1", 0, "AU", "OC", true, -37.8159, 144.9669},
    {"::ffff:10.0.0.1", 1, NULL, NULL, false, 0, 0},
    {"::ffff:127.0.0.1", 1, NULL, NULL, false, 0, 0},
    {"::1", 1, NULL, NULL, false, 0, 0},
    {"::", 1, NULL, NULL, false, 0, 0},
    {"fe80::1", 1, NULL, NULL, false, 0, 0},
    {"2001:db8::1", 1, NULL, NULL, false, 0, 0},
    {"2001:219::1", 1, NULL, NULL, false, 0, 0},
};

static void
test_city_ipv4(void **state)
{
    (void)state;
    struct geo_db *db = open_ok(CITY);
    check_cases(db, city_v4, sizeof(city_v4) / sizeof(city_v4[0]));
    geo_close(db);
}

static void
test_city_ipv6(void **state)
{
    (void)state;
    struct geo_db *db = open_ok(CITY);
    check_cases(db, city_v6, sizeof(city_v6) / sizeof(city_v6[0]));
    geo_close(db);
}

/* The free edition has the same schema. */
static void
test_geolite_city(void **state)
{
    static const struct lookup_case cases[] = {
        {"81.2.69.142", 0, "GB", "EU", true, 51.5142, -0.0931},
        {"216.160.83.56", 0, "US", "NA", true, 47.2513, -122.3149},
        {"::ffff:89.160.20.112", 0, "SE", "EU", true, 58.4167, 15.6167},
        {"2001:218::1", 0, "JP", "AS", true, 35.68536, 139.75309},
        {"10.0.0.1", 1, NULL, NULL, false, 0, 0},
    };
    (void)state;
    struct geo_db *db = open_ok(shared("GeoLite2-City-Test.mmdb"));
    check_cases(db, cases, sizeof(cases) / sizeof(cases[0]));
    geo_close(db);
}

/* Country editions: a country and a continent, never coordinates. */
static void
test_country(void **state)
{
    static const struct lookup_case cases[] = {
        {"81.2.69.142", 0, "GB", "EU", false, 0, 0},
        {"216.160.83.56", 0, "US", "NA", false, 0, 0},
        {"89.160.20.112", 0, "SE", "EU", false, 0, 0},
        {"::ffff:89.160.20.112", 0, "SE", "EU", false, 0, 0},
        {"::ffff:216.160.83.56", 0, "US", "NA", false, 0, 0},
        {"2001:218::1", 0, "JP", "AS", false, 0, 0},
        {"127.0.0.1", 1, NULL, NULL, false, 0, 0},
    };
    static const char *const files[] = {"GeoIP2-Country-Test.mmdb", "GeoLite2-Country-Test.mmdb"};
    (void)state;
    for (size_t i = 0; i < 2; i++) {
        struct geo_db *db = open_ok(shared(files[i]));
        check_cases(db, cases, sizeof(cases) / sizeof(cases[0]));
        geo_close(db);
    }
}

static void
test_describe(void **state)
{
    (void)state;
    struct geo_db *db = open_ok(CITY);
    const char *d = geo_describe(db);
    print_message("  %s\n", d);
    assert_non_null(strstr(d, "GeoIP2-City"));
    assert_non_null(strstr(d, "22 KiB"));
    assert_non_null(strstr(d, "IPv6"));
    assert_non_null(strstr(d, "built 20"));
    assert_ptr_equal(geo_describe(db), d); /* computed once, held by the database */
    geo_close(db);
    assert_non_null(geo_describe(NULL));
    geo_close(NULL);
}

/* An address family geo does not know, or no database, is an error, never a crash. */
static void
test_bad_arguments(void **state)
{
    (void)state;
    struct geo_db *db = open_ok(CITY);
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    struct sockaddr_storage ss;
    struct geo_info info;
    char err[64];

    memset(&info, 0x5a, sizeof(info));
    assert_int_equal(geo_lookup(db, (const struct sockaddr *)&un, &info), -1);
    assert_string_equal(info.country, "");
    assert_false(info.has_coords);
    make_sa("81.2.69.142", &ss);
    assert_int_equal(geo_lookup(NULL, (const struct sockaddr *)&ss, &info), -1);
    geo_close(db);
    assert_null(geo_open("", err, sizeof(err)));
    assert_null(geo_open(NULL, err, sizeof(err)));
}

static void
test_broken_refused(void **state)
{
    (void)state;
    expect_refused(shared("MaxMind-DB-test-broken-pointers-24.mmdb"), "corrupt");
    expect_refused(shared("MaxMind-DB-test-broken-search-tree-24.mmdb"), "corrupt");
}

static void
test_missing_refused(void **state)
{
    (void)state;
    expect_refused("/nonexistent/GeoLite2-City.mmdb", "cannot open: No such file or directory");
    expect_refused("/tmp", "not a regular file");
}

static void
test_empty_refused(void **state)
{
    (void)state;
    char *name = temp_file("", 0);
    expect_refused(name, "empty file");
    unlink(name);
    free(name);
}

static void
test_text_refused(void **state)
{
    static const char text[] = "geoip: this is not a database\n";
    (void)state;
    char *name = temp_file(text, sizeof(text) - 1);
    expect_refused(name, "not a MaxMind DB file");
    unlink(name);
    free(name);
}

/* A download cut short loses the metadata at the end, wherever it stops. */
static void
test_truncated_refused(void **state)
{
    (void)state;
    size_t len;
    unsigned char *buf = slurp(CITY, &len);
    const size_t cuts[] = {1, 16, 100, len / 2, len - 1};

    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++) {
        char *name = temp_file(buf, cuts[i]);
        expect_refused(name, "not a MaxMind DB file");
        unlink(name);
        free(name);
    }
    free(buf);
}

/* Damage inside an intact file: the search tree (the start of the file) or the data
 * section (just past the tree), metadata untouched. */
static void
test_damaged_refused(void **state)
{
    (void)state;
    size_t len;
    unsigned char *buf = slurp(CITY, &len);
    unsigned char *copy = malloc(len);
    char *name;

    assert_non_null(copy);
    /* every record of the first 100 nodes pointing far off the end */
    memcpy(copy, buf, len);
    memset(copy, 0xff, 600);
    name = temp_file(copy, len);
    expect_refused(name, "corrupt search tree");
    unlink(name);
    free(name);

    /* data records garbled: GeoIP2-City-Test has 3 KiB of tree (24-bit records) */
    memcpy(copy, buf, len);
    memset(copy + len / 2, 0xff, len / 8);
    name = temp_file(copy, len);
    expect_refused(name, "corrupt");
    unlink(name);
    free(name);

    free(copy);
    free(buf);
}

/* The project's sample database, built from geoip/sample.json into the build tree (the
 * table in geoip/README). */
static void
test_sample(void **state)
{
    static const struct lookup_case cases[] = {
        /* TEST-NET-1: the five regions' places, country-only, registered-only */
        {"192.0.2.1", 0, "DE", "EU", true, 50.11, 8.68},
        {"192.0.2.31", 0, "DE", "EU", true, 50.11, 8.68},
        {"192.0.2.32", 0, "US", "NA", true, 38.9, -77.0},
        {"192.0.2.64", 0, "US", "NA", true, 45.6, -121.2},
        {"192.0.2.127", 0, "SG", "AS", true, 1.35, 103.8},
        {"192.0.2.130", 0, "BR", "SA", true, -23.5, -46.6},
        {"192.0.2.170", 0, "JP", "AS", false, 0, 0},
        {"192.0.2.200", 0, "AU", "OC", false, 0, 0},
        {"192.0.2.224", 1, NULL, NULL, false, 0, 0},
        {"192.0.2.255", 1, NULL, NULL, false, 0, 0},
        /* TEST-NET-2: Country-style records */
        {"198.51.100.1", 0, "DE", "EU", false, 0, 0},
        {"198.51.100.33", 0, "US", "NA", false, 0, 0},
        {"198.51.100.65", 0, "CA", "NA", false, 0, 0},
        {"198.51.100.97", 0, "SG", "AS", false, 0, 0},
        {"198.51.100.129", 0, "BR", "SA", false, 0, 0},
        {"198.51.100.161", 0, "GB", "EU", false, 0, 0},
        {"198.51.100.193", 0, "ZA", "AF", false, 0, 0},
        {"198.51.100.255", 0, "AU", "OC", false, 0, 0},
        /* TEST-NET-3: cities away from the regions */
        {"203.0.113.1", 0, "FR", "EU", true, 48.86, 2.35},
        {"203.0.113.17", 0, "CA", "NA", true, 43.65, -79.38},
        {"203.0.113.33", 0, "US", "NA", true, 37.77, -122.42},
        {"203.0.113.49", 0, "JP", "AS", true, 35.68, 139.69},
        {"203.0.113.65", 0, "AR", "SA", true, -34.6, -58.38},
        {"203.0.113.81", 0, "AU", "OC", true, -33.87, 151.21},
        {"203.0.113.97", 0, "ZA", "AF", true, -33.92, 18.42},
        {"203.0.113.113", 0, "IN", "AS", true, 19.08, 72.88},
        {"203.0.113.129", 0, "IS", "EU", true, 64.15, -21.94},
        {"203.0.113.159", 0, "US", "NA", true, 21.31, -157.86},
        {"203.0.113.160", 1, NULL, NULL, false, 0, 0},
        /* 198.18.0.0/15 for the benchmark */
        {"198.18.0.0", 0, "DE", "EU", true, 50.11, 8.68},
        {"198.18.63.255", 0, "DE", "EU", true, 50.11, 8.68},
        {"198.18.64.0", 0, "US", "NA", true, 38.9, -77.0},
        {"198.18.128.9", 0, "US", "NA", true, 45.6, -121.2},
        {"198.18.255.255", 0, "SG", "AS", true, 1.35, 103.8},
        {"198.19.0.1", 0, "BR", "SA", true, -23.5, -46.6},
        {"198.19.100.1", 0, "JP", "AS", false, 0, 0},
        {"198.19.128.0", 1, NULL, NULL, false, 0, 0},
        {"198.19.255.255", 1, NULL, NULL, false, 0, 0},
        /* 2001:db8::/32 and the IPv4 ranges seen through IPv6 */
        {"2001:db8:1::1", 0, "DE", "EU", true, 50.11, 8.68},
        {"2001:db8:2:ffff::1", 0, "US", "NA", true, 38.9, -77.0},
        {"2001:db8:3::", 0, "US", "NA", true, 45.6, -121.2},
        {"2001:db8:4::1", 0, "SG", "AS", true, 1.35, 103.8},
        {"2001:db8:5::1", 0, "BR", "SA", true, -23.5, -46.6},
        {"2001:db8:6::1", 0, "JP", "AS", false, 0, 0},
        {"2001:db8:7::1", 0, "AU", "OC", false, 0, 0},
        {"2001:db8::1", 1, NULL, NULL, false, 0, 0},
        {"2001:db8:8::1", 1, NULL, NULL, false, 0, 0},
        {"::ffff:192.0.2.33", 0, "US", "NA", true, 38.9, -77.0},
        {"::ffff:198.51.100.1", 0, "DE", "EU", false, 0, 0},
        {"2002:c000:0201::1", 0, "DE", "EU", true, 50.11, 8.68}, /* 6to4 of 192.0.2.1 */
        /* nothing else */
        {"127.0.0.1", 1, NULL, NULL, false, 0, 0},
        {"10.1.2.3", 1, NULL, NULL, false, 0, 0},
        {"81.2.69.142", 1, NULL, NULL, false, 0, 0},
        {"::1", 1, NULL, NULL, false, 0, 0},
    };
    (void)state;
#ifdef BUILDDIR
    const char *path = BUILDDIR "/geoip/sample.mmdb";
    struct stat st;
    struct geo_db *db;

    if (stat(path, &st) < 0) {
        print_message("  %s: %s (not built)\n", path, strerror(errno));
        skip();
    }
    db = open_ok(path);
    print_message("  %s\n", geo_describe(db));
    assert_non_null(strstr(geo_describe(db), "Meridian-Sample-City"));
    assert_non_null(strstr(geo_describe(db), "built 2025-01-01"));
    check_cases(db, cases, sizeof(cases) / sizeof(cases[0]));
    geo_close(db);
#else
    (void)cases;
    skip();
#endif
}

/* The per-worker cache answers exactly what the database answers, hits on the second
 * asking, keeps two addresses that share a set, and never answers for another
 * generation. IPv4 addresses go straight to the database's IPv4 index, past the cache. */
static void
test_cache(void **state)
{
    (void)state;
    struct geo_db *db = open_ok(CITY);
    struct geo_cache cache = {0};
    static const char *const addrs[] = {
        "2001:218::",  "2001:480::1", "2a02:cf40::", "2c0f:ff40::",       "::1",
        "2001:db8::1", "81.2.69.142", "10.0.0.1",    "::ffff:81.2.69.142"};
    size_t n = sizeof(addrs) / sizeof(addrs[0]), n6 = 0;
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < n; i++) {
            struct sockaddr_storage ss;
            make_sa(addrs[i], &ss);
            bool indexed = geo_lookup_is_indexed(db, (struct sockaddr *)&ss);
            assert_int_equal(indexed, strchr(addrs[i], '.') != NULL);
            n6 += round == 0 && !indexed;
            struct geo_info direct, cached;
            memset(&cached, 0x5a, sizeof(cached));
            int rc = geo_lookup(db, (struct sockaddr *)&ss, &direct);
            assert_int_equal(geo_cache_lookup(&cache, db, 1, (struct sockaddr *)&ss, &cached), rc);
            assert_memory_equal(&direct, &cached, sizeof(direct));
        }
    }
    assert_int_equal(n6, 6);
    assert_int_equal(cache.misses, n6);
    assert_int_equal(cache.hits, n6);

    /* Another generation (a reload) asks the database again. */
    struct sockaddr_storage ss;
    make_sa(addrs[0], &ss);
    struct geo_info gi;
    assert_int_equal(geo_cache_lookup(&cache, db, 2, (struct sockaddr *)&ss, &gi), 0);
    assert_int_equal(cache.misses, n6 + 1);

    /* Many addresses, more than the cache holds: every answer still the database's,
     * whatever was evicted. */
    for (uint32_t k = 0; k < 300000; k += 7) {
        struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
        memset(&ss, 0, sizeof(ss));
        s6->sin6_family = AF_INET6;
        uint32_t top = htonl(0x20010218u + (k % 4096) * 65536u), low = htonl(k);
        memcpy(&s6->sin6_addr.s6_addr[0], &top, 4);
        memcpy(&s6->sin6_addr.s6_addr[12], &low, 4);
        struct geo_info direct, cached;
        int rc = geo_lookup(db, (struct sockaddr *)&ss, &direct);
        assert_int_equal(geo_cache_lookup(&cache, db, 2, (struct sockaddr *)&ss, &cached), rc);
        assert_memory_equal(&direct, &cached, sizeof(direct));
    }
    assert_true(cache.misses > GEO_CACHE_SETS * 2);
    geo_cache_deinit(&cache);
    assert_null(cache.slots);
    geo_close(db);
}

/* The flat IPv4 index and the tree agree on `a` (host order). */
static void
check_addr_agrees(const char *path, struct geo_db *db, uint32_t a)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
    s4->sin_family = AF_INET;
    s4->sin_addr.s_addr = htonl(a);
    struct geo_info fast, tree;
    memset(&fast, 0x5a, sizeof(fast));
    memset(&tree, 0xa5, sizeof(tree));
    int rf = geo_lookup(db, (struct sockaddr *)&ss, &fast);
    int rt = geo_lookup_tree(db, (struct sockaddr *)&ss, &tree);
    if (rf != rt || memcmp(&fast, &tree, sizeof(fast)) != 0)
        fail_msg("%s: %u.%u.%u.%u: index %d %s, tree %d %s", path, a >> 24, a >> 16 & 255,
                 a >> 8 & 255, a & 255, rf, fast.country, rt, tree.country);
    /* The request path's lookup: the same answer, through the place's record. */
    uint32_t place = UINT32_MAX;
    int rp = geo_lookup_place(db, (struct sockaddr *)&ss, &place);
    struct geo_info at;
    memset(&at, 0x33, sizeof(at));
    if (rp == 0) {
        assert_true(place < geo_places(db));
        geo_place_info(db, place, &at);
    }
    if (rp != rt || (rp == 0 && memcmp(&at, &tree, sizeof(at)) != 0))
        fail_msg("%s: %u.%u.%u.%u: place %d (%u) %s, tree %d %s", path, a >> 24, a >> 16 & 255,
                 a >> 8 & 255, a & 255, rp, place, at.country, rt, tree.country);
}

/* Where every IPv4 network of the file starts, found by walking its tree (the test's own
 * walk, independent of geo.c's): around each, the index's /24 entries and split /24s
 * change, and the last address before it and the first after belong to different
 * networks. Returns how many starts were checked. */
static size_t
check_every_boundary(const char *path, struct geo_db *db)
{
    MMDB_s mmdb;
    assert_int_equal(MMDB_open(path, MMDB_MODE_MMAP, &mmdb), MMDB_SUCCESS);
    uint32_t node = 0;
    if (mmdb.metadata.ip_version == 6)
        for (int i = 0; i < 96; i++) {
            MMDB_search_node_s n;
            assert_int_equal(MMDB_read_node(&mmdb, node, &n), MMDB_SUCCESS);
            assert_int_equal(n.left_record_type, MMDB_RECORD_TYPE_SEARCH_NODE);
            node = (uint32_t)n.left_record;
        }
    struct {
        uint32_t node, start;
        int depth;
    } stack[64];
    size_t top = 0, checked = 0;
    stack[top++].node = node;
    stack[0].start = 0;
    stack[0].depth = 0;
    while (top > 0) {
        uint32_t at = stack[--top].node, start = stack[top].start;
        int depth = stack[top].depth;
        MMDB_search_node_s n;
        assert_int_equal(MMDB_read_node(&mmdb, at, &n), MMDB_SUCCESS);
        for (int side = 0; side < 2; side++) {
            uint32_t child = start | (side ? 1u << (31 - depth) : 0);
            if ((side ? n.right_record_type : n.left_record_type) == MMDB_RECORD_TYPE_SEARCH_NODE) {
                assert_true(top < 64 && depth < 31);
                stack[top].node = (uint32_t)(side ? n.right_record : n.left_record);
                stack[top].start = child;
                stack[top++].depth = depth + 1;
                continue;
            }
            /* A network [child, child + size): its first and last addresses, the ones
             * next to them, and the ends of the /24s they are in. */
            uint32_t last = child + (uint32_t)(((uint64_t)1 << (32 - depth - 1)) - 1);
            uint32_t probes[] = {child,    child - 1,   child + 1,     last,         last + 1,
                                 last - 1, child | 255, child & ~255u, last & ~255u, last | 255};
            for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++)
                check_addr_agrees(path, db, probes[i]);
            checked++;
        }
    }
    MMDB_close(&mmdb);
    return checked;
}

/* The flat IPv4 index answers what the tree answers, around every network's edges, on
 * each /16's first and last address and on a spread of addresses, in every shared
 * database and the sample. */
static void
check_index_agrees(const char *path)
{
    struct geo_db *db = open_ok(path);
    assert_true(geo_v4_ranges(db) > 0);
    assert_true(check_every_boundary(path, db) > 0);
    uint32_t x = 12345;
    for (uint32_t k = 0; k < 300000; k++) {
        uint32_t a;
        if (k < 65536 * 2)
            a = (k / 2) << 16 | (k % 2 ? 0xffffu : 0); /* each /16's first and last */
        else
            a = x = x * 1664525u + 1013904223u;
        check_addr_agrees(path, db, a);
    }
    geo_close(db);
}

static void
test_v4_index(void **state)
{
    (void)state;
    static const char *const files[] = {"GeoIP2-City-Test.mmdb", "GeoLite2-City-Test.mmdb",
                                        "GeoIP2-Country-Test.mmdb", "GeoLite2-Country-Test.mmdb"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++)
        check_index_agrees(shared(files[i]));
#ifdef BUILDDIR
    struct stat st;
    if (stat(BUILDDIR "/geoip/sample.mmdb", &st) == 0)
        check_index_agrees(BUILDDIR "/geoip/sample.mmdb");
#endif
}

int
main(void)
{
    const char *env = getenv("MERIDIAN_SHARED_GEOIP");
    const char *dir = env != NULL && env[0] != '\0' ? env : SRCDIR "/../shared/geoip";
    char probe[1200];
    struct stat st;

    snprintf(probe, sizeof(probe), "%s/GeoIP2-City-Test.mmdb", dir);
    if (stat(probe, &st) == 0) {
        snprintf(shared_dir, sizeof(shared_dir), "%s", dir);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_city_ipv4),       cmocka_unit_test(test_shared_while_unchanged),
        cmocka_unit_test(test_city_ipv6),       cmocka_unit_test(test_geolite_city),
        cmocka_unit_test(test_country),         cmocka_unit_test(test_describe),
        cmocka_unit_test(test_bad_arguments),   cmocka_unit_test(test_broken_refused),
        cmocka_unit_test(test_missing_refused), cmocka_unit_test(test_empty_refused),
        cmocka_unit_test(test_text_refused),    cmocka_unit_test(test_truncated_refused),
        cmocka_unit_test(test_damaged_refused), cmocka_unit_test(test_sample),
        cmocka_unit_test(test_cache),           cmocka_unit_test(test_v4_index),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
