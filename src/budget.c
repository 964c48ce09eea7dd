/* SPDX-License-Identifier: MIT */
/* A worker's share of the fleet's request budget (see budget.h). */
#define _POSIX_C_SOURCE 200809L

#include "budget.h"

#include <event2/event.h>
#include <event2/event_struct.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cfg.h"
#include "clock.h"
#include "log.h"
#include "ratelimit.h"
#include "redis_link.h"
#include "redis_reply.h"
#include "server.h"
#include "worker.h"

/* The bucket, changed atomically. KEYS[1]: a hash {tokens, ts}; ARGV: rate (tokens per
 * second, above 0: send_lease()), burst, want. Time is Redis's own (TIME, in microseconds).
 * A bucket nobody has used for a while expires and comes back full: a Redis restart that
 * loses it is harmless, and lets at most one burst through at once. Returns {granted,
 * wait_ms}: wait_ms, when less than `want` was granted, is when the next token will be
 * there. The expiry stops at 1e15 ms (31,700 years): Redis writes a Lua number of 1e17 or
 * more as "1e+17", which PEXPIRE refuses (a burst of 1e9 at 0.00001/s would need 1e17),
 * and a script that fails after its HSET leaves the bucket with no expiry at all. */
static const char lease_script[] =
    "redis.replicate_commands()\n"
    "local rate = tonumber(ARGV[1])\n"
    "local burst = tonumber(ARGV[2])\n"
    "local want = tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2])\n"
    "local v = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens = tonumber(v[1])\n"
    "local ts = tonumber(v[2])\n"
    "if tokens == nil or ts == nil then tokens = burst; ts = now end\n"
    "if now > ts then tokens = tokens + (now - ts) * rate / 1000000; ts = now end\n"
    "if tokens > burst then tokens = burst end\n"
    "local got = math.floor(tokens)\n"
    "if got > want then got = want end\n"
    "if got < 0 then got = 0 end\n"
    "tokens = tokens - got\n"
    "redis.call('HSET', KEYS[1], 'tokens', string.format('%.6f', tokens), 'ts',\n"
    "           string.format('%.0f', ts))\n"
    "redis.call('PEXPIRE', KEYS[1], math.min(math.ceil(burst / rate * 1000) + 10000, 1e15))\n"
    "local wait_ms = 0\n"
    "if got < want then wait_ms = math.ceil((1 - tokens) / rate * 1000) end\n"
    "if wait_ms < 1 and got < want then wait_ms = 1 end\n"
    "return {got, wait_ms}\n";

/* The node's heartbeat. KEYS[1]: a sorted set of node ids by last heartbeat (ms of Redis's
 * clock); ARGV: this node's id, the horizon in ms. Returns the nodes heard within it. */
static const char heartbeat_script[] =
    "redis.replicate_commands()\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local horizon = tonumber(ARGV[2])\n"
    "redis.call('ZADD', KEYS[1], now, ARGV[1])\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - horizon)\n"
    "redis.call('PEXPIRE', KEYS[1], horizon * 2)\n"
    "return redis.call('ZCARD', KEYS[1])\n";

/* Nodes sharing the budget, as worker 0 last heard from Redis; read by every worker. */
static atomic_uint live_nodes = 1;

/* Retry-After for a region with no share of the phase: see budget_refusal(). */
#define BUDGET_NO_SHARE_RETRY_S 60

/* on_redis_failure: local: the node's own buckets, one per bucket of the budget, shared
 * by its workers (GCRA: one compare-and-swap per request, and only while Redis fails),
 * so that the node admits budget / nodes however its connections fall on its workers. */
#define BUDGET_BUCKETS_MAX 64
static _Atomic uint64_t local_tat[BUDGET_BUCKETS_MAX];

struct budget_bucket {
    struct budget *b;
    char key[256]; /* "{prefix:phase:region}:bucket": at most 64 + 63 + 63 + 11 */
    size_t keylen;
    double rps, burst; /* the fleet's, for this bucket */

