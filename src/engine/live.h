/* live.h - the live engine: a chain run block by block on the audio thread,
 * steered only through queues.
 *
 *   control thread --live_post()--> [command queue] --> audio thread
 *   control thread <--live_poll()-- [message queue] <-- audio thread
 *
 * Commands: set a stage parameter, send a stage an event (a note on),
 * engine gain, bypass, swap in a new chain (crossfaded; the old one comes
 * back through the message queue to be freed off the audio thread), master
 * fade. Each may carry a sample time to take
 * effect at, which splits the audio block there. Messages: meters (levels,
 * CPU load, xruns, NaN events) about every 20 ms, retired chains.
 */
#ifndef OSCINE_ENGINE_LIVE_H
#define OSCINE_ENGINE_LIVE_H

#include "oscine.h"

#include <stdint.h>

typedef struct live live;

typedef enum live_cmd_kind {
    LIVE_SET,    /* addr = value (a stage parameter) */
    LIVE_GAIN,   /* engine output gain, value in dB */
    LIVE_BYPASS, /* value 0 or 1; crossfades to the dry signal, latency kept */
    LIVE_SWAP,   /* chain replaces the current one (crossfade) */
    LIVE_FADE,   /* master fade to value (0 or 1), for clean start and stop */
    LIVE_EVENT,  /* addr(args[0..nargs-1]): a stage event (note on/off), see
                  * stage_event in engine/stage.h; goes to the current chain
                  * (and to the one fading out, so a note off is not lost) */
    LIVE_CMD_COUNT
} live_cmd_kind;

#define LIVE_EVENT_ARGS 4
/* Timetagged commands the audio thread holds until their sample time; one
 * more is applied at once and counted in live_meter.late. The daemon keeps
 * its clients within this (src/osc/daemon.c). */
#define LIVE_PENDING 128

typedef struct live_cmd {
    int kind;
    int64_t when;          /* sample time to apply at; 0 or past = now */
    float value;
    oscine_chain *chain;   /* LIVE_SWAP: ownership passes to the engine */
    char addr[64];         /* LIVE_SET, LIVE_EVENT */
    int nargs;             /* LIVE_EVENT: 0..LIVE_EVENT_ARGS */
    float args[LIVE_EVENT_ARGS];
} live_cmd;

typedef struct live_meter {
    float in_peak, in_rms, out_peak, out_rms; /* linear, over the period */
    float cpu;             /* callback time / buffer duration, worst in period */
    uint64_t xruns;        /* totals since start: reported by the audio server */
    uint64_t overruns;     /* callbacks that took longer than their block lasts */
    uint64_t nan_events;
    uint64_t late;         /* commands applied late (pending list full) */
    float vad;             /* voice activity 0..1 from the chain, -1: none */
    int64_t sample_time;   /* frames processed since start */
} live_meter;

typedef enum live_msg_kind { LIVE_MSG_METER, LIVE_MSG_RETIRED, LIVE_MSG_COUNT } live_msg_kind;

typedef struct live_msg {
    int kind;
    live_meter meter;
    oscine_chain *chain;   /* LIVE_MSG_RETIRED: free it (control thread) */
} live_msg;

typedef struct live_config {
    int sample_rate;
    int channels;
    int max_block;
    oscine_chain *chain;   /* initial chain, owned by the engine from now */
} live_config;

/* Thread: control. */
int live_create(live **out, const live_config *cfg);
/* Thread: control, after the audio thread has stopped. Frees the chain(s). */
void live_destroy(live *e);

/* Process one block. in may be NULL (output only: the chain gets silence).
 * xrun: the driver reported an over/underrun before this block.
 * Thread: audio. */
void live_process(live *e, const float *const *in, float *const *out, int n, int xrun);

/* Queue a command; -1 when the queue is full (counted). Thread: control
 * (one producer). */
int live_post(live *e, const live_cmd *cmd);
/* Next message from the audio thread; 0 when none. Thread: control (one
 * consumer). */
int live_poll(live *e, live_msg *msg);

/* Frames processed so far, and the wall-clock time (CLOCK_MONOTONIC, s) at
 * which the current block started: maps OSC timetags to sample times.
 * Thread: any. */
void live_clock(live *e, int64_t *sample_time, double *at);

/* Latest values, for /status. Thread: any. */
int live_latency(live *e);
float live_master(live *e); /* current master fade level 0..1 */
unsigned long live_dropped(live *e); /* commands refused: queue full */

#endif
