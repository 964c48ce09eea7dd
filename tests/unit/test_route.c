/* SPDX-License-Identifier: MIT */
/* route: great-circle distances, the preference order of regions (countries, distance,
 * antimeridian, poles, ties, unknowns), the healthy choice with failover and spilling, and
 * the table's validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "route.h"
#include "route_places.h"
#include "geo_place.h"

/* ---- distances ---- */

struct dist_case {
    const char *name;
    double lat1, lon1, lat2, lon2;
    double want_km, tol_km;
};

static const struct dist_case dist_cases[] = {
    {"London-Paris", 51.5074, -0.1278, 48.8566, 2.3522, 343.56, 0.5},
    {"same point", 50.11, 8.68, 50.11, 8.68, 0.0, 1e-9},
    {"antipodes on the equator", 0.0, 0.0, 0.0, 180.0, 20015.09, 0.5},
    {"antipodes pole to pole", 90.0, 0.0, -90.0, 0.0, 20015.09, 0.5},
    {"antipodes off axis", 10.0, 20.0, -10.0, -160.0, 20015.09, 0.5},
    {"across the antimeridian", 10.0, 179.5, 10.0, -179.5, 109.51, 0.1},
    {"lon 180 is lon -180", -17.8, 180.0, -17.8, -180.0, 0.0, 1e-9},
    {"north pole, any longitude", 90.0, 10.0, 90.0, -100.0, 0.0, 1e-9},
    {"south pole, any longitude", -90.0, 0.0, -90.0, 123.0, 0.0, 1e-9},
    {"over the pole", 89.0, 0.0, 89.0, 180.0, 222.39, 0.1},
    {"symmetric", 48.8566, 2.3522, 51.5074, -0.1278, 343.56, 0.5},
};

static void
test_distance(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(dist_cases) / sizeof(dist_cases[0]); c++) {
        const struct dist_case *tc = &dist_cases[c];
        double got = route_distance_km(tc->lat1, tc->lon1, tc->lat2, tc->lon2);
        if (!(fabs(got - tc->want_km) <= tc->tol_km))
            fail_msg("%s: got %.6f km, want %.6f", tc->name, got, tc->want_km);
    }
    assert_true(isnan(route_distance_km(NAN, 0.0, 10.0, 10.0)));
    assert_true(isnan(route_distance_km(0.0, 0.0, 10.0, NAN)));
}

/* ---- region sets ---- */

struct region_set {
    size_t n;
    double lat[ROUTE_MAX_REGIONS], lon[ROUTE_MAX_REGIONS];
    const char *countries[ROUTE_MAX_REGIONS];
    size_t default_region;
};

enum { EU = 0, US_EAST = 1, US_WEST = 2, AP = 3, SA = 4 };

/* Frankfurt, Ashburn, The Dalles, Singapore, Sao Paulo. Brazil's neighbour AR and the US are
 * listed twice on purpose: the first region wins. */
static const struct region_set world = {
    5,
    {50.11, 38.9, 45.6, 1.35, -23.5},
    {8.68, -77.0, -121.2, 103.8, -46.6},
    {"DEFR", "USGB", NULL, "SGJP", "BRARUS"},
    EU,
};

static const struct region_set world_sa = {
    5, {50.11, 38.9, 45.6, 1.35, -23.5}, {8.68, -77.0, -121.2, 103.8, -46.6}, {NULL}, SA,
};

/* Two regions either side of the antimeridian near Fiji and one far west. */
static const struct region_set pacific = {
    3, {-17.8, -17.8, -17.8}, {170.0, -179.9, 100.0}, {NULL}, 0};

/* Four on the equator (equally far from either pole) and one at 60N. */
static const struct region_set poles = {
    5, {0.0, 0.0, 60.0, 0.0, 0.0}, {180.0, -90.0, 45.0, 0.0, 90.0}, {NULL}, 0};

