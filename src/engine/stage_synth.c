/* stage_synth.c - the DDSP synthesizer played by notes: up to 8 voices, each
 * its own decoder state + harmonic bank + filtered noise (models/ddsp), at
 * the chain's rate, mixed into one reverb (the model's IR). Output only: the
 * stage ignores its input.
 *
 * Timing. The stage takes any block size (rate 0, hop 0: the chain adds no
 * latency). Each voice renders one decoder frame (10 ms at 100 frames/s)
 * ahead into its own buffer and plays it out; a note on starts a voice on a
 * fresh frame grid at the very sample the event arrives (the live engine
 * splits the block there), so a note sounds with no latency beyond the
 * block: its first frame fades in from silence over one frame. Changes to a
 * sounding voice (bend, note off, loudness) reach it at its next frame.
 *
 * A voice's loudness input is the model's typical forte (loudness_ref_db,
 * from its training data) + /synth/loudness + 20 log10(velocity) + the ADSR
 * envelope in dB; the envelope also scales the output over its last 40 dB,
 * so attacks start and releases end in exact silence. Voice stealing: a
 * note on with every voice busy takes the quietest released voice, else the
 * oldest held one; what that voice had rendered, plus one more frame, fades
 * out over that span while the new note starts at once.
 */
#include "engine/stage.h"

#include "base/error.h"
#include "models/ddsp.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_VOICES 8
#define DIRECT MAX_VOICES /* the slot /synth/f0 plays */
#define NSLOTS (MAX_VOICES + 1)
#define ENV_KNEE 0.01f    /* envelope level below which it scales the output (-40 dB) */
#define ENV_END 0.001f    /* release ends here (-60 dB) */
#define FLUSH_FRAMES 2    /* silent frames after a release: oscillator ramp, noise FIR tail */

enum {
    P_LOUDNESS, P_F0, P_BEND, P_GLIDE, P_VIB_RATE, P_VIB_DEPTH, P_ATTACK, P_DECAY, P_SUSTAIN,
    P_RELEASE, P_HGAIN, P_NGAIN, P_REVERB, P_VOICES, P_COUNT
};

static const stage_param sy_params[] = {
    {"loudness", "dB", -60.0f, 20.0f, 0.0f,
     "loudness of a velocity-1 note and of /synth/f0, relative to the model's typical forte"},
    {"f0", "Hz", 0.0f, 4000.0f, 0.0f,
     "direct control: > 0 plays one extra voice at this pitch (glide, bend and vibrato apply); "
     "0 releases it"},
    {"bend", "semitones", -24.0f, 24.0f, 0.0f, "pitch bend of every voice"},
    {"glide", "ms", 0.0f, 5000.0f, 0.0f,
     "portamento: a new note slides from the last note's pitch over this time"},
    {"vibrato_rate", "Hz", 0.0f, 20.0f, 5.0f, "vibrato rate"},
    {"vibrato_depth", "cents", 0.0f, 200.0f, 0.0f, "vibrato depth (0: none)"},
    {"attack", "ms", 0.0f, 10000.0f, 20.0f, "envelope attack (linear to full level)"},
    {"decay", "ms", 0.0f, 10000.0f, 200.0f, "envelope decay to the sustain level"},
    {"sustain", "", 0.0f, 1.0f, 0.8f, "envelope sustain level (amplitude, 1 = full)"},
    {"release", "ms", 0.0f, 10000.0f, 300.0f, "envelope release: time to fall by 60 dB"},
    {"harmonic_gain", "", 0.0f, 4.0f, 1.0f, "gain of the harmonic part"},
    {"noise_gain", "", 0.0f, 4.0f, 1.0f, "gain of the noise part"},
    {"reverb", "", 0.0f, 2.0f, 1.0f, "reverb level (1: as trained, 0: dry)"},
    {"voices", "", 1.0f, (float)MAX_VOICES, (float)MAX_VOICES,
     "polyphony: notes beyond it steal a voice"},
};

