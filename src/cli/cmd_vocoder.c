/* cmd_vocoder.c - the vocoder's commands:
 *   oscine mel IN OUT.npy          the exact mel front end the vocoder was trained on
 *   oscine vocode IN.npy OUT       mel spectrogram -> speech (16 kHz)
 *   oscine resynth IN OUT          analysis, mel-domain transforms, vocoding
 * `resynth` is a file job with the chain "resynth" (as `process --chain
 * resynth`) and its own flags; `mel` and `vocode` work on whole files with
 * models/vocoder directly. */
#include "cli.h"

#include "base/denormal.h"
#include "base/error.h"
#include "base/paths.h"
#include "dsp/resample.h"
#include "io/audiofile.h"
#include "io/npy.h"
#include "models/vocoder.h"
#include "nn/weights.h"
#include "oscine.h"

#include <math.h>
#include <signal.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK 4096
#define CHUNK 64 /* mel frames per network call in vocode */

typedef enum { LAYOUT_AUTO, LAYOUT_FRAMES_FIRST, LAYOUT_BANDS_FIRST } layout;

static int parse_layout(const char *v, layout *out)
{
    if (v && !strcmp(v, "frames-first"))
        *out = LAYOUT_FRAMES_FIRST;
    else if (v && !strcmp(v, "bands-first"))
        *out = LAYOUT_BANDS_FIRST;
    else
        return -1;
    return 0;
}

/* IN as mono at 16 kHz (mixed down, resampled with libsoxr HQ); *n samples,
 * round(frames * 16000 / rate). Prints the error itself. */
static int read_mono16k(const char *path, float **out, size_t *n)
{
    *out = NULL;
    in_file in;
    int e = in_open(&in, path);
    if (e) {
        in_close(&in);
        return cli_fail_lib(EXIT_RUNTIME, e, NULL);
    }
    SNDFILE *sf = in.sf;
    const SF_INFO si = in.info;
    if (si.frames <= 0 || si.samplerate < 8000 || si.samplerate > 192000) {
        in_close(&in);
        if (si.frames <= 0)
            return cli_fail(EXIT_RUNTIME, "input '%s': contains no audio", path);
        return cli_fail(EXIT_RUNTIME, "input '%s': sample rate %d Hz; oscine handles "
                        "8000..192000", path, si.samplerate);
    }
    const int ch = si.channels, rate = si.samplerate;
    size_t total = (size_t)si.frames;
    size_t n16 = (size_t)llround((double)total * VOC_RATE / rate);
    float *mono = malloc(sizeof(float) * (total ? total : 1));
    float *ib = malloc(sizeof(float) * BLOCK * (size_t)ch);
    float *y = calloc(n16 ? n16 : 1, sizeof(float));
    int code = EXIT_RUNTIME;
    resampler *rs = NULL;
    float *rb = NULL;
    if (!mono || !ib || !y) {
        cli_fail(EXIT_RUNTIME, "input '%s': out of memory", path);
        goto done;
    }
    size_t got = 0;
    while (got < total) {
        sf_count_t want = total - got < BLOCK ? (sf_count_t)(total - got) : BLOCK;
        sf_count_t r = sf_readf_float(sf, ib, want);
        if (r <= 0)
            break;
        for (sf_count_t i = 0; i < r; i++) {
            float acc = 0;
            for (int c = 0; c < ch; c++)
                acc += ib[i * ch + c];
            mono[got + (size_t)i] = acc / (float)ch;
        }
        got += (size_t)r;
    }
    /* a file that stops decoding early: the frames that came are used */
    if (got < total) {
        if (got == 0) {
            cli_fail(EXIT_RUNTIME, "input '%s': no frame of the %zu its header promises can "
                     "be read (%s)", path, total, sf_strerror(sf));
            goto done;
        }
        in.missing += (int64_t)(total - got);
        total = got;
        n16 = (size_t)llround((double)total * VOC_RATE / rate);
    }
    cli_warn_cut(path, in.missing, (long long)got);
    if (rate == VOC_RATE) {
        memcpy(y, mono, sizeof(float) * n16);
    } else {
        if ((e = resampler_create(&rs, rate, VOC_RATE, 0, BLOCK))) {
            cli_fail_lib(EXIT_RUNTIME, e, path);
            goto done;
        }
        rb = malloc(sizeof(float) * (size_t)resampler_max_out(rs));
        if (!rb) {
            cli_fail(EXIT_RUNTIME, "input '%s': out of memory", path);
            goto done;
        }
        size_t w = 0;
        for (size_t pos = 0; pos <= total;) {
            int k = total - pos < BLOCK ? (int)(total - pos) : BLOCK;
            int m = k ? resampler_process(rs, mono + pos, k, rb)
                      : resampler_process(rs, NULL, 0, rb); /* flush */
            if (m < 0) {
                cli_fail_lib(EXIT_RUNTIME, m, path);
                goto done;
            }
            for (int i = 0; i < m && w < n16; i++)
                y[w++] = rb[i];
            if (k)
                pos += (size_t)k;
            else if (m == 0 || w >= n16)
                break;
        }
    }
    *out = y;
    y = NULL;
    *n = n16;
    code = EXIT_OK;
done:
    in_close(&in);
    resampler_destroy(rs);
    free(rb);
    free(mono);
    free(ib);
    free(y);
    return code;
}

