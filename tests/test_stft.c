/* test_stft.c - STFT round trips (every window, several sizes, hop by hop
 * and whole buffer) and the Slaney mel filterbank. */
#include "util/util.h"

#include "oscine.h"

#include "dsp/mel.h"
#include "dsp/stft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_hop_by_hop),
        cmocka_unit_test(test_roundtrip_whole_buffer),
        cmocka_unit_test(test_frame_convention),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_mel_scale),
        cmocka_unit_test(test_mel_filters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
