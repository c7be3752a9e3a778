/* test_hosts.c - the plugins inside the tools people already use, run as
 * docs/plugins.md says: ffmpeg's lv2 and ladspa filters, GStreamer's lv2
 * elements (gstreamer1.0-plugins-bad) and sox's ladspa effect, at 16, 44.1
 * and 48 kHz. Each output must be denoised (SI-SDR against the clean
 * reference of the demo clip, tools/demo/clean-speech.wav, well above the
 * noisy input's) and delayed by exactly the latency docs/plugins.md gives,
 * which none of these hosts compensates; the trimmed commands of the page
 * must give the output aligned and at full length. A host that is not
 * installed is skipped with a message (make deps installs them).
 *
 * The model is the shipped one (models/denoise-16k.osw: through the bundle
 * for LV2, $OSCINE_MODEL_PATH for LADSPA), on the first 4 s of the demo
 * clip, resampled by `oscine process` for the other rates. */
#include "util/util.h"

#include <fftw3.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECONDS 4
#define MAX_LAG 2048
/* SI-SDR gain the denoiser must give on this clip (it gives about 6 dB) */
#define MIN_GAIN_DB 4.0

static char build_dir[PATH_MAX], repo_dir[PATH_MAX], tmp[256];

/* The plugins' latency at each rate, as docs/plugins.md documents it. */
static const struct {
    int rate, latency;
} RATES[] = {{16000, 319}, {44100, 1039}, {48000, 1131}};
#define NRATES (int)(sizeof RATES / sizeof RATES[0])

/* ------------------------------------------------------------ helpers */

static double si_sdr(const float *ref, const float *est, size_t n)
{
    double rr = 0, re = 0;
    for (size_t i = 0; i < n; i++) {
        rr += (double)ref[i] * ref[i];
        re += (double)ref[i] * est[i];
    }
    double a = re / rr, t = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        double s = a * ref[i], d = est[i] - s;
        t += s * s;
        e += d * d;
    }
    return 10 * log10(t / e);
}

/* The lag 0..MAX_LAG at which y correlates best with x (y late by it). */
static int best_lag(const float *x, const float *y, size_t n)
{
    size_t L = 1;
    while (L < 2 * n)
        L *= 2;
    float *b = fftwf_malloc(sizeof(float) * L);
    fftwf_complex *X = fftwf_malloc(sizeof(fftwf_complex) * (L / 2 + 1));
    fftwf_complex *Y = fftwf_malloc(sizeof(fftwf_complex) * (L / 2 + 1));
    fftwf_plan fx = fftwf_plan_dft_r2c_1d((int)L, b, X, FFTW_ESTIMATE);
    fftwf_plan fy = fftwf_plan_dft_r2c_1d((int)L, b, Y, FFTW_ESTIMATE);
    fftwf_plan inv = fftwf_plan_dft_c2r_1d((int)L, Y, b, FFTW_ESTIMATE);
    memset(b, 0, sizeof(float) * L);
    memcpy(b, x, sizeof(float) * n);
    fftwf_execute(fx);
    memset(b, 0, sizeof(float) * L);
    memcpy(b, y, sizeof(float) * n);
    fftwf_execute(fy);
    for (size_t k = 0; k <= L / 2; k++) { /* Y conj(X) */
        float re = Y[k][0] * X[k][0] + Y[k][1] * X[k][1];
        float im = Y[k][1] * X[k][0] - Y[k][0] * X[k][1];
        Y[k][0] = re;
        Y[k][1] = im;
    }
    fftwf_execute(inv);
    int best = 0;
    for (int l = 1; l <= MAX_LAG; l++)
        if (b[l] > b[best])
            best = l;
    fftwf_destroy_plan(fx);
    fftwf_destroy_plan(fy);
    fftwf_destroy_plan(inv);
    fftwf_free(b);
    fftwf_free(X);
    fftwf_free(Y);
    return best;
}

/* in-RATE.wav and clean-RATE.wav in tmp: the first SECONDS of the demo
 * clip and its clean reference, resampled by `oscine process`. */
static int make_inputs(void)
{
    static const char *src[2] = {"tools/demo/noisy-speech.wav", "tools/demo/clean-speech.wav"};
    static const char *dst[2] = {"in", "clean"};
    for (int k = 0; k < 2; k++) {
        char path[PATH_MAX + 64], out16[320];
        snprintf(path, sizeof path, "%s/%s", repo_dir, src[k]);
        size_t n;
        float *x = sound_read_mono(path, 16000, &n);
        if (n < (size_t)SECONDS * 16000)
            return -1;
        snprintf(out16, sizeof out16, "%s", tpath(dst[k]));
        strcat(out16, "-16000.wav");
        SF_INFO si = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
        SNDFILE *f = sf_open(out16, SFM_WRITE, &si);
        if (!f || sf_writef_float(f, x, SECONDS * 16000) != SECONDS * 16000)
            return -1;
        sf_close(f);
        free(x);
        for (int r = 1; r < NRATES; r++) {
            char o[320], rate[16];
            snprintf(o, sizeof o, "%s-%d.wav", tpath(dst[k]), RATES[r].rate);
            snprintf(rate, sizeof rate, "%d", RATES[r].rate);
            if (run_oscine(NULL, 0, NULL, 0, "process", out16, o, "--chain", "passthrough",
                           "--rate", rate, "--bits", "float", "--quiet", NULL))
                return -1;
        }
    }
    return 0;
}

