/* test_ladspa.c - build/oscine_denoise_ladspa.so in real hosts: analyseplugin
 * (ladspa-sdk) describes it, applyplugin denoises WAV files and matches the
 * CLI (16 kHz) or the library's low-latency chain (48 kHz), and a dlopen
 * host written here checks the descriptor, runs changing block sizes in
 * place and out, reads the latency and vad ports, the exported symbols, and
 * a missing model.
 *
 * The model is the small golden one (tests/fixtures/denoise/small.osw),
 * found as denoise-16k.osw through $OSCINE_MODEL_PATH, as a user without a
 * bundle would. Under AddressSanitizer the external hosts run with the
 * sanitizer runtime preloaded (the plugin is instrumented). */
#include "util/util.h"

#include "oscine.h"

#include <dlfcn.h>
#include <ladspa.h>
#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODEL "tests/fixtures/denoise/small.osw"
#define SO "oscine_denoise_ladspa.so"

static char build_dir[PATH_MAX]; /* absolute: build/ or build-asan/ */
static char repo_dir[PATH_MAX];
static char tmp[256];

enum { P_IN, P_OUT, P_MIX, P_LIMIT, P_LATENCY, P_VAD, P_COUNT };

/* ------------------------------------------------------------ helpers */

typedef struct audio {
    float *x; /* (n) mono */
    long n;
    int rate;
    char samples[16];
} audio;

static audio wav_read(const char *path)
{
    SF_INFO info;
    float *x = sound_read(path, &info);
    assert_int_equal(info.channels, 1);
    audio a = {x, (long)info.frames, info.samplerate, ""};
    snprintf(a.samples, sizeof a.samples, "%s",
             (info.format & SF_FORMAT_SUBMASK) == SF_FORMAT_FLOAT ? "float" : "integer");
    return a;
}

static double rms_shift(const audio *ref, const audio *got, int shift)
{
    long n = got->n - shift < ref->n ? got->n - shift : ref->n;
    double e = 0;
    for (long i = 0; i < n; i++) {
        double d = (double)got->x[i + shift] - ref->x[i];
        e += d * d;
    }
    return n > 0 ? sqrt(e / (double)n) : INFINITY;
}

static double rms(const audio *a)
{
    double e = 0;
    for (long i = 0; i < a->n; i++)
        e += (double)a->x[i] * a->x[i];
    return sqrt(e / (double)a->n);
}

/* The library's chain as the plugin builds it, uncompensated. */
static audio chain_reference(const audio *in, float mix, float limit_db, int *latency)
{
    oscine_model_path mp = {"denoise", MODEL};
    oscine_chain_config cc = {.stages = "denoise", .sample_rate = in->rate, .channels = 1,
                              .low_latency = 1, .models = &mp, .nmodels = 1};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cc))
        fail_msg("%s", oscine_last_error());
    assert_int_equal(oscine_chain_set(c, "/denoise/mix", mix), 0);
    assert_int_equal(oscine_chain_set(c, "/denoise/limit_db", limit_db), 0);
    audio out = {malloc(sizeof(float) * (size_t)in->n), in->n, in->rate, "float"};
    for (long off = 0; off < in->n; off += 1000) {
        int m = in->n - off < 1000 ? (int)(in->n - off) : 1000;
        const float *pi[1] = {in->x + off};
        float *po[1] = {out.x + off};
        assert_int_equal(oscine_chain_process(c, pi, po, m), 0);
    }
    *latency = oscine_chain_latency(c);
    oscine_chain_destroy(c);
    return out;
}

/* ------------------------------------------------------ a dlopen host */

typedef struct host {
    void *so;
    const LADSPA_Descriptor *d;
    LADSPA_Handle h;
    LADSPA_Data ctl[P_COUNT];
} host;

static const LADSPA_Descriptor *open_so(void **so)
{
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/" SO, build_dir);
    *so = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!*so)
        fail_msg("dlopen %s: %s", path, dlerror());
    LADSPA_Descriptor_Function f = (LADSPA_Descriptor_Function)dlsym(*so, "ladspa_descriptor");
    assert_non_null(f);
    return f(0);
}

