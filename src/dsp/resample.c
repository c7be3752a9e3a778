/* resample.c - libsoxr wrapper with a measured lag bound. */
#include "dsp/resample.h"

#include "base/error.h"

#include <math.h>
#include <soxr.h>
#include <stdlib.h>
#include <string.h>

/* Low-latency mode keeps 0..0.8 of the lower Nyquist (6.4 kHz at 16 kHz)
 * flat: wider costs filter length, i.e. latency (0.9 doubles it). */
#define LL_PASSBAND 0.8

struct resampler {
    soxr_t sx;
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

    /* Measure the lag: one sample at a time is the slowest delivery. Run long
     * enough to pass several of libsoxr's internal blocks. */
    int n = (int)(in_rate * 0.5) + 8192;
    double lag = 0;
    size_t done_in = 0, done_out = 0;
    float zero = 0, sink[64];
    for (int i = 0; i < n; i++) {
        size_t idone = 0, odone = 0;
        soxr_process(probe, &zero, 1, &idone, sink, 64, &odone);
        done_in += idone;
        done_out += odone;
        double l = (double)done_in * r->ratio - (double)done_out;
        if (l > lag)
            lag = l;
    }
    soxr_delete(probe);
    r->lag = lag;
    /* Enough room for a call's worth plus anything held back. */
    r->max_out = (int)ceil(max_in * r->ratio + lag) + 16;
    if (warm_up(r)) {
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
    free(r);
}

int resampler_max_out(const resampler *r) { return r->max_out; }
double resampler_lag(const resampler *r) { return r->lag; }

int resampler_process(resampler *r, const float *in, int n, float *out)
{
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
    if (soxr_clear(r->sx))
        return OSCINE_E_RESAMPLE;
    return warm_up(r);
}