static const char *file_at(const char *what, int rate)
{
    static char b[4][400];
    static int next;
    char *p = b[next++ % 4];
    snprintf(p, sizeof b[0], "%s/%s-%d.wav", tmp, what, rate);
    return p;
}

/* The output of a host for input in-RATE.wav: as long as the input, late by
 * want_lag samples, denoised (or, when !denoised, the input itself delayed:
 * a bypass). */
static void check_output(const char *host, int rate, const char *out, int want_lag, int denoised)
{
    size_t n, nc, ny;
    float *x = sound_read_mono(file_at("in", rate), rate, &n);
    float *c = sound_read_mono(file_at("clean", rate), rate, &nc);
    float *y = sound_read_mono(out, rate, &ny);
    assert_int_equal(nc, n);
    if (ny != n)
        fail_msg("%s at %d Hz: %zu frames out for %zu in", host, rate, ny, n);
    int lag = best_lag(c, y, n);
    double in_db = si_sdr(c, x, n - (size_t)want_lag);
    double out_db = si_sdr(c, y + lag, n - (size_t)lag);
    print_message("%-28s %5d Hz: delay %4d samples (%.1f ms), SI-SDR %.2f dB (input %.2f dB)\n",
                  host, rate, lag, 1000.0 * lag / rate, out_db, in_db);
    if (lag != want_lag)
        fail_msg("%s at %d Hz: output late by %d samples, documented %d", host, rate, lag,
                 want_lag);
    if (denoised)
        assert_true(out_db > in_db + MIN_GAIN_DB);
    else
        assert_true(fabs(out_db - in_db) < 0.1);
    free(x);
    free(c);
    free(y);
}

static int setup(void **state)
{
    if (host_test_setup(build_dir, repo_dir, tmp, sizeof tmp))
        return -1;
    /* LV2_PATH: a folder holding only the bundle (lilv reads every entry of
     * each folder as a bundle); LADSPA_PATH: the build folder. */
    if (sh("mkdir %s/lv2 && ln -s %s/oscine.lv2 %s/lv2/oscine.lv2", tmp, build_dir, tmp))
        return -1;
    char models[PATH_MAX + 16];
    snprintf(models, sizeof models, "%s/models", repo_dir);
    setenv("OSCINE_MODEL_PATH", models, 1);
    setenv("LV2_PATH", tpath("lv2"), 1);
    setenv("LADSPA_PATH", build_dir, 1);
    setenv("GST_REGISTRY", tpath("gst-registry.bin"), 1); /* scanned afresh */
    return make_inputs();
}

static int teardown(void **state)
{
    tmpdir_remove(tmp);
    return 0;
}

/* -------------------------------------------------------------- tests */

/* ffmpeg -af lv2=plugin=urn\:oscine\:denoise: the latency is not compensated
 * (the output as long as the input, its last `latency` samples cut). */
static void test_ffmpeg_lv2(void **state)
{
    NEED("ffmpeg");
    for (int r = 0; r < NRATES; r++) {
        const char *out = file_at("ffmpeg-lv2", RATES[r].rate);
        if (sh("%sffmpeg -nostdin -hide_banner -loglevel error -y -i %s "
               "-af \"lv2=plugin='urn\\:oscine\\:denoise':controls='mix=1|limit_db=100'\" "
               "-c:a pcm_f32le %s", host_env, file_at("in", RATES[r].rate), out))
            fail_msg("ffmpeg lv2: %s", sh_out);
        check_output("ffmpeg lv2", RATES[r].rate, out, RATES[r].latency, 1);
    }
}

static void test_ffmpeg_ladspa(void **state)
{
    NEED("ffmpeg");
    for (int r = 0; r < NRATES; r++) {
        const char *out = file_at("ffmpeg-ladspa", RATES[r].rate);
        if (sh("%sffmpeg -nostdin -hide_banner -loglevel error -y -i %s "
               "-af ladspa=file=oscine_denoise_ladspa:plugin=oscine_denoise -c:a pcm_f32le %s",
               host_env, file_at("in", RATES[r].rate), out))
            fail_msg("ffmpeg ladspa: %s", sh_out);
        check_output("ffmpeg ladspa", RATES[r].rate, out, RATES[r].latency, 1);
    }
}

/* sox asks a value for every control port, the outputs (vad, latency)
 * included: mix limit_db vad latency. */
static void test_sox(void **state)
{
    NEED("sox");
    for (int r = 0; r < NRATES; r++) {
        const char *out = file_at("sox", RATES[r].rate);
        if (sh("%ssox -V1 %s %s ladspa oscine_denoise_ladspa.so oscine_denoise 1 100 0 0",
               host_env, file_at("in", RATES[r].rate), out))
            fail_msg("sox: %s", sh_out);
        check_output("sox ladspa", RATES[r].rate, out, RATES[r].latency, 1);
    }
}

