/* pitch.c - streaming YIN with exact fractional-lag refinement (see pitch.h). */
#include "dsp/pitch.h"

#include "base/error.h"
#include "dsp/fftlock.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct pitch {
    int sr, hop, L, T, W, N, bins; /* frame, lags, window, FFT size (2L), N/2+1 */
    int tau_min, tau_max;
    float threshold;
    int hist_len;        /* max(L, hop) */
    float *hist;         /* (hist_len) last samples */
    float *ta, *tb, *tc; /* (N) FFT inputs: first W samples, whole frame, last W */
    fftwf_complex *fa, *fb, *fc; /* (bins) their spectra */
    fftwf_complex *fp;   /* (bins) cross spectrum conj(A) B */
    float *cc;           /* (N) cross-correlation c(tau) */
    double *pr, *pi;     /* (bins) cross spectrum in double, for fractional lags */
    double *e;           /* (T + 1) sum_{j<W} x[j + tau]^2 + x[L-1-j - tau]^2 */
    double *d, *dn;      /* (T + 1) difference function and its normalised form */
    double *cum;         /* (T + 1) sum_{s=1..tau} d(s) */
    fftwf_plan plan_a, plan_b, plan_c, plan_d;
};

int pitch_create(pitch **out, const pitch_config *cfg)
{
    *out = NULL;
    if (cfg->sample_rate < 8000 || cfg->sample_rate > 96000)
        return err_set(OSCINE_E_ARG, "pitch: sample rate %d Hz out of range 8000..96000",
                       cfg->sample_rate);
    if (cfg->hop < 1 || cfg->hop > 16384)
        return err_set(OSCINE_E_ARG, "pitch: hop %d out of range 1..16384", cfg->hop);
    double fmin = cfg->fmin > 0 ? cfg->fmin : 40.0, fmax = cfg->fmax > 0 ? cfg->fmax : 2000.0;
    double th = cfg->threshold > 0 ? cfg->threshold : 0.15;
    if (!(fmin >= 10 && fmax <= cfg->sample_rate / 4.0 && fmax >= 1.5 * fmin))
        return err_set(OSCINE_E_ARG, "pitch: range %g..%g Hz: need 10 <= fmin, fmin * 1.5 "
                       "<= fmax <= rate / 4 (%g)", fmin, fmax, cfg->sample_rate / 4.0);
    if (!(th < 1))
        return err_set(OSCINE_E_ARG, "pitch: threshold %g must be in (0, 1)", th);
    pitch *p = calloc(1, sizeof *p);
    if (!p)
        return err_set(OSCINE_E_NOMEM, "pitch: out of memory");
    p->sr = cfg->sample_rate;
    p->hop = cfg->hop;
    p->threshold = (float)th;
    p->tau_min = (int)floor(p->sr / fmax);
    if (p->tau_min < 2)
        p->tau_min = 2;
    p->tau_max = (int)ceil(p->sr / fmin);
    p->T = p->tau_max + 1;
    p->L = 64;
    while (p->L < 2 * p->T)
        p->L *= 2;
    p->W = p->L - p->T;
    p->N = 2 * p->L;
    p->bins = p->N / 2 + 1;
    p->hist_len = p->L > p->hop ? p->L : p->hop;
    p->hist = calloc((size_t)p->hist_len, sizeof(float));
    p->ta = fftwf_malloc(sizeof(float) * (size_t)p->N);
    p->tb = fftwf_malloc(sizeof(float) * (size_t)p->N);
    p->tc = fftwf_malloc(sizeof(float) * (size_t)p->N);
    p->cc = fftwf_malloc(sizeof(float) * (size_t)p->N);
    p->fa = fftwf_malloc(sizeof(fftwf_complex) * (size_t)p->bins);
    p->fb = fftwf_malloc(sizeof(fftwf_complex) * (size_t)p->bins);
    p->fc = fftwf_malloc(sizeof(fftwf_complex) * (size_t)p->bins);
    p->fp = fftwf_malloc(sizeof(fftwf_complex) * (size_t)p->bins);
    p->pr = malloc(sizeof(double) * (size_t)p->bins);
    p->pi = malloc(sizeof(double) * (size_t)p->bins);
    p->e = malloc(sizeof(double) * (size_t)(p->T + 1));
    p->d = malloc(sizeof(double) * (size_t)(p->T + 1));
    p->dn = malloc(sizeof(double) * (size_t)(p->T + 1));
    p->cum = malloc(sizeof(double) * (size_t)(p->T + 1));
    if (!p->hist || !p->ta || !p->tb || !p->tc || !p->cc || !p->fa || !p->fb || !p->fc ||
        !p->fp || !p->pr || !p->pi || !p->e || !p->d || !p->dn || !p->cum) {
        pitch_destroy(p);
        return err_set(OSCINE_E_NOMEM, "pitch: out of memory");
    }
    fft_plan_lock();
    p->plan_a = fftwf_plan_dft_r2c_1d(p->N, p->ta, p->fa, FFTW_ESTIMATE);
    p->plan_b = fftwf_plan_dft_r2c_1d(p->N, p->tb, p->fb, FFTW_ESTIMATE);
    p->plan_c = fftwf_plan_dft_c2r_1d(p->N, p->fp, p->cc, FFTW_ESTIMATE);
    p->plan_d = fftwf_plan_dft_r2c_1d(p->N, p->tc, p->fc, FFTW_ESTIMATE);
    fft_plan_unlock();
    if (!p->plan_a || !p->plan_b || !p->plan_c || !p->plan_d) {
        pitch_destroy(p);
        return err_set(OSCINE_E_NOMEM, "pitch: FFTW could not plan size %d", p->N);
    }
    *out = p;
    return 0;
}

