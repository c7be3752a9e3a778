/* test_melrefine.c - the mel refinement (dsp/melrefine.h) of the vocoder's
 * file synthesis: against tools/vocoder/audio.py (mel_refine) on the
 * phase-difference fixture (its random network's waveform pulled onto the
 * input mel and anchored to its amplitude, with the shipped passes, momentum
 * and pull), a signal with its own mel (and amplitude) left as it is, pushing
 * after the end, reset, its delay, the configuration's errors, no allocation
 * per hop; and `oscine vocode --refine`. */
#include "util/util.h"

#include "dsp/melrefine.h"
#include "dsp/stft.h"
#include "io/npy.h"
#include "models/vocoder.h"
#include "nn/weights.h"
#include "oscine.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/count_alloc.h"

#define DIFF_FIXTURE "tests/fixtures/vocoder/small-diff.osw"

static melrefine_config vocoder_cfg(int iters, float momentum, float pull)
{
    melrefine_config c = {.win = VOC_WIN, .hop = VOC_HOP, .n_fft = VOC_MEL_NFFT, .sample_rate = VOC_RATE,
                          .n_mels = VOC_MELS, .fmin = VOC_FMIN, .fmax = VOC_FMAX, .floor = VOC_LOG_FLOOR,
                          .iters = iters, .momentum = momentum, .max_nep = VOC_REFINE_MAX_NEP, .pull = pull};
    return c;
}

/* The whole signal y (T*80 - 240 samples, the hops of frames 0..T-1's ends),
 * mel [T][80] and anchor [T][161] (or NULL) through r, hop by hop, the end
 * marked, then flushed: returns the T*80 - 240 samples aligned with y. */
static float *refine_signal(melrefine *r, const float *y, const float *mel, const float *anchor, size_t T)
{
    const size_t hops = T - 3, D = (size_t)melrefine_delay(r);
    float *out = calloc((hops + D) * VOC_HOP, sizeof(float));
    melrefine_reset(r);
    melrefine_end(r, (long long)hops);
    for (size_t h = 0; h < hops + D; h++)
        melrefine_hop(r, h < hops ? y + h * VOC_HOP : (const float[VOC_HOP]){0},
                      h < T ? mel + h * VOC_MELS : NULL, anchor && h < T ? anchor + h * VOC_BINS : NULL,
                      out + h * VOC_HOP);
    memmove(out, out + D * VOC_HOP, sizeof(float) * hops * VOC_HOP);
    return out;
}

/* The fixture's out.logamp, clamped as the synthesis clamps it. */
static float *fixture_anchor(const osw_file *w, size_t T)
{
    int64_t nl;
    const float *la = fixture_tensor(w, "out.logamp", &nl);
    assert_int_equal(nl, (int64_t)T * VOC_BINS);
    float mx = 0;
    assert_int_equal(osw_meta_float(w, "logamp_max", NULL, &mx), 0);
    float *a = malloc(sizeof(float) * (size_t)nl);
    for (int64_t i = 0; i < nl; i++)
        a[i] = fminf(la[i], mx);
    return a;
}

