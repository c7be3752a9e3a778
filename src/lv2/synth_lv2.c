/* synth_lv2.c - "oscine synth" (urn:oscine:synth), the DDSP instrument as an
 * LV2 plugin: MIDI in, stereo out (the synth is mono; both channels carry
 * it), the synth stage's controls as ports.
 *
 * MIDI (every channel): note on/off, pitch bend (range: the bend_range
 * port), CC 1 (mod wheel: up to 50 cents more vibrato), CC 7 (volume) and
 * CC 11 (expression), each 40 log10(value / 127) dB added to the loudness
 * port, CC 64 (sustain pedal), CC 120 / 123 (all sound / notes off).
 *
 * The model port picks an instrument from MODELS. A change asks the LV2
 * worker to build a new chain (file I/O and allocation stay off the audio
 * thread); when it arrives, the held notes start on it and the audio
 * crossfades from the old chain over XFADE_MS, then the worker frees the
 * old one. The state extension saves the model's file name; restore loads
 * it (any ddsp-*.osw in the model folders, not only the enumerated ones).
 */
#include "lv2/pcore.h"
#include "lv2/synth_lv2.h"

#include "engine/chainrt.h"
#include "engine/midi.h"
#include "oscine.h"

#include <lv2/atom/atom.h>
#include <lv2/atom/util.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/log/logger.h>
#include <lv2/midi/midi.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define URI_SYNTH "urn:oscine:synth"
#define URI_MODEL "urn:oscine:model" /* state key, as for the denoiser */
#define MODEL_NAME_MAX 256
#define BLOCK 1024    /* frames per chain call */
#define XFADE_MS 30.0 /* old chain -> new chain after a model switch */

/* The model port's enumeration (oscine.ttl lists the same, in order). */
static const char *const MODELS[] = {"violin", "clarinet"};
#define NMODELS ((int)(sizeof MODELS / sizeof MODELS[0]))

/* Ports: MIDI in, out L, out R, then the controls in this order. */
enum {
    P_MIDI, P_OUT_L, P_OUT_R, P_MODEL, P_LOUDNESS, P_HGAIN, P_NGAIN, P_REVERB, P_ATTACK,
    P_DECAY, P_SUSTAIN, P_RELEASE, P_GLIDE, P_BEND_RANGE, P_VOICES, P_VIB_RATE, P_VIB_DEPTH,
    P_ACTIVE, P_COUNT
};

/* Controls that map one to one onto a synth parameter (the rest: model,
 * loudness (plus CC 7/11), bend_range (scales the MIDI bend), vibrato_depth
 * (plus the mod wheel), active). */
static const struct {
    int port;
    const char *addr;
} DIRECT[] = {
    {P_HGAIN, "/synth/harmonic_gain"}, {P_NGAIN, "/synth/noise_gain"},
    {P_REVERB, "/synth/reverb"},       {P_ATTACK, "/synth/attack"},
    {P_DECAY, "/synth/decay"},         {P_SUSTAIN, "/synth/sustain"},
    {P_RELEASE, "/synth/release"},     {P_GLIDE, "/synth/glide"},
    {P_VOICES, "/synth/voices"},       {P_VIB_RATE, "/synth/vibrato_rate"},
};
#define NDIRECT ((int)(sizeof DIRECT / sizeof DIRECT[0]))

/* Worker messages, both ways. */
enum { MSG_LOAD, MSG_LOADED, MSG_FAILED, MSG_FREE };
typedef struct msg {
    int kind, model;       /* model: index into MODELS */
    oscine_chain *chain;   /* MSG_LOADED: the new chain; MSG_FREE: the old one */
} msg;

typedef struct synth {
    oscine_chain *cur, *next; /* next: the chain being faded in */
    int xfade_pos, xfade_len;
    int rate;
    const LV2_Atom_Sequence *midi;
    float *out[2];
    const float *ctl[P_COUNT];
    float *active;
    float zero[BLOCK], tmp[BLOCK];
    /* what the chains were last told, so that only changes are sent */
    float sent[P_COUNT];
    float sent_loud, sent_bend, sent_vib;
    /* MIDI state */
    midi_state mid;
    /* models */
    _Atomic int model;        /* MODELS index in use, -1: one restored by name */
    int asked;                /* the model port value last acted on */
    int loading;
    char restored[MODEL_NAME_MAX]; /* the file name when model is -1 */
    char bundle[PCORE_PATH_MAX];
    LV2_URID_Map *map;
    LV2_Worker_Schedule *sched;
    LV2_URID urid_midi, urid_model, urid_string;
    LV2_Log_Logger log;
} synth;