static int host_open(host *h, unsigned long rate)
{
    memset(h, 0, sizeof *h);
    h->d = open_so(&h->so);
    h->h = h->d->instantiate(h->d, rate);
    if (!h->h)
        return -1;
    h->ctl[P_MIX] = 1.0f;
    h->ctl[P_LIMIT] = 100.0f;
    for (int p = P_MIX; p < P_COUNT; p++)
        h->d->connect_port(h->h, (unsigned long)p, &h->ctl[p]);
    h->d->activate(h->h);
    return 0;
}

static void host_run(host *h, float *in, float *out, unsigned long n)
{
    h->d->connect_port(h->h, P_IN, in);
    h->d->connect_port(h->h, P_OUT, out);
    h->d->run(h->h, n);
}

static void host_close(host *h)
{
    if (h->h)
        h->d->cleanup(h->h);
    if (h->so)
        dlclose(h->so);
    memset(h, 0, sizeof *h);
}

static int plugin_latency(unsigned long rate)
{
    host h;
    assert_int_equal(host_open(&h, rate), 0);
    h.ctl[P_LATENCY] = -1;
    h.d->run(h.h, 0);
    int lat = (int)h.ctl[P_LATENCY];
    host_close(&h);
    return lat;
}

/* -------------------------------------------------------------- setup */

static int gen(const char *name, int rate, const char *bits)
{
    char r[16];
    snprintf(r, sizeof r, "%d", rate);
    return run_oscine(NULL, 0, NULL, 0, "generate", tpath(name), "--signal", "voice-noise",
                      "--seconds", "3", "--rate", r, "--bits", bits, "--quiet", NULL);
}