    uint32_t tokens;         /* left in the lease */
    uint64_t lease_until_us; /* when they expire */
    uint32_t want;           /* the size asked for last */
    bool refilling;          /* a lease request is out */
    bool sent_eval;          /* it went as EVAL after a NOSCRIPT */
    uint64_t dry_until_us;   /* the fleet's bucket is empty until then */

    double rate_rps;     /* this worker's recent admissions here (EWMA) */
    uint64_t rate_count; /* admissions since rate_since_us */
    uint64_t rate_since_us;

    struct budget_wait *head, *tail; /* oldest first */
    unsigned nwait;
    /* Fires when the oldest waiter has waited redis.timeout: a lease smaller than the
     * queue sends a second refill, and nobody may wait for two. */
    struct event wait_ev;
};

struct budget {
    struct worker *w;
    struct redis_link *link;       /* owns */
    struct cfg_rate_limit rl;      /* a shallow copy of the generation's: names borrowed from cfg */
    const struct cfg *cfg;         /* borrows: the generation applied last; the worker holds it */
    unsigned workers;              /* this node's */
    struct budget_bucket *buckets; /* owns: one (global) or one per region */
    unsigned nbuckets;
    struct rl_breaker breaker;
    bool degraded_logged;
    char sha_lease[41], sha_heartbeat[41];
    char nodes_key[128];
    size_t nodes_keylen;
    char node_id[128];
    struct event heartbeat_ev; /* worker 0 only */
    /* While Redis fails, a lease request when the breaker lets one through, so that a
     * worker without traffic also learns that Redis is back (and /status says so). */
    struct event probe_ev;
    bool heartbeat_on;
    bool heartbeat_out;
};

/* ---- small helpers ---- */

static void
sha1_hex(const char *text, char out[41])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(text, strlen(text), md, &len, EVP_sha1(), NULL);
    for (unsigned i = 0; i < len && i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[40] = '\0';
}

/* A counter only this worker writes, read whole by the admin thread. */
static void
stat_inc(atomic_uint_fast64_t *counter)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static unsigned
fleet_workers(const struct budget *b)
{
    unsigned n = atomic_load_explicit(&live_nodes, memory_order_relaxed);
    return (n ? n : 1) * (b->workers ? b->workers : 1);
}

unsigned
budget_live_nodes(void)
{
    unsigned n = atomic_load_explicit(&live_nodes, memory_order_relaxed);
    return n ? n : 1;
}

/* What /status shows of the link, refreshed at each reply. */
static void
publish_link(struct budget *b)
{
    struct redis_link_state st;
    if (b->link == NULL)
        return;
    redis_link_state(b->link, &st);
    atomic_store_explicit(&b->w->stats.rl_redis_connected, st.connected, memory_order_relaxed);
    atomic_store_explicit(&b->w->stats.rl_redis_servers, st.servers, memory_order_relaxed);
}

/* ---- the degraded modes ---- */

static enum budget_verdict
degraded(struct budget_bucket *bk, uint64_t now)
{
    struct budget *b = bk->b;
    switch (b->rl.on_redis_failure) {
    case CFG_RL_FAIL_OPEN:
        return BUDGET_ADMIT;
    case CFG_RL_FAIL_CLOSED:
        return BUDGET_UNAVAILABLE;
    case CFG_RL_FAIL_LOCAL:
    default:
        break;
    }
    unsigned nodes = budget_live_nodes();
    double rate = bk->rps / nodes, burst = bk->burst / nodes;
    if (burst < 1.0)
        burst = 1.0;
    unsigned i = (unsigned)(bk - b->buckets) % BUDGET_BUCKETS_MAX;
    if (!rl_gcra_take(&local_tat[i], rate, burst, now))
        return BUDGET_OVER;
    bk->rate_count++;
    return BUDGET_ADMIT;
}

static void
probe_arm(struct budget *b)
{
    uint64_t now = clock_mono_us(), at = b->breaker.open_until_us;
    uint64_t in = at > now ? at - now : 0;
    struct timeval tv = {(time_t)(in / 1000000), (suseconds_t)(in % 1000000) + 1000};
    event_add(&b->probe_ev, &tv);
}

