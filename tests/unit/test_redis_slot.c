/* SPDX-License-Identifier: MIT */
/* redis_slot: CRC16 against the cluster spec's vector, key slots (hash tags included) against
 * what redis-server 7.0 answers to CLUSTER KEYSLOT, and MOVED/ASK parsing of good replies and
 * hostile ones, each parsed from a heap copy of exactly its length so that ASan sees any read
 * past it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis_slot.h"

#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

/* A key or reply with an explicit length, for embedded NULs; len 0 means strlen. */
struct bytes {
    const char *p;
    size_t len;
};

static size_t
bytes_len(const struct bytes *b)
{
    return b->len ? b->len : strlen(b->p);
}

/* An exact-size heap copy: any read past len is a heap overflow under ASan. */
static char *
exact_copy(const char *p, size_t len)
{
    char *c = malloc(len ? len : 1);
    assert_non_null(c);
    memcpy(c, p, len);
    return c;
}

static void
test_crc16(void **state)
{
    (void)state;
    assert_int_equal(redis_crc16("123456789", 9), 0x31C3); /* the spec's test vector */
    assert_int_equal(redis_crc16("", 0), 0);
    assert_int_equal(redis_crc16("\0", 1), 0);
    assert_int_equal(redis_crc16("A", 1), 0x58E5); /* CRC-16/XMODEM of "A" */
}

struct slot_case {
    struct bytes key;
    uint16_t want;
};

/* Every expected slot is redis-server 7.0.15's answer to CLUSTER KEYSLOT for that key. */
static const struct slot_case slot_cases[] = {
    {{"123456789", 0}, 12739},
    {{"foo", 0}, 12182},
    {{"bar", 0}, 5061},
    {{"hello", 0}, 866},
    {{"somekey", 0}, 11058},
    {{"Hello, World!", 0}, 4054},
    {{"a", 0}, 15495},
    {{"", 0}, 0},
    /* hash tags */
    {{"user1000", 0}, 3443},
    {{"{user1000}", 0}, 3443},
    {{"{user1000}.following", 0}, 3443},
    {{"{user1000}.followers", 0}, 3443},
    {{"foo{bar}{zap}", 0}, 5061}, /* the first tag only */
    {{"foo{}{bar}", 0}, 8363},    /* an empty tag: the whole key */
    {{"foo{{bar}}zap", 0}, 4015}, /* the tag is "{bar" */
    {{"{bar", 0}, 4015},          /* ... whose own slot this is */
    {{"foo{bar", 0}, 15278},      /* no '}': the whole key */
    {{"foo}bar{", 0}, 11073},     /* '}' before '{' does not count */
    {{"{}", 0}, 15257},           /* empty tag */
    {{"{", 0}, 4092},             /* lone brace */
    {{"{{}}", 0}, 4092},          /* the tag is "{" */
    {{"}", 0}, 12090},
    {{"abc{}def", 0}, 15860},
    {{"x{y}", 0}, 12222},
    {{"{a}{b}", 0}, 15495},
    /* Meridian's bucket keys: the tag pins a bucket and its companions to one slot. */
    {{"meridian:{rl:phase1}:bucket", 0}, 14734},
    {{"rl:phase1", 0}, 14734},
    /* bytes: a NUL inside, high bytes, a NUL as the tag */
    {{"a\0b", 3}, 8383},
    {{"\xff", 0}, 7920},
    {{"{\0}x", 4}, 0},
    {{"\xff\xfe\xfd{\x80}", 0}, 4488},
};

static void
test_key_slot(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(slot_cases); c++) {
        const struct slot_case *tc = &slot_cases[c];
        size_t len = bytes_len(&tc->key);
        char *key = exact_copy(tc->key.p, len);
        uint16_t got = redis_key_slot(key, len);
        free(key);
        if (got != tc->want)
            fail_msg("case %zu \"%.*s\": slot %u, want %u", c, (int)len, tc->key.p, got, tc->want);
    }
}

/* Properties: every slot is below 16384; a key and its tag in braces share a slot; without a
 * usable tag the slot is the whole key's CRC16 modulo 16384. */
