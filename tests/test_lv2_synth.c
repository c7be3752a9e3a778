/* test_lv2_synth.c - "oscine synth" (urn:oscine:synth) in a lilv host
 * written here, with an LV2 worker the test runs between blocks: MIDI note
 * sequences in blocks of changing size come out at the notes' pitch (the
 * project's f0 tracker), pitch bend, sustain pedal, volume and all-notes-off
 * do what MIDI says, the model port switches instruments through the
 * worker with no gap or click while a note is held, the state saves and
 * restores the model by name, the LV2 preset violin-solo equals its .osc
 * file, and a host without a worker is refused.
 * run() and work_response() (the audio thread) never allocate.
 *
 * The bundle is build/oscine.lv2 with the shipped models/ddsp-violin.osw and
 * models/ddsp-clarinet.osw, in a temporary LV2_PATH. */
#include "util/count_alloc.h"
#include "util/lv2feat.h"
#include "util/util.h"

#include "dsp/pitch.h"
#include "oscine.h"

#include <lilv/lilv.h>
#include <lv2/atom/forge.h>
#include <lv2/midi/midi.h>
#include <lv2/worker/worker.h>

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define URI_SYNTH "urn:oscine:synth"
#define RATE 48000

static char build_dir[PATH_MAX], repo_dir[PATH_MAX], tmp[256], lv2[300];

/* ------------------------------------------------------------ the worker */

typedef struct wmsg {
    uint32_t size;
    unsigned char data[256];
} wmsg;

static wmsg work_q[16], resp_q[16];
static int nwork, nresp;

static LV2_Worker_Status schedule(LV2_Worker_Schedule_Handle h, uint32_t size, const void *data)
{
    if (nwork == 16 || size > sizeof work_q[0].data)
        return LV2_WORKER_ERR_NO_SPACE;
    work_q[nwork].size = size;
    memcpy(work_q[nwork++].data, data, size);
    return LV2_WORKER_SUCCESS;
}

static LV2_Worker_Status respond(LV2_Worker_Respond_Handle h, uint32_t size, const void *data)
{
    if (nresp == 16 || size > sizeof resp_q[0].data)
        return LV2_WORKER_ERR_NO_SPACE;
    resp_q[nresp].size = size;
    memcpy(resp_q[nresp++].data, data, size);
    return LV2_WORKER_SUCCESS;
}

static LV2_Worker_Schedule sched = {NULL, schedule};
static const LV2_Feature f_sched = {LV2_WORKER__schedule, &sched};
static const LV2_Feature *features[] = {&lv2t_f_map, &lv2t_f_unmap, &lv2t_f_log, &f_sched,
                                        NULL};
static const LV2_Feature *features_no_worker[] = {&lv2t_f_map, &lv2t_f_log, NULL};

/* ------------------------------------------------------------- the host */

enum { P_MIDI, P_OUT_L, P_OUT_R, P_MODEL, P_LOUDNESS, P_HGAIN, P_NGAIN, P_REVERB, P_ATTACK,
       P_DECAY, P_SUSTAIN, P_RELEASE, P_GLIDE, P_BEND_RANGE, P_VOICES, P_VIB_RATE,
       P_VIB_DEPTH, P_ACTIVE, P_COUNT };
static const char *const SYMBOLS[P_COUNT] = {
    "midi_in", "out_l", "out_r", "model", "loudness", "harmonic_gain", "noise_gain", "reverb",
    "attack", "decay", "sustain", "release", "glide", "bend_range", "voices", "vibrato_rate",
    "vibrato_depth", "active"};

typedef struct host {
    LilvWorld *world;
    const LilvPlugin *plugin;
    LilvInstance *inst;
    const LV2_Worker_Interface *worker;
    float ctl[P_COUNT];
    union {
        LV2_Atom_Sequence seq;
        uint8_t bytes[8192];
    } midi;
    LV2_Atom_Forge forge;
    LV2_URID urid_midi;
    int pump; /* run the worker after each block */
} host;

typedef struct note_ev {
    double t; /* seconds */
    uint8_t m[3];
} note_ev;

