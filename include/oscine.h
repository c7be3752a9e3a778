/*
 * oscine.h - the whole public API of liboscine, a real-time audio engine.
 *
 * Conventions (the same everywhere):
 *  - Functions return 0 or a negative OSCINE_E_* code and never exit.
 *    oscine_strerror() names a code; oscine_last_error() gives the detail of
 *    the last failure on the calling thread ("file 'x.wav': not a sound file").
 *  - Objects are opaque: oscine_<object>_create / _process / _reset / _destroy.
 *    All memory is taken in create; process only computes.
 *  - Each function says which thread may call it:
 *      audio   - the real-time thread: never allocates, locks, logs or does I/O;
 *      control - any non-real-time thread, one at a time per object;
 *      any     - any thread.
 *  - Audio is float32, planar (one pointer per channel), nominal range [-1, 1].
 */
#ifndef OSCINE_H
#define OSCINE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define OSCINE_API __attribute__((visibility("default")))
#else
#define OSCINE_API
#endif

#define OSCINE_VERSION_MAJOR 0
#define OSCINE_VERSION_MINOR 1
#define OSCINE_VERSION_PATCH 0
#define OSCINE_VERSION_STRING "0.1.0"

/* Error codes. Every code has a fixed message from oscine_strerror(). */
typedef enum oscine_error {
    OSCINE_OK = 0,
    OSCINE_E_NOMEM = -1,        /* out of memory */
    OSCINE_E_ARG = -2,          /* invalid argument */
    OSCINE_E_IO = -3,           /* file or device I/O failed */
    OSCINE_E_FORMAT = -4,       /* unreadable or corrupt audio file */
    OSCINE_E_UNSUPPORTED = -5,  /* valid but unsupported (channels, rate, format) */
    OSCINE_E_EMPTY = -6,        /* no audio (zero frames) */
    OSCINE_E_STAGE = -7,        /* unknown stage name or bad chain */
    OSCINE_E_PARAM = -8,        /* unknown parameter address */
    OSCINE_E_RANGE = -9,        /* value out of range or not finite */
    OSCINE_E_INTERRUPTED = -10, /* stopped by a signal or the caller */
    OSCINE_E_RESAMPLE = -11,    /* resampler failure */
    /* weights files (.osw) */
    OSCINE_E_W_TRUNCATED = -20, /* file shorter than its header says */
    OSCINE_E_W_MAGIC = -21,     /* not an oscine weights file */
    OSCINE_E_W_VERSION = -22,   /* format version not supported */
    OSCINE_E_W_CRC = -23,       /* checksum mismatch */
    OSCINE_E_W_OFFSET = -24,    /* tensor data outside the file or misaligned */
    OSCINE_E_W_SHAPE = -25,     /* absurd or mismatched tensor shape */
    OSCINE_E_W_MISSING = -26,   /* tensor or metadata key not present */
    OSCINE_E_W_DTYPE = -27,     /* unknown or unexpected tensor dtype */
    OSCINE_E_W_HEADER = -28,    /* malformed header field */
    OSCINE_E_W_MODEL = -29,     /* weights are for another model or configuration */
    OSCINE_E_W_VALUE = -30,     /* a tensor holds NaN or infinity */
    OSCINE_E_COUNT = 31         /* one past the largest magnitude */
} oscine_error;

/* Fixed text for an error code. Thread: any. */
OSCINE_API const char *oscine_strerror(int err);

/* Detail of the last error set on this thread (never NULL, "" if none).
 * Thread: any (the text is thread-local). */
OSCINE_API const char *oscine_last_error(void);

/* Library version string, e.g. "0.1.0". Thread: any. */
OSCINE_API const char *oscine_version(void);

/* One more folder to look in for bundled files, after the others: DIR/models
 * for weights (after $OSCINE_MODEL_PATH, ./models and the installed
 * share/oscine/models) and DIR/presets for presets (after the user's and the
 * installed ones and ./presets). The oscine program passes the folder above
 * its executable when that has models/, so a build that is not installed
 * finds the files it was built with from any folder. NULL or "" clears it; a
 * path with ':' is not used. Thread: control, before chains are created. */
