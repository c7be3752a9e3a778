/* test_ddsp_dsp.c - the DSP of the DDSP synthesizer: harmonic bank, filtered
 * noise, FFT convolution reverb, YIN pitch, A-weighted loudness and the
 * `oscine features` command.
 *
 * Golden tests compare against the .osw files in tests/fixtures/ddsp/, written by
 * tools/ddsp/make_fixtures.py from the PyTorch mirror (tools/ddsp/dsp.py),
 * which that script checks against literal transcriptions of DDSP's own
 * algorithms. The rest check properties against closed forms. */
#include "util/util.h"

#include "oscine.h"

#include "dsp/fftconv.h"
#include "dsp/filtnoise.h"
#include "dsp/harmonic.h"
#include "dsp/loudness.h"
#include "dsp/pitch.h"
#include "nn/weights.h"

#include <fftw3.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXDIR "tests/fixtures/ddsp/"

#include "util/count_alloc.h"

/* --------------------------------------------------- helpers */

static const float *tensor(const osw_file *w, const char *name, size_t *count)
{
    int i = osw_tensor_find(w, name);
    if (i < 0)
        fail_msg("%s: no tensor '%s'", osw_path(w), name);
    const char *nm;
    int nd;
    const int64_t *shape;
    assert_int_equal(osw_tensor_info(w, i, &nm, &nd, &shape), 0);
    const float *d;
    assert_int_equal(osw_get_f32(w, name, nd, shape, &d), 0);
    size_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= (size_t)shape[k];
    if (count)
        *count = n;
    return d;
}

static double meta_num(const osw_file *w, const char *key)
{
    const char *v = osw_meta(w, key);
    if (!v)
        fail_msg("%s: no metadata '%s'", osw_path(w), key);
    return atof(v);
}

static osw_file *fixture(const char *name)
{
    char path[256];
    snprintf(path, sizeof path, FIXDIR "%s.osw", name);
    osw_file *w;
    if (osw_open(&w, path))
        fail_msg("cannot open %s: %s", path, oscine_last_error());
    return w;
}

/* max |got - ref| / max |ref| */
static double max_rel_err(const float *ref, const float *got, size_t n)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        e = fmax(e, fabs((double)got[i] - ref[i]));
        r = fmax(r, fabs((double)ref[i]));
    }
    return r > 0 ? e / r : e;
}

/* samples in frame k's segment: t with floor(t * fr / sr) == k */
static int seg_start(long k, int sr, double fr) { return (int)ceil((double)k * sr / fr); }

/* --------------------------------------------------- harmonic bank */

/* Render F frames as DDSP does (the last frame pushed twice). */
static float *render_harmonic(harmonic *h, const float *f0, const float *amp,
                              const float *dist, int F, int H, size_t *n_out)
{
    size_t cap = (size_t)(F + 1) * (size_t)harmonic_max_segment(h);
    float *y = malloc(sizeof(float) * cap);
    size_t n = 0;
    for (int k = 0; k <= F; k++) {
        int j = k < F ? k : F - 1;
        n += (size_t)harmonic_process(h, f0[j], amp[j], dist + (size_t)j * H, y + n);
    }
    *n_out = n;
    return y;
}

static void harmonic_golden(void **state)
{
    const char *names[] = {"harmonic_48k_controls", "harmonic_44k_frac", "harmonic_16k"};
    for (int c = 0; c < 3; c++) {
        osw_file *w = fixture(names[c]);
        const int sr = (int)meta_num(w, "sample_rate"), H = (int)meta_num(w, "n_harmonics");
        const int F = (int)meta_num(w, "frames");
        const double fr = meta_num(w, "frame_rate");
        size_t nref;
        const float *f0 = tensor(w, "f0", NULL), *amp = tensor(w, "amp", NULL);
        const float *dist = tensor(w, "dist", NULL), *ref = tensor(w, "audio", &nref);

        if (osw_tensor_find(w, "amp_logit") >= 0) {
            /* DDSP's scaling of the decoder outputs */
            const float *al = tensor(w, "amp_logit", NULL), *dl = tensor(w, "dist_logits", NULL);
            const double model_rate = meta_num(w, "model_rate");
            float a, d[HARMONIC_MAX];
            double worst = 0;
            for (int k = 0; k < F; k++) {
                harmonic_controls(al[k], dl + (size_t)k * H, H, f0[k], model_rate, &a, d);
                worst = fmax(worst, fabs(a - amp[k]) / amp[k]);
                for (int i = 0; i < H; i++) {
                    float r = dist[(size_t)k * H + i];
                    if ((i + 1) * (double)f0[k] >= model_rate / 2)
                        assert_true(d[i] == 0 && r == 0);
                    worst = fmax(worst, fabs(d[i] - r) / fmax(r, 1e-6));
                }
            }
            print_message("%s: harmonic_controls max rel err %.2e\n", names[c], worst);
            assert_true(worst < 1e-5);
        }

        harmonic *h;
        harmonic_config cfg = {.sample_rate = sr, .frame_rate = fr, .n_harmonics = H};
        assert_int_equal(harmonic_create(&h, &cfg), 0);
        size_t n;
        float *y = render_harmonic(h, f0, amp, dist, F, H, &n);
        assert_int_equal(n, nref);
        double e = max_rel_err(ref, y, n);
        print_message("%s: %zu samples at %d Hz, %g frames/s: max rel err %.2e (%.1f dB)\n",
                      names[c], n, sr, fr, e, err_db(ref, y, n));
        assert_true(e < 1e-4);
        free(y);
        harmonic_destroy(h);
        osw_close(w);
    }
}

