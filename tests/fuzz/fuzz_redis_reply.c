/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for redis_reply. The input is what a Redis server sent: hiredis's own reader
 * (the one the link's connections use) takes it apart into replies, and each one goes through
 * the slot map (with a lookup that takes every address and one that refuses some), the lease and
 * heartbeat checks, NOSCRIPT and, for an error, redis_parse_redirect. Each answer is compared with
 * a second opinion written here from the contracts in redis_reply.h: what is accepted and what is
 * refused, every slot mapped to the right index and no other, a refused map left untouched with no
 * lookup made, numbers only within their ranges and outputs untouched on -1. */

#define _POSIX_C_SOURCE 200809L

#include <arpa/inet.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "redis_reply.h"
#include "redis_slot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* hiredis 0.14 nests arrays at most 7 deep (fixed) and has no limit of its own on an array's
 * length: "*2147483647\r\n" makes it calloc 16 GiB at once, which libFuzzer's malloc limit
 * reports as a crash of ours. Arrays longer than this fail as out of memory, which hiredis
 * handles (a reader error); a real CLUSTER SLOTS has a range per run of slots, far fewer. */
#define FUZZ_ARRAY_MAX 4096

static redisReplyObjectFunctions limited_fn;
static void *(*hiredis_create_array)(const redisReadTask *task, int elements);

static void *
create_array_limited(const redisReadTask *task, int elements)
{
    if (elements > FUZZ_ARRAY_MAX)
        return NULL;
    return hiredis_create_array(task, elements);
}

/* ---- the slot map ---- */

/* Lookups, as the link's map_server() would be asked: they check what they are given (an
 * address in text of exactly len bytes, or "" for the answering node; a port) and count calls. */
static unsigned lookups;

static bool
is_ip_text(const char *ip, size_t len)
{
    unsigned char bin[sizeof(struct in6_addr)];
    return strlen(ip) == len && len < INET6_ADDRSTRLEN &&
           (inet_pton(AF_INET, ip, bin) == 1 || inet_pton(AF_INET6, ip, bin) == 1);
}

/* Takes every master: an index made of its address and port, so the second opinion can tell
 * which master each slot went to. */
static int
index_of(const char *ip, size_t len, uint16_t port)
{
    unsigned h = port;
    for (size_t i = 0; i < len; i++)
        h = h * 31 + (unsigned char)ip[i];
    return (int)(h % (REDIS_REPLY_SERVER_MAX + 1));
}

static int
lookup_all(void *ctx, const char *ip, size_t len, uint16_t port)
{
    (void)ctx;
    lookups++;
    CHECK(ip != NULL && port >= 1);
    CHECK(len == 0 ? ip[0] == '\0' : is_ip_text(ip, len));
    return index_of(ip, len, port);
}

/* A table of three, as the link's is of 64: full is full. It also knows no answering node, and
 * answers some ports with an index out of range, which must count as a refusal. */
struct table {
    char ip[3][INET6_ADDRSTRLEN];
    uint16_t port[3];
    unsigned n;
};

static int
lookup_some(void *ctx, const char *ip, size_t len, uint16_t port)
{
    struct table *t = ctx;
    lookups++;
    CHECK(ip != NULL && port >= 1);
    if (len == 0)
        return -1;
    CHECK(is_ip_text(ip, len));
    if (port % 11 == 0)
        return REDIS_REPLY_SERVER_MAX + 1 + port % 100;
    if (port % 11 == 1)
        return -2 - port % 100;
    for (unsigned i = 0; i < t->n; i++)
        if (t->port[i] == port && strcmp(t->ip[i], ip) == 0)
            return (int)i;
    if (t->n == 3)
        return -1;
    memcpy(t->ip[t->n], ip, len + 1);
    t->port[t->n] = port;
    return (int)t->n++;
}

static bool
is_int(const redisReply *r, long long lo, long long hi)
{
    return r->type == REDIS_REPLY_INTEGER && r->integer >= lo && r->integer <= hi;
}

/* The second opinion on the shape, range by range. */
static bool
range_ok(const redisReply *e)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements < 3)
        return false;
    if (!is_int(e->element[0], 0, 16383) || !is_int(e->element[1], 0, 16383) ||
        e->element[0]->integer > e->element[1]->integer)
        return false;
    const redisReply *m = e->element[2];
    if (m->type != REDIS_REPLY_ARRAY || m->elements < 2)
        return false;
    int t = m->element[0]->type;
    return (t == REDIS_REPLY_STRING || t == REDIS_REPLY_NIL) && is_int(m->element[1], 1, 65535);
}

/* What lookup_all() must have made of a range's master: its index, or -1 (not an address). */
static int
master_all(const redisReply *m)
{
    const redisReply *ip = m->element[0];
    uint16_t port = (uint16_t)m->element[1]->integer;
    if (ip->type == REDIS_REPLY_NIL || ip->len == 0)
        return index_of("", 0, port);
    char text[INET6_ADDRSTRLEN];
    if (ip->len >= sizeof(text) || memchr(ip->str, '\0', ip->len))
        return -1;
    memcpy(text, ip->str, ip->len);
    text[ip->len] = '\0';
    return is_ip_text(text, ip->len) ? index_of(text, ip->len, port) : -1;
}