static void
note_failure(struct budget *b, const char *why)
{
    static const char *const modes[] = {"local", "open", "closed"};
    atomic_store_explicit(&b->w->stats.rl_degraded, 1, memory_order_relaxed);
    probe_arm(b);
    if (!b->degraded_logged) {
        b->degraded_logged = true;
        log_warn("rate_limit: Redis failed (%s): on_redis_failure %s until it answers",
                 why ? why : "an unexpected reply", modes[b->rl.on_redis_failure]);
    }
}

static void
note_success(struct budget *b)
{
    rl_breaker_success(&b->breaker);
    event_del(&b->probe_ev);
    atomic_store_explicit(&b->w->stats.rl_degraded, 0, memory_order_relaxed);
    if (b->degraded_logged) {
        b->degraded_logged = false;
        log_info("rate_limit: Redis answers again: back to the shared budget");
    }
}

/* ---- waiters ---- */

static void
wait_unlink(struct budget_bucket *bk, struct budget_wait *wt)
{
    if (wt->prev)
        wt->prev->next = wt->next;
    else
        bk->head = wt->next;
    if (wt->next)
        wt->next->prev = wt->prev;
    else
        bk->tail = wt->prev;
    wt->prev = wt->next = NULL;
    wt->budget = NULL;
    bk->nwait--;
}

void
budget_cancel(struct budget_wait *wt)
{
    if (wt->budget == NULL)
        return;
    wait_unlink(&wt->budget->buckets[wt->bucket], wt);
}

static void
count(struct budget *b, enum budget_verdict v)
{
    if (v == BUDGET_ADMIT)
        stat_inc(&b->w->stats.rl_admitted);
    else if (v == BUDGET_OVER)
        stat_inc(&b->w->stats.rl_rejected);
    else if (v == BUDGET_UNAVAILABLE)
        stat_inc(&b->w->stats.rl_unavailable);
}

/* Take one token of the lease. */
static void
spend(struct budget_bucket *bk)
{
    bk->tokens--;
    bk->rate_count++;
}

static bool refill(struct budget_bucket *bk, uint64_t now);

/* Arms wait_ev for the oldest waiter's deadline (or disarms it: nobody waits). */
static void
wait_timer_arm(struct budget_bucket *bk, uint64_t now)
{
    if (bk->head == NULL) {
        event_del(&bk->wait_ev);
        return;
    }
    uint64_t deadline = bk->head->since_us + (uint64_t)bk->b->rl.redis.timeout_ms * 1000;
    uint64_t in = deadline > now ? deadline - now : 0;
    struct timeval tv = {(time_t)(in / 1000000), (suseconds_t)(in % 1000000)};
    event_add(&bk->wait_ev, &tv);
}

/* The oldest waiters waited redis.timeout: the failure mode decides for them, as it
 * would have had Redis not answered at all. */
static void
on_wait_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct budget_bucket *bk = arg;
    uint64_t now = clock_mono_us(), limit = (uint64_t)bk->b->rl.redis.timeout_ms * 1000;
    struct budget_wait *wt;
    (void)fd;
    (void)what;
    while ((wt = bk->head) != NULL && now - wt->since_us >= limit) {
        enum budget_verdict v = degraded(bk, now);
        wait_unlink(bk, wt);
        count(bk->b, v);
        wt->done(wt, v);
    }
    wait_timer_arm(bk, now);
}

/* What the waiters a lease could not serve hear. */
enum wake_rest {
    WAKE_OVER,     /* the fleet's bucket is empty: 429 */
    WAKE_AGAIN,    /* the lease was smaller than the queue: wait for another */
    WAKE_DEGRADED, /* Redis failed: on_redis_failure decides */
};

/* Answer the waiters: tokens while there are some, then `rest` for the others. Each is
 * unlinked before it hears, so a waiter's answer may end other streams (budget_cancel)
 * safely. */
