/* pa.c - PortAudio streams for the live engine. The callback hands
 * PortAudio's non-interleaved buffers straight to live_process. */
#include "io/pa.h"

#include "base/error.h"

#include <alsa/asoundlib.h>
#include <pa_jack.h>
#include <portaudio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct pa_live {
    PaStream *stream;
    PaDeviceIndex in_dev, out_dev;
    int in_ch, out_ch, rate, buffer;
    live *engine;
    const float **silent_in; /* unused: live handles NULL input */
};

static int pa_users;

/* PortAudio probes every ALSA device at start; ALSA prints each failed
 * probe to stderr, which buries the daemon's own log. Keep it quiet. */
static void alsa_quiet(const char *file, int line, const char *fn, int err, const char *fmt, ...)
{
}

static int pa_up(void)
{
    if (pa_users++ == 0) {
        snd_lib_error_set_handler(alsa_quiet);
        PaError e = Pa_Initialize();
        if (e != paNoError) {
            pa_users = 0;
            return err_set(OSCINE_E_IO, "PortAudio: %s", Pa_GetErrorText(e));
        }
    }
    return 0;
}

static void pa_down(void)
{
    if (pa_users > 0 && --pa_users == 0)
        Pa_Terminate();
}

int pa_list_devices(FILE *f)
{
    int e = pa_up();
    if (e)
        return e;
    int n = Pa_GetDeviceCount();
    fprintf(f, "%-4s %-40s %-26s %5s %5s %9s\n", "id", "name", "host api", "in", "out", "rate");
    for (int i = 0; i < n; i++) {
        const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
        const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
        fprintf(f, "%-4d %-40.40s %-26.26s %5d %5d %9.0f%s\n", i, d->name, h ? h->name : "?",
                d->maxInputChannels, d->maxOutputChannels, d->defaultSampleRate,
                i == Pa_GetDefaultInputDevice() || i == Pa_GetDefaultOutputDevice()
                    ? "  (default)" : "");
    }
    if (n == 0)
        fprintf(f, "(no devices)\n");
    pa_down();
    return 0;
}

/* First device whose name contains `want` (case-insensitive) and has
 * channels in the wanted direction, optionally on a named host API. */
static PaDeviceIndex find_device(const char *want, const char *api, int input, int ch)
{
    int n = Pa_GetDeviceCount();
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < n; i++) {
            const PaDeviceInfo *d = Pa_GetDeviceInfo(i);
            const PaHostApiInfo *h = Pa_GetHostApiInfo(d->hostApi);
            int have = input ? d->maxInputChannels : d->maxOutputChannels;
            if (have < ch)
                continue;
            if (api && (!h || !strcasestr(h->name, api)))
                continue;
            /* pass 0: exact name; pass 1: substring */
            if (want && (pass == 0 ? strcasecmp(d->name, want) : !strcasestr(d->name, want)))
                continue;
            if (!want) {
                /* default device of the host API (or the global default) */
                PaDeviceIndex def = api ? (input ? h->defaultInputDevice : h->defaultOutputDevice)
                                        : (input ? Pa_GetDefaultInputDevice()
                                                 : Pa_GetDefaultOutputDevice());
                if (def != i)
                    continue;
            }
            return i;
        }
    return paNoDevice;
}

static int callback(const void *input, void *output, unsigned long frames,
                    const PaStreamCallbackTimeInfo *time, PaStreamCallbackFlags flags,
                    void *user)
{
    pa_live *p = user;
    int xrun = (flags & (paInputOverflow | paOutputUnderflow | paInputUnderflow |
                         paOutputOverflow)) != 0;
    const float *const *in = p->in_ch ? (const float *const *)input : NULL;
    float *const *out = (float *const *)output;
    /* The engine was built for blocks of at most the buffer size asked for
     * (pa_live_prepare's *buffer); PortAudio keeps to it, but a callback
     * that broke the contract would overrun the engine's buffers. */
    const unsigned long most = p->buffer ? (unsigned long)p->buffer : OSCINE_MAX_BLOCK;
    for (unsigned long off = 0; off < frames; off += most) {
        int n = (int)(frames - off < most ? frames - off : most);
        const float *ip[OSCINE_MAX_CHANNELS];
        float *op[OSCINE_MAX_CHANNELS];
        for (int c = 0; c < p->out_ch; c++) {
            op[c] = out[c] + off;
            if (in)
                ip[c] = in[c] + off;
        }
        live_process(p->engine, in ? ip : NULL, op, n, xrun && off == 0);
    }
    (void)time;
    return paContinue;
}

