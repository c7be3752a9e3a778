/* test_stft.c - STFT round trips (every window, several sizes, hop by hop
 * and whole buffer), the Slaney mel filterbank, and RTISI-LA (dsp/rtisi):
 * plain overlap-add without refinement, consistency gained with it, its delay,
 * no allocation. (Against its Python reference: test_vocoder.) */
#include "util/util.h"

#include "oscine.h"

#include "dsp/mel.h"
#include "dsp/rtisi.h"
#include "dsp/stft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/count_alloc.h"

static const struct { int n_fft, win, hop; } sizes[] = {
    {320, 320, 160}, {512, 512, 128}, {1024, 320, 80}, {640, 640, 320},
    {256, 200, 50},  {2048, 2048, 512}, {64, 48, 16},
};

static void fill(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++)
        x[i] = 0.5f * urand(&seed);
}

static void test_roundtrip_hop_by_hop(void **state)
{
    double worst = -400;
    for (int w = 0; w < STFT_WIN_COUNT; w++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            stft_config cfg = {sizes[k].n_fft, sizes[k].win, sizes[k].hop, (stft_window)w};
            stft *s;
            assert_int_equal(stft_create(&s, &cfg), 0);
            const int H = cfg.hop, L = stft_latency(s), frames = 200;
            assert_int_equal(L, cfg.win_len - cfg.hop);
            size_t n = (size_t)H * frames;
            float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
            float *spec = malloc(sizeof(float) * 2 * (size_t)stft_bins(s));
            fill(x, n, 7 + k);
            for (int f = 0; f < frames; f++) {
                stft_analyze(s, x + (size_t)f * H, spec);
                stft_synthesize(s, spec, y + (size_t)f * H);
            }
            /* y[t] = x[t - L]; compare once the first full window is in. */
            size_t skip = (size_t)cfg.win_len;
            double db = err_db(x + skip - L, y + skip, n - skip);
            worst = fmax(worst, db);
            if (db > -120)
                fail_msg("window %d n_fft %d win %d hop %d: round trip %.1f dB", w, cfg.n_fft,
                         cfg.win_len, cfg.hop, db);
            free(x);
            free(y);
            free(spec);
            stft_destroy(s);
        }
    print_message("hop by hop: worst round-trip error %.1f dB\n", worst);
}

static void test_roundtrip_whole_buffer(void **state)
{
    double worst = -400;
    for (int w = 0; w < STFT_WIN_COUNT; w++)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            stft_config cfg = {sizes[k].n_fft, sizes[k].win, sizes[k].hop, (stft_window)w};
            stft *s;
            assert_int_equal(stft_create(&s, &cfg), 0);
            size_t n = 12345; /* not a multiple of any hop */
            size_t frames = stft_frames_for(s, n);
            float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
            float *spec = malloc(sizeof(float) * 2 * (size_t)stft_bins(s) * frames);
            fill(x, n, 99 + k);
            stft_analyze_buffer(s, x, n, spec);
            stft_synthesize_buffer(s, spec, n, y);
            /* Whole-buffer use starts from silence: every sample, including
             * the first, comes back aligned. */
            double db = err_db(x, y, n);
            worst = fmax(worst, db);
            if (db > -120)
                fail_msg("window %d n_fft %d: whole-buffer round trip %.1f dB", w, cfg.n_fft, db);
            free(x);
            free(y);
            free(spec);
            stft_destroy(s);
        }
    print_message("whole buffer: worst round-trip error %.1f dB\n", worst);
}

/* The spectrum of one frame equals a direct DFT of the windowed last
 * win_len samples (the documented frame convention). */
static void test_frame_convention(void **state)
{
    stft_config cfg = {64, 48, 16, STFT_WIN_HANN};
    stft *s;
    assert_int_equal(stft_create(&s, &cfg), 0);
    float x[64], spec[2 * 33], win[48];
    fill(x, 64, 3);
    for (int f = 0; f < 4; f++)
        stft_analyze(s, x + 16 * f, spec);
    stft_make_window(STFT_WIN_HANN, 48, win);
    /* After 4 hops the frame is x[64-48 .. 64). */
    for (int k = 0; k < 33; k++) {
        double re = 0, im = 0;
        for (int t = 0; t < 48; t++) {
            double v = x[16 + t] * win[t];
            re += v * cos(2 * M_PI * k * t / 64);
            im -= v * sin(2 * M_PI * k * t / 64);
        }
        assert_float_equal(spec[2 * k], re, 1e-5);
        assert_float_equal(spec[2 * k + 1], im, 1e-5);
    }
    stft_destroy(s);
}

