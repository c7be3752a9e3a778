/* test_lv2.c - the oscine.lv2 bundle in real hosts: lv2ls/lv2info list the
 * plugins and their ports, sord_validate checks the TTL against Debian's LV2
 * schemas, lv2file (a real host) denoises WAV files and matches the CLI or
 * the library, and a small lilv host written here runs the plugins with
 * changing block sizes, in place, bypassed and with state saved and
 * restored, checks the generated presets against presets/NAME.osc and the
 * ports against the stage's parameter table, and a missing model.
 *
 * The bundle under test is build/oscine.lv2 with the small golden models
 * (tests/fixtures/denoise/small.osw, tests/fixtures/vocoder/small.osw)
 * linked in as its denoise-16k.osw and vocoder-16k.osw, in a temporary
 * LV2_PATH; "oscine resynth" is checked against the library's chain. Under AddressSanitizer the external hosts run with the
 * sanitizer runtime preloaded (the plugin is instrumented). */
#include "util/lv2feat.h"
#include "util/util.h"

#include "nn/kernels.h"
#include "oscine.h"

#include <lilv/lilv.h>
#include <lv2/atom/atom.h>
#include <lv2/log/log.h>
#include <lv2/presets/presets.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>

#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define MODEL "tests/fixtures/denoise/small.osw"
#define URI_MONO "urn:oscine:denoise"
#define URI_STEREO "urn:oscine:denoise-stereo"
#define URI_RESYNTH "urn:oscine:resynth"
#define VOC_MODEL "tests/fixtures/vocoder/small.osw"

static char build_dir[PATH_MAX]; /* absolute: build/ or build-asan/ */
static char repo_dir[PATH_MAX];
static char tmp[256];             /* LV2_PATH is tmp/lv2; files in tmp/ */

/* ------------------------------------------------------------ helpers */

typedef struct audio {
    float *x; /* (n, ch) interleaved */
    long n;
    int ch, rate;
} audio;

static audio wav_read(const char *path)
{
    SF_INFO info;
    float *x = sound_read(path, &info);
    return (audio){x, (long)info.frames, info.channels, info.samplerate};
}

/* RMS of got[i + shift] - ref[i] over the frames both have. */
static double rms_shift(const audio *ref, const audio *got, int shift)
{
    assert_int_equal(ref->ch, got->ch);
    long n = (got->n - shift < ref->n ? got->n - shift : ref->n);
    double e = 0;
    for (long i = 0; i < n; i++)
        for (int c = 0; c < ref->ch; c++) {
            double d = (double)got->x[(i + shift) * got->ch + c] - ref->x[i * ref->ch + c];
            e += d * d;
        }
    return n > 0 ? sqrt(e / ((double)n * ref->ch)) : INFINITY;
}

static double rms(const audio *a)
{
    double e = 0;
    for (long i = 0; i < a->n * a->ch; i++)
        e += (double)a->x[i] * a->x[i];
    return sqrt(e / (double)(a->n * a->ch));
}

/* The library's chain as the plugin builds it (denoise, low-latency
 * resampling) over a whole file in blocks of `block`, without latency
 * compensation: what the plugin should output sample for sample. */
static audio chain_reference(const audio *in, float mix, float limit_db, int block, int *latency)
{
    oscine_model_path mp = {"denoise", MODEL};
    oscine_chain_config cc = {.stages = "denoise", .sample_rate = in->rate, .channels = in->ch,
                              .low_latency = 1, .models = &mp, .nmodels = 1};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cc))
        fail_msg("%s", oscine_last_error());
    assert_int_equal(oscine_chain_set(c, "/denoise/mix", mix), 0);
    assert_int_equal(oscine_chain_set(c, "/denoise/limit_db", limit_db), 0);
    audio out = {malloc(sizeof(float) * (size_t)(in->n * in->ch)), in->n, in->ch, in->rate};
    float *pi[2], *po[2];
    for (int ch = 0; ch < in->ch; ch++) {
        pi[ch] = malloc(sizeof(float) * (size_t)block);
        po[ch] = malloc(sizeof(float) * (size_t)block);
    }
    for (long off = 0; off < in->n; off += block) {
        int m = in->n - off < block ? (int)(in->n - off) : block;
        for (int ch = 0; ch < in->ch; ch++)
            for (int i = 0; i < m; i++)
                pi[ch][i] = in->x[(off + i) * in->ch + ch];
        assert_int_equal(oscine_chain_process(c, (const float *const *)pi, po, m), 0);
        for (int ch = 0; ch < in->ch; ch++)
            for (int i = 0; i < m; i++)
                out.x[(off + i) * in->ch + ch] = po[ch][i];
    }
    *latency = oscine_chain_latency(c);
    assert_int_equal(oscine_chain_glitches(c), 0);
    for (int ch = 0; ch < in->ch; ch++) {
        free(pi[ch]);
        free(po[ch]);
    }
    oscine_chain_destroy(c);
    return out;
}

/* ------------------------------------------------------- a lilv host */


typedef struct host {
    LilvWorld *world;
    const LilvPlugin *plugin;
    LilvInstance *inst;
    int ch, rate;
    float ctl[5]; /* mix, limit_db, enable, vad, latency */
    uint32_t base; /* index of the first control port */
} host;

static LilvWorld *world_new(const char *lv2_path)
{
    setenv("LV2_PATH", lv2_path, 1);
    LilvWorld *w = lilv_world_new();
    lilv_world_load_all(w);
    return w;
}

static const LilvPlugin *find_plugin(LilvWorld *w, const char *uri)
{
    LilvNode *u = lilv_new_uri(w, uri);
    const LilvPlugin *p = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(w), u);
    lilv_node_free(u);
    return p;
}

static uint32_t port_index(const host *h, const char *symbol)
{
    LilvNode *s = lilv_new_string(h->world, symbol);
    const LilvPort *p = lilv_plugin_get_port_by_symbol(h->plugin, s);
    lilv_node_free(s);
    assert_non_null(p);
    return lilv_port_get_index(h->plugin, p);
}