void pitch_destroy(pitch *p)
{
    if (!p)
        return;
    fft_plan_lock();
    if (p->plan_a)
        fftwf_destroy_plan(p->plan_a);
    if (p->plan_b)
        fftwf_destroy_plan(p->plan_b);
    if (p->plan_c)
        fftwf_destroy_plan(p->plan_c);
    if (p->plan_d)
        fftwf_destroy_plan(p->plan_d);
    fft_plan_unlock();
    fftwf_free(p->ta);
    fftwf_free(p->tb);
    fftwf_free(p->tc);
    fftwf_free(p->cc);
    fftwf_free(p->fa);
    fftwf_free(p->fb);
    fftwf_free(p->fc);
    fftwf_free(p->fp);
    free(p->hist);
    free(p->pr);
    free(p->pi);
    free(p->e);
    free(p->d);
    free(p->dn);
    free(p->cum);
    free(p);
}

int pitch_frame_length(const pitch *p) { return p->L; }
int pitch_latency(const pitch *p) { return p->L / 2; }

void pitch_reset(pitch *p) { memset(p->hist, 0, sizeof(float) * (size_t)p->hist_len); }

/* D(tau) = e(tau) - 2 c(tau) (d without the constant e0) and its first two
 * derivatives at fractional tau: c is the trigonometric interpolant of the
 * cross-correlation (exact for the band-limited signal), e is interpolated
 * linearly between lags (it changes slowly). */
static void eval_frac(const pitch *p, double tau, double *D, double *D1, double *D2)
{
    const int half = p->N / 2;
    const double w = 2 * M_PI / p->N;
    const double zr1 = cos(w * tau), zi1 = sin(w * tau);
    double zr = 1, zi = 0; /* e^{i w k tau} */
    double c0 = p->pr[0], c1 = 0, c2 = 0;
    for (int k = 1; k < half; k++) {
        double t = zr * zr1 - zi * zi1;
        zi = zr * zi1 + zi * zr1;
        zr = t;
        /* Re(P e^{i w k tau}), and its derivatives in tau */
        double re = p->pr[k] * zr - p->pi[k] * zi;
        double im = p->pr[k] * zi + p->pi[k] * zr;
        double wk = w * k;
        c0 += 2 * re;
        c1 -= 2 * wk * im;
        c2 -= 2 * wk * wk * re;
    }
    double ny = M_PI; /* the Nyquist term: P[N/2] is real */
    c0 += p->pr[half] * cos(ny * tau);
    c1 -= p->pr[half] * ny * sin(ny * tau);
    c2 -= p->pr[half] * ny * ny * cos(ny * tau);
    c0 /= p->N;
    c1 /= p->N;
    c2 /= p->N;
    int i = (int)floor(tau);
    if (i >= p->T)
        i = p->T - 1;
    double fr = tau - i, de = p->e[i + 1] - p->e[i];
    *D = p->e[i] + de * fr - 2 * c0;
    *D1 = de - 2 * c1;
    *D2 = -2 * c2;
}

