/* pa.h - live audio through PortAudio: device listing, and a stream whose
 * callback runs a live engine. */
#ifndef OSCINE_IO_PA_H
#define OSCINE_IO_PA_H

#include "engine/live.h"

#include <stdio.h>

typedef struct pa_stream_config {
    const char *input;   /* device name substring; NULL = default; "none" = no input */
    const char *output;  /* device name substring; NULL = default */
    const char *host_api;/* host API name substring (e.g. "JACK"); NULL = any */
    int sample_rate;     /* 0 = the output device's default */
    int buffer;          /* frames per callback; 0 = let PortAudio choose */
    int channels;
    const char *client_name; /* JACK client name (PortAudio's JACK host) */
} pa_stream_config;

typedef struct pa_live pa_live;

/* Thread: control. Pa_Initialize/Terminate are reference counted. */
int pa_list_devices(FILE *f);

/* Resolve devices and the rate without opening (so the engine can be built
 * for the right rate first). */
int pa_live_prepare(pa_live **out, const pa_stream_config *cfg, int *rate, int *buffer);
/* Attach the engine and start; the engine must outlive the stream. */
int pa_live_start(pa_live *p, live *engine);
/* Seconds of input and output latency PortAudio reports. */
void pa_live_latency(pa_live *p, double *in_s, double *out_s);
int pa_live_input_channels(pa_live *p);
void pa_live_close(pa_live *p);
/* Non-zero once the stream stopped by itself (device lost). */
int pa_live_failed(pa_live *p);

#endif