static const char *const vib_params[] = {"vibrato_rate", "vibrato_depth"};
static const char *const adsr_params[] = {"attack", "decay", "sustain", "release"};

enum { E_NOTE_ON, E_NOTE_OFF, E_ALL_OFF, E_VIBRATO, E_ADSR, E_COUNT };

static const stage_event sy_events[] = {
    {"note_on", "if", {0, 0}, {127, 1}, "i:note (MIDI) f:velocity (0..1)",
     "start a note (velocity 0: note off); a note already sounding restarts", NULL},
    {"note_off", "i", {0}, {127}, "i:note (MIDI)", "release a note", NULL},
    {"all_notes_off", "", {0}, {0}, "", "release every note", NULL},
    {"vibrato", "ff", {0}, {0}, "f:rate (Hz) f:depth (cents)",
     "sets vibrato_rate and vibrato_depth together", vib_params},
    {"adsr", "ffff", {0}, {0}, "f:attack (ms) f:decay (ms) f:sustain (0..1) f:release (ms)",
     "sets attack, decay, sustain and release together", adsr_params},
};

static const char *const sy_meters[] = {"active"};

enum { IDLE, HELD, RELEASED };
enum { ATTACK, DECAY, SUSTAIN, RELEASE };

typedef struct slot {
    ddsp_voice *v;
    int state, env_stage, note, flush;
    float vel_db, env;
    float st_from, st_to, st_now; /* pitch in MIDI numbers: glide from, to, current */
    float glide_t;                /* seconds since the glide started */
    float vib_phase;              /* cycles */
    uint64_t age;
    float *buf;                   /* (max_seg) rendered, not yet played */
    int nbuf, rd;
    float *tail;                  /* (2 max_seg) a stolen note's end, faded */
    int ntail, tpos;
} slot;

typedef struct sy_state {
    ddsp_model *m;
    ddsp_reverb *rev;
    slot s[NSLOTS];
    float p[P_COUNT];
    int rate, max_seg;
    float dt;          /* seconds per frame */
    float ref_db;      /* the model's typical forte */
    float last_st;     /* pitch of the last note started (for glide), < 0: none */
    uint64_t clock;    /* note counter, for voice ages */
    float *scratch;    /* (3 max_seg) */
    int active;
} sy_state;

static float st_to_hz(float st) { return 440.0f * exp2f((st - 69.0f) / 12.0f); }
static float hz_to_st(float hz) { return 69.0f + 12.0f * log2f(hz / 440.0f); }

static void sy_destroy(void *state)
{
    sy_state *s = state;
    if (!s)
        return;
    for (int i = 0; i < NSLOTS; i++) {
        ddsp_voice_destroy(s->s[i].v);
        free(s->s[i].buf);
        free(s->s[i].tail);
    }
    ddsp_reverb_destroy(s->rev);
    ddsp_model_destroy(s->m);
    free(s->scratch);
    free(s);
}

static void slot_clear(slot *v)
{
    v->state = IDLE;
    v->nbuf = v->rd = v->ntail = v->tpos = 0;
    v->env = 0;
    v->flush = 0;
}

static void sy_reset(void *state)
{
    sy_state *s = state;
    for (int i = 0; i < NSLOTS; i++) {
        ddsp_voice_reset(s->s[i].v, 1);
        slot_clear(&s->s[i]);
    }
    ddsp_reverb_reset(s->rev);
    s->last_st = -1.0f;
    s->active = 0;
}