static void
test_key_slot_properties(void **state)
{
    (void)state;
    static const char *const tags[] = {"user1000", "rl:phase1", "x", "{", "a b", "}{"};
    char key[64];
    for (size_t t = 0; t < N_ELEMS(tags); t++) {
        if (strchr(tags[t], '}'))
            continue; /* a '}' would end the tag early */
        int n1 = snprintf(key, sizeof(key), "{%s}", tags[t]);
        uint16_t alone = redis_key_slot(key, (size_t)n1);
        assert_int_equal(alone, redis_crc16(tags[t], strlen(tags[t])) % REDIS_SLOTS);
        int n2 = snprintf(key, sizeof(key), "prefix:{%s}:suffix{other}", tags[t]);
        assert_int_equal(redis_key_slot(key, (size_t)n2), alone);
    }
    uint32_t x = 1;
    for (int k = 0; k < 10000; k++) {
        size_t len = (size_t)k % sizeof(key);
        for (size_t i = 0; i < len; i++) {
            x = x * 1103515245u + 12345u;
            key[i] = (char)(x >> 24);
        }
        uint16_t s = redis_key_slot(key, len);
        assert_true(s < REDIS_SLOTS);
        if (memchr(key, '{', len) == NULL)
            assert_int_equal(s, redis_crc16(key, len) & (REDIS_SLOTS - 1));
    }
}

/* ---- redirections ---- */

struct redirect_case {
    struct bytes err;
    int rc;
    bool ask;
    uint16_t slot;
    const char *host; /* as returned (without brackets) */
    uint16_t port;
};

/* A good reply and what it says; a reply that must be refused (BADN: with NULs, n bytes). */
// clang-format off
#define MOVED(e, s, h, p) {{(e), 0}, 0, false, (s), (h), (p)}
#define ASK(e, s, h, p)   {{(e), 0}, 0, true, (s), (h), (p)}
#define BAD(e)            {{(e), 0}, -1, false, 0, NULL, 0}
#define BADN(e, n)        {{(e), (n)}, -1, false, 0, NULL, 0}
// clang-format on

static const struct redirect_case redirect_cases[] = {
    MOVED("MOVED 3999 127.0.0.1:6381", 3999, "127.0.0.1", 6381),
    ASK("ASK 3999 127.0.0.1:6381", 3999, "127.0.0.1", 6381),
    MOVED("MOVED 0 10.0.0.1:1", 0, "10.0.0.1", 1),
    MOVED("MOVED 16383 h:65535", 16383, "h", 65535),
    /* IPv6: the last colon separates the port */
    MOVED("MOVED 3999 ::1:6381", 3999, "::1", 6381),
    MOVED("MOVED 3999 2001:db8::7:6379", 3999, "2001:db8::7", 6379),
    ASK("ASK 1 [::1]:6381", 1, "::1", 6381),
    MOVED("MOVED 3999 [2001:db8::7]:6379", 3999, "2001:db8::7", 6379),
    /* the host of the node that answered */
    MOVED("MOVED 3999 :6381", 3999, "", 6381),
    ASK("ASK 42 :7000", 42, "", 7000),
    /* hostnames, and Redis 7's unknown endpoint */
    MOVED("MOVED 3999 redis-1.example.com:6379", 3999, "redis-1.example.com", 6379),
    ASK("ASK 12 ?:7000", 12, "?", 7000),
    /* leading zeros are still decimal */
    MOVED("MOVED 03999 h:06381", 3999, "h", 6381),
    /* not a redirection */
    BAD(""),
    BAD("ERR unknown command"),
    BAD("CLUSTERDOWN Hash slot not served"),
    BAD("TRYAGAIN Multiple keys request during rehashing of slot"),
    BAD("NOSCRIPT No matching script"),
    BAD("ASKING"),
    BAD("MOVEDX 1 h:1"),
    BAD("moved 3999 h:1"),
    BAD("-MOVED 3999 h:1"),
    BAD(" MOVED 3999 h:1"),
    /* cut short */
    BAD("MOVED"),
    BAD("MOVED "),
    BAD("MOVED 3999"),
    BAD("MOVED 3999 "),
    BAD("ASK 3999 127.0.0.1"),
    BAD("MOVED 3999 127.0.0.1:"),
    BAD("MOVED 3999 h:1:"),
    /* slot */
    BAD("MOVED 16384 h:1"),
    BAD("MOVED 65536 h:1"),
    BAD("MOVED 99999999999999999999999 h:1"),
    BAD("MOVED -1 h:1"),
    BAD("MOVED +1 h:1"),
    BAD("MOVED 0x10 h:1"),
    BAD("MOVED 1e3 h:1"),
    /* port */
    BAD("MOVED 3999 h:0"),
    BAD("MOVED 3999 h:65536"),
    BAD("MOVED 3999 h:99999999999999999999"),
    BAD("MOVED 3999 h:-1"),
    BAD("MOVED 3999 h:+1"),
    BAD("MOVED 3999 h:6381x"),
    /* spaces and trailing junk */
    BAD("MOVED  3999 h:1"),
    BAD("MOVED 3999  h:1"),
    BAD("MOVED 3999 h:6381 "),
    BAD("MOVED 3999 h:6381\r\n"),
    BAD("MOVED 3999 h :1"),
    BAD("MOVED 3999 h:1 extra"),
    BAD("MOVED\t3999 h:1"),
    /* hostile hosts */
    BAD("MOVED 3999 h\t:1"),
    BAD("MOVED 3999 h\r\n:1"),
    BAD("MOVED 3999 h\x7f:1"),
    BAD("MOVED 3999 caf\xc3\xa9:1"),
    BAD("MOVED 3999 []:1"),
    BAD("MOVED 3999 [::1:1"),
    BAD("MOVED 3999 ::1]:1"),
    BAD("MOVED 3999 [a]b:1"),
    BAD("MOVED 3999 [[a]]:1"),
    /* NULs inside */
    BADN("MOVED 3999 h:1\0", 15),
    BADN("MOVED 3999\0h:1", 14),
    BADN("MOVED 3999 h\0x:1", 16),
    BADN("MOVED \0", 7),
};

