/* SPDX-License-Identifier: MIT */
/* Header-name lookup and Connection-token matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "hdr.h"

static struct span
sp(const char *s)
{
    return (struct span){s, strlen(s)};
}

static void
test_lookup(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        enum hdr_id id;
    } cases[] = {
        {"Connection", HDR_CONNECTION},
        {"connection", HDR_CONNECTION},
        {"KEEP-ALIVE", HDR_KEEP_ALIVE},
        {"Proxy-Connection", HDR_PROXY_CONNECTION},
        {"TE", HDR_TE},
        {"Transfer-Encoding", HDR_TRANSFER_ENCODING},
        {"Upgrade", HDR_UPGRADE},
        {"Content-Length", HDR_CONTENT_LENGTH},
        {"Host", HDR_HOST},
        {"Expect", HDR_EXPECT},
        {"X-Forwarded-For", HDR_X_FORWARDED_FOR},
        {"x-forwarded-proto", HDR_X_FORWARDED_PROTO},
        {"X-Forwarded-Host", HDR_X_FORWARDED_HOST},
        {"X-Request-ID", HDR_X_REQUEST_ID},
        {"Content-Type", HDR_OTHER},
        {"Hos", HDR_OTHER},
        {"Hostx", HDR_OTHER},
        {"X-Forwarded-Fox", HDR_OTHER},
        {"", HDR_OTHER},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (hdr_lookup(sp(cases[i].name)) != cases[i].id)
            fail_msg("%s: want %d", cases[i].name, cases[i].id);
}

static void
test_named_by_connection(void **state)
{
    (void)state;
    struct h1_header h[] = {
        {sp("Host"), sp("a")},
        {sp("Connection"), sp("keep-alive, X-Secret ,Foo")},
        {sp("connection"), sp("bar")},
    };
    assert_true(hdr_named_by_connection(sp("x-secret"), h, 3));
    assert_true(hdr_named_by_connection(sp("Foo"), h, 3));
    assert_true(hdr_named_by_connection(sp("BAR"), h, 3));
    assert_true(hdr_named_by_connection(sp("Keep-Alive"), h, 3));
    assert_false(hdr_named_by_connection(sp("X-Secre"), h, 3));
    assert_false(hdr_named_by_connection(sp("Host"), h, 3));
    assert_false(hdr_named_by_connection(sp("foo"), h, 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_named_by_connection),
    };
    return cmocka_run_group_tests_name("hdr", tests, NULL, NULL);
}
