/* resample.c - sample-rate conversion with a measured lag bound: libsoxr,
 * or for live use a polyphase FIR that delivers each sample as soon as its
 * filter has the input. */
#include "dsp/resample.h"

#include "base/error.h"

#include <math.h>
#include <pthread.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

/* Low-latency mode keeps 0..0.8 of the lower Nyquist (6.4 kHz at 16 kHz)
 * flat: wider costs filter length, i.e. latency (0.9 doubles it). */
#define LL_PASSBAND 0.8

/* Low latency: a polyphase FIR for out/in = up/down (in lowest terms, both
 * up to FIR_MAX_FACTOR): a Kaiser-windowed sinc at the virtual rate in * up
 * = out * down, stopband from the lower Nyquist, passband to LL_PASSBAND of
 * it, FIR_ATTEN_DB down. libsoxr's LQ path filters in DFT blocks and owes
 * up to 8.6 ms each way at 48 kHz <-> 16 kHz; this filter's half length is
 * 1.8 ms at any ratio. */
#define FIR_ATTEN_DB 90.0
#define FIR_MAX_FACTOR 1000

/* The filter of one ratio, shared by every resampler of that ratio (the
 * 44.1 kHz <-> 16 kHz tables are 100 KB each; a stereo plugin has four
 * resamplers, an 8-channel chain 16): built on first use, freed with the
 * last user, on control threads under a lock. */
typedef struct fir_table {
    int up, down;     /* out/in = up / down, in lowest terms */
    int taps, centre; /* taps = 2 centre + 1, at the virtual rate; the filter h is
                         symmetric, so output j is aligned with input j / ratio */
    int plen;         /* taps per phase: ceil(taps / up) */
    float *hp;        /* (up, plen) phase p's taps h[p + i up], reversed: in the
                         order of the inputs they meet, oldest first */
    int refs;
    struct fir_table *next;
} fir_table;

static fir_table *tables;
static pthread_mutex_t tables_lock = PTHREAD_MUTEX_INITIALIZER;

typedef struct fir {
    const fir_table *t; /* the ratio, the filter */
    float *buf;       /* (cap) inputs base .. base + len - 1 (zeros before index 0) */
    int cap, len;
    long base, n_in, n_out;
} fir;

struct resampler {
    soxr_t sx;
    fir *f;
    long in_rate, out_rate;
    double ratio; /* out / in */
    int max_in, max_out;
    double lag;
    long drop;    /* outputs still to discard after the warm-up */
};

static long gcd_l(long a, long b)
{
    while (b) {
        long t = a % b;
        a = b;
        b = t;
    }
    return a;
}

/* Zeroth-order modified Bessel function of the first kind (Kaiser window). */
static double bessel_i0(double x)
{
    double sum = 1, term = 1;
    for (int k = 1; k < 64; k++) {
        term *= (x / (2 * k)) * (x / (2 * k));
        sum += term;
        if (term < 1e-17 * sum)
            break;
    }
    return sum;
}

static void fir_reset(fir *f)
{
    memset(f->buf, 0, sizeof(float) * (size_t)f->cap);
    f->len = f->t->plen; /* the history before index 0: silence */
    f->base = -f->t->plen;
    f->n_in = f->n_out = 0;
}

/* The table for up/down (lowest terms, not 1/1), built if no resampler has
 * it yet; NULL when out of memory. Thread: control. */
