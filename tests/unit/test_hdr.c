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

static void
test_response_forwarded(void **state)
{
    (void)state;
    struct h1_header h[] = {
        {sp("Connection"), sp("close, X-Internal")},
        {sp("Keep-Alive"), sp("timeout=5")},
        {sp("Transfer-Encoding"), sp("chunked")},
        {sp("Upgrade"), sp("websocket")},
        {sp("X-Internal"), sp("secret")},
        {sp("Content-Type"), sp("text/plain")},
        {sp("TE"), sp("trailers")},
    };
    struct h1_response resp = {.headers = h, .num_headers = 7, .flags = H1_F_HAS_CONN_TOKENS};
    bool want_plain[] = {false, false, false, false, false, true, false};
    bool want_kept[] = {false, false, true, true, false, true, false};
    for (size_t i = 0; i < 7; i++) {
        if (hdr_response_forwarded(&resp, &h[i], false, false) != want_plain[i])
            fail_msg("%zu (strip all): want %d", i, want_plain[i]);
        if (hdr_response_forwarded(&resp, &h[i], true, true) != want_kept[i])
            fail_msg("%zu (keep TE, Upgrade): want %d", i, want_kept[i]);
    }
    /* Without Connection tokens, other headers are not looked up there. */
    resp.flags = 0;
    assert_true(hdr_response_forwarded(&resp, &h[4], false, false));
}

static void
test_trailer_forwarded(void **state)
{
    (void)state;
    static const char *const kept[] = {"grpc-status", "Server-Timing", "X-Checksum",
                                       "X-Request-Id", "Trailers"};
    static const char *const dropped[] = {"Content-Length", "Transfer-Encoding", "Host",
                                          "Connection", "TE", "Keep-Alive", "Upgrade",
                                          "Trailer", "Proxy-Connection", "Expect"};
    for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++)
        if (!hdr_trailer_forwarded(sp(kept[i])))
            fail_msg("%s dropped", kept[i]);
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++)
        if (hdr_trailer_forwarded(sp(dropped[i])) || hdr_request_trailer_forwarded(sp(dropped[i])))
            fail_msg("%s kept", dropped[i]);
    /* A client may not set what the proxy sets in the request head. */
    static const char *const ours[] = {"X-Forwarded-For", "x-forwarded-proto",
                                       "X-Forwarded-Host", "x-request-id"};
    for (size_t i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
        if (hdr_request_trailer_forwarded(sp(ours[i])))
            fail_msg("request trailer %s kept", ours[i]);
    assert_true(hdr_request_trailer_forwarded(sp("grpc-timeout")));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup),
        cmocka_unit_test(test_named_by_connection),
        cmocka_unit_test(test_response_forwarded),
        cmocka_unit_test(test_trailer_forwarded),
    };
    return cmocka_run_group_tests_name("hdr", tests, NULL, NULL);
}