static void test_matches_python(void **state)
{
    (void)state;
    osw_file *w;
    assert_int_equal(osw_open(&w, DIFF_FIXTURE), 0);
    int64_t ny, nm, nr;
    const float *y = fixture_tensor(w, "out.wav", &ny);
    const float *mel = fixture_tensor(w, "input.mel", &nm);
    const float *ref = fixture_tensor(w, "out.refined", &nr);
    const size_t T = (size_t)nm / VOC_MELS;
    assert_int_equal(ny, (int64_t)T * VOC_HOP - VOC_STFT_LATENCY);
    assert_int_equal(nr, ny);
    melrefine *r;
    melrefine_config c = vocoder_cfg(VOC_FILE_REFINE_ITERS, VOC_REFINE_MOMENTUM, VOC_REFINE_PULL);
    assert_int_equal(melrefine_create(&r, &c), 0);
    assert_int_equal(melrefine_delay(r), 6 * VOC_FILE_REFINE_ITERS); /* two steps of 3 hops a pass */
    float *an = fixture_anchor(w, T);
    float *out = refine_signal(r, y, mel, an, T);
    const double e = nmse(ref, out, (size_t)ny), moved = nmse(y, ref, (size_t)ny);
    print_message("mel refinement (%d passes, momentum %.1f, pull %.3f) vs audio.mel_refine: NMSE %.3g over "
                  "%lld samples (it moved the signal by NMSE %.3g)\n", VOC_FILE_REFINE_ITERS,
                  (double)VOC_REFINE_MOMENTUM, (double)VOC_REFINE_PULL, e, (long long)ny, moved);
    assert_true(moved > 1e-2); /* the test means something: the refinement does change it */
    assert_true(e < 1e-9);
    /* again after a reset: the same samples */
    float *again = refine_signal(r, y, mel, an, T);
    assert_memory_equal(out, again, sizeof(float) * (size_t)ny);
    free(again);
    /* Without melrefine_end the signal goes on (zeros pushed, taken as
     * signal): only the hops within reach of the end differ (3 hops a step),
     * the ones before stay bit for bit. 3 passes, so that some are out of reach. */
    melrefine *r3;
    melrefine_config c3 = vocoder_cfg(3, VOC_REFINE_MOMENTUM, VOC_REFINE_PULL);
    assert_int_equal(melrefine_create(&r3, &c3), 0);
    const size_t hops = T - 3, D = (size_t)melrefine_delay(r3);
    assert_int_equal(D, 18);
    float *ended = refine_signal(r3, y, mel, an, T);
    float *open = calloc((hops + D) * VOC_HOP, sizeof(float));
    melrefine_reset(r3);
    for (size_t h = 0; h < hops + D; h++)
        melrefine_hop(r3, h < hops ? y + h * VOC_HOP : (const float[VOC_HOP]){0},
                      h < T ? mel + h * VOC_MELS : NULL, h < T ? an + h * VOC_BINS : NULL, open + h * VOC_HOP);
    assert_memory_equal(open + D * VOC_HOP, ended, sizeof(float) * (hops - D) * VOC_HOP);
    assert_true(nmse(ended, open + D * VOC_HOP, hops * VOC_HOP) > 0);
    melrefine_destroy(r3);
    free(ended);
    free(open);
    melrefine_destroy(r);
    free(out);
    free(an);
    osw_close(w);
}

/* A signal measured by the same front end, anchored to its own amplitude:
 * every band error and every pull is 0, each step gives back the overlap-add
 * of its own windowed frames, i.e. the signal. */
static void test_own_mel_is_kept(void **state)
{
    (void)state;
    const size_t T = 160, n = T * VOC_HOP - VOC_STFT_LATENCY;
    float *x = malloc(sizeof(float) * n);
    uint64_t seed = 3;
    for (size_t i = 0; i < n; i++)
        x[i] = 0.2f * sinf(0.07f * (float)i) + 0.05f * urand(&seed);
    vocoder_mel *fe;
    assert_int_equal(vocoder_mel_create(&fe), 0);
    assert_int_equal(vocoder_mel_frames_for(n), T);
    float *mel = malloc(sizeof(float) * T * VOC_MELS);
    vocoder_mel_buffer(fe, x, n, mel);
    vocoder_mel_destroy(fe);
    /* its log-amplitude on the synthesis grid (frame t ends at sample (t+1)*80) */
    stft *st;
    stft_config sc = {.n_fft = VOC_NFFT, .win_len = VOC_WIN, .hop = VOC_HOP, .window = STFT_WIN_HANN};
    assert_int_equal(stft_create(&st, &sc), 0);
    assert_int_equal(stft_frames_for(st, n), T);
    float *spec = malloc(sizeof(float) * T * 2 * VOC_BINS), *la = malloc(sizeof(float) * T * VOC_BINS);
    stft_analyze_buffer(st, x, n, spec);
    stft_destroy(st);
    for (size_t i = 0; i < T * VOC_BINS; i++)
        la[i] = 0.5f * logf(spec[2 * i] * spec[2 * i] + spec[2 * i + 1] * spec[2 * i + 1] + 1e-30f);
    for (int k = 0; k < 3; k++) {
        melrefine *r;
        melrefine_config c = vocoder_cfg(k ? 7 : 1, k ? 0.3f : 0.0f, k == 2 ? 0.5f : 0.0f);
        assert_int_equal(melrefine_create(&r, &c), 0);
        float *y = refine_signal(r, x, mel, k == 2 ? la : NULL, T);
        const double e = nmse(x, y, n);
        print_message("%d pass(es)%s: a signal with its own mel comes back with NMSE %.3g\n", c.iters,
                      k == 2 ? ", anchored to its own amplitude" : "", e);
        assert_true(e < 1e-10);
        melrefine_destroy(r);
        free(y);
    }
    free(x);
    free(mel);
    free(spec);
    free(la);
}