/* Instantiate, connect the control ports to h->ctl, activate. */
static int host_open(host *h, const char *lv2_path, const char *uri, int rate)
{
    memset(h, 0, sizeof *h);
    h->world = world_new(lv2_path);
    h->plugin = find_plugin(h->world, uri);
    assert_non_null(h->plugin);
    h->ch = strcmp(uri, URI_STEREO) ? 1 : 2;
    h->rate = rate;
    lv2t_log_text[0] = 0;
    h->inst = lilv_plugin_instantiate(h->plugin, rate, lv2t_features);
    if (!h->inst)
        return -1;
    const char *sym[5] = {"mix", "limit_db", "enable", "vad", "latency"};
    h->ctl[0] = 1.0f;
    h->ctl[1] = 100.0f;
    h->ctl[2] = 1.0f;
    h->base = port_index(h, "mix");
    assert_int_equal(h->base, 2 * (uint32_t)h->ch); /* the fixed layout the code assumes */
    for (int i = 0; i < 5; i++) {
        assert_int_equal(port_index(h, sym[i]), h->base + (uint32_t)i);
        lilv_instance_connect_port(h->inst, h->base + (uint32_t)i, &h->ctl[i]);
    }
    lilv_instance_activate(h->inst);
    return 0;
}

static void host_close(host *h)
{
    if (h->inst) {
        lilv_instance_deactivate(h->inst);
        lilv_instance_free(h->inst);
    }
    lilv_world_free(h->world);
    memset(h, 0, sizeof *h);
}

/* Run n frames from planar in to planar out (may be the same buffers). */
static void host_run(host *h, float *const *in, float *const *out, uint32_t n)
{
    for (int c = 0; c < h->ch; c++) {
        lilv_instance_connect_port(h->inst, (uint32_t)c, in[c]);
        lilv_instance_connect_port(h->inst, (uint32_t)(h->ch + c), out[c]);
    }
    lilv_instance_run(h->inst, n);
}

static int plugin_latency(const char *uri, int rate)
{
    char lv2[300];
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    host h;
    assert_int_equal(host_open(&h, lv2, uri, rate), 0);
    h.ctl[4] = -1;
    lilv_instance_run(h.inst, 0); /* a host reading the latency */
    int lat = (int)h.ctl[4];
    host_close(&h);
    return lat;
}

/* -------------------------------------------------------------- setup */

static void make_bundle(const char *dir, const char *model_as)
{
    char d[400];
    snprintf(d, sizeof d, "%s/oscine.lv2", dir);
    assert_int_equal(sh("mkdir -p %s", d), 0);
    const char *files[] = {"oscine.so", "manifest.ttl", "oscine.ttl", "presets.ttl"};
    for (int i = 0; i < 4; i++)
        assert_int_equal(sh("ln -s %s/oscine.lv2/%s %s/%s", build_dir, files[i], d, files[i]), 0);
    if (model_as) {
        assert_int_equal(sh("ln -s %s/%s %s/%s", repo_dir, MODEL, d, model_as), 0);
        assert_int_equal(sh("ln -s %s/%s %s/vocoder-16k.osw", repo_dir, VOC_MODEL, d), 0);
    }
}

static int gen(const char *name, int rate, int channels, const char *bits)
{
    char path[300], r[16], c[16];
    snprintf(path, sizeof path, "%s/%s", tmp, name);
    snprintf(r, sizeof r, "%d", rate);
    snprintf(c, sizeof c, "%d", channels);
    return run_oscine(NULL, 0, NULL, 0, "generate", path, "--signal", "voice-noise", "--seconds",
                      "3", "--rate", r, "--channels", c, "--bits", bits, "--quiet", NULL);
}

static int setup(void **state)
{
    if (host_test_setup(build_dir, repo_dir, tmp, sizeof tmp))
        return -1;
    char d[300];
    snprintf(d, sizeof d, "%s/lv2", tmp);
    make_bundle(d, "denoise-16k.osw");
    /* a second model for the state test: the same weights by another name */
    assert_int_equal(sh("ln -s %s/%s %s/oscine.lv2/other.osw", repo_dir, MODEL, d), 0);
    snprintf(d, sizeof d, "%s/lv2-nomodel", tmp);
    make_bundle(d, NULL);
    unsetenv("OSCINE_MODEL_PATH");
    if (gen("in16.wav", 16000, 1, "float") || gen("in48.wav", 48000, 1, "float") ||
        gen("in44s.wav", 44100, 2, "float"))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    tmpdir_remove(tmp);
    return 0;
}

/* -------------------------------------------------------------- tests */

static void test_lv2ls(void **state)
{
    NEED("lv2ls");
    assert_int_equal(sh("LV2_PATH=%s/lv2 lv2ls", tmp), 0);
    assert_non_null(strstr(sh_out, URI_MONO "\n"));
    assert_non_null(strstr(sh_out, URI_STEREO "\n"));
    assert_non_null(strstr(sh_out, URI_RESYNTH "\n"));
    assert_non_null(strstr(sh_out, "urn:oscine:synth\n"));
}

/* lv2info's "Symbol:" lines in port order, and the latency and presets. */
static void check_lv2info(const char *uri, const char *const *symbols, int n, int latency_port)
{
    assert_int_equal(sh("LV2_PATH=%s/lv2 lv2info %s", tmp, uri), 0);
    const char *p = sh_out;
    for (int i = 0; i < n; i++) {
        char want[96];
        snprintf(want, sizeof want, "Port %d:", i);
        p = strstr(p, want);
        assert_non_null(p);
        snprintf(want, sizeof want, "Symbol:      %s\n", symbols[i]);
        const char *s = strstr(p, "Symbol:");
        assert_non_null(s);
        if (strncmp(s, want, strlen(want)))
            fail_msg("%s port %d: want %s", uri, i, want);
    }
    char want[96];
    snprintf(want, sizeof want, "Has latency:       yes, reported by port %d", latency_port);
    assert_non_null(strstr(sh_out, want));
    assert_non_null(strstr(sh_out, "#reportsLatency"));
    assert_non_null(strstr(sh_out, "Designation: http://lv2plug.in/ns/lv2core#enabled"));
    assert_non_null(strstr(sh_out, "http://lv2plug.in/ns/ext/state#interface"));
    if (strcmp(uri, URI_RESYNTH)) {
        assert_non_null(strstr(sh_out, "voice-call"));
        assert_non_null(strstr(sh_out, "podcast"));
    }
}

static void test_lv2info_ports(void **state)
{
    NEED("lv2info");
    const char *mono[] = {"in", "out", "mix", "limit_db", "enable", "vad", "latency"};
    const char *stereo[] = {"in_l", "in_r", "out_l", "out_r", "mix", "limit_db",
                            "enable", "vad", "latency"};
    check_lv2info(URI_MONO, mono, 7, 6);
    check_lv2info(URI_STEREO, stereo, 9, 8);
    const char *resynth[] = {"in", "out", "warp", "tilt", "freeze", "mix", "low_db",
                             "mid_db", "high_db", "enable", "latency"};
    check_lv2info(URI_RESYNTH, resynth, 11, 10);
}