static int sy_create(void **state, const stage_env *env)
{
    *state = NULL;
    if (!env->model)
        return err_set(OSCINE_E_ARG, "no weights file");
    sy_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(OSCINE_E_NOMEM, "out of memory");
    int e = ddsp_model_load(&s->m, env->model);
    if (!e) {
        ddsp_reverb_config rc = {.sample_rate = env->sample_rate, .max_block = env->max_frames};
        e = ddsp_reverb_create(&s->rev, s->m, &rc);
    }
    for (int i = 0; !e && i < NSLOTS; i++) {
        ddsp_voice_config vc = {.sample_rate = env->sample_rate,
                                .seed = 0x5EED0000u + (uint64_t)i * 7919u};
        e = ddsp_voice_create(&s->s[i].v, s->m, &vc);
        if (!e) {
            s->max_seg = ddsp_voice_max_segment(s->s[i].v);
            s->s[i].buf = calloc((size_t)s->max_seg, sizeof(float));
            s->s[i].tail = calloc(2 * (size_t)s->max_seg, sizeof(float));
            if (!s->s[i].buf || !s->s[i].tail)
                e = err_set(OSCINE_E_NOMEM, "out of memory");
        }
    }
    if (!e && !(s->scratch = calloc(3 * (size_t)s->max_seg, sizeof(float))))
        e = err_set(OSCINE_E_NOMEM, "out of memory");
    if (e) {
        sy_destroy(s);
        return e;
    }
    const ddsp_info *in = ddsp_model_info(s->m);
    s->rate = env->sample_rate;
    s->dt = 1.0f / (float)in->frame_rate;
    s->ref_db = in->loudness_ref_db;
    for (int i = 0; i < P_COUNT; i++)
        s->p[i] = sy_params[i].def;
    sy_reset(s);
    *state = s;
    return 0;
}

/* The envelope level at this frame, then advanced by one frame (a note's
 * first frame is at level 0). */
static float envelope(sy_state *s, slot *v)
{
    const float dt = s->dt, sus = s->p[P_SUSTAIN], level = v->env;
    float a = s->p[P_ATTACK] * 0.001f, d = s->p[P_DECAY] * 0.001f, r = s->p[P_RELEASE] * 0.001f;
    switch (v->env_stage) {
    case ATTACK:
        v->env = a > 0 ? v->env + dt / a : 1.0f;
        if (v->env >= 1.0f) {
            v->env = 1.0f;
            v->env_stage = DECAY;
        }
        break;
    case DECAY:
        v->env = d > 0 ? v->env - (1.0f - sus) * dt / d : sus;
        if (v->env <= sus) {
            v->env = sus;
            v->env_stage = SUSTAIN;
        }
        break;
    case SUSTAIN:
        v->env = sus;
        break;
    default: /* RELEASE: -60 dB over r */
        v->env = r > 0 ? v->env * exp10f(-3.0f * dt / r) : 0.0f;
        if (v->env < ENV_END)
            v->env = 0.0f;
        break;
    }
    return level;
}

/* Render the slot's next frame into its buffer (possibly 0 samples: the
 * first frame of a note, or the end of a release, which makes it idle). */
static void render_frame(sy_state *s, slot *v)
{
    v->rd = v->nbuf = 0;
    if (v->state == IDLE)
        return;
    if (v->flush) {
        if (v->flush > FLUSH_FRAMES) {
            v->state = IDLE;
            return;
        }
        v->flush++;
    }
    /* pitch: glide, bend, vibrato */
    float glide = s->p[P_GLIDE] * 0.001f;
    float pos = glide > 0 ? v->glide_t / glide : 1.0f;
    v->st_now = v->st_from + (v->st_to - v->st_from) * (pos < 1.0f ? pos : 1.0f);
    v->glide_t += s->dt;
    float st = v->st_now + s->p[P_BEND];
    if (s->p[P_VIB_DEPTH] > 0)
        st += s->p[P_VIB_DEPTH] * 0.01f * sinf(6.2831853f * v->vib_phase);
    v->vib_phase += s->p[P_VIB_RATE] * s->dt;
    v->vib_phase -= floorf(v->vib_phase);
    float f0 = st_to_hz(st);
    if (f0 > 0.45f * (float)s->rate)
        f0 = 0.45f * (float)s->rate;

    float env = envelope(s, v);
    if (env == 0.0f && v->env_stage == RELEASE && !v->flush)
        v->flush = 1;
    float g = env < ENV_KNEE ? env / ENV_KNEE : 1.0f;
    float ld = s->ref_db + s->p[P_LOUDNESS] + v->vel_db + 20.0f * log10f(env > 1e-4f ? env : 1e-4f);
    if (ld < -80.0f)
        ld = -80.0f;
    v->nbuf = ddsp_voice_frame(v->v, f0, ld, s->p[P_HGAIN] * g, s->p[P_NGAIN] * g, v->buf);
}

