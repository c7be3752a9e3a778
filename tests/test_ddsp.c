/* test_ddsp.c - the DDSP instrument model in C against PyTorch (golden
 * fixture from tools/ddsp/make_decoder_fixture.py: decoder outputs, synth
 * controls, voice audio with the seeded noise, reverb), the reverb at any
 * block size, and bad weights. */
#include "util/util.h"

#include "models/ddsp.h"
#include "nn/weights.h"
#include "oscine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/ddsp/decoder.osw"

static double nmse(const float *ref, const float *got, size_t n)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        e += d * d;
        r += (double)ref[i] * ref[i];
    }
    return r > 0 ? e / r : e;
}

static const float *tensor(const osw_file *w, const char *name, int64_t *len)
{
    int i = osw_tensor_find(w, name);
    const char *nm;
    int nd;
    const int64_t *sh;
    assert_true(i >= 0);
    assert_int_equal(osw_tensor_info(w, i, &nm, &nd, &sh), 0);
    int64_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= sh[k];
    const float *p;
    assert_int_equal(osw_get_f32(w, name, nd, sh, &p), 0);
    *len = n;
    return p;
}

static ddsp_model *load_fixture(osw_file **wp)
{
    osw_file *w;
    assert_int_equal(osw_open(&w, FIXTURE), 0);
    ddsp_model *m;
    if (ddsp_model_create(&m, w))
        fail_msg("%s", oscine_last_error());
    *wp = w;
    return m;
}

static void test_decoder_matches_pytorch(void **state)
{
    osw_file *w;
    ddsp_model *m = load_fixture(&w);
    const ddsp_info *in = ddsp_model_info(m);
    assert_int_equal(in->sample_rate, 16000);
    assert_int_equal(in->frame_rate, 100);
    int64_t F, n;
    const float *f0 = tensor(w, "in.f0", &F), *ld = tensor(w, "in.loudness", &n);
    const float *y_ref = tensor(w, "out.y", &n);
    assert_int_equal(n, F * in->n_out);
    const float *amp_ref = tensor(w, "out.amp", &n), *dist_ref = tensor(w, "out.dist", &n);
    const float *mags_ref = tensor(w, "out.mags", &n);
    const int H = in->n_harmonics, NB = in->n_bands, NO = in->n_out;
    float *y = malloc(sizeof(float) * F * NO), *amp = malloc(sizeof(float) * F);
    float *dist = malloc(sizeof(float) * F * H), *mags = malloc(sizeof(float) * F * NB);
    ddsp_decoder *d;
    assert_int_equal(ddsp_decoder_create(&d, m), 0);
    for (int pass = 0; pass < 2; pass++) { /* the second after a reset: the same */
        ddsp_decoder_reset(d);
        for (int k = 0; k < F; k++) {
            ddsp_decoder_frame(d, f0[k], ld[k], y + k * NO);
            ddsp_controls(m, y + k * NO, f0[k], amp + k, dist + k * H, mags + k * NB);
        }
        double ey = nmse(y_ref, y, (size_t)F * NO), ea = nmse(amp_ref, amp, (size_t)F);
        double ed = nmse(dist_ref, dist, (size_t)F * H), em = nmse(mags_ref, mags, (size_t)F * NB);
        print_message("decoder vs PyTorch, %d frames: NMSE outputs %.3g, amp %.3g, dist %.3g, "
                      "noise mags %.3g\n", (int)F, ey, ea, ed, em);
        assert_true(ey < 1e-8 && ea < 1e-8 && ed < 1e-8 && em < 1e-8);
    }
    ddsp_decoder_destroy(d);
    free(y);
    free(amp);
    free(dist);
    free(mags);
    ddsp_model_destroy(m);
    osw_close(w);
}

/* Voice (decoder + harmonic + noise with the fixture's seed) and reverb at
 * the model rate against PyTorch's rendering, sample for sample. */
