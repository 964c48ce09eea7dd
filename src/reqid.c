/* SPDX-License-Identifier: MIT */
/* Request id generation and validation. */
#include "reqid.h"

#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* splitmix64: a bijection on 64 bits, so distinct counters give distinct outputs. */
static uint64_t
mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void
reqid_gen_init(struct reqid_gen *g, uint64_t seed)
{
    g->counter = 0;
    g->key = seed;
    if (seed == 0 && getrandom(&g->key, sizeof(g->key), 0) != sizeof(g->key)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        g->key = mix64((uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32));
    }
}

static void
hex64(uint64_t v, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[i] = digits[v & 0xf];
        v >>= 4;
    }
}

void
reqid_generate(struct reqid_gen *g, char out[REQID_LEN + 1])
{
    uint64_t n = g->counter++;
    /* High half: which generator (random per worker); low half: which request. Both go
     * through the bijection so ids do not reveal the request count. */
    hex64(mix64(g->key), out);
    hex64(mix64(mix64(~g->key) + n), out + 16);
    out[REQID_LEN] = '\0';
}

bool
reqid_is_acceptable(struct span id)
{
    if (id.len == 0 || id.len > REQID_MAX_LEN)
        return false;
    for (size_t i = 0; i < id.len; i++) {
        unsigned char c = (unsigned char)id.ptr[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == ':' || c == '+' || c == '/' || c == '=' ||
                  c == '-';
        if (!ok)
            return false;
    }
    return true;
}