/* Fade out what a voice was playing (the rest of its buffer and one more
 * frame) into its tail, so it can start a new note at once. */
static void steal(sy_state *s, slot *v)
{
    float *t = s->scratch;
    int n = v->nbuf - v->rd;
    memcpy(t, v->buf + v->rd, sizeof(float) * (size_t)n);
    if (n < s->max_seg / 2 && v->state != IDLE) {
        render_frame(s, v);
        memcpy(t + n, v->buf, sizeof(float) * (size_t)v->nbuf);
        n += v->nbuf;
    }
    for (int i = 0; i < n; i++)
        t[i] *= 1.0f - (float)(i + 1) / (float)n;
    /* what remains of an earlier tail goes on under the new one */
    int old = v->ntail - v->tpos;
    for (int i = 0; i < old; i++)
        t[i] = (i < n ? t[i] : 0.0f) + v->tail[v->tpos + i];
    if (old > n)
        n = old;
    if (n > 2 * s->max_seg)
        n = 2 * s->max_seg;
    memcpy(v->tail, t, sizeof(float) * (size_t)n);
    v->ntail = n;
    v->tpos = 0;
    v->nbuf = v->rd = 0;
}

static void start(sy_state *s, slot *v, int note, float st, float vel)
{
    if (v->state != IDLE || v->rd < v->nbuf)
        steal(s, v);
    ddsp_voice_reset(v->v, 0);
    v->state = HELD;
    v->env_stage = ATTACK;
    v->env = 0;
    v->flush = 0;
    v->note = note;
    v->vel_db = 20.0f * log10f(vel > 1e-3f ? vel : 1e-3f);
    v->st_to = st;
    v->st_from = s->p[P_GLIDE] > 0 && s->last_st >= 0 ? s->last_st : st;
    v->glide_t = 0;
    v->vib_phase = 0;
    v->age = ++s->clock;
    s->last_st = st;
    render_frame(s, v); /* the first frame: sets the starting controls, renders nothing */
}

static void release(slot *v)
{
    if (v->state == HELD) {
        v->state = RELEASED;
        v->env_stage = RELEASE;
    }
}

static void note_on(sy_state *s, int note, float vel)
{
    int nv = (int)s->p[P_VOICES], pick = -1;
    for (int i = 0; i < MAX_VOICES && pick < 0; i++) /* the same note restarts */
        if (s->s[i].state != IDLE && s->s[i].note == note)
            pick = i;
    for (int i = 0; i < nv && pick < 0; i++)
        if (s->s[i].state == IDLE)
            pick = i;
    if (pick < 0) { /* steal: the quietest released voice, else the oldest */
        float quiet = 2.0f;
        uint64_t oldest = UINT64_MAX;
        for (int i = 0; i < nv; i++)
            if (s->s[i].state == RELEASED && s->s[i].env < quiet) {
                quiet = s->s[i].env;
                pick = i;
            }
        for (int i = 0; i < nv && quiet > 1.0f; i++)
            if (s->s[i].age < oldest) {
                oldest = s->s[i].age;
                pick = i;
            }
    }
    start(s, &s->s[pick], note, (float)note, vel);
}

