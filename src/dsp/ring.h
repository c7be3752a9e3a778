/* ring.h - single-threaded float FIFO with fixed capacity, for the block
 * adapter's delay lines. (Thread-crossing queues live in engine/.) */
#ifndef OSCINE_DSP_RING_H
#define OSCINE_DSP_RING_H

typedef struct ring {
    float *buf;
    int cap, head, count; /* read position, samples held */
} ring;

int ring_init(ring *r, int cap); /* thread: control */
void ring_free(ring *r);
void ring_clear(ring *r); /* thread: audio (a stage reset) or control; no allocation */
/* Returns samples written / read (short when full / empty). Thread: audio. */
int ring_write(ring *r, const float *x, int n);
int ring_write_zeros(ring *r, int n);
int ring_read(ring *r, float *x, int n);

#endif