static int8_t before[REDIS_SLOTS], map[REDIS_SLOTS], want[REDIS_SLOTS];

static void
check_slot_map(const redisReply *r)
{
    bool shape = r->type == REDIS_REPLY_ARRAY;
    for (size_t i = 0; shape && i < r->elements; i++)
        shape = range_ok(r->element[i]);

    /* Every address taken: exactly the slots of the last range with an address, to its index. */
    memcpy(map, before, sizeof(map));
    lookups = 0;
    int rc = redis_reply_slot_map(r, lookup_all, NULL, map);
    CHECK(rc == (shape ? 0 : -1));
    if (rc != 0) {
        CHECK(lookups == 0 && memcmp(map, before, sizeof(map)) == 0);
    } else {
        memset(want, -1, sizeof(want));
        for (size_t i = 0; i < r->elements; i++) {
            const redisReply *e = r->element[i];
            int s = master_all(e->element[2]);
            if (s >= 0)
                for (long long k = e->element[0]->integer; k <= e->element[1]->integer; k++)
                    want[k] = (int8_t)s;
        }
        CHECK(memcmp(map, want, sizeof(map)) == 0);
    }

    /* Some refused: a slot is unknown or one of the three the table gave out. */
    struct table t = {.n = 0};
    memcpy(map, before, sizeof(map));
    lookups = 0;
    rc = redis_reply_slot_map(r, lookup_some, &t, map);
    CHECK(rc == (shape ? 0 : -1));
    if (rc != 0) {
        CHECK(lookups == 0 && t.n == 0 && memcmp(map, before, sizeof(map)) == 0);
    } else {
        for (size_t k = 0; k < REDIS_SLOTS; k++) {
            CHECK(map[k] >= -1 && map[k] < (int)t.n);
            CHECK(map[k] == -1 || want[k] >= 0); /* only where an address was */
        }
    }
}

/* ---- the scripts' answers ---- */

static void
check_lease(const redisReply *r)
{
    bool good = r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
                is_int(r->element[0], 0, UINT32_MAX) && is_int(r->element[1], 0, UINT32_MAX);
    uint32_t got = 0xDEADBEEF, wait_ms = 0xFEEDFACE;
    int rc = redis_reply_lease(r, &got, &wait_ms);
    CHECK(rc == (good ? 0 : -1));
    if (rc == 0)
        CHECK(got == r->element[0]->integer && wait_ms == r->element[1]->integer);
    else
        CHECK(got == 0xDEADBEEF && wait_ms == 0xFEEDFACE);
}

static void
check_nodes(const redisReply *r)
{
    unsigned nodes = 0xDEADBEEF;
    int rc = redis_reply_nodes(r, &nodes);
    CHECK(rc == (is_int(r, 1, REDIS_REPLY_NODES_MAX) ? 0 : -1));
    if (rc == 0)
        CHECK(nodes >= 1 && nodes <= REDIS_REPLY_NODES_MAX && nodes == r->integer);
    else
        CHECK(nodes == 0xDEADBEEF);
}

static void
check_error(const redisReply *r)
{
    bool noscript = r->type == REDIS_REPLY_ERROR && r->len >= 8 && !memcmp(r->str, "NOSCRIPT", 8);
    CHECK(redis_reply_is_noscript(r) == noscript);
    if (r->type != REDIS_REPLY_ERROR)
        return;
    bool ask;
    uint16_t slot, port;
    const char *host;
    size_t host_len;
    if (redis_parse_redirect(r->str, r->len, &ask, &slot, &host, &host_len, &port) != 0)
        return;
    CHECK(!noscript);
    CHECK(slot < REDIS_SLOTS && port >= 1);
    CHECK(host >= r->str && host + host_len <= r->str + r->len);
}

/* Every reply the reader has complete, through every check. False once the reader failed. */
static bool
drain(redisReader *rd)
{
    for (;;) {
        void *v = NULL;
        if (redisReaderGetReply(rd, &v) != REDIS_OK)
            return false;
        if (v == NULL)
            return true;
        const redisReply *r = v;
        check_slot_map(r);
        check_lease(r);
        check_nodes(r);
        check_error(r);
        freeReplyObject(v);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    redisReader *rd = redisReaderCreate();
    CHECK(rd != NULL);
    if (hiredis_create_array == NULL) {
        limited_fn = *rd->fn;
        hiredis_create_array = limited_fn.createArray;
        limited_fn.createArray = create_array_limited;
    }
    rd->fn = &limited_fn;
    rd->maxbuf = REDIS_READER_MAX_BUF; /* what it keeps of a drained buffer: its default, said */

    /* What a map held before: a pattern of the input, so that "untouched" means something. */
    for (size_t k = 0; k < REDIS_SLOTS; k++)
        before[k] = (int8_t)(size ? data[k % size] : k);

    /* In two reads, cut where the first byte says, as a reply comes over TCP. */
    size_t cut = size ? data[0] % (size + 1) : 0;
    if (redisReaderFeed(rd, (const char *)data, cut) == REDIS_OK && drain(rd) &&
        redisReaderFeed(rd, (const char *)data + cut, size - cut) == REDIS_OK)
        drain(rd);
    redisReaderFree(rd);
    return 0;
}
