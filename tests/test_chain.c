/* test_chain.c - the chain: block adapter under random host block sizes,
 * resampling to a stage rate (passband, latency to the sample), the gain
 * stage, parameters by address, and NaN handling. */
#include "util/util.h"

#include "engine/live.h"
#include "oscine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Run n frames of mono x through c in blocks: fixed size if block > 0,
 * else random sizes 1..-block (seeded). */
static void run(oscine_chain *c, const float *x, float *y, size_t n, int block, uint64_t seed)
{
    size_t pos = 0;
    while (pos < n) {
        int b = block > 0 ? block : 1 + (int)((urand(&seed) + 1.0f) * 0.5f * (-block - 1));
        if ((size_t)b > n - pos)
            b = (int)(n - pos);
        const float *in[1] = {x + pos};
        float *out[1] = {y + pos};
        assert_int_equal(oscine_chain_process(c, in, out, b), 0);
        pos += (size_t)b;
    }
}

/* Sum of sines between f_lo and f_hi Hz with random phases: band-limited. */
static void bandlimited(float *x, size_t n, int rate, double f_lo, double f_hi, uint64_t seed)
{
    memset(x, 0, sizeof(float) * n);
    for (int k = 0; k < 40; k++) {
        double f = f_lo + (f_hi - f_lo) * k / 39.0;
        double ph = M_PI * urand(&seed);
        for (size_t i = 0; i < n; i++)
            x[i] += (float)(0.02 * sin(2 * M_PI * f * i / rate + ph));
    }
}

/* Delay d in [lo, hi] that best explains y[t] = x[t - d]; error in dB. */
static int best_delay(const float *x, const float *y, size_t n, int lo, int hi, double *db)
{
    int best = lo;
    double bestdb = 1e9;
    size_t start = (size_t)hi + 4000, len = n - start - 4000;
    for (int d = lo; d <= hi; d++) {
        double e = err_db(x + start - d, y + start, len);
        if (e < bestdb) {
            bestdb = e;
            best = d;
        }
    }
    *db = bestdb;
    return best;
}

static void test_adapter_exact(void **state)
{
    /* Fixed hop, no resampling: output is exactly the input delayed by the
     * reported latency, whatever the host's block sizes. */
    const int hops[] = {1, 64, 160, 441, 1024};
    const int blocks[] = {1, 7, 160, 512, 8192, -300, -8192};
    const size_t n = 60000;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n);
    uint64_t seed = 11;
    for (size_t i = 0; i < n; i++)
        x[i] = urand(&seed);
    for (size_t h = 0; h < sizeof hops / sizeof hops[0]; h++)
        for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
            oscine_chain_config cfg = {.stages = "passthrough", .sample_rate = 48000,
                                       .channels = 1, .hop = hops[h]};
            oscine_chain *c;
            assert_int_equal(oscine_chain_create(&c, &cfg), 0);
            int L = oscine_chain_latency(c);
            assert_int_equal(L, hops[h] - 1);
            run(c, x, y, n, blocks[b], 100 + b);
            for (int i = 0; i < L; i++)
                assert_true(y[i] == 0.0f);
            assert_memory_equal(y + L, x, sizeof(float) * (n - (size_t)L));
            assert_int_equal(oscine_chain_glitches(c), 0);
            oscine_chain_destroy(c);
        }
    free(x);
    free(y);
}

static void test_no_hop_no_latency(void **state)
{
    oscine_chain_config cfg = {.stages = "passthrough,gain", .sample_rate = 44100, .channels = 2};
    oscine_chain *c;
    assert_int_equal(oscine_chain_create(&c, &cfg), 0);
    assert_int_equal(oscine_chain_latency(c), 0);
    float a[3000], b[3000], oa[3000], ob[3000];
    uint64_t s = 3;
    for (int i = 0; i < 3000; i++) {
        a[i] = urand(&s);
        b[i] = urand(&s);
    }
    const float *in[2] = {a, b};
    float *out[2] = {oa, ob};
    assert_int_equal(oscine_chain_process(c, in, out, 3000), 0);
    assert_memory_equal(oa, a, sizeof a);
    assert_memory_equal(ob, b, sizeof b);
    /* In place works too. */
    float *io[2] = {a, b};
    assert_int_equal(oscine_chain_process(c, (const float *const *)io, io, 3000), 0);
    assert_memory_equal(oa, a, sizeof a);
    assert_int_equal(oscine_chain_process(c, in, out, 0), OSCINE_E_ARG);
    assert_int_equal(oscine_chain_process(c, in, out, 8193), OSCINE_E_ARG);
    oscine_chain_destroy(c);
}

/* 44.1 kHz host, stages at 16 kHz: passband within 0.1 dB, latency as
 * reported to the sample, output independent of host block sizes. */
