/* SPDX-License-Identifier: MIT */
/* redis_reply, what the link and the budget make of Redis's replies: CLUSTER SLOTS maps, lease
 * and heartbeat answers, NOSCRIPT, each reply built by hiredis's own reader from the RESP that
 * redis-server 7.0.15 sent (node ids shortened) or a hostile variant. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <netinet/in.h>

#include "redis_reply.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* The one reply in resp (len 0: strlen), as hiredis's reader builds it for the link. */
static redisReply *
reply_of(const char *resp, size_t len)
{
    redisReader *rd = redisReaderCreate();
    void *r = NULL;
    assert_non_null(rd);
    assert_int_equal(redisReaderFeed(rd, resp, len ? len : strlen(resp)), REDIS_OK);
    if (redisReaderGetReply(rd, &r) != REDIS_OK || r == NULL)
        fail_msg("not one whole reply: \"%s\" (%s)", resp, rd->errstr);
    redisReaderFree(rd);
    return r;
}

/* The lookup, as the link's map_server() does it: ip:port's index in a small table, added when
 * new and -1 once `cap` are known; "" is the node that answered (ANSWERING here); port 6666 gets
 * an index out of range, which must count as a refusal. */
#define ANSWERING 9
struct lookup {
    unsigned cap, n, calls;
    char ip[4][INET6_ADDRSTRLEN];
    uint16_t port[4];
};

static int
lookup(void *ctx, const char *ip, size_t len, uint16_t port)
{
    struct lookup *lk = ctx;
    lk->calls++;
    assert_int_equal(strlen(ip), len);
    if (len == 0)
        return ANSWERING;
    if (port == 6666)
        return REDIS_REPLY_SERVER_MAX + 1;
    for (unsigned i = 0; i < lk->n; i++)
        if (lk->port[i] == port && strcmp(lk->ip[i], ip) == 0)
            return (int)i;
    if (lk->n == lk->cap)
        return -1;
    assert_true(len < sizeof(lk->ip[0]));
    memcpy(lk->ip[lk->n], ip, len + 1);
    lk->port[lk->n] = port;
    return (int)lk->n++;
}

// clang-format off
#define R_ID "$2\r\nid\r\n"
#define R_NODE(iplen, ip, port) "*4\r\n$" #iplen "\r\n" ip "\r\n:" #port "\r\n" R_ID "*0\r\n"
#define R_RANGE(lo, hi, master) "*3\r\n:" #lo "\r\n:" #hi "\r\n" master
#define R_RANGE_R(lo, hi, master, replica) "*4\r\n:" #lo "\r\n:" #hi "\r\n" master replica
#define R_V4(port) R_NODE(9, "127.0.0.1", port)
#define R_META_IP(iplen, ip) "*2\r\n$2\r\nip\r\n$" #iplen "\r\n" ip "\r\n"
#define NUL_IN_ADDR "*2\r\n" R_RANGE(0, 99, "*2\r\n$14\r\n127.0.0.1\0junk\r\n:7000\r\n") \
                                R_RANGE(100, 199, R_V4(7001))
#define GOOD_THEN_BAD "*3\r\n" R_RANGE(0, 5460, R_V4(7000)) R_RANGE(5461, 10922, R_V4(7001)) \
                              R_RANGE(10923, 16384, R_V4(7002))
// clang-format on

/* Slots lo..hi go to server s; every slot outside the runs is -1. */
struct run {
    int lo, hi, s;
};

/* A map that is taken: the slots it gives, and the lookup's table afterwards ("ip port"). */
struct map_case {
    const char *name;
    const char *resp;
    size_t len;   /* 0: strlen */
    unsigned cap; /* of the lookup's table */
    unsigned nruns;
    struct run runs[6];
    const char *servers[4];
};