static void
wake(struct budget_bucket *bk, enum wake_rest rest, uint64_t now)
{
    struct budget_wait *wt;
    while ((wt = bk->head) != NULL) {
        enum budget_verdict v;
        if (bk->tokens > 0 && now < bk->lease_until_us) {
            spend(bk);
            v = BUDGET_ADMIT;
        } else if (rest == WAKE_AGAIN && (bk->refilling || refill(bk, now))) {
            wait_timer_arm(bk, now);
            return; /* they wait for the next lease, but not past their deadline */
        } else if (rest == WAKE_OVER) {
            v = BUDGET_OVER;
        } else {
            v = degraded(bk, now);
        }
        wait_unlink(bk, wt);
        count(bk->b, v);
        wt->done(wt, v);
    }
    wait_timer_arm(bk, now);
}

/* ---- leases ---- */

static void send_lease(struct budget_bucket *bk);

static void
on_lease(void *ctx, const redisReply *reply, const char *why)
{
    struct budget_bucket *bk = ctx;
    struct budget *b = bk->b;
    uint64_t now = clock_mono_us();
    if (redis_reply_is_noscript(reply) && !bk->sent_eval) {
        bk->sent_eval = true; /* a restarted or new Redis: EVAL loads the script */
        send_lease(bk);
        return;
    }
    bk->refilling = false;
    bk->sent_eval = false;
    publish_link(b);
    uint32_t got, wait_ms;
    if (redis_reply_lease(reply, &got, &wait_ms) != 0) {
        rl_breaker_failure(&b->breaker, now, worker_random(b->w));
        note_failure(b, reply && reply->type == REDIS_REPLY_ERROR ? reply->str : why);
        wake(bk, WAKE_DEGRADED, now);
        return;
    }
    note_success(b);
    if (got > 0) {
        bk->tokens = got >= UINT32_MAX - bk->tokens ? UINT32_MAX : bk->tokens + got;
        bk->lease_until_us = now + (uint64_t)BUDGET_LEASE_TTL_MS * 1000;
    }
    if (got < bk->want) {
        /* The fleet's bucket is empty: answer 429 here until it has a token again, and
         * not sooner than half the time it takes to fill (at most half a lease), so that
         * the workers of a fleet over budget do not poll Redis for every token. The
         * bucket keeps what comes in meanwhile, up to burst. */
        double fill_us = bk->burst / bk->rps * 500000.0; /* a tiny rate's: past any uint64_t */
        uint64_t floor_us =
            fill_us < BUDGET_LEASE_MS * 500.0 ? (uint64_t)fill_us : (uint64_t)BUDGET_LEASE_MS * 500;
        floor_us = floor_us * (768 + worker_random(b->w) % 512) / 1024; /* +-25%: no herd */
        uint64_t wait_us = (uint64_t)(wait_ms > 0 ? wait_ms : 1) * 1000;
        bk->dry_until_us = now + (wait_us > floor_us ? wait_us : floor_us);
        wake(bk, WAKE_OVER, now);
    } else {
        bk->dry_until_us = 0;
        wake(bk, WAKE_AGAIN, now);
    }
}

static void
send_lease(struct budget_bucket *bk)
{
    struct budget *b = bk->b;
    char rate[32], burst[32], want[16];
    /* The script divides by the rate: "0.000000", what "%.6f" makes of a rate below
     * 0.0000005/s (a tiny share of a small budget), would be PEXPIRE inf there, an error
     * that opens the breaker all of this worker's buckets share. 0.000001/s, a token every
     * 11.6 days, is the least we send: the script's wait stays within what
     * redis_reply_lease() takes (at most 1e9 ms), and a smaller rate differs from it by
     * less than that token. A bucket with no share never gets here (refill()). */
    int rl = snprintf(rate, sizeof(rate), "%.6f", bk->rps > 0.000001 ? bk->rps : 0.000001);
    int bl = snprintf(burst, sizeof(burst), "%.6f", bk->burst);
    int wl = snprintf(want, sizeof(want), "%u", bk->want);
    const char *argv[] = {bk->sent_eval ? "EVAL" : "EVALSHA",
                          bk->sent_eval ? lease_script : b->sha_lease,
                          "1",
                          bk->key,
                          rate,
                          burst,
                          want};
    size_t argvlen[] = {strlen(argv[0]), strlen(argv[1]), 1,         bk->keylen,
                        (size_t)rl,      (size_t)bl,      (size_t)wl};
    if (redis_link_command(b->link, bk->key, bk->keylen, 7, argv, argvlen, on_lease, bk) < 0) {
        bk->refilling = false;
        return;
    }
    stat_inc(&b->w->stats.rl_redis_calls);
}

