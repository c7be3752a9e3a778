/* bench_engine.c - speed of the engine's plumbing: the chain (adapter,
 * resampling) and the STFT round trip. Each line prints the real-time factor
 * (seconds of audio per second of CPU) and the ratio against a baseline
 * measured in the same run: a plain memcpy of the same audio through the
 * same block sizes. */
#include "blas_rerun.h"
#include "oscine.h"

#include "dsp/stft.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* CPU time of this thread: the work is single-threaded (OpenBLAS is set to
 * one thread), and CPU time is not inflated when the machine is busy. */
static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

#define RATE 48000
#define SECONDS 20
#define BLOCK 256

static float *x, *y;

static double time_memcpy(void)
{
    const size_t n = (size_t)RATE * SECONDS;
    double t0 = now();
    for (size_t pos = 0; pos + BLOCK <= n; pos += BLOCK)
        memcpy(y + pos, x + pos, sizeof(float) * BLOCK);
    __asm__ volatile("" ::"r"(y) : "memory");
    return now() - t0;
}

static double time_chain_at(int rate, const char *stages, int internal_rate, int hop,
                            int low_latency)
{
    oscine_chain_config cfg = {.stages = stages, .sample_rate = rate, .channels = 1,
                               .internal_rate = internal_rate, .hop = hop,
                               .low_latency = low_latency};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cfg)) {
        fprintf(stderr, "bench: %s\n", oscine_last_error());
        return -1;
    }
    const size_t n = (size_t)rate * SECONDS;
    double t0 = now();
    for (size_t pos = 0; pos + BLOCK <= n; pos += BLOCK) {
        const float *in[1] = {x + pos};
        float *out[1] = {y + pos};
        oscine_chain_process(c, in, out, BLOCK);
    }
    double t = now() - t0;
    oscine_chain_destroy(c);
    return t;
}

static double time_chain(const char *stages, int internal_rate, int hop, int low_latency)
{
    double t = time_chain_at(RATE, stages, internal_rate, hop, low_latency);
    if (t < 0)
        exit(1);
    return t;
}

static double time_stft(int n_fft, int hop)
{
    stft_config cfg = {n_fft, n_fft, hop, STFT_WIN_SQRT_HANN};
    stft *s;
    if (stft_create(&s, &cfg))
        exit(1);
    float *spec = malloc(sizeof(float) * 2 * (size_t)stft_bins(s));
    const size_t n = (size_t)RATE * SECONDS;
    double t0 = now();
    for (size_t pos = 0; pos + (size_t)hop <= n; pos += (size_t)hop) {
        stft_analyze(s, x + pos, spec);
        stft_synthesize(s, spec, y + pos);
    }
    double t = now() - t0;
    free(spec);
    stft_destroy(s);
    return t;
}

static void row(const char *name, double t, double base)
{
    printf("%-48s %8.1f x real time   %7.2f x memcpy time\n", name, SECONDS / t, t / base);
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_blas_rerun(argv);
    const size_t n = (size_t)RATE * SECONDS;
    x = malloc(sizeof(float) * n);
    y = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)sin(i * 0.01) * 0.5f;
    double base = 1e9;
    for (int r = 0; r < 3; r++) /* best of 3, as every row */
        base = fmin(base, time_memcpy());
    printf("engine: %d s of mono %d Hz audio in blocks of %d (best of 3)\n", SECONDS, RATE, BLOCK);
    printf("%-48s %8.1f x real time   %7.2f x memcpy time\n", "baseline: memcpy", SECONDS / base, 1.0);
#define BEST(expr) ({ double _b = 1e9; for (int _r = 0; _r < 3; _r++) _b = fmin(_b, (expr)); _b; })
    row("chain passthrough (no hop)", BEST(time_chain("passthrough", 0, 0, 0)), base);
    row("chain gain (no hop)", BEST(time_chain("gain", 0, 0, 0)), base);
    row("chain gain, hop 480 (block adapter)", BEST(time_chain("gain", 0, 480, 0)), base);
    row("chain gain at 16 kHz, hop 160 (HQ resampling)", BEST(time_chain("gain", 16000, 160, 0)), base);
    row("chain gain at 16 kHz, hop 160 (low latency)", BEST(time_chain("gain", 16000, 160, 1)), base);
    row("STFT 320/160 analysis + synthesis", BEST(time_stft(320, 160)), base);
    row("STFT 1024/256 analysis + synthesis", BEST(time_stft(1024, 256)), base);

    /* The denoiser, with the model found the usual way (models/ or
     * $OSCINE_MODEL_PATH). The real-time factor is processing time over
     * audio time on one thread: the target is <= 0.05. */
    printf("\ndenoiser (one thread; real-time factor = CPU time / audio time)\n");
    double pass = BEST(time_chain_at(16000, "passthrough", 0, 160, 0));
    double dn16 = time_chain_at(16000, "denoise", 0, 0, 0);
    if (dn16 < 0) {
        printf("skipped: no denoise-16k.osw in $OSCINE_MODEL_PATH or ./models\n");
    } else {
        dn16 = fmin(dn16, time_chain_at(16000, "denoise", 0, 0, 0));
        double dn48 = fmin(time_chain_at(RATE, "denoise", 0, 0, 1),
                           time_chain_at(RATE, "denoise", 0, 0, 1));
        printf("%-48s RTF %.5f\n", "chain passthrough, 16 kHz, hop 160 (baseline)", pass / SECONDS);
        printf("%-48s RTF %.5f   %6.1f x baseline\n", "chain denoise, 16 kHz", dn16 / SECONDS,
               dn16 / pass);
        printf("%-48s RTF %.5f   %6.1f x baseline\n", "chain denoise, 48 kHz (low latency)",
               dn48 / SECONDS, dn48 / pass);
    }
    free(x);
    free(y);
    return 0;
}