/* The minimum of the parabola through three values around a dip (never
 * above the middle one). */
static double dip_value(double y0, double y1, double y2)
{
    double den = y0 - 2 * y1 + y2;
    if (!(den > 0))
        return y1;
    double v = y1 - (y0 - y2) * (y0 - y2) / (8 * den);
    return v < 0 ? 0 : v;
}

static double refine(const pitch *p, int t)
{
    /* start from the parabola through d(t-1), d(t), d(t+1) */
    double y0 = p->d[t - 1], y1 = p->d[t], y2 = p->d[t + 1];
    double den = y0 - 2 * y1 + y2, x = t;
    if (den > 0) {
        double off = 0.5 * (y0 - y2) / den;
        x += off < -0.5 ? -0.5 : off > 0.5 ? 0.5 : off;
    }
    const double lo = t - 1, hi = t + 1;
    for (int it = 0; it < 6; it++) {
        double D, D1, D2;
        eval_frac(p, x, &D, &D1, &D2);
        if (!(D2 > 0))
            break;
        double step = -D1 / D2;
        double nx = x + step;
        if (nx < lo)
            nx = lo;
        if (nx > hi)
            nx = hi;
        if (fabs(nx - x) < 1e-7) {
            x = nx;
            break;
        }
        x = nx;
    }
    return x;
}

/* d' at the exact (fractional-lag) minimum of the dip at lag t; *tau gets
 * that lag. The cumulative sum is interpolated linearly between lags. */
static double exact_dip(const pitch *p, int t, double e0, double *tau)
{
    double x = refine(p, t), D, D1, D2;
    eval_frac(p, x, &D, &D1, &D2);
    double d = e0 + D;
    int i = (int)floor(x);
    if (i >= p->T) /* x == T at the top of the range: cum has T + 1 values */
        i = p->T - 1;
    double S = p->cum[i] + (x - i) * (p->cum[i + 1] - p->cum[i]);
    *tau = x;
    return S > 0 ? (d > 0 ? d : 0) * x / S : 1;
}