static void test_config_errors(void **state)
{
    (void)state;
    melrefine *r = (melrefine *)1;
    const melrefine_config ok = vocoder_cfg(4, 0.5f, 0.1f);
    melrefine_config bad[10];
    for (int i = 0; i < 10; i++)
        bad[i] = ok;
    bad[0].iters = 0;
    bad[1].iters = MELREFINE_MAX_ITERS + 1;
    bad[2].momentum = 1.0f;
    bad[3].momentum = NAN;
    bad[4].hop = 70;          /* does not divide the window */
    bad[5].n_fft = 256;       /* shorter than the window */
    bad[6].floor = 0;
    bad[7].max_nep = -1;
    bad[8].pull = 1.5f;
    bad[9].pull = NAN;
    for (int i = 0; i < 10; i++) {
        assert_int_not_equal(melrefine_create(&r, &bad[i]), 0);
        assert_null(r);
        assert_non_null(strstr(oscine_last_error(), "melrefine"));
        r = (melrefine *)1;
    }
    assert_int_equal(melrefine_create(&r, &ok), 0);
    melrefine_destroy(r);
    melrefine_destroy(NULL);
}

static void test_no_allocation(void **state)
{
    (void)state;
    if (!COUNT_MALLOC)
        skip();
    melrefine *r;
    melrefine_config c = vocoder_cfg(5, 0.6f, 0.1f);
    assert_int_equal(melrefine_create(&r, &c), 0);
    float in[VOC_HOP], out[VOC_HOP], mel[VOC_MELS], an[VOC_BINS];
    for (int b = 0; b < VOC_MELS; b++)
        mel[b] = -3.0f;
    for (int k = 0; k < VOC_BINS; k++)
        an[k] = -4.0f;
    uint64_t seed = 9;
    counting = 1;
    for (int h = 0; h < 100; h++) { /* delay 30 hops */
        for (int i = 0; i < VOC_HOP; i++)
            in[i] = 0.1f * urand(&seed);
        melrefine_hop(r, in, h % 7 ? mel : NULL, h % 5 ? an : NULL, out);
        if (h == 50)
            melrefine_end(r, 60);
    }
    melrefine_reset(r);
    counting = 0;
    assert_int_equal(allocations, 0);
    for (int i = 0; i < VOC_HOP; i++) /* long after the end: silence */
        assert_true(out[i] == 0.0f);
    melrefine_destroy(r);
}

/* oscine vocode: the file synthesis refines by default, --refine 0 does not,
 * --refine N sets the passes; the default equals PyTorch's file synthesis
 * (RTISI-LA 8 x 16, then the refinement); bad values are usage errors. */