static void host_open(host *h)
{
    memset(h, 0, sizeof *h);
    setenv("LV2_PATH", lv2, 1);
    h->world = lilv_world_new();
    lilv_world_load_all(h->world);
    LilvNode *u = lilv_new_uri(h->world, URI_SYNTH);
    h->plugin = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(h->world), u);
    lilv_node_free(u);
    assert_non_null(h->plugin);
    for (int i = 0; i < P_COUNT; i++) {
        LilvNode *s = lilv_new_string(h->world, SYMBOLS[i]);
        const LilvPort *p = lilv_plugin_get_port_by_symbol(h->plugin, s);
        lilv_node_free(s);
        assert_non_null(p);
        assert_int_equal(lilv_port_get_index(h->plugin, p), i); /* the layout the code has */
        if (i >= P_MODEL && i != P_ACTIVE) {
            LilvNode *def;
            lilv_port_get_range(h->plugin, p, &def, NULL, NULL);
            h->ctl[i] = lilv_node_as_float(def);
            lilv_node_free(def);
        }
    }
    nwork = nresp = 0;
    lv2t_log_text[0] = 0;
    h->inst = lilv_plugin_instantiate(h->plugin, RATE, features);
    assert_non_null(h->inst);
    h->worker = lilv_instance_get_extension_data(h->inst, LV2_WORKER__interface);
    assert_non_null(h->worker);
    for (int i = P_MODEL; i < P_COUNT; i++)
        lilv_instance_connect_port(h->inst, (uint32_t)i, &h->ctl[i]);
    lilv_instance_connect_port(h->inst, P_MIDI, &h->midi);
    h->urid_midi = lv2t_map_uri(NULL, LV2_MIDI__MidiEvent);
    lv2_atom_forge_init(&h->forge, &lv2t_map);
    h->pump = 1;
    lilv_instance_activate(h->inst);
}

static void host_close(host *h)
{
    lilv_instance_deactivate(h->inst);
    lilv_instance_free(h->inst);
    lilv_world_free(h->world);
}

/* Run what the plugin scheduled, then hand the responses back (the host's
 * worker thread and its end-of-cycle delivery, here in sequence). */
static void pump(host *h)
{
    LV2_Handle ph = lilv_instance_get_handle(h->inst);
    for (int i = 0; i < nwork; i++)
        assert_int_equal(h->worker->work(ph, respond, NULL, work_q[i].size, work_q[i].data),
                         LV2_WORKER_SUCCESS);
    nwork = 0;
    counting = 1; /* work_response runs on the audio thread */
    for (int i = 0; i < nresp; i++)
        h->worker->work_response(ph, resp_q[i].size, resp_q[i].data);
    counting = 0;
    nresp = 0;
}

/* Render n frames into l and r (either may be NULL) in blocks of random
 * size 1..2048, the events placed at their frames; set(h, frame) may change
 * controls before the block starting there. */
static void render(host *h, const note_ev *ev, int nev, size_t start, size_t n, float *l,
                   float *r, uint64_t *seed)
{
    static float bl[2048], br[2048];
    size_t pos = 0;
    int next = 0;
    while (next < nev && (size_t)llround(ev[next].t * RATE) < start)
        next++;
    while (pos < n) {
        size_t bs = 1 + (size_t)((urand(seed) + 1) * 0.5 * 2047);
        bs = bs > n - pos ? n - pos : bs;
        lv2_atom_forge_set_buffer(&h->forge, h->midi.bytes, sizeof h->midi.bytes);
        LV2_Atom_Forge_Frame frame;
        lv2_atom_forge_sequence_head(&h->forge, &frame, 0);
        while (next < nev && (size_t)llround(ev[next].t * RATE) < start + pos + bs) {
            long at = llround(ev[next].t * RATE) - (long)(start + pos);
            lv2_atom_forge_frame_time(&h->forge, at < 0 ? 0 : at);
            lv2_atom_forge_atom(&h->forge, 3, h->urid_midi);
            lv2_atom_forge_write(&h->forge, ev[next].m, 3);
            next++;
        }
        lv2_atom_forge_pop(&h->forge, &frame);
        lilv_instance_connect_port(h->inst, P_OUT_L, bl);
        lilv_instance_connect_port(h->inst, P_OUT_R, br);
        counting = 1;
        lilv_instance_run(h->inst, (uint32_t)bs);
        counting = 0;
        for (size_t i = 0; i < bs; i++) {
            assert_true(isfinite(bl[i]));
            assert_true(bl[i] == br[i]); /* mono synth on both channels */
            if (l)
                l[pos + i] = bl[i];
            if (r)
                r[pos + i] = br[i];
        }
        if (h->pump)
            pump(h);
        pos += bs;
    }
}

