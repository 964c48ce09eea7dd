/* SPDX-License-Identifier: MIT */
/* The config sections that decide where a request goes: client_ip (whose forwarding
 * headers are believed), geoip (the database), routing (spilling and the headers backends
 * are told), a region's countries and balance; then, for a file without errors, the route
 * table and the opened database. Values and their checks only: client_ip.c, geo.c and
 * route.c do the work at run time. */
#define _POSIX_C_SOURCE 200809L

#include "cfg_loader.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client_ip.h"
#include "geo.h"
#include "hdr.h"
#include "lb.h"
#include "route.h"
#include "route_places.h"

#define DEFAULT_COUNTRY_HEADER "X-Client-Country"
#define DEFAULT_REGION_HEADER "X-Client-Region"

/* ---- client_ip ----------------------------------------------------------------------- */

/* The headers a client address may come from, as written in the file (any case), and
 * what client_ip.c calls them. */
static const char *const source_names[] = {"x-forwarded-for", "forwarded",
                                           "cloudfront-viewer-address"};
static const uint8_t source_ids[] = {CLIENT_IP_XFF, CLIENT_IP_FORWARDED, CLIENT_IP_CF_VIEWER};
#define NSOURCES (sizeof(source_names) / sizeof(source_names[0]))
_Static_assert(NSOURCES <= CHOICES_MAX && NSOURCES <= CLIENT_IP_MAX_SOURCES, "sources");

/* Trust nobody; believe X-Forwarded-For from whoever is trusted (as cfg_new does for the
 * top level). */
static void
client_ip_defaults(struct client_ip_cfg *ci)
{
    memset(ci, 0, sizeof(*ci));
    ci->sources[0] = CLIENT_IP_XFF;
    ci->nsources = 1;
}

/* Why client_ip_parse_net refused `text`, as the rest of a message after "path: ". Looked
 * at only after the fact; when it finds nothing wrong it says what the form is. */
static void
explain_net(const char *text, char *why, size_t size)
{
    static const char example[] = "like 10.0.0.0/8, 2001:db8::/32 or 127.0.0.1";
    char buf[QUOTE_BUF], host[INET6_ADDRSTRLEN + 1], net[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t hlen = slash != NULL ? (size_t)(slash - text) : strlen(text);
    unsigned char addr[16];
    int family;
    unsigned max, nbytes;
    uint64_t prefix;
    bool host_bits = false;

    ld_quote(text, strlen(text), buf);
    if (hlen == 0 || hlen >= sizeof(host)) {
        snprintf(why, size, "expected an IP address or network %s, got %s", example, buf);
        return;
    }
    memcpy(host, text, hlen);
    host[hlen] = '\0';
    if (inet_pton(AF_INET, host, addr) == 1) {
        family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, host, addr) == 1) {
        family = AF_INET6;
        max = 128;
    } else {
        snprintf(why, size,
                 "%s is not an IP address or network (write one %s; names are never looked "
                 "up)",
                 buf, example);
        return;
    }
    nbytes = max / 8;
    prefix = max;
    if (slash != NULL &&
        (slash[1] == '\0' || strlen(slash + 1) > 3 || !ld_parse_uint(slash + 1, max, &prefix))) {
        snprintf(why, size, "the prefix length in %s is not a number 0..%u", buf, max);
        return;
    }
    for (unsigned i = 0; i < nbytes; i++) {
        unsigned keep = prefix >= (i + 1) * 8 ? 8 : prefix > i * 8 ? (unsigned)prefix - i * 8 : 0;
        unsigned char mask = (unsigned char)(0xFF00u >> keep);
        if (addr[i] & (unsigned char)~mask) {
            host_bits = true;
            addr[i] &= mask;
        }
    }
    if (host_bits && inet_ntop(family, addr, net, sizeof(net)) != NULL) {
        snprintf(why, size, "%s has host bits set under /%u (the network is %s/%u)", buf,
                 (unsigned)prefix, net, (unsigned)prefix);
        return;
    }
    snprintf(why, size, "expected an IP address or network %s, got %s", example, buf);
}

/* client_ip.trusted_proxies: an empty sequence is allowed and trusts nobody, as leaving it
 * out does. */