/* One minute of a held note at 48 kHz against the closed form: no drift, no
 * click at any of the 15000 frame boundaries. */
static void harmonic_held_note(void **state)
{
    const int sr = 48000, H = 8;
    const double fr = 250;
    const float f0 = 261.6256f, amp = 0.5f;
    float dist[H];
    memset(dist, 0, sizeof dist);
    dist[0] = 0.6f;
    dist[6] = 0.4f; /* the 7th harmonic: any phase error shows 7 times larger */
    harmonic *h;
    harmonic_config cfg = {.sample_rate = sr, .frame_rate = fr, .n_harmonics = H};
    assert_int_equal(harmonic_create(&h, &cfg), 0);
    float *seg = malloc(sizeof(float) * (size_t)harmonic_max_segment(h));
    const long frames = 60 * 250;
    long t = 0;
    double worst = 0, worst_last = 0, max_step = 0;
    float prev = 0;
    for (long k = 0; k <= frames; k++) {
        int n = harmonic_process(h, f0, amp, dist, seg);
        for (int i = 0; i < n; i++, t++) {
            /* phase(t) = (t + 1) f0 / sr cycles (inclusive sum), exactly */
            long double ph = fmodl((long double)(t + 1) * f0, (long double)sr) / sr;
            double ref = amp * (dist[0] * sin(2 * M_PI * (double)ph) +
                                dist[6] * sin(2 * M_PI * (double)fmodl(7 * ph, 1.0L)));
            double e = fabs(seg[i] - ref);
            worst = fmax(worst, e);
            if (t >= 59L * sr)
                worst_last = fmax(worst_last, e);
            if (t > 0)
                max_step = fmax(max_step, fabs(seg[i] - prev));
            prev = seg[i];
        }
    }
    assert_int_equal(t, 60L * sr);
    /* the largest step between samples of the closed form */
    double bound = amp * 2 * M_PI * (dist[0] * f0 + dist[6] * 7 * f0) / sr;
    print_message("60 s held note: max error %.2e (last second %.2e), max step %.4f "
                  "(bound %.4f)\n", worst, worst_last, max_step, bound);
    assert_true(worst < 1e-6);
    assert_true(max_step <= bound * 1.0001);
    free(seg);
    harmonic_destroy(h);
}

static void harmonic_above_nyquist(void **state)
{
    const int sr = 16000, H = 20;
    harmonic *h;
    harmonic_config cfg = {.sample_rate = sr, .frame_rate = 100, .n_harmonics = H};
    assert_int_equal(harmonic_create(&h, &cfg), 0);
    float *seg = malloc(sizeof(float) * (size_t)harmonic_max_segment(h));
    float dist[H];

    /* f0 3000 Hz: harmonics 3.. are at or above 8 kHz and must be silent */
    for (int i = 0; i < H; i++)
        dist[i] = i >= 2 ? 1.0f : 0.0f;
    for (int k = 0; k < 20; k++) {
        int n = harmonic_process(h, 3000, 1, dist, seg);
        for (int i = 0; i < n; i++)
            assert_true(seg[i] == 0.0f);
    }

    /* harmonic 3 of a glide 2000 -> 3500 Hz: audible until it reaches 8 kHz,
     * silent from the sample it does */
    harmonic_reset(h);
    for (int i = 0; i < H; i++)
        dist[i] = i == 2 ? 1.0f : 0.0f;
    long t = 0;
    int loud_before = 0;
    assert_int_equal(harmonic_process(h, 2000, 1, dist, seg), 0); /* frame 0: nothing yet */
    int n = harmonic_process(h, 3500, 1, dist, seg);               /* frame 0 -> 1 */
    assert_int_equal(n, 160);
    for (int i = 0; i < n; i++, t++) {
        double f = 2000 + 1500 * ((double)t * 100 / sr);
        if (3 * f >= sr / 2.0)
            assert_true(seg[i] == 0.0f);
        else if (fabs(seg[i]) > 0.5f)
            loud_before = 1;
    }
    assert_true(loud_before);

    /* the control helper drops them too and renormalises what is left */
    float logits[H], a, d[H];
    for (int i = 0; i < H; i++)
        logits[i] = (float)i * 0.1f;
    harmonic_controls(0, logits, H, 3000, 16000, &a, d);
    double sum = 0;
    for (int i = 0; i < H; i++) {
        if (i >= 2)
            assert_true(d[i] == 0.0f);
        sum += d[i];
    }
    assert_true(fabs(sum - 1) < 1e-6);
    assert_true(fabs(a - ddsp_exp_sigmoid(0)) < 1e-7);
    /* exp_sigmoid(0) = 2 * 0.5^ln(10) + 1e-7 */
    assert_true(fabs(ddsp_exp_sigmoid(0) - (2 * pow(0.5, M_LN10) + 1e-7)) < 1e-7);
    assert_true(fabs(ddsp_exp_sigmoid(-40) - 1e-7) < 1e-12);
    assert_true(fabs(ddsp_exp_sigmoid(40) - 2.0) < 1e-6);
    /* f0 above the model's Nyquist: nothing left, all zero (not NaN) */
    harmonic_controls(0, logits, H, 9000, 16000, &a, d);
    for (int i = 0; i < H; i++)
        assert_true(d[i] == 0.0f);
    free(seg);
    harmonic_destroy(h);
}