/* Ask Redis for the next lease. False when the breaker says not now. */
static bool
refill(struct budget_bucket *bk, uint64_t now)
{
    struct budget *b = bk->b;
    if (bk->refilling)
        return true;
    if (b->link == NULL || !(bk->rps > 0.0) || !rl_breaker_allows(&b->breaker, now))
        return false; /* no share: budget_admit() answers for it, Redis never hears of it */
    if (bk->rate_since_us == 0)
        bk->rate_since_us = now;
    if (now > bk->rate_since_us) {
        rl_rate_update(&bk->rate_rps, bk->rate_count, now - bk->rate_since_us, 1000000);
        bk->rate_count = 0;
        bk->rate_since_us = now;
    }
    bk->want = rl_lease_want(bk->rps / (double)fleet_workers(b), bk->rate_rps + bk->nwait,
                             BUDGET_LEASE_MS);
    if (bk->want < bk->nwait + 1)
        bk->want = bk->nwait + 1 < 1u << 20 ? bk->nwait + 1 : 1u << 20;
    bk->refilling = true;
    bk->sent_eval = false;
    send_lease(bk);
    return bk->refilling;
}

enum budget_verdict
budget_admit(struct budget *b, size_t region, struct budget_wait *wt)
{
    if (b->nbuckets == 0)
        return BUDGET_ADMIT; /* out of memory at a reload: not limiting beats failing */
    struct budget_bucket *bk = &b->buckets[b->nbuckets > 1 && region < b->nbuckets ? region : 0];
    uint64_t now = clock_mono_us();
    enum budget_verdict v;
    if (!(bk->rps > 0.0)) {
        /* A region with no share of the phase (the shares listed add up to 100% and it was
         * left out) is given nothing: every request is over budget, and that is known here
         * without Redis, whatever Redis does. So on_redis_failure does not apply either (open
         * would admit everything where the budget says nothing, closed answer 503 for what is
         * a plain 429), and its requests neither cost a round trip nor, were Redis to fail
         * them, open the breaker that the worker's other buckets share. */
        count(b, BUDGET_OVER);
        return BUDGET_OVER;
    }
    if (bk->tokens > 0 && now < bk->lease_until_us) {
        spend(bk);
        if (bk->tokens <= bk->want / 2 && !bk->refilling)
            refill(bk, now); /* before it runs dry: under steady load nobody waits */
        v = BUDGET_ADMIT;
    } else {
        bk->tokens = 0; /* an expired lease's tokens are lost, never banked */
        if (now < bk->dry_until_us) {
            v = BUDGET_OVER;
        } else if (bk->nwait < BUDGET_WAITERS_MAX && refill(bk, now)) {
            wt->budget = b;
            wt->bucket = (unsigned)(bk - b->buckets);
            wt->region = region;
            wt->since_us = now;
            wt->next = NULL;
            wt->prev = bk->tail;
            if (bk->tail)
                bk->tail->next = wt;
            else
                bk->head = wt;
            bk->tail = wt;
            if (bk->nwait++ == 0)
                wait_timer_arm(bk, now);
            stat_inc(&b->w->stats.rl_waited);
            return BUDGET_WAIT;
        } else {
            v = degraded(bk, now);
        }
    }
    count(b, v);
    return v;
}

