/* test_ddsp.c - the DDSP instrument model in C against PyTorch (golden
 * fixture from tools/ddsp/make_decoder_fixture.py: decoder outputs, synth
 * controls, voice audio with the seeded noise, reverb), the reverb at any
 * block size, bad weights; the synth stage: a note is exactly the
 * documented controls rendered, pitch by the project's tracker, voice
 * stealing without clicks, events at their sample through the live engine,
 * compound settings, no allocation on the audio path; `oscine synth`. */
#include "util/util.h"

#include "dsp/pitch.h"
#include "dsp/resample.h"
#include "engine/chainrt.h"
#include "engine/live.h"
#include "models/ddsp.h"
#include "nn/weights.h"
#include "oscine.h"

#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/ddsp/decoder.osw"
#define RATE 48000

#include "util/count_alloc.h"

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
    const float *f0 = fixture_tensor(w, "in.f0", &F), *ld = fixture_tensor(w, "in.loudness", &n);
    const float *y_ref = fixture_tensor(w, "out.y", &n);
    assert_int_equal(n, F * in->n_out);
    const float *amp_ref = fixture_tensor(w, "out.amp", &n), *dist_ref = fixture_tensor(w, "out.dist", &n);
    const float *mags_ref = fixture_tensor(w, "out.mags", &n);
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
    const float *f0 = fixture_tensor(w, "in.f0", &F), *ld = fixture_tensor(w, "in.loudness", &n);
    const float *dry_ref = fixture_tensor(w, "out.dry", &T), *audio_ref = fixture_tensor(w, "out.audio", &n);
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

/* ------------------------------------------------------------ the stage */

static oscine_chain *synth_chain(int rate, int max_block)
{
    oscine_model_path mp = {"synth", FIXTURE};
    oscine_chain_config cc = {.stages = "synth", .sample_rate = rate, .channels = 1,
                              .max_block = max_block, .models = &mp, .nmodels = 1};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cc))
        fail_msg("%s", oscine_last_error());
    assert_int_equal(oscine_chain_latency(c), 0);
    return c;
}

/* n samples from the chain (silence in) in blocks of `block`. */
static void render(oscine_chain *c, float *out, int n, int block)
{
    static const float zero[4096];
    for (int off = 0; off < n; off += block) {
        int k = n - off < block ? n - off : block;
        const float *in[1] = {zero};
        float *o[1] = {out + off};
        assert_int_equal(oscine_chain_process(c, in, o, k), 0);
    }
}

static void ev(oscine_chain *c, const char *addr, int nargs, float a, float b)
{
    float args[2] = {a, b};
    if (chain_event(c, addr, args, nargs))
        fail_msg("%s", oscine_last_error());
}

