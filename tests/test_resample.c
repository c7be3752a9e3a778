/* test_resample.c - the resampler (dsp/resample.h), in particular the
 * low-latency polyphase FIR: alias and image
 * rejection, passband, alignment, the lag bound under any block sizes,
 * flushing, and no allocation while processing. (test_chain checks the
 * resampled chain end to end: latency to the sample, passband level.) */
#include "util/util.h"

#include "dsp/resample.h"
#include "oscine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/count_alloc.h"

/* Stream x (n) through r in blocks drawn from 1..max_in (seeded; seed 0:
 * always max_in), checking the lag bound after every call. Output count. */
static long stream(resampler *r, const float *x, long n, int max_in, double ratio, float *y,
                   long ycap, uint64_t seed)
{
    long done_in = 0, done_out = 0;
    while (done_in < n) {
        int b = max_in;
        if (seed)
            b = 1 + (int)((urand(&seed) + 1.0f) * 0.5f * (float)(max_in - 1) + 0.5f);
        if (b > n - done_in)
            b = (int)(n - done_in);
        assert_true(done_out + resampler_max_out(r) <= ycap);
        int k = resampler_process(r, x + done_in, b, y + done_out);
        assert_true(k >= 0 && k <= resampler_max_out(r));
        done_in += b;
        done_out += k;
        if ((double)done_in * ratio - (double)done_out > resampler_lag(r) + 1e-9)
            fail_msg("owes %.2f outputs after %ld inputs, lag bound %.2f",
                     (double)done_in * ratio - (double)done_out, done_in, resampler_lag(r));
    }
    return done_out;
}

static void sine(float *x, long n, double f, double rate, double amp)
{
    for (long i = 0; i < n; i++)
        x[i] = (float)(amp * sin(2 * M_PI * f * (double)i / rate));
}

/* RMS of y[from..to) minus the ideal sine at the output rate, dB re the
 * sine's RMS (amp / sqrt 2). */
static double residual_db(const float *y, long from, long to, double f, double rate, double amp)
{
    double e = 0;
    for (long i = from; i < to; i++) {
        double d = y[i] - amp * sin(2 * M_PI * f * (double)i / rate);
        e += d * d;
    }
    return 10 * log10(e / (double)(to - from) / (amp * amp / 2));
}

static double rms_db(const float *y, long from, long to)
{
    double e = 0;
    for (long i = from; i < to; i++)
        e += (double)y[i] * y[i];
    return 10 * log10(e / (double)(to - from) / 0.5 + 1e-30);
}

static void fir_rates(void **state)
{
    (void)state;
    const int rates[] = {32000, 44100, 48000, 96000};
    for (int ri = 0; ri < 4; ri++) {
        const int hi = rates[ri];
        resampler *down, *up;
        assert_int_equal(resampler_create(&down, hi, 16000, 1, 512), 0);
        assert_int_equal(resampler_create(&up, 16000, hi, 1, 160), 0);
        print_message("%d <-> 16000 Hz: lag %.2f + %.2f output samples (%.2f ms)\n", hi,
                      resampler_lag(down), resampler_lag(up),
                      1000 * (resampler_lag(down) / 16000 + resampler_lag(up) / hi));
        /* libsoxr LQ owed 8.6 ms each way at 48 kHz */
        assert_true(resampler_lag(down) / 16000 < 0.003 && resampler_lag(up) / hi < 0.003);
        const long n = hi; /* one second */
        float *x = malloc(sizeof(float) * (size_t)n), *y = malloc(sizeof(float) * (size_t)n * 8);
        long ycap = n * 8;

        /* passband, aligned: a 3 kHz sine comes out as the same sine at the
         * same times (after the first 10 ms) */
        sine(x, n, 3000, hi, 0.5);
        long m = stream(down, x, n, 512, 16000.0 / hi, y, ycap, 11);
        double r = residual_db(y, 160, m, 3000, 16000, 0.5);
        print_message("  down: 3 kHz residual %.1f dB\n", r);
        assert_true(r < -80);
        /* aliases: 9.6 kHz and up would fold below 6.4 kHz */
        const double alias_f[] = {9700, 12000, 15000};
        for (int k = 0; k < 3; k++) {
            if (alias_f[k] >= hi / 2.0)
                continue;
            resampler_reset(down);
            sine(x, n, alias_f[k], hi, 0.5);
            m = stream(down, x, n, 512, 16000.0 / hi, y, ycap, 0);
            double a = rms_db(y, 160, m);
            print_message("  down: %.0f Hz -> %.1f dB\n", alias_f[k], a);
            assert_true(a < -85);
        }
        /* up: a 5 kHz sine at 16 kHz, aligned, images >= 85 dB down */
        float *x16 = malloc(sizeof(float) * 16000);
        sine(x16, 16000, 5000, 16000, 0.5);
        m = stream(up, x16, 16000, 160, (double)hi / 16000, y, ycap, 5);
        r = residual_db(y, hi / 100, m, 5000, hi, 0.5);
        print_message("  up: 5 kHz residual (images and passband error) %.1f dB\n", r);
        assert_true(r < -80);
        /* block sizes never change the output */
        float *y2 = malloc(sizeof(float) * (size_t)ycap);
        resampler_reset(up);
        long m2 = stream(up, x16, 16000, 160, (double)hi / 16000, y2, ycap, 0);
        assert_true(labs(m2 - m) <= (long)ceil(resampler_lag(up)) + 1);
        for (long i = 0; i < (m < m2 ? m : m2); i++)
            if (y[i] != y2[i])
                fail_msg("sample %ld differs with other block sizes", i);
        free(x16);
        free(y2);
        free(x);
        free(y);
        resampler_destroy(down);
        resampler_destroy(up);
    }
}

