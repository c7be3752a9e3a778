/* stage_transfer.c - timbre transfer: the input's pitch and loudness (the
 * DDSP features, dsp/pitch.h and dsp/loudness.h, as `oscine features`
 * computes them) drive one DDSP voice and the model's reverb, so a voice or
 * another instrument plays the model's instrument.
 *
 * Runs at 16 kHz in hops of 160 (the models' feature grid, 100 frames/s;
 * the chain resamples, and the model has nothing above 8 kHz anyway). Per
 * hop: YIN f0 + confidence over the last 1024 samples and A-weighted
 * loudness over 512 samples delayed by 256, so that both describe the input
 * 512 samples ago; f0 of frames that are not voiced (confidence < 0.5,
 * loudness < -60 dB or below the gate) holds the last voiced value, the
 * training rule (tools/ddsp/model.py prepare_f0). Frames below gate_db get
 * loudness -80 dB and no output (the voice fades to silence over a frame). The voice renders the hop from the previous
 * frame's controls to this one's, so the output lags the input by exactly
 * 512 samples (32 ms), the stage's latency.
 */
#include "engine/stage.h"

#include "base/error.h"
#include "dsp/loudness.h"
#include "dsp/pitch.h"
#include "models/ddsp.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TR_RATE 16000
#define TR_HOP 160
#define LD_DELAY 256 /* pitch latency 512 - loudness latency 256 */
#define VOICED_CONF 0.5f
#define VOICED_DB -60.0f

enum { P_OCTAVE, P_SHIFT, P_GATE, P_LOUDNESS, P_REVERB, P_COUNT };

static const stage_param tr_params[] = {
    {"octave", "", -3.0f, 3.0f, 0.0f, "octaves added to the input's pitch"},
    {"pitch_shift", "semitones", -24.0f, 24.0f, 0.0f, "semitones added to the input's pitch"},
    {"gate_db", "dB", -80.0f, 0.0f, -60.0f,
     "input loudness (A-weighted, DDSP's scale) below which the output is silent"},
    {"loudness", "dB", -40.0f, 40.0f, 0.0f, "added to the input's loudness (an input gain)"},
    {"reverb", "", 0.0f, 2.0f, 1.0f, "reverb level (1: as trained, 0: dry)"},
};

static const char *const tr_meters[] = {"f0"};

typedef struct tr_state {
    ddsp_model *m;
    ddsp_voice *v;
    ddsp_reverb *rev;
    pitch *pt;
    loudness *ld;
    float delay[LD_DELAY + TR_HOP]; /* loudness input, LD_DELAY samples late */
    float *seg;                     /* (max segment) */
    float f0_last, f0_out;
    float p[P_COUNT];
} tr_state;

static void tr_destroy(void *state)
{
    tr_state *s = state;
    if (!s)
        return;
    ddsp_voice_destroy(s->v);
    ddsp_reverb_destroy(s->rev);
    ddsp_model_destroy(s->m);
    pitch_destroy(s->pt);
    loudness_destroy(s->ld);
    free(s->seg);
    free(s);
}

static void tr_reset(void *state)
{
    tr_state *s = state;
    ddsp_voice_reset(s->v, 1);
    ddsp_reverb_reset(s->rev);
    pitch_reset(s->pt);
    loudness_reset(s->ld);
    memset(s->delay, 0, sizeof s->delay);
    s->f0_last = 0;
    s->f0_out = 0;
}