/* Median f0 (Hz) of the voiced frames in x[a..b) seconds; 0 if none. */
static double median_f0(const float *x, double a, double b)
{
    pitch *p = NULL;
    pitch_config c = {.sample_rate = RATE, .hop = 480};
    assert_int_equal(pitch_create(&p, &c), 0);
    static float f[1000];
    int nf = 0;
    size_t from = (size_t)(a * RATE), to = (size_t)(b * RATE);
    int lat = pitch_latency(p);
    for (size_t i = from; i + 480 <= to && nf < 1000; i += 480) {
        pitch_frame pf;
        pitch_process(p, x + i, &pf);
        /* the frame's centre must lie in [a, b) with its whole window */
        if (i + 480 >= from + (size_t)(2 * lat) && pf.confidence > 0.8f)
            f[nf++] = pf.f0_hz;
    }
    pitch_destroy(p);
    for (int i = 1; i < nf; i++) /* insertion sort */
        for (int j = i; j > 0 && f[j] < f[j - 1]; j--) {
            float t = f[j];
            f[j] = f[j - 1];
            f[j - 1] = t;
        }
    return nf ? f[nf / 2] : 0;
}

static double rms(const float *x, double a, double b)
{
    double s = 0;
    size_t from = (size_t)(a * RATE), to = (size_t)(b * RATE);
    for (size_t i = from; i < to; i++)
        s += (double)x[i] * x[i];
    return sqrt(s / (double)(to - from));
}

static double cents(double f, double ref) { return 1200.0 * log2(f / ref); }
static double midi_hz(double note) { return 440.0 * exp2((note - 69.0) / 12.0); }

/* -------------------------------------------------------------- setup */

static int setup(void **state)
{
    if (host_test_setup(build_dir, repo_dir, tmp, sizeof tmp))
        return -1;
    snprintf(lv2, sizeof lv2, "%s/lv2", tmp);
    if (sh("set -e; d=%s/oscine.lv2; mkdir -p $d; "
           "for f in oscine.so manifest.ttl oscine.ttl presets.ttl; do "
           "ln -s %s/oscine.lv2/$f $d/$f; done; "
           "for m in violin clarinet; do ln -s %s/models/ddsp-$m.osw $d/ddsp-$m.osw; "
           "test -s $d/ddsp-$m.osw || { echo models/ddsp-$m.osw missing >&2; exit 1; }; done",
           lv2, build_dir, repo_dir)) {
        print_message("%s", sh_out);
        return -1;
    }
    unsetenv("OSCINE_MODEL_PATH");
    return 0;
}

static int teardown(void **state)
{
    tmpdir_remove(tmp);
    return 0;
}

/* -------------------------------------------------------------- tests */

typedef struct want_param {
    const char *address;
    int port;
    float min, max, def;
} want_param;

static void collect(void *user, const char *stage, const char *address, const char *unit,
                    float min, float max, float def, const char *help)
{
    for (want_param *w = user; w->address; w++)
        if (!strcmp(w->address, address)) {
            w->min = min;
            w->max = max;
            w->def = def;
        }
}

/* The ports that stand for synth parameters have the stage's ranges and
 * defaults; the model port enumerates the shipped instruments. */