// clang-format off
static const struct map_case map_cases[] = {
    {"three masters and their replicas",
     "*3\r\n" R_RANGE_R(0, 5460, R_V4(7000), R_V4(7004))
              R_RANGE_R(5461, 10922, R_V4(7001), R_V4(7005))
              R_RANGE_R(10923, 16383, R_V4(7002), R_V4(7003)), 0, 4,
     3, {{0, 5460, 0}, {5461, 10922, 1}, {10923, 16383, 2}},
     {"127.0.0.1 7000", "127.0.0.1 7001", "127.0.0.1 7002"}},
    {"resharded: a master holds three runs",
     "*6\r\n" R_RANGE(0, 2, R_V4(7001)) R_RANGE(3, 5460, R_V4(7000))
              R_RANGE(5461, 10922, R_V4(7001)) R_RANGE(10923, 11999, R_V4(7002))
              R_RANGE(12000, 12000, R_V4(7000)) R_RANGE(12001, 16383, R_V4(7002)), 0, 4,
     6, {{0, 2, 0}, {3, 5460, 1}, {5461, 10922, 0}, {10923, 11999, 2}, {12000, 12000, 1},
         {12001, 16383, 2}},
     {"127.0.0.1 7001", "127.0.0.1 7000", "127.0.0.1 7002"}},
    {"IPv6 masters",
     "*2\r\n" R_RANGE(0, 8191, R_NODE(3, "::1", 7000))
              R_RANGE(8192, 16383, R_NODE(11, "2001:db8::7", 6379)), 0, 4,
     2, {{0, 8191, 0}, {8192, 16383, 1}},
     {"::1 7000", "2001:db8::7 6379"}},
    /* Redis 7 with cluster-preferred-endpoint-type unknown-endpoint; the ip in the metadata
     * is not looked at */
    {"NULL endpoints: the answering node's host",
     "*2\r\n" R_RANGE(0, 8191, "*4\r\n$-1\r\n:7000\r\n" R_ID R_META_IP(9, "127.0.0.1"))
              R_RANGE(8192, 16383, "*4\r\n$-1\r\n:7001\r\n" R_ID R_META_IP(7, "1.2.3.4")),
     0, 4,
     2, {{0, 8191, ANSWERING}, {8192, 16383, ANSWERING}},
     {NULL}},
    {"a one-node cluster says \"\": the answering node",
     "*1\r\n" R_RANGE(0, 16383, R_NODE(0, "", 7000)), 0, 4,
     1, {{0, 16383, ANSWERING}},
     {NULL}},
    {"hostname, \"?\" and a name that looks like an address: unknown",
     "*4\r\n" R_RANGE(0, 99, R_NODE(19, "redis-1.example.com", 6379))
              R_RANGE(100, 199, R_NODE(1, "?", 6379))
              R_RANGE(200, 299, R_NODE(11, "127.0.0.1.x", 6379))
              R_RANGE(300, 399, R_V4(7000)), 0, 4,
     1, {{300, 399, 0}},
     {"127.0.0.1 7000"}},
    {"a NUL inside the address: unknown, not 127.0.0.1",
     NUL_IN_ADDR, sizeof(NUL_IN_ADDR) - 1, 4,
     1, {{100, 199, 0}},
     {"127.0.0.1 7001"}},
    {"an address longer than any IP: unknown",
     "*1\r\n" R_RANGE(0, 99, R_NODE(46, "1111:2222:3333:4444:5555:6666:123.123.123.123x", 7000)),
     0, 4,
     0, {{0}},
     {NULL}},
    {"no ranges at all: every slot unknown",
     "*0\r\n", 0, 4,
     0, {{0}},
     {NULL}},
    {"overlapping ranges: the later wins",
     "*2\r\n" R_RANGE(0, 200, R_V4(7000)) R_RANGE(100, 300, R_V4(7001)), 0, 4,
     2, {{0, 99, 0}, {100, 300, 1}},
     {"127.0.0.1 7000", "127.0.0.1 7001"}},
    {"the lookup's table full: that master's slots unknown",
     "*3\r\n" R_RANGE(0, 9, R_V4(7000)) R_RANGE(10, 19, R_V4(7001)) R_RANGE(20, 29, R_V4(7000)),
     0, 1,
     2, {{0, 9, 0}, {20, 29, 0}},
     {"127.0.0.1 7000"}},
    {"the lookup's index out of range: refused",
     "*2\r\n" R_RANGE(0, 9, R_V4(6666)) R_RANGE(10, 19, R_V4(7000)), 0, 4,
     1, {{10, 19, 0}},
     {"127.0.0.1 7000"}},
    {"the smallest ranges: slot 0 and slot 16383",
     "*2\r\n" R_RANGE(0, 0, R_V4(7000)) R_RANGE(16383, 16383, R_V4(1)), 0, 4,
     2, {{0, 0, 0}, {16383, 16383, 1}},
     {"127.0.0.1 7000", "127.0.0.1 1"}},
    {"port 65535",
     "*1\r\n" R_RANGE(5, 5, R_V4(65535)), 0, 4,
     1, {{5, 5, 0}},
     {"127.0.0.1 65535"}},
    {"a master without its id: enough",
     "*1\r\n" R_RANGE(0, 16383, "*2\r\n$3\r\n::1\r\n:7000\r\n"), 0, 4,
     1, {{0, 16383, 0}},
     {"::1 7000"}},
};
// clang-format on