/* The trimmed commands of docs/plugins.md: the input padded with `latency`
 * samples of silence at its end and the output's first `latency` dropped,
 * so the output is aligned with the input and as long. */
static void test_trimmed(void **state)
{
    int any = 0;
    for (int r = 0; r < NRATES; r++) {
        const int rate = RATES[r].rate, lat = RATES[r].latency;
        if (have_tool("ffmpeg")) {
            const char *out = file_at("ffmpeg-trim", rate);
            if (sh("%sffmpeg -nostdin -hide_banner -loglevel error -y -i %s -af "
                   "\"apad=pad_len=%d,lv2=plugin='urn\\:oscine\\:denoise',atrim=start_sample=%d\" "
                   "-c:a pcm_f32le %s", host_env, file_at("in", rate), lat, lat, out))
                fail_msg("ffmpeg trimmed: %s", sh_out);
            check_output("ffmpeg lv2, trimmed", rate, out, 0, 1);
            any = 1;
        }
        if (have_tool("sox")) {
            const char *out = file_at("sox-trim", rate);
            if (sh("%ssox -V1 %s %s pad 0 %ds ladspa oscine_denoise_ladspa.so oscine_denoise "
                   "1 100 0 0 trim %ds", host_env, file_at("in", rate), out, lat, lat))
                fail_msg("sox trimmed: %s", sh_out);
            check_output("sox ladspa, trimmed", rate, out, 0, 1);
            any = 1;
        }
    }
    if (!any) {
        print_message("SKIP: neither ffmpeg nor sox is installed (make deps)\n");
        skip();
    }
}

/* GStreamer's lv2 plugin makes every LV2 plugin an element; the enable
 * port becomes a boolean property that GStreamer starts at false whatever
 * the plugin's default, so without enable=true the element is a bypass (the
 * input, delayed by the same latency). */
static void test_gstreamer(void **state)
{
    NEED("gst-launch-1.0");
    NEED("gst-inspect-1.0");
    if (sh("gst-inspect-1.0 lv2") || !strstr(sh_out, "urn-oscine-denoise") ||
        !strstr(sh_out, "urn-oscine-resynth")) {
        print_message("SKIP: GStreamer's lv2 plugin (gstreamer1.0-plugins-bad) lists no "
                      "urn-oscine-denoise: %s\n", sh_out);
        skip();
    }
    for (int r = 0; r < NRATES; r++) {
        for (int en = 1; en >= (r == 0 ? 0 : 1); en--) { /* the bypass at 16 kHz only */
            const char *out = file_at(en ? "gst" : "gst-bypass", RATES[r].rate);
            if (sh("%sgst-launch-1.0 -q filesrc location=%s ! wavparse ! audioconvert ! "
                   "urn-oscine-denoise%s ! audioconvert ! audio/x-raw,format=F32LE ! wavenc ! "
                   "filesink location=%s", host_env, file_at("in", RATES[r].rate),
                   en ? " enable=true" : "", out))
                fail_msg("gst-launch-1.0: %s", sh_out);
            check_output(en ? "gstreamer urn-oscine-denoise" : "gstreamer, no enable=true",
                         RATES[r].rate, out, RATES[r].latency, en);
        }
    }
    /* the vocoder effect: it runs and keeps the length and level */
    const char *out = file_at("gst-resynth", 48000);
    if (sh("%sgst-launch-1.0 -q filesrc location=%s ! wavparse ! audioconvert ! "
           "urn-oscine-resynth enable=true ! audioconvert ! audio/x-raw,format=F32LE ! wavenc ! "
           "filesink location=%s", host_env, file_at("clean", 48000), out))
        fail_msg("gst-launch-1.0 resynth: %s", sh_out);
    size_t n, ny;
    float *c = sound_read_mono(file_at("clean", 48000), 48000, &n);
    float *y = sound_read_mono(out, 48000, &ny);
    assert_int_equal(ny, n);
    double ec = 0, ey = 0, ed = 0;
    for (size_t i = 0; i < n; i++) {
        ec += (double)c[i] * c[i];
        ey += (double)y[i] * y[i];
        ed += ((double)y[i] - c[i]) * ((double)y[i] - c[i]);
    }
    print_message("gstreamer urn-oscine-resynth 48000 Hz: level %.1f dB against the input's, "
                  "difference %.1f dB\n", 10 * log10(ey / ec), 10 * log10(ed / ec));
    assert_true(fabs(10 * log10(ey / ec)) < 3);
    assert_true(ed > 0.05 * ec); /* processed, not passed through */
    free(c);
    free(y);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ffmpeg_lv2),
        cmocka_unit_test(test_ffmpeg_ladspa),
        cmocka_unit_test(test_sox),
        cmocka_unit_test(test_trimmed),
        cmocka_unit_test(test_gstreamer),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