static void test_ports_match_stage(void **state)
{
    want_param w[] = {
        {"/synth/loudness", P_LOUDNESS, NAN, NAN, NAN},
        {"/synth/harmonic_gain", P_HGAIN, NAN, NAN, NAN},
        {"/synth/noise_gain", P_NGAIN, NAN, NAN, NAN},
        {"/synth/reverb", P_REVERB, NAN, NAN, NAN},
        {"/synth/attack", P_ATTACK, NAN, NAN, NAN},
        {"/synth/decay", P_DECAY, NAN, NAN, NAN},
        {"/synth/sustain", P_SUSTAIN, NAN, NAN, NAN},
        {"/synth/release", P_RELEASE, NAN, NAN, NAN},
        {"/synth/glide", P_GLIDE, NAN, NAN, NAN},
        {"/synth/voices", P_VOICES, NAN, NAN, NAN},
        {"/synth/vibrato_rate", P_VIB_RATE, NAN, NAN, NAN},
        {"/synth/vibrato_depth", P_VIB_DEPTH, NAN, NAN, NAN},
        {NULL, 0, 0, 0, 0}};
    oscine_params_list(collect, w);
    host h;
    host_open(&h);
    for (want_param *p = w; p->address; p++) {
        const LilvPort *port = lilv_plugin_get_port_by_index(h.plugin, (uint32_t)p->port);
        LilvNode *def, *min, *max;
        lilv_port_get_range(h.plugin, port, &def, &min, &max);
        print_message("%-22s %8g..%-8g default %g\n", p->address, lilv_node_as_float(min),
                      lilv_node_as_float(max), lilv_node_as_float(def));
        assert_float_equal(lilv_node_as_float(def), p->def, 1e-6);
        assert_float_equal(lilv_node_as_float(min), p->min, 1e-6);
        assert_float_equal(lilv_node_as_float(max), p->max, 1e-6);
        lilv_node_free(def);
        lilv_node_free(min);
        lilv_node_free(max);
    }
    LilvScalePoints *sp =
        lilv_port_get_scale_points(h.plugin, lilv_plugin_get_port_by_index(h.plugin, P_MODEL));
    assert_int_equal(lilv_scale_points_size(sp), 2);
    int seen = 0;
    LILV_FOREACH (scale_points, i, sp) {
        const LilvScalePoint *p = lilv_scale_points_get(sp, i);
        const char *label = lilv_node_as_string(lilv_scale_point_get_label(p));
        int v = lilv_node_as_int(lilv_scale_point_get_value(p));
        seen |= (!strcmp(label, "violin") && v == 0) ? 1 : 0;
        seen |= (!strcmp(label, "clarinet") && v == 1) ? 2 : 0;
    }
    lilv_scale_points_free(sp);
    assert_int_equal(seen, 3);
    host_close(&h);
}

/* Notes at their pitch, pitch bend, silence after the release. */
static void test_notes_and_bend(void **state)
{
    host h;
    host_open(&h);
    h.ctl[P_RELEASE] = 50;
    h.ctl[P_REVERB] = 0;
    const note_ev ev[] = {
        {0.05, {0x90, 69, 100}}, {0.65, {0x80, 69, 0}},   /* A4 */
        {0.95, {0x91, 60, 100}},                          /* C4, channel 2 */
        {1.35, {0xE1, 0x7F, 0x7F}},                       /* bend fully up: +2 st */
        {1.85, {0x91, 60, 0}},                            /* note on velocity 0 = off */
    };
    const size_t n = (size_t)(2.2 * RATE);
    float *y = calloc(n, sizeof(float));
    uint64_t seed = 5;
    render(&h, ev, 5, 0, n, y, NULL, &seed);
    double a4 = median_f0(y, 0.2, 0.6), c4 = median_f0(y, 1.05, 1.33),
           d4 = median_f0(y, 1.45, 1.83);
    print_message("A4 %.2f Hz (%+.1f cents), C4 %.2f Hz (%+.1f), bent +2 st %.2f Hz (%+.1f)\n",
                  a4, cents(a4, 440), c4, cents(c4, midi_hz(60)), d4, cents(d4, midi_hz(62)));
    assert_true(fabs(cents(a4, 440)) < 20);
    assert_true(fabs(cents(c4, midi_hz(60))) < 20);
    assert_true(fabs(cents(d4, midi_hz(62))) < 20);
    double loud = rms(y, 0.2, 0.6), gap = rms(y, 0.8, 0.94), tail = rms(y, 2.0, 2.2);
    double before = rms(y, 0, 0.049);
    print_message("rms: note %.4f, after its release %.2g, at the end %.2g, before %.2g\n", loud,
                  gap, tail, before);
    assert_true(loud > 1e-3);
    assert_true(before == 0);
    assert_true(gap < loud * 1e-3);
    assert_true(tail < loud * 1e-3);
    assert_int_equal(allocations, 0);
    free(y);
    host_close(&h);
}

