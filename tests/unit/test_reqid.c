/* SPDX-License-Identifier: MIT */
/* Request ids: format, uniqueness, and which client ids are kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "reqid.h"

static void
test_generated_format_and_unique(void **state)
{
    (void)state;
    struct reqid_gen g;
    reqid_gen_init(&g, 42);
    char prev[REQID_LEN + 1] = "";
    enum { N = 10000 };
    static char seen[N][REQID_LEN + 1];
    for (int i = 0; i < N; i++) {
        reqid_generate(&g, seen[i]);
        assert_int_equal(strlen(seen[i]), REQID_LEN);
        for (int k = 0; k < REQID_LEN; k++)
            assert_non_null(strchr("0123456789abcdef", seen[i][k]));
        assert_string_not_equal(seen[i], prev);
        memcpy(prev, seen[i], sizeof(prev));
    }
    /* The counter half is a bijection: all distinct. */
    for (int i = 0; i < N; i++)
        for (int j = i + 1; j < i + 50 && j < N; j++)
            assert_string_not_equal(seen[i], seen[j]);
}

static void
test_generators_differ(void **state)
{
    (void)state;
    struct reqid_gen a, b;
    reqid_gen_init(&a, 1);
    reqid_gen_init(&b, 2);
    char x[REQID_LEN + 1], y[REQID_LEN + 1];
    reqid_generate(&a, x);
    reqid_generate(&b, y);
    assert_memory_not_equal(x, y, 16); /* the generator halves differ */
}

static void
test_acceptable(void **state)
{
    (void)state;
    static const struct {
        const char *id;
        bool ok;
    } cases[] = {
        {"abc-123", true},
        {"0f8fad5b-d9cb-469f-a165-70867728950e", true},
        {"Root=1-5759e988-bd862e3fe1be46a994272793", true},
        {"a.b_c:d+e/f=", true},
        {"", false},
        {"has space", false},
        {"quote\"", false},
        {"new\nline", false},
        {"tab\t", false},
        {"caf\xc3\xa9", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct span s = {cases[i].id, strlen(cases[i].id)};
        if (reqid_is_acceptable(s) != cases[i].ok)
            fail_msg("\"%s\": want %d", cases[i].id, cases[i].ok);
    }
    char longid[REQID_MAX_LEN + 2];
    memset(longid, 'a', sizeof(longid));
    assert_true(reqid_is_acceptable((struct span){longid, REQID_MAX_LEN}));
    assert_false(reqid_is_acceptable((struct span){longid, REQID_MAX_LEN + 1}));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_generated_format_and_unique),
        cmocka_unit_test(test_generators_differ),
        cmocka_unit_test(test_acceptable),
    };
    return cmocka_run_group_tests_name("reqid", tests, NULL, NULL);
}