static float port(const synth *s, int p, float dflt)
{
    return s->ctl[p] && isfinite(*s->ctl[p]) ? *s->ctl[p] : dflt;
}

static float clampf(float x, float lo, float hi) { return x < lo ? lo : x > hi ? hi : x; }

/* The model port's value as a MODELS index. */
static int model_index(const synth *s)
{
    return (int)clampf(roundf(port(s, P_MODEL, 0.0f)), 0.0f, (float)(NMODELS - 1));
}

/* A synth chain at the host rate with the model `name` (a MODELS entry or a
 * file name). NULL with the reason logged. Thread: worker / instantiation. */
static oscine_chain *build(synth *s, const char *name)
{
    char file[MODEL_NAME_MAX + 16], path[PCORE_PATH_MAX];
    if (strchr(name, '.'))
        snprintf(file, sizeof file, "%s", name);
    else
        snprintf(file, sizeof file, "ddsp-%s.osw", name);
    int found = pcore_find_model(file, s->bundle, path, sizeof path);
    /* not in the bundle: the chain searches the model folders by instrument
     * name (ddsp-NAME.osw) */
    char inst[sizeof file];
    snprintf(inst, sizeof inst, "%s", file);
    size_t len = strlen(inst);
    if (!strncmp(inst, "ddsp-", 5) && len > 9 && !strcmp(inst + len - 4, ".osw")) {
        inst[len - 4] = 0;
        memmove(inst, inst + 5, len - 4);
    }
    oscine_model_path mp = {"synth", found ? path : inst};
    oscine_chain_config cfg = {.stages = "synth", .sample_rate = s->rate, .channels = 1,
                               .max_block = BLOCK, .models = &mp, .nmodels = 1};
    oscine_chain *c = NULL;
    if (oscine_chain_create(&c, &cfg)) {
        lv2_log_error(&s->log, "oscine synth: %s%s%s\n", oscine_last_error(),
                      found ? "" : ", nor in the bundle ", found ? "" : s->bundle);
        return NULL;
    }
    return c;
}

/* Bring chain c up to date with the ports and the MIDI state; force: send
 * everything (a new chain). Only atomic stores (chain_set_rt). Thread:
 * audio, or instantiation (activate, restore). */
static void send_controls(synth *s, oscine_chain *c, int force)
{
    for (int i = 0; i < NDIRECT; i++) {
        float v = port(s, DIRECT[i].port, NAN);
        if (isnan(v))
            continue;
        if (DIRECT[i].port == P_VOICES) /* a whole number, or the stage refuses it */
            v = roundf(v);
        if (force || v != s->sent[DIRECT[i].port])
            chain_set_rt(c, DIRECT[i].addr, v);
    }
    float loud = clampf(port(s, P_LOUDNESS, 0.0f) + midi_volume_db(&s->mid), -60.0f, 20.0f);
    if (force || loud != s->sent_loud)
        chain_set_rt(c, "/synth/loudness", loud);
    float bend = clampf(s->mid.bend * port(s, P_BEND_RANGE, 2.0f), -24.0f, 24.0f);
    if (force || bend != s->sent_bend)
        chain_set_rt(c, "/synth/bend", bend);
    float vib = clampf(port(s, P_VIB_DEPTH, 0.0f) + 50.0f * s->mid.mod, 0.0f, 200.0f);
    if (force || vib != s->sent_vib)
        chain_set_rt(c, "/synth/vibrato_depth", vib);
}

/* After send_controls on every chain: remember what was sent. */
static void controls_sent(synth *s)
{
    for (int i = 0; i < NDIRECT; i++)
        s->sent[DIRECT[i].port] = DIRECT[i].port == P_VOICES ? roundf(port(s, P_VOICES, NAN))
                                                             : port(s, DIRECT[i].port, NAN);
    s->sent_loud = clampf(port(s, P_LOUDNESS, 0.0f) + midi_volume_db(&s->mid), -60.0f, 20.0f);
    s->sent_bend = clampf(s->mid.bend * port(s, P_BEND_RANGE, 2.0f), -24.0f, 24.0f);
    s->sent_vib = clampf(port(s, P_VIB_DEPTH, 0.0f) + 50.0f * s->mid.mod, 0.0f, 200.0f);
}