/* Sustain pedal holds released notes; CC 7 turns the level down; CC 123
 * ends everything. */
static void test_pedal_volume_all_off(void **state)
{
    host h;
    host_open(&h);
    h.ctl[P_RELEASE] = 50;
    h.ctl[P_REVERB] = 0;
    const note_ev ev[] = {
        {0.00, {0xB0, 64, 127}},                         /* pedal down */
        {0.05, {0x90, 67, 100}}, {0.25, {0x80, 67, 0}}, /* released under the pedal */
        {0.60, {0xB0, 64, 0}},                           /* pedal up: now it ends */
        {0.90, {0x90, 67, 100}},
        {1.30, {0xB0, 7, 40}},                           /* volume 40/127: -20 dB input */
        {1.70, {0xB0, 123, 0}},                          /* all notes off */
    };
    const size_t n = (size_t)(2.0 * RATE);
    float *y = calloc(n, sizeof(float));
    uint64_t seed = 9;
    render(&h, ev, 7, 0, n, y, NULL, &seed);
    double held = rms(y, 0.35, 0.58), after = rms(y, 0.75, 0.88);
    double full = rms(y, 1.0, 1.28), soft = rms(y, 1.45, 1.68), off = rms(y, 1.85, 2.0);
    print_message("pedal: held %.4f, after pedal up %.2g; volume: %.4f -> %.4f (%.1f dB); "
                  "all off %.2g\n", held, after, full, soft, 20 * log10(soft / full), off);
    assert_true(held > 1e-3);
    assert_true(after < held * 1e-3);
    assert_true(soft < full * 0.5);
    assert_true(soft > 0);
    assert_true(off < full * 1e-3);
    free(y);
    host_close(&h);
}

/* The voices port limits the polyphony (a fractional value rounds to the
 * nearest whole number); the active port counts the voices. */
static void test_voices(void **state)
{
    host h;
    host_open(&h);
    h.ctl[P_VOICES] = 2.6f;
    const note_ev ev[] = {{0.00, {0x90, 60, 100}}, {0.01, {0x90, 64, 100}},
                          {0.02, {0x90, 67, 100}}, {0.03, {0x90, 72, 100}}};
    uint64_t seed = 4;
    render(&h, ev, 4, 0, (size_t)(0.3 * RATE), NULL, NULL, &seed);
    print_message("4 notes held, voices port 2.6: %g active\n", h.ctl[P_ACTIVE]);
    assert_float_equal(h.ctl[P_ACTIVE], 3, 0);
    h.ctl[P_VOICES] = 8;
    const note_ev more[] = {{0.31, {0x90, 76, 100}}};
    render(&h, more, 1, (size_t)(0.3 * RATE), (size_t)(0.1 * RATE), NULL, NULL, &seed);
    assert_float_equal(h.ctl[P_ACTIVE], 4, 0);
    host_close(&h);
}

/* The model port switches to the clarinet while a note is held: the note
 * carries on at its pitch with no gap and no click, the worker did the
 * loading (nothing changed before it ran), and the state names the new
 * model. */