/* Two at the same place, one elsewhere; and two mirror images about the client. */
static const struct region_set twins = {3, {10.0, 10.0, 0.0}, {20.0, 20.0, 0.0}, {NULL}, 2};
static const struct region_set mirror = {2, {0.0, 0.0}, {10.0, -10.0}, {NULL}, 1};
static const struct region_set mirror2 = {2, {0.0, 0.0}, {-10.0, 10.0}, {NULL}, 1};

static void
load(struct route_table *t, const struct region_set *rs, float spill_below)
{
    int rc = route_table_init(t, rs->n, rs->lat, rs->lon, rs->countries, rs->default_region,
                              spill_below);
    assert_int_equal(rc, 0);
}

static struct geo_info
at(const char *country, bool has_coords, float lat, float lon)
{
    struct geo_info g;
    memset(&g, 0, sizeof(g));
    snprintf(g.country, sizeof(g.country), "%s", country);
    if (has_coords) {
        geo_place_set(&g, lat, lon);
        /* What route_rank() must cope with: coordinates that are not a place. */
        g.has_coords = true;
        g.lat = lat;
        g.lon = lon;
    }
    return g;
}

/* ---- rank ---- */

struct rank_case {
    const char *name;
    const struct region_set *rs;
    const char *country;
    bool has_coords;
    float lat, lon;
    uint8_t want[ROUTE_MAX_REGIONS];
};

#define COORDS(la, lo) true, (la), (lo)
#define NO_COORDS false, 0.0f, 0.0f

static const struct rank_case rank_cases[] = {
    /* by distance */
    {"London", &world, "", COORDS(51.5f, -0.13f), {EU, US_EAST, US_WEST, SA, AP}},
    {"Seattle", &world, "", COORDS(47.6f, -122.3f), {US_WEST, US_EAST, EU, SA, AP}},
    {"Tokyo", &world, "", COORDS(35.7f, 139.7f), {AP, US_WEST, EU, US_EAST, SA}},
    {"Sydney", &world, "", COORDS(-33.9f, 151.2f), {AP, US_WEST, SA, US_EAST, EU}},
    {"Buenos Aires", &world, "", COORDS(-34.6f, -58.4f), {SA, US_EAST, US_WEST, EU, AP}},
    {"unlisted country, coords",
     &world,
     "NZ",
     COORDS(-33.9f, -58.4f),
     {SA, US_EAST, US_WEST, EU, AP}},
    /* countries */
    {"GB listed by us-east beats distance",
     &world,
     "GB",
     COORDS(51.5f, -0.13f),
     {US_EAST, EU, US_WEST, SA, AP}},
    {"first region listing a country wins",
     &world,
     "US",
     COORDS(-34.6f, -58.4f),
     {US_EAST, SA, US_WEST, EU, AP}},
    {"country without coords: then from it",
     &world,
     "GB",
     NO_COORDS,
     {US_EAST, US_WEST, EU, SA, AP}},
    {"JP without coords", &world, "JP", NO_COORDS, {AP, EU, US_WEST, US_EAST, SA}},
    {"AR without coords", &world, "AR", NO_COORDS, {SA, US_EAST, EU, US_WEST, AP}},
    {"lower-case country is unknown", &world, "gb", NO_COORDS, {EU, US_EAST, US_WEST, SA, AP}},
    /* nothing known */
    {"nothing known: default", &world, "", NO_COORDS, {EU, US_EAST, US_WEST, SA, AP}},
    {"unlisted country: default", &world, "ZZ", NO_COORDS, {EU, US_EAST, US_WEST, SA, AP}},
    {"nothing known: another default", &world_sa, "", NO_COORDS, {SA, US_EAST, EU, US_WEST, AP}},
    {"NaN lat is no coords", &world_sa, "", COORDS(NAN, 10.0f), {SA, US_EAST, EU, US_WEST, AP}},
    {"NaN lon is no coords", &world_sa, "", COORDS(35.7f, NAN), {SA, US_EAST, EU, US_WEST, AP}},
    {"infinite lat is no coords",
     &world_sa,
     "",
     COORDS(INFINITY, 10.0f),
     {SA, US_EAST, EU, US_WEST, AP}},
    {"NaN coords with a country", &world, "JP", COORDS(NAN, NAN), {AP, EU, US_WEST, US_EAST, SA}},
    /* antimeridian */
    {"Fiji: -179.9 is nearer than 170", &pacific, "", COORDS(-17.8f, 179.9f), {1, 0, 2}},
    {"east of the antimeridian", &pacific, "", COORDS(-17.8f, -170.0f), {1, 0, 2}},
    {"lon 180", &pacific, "", COORDS(-17.8f, 180.0f), {1, 0, 2}},
    {"from the region at 170", &pacific, "", NO_COORDS, {0, 1, 2}},
    /* poles: the longitude means nothing there, ties go by index */
    {"north pole lon 0", &poles, "", COORDS(90.0f, 0.0f), {2, 0, 1, 3, 4}},
    {"north pole lon 37", &poles, "", COORDS(90.0f, 37.0f), {2, 0, 1, 3, 4}},
    {"north pole lon -120", &poles, "", COORDS(90.0f, -120.0f), {2, 0, 1, 3, 4}},
    {"north pole lon 180", &poles, "", COORDS(90.0f, 180.0f), {2, 0, 1, 3, 4}},
    {"south pole lon 0", &poles, "", COORDS(-90.0f, 0.0f), {0, 1, 3, 4, 2}},
    {"south pole lon 91", &poles, "", COORDS(-90.0f, 91.0f), {0, 1, 3, 4, 2}},
    {"world from the north pole", &world, "", COORDS(90.0f, 55.0f), {EU, US_WEST, US_EAST, AP, SA}},
    {"world from the south pole",
     &world,
     "",
     COORDS(-90.0f, -10.0f),
     {SA, AP, US_EAST, US_WEST, EU}},
    /* ties */
    {"same place: by index", &twins, "", COORDS(10.0f, 20.0f), {0, 1, 2}},
    {"same place, nothing known: default first", &twins, "", NO_COORDS, {2, 0, 1}},
    {"equidistant: by index", &mirror, "", COORDS(0.0f, 0.0f), {0, 1}},
    {"equidistant mirrored: by index", &mirror2, "", COORDS(0.0f, 0.0f), {0, 1}},
};