static void sync_chains(synth *s)
{
    send_controls(s, s->cur, 0);
    if (s->next)
        send_controls(s, s->next, 0);
    controls_sent(s);
}

static void event(synth *s, const char *addr, const float *args, int nargs)
{
    chain_event_rt(s->cur, addr, args, nargs);
    if (s->next)
        chain_event_rt(s->next, addr, args, nargs);
}

/* A MIDI action as chain events; bend, mod wheel and volume are read from
 * the MIDI state by send_controls(). Thread: audio. */
static void midi_to_chains(void *user, const midi_action *a)
{
    synth *s = user;
    float args[2] = {(float)a->note, a->value};
    if (a->kind == MIDI_NOTE_ON)
        event(s, "/synth/note_on", args, 2);
    else if (a->kind == MIDI_NOTE_OFF)
        event(s, "/synth/note_off", args, 1);
    else if (a->kind == MIDI_ALL_OFF)
        event(s, "/synth/all_notes_off", NULL, 0);
}

/* One MIDI message (any channel). Thread: audio. */
static void midi(synth *s, const uint8_t *m, uint32_t size)
{
    if (size < 2 || m[0] < 0x80 || m[0] >= 0xF0 || (int)size < 1 + midi_data_bytes(m[0]))
        return;
    midi_message(&s->mid, m[0], m[1], size > 2 ? m[2] : 0, midi_to_chains, s);
}

/* Render frames [from, to) of the outputs. Thread: audio. */
static void render(synth *s, uint32_t from, uint32_t to)
{
    sync_chains(s);
    const float *in[1] = {s->zero};
    while (from < to) {
        int n = (int)(to - from) < BLOCK ? (int)(to - from) : BLOCK;
        float *o[1] = {s->out[0] + from};
        oscine_chain_process(s->cur, in, o, n);
        if (s->next) {
            float *t[1] = {s->tmp};
            oscine_chain_process(s->next, in, t, n);
            for (int i = 0; i < n; i++) {
                float g = s->xfade_pos < s->xfade_len
                              ? (float)s->xfade_pos++ / (float)s->xfade_len : 1.0f;
                /* equal power: the two timbres are uncorrelated */
                o[0][i] = sqrtf(1.0f - g) * o[0][i] + sqrtf(g) * s->tmp[i];
            }
            /* faded in: the worker frees the old chain (a full queue: try
             * again next block, playing the new one alone meanwhile) */
            msg m = {MSG_FREE, 0, s->cur};
            if (s->xfade_pos >= s->xfade_len &&
                s->sched->schedule_work(s->sched->handle, sizeof m, &m) == LV2_WORKER_SUCCESS) {
                s->cur = s->next;
                s->next = NULL;
            }
        }
        from += (uint32_t)n;
    }
}

/* Thread: audio. */
static void run(LV2_Handle h, uint32_t n)
{
    synth *s = h;
    if (!s->out[0] || !s->out[1])
        return;
    int want = model_index(s);
    if (want != s->asked && want == s->model && !s->next && !s->loading) {
        s->asked = want; /* the port caught up with a restored state */
    } else if (want != s->asked && !s->loading && !s->next) {
        msg m = {MSG_LOAD, want, NULL};
        if (s->sched->schedule_work(s->sched->handle, sizeof m, &m) == LV2_WORKER_SUCCESS) {
            s->loading = 1;
            s->asked = want;
        }
    }
    uint32_t pos = 0;
    if (s->midi) {
        LV2_ATOM_SEQUENCE_FOREACH (s->midi, ev) {
            if (ev->body.type != s->urid_midi)
                continue;
            uint32_t t = ev->time.frames < 0 ? 0 : (uint32_t)ev->time.frames;
            t = t > n ? n : t;
            if (t > pos)
                render(s, pos, t);
            pos = t > pos ? t : pos;
            midi(s, (const uint8_t *)LV2_ATOM_BODY_CONST(&ev->body), ev->body.size);
        }
    }
    if (pos < n)
        render(s, pos, n);
    memcpy(s->out[1], s->out[0], sizeof(float) * n);
    if (s->active) {
        float a = 0;
        oscine_chain_meter(s->cur, "/synth/active", &a);
        *s->active = a;
    }
}