static void test_voice_matches_pytorch(void **state)
{
    osw_file *w;
    ddsp_model *m = load_fixture(&w);
    const ddsp_info *in = ddsp_model_info(m);
    int64_t F, n, T;
    const float *f0 = tensor(w, "in.f0", &F), *ld = tensor(w, "in.loudness", &n);
    const float *dry_ref = tensor(w, "out.dry", &T), *audio_ref = tensor(w, "out.audio", &n);
    const char *seed_s = osw_meta(w, "noise_seed");
    assert_non_null(seed_s);
    ddsp_voice_config vc = {.sample_rate = in->sample_rate, .seed = strtoull(seed_s, NULL, 10)};
    ddsp_voice *v;
    assert_int_equal(ddsp_voice_create(&v, m, &vc), 0);
    float *dry = calloc((size_t)T + 1000, sizeof(float)), *out = calloc((size_t)T, sizeof(float));
    int pos = 0, seg = ddsp_voice_max_segment(v);
    assert_int_equal(seg, in->sample_rate / in->frame_rate);
    for (int k = 0; k < F; k++) {
        int got = ddsp_voice_frame(v, f0[k], ld[k], 1.0f, 1.0f, dry + pos);
        assert_int_equal(got, k ? seg : 0);
        pos += got;
    }
    /* the last frame held: render its controls once more */
    float amp, dist[DDSP_MAX_HARMONICS], mags[DDSP_MAX_BANDS];
    ddsp_controls(m, ddsp_voice_last_y(v), f0[F - 1], &amp, dist, mags);
    pos += ddsp_voice_render(v, f0[F - 1], amp, dist, mags, dry + pos);
    assert_int_equal(pos, T);
    double e = nmse(dry_ref, dry, (size_t)T);
    print_message("voice (harmonic + noise) vs PyTorch, %d samples: NMSE %.3g (%.1f dB)\n",
                  (int)T, e, 10 * log10(e));
    assert_true(e < 1e-8);

    /* reverb in odd-sized blocks */
    ddsp_reverb_config rc = {.sample_rate = in->sample_rate, .max_block = 333};
    ddsp_reverb *r;
    assert_int_equal(ddsp_reverb_create(&r, m, &rc), 0);
    assert_int_equal(ddsp_reverb_length(r), in->reverb_length);
    for (int off = 0, b = 1; off < T; off += b, b = b % 333 + 37) {
        int k = (int)T - off < b ? (int)T - off : b;
        ddsp_reverb_process(r, dry + off, out + off, k);
    }
    e = nmse(audio_ref, out, (size_t)T);
    print_message("voice + reverb vs PyTorch: NMSE %.3g (%.1f dB); reverb block %d\n", e,
                  10 * log10(e), ddsp_reverb_block(r));
    assert_true(e < 1e-8);
    ddsp_reverb_destroy(r);
    ddsp_voice_destroy(v);
    free(dry);
    free(out);
    ddsp_model_destroy(m);
    osw_close(w);
}

/* The reverb at 48 kHz: an impulse gives the IR resampled (same energy as
 * at the model rate), the same whatever the block sizes, no latency. */
static void test_reverb_48k(void **state)
{
    osw_file *w;
    ddsp_model *m = load_fixture(&w);
    const ddsp_info *in = ddsp_model_info(m);
    ddsp_reverb_config rc = {.sample_rate = 48000, .max_block = 512};
    ddsp_reverb *a, *b;
    assert_int_equal(ddsp_reverb_create(&a, m, &rc), 0);
    assert_int_equal(ddsp_reverb_create(&b, m, &rc), 0);
    int L = ddsp_reverb_length(a);
    assert_int_equal(L, in->reverb_length * 3);
    int T = L + 2000;
    float *x = calloc((size_t)T, sizeof(float)), *ya = calloc((size_t)T, sizeof(float));
    float *yb = calloc((size_t)T, sizeof(float));
    x[100] = 1.0f;
    ddsp_reverb_process(a, x, ya, 512 < T ? 512 : T);
    for (int off = 512; off < T; off += 512)
        ddsp_reverb_process(a, x + off, ya + off, T - off < 512 ? T - off : 512);
    for (int off = 0, k = 1; off < T; off += k, k = k % 500 + 1)
        ddsp_reverb_process(b, x + off, yb + off, T - off < k ? T - off : k);
    assert_true(nmse(ya, yb, (size_t)T) < 1e-10);
    for (int i = 0; i < 100; i++)
        assert_true(ya[i] == 0.0f);
    assert_true(fabsf(ya[100] - 1.0f) < 0.05f); /* the dry path (ir[0] = 0, but resampled) */
    double e48 = 0, e16 = 0;
    for (int i = 101; i < T; i++)
        e48 += (double)ya[i] * ya[i];
    const float *ir = ddsp_model_ir(m);
    for (int i = 0; i < in->reverb_length; i++)
        e16 += (double)ir[i] * ir[i];
    /* energy of an IR sampled 3x faster and scaled by 1/3: one third, less
     * what the resampler's anti-aliasing filter takes near 8 kHz (this IR is
     * white noise: ~6 %) */
    print_message("reverb 48 kHz: %d taps, block %d, energy ratio to 16 kHz x3 %.4f\n", L,
                  ddsp_reverb_block(a), e48 * 3 / e16);
    assert_true(e48 * 3 / e16 > 0.9 && e48 * 3 / e16 < 1.01);
    ddsp_reverb_destroy(a);
    ddsp_reverb_destroy(b);
    free(x);
    free(ya);
    free(yb);
    ddsp_model_destroy(m);
    osw_close(w);
}

static void test_bad_weights(void **state)
{
    ddsp_model *m = NULL;
    assert_true(ddsp_model_load(&m, "tests/fixtures/denoise/small.osw") < 0);
    assert_null(m);
    assert_non_null(strstr(oscine_last_error(), "kind"));
    assert_true(ddsp_model_load(&m, "no/such/file.osw") < 0);
    assert_null(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_matches_pytorch),
        cmocka_unit_test(test_voice_matches_pytorch),
        cmocka_unit_test(test_reverb_48k),
        cmocka_unit_test(test_bad_weights),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