/* Maps refused whole: the map stays as it was and no server is looked up (the link would have
 * added it to its table). */
static const struct {
    const char *name, *resp;
} refused_maps[] = {
    {"an error", "-ERR This instance has cluster support disabled\r\n"},
    {"a nil", "*-1\r\n"},
    {"an integer", ":1\r\n"},
    {"a string", "$2\r\nOK\r\n"},
    {"a range that is no array", "*1\r\n:0\r\n"},
    {"a range of two", "*1\r\n*2\r\n:0\r\n:16383\r\n"},
    {"a start that is a string", "*1\r\n*3\r\n$1\r\n0\r\n:16383\r\n" R_V4(7000)},
    {"a negative start", "*1\r\n" R_RANGE(-1, 10, R_V4(7000))},
    {"an end past the last slot", "*1\r\n" R_RANGE(0, 16384, R_V4(7000))},
    {"a start far past it", "*1\r\n" R_RANGE(9223372036854775807, 9223372036854775807, R_V4(7))},
    {"start after end", "*1\r\n" R_RANGE(10, 9, R_V4(7000))},
    {"a master that is no array", "*1\r\n" R_RANGE(0, 10, "$9\r\n127.0.0.1\r\n")},
    {"a master of one", "*1\r\n" R_RANGE(0, 10, "*1\r\n$9\r\n127.0.0.1\r\n")},
    {"an endpoint that is an integer", "*1\r\n" R_RANGE(0, 10, "*2\r\n:2130706433\r\n:7000\r\n")},
    {"an endpoint that is an array", "*1\r\n" R_RANGE(0, 10, "*2\r\n*0\r\n:7000\r\n")},
    {"port 0", "*1\r\n" R_RANGE(0, 10, R_V4(0))},
    {"port 65536", "*1\r\n" R_RANGE(0, 10, R_V4(65536))},
    {"a negative port", "*1\r\n" R_RANGE(0, 10, R_V4(-7000))},
    {"a port that is a string", "*1\r\n" R_RANGE(0, 10, "*2\r\n$9\r\n127.0.0.1\r\n$4\r\n7000\r\n")},
    /* the half-filled map of old: two good ranges, then a bad one */
    {"good ranges, then a bad one", GOOD_THEN_BAD},
};

/* What the map held before: a pattern no case produces. */
static void
map_before(int8_t map[REDIS_SLOTS])
{
    for (int k = 0; k < REDIS_SLOTS; k++)
        map[k] = (int8_t)(k % 7 + 100);
}

static void
test_slot_map(void **state)
{
    (void)state;
    static int8_t map[REDIS_SLOTS], old[REDIS_SLOTS];
    map_before(old);
    for (size_t c = 0; c < N_ELEMS(map_cases); c++) {
        const struct map_case *tc = &map_cases[c];
        redisReply *r = reply_of(tc->resp, tc->len);
        struct lookup lk = {.cap = tc->cap};
        memcpy(map, old, sizeof(map));
        int rc = redis_reply_slot_map(r, lookup, &lk, map);
        freeReplyObject(r);
        if (rc != 0)
            fail_msg("%s: rc %d", tc->name, rc);
        for (int k = 0; k < REDIS_SLOTS; k++) {
            int want = -1;
            for (unsigned i = 0; i < tc->nruns; i++)
                if (k >= tc->runs[i].lo && k <= tc->runs[i].hi)
                    want = tc->runs[i].s;
            if (map[k] != want)
                fail_msg("%s: slot %d on %d, want %d", tc->name, k, map[k], want);
        }
        unsigned nservers = 0;
        while (nservers < N_ELEMS(tc->servers) && tc->servers[nservers] != NULL)
            nservers++;
        if (lk.n != nservers)
            fail_msg("%s: %u servers, want %u", tc->name, lk.n, nservers);
        for (unsigned i = 0; i < lk.n; i++) {
            char got[64];
            snprintf(got, sizeof(got), "%s %u", lk.ip[i], lk.port[i]);
            if (strcmp(got, tc->servers[i]) != 0)
                fail_msg("%s: server %u is %s, want %s", tc->name, i, got, tc->servers[i]);
        }
    }
}

