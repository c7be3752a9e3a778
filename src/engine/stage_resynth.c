/* stage_resynth.c - voice resynthesis: the vocoder's mel front end, mel-domain
 * transforms (frequency warp, spectral tilt, three band gains), the vocoder
 * network (models/vocoder), its synthesis (vocoder_syn); freeze holds the spectrum, mix
 * blends with the delayed input. 16 kHz, hops of 80 samples (5 ms).
 *
 * Latency: the window (320 samples, of which 240 before the hop) plus the
 * network's lookahead and the synthesis' RTISI-LA look-ahead, both read from
 * the model (see oscine help stages for the shipped model's total).
 *
 * Transforms act on the natural-log mel frame before the network:
 *   warp w (0.5..2): band b takes the mel value found at frequency f_b / w
 *     (linear interpolation between bands on the mel scale, edge bands held
 *     beyond the range): w > 1 moves formants and harmonics up.
 *   tilt (dB/octave) and gains (dB) add tilt * log2(f_b / 1 kHz) plus a gain
 *     interpolated over log frequency through low (250 Hz and below), mid
 *     (1.5 kHz) and high (5 kHz and above).
 *   Values are kept at or above the log floor ln(1e-5) the model saw.
 * Freeze: the last spectrum is held; each bin's phase keeps advancing by its
 * last frame-to-frame step, so held partials sustain instead of buzzing.
 * The network keeps running on the input meanwhile, so releasing is clean.
 */
#include "engine/stage.h"

#include "base/error.h"
#include "dsp/mel.h"
#include "dsp/ring.h"
#include "models/vocoder.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NB VOC_BINS
#define NM VOC_MELS

enum { P_WARP, P_TILT, P_FREEZE, P_MIX, P_LOW, P_MID, P_HIGH, P_COUNT };

static const stage_param rs_params[] = {
    {"warp", "", 0.5f, 2.0f, 1.0f,
     "frequency warp of the mel spectrum: >1 raises formants and pitch (smaller voice), <1 "
     "lowers them"},
    {"tilt", "dB/oct", -12.0f, 12.0f, 0.0f, "spectral tilt around 1 kHz: >0 brighter, <0 darker"},
    {"freeze", "", 0.0f, 1.0f, 0.0f, "1: hold the current spectrum (phases keep advancing); 0: follow the input"},
    {"mix", "", 0.0f, 1.0f, 1.0f, "wet/dry: 1 = resynthesised, 0 = the input (same latency)"},
    {"low_db", "dB", -24.0f, 24.0f, 0.0f, "gain at 250 Hz and below (mel domain)"},
    {"mid_db", "dB", -24.0f, 24.0f, 0.0f, "gain around 1.5 kHz (mel domain)"},
    {"high_db", "dB", -24.0f, 24.0f, 0.0f, "gain at 5 kHz and above (mel domain)"},
};

typedef struct rs_state {
    vocoder_mel *fe;
    vocoder_net *net;
    vocoder_syn *syn;
    ring dry;
    int latency;
    float target[P_COUNT];  /* as set */
    float cur[P_COUNT];     /* smoothed per hop (warp, tilt, mix, gains) */
    float map_warp;         /* warp the band map was made for */
    float map_g[5];         /* tilt, low, mid, high the gains were made for (+ valid flag) */
    int i0[NM];             /* band map: source bands i0, i0+1 and weight */
    float fr[NM];
    float gain[NM];         /* added to the log mel */
    float log2f_b[NM];      /* log2(centre / 1 kHz) */
    float mel[NM];
    float frame[VOC_FRAME]; /* network output: logamp | phase | mel */
    float last[VOC_FRAME];  /* the frame being played (held when frozen) */
    float dphi[NB];         /* last phase step per bin */
    int have_last;
    float wet[VOC_HOP], dryb[VOC_HOP];
} rs_state;

static void rs_destroy(void *state)
{
    rs_state *s = state;
    if (!s)
        return;
    vocoder_mel_destroy(s->fe);
    vocoder_net_destroy(s->net);
    vocoder_syn_destroy(s->syn);
    ring_free(&s->dry);
    free(s);
}

static void rs_reset(void *state);