static const fir_table *table_get(int up, int down)
{
    pthread_mutex_lock(&tables_lock);
    fir_table *f = tables;
    while (f && !(f->up == up && f->down == down))
        f = f->next;
    if (f) {
        f->refs++;
        pthread_mutex_unlock(&tables_lock);
        return f;
    }
    f = calloc(1, sizeof *f);
    if (!f) {
        pthread_mutex_unlock(&tables_lock);
        return NULL;
    }
    f->up = up;
    f->down = down;
    const int r = up > down ? up : down;
    /* In cycles per sample of the higher rate: passband LL_PASSBAND * 0.5 / r,
     * stopband 0.5 / r, cut off in between (Kaiser's formulas for length and
     * beta). */
    const double df = (1.0 - LL_PASSBAND) * 0.5 / r, fc = (1.0 + LL_PASSBAND) * 0.25 / r;
    const double beta = 0.1102 * (FIR_ATTEN_DB - 8.7);
    f->centre = (int)ceil((FIR_ATTEN_DB - 7.95) / (14.36 * df) / 2);
    f->taps = 2 * f->centre + 1;
    f->plen = (f->taps + up - 1) / up;
    f->hp = calloc((size_t)up * (size_t)f->plen, sizeof(float));
    double sum = 0, *h = malloc(sizeof(double) * (size_t)f->taps);
    if (!f->hp || !h) {
        free(f->hp);
        free(f);
        free(h);
        pthread_mutex_unlock(&tables_lock);
        return NULL;
    }
    for (int k = 0; k < f->taps; k++) {
        double t = k - f->centre, u = t / f->centre;
        double sinc = t == 0 ? 2 * fc : sin(2 * M_PI * fc * t) / (M_PI * t);
        h[k] = sinc * bessel_i0(beta * sqrt(fmax(0.0, 1 - u * u))) / bessel_i0(beta);
        sum += h[k];
    }
    /* Unity gain at DC at the output rate. Output j is sum_k h[k] xu[j down +
     * centre - k], xu = the input with up - 1 zeros after each sample: only
     * the k of one phase p = (j down + centre) mod up meet input samples. */
    for (int p = 0; p < up; p++)
        for (int i = 0; p + i * up < f->taps; i++)
            f->hp[(size_t)p * (size_t)f->plen + (size_t)(f->plen - 1 - i)] =
                (float)(h[p + i * up] / sum * up);
    free(h);
    f->refs = 1;
    f->next = tables;
    tables = f;
    pthread_mutex_unlock(&tables_lock);
    return f;
}

static void table_put(const fir_table *t)
{
    if (!t)
        return;
    pthread_mutex_lock(&tables_lock);
    for (fir_table **pp = &tables; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            if (--(*pp)->refs == 0) {
                fir_table *dead = *pp;
                *pp = dead->next;
                free(dead->hp);
                free(dead);
            }
            break;
        }
    pthread_mutex_unlock(&tables_lock);
}

int resampler_fir_tables(size_t *bytes)
{
    int n = 0;
    size_t b = 0;
    pthread_mutex_lock(&tables_lock);
    for (const fir_table *t = tables; t; t = t->next, n++)
        b += sizeof *t + sizeof(float) * (size_t)t->up * (size_t)t->plen;
    pthread_mutex_unlock(&tables_lock);
    if (bytes)
        *bytes = b;
    return n;
}

static void fir_free(fir *f)
{
    if (f) {
        table_put(f->t);
        free(f->buf);
        free(f);
    }
}

/* out/in = up/down in lowest terms, not 1/1. Thread: control. */
static fir *fir_new(int up, int down, int max_in)
{
    fir *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->t = table_get(up, down);
    if (!f->t) {
        free(f);
        return NULL;
    }
    f->cap = 2 * f->t->plen + max_in + 2;
    f->buf = malloc(sizeof(float) * (size_t)f->cap);
    if (!f->buf) {
        fir_free(f);
        return NULL;
    }
    fir_reset(f);
    return f;
}

/* Input x[i] (0 beyond what has arrived: the end of a flushed stream). */
static inline float fir_x(const fir *f, long i)
{
    long p = i - f->base;
    return p >= 0 && p < f->len ? f->buf[p] : 0.0f;
}

/* Dot product in eight lanes the compiler vectorises (a plain float sum is
 * a serial reduction it must keep in order). */
static float dot(const float *a, const float *b, int n)
{
    float l[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int i = 0; i < 8; i++)
            l[i] += a[k + i] * b[k + i];
    float t = 0;
    for (; k < n; k++)
        t += a[k] * b[k];
    return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7])) + t;
}

/* Outputs while their input is there (or, flushing, up to the stream's end:
 * the inputs past it are zeros). */