int cmd_mel(int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    layout lay = LAYOUT_FRAMES_FIRST;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--layout")) {
            if (parse_layout(i + 1 < argc ? argv[i + 1] : NULL, &lay))
                return cli_fail(EXIT_USAGE, "--layout: use frames-first or bands-first");
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "mel: unknown flag '%s' (see 'oscine help mel')", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_fail(EXIT_USAGE, "mel: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_fail(EXIT_USAGE, "mel: need IN and OUT.npy (see 'oscine help mel')");
    char out_real[4096];
    int te = out_target_check(pos[0], pos[1], out_real, sizeof out_real);
    if (te)
        return cli_fail_lib(te == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, te, NULL);
    float *x = NULL;
    size_t n = 0;
    int code = read_mono16k(pos[0], &x, &n);
    if (code)
        return code;
    size_t frames = vocoder_mel_frames_for(n);
    float *mel = malloc(sizeof(float) * frames * VOC_MELS);
    float *t = lay == LAYOUT_BANDS_FIRST ? malloc(sizeof(float) * frames * VOC_MELS) : NULL;
    vocoder_mel *fe = NULL;
    int e = 0;
    if (!mel || (lay == LAYOUT_BANDS_FIRST && !t))
        e = err_set(OSCINE_E_NOMEM, "out of memory");
    if (!e)
        e = vocoder_mel_create(&fe);
    if (!e) {
        vocoder_mel_buffer(fe, x, n, mel);
        int64_t shape[2] = {(int64_t)frames, VOC_MELS};
        const float *data = mel;
        if (t) {
            for (size_t f = 0; f < frames; f++)
                for (int b = 0; b < VOC_MELS; b++)
                    t[(size_t)b * frames + f] = mel[f * VOC_MELS + b];
            shape[0] = VOC_MELS;
            shape[1] = (int64_t)frames;
            data = t;
        }
        e = npy_write_f32(out_real, data, 2, shape);
    }
    if (!e && !cli_quiet)
        fprintf(stderr, "oscine: %s: %zu frames x %d mel bands (%s), %.2f s at 16 kHz\n", pos[1],
                frames, VOC_MELS, lay == LAYOUT_BANDS_FIRST ? "bands first" : "frames first",
                n / (double)VOC_RATE);
    vocoder_mel_destroy(fe);
    free(mel);
    free(t);
    free(x);
    return e ? cli_fail_lib(EXIT_RUNTIME, e, NULL) : EXIT_OK;
}

/* The scales a mel spectrogram comes in: the vocoder's natural log of the
 * magnitude (docs/mel.md), the same in log10 or in dB (20 log10, as power
 * dB), or not logarithmic at all. */
typedef enum { MEL_LN, MEL_LOG10, MEL_DB, MEL_LINEAR, MEL_AUTO } mel_scale;
static const char *const MEL_SCALE_NAMES[] = {"natural-log", "log10", "dB", "linear (not "
                                              "logarithmic)"};
static const char *const MEL_SCALE_FLAGS[] = {"ln", "log10", "db"};

/* Which scale the n values of a mel (lo .. hi) are in, from what the
 * natural-log scale cannot hold: ln of a magnitude in [1e-5, a few hundred]
 * spans about -11.5 .. 6; real mels from 'oscine mel' of dev speech, noisy
 * speech and noise span -11.51 .. 0.9 with a lowest value of -5.4 or less
 * (full-scale white noise). In order:
 *  - constant: nothing to tell, natural log;
 *  - all >= 0: linear (every natural-log mel of sound has negative values);
 *  - below -30 or above 12: dB (its floor is -100 for 1e-5);
 *  - a floor (at least 0.5 % of the values equal to the lowest) at a whole
 *    number -1 .. -12: log10 with a floor 10^-k (-5 for 1e-5), since the
 *    natural-log floors ln 10^-k are never whole;
 *  - no value below -5 and none above 2: log10 (ln's lowest is far lower);
 *  - else natural log.
 * A mel in log10 with a floor below 1e-5 and no exact floor values can pass
 * as natural log; docs/mel.md says so. */
static mel_scale mel_scale_guess(const float *v, size_t n, float lo, float hi)
{
    if (hi - lo < 1e-6f)
        return MEL_LN;
    if (lo >= 0)
        return MEL_LINEAR;
    if (lo < -30 || hi > 12)
        return MEL_DB;
    size_t at_floor = 0;
    for (size_t i = 0; i < n; i++)
        at_floor += v[i] <= lo + 1e-4f;
    if (at_floor * 200 >= n && lo >= -12.5f && lo <= -0.5f && fabsf(lo - roundf(lo)) < 1e-3f)
        return MEL_LOG10;
    if (lo >= -5.0001f && hi <= 2)
        return MEL_LOG10;
    return MEL_LN;
}

int cmd_vocode(int argc, char **argv)
{
    const char *pos[2], *model = NULL;
    int npos = 0;
    layout lay = LAYOUT_AUTO;
    oscine_sample_type samples = OSCINE_SAMPLES_PCM16;
    int rtisi_la = -2, rtisi_it = -2; /* -2: the file synthesis; -1: the model's */
    int refine = -2;                  /* -2: the file synthesis' with it, else none */
    mel_scale scale = MEL_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--refine")) {
            char *end = NULL;
            long n = v ? strtol(v, &end, 10) : -1;
            if (!v || end == v || *end || n < 0 || n > VOC_MAX_REFINE)
                return cli_fail(EXIT_USAGE, "--refine '%s': give the passes of the mel refinement, "
                                "0..%d (0: none)", v ? v : "", VOC_MAX_REFINE);
            refine = (int)n;
            i++;
        } else if (!strcmp(a, "--rtisi")) {
            if (v && !strcmp(v, "model")) {
                rtisi_la = rtisi_it = -1;
            } else {
                char *end = NULL;
                long la = -1, it = -1;
                if (v) {
                    la = strtol(v, &end, 10);
                    if (end != v && *end == ',') {
                        const char *p = end + 1;
                        it = strtol(p, &end, 10);
                        if (end == p)
                            it = -1;
                    }
                }
                if (!v || *end || la < 0 || la > 16 || it < 0 || it > 16)
                    return cli_fail(EXIT_USAGE, "--rtisi '%s': give LOOKAHEAD,PASSES (0..16 "
                                    "each) or 'model'", v ? v : "");
                rtisi_la = (int)la;
                rtisi_it = (int)it;
            }
            i++;
        } else if (!strcmp(a, "--layout")) {
            if (parse_layout(v, &lay))
                return cli_fail(EXIT_USAGE, "--layout: use frames-first or bands-first");
            i++;
        } else if (!strcmp(a, "--mel-scale")) {
            int k = MEL_LN;
            while (v && k <= MEL_DB && strcmp(v, MEL_SCALE_FLAGS[k]))
                k++;
            if (!v || k > MEL_DB)
                return cli_fail(EXIT_USAGE, "--mel-scale '%s': use ln, log10 or db", v ? v : "");
            scale = (mel_scale)k;
            i++;
        } else if (!strcmp(a, "--model")) {
            if (!v || !v[0])
                return cli_fail(EXIT_USAGE, "--model needs a path");
            model = v;
            i++;
        } else if (!strcmp(a, "--bits")) {
            if (!v)
                return cli_fail(EXIT_USAGE, "--bits needs 16, 24, 32 or float");
            if (!strcmp(v, "16"))
                samples = OSCINE_SAMPLES_PCM16;
            else if (!strcmp(v, "24"))
                samples = OSCINE_SAMPLES_PCM24;
            else if (!strcmp(v, "32"))
                samples = OSCINE_SAMPLES_PCM32;
            else if (!strcmp(v, "float"))
                samples = OSCINE_SAMPLES_FLOAT;
            else
                return cli_fail(EXIT_USAGE, "--bits '%s': use 16, 24, 32 or float", v);
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "vocode: unknown flag '%s' (see 'oscine help vocode')", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_fail(EXIT_USAGE, "vocode: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_fail(EXIT_USAGE, "vocode: need IN.npy and OUT (see 'oscine help vocode')");
    const char *in_path = pos[0], *out_path = pos[1];
    char out_real[4096];
    int te = out_target_check(in_path, out_path, out_real, sizeof out_real);
    if (te)
        return cli_fail_lib(te == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, te, NULL);
    int sf_format, bits;
    int e = choose_output_format(out_path, OSCINE_FORMAT_SAME, samples,
                                 SF_FORMAT_WAV | SF_FORMAT_FLOAT, &sf_format, &bits);
    if (e)
        return cli_fail_lib(EXIT_USAGE, e, NULL);

    /* The mel spectrogram: 2-D, 80 bands on one axis, finite, not empty. */
    npy_array a;
    if ((e = npy_read_f32(in_path, &a)))
        return cli_fail_lib(EXIT_RUNTIME, e, NULL);
    int code = EXIT_RUNTIME;
    char mpath[4096];
    osw_file *w = NULL;
    vocoder_net *net = NULL;
    vocoder_syn *syn = NULL;
    float *mel = NULL, *fr = NULL, *wav = NULL;
    out_file of = {0};
    int opened = 0;
    if (a.ndim != 2) {
        cli_fail(EXIT_RUNTIME, "input '%s': a %d-D array of %lld values; need a 2-D mel "
                 "spectrogram [frames, %d] or [%d, frames]", in_path, a.ndim,
                 (long long)a.shape[0], VOC_MELS, VOC_MELS);
        goto done;
    }
    const long long r = a.shape[0], c = a.shape[1];
    if (lay == LAYOUT_AUTO) {
        if (c == VOC_MELS && r == VOC_MELS) {
            cli_fail(EXIT_USAGE, "input '%s': shape (80, 80) is ambiguous; say which axis "
                     "holds the bands with --layout frames-first or --layout bands-first",
                     in_path);
            code = EXIT_USAGE;
            goto done;
        }
        lay = c == VOC_MELS ? LAYOUT_FRAMES_FIRST : r == VOC_MELS ? LAYOUT_BANDS_FIRST
                                                                  : LAYOUT_AUTO;
    }
    const long long bands = lay == LAYOUT_BANDS_FIRST ? r : c;
    const long long frames = lay == LAYOUT_BANDS_FIRST ? c : r;
    if (lay == LAYOUT_AUTO || bands != VOC_MELS) {
        cli_fail(EXIT_RUNTIME, "input '%s': shape (%lld, %lld) has no axis of %d mel bands%s "
                 "(the vocoder takes %d bands, natural-log mel; see 'oscine help mel')", in_path,
                 r, c, VOC_MELS, lay == LAYOUT_AUTO ? "" : " on the --layout axis", VOC_MELS);
        goto done;
    }
    if (frames == 0) {
        cli_fail(EXIT_RUNTIME, "input '%s': no frames (shape (%lld, %lld))", in_path, r, c);
        goto done;
    }
    /* frames*80 - 240 samples: the first 3 frames only fill the 20 ms window
     * ('oscine mel' writes at least 4 for a file of one sample) */
    const long long min_frames = VOC_STFT_LATENCY / VOC_HOP + 1;
    if (frames < min_frames) {
        cli_fail(EXIT_RUNTIME, "input '%s': %lld frame%s no audio (the first %lld only "
                 "fill the 20 ms window; need at least %lld)", in_path, frames,
                 frames == 1 ? " makes" : "s make", min_frames - 1, min_frames);
        goto done;
    }
    mel = malloc(sizeof(float) * (size_t)frames * VOC_MELS);
    if (!mel) {
        cli_fail(EXIT_RUNTIME, "input '%s': out of memory", in_path);
        goto done;
    }
    float lo = INFINITY, hi = -INFINITY;
    for (long long f = 0; f < frames; f++)
        for (int b = 0; b < VOC_MELS; b++) {
            float v = lay == LAYOUT_BANDS_FIRST ? a.data[(size_t)b * frames + f]
                                                : a.data[(size_t)f * VOC_MELS + b];
            if (!isfinite(v)) {
                cli_fail(EXIT_RUNTIME, "input '%s': %s at frame %lld, band %d", in_path,
                         isnan(v) ? "NaN" : "infinity", f, b);
                goto done;
            }
            lo = fminf(lo, v);
            hi = fmaxf(hi, v);
            mel[(size_t)f * VOC_MELS + b] = v;
        }
    const size_t nv = (size_t)frames * VOC_MELS;
    if (scale == MEL_AUTO) {
        mel_scale seen = mel_scale_guess(mel, nv, lo, hi);
        if (seen != MEL_LN) {
            cli_fail(EXIT_RUNTIME, "input '%s': values %.4g .. %.4g look like a %s mel, not the "
                     "natural-log mel the vocoder takes (docs/mel.md)%s", in_path, (double)lo,
                     (double)hi, MEL_SCALE_NAMES[seen],
                     seen == MEL_LINEAR ? "; take its natural log, ln(max(x, 1e-5))"
                     : seen == MEL_LOG10 ? "; --mel-scale log10 converts it (--mel-scale ln if "
                                           "it is natural-log after all)"
                                         : "; --mel-scale db converts it (--mel-scale ln if it "
                                           "is natural-log after all)");
            goto done;
        }
    }
    /* to natural log, then the floor 'oscine mel' applies */
    const float to_ln = scale == MEL_LOG10 ? (float)M_LN10 : scale == MEL_DB ? (float)(M_LN10 / 20)
                                                                            : 1.0f;
    lo *= to_ln;
    hi *= to_ln;
    for (size_t i = 0; i < nv; i++)
        mel[i] = fmaxf(mel[i] * to_ln, logf(VOC_LOG_FLOOR));
    if (!cli_quiet && (hi > 8.0f || lo < logf(VOC_LOG_FLOOR) - 0.01f))
        fprintf(stderr, "oscine: warning: '%s' values span %.3g .. %.3g%s; the vocoder expects "
                "natural-log magnitude mel (floor ln 1e-5 = -11.5, speech about -11 .. 1; values "
                "below the floor are raised to it), as 'oscine mel' writes\n", in_path,
                (double)lo, (double)hi, scale == MEL_LOG10 || scale == MEL_DB ? " (converted)" : "");

    /* The model, checked against the input's configuration. */
    if (model) {
        snprintf(mpath, sizeof mpath, "%s", model);
    } else if (paths_find_model("vocoder-16k.osw", mpath, sizeof mpath)) {
        cli_fail(EXIT_RUNTIME, "model 'vocoder-16k.osw' not found in %s (give --model PATH)",
                 paths_model_dirs());
        goto done;
    }
    if ((e = osw_open(&w, mpath)) || (e = vocoder_net_create(&net, w, CHUNK))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto done;
    }
    if ((e = rtisi_la == -2 ? vocoder_syn_create_file_with(&syn, net, refine == -2 ? -1 : refine)
                            : vocoder_syn_create_with(&syn, net, rtisi_la, rtisi_it,
                                                      refine == -2 ? 0 : refine))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto done;
    }
    /* Every frame through the synthesis, then its look-ahead flushed with
     * silent frames; the first 240 samples (before the first frame's hop)
     * and the synthesis' look-ahead are dropped: frames*80 - 240 samples. */
    const int sla = vocoder_syn_lookahead(syn);
    const size_t L = VOC_STFT_LATENCY + (size_t)sla * VOC_HOP;
    const size_t nout = (size_t)frames * VOC_HOP - VOC_STFT_LATENCY;
    fr = malloc(sizeof(float) * (CHUNK + VOC_MAX_LOOKAHEAD) * VOC_FRAME);
    wav = malloc(sizeof(float) * ((size_t)(frames + sla) * VOC_HOP));
    if (!fr || !wav) {
        cli_fail(EXIT_RUNTIME, "input '%s': out of memory", in_path);
        goto done;
    }
    size_t done_frames = 0;
    fp_mode fp = denormals_off(); /* as the chain runs stages: the refinement's quiet tails */
    for (long long f = 0;; f += CHUNK) { /* chunks of frames, then the drain */
        int k, last = f >= frames;
        if (!last) {
            int take = frames - f < CHUNK ? (int)(frames - f) : CHUNK;
            k = vocoder_net_process(net, mel + (size_t)f * VOC_MELS, take, fr);
        } else {
            k = vocoder_net_drain(net, fr);
        }
        for (int j = 0; j < k; j++, done_frames++)
            vocoder_syn_frame(syn, fr + (size_t)j * VOC_FRAME, wav + done_frames * VOC_HOP);
        if (last)
            break;
    }
    for (int j = 0; j < sla; j++)
        vocoder_syn_frame(syn, NULL, wav + (done_frames + (size_t)j) * VOC_HOP);
    denormals_restore(fp);
    if (done_frames != (size_t)frames) {
        cli_fail(EXIT_RUNTIME, "vocode: %zu of %lld frames came out (a bug)", done_frames, frames);
        goto done;
    }
    if ((e = out_open(&of, out_real, sf_format, VOC_RATE, 1, 1, (int64_t)nout))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto done;
    }
    opened = 1;
    if ((e = out_write(&of, wav + L, (int)nout))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto done;
    }
    int64_t clipped = of.clipped;
    opened = 0;
    if ((e = out_close(&of, 1))) {
        cli_fail_lib(EXIT_RUNTIME, e, NULL);
        goto done;
    }
    if (!cli_quiet) {
        fprintf(stderr, "oscine: %s: %lld frames -> %.2f s at 16 kHz (model %s)\n", out_path,
                frames, nout / (double)VOC_RATE, mpath);
    }
    cli_warn_clipped(out_path, clipped, "write --bits float to keep them");
    code = EXIT_OK;
done:
    if (opened)
        out_close(&of, 0);
    vocoder_syn_destroy(syn);
    vocoder_net_destroy(net);
    osw_close(w);
    npy_free(&a);
    free(mel);
    free(fr);
    free(wav);
    return code;
}

/* `oscine resynth IN OUT [--warp R] [--tilt DB] [--low DB] [--mid DB] [--high DB]
 * [--mix X] [--model PATH] [--format wav|flac] [--rate HZ] [--bits B]
 * [--no-dither] [--quiet]`: a file job with the chain "resynth". */
static volatile sig_atomic_t resynth_stop;

static void resynth_signal(int sig)
{
    (void)sig;
    resynth_stop = 1;
}

static int resynth_progress(void *user, int64_t done, int64_t total)
{
    (void)user;
    (void)done;
    (void)total;
    return resynth_stop;
}

int cmd_resynth(int argc, char **argv)
{
    static const struct { const char *flag, *addr; } map[] = {
        {"--warp", "/resynth/warp"}, {"--tilt", "/resynth/tilt"}, {"--low", "/resynth/low_db"},
        {"--mid", "/resynth/mid_db"}, {"--high", "/resynth/high_db"}, {"--mix", "/resynth/mix"},
    };
    enum { NMAP = sizeof map / sizeof map[0] };
    const char *pos[2], *addr[NMAP];
    float vals[NMAP];
    int npos = 0, nset = 0;
    oscine_model_path mp = {"resynth", NULL};
    oscine_file_job job = {.stages = "resynth", .dither = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int m = 0;
        while (m < NMAP && strcmp(a, map[m].flag))
            m++;
        if (m < NMAP) {
            float x;
            if (!v)
                return cli_fail(EXIT_USAGE, "%s needs a value", a);
            int pe = cli_parse_float(v, &x);
            if (pe)
                return cli_fail(EXIT_USAGE, "%s '%s': %s", a, v, cli_float_why(pe));
            int k = 0;
            while (k < nset && addr[k] != map[m].addr)
                k++;
            addr[k] = map[m].addr;
            vals[k] = x;
            nset += k == nset;
            i++;
        } else if (!strcmp(a, "--model")) {
            if (!v || !v[0])
                return cli_fail(EXIT_USAGE, "--model needs a path");
            mp.path = v;
            i++;
        } else if (!strcmp(a, "--format")) {
            if (v && !strcmp(v, "wav"))
                job.format = OSCINE_FORMAT_WAV;
            else if (v && !strcmp(v, "flac"))
                job.format = OSCINE_FORMAT_FLAC;
            else
                return cli_fail(EXIT_USAGE, "--format: use wav or flac");
            i++;
        } else if (!strcmp(a, "--rate")) {
            long r;
            if (!v || cli_parse_int(v, 8000, 192000, &r))
                return cli_fail(EXIT_USAGE, "--rate '%s': give 8000..192000 Hz", v ? v : "");
            job.out_rate = (int)r;
            i++;
        } else if (!strcmp(a, "--bits")) {
            if (v && !strcmp(v, "16"))
                job.samples = OSCINE_SAMPLES_PCM16;
            else if (v && !strcmp(v, "24"))
                job.samples = OSCINE_SAMPLES_PCM24;
            else if (v && !strcmp(v, "32"))
                job.samples = OSCINE_SAMPLES_PCM32;
            else if (v && !strcmp(v, "float"))
                job.samples = OSCINE_SAMPLES_FLOAT;
            else
                return cli_fail(EXIT_USAGE, "--bits '%s': use 16, 24, 32 or float", v ? v : "");
            i++;
        } else if (!strcmp(a, "--no-dither")) {
            job.dither = 0;
        } else if (!strcmp(a, "--low-latency")) {
            job.low_latency = 1;
        } else if (!strcmp(a, "--chain") || !strcmp(a, "--set")) {
            return cli_fail(EXIT_USAGE, "resynth: %s belongs to 'oscine process' (e.g. "
                            "oscine process IN OUT --chain denoise,resynth)", a);
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "resynth: unknown flag '%s' (see 'oscine help "
                            "resynth')", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_fail(EXIT_USAGE, "resynth: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_fail(EXIT_USAGE, "resynth: need IN and OUT (see 'oscine help resynth')");
    job.in_path = pos[0];
    job.out_path = pos[1];
    job.set_addr = addr;
    job.set_value = vals;
    job.nset = nset;
    if (mp.path) {
        job.models = &mp;
        job.nmodels = 1;
    }
    job.progress = resynth_progress;
    struct sigaction sa = {.sa_handler = resynth_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return cli_run_job(&job);
}
