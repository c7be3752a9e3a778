/* harmonic.c - harmonic oscillator bank (see harmonic.h for the maths). */
#include "dsp/harmonic.h"

#include "base/error.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK 256 /* samples rendered per inner pass (scratch arrays) */

struct harmonic {
    int sr, nh;
    double fr;
    int max_seg;
    int64_t t;       /* next output sample index since reset */
    int64_t k;       /* frames pushed since reset */
    double phase;    /* cycles, [0, 1) */
    float f_prev;
    float a_prev[HARMONIC_MAX]; /* A_h of frame k-1 */
    float a_next[HARMONIC_MAX]; /* A_h of frame k */
    /* scratch, (CHUNK) each */
    double f[CHUNK], w[CHUNK], c2[CHUNK], s_prev[CHUNK], s_cur[CHUNK], acc[CHUNK];
};

float ddsp_exp_sigmoid(float x)
{
    double s = 1.0 / (1.0 + exp(-(double)x));
    return (float)(2.0 * pow(s, M_LN10) + 1e-7);
}

void harmonic_controls(float amp_logit, const float *dist_logits, int n, float f0_hz,
                       double model_rate, float *amp, float *dist)
{
    *amp = ddsp_exp_sigmoid(amp_logit);
    double sum = 0;
    for (int i = 0; i < n; i++) {
        float v = ddsp_exp_sigmoid(dist_logits[i]);
        if ((double)(i + 1) * f0_hz >= model_rate / 2)
            v = 0;
        dist[i] = v;
        sum += v;
    }
    for (int i = 0; i < n; i++)
        dist[i] = sum > 0 ? (float)(dist[i] / sum) : 0.0f;
}

int harmonic_create(harmonic **out, const harmonic_config *cfg)
{
    *out = NULL;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 192000)
        return err_set(OSCINE_E_ARG, "harmonic: sample rate %d Hz out of range 8000..192000",
                       cfg->sample_rate);
    if (!(cfg->frame_rate >= 1 && cfg->frame_rate <= cfg->sample_rate))
        return err_set(OSCINE_E_ARG, "harmonic: frame rate %g out of range 1..%d",
                       cfg->frame_rate, cfg->sample_rate);
    if (cfg->n_harmonics < 1 || cfg->n_harmonics > HARMONIC_MAX)
        return err_set(OSCINE_E_ARG, "harmonic: %d harmonics, need 1..%d", cfg->n_harmonics,
                       HARMONIC_MAX);
    harmonic *h = calloc(1, sizeof *h);
    if (!h)
        return err_set(OSCINE_E_NOMEM, "harmonic: out of memory");
    h->sr = cfg->sample_rate;
    h->fr = cfg->frame_rate;
    h->nh = cfg->n_harmonics;
    h->max_seg = (int)ceil(h->sr / h->fr);
    harmonic_reset(h);
    *out = h;
    return 0;
}

void harmonic_destroy(harmonic *h) { free(h); }

int harmonic_max_segment(const harmonic *h) { return h->max_seg; }

void harmonic_reset(harmonic *h)
{
    h->t = 0;
    h->k = 0;
    h->phase = 0;
    h->f_prev = 0;
    memset(h->a_prev, 0, sizeof h->a_prev);
    memset(h->a_next, 0, sizeof h->a_next);
}

static float clean(float x) { return isfinite(x) && x > 0 ? x : 0.0f; }

/* Render n <= CHUNK samples starting at h->t, between frames k-1 and k. */
static void render_chunk(harmonic *h, float f_next, float *out, int n)
{
    const double nyq = h->sr / 2.0, inv_sr = 1.0 / h->sr;
    const double kprev = (double)(h->k - 1);
    const double fa = h->f_prev, fb = f_next;
    double fmin = INFINITY;
    for (int i = 0; i < n; i++) {
        double u = (double)(h->t + i) * h->fr / h->sr - kprev;
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        double f = fa + (fb - fa) * u;
        h->phase += f * inv_sr;
        h->phase -= floor(h->phase);
        double th = 2 * M_PI * h->phase;
        h->f[i] = f;
        h->w[i] = 0.5 - 0.5 * cos(M_PI * u);
        h->s_prev[i] = 0;         /* sin(0 * th) */
        h->s_cur[i] = sin(th);    /* sin(1 * th) */
        h->c2[i] = 2 * cos(th);
        h->acc[i] = 0;
        if (f < fmin)
            fmin = f;
    }
    /* Harmonics at or above Nyquist for the whole chunk contribute nothing,
     * nor do the top ones silent in both frames (harmonic_controls zeroes
     * those above the model's own Nyquist: at 48 kHz, 2/3 of the bank). */
    int top = h->nh;
    if (fmin > 0 && nyq / fmin < top)
        top = (int)ceil(nyq / fmin);
    while (top > 0 && h->a_prev[top - 1] == 0.0f && h->a_next[top - 1] == 0.0f)
        top--;
    for (int m = 1; m <= top; m++) {
        const double a0 = h->a_prev[m - 1], da = (double)h->a_next[m - 1] - a0;
        /* sin((m+1) th) = 2 cos(th) sin(m th) - sin((m-1) th): stable in double
         * for the <= 100 steps taken here (error ~1e-12). */
        for (int i = 0; i < n; i++) {
            double g = (double)m * h->f[i] < nyq ? 1.0 : 0.0;
            h->acc[i] += g * (a0 + da * h->w[i]) * h->s_cur[i];
            double s_next = h->c2[i] * h->s_cur[i] - h->s_prev[i];
            h->s_prev[i] = h->s_cur[i];
            h->s_cur[i] = s_next;
        }
    }
    for (int i = 0; i < n; i++)
        out[i] = (float)h->acc[i];
    h->t += n;
}

int harmonic_process(harmonic *h, float f0_hz, float amp, const float *dist, float *out)
{
    float f_next = clean(f0_hz);
    float a = clean(amp);
    for (int i = 0; i < h->nh; i++)
        h->a_next[i] = a * clean(dist[i]);
    int n = 0;
    if (h->k > 0) {
        /* samples t with t * fr / sr < k, i.e. t < ceil(k * sr / fr) */
        int64_t end = (int64_t)ceil((double)h->k * h->sr / h->fr);
        int total = (int)(end - h->t);
        if (total > h->max_seg)
            total = h->max_seg;
        while (n < total) {
            int c = total - n < CHUNK ? total - n : CHUNK;
            render_chunk(h, f_next, out + n, c);
            n += c;
        }
    }
    h->f_prev = f_next;
    memcpy(h->a_prev, h->a_next, sizeof(float) * (size_t)h->nh);
    h->k++;
    return n;
}
