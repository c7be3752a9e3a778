/* resample.c - libsoxr wrapper with a measured lag bound. */
#include "dsp/resample.h"

#include "base/error.h"

#include <math.h>
#include <soxr.h>
#include <stdlib.h>

/* Low-latency mode keeps 0..0.8 of the lower Nyquist (6.4 kHz at 16 kHz)
 * flat: wider costs filter length, i.e. latency (0.9 doubles it). */
#define LL_PASSBAND 0.8

struct resampler {
    soxr_t sx;
    double ratio; /* out / in */
    int max_in, max_out;
    double lag;
};

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
    r->max_in = max_in;
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
    return (int)odone;
}

int resampler_reset(resampler *r)
{
    return soxr_clear(r->sx) ? OSCINE_E_RESAMPLE : 0;
}