static void test_model_switch(void **state)
{
    host h;
    host_open(&h);
    h.ctl[P_REVERB] = 0;
    const note_ev ev[] = {{0.0, {0x90, 69, 100}}};
    const size_t n1 = (size_t)(0.5 * RATE), n2 = (size_t)(0.1 * RATE), n3 = (size_t)(0.6 * RATE);
    float *y = calloc(n1 + n2 + n3, sizeof(float));
    uint64_t seed = 3;
    render(&h, ev, 1, 0, n1, y, NULL, &seed);
    LV2_Handle ph = lilv_instance_get_handle(h.inst);
    const LV2_State_Interface *si =
        lilv_instance_get_extension_data(h.inst, LV2_STATE__interface);
    kv s = {0};
    assert_int_equal(si->save(ph, lv2t_store, &s, 0, features), LV2_STATE_SUCCESS);
    assert_string_equal(s.value, "ddsp-violin.osw");

    /* the port changes; the host's worker is slow: 0.1 s of the old model */
    h.ctl[P_MODEL] = 1;
    h.pump = 0;
    render(&h, ev, 1, n1, n2, y + n1, NULL, &seed);
    assert_int_equal(nwork, 1); /* asked once, not once per block */
    kv s1 = {0};
    si->save(ph, lv2t_store, &s1, 0, features);
    assert_string_equal(s1.value, "ddsp-violin.osw");
    h.pump = 1;
    pump(&h);
    render(&h, ev, 1, n1 + n2, n3, y + n1 + n2, NULL, &seed);
    kv s2 = {0};
    si->save(ph, lv2t_store, &s2, 0, features);
    assert_string_equal(s2.value, "ddsp-clarinet.osw");
    assert_true(h.ctl[P_ACTIVE] >= 1);

    /* no gap: every 10 ms around the switch keeps most of the level */
    double t_sw = (n1 + n2) / (double)RATE, ref = rms(y, 0.2, 0.5), worst = 1e9;
    for (double t = t_sw - 0.05; t < t_sw + 0.1; t += 0.01)
        worst = fmin(worst, rms(y, t, t + 0.01) / ref);
    /* no click: the largest step between samples near the switch is of the
     * size of those in the steady note before it */
    double step_before = 0, step_switch = 0;
    for (size_t i = (size_t)(0.2 * RATE); i < (size_t)(0.5 * RATE); i++)
        step_before = fmax(step_before, fabs(y[i] - y[i - 1]));
    for (size_t i = n1 + n2; i < n1 + n2 + (size_t)(0.05 * RATE); i++)
        step_switch = fmax(step_switch, fabs(y[i] - y[i - 1]));
    double f_after = median_f0(y, t_sw + 0.1, t_sw + 0.55);
    print_message("switch: quietest 10 ms %.2f of the level, largest step %.4f (steady "
                  "violin %.4f), clarinet at %.2f Hz (%+.1f cents)\n",
                  worst, step_switch, step_before, f_after, cents(f_after, 440));
    assert_true(worst > 0.3);
    assert_true(step_switch < 2 * step_before);
    assert_true(fabs(cents(f_after, 440)) < 20);
    print_message("allocations on the audio thread: %ld%s\n", allocations,
                  COUNT_MALLOC ? "" : " (not counted under AddressSanitizer)");
    assert_int_equal(allocations, 0);
    free(y);
    host_close(&h);
}

/* State: the model by file name; bad names refused with the model kept;
 * and lilv's state round trip into a new instance. */
static void test_state(void **state)
{
    host h;
    host_open(&h);
    LV2_Handle ph = lilv_instance_get_handle(h.inst);
    const LV2_State_Interface *si =
        lilv_instance_get_extension_data(h.inst, LV2_STATE__interface);
    kv c = lv2t_state_value("ddsp-clarinet.osw", LV2_ATOM__String);
    assert_int_equal(si->restore(ph, lv2t_retrieve, &c, 0, features), LV2_STATE_SUCCESS);
    const char *bad[] = {"ddsp-cello.osw", "../oscine.lv2/ddsp-violin.osw", "/etc/passwd", ""};
    for (int i = 0; i < 4; i++) {
        kv b = lv2t_state_value(bad[i], LV2_ATOM__String);
        lv2t_log_text[0] = 0;
        assert_int_not_equal(si->restore(ph, lv2t_retrieve, &b, 0, features),
                             LV2_STATE_SUCCESS);
        if (i == 0)
            print_message("refused: %s", lv2t_log_text);
        kv s = {0};
        si->save(ph, lv2t_store, &s, 0, features);
        assert_string_equal(s.value, "ddsp-clarinet.osw");
    }
    /* the clarinet plays; the port still says violin, and a restored model
     * stays until the port changes */
    const note_ev ev[] = {{0.0, {0x90, 72, 100}}};
    const size_t n = (size_t)(0.5 * RATE);
    float *y = calloc(n, sizeof(float));
    uint64_t seed = 1;
    render(&h, ev, 1, 0, n, y, NULL, &seed);
    assert_int_equal(nwork, 0);
    assert_true(fabs(cents(median_f0(y, 0.15, 0.5), midi_hz(72))) < 20);

    LilvState *ls = lilv_state_new_from_instance(h.plugin, h.inst, &lv2t_map, NULL, NULL, NULL,
                                                 NULL, NULL, NULL, LV2_STATE_IS_POD, features);
    assert_non_null(ls);
    char *ttl = lilv_state_to_string(h.world, &lv2t_map, &lv2t_unmap, ls, "urn:oscine:t", NULL);
    if (!strstr(ttl, "ddsp-clarinet.osw"))
        print_message("%s\n", ttl);
    assert_non_null(strstr(ttl, "ddsp-clarinet.osw"));
    host h2;
    host_open(&h2);
    lilv_state_restore(ls, h2.inst, NULL, NULL, 0, features);
    kv s = {0};
    si = lilv_instance_get_extension_data(h2.inst, LV2_STATE__interface);
    si->save(lilv_instance_get_handle(h2.inst), lv2t_store, &s, 0, features);
    assert_string_equal(s.value, "ddsp-clarinet.osw");
    lilv_free(ttl);
    lilv_state_free(ls);
    free(y);
    host_close(&h2);
    host_close(&h);
}