static void set(oscine_chain *c, const char *addr, float v)
{
    if (oscine_chain_set(c, addr, v))
        fail_msg("%s", oscine_last_error());
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Median f0 (Hz) and mean confidence of x between t0 and t1 seconds, by the
 * project's YIN tracker (frames by their centre). */
static float median_f0(const float *x, int n, int rate, double t0, double t1, float *conf)
{
    pitch_config pc = {.sample_rate = rate, .hop = rate / 100, .fmin = 60, .fmax = 2000};
    pitch *p;
    assert_int_equal(pitch_create(&p, &pc), 0);
    static float f[4096];
    int nf = 0, lat = pitch_latency(p);
    double cs = 0;
    for (int off = 0; off + pc.hop <= n; off += pc.hop) {
        pitch_frame fr;
        pitch_process(p, x + off, &fr);
        double centre = (double)(off + pc.hop - lat) / rate;
        if (centre >= t0 && centre < t1 && nf < 4096) {
            f[nf++] = fr.f0_hz;
            cs += fr.confidence;
        }
    }
    pitch_destroy(p);
    assert_true(nf > 0);
    qsort(f, (size_t)nf, sizeof f[0], cmp_float);
    *conf = (float)(cs / nf);
    return f[nf / 2];
}

/* oscine's tracker runs at 16 kHz (features, transfer; at 8 kHz its
 * fmax is rate / 4 and it slips octaves): renders below that are measured
 * after libsoxr brings them up. Returns a new buffer, *m samples. */
static float *up_to_16k(const float *x, int n, int rate, int *m)
{
    resampler *r;
    assert_int_equal(resampler_create(&r, rate, 16000, 0, n), 0);
    float *y = calloc((size_t)resampler_max_out(r) + 16000, sizeof(float));
    int k = resampler_process(r, x, n, y), got;
    assert_true(k >= 0);
    while ((got = resampler_process(r, NULL, 0, y + k)) > 0)
        k += got;
    resampler_destroy(r);
    *m = k;
    return y;
}

static double cents(double f, double ref) { return 1200.0 * log2(f / ref); }

static double rms(const float *x, int n)
{
    double e = 0;
    for (int i = 0; i < n; i++)
        e += (double)x[i] * x[i];
    return sqrt(e / n);
}

/* A note is exactly what the stage documents: frame 0 silent at loudness
 * -80, then the decoder at the model's forte + loudness + velocity + the
 * envelope, rendered from the note-on sample (noise and reverb off, so the
 * comparison is sample for sample with one voice driven directly). */
static void test_synth_note_is_documented_controls(void **state)
{
    const int pre = 1000, n = RATE;
    oscine_chain *c = synth_chain(RATE, 256);
    set(c, "/synth/reverb", 0);
    set(c, "/synth/noise_gain", 0);
    set(c, "/synth/attack", 0);
    set(c, "/synth/decay", 0);
    set(c, "/synth/sustain", 1);
    set(c, "/synth/loudness", -6);
    float *y = calloc((size_t)(pre + n), sizeof(float));
    render(c, y, pre, 256);
    for (int i = 0; i < pre; i++)
        assert_true(y[i] == 0.0f);
    ev(c, "/synth/note_on", 2, 69, 0.5f);
    render(c, y + pre, n, 256);
    float active;
    assert_int_equal(oscine_chain_meter(c, "/synth/active", &active), 0);
    assert_true(active == 1.0f);

    ddsp_model *m;
    assert_int_equal(ddsp_model_load(&m, FIXTURE), 0);
    const ddsp_info *in = ddsp_model_info(m);
    ddsp_voice_config vc = {.sample_rate = RATE, .seed = 1};
    ddsp_voice *v;
    assert_int_equal(ddsp_voice_create(&v, m, &vc), 0);
    float *ref = calloc((size_t)n + 1000, sizeof(float));
    float ld = in->loudness_ref_db - 6.0f + 20.0f * log10f(0.5f);
    int pos = ddsp_voice_frame(v, 440.0f, -80.0f, 0.0f, 0.0f, ref);
    while (pos < n)
        pos += ddsp_voice_frame(v, 440.0f, ld, 1.0f, 0.0f, ref + pos);
    double e = nmse(ref, y + pre, (size_t)n);
    print_message("note vs one voice driven with the documented controls: NMSE %.3g, rms %.4f\n",
                  e, rms(ref, n));
    assert_true(e < 1e-12);
    assert_true(rms(ref, n) > 1e-3);
    ddsp_voice_destroy(v);
    ddsp_model_destroy(m);
    free(ref);
    free(y);
    oscine_chain_destroy(c);
}

/* The pitch the project's tracker hears: a note, a bend, a glide, the
 * direct f0 control, at 48, 44.1 and 8 kHz (noise and reverb on; at 8 kHz
 * the model's noise bands above 4 kHz are left out). */
static void test_synth_pitch(void **state)
{
    const int rates[3] = {48000, 44100, 8000};
    for (int r = 0; r < 3; r++) {
        const int rate = rates[r], n = 3 * rate;
        oscine_chain *c = synth_chain(rate, 512);
        set(c, "/synth/glide", 200);
        set(c, "/synth/voices", 1); /* monophonic: the next note takes over and glides */
        float *y = calloc((size_t)n, sizeof(float)), conf;
        ev(c, "/synth/note_on", 2, 69, 1.0f);
        render(c, y, rate, 300);
        set(c, "/synth/bend", 2);
        render(c, y + rate, rate / 2, 300);
        set(c, "/synth/bend", 0);
        ev(c, "/synth/note_on", 2, 57, 1.0f); /* glides down from 69 over 200 ms */
        ev(c, "/synth/note_off", 1, 69, 0);
        render(c, y + rate + rate / 2, rate / 2, 300);
        ev(c, "/synth/note_off", 1, 57, 0);
        set(c, "/synth/f0", 300);
        render(c, y + 2 * rate, rate, 300);
        int mr = rate, mn = n; /* the rate and length measured at */
        if (rate < 16000) {
            float *u = up_to_16k(y, n, rate, &mn);
            free(y);
            y = u;
            mr = 16000;
        }
        float a = median_f0(y, mn, mr, 0.3, 0.95, &conf);
        print_message("%d Hz: note 69: %.2f Hz (%+.1f cents, confidence %.2f)\n", rate, a,
                      cents(a, 440), conf);
        assert_true(fabs(cents(a, 440)) < 10 && conf > 0.8);
        float b = median_f0(y, mn, mr, 1.2, 1.45, &conf);
        print_message("%d Hz: bend +2: %.2f Hz (%+.1f cents)\n", rate, b, cents(b, 493.88));
        assert_true(fabs(cents(b, 493.88)) < 10);
        float g = median_f0(y, mn, mr, 1.58, 1.62, &conf);
        float d = median_f0(y, mn, mr, 1.8, 1.95, &conf);
        print_message("%d Hz: glide 69 -> 57: %.1f Hz at 80-120 ms, %.2f Hz after\n", rate, g, d);
        assert_true(g > 240 && g < 400 && fabs(cents(d, 220)) < 10);
        float f = median_f0(y, mn, mr, 2.3, 2.95, &conf);
        print_message("%d Hz: /synth/f0 300: %.2f Hz (%+.1f cents)\n", rate, f, cents(f, 300));
        assert_true(fabs(cents(f, 300)) < 10);
        free(y);
        oscine_chain_destroy(c);
    }
}

/* Largest sample-to-sample step in x[a..b). */
static float max_step(const float *x, int a, int b)
{
    float m = 0;
    for (int i = a + 1; i < b; i++)
        m = fabsf(x[i] - x[i - 1]) > m ? fabsf(x[i] - x[i - 1]) : m;
    return m;
}

/* With one voice a second note steals the first: its pitch takes over at
 * once, the first fades out without a click; with 8 voices a 9th note
 * steals too, and never more than 8 sound. */
static void test_synth_voice_stealing(void **state)
{
    const int n = RATE;
    oscine_chain *c = synth_chain(RATE, 256);
    /* voices is a whole number: 2.5 is refused by name; a plugin host's
     * 1.9999 (the real-time path) means 2 */
    assert_int_equal(oscine_chain_set(c, "/synth/voices", 2.5f), OSCINE_E_RANGE);
    assert_non_null(strstr(oscine_last_error(), "not a whole number"));
    assert_int_equal(chain_set_rt(c, "/synth/voices", 1.9999f), 0);
    float v;
    assert_int_equal(oscine_chain_get(c, "/synth/voices", &v), 0);
    assert_float_equal(v, 2.0f, 0);
    set(c, "/synth/voices", 1);
    set(c, "/synth/reverb", 0);
    float *y = calloc((size_t)n, sizeof(float)), conf, active;
    ev(c, "/synth/note_on", 2, 60, 1.0f);
    render(c, y, n / 2, 256);
    ev(c, "/synth/note_on", 2, 72, 1.0f);
    render(c, y + n / 2, n / 2, 256);
    assert_int_equal(oscine_chain_meter(c, "/synth/active", &active), 0);
    assert_true(active == 1.0f);
    float a = median_f0(y, n, RATE, 0.2, 0.48, &conf), b = median_f0(y, n, RATE, 0.56, 0.95, &conf);
    float steady = max_step(y, n / 4, n / 2 - 10), at = max_step(y, n / 2 - 10, n / 2 + 2000);
    print_message("voices 1: note 60 %.1f Hz, then 72 %.1f Hz; largest step at the steal %.4f "
                  "(held notes %.4f)\n", a, b, at, steady);
    assert_true(fabs(cents(a, 261.63)) < 10 && fabs(cents(b, 523.25)) < 10);
    assert_true(at < 1.5f * steady);

    ev(c, "/synth/all_notes_off", 0, 0, 0);
    for (int i = 0; i < 5 * RATE / 256 && active > 0; i++) {
        render(c, y, 256, 256);
        oscine_chain_meter(c, "/synth/active", &active);
    }
    assert_true(active == 0.0f); /* the release ends */
    set(c, "/synth/voices", 8);
    for (int k = 0; k < 9; k++) {
        ev(c, "/synth/note_on", 2, (float)(48 + 3 * k), 0.5f);
        render(c, y, 480, 240);
        assert_int_equal(oscine_chain_meter(c, "/synth/active", &active), 0);
        assert_true(active == (float)(k < 8 ? k + 1 : 8));
    }
    ev(c, "/synth/all_notes_off", 0, 0, 0);
    for (int i = 0; i < 5 * RATE / 256 && active > 0; i++) {
        render(c, y, 256, 256);
        oscine_chain_meter(c, "/synth/active", &active);
    }
    assert_true(active == 0.0f); /* every release ends */
    free(y);
    oscine_chain_destroy(c);
}

/* Through the live engine: a note on scheduled at a sample inside a block
 * starts there (the block is split), a compound setting arrives, and the
 * audio path allocates nothing (note ons, steals, offs, settings). */
static void test_synth_live_events(void **state)
{
    const int B = 128, when = 1000 + 37;
    live *e;
    live_config lc = {.sample_rate = RATE, .channels = 1, .max_block = B,
                      .chain = synth_chain(RATE, B)};
    assert_int_equal(live_create(&e, &lc), 0);
    live_cmd cmd = {.kind = LIVE_EVENT, .when = when, .nargs = 2, .args = {69, 1.0f}};
    strcpy(cmd.addr, "/synth/note_on");
    assert_int_equal(live_post(e, &cmd), 0);
    live_cmd adsr = {.kind = LIVE_EVENT, .when = 20000, .nargs = 4, .args = {5, 50, 0.5f, 100}};
    strcpy(adsr.addr, "/synth/adsr");
    assert_int_equal(live_post(e, &adsr), 0);
    const int n = RATE;
    float *y = calloc((size_t)n, sizeof(float));
    counting = 1;
    for (int off = 0; off < n; off += B) {
        float *o[1] = {y + off};
        live_process(e, NULL, o, B, 0);
        if (off == 24000 || off == 24320) { /* a steal of the same note, then others */
            live_cmd on = {.kind = LIVE_EVENT, .nargs = 2, .args = {69, 0.7f}};
            strcpy(on.addr, "/synth/note_on");
            live_post(e, &on);
            on.args[0] = 76;
            live_post(e, &on);
        }
        if (off == 36000) {
            live_cmd all = {.kind = LIVE_EVENT, .nargs = 0};
            strcpy(all.addr, "/synth/all_notes_off");
            live_post(e, &all);
        }
    }
    counting = 0;
    long first = -1;
    for (int i = 0; i < n && first < 0; i++)
        if (y[i] != 0.0f)
            first = i;
    print_message("note on scheduled at sample %d (block %d): first sample %ld; %ld "
                  "allocations on the audio path\n", when, B, first, allocations);
    assert_true(first >= when && first <= when + 2);
#if COUNT_MALLOC
    assert_int_equal(allocations, 0);
#endif
    live_msg msg;
    while (live_poll(e, &msg))
        if (msg.kind == LIVE_MSG_RETIRED)
            oscine_chain_destroy(msg.chain);
    live_destroy(e);
    free(y);
}

/* Compound settings set their parameters; events and settings are checked. */
static void test_synth_settings(void **state)
{
    oscine_chain *c = synth_chain(RATE, 256);
    float args[4] = {12, 34, 0.25f, 567}, v;
    assert_int_equal(chain_event(c, "/synth/adsr", args, 4), 0);
    assert_int_equal(oscine_chain_get(c, "/synth/decay", &v), 0);
    assert_true(v == 34.0f);
    assert_int_equal(oscine_chain_get(c, "/synth/release", &v), 0);
    assert_true(v == 567.0f);
    float vib[2] = {6, 30};
    assert_int_equal(chain_event(c, "/synth/vibrato", vib, 2), 0);
    assert_int_equal(oscine_chain_get(c, "/synth/vibrato_depth", &v), 0);
    assert_true(v == 30.0f);
    float bad[2] = {128, 1};
    assert_int_equal(chain_event(c, "/synth/note_on", bad, 2), OSCINE_E_RANGE);
    assert_non_null(strstr(oscine_last_error(), "out of range"));
    float frac[2] = {60.5f, 1};
    assert_int_equal(chain_event(c, "/synth/note_on", frac, 2), OSCINE_E_RANGE);
    assert_int_equal(chain_event(c, "/synth/note_on", args, 1), OSCINE_E_RANGE);
    assert_int_equal(chain_event(c, "/synth/nope", args, 1), OSCINE_E_PARAM);
    args[2] = 2; /* sustain above 1 */
    assert_int_equal(chain_event(c, "/synth/adsr", args, 4), OSCINE_E_RANGE);
    assert_int_equal(chain_event_rt(c, "/synth/adsr", args, 4), OSCINE_E_RANGE);
    oscine_chain_destroy(c);
    /* a model that is not there */
    oscine_model_path mp = {"synth", "no-such-instrument"};
    oscine_chain_config cc = {.stages = "synth", .sample_rate = RATE, .channels = 1,
                              .max_block = 256, .models = &mp, .nmodels = 1};
    assert_true(oscine_chain_create(&c, &cc) < 0);
    assert_non_null(strstr(oscine_last_error(), "ddsp-no-such-instrument.osw"));
}

/* Write text to path (a score), failing the test if it cannot. */
static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f))
        fail_msg("cannot write %s", path);
}