static void check_resampled(int host, int low_latency, double f_top)
{
    const size_t n = (size_t)host * 3;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n),
          *y2 = malloc(sizeof(float) * n);
    oscine_chain_config cfg = {.stages = "passthrough", .sample_rate = host, .channels = 1,
                               .internal_rate = 16000, .hop = 160, .low_latency = low_latency};
    oscine_chain *c;
    assert_int_equal(oscine_chain_create(&c, &cfg), 0);
    int L = oscine_chain_latency(c);
    print_message("%d Hz <-> 16 kHz (%s): latency %d samples (%.1f ms)\n", host,
                  low_latency ? "low latency" : "high quality", L, 1000.0 * L / host);

    bandlimited(x, n, host, 50, f_top, 21);
    run(c, x, y, n, -4096, 5);
    assert_int_equal(oscine_chain_glitches(c), 0);
    double db;
    int d = best_delay(x, y, n, L - 20, L + 20, &db);
    print_message("  measured delay %d, residual %.1f dB\n", d, db);
    assert_int_equal(d, L);
    assert_true(db < -40);

    /* Block sizes do not change the output. */
    oscine_chain_reset(c);
    run(c, x, y2, n, 1, 0);
    double diff = 0;
    for (size_t i = 0; i < n; i++)
        diff = fmax(diff, fabs(y[i] - y2[i]));
    assert_true(diff < 1e-6);
    assert_int_equal(oscine_chain_glitches(c), 0);

    /* Passband: single sines keep their level within 0.1 dB. */
    const double freqs[] = {100, 440, 1000, 3000, 5000, f_top};
    for (size_t k = 0; k < sizeof freqs / sizeof freqs[0]; k++) {
        for (size_t i = 0; i < n; i++)
            x[i] = (float)(0.5 * sin(2 * M_PI * freqs[k] * i / host));
        oscine_chain_reset(c);
        run(c, x, y, n, -2048, 9 + k);
        double ex = 0, ey = 0;
        for (size_t i = (size_t)host; i < n; i++) {
            ex += (double)x[i - (size_t)L] * x[i - (size_t)L];
            ey += (double)y[i] * y[i];
        }
        double gain_db = 10 * log10(ey / ex);
        if (fabs(gain_db) > 0.1)
            fail_msg("%g Hz: level changed by %.3f dB", freqs[k], gain_db);
    }
    oscine_chain_destroy(c);
    free(x);
    free(y);
    free(y2);
}

static void test_resample_44k(void **state) { check_resampled(44100, 0, 7000); }
static void test_resample_48k(void **state) { check_resampled(48000, 0, 7000); }
static void test_resample_low_latency(void **state) { check_resampled(48000, 1, 6000); }
static void test_resample_low_latency_44k(void **state) { check_resampled(44100, 1, 5000); }
static void test_resample_8k(void **state) { check_resampled(8000, 0, 3500); }

static void test_gain(void **state)
{
    oscine_chain_config cfg = {.stages = "gain", .sample_rate = 48000, .channels = 1};
    oscine_chain *c;
    assert_int_equal(oscine_chain_create(&c, &cfg), 0);
    float v;
    assert_int_equal(oscine_chain_get(c, "/gain/db", &v), 0);
    assert_float_equal(v, 0.0f, 0);
    /* Set before the first block: applies from the first sample. */
    assert_int_equal(oscine_chain_set(c, "/gain/db", -6.0f), 0);
    float x[4800], y[4800];
    for (int i = 0; i < 4800; i++)
        x[i] = 0.5f;
    const float *in[1] = {x};
    float *out[1] = {y};
    oscine_chain_process(c, in, out, 4800);
    assert_float_equal(y[0], 0.5f * powf(10, -6 / 20.0f), 1e-6);
    assert_float_equal(y[4799], 0.5f * powf(10, -6 / 20.0f), 1e-6);
    /* A change later is smoothed: no step bigger than a 10 ms ramp's, and
     * the target is reached within 100 ms. */
    assert_int_equal(oscine_chain_set(c, "/gain/db", 0.0f), 0);
    float prev = y[4799], maxstep = 0;
    for (int blk = 0; blk < 10; blk++) {
        oscine_chain_process(c, in, out, 480);
        for (int i = 0; i < 480; i++) {
            maxstep = fmaxf(maxstep, fabsf(y[i] - prev));
            prev = y[i];
        }
    }
    assert_true(maxstep < 0.5f * 0.5f / 480 * 1.5f); /* ~ 1/(10 ms) slope */
    assert_true(maxstep > 0);
    oscine_chain_process(c, in, out, 4800);
    assert_float_equal(y[4799], 0.5f, 1e-6);
    oscine_chain_destroy(c);
}