static void
test_rank(void **state)
{
    (void)state;
    for (size_t c = 0; c < sizeof(rank_cases) / sizeof(rank_cases[0]); c++) {
        const struct rank_case *tc = &rank_cases[c];
        struct route_table t;
        load(&t, tc->rs, 0.5f);
        struct geo_info g = at(tc->country, tc->has_coords, tc->lat, tc->lon);
        uint8_t got[ROUTE_MAX_REGIONS];
        memset(got, 0xee, sizeof(got));
        route_rank(&t, &g, got);
        for (size_t k = 0; k < tc->rs->n; k++) {
            if (got[k] != tc->want[k])
                fail_msg("%s: order[%zu] = %u, want %u", tc->name, k, got[k], tc->want[k]);
        }
    }
}

static void
test_order_from(void **state)
{
    (void)state;
    static const uint8_t want[5][5] = {
        {EU, US_EAST, US_WEST, SA, AP}, {US_EAST, US_WEST, EU, SA, AP},
        {US_WEST, US_EAST, EU, SA, AP}, {AP, EU, US_WEST, US_EAST, SA},
        {SA, US_EAST, EU, US_WEST, AP},
    };
    struct route_table t;
    load(&t, &world, 0.5f);
    for (size_t i = 0; i < 5; i++)
        for (size_t k = 0; k < 5; k++)
            if (t.order_from[i][k] != want[i][k])
                fail_msg("order_from[%zu][%zu] = %u, want %u", i, k, t.order_from[i][k],
                         want[i][k]);
    /* Itself first even when a twin sits at the same place with a lower index. */
    load(&t, &twins, 0.5f);
    assert_int_equal(t.order_from[1][0], 1);
    assert_int_equal(t.order_from[1][1], 0);
    assert_int_equal(t.order_from[1][2], 2);
    /* Countries map to region + 1; the first listing wins. */
    load(&t, &world, 0.5f);
    assert_int_equal(t.by_country[('G' - 'A') * 26 + ('B' - 'A')], US_EAST + 1);
    assert_int_equal(t.by_country[('U' - 'A') * 26 + ('S' - 'A')], US_EAST + 1);
    assert_int_equal(t.by_country[('A' - 'A') * 26 + ('R' - 'A')], SA + 1);
    assert_int_equal(t.by_country[('N' - 'A') * 26 + ('Z' - 'A')], 0);
}