/* Thread: worker (never beside another work() call). */
static LV2_Worker_Status work(LV2_Handle h, LV2_Worker_Respond_Function respond,
                              LV2_Worker_Respond_Handle rh, uint32_t size, const void *data)
{
    synth *s = h;
    if (size != sizeof(msg))
        return LV2_WORKER_ERR_UNKNOWN;
    msg m;
    memcpy(&m, data, sizeof m);
    if (m.kind == MSG_FREE) {
        oscine_chain_destroy(m.chain);
        return LV2_WORKER_SUCCESS;
    }
    if (m.kind != MSG_LOAD || m.model < 0 || m.model >= NMODELS)
        return LV2_WORKER_ERR_UNKNOWN;
    msg r = {MSG_FAILED, m.model, build(s, MODELS[m.model])};
    if (r.chain)
        r.kind = MSG_LOADED;
    if (respond(rh, sizeof r, &r) != LV2_WORKER_SUCCESS) {
        oscine_chain_destroy(r.chain);
        return LV2_WORKER_ERR_NO_SPACE;
    }
    return LV2_WORKER_SUCCESS;
}

/* Thread: audio (between run() calls). The new chain starts with the
 * controls and the notes held now, and fades in. */
static LV2_Worker_Status work_response(LV2_Handle h, uint32_t size, const void *data)
{
    synth *s = h;
    if (size != sizeof(msg))
        return LV2_WORKER_ERR_UNKNOWN;
    msg m;
    memcpy(&m, data, sizeof m);
    s->loading = 0;
    if (m.kind != MSG_LOADED)
        return LV2_WORKER_SUCCESS; /* logged by work(); the old model plays on */
    s->next = m.chain;
    send_controls(s, s->next, 1);
    for (int n = 0; n < 128; n++)
        if (s->mid.vel[n] > 0) {
            float a[2] = {(float)n, s->mid.vel[n]};
            chain_event_rt(s->next, "/synth/note_on", a, 2);
        }
    s->xfade_pos = 0;
    atomic_store(&s->model, m.model); /* save() may read it from another thread */
    return LV2_WORKER_SUCCESS;
}

/* Thread: instantiation. */
static void cleanup(LV2_Handle h)
{
    synth *s = h;
    oscine_chain_destroy(s->cur);
    oscine_chain_destroy(s->next);
    free(s);
}

/* Thread: instantiation. Loads the first model: all memory is taken here
 * or by the worker. */
static LV2_Handle instantiate(const LV2_Descriptor *d, double rate, const char *bundle,
                              const LV2_Feature *const *features)
{
    synth *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    LV2_Log_Log *log = NULL;
    for (int i = 0; features && features[i]; i++) {
        if (!strcmp(features[i]->URI, LV2_URID__map))
            s->map = features[i]->data;
        else if (!strcmp(features[i]->URI, LV2_LOG__log))
            log = features[i]->data;
        else if (!strcmp(features[i]->URI, LV2_WORKER__schedule))
            s->sched = features[i]->data;
    }
    lv2_log_logger_init(&s->log, s->map, log);
    if (!s->map || !s->sched) {
        lv2_log_error(&s->log, "oscine synth: the host lacks %s\n",
                      s->map ? LV2_WORKER__schedule : LV2_URID__map);
        free(s);
        return NULL;
    }
    s->urid_midi = s->map->map(s->map->handle, LV2_MIDI__MidiEvent);
    s->urid_model = s->map->map(s->map->handle, URI_MODEL);
    s->urid_string = s->map->map(s->map->handle, LV2_ATOM__String);
    s->rate = (int)(rate + 0.5);
    if (s->rate < 8000 || s->rate > 192000) {
        lv2_log_error(&s->log, "oscine synth: sample rate %g Hz not supported (8000..192000)\n",
                      rate);
        free(s);
        return NULL;
    }
    snprintf(s->bundle, sizeof s->bundle, "%s", bundle ? bundle : "");
    s->xfade_len = (int)(XFADE_MS * 1e-3 * s->rate);
    s->cur = build(s, MODELS[0]);
    if (!s->cur) {
        free(s);
        return NULL;
    }
    atomic_store(&s->model, 0);
    midi_reset(&s->mid);
    const char *note = pcore_blas_note();
    if (note)
        lv2_log_note(&s->log, "oscine synth: %s\n", note);
    return s;
}