static void test_bad_config(void **state)
{
    stft *s = (stft *)1;
    stft_config bad[] = {
        {15, 15, 5, STFT_WIN_HANN},   /* odd / too small n_fft */
        {512, 600, 128, STFT_WIN_HANN}, /* window longer than FFT */
        {512, 512, 0, STFT_WIN_HANN}, /* zero hop */
        {512, 256, 300, STFT_WIN_HANN}, /* hop longer than window */
        {512, 512, 128, STFT_WIN_COUNT},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(stft_create(&s, &bad[i]), OSCINE_E_ARG);
        assert_null(s);
    }
}

static void test_mel_scale(void **state)
{
    /* Slaney scale: linear 200/3 Hz per mel below 1 kHz, log above. */
    assert_float_equal(mel_from_hz(440), 6.6, 1e-9);
    assert_float_equal(mel_from_hz(1000), 15.0, 1e-9);
    assert_float_equal(mel_from_hz(6400), 42.0, 1e-9); /* 27 mels per factor 6.4 */
    for (double hz = 0; hz < 8000; hz += 137)
        assert_float_equal(mel_to_hz(mel_from_hz(hz)), hz, 1e-6);
}

static void test_mel_filters(void **state)
{
    mel_bank *m;
    const int rate = 16000, n_fft = 1024, bands = 80;
    assert_int_equal(mel_create(&m, rate, n_fft, bands, 0, 8000), 0);
    assert_int_equal(mel_bands(m), bands);
    assert_int_equal(mel_bins(m), 513);
    const double df = (double)rate / n_fft;
    double lo = mel_from_hz(0), hi = mel_from_hz(8000);
    for (int b = 0; b < bands; b++) {
        /* Peak at the band's centre frequency, area 1 in Hz (Slaney norm),
         * for bands wide enough to be sampled by several bins. */
        double centre = mel_to_hz(lo + (hi - lo) * (b + 1) / (bands + 1));
        double left = mel_to_hz(lo + (hi - lo) * b / (bands + 1));
        double right = mel_to_hz(lo + (hi - lo) * (b + 2) / (bands + 1));
        int best = 0;
        double area = 0;
        for (int k = 0; k < 513; k++) {
            if (mel_weight(m, b, k) > mel_weight(m, b, best))
                best = k;
            area += mel_weight(m, b, k) * df;
        }
        assert_true(fabs(best * df - centre) < df);
        float expect_peak = (float)(2.0 / (right - left) *
                            fmin((best * df - left) / (centre - left),
                                 (right - best * df) / (right - centre)));
        assert_float_equal(mel_weight(m, b, best), expect_peak, 1e-6);
        if (right - left > 8 * df)
            assert_float_equal(area, 1.0, 0.02);
    }
    /* mel_apply equals the dense product. */
    float mag[513], out[80];
    uint64_t seed = 5;
    for (int k = 0; k < 513; k++)
        mag[k] = fabsf(urand(&seed));
    mel_apply(m, mag, out);
    for (int b = 0; b < bands; b++) {
        double acc = 0;
        for (int k = 0; k < 513; k++)
            acc += mel_weight(m, b, k) * mag[k];
        assert_float_equal(out[b], acc, 1e-5);
    }
    mel_destroy(m);
    assert_int_equal(mel_create(&m, 16000, 1024, 80, 0, 9000), OSCINE_E_ARG);
}

/* A voiced-like test signal: harmonics of a gliding pitch, noise, onsets. */
static void voice(float *x, size_t n, uint64_t seed)
{
    double ph = 0;
    for (size_t i = 0; i < n; i++) {
        double t = i / 16000.0, f0 = 130 + 40 * sin(2 * M_PI * 1.5 * t);
        ph += 2 * M_PI * f0 / 16000;
        double y = 0;
        for (int h = 1; h * f0 < 7000; h++)
            y += sin(h * ph + 0.3 * h * h) / h;
        double env = fmod(t, 0.25) < 0.18 ? 1.0 : 0.05;
        x[i] = (float)(0.2 * env * y + 0.01 * urand(&seed));
    }
}

/* Mean over frames of the spectral convergence || |STFT y| - M || / || M ||, dB. */
static double inconsistency_db(stft *an, const float *y, const float *mag, size_t frames, int bins)
{
    float spec[2 * 257];
    double num = 0, den = 0;
    stft_reset(an);
    for (size_t f = 0; f < frames; f++) {
        stft_analyze(an, y + f * 80, spec);
        for (int k = 0; k < bins; k++) {
            double a = hypot(spec[2 * k], spec[2 * k + 1]), m = mag[f * bins + k];
            num += (a - m) * (a - m);
            den += m * m;
        }
    }
    return 10 * log10(num / den);
}