static void test_sord_validate(void **state)
{
    NEED("sord_validate");
    int rc = sh("sord_validate /usr/lib/lv2/*/*.ttl %s/oscine.lv2/*.ttl", build_dir);
    print_message("%s", sh_out);
    assert_int_equal(rc, 0);
    assert_non_null(strstr(sh_out, "Found 0 errors"));
    /* and the bundle's files were among those read */
    assert_int_equal(sh("ls /usr/lib/lv2/core.lv2/lv2core.ttl %s/oscine.lv2/presets.ttl",
                        build_dir), 0);
}

/* Only lv2_descriptor is exported; PortAudio, JACK, liblo and libsndfile are
 * not pulled into a host. */
static void test_exports(void **state)
{
    NEED("nm");
    NEED("readelf");
    assert_int_equal(sh("nm -D --defined-only %s/oscine.lv2/oscine.so | awk '{print $3}'",
                        build_dir), 0);
    assert_string_equal(sh_out, "lv2_descriptor\n");
    assert_int_equal(sh("readelf -d %s/oscine.lv2/oscine.so | grep NEEDED", build_dir), 0);
    assert_null(strstr(sh_out, "portaudio"));
    assert_null(strstr(sh_out, "jack"));
    assert_null(strstr(sh_out, "liblo"));
    assert_null(strstr(sh_out, "sndfile"));
}

/* The mix and limit_db ports say what the denoise stage's table says. */
typedef struct want_param {
    const char *address;
    float min, max, def;
} want_param;

static void collect(void *user, const char *stage, const char *address, const char *unit,
                    float min, float max, float def, const char *help)
{
    want_param *w = user;
    for (; w->address; w++)
        if (!strcmp(w->address, address)) {
            w->min = min;
            w->max = max;
            w->def = def;
        }
}

static void check_ports(LilvWorld *world, const char *uri, want_param *w)
{
    oscine_params_list(collect, w);
    const LilvPlugin *p = find_plugin(world, uri);
    assert_non_null(p);
    for (; w->address; w++) {
        LilvNode *sym = lilv_new_string(world, strrchr(w->address, '/') + 1);
        const LilvPort *port = lilv_plugin_get_port_by_symbol(p, sym);
        lilv_node_free(sym);
        assert_non_null(port);
        LilvNode *def, *min, *max;
        lilv_port_get_range(p, port, &def, &min, &max);
        if (lilv_node_as_float(def) != w->def || lilv_node_as_float(min) != w->min ||
            lilv_node_as_float(max) != w->max)
            fail_msg("%s %s: %g..%g default %g, the stage has %g..%g default %g", uri,
                     w->address, lilv_node_as_float(min), lilv_node_as_float(max),
                     lilv_node_as_float(def), w->min, w->max, w->def);
        lilv_node_free(def);
        lilv_node_free(min);
        lilv_node_free(max);
    }
}

static void test_ports_match_stage_table(void **state)
{
    char lv2[300];
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    LilvWorld *world = world_new(lv2);
    const char *uris[] = {URI_MONO, URI_STEREO};
    for (int u = 0; u < 2; u++) {
        want_param w[] = {{"/denoise/mix", NAN, NAN, NAN},
                          {"/denoise/limit_db", NAN, NAN, NAN},
                          {NULL, 0, 0, 0}};
        check_ports(world, uris[u], w);
    }
    want_param r[] = {{"/resynth/warp", NAN, NAN, NAN},   {"/resynth/tilt", NAN, NAN, NAN},
                      {"/resynth/freeze", NAN, NAN, NAN}, {"/resynth/mix", NAN, NAN, NAN},
                      {"/resynth/low_db", NAN, NAN, NAN}, {"/resynth/mid_db", NAN, NAN, NAN},
                      {"/resynth/high_db", NAN, NAN, NAN}, {NULL, 0, 0, 0}};
    check_ports(world, URI_RESYNTH, r);
    lilv_world_free(world);
}

/* OpenBLAS's kernel set in a host: where it loaded an older set than the
 * CPU's (forced to Prescott here, its fallback for CPUs it does not know),
 * the plugin logs once which OPENBLAS_CORETYPE would give it full speed; on
 * the best set it says nothing. */
static void test_blas_note(void **state)
{
    NEED("lv2file");
    const char *want = nn_blas_coretype_for("Prescott", nn_cpu_level());
    for (int k = 0; k < 2; k++) {
        const char *core = k && want ? want : "Prescott";
        int rc = sh("%sOPENBLAS_CORETYPE=%s LV2_PATH=%s/lv2 lv2file -i %s/in16.wav -o %s/lv2-blas.wav %s",
                    host_env, core, tmp, tmp, tmp, URI_MONO);
        if (rc)
            fail_msg("lv2file: %s", sh_out);
        const char *note = strstr(sh_out, "OpenBLAS loaded its Prescott kernels");
        print_message("lv2file, OPENBLAS_CORETYPE=%s: %s\n", core, note ? note : "no note\n");
        if (!k && want) {
            char hint[96];
            snprintf(hint, sizeof hint, "OPENBLAS_CORETYPE=%s in the host", want);
            assert_non_null(note);
            assert_non_null(strstr(sh_out, hint));
            const char *again = strstr(note + 1, "OpenBLAS loaded");
            assert_null(again);
        } else {
            assert_null(strstr(sh_out, "OpenBLAS loaded"));
        }
    }
}

/* lv2file at 16 kHz (no resampling: the CLI's path exactly) against
 * `oscine denoise`, with the defaults and with the podcast preset. */