OSCINE_API void oscine_set_data_dir(const char *dir);

/* ------------------------------------------------------------------ chain */

/*
 * A chain runs stages in order ("passthrough", "gain", ...) on planar audio
 * at the host's rate and block size. It resamples to a stage's own rate when
 * a stage needs one, buffers host blocks of any size (1..max_block frames,
 * varying between calls) into the stages' fixed hops, and reports a constant
 * latency in samples at the host rate. Each channel has its own stage state.
 */
typedef struct oscine_chain oscine_chain;

/* Weights for a stage that loads a model (e.g. {"denoise", "my.osw"}). */
typedef struct oscine_model_path {
    const char *stage;
    const char *path;
} oscine_model_path;

typedef struct oscine_chain_config {
    const char *stages;   /* comma-separated stage names, e.g. "passthrough,gain" */
    int sample_rate;      /* host rate, 8000..192000 Hz */
    int channels;         /* 1..OSCINE_MAX_CHANNELS */
    int max_block;        /* largest frames per process call, 1..8192 (0 = 8192) */
    int internal_rate;    /* 0: the rate the stages need (else the host rate);
                             >0: force stages to run at this rate */
    int hop;              /* 0: the hop the stages need; >0: force this hop
                             (frames at the internal rate) */
    int low_latency;      /* 1: live use: shorter resampler filters, and the
                             vocoder's streaming synthesis in `resynth`;
                             0: files: libsoxr HQ, the vocoder's longer
                             RTISI-LA (src/models/vocoder.h) */
    const oscine_model_path *models; /* weights per stage; others are looked up
                                        in $OSCINE_MODEL_PATH, ./models and the
                                        installed share/oscine/models */
    int nmodels;
} oscine_chain_config;

#define OSCINE_MAX_CHANNELS 8
#define OSCINE_MAX_BLOCK 8192

/* Build a chain; on failure *out is NULL and the code says why
 * (OSCINE_E_STAGE for an unknown name). Thread: control. */
OSCINE_API int oscine_chain_create(oscine_chain **out, const oscine_chain_config *cfg);

/* Process nframes (1..max_block) of planar audio. in and out may be the same
 * buffers. Returns 0, or OSCINE_E_ARG for a bad frame count. Thread: audio. */
OSCINE_API int oscine_chain_process(oscine_chain *c, const float *const *in,
                                    float *const *out, int nframes);

/* Latency in samples at the host rate: output sample n is the chain's
 * response to input sample n - latency. Constant for the chain's life.
 * Thread: any. */
OSCINE_API int oscine_chain_latency(const oscine_chain *c);

/* Set a parameter by its OSC address, e.g. "/gain/db". Checks the address,
 * the range and finiteness; the audio thread picks the value up at its next
 * hop and smooths it. Thread: control (one writer) - lock-free. */
OSCINE_API int oscine_chain_set(oscine_chain *c, const char *address, float value);

/* Read back a parameter's current target value. Thread: any. */
OSCINE_API int oscine_chain_get(const oscine_chain *c, const char *address, float *value);

/* Latest value of a stage's meter, e.g. "/denoise/vad" (averaged over
 * channels). Thread: any. */
OSCINE_API int oscine_chain_meter(const oscine_chain *c, const char *address, float *value);

/* Count of non-finite samples caught: NaN/Inf in the input (each set to 0)
 * and those a stage produced (the stage was reset and its block silenced
 * instead of passing them on). Thread: any. */
OSCINE_API uint64_t oscine_chain_nan_events(const oscine_chain *c);

/* Times the internal output FIFO ran dry or overflowed. The chain sizes
 * it so this never happens; non-zero means a bug (the tests assert 0).
 * Thread: any. */
OSCINE_API uint64_t oscine_chain_glitches(const oscine_chain *c);

/* Clear all stage state and delay lines, as if newly created.
 * Thread: control, never concurrently with process. */
OSCINE_API void oscine_chain_reset(oscine_chain *c);

