/* SPDX-License-Identifier: MIT */
/* What our Redis replies mean (see redis_reply.h): the checks run over hiredis's reply tree
 * before the link or the budget believes a number of it. */
#define _POSIX_C_SOURCE 200809L

#include "redis_reply.h"

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <string.h>

static bool
is_int_in(const redisReply *r, long long lo, long long hi)
{
    return r != NULL && r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi;
}

/* A range of CLUSTER SLOTS: [start, end, [endpoint, port, ...], ...], within the bounds. */
static bool
slot_range_ok(const redisReply *e)
{
    if (e == NULL || e->type != REDIS_REPLY_ARRAY || e->elements < 3)
        return false;
    const redisReply *lo = e->element[0], *hi = e->element[1], *m = e->element[2];
    if (!is_int_in(lo, 0, REDIS_SLOTS - 1) || !is_int_in(hi, 0, REDIS_SLOTS - 1) ||
        lo->integer > hi->integer)
        return false;
    if (m == NULL || m->type != REDIS_REPLY_ARRAY || m->elements < 2)
        return false;
    const redisReply *ip = m->element[0];
    if (ip == NULL || (ip->type != REDIS_REPLY_STRING && ip->type != REDIS_REPLY_NIL))
        return false;
    return is_int_in(m->element[1], 1, 65535);
}

/* The master of a range that slot_range_ok() passed, as server() numbers it; -1 when its endpoint
 * is neither empty nor an address, or server() says no. */
static int
slot_range_master(const redisReply *m, redis_reply_server_fn server, void *ctx)
{
    const redisReply *ip = m->element[0];
    uint16_t port = (uint16_t)m->element[1]->integer;
    char text[INET6_ADDRSTRLEN];
    unsigned char bin[sizeof(struct in6_addr)];
    int s;
    if (ip->type == REDIS_REPLY_NIL || ip->len == 0) {
        s = server(ctx, "", 0, port);
    } else {
        /* A NUL inside would let inet_pton() pass "127.0.0.1\0junk", and the link keep it under
         * its whole length: a new server at every refresh. */
        if (ip->len >= sizeof(text) || memchr(ip->str, '\0', ip->len) != NULL)
            return -1;
        memcpy(text, ip->str, ip->len);
        text[ip->len] = '\0';
        if (inet_pton(AF_INET, text, bin) != 1 && inet_pton(AF_INET6, text, bin) != 1)
            return -1;
        s = server(ctx, text, ip->len, port);
    }
    return s >= 0 && s <= REDIS_REPLY_SERVER_MAX ? s : -1;
}

/* Two passes, so that a reply refused halfway has neither called server() nor written a slot:
 * the first checks every range, the second (which cannot fail) fills the map. */
int
redis_reply_slot_map(const struct redisReply *r, redis_reply_server_fn server, void *ctx,
                     int8_t slot_server[REDIS_SLOTS])
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY)
        return -1;
    for (size_t i = 0; i < r->elements; i++)
        if (!slot_range_ok(r->element[i]))
            return -1;

    memset(slot_server, -1, REDIS_SLOTS * sizeof(slot_server[0]));
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        int s = slot_range_master(e->element[2], server, ctx);
        if (s < 0)
            continue;
        for (long long k = e->element[0]->integer; k <= e->element[1]->integer; k++)
            slot_server[k] = (int8_t)s;
    }
    return 0;
}

int
redis_reply_lease(const struct redisReply *r, uint32_t *got, uint32_t *wait_ms)
{
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        !is_int_in(r->element[0], 0, UINT32_MAX) || !is_int_in(r->element[1], 0, UINT32_MAX))
        return -1;
    *got = (uint32_t)r->element[0]->integer;
    *wait_ms = (uint32_t)r->element[1]->integer;
    return 0;
}

int
redis_reply_nodes(const struct redisReply *r, unsigned *nodes)
{
    if (!is_int_in(r, 1, REDIS_REPLY_NODES_MAX))
        return -1;
    *nodes = (unsigned)r->integer;
    return 0;
}

bool
redis_reply_is_noscript(const struct redisReply *r)
{
    return r != NULL && r->type == REDIS_REPLY_ERROR && r->str != NULL && r->len >= 8 &&
           memcmp(r->str, "NOSCRIPT", 8) == 0;
}