static void
load_trusted(struct loader *ld, const yaml_node_t *node, const char *path, struct client_ip_cfg *ci)
{
    char sub[PATH_BUF], why[512];
    size_t n;

    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, path))
        return;
    n = ld_seq_len(node);
    if (n == 0)
        return;
    ci->nets = calloc(n, sizeof(*ci->nets));
    if (ci->nets == NULL) {
        ld->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_seq_item(ld, node, i);
        const char *text;

        if (item == NULL)
            return;
        ld_subpath_index(sub, path, i);
        if ((text = ld_scalar(ld, item, sub)) == NULL)
            continue;
        if (client_ip_parse_net(text, &ci->nets[ci->nnets]) == 0) {
            ci->nnets++;
            continue;
        }
        explain_net(text, why, sizeof(why));
        ld_report(ld, ld_node_line(item), "%s: %s", sub, why);
    }
}

/* One client_ip section into `ci`, which holds its defaults: keys left out keep them. */
static void
load_client_ip(struct loader *ld, const yaml_node_t *node, const char *path,
               struct client_ip_cfg *ci)
{
    static const char *const keys[] = {"trusted_proxies", "headers", "use_cdn_location"};
    struct field f[3];
    char sub[PATH_BUF];
    size_t picked[CHOICES_MAX], npicked = 0;
    bool has_trusted;

    if (!ld_map_collect(ld, node, path, keys, 3, f))
        return;
    has_trusted =
        f[0].value != NULL && f[0].value->type == YAML_SEQUENCE_NODE && ld_seq_len(f[0].value) > 0;
    if (f[0].value != NULL) {
        ld_subpath(sub, path, "trusted_proxies");
        load_trusted(ld, f[0].value, sub, ci);
    }
    if (f[1].value != NULL && !ld->aborted) {
        ld_subpath(sub, path, "headers");
        if (ld_choices(ld, f[1].value, sub, source_names, NSOURCES, true,
                       "x-forwarded-for, forwarded or cloudfront-viewer-address", picked,
                       &npicked)) {
            for (size_t i = 0; i < npicked; i++)
                ci->sources[i] = source_ids[picked[i]];
            ci->nsources = npicked;
        }
    }
    if (f[2].value != NULL) {
        ld_subpath(sub, path, "use_cdn_location");
        if (ld_bool(ld, f[2].value, sub, &ci->use_cdn_location) && ci->use_cdn_location &&
            !has_trusted)
            ld_report(ld, ld_node_line(f[2].value),
                      "%s: use_cdn_location needs trusted_proxies: headers are only believed "
                      "from trusted peers",
                      path);
    }
}

void
cfg_load_routing_client_ip(struct loader *ld, const yaml_node_t *node)
{
    load_client_ip(ld, node, "client_ip", &ld->cfg->client_ip);
}

/* The listener's section replaces the top level's as a whole: what it leaves out has the
 * defaults, not the top level's values, so that reading one section tells the story. */
void
cfg_load_routing_client_ip_own(struct loader *ld, const yaml_node_t *node, const char *path,
                               struct cfg_listener *l)
{
    struct client_ip_cfg *ci = calloc(1, sizeof(*ci));

    if (ci == NULL) {
        ld->oom = true;
        return;
    }
    client_ip_defaults(ci);
    l->client_ip_own = ci;
    l->client_ip = ci;
    load_client_ip(ld, node, path, ci);
}

/* ---- geoip --------------------------------------------------------------------------- */

void
cfg_load_routing_geoip(struct loader *ld, const yaml_node_t *node)
{
    static const char *const keys[] = {"database"};
    struct field f[1];

    if (!ld_map_collect(ld, node, "geoip", keys, 1, f))
        return;
    ld_require(ld, node, "geoip", "database", &f[0]);
    if (f[0].value == NULL)
        return;
    ld->geoip_line = ld_node_line(f[0].key);
    ld->cfg->geoip_line = ld_line_int(ld->geoip_line);
    ld_path(ld, f[0].value, "geoip.database", "a MaxMind DB file (.mmdb)", &ld->cfg->geoip_path);
}

/* Whether `s` can be shown in a message as it is (no control bytes, no quotes). */
static bool
is_plain(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '"')
            return false;
    return true;
}