/* ---- choose ---- */

static void
health_from(const void *ctx, size_t region, struct route_health *out)
{
    *out = ((const struct route_health *)ctx)[region];
}

#define UP(n)                                                                                      \
    {                                                                                              \
        (n), 0, (n)                                                                                \
    }
#define DOWN(n)                                                                                    \
    {                                                                                              \
        0, 0, (n)                                                                                  \
    }
#define HEALTH(u, c, n)                                                                            \
    {                                                                                              \
        (u), (c), (n)                                                                              \
    }

struct choose_case {
    const char *name;
    float spill_below;
    uint32_t rnd;
    struct route_health h[5];
    int want_rc;
    uint8_t want_region;
    bool want_failed_over, want_spilled;
};

/* All for a client in London: order EU, US_EAST, US_WEST, SA, AP. */
static const struct choose_case choose_cases[] = {
    {"all healthy: nearest", 0.5f, 0, {UP(4), UP(4), UP(4), UP(4), UP(4)}, 0, EU, false, false},
    {"nearest down: next", 0.5f, 0, {DOWN(4), UP(4), UP(4), UP(4), UP(4)}, 0, US_EAST, true, false},
    {"two down: third", 0.5f, 0, {DOWN(4), DOWN(4), UP(2), UP(4), UP(4)}, 0, US_WEST, true, false},
    {"empty region is skipped",
     0.5f,
     0,
     {DOWN(0), UP(4), UP(4), UP(4), UP(4)},
     0,
     US_EAST,
     true,
     false},
    {"up beats nearer unchecked",
     0.5f,
     0,
     {HEALTH(0, 4, 4), DOWN(4), DOWN(4), DOWN(4), UP(1)},
     0,
     SA,
     true,
     false},
    {"none up: nearest unchecked",
     0.5f,
     0,
     {DOWN(4), DOWN(4), HEALTH(0, 2, 4), HEALTH(0, 4, 4), DOWN(4)},
     0,
     US_WEST,
     true,
     false},
    {"none up: unchecked nearest",
     0.5f,
     0,
     {HEALTH(0, 1, 4), DOWN(4), DOWN(4), DOWN(4), DOWN(4)},
     0,
     EU,
     false,
     false},
    {"nothing at all", 0.5f, 0, {DOWN(4), DOWN(4), DOWN(4), DOWN(4), DOWN(4)}, -1, 0, false, false},
    {"no backends anywhere",
     0.5f,
     0,
     {DOWN(0), DOWN(0), DOWN(0), DOWN(0), DOWN(0)},
     -1,
     0,
     false,
     false},
    {"weak region keeps on a low number",
     0.5f,
     0,
     {HEALTH(1, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     0,
     EU,
     false,
     false},
    {"weak region spills on a high number",
     0.5f,
     0xffffffffu,
     {HEALTH(1, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     0,
     US_EAST,
     true,
     true},
    {"spill skips a down region",
     0.5f,
     0xffffffffu,
     {HEALTH(1, 0, 4), DOWN(4), UP(4), UP(4), UP(4)},
     0,
     US_WEST,
     true,
     true},
    {"spilled from the only one up: it takes it back",
     0.5f,
     0xffffffffu,
     {HEALTH(1, 0, 4), DOWN(4), DOWN(4), HEALTH(0, 4, 4), DOWN(4)},
     0,
     EU,
     false,
     false},
    {"failed over, then the weak one takes it back",
     0.5f,
     0xffffffffu,
     {DOWN(4), HEALTH(1, 3, 4), DOWN(4), DOWN(4), DOWN(4)},
     0,
     US_EAST,
     true,
     false},
    {"share at spill_below keeps all",
     0.5f,
     0xffffffffu,
     {HEALTH(2, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     0,
     EU,
     false,
     false},
    {"spill_below 0 never spills",
     0.0f,
     0xffffffffu,
     {HEALTH(1, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     0,
     EU,
     false,
     false},
    {"unchecked count as not down for the share: a region coming up does not spill",
     0.5f,
     0xffffffffu,
     {HEALTH(1, 3, 4), UP(4), UP(4), UP(4), UP(4)},
     0,
     EU,
     false,
     false},
    {"one up, one unchecked of four spills below 75%",
     0.75f,
     0xffffffffu,
     {HEALTH(1, 1, 4), UP(4), UP(4), UP(4), UP(4)},
     0,
     US_EAST,
     true,
     true},
};

static void
test_choose(void **state)
{
    (void)state;
    struct geo_info london = at("", true, 51.5f, -0.13f);
    for (size_t c = 0; c < sizeof(choose_cases) / sizeof(choose_cases[0]); c++) {
        const struct choose_case *tc = &choose_cases[c];
        struct route_table t;
        load(&t, &world, tc->spill_below);
        struct route_choice ch;
        memset(&ch, 0xee, sizeof(ch));
        int rc = route_choose(&t, &london, tc->rnd, health_from, tc->h, &ch);
        if (rc != tc->want_rc)
            fail_msg("%s: rc %d, want %d", tc->name, rc, tc->want_rc);
        if (rc != 0)
            continue;
        if (ch.region != tc->want_region || ch.nearest != EU ||
            ch.failed_over != tc->want_failed_over || ch.spilled != tc->want_spilled)
            fail_msg("%s: region %u nearest %u failed_over %d spilled %d; want %u %u %d %d",
                     tc->name, ch.region, ch.nearest, ch.failed_over, ch.spilled, tc->want_region,
                     EU, tc->want_failed_over, tc->want_spilled);
    }
}

/* ---- spilling shares over many requests ---- */

struct share_case {
    const char *name;
    float spill_below;
    struct route_health h[5];
    double want[5];      /* share of requests per region */
    double want_spilled; /* share of requests flagged spilled */
};

static const struct share_case share_cases[] = {
    {"1 of 4 up, spill_below 0.5: keeps half",
     0.5f,
     {HEALTH(1, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     {0.5, 0.5, 0, 0, 0},
     0.5},
    {"2 of 4 up, spill_below 0.5: keeps all",
     0.5f,
     {HEALTH(2, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     {1, 0, 0, 0, 0},
     0},
    {"3 of 4 up, spill_below 1: keeps 3/4",
     1.0f,
     {HEALTH(3, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     {0.75, 0.25, 0, 0, 0},
     0.25},
    {"1 of 4 up, spill_below 0: keeps all",
     0.0f,
     {HEALTH(1, 0, 4), UP(4), UP(4), UP(4), UP(4)},
     {1, 0, 0, 0, 0},
     0},
    /* Independent decisions: EU keeps 1/2, US_EAST keeps 1/2 of the rest, and when both
     * pass it on EU takes it back. */
    {"two weak regions, nobody else",
     0.5f,
     {HEALTH(1, 0, 4), HEALTH(1, 0, 4), DOWN(4), DOWN(4), DOWN(4)},
     {0.75, 0.25, 0, 0, 0},
     0.25},
    {"two weak regions, then a healthy one",
     0.5f,
     {HEALTH(1, 0, 4), HEALTH(1, 0, 4), UP(4), DOWN(4), DOWN(4)},
     {0.5, 0.25, 0.25, 0, 0},
     0.5},
    {"spill past a down region",
     0.5f,
     {HEALTH(1, 0, 4), DOWN(4), DOWN(4), UP(4), DOWN(4)},
     {0.5, 0, 0, 0.5, 0},
     0.5},
};

static void
test_spill_shares(void **state)
{
    (void)state;
    struct geo_info london = at("", true, 51.5f, -0.13f);
    enum { N = 100000 };
    for (size_t c = 0; c < sizeof(share_cases) / sizeof(share_cases[0]); c++) {
        const struct share_case *tc = &share_cases[c];
        struct route_table t;
        load(&t, &world, tc->spill_below);
        unsigned count[5] = {0}, spilled = 0;
        uint32_t x = 12345;
        for (int i = 0; i < N; i++) {
            x = x * 1664525u + 1013904223u; /* Numerical Recipes' LCG */
            struct route_choice ch;
            assert_int_equal(route_choose(&t, &london, x, health_from, tc->h, &ch), 0);
            count[ch.region]++;
            spilled += ch.spilled;
            if (ch.failed_over != (ch.region != EU))
                fail_msg("%s: failed_over %d for region %u", tc->name, ch.failed_over, ch.region);
        }
        for (size_t r = 0; r < 5; r++) {
            double share = (double)count[r] / N;
            if (fabs(share - tc->want[r]) > 0.02)
                fail_msg("%s: region %zu got %.4f, want %.2f", tc->name, r, share, tc->want[r]);
        }
        double sshare = (double)spilled / N;
        if (fabs(sshare - tc->want_spilled) > 0.02)
            fail_msg("%s: spilled %.4f, want %.2f", tc->name, sshare, tc->want_spilled);
    }
}

/* ---- table validation ---- */

static void
test_table_init(void **state)
{
    (void)state;
    double lat[ROUTE_MAX_REGIONS + 1] = {0}, lon[ROUTE_MAX_REGIONS + 1] = {0};
    const char *cc[ROUTE_MAX_REGIONS + 1] = {NULL};
    struct route_table t;

    assert_int_equal(route_table_init(&t, 0, lat, lon, cc, 0, 0.5f), -1);
    assert_int_equal(route_table_init(&t, ROUTE_MAX_REGIONS + 1, lat, lon, cc, 0, 0.5f), -1);
    assert_int_equal(route_table_init(&t, ROUTE_MAX_REGIONS, lat, lon, cc, 0, 0.5f), 0);
    assert_int_equal(t.nregions, ROUTE_MAX_REGIONS);
    assert_int_equal(route_table_init(&t, 1, lat, lon, NULL, 0, 0.5f), 0);
    assert_int_equal(route_table_init(&t, 2, lat, lon, cc, 2, 0.5f), -1); /* default */
    assert_int_equal(route_table_init(&t, 2, lat, lon, cc, 1, 1.5f), -1); /* spill */
    assert_int_equal(route_table_init(&t, 2, lat, lon, cc, 1, -0.1f), -1);
    assert_int_equal(route_table_init(&t, 2, lat, lon, cc, 1, NAN), -1);
    assert_int_equal(route_table_init(&t, 2, lat, lon, cc, 1, 1.0f), 0);

    static const struct {
        const char *code;
        int want;
    } codes[] = {
        {"GB", 0}, {"", 0},     {"GBDEFR", 0}, {"G1", -1},  {"gb", -1}, {"Gb", -1},
        {"G", -1}, {"GBD", -1}, {"GB-DE", -1}, {"GB ", -1}, {"@B", -1}, {"[B", -1},
    };
    for (size_t c = 0; c < sizeof(codes) / sizeof(codes[0]); c++) {
        cc[1] = codes[c].code;
        if (route_table_init(&t, 2, lat, lon, cc, 0, 0.5f) != codes[c].want)
            fail_msg("countries \"%s\": want %d", codes[c].code, codes[c].want);
    }
    cc[1] = NULL;

    lat[1] = NAN;
    assert_int_equal(route_table_init(&t, 2, lat, lon, cc, 0, 0.5f), -1);
    lat[1] = 0;
    lon[0] = INFINITY;
    assert_int_equal(route_table_init(&t, 2, lat, lon, cc, 0, 0.5f), -1);
}

/* ---- places: each place's order made once (route_places.h) ---- */

/* Places: every rank case's client (any region set), then a grid over the globe with and
 * without countries some regions list. */
#define GRID_PLACES (36 * 18 * 3)
static void
place_info(const void *ctx, uint32_t i, struct geo_info *out)
{
    (void)ctx;
    size_t ncases = sizeof(rank_cases) / sizeof(rank_cases[0]);
    if (i < ncases) {
        const struct rank_case *tc = &rank_cases[i];
        *out = at(tc->country, tc->has_coords, tc->lat, tc->lon);
        return;
    }
    i -= (uint32_t)ncases;
    static const char *const countries[] = {"", "BR", "ZZ"};
    float lon = -180.0f + 10.0f * (float)(i % 36), lat = -85.0f + 10.0f * (float)(i / 36 % 18);
    *out = at(countries[i / (36 * 18)], i % 7 != 0, lat, lon);
}

static void
test_places(void **state)
{
    (void)state;
    const struct region_set *sets[] = {&world, &world_sa, &pacific, &poles, &twins};
    uint32_t n = (uint32_t)(sizeof(rank_cases) / sizeof(rank_cases[0])) + GRID_PLACES;
    for (size_t s = 0; s < sizeof(sets) / sizeof(sets[0]); s++) {
        struct route_table t;
        load(&t, sets[s], 0.5f);
        struct route_places p;
        assert_int_equal(route_places_init(&p, &t, n, place_info, NULL), 0);
        assert_int_equal(p.nplaces, n);
        /* Equal orders are kept once: far fewer than places, and no two alike. */
        assert_true(p.norders >= 1 && p.norders < n / 10);
        for (uint32_t a = 0; a < p.norders; a++)
            for (uint32_t b = a + 1; b < p.norders; b++)
                assert_memory_not_equal(p.orders[a], p.orders[b], ROUTE_MAX_REGIONS);
        for (uint32_t i = 0; i < n; i++) {
            struct geo_info g;
            place_info(NULL, i, &g);
            uint8_t want[ROUTE_MAX_REGIONS] = {0};
            route_rank(&t, &g, want);
            if (memcmp(route_place_order(&p, i), want, t.nregions) != 0)
                fail_msg("set %zu place %u: the table's order is not route_rank's", s, i);
            assert_int_equal(p.places[i].country[0], g.country[0]);
            assert_int_equal(p.places[i].country[1], g.country[0] ? g.country[1] : 0);
        }
        route_places_free(&p);
        assert_null(p.places);
        assert_int_equal(p.nplaces, 0);
    }
    /* No places: an empty table, and requests rank as they come. */
    struct route_table t;
    load(&t, &world, 0.5f);
    struct route_places p;
    assert_int_equal(route_places_init(&p, &t, 0, place_info, NULL), 0);
    assert_int_equal(p.nplaces, 0);
    route_places_free(&p);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_distance),     cmocka_unit_test(test_rank),
        cmocka_unit_test(test_order_from),   cmocka_unit_test(test_choose),
        cmocka_unit_test(test_spill_shares), cmocka_unit_test(test_table_init),
        cmocka_unit_test(test_places),
    };
    return cmocka_run_group_tests_name("route", tests, NULL, NULL);
}