static void sy_event(void *state, int index, const float *args, int nargs)
{
    sy_state *s = state;
    switch (index) {
    case E_NOTE_ON:
        if (args[1] > 0) {
            note_on(s, (int)args[0], args[1]);
            break;
        }
        /* velocity 0: note off */
        /* fall through */
    case E_NOTE_OFF:
        for (int i = 0; i < MAX_VOICES; i++)
            if (s->s[i].note == (int)args[0])
                release(&s->s[i]);
        break;
    case E_ALL_OFF:
        for (int i = 0; i < MAX_VOICES; i++)
            release(&s->s[i]);
        break;
    }
}

/* The direct voice follows /synth/f0: on while > 0, gliding between values. */
static void direct(sy_state *s)
{
    slot *v = &s->s[DIRECT];
    float f0 = s->p[P_F0];
    if (f0 <= 0) {
        release(v);
        return;
    }
    float st = hz_to_st(f0);
    if (v->state != HELD) {
        start(s, v, -1, st, 1.0f);
        v->st_from = st; /* a new direct tone starts where it is asked */
    } else if (st != v->st_to) {
        v->st_from = v->st_now;
        v->st_to = st;
        v->glide_t = 0;
    }
}

static void sy_process(void *state, float *buf, int n)
{
    sy_state *s = state;
    direct(s);
    memset(buf, 0, sizeof(float) * (size_t)n);
    int active = 0;
    for (int i = 0; i < NSLOTS; i++) {
        slot *v = &s->s[i];
        if (v->tpos < v->ntail) {
            int k = v->ntail - v->tpos < n ? v->ntail - v->tpos : n;
            for (int j = 0; j < k; j++)
                buf[j] += v->tail[v->tpos + j];
            v->tpos += k;
        }
        int pos = 0;
        while (pos < n) {
            if (v->rd == v->nbuf) {
                if (v->state == IDLE)
                    break;
                render_frame(s, v);
                continue;
            }
            int k = v->nbuf - v->rd < n - pos ? v->nbuf - v->rd : n - pos;
            for (int j = 0; j < k; j++)
                buf[pos + j] += v->buf[v->rd + j];
            v->rd += k;
            pos += k;
        }
        active += v->state != IDLE;
    }
    s->active = active;
    ddsp_reverb_process(s->rev, buf, buf, n);
}

static int sy_latency(const void *state) { return 0; }

static void sy_set(void *state, int index, float value)
{
    sy_state *s = state;
    s->p[index] = value;
    if (index == P_REVERB)
        ddsp_reverb_set_wet(s->rev, value);
    if (index == P_VOICES)
        for (int i = (int)value; i < MAX_VOICES; i++)
            release(&s->s[i]);
}

static float sy_meter(const void *state, int index) { return (float)((const sy_state *)state)->active; }
/* A new chain (another model, a preset) plays on the notes held in the old
 * one: each starts afresh (attack from silence) while the engine
 * crossfades the chains. */
static void sy_carry(const void *from, void *to)
{
    const sy_state *a = from;
    sy_state *b = to;
    for (int i = 0; i < MAX_VOICES; i++)
        if (a->s[i].state == HELD)
            note_on(b, a->s[i].note, powf(10.0f, a->s[i].vel_db / 20.0f));
}

const stage_class stage_synth = {
    .name = "synth",
    .help = "DDSP synthesizer played by notes (output only: ignores its input), up to 8 voices",
    .params = sy_params,
    .nparams = P_COUNT,
    .create = sy_create,
    .process = sy_process,
    .reset = sy_reset,
    .latency = sy_latency,
    .set_param = sy_set,
    .destroy = sy_destroy,
    .model_file = "ddsp-violin.osw",
    .model_name = "ddsp-%s.osw",
    .meters = sy_meters,
    .nmeters = 1,
    .meter = sy_meter,
    .events = sy_events,
    .nevents = E_COUNT,
    .event = sy_event,
    .carry = sy_carry,
    .int_params = 1ull << P_VOICES,
};
