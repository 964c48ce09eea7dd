/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for proxy_proto_parse. Beyond "does not crash", it checks the
 * contract over every prefix of the input: answers only ever go PARTIAL -> (INVALID or
 * a length) and then stay put, a header is PARTIAL one byte short of its end, consumed
 * never exceeds what was given, and the result does not depend on bytes after it. */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_check.h"
#include "proxy_proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parse after more than a header's worth of bytes can no longer change. */
#define MAX_PREFIX 640

static bool
same_result(const struct proxy_proto_result *a, const struct proxy_proto_result *b)
{
    return a->version == b->version && a->has_addr == b->has_addr &&
           memcmp(&a->src, &b->src, sizeof(a->src)) == 0 &&
           memcmp(&a->dst, &b->dst, sizeof(a->dst)) == 0;
}

static void
check_result(const struct proxy_proto_result *r)
{
    CHECK(r->version == 1 || r->version == 2);
    if (r->has_addr) {
        CHECK(r->src.ss_family == AF_INET || r->src.ss_family == AF_INET6);
        CHECK(r->dst.ss_family == r->src.ss_family);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t n = size < MAX_PREFIX ? size : MAX_PREFIX;
    /* Each prefix is parsed from the end of this buffer, so that a read past it is a
     * heap overflow that ASan reports. */
    char *scratch = malloc(n ? n : 1);
    struct proxy_proto_result r, first;
    int state = PROXY_PROTO_PARTIAL;

    CHECK(scratch != NULL);
    for (size_t k = 0; k <= n; k++) {
        char *p = scratch + n - k;
        memcpy(p, data, k);
        int rc = proxy_proto_parse(p, k, &r);
        CHECK(rc == PROXY_PROTO_PARTIAL || rc == PROXY_PROTO_INVALID || rc > 0);
        if (rc > 0) {
            CHECK((size_t)rc <= k && rc <= PROXY_PROTO_MAX_BYTES);
            check_result(&r);
        }
        if (state == PROXY_PROTO_PARTIAL) {
            state = rc;
            if (rc > 0) {
                /* Complete exactly now: it was PARTIAL one byte ago. */
                CHECK((size_t)rc == k);
                first = r;
            }
        } else {
            /* INVALID stays INVALID; a header stays the same header. */
            CHECK(rc == state);
            if (rc > 0)
                CHECK(same_result(&r, &first));
        }
    }
    /* Past the prefixes we walked, the whole input gives the same final answer. */
    if (size > n && state != PROXY_PROTO_PARTIAL) {
        int rc = proxy_proto_parse((const char *)data, size, &r);
        CHECK(rc == state);
        if (rc > 0)
            CHECK(same_result(&r, &first));
    }
    /* A v1 line is decided within 107 bytes, a v2 header within 536. */
    if (n >= 107 && size > 0 && data[0] == 'P')
        CHECK(state != PROXY_PROTO_PARTIAL);
    if (n >= PROXY_PROTO_MAX_BYTES)
        CHECK(state != PROXY_PROTO_PARTIAL);
    free(scratch);
    return 0;
}