static void test_lv2file_matches_cli(void **state)
{
    NEED("lv2file");
    int lat = plugin_latency(URI_MONO, 16000);
    int lat_ref;
    audio in = wav_read(tpath("in16.wav"));
    audio ref = chain_reference(&in, 1.0f, 100.0f, 512, &lat_ref);
    assert_int_equal(lat, lat_ref);
    print_message("plugin latency at 16 kHz: %d samples\n", lat);
    struct {
        const char *lv2_args, *cli_mix, *cli_limit;
    } cases[] = {{"", "1", "100"}, {"-P podcast", "0.9", "25"},
                 {"-p mix:0.5 -p limit_db:12 -b 333", "0.5", "12"}};
    for (int k = 0; k < 3; k++) {
        int rc = sh("%sLV2_PATH=%s/lv2 lv2file %s -i %s/in16.wav -o %s/lv2-16.wav %s", host_env,
                    tmp, cases[k].lv2_args, tmp, tmp, URI_MONO);
        if (rc)
            fail_msg("lv2file: %s", sh_out);
        char cli_in[300], cli_out[300];
        snprintf(cli_in, sizeof cli_in, "%s/in16.wav", tmp);
        snprintf(cli_out, sizeof cli_out, "%s/cli-16.wav", tmp);
        char err[1024];
        rc = run_oscine(NULL, 0, err, sizeof err, "denoise", cli_in, cli_out, "--model", MODEL,
                        "--mix", cases[k].cli_mix, "--limit-db", cases[k].cli_limit, "--bits",
                        "float", "--quiet", NULL);
        if (rc)
            fail_msg("oscine denoise: %s", err);
        audio got = wav_read(tpath("lv2-16.wav"));
        audio cli = wav_read(cli_out);
        assert_int_equal(got.n, in.n);
        double d = rms_shift(&cli, &got, lat);
        print_message("lv2file %-32s vs oscine denoise --mix %s --limit-db %s: RMS diff %.3g "
                      "(signal RMS %.3g)\n", cases[k].lv2_args[0] ? cases[k].lv2_args : "(defaults)",
                      cases[k].cli_mix, cases[k].cli_limit, d, rms(&cli));
        assert_true(d < 1e-4);
        assert_true(rms(&cli) > 1e-3);
        free(got.x);
        free(cli.x);
    }
    free(in.x);
    free(ref.x);
}

/* lv2file at 48 kHz (mono) and 44.1 kHz (stereo plugin, stereo file): the
 * plugin resamples with the low-latency filters, so it matches the library's
 * chain built the same way, sample for sample; the CLI (high-quality
 * resampling, longer latency) is measured for the record. */
static void check_lv2file_resampled(const char *file, const char *uri, int block)
{
    char path[300];
    snprintf(path, sizeof path, "%s/%s", tmp, file);
    audio in = wav_read(path);
    int lat_ref;
    audio ref = chain_reference(&in, 1.0f, 100.0f, 1000, &lat_ref);
    int lat = plugin_latency(uri, in.rate);
    assert_int_equal(lat, lat_ref);
    int rc = sh("%sLV2_PATH=%s/lv2 lv2file -b %d -i %s -o %s/lv2-rs.wav %s", host_env, tmp, block,
                path, tmp, uri);
    if (rc)
        fail_msg("lv2file: %s", sh_out);
    audio got = wav_read(tpath("lv2-rs.wav"));
    assert_int_equal(got.n, in.n);
    assert_int_equal(got.ch, in.ch);
    double d = rms_shift(&ref, &got, 0);
    print_message("lv2file %s at %d Hz, %d ch, blocks of %d: latency %d; vs the library "
                  "chain: RMS diff %.3g\n", uri, in.rate, in.ch, block, lat, d);
    assert_true(d < 1e-6);

    char cli_out[300], err[1024];
    snprintf(cli_out, sizeof cli_out, "%s/cli-rs.wav", tmp);
    assert_int_equal(run_oscine(NULL, 0, err, sizeof err, "denoise", path, cli_out, "--model",
                                MODEL, "--bits", "float", "--quiet", NULL), 0);
    audio cli = wav_read(cli_out);
    print_message("  vs oscine denoise (high-quality resampling): RMS diff %.3g, signal RMS "
                  "%.3g (%.1f dB)\n", rms_shift(&cli, &got, lat), rms(&cli),
                  20 * log10(rms_shift(&cli, &got, lat) / rms(&cli)));
    free(cli.x);
    free(got.x);
    free(ref.x);
    free(in.x);
}

static void test_lv2file_48k(void **state)
{
    NEED("lv2file");
    check_lv2file_resampled("in48.wav", URI_MONO, 1000);
}

static void test_lv2file_stereo_44k(void **state)
{
    NEED("lv2file");
    check_lv2file_resampled("in44s.wav", URI_STEREO, 4096);
}

/* The lilv host: random block sizes from 1 to 20000 (over the chain's 8192:
 * the plugin splits them), every other block in place, against the
 * library's chain; the latency port constant, vad in 0..1. */
static void test_changing_blocks(void **state)
{
    char path[300], lv2[300];
    snprintf(path, sizeof path, "%s/in48.wav", tmp);
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    audio in = wav_read(path);
    int lat_ref;
    audio ref = chain_reference(&in, 1.0f, 100.0f, 4096, &lat_ref);
    host h;
    assert_int_equal(host_open(&h, lv2, URI_MONO, in.rate), 0);
    float *out = malloc(sizeof(float) * (size_t)in.n);
    float *buf = malloc(sizeof(float) * 20000);
    uint64_t seed = 42;
    float vad_max = 0;
    int k = 0, big = 0;
    for (long off = 0; off < in.n; k++) {
        /* mostly host-like sizes, some over the chain's largest, some tiny */
        float r = (urand(&seed) + 1.0f) * 0.5f;
        long m = k % 4 == 0 ? 1 + (long)(r * 19999) : k % 4 == 1 ? 1 + k % 7 : 1 + (long)(r * 1024);
        if (m > in.n - off)
            m = in.n - off;
        big |= m > OSCINE_MAX_BLOCK;
        if (k % 2) {
            memcpy(buf, in.x + off, sizeof(float) * (size_t)m);
            host_run(&h, (float *[]){buf}, (float *[]){buf}, (uint32_t)m);
            memcpy(out + off, buf, sizeof(float) * (size_t)m);
        } else {
            host_run(&h, (float *[]){in.x + off}, (float *[]){out + off}, (uint32_t)m);
        }
        assert_int_equal((int)h.ctl[4], lat_ref);
        assert_true(h.ctl[3] >= 0.0f && h.ctl[3] <= 1.0f);
        vad_max = fmaxf(vad_max, h.ctl[3]);
        off += m;
    }
    assert_true(big);
    double e = 0;
    for (long i = 0; i < in.n; i++)
        e = fmax(e, fabs((double)out[i] - ref.x[i]));
    print_message("%d blocks of 1..20000 frames, half in place: max |plugin - library| = %.3g; "
                  "vad max %.2f\n", k, e, vad_max);
    assert_true(e <= 1e-6);
    assert_true(vad_max > 0.1f);
    host_close(&h);
    free(out);
    free(buf);
    free(ref.x);
    free(in.x);
}

/* enable = 0 from the start: the input delayed by the latency, exactly;
 * then enabled: a 20 ms crossfade and then the denoised output exactly;
 * the latency never changes. Also: mix 0 is the delayed input too. */
