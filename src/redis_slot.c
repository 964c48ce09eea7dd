/* SPDX-License-Identifier: MIT */
/* Key slots and MOVED/ASK parsing for Redis Cluster: CRC16 with hash tags, and the redirection
 * reply taken apart byte by byte within its length. The Redis link does the talking. */
#include "redis_slot.h"

#include <string.h>

/* Bit by bit rather than with the spec's 256-entry table: a slot is computed when a bucket's key
 * is built (once per config generation), not per request, and this form is obviously the
 * polynomial. */
uint16_t
redis_crc16(const char *p, size_t len)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)((uint16_t)(unsigned char)p[i] << 8);
        for (int bit = 0; bit < 8; bit++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

uint16_t
redis_key_slot(const char *key, size_t len)
{
    const char *open = len ? memchr(key, '{', len) : NULL;
    if (open != NULL) {
        const char *tag = open + 1;
        size_t rest = len - (size_t)(tag - key);
        const char *close = rest ? memchr(tag, '}', rest) : NULL;
        if (close != NULL && close > tag)
            return redis_crc16(tag, (size_t)(close - tag)) & (REDIS_SLOTS - 1);
    }
    return redis_crc16(key, len) & (REDIS_SLOTS - 1);
}

/* Reads a decimal number of at most `max` from p[*i..end): one digit at least, nothing but
 * digits. Returns 0 with *i past it, or -1. */
static int
redis_parse_uint(const char *p, size_t *i, size_t end, uint32_t max, uint32_t *out)
{
    size_t start = *i;
    uint32_t v = 0;
    while (*i < end && p[*i] >= '0' && p[*i] <= '9') {
        v = v * 10 + (uint32_t)(p[*i] - '0');
        if (v > max) /* stops before v can overflow: max is far below UINT32_MAX / 10 */
            return -1;
        (*i)++;
    }
    if (*i == start)
        return -1;
    *out = v;
    return 0;
}

int
redis_parse_redirect(const char *err, size_t len, bool *ask, uint16_t *slot, const char **host,
                     size_t *host_len, uint16_t *port)
{
    size_t i;
    bool is_ask;
    if (err == NULL)
        return -1;
    if (len >= 6 && memcmp(err, "MOVED ", 6) == 0) {
        is_ask = false;
        i = 6;
    } else if (len >= 4 && memcmp(err, "ASK ", 4) == 0) {
        is_ask = true;
        i = 4;
    } else {
        return -1;
    }

    uint32_t s, p;
    if (redis_parse_uint(err, &i, len, REDIS_SLOTS - 1, &s) != 0)
        return -1;
    if (i >= len || err[i] != ' ')
        return -1;
    i++;

    /* The endpoint runs to the end; its last colon separates the port. */
    size_t colon = len;
    for (size_t k = len; k > i; k--) {
        if (err[k - 1] == ':') {
            colon = k - 1;
            break;
        }
    }
    if (colon == len)
        return -1;
    size_t h = i, hlen = colon - i;
    if (hlen >= 2 && err[h] == '[' && err[colon - 1] == ']') {
        h++;
        hlen -= 2;
        if (hlen == 0) /* "[]:6381" is no host at all, not the answering one */
            return -1;
    }
    for (size_t k = h; k < h + hlen; k++) {
        unsigned char c = (unsigned char)err[k];
        if (c <= 0x20 || c >= 0x7f || c == '[' || c == ']')
            return -1;
    }

    size_t j = colon + 1;
    if (redis_parse_uint(err, &j, len, 65535, &p) != 0 || p == 0 || j != len)
        return -1;

    *ask = is_ask;
    *slot = (uint16_t)s;
    *host = err + h;
    *host_len = hlen;
    *port = (uint16_t)p;
    return 0;
}