/* --------------------------------------------------- filtered noise */

static void noise_generator(void **state)
{
    /* the first samples for seed 1, as tools/ddsp/dsp.py noise_uniform gives */
    const float want[5] = {0.13312304f, 0.49156344f, 0.9420054f, -0.11128163f, -0.1114707f};
    float got[5], part[3];
    filtnoise_uniform(1, 0, got, 5);
    for (int i = 0; i < 5; i++)
        assert_true(fabsf(got[i] - want[i]) < 1e-7f);
    filtnoise_uniform(1, 2, part, 3); /* counter-based: any index directly */
    assert_memory_equal(part, got + 2, sizeof part);
    /* uniform on [-1, 1): mean 0, variance 1/3 */
    const int n = 1 << 18;
    float *x = malloc(sizeof(float) * n);
    filtnoise_uniform(42, 0, x, n);
    double m = 0, v = 0;
    for (int i = 0; i < n; i++) {
        assert_true(x[i] >= -1.0f && x[i] < 1.0f);
        m += x[i];
        v += (double)x[i] * x[i];
    }
    m /= n;
    v /= n;
    assert_true(fabs(m) < 0.005 && fabs(v - 1.0 / 3) < 0.005);
    free(x);
}

static void filtnoise_golden(void **state)
{
    const char *names[] = {"filtnoise_16k", "filtnoise_48k", "filtnoise_44k_frac"};
    for (int c = 0; c < 3; c++) {
        osw_file *w = fixture(names[c]);
        const int sr = (int)meta_num(w, "sample_rate"), nb = (int)meta_num(w, "n_bands");
        const int F = (int)meta_num(w, "frames");
        const double fr = meta_num(w, "frame_rate"), top = meta_num(w, "band_top_hz");
        size_t nref;
        const float *mags = tensor(w, "mags", NULL), *ref = tensor(w, "audio", &nref);
        filtnoise *f;
        filtnoise_config cfg = {.sample_rate = sr, .n_bands = nb, .band_top_hz = top,
                                .max_block = (int)ceil(sr / fr),
                                .seed = (uint64_t)meta_num(w, "seed")};
        assert_int_equal(filtnoise_create(&f, &cfg), 0);
        float *y = malloc(sizeof(float) * nref);
        for (int k = 0; k < F; k++) {
            int a = seg_start(k, sr, fr), b = seg_start(k + 1, sr, fr);
            filtnoise_process(f, mags + (size_t)k * nb, y + a, b - a);
        }
        assert_int_equal(seg_start(F, sr, fr), nref);
        double e = max_rel_err(ref, y, nref);
        print_message("%s: FIR %d taps, gain %.4f: max rel err %.2e (%.1f dB)\n", names[c],
                      filtnoise_ir_length(f), filtnoise_gain(f), e, err_db(ref, y, nref));
        assert_true(e < 1e-4);
        free(y);
        filtnoise_destroy(f);
        osw_close(w);
    }
}

/* |DFT| of an FIR at frequency hz */
static double fir_mag(const float *ir, int L, double hz, int sr)
{
    double re = 0, im = 0;
    for (int m = 0; m < L; m++) {
        re += ir[m] * cos(2 * M_PI * hz * m / sr);
        im -= ir[m] * sin(2 * M_PI * hz * m / sr);
    }
    return sqrt(re * re + im * im);
}

/* The FIR's response matches the requested bands (a smooth envelope; the
 * Hann window smooths sharp ones), is linear phase, and is zero above the
 * top band at higher output rates. Then the noise it shapes has that PSD. */
