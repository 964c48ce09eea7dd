/* SPDX-License-Identifier: MIT */
/* Who the client really is. The TCP peer, unless the peer is a proxy we were told to
 * trust (a CIDR list): then the forwarding headers it sent are believed, in the order the
 * operator configured them: X-Forwarded-For (walked from the right, skipping trusted
 * hops: the first untrusted address wins), Forwarded (RFC 7239 "for="), and CloudFront's
 * CloudFront-Viewer-Address ("ip:port", IPv6 without brackets). A malformed value is
 * ignored (the next source, then the peer, is used), never trusted in part. From a
 * trusted peer, CloudFront-Viewer-Country/-Latitude/-Longitude may also give the place.
 * Pure code: no allocation, no I/O; table-tested and fuzzed. */
#ifndef MERIDIAN_CLIENT_IP_H
#define MERIDIAN_CLIENT_IP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "geo-t.h"
#include "h1_parse.h"

/* One network. IPv4 networks are kept as IPv4 (family AF_INET, 4 bytes); an IPv4-mapped
 * IPv6 address (::ffff:a.b.c.d) is matched against IPv4 networks. */
struct client_ip_net {
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t prefix; /* 0..32 or 0..128 */
    uint8_t addr[16]; /* network bytes, host bits zero */
};

enum client_ip_source {
    CLIENT_IP_XFF = 0,          /* X-Forwarded-For */
    CLIENT_IP_FORWARDED = 1,    /* Forwarded: for= */
    CLIENT_IP_CF_VIEWER = 2,    /* CloudFront-Viewer-Address */
};
#define CLIENT_IP_MAX_SOURCES 3

/* What the operator configured (client_ip: at the top, or per listener). */
struct client_ip_cfg {
    struct client_ip_net *nets; /* owns (config generation memory) */
    size_t nnets;
    uint8_t sources[CLIENT_IP_MAX_SOURCES]; /* enum client_ip_source, in order of trust */
    size_t nsources;
    bool use_cdn_location; /* believe CloudFront-Viewer-Country/-Latitude/-Longitude */
};

/* Trusts no proxy and no CDN header: for a connection whose listener a reload or a stop
 * has removed (its own trusted_proxies are gone with it; the top level's may be wider). */
extern const struct client_ip_cfg client_ip_trust_nobody;

/* "10.0.0.0/8", "2001:db8::/32", or a bare address (a /32 or /128). Host bits set under
 * the prefix ("10.0.0.1/8") are an error: the operator meant something else. Returns 0,
 * or -1 when `text` is not of that form. */
int client_ip_parse_net(const char *text, struct client_ip_net *out);

/* Whether `sa` (AF_INET or AF_INET6) is inside one of the networks. */
bool client_ip_is_trusted(const struct client_ip_net *nets, size_t n, const struct sockaddr *sa);

/* Parse an IP literal of `len` bytes (no port, no brackets) into *out (port 0). IPv4-mapped
 * IPv6 becomes IPv4. Returns 0 or -1. */
int client_ip_parse_addr(const char *p, size_t len, struct sockaddr_storage *out);

/* The client's address for a request that came from `peer` with these headers. Returns
 * the source that gave it (enum client_ip_source), or -1 when the peer itself is the
 * client (untrusted peer, no configured header present, or every value malformed); *out
 * is set in every case (a copy of the peer when -1). */
int client_ip_resolve(const struct client_ip_cfg *cfg, const struct sockaddr *peer,
                      const struct h1_header *headers, size_t n, struct sockaddr_storage *out);

/* From a trusted peer's CloudFront-Viewer-Country / -Latitude / -Longitude headers: fill
 * what is there and well formed (country: two letters, upper-cased; coordinates: both,
 * within range). Returns true if anything was filled. The caller checks trust. */
bool client_ip_cdn_location(const struct h1_header *headers, size_t n, struct geo_info *out);

#endif