static void test_params_and_errors(void **state)
{
    oscine_chain_config cfg = {.stages = "passthrough, gain", .sample_rate = 16000, .channels = 1};
    oscine_chain *c;
    assert_int_equal(oscine_chain_create(&c, &cfg), 0);
    assert_int_equal(oscine_chain_set(c, "/gain/nope", 1), OSCINE_E_PARAM);
    assert_non_null(strstr(oscine_last_error(), "/gain/nope"));
    assert_int_equal(oscine_chain_set(c, "/denoise/mix", 1), OSCINE_E_PARAM);
    assert_non_null(strstr(oscine_last_error(), "denoise"));
    assert_int_equal(oscine_chain_set(c, "gain/db", 1), OSCINE_E_PARAM);
    assert_int_equal(oscine_chain_set(c, "/gain/db", 25), OSCINE_E_RANGE);
    assert_non_null(strstr(oscine_last_error(), "-96..24"));
    assert_int_equal(oscine_chain_set(c, "/gain/db", NAN), OSCINE_E_RANGE);
    assert_int_equal(oscine_chain_set(c, "/gain/db", -96), 0);
    oscine_chain_destroy(c);

    const char *bad[] = {"nope", "gain,,passthrough", ",gain", "gain,gain", ""};
    const int want[] = {OSCINE_E_STAGE, OSCINE_E_STAGE, OSCINE_E_STAGE, OSCINE_E_STAGE, 0};
    for (int i = 0; i < 5; i++) {
        oscine_chain_config b = {.stages = bad[i], .sample_rate = 16000, .channels = 1};
        c = NULL;
        assert_int_equal(oscine_chain_create(&c, &b), want[i]);
        oscine_chain_destroy(c);
    }
    assert_non_null(strstr(oscine_strerror(OSCINE_E_STAGE), "stage"));
    oscine_chain_config r = {.stages = "gain", .sample_rate = 4000, .channels = 1};
    assert_int_equal(oscine_chain_create(&c, &r), OSCINE_E_UNSUPPORTED);
    r.sample_rate = 16000;
    r.channels = 9;
    assert_int_equal(oscine_chain_create(&c, &r), OSCINE_E_UNSUPPORTED);
    assert_null(c);
}

static void test_nan_input(void **state)
{
    oscine_chain_config cfg = {.stages = "gain", .sample_rate = 16000, .channels = 2, .hop = 160};
    oscine_chain *c;
    assert_int_equal(oscine_chain_create(&c, &cfg), 0);
    float a[1600], b[1600], oa[1600], ob[1600];
    for (int i = 0; i < 1600; i++)
        a[i] = b[i] = 0.25f;
    a[500] = NAN;
    b[700] = INFINITY;
    const float *in[2] = {a, b};
    float *out[2] = {oa, ob};
    oscine_chain_process(c, in, out, 1600);
    for (int i = 0; i < 1600; i++)
        assert_true(isfinite(oa[i]) && isfinite(ob[i]));
    assert_int_equal(oscine_chain_nan_events(c), 2);
    oscine_chain_destroy(c);
}

/* The live engine's own dry path (bypass, and the dry signal it keeps for
 * it) never lets NaN or Inf through either, bypassed or not, and its meters
 * stay finite. */
static void test_live_nan_input(void **state)
{
    oscine_chain_config cfg = {.stages = "gain", .sample_rate = 16000, .channels = 1, .hop = 160,
                               .max_block = 256};
    oscine_chain *c;
    assert_int_equal(oscine_chain_create(&c, &cfg), 0);
    live *e;
    live_config lc = {.sample_rate = 16000, .channels = 1, .max_block = 256, .chain = c};
    assert_int_equal(live_create(&e, &lc), 0);
    float x[256], y[256];
    const float *in[1] = {x};
    float *out[1] = {y};
    int bad = 0, n_meter = 0;
    for (int blk = 0; blk < 200; blk++) {
        for (int i = 0; i < 256; i++)
            x[i] = 0.1f * sinf(0.05f * (float)(blk * 256 + i));
        if (blk % 10 == 3) {
            x[17] = NAN;
            x[99] = INFINITY;
            x[200] = -INFINITY;
        }
        if (blk == 100) {
            live_cmd b = {.kind = LIVE_BYPASS, .value = 1};
            assert_int_equal(live_post(e, &b), 0);
        }
        live_process(e, in, out, 256, 0);
        for (int i = 0; i < 256; i++)
            bad += !isfinite(y[i]);
        live_msg m;
        while (live_poll(e, &m))
            if (m.kind == LIVE_MSG_METER) {
                assert_true(isfinite(m.meter.in_rms) && isfinite(m.meter.in_peak));
                assert_true(isfinite(m.meter.out_rms) && isfinite(m.meter.out_peak));
                assert_true(m.meter.in_peak <= 0.1f + 1e-6f);
                n_meter++;
            }
    }
    assert_int_equal(bad, 0);
    assert_true(n_meter > 10);
    /* bypassed, the output is the dry input delayed (latency 159), zeros where
     * it was not finite */
    for (int i = 0; i < 256; i++)
        x[i] = 0.5f;
    x[0] = NAN;
    for (int blk = 0; blk < 2; blk++)
        live_process(e, in, out, 256, 0);
    assert_float_equal(y[159], 0.0f, 0);
    assert_float_equal(y[160], 0.5f, 1e-6);
    live_destroy(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adapter_exact),
        cmocka_unit_test(test_no_hop_no_latency),
        cmocka_unit_test(test_resample_44k),
        cmocka_unit_test(test_resample_48k),
        cmocka_unit_test(test_resample_low_latency),
        cmocka_unit_test(test_resample_low_latency_44k),
        cmocka_unit_test(test_resample_8k),
        cmocka_unit_test(test_gain),
        cmocka_unit_test(test_params_and_errors),
        cmocka_unit_test(test_nan_input),
        cmocka_unit_test(test_live_nan_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