static void
test_slot_map_refused(void **state)
{
    (void)state;
    static int8_t map[REDIS_SLOTS], old[REDIS_SLOTS];
    map_before(old);
    for (size_t c = 0; c < N_ELEMS(refused_maps); c++) {
        redisReply *r = reply_of(refused_maps[c].resp, 0);
        struct lookup lk = {.cap = 4};
        memcpy(map, old, sizeof(map));
        int rc = redis_reply_slot_map(r, lookup, &lk, map);
        freeReplyObject(r);
        if (rc != -1)
            fail_msg("%s: rc %d, want -1", refused_maps[c].name, rc);
        if (memcmp(map, old, sizeof(map)) != 0 || lk.calls != 0)
            fail_msg("%s: refused, yet the map or the lookup touched", refused_maps[c].name);
    }
    struct lookup lk = {.cap = 4};
    memcpy(map, old, sizeof(map));
    assert_int_equal(redis_reply_slot_map(NULL, lookup, &lk, map), -1);
    assert_memory_equal(map, old, sizeof(map));
}

/* The question the old map_parse() left open: it reset the map, then filled it range by range
 * and returned -1 at the first bad one, leaving the ranges before it from the refused reply and
 * the rest unknown; the link then still sent commands by it (cmd_dispatch() uses a stale map for
 * the masters it is connected to). Now a refused reply leaves the last good map whole. */
static void
test_slot_map_refused_keeps_the_last_good_one(void **state)
{
    (void)state;
    static int8_t map[REDIS_SLOTS], good[REDIS_SLOTS];
    struct lookup lk = {.cap = 4};
    redisReply *r =
        reply_of("*2\r\n" R_RANGE(0, 8191, R_V4(7000)) R_RANGE(8192, 16383, R_V4(7001)), 0);
    assert_int_equal(redis_reply_slot_map(r, lookup, &lk, map), 0);
    freeReplyObject(r);
    memcpy(good, map, sizeof(map));
    assert_int_equal(good[0], 0);
    assert_int_equal(good[16383], 1);

    /* A failover moved the first half; the reply breaks in its third range. */
    r = reply_of("*3\r\n" R_RANGE(0, 8191, R_V4(7002)) R_RANGE(8192, 10000, R_V4(7001))
                     R_RANGE(10001, 16383, "*2\r\n$9\r\n127.0.0.1\r\n:0\r\n"),
                 0);
    assert_int_equal(redis_reply_slot_map(r, lookup, &lk, map), -1);
    freeReplyObject(r);
    assert_memory_equal(map, good, sizeof(map));
    assert_int_equal(lk.n, 2); /* 7002 was never added */
}

struct lease_case {
    const char *resp;
    int rc;
    uint32_t got, wait_ms;
};

static const struct lease_case lease_cases[] = {
    /* what the script answered redis-server 7.0.15 */
    {"*2\r\n:5\r\n:0\r\n", 0, 5, 0},
    {"*2\r\n:10\r\n:10\r\n", 0, 10, 10},
    {"*2\r\n:0\r\n:999999700\r\n", 0, 0, 999999700},
    {"*2\r\n:1\r\n:1000000000\r\n", 0, 1, 1000000000}, /* rate 0.000001/s */
    /* the ends of the ranges */
    {"*2\r\n:0\r\n:0\r\n", 0, 0, 0},
    {"*2\r\n:4294967295\r\n:4294967295\r\n", 0, UINT32_MAX, UINT32_MAX},
    {"*2\r\n:4294967296\r\n:0\r\n", -1, 0, 0},
    {"*2\r\n:0\r\n:4294967296\r\n", -1, 0, 0},
    {"*2\r\n:-1\r\n:0\r\n", -1, 0, 0},
    {"*2\r\n:0\r\n:-1\r\n", -1, 0, 0},
    {"*2\r\n:-9223372036854775808\r\n:0\r\n", -1, 0, 0},
    {"*2\r\n:9223372036854775807\r\n:9223372036854775807\r\n", -1, 0, 0},
    /* shapes */
    {"*1\r\n:5\r\n", -1, 0, 0},
    {"*3\r\n:5\r\n:0\r\n:0\r\n", -1, 0, 0},
    {"*0\r\n", -1, 0, 0},
    {"*-1\r\n", -1, 0, 0},
    {"*2\r\n$1\r\n5\r\n:0\r\n", -1, 0, 0},
    {"*2\r\n:5\r\n$-1\r\n", -1, 0, 0},
    {"*2\r\n*0\r\n:0\r\n", -1, 0, 0},
    {":5\r\n", -1, 0, 0},
    {"+OK\r\n", -1, 0, 0},
    {"-NOSCRIPT No matching script. Please use EVAL.\r\n", -1, 0, 0},
    /* what the script answers a rate printed as 0.000000 */
    {"-ERR value is not an integer or out of range script: "
     "5d0f7980c7748ae72de3e28be6f91b4482309b15, "
     "on @user_script:19.\r\n",
     -1, 0, 0},
};