static void
place_info(const void *ctx, uint32_t place, struct geo_info *out)
{
    geo_place_info(ctx, place, out);
}

int
cfg_load_routing_open_geoip(struct loader *ld)
{
    struct cfg *cfg = ld->cfg;
    char err[256], buf[QUOTE_BUF];

    if (cfg->geoip_path == NULL)
        return 0;
    err[0] = '\0';
    /* The running generation's database when it is the same file, unchanged: opening one
     * walks and indexes the whole file, too slow to repeat for every DNS change. */
    const struct cfg *prev = ld->opts->prev;
    if (prev != NULL && prev->geo != NULL &&
        ((ld->opts->reuse_files && strcmp(prev->geoip_path, cfg->geoip_path) == 0) ||
         geo_same_file(prev->geo, cfg->geoip_path)))
        cfg->geo = geo_ref(ld->opts->prev->geo);
    else
        cfg->geo = geo_open(cfg->geoip_path, err, sizeof(err));
    if (cfg->geo != NULL) {
        /* Each place's region order, once for every request of the generation. Without
         * it (out of memory) requests are ranked as they come: slower, still right. */
        route_places_init(&cfg->places, &cfg->route, geo_places(cfg->geo), place_info, cfg->geo);
        return 0;
    }
    /* The reason is geo.c's; keep it on one line whatever it holds. */
    for (char *p = err; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    ld_report(ld, ld->geoip_line, "geoip.database: %s: %s",
              is_plain(cfg->geoip_path) ? cfg->geoip_path
                                        : ld_quote(cfg->geoip_path, strlen(cfg->geoip_path), buf),
              err[0] != '\0' ? err : "cannot be used");
    return -1;
}

/* ---- routing ------------------------------------------------------------------------- */

void
cfg_load_routing_absent(struct loader *ld)
{
    struct cfg_routing *r = &ld->cfg->routing;

    free(r->country_header);
    free(r->region_header);
    r->country_header = ld_strdup(ld, DEFAULT_COUNTRY_HEADER);
    r->region_header = ld_strdup(ld, DEFAULT_REGION_HEADER);
}

/* routing.spill_below: "50%" (0..100, decimals allowed) or a fraction 0..1 ("0.5"). */
static void
load_spill_below(struct loader *ld, const yaml_node_t *node, const char *path, float *out)
{
    char buf[QUOTE_BUF], num[32], *end;
    const char *text = ld_scalar(ld, node, path);
    size_t len, nlen;
    bool percent;
    double v;

    if (text == NULL)
        return;
    len = strlen(text);
    percent = len > 0 && text[len - 1] == '%';
    nlen = percent ? len - 1 : len;
    if (nlen == 0 || nlen >= sizeof(num) || strspn(text, "0123456789.") != nlen)
        goto bad;
    memcpy(num, text, nlen);
    num[nlen] = '\0';
    if (strchr(num, '.') != strrchr(num, '.') || strcspn(num, "0123456789") == nlen)
        goto bad;
    v = strtod(num, &end);
    if (*end != '\0')
        goto bad;
    if (percent)
        v /= 100;
    if (!(v >= 0 && v <= 1))
        goto bad;
    *out = (float)v;
    return;

bad:
    ld_report(ld, ld_node_line(node),
              "%s: expected a share from 0 to 100%%, like 50%% or 0.5 (0 turns spilling off), "
              "got %s",
              path, ld_describe(node, buf));
}

/* The characters of an HTTP field name (RFC 9110, 5.1: a token). */
static const char token_chars[] = "!#$%&'*+-.^_`|~0123456789"
                                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/* A header name Meridian adds to requests, or "" / false for none (*out NULL). *out holds
 * the default on entry and is replaced only by a valid value. */
static void
load_header_name(struct loader *ld, const yaml_node_t *node, const char *path, char **out)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);
    size_t len;
    char *copy;

    if (text == NULL)
        return;
    len = strlen(text);
    if (len == 0 || strcmp(text, "false") == 0) {
        free(*out);
        *out = NULL;
        return;
    }
    if (strspn(text, token_chars) != len) {
        ld_report(ld, ld_node_line(node),
                  "%s: expected a header field name (letters, digits and !#$%%&'*+-.^_`|~), "
                  "or false to send none, got %s",
                  path, ld_describe(node, buf));
        return;
    }
    /* Framing, hop-by-hop and forwarding headers are Meridian's own: a second
     * Content-Length or Host would make the request mean something else. */
    if (hdr_lookup((struct span){text, len}) != HDR_OTHER) {
        ld_report(ld, ld_node_line(node),
                  "%s: %s is a header Meridian sets or acts on itself; choose another name", path,
                  ld_describe(node, buf));
        return;
    }
    if ((copy = ld_strdup(ld, text)) != NULL) {
        free(*out);
        *out = copy;
    }
}

