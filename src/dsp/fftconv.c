/* fftconv.c - uniformly partitioned overlap-save convolution (see fftconv.h).
 *
 * Spectra are kept split (real and imaginary parts in separate arrays, FFTW's
 * guru split interface) so the multiply-accumulate over the partitions is a
 * plain loop the compiler vectorises. Every spectrum is one slot of 2 * stride
 * floats, real part then imaginary part: FFTW's new-array execute of a split
 * plan needs the same distance between the two parts as the arrays it was
 * planned with (measured: other distances give wrong transforms), and the
 * same 64-byte alignment.
 */
#include "dsp/fftconv.h"

#include "base/error.h"
#include "dsp/fftlock.h"

#include <fftw3.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

struct fftconv {
    int B, N, bins;      /* block, FFT size 2B, N/2 + 1 */
    int stride;          /* floats between partitions: bins rounded up to 16 (64-byte
                          * aligned, as FFTW's new-array execute needs) */
    int P, P_used;       /* partitions allocated, partitions of the current IR */
    int max_ir;
    int head;            /* delay-line slot of the newest input spectrum */
    float dry, wet;      /* current gains */
    float dry_to, wet_to;/* targets */
    float *h;            /* (P, 2, stride) IR partition spectra */
    float *x;            /* (P, 2, stride) delay line of input spectra */
    float *y;            /* (2, stride) accumulated output spectrum */
    float *s;            /* (2, stride) scratch spectrum (c2r destroys its input) */
    float *tin;          /* (N) last 2B input samples; FFT input */
    float *tout;         /* (N) inverse FFT output */
    fftwf_plan fwd, inv;
};

static void *falloc(size_t n) { return fftwf_malloc(n ? n : 1); }

int fftconv_create(fftconv **out, const fftconv_config *cfg)
{
    *out = NULL;
    if (cfg->block < 1 || cfg->block > 8192)
        return err_set(OSCINE_E_ARG, "fftconv: block %d out of range 1..8192", cfg->block);
    if (cfg->max_ir < 1 || cfg->max_ir > 4194304)
        return err_set(OSCINE_E_ARG, "fftconv: IR length %d out of range 1..4194304",
                       cfg->max_ir);
    fftconv *c = calloc(1, sizeof *c);
    if (!c)
        return err_set(OSCINE_E_NOMEM, "fftconv: out of memory");
    c->B = cfg->block;
    c->N = 2 * c->B;
    c->bins = c->B + 1;
    c->stride = (c->bins + 15) / 16 * 16;
    c->max_ir = cfg->max_ir;
    c->P = (cfg->max_ir + c->B - 1) / c->B;
    const size_t slot = 2 * (size_t)c->stride, pb = (size_t)c->P * slot;
    c->h = falloc(sizeof(float) * pb);
    c->x = falloc(sizeof(float) * pb);
    c->y = falloc(sizeof(float) * slot);
    c->s = falloc(sizeof(float) * slot);
    c->tin = falloc(sizeof(float) * (size_t)c->N);
    c->tout = falloc(sizeof(float) * (size_t)c->N);
    if (!c->h || !c->x || !c->y || !c->s || !c->tin || !c->tout) {
        fftconv_destroy(c);
        return err_set(OSCINE_E_NOMEM, "fftconv: out of memory (%d partitions of %d)", c->P,
                       c->B);
    }
    fftw_iodim dim = {.n = c->N, .is = 1, .os = 1};
    fft_plan_lock();
    float *sre = c->s, *sim = c->s + c->stride;
    c->fwd = fftwf_plan_guru_split_dft_r2c(1, &dim, 0, NULL, c->tin, sre, sim, FFTW_ESTIMATE);
    c->inv = fftwf_plan_guru_split_dft_c2r(1, &dim, 0, NULL, sre, sim, c->tout, FFTW_ESTIMATE);
    fft_plan_unlock();
    if (!c->fwd || !c->inv) {
        fftconv_destroy(c);
        return err_set(OSCINE_E_NOMEM, "fftconv: FFTW could not plan size %d", c->N);
    }
    memset(c->h, 0, sizeof(float) * pb);
    c->P_used = 1;
    c->dry = c->dry_to = 1;
    c->wet = c->wet_to = 1;
    fftconv_reset(c);
    *out = c;
    return 0;
}

void fftconv_destroy(fftconv *c)
{
    if (!c)
        return;
    fft_plan_lock();
    if (c->fwd)
        fftwf_destroy_plan(c->fwd);
    if (c->inv)
        fftwf_destroy_plan(c->inv);
    fft_plan_unlock();
    fftwf_free(c->h);
    fftwf_free(c->x);
    fftwf_free(c->y);
    fftwf_free(c->s);
    fftwf_free(c->tin);
    fftwf_free(c->tout);
    free(c);
}