static void
test_lease(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(lease_cases); c++) {
        const struct lease_case *tc = &lease_cases[c];
        redisReply *r = reply_of(tc->resp, 0);
        uint32_t got = 0xDEADBEEF, wait_ms = 0xFEEDFACE;
        int rc = redis_reply_lease(r, &got, &wait_ms);
        freeReplyObject(r);
        if (rc != tc->rc)
            fail_msg("\"%s\": rc %d, want %d", tc->resp, rc, tc->rc);
        if (rc == 0 && (got != tc->got || wait_ms != tc->wait_ms))
            fail_msg("\"%s\": got %u wait %u", tc->resp, got, wait_ms);
        if (rc != 0 && (got != 0xDEADBEEF || wait_ms != 0xFEEDFACE))
            fail_msg("\"%s\": refused, yet written", tc->resp);
    }
    uint32_t got = 7, wait_ms = 7;
    assert_int_equal(redis_reply_lease(NULL, &got, &wait_ms), -1);
    assert_true(got == 7 && wait_ms == 7);
}

struct nodes_case {
    const char *resp;
    int rc;
    unsigned nodes;
};

static const struct nodes_case nodes_cases[] = {
    {":1\r\n", 0, 1},
    {":3\r\n", 0, 3},
    {":1048576\r\n", 0, REDIS_REPLY_NODES_MAX},
    {":1048577\r\n", -1, 0},
    {":0\r\n", -1, 0},
    {":-1\r\n", -1, 0},
    {":4294967297\r\n", -1, 0}, /* read as (unsigned) it was 1 node */
    {":9223372036854775807\r\n", -1, 0},
    {"$1\r\n3\r\n", -1, 0},
    {"*1\r\n:3\r\n", -1, 0},
    {"$-1\r\n", -1, 0},
    {"-NOSCRIPT No matching script. Please use EVAL.\r\n", -1, 0},
};

static void
test_nodes(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(nodes_cases); c++) {
        const struct nodes_case *tc = &nodes_cases[c];
        redisReply *r = reply_of(tc->resp, 0);
        unsigned nodes = 0xDEADBEEF;
        int rc = redis_reply_nodes(r, &nodes);
        freeReplyObject(r);
        if (rc != tc->rc)
            fail_msg("\"%s\": rc %d, want %d", tc->resp, rc, tc->rc);
        if (nodes != (rc == 0 ? tc->nodes : 0xDEADBEEF))
            fail_msg("\"%s\": nodes %u", tc->resp, nodes);
    }
    unsigned nodes = 7;
    assert_int_equal(redis_reply_nodes(NULL, &nodes), -1);
    assert_int_equal(nodes, 7);
}

static void
test_noscript(void **state)
{
    (void)state;
    static const struct {
        const char *resp;
        bool yes;
    } cases[] = {
        {"-NOSCRIPT No matching script. Please use EVAL.\r\n", true},
        {"-NOSCRIPT\r\n", true},
        {"-NOSCRIP\r\n", false},
        {"-noscript No matching script\r\n", false},
        {"-ERR NOSCRIPT\r\n", false},
        {"-\r\n", false},
        {"+NOSCRIPT\r\n", false},
        {"$8\r\nNOSCRIPT\r\n", false},
        {"*1\r\n-NOSCRIPT\r\n", false},
    };
    for (size_t c = 0; c < N_ELEMS(cases); c++) {
        redisReply *r = reply_of(cases[c].resp, 0);
        if (redis_reply_is_noscript(r) != cases[c].yes)
            fail_msg("\"%s\": want %d", cases[c].resp, cases[c].yes);
        freeReplyObject(r);
    }
    assert_false(redis_reply_is_noscript(NULL));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slot_map),
        cmocka_unit_test(test_slot_map_refused),
        cmocka_unit_test(test_slot_map_refused_keeps_the_last_good_one),
        cmocka_unit_test(test_lease),
        cmocka_unit_test(test_nodes),
        cmocka_unit_test(test_noscript),
    };
    return cmocka_run_group_tests_name("redis_reply", tests, NULL, NULL);
}