/* Thread: control. NULL is allowed. */
OSCINE_API void oscine_chain_destroy(oscine_chain *c);

/* Describe the stages and parameters that exist (for help texts).
 * Calls fn once per parameter: stage name, address, unit, min, max, default,
 * help. Returns the number of parameters. Thread: any. */
typedef void (*oscine_param_fn)(void *user, const char *stage, const char *address,
                                const char *unit, float min, float max, float def,
                                const char *help);
OSCINE_API int oscine_params_list(oscine_param_fn fn, void *user);

/* Calls fn once per stage: name, one-line help. Returns the count. Thread: any. */
typedef void (*oscine_stage_fn)(void *user, const char *name, const char *help);
OSCINE_API int oscine_stages_list(oscine_stage_fn fn, void *user);

/* ------------------------------------------------------------- file jobs */

typedef enum oscine_file_format {
    OSCINE_FORMAT_SAME = 0,  /* the input's container if writable, else by extension */
    OSCINE_FORMAT_WAV,
    OSCINE_FORMAT_FLAC,
    OSCINE_FORMAT_COUNT
} oscine_file_format;

typedef enum oscine_sample_type {
    OSCINE_SAMPLES_SAME = 0, /* keep the input's sample type where the container allows */
    OSCINE_SAMPLES_PCM16,
    OSCINE_SAMPLES_PCM24,
    OSCINE_SAMPLES_PCM32,
    OSCINE_SAMPLES_FLOAT,
    OSCINE_SAMPLES_COUNT
} oscine_sample_type;

/* What a file job met on the way (oscine_file_job.report; filled on success). */
typedef struct oscine_file_report {
    int64_t frames_in;   /* input frames read */
    int64_t frames_out;  /* output frames written */
    int64_t clipped;     /* output samples that hit full scale (integer formats only) */
    uint64_t nonfinite;  /* samples of NaN or infinity (in the input, or made by a
                            stage) replaced by silence: oscine_chain_nan_events */
    int latency;         /* chain latency compensated, in input frames */
    int64_t frames_missing; /* frames the input's header promises but the file lacks
                               (a WAV or AIFF cut off): only what is there was read */
} oscine_file_report;

typedef struct oscine_file_job {
    const oscine_model_path *models; /* as in oscine_chain_config */
    int nmodels;
    const char *in_path;
    const char *out_path;
    const char *stages;           /* chain, e.g. "passthrough" */
    const char *const *set_addr;  /* parameters to set before processing */
    const float *set_value;
    int nset;
    oscine_file_format format;
    oscine_sample_type samples;
    int out_rate;                 /* 0 = keep the input's rate */
    int dither;                   /* 1 = TPDF dither when reducing bit depth */
    int internal_rate, hop;       /* as in oscine_chain_config (0 = automatic) */
    int low_latency;              /* 1: the live resampler (as the daemon and the
                                     plugins use), for identical output */
    /* Progress callback (may be NULL): frames done of total. Return nonzero
     * to cancel (the output is then not created). */
    int (*progress)(void *user, int64_t done, int64_t total);
    void *progress_user;
    oscine_file_report *report;   /* may be NULL; filled when the job succeeds */
} oscine_file_job;

/* Process a whole file through a chain. Latency is compensated: the output
 * has the input's length (scaled by out_rate / in_rate) and is aligned with
 * it sample for sample. Writes to a temporary file beside out_path and
 * renames it at the end; on any failure no output file is left.
 * Thread: control. */
OSCINE_API int oscine_file_process(const oscine_file_job *job);

/* Basic facts about a sound file. Thread: any. */
typedef struct oscine_file_info {
    int sample_rate;
    int channels;
    int64_t frames;
    char container[32];  /* "WAV", "FLAC", ... */
    char samples[32];    /* "PCM_16", "PCM_24", "FLOAT", ... */
    int64_t frames_missing; /* frames the header promises beyond `frames` (a
                               file cut short), else 0 */
} oscine_file_info;

OSCINE_API int oscine_file_info_get(const char *path, oscine_file_info *info);

#ifdef __cplusplus
}
#endif
#endif /* OSCINE_H */