static void test_rtisi(void **state)
{
    rtisi *r;
    const rtisi_config bad[] = {{320, 70, 1, 1}, {320, 320, 1, 1}, {321, 80, 1, 1}, {320, 80, -1, 1},
                                {320, 80, 17, 1}, {320, 80, 1, 17}, {8, 4, 1, 1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(rtisi_create(&r, &bad[i]), OSCINE_E_ARG);

    /* lookahead 0, no passes: stft_synthesize, bit for bit */
    const int N = 320, H = 80, B = N / 2 + 1;
    const size_t frames = 400, n = frames * H;
    stft *st, *an;
    stft_config sc = {N, N, H, STFT_WIN_HANN};
    assert_int_equal(stft_create(&st, &sc), 0);
    assert_int_equal(stft_create(&an, &sc), 0);
    rtisi_config plain = {N, H, 0, 0};
    assert_int_equal(rtisi_create(&r, &plain), 0);
    float *x = malloc(sizeof(float) * n), *spec = malloc(sizeof(float) * frames * 2 * B);
    float *mag = malloc(sizeof(float) * frames * B), *ph0 = malloc(sizeof(float) * frames * 2 * B);
    float *y0 = malloc(sizeof(float) * (n + 8 * H)), *y1 = malloc(sizeof(float) * (n + 8 * H));
    voice(x, n, 3);
    stft_analyze_buffer(an, x, n - (size_t)stft_latency(an), spec); /* frames of x */
    for (size_t f = 0; f < frames; f++) {
        stft_synthesize(st, spec + f * 2 * B, y0 + f * H);
        rtisi_frame(r, spec + f * 2 * B, y1 + f * H);
    }
    assert_memory_equal(y0, y1, sizeof(float) * n);
    rtisi_destroy(r);

    /* Magnitudes with a random phase: the refinement makes the spectrogram
     * consistent (and the true phase stays put). */
    uint64_t seed = 11;
    for (size_t f = 0; f < frames; f++)
        for (int k = 0; k < B; k++) {
            const size_t i = f * B + k;
            mag[i] = hypotf(spec[2 * i], spec[2 * i + 1]);
            float p = (float)M_PI * urand(&seed);
            ph0[2 * i] = mag[i] * cosf(p);
            ph0[2 * i + 1] = mag[i] * sinf(p);
        }
    stft_reset(st);
    for (size_t f = 0; f < frames; f++)
        stft_synthesize(st, ph0 + f * 2 * B, y0 + f * H);
    const double plain_db = inconsistency_db(an, y0 + N - H, mag, frames - 8, B);
    static const int la[] = {1, 3}, passes[] = {2, 4};
    double prev = plain_db;
    for (int c = 0; c < 2; c++) {
        rtisi_config rc = {N, H, la[c], passes[c]};
        assert_int_equal(rtisi_create(&r, &rc), 0);
        assert_int_equal(rtisi_lookahead(r), la[c]);
        for (int pass = 0; pass < 2; pass++) { /* the second after a reset: the same */
            rtisi_reset(r);
            counting = 1;
            for (size_t f = 0; f < frames + (size_t)la[c]; f++)
                rtisi_frame(r, f < frames ? ph0 + f * 2 * B : NULL, (pass ? y1 : y0) + f * H);
            counting = 0;
        }
        assert_memory_equal(y0, y1, sizeof(float) * (n + (size_t)la[c] * H));
        /* the output lags by la hops: frame f's hop comes out la frames later */
        const double db = inconsistency_db(an, y0 + N - H + la[c] * H, mag, frames - 8, B);
        print_message("RTISI-LA look-ahead %d, %d passes: spectrogram inconsistency %.1f dB "
                      "(random phase, plain overlap-add: %.1f dB)\n", la[c], passes[c], db, plain_db);
        assert_true(db < prev - 3.0);
        prev = db;
        /* started from the true phase, it keeps the signal */
        rtisi_reset(r);
        for (size_t f = 0; f < frames + (size_t)la[c]; f++)
            rtisi_frame(r, f < frames ? spec + f * 2 * B : NULL, y1 + f * H);
        double e = err_db(x + 400, y1 + N - H + la[c] * H + 400, n - 2000);
        print_message("  from the true phase: output vs input %.1f dB\n", e);
        assert_true(e < -40);
        rtisi_destroy(r);
    }
    if (COUNT_MALLOC)
        assert_int_equal(allocations, 0);
    stft_destroy(st);
    stft_destroy(an);
    free(x);
    free(spec);
    free(mag);
    free(ph0);
    free(y0);
    free(y1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_hop_by_hop),
        cmocka_unit_test(test_roundtrip_whole_buffer),
        cmocka_unit_test(test_frame_convention),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_mel_scale),
        cmocka_unit_test(test_mel_filters),
        cmocka_unit_test(test_rtisi),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
