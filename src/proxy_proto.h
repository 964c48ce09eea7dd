/* SPDX-License-Identifier: MIT */
/* The PROXY protocol header (versions 1 and 2, haproxy.org's proxy-protocol.txt) that a
 * network load balancer puts in front of a connection to tell us who the client is.
 * Pure code, picohttpparser's contract: bytes consumed, PROXY_PROTO_PARTIAL, or
 * PROXY_PROTO_INVALID. No allocation. */
#ifndef MERIDIAN_PROXY_PROTO_H
#define MERIDIAN_PROXY_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#define PROXY_PROTO_PARTIAL (-2)
#define PROXY_PROTO_INVALID (-1)
/* A v1 line is at most 107 bytes; v2 is 16 bytes and a length. We refuse v2 headers
 * longer than this (TLVs included): a balancer's are far smaller. */
#define PROXY_PROTO_MAX_BYTES 536

struct proxy_proto_result {
    /* false for v1 "UNKNOWN", v2 LOCAL (a health check from the balancer itself) and v2
     * UNSPEC / AF_UNIX: use the connection's own peer. */
    bool has_addr;
    struct sockaddr_storage src; /* the client */
    struct sockaddr_storage dst; /* where it connected to */
    int version;                 /* 1 or 2 */
};

/* Parse the header at the start of `p` (len bytes received so far). Returns the header's
 * length (> 0) with *out set; PROXY_PROTO_PARTIAL when more bytes are needed and what is
 * there is a valid prefix; PROXY_PROTO_INVALID when it is not a PROXY header or breaks
 * the grammar (bad signature, bad address, port out of range, v1 line over 107 bytes,
 * v2 length over PROXY_PROTO_MAX_BYTES - 16, address block shorter than its family). */
int proxy_proto_parse(const char *p, size_t len, struct proxy_proto_result *out);

#endif
