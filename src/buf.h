/* SPDX-License-Identifier: MIT */
/* I/O buffers and the per-worker pool they come from. A connection takes a buffer when
 * bytes arrive and gives it back as soon as it is drained, so an idle keep-alive
 * connection holds none ("we are trying to not hold c->buffer's memory for an idle
 * connection", as nginx puts it). A pool belongs to one worker thread: no locks. */
#ifndef MERIDIAN_BUF_H
#define MERIDIAN_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Bytes mem[start..end) are data; mem[end..cap) is room. mem == NULL: no buffer held. */
struct buf {
    char *mem; /* owns, when not NULL (it came from a pool) */
    uint32_t cap;
    uint32_t start;
    uint32_t end;
};

struct buf_pool {
    void *free;      /* singly linked through each free block's first bytes */
    uint32_t nfree;
    uint32_t min_free; /* the fewest free blocks since the last trim: never needed */
    uint32_t max_free; /* blocks kept for reuse; beyond that they go back to malloc */
    uint32_t block_size;
    uint64_t taken;    /* blocks handed out and not yet returned (for /status) */
};

void buf_pool_init(struct buf_pool *pool, uint32_t block_size, uint32_t max_free);
void buf_pool_deinit(struct buf_pool *pool);

/* Give back to the kernel the blocks that stayed free since the last call: the pool
 * grows to what the load needs and shrinks when the load goes. Call it periodically. */
void buf_pool_trim_unused(struct buf_pool *pool);

/* Blocks of another size are freed on return: how a reload changes the size. */
void buf_pool_set_block_size(struct buf_pool *pool, uint32_t block_size);

/* Give `b` a block if it has none. Returns 0, or -1 when out of memory. */
int buf_take(struct buf_pool *pool, struct buf *b);

/* Return the block if `b` holds no data (or unconditionally with buf_drop). */
void buf_release_if_empty(struct buf_pool *pool, struct buf *b);
void buf_drop(struct buf_pool *pool, struct buf *b);

static inline uint32_t
buf_len(const struct buf *b)
{
    return b->end - b->start;
}

static inline char *
buf_data(const struct buf *b)
{
    return b->mem + b->start;
}

/* Room at the tail, after moving data to the front if that makes more room. */
uint32_t buf_room(struct buf *b);

static inline char *
buf_tail(const struct buf *b)
{
    return b->mem + b->end;
}

static inline void
buf_consume(struct buf *b, uint32_t n)
{
    b->start += n;
    if (b->start == b->end)
        b->start = b->end = 0;
}

/* Append; the caller has checked buf_room(). */
static inline void
buf_append(struct buf *b, const void *p, uint32_t n)
{
    memcpy(b->mem + b->end, p, n);
    b->end += n;
}

#endif