static int rs_create(void **state, const stage_env *env)
{
    *state = NULL;
    if (!env->model)
        return err_set(OSCINE_E_ARG, "no weights file");
    rs_state *s = calloc(1, sizeof *s);
    if (!s)
        return err_set(OSCINE_E_NOMEM, "out of memory");
    int e = vocoder_mel_create(&s->fe);
    osw_file *w = NULL;
    if (!e)
        e = osw_open(&w, env->model);
    if (!e)
        e = vocoder_net_create(&s->net, w, 1);
    osw_close(w);
    if (!e)
        e = env->low_latency ? vocoder_syn_create(&s->syn, s->net)
                             : vocoder_syn_create_file(&s->syn, s->net);
    if (!e) {
        s->latency = (vocoder_net_lookahead(s->net) + vocoder_syn_lookahead(s->syn)) * VOC_HOP +
                     VOC_STFT_LATENCY;
        if (ring_init(&s->dry, s->latency + VOC_HOP))
            e = err_set(OSCINE_E_NOMEM, "out of memory");
    }
    if (e) {
        rs_destroy(s);
        return e;
    }
    for (int b = 0; b < NM; b++)
        s->log2f_b[b] = (float)log2(vocoder_mel_centre_hz(b) / 1000.0);
    for (int i = 0; i < P_COUNT; i++)
        s->target[i] = rs_params[i].def;
    rs_reset(s);
    *state = s;
    return 0;
}

static void make_map(rs_state *s, float warp)
{
    const double lo = mel_from_hz(VOC_FMIN), hi = mel_from_hz(VOC_FMAX);
    const double step = (hi - lo) / (NM + 1);
    for (int b = 0; b < NM; b++) {
        double f = vocoder_mel_centre_hz(b) / warp;
        double idx = (mel_from_hz(f) - lo) / step - 1.0;
        if (idx < 0)
            idx = 0;
        if (idx > NM - 1)
            idx = NM - 1;
        int i = (int)idx;
        if (i > NM - 2)
            i = NM - 2;
        s->i0[b] = i;
        s->fr[b] = (float)(idx - i);
    }
    s->map_warp = warp;
}

/* Gain in dB through (log2 f, dB) anchors low/mid/high, constant outside. */
static float band_db(float l2, float low, float mid, float high)
{
    const float a = -2.0f /* log2(250/1000) */, m = 0.5849625f /* log2 1.5 */,
                c = 2.3219281f /* log2 5 */;
    if (l2 <= a)
        return low;
    if (l2 <= m)
        return low + (mid - low) * (l2 - a) / (m - a);
    if (l2 <= c)
        return mid + (high - mid) * (l2 - m) / (c - m);
    return high;
}

static void make_gains(rs_state *s)
{
    const float tilt = s->cur[P_TILT], lo = s->cur[P_LOW], mi = s->cur[P_MID],
                hi = s->cur[P_HIGH];
    for (int b = 0; b < NM; b++) {
        float db = tilt * s->log2f_b[b] + band_db(s->log2f_b[b], lo, mi, hi);
        s->gain[b] = db * 0.11512925f; /* ln(10) / 20: dB to natural log of amplitude */
    }
    s->map_g[0] = tilt;
    s->map_g[1] = lo;
    s->map_g[2] = mi;
    s->map_g[3] = hi;
    s->map_g[4] = 1;
}

/* Move a smoothed value toward its target; snap when close. */
static float approach(float cur, float target, float k, float eps)
{
    cur += k * (target - cur);
    return fabsf(cur - target) < eps ? target : cur;
}

static void transform(rs_state *s)
{
    const int warp = s->cur[P_WARP] != 1.0f;
    const int gains = s->cur[P_TILT] != 0 || s->cur[P_LOW] != 0 || s->cur[P_MID] != 0 ||
                      s->cur[P_HIGH] != 0;
    if (!warp && !gains)
        return; /* identity: the mel goes through untouched */
    float src[NM];
    memcpy(src, s->mel, sizeof src);
    if (warp) {
        if (s->map_warp != s->cur[P_WARP])
            make_map(s, s->cur[P_WARP]);
        for (int b = 0; b < NM; b++) {
            int i = s->i0[b];
            s->mel[b] = src[i] + s->fr[b] * (src[i + 1] - src[i]);
        }
    }
    if (gains) {
        if (!s->map_g[4] || s->map_g[0] != s->cur[P_TILT] || s->map_g[1] != s->cur[P_LOW] ||
            s->map_g[2] != s->cur[P_MID] || s->map_g[3] != s->cur[P_HIGH])
            make_gains(s);
        for (int b = 0; b < NM; b++)
            s->mel[b] += s->gain[b];
    }
    const float floor_ln = -11.512925f; /* ln(1e-5) */
    for (int b = 0; b < NM; b++)
        s->mel[b] = fmaxf(s->mel[b], floor_ln);
}