static void filtnoise_response(void **state)
{
    const int rates[3] = {8000, 16000, 48000}; /* 8 kHz: the bands above 4 kHz left out */
    for (int r = 0; r < 3; r++) {
        const int sr = rates[r], nb = 65;
        filtnoise *f;
        filtnoise_config cfg = {.sample_rate = sr, .n_bands = nb, .band_top_hz = 8000,
                                .max_block = 1024, .seed = 3};
        assert_int_equal(filtnoise_create(&f, &cfg), 0);
        const int L = filtnoise_ir_length(f);
        assert_int_equal(L, 128 * sr / 16000);
        assert_int_equal(filtnoise_latency(f), L / 2);
        float mags[65], *ir = malloc(sizeof(float) * (size_t)L);
        for (int b = 0; b < nb; b++) {
            double x = (double)b / (nb - 1);
            mags[b] = (float)(0.05 + 0.5 * exp(-40 * (x - 0.3) * (x - 0.3)) + 0.2 * x);
        }
        filtnoise_design(f, mags, ir);
        assert_true(ir[0] == 0.0f);
        for (int m = 1; m < L / 2; m++)
            assert_true(fabsf(ir[L / 2 + m] - ir[L / 2 - m]) < 1e-6f);
        double worst = 0;
        for (int b = 1; b < nb - 1 && b * 8000.0 / (nb - 1) < sr / 2.0; b++) {
            double got = fir_mag(ir, L, b * 8000.0 / (nb - 1), sr);
            worst = fmax(worst, fabs(20 * log10(got / mags[b])));
        }
        double above = 0; /* off the design grid too: 97 Hz steps */
        if (sr > 16000)
            for (double hz = 9000; hz < sr / 2.0; hz += 97)
                above = fmax(above, fir_mag(ir, L, hz, sr));
        print_message("%d Hz: FIR response vs bands: worst %.3f dB; above 8 kHz max %.1f dB\n",
                      sr, worst, above > 0 ? 20 * log10(above) : -400.0);
        assert_true(worst < 0.1);
        if (sr > 16000)
            assert_true(above < 0.003); /* the top of the band is 0.25: < -40 dB below */

        /* PSD of the shaped noise (Welch, Hann 512, hop 256) against
         * E|Y_k|^2 = (g^2 / 3) |H(f_k)|^2 sum w^2: the same in-band level at
         * every rate */
        const int n = 1 << 17, nfft = 512, hop = 256;
        float *y = malloc(sizeof(float) * n), *fb = fftwf_malloc(sizeof(float) * nfft);
        fftwf_complex *fs = fftwf_malloc(sizeof(fftwf_complex) * (nfft / 2 + 1));
        fftwf_plan plan = fftwf_plan_dft_r2c_1d(nfft, fb, fs, FFTW_ESTIMATE);
        for (int i = 0; i < n; i += 1024)
            filtnoise_process(f, mags, y + i, 1024);
        double *psd = calloc(nfft / 2 + 1, sizeof(double)), wsum2 = 0;
        int segs = 0;
        for (int s0 = 0; s0 + nfft <= n; s0 += hop, segs++) {
            for (int i = 0; i < nfft; i++)
                fb[i] = y[s0 + i] * (float)(0.5 - 0.5 * cos(2 * M_PI * i / nfft));
            fftwf_execute(plan);
            for (int k = 0; k <= nfft / 2; k++)
                psd[k] += (double)fs[k][0] * fs[k][0] + (double)fs[k][1] * fs[k][1];
        }
        for (int i = 0; i < nfft; i++)
            wsum2 += pow(0.5 - 0.5 * cos(2 * M_PI * i / nfft), 2);
        double pworst = 0;
        const double g = filtnoise_gain(f);
        for (int k = 4; k < nfft / 2; k += 4) {
            double hz = (double)k * sr / nfft;
            if (hz > 7500)
                break;
            double want = g * g / 3.0 * pow(fir_mag(ir, L, hz, sr), 2);
            double got = psd[k] / segs / wsum2;
            pworst = fmax(pworst, fabs(10 * log10(got / want)));
        }
        print_message("%d Hz: noise PSD vs |H|^2: worst %.2f dB\n", sr, pworst);
        assert_true(pworst < 1.0);
        fftwf_destroy_plan(plan);
        fftwf_free(fb);
        fftwf_free(fs);
        free(psd);
        free(y);
        free(ir);
        filtnoise_destroy(f);
    }
}

/* --------------------------------------------------- reverb */

static void reverb_golden(void **state)
{
    osw_file *w = fixture("reverb");
    size_t n, m;
    const float *x = tensor(w, "input", &n), *ir = tensor(w, "ir", &m);
    const float *ref = tensor(w, "audio", NULL);
    const int B = 64;
    fftconv *c;
    fftconv_config cfg = {.block = B, .max_ir = 2000};
    assert_int_equal(fftconv_create(&c, &cfg), 0);
    assert_int_equal(fftconv_set_ir(c, ir, (int)m), 0);
    fftconv_set_mix(c, (float)meta_num(w, "dry"), (float)meta_num(w, "wet"));
    fftconv_reset(c); /* start at the mix, no ramp */
    size_t padded = (n + B - 1) / B * B;
    float *in = calloc(padded, sizeof(float)), *y = malloc(sizeof(float) * padded);
    memcpy(in, x, sizeof(float) * n);
    for (size_t i = 0; i < padded; i += B)
        fftconv_process(c, in + i, y + i);
    double e = err_db(ref, y, n);
    print_message("reverb vs PyTorch: %.1f dB\n", e);
    assert_true(e < -100);
    free(in);
    free(y);
    fftconv_destroy(c);
    osw_close(w);
}