void
budget_refusal(const struct budget *b, size_t region, struct budget_refusal *out)
{
    uint64_t now = clock_mono_us();
    out->policy = b->rl.phases[b->rl.active].name;
    out->rps = 0;
    out->retry_after_s = 1;
    if (b->nbuckets == 0)
        return;
    const struct budget_bucket *bk =
        &b->buckets[b->nbuckets > 1 && region < b->nbuckets ? region : 0];
    out->rps = bk->rps;
    if (!(bk->rps > 0.0)) {
        /* No share: nothing comes until the phase changes (a reload), which no wait can
         * predict. Ask again in a minute, in every failure mode, rather than never (the
         * local limiter's wait at rate 0 is forever: a Retry-After of 136 years). */
        out->retry_after_s = BUDGET_NO_SHARE_RETRY_S;
        return;
    }
    uint64_t wait = bk->dry_until_us > now ? bk->dry_until_us - now : 0;
    if (b->rl.on_redis_failure == CFG_RL_FAIL_LOCAL && wait == 0)
        wait = rl_gcra_wait_us(&local_tat[(unsigned)(bk - b->buckets) % BUDGET_BUCKETS_MAX],
                               bk->rps / budget_live_nodes(), bk->burst / budget_live_nodes(), now);
    out->retry_after_s = rl_retry_after_s(wait);
}

/* ---- heartbeats ---- */

static void send_heartbeat(struct budget *b, bool eval);

static void
on_heartbeat(void *ctx, const redisReply *reply, const char *why)
{
    struct budget *b = ctx;
    (void)why;
    if (redis_reply_is_noscript(reply)) {
        send_heartbeat(b, true);
        return;
    }
    b->heartbeat_out = false;
    publish_link(b);
    unsigned nodes;
    if (redis_reply_nodes(reply, &nodes) == 0) {
        atomic_store_explicit(&live_nodes, nodes, memory_order_relaxed);
        note_success(b); /* Redis is back: worker 0 need not wait for its backoff */
        return;
    }
    /* A failed heartbeat keeps the last count (the local fallback needs one), and says
     * so: without Redis at start, this is the first word of it. The breaker opens too,
     * so that requests do not wait on a Redis known to be gone. */
    rl_breaker_failure(&b->breaker, clock_mono_us(), worker_random(b->w));
    note_failure(b, reply && reply->type == REDIS_REPLY_ERROR ? reply->str : why);
}

static void
send_heartbeat(struct budget *b, bool eval)
{
    char ttl[16];
    int tl = snprintf(ttl, sizeof(ttl), "%u", (unsigned)BUDGET_NODE_TTL_MS);
    const char *argv[] = {eval ? "EVAL" : "EVALSHA",
                          eval ? heartbeat_script : b->sha_heartbeat,
                          "1",
                          b->nodes_key,
                          b->node_id,
                          ttl};
    size_t argvlen[] = {strlen(argv[0]), strlen(argv[1]),    1,
                        b->nodes_keylen, strlen(b->node_id), (size_t)tl};
    b->heartbeat_out = true;
    stat_inc(&b->w->stats.rl_redis_calls);
    if (redis_link_command(b->link, b->nodes_key, b->nodes_keylen, 6, argv, argvlen, on_heartbeat,
                           b) < 0)
        b->heartbeat_out = false;
}

static void
on_heartbeat_timer(evutil_socket_t fd, short what, void *arg)
{
    struct budget *b = arg;
    (void)fd;
    (void)what;
    if (!b->heartbeat_out)
        send_heartbeat(b, false);
}

/* ---- probes while Redis fails ---- */

static void
on_probe_timer(evutil_socket_t fd, short what, void *arg)
{
    struct budget *b = arg;
    (void)fd;
    (void)what;
    if (b->breaker.state == RL_BREAKER_CLOSED || b->link == NULL || b->nbuckets == 0)
        return;
    /* A lease request, not a PING: requests that come meanwhile wait for its answer
     * (bk->refilling) instead of being decided by the failure mode while Redis may
     * already be back. Its answer closes or reopens the breaker (on_lease). */
    struct budget_bucket *bk = &b->buckets[0];
    while (!(bk->rps > 0.0) && bk < &b->buckets[b->nbuckets - 1])
        bk++; /* not one with no share: it never asks (some region has a share) */
    if (!bk->refilling && !refill(bk, clock_mono_us()))
        probe_arm(b); /* a request's probe is out: look again after its answer */
}

