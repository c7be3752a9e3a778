/* bench_synth.c - speed of the DDSP synth stage at 48 kHz in 128-frame
 * buffers: the decoder alone (100 frames/s), the stage with no note (the
 * shared reverb only), one voice and eight, against memcpy and a sine
 * oscillator measured in the same run. Prints real-time factors (CPU time /
 * audio time, one thread) and the per-voice cost.
 *
 * Needs a model of the shipped size: $OSCINE_DDSP_MODEL, else
 * models/ddsp-violin.osw, else build/ddsp-random.osw (random weights of the
 * same size: tools/ddsp/make_decoder_fixture.py --full build/ddsp-random.osw);
 * without one it says so and exits 0. */
#include "blas_rerun.h"
#include "engine/chainrt.h"
#include "models/ddsp.h"
#include "oscine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RATE 48000
#define BLOCK 128
#define SECONDS 20
#define N (RATE * SECONDS)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *x, *y;

static double time_memcpy(void)
{
    double t0 = now();
    for (int k = 0; k < N; k += BLOCK)
        memcpy(y + k, x + k, sizeof(float) * BLOCK);
    __asm__ volatile("" ::"r"(y) : "memory");
    return now() - t0;
}

static double time_sine(void)
{
    double ph = 0, t0 = now();
    for (int i = 0; i < N; i++) {
        ph += 440.0 / RATE;
        ph -= floor(ph);
        y[i] = (float)sin(2 * M_PI * ph);
    }
    __asm__ volatile("" ::"r"(y) : "memory");
    return now() - t0;
}

static double time_decoder(const char *path, int *frame_rate)
{
    ddsp_model *m;
    ddsp_decoder *d;
    if (ddsp_model_load(&m, path) || ddsp_decoder_create(&d, m))
        return -1;
    const ddsp_info *in = ddsp_model_info(m);
    *frame_rate = in->frame_rate;
    float out[DDSP_MAX_OUT];
    double t0 = now();
    for (int k = 0; k < SECONDS * in->frame_rate; k++)
        ddsp_decoder_frame(d, 220.0f + k % 200, -30.0f + (float)(k % 50), out);
    double t = now() - t0;
    ddsp_decoder_destroy(d);
    ddsp_model_destroy(m);
    return t;
}

static double time_stage(const char *path, int voices)
{
    oscine_model_path mp = {"synth", path};
    oscine_chain_config cc = {.stages = "synth", .sample_rate = RATE, .channels = 1,
                              .max_block = BLOCK, .models = &mp, .nmodels = 1};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cc))
        return -1;
    for (int v = 0; v < voices; v++) {
        float a[2] = {(float)(48 + 5 * v), 0.8f};
        chain_event(c, "/synth/note_on", a, 2);
    }
    const float *in[1];
    float *out[1];
    double t0 = now();
    for (int k = 0; k < N; k += BLOCK) {
        in[0] = x + k;
        out[0] = y + k;
        oscine_chain_process(c, in, out, BLOCK);
    }
    double t = now() - t0;
    oscine_chain_destroy(c);
    return t;
}

static void row(const char *name, double t, double base, double sine)
{
    printf("%-44s %9.1f x real time  RTF %.4f  %8.2f x memcpy  %6.2f x sine\n", name,
           SECONDS / t, t / SECONDS, t / base, t / sine);
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_blas_rerun(argv);
    const char *path = getenv("OSCINE_DDSP_MODEL");
    const char *cands[] = {path, "models/ddsp-violin.osw", "build/ddsp-random.osw"};
    path = NULL;
    for (int i = 0; i < 3 && !path; i++) {
        FILE *f = cands[i] ? fopen(cands[i], "rb") : NULL;
        if (f) {
            fclose(f);
            path = cands[i];
        }
    }
    if (!path) {
        printf("synth: skipped: no model (set OSCINE_DDSP_MODEL, or run "
               "tools/ddsp/make_decoder_fixture.py --full build/ddsp-random.osw)\n");
        return 0;
    }
    x = calloc(N, sizeof(float));
    y = calloc(N, sizeof(float));
    double base = 1e9, sine = 1e9, dec = 1e9, st[3] = {1e9, 1e9, 1e9};
    const int nv[3] = {0, 1, 8};
    int fr = 0;
    for (int r = 0; r < 3; r++) { /* best of 3 */
        base = fmin(base, time_memcpy());
        sine = fmin(sine, time_sine());
        dec = fmin(dec, time_decoder(path, &fr));
        for (int i = 0; i < 3; i++)
            st[i] = fmin(st[i], time_stage(path, nv[i]));
    }
    if (dec < 0 || st[0] < 0) {
        printf("synth: cannot load '%s': %s\n", path, oscine_last_error());
        return 1;
    }
    printf("synth: %s, %d s at %d Hz in %d-frame buffers, best of 3\n", path, SECONDS, RATE,
           BLOCK);
    row("baseline: memcpy", base, base, sine);
    row("baseline: sine oscillator", sine, base, sine);
    char name[64];
    snprintf(name, sizeof name, "decoder alone (%d frames/s)", fr);
    row(name, dec, base, sine);
    row("synth stage, no note (reverb)", st[0], base, sine);
    row("synth stage, 1 voice", st[1], base, sine);
    row("synth stage, 8 voices", st[2], base, sine);
    printf("per voice (8 voices - none) / 8: RTF %.4f; 8 voices + reverb: RTF %.4f (%s in "
           "real time with %d-frame buffers)\n", (st[2] - st[0]) / 8 / SECONDS, st[2] / SECONDS,
           st[2] < SECONDS ? "runs" : "does NOT run", BLOCK);
    free(x);
    free(y);
    return 0;
}