void pitch_process(pitch *p, const float *in, pitch_frame *out)
{
    const int L = p->L, T = p->T, W = p->W, H = p->hop, N = p->N;
    const int keep = p->hist_len - H;
    memmove(p->hist, p->hist + H, sizeof(float) * (size_t)keep);
    memcpy(p->hist + keep, in, sizeof(float) * (size_t)H);
    const float *x = p->hist + p->hist_len - L; /* the frame: last L samples */

    /* The difference function is symmetric about the frame's centre for
     * every lag: pairs (x[j], x[j + tau]) with j in the first W samples plus
     * pairs (x[j], x[j - tau]) with j in the last W. One-sided YIN would
     * analyse [0, W + tau), centred (T - tau) / 2 samples early for short
     * lags, and report high notes late.
     *   d(tau) = e0 + e(tau) - 2 (c1(tau) + c2(tau))
     *   e0     = sum_{j<W} x[j]^2 + x[L-1-j]^2
     *   e(tau) = sum_{j<W} x[j + tau]^2 + x[L-1-j - tau]^2   (running, double)
     *   c1     = sum_{j<W} x[j] x[j + tau],  c2 = sum_{j>=L-W} x[j] x[j - tau] */
    double e0 = 0;
    for (int j = 0; j < W; j++)
        e0 += (double)x[j] * x[j] + (double)x[L - 1 - j] * x[L - 1 - j];
    p->e[0] = e0;
    for (int t = 1; t <= T; t++) {
        double a = x[t - 1], b = x[W + t - 1], c = x[L - t], d = x[L - W - t];
        p->e[t] = p->e[t - 1] - a * a + b * b - c * c + d * d;
    }
    double total = 0;
    for (int j = 0; j < L; j++)
        total += (double)x[j] * x[j];
    if (!(total >= 1e-10 * L)) { /* silence, or NaN/Inf in the input */
        out->f0_hz = 0;
        out->confidence = 0;
        return;
    }

    /* c1 + c2 in one inverse FFT of conj(A) B + conj(B) C; no wrap for N = 2L */
    memset(p->ta, 0, sizeof(float) * (size_t)N);
    memcpy(p->ta, x, sizeof(float) * (size_t)W);
    memcpy(p->tb, x, sizeof(float) * (size_t)L);
    memset(p->tb + L, 0, sizeof(float) * (size_t)(N - L));
    memset(p->tc, 0, sizeof(float) * (size_t)N);
    memcpy(p->tc + L - W, x + L - W, sizeof(float) * (size_t)W);
    fftwf_execute(p->plan_a);
    fftwf_execute(p->plan_b);
    fftwf_execute(p->plan_d);
    for (int k = 0; k < p->bins; k++) {
        double ar = p->fa[k][0], ai = p->fa[k][1], br = p->fb[k][0], bi = p->fb[k][1];
        double cr = p->fc[k][0], ci = p->fc[k][1];
        p->pr[k] = ar * br + ai * bi + br * cr + bi * ci;
        p->pi[k] = ar * bi - ai * br + br * ci - bi * cr;
        p->fp[k][0] = (float)p->pr[k];
        p->fp[k][1] = (float)p->pi[k];
    }
    fftwf_execute(p->plan_c);

    /* d and the cumulative mean normalised d' */
    double run = 0;
    p->d[0] = 0;
    p->dn[0] = 1;
    p->cum[0] = 0;
    for (int t = 1; t <= T; t++) {
        double v = e0 + p->e[t] - 2.0 * p->cc[t] / N;
        p->d[t] = v > 0 ? v : 0;
        run += p->d[t];
        p->cum[t] = run;
        p->dn[t] = run > 0 ? p->d[t] * t / run : 1;
    }

    /* Dips are judged by their exact minimum, not by the sampled lags: a
     * bright sound has a dip only a lag or two wide, and a period that falls
     * between lags can read far above the threshold there while twice the
     * period lands on a lag and reads 0 (an octave error). The parabola
     * through the three lags screens; the exact evaluation (a few Newton
     * steps) decides, for at most MAX_EXACT dips per frame. */
    enum { MAX_EXACT = 8 };
    int best = -1, exact = 0;
    double best_v = INFINITY, best_tau = -1;
    for (int t = p->tau_min; t <= p->tau_max; t++) {
        if (!(p->dn[t] <= p->dn[t - 1] && p->dn[t] <= p->dn[t + 1]))
            continue;
        double v = dip_value(p->dn[t - 1], p->dn[t], p->dn[t + 1]), tau = -1;
        if (v < p->threshold + 0.35 && exact < MAX_EXACT) {
            v = exact_dip(p, t, e0, &tau);
            exact++;
        }
        if (v < best_v || v < p->threshold)
            best = t, best_v = v, best_tau = tau;
        if (v < p->threshold)
            break;
    }
    if (best < 0) { /* no dip at all (monotone d'): the smallest value */
        best = p->tau_min;
        for (int t = p->tau_min + 1; t <= p->tau_max; t++)
            if (p->dn[t] < p->dn[best])
                best = t;
        best_v = p->dn[best];
    }
    double tau = best_tau > 0 ? best_tau : refine(p, best);
    double conf = 1.0 - best_v; /* best_v may dip below 0: clamped */
    out->f0_hz = (float)(p->sr / tau);
    out->confidence = (float)(conf < 0 ? 0 : conf > 1 ? 1 : conf);
}