/* `oscine synth`: a score renders (notes where the score puts them), a bad
 * line is a usage error naming it, and nothing is left behind. */
static void test_cli_synth(void **state)
{
    const char *dir = tmpdir_make();
    char score[512], out[512], err[1024];
    snprintf(score, sizeof score, "%s/a.score", dir);
    snprintf(out, sizeof out, "%s/a.wav", dir);
    write_text(score, "# test\n0.25 /synth/note_on 64 0.9   # E4\n0.0 /synth/reverb 0\n"
                      "0.75 /synth/note_off 64\n");
    int rc = run_oscine(NULL, 0, err, sizeof err, "synth", score, out, "--model", FIXTURE,
                        "--rate", "16000", "--tail", "0.5", "--bits", "float", NULL);
    if (rc)
        fail_msg("%s", err);
    char info[1024];
    assert_int_equal(run_oscine(info, sizeof info, NULL, 0, "info", out, NULL), 0);
    assert_non_null(strstr(info, "16000 Hz"));
    assert_non_null(strstr(info, "frames:   20000"));
    remove(out);
    /* bad scores: exit code and message; nothing written */
    static const struct {
        const char *text, *model, *want;
        int rc;
    } bad[] = {
        {"0.0 /synth/note_on 64 0.9\n0.5 /synth/note_on 200 1\n", FIXTURE, "line 2", 2},
        {"0.0 /gain/db 3\n", FIXTURE, "line 1", 2},
        {"0.0 /synth/note_on 64 0.9\n", "nope.osw", "model 'nope.osw' not found", 1},
        {"0.0 /synth/note_on 64 0.9\n", "cello", "model 'ddsp-cello.osw' not found", 1},
        {"# nothing but a comment\n\n", FIXTURE, "holds no messages", 1}, /* not 2 s of silence */
        {"0 /synth/model clarinet\n", FIXTURE, "give the instrument with --model", 2},
    };
    for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
        write_text(score, bad[k].text);
        rc = run_oscine(NULL, 0, err, sizeof err, "synth", score, out, "--model", bad[k].model, NULL);
        if (rc != bad[k].rc || !strstr(err, bad[k].want))
            fail_msg("score %zu: exit %d, '%s' (want %d, '%s')", k, rc, err, bad[k].rc, bad[k].want);
    }
    FILE *wf = fopen(score, "wb"); /* a WAV given as the score */
    fwrite("RIFF\x04\x00\x00\x00WAVEfmt ", 1, 16, wf);
    fclose(wf);
    rc = run_oscine(NULL, 0, err, sizeof err, "synth", score, out, "--model", FIXTURE, NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "a binary file that is not MIDI"));
    rc = run_oscine(NULL, 0, err, sizeof err, "synth", dir, out, "--model", FIXTURE, NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "is a directory"));
    rc = run_oscine(NULL, 0, err, sizeof err, "synth", score, score, "--model", FIXTURE, NULL);
    assert_int_equal(rc, 2); /* the score itself as the output: refused, kept */
    assert_non_null(strstr(err, "is the input file"));
    assert_non_null(strstr(err, score));
    size_t score_len = 0;
    free(read_file_bytes(score, &score_len));
    assert_int_equal(score_len, 16);
    assert_int_equal(dir_count(dir), 1); /* only the score */
    tmpdir_remove(dir);
}