static void test_bypass(void **state)
{
    char path[300], lv2[300];
    snprintf(path, sizeof path, "%s/in48.wav", tmp);
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    audio in = wav_read(path);
    int lat;
    audio ref = chain_reference(&in, 1.0f, 100.0f, 480, &lat);
    host h;
    assert_int_equal(host_open(&h, lv2, URI_MONO, in.rate), 0);
    float *out = calloc((size_t)in.n, sizeof(float));
    long on_at = in.n / 2 / 480 * 480;
    h.ctl[2] = 0.0f;
    for (long off = 0; off < in.n; off += 480) {
        if (off == on_at)
            h.ctl[2] = 1.0f;
        host_run(&h, (float *[]){in.x + off}, (float *[]){out + off}, 480);
        assert_int_equal((int)h.ctl[4], lat);
    }
    for (long i = 0; i < on_at; i++)
        assert_float_equal(out[i], i >= lat ? in.x[i - lat] : 0.0f, 0.0);
    long ramp = (long)(0.02 * in.rate) + 1;
    for (long i = on_at + ramp; i < in.n; i++)
        assert_float_equal(out[i], ref.x[i], 0.0);
    /* in the crossfade: between the two, never a step */
    double step = 0;
    for (long i = on_at; i < on_at + ramp; i++) {
        float lo = fminf(ref.x[i], in.x[i - lat]), hi = fmaxf(ref.x[i], in.x[i - lat]);
        assert_true(out[i] >= lo - 1e-6f && out[i] <= hi + 1e-6f);
        step = fmax(step, fabs((double)out[i] - out[i - 1]));
    }
    double in_step = 0;
    for (long i = 1; i < in.n; i++)
        in_step = fmax(in_step, fabs((double)in.x[i] - in.x[i - 1]));
    print_message("bypass: exact delayed input, then a %ld-sample crossfade (largest step %.3g; "
                  "the input's %.3g), then exactly the denoised output\n", ramp, step, in_step);
    assert_true(step <= 2 * in_step);
    host_close(&h);
    free(out);
    free(ref.x);
    free(in.x);
}

/* ----------------------------------------------------------- resynth */

/* "oscine resynth" with non-default settings, in blocks of 1..20000 frames
 * (half in place), equals the library's low-latency resynth chain with the
 * same settings; the latency port says the chain's latency; enable 0 gives
 * the input delayed by it. The vocoder is the golden fixture (random
 * weights): this checks the plugin, not the sound. */
static void test_resynth_plugin(void **state)
{
    char path[300], lv2[300];
    snprintf(path, sizeof path, "%s/in48.wav", tmp);
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    audio in = wav_read(path);
    const char *names[] = {"warp", "tilt", "freeze", "mix", "low_db", "mid_db", "high_db"};
    float vals[] = {1.2f, 3.0f, 0.0f, 0.8f, -6.0f, 2.0f, 0.0f};

    oscine_model_path mp = {"resynth", VOC_MODEL};
    oscine_chain_config cc = {.stages = "resynth", .sample_rate = in.rate, .channels = 1,
                              .low_latency = 1, .models = &mp, .nmodels = 1};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cc))
        fail_msg("%s", oscine_last_error());
    for (int i = 0; i < 7; i++) {
        char a[64];
        snprintf(a, sizeof a, "/resynth/%s", names[i]);
        assert_int_equal(oscine_chain_set(c, a, vals[i]), 0);
    }
    float *ref = malloc(sizeof(float) * (size_t)in.n);
    for (long off = 0; off < in.n; off += 512) {
        int m = in.n - off < 512 ? (int)(in.n - off) : 512;
        assert_int_equal(oscine_chain_process(c, (const float *const[]){in.x + off},
                                              (float *const[]){ref + off}, m), 0);
    }
    int lat = oscine_chain_latency(c);
    oscine_chain_destroy(c);

    LilvWorld *w = world_new(lv2);
    const LilvPlugin *pl = find_plugin(w, URI_RESYNTH);
    assert_non_null(pl);
    LilvInstance *inst = lilv_plugin_instantiate(pl, in.rate, lv2t_features);
    assert_non_null(inst);
    float ctl[9] = {0};
    for (int i = 0; i < 7; i++)
        ctl[i] = vals[i];
    ctl[7] = 1.0f; /* enable */
    ctl[8] = -1.0f;
    for (uint32_t i = 0; i < 9; i++)
        lilv_instance_connect_port(inst, 2 + i, &ctl[i]);
    lilv_instance_activate(inst);
    float *out = malloc(sizeof(float) * (size_t)in.n), *buf = malloc(sizeof(float) * 20000);
    uint64_t seed = 8;
    int k = 0;
    for (long off = 0; off < in.n; k++) {
        float r = (urand(&seed) + 1.0f) * 0.5f;
        long m = k % 3 == 0 ? 1 + (long)(r * 19999) : 1 + (long)(r * 700);
        m = m > in.n - off ? in.n - off : m;
        float *io = k % 2 ? buf : out + off;
        if (k % 2)
            memcpy(buf, in.x + off, sizeof(float) * (size_t)m);
        lilv_instance_connect_port(inst, 0, k % 2 ? buf : in.x + off);
        lilv_instance_connect_port(inst, 1, io);
        lilv_instance_run(inst, (uint32_t)m);
        if (k % 2)
            memcpy(out + off, buf, sizeof(float) * (size_t)m);
        assert_int_equal((int)ctl[8], lat);
        off += m;
    }
    double e = 0, peak = 0;
    for (long i = 0; i < in.n; i++) {
        e = fmax(e, fabs((double)out[i] - ref[i]));
        peak = fmax(peak, fabs((double)ref[i]));
    }
    print_message("resynth plugin: %d blocks, max |plugin - library| = %.3g (peak %.3g), "
                  "latency %d samples\n", k, e, peak, lat);
    assert_true(peak > 1e-3);
    assert_true(e <= 1e-6);

    /* bypassed: the input, delayed by the latency, once the 20 ms ramp is over */
    ctl[7] = 0.0f;
    long ramp = (long)(0.02 * in.rate) + 1, n2 = in.rate / 2;
    for (long off = 0; off < n2; off += 480) {
        lilv_instance_connect_port(inst, 0, in.x + off);
        lilv_instance_connect_port(inst, 1, out + off);
        lilv_instance_run(inst, 480);
    }
    for (long i = ramp + lat; i < n2; i++)
        assert_float_equal(out[i], in.x[i - lat], 0.0);
    lilv_instance_deactivate(inst);
    lilv_instance_free(inst);
    lilv_world_free(w);
    free(out);
    free(buf);
    free(ref);
    free(in.x);
}

/* ------------------------------------------------------------- state */


