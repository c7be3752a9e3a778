/* spsc.h - bounded single-producer single-consumer queue of fixed-size
 * items, lock-free and wait-free: the only way data crosses between the
 * audio thread and the others (with atomic pointer swaps). */
#ifndef OSCINE_ENGINE_SPSC_H
#define OSCINE_ENGINE_SPSC_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct spsc {
    unsigned char *buf;
    size_t item, cap;            /* item size in bytes; capacity (power of two) */
    _Atomic size_t head;         /* next to read; written by the consumer */
    _Atomic size_t tail;         /* next to write; written by the producer */
    _Atomic unsigned long dropped; /* pushes refused because full */
} spsc;

/* Thread: control (before the threads start). cap is rounded up to 2^k. */
int spsc_init(spsc *q, size_t item, size_t cap);
void spsc_free(spsc *q);

/* Producer side: 0 on success, -1 when full (counted in dropped). */
int spsc_push(spsc *q, const void *item);
/* Consumer side: 1 and the item, or 0 when empty. */
int spsc_pop(spsc *q, void *item);
/* Items waiting (approximate from either side). */
size_t spsc_count(spsc *q);

#endif
