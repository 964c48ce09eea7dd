/* SPDX-License-Identifier: MIT */
/* sock_ip_text: the hand-written IPv4 formatter against inet_ntop, and IPv6. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <string.h>

#include "sock.h"

static void
test_ipv4_matches_inet_ntop(void **state)
{
    (void)state;
    /* Every octet value in every position. */
    for (unsigned v = 0; v < 256; v++) {
        for (int pos = 0; pos < 4; pos++) {
            struct sockaddr_in sin = {.sin_family = AF_INET};
            unsigned char *a = (unsigned char *)&sin.sin_addr;
            a[0] = 10, a[1] = 200, a[2] = 3, a[3] = 99;
            a[pos] = (unsigned char)v;
            char want[INET_ADDRSTRLEN], got[SOCK_ADDR_TEXT_MAX];
            inet_ntop(AF_INET, a, want, sizeof(want));
            size_t n = sock_ip_text((struct sockaddr *)&sin, got, sizeof(got));
            assert_string_equal(got, want);
            assert_int_equal(n, strlen(want));
        }
    }
}

static void
test_ipv6_and_mapped(void **state)
{
    (void)state;
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    char got[SOCK_ADDR_TEXT_MAX];
    inet_pton(AF_INET6, "2001:db8::1", &s6.sin6_addr);
    assert_int_equal(sock_ip_text((struct sockaddr *)&s6, got, sizeof(got)), 11);
    assert_string_equal(got, "2001:db8::1");
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &s6.sin6_addr);
    sock_ip_text((struct sockaddr *)&s6, got, sizeof(got));
    assert_string_equal(got, "192.0.2.7");
    inet_pton(AF_INET6, "::1", &s6.sin6_addr);
    sock_ip_text((struct sockaddr *)&s6, got, sizeof(got));
    assert_string_equal(got, "::1");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4_matches_inet_ntop),
        cmocka_unit_test(test_ipv6_and_mapped),
    };
    return cmocka_run_group_tests_name("sock", tests, NULL, NULL);
}