typedef struct port_values {
    char sym[32][32];
    float val[32];
    int n;
} port_values;

static void set_value(const char *symbol, void *user, const void *value, uint32_t size,
                      uint32_t type)
{
    port_values *pv = user;
    assert_true(pv->n < 32);
    assert_int_equal(size, sizeof(float));
    snprintf(pv->sym[pv->n], sizeof pv->sym[0], "%s", symbol);
    memcpy(&pv->val[pv->n++], value, sizeof(float));
}

/* The LV2 preset violin-solo says what presets/violin-solo.osc says. */
static void test_preset_matches_osc(void **state)
{
    host h;
    host_open(&h);
    LilvNode *uri = lilv_new_uri(h.world, "urn:oscine:preset:violin-solo");
    lilv_world_load_resource(h.world, uri);
    LilvState *ls = lilv_state_new_from_world(h.world, &lv2t_map, uri);
    assert_non_null(ls);
    port_values pv = {0};
    lilv_state_emit_port_values(ls, set_value, &pv);
    FILE *f = fopen("presets/violin-solo.osc", "r");
    assert_non_null(f);
    char line[256];
    int checked = 0;
    while (fgets(line, sizeof line, f)) {
        char addr[64], val[64];
        if (line[0] == '#' || sscanf(line, "%63s %63s", addr, val) != 2 ||
            strncmp(addr, "/synth/", 7))
            continue;
        float want = !strcmp(addr, "/synth/model") ? (!strcmp(val, "violin") ? 0.0f : 1.0f)
                                                   : strtof(val, NULL);
        int found = 0;
        for (int i = 0; i < pv.n; i++)
            if (!strcmp(pv.sym[i], addr + 7)) {
                assert_float_equal(pv.val[i], want, 1e-6);
                found = 1;
            }
        if (!found)
            print_message("%s: not in the LV2 preset\n", addr);
        assert_true(found);
        checked++;
    }
    fclose(f);
    print_message("violin-solo: %d settings, the LV2 preset has %d ports\n", checked, pv.n);
    assert_int_equal(checked, pv.n);
    assert_true(checked >= 8);
    lilv_state_free(ls);
    lilv_node_free(uri);
    host_close(&h);
}

/* A host without the worker feature gets a refusal that names it. */
static void test_needs_worker(void **state)
{
    setenv("LV2_PATH", lv2, 1);
    LilvWorld *w = lilv_world_new();
    lilv_world_load_all(w);
    LilvNode *u = lilv_new_uri(w, URI_SYNTH);
    const LilvPlugin *p = lilv_plugins_get_by_uri(lilv_world_get_all_plugins(w), u);
    lilv_node_free(u);
    assert_non_null(p);
    lv2t_log_text[0] = 0;
    assert_null(lilv_plugin_instantiate(p, RATE, features_no_worker));
    print_message("%s", lv2t_log_text);
    assert_non_null(strstr(lv2t_log_text, LV2_WORKER__schedule));
    lilv_world_free(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ports_match_stage),
        cmocka_unit_test(test_notes_and_bend),
        cmocka_unit_test(test_pedal_volume_all_off),
        cmocka_unit_test(test_voices),
        cmocka_unit_test(test_model_switch),
        cmocka_unit_test(test_state),
        cmocka_unit_test(test_preset_matches_osc),
        cmocka_unit_test(test_needs_worker),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