static float run_some(host *h, const audio *in)
{
    float *out = malloc(sizeof(float) * (size_t)in->n);
    for (long off = 0; off + 256 <= in->n; off += 256)
        host_run(h, (float *[]){in->x + off}, (float *[]){out + off}, 256);
    float peak = 0;
    for (long i = 0; i < in->n / 256 * 256; i++)
        peak = fmaxf(peak, fabsf(out[i]));
    free(out);
    return peak;
}

static void test_state(void **state)
{
    char path[300], lv2[300];
    snprintf(path, sizeof path, "%s/in16.wav", tmp);
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    audio in = wav_read(path);
    host h;
    assert_int_equal(host_open(&h, lv2, URI_MONO, 16000), 0);
    const LV2_State_Interface *si =
        lilv_instance_get_extension_data(h.inst, LV2_STATE__interface);
    assert_non_null(si);
    LV2_Handle ph = lilv_instance_get_handle(h.inst);

    kv s = {0};
    assert_int_equal(si->save(ph, lv2t_store, &s, LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE,
                              lv2t_features), LV2_STATE_SUCCESS);
    assert_string_equal(lv2t_unmap_uri(NULL, s.key), "urn:oscine:model");
    assert_string_equal(lv2t_unmap_uri(NULL, s.type), LV2_ATOM__String);
    assert_string_equal(s.value, "denoise-16k.osw");
    assert_true(s.flags & LV2_STATE_IS_PORTABLE);

    /* another model by name: loaded, saved back, and it runs */
    kv o = lv2t_state_value("other.osw", LV2_ATOM__String);
    assert_int_equal(si->restore(ph, lv2t_retrieve, &o, 0, lv2t_features), LV2_STATE_SUCCESS);
    assert_true(run_some(&h, &in) > 1e-3f);
    kv s2 = {0};
    si->save(ph, lv2t_store, &s2, 0, lv2t_features);
    assert_string_equal(s2.value, "other.osw");

    /* refused, and the model in use stays */
    const char *bad[] = {"missing.osw", "../lv2/oscine.lv2/other.osw", "/etc/passwd", ""};
    for (int i = 0; i < 4; i++) {
        kv b = lv2t_state_value(bad[i], LV2_ATOM__String);
        lv2t_log_text[0] = 0;
        assert_int_not_equal(si->restore(ph, lv2t_retrieve, &b, 0, lv2t_features), LV2_STATE_SUCCESS);
        kv s3 = {0};
        si->save(ph, lv2t_store, &s3, 0, lv2t_features);
        assert_string_equal(s3.value, "other.osw");
    }
    kv wrong = lv2t_state_value("denoise-16k.osw", LV2_ATOM__Path);
    assert_int_equal(si->restore(ph, lv2t_retrieve, &wrong, 0, lv2t_features), LV2_STATE_ERR_BAD_TYPE);
    kv none = {0};
    assert_int_equal(si->restore(ph, lv2t_retrieve, &none, 0, lv2t_features), LV2_STATE_SUCCESS);
    assert_true(run_some(&h, &in) > 1e-3f);

    /* the same through lilv's state API, as hosts use it */
    o = lv2t_state_value("denoise-16k.osw", LV2_ATOM__String);
    assert_int_equal(si->restore(ph, lv2t_retrieve, &o, 0, lv2t_features), LV2_STATE_SUCCESS);
    LilvState *ls = lilv_state_new_from_instance(h.plugin, h.inst, &lv2t_map, NULL, NULL, NULL, NULL,
                                                 NULL, NULL, LV2_STATE_IS_POD, lv2t_features);
    assert_non_null(ls);
    char *ttl = lilv_state_to_string(h.world, &lv2t_map, &lv2t_unmap, ls, "urn:oscine:test-state", NULL);
    assert_non_null(strstr(ttl, "denoise-16k.osw"));
    host h2;
    assert_int_equal(host_open(&h2, lv2, URI_MONO, 16000), 0);
    lilv_state_restore(ls, h2.inst, NULL, NULL, 0, lv2t_features);
    assert_true(run_some(&h2, &in) > 1e-3f);
    lilv_free(ttl);
    lilv_state_free(ls);
    host_close(&h2);
    host_close(&h);
    free(in.x);
}

/* --------------------------------------------------- presets vs .osc */

typedef struct port_vals {
    float mix, limit_db, enable;
    int n;
} port_vals;

static void set_value(const char *symbol, void *user, const void *value, uint32_t size,
                      uint32_t type)
{
    port_vals *v = user;
    float f = 0;
    const char *t = lv2t_unmap_uri(NULL, type);
    if (!strcmp(t, LV2_ATOM__Float))
        f = *(const float *)value;
    else if (!strcmp(t, LV2_ATOM__Double))
        f = (float)*(const double *)value;
    else if (!strcmp(t, LV2_ATOM__Int) || !strcmp(t, LV2_ATOM__Bool))
        f = (float)*(const int32_t *)value;
    else
        fail_msg("preset port %s: type %s", symbol, t);
    if (!strcmp(symbol, "mix"))
        v->mix = f;
    else if (!strcmp(symbol, "limit_db"))
        v->limit_db = f;
    else if (!strcmp(symbol, "enable"))
        v->enable = f;
    else
        fail_msg("preset sets unknown port %s", symbol);
    v->n++;
}