int pa_live_prepare(pa_live **out, const pa_stream_config *cfg, int *rate, int *buffer)
{
    *out = NULL;
    if (cfg->client_name) /* read by the JACK host API when PortAudio starts */
        PaJack_SetClientName(cfg->client_name);
    int e = pa_up();
    if (e)
        return e;
    pa_live *p = calloc(1, sizeof *p);
    if (!p) {
        pa_down();
        return err_set(OSCINE_E_NOMEM, "out of memory");
    }
    p->out_ch = p->in_ch = cfg->channels;
    int want_in = !(cfg->input && !strcmp(cfg->input, "none"));
    p->out_dev = find_device(cfg->output, cfg->host_api, 0, cfg->channels);
    if (p->out_dev == paNoDevice) {
        free(p);
        pa_down();
        return err_set(OSCINE_E_IO, "no output device%s%s%s%s with %d channels (see 'oscine devices')",
                       cfg->output ? " matching '" : "", cfg->output ? cfg->output : "",
                       cfg->output ? "'" : "", cfg->host_api ? " on that host API" : "",
                       cfg->channels);
    }
    p->in_dev = paNoDevice;
    if (want_in) {
        p->in_dev = find_device(cfg->input, cfg->host_api, 1, cfg->channels);
        if (p->in_dev == paNoDevice) {
            free(p);
            pa_down();
            return err_set(OSCINE_E_IO, "no input device%s%s%s with %d channels (see 'oscine "
                           "devices'; --input none runs output only)",
                           cfg->input ? " matching '" : "", cfg->input ? cfg->input : "",
                           cfg->input ? "'" : "", cfg->channels);
        }
    } else {
        p->in_ch = 0;
    }
    p->rate = cfg->sample_rate ? cfg->sample_rate
                               : (int)Pa_GetDeviceInfo(p->out_dev)->defaultSampleRate;
    p->buffer = cfg->buffer;
    *rate = p->rate;
    *buffer = p->buffer ? p->buffer : OSCINE_MAX_BLOCK;
    *out = p;
    return 0;
}

int pa_live_start(pa_live *p, live *engine)
{
    p->engine = engine;
    PaStreamParameters ip = {0}, op = {0};
    op.device = p->out_dev;
    op.channelCount = p->out_ch;
    op.sampleFormat = paFloat32 | paNonInterleaved;
    op.suggestedLatency = Pa_GetDeviceInfo(p->out_dev)->defaultLowOutputLatency;
    if (p->in_ch) {
        ip.device = p->in_dev;
        ip.channelCount = p->in_ch;
        ip.sampleFormat = paFloat32 | paNonInterleaved;
        ip.suggestedLatency = Pa_GetDeviceInfo(p->in_dev)->defaultLowInputLatency;
    }
    PaError e = Pa_OpenStream(&p->stream, p->in_ch ? &ip : NULL, &op, p->rate,
                              p->buffer ? (unsigned long)p->buffer : paFramesPerBufferUnspecified,
                              paClipOff, callback, p);
    if (e != paNoError) {
        p->stream = NULL;
        return err_set(OSCINE_E_IO, "cannot open the audio stream (%d Hz, buffer %d): %s",
                       p->rate, p->buffer, Pa_GetErrorText(e));
    }
    e = Pa_StartStream(p->stream);
    if (e != paNoError)
        return err_set(OSCINE_E_IO, "cannot start the audio stream: %s", Pa_GetErrorText(e));
    return 0;
}

void pa_live_latency(pa_live *p, double *in_s, double *out_s)
{
    const PaStreamInfo *i = p->stream ? Pa_GetStreamInfo(p->stream) : NULL;
    *in_s = i ? i->inputLatency : 0;
    *out_s = i ? i->outputLatency : 0;
}

int pa_live_input_channels(pa_live *p) { return p->in_ch; }

int pa_live_failed(pa_live *p)
{
    return p->stream && Pa_IsStreamActive(p->stream) == 0;
}

void pa_live_close(pa_live *p)
{
    if (!p)
        return;
    if (p->stream) {
        Pa_StopStream(p->stream);
        Pa_CloseStream(p->stream);
    }
    free(p);
    pa_down();
}
