/* phaseint.c - see phaseint.h. */
#include "dsp/phaseint.h"

#include "base/error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A heap entry is one integer whose order is the heap's: the log-amplitude
 * (larger first; a float, so its bits made monotonic), then the bin (lower
 * first on ties), then the frame (the previous one first on ties). One
 * compare instead of three, which the heap does on every step. */
typedef uint64_t entry;

static inline entry entry_make(float s, int k, int cur)
{
    uint32_t u;
    s += 0.0f; /* -0 and +0 are one value, as they compare */
    memcpy(&u, &s, sizeof u);
    u = (u & 0x80000000u) ? ~u : (u | 0x80000000u); /* larger float, larger u */
    return (uint64_t)u << 32 | (uint64_t)(0xFFFFu - (uint32_t)k) << 1 | (uint64_t)(cur ? 0 : 1);
}

static inline int entry_k(entry e) { return (int)(0xFFFFu - (uint32_t)((e >> 1) & 0xFFFFu)); }
static inline int entry_cur(entry e) { return !(e & 1); }

struct phaseint {
    int bins, started;
    double thr;              /* tol_db in natural-log units */
    double *prev, *cur;      /* phases, [-pi, pi) */
    float *prev_s;           /* previous frame's log-amplitudes */
    unsigned char *prev_big, *big, *done;
    entry *heap;             /* 2 * bins: each coefficient enters at most once per frame */
    int n;
};

int phaseint_create(phaseint **out, int bins, double tol_db)
{
    *out = NULL;
    if (bins < 2 || bins > 4096 || !(tol_db > 0) || !isfinite(tol_db))
        return err_set(OSCINE_E_ARG, "phaseint: bins %d or tolerance %g dB out of range", bins, tol_db);
    phaseint *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(OSCINE_E_NOMEM, "phaseint: out of memory");
    p->bins = bins;
    p->thr = tol_db * log(10.0) / 20.0;
    p->prev = calloc((size_t)bins, sizeof(double));
    p->cur = calloc((size_t)bins, sizeof(double));
    p->prev_s = calloc((size_t)bins, sizeof(float));
    p->prev_big = calloc((size_t)bins, 1);
    p->big = calloc((size_t)bins, 1);
    p->done = calloc((size_t)bins, 1);
    p->heap = calloc(2 * (size_t)bins, sizeof(entry));
    if (!p->prev || !p->cur || !p->prev_s || !p->prev_big || !p->big || !p->done || !p->heap) {
        phaseint_destroy(p);
        return err_set(OSCINE_E_NOMEM, "phaseint: out of memory");
    }
    *out = p;
    return 0;
}

void phaseint_destroy(phaseint *p)
{
    if (!p)
        return;
    free(p->prev);
    free(p->cur);
    free(p->prev_s);
    free(p->prev_big);
    free(p->big);
    free(p->done);
    free(p->heap);
    free(p);
}

void phaseint_reset(phaseint *p) { p->started = 0; }

static void push(phaseint *p, float s, int k, int cur)
{
    entry e = entry_make(s, k, cur);
    int i = p->n++;
    while (i > 0) {
        int up = (i - 1) / 2;
        if (e <= p->heap[up])
            break;
        p->heap[i] = p->heap[up];
        i = up;
    }
    p->heap[i] = e;
}

static entry pop(phaseint *p)
{
    entry top = p->heap[0], last = p->heap[--p->n];
    int i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= p->n)
            break;
        if (c + 1 < p->n && p->heap[c + 1] > p->heap[c])
            c++;
        if (p->heap[c] <= last)
            break;
        p->heap[i] = p->heap[c];
        i = c;
    }
    p->heap[i] = last;
    return top;
}

static inline double wrap(double x)
{
    return x - 2 * M_PI * floor((x + M_PI) / (2 * M_PI));
}

void phaseint_frame(phaseint *p, const float *logamp, const float *dt, const float *df, float *phase)
{
    const int K = p->bins;
    double top = -INFINITY;
    for (int k = 0; k < K; k++)
        if (logamp[k] > top)
            top = logamp[k];
    const double floor_s = top - p->thr;
    for (int k = 0; k < K; k++) {
        p->big[k] = (double)logamp[k] >= floor_s;
        p->done[k] = !p->big[k];
        p->cur[k] = p->started ? wrap(p->prev[k] + (double)dt[k]) : 0.0;
    }
    p->n = 0;
    if (p->started)
        for (int k = 0; k < K; k++)
            if (p->prev_big[k])
                push(p, p->prev_s[k], k, 0);
    for (;;) {
        while (p->n > 0) {
            const entry e = pop(p);
            const int k = entry_k(e);
            if (!entry_cur(e)) {
                if (!p->done[k]) { /* cur[k] already holds prev + dt */
                    p->done[k] = 1;
                    push(p, logamp[k], k, 1);
                }
                continue;
            }
            if (k + 1 < K && !p->done[k + 1]) {
                p->cur[k + 1] = wrap(p->cur[k] + (double)df[k]);
                p->done[k + 1] = 1;
                push(p, logamp[k + 1], k + 1, 1);
            }
            if (k > 0 && !p->done[k - 1]) {
                p->cur[k - 1] = wrap(p->cur[k] - (double)df[k - 1]);
                p->done[k - 1] = 1;
                push(p, logamp[k - 1], k - 1, 1);
            }
        }
        int k0 = -1; /* the largest coefficient left (lowest bin on ties) */
        for (int k = 0; k < K; k++)
            if (!p->done[k] && (k0 < 0 || logamp[k] > logamp[k0]))
                k0 = k;
        if (k0 < 0)
            break;
        p->done[k0] = 1;
        push(p, logamp[k0], k0, 1);
    }
    for (int k = 0; k < K; k++) {
        phase[k] = (float)p->cur[k];
        p->prev[k] = p->cur[k];
        p->prev_s[k] = logamp[k];
        p->prev_big[k] = p->big[k];
    }
    p->started = 1;
}
