/* spsc.c - see spsc.h. Acquire/release on head and tail is all the
 * ordering needed: the producer publishes an item by advancing tail, the
 * consumer frees its slot by advancing head. */
#include "engine/spsc.h"

#include <stdlib.h>
#include <string.h>

int spsc_init(spsc *q, size_t item, size_t cap)
{
    size_t c = 2;
    while (c < cap)
        c <<= 1;
    q->buf = calloc(c, item);
    q->item = item;
    q->cap = c;
    atomic_init(&q->head, 0);
    atomic_init(&q->tail, 0);
    atomic_init(&q->dropped, 0);
    return q->buf ? 0 : -1;
}

void spsc_free(spsc *q)
{
    free(q->buf);
    q->buf = NULL;
}

int spsc_push(spsc *q, const void *item)
{
    size_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
    size_t h = atomic_load_explicit(&q->head, memory_order_acquire);
    if (t - h == q->cap) {
        atomic_fetch_add_explicit(&q->dropped, 1, memory_order_relaxed);
        return -1;
    }
    memcpy(q->buf + (t & (q->cap - 1)) * q->item, item, q->item);
    atomic_store_explicit(&q->tail, t + 1, memory_order_release);
    return 0;
}

int spsc_pop(spsc *q, void *item)
{
    size_t h = atomic_load_explicit(&q->head, memory_order_relaxed);
    size_t t = atomic_load_explicit(&q->tail, memory_order_acquire);
    if (h == t)
        return 0;
    memcpy(item, q->buf + (h & (q->cap - 1)) * q->item, q->item);
    atomic_store_explicit(&q->head, h + 1, memory_order_release);
    return 1;
}

size_t spsc_count(spsc *q)
{
    return atomic_load_explicit(&q->tail, memory_order_acquire) -
           atomic_load_explicit(&q->head, memory_order_acquire);
}