static void test_vocode_refine(void **state)
{
    (void)state;
    char out[4096], err[4096];
    const char *tmp = tmpdir_make();
    char npy[512], w0[512], w20[512], wd[512], w5[512];
    snprintf(npy, sizeof npy, "%s/m.npy", tmp);
    snprintf(w0, sizeof w0, "%s/r0.wav", tmp);
    snprintf(w20, sizeof w20, "%s/r20.wav", tmp);
    snprintf(wd, sizeof wd, "%s/rd.wav", tmp);
    snprintf(w5, sizeof w5, "%s/r5.wav", tmp);
    osw_file *w;
    assert_int_equal(osw_open(&w, DIFF_FIXTURE), 0);
    int64_t nm, nf;
    const float *mel = fixture_tensor(w, "input.mel", &nm);
    const float *ref = fixture_tensor(w, "out_file.wav", &nf);
    int64_t sh[2] = {nm / VOC_MELS, VOC_MELS}; /* the fixture's mel as [T, 80] float32 .npy */
    assert_int_equal(npy_write_f32(npy, mel, 2, sh), 0);
    int rc = run_oscine(out, sizeof out, err, sizeof err, "vocode", npy, wd, "--model", DIFF_FIXTURE, "--bits",
                        "float", "--quiet", NULL);
    assert_int_equal(rc, 0);
    char passes[16];
    snprintf(passes, sizeof passes, "%d", VOC_FILE_REFINE_ITERS);
    rc = run_oscine(out, sizeof out, err, sizeof err, "vocode", npy, w20, "--model", DIFF_FIXTURE, "--bits",
                    "float", "--quiet", "--refine", passes, NULL);
    assert_int_equal(rc, 0);
    rc = run_oscine(out, sizeof out, err, sizeof err, "vocode", npy, w0, "--model", DIFF_FIXTURE, "--bits",
                    "float", "--quiet", "--refine", "0", NULL);
    assert_int_equal(rc, 0);
    rc = run_oscine(out, sizeof out, err, sizeof err, "vocode", npy, w5, "--model", DIFF_FIXTURE, "--bits",
                    "float", "--quiet", "--refine", "5", "--rtisi", "8,16", NULL);
    assert_int_equal(rc, 0);
    size_t n0, n20, nd, n5;
    float *y0 = sound_read_mono(w0, VOC_RATE, &n0), *y20 = sound_read_mono(w20, VOC_RATE, &n20), *yd = sound_read_mono(wd, VOC_RATE, &nd), *y5 = sound_read_mono(w5, VOC_RATE, &n5);
    assert_int_equal(nd, (size_t)nf);
    assert_int_equal(n0, nd);
    assert_int_equal(n20, nd);
    assert_int_equal(n5, nd);
    assert_memory_equal(yd, y20, sizeof(float) * nd); /* the default is VOC_FILE_REFINE_ITERS passes */
    /* the same as the RTISI-LA alone, refined here: 0 passes is the RTISI-LA output */
    melrefine *r;
    melrefine_config c = vocoder_cfg(5, VOC_REFINE_MOMENTUM, VOC_REFINE_PULL);
    assert_int_equal(melrefine_create(&r, &c), 0);
    float *an = fixture_anchor(w, (size_t)nm / VOC_MELS); /* PyTorch's; C's own differ by ~1e-7 */
    float *y5c = refine_signal(r, y0, mel, an, (size_t)nm / VOC_MELS);
    melrefine_destroy(r);
    free(an);
    const double e5 = nmse(y5c, y5, nd), ed = nmse(ref, yd, nd / 10), e0 = nmse(ref, y0, nd / 10);
    print_message("vocode --refine 5 vs melrefine on --refine 0's output: NMSE %.3g; default vs PyTorch's "
                  "file synthesis, first tenth: NMSE %.3g (without the refinement: %.3g)\n", e5, ed, e0);
    assert_true(e5 < 1e-9);
    assert_true(ed < 1e-7);
    assert_true(e0 > 1e-3); /* the refinement is what makes it match */
    free(y5c);
    free(y0);
    free(y20);
    free(yd);
    free(y5);
    const char *bad[] = {"-1", "65", "x", "", "3.5"};
    for (int i = 0; i < 5; i++) {
        rc = run_oscine(out, sizeof out, err, sizeof err, "vocode", npy, w0, "--model", DIFF_FIXTURE,
                        "--quiet", "--refine", bad[i], NULL);
        assert_int_equal(rc, 2);
        assert_non_null(strstr(err, "--refine"));
    }
    rc = run_oscine(out, sizeof out, err, sizeof err, "vocode", npy, w0, "--model", DIFF_FIXTURE, "--quiet",
                    "--refine", NULL);
    assert_int_equal(rc, 2);
    assert_non_null(strstr(err, "--refine"));
    tmpdir_remove(tmp);
    osw_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matches_python),
        cmocka_unit_test(test_own_mel_is_kept),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test(test_no_allocation),
        cmocka_unit_test(test_vocode_refine),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