/* `oscine synth` on a Standard MIDI File (format 1: a tempo track that
 * halves the tempo at tick 960, a note track with a program change,
 * running status, note on velocity 0 and a pitch bend): the notes come out
 * at their pitch and times; a truncated file or SMPTE timing is a usage
 * error naming the problem, with no output left behind. */
static void test_cli_synth_midi(void **state)
{
    static const unsigned char mid[] = {
        'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, 1, 0, 2, 0x01, 0xE0, /* format 1, 2 tracks, 480 */
        'M', 'T', 'r', 'k', 0, 0, 0, 19,
        0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,       /* 120 bpm */
        0x87, 0x40, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40, /* tick 960: 60 bpm */
        0x00, 0xFF, 0x2F, 0x00,
        'M', 'T', 'r', 'k', 0, 0, 0, 31,
        0x00, 0xC0, 0x28,                 /* program change (ignored) */
        0x00, 0x90, 0x45, 0x64,           /* 0.0 s: A4 on */
        0x83, 0x60, 0x80, 0x45, 0x40,     /* tick 480, 0.5 s: A4 off */
        0x87, 0x40, 0x90, 0x3C, 0x64,     /* tick 1440, 2.0 s: C4 on */
        0x81, 0x70, 0xE0, 0x7F, 0x7F,     /* tick 1680, 2.5 s: bend +2 st */
        0x81, 0x70, 0x90, 0x3C, 0x00,     /* tick 1920, 3.0 s: C4 off (velocity 0) */
        0x00, 0xFF, 0x2F, 0x00,
    };
    const char *dir = tmpdir_make();
    char path[512], out[512], err[1024];
    snprintf(path, sizeof path, "%s/a.mid", dir);
    snprintf(out, sizeof out, "%s/a.wav", dir);
    FILE *f = fopen(path, "wb");
    fwrite(mid, 1, sizeof mid, f);
    fclose(f);
    int rc = run_oscine(NULL, 0, err, sizeof err, "synth", path, out, "--model", FIXTURE,
                        "--rate", "16000", "--tail", "0.5", "--bits", "float", NULL);
    if (rc)
        fail_msg("%s", err);
    SF_INFO info;
    float *y = sound_read(out, &info), conf;
    assert_int_equal(info.channels, 1);
    assert_int_equal(info.frames, 16000 * 7 / 2); /* last event 3.0 s + 0.5 s tail */
    float a = median_f0(y, (int)info.frames, 16000, 0.1, 0.45, &conf);
    float c = median_f0(y, (int)info.frames, 16000, 2.1, 2.45, &conf);
    float d = median_f0(y, (int)info.frames, 16000, 2.6, 2.95, &conf);
    double quiet = 0, loud = 0;
    for (int i = (int)(1.2 * 16000); i < 19 * 1600; i++)
        quiet = fmax(quiet, fabs(y[i]));
    for (int i = 1600; i < 7200; i++)
        loud = fmax(loud, fabs(y[i]));
    print_message("midi: A4 %.2f Hz (%+.1f cents), C4 %.2f Hz (%+.1f), bent %.2f Hz (%+.1f); "
                  "peak %.3f, between the notes %.2g\n", a, cents(a, 440), c,
                  cents(c, 261.63), d, cents(d, 293.66), loud, quiet);
    assert_true(fabs(cents(a, 440)) < 10);
    assert_true(fabs(cents(c, 261.63)) < 10);
    assert_true(fabs(cents(d, 293.66)) < 10);
    assert_true(quiet < loud * 1e-3); /* 1.2-1.9 s: the 60 bpm stretch is silent */
    free(y);

    /* broken files: nothing written */
    remove(out);
    f = fopen(path, "wb");
    fwrite(mid, 1, 40, f); /* cut inside the first track */
    fclose(f);
    rc = run_oscine(NULL, 0, err, sizeof err, "synth", path, out, "--model", FIXTURE, NULL);
    print_message("truncated: %s", err);
    assert_int_equal(rc, 1); /* a corrupt input: a runtime failure, as for any file */
    assert_non_null(strstr(err, "midi"));
    assert_non_null(strstr(err, "track 1"));
    unsigned char smpte[sizeof mid];
    memcpy(smpte, mid, sizeof mid);
    smpte[12] = 0xE7; /* -25 fps */
    f = fopen(path, "wb");
    fwrite(smpte, 1, sizeof smpte, f);
    fclose(f);
    rc = run_oscine(NULL, 0, err, sizeof err, "synth", path, out, "--model", FIXTURE, NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "SMPTE"));
    assert_int_equal(dir_count(dir), 1); /* only the MIDI file */
    tmpdir_remove(dir);
}