static int fir_run(fir *f, int flush, float *out, int cap)
{
    const fir_table *t = f->t;
    int n = 0;
    const long end = flush ? (f->n_in * t->up + t->down - 1) / t->down : -1;
    while (n < cap) {
        long j = f->n_out;
        /* the newest input output j needs */
        long last = (j * t->down + t->centre) / t->up;
        if (flush ? j >= end : last >= f->n_in)
            break;
        const long v = j * t->down + t->centre; /* at the virtual rate */
        const int p = (int)(v - last * t->up);
        const float *hp = t->hp + (size_t)p * (size_t)t->plen;
        const long first = last - (t->plen - 1);
        float y;
        if (last < f->n_in) {
            y = dot(hp, f->buf + (first - f->base), t->plen);
        } else {
            y = 0;
            for (int k = 0; k < t->plen; k++)
                y += hp[k] * fir_x(f, first + k);
        }
        out[n++] = y;
        f->n_out++;
    }
    return n;
}

static int fir_process(fir *f, const float *in, int n, float *out, int cap)
{
    const fir_table *t = f->t;
    if (!in)
        return fir_run(f, 1, out, cap);
    /* drop what no later output needs, then append */
    long need = (f->n_out * t->down + t->centre) / t->up - (t->plen - 1);
    long drop = need - f->base;
    if (drop > f->len)
        drop = f->len;
    if (drop > 0) {
        memmove(f->buf, f->buf + drop, sizeof(float) * (size_t)(f->len - drop));
        f->len -= (int)drop;
        f->base += drop;
    }
    if (f->len + n > f->cap)
        return OSCINE_E_RESAMPLE;
    memcpy(f->buf + f->len, in, sizeof(float) * (size_t)n);
    f->len += n;
    f->n_in += n;
    return fir_run(f, 0, out, cap);
}

/* libsoxr grows its internal FIFOs on first use (realloc), which must not
 * happen on the audio thread. So feed the converter silence, in the chunk
 * sizes it will see, until its buffers reach their working size, and discard
 * exactly the output that silence produces: an input length that maps to a
 * whole number of outputs keeps later samples aligned as before. */
static int warm_up(resampler *r)
{
    const long g = gcd_l(r->in_rate, r->out_rate);
    const long unit_in = r->in_rate / g, unit_out = r->out_rate / g;
    float *zeros = calloc((size_t)r->max_in, sizeof(float));
    float *sink = malloc(sizeof(float) * (size_t)r->max_out);
    if (!zeros || !sink) {
        free(zeros);
        free(sink);
        return OSCINE_E_NOMEM;
    }
    long fed = 0, produced = 0, target = r->in_rate / 2 + 4L * r->max_in;
    int k = 0;
    while (fed < target || fed % unit_in) {
        long n = k++ % 4 == 3 ? 1 : r->max_in;
        if (fed >= target) { /* finish on a whole unit */
            long rest = unit_in - fed % unit_in;
            n = rest < r->max_in ? rest : r->max_in;
        }
        size_t idone = 0, odone = 0;
        if (soxr_process(r->sx, zeros, (size_t)n, &idone, sink, (size_t)r->max_out, &odone))
            break;
        fed += (long)idone;
        produced += (long)odone;
    }
    free(zeros);
    free(sink);
    r->drop = fed / unit_in * unit_out - produced;
    return r->drop >= 0 ? 0 : OSCINE_E_RESAMPLE;
}

static soxr_t make(double in_rate, double out_rate, int low_latency, const char **why)
{
    soxr_quality_spec_t q = soxr_quality_spec(low_latency ? SOXR_LQ : SOXR_HQ, 0);
    if (low_latency)
        q.passband_end = LL_PASSBAND;
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_runtime_spec_t rt = soxr_runtime_spec(1); /* never spawn threads */
    /* Small DFT blocks: libsoxr's delivery lag is mostly its block size.
     * With LQ filters this brings 48 kHz <-> 16 kHz to ~4 ms each way. */
    if (low_latency)
        rt.log2_large_dft_size = 8;
    soxr_error_t e = NULL;
    soxr_t sx = soxr_create(in_rate, out_rate, 1, &e, &io, &q, &rt);
    *why = e;
    return e ? NULL : sx;
}