int fftconv_block(const fftconv *c) { return c->B; }
int fftconv_latency(const fftconv *c) { return 0; }

void fftconv_reset(fftconv *c)
{
    memset(c->x, 0, sizeof(float) * (size_t)c->P * 2 * (size_t)c->stride);
    memset(c->tin, 0, sizeof(float) * (size_t)c->N);
    c->head = 0;
    c->dry = c->dry_to;
    c->wet = c->wet_to;
}

int fftconv_set_ir(fftconv *c, const float *ir, int n)
{
    if (n < 1 || n > c->max_ir)
        return err_set(OSCINE_E_ARG, "fftconv: IR of %d samples, this convolver takes 1..%d",
                       n, c->max_ir);
    for (int i = 0; i < n; i++)
        if (!isfinite(ir[i]))
            return err_set(OSCINE_E_RANGE, "fftconv: IR sample %d is not finite", i);
    const int B = c->B, bins = c->bins;
    /* Partition p holds ir[pB .. pB + B - 1] in the first half of the FFT
     * frame; overlap-save keeps the second half of the circular result. The
     * 1/N of the inverse FFT is folded in here. tin is borrowed and restored. */
    float *save = c->tout;
    memcpy(save, c->tin, sizeof(float) * (size_t)c->N);
    const float scale = 1.0f / (float)c->N;
    c->P_used = (n + B - 1) / B;
    for (int p = 0; p < c->P; p++) {
        float *hr = c->h + (size_t)p * 2 * c->stride, *hi = hr + c->stride;
        if (p >= c->P_used) {
            memset(hr, 0, sizeof(float) * (size_t)bins);
            memset(hi, 0, sizeof(float) * (size_t)bins);
            continue;
        }
        memset(c->tin, 0, sizeof(float) * (size_t)c->N);
        int len = n - p * B < B ? n - p * B : B;
        for (int i = 0; i < len; i++)
            c->tin[i] = ir[(size_t)p * B + (size_t)i] * scale;
        fftwf_execute_split_dft_r2c(c->fwd, c->tin, hr, hi);
    }
    memcpy(c->tin, save, sizeof(float) * (size_t)c->N);
    return 0;
}

void fftconv_set_mix(fftconv *c, float dry, float wet)
{
    c->dry_to = isfinite(dry) ? dry : 0.0f;
    c->wet_to = isfinite(wet) ? wet : 0.0f;
}

void fftconv_process(fftconv *c, const float *in, float *out)
{
    const int B = c->B, bins = c->bins, P = c->P_used;
    /* tin = [previous block | this block] */
    memmove(c->tin, c->tin + B, sizeof(float) * (size_t)B);
    memcpy(c->tin + B, in, sizeof(float) * (size_t)B);
    c->head = c->head + 1 < c->P ? c->head + 1 : 0;
    float *xr0 = c->x + (size_t)c->head * 2 * c->stride;
    fftwf_execute_split_dft_r2c(c->fwd, c->tin, xr0, xr0 + c->stride);

    float *restrict yr = c->y, *restrict yi = c->y + c->stride;
    memset(c->y, 0, sizeof(float) * 2 * (size_t)c->stride);
    int slot = c->head;
    for (int p = 0; p < P; p++) {
        const float *restrict xr = c->x + (size_t)slot * 2 * c->stride;
        const float *restrict xi = xr + c->stride;
        const float *restrict hr = c->h + (size_t)p * 2 * c->stride;
        const float *restrict hi = hr + c->stride;
        for (int j = 0; j < bins; j++) {
            yr[j] += xr[j] * hr[j] - xi[j] * hi[j];
            yi[j] += xr[j] * hi[j] + xi[j] * hr[j];
        }
        slot = slot > 0 ? slot - 1 : c->P - 1;
    }
    memcpy(c->s, c->y, sizeof(float) * 2 * (size_t)c->stride);
    fftwf_execute_split_dft_c2r(c->inv, c->s, c->s + c->stride, c->tout);

    /* Output after the input is read: in and out may alias. */
    const float *x = c->tin + B, *y = c->tout + B;
    const float d0 = c->dry, w0 = c->wet;
    const float dd = (c->dry_to - d0) / (float)B, dw = (c->wet_to - w0) / (float)B;
    if (dd == 0 && dw == 0) {
        for (int i = 0; i < B; i++)
            out[i] = d0 * x[i] + w0 * y[i];
    } else {
        for (int i = 0; i < B; i++)
            out[i] = (d0 + dd * (float)(i + 1)) * x[i] + (w0 + dw * (float)(i + 1)) * y[i];
    }
    c->dry = c->dry_to;
    c->wet = c->wet_to;
}