/* Thread: audio. */
static void connect_port(LV2_Handle h, uint32_t p, void *data)
{
    synth *s = h;
    if (p == P_MIDI)
        s->midi = data;
    else if (p == P_OUT_L || p == P_OUT_R)
        s->out[p - P_OUT_L] = data;
    else if (p == P_ACTIVE)
        s->active = data;
    else if (p < P_COUNT)
        s->ctl[p] = data;
}

/* Thread: instantiation. Silence, no notes, the MIDI state back to rest. */
static void activate(LV2_Handle h)
{
    synth *s = h;
    oscine_chain_reset(s->cur);
    midi_reset(&s->mid);
    send_controls(s, s->cur, 1);
    controls_sent(s);
}

static void deactivate(LV2_Handle h) { (void)h; }

/* The weights file in use. Thread: any (model is atomic; restored changes
 * only in restore(), which never runs beside save()). */
static void model_file(const synth *s, char *out, size_t len)
{
    int m = atomic_load(&s->model);
    if (m >= 0)
        snprintf(out, len, "ddsp-%s.osw", MODELS[m]);
    else
        snprintf(out, len, "%s", s->restored);
}

/* Thread: any, also beside run(). */
static LV2_State_Status save(LV2_Handle h, LV2_State_Store_Function store,
                             LV2_State_Handle sh, uint32_t flags,
                             const LV2_Feature *const *features)
{
    synth *s = h;
    char f[MODEL_NAME_MAX];
    model_file(s, f, sizeof f);
    return store(sh, s->urid_model, f, strlen(f) + 1, s->urid_string,
                 LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE);
}

/* Thread: instantiation (not beside run()): loads the model itself. A
 * missing or bad model keeps the current one. */
static LV2_State_Status restore(LV2_Handle h, LV2_State_Retrieve_Function retrieve,
                                LV2_State_Handle sh, uint32_t flags,
                                const LV2_Feature *const *features)
{
    synth *s = h;
    size_t size = 0;
    uint32_t type = 0, vflags = 0;
    const char *v = retrieve(sh, s->urid_model, &size, &type, &vflags);
    if (!v)
        return LV2_STATE_SUCCESS;
    if (type != s->urid_string)
        return LV2_STATE_ERR_BAD_TYPE;
    if (size < 2 || size > MODEL_NAME_MAX || v[size - 1] || strlen(v) != size - 1 ||
        strchr(v, '/') || !strcmp(v, "..")) {
        lv2_log_error(&s->log, "oscine synth: state: bad model name\n");
        return LV2_STATE_ERR_UNKNOWN;
    }
    int idx = -1;
    for (int i = 0; i < NMODELS; i++) {
        char f[MODEL_NAME_MAX];
        snprintf(f, sizeof f, "ddsp-%s.osw", MODELS[i]);
        if (!strcmp(f, v))
            idx = i;
    }
    char cur[MODEL_NAME_MAX];
    model_file(s, cur, sizeof cur);
    if (strcmp(v, cur)) {
        oscine_chain *c = build(s, v);
        if (!c)
            return LV2_STATE_ERR_UNKNOWN;
        oscine_chain_destroy(s->cur);
        oscine_chain_destroy(s->next);
        s->cur = c;
        s->next = NULL;
        send_controls(s, s->cur, 1);
        controls_sent(s);
    }
    snprintf(s->restored, sizeof s->restored, "%s", v);
    atomic_store(&s->model, idx);
    /* Only a later change of the port loads another model: a host that
     * restores the port too sets it to this model's index (run() then
     * loads nothing); a model restored by a name outside the enumeration
     * stays until the user picks one. */
    s->asked = model_index(s);
    return LV2_STATE_SUCCESS;
}

static const void *extension_data(const char *uri)
{
    static const LV2_State_Interface state = {save, restore};
    static const LV2_Worker_Interface worker = {work, work_response, NULL};
    if (!strcmp(uri, LV2_STATE__interface))
        return &state;
    if (!strcmp(uri, LV2_WORKER__interface))
        return &worker;
    return NULL;
}

static const LV2_Descriptor descriptor = {URI_SYNTH, instantiate, connect_port, activate, run,
                                          deactivate, cleanup, extension_data};

const LV2_Descriptor *oscine_synth_descriptor(void) { return &descriptor; }