/* The end of a stream: flushing gives exactly ceil(n * ratio) outputs in
 * all, the last ones the filter's tail. */
static void fir_flush(void **state)
{
    (void)state;
    resampler *down, *up;
    assert_int_equal(resampler_create(&down, 48000, 16000, 1, 256), 0);
    assert_int_equal(resampler_create(&up, 16000, 48000, 1, 256), 0);
    float x[1001], y[4000];
    for (int i = 0; i < 1001; i++)
        x[i] = 0.25f;
    for (int pass = 0; pass < 2; pass++) {
        resampler *r = pass ? up : down;
        double ratio = pass ? 3.0 : 1.0 / 3.0;
        long got = stream(r, x, 1001, 256, ratio, y, 4000, 3);
        int k;
        while ((k = resampler_process(r, NULL, 0, y + got)) > 0)
            got += k;
        assert_int_equal(k, 0);
        assert_int_equal(got, (long)ceil(1001 * ratio));
        /* DC comes through at unit gain in the middle */
        assert_float_equal(y[got / 2], 0.25f, 1e-4);
    }
    /* more than max_in at once is refused */
    assert_true(resampler_process(down, x, 257, y) < 0);
    resampler_destroy(down);
    resampler_destroy(up);
}

static void fir_no_allocation(void **state)
{
    (void)state;
    if (!COUNT_MALLOC)
        skip();
    resampler *down, *up;
    assert_int_equal(resampler_create(&down, 48000, 16000, 1, 480), 0);
    assert_int_equal(resampler_create(&up, 16000, 48000, 1, 160), 0);
    static float x[480], mid[1024], y[2048];
    uint64_t s = 9;
    for (int i = 0; i < 480; i++)
        x[i] = urand(&s);
    counting = 1;
    for (int b = 0; b < 200; b++) {
        int k = resampler_process(down, x, 480, mid);
        resampler_process(up, mid, k, y);
    }
    resampler_reset(down); /* the FIR's reset is real-time safe too */
    counting = 0;
    assert_int_equal(allocations, 0);
    resampler_destroy(down);
    resampler_destroy(up);
}

/* Resamplers of one ratio share its filter table; the last one frees it. */
static void fir_shared_tables(void **state)
{
    (void)state;
    size_t bytes;
    assert_int_equal(resampler_fir_tables(NULL), 0);
    resampler *r[8];
    for (int i = 0; i < 8; i++) /* 4 channels, both ways, at 44.1 kHz */
        assert_int_equal(resampler_create(&r[i], i % 2 ? 16000 : 44100, i % 2 ? 44100 : 16000, 1, 441), 0);
    assert_int_equal(resampler_fir_tables(&bytes), 2);
    print_message("8 resamplers 44.1 <-> 16 kHz: 2 filter tables, %zu bytes\n", bytes);
    assert_true(bytes > 100000 && bytes < 300000);
    /* a shared table gives what a table of its own gives */
    static float x[441], y0[2048], y1[2048];
    uint64_t s = 4;
    for (int i = 0; i < 441; i++)
        x[i] = urand(&s);
    int k0 = resampler_process(r[0], x, 441, y0);
    for (int i = 0; i < 7; i++)
        resampler_destroy(r[i + 1]);
    assert_int_equal(resampler_fir_tables(NULL), 1);
    resampler *alone;
    assert_int_equal(resampler_create(&alone, 44100, 16000, 1, 441), 0);
    assert_int_equal(resampler_fir_tables(NULL), 1);
    resampler_destroy(r[0]);
    assert_int_equal(resampler_fir_tables(NULL), 1); /* alone still holds it */
    int k1 = resampler_process(alone, x, 441, y1);
    assert_int_equal(k0, k1);
    assert_memory_equal(y0, y1, sizeof(float) * (size_t)k0);
    resampler_destroy(alone);
    assert_int_equal(resampler_fir_tables(NULL), 0);
}

/* Ratios the FIR does not take (terms over 1000: 44101 / 16000) and the
 * high-quality mode stay with libsoxr, with their own (longer) lag bound. */
static void soxr_paths(void **state)
{
    (void)state;
    resampler *r;
    assert_int_equal(resampler_create(&r, 44101, 16000, 1, 256), 0);
    assert_true(resampler_lag(r) > 50);
    resampler_destroy(r);
    assert_int_equal(resampler_create(&r, 48000, 16000, 0, 256), 0);
    assert_true(resampler_lag(r) > 100);
    resampler_destroy(r);
    assert_int_equal(resampler_create(&r, 48000, 16000.5, 1, 256), OSCINE_E_ARG);
    assert_int_equal(resampler_create(&r, 100, 16000, 1, 256), OSCINE_E_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(fir_rates),
        cmocka_unit_test(fir_flush),
        cmocka_unit_test(fir_no_allocation),
        cmocka_unit_test(fir_shared_tables),
        cmocka_unit_test(soxr_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
