/* SPDX-License-Identifier: MIT */
/* libFuzzer driver for redis_slot. The whole input, in a heap copy of exactly its size, goes
 * through redis_parse_redirect and redis_key_slot. Invariants: a parsed redirection has a slot
 * below 16384, a port in 1..65535 and a host inside the input made of printable ASCII, and it
 * prints back to a reply that parses to the same; a key's slot is below 16384 and is the CRC16 of
 * its hash tag or, without one, of the whole key, computed here with the spec's table. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "redis_slot.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The cluster spec's table-driven CRC16, built once: a second opinion on the bit loop. */
static uint16_t crc_table[256];

static void
crc_table_init(void)
{
    for (int i = 0; i < 256; i++) {
        uint16_t c = (uint16_t)(i << 8);
        for (int b = 0; b < 8; b++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
        crc_table[i] = c;
    }
}

static uint16_t
crc16_by_table(const uint8_t *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++)
        crc = (uint16_t)((crc << 8) ^ crc_table[((crc >> 8) ^ p[i]) & 0xff]);
    return crc;
}

/* The spec's keyHashSlot, index by index. */
static uint16_t
slot_by_spec(const uint8_t *key, size_t len)
{
    size_t s, e;
    for (s = 0; s < len; s++)
        if (key[s] == '{')
            break;
    if (s == len)
        return crc16_by_table(key, len) & 16383;
    for (e = s + 1; e < len; e++)
        if (key[e] == '}')
            break;
    if (e == len || e == s + 1)
        return crc16_by_table(key, len) & 16383;
    return crc16_by_table(key + s + 1, e - s - 1) & 16383;
}

static void
check_redirect(const char *err, size_t len)
{
    bool ask;
    uint16_t slot, port;
    const char *host;
    size_t host_len;
    if (redis_parse_redirect(err, len, &ask, &slot, &host, &host_len, &port) != 0)
        return;
    CHECK(slot < REDIS_SLOTS);
    CHECK(port >= 1);
    CHECK(host >= err && host_len <= len && host + host_len <= err + len);
    for (size_t i = 0; i < host_len; i++)
        CHECK(host[i] > 0x20 && host[i] < 0x7f && host[i] != '[' && host[i] != ']');

    /* Printed back the canonical way, it parses to the same. */
    char again[64 + 1024];
    if (host_len > 1024)
        return;
    int n = snprintf(again, sizeof(again), "%s %u %.*s:%u", ask ? "ASK" : "MOVED", slot,
                     (int)host_len, host, port);
    CHECK(n > 0 && (size_t)n < sizeof(again));
    bool ask2;
    uint16_t slot2, port2;
    const char *host2;
    size_t host_len2;
    CHECK(redis_parse_redirect(again, (size_t)n, &ask2, &slot2, &host2, &host_len2, &port2) == 0);
    CHECK(ask2 == ask && slot2 == slot && port2 == port && host_len2 == host_len);
    CHECK(memcmp(host2, host, host_len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static bool ready;
    if (!ready) {
        crc_table_init();
        ready = true;
    }
    char *copy = malloc(size ? size : 1);
    CHECK(copy != NULL);
    if (size)
        memcpy(copy, data, size);

    check_redirect(copy, size);

    uint16_t slot = redis_key_slot(copy, size);
    CHECK(slot < REDIS_SLOTS);
    CHECK(slot == slot_by_spec(data, size));
    CHECK(redis_crc16(copy, size) == crc16_by_table(data, size));

    free(copy);
    return 0;
}