/* What presets/NAME.osc says, in port terms (defaults where it is silent). */
static port_vals osc_preset(const char *name)
{
    char path[300], line[256];
    snprintf(path, sizeof path, "presets/%s.osc", name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    port_vals v = {1.0f, 100.0f, 1.0f, 0};
    while (fgets(line, sizeof line, f)) {
        char addr[128], val[64];
        if (line[0] == '#' || sscanf(line, "%127s %63s", addr, val) != 2)
            continue;
        if (!strcmp(addr, "/denoise/mix"))
            v.mix = strtof(val, NULL);
        else if (!strcmp(addr, "/denoise/limit_db"))
            v.limit_db = strtof(val, NULL);
        else if (!strcmp(addr, "/engine/bypass"))
            v.enable = 1.0f - strtof(val, NULL);
        else if (!strcmp(addr, "/engine/chain"))
            assert_string_equal(val, "denoise");
        else if (!strcmp(addr, "/engine/gain"))
            assert_float_equal(strtof(val, NULL), 0.0f, 0.0);
        else
            fail_msg("%s: %s has no port", path, addr);
    }
    fclose(f);
    return v;
}

static void test_presets_match_osc(void **state)
{
    char lv2[300];
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    LilvWorld *w = world_new(lv2);
    LilvNode *preset_class = lilv_new_uri(w, LV2_PRESETS__Preset);
    LilvNode *label = lilv_new_uri(w, LILV_NS_RDFS "label");
    const char *uris[] = {URI_MONO, URI_STEREO};
    for (int u = 0; u < 2; u++) {
        const LilvPlugin *p = find_plugin(w, uris[u]);
        LilvNodes *presets = lilv_plugin_get_related(p, preset_class);
        int found = 0;
        LILV_FOREACH (nodes, i, presets) {
            const LilvNode *pr = lilv_nodes_get(presets, i);
            lilv_world_load_resource(w, pr);
            LilvNode *l = lilv_world_get(w, pr, label, NULL);
            assert_non_null(l);
            const char *name = lilv_node_as_string(l);
            LilvState *st = lilv_state_new_from_world(w, &lv2t_map, pr);
            assert_non_null(st);
            port_vals got = {NAN, NAN, NAN, 0};
            lilv_state_emit_port_values(st, set_value, &got);
            port_vals want = osc_preset(name);
            print_message("%s preset %-10s mix %g limit_db %g enable %g (presets/%s.osc: %g %g "
                          "%g)\n", uris[u], name, got.mix, got.limit_db, got.enable, name,
                          want.mix, want.limit_db, want.enable);
            assert_int_equal(got.n, 3);
            assert_float_equal(got.mix, want.mix, 1e-6);
            assert_float_equal(got.limit_db, want.limit_db, 1e-6);
            assert_float_equal(got.enable, want.enable, 0);
            found += !strcmp(name, "voice-call") + !strcmp(name, "podcast");
            lilv_state_free(st);
            lilv_node_free(l);
        }
        assert_int_equal(found, 2);
        lilv_nodes_free(presets);
    }
    lilv_node_free(label);
    lilv_node_free(preset_class);
    lilv_world_free(w);
}

/* A bundle without the model (and nowhere else to find it): instantiate
 * fails with a message naming the file and the bundle; lv2file fails. */
static void test_missing_model(void **state)
{
    char lv2[300], cwd[PATH_MAX];
    snprintf(lv2, sizeof lv2, "%s/lv2-nomodel", tmp);
    const char *installed = OSCINE_DATADIR "/models/denoise-16k.osw";
    if (path_exists(installed)) {
        print_message("SKIP: %s is installed, so a model is always found\n", installed);
        skip();
    }
    assert_non_null(getcwd(cwd, sizeof cwd));
    assert_int_equal(chdir(tmp), 0); /* no ./models here */
    host h;
    int rc = host_open(&h, lv2, URI_MONO, 48000);
    assert_int_equal(chdir(cwd), 0);
    assert_int_equal(rc, -1);
    print_message("instantiate without a model: %s", lv2t_log_text);
    assert_non_null(strstr(lv2t_log_text, "denoise-16k.osw"));
    assert_non_null(strstr(lv2t_log_text, "not found"));
    assert_non_null(strstr(lv2t_log_text, "lv2-nomodel/oscine.lv2"));
    host_close(&h);
    if (have_tool("lv2file")) {
        assert_int_not_equal(sh("cd %s && %sLV2_PATH=%s lv2file -i in16.wav -o never.wav %s",
                                tmp, host_env, lv2, URI_MONO), 0);
        print_message("lv2file without a model: %s", sh_out);
    }
}

/* --------------------------------------------------------- PipeWire */

/* The number after "KEY", in pw-dump's JSON (the Props params list). */
static double dump_param(const char *json, const char *key)
{
    for (const char *p = strstr(json, key); p; p = strstr(p + 1, key)) {
        const char *v = p + strlen(key);
        if (*v++ != ',')
            continue; /* "name": KEY, ... in the PropInfo: not a value */
        while (*v == ' ' || *v == '\n')
            v++;
        char *end;
        double d = strtod(v, &end);
        if (end != v)
            return d;
    }
    return NAN;
}

/* The desktop microphone end to end: a config from dist/pipewire/ (with mix
 * and limit_db changed, to see the control keys work; `extra` is one more
 * sed expression) installed in a private PipeWire + WirePlumber session
 * (tools/plugins/pw_session.sh); the virtual source appears, WirePlumber
 * links the default microphone into it, a recording from it is the
 * plugin's output, and `pw-cli set-param` changes the controls live. */
static void check_pipewire(const char *conf_src, const char *extra, const char *env, int lv2)
{
    char conf[300], work[300];
    snprintf(conf, sizeof conf, "%s/%s", tmp, conf_src + strlen("dist/pipewire/"));
    snprintf(work, sizeof work, "%s/pw-%s", tmp, lv2 ? "lv2" : "ladspa");
    assert_int_equal(sh("sed -e 's/\"mix\"      = 1.0/\"mix\"      = 0.9/' "
                        "-e 's/\"limit_db\" = 100.0/\"limit_db\" = 25.0/' -e '%s' "
                        "%s > %s && grep -c '= 0.9$\\|= 25.0$' %s",
                        extra, conf_src, conf, conf), 0);
    assert_string_equal(sh_out, "2\n");
    int rc = sh("%s%ssh tools/plugins/pw_session.sh %s %s/lv2 %s %s", host_env, env, work, tmp,
                conf, tpath("in48.wav"));
    if (rc == 77) {
        print_message("SKIP: %s", sh_out);
        skip();
    }
    if (rc) {
        char why[1024];
        snprintf(why, sizeof why, "%.1000s", sh_out);
        sh("tail -n 20 %s/pipewire.log %s/wireplumber.log", work, work);
        fail_msg("pw_session.sh: %s\n%s", why, sh_out);
    }
    /* the virtual source, its controls as configured, its links */
    assert_int_equal(sh("cat %s/dump.json", work), 0);
    assert_non_null(strstr(sh_out, "\"node.description\": \"oscine denoised microphone\""));
    assert_non_null(strstr(sh_out, "\"node.name\": \"oscine_denoise\""));
    assert_float_equal(dump_param(sh_out, "\"oscine:mix\""), 0.9, 1e-6);
    assert_float_equal(dump_param(sh_out, "\"oscine:limit_db\""), 25.0, 1e-6);
    if (lv2)
        assert_float_equal(dump_param(sh_out, "\"oscine:enable\""), 1.0, 1e-6);
    assert_int_equal(sh("cat %s/dump-set.json", work), 0); /* changed live */
    assert_float_equal(dump_param(sh_out, "\"oscine:mix\""), 0.5, 1e-6);
    assert_float_equal(dump_param(sh_out, "\"oscine:limit_db\""), 12.0, 1e-6);
    assert_int_equal(sh("cat %s/links.txt", work), 0);
    assert_non_null(strstr(sh_out, "test-mic:capture_MONO\n  |-> capture.oscine_denoise:input_MONO"));
    assert_non_null(strstr(sh_out, "oscine_denoise:capture_MONO\n  |-> pw-record:input_MONO"));
    assert_int_equal(sh("grep -A3 'Sources:' %s/status.txt", work), 0);
    assert_non_null(strstr(sh_out, "oscine denoised microphone"));
    print_message("PipeWire: %s", sh_out);

    /* What came out of it: the plugin's output, sample for sample, once the
     * unknown start is found. PipeWire runs the plugin on silence for some
     * quanta (D samples) before the file's sound arrives, which moves the
     * STFT frames against the sound; the reference is the library's chain
     * on the file after P zeros, for P = 32 m (every residue of D mod the
     * chain's 480-sample period at 48 kHz when the quantum is a multiple of
     * 32). The recording starts at some lag L and may drop a few quanta on
     * a loaded machine, so it is compared in windows of 0.125 s, each at the
     * lag that fits it best near L (steps of 32), skipping the first 0.25 s
     * (the model's state after P and after D zeros still differs there, and
     * a little up to 0.5 s: -55 to -60 dB; the rest match to -70 dB or
     * better; a wrong P gives about -3 dB). */
    audio in = wav_read(tpath("in48.wav"));
    char rec_path[400];
    snprintf(rec_path, sizeof rec_path, "%s/rec.wav", work);
    audio rec = wav_read(rec_path);
    assert_int_equal(rec.rate, 48000);
    const long W = 6000;
    int best_m = -1, best_match = -1, windows = 0;
    long lag0 = -1;
    double best_err = 0, ref_rms = 0;
    for (int m = 0; m < 15; m++) {
        long P = 32 * m;
        audio pre = {calloc((size_t)(in.n + P), sizeof(float)), in.n + P, 1, in.rate};
        memcpy(pre.x + P, in.x, sizeof(float) * (size_t)in.n);
        int lat;
        audio full = chain_reference(&pre, 0.9f, 25.0f, 480, &lat);
        audio ref = {full.x + P, in.n, 1, in.rate};
        if (lag0 < 0) { /* where the sound starts in the recording */
            ref_rms = rms(&ref);
            double bc = -1;
            for (long lag = 0; lag + 2 * W < rec.n && lag < rec.n / 2; lag++) {
                double ab = 0, bb = 0;
                for (long i = W; i < 2 * W; i += 4) {
                    ab += (double)ref.x[i] * rec.x[i + lag];
                    bb += (double)rec.x[i + lag] * rec.x[i + lag];
                }
                double c = ab / sqrt(bb + 1e-30);
                if (c > bc) {
                    bc = c;
                    lag0 = lag;
                }
            }
        }
        int match = 0;
        double worst = -400;
        windows = 0;
        for (long w = 2 * W; w + W <= ref.n; w += W, windows++) {
            double e_best = INFINITY, r = 0;
            for (long i = w; i < w + W; i++)
                r += (double)ref.x[i] * ref.x[i];
            for (long lag = lag0 - 8192; lag <= lag0 + 8192; lag += 32) {
                if (lag < 0 || w + W + lag > rec.n)
                    continue;
                double e = 0;
                for (long i = w; i < w + W && e < e_best; i++) {
                    double d = (double)rec.x[i + lag] - ref.x[i];
                    e += d * d;
                }
                e_best = fmin(e_best, e);
            }
            double db = 10 * log10((e_best + 1e-30) / (r + 1e-30));
            if (db < -45) {
                match++;
                worst = fmax(worst, db);
            }
        }
        if (match > best_match) {
            best_match = match;
            best_m = m;
            best_err = worst;
        }
        free(full.x);
        free(pre.x);
    }
    print_message("recorded from the virtual source (sound from sample %ld): with %d zeros "
                  "before the file, %d of %d windows of 0.125 s are the plugin's output (error "
                  "at most %.0f dB below the signal; signal RMS %.3g)\n", lag0, 32 * best_m,
                  best_match, windows, best_err, ref_rms);
    assert_true(best_match >= windows * 2 / 3);
    free(rec.x);
    free(in.x);
}

static void test_pipewire_lv2(void **state)
{
    check_pipewire("dist/pipewire/oscine-denoise.conf", "", "", 1);
}

/* The LADSPA variant: the plugin from the build folder, the model through
 * $OSCINE_MODEL_PATH. */
static void test_pipewire_ladspa(void **state)
{
    char extra[PATH_MAX + 100], env[400];
    snprintf(extra, sizeof extra, "s|/usr/local/lib/ladspa/|%s/|", build_dir);
    snprintf(env, sizeof env, "OSCINE_MODEL_PATH=%s/lv2/oscine.lv2 ", tmp);
    check_pipewire("dist/pipewire/oscine-denoise-ladspa.conf", extra, env, 0);
}

/* Without the plugin installed, the config must not take PipeWire down
 * (flags = [ nofail ]): PipeWire starts, there is just no filter. */
static void test_pipewire_without_plugin(void **state)
{
    char work[300], empty[300];
    snprintf(work, sizeof work, "%s/pw-none", tmp);
    snprintf(empty, sizeof empty, "%s/lv2-empty", tmp);
    assert_int_equal(sh("mkdir -p %s", empty), 0);
    int rc = sh("%sOSCINE_PW_WAIT=20 sh tools/plugins/pw_session.sh %s %s "
                "dist/pipewire/oscine-denoise.conf %s", host_env, work, empty, tpath("in48.wav"));
    if (rc == 77) {
        print_message("SKIP: %s", sh_out);
        skip();
    }
    print_message("%s", sh_out);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(sh_out, "the filter chain was not linked"));
    assert_int_equal(sh("grep -c 'can.t load plugin urn:oscine:denoise' %s/pipewire.log", work),
                     0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lv2ls),
        cmocka_unit_test(test_lv2info_ports),
        cmocka_unit_test(test_sord_validate),
        cmocka_unit_test(test_exports),
        cmocka_unit_test(test_ports_match_stage_table),
        cmocka_unit_test(test_lv2file_matches_cli),
        cmocka_unit_test(test_blas_note),
        cmocka_unit_test(test_lv2file_48k),
        cmocka_unit_test(test_lv2file_stereo_44k),
        cmocka_unit_test(test_changing_blocks),
        cmocka_unit_test(test_bypass),
        cmocka_unit_test(test_resynth_plugin),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_presets_match_osc),
        cmocka_unit_test(test_missing_model),
        cmocka_unit_test(test_pipewire_lv2),
        cmocka_unit_test(test_pipewire_ladspa),
        cmocka_unit_test(test_pipewire_without_plugin),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