static void reverb_direct(void **state)
{
    static const int irs[] = {1, 7, 64, 65, 1000, 4099};
    static const int blocks[] = {1, 16, 64, 100, 256, 1024};
    uint64_t seed = 11;
    double worst = -400;
    for (size_t a = 0; a < sizeof irs / sizeof *irs; a++)
        for (size_t b = 0; b < sizeof blocks / sizeof *blocks; b++) {
            const int m = irs[a], B = blocks[b];
            const int n = (3 * m / B + 4) * B; /* past the IR's tail, whole blocks */
            float *ir = malloc(sizeof(float) * (size_t)m), *x = malloc(sizeof(float) * (size_t)n);
            float *y = malloc(sizeof(float) * (size_t)n), *ref = malloc(sizeof(float) * (size_t)n);
            for (int i = 0; i < m; i++)
                ir[i] = urand(&seed) * expf(-3.0f * i / m);
            for (int i = 0; i < n; i++)
                x[i] = urand(&seed);
            for (int i = 0; i < n; i++) {
                double s = 0;
                for (int j = 0; j < m && j <= i; j++)
                    s += (double)ir[j] * x[i - j];
                ref[i] = (float)s;
            }
            fftconv *c;
            fftconv_config cfg = {.block = B, .max_ir = m + 5 * B}; /* spare partitions */
            assert_int_equal(fftconv_create(&c, &cfg), 0);
            assert_int_equal(fftconv_latency(c), 0);
            assert_int_equal(fftconv_set_ir(c, ir, m), 0);
            fftconv_set_mix(c, 0, 1);
            fftconv_reset(c);
            memcpy(y, x, sizeof(float) * (size_t)n);
            for (int i = 0; i < n; i += B) /* in place */
                fftconv_process(c, y + i, y + i);
            double e = err_db(ref, y, (size_t)n);
            worst = fmax(worst, e);
            if (e > -100)
                fail_msg("IR %d, block %d: %.1f dB from direct convolution", m, B, e);
            free(ir);
            free(x);
            free(y);
            free(ref);
            fftconv_destroy(c);
        }
    print_message("fftconv vs direct convolution: worst %.1f dB\n", worst);

    /* a 3 s IR at 48 kHz in blocks of 256, checked at scattered samples */
    const int m = 3 * 48000, B = 256, n = (m / B + 8) * B;
    float *ir = malloc(sizeof(float) * m), *x = malloc(sizeof(float) * n);
    float *y = malloc(sizeof(float) * n);
    for (int i = 0; i < m; i++)
        ir[i] = urand(&seed) * expf(-6.0f * i / m) * 0.01f;
    for (int i = 0; i < n; i++)
        x[i] = urand(&seed);
    fftconv *c;
    fftconv_config cfg = {.block = B, .max_ir = m};
    assert_int_equal(fftconv_create(&c, &cfg), 0);
    assert_int_equal(fftconv_set_ir(c, ir, m), 0);
    fftconv_set_mix(c, 0.5f, 2.0f);
    fftconv_reset(c);
    for (int i = 0; i < n; i += B)
        fftconv_process(c, x + i, y + i);
    double e2 = 0, r2 = 0;
    for (int i = 0; i < n; i += 97) {
        double s = 0;
        for (int j = 0; j < m && j <= i; j++)
            s += (double)ir[j] * x[i - j];
        double want = 0.5 * x[i] + 2.0 * s;
        e2 += (y[i] - want) * (y[i] - want);
        r2 += want * want;
    }
    double e = 10 * log10(e2 / r2);
    print_message("3 s IR at 48 kHz, block 256: %.1f dB\n", e);
    assert_true(e < -100);
    free(ir);
    free(x);
    free(y);
    fftconv_destroy(c);
}

/* A change of mix ramps over one block instead of jumping. */
static void reverb_mix_ramp(void **state)
{
    const int B = 32;
    fftconv *c;
    fftconv_config cfg = {.block = B, .max_ir = 1};
    assert_int_equal(fftconv_create(&c, &cfg), 0);
    float one = 1, x[32], y[32];
    assert_int_equal(fftconv_set_ir(c, &one, 1), 0); /* wet path = input */
    fftconv_set_mix(c, 0, 0);
    fftconv_reset(c);
    for (int i = 0; i < B; i++)
        x[i] = 1;
    fftconv_process(c, x, y);
    for (int i = 0; i < B; i++)
        assert_true(fabsf(y[i]) < 1e-6f);
    fftconv_set_mix(c, 0, 1);
    fftconv_process(c, x, y);
    for (int i = 0; i < B; i++)
        assert_true(fabsf(y[i] - (float)(i + 1) / B) < 1e-5f);
    fftconv_process(c, x, y);
    for (int i = 0; i < B; i++)
        assert_true(fabsf(y[i] - 1) < 1e-5f);
    float bad = NAN;
    assert_int_equal(fftconv_set_ir(c, &bad, 1), OSCINE_E_RANGE);
    assert_int_equal(fftconv_set_ir(c, x, 2), OSCINE_E_ARG); /* longer than max_ir */
    assert_int_equal(fftconv_set_ir(c, x, 0), OSCINE_E_ARG);
    fftconv_destroy(c);
}

/* --------------------------------------------------- pitch */

static void harmonic_tone(float *x, int n, double f0, int sr, uint64_t *seed, int pure)
{
    double ph[64];
    for (int h = 0; h < 64; h++)
        ph[h] = M_PI * (1 + urand(seed));
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int h = 1; h <= (pure ? 1 : 64) && h * f0 < sr / 2.0; h++)
            s += sin(2 * M_PI * h * f0 * i / sr + ph[h - 1]) / h;
        x[i] = (float)(0.3 * s);
    }
}

static void pitch_synthetic(void **state)
{
    const int sr = 16000, hop = 160, n = 16000;
    pitch *p;
    pitch_config cfg = {.sample_rate = sr, .hop = hop};
    assert_int_equal(pitch_create(&p, &cfg), 0);
    assert_int_equal(pitch_frame_length(p), 1024);
    assert_int_equal(pitch_latency(p), 512);
    float *x = malloc(sizeof(float) * n);
    uint64_t seed = 3;
    double worst = 0, worst_f = 0, min_conf = 1;
    for (int pure = 0; pure < 2; pure++)
        for (int i = 0; i < 40; i++) {
            double f0 = 50 * pow(1500.0 / 50, i / 39.0);
            harmonic_tone(x, n, f0, sr, &seed, pure);
            pitch_reset(p);
            for (int k = 0; k < n / hop; k++) {
                pitch_frame fr;
                pitch_process(p, x + k * hop, &fr);
                if ((k + 1) * hop < pitch_frame_length(p))
                    continue; /* the frame still holds zeros from before the tone */
                double cents = 1200 * log2(fr.f0_hz / f0);
                if (fabs(cents) > worst)
                    worst = fabs(cents), worst_f = f0;
                min_conf = fmin(min_conf, fr.confidence);
            }
        }
    print_message("YIN on tones 50..1500 Hz: worst %.3f cents (at %.1f Hz), min confidence "
                  "%.3f\n", worst, worst_f, min_conf);
    assert_true(worst < 10);
    assert_true(min_conf > 0.9);

    /* bright tones (equal harmonics up to Nyquist) whose period falls
     * between two lags: the dip is about a lag wide, the sampled d' there
     * reads ~0.4 while twice the period lands on a lag and reads 0; the
     * tracker must not fall an octave */
    const double periods[] = {10.5, 11.5, 12.5, 14.5, 20.5, 33.5, 80.5, 160.5};
    for (int j = 0; j < 8; j++) {
        const double f0 = sr / periods[j];
        for (int i = 0; i < n; i++) {
            double v = 0;
            for (int h = 1; h * f0 < sr / 2.0 && h <= 64; h++)
                v += sin(2 * M_PI * h * f0 * i / sr + h * h);
            x[i] = (float)(0.05 * v);
        }
        pitch_reset(p);
        pitch_frame fr;
        for (int k = 0; k < n / hop; k++) {
            pitch_process(p, x + k * hop, &fr);
            if ((k + 1) * hop >= pitch_frame_length(p) && fabs(1200 * log2(fr.f0_hz / f0)) > 10)
                fail_msg("bright tone at %.2f Hz (period %.1f lags): frame %d reads %.2f Hz", f0,
                         periods[j], k, fr.f0_hz);
        }
    }
    free(x);
    pitch_destroy(p);
}