static int tr_create(void **state, const stage_env *env)
{
    *state = NULL;
    if (!env->model)
        return err_set(OSCINE_E_ARG, "no weights file");
    tr_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(OSCINE_E_NOMEM, "out of memory");
    int e = ddsp_model_load(&s->m, env->model);
    if (!e) {
        const ddsp_info *in = ddsp_model_info(s->m);
        if (in->sample_rate != TR_RATE || in->frame_rate * TR_HOP != TR_RATE)
            e = err_set(OSCINE_E_UNSUPPORTED, "model '%s': %d Hz at %d frames/s; transfer needs "
                        "%d Hz at %d frames/s", env->model, in->sample_rate, in->frame_rate,
                        TR_RATE, TR_RATE / TR_HOP);
    }
    if (!e) {
        ddsp_voice_config vc = {.sample_rate = TR_RATE, .seed = 0x7A4F};
        e = ddsp_voice_create(&s->v, s->m, &vc);
    }
    if (!e) {
        ddsp_reverb_config rc = {.sample_rate = TR_RATE, .max_block = TR_HOP};
        e = ddsp_reverb_create(&s->rev, s->m, &rc);
    }
    if (!e) {
        pitch_config pc = {.sample_rate = TR_RATE, .hop = TR_HOP};
        e = pitch_create(&s->pt, &pc);
    }
    if (!e) {
        loudness_config lc = {.sample_rate = TR_RATE, .n_fft = 512, .hop = TR_HOP};
        e = loudness_create(&s->ld, &lc);
    }
    if (!e && pitch_latency(s->pt) - loudness_latency(s->ld) != LD_DELAY)
        e = err_set(OSCINE_E_ARG, "transfer: tracker latencies %d and %d",
                    pitch_latency(s->pt), loudness_latency(s->ld));
    if (!e && !(s->seg = calloc((size_t)ddsp_voice_max_segment(s->v), sizeof(float))))
        e = err_set(OSCINE_E_NOMEM, "out of memory");
    if (e) {
        tr_destroy(s);
        return e;
    }
    for (int i = 0; i < P_COUNT; i++)
        s->p[i] = tr_params[i].def;
    tr_reset(s);
    *state = s;
    return 0;
}

static void tr_process(void *state, float *buf, int n)
{
    tr_state *s = state; /* n == TR_HOP: the chain keeps to the hop */
    pitch_frame pf;
    pitch_process(s->pt, buf, &pf);
    memcpy(s->delay + LD_DELAY, buf, sizeof(float) * TR_HOP);
    float l = loudness_process(s->ld, s->delay);
    memmove(s->delay, s->delay + TR_HOP, sizeof(float) * LD_DELAY);

    float gate = s->p[P_GATE] > VOICED_DB ? s->p[P_GATE] : VOICED_DB;
    if (pf.confidence >= VOICED_CONF && l >= gate && pf.f0_hz > 0)
        s->f0_last = pf.f0_hz;
    float f0 = s->f0_last > 0 ? s->f0_last : 440.0f;
    f0 *= exp2f(s->p[P_OCTAVE] + s->p[P_SHIFT] / 12.0f);
    if (f0 > 0.45f * TR_RATE)
        f0 = 0.45f * TR_RATE;
    int open = l >= s->p[P_GATE];
    float lo = open ? l + s->p[P_LOUDNESS] : -80.0f, g = open ? 1.0f : 0.0f;
    s->f0_out = s->f0_last > 0 ? f0 : 0.0f;
    int k = ddsp_voice_frame(s->v, f0, lo, g, g, s->seg);
    memset(buf, 0, sizeof(float) * (size_t)n);
    memcpy(buf, s->seg, sizeof(float) * (size_t)(k < n ? k : n));
    ddsp_reverb_process(s->rev, buf, buf, n);
}

static int tr_latency(const void *state) { return pitch_latency(((const tr_state *)state)->pt); }

static void tr_set(void *state, int index, float value)
{
    tr_state *s = state;
    s->p[index] = value;
    if (index == P_REVERB)
        ddsp_reverb_set_wet(s->rev, value);
}

static float tr_meter(const void *state, int index) { return ((const tr_state *)state)->f0_out; }

const stage_class stage_transfer = {
    .name = "transfer",
    .help = "timbre transfer: the input's pitch and loudness play a DDSP instrument "
            "(16 kHz, 32 ms latency)",
    .rate = TR_RATE,
    .hop = TR_HOP,
    .params = tr_params,
    .nparams = P_COUNT,
    .create = tr_create,
    .process = tr_process,
    .reset = tr_reset,
    .latency = tr_latency,
    .set_param = tr_set,
    .destroy = tr_destroy,
    .model_file = "ddsp-violin.osw",
    .model_name = "ddsp-%s.osw",
    .meters = tr_meters,
    .nmeters = 1,
    .meter = tr_meter,
    .int_params = 1ull << P_OCTAVE,
};