int resampler_create(resampler **out, double in_rate, double out_rate, int low_latency,
                     int max_in)
{
    *out = NULL;
    if (!(in_rate >= 1000 && in_rate <= 1e6 && out_rate >= 1000 && out_rate <= 1e6) ||
        max_in < 1)
        return err_set(OSCINE_E_ARG, "resampler: rates %g -> %g Hz out of range", in_rate,
                       out_rate);
    resampler *r = calloc(1, sizeof *r);
    if (!r)
        return err_set(OSCINE_E_NOMEM, "resampler: out of memory");
    r->ratio = out_rate / in_rate;
    r->in_rate = (long)in_rate;
    r->out_rate = (long)out_rate;
    r->max_in = max_in;
    if (r->in_rate != in_rate || r->out_rate != out_rate) {
        free(r);
        return err_set(OSCINE_E_ARG, "resampler: rates must be whole numbers of Hz");
    }
    const long g = gcd_l(r->in_rate, r->out_rate);
    const long up = r->out_rate / g, down = r->in_rate / g;
    /* The lag bound: feed one sample at a time, the slowest delivery, long
     * enough to pass the filter's length (the FIR's pattern then repeats
     * every `down` inputs) or several of libsoxr's internal blocks. */
    double lag = 0;
    float zero = 0, sink[FIR_MAX_FACTOR + 1];
    if (low_latency && up <= FIR_MAX_FACTOR && down <= FIR_MAX_FACTOR && up != down) {
        r->f = fir_new((int)up, (int)down, max_in);
        if (!r->f) {
            resampler_destroy(r);
            return err_set(OSCINE_E_NOMEM, "resampler: out of memory");
        }
        for (long i = 0, done_out = 0; i < 4L * r->f->t->plen + 4 * down; i++) {
            done_out += fir_process(r->f, &zero, 1, sink, FIR_MAX_FACTOR + 1);
            lag = fmax(lag, (double)(i + 1) * r->ratio - (double)done_out);
        }
        fir_reset(r->f); /* as new: the FIR needs no warm-up */
    } else {
        const char *why = NULL;
        r->sx = make(in_rate, out_rate, low_latency, &why);
        soxr_t probe = r->sx ? make(in_rate, out_rate, low_latency, &why) : NULL;
        if (!r->sx || !probe) {
            if (probe)
                soxr_delete(probe);
            resampler_destroy(r);
            return err_set(OSCINE_E_RESAMPLE, "resampler %g -> %g Hz: %s", in_rate, out_rate,
                           why ? why : "cannot create");
        }
        int n = (int)(in_rate * 0.5) + 8192;
        size_t done_in = 0, done_out = 0;
        for (int i = 0; i < n; i++) {
            size_t idone = 0, odone = 0;
            soxr_process(probe, &zero, 1, &idone, sink, 64, &odone);
            done_in += idone;
            done_out += odone;
            lag = fmax(lag, (double)done_in * r->ratio - (double)done_out);
        }
        soxr_delete(probe);
    }
    r->lag = lag;
    /* Enough room for a call's worth plus anything held back. */
    r->max_out = (int)ceil(max_in * r->ratio + lag) + 16;
    if (r->sx && warm_up(r)) {
        resampler_destroy(r);
        return err_set(OSCINE_E_RESAMPLE, "resampler %g -> %g Hz: warm-up failed", in_rate,
                       out_rate);
    }
    *out = r;
    return 0;
}

void resampler_destroy(resampler *r)
{
    if (!r)
        return;
    if (r->sx)
        soxr_delete(r->sx);
    fir_free(r->f);
    free(r);
}

int resampler_max_out(const resampler *r) { return r->max_out; }
double resampler_lag(const resampler *r) { return r->lag; }

int resampler_process(resampler *r, const float *in, int n, float *out)
{
    if (r->f)
        return n > r->max_in ? OSCINE_E_RESAMPLE : fir_process(r->f, in, n, out, r->max_out);
    size_t idone = 0, odone = 0;
    soxr_error_t e = soxr_process(r->sx, in, (size_t)n, &idone, out, (size_t)r->max_out, &odone);
    if (e || (in && idone != (size_t)n))
        return OSCINE_E_RESAMPLE;
    if (r->drop > 0 && odone > 0) {
        size_t d = (size_t)r->drop < odone ? (size_t)r->drop : odone;
        memmove(out, out + d, sizeof(float) * (odone - d));
        odone -= d;
        r->drop -= (long)d;
    }
    return (int)odone;
}

int resampler_reset(resampler *r)
{
    if (r->f) {
        fir_reset(r->f);
        return 0;
    }
    if (soxr_clear(r->sx))
        return OSCINE_E_RESAMPLE;
    return warm_up(r);
}