static void pitch_unvoiced(void **state)
{
    const int sr = 16000, hop = 160, n = 32000;
    pitch *p;
    pitch_config cfg = {.sample_rate = sr, .hop = hop};
    assert_int_equal(pitch_create(&p, &cfg), 0);
    float *x = malloc(sizeof(float) * n);
    filtnoise_uniform(77, 0, x, n);
    double sum = 0, mx = 0;
    int count = 0;
    for (int k = 0; k < n / hop; k++) {
        pitch_frame fr;
        pitch_process(p, x + k * hop, &fr);
        if ((k + 1) * hop < pitch_frame_length(p))
            continue;
        sum += fr.confidence;
        mx = fmax(mx, fr.confidence);
        count++;
    }
    print_message("white noise: mean confidence %.3f, max %.3f\n", sum / count, mx);
    assert_true(sum / count < 0.25);
    assert_true(mx < 0.4);
    /* silence and NaN: f0 0, confidence 0 */
    memset(x, 0, sizeof(float) * n);
    pitch_frame fr;
    for (int k = 0; k < 20; k++) { /* the noise leaves the frame after 7 hops */
        pitch_process(p, x + k * hop, &fr);
        if (k >= 7)
            assert_true(fr.f0_hz == 0 && fr.confidence == 0);
    }
    x[5] = NAN;
    pitch_process(p, x, &fr);
    assert_true(fr.f0_hz == 0 && fr.confidence == 0);
    free(x);
    pitch_destroy(p);
}

/* --------------------------------------------------- loudness */

/* Frames centred on multiples of hop, as `oscine features` and DDSP's
 * padding='center' give them. */
static void loudness_centered(loudness *l, int hop, const float *x, int n, float *db, int frames)
{
    const int D = loudness_latency(l);
    const int pad = (hop - D % hop) % hop, skip = (D + pad) / hop - 1;
    const int total = pad + n + (skip + 1) * hop;
    float *buf = calloc((size_t)total, sizeof(float));
    memcpy(buf + pad, x, sizeof(float) * (size_t)n);
    loudness_reset(l);
    for (int k = 0; k < frames + skip; k++) {
        float v = loudness_process(l, buf + (size_t)k * hop);
        if (k >= skip)
            db[k - skip] = v;
    }
    free(buf);
}

static void loudness_golden(void **state)
{
    const char *names[] = {"loudness_sine1k", "loudness_noise", "loudness_chirp"};
    for (int c = 0; c < 3; c++) {
        osw_file *w = fixture(names[c]);
        size_t n;
        const float *x = tensor(w, "input", &n);
        for (int hop = 64; hop <= 160; hop += 96) {
            char key[32];
            snprintf(key, sizeof key, "loudness_db_%d", hop);
            size_t frames;
            const float *ref = tensor(w, key, &frames);
            assert_int_equal(frames, (n + hop - 1) / hop);
            loudness *l;
            loudness_config cfg = {.sample_rate = 16000, .n_fft = 512, .hop = hop};
            assert_int_equal(loudness_create(&l, &cfg), 0);
            float *db = malloc(sizeof(float) * frames);
            loudness_centered(l, hop, x, (int)n, db, (int)frames);
            double worst = 0;
            for (size_t i = 0; i < frames; i++)
                worst = fmax(worst, fabs(db[i] - ref[i]));
            print_message("%s hop %d: %zu frames, max |dB error| %.2e\n", names[c], hop, frames,
                          worst);
            assert_true(worst < 0.01);
            free(db);
            loudness_destroy(l);
        }
        osw_close(w);
    }
}

