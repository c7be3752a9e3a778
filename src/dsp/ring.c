/* ring.c - see ring.h. */
#include "dsp/ring.h"

#include <stdlib.h>
#include <string.h>

int ring_init(ring *r, int cap)
{
    r->buf = calloc((size_t)cap, sizeof(float));
    r->cap = cap;
    r->head = r->count = 0;
    return r->buf ? 0 : -1;
}

void ring_free(ring *r)
{
    free(r->buf);
    r->buf = NULL;
}

void ring_clear(ring *r) { r->head = r->count = 0; }

static int put(ring *r, const float *x, int n)
{
    if (n > r->cap - r->count)
        n = r->cap - r->count;
    int tail = (r->head + r->count) % r->cap;
    int first = n < r->cap - tail ? n : r->cap - tail;
    if (x) {
        memcpy(r->buf + tail, x, sizeof(float) * (size_t)first);
        memcpy(r->buf, x + first, sizeof(float) * (size_t)(n - first));
    } else {
        memset(r->buf + tail, 0, sizeof(float) * (size_t)first);
        memset(r->buf, 0, sizeof(float) * (size_t)(n - first));
    }
    r->count += n;
    return n;
}

int ring_write(ring *r, const float *x, int n) { return put(r, x, n); }
int ring_write_zeros(ring *r, int n) { return put(r, NULL, n); }

int ring_read(ring *r, float *x, int n)
{
    if (n > r->count)
        n = r->count;
    int first = n < r->cap - r->head ? n : r->cap - r->head;
    memcpy(x, r->buf + r->head, sizeof(float) * (size_t)first);
    memcpy(x + first, r->buf, sizeof(float) * (size_t)(n - first));
    r->head = (r->head + n) % r->cap;
    r->count -= n;
    return n;
}
