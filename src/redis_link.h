/* SPDX-License-Identifier: MIT */
/* A worker's link to Redis: one server, or a Redis Cluster spoken by hand (Debian's
 * hiredis 0.14 has no cluster support). Commands go out on hiredis's async API over the
 * worker's own libevent loop; nothing here ever blocks.
 *
 * Every command carries the key it touches: in a cluster that key's slot picks the master
 * (from CLUSTER SLOTS, asked at the start and again after a MOVED or a lost connection),
 * MOVED is followed and remembered, ASK is followed once with ASKING. One connection per
 * server (per master) per worker, opened on first use; AUTH and SELECT go first.
 *
 * The promise to the caller: its callback runs exactly once per command, with the reply
 * or with NULL and a reason, and never later than the configured timeout after the
 * command was given (a connection whose oldest command timed out is dropped, failing the
 * others, and opened again on the next command). A callback never runs from inside
 * redis_link_command() itself, and never after redis_link_free(). */
#ifndef MERIDIAN_REDIS_LINK_H
#define MERIDIAN_REDIS_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct event_base;
struct cfg_redis;
struct redisReply;

struct redis_link;

/* `reply` is NULL when the command failed (`why` says how: "timeout", "connection
 * refused", "no master for slot 123", ...); otherwise it is the reply, which may be an
 * error reply (REDIS_REPLY_ERROR) and is freed after the callback returns. */
typedef void (*redis_reply_fn)(void *ctx, const struct redisReply *reply, const char *why);

/* A link for `cfg` (copied: the link may outlive the generation) on `base`. NULL when out
 * of memory. */
struct redis_link *redis_link_new(struct event_base *base, const struct cfg_redis *cfg);

/* Fails whatever is in flight without calling back, closes the connections, frees. */
void redis_link_free(struct redis_link *l);

/* Whether `cfg` is what the link was made for (a reload that keeps it keeps the link). */
bool redis_link_same(const struct redis_link *l, const struct cfg_redis *cfg);

/* Send the command argv[0..argc-1] about `key` (argv holds it too; only the slot is taken
 * from it). The arguments are copied. Returns 0, or -1 when out of memory (no callback). */
int redis_link_command(struct redis_link *l, const char *key, size_t keylen, int argc,
                       const char *const *argv, const size_t *argvlen, redis_reply_fn cb,
                       void *ctx);

/* For /status: connections up, servers (cluster masters) known, and the last error seen
 * (a static or link-owned string; "" when none). */
struct redis_link_state {
    unsigned connected;
    unsigned servers;
    bool cluster;
    const char *last_error;
};
void redis_link_state(const struct redis_link *l, struct redis_link_state *out);

#endif
