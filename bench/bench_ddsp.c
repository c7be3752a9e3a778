/* bench_ddsp.c - speed of one DDSP voice at 48 kHz: the harmonic bank (100
 * harmonics), filtered noise (65 bands) and the reverb (3 s IR), each alone
 * and together, plus the feature trackers at 16 kHz. Each line prints the
 * real-time factor (seconds of audio per second of CPU, one thread) and the
 * ratio of its time to two baselines measured in the same run: memcpy of the
 * same audio in the same blocks, and a plain sine oscillator (one double
 * phase accumulator and one sin() per sample). */
#include "blas_rerun.h"
#include "dsp/fftconv.h"
#include "dsp/filtnoise.h"
#include "dsp/harmonic.h"
#include "dsp/loudness.h"
#include "dsp/pitch.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATE 48000
#define FRAME_RATE 250
#define BLOCK (RATE / FRAME_RATE) /* 192 samples per control frame */
#define SECONDS 20
#define FRAMES (SECONDS * FRAME_RATE)
#define NH 100
#define NB 65
#define IR_LEN (3 * RATE)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *x, *y;               /* (RATE * SECONDS) */
static float dist[FRAMES][NH];     /* controls: a slowly changing timbre */
static float mags[FRAMES][NB];
static float f0s[FRAMES], amps[FRAMES];
static float ir[IR_LEN];

static double time_memcpy(void)
{
    double t0 = now();
    for (int k = 0; k < FRAMES; k++)
        memcpy(y + (size_t)k * BLOCK, x + (size_t)k * BLOCK, sizeof(float) * BLOCK);
    __asm__ volatile("" ::"r"(y) : "memory");
    return now() - t0;
}

static double time_sine(void)
{
    double ph = 0, t0 = now();
    for (int k = 0; k < FRAMES; k++) {
        const double inc = f0s[k] / RATE;
        float *o = y + (size_t)k * BLOCK;
        for (int i = 0; i < BLOCK; i++) {
            ph += inc;
            ph -= floor(ph);
            o[i] = amps[k] * (float)sin(2 * M_PI * ph);
        }
    }
    __asm__ volatile("" ::"r"(y) : "memory");
    return now() - t0;
}

typedef struct voice {
    harmonic *h;
    filtnoise *n;
    fftconv *r;
} voice;

static void voice_make(voice *v)
{
    harmonic_config hc = {.sample_rate = RATE, .frame_rate = FRAME_RATE, .n_harmonics = NH};
    filtnoise_config nc = {.sample_rate = RATE, .n_bands = NB, .band_top_hz = 8000,
                           .max_block = BLOCK, .seed = 1};
    fftconv_config rc = {.block = BLOCK, .max_ir = IR_LEN};
    if (harmonic_create(&v->h, &hc) || filtnoise_create(&v->n, &nc) ||
        fftconv_create(&v->r, &rc) || fftconv_set_ir(v->r, ir, IR_LEN)) {
        fprintf(stderr, "bench_ddsp: cannot create the voice\n");
        exit(1);
    }
    fftconv_set_mix(v->r, 1.0f, 0.3f);
}

static void voice_free(voice *v)
{
    harmonic_destroy(v->h);
    filtnoise_destroy(v->n);
    fftconv_destroy(v->r);
}

enum { PART_HARMONIC = 1, PART_NOISE = 2, PART_REVERB = 4 };

static double time_voice(int parts, float f0_scale)
{
    voice v;
    voice_make(&v);
    float noise[BLOCK];
    double t0 = now();
    for (int k = 0; k < FRAMES; k++) {
        float *o = y + (size_t)k * BLOCK;
        if (parts & PART_HARMONIC)
            harmonic_process(v.h, f0s[k] * f0_scale, amps[k], dist[k], o);
        else
            memset(o, 0, sizeof(float) * BLOCK);
        if (parts & PART_NOISE) {
            filtnoise_process(v.n, mags[k], noise, BLOCK);
            for (int i = 0; i < BLOCK; i++)
                o[i] += noise[i];
        }
        if (parts & PART_REVERB)
            fftconv_process(v.r, o, o);
    }
    double t = now() - t0;
    voice_free(&v);
    return t;
}

/* The reverb alone with other block sizes: its cost per sample is
 * proportional to IR length / block. */
static double time_reverb(int block, int rate)
{
    fftconv *r;
    const int len = 3 * rate;
    fftconv_config rc = {.block = block, .max_ir = len};
    if (fftconv_create(&r, &rc) || fftconv_set_ir(r, ir, len))
        exit(1);
    double t0 = now();
    for (size_t pos = 0; pos + (size_t)block <= (size_t)rate * SECONDS; pos += (size_t)block)
        fftconv_process(r, x + pos, y + pos);
    double t = now() - t0;
    fftconv_destroy(r);
    return t;
}