/* ---- life ---- */

/* Whether two rate_limit sections give the same buckets and link. */
static bool
same_rl(const struct cfg_rate_limit *a, const struct cfg_rate_limit *c, size_t nregions)
{
    if (a->scope != c->scope || a->on_redis_failure != c->on_redis_failure)
        return false;
    const struct cfg_rl_phase *pa = &a->phases[a->active], *pc = &c->phases[c->active];
    if (strcmp(pa->name, pc->name) != 0 || pa->rps != pc->rps || pa->burst != pc->burst)
        return false;
    if ((pa->region_share == NULL) != (pc->region_share == NULL))
        return false;
    if (pa->region_share &&
        memcmp(pa->region_share, pc->region_share, nregions * sizeof(double)) != 0)
        return false;
    return strcmp(a->redis.key_prefix ? a->redis.key_prefix : "meridian",
                  c->redis.key_prefix ? c->redis.key_prefix : "meridian") == 0;
}

/* The buckets for b->cfg: names, keys, rates. Returns -1 when out of memory. */
static int
build_buckets(struct budget *b)
{
    const struct cfg *cfg = b->cfg;
    const struct cfg_rate_limit *rl = &cfg->rate_limit;
    const struct cfg_rl_phase *ph = &rl->phases[rl->active];
    const char *prefix = rl->redis.key_prefix ? rl->redis.key_prefix : "meridian";
    unsigned n = rl->scope == CFG_RL_REGION ? (unsigned)cfg->nregions : 1;
    struct budget_bucket *bks = calloc(n, sizeof(*bks));
    if (bks == NULL)
        return -1;
    for (unsigned i = 0; i < n; i++) {
        struct budget_bucket *bk = &bks[i];
        bk->b = b;
        double share = 1.0;
        int len;
        if (rl->scope == CFG_RL_REGION) {
            share = ph->region_share ? ph->region_share[i] : 1.0 / (double)n;
            /* The region's own hash tag: per-region buckets spread over the slots, and
             * so over a cluster's masters. */
            len = snprintf(bk->key, sizeof(bk->key), "{%s:%s:%s}:bucket", prefix, ph->name,
                           cfg->regions[i].name);
        } else {
            len = snprintf(bk->key, sizeof(bk->key), "{%s:%s}:bucket", prefix, ph->name);
        }
        bk->keylen = len > 0 && (size_t)len < sizeof(bk->key) ? (size_t)len : strlen(bk->key);
        bk->rps = ph->rps * share; /* 0: a region with no share, refused (budget_admit()) */
        bk->burst = ph->burst * share;
        if (bk->burst < 1.0)
            bk->burst = 1.0;
        evtimer_assign(&bk->wait_ev, b->w->base, on_wait_deadline, bk);
    }
    b->buckets = bks;
    b->nbuckets = n;
    return 0;
}

/* What the budget is, once per process (worker 0) at start and at a change. */
static void
log_phase(const struct budget *b)
{
    const struct cfg_rl_phase *ph = &b->rl.phases[b->rl.active];
    log_info("rate_limit: phase %s: %.6g requests/s for the fleet, burst %.6g, %s, Redis %s%s",
             ph->name, ph->rps, ph->burst,
             b->rl.scope == CFG_RL_REGION ? "a bucket per region" : "one bucket",
             b->rl.redis.naddrs ? b->rl.redis.addrs[0].text : "?",
             b->rl.redis.cluster ? " (cluster)" : "");
}