static void
check_redirect(const char *what, const char *err, size_t len, const struct redirect_case *tc)
{
    bool ask = !tc->ask;
    uint16_t slot = 0xBEEF, port = 0xBEEF;
    const char *host = (const char *)&slot; /* any sentinel */
    size_t host_len = 12345;
    int rc = redis_parse_redirect(err, len, &ask, &slot, &host, &host_len, &port);
    if (rc != tc->rc)
        fail_msg("%s \"%.*s\": rc %d, want %d", what, (int)len, err, rc, tc->rc);
    if (rc != 0) {
        /* nothing touched */
        assert_true(ask == !tc->ask && slot == 0xBEEF && port == 0xBEEF);
        assert_true(host == (const char *)&slot && host_len == 12345);
        return;
    }
    assert_true(host >= err && host + host_len <= err + len);
    if (ask != tc->ask || slot != tc->slot || port != tc->port || host_len != strlen(tc->host) ||
        memcmp(host, tc->host, host_len) != 0)
        fail_msg("%s \"%.*s\": got %s %u \"%.*s\" %u", what, (int)len, err, ask ? "ASK" : "MOVED",
                 slot, (int)host_len, host, port);
}

static void
test_redirect(void **state)
{
    (void)state;
    for (size_t c = 0; c < N_ELEMS(redirect_cases); c++) {
        const struct redirect_case *tc = &redirect_cases[c];
        size_t len = tc->err.len ? tc->err.len : strlen(tc->err.p);
        char *err = exact_copy(tc->err.p, len);
        check_redirect("case", err, len, tc);
        free(err);
    }
}

/* Every prefix of a good reply parses as what that prefix says, from a buffer of exactly that
 * length: never a read past len, and a cut port is a smaller port, not junk from beyond. */
static void
test_redirect_prefixes(void **state)
{
    (void)state;
    static const char full[] = "ASK 3999 [2001:db8::7]:6381";
    for (size_t len = 0; len <= sizeof(full) - 1; len++) {
        char *err = exact_copy(full, len);
        bool ask;
        uint16_t slot, port;
        const char *host;
        size_t host_len;
        int rc = redis_parse_redirect(err, len, &ask, &slot, &host, &host_len, &port);
        size_t port_digits = len > 23 ? len - 23 : 0; /* "ASK 3999 [2001:db8::7]:" is 23 */
        if (port_digits > 0) {
            assert_int_equal(rc, 0);
            assert_int_equal(port, port_digits == 1   ? 6
                                   : port_digits == 2 ? 63
                                   : port_digits == 3 ? 638
                                                      : 6381);
            assert_int_equal(host_len, 11);
        } else if (rc == 0) {
            /* a cut inside the address can still look like host:port ("...[2001:db") but then the
             * bracket makes it malformed; nothing else may parse */
            fail_msg("prefix of %zu bytes \"%.*s\" parsed", len, (int)len, full);
        }
        free(err);
    }
    assert_int_equal(redis_parse_redirect(NULL, 0, NULL, NULL, NULL, NULL, NULL), -1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),
        cmocka_unit_test(test_key_slot),
        cmocka_unit_test(test_key_slot_properties),
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_redirect_prefixes),
    };
    return cmocka_run_group_tests_name("redis_slot", tests, NULL, NULL);
}