static void loudness_reference(void **state)
{
    /* the A-curve: 0 dB at 1 kHz, IEC 61672 table values elsewhere */
    assert_true(fabs(loudness_a_weighting_db(1000)) < 0.01);
    assert_true(fabs(loudness_a_weighting_db(100) - -19.1) < 0.1);
    assert_true(fabs(loudness_a_weighting_db(10000) - -2.5) < 0.1);
    assert_true(loudness_a_weighting_db(0) == -80);

    /* 1 kHz at -20 dBFS (amplitude 0.1) sits on bin 32 of a 512-point frame at
     * 16 kHz: the Hann window puts A N / 4 there and A N / 8 in each
     * neighbour, so P = sum_k |X_k|^2 10^(A(f_k)/10) / 257 in closed form */
    const int sr = 16000, N = 512, hop = 160, n = 16000;
    loudness *l;
    loudness_config cfg = {.sample_rate = sr, .hop = hop};
    assert_int_equal(loudness_create(&l, &cfg), 0);
    assert_int_equal(loudness_latency(l), 256);
    float *x = malloc(sizeof(float) * n);
    for (int i = 0; i < n; i++)
        x[i] = (float)(0.1 * sin(2 * M_PI * 1000.0 * i / sr + 0.3));
    const double A = 0.1, peak = A * N / 4;
    double p = 0;
    for (int k = 31; k <= 33; k++) {
        double mag = k == 32 ? peak : peak / 2;
        p += mag * mag * pow(10, loudness_a_weighting_db(k * (double)sr / N) / 10);
    }
    const double want = 10 * log10(p / (N / 2 + 1));
    float got = 0;
    for (int k = 0; k < n / hop; k++)
        got = loudness_process(l, x + k * hop);
    print_message("1 kHz sine at -20 dBFS: %.4f dB (closed form %.4f dB)\n", got, want);
    assert_true(fabs(got - want) < 0.01);
    assert_true(fabs(want - -0.19) < 0.02);
    /* silence and NaN sit on the -80 dB floor */
    memset(x, 0, sizeof(float) * n);
    for (int k = 0; k < 4; k++)
        got = loudness_process(l, x + k * hop);
    assert_true(got == -80.0f);
    x[3] = NAN;
    assert_true(loudness_process(l, x) == -80.0f);
    free(x);
    loudness_destroy(l);
}

/* --------------------------------------------------- robustness */

static void bad_input_and_configs(void **state)
{
    harmonic *h;
    harmonic_config hc = {.sample_rate = 48000, .frame_rate = 250, .n_harmonics = 101};
    assert_int_equal(harmonic_create(&h, &hc), OSCINE_E_ARG);
    assert_null(h);
    hc.n_harmonics = 100;
    hc.frame_rate = 0;
    assert_int_equal(harmonic_create(&h, &hc), OSCINE_E_ARG);
    hc.frame_rate = 250;
    assert_int_equal(harmonic_create(&h, &hc), 0);
    float dist[100], out[256];
    for (int i = 0; i < 100; i++)
        dist[i] = i == 3 ? NAN : 0.01f;
    harmonic_process(h, NAN, 1, dist, out);
    int n = harmonic_process(h, 440, INFINITY, dist, out);
    n += harmonic_process(h, 440, 1, dist, out);
    assert_int_equal(n, 192 * 2);
    for (int i = 0; i < 192; i++)
        assert_true(isfinite(out[i]));
    harmonic_destroy(h);

    filtnoise *f;
    filtnoise_config fc = {.sample_rate = 16000, .n_bands = 1, .max_block = 64};
    assert_int_equal(filtnoise_create(&f, &fc), OSCINE_E_ARG);
    fc.n_bands = 65;
    fc.band_top_hz = NAN;
    assert_int_equal(filtnoise_create(&f, &fc), OSCINE_E_ARG);
    fc.band_top_hz = 9000; /* above Nyquist: allowed, those bands are left out */
    assert_int_equal(filtnoise_create(&f, &fc), 0);
    filtnoise_destroy(f);
    fc.band_top_hz = 0;
    assert_int_equal(filtnoise_create(&f, &fc), 0);
    float mags[65];
    for (int i = 0; i < 65; i++)
        mags[i] = i == 7 ? NAN : i == 8 ? -1 : 1;
    filtnoise_process(f, mags, out, 64);
    for (int i = 0; i < 64; i++)
        assert_true(isfinite(out[i]));
    filtnoise_destroy(f);

    fftconv *c;
    fftconv_config cc = {.block = 0, .max_ir = 10};
    assert_int_equal(fftconv_create(&c, &cc), OSCINE_E_ARG);
    pitch *p;
    pitch_config pc = {.sample_rate = 16000, .hop = 160, .fmin = 1000, .fmax = 1100};
    assert_int_equal(pitch_create(&p, &pc), OSCINE_E_ARG);
    loudness *l;
    loudness_config lc = {.sample_rate = 16000, .n_fft = 511, .hop = 160};
    assert_int_equal(loudness_create(&l, &lc), OSCINE_E_ARG);
}