/* pitch + loudness at 16 kHz, hop 64 (250 frames/s), on the 16 kHz signal */
static double time_features(void)
{
    pitch *p;
    loudness *l;
    pitch_config pc = {.sample_rate = 16000, .hop = 64};
    loudness_config lc = {.sample_rate = 16000, .hop = 64};
    if (pitch_create(&p, &pc) || loudness_create(&l, &lc))
        exit(1);
    pitch_frame pf;
    float sink = 0;
    double t0 = now();
    for (size_t pos = 0; pos + 64 <= (size_t)16000 * SECONDS; pos += 64) {
        pitch_process(p, x + pos, &pf);
        sink += pf.f0_hz + loudness_process(l, x + pos);
    }
    double t = now() - t0;
    __asm__ volatile("" ::"r"(sink));
    pitch_destroy(p);
    loudness_destroy(l);
    return t;
}

static void row(const char *name, double t, double base, double sine)
{
    printf("%-46s %8.1f x real time  %7.2f x memcpy  %6.2f x sine\n", name, SECONDS / t,
           t / base, t / sine);
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_blas_rerun(argv);
    const size_t n = (size_t)RATE * SECONDS;
    x = malloc(sizeof(float) * n);
    y = malloc(sizeof(float) * n);
    uint64_t s = 1;
    for (size_t i = 0; i < n; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = (float)sin(i * 0.01) * 0.5f + (float)((s >> 40) * (1.0 / 16777216.0) - 0.5) * 0.1f;
    }
    for (int k = 0; k < FRAMES; k++) {
        f0s[k] = (float)(110 * pow(2, 0.5 * sin(k * 0.003)) * (1 + 0.005 * sin(k * 0.3)));
        amps[k] = 0.3f + 0.1f * (float)sin(k * 0.01);
        float sum = 0;
        for (int h = 0; h < NH; h++)
            sum += dist[k][h] = (float)(exp(-0.05 * h) * (1.1 + sin(k * 0.002 + h)));
        for (int h = 0; h < NH; h++)
            dist[k][h] /= sum;
        for (int b = 0; b < NB; b++)
            mags[k][b] = 0.01f * (float)exp(-0.05 * b) * (1.5f + (float)sin(k * 0.004 + b));
    }
    for (int i = 0; i < IR_LEN; i++) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        ir[i] = (float)((s >> 40) * (1.0 / 16777216.0) - 0.5) * expf(-6.9f * i / IR_LEN);
    }
    ir[0] = 0; /* DDSP's reverb IR is wet only */

#define BEST(expr) ({ double _b = 1e9; for (int _r = 0; _r < 3; _r++) _b = fmin(_b, (expr)); _b; })
    double base = BEST(time_memcpy()), sine = BEST(time_sine());
    printf("ddsp: one voice, %d s at %d Hz, %d control frames/s (%d-sample blocks), best of 3\n",
           SECONDS, RATE, FRAME_RATE, BLOCK);
    row("baseline: memcpy", base, base, sine);
    row("baseline: sine oscillator (sin() per sample)", sine, base, sine);
    row("harmonic bank, 100 harmonics, f0 ~110 Hz", BEST(time_voice(PART_HARMONIC, 1)), base,
        sine);
    row("harmonic bank, 100 harmonics, f0 ~440 Hz", BEST(time_voice(PART_HARMONIC, 4)), base,
        sine);
    row("filtered noise, 65 bands (384-tap FIR)", BEST(time_voice(PART_NOISE, 1)), base, sine);
    row("reverb, 3 s IR (750 partitions of 192)", BEST(time_voice(PART_REVERB, 1)), base, sine);
    double all = BEST(time_voice(PART_HARMONIC | PART_NOISE | PART_REVERB, 1));
    row("voice: harmonic + noise + reverb", all, base, sine);
    printf("voice real-time factor (CPU time / audio time): %.4f\n", all / SECONDS);
    printf("\nreverb alone, 3 s IR, by block size and rate\n");
    row("reverb 48 kHz, block 192", BEST(time_reverb(192, RATE)), base, sine);
    row("reverb 48 kHz, block 512", BEST(time_reverb(512, RATE)), base, sine);
    row("reverb 48 kHz, block 1024", BEST(time_reverb(1024, RATE)), base, sine);
    row("reverb 16 kHz (model rate), block 64", BEST(time_reverb(64, 16000)), base, sine);
    printf("\nfeatures at 16 kHz, hop 64 (250 frames/s), on %d s of audio\n", SECONDS);
    row("pitch (YIN, 1024 frame) + loudness (512)", BEST(time_features()), base, sine);
    free(x);
    free(y);
    return 0;
}
