/* stage_denoise.c - speech denoising: STFT, the denoiser network's complex
 * mask (models/denoise), an attenuation limit and a wet/dry mix applied to
 * the mask, inverse STFT. Runs at 16 kHz in hops of 10 ms; latency 10 ms
 * (the window is 20 ms long and ends at the current hop; no lookahead). */
#include "engine/stage.h"

#include "base/error.h"
#include "dsp/stft.h"
#include "models/denoise.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB DENOISE_BINS
#define VAD_LO 3    /* bins 150 Hz .. 4 kHz carry most voice energy */
#define VAD_HI 80
#define BAND_LO 120 /* 6 .. 8 kHz: the gain for the band above 8 kHz */

enum { P_MIX, P_LIMIT, P_COUNT };

static const stage_param dn_params[] = {
    {"mix", "", 0.0f, 1.0f, 1.0f, "wet/dry: 1 = denoised, 0 = the input (same latency)"},
    {"limit_db", "dB", 0.0f, 100.0f, 100.0f,
     "most attenuation any bin gets; 100 = no limit, 12 = keep some ambience"},
};

static const char *const dn_meters[] = {"vad"};

typedef struct dn_state {
    stft *st;
    denoise_net *net;
    float spec[2 * NB], mask[2 * NB], y[2 * NB];
    float mix, limit_db;   /* targets */
    float mix_s, floor_s;  /* per-hop smoothed: mix, mask magnitude floor */
    float vad, band_g;
} dn_state;

static float limit_to_floor(float db) { return db >= 100.0f ? 0.0f : powf(10.0f, -db / 20.0f); }

static void dn_destroy(void *state)
{
    dn_state *s = state;
    if (!s)
        return;
    stft_destroy(s->st);
    denoise_net_destroy(s->net);
    free(s);
}

static int dn_create(void **state, const stage_env *env)
{
    *state = NULL;
    if (!env->model)
        return err_set(OSCINE_E_ARG, "no weights file");
    dn_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(OSCINE_E_NOMEM, "out of memory");
    stft_config sc = {DENOISE_NFFT, DENOISE_WIN, DENOISE_HOP, STFT_WIN_SQRT_HANN};
    int e = stft_create(&s->st, &sc);
    osw_file *w = NULL;
    if (!e)
        e = osw_open(&w, env->model);
    if (!e)
        e = denoise_net_create(&s->net, w);
    osw_close(w);
    if (e) {
        dn_destroy(s);
        return e;
    }
    s->mix = s->mix_s = 1.0f;
    s->limit_db = 100.0f;
    s->band_g = 1.0f;
    *state = s;
    return 0;
}

static void dn_hop(dn_state *s, float *buf)
{
    stft_analyze(s->st, buf, s->spec);
    denoise_net_frame(s->net, s->spec, s->mask);
    /* Settings move over ~2 hops: the overlap-add crossfades the rest. */
    s->mix_s += 0.5f * (s->mix - s->mix_s);
    float fl = limit_to_floor(s->limit_db);
    s->floor_s += 0.5f * (fl - s->floor_s);
    const float mix = s->mix_s, floor = s->floor_s;
    double e_in = 0, e_out = 0, b_in = 0, b_out = 0;
    for (int k = 0; k < NB; k++) {
        float mr = s->mask[2 * k], mi = s->mask[2 * k + 1];
        float mag = sqrtf(mr * mr + mi * mi);
        if (mag < floor) {
            if (mag > 1e-9f) {
                mr *= floor / mag;
                mi *= floor / mag;
            } else {
                mr = floor;
                mi = 0;
            }
        }
        mr = mix * mr + (1.0f - mix);
        mi = mix * mi;
        float xr = s->spec[2 * k], xi = s->spec[2 * k + 1];
        float yr = mr * xr - mi * xi, yi = mr * xi + mi * xr;
        s->y[2 * k] = yr;
        s->y[2 * k + 1] = yi;
        double pin = (double)xr * xr + (double)xi * xi, pout = (double)yr * yr + (double)yi * yi;
        if (k >= VAD_LO && k <= VAD_HI) {
            e_in += pin;
            e_out += pout;
        }
        if (k >= BAND_LO) {
            b_in += pin;
            b_out += pout;
        }
    }
    stft_synthesize(s->st, s->y, buf);
    /* Voice activity: the share of the 150 Hz - 4 kHz energy the model keeps
     * (speech is kept, noise is removed), gated off in near silence. */
    float keep = e_in > 1e-12 ? (float)(e_out / e_in) : 0.0f;
    float level_db = 10.0f * log10f((float)(e_in / (DENOISE_WIN * DENOISE_WIN / 4.0)) + 1e-20f);
    s->vad = level_db < -70.0f ? 0.0f : fminf(1.0f, keep);
    /* The band above 8 kHz follows what the mask does at 6-8 kHz. */
    float g = b_in > 1e-12 ? sqrtf((float)(b_out / b_in)) : 1.0f;
    s->band_g = fminf(1.0f, fmaxf(g, floor * mix + (1.0f - mix)));
}

static void dn_process(void *state, float *buf, int n)
{
    dn_hop(state, buf); /* n == DENOISE_HOP: the chain keeps to the hop */
    (void)n;
}

static void dn_reset(void *state)
{
    dn_state *s = state;
    stft_reset(s->st);
    denoise_net_reset(s->net);
    s->mix_s = s->mix;
    s->floor_s = limit_to_floor(s->limit_db);
    s->vad = 0;
    s->band_g = 1.0f;
}

static int dn_latency(const void *state) { return stft_latency(((const dn_state *)state)->st); }

static void dn_set(void *state, int index, float value)
{
    dn_state *s = state;
    if (index == P_MIX)
        s->mix = value;
    else if (index == P_LIMIT)
        s->limit_db = value;
}

static float dn_meter(const void *state, int index) { return ((const dn_state *)state)->vad; }
static float dn_band_gain(const void *state) { return ((const dn_state *)state)->band_g; }

const stage_class stage_denoise = {
    .name = "denoise",
    .help = "speech denoiser (causal FRCRN-style network, 16 kHz, 10 ms latency)",
    .rate = DENOISE_RATE,
    .hop = DENOISE_HOP,
    .params = dn_params,
    .nparams = P_COUNT,
    .create = dn_create,
    .process = dn_process,
    .reset = dn_reset,
    .latency = dn_latency,
    .set_param = dn_set,
    .destroy = dn_destroy,
    .model_file = "denoise-16k.osw",
    .meters = dn_meters,
    .nmeters = 1,
    .meter = dn_meter,
    .band_gain = dn_band_gain,
};