static float wrap_pi(float x)
{
    const float tp = 6.2831853f;
    return x - tp * floorf((x + 3.14159265f) / tp);
}

static void rs_process(void *state, float *buf, int n)
{
    rs_state *s = state;
    (void)n; /* n == VOC_HOP: the chain keeps to the hop */
    /* Settings glide over a few hops (the overlap-add smooths the rest). */
    s->cur[P_WARP] = approach(s->cur[P_WARP], s->target[P_WARP], 0.3f, 1e-4f);
    s->cur[P_TILT] = approach(s->cur[P_TILT], s->target[P_TILT], 0.3f, 1e-3f);
    s->cur[P_LOW] = approach(s->cur[P_LOW], s->target[P_LOW], 0.3f, 1e-3f);
    s->cur[P_MID] = approach(s->cur[P_MID], s->target[P_MID], 0.3f, 1e-3f);
    s->cur[P_HIGH] = approach(s->cur[P_HIGH], s->target[P_HIGH], 0.3f, 1e-3f);
    s->cur[P_MIX] = approach(s->cur[P_MIX], s->target[P_MIX], 0.5f, 1e-4f);
    const int frozen = s->target[P_FREEZE] >= 0.5f;

    vocoder_mel_frame(s->fe, buf, s->mel);
    transform(s);
    ring_write(&s->dry, buf, VOC_HOP);
    ring_read(&s->dry, s->dryb, VOC_HOP);
    if (vocoder_net_process(s->net, s->mel, 1, s->frame) == 1) {
        if (frozen && s->have_last) {
            for (int k = 0; k < NB; k++)
                s->last[NB + k] = wrap_pi(s->last[NB + k] + s->dphi[k]);
        } else {
            if (s->have_last)
                for (int k = 0; k < NB; k++)
                    s->dphi[k] = wrap_pi(s->frame[NB + k] - s->last[NB + k]);
            memcpy(s->last, s->frame, sizeof s->last);
            s->have_last = 1;
        }
        vocoder_syn_frame(s->syn, s->last, s->wet);
    } else {
        memset(s->wet, 0, sizeof s->wet); /* the lookahead is filling */
    }
    const float mix = s->cur[P_MIX];
    if (mix == 1.0f) {
        memcpy(buf, s->wet, sizeof s->wet);
    } else {
        for (int i = 0; i < VOC_HOP; i++)
            buf[i] = mix * s->wet[i] + (1.0f - mix) * s->dryb[i];
    }
}

static void rs_reset(void *state)
{
    rs_state *s = state;
    vocoder_mel_reset(s->fe);
    vocoder_net_reset(s->net);
    vocoder_syn_reset(s->syn);
    ring_clear(&s->dry);
    ring_write_zeros(&s->dry, s->latency);
    memcpy(s->cur, s->target, sizeof s->cur);
    s->map_warp = 0;
    s->map_g[4] = 0;
    s->have_last = 0;
    memset(s->dphi, 0, sizeof s->dphi);
}

static int rs_latency(const void *state) { return ((const rs_state *)state)->latency; }

static void rs_set(void *state, int index, float value)
{
    rs_state *s = state;
    if (index >= 0 && index < P_COUNT)
        s->target[index] = value;
}

/* Above 8 kHz (host rates over 16 kHz) only the dry share of the input passes:
 * the resynthesised voice has no band there. */
static float rs_band_gain(const void *state)
{
    return 1.0f - ((const rs_state *)state)->cur[P_MIX];
}

const stage_class stage_resynth = {
    .name = "resynth",
    .help = "voice resynthesis through the APNet-style vocoder, with mel-domain warp, tilt, "
            "band gains and freeze (16 kHz; 50 ms latency live with the shipped model; files refine longer)",
    .rate = VOC_RATE,
    .hop = VOC_HOP,
    .params = rs_params,
    .nparams = P_COUNT,
    .create = rs_create,
    .process = rs_process,
    .reset = rs_reset,
    .latency = rs_latency,
    .set_param = rs_set,
    .destroy = rs_destroy,
    .model_file = "vocoder-16k.osw",
    .band_gain = rs_band_gain,
};