struct budget *
budget_new(struct worker *w, const struct cfg *cfg)
{
    struct budget *b = calloc(1, sizeof(*b));
    if (b == NULL)
        return NULL;
    b->w = w;
    b->cfg = cfg;
    b->rl = cfg->rate_limit;
    b->workers = server_worker_count(w->srv);
    rl_breaker_init(&b->breaker);
    sha1_hex(lease_script, b->sha_lease);
    sha1_hex(heartbeat_script, b->sha_heartbeat);
    const char *prefix = b->rl.redis.key_prefix ? b->rl.redis.key_prefix : "meridian";
    int n = snprintf(b->nodes_key, sizeof(b->nodes_key), "{%s}:nodes", prefix);
    b->nodes_keylen = n > 0 && (size_t)n < sizeof(b->nodes_key) ? (size_t)n : 0;
    char host[64] = "";
    gethostname(host, sizeof(host) - 1);
    snprintf(b->node_id, sizeof(b->node_id), "%s:%ld", host, (long)getpid());
    b->link = redis_link_new(w->base, &cfg->rate_limit.redis);
    if (b->link == NULL || build_buckets(b) < 0) {
        redis_link_free(b->link);
        free(b);
        return NULL;
    }
    evtimer_assign(&b->probe_ev, w->base, on_probe_timer, b);
    if (w->id == 0) {
        log_phase(b);
        event_assign(&b->heartbeat_ev, w->base, -1, EV_PERSIST, on_heartbeat_timer, b);
        struct timeval tv = {BUDGET_HEARTBEAT_MS / 1000, (BUDGET_HEARTBEAT_MS % 1000) * 1000};
        event_add(&b->heartbeat_ev, &tv);
        b->heartbeat_on = true;
        send_heartbeat(b, false);
    }
    return b;
}

void
budget_apply(struct budget *b, const struct cfg *cfg)
{
    const struct cfg *old = b->cfg;
    bool same = b->link != NULL && redis_link_same(b->link, &cfg->rate_limit.redis) &&
                old->nregions == cfg->nregions &&
                same_rl(&old->rate_limit, &cfg->rate_limit, cfg->nregions);
    b->cfg = cfg;
    b->rl = cfg->rate_limit;
    if (same)
        return; /* the leases and the link carry on */

    /* A new phase, scope or Redis: start again. The link goes first, so that no reply
     * reaches the buckets about to be freed (a phase change is rare; a reconnect is
     * cheap). Whoever waited is asked again under the new budget. */
    redis_link_free(b->link);
    b->link = NULL;
    b->heartbeat_out = false;
    event_del(&b->probe_ev);
    struct budget_wait *waiting = NULL, **tail = &waiting;
    for (unsigned i = 0; i < b->nbuckets; i++) {
        struct budget_wait *wt;
        while ((wt = b->buckets[i].head) != NULL) {
            wait_unlink(&b->buckets[i], wt);
            *tail = wt;
            tail = &wt->next;
        }
    }
    for (unsigned i = 0; i < b->nbuckets; i++)
        event_del(&b->buckets[i].wait_ev);
    free(b->buckets);
    b->buckets = NULL;
    b->nbuckets = 0;
    rl_breaker_init(&b->breaker);
    b->link = redis_link_new(b->w->base, &cfg->rate_limit.redis);
    if (b->link == NULL || build_buckets(b) < 0)
        log_error("rate_limit: out of memory applying the new configuration: not limiting");
    else if (b->w->id == 0)
        log_phase(b);
    while (waiting != NULL) {
        struct budget_wait *wt = waiting;
        waiting = wt->next;
        wt->next = NULL;
        enum budget_verdict v = budget_admit(b, wt->region, wt);
        if (v != BUDGET_WAIT)
            wt->done(wt, v);
    }
}

void
budget_free(struct budget *b)
{
    if (b == NULL)
        return;
    if (b->heartbeat_on)
        event_del(&b->heartbeat_ev);
    event_del(&b->probe_ev);
    redis_link_free(b->link); /* no reply comes after this */
    b->link = NULL;
    /* Nobody limits any more: whoever waited goes on. */
    for (unsigned i = 0; i < b->nbuckets; i++) {
        struct budget_bucket *bk = &b->buckets[i];
        struct budget_wait *wt;
        while ((wt = bk->head) != NULL) {
            wait_unlink(bk, wt);
            wt->done(wt, BUDGET_ADMIT);
        }
        event_del(&bk->wait_ev);
    }
    free(b->buckets);
    free(b);
}