/* Timbre transfer: a harmonic input at 220 Hz comes out at 220 Hz times the
 * octave and shift, silence stays silent (gate), the reported latency is
 * the trackers' 512 samples, and the audio path allocates nothing. */
static void test_transfer(void **state)
{
    oscine_model_path mp = {"transfer", FIXTURE};
    oscine_chain_config cc = {.stages = "transfer", .sample_rate = 16000, .channels = 1,
                              .max_block = 256, .models = &mp, .nmodels = 1};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cc))
        fail_msg("%s", oscine_last_error());
    /* stage latency 512 + the hop being gathered (159) */
    print_message("transfer chain latency at 16 kHz: %d samples\n", oscine_chain_latency(c));
    assert_int_equal(oscine_chain_latency(c), 512 + 159);
    const int n = 3 * 16000;
    float *x = calloc((size_t)n, sizeof(float)), *y = calloc((size_t)n, sizeof(float));
    for (int i = 16000; i < n; i++)
        for (int h = 1; h <= 4; h++)
            x[i] += 0.3f / h * sinf(2.0f * (float)M_PI * 220.0f * h * i / 16000.0f);
    const struct { float oct, shift, want; } cases[3] = {{0, 0, 220}, {1, 0, 440}, {1, -5, 329.63f}};
    for (int k = 0; k < 3; k++) {
        oscine_chain_reset(c);
        set(c, "/transfer/octave", cases[k].oct);
        set(c, "/transfer/pitch_shift", cases[k].shift);
        counting = 1;
        for (int off = 0; off < n; off += 256) {
            const float *in[1] = {x + off};
            float *o[1] = {y + off};
            oscine_chain_process(c, in, o, 256 < n - off ? 256 : n - off);
        }
        counting = 0;
        float conf, f = median_f0(y, n, 16000, 1.5, 2.9, &conf), m;
        double quiet = rms(y, 15000);
        assert_int_equal(oscine_chain_meter(c, "/transfer/f0", &m), 0);
        print_message("octave %+g shift %+g: %.2f Hz (want %.2f, %+.1f cents; meter %.1f), "
                      "before the input rms %.2g\n", (double)cases[k].oct,
                      (double)cases[k].shift, f, (double)cases[k].want,
                      cents(f, cases[k].want), m, quiet);
        assert_true(fabs(cents(f, cases[k].want)) < 10);
        assert_true(fabs(cents(m, cases[k].want)) < 10);
        assert_true(quiet == 0.0);
    }
#if COUNT_MALLOC
    assert_int_equal(allocations, 0);
#endif
    free(x);
    free(y);
    oscine_chain_destroy(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decoder_matches_pytorch),
        cmocka_unit_test(test_voice_matches_pytorch),
        cmocka_unit_test(test_reverb_48k),
        cmocka_unit_test(test_bad_weights),
        cmocka_unit_test(test_synth_note_is_documented_controls),
        cmocka_unit_test(test_synth_pitch),
        cmocka_unit_test(test_synth_voice_stealing),
        cmocka_unit_test(test_synth_live_events),
        cmocka_unit_test(test_synth_settings),
        cmocka_unit_test(test_cli_synth),
        cmocka_unit_test(test_cli_synth_midi),
        cmocka_unit_test(test_transfer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