void
cfg_load_routing_section(struct loader *ld, const yaml_node_t *node)
{
    static const char *const keys[] = {"spill_below", "country_header", "region_header"};
    struct cfg_routing *r = &ld->cfg->routing;
    struct field f[3];

    cfg_load_routing_absent(ld); /* the defaults, which the keys given replace */
    if (!ld_map_collect(ld, node, "routing", keys, 3, f))
        return;
    if (f[0].value != NULL)
        load_spill_below(ld, f[0].value, "routing.spill_below", &r->spill_below);
    if (f[1].value != NULL)
        load_header_name(ld, f[1].value, "routing.country_header", &r->country_header);
    if (f[2].value != NULL)
        load_header_name(ld, f[2].value, "routing.region_header", &r->region_header);
    if (r->country_header != NULL && r->region_header != NULL &&
        strcasecmp(r->country_header, r->region_header) == 0) {
        bool region = f[2].value != NULL; /* the second of the two, or the one given */
        ld_report(ld, ld_node_line(region ? f[2].value : f[1].value),
                  "routing.%s: \"%s\" is also routing.%s; the two headers need different "
                  "names",
                  region ? "region_header" : "country_header",
                  region ? r->region_header : r->country_header,
                  region ? "country_header" : "region_header");
    }
}

/* ---- a region's countries and balance ------------------------------------------------ */

/* A region for messages: its name when it has one, else its place in the file. */
static const char *
region_label(const struct loader *ld, size_t index, char *buf, size_t size)
{
    const char *name = index < ld->cfg->nregions ? ld->cfg->regions[index].name : NULL;

    if (name != NULL)
        snprintf(buf, size, "\"%s\" (regions[%zu])", name, index);
    else
        snprintf(buf, size, "regions[%zu]", index);
    return buf;
}

static bool
is_ascii_letter(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static char
ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
}

/* Codes are stored upper-cased and run together ("GBDEFR"), as route_table_init takes
 * them. An empty sequence lists none. */
void
cfg_load_routing_countries(struct loader *ld, const yaml_node_t *node, const char *path,
                           size_t index, struct cfg_region *r)
{
    char sub[PATH_BUF], buf[QUOTE_BUF], first[LOAD_NAME_MAX + 32], second[LOAD_NAME_MAX + 32];
    char *codes;
    size_t n, ncodes = 0;

    if (!ld_expect(ld, node, YAML_SEQUENCE_NODE, path))
        return;
    n = ld_seq_len(node);
    if (n == 0)
        return;
    codes = malloc(2 * n + 1);
    if (codes == NULL) {
        ld->oom = true;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        yaml_node_t *item = ld_seq_item(ld, node, i);
        const char *text;
        size_t k, line;
        char c0, c1;

        if (item == NULL)
            break;
        ld_subpath_index(sub, path, i);
        if ((text = ld_scalar(ld, item, sub)) == NULL)
            continue;
        if (strlen(text) != 2 || !is_ascii_letter(text[0]) || !is_ascii_letter(text[1])) {
            ld_report(ld, ld_node_line(item),
                      "%s: expected a two-letter country code like GB, got %s", sub,
                      ld_describe(item, buf));
            continue;
        }
        c0 = ascii_upper(text[0]);
        c1 = ascii_upper(text[1]);
        k = (size_t)(c0 - 'A') * 26 + (size_t)(c1 - 'A');
        line = ld_node_line(item);
        if (ld->country_region[k] == index + 1) {
            ld_report(ld, line, "%s: duplicate country %c%c (first at line %u)", sub, c0, c1,
                      (unsigned)ld->country_line[k]);
            continue;
        }
        if (ld->country_region[k] != 0) {
            ld_report(ld, line,
                      "%s: country %c%c is listed by region %s, line %u, and by region %s, "
                      "line %zu; a country belongs to one region",
                      sub, c0, c1,
                      region_label(ld, ld->country_region[k] - 1, first, sizeof(first)),
                      (unsigned)ld->country_line[k],
                      region_label(ld, index, second, sizeof(second)), line);
            continue;
        }
        ld->country_region[k] = index + 1 > UINT32_MAX ? UINT32_MAX : (uint32_t)(index + 1);
        ld->country_line[k] = line > UINT32_MAX ? UINT32_MAX : (uint32_t)line;
        codes[ncodes++] = c0;
        codes[ncodes++] = c1;
    }
    if (ncodes == 0) {
        free(codes);
        return;
    }
    codes[ncodes] = '\0';
    r->countries = codes;
}