/* process() never allocates */
static void no_allocation(void **state)
{
    if (!COUNT_MALLOC)
        skip();
    allocations = 0;
    counting = 1;
    char *volatile probe = strdup("probe");
    counting = 0;
    free(probe);
    assert_int_equal(allocations, 1);

    harmonic *h;
    filtnoise *f;
    fftconv *c;
    pitch *p;
    loudness *l;
    harmonic_config hc = {.sample_rate = 48000, .frame_rate = 250, .n_harmonics = 100};
    filtnoise_config fc = {.sample_rate = 48000, .n_bands = 65, .band_top_hz = 8000,
                           .max_block = 192, .seed = 1};
    fftconv_config cc = {.block = 192, .max_ir = 48000};
    pitch_config pc = {.sample_rate = 16000, .hop = 64};
    loudness_config lc = {.sample_rate = 16000, .hop = 64};
    assert_int_equal(harmonic_create(&h, &hc), 0);
    assert_int_equal(filtnoise_create(&f, &fc), 0);
    assert_int_equal(fftconv_create(&c, &cc), 0);
    assert_int_equal(pitch_create(&p, &pc), 0);
    assert_int_equal(loudness_create(&l, &lc), 0);
    float *ir = calloc(48000, sizeof(float));
    ir[100] = 0.5f;
    assert_int_equal(fftconv_set_ir(c, ir, 48000), 0);
    float dist[100], mags[65], buf[192], x[64] = {0};
    for (int i = 0; i < 100; i++)
        dist[i] = 0.01f;
    for (int i = 0; i < 65; i++)
        mags[i] = 0.1f;
    for (int i = 0; i < 64; i++)
        x[i] = sinf(0.1f * i);
    pitch_frame pf;
    counting = 1;
    for (int k = 0; k < 20; k++) {
        harmonic_process(h, 220, 0.5f, dist, buf);
        filtnoise_process(f, mags, buf, 192);
        fftconv_process(c, buf, buf);
        fftconv_set_mix(c, 1, 0.3f);
        pitch_process(p, x, &pf);
        loudness_process(l, x);
    }
    harmonic_reset(h);
    filtnoise_reset(f);
    fftconv_reset(c);
    pitch_reset(p);
    loudness_reset(l);
    counting = 0;
    assert_int_equal(allocations, 1);
    free(ir);
    harmonic_destroy(h);
    filtnoise_destroy(f);
    fftconv_destroy(c);
    pitch_destroy(p);
    loudness_destroy(l);
}

/* --------------------------------------------------- oscine features */

static void features_cli(void **state)
{
    const char *d = tmpdir_make();
    char in[256], csv[256], out[4096], err[4096];
    snprintf(in, sizeof in, "%s/a.wav", d);
    snprintf(csv, sizeof csv, "%s/f.csv", d);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "generate", in, "--signal",
                                "sine", "--freq", "440", "--seconds", "1", "--rate", "44100",
                                NULL), 0);
    int rc = run_oscine(out, sizeof out, err, sizeof err, "features", in, csv, NULL);
    if (rc)
        fail_msg("features: %d: %s", rc, err);
    FILE *fp = fopen(csv, "r");
    assert_non_null(fp);
    char line[256];
    assert_non_null(fgets(line, sizeof line, fp));
    assert_string_equal(line, "time_s,f0_hz,confidence,loudness_db\n");
    int rows = 0;
    double worst = 0;
    while (fgets(line, sizeof line, fp)) {
        double t, f0, conf, db;
        assert_int_equal(sscanf(line, "%lf,%lf,%lf,%lf", &t, &f0, &conf, &db), 4);
        assert_true(fabs(t - rows * 0.01) < 1e-9);
        if (t >= 0.05 && t <= 0.95) { /* the window is full of the tone */
            worst = fmax(worst, fabs(1200 * log2(f0 / 440)));
            assert_true(conf > 0.9);
            assert_true(db > -15 && db < 0);
        }
        rows++;
    }
    fclose(fp);
    print_message("features: %d rows, worst f0 error %.3f cents\n", rows, worst);
    assert_int_equal(rows, 100);
    assert_true(worst < 5);

    /* 4 ms hop: DDSP's 250 frames per second */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "features", in, csv,
                                "--hop-ms", "4", NULL), 0);
    fp = fopen(csv, "r");
    rows = 0;
    while (fgets(line, sizeof line, fp))
        rows++;
    fclose(fp);
    assert_int_equal(rows, 1 + 250);

    /* errors: one line naming the file or flag; exit 1 runtime, 2 usage */
    char missing[256], bad[256], nodir[256];
    snprintf(missing, sizeof missing, "%s/missing.wav", d);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/f.csv", d);
    snprintf(bad, sizeof bad, "%s/bad.wav", d);
    fp = fopen(bad, "w");
    fputs("this is not a sound file\n", fp);
    fclose(fp);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "features", missing, csv,
                                NULL), 1);
    assert_non_null(strstr(err, "missing.wav"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "features", bad, csv, NULL),
                     1);
    assert_non_null(strstr(err, "bad.wav"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "features", in, nodir, NULL),
                     1);
    assert_non_null(strstr(err, "f.csv"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "features", in, csv,
                                "--hop-ms", "3.3", NULL), 2);
    assert_non_null(strstr(err, "--hop-ms"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "features", in, csv,
                                "--bogus", NULL), 2);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "features", in, NULL), 2);
    /* nothing left behind but the inputs and the one good output */
    assert_int_equal(dir_count(d), 3);
    tmpdir_remove(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(harmonic_golden),   cmocka_unit_test(harmonic_held_note),
        cmocka_unit_test(harmonic_above_nyquist), cmocka_unit_test(noise_generator),
        cmocka_unit_test(filtnoise_golden),  cmocka_unit_test(filtnoise_response),
        cmocka_unit_test(reverb_golden),     cmocka_unit_test(reverb_direct),
        cmocka_unit_test(reverb_mix_ramp),   cmocka_unit_test(pitch_synthetic),
        cmocka_unit_test(pitch_unvoiced),    cmocka_unit_test(loudness_golden),
        cmocka_unit_test(loudness_reference), cmocka_unit_test(bad_input_and_configs),
        cmocka_unit_test(no_allocation),     cmocka_unit_test(features_cli),
    };
    return cmocka_run_group_tests_name("ddsp_dsp", tests, NULL, NULL);
}
