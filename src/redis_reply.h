/* SPDX-License-Identifier: MIT */
/* What the Redis replies Meridian asks for mean: a cluster's slot map (CLUSTER SLOTS), the
 * results of the budget's lease and heartbeat scripts (budget.c holds the scripts), and NOSCRIPT.
 * Shape and range checks on the reply tree hiredis built, and nothing else: no I/O, no
 * allocation, no link or event state, so each is table-tested and fuzzed on its own
 * (tests/fuzz/fuzz_redis_reply.c). Redirections (MOVED, ASK) are a line of text, not a tree,
 * and are parsed in redis_slot.h; the Redis link and the budget act on what these say. */
#ifndef MERIDIAN_REDIS_REPLY_H
#define MERIDIAN_REDIS_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis_slot.h"

struct redisReply;

/* The largest server index a slot map holds: it keeps them in int8_t. */
#define REDIS_REPLY_SERVER_MAX INT8_MAX

/* The caller's index for a master named in a CLUSTER SLOTS reply (the Redis link adds it to its
 * table when new). `ip` is an IPv4 or IPv6 address in text, NUL-terminated, `len` bytes (below
 * INET6_ADDRSTRLEN), valid during the call only. An empty one (len 0) stands for the node that
 * answered, as in a MOVED to ":port". Redis says so two ways: a NULL endpoint (Redis 7 with
 * cluster-preferred-endpoint-type unknown-endpoint: "connect to the same endpoint you sent
 * CLUSTER SLOTS to") and "" (a node that does not know its own address, which it can only be
 * telling about itself: it learns the others' from their connections; a one-node cluster always
 * says ""). Returns 0..REDIS_REPLY_SERVER_MAX, or -1 to leave that master's slots unknown (a full
 * table, no answering node to stand for). */
typedef int (*redis_reply_server_fn)(void *ctx, const char *ip, size_t len, uint16_t port);

/* The slot map a CLUSTER SLOTS reply gives:
 *   [[start, end, [endpoint, port, id, ...], replica...], ...]
 * Every slot from start to end gets its master's index from server(ctx, ...); the replicas and
 * whatever follows the master's port are not looked at. A slot that no range covers is -1
 * (unknown), and so is one whose master's endpoint is neither empty nor an IP address (a
 * hostname, or "?", Redis 7's word for a hostname it was not given: we look nothing up) or which
 * server() refused. A slot in two ranges goes to the later one (Redis never sends that).
 *
 * Returns 0 with every one of slot_server[0..16383] written. Returns -1, with slot_server
 * untouched and server() never called, when r is not of that shape: not an array; a range that is
 * not an array of at least 3; a start or end that is not an integer 0..16383, or start > end; a
 * master that is not an array of at least 2; an endpoint that is neither a string nor nil; a port
 * that is not an integer 1..65535. The whole reply is checked before server() is first called,
 * so a refused reply adds no server to the caller's table and the map it had stays whole (stale,
 * but not half of one and half of another). r may be NULL (-1). */
int redis_reply_slot_map(const struct redisReply *r, redis_reply_server_fn server, void *ctx,
                         int8_t slot_server[REDIS_SLOTS]);

/* The lease script's answer: {granted, wait_ms}, an array of exactly two integers. granted is the
 * number of tokens leased, 0..UINT32_MAX (the script grants at most what was asked, a uint32_t);
 * wait_ms, when fewer were granted than asked, is how long until the bucket holds a token again,
 * 0..UINT32_MAX ms (at the smallest rate budget.c can send, 0.000001/s, the script says at most
 * 1e9 ms). Returns 0 and fills *got and *wait_ms; -1, touching neither, for anything else (an
 * error reply, NULL, a negative or larger number): the caller takes that for Redis failing rather
 * than do arithmetic that wraps (a deadline in the past, or 429s until a restart). */
int redis_reply_lease(const struct redisReply *r, uint32_t *got, uint32_t *wait_ms);

/* The most nodes a heartbeat answer may count: above any fleet, and small enough that nodes
 * times workers (at most CFG_MAX_WORKERS) stays far inside an unsigned. */
#define REDIS_REPLY_NODES_MAX (1u << 20)

/* The heartbeat script's answer: how many nodes were heard within the horizon, an integer
 * 1..REDIS_REPLY_NODES_MAX (this node's own heartbeat is one of them). Returns 0 and fills
 * *nodes; -1, touching nothing, for anything else (NULL included). */
int redis_reply_nodes(const struct redisReply *r, unsigned *nodes);

/* Whether r is the error that EVALSHA gets from a Redis that does not have the script (one that
 * restarted, a new master): the caller sends EVAL with the script's text. False for NULL. */
bool redis_reply_is_noscript(const struct redisReply *r);

#endif