void
cfg_load_routing_balance(struct loader *ld, const yaml_node_t *node, const char *path,
                         struct cfg_region *r)
{
    char buf[QUOTE_BUF];
    const char *text = ld_scalar(ld, node, path);

    if (text == NULL)
        return;
    if (strcmp(text, "round_robin") == 0)
        r->balance = CFG_BALANCE_ROUND_ROBIN;
    else if (strcmp(text, "least_outstanding") == 0)
        r->balance = CFG_BALANCE_LEAST_OUTSTANDING;
    else
        ld_report(ld, ld_node_line(node), "%s: expected round_robin or least_outstanding, got %s",
                  path, ld_describe(node, buf));
}

/* ---- a region's weights ------------------------------------------------------------- */

void
cfg_load_routing_weights(struct loader *ld, struct cfg_region *r)
{
    uint32_t *weights;
    bool uniform = true;
    size_t len;

    _Static_assert(CFG_WEIGHT_MAX <= LB_WEIGHT_MAX, "weights");
    r->nserving = 0;
    for (size_t i = 0; i < r->nbackends; i++) {
        uint32_t w = cfg_backend_weight(&r->backends[i]);
        if (w == 0)
            ld->cfg->any_draining = true;
        else
            r->nserving++;
        uniform = uniform && w != 0 && w == cfg_backend_weight(&r->backends[0]);
    }
    /* Equal weights are today's round-robin, cursor and all: no cycle needed. Unequal
     * ones get the cycle under least_outstanding too, which breaks its ties by it. */
    if (uniform || !ld_clean(ld))
        return;
    weights = calloc(r->nbackends, sizeof(*weights));
    if (weights == NULL) {
        ld->oom = true;
        return;
    }
    for (size_t i = 0; i < r->nbackends; i++)
        weights[i] = cfg_backend_weight(&r->backends[i]);
    len = lb_schedule_len(weights, r->nbackends);
    if (len > 0) {
        r->schedule = calloc(len, sizeof(*r->schedule));
        if (r->schedule == NULL || lb_schedule_build(weights, r->nbackends, r->schedule) < 0) {
            free(r->schedule);
            r->schedule = NULL;
            ld->oom = true;
        } else {
            r->nschedule = len;
        }
    }
    free(weights);
}

/* ---- after the walk ------------------------------------------------------------------ */

void
cfg_load_routing_build(struct loader *ld)
{
    struct cfg *cfg = ld->cfg;
    double lat[ROUTE_MAX_REGIONS], lon[ROUTE_MAX_REGIONS];
    const char *countries[ROUTE_MAX_REGIONS];
    size_t n = cfg->nregions;

    if (n == 0 || n > ROUTE_MAX_REGIONS) {
        ld_report(ld, ld->regions_line, "regions: expected 1 to %d regions, got %zu",
                  ROUTE_MAX_REGIONS, n);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        lat[i] = cfg->regions[i].lat;
        lon[i] = cfg->regions[i].lon;
        countries[i] = cfg->regions[i].countries;
    }
    if (route_table_init(&cfg->route, n, lat, lon, countries, cfg->default_region,
                         cfg->routing.spill_below) < 0)
        ld_report(ld, ld->regions_line,
                  "regions: the route table could not be built from these %zu regions", n);
}