static int setup(void **state)
{
    if (host_test_setup(build_dir, repo_dir, tmp, sizeof tmp))
        return -1;
    if (sh("mkdir %s/weights %s/empty && ln -s %s/%s %s/weights/denoise-16k.osw", tmp, tmp,
           repo_dir, MODEL, tmp))
        return -1;
    setenv("OSCINE_MODEL_PATH", tpath("weights"), 1);
    if (gen("in16.wav", 16000, "16") || gen("in48.wav", 48000, "16"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    tmpdir_remove(tmp);
    return 0;
}

/* -------------------------------------------------------------- tests */

static void test_analyseplugin(void **state)
{
    NEED("analyseplugin");
    int rc = sh("%sanalyseplugin %s/" SO, host_env, build_dir);
    print_message("%s", sh_out);
    assert_int_equal(rc, 0);
    const char *want[] = {
        "Plugin Label: \"oscine_denoise\"",
        "Plugin Unique ID: 5791",
        "Environment: Normal or Hard Real-Time",
        "\"in\" input, audio",
        "\"out\" output, audio",
        "\"mix\" input, control, 0 to 1, default 1",
        "\"limit_db\" input, control, 0 to 100, default 100",
        "\"latency\" output, control",
        "\"vad\" output, control, 0 to 1",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(sh_out, want[i]))
            fail_msg("analyseplugin: no '%s'", want[i]);
}

/* applyplugin at 16 kHz against `oscine denoise` (no resampling: the same
 * path), defaults and podcast-like settings. applyplugin writes what it
 * reads (16-bit here), so the bound covers that rounding. */
static void test_applyplugin_matches_cli(void **state)
{
    NEED("applyplugin");
    int lat = plugin_latency(16000);
    print_message("plugin latency at 16 kHz: %d samples\n", lat);
    const char *cases[][2] = {{"1", "100"}, {"0.9", "25"}, {"0.5", "12"}};
    for (int k = 0; k < 3; k++) {
        int rc = sh("%sapplyplugin %s %s %s/" SO " oscine_denoise %s %s", host_env,
                    tpath("in16.wav"), tpath("ladspa-16.wav"), build_dir, cases[k][0],
                    cases[k][1]);
        if (rc)
            fail_msg("applyplugin: %s", sh_out);
        char err[1024];
        rc = run_oscine(NULL, 0, err, sizeof err, "denoise", tpath("in16.wav"),
                        tpath("cli-16.wav"), "--model", MODEL, "--mix", cases[k][0],
                        "--limit-db", cases[k][1], "--bits", "float", "--quiet", NULL);
        if (rc)
            fail_msg("oscine denoise: %s", err);
        audio got = wav_read(tpath("ladspa-16.wav")), cli = wav_read(tpath("cli-16.wav"));
        assert_int_equal(got.n, cli.n);
        double d = rms_shift(&cli, &got, lat);
        print_message("applyplugin (mix %s, limit_db %s; %s output) vs oscine denoise: RMS "
                      "diff %.3g (signal RMS %.3g)\n", cases[k][0], cases[k][1], got.samples, d,
                      rms(&cli));
        assert_true(d < 1e-4);
        assert_true(rms(&cli) > 1e-3);
        free(got.x);
        free(cli.x);
    }
}

/* applyplugin at 48 kHz: the library's low-latency chain on the same
 * samples, and the CLI (high-quality resampling) measured for the record. */
static void test_applyplugin_48k(void **state)
{
    NEED("applyplugin");
    audio in = wav_read(tpath("in48.wav"));
    int lat;
    audio ref = chain_reference(&in, 1.0f, 100.0f, &lat);
    assert_int_equal(plugin_latency(48000), lat);
    int rc = sh("%sapplyplugin %s %s %s/" SO " oscine_denoise 1 100", host_env, tpath("in48.wav"),
                tpath("ladspa-48.wav"), build_dir);
    if (rc)
        fail_msg("applyplugin: %s", sh_out);
    audio got = wav_read(tpath("ladspa-48.wav"));
    double d = rms_shift(&ref, &got, 0);
    print_message("applyplugin at 48 kHz (%s output), latency %d: vs the library chain RMS "
                  "diff %.3g\n", got.samples, lat, d);
    assert_true(d < 1e-4);
    char err[1024];
    assert_int_equal(run_oscine(NULL, 0, err, sizeof err, "denoise", tpath("in48.wav"),
                                tpath("cli-48.wav"), "--model", MODEL, "--bits", "float",
                                "--quiet", NULL), 0);
    audio cli = wav_read(tpath("cli-48.wav"));
    print_message("  vs oscine denoise (high-quality resampling): RMS diff %.3g, signal RMS "
                  "%.3g\n", rms_shift(&cli, &got, lat), rms(&cli));
    free(cli.x);
    free(got.x);
    free(ref.x);
    free(in.x);
}

/* The descriptor, then changing block sizes (0, tiny, over 8192), every
 * other block in place, against the library; the output ports. */
static void test_dlopen_host(void **state)
{
    host h;
    assert_int_equal(host_open(&h, 48000), 0);
    const LADSPA_Descriptor *d = h.d;
    assert_string_equal(d->Label, "oscine_denoise");
    assert_int_equal(d->UniqueID, 5791);
    assert_int_equal(d->PortCount, P_COUNT);
    assert_true(LADSPA_IS_HARD_RT_CAPABLE(d->Properties));
    assert_false(LADSPA_IS_INPLACE_BROKEN(d->Properties));
    const char *names[P_COUNT] = {"in", "out", "mix", "limit_db", "latency", "vad"};
    for (int p = 0; p < P_COUNT; p++)
        assert_string_equal(d->PortNames[p], names[p]);
    assert_true(LADSPA_IS_PORT_OUTPUT(d->PortDescriptors[P_LATENCY]) &&
                LADSPA_IS_PORT_CONTROL(d->PortDescriptors[P_LATENCY]));
    LADSPA_Descriptor_Function f = (LADSPA_Descriptor_Function)dlsym(h.so, "ladspa_descriptor");
    assert_null(f(1));

    audio in = wav_read(tpath("in48.wav"));
    int lat;
    h.ctl[P_MIX] = 0.7f;
    h.ctl[P_LIMIT] = 20.0f;
    audio ref = chain_reference(&in, 0.7f, 20.0f, &lat);
    float *out = malloc(sizeof(float) * (size_t)in.n), *buf = malloc(sizeof(float) * 20000);
    uint64_t seed = 7;
    float vad_max = 0;
    int k = 0;
    for (long off = 0; off < in.n; k++) {
        float r = (urand(&seed) + 1.0f) * 0.5f;
        long m = k % 4 == 0 ? 1 + (long)(r * 19999) : k % 4 == 1 ? k % 3 : 1 + (long)(r * 1024);
        if (m > in.n - off)
            m = in.n - off;
        if (k % 2) {
            memcpy(buf, in.x + off, sizeof(float) * (size_t)m);
            host_run(&h, buf, buf, (unsigned long)m);
            memcpy(out + off, buf, sizeof(float) * (size_t)m);
        } else {
            host_run(&h, in.x + off, out + off, (unsigned long)m);
        }
        assert_int_equal((int)h.ctl[P_LATENCY], lat);
        assert_true(h.ctl[P_VAD] >= 0.0f && h.ctl[P_VAD] <= 1.0f);
        vad_max = fmaxf(vad_max, h.ctl[P_VAD]);
        off += m;
    }
    double e = 0;
    for (long i = 0; i < in.n; i++)
        e = fmax(e, fabs((double)out[i] - ref.x[i]));
    print_message("%d blocks of 0..20000 frames, half in place, mix 0.7 limit_db 20: max "
                  "|plugin - library| = %.3g, latency %d, vad max %.2f\n", k, e, lat, vad_max);
    assert_true(e <= 1e-6);
    assert_true(vad_max > 0.1f);
    /* activate again: back to the start, the same output */
    h.d->activate(h.h);
    host_run(&h, in.x, out, 4096);
    for (long i = 0; i < 4096; i++)
        assert_float_equal(out[i], ref.x[i], 1e-6);
    host_close(&h);
    free(out);
    free(buf);
    free(ref.x);
    free(in.x);
}

static void test_exports(void **state)
{
    NEED("nm");
    assert_int_equal(sh("nm -D --defined-only %s/" SO " | awk '{print $3}'", build_dir), 0);
    assert_string_equal(sh_out, "ladspa_descriptor\n");
}

/* No model anywhere: instantiate returns NULL and says why; applyplugin
 * fails. */
static void test_missing_model(void **state)
{
    const char *installed = OSCINE_DATADIR "/models/denoise-16k.osw";
    if (path_exists(installed)) {
        print_message("SKIP: %s is installed, so a model is always found\n", installed);
        skip();
    }
    char cwd[PATH_MAX];
    assert_non_null(getcwd(cwd, sizeof cwd));
    setenv("OSCINE_MODEL_PATH", tpath("empty"), 1);
    assert_int_equal(chdir(tmp), 0); /* no ./models here */
    host h;
    int rc = host_open(&h, 48000); /* (tmp has no models/ folder) */
    if (have_tool("applyplugin"))
        assert_int_not_equal(sh("%sapplyplugin in16.wav never.wav %s/" SO " oscine_denoise 1 100",
                                host_env, build_dir), 0);
    print_message("applyplugin without a model: %s", sh_out);
    assert_int_equal(chdir(cwd), 0);
    setenv("OSCINE_MODEL_PATH", tpath("weights"), 1);
    assert_int_equal(rc, -1);
    assert_non_null(strstr(sh_out, "denoise-16k.osw' not found"));
    host_close(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_analyseplugin),
        cmocka_unit_test(test_applyplugin_matches_cli),
        cmocka_unit_test(test_applyplugin_48k),
        cmocka_unit_test(test_dlopen_host),
        cmocka_unit_test(test_exports),
        cmocka_unit_test(test_missing_model),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
