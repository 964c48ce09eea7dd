/* SPDX-License-Identifier: MIT */
/* Buffers and their pool: take/give back, reuse, compaction, size changes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "buf.h"

static void
test_take_release_reuse(void **state)
{
    (void)state;
    struct buf_pool pool;
    buf_pool_init(&pool, 1024, 4);
    struct buf a = {0}, b = {0};
    assert_int_equal(buf_take(&pool, &a), 0);
    assert_non_null(a.mem);
    assert_int_equal(a.cap, 1024);
    char *first = a.mem;
    assert_int_equal(buf_take(&pool, &a), 0); /* already holds one: unchanged */
    assert_ptr_equal(a.mem, first);
    assert_int_equal(pool.taken, 1);

    buf_append(&a, "hello", 5);
    buf_release_if_empty(&pool, &a); /* holds data: kept */
    assert_non_null(a.mem);
    buf_consume(&a, 5);
    assert_int_equal(buf_len(&a), 0);
    buf_release_if_empty(&pool, &a);
    assert_null(a.mem);
    assert_int_equal(pool.nfree, 1);
    assert_int_equal(pool.taken, 0);

    assert_int_equal(buf_take(&pool, &b), 0);
    assert_ptr_equal(b.mem, first); /* from the free list */
    assert_int_equal(pool.nfree, 0);
    buf_drop(&pool, &b);
    buf_pool_deinit(&pool);
    assert_int_equal(pool.nfree, 0);
}

static void
test_room_compacts(void **state)
{
    (void)state;
    struct buf_pool pool;
    buf_pool_init(&pool, 100, 4);
    struct buf a = {0};
    assert_int_equal(buf_take(&pool, &a), 0);
    char data[90];
    memset(data, 'x', sizeof(data));
    buf_append(&a, data, 90);
    assert_int_equal(buf_room(&a), 10);
    buf_consume(&a, 80);
    /* 10 bytes of data at offset 80: room grows by moving them to the front. */
    assert_int_equal(buf_room(&a), 90);
    assert_int_equal(a.start, 0);
    assert_int_equal(buf_len(&a), 10);
    assert_memory_equal(buf_data(&a), data, 10);
    buf_drop(&pool, &a);
    buf_pool_deinit(&pool);
}

static void
test_block_size_change_and_cap(void **state)
{
    (void)state;
    struct buf_pool pool;
    buf_pool_init(&pool, 64, 1);
    struct buf a = {0}, b = {0};
    buf_take(&pool, &a);
    buf_take(&pool, &b);
    buf_drop(&pool, &a);
    buf_drop(&pool, &b); /* over max_free: freed, not kept */
    assert_int_equal(pool.nfree, 1);
    buf_take(&pool, &a);
    buf_pool_set_block_size(&pool, 128);
    assert_int_equal(pool.nfree, 0);
    buf_drop(&pool, &a); /* old size: freed */
    assert_int_equal(pool.nfree, 0);
    buf_take(&pool, &b);
    assert_int_equal(b.cap, 128);
    buf_drop(&pool, &b);
    assert_int_equal(pool.nfree, 1);
    buf_pool_deinit(&pool);
}

static void
test_trim_unused(void **state)
{
    (void)state;
    struct buf_pool pool;
    buf_pool_init(&pool, 64, 100);
    struct buf b[10] = {{0}};
    for (int i = 0; i < 10; i++)
        buf_take(&pool, &b[i]);
    for (int i = 0; i < 10; i++)
        buf_drop(&pool, &b[i]);
    assert_int_equal(pool.nfree, 10);
    buf_pool_trim_unused(&pool); /* a fresh malloc happened since: nothing is "unused" */
    assert_int_equal(pool.nfree, 10);
    /* Next period only 3 are ever needed at once: 7 sat free the whole time. */
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < 3; i++)
            buf_take(&pool, &b[i]);
        for (int i = 0; i < 3; i++)
            buf_drop(&pool, &b[i]);
    }
    buf_pool_trim_unused(&pool);
    assert_int_equal(pool.nfree, 3);
    /* A quiet period: all go. */
    buf_pool_trim_unused(&pool);
    assert_int_equal(pool.nfree, 0);
    buf_pool_deinit(&pool);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_take_release_reuse),
        cmocka_unit_test(test_room_compacts),
        cmocka_unit_test(test_block_size_change_and_cap),
        cmocka_unit_test(test_trim_unused),
    };
    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
