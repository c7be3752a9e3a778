/* bench_vocoder.c - speed of the vocoder against Griffin-Lim measured in the
 * same run, on 10 s of a voice-like signal at 16 kHz, one thread.
 *
 * Real-time factor (RTF) = CPU time / audio time; lower is faster.
 *   - mel front end (oscine mel)
 *   - vocoder streaming: one 5 ms mel frame at a time through the network,
 *     the phase integration, exp/cos/sin and the synthesis (RTISI-LA with
 *     look-ahead 3, 6 passes) - what the live stage does per hop
 *   - vocoder batched: 64 frames per network call and the file synthesis
 *     (oscine vocode: RTISI-LA 8 x 16, then 40 passes of the mel refinement)
 *   - the resynth stage in a chain at 16 kHz, host blocks of 256
 *   - baselines: Griffin-Lim from the same mel: magnitude by the mel bank's
 *     pseudo-inverse (clipped at 0; exp of each mel value once, the product
 *     by sgemm), then 100 iterations on the mel's STFT grid (n_fft 512,
 *     window 320, hop 80), random initial phase: plain (momentum 0) and
 *     fast (momentum 0.99, librosa's default), the ratios' baseline.
 * Every row is the best of ROUNDS runs. Each row prints its time over fast
 * Griffin-Lim's (< 1: faster).
 *
 * The network has the shipped architecture and synthesis (phase-difference
 * heads, RTISI-LA 3 x 6) with random weights built here, so the benchmark
 * needs no trained file;
 * when models/vocoder-16k.osw (or one in $OSCINE_MODEL_PATH) exists it is
 * timed as well. Speed does not depend on the weights' values. */
#include "blas_rerun.h"
#include "oscine.h"

#include "dsp/mel.h"
#include "dsp/stft.h"
#include "models/vocoder.h"
#include "nn/weights.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define SECONDS 10
#define N (VOC_RATE * SECONDS)
#define GL_ITERS 100
#define ROUNDS 5 /* best of, for every row: the build machine is shared, timings vary by 1.5x */
#define GL_NFFT VOC_MEL_NFFT
#define GL_BINS (GL_NFFT / 2 + 1)

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) /* uniform [-1, 1) */
{
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) * (1.0 / (1 << 23)) - 1.0);
}

/* ------------------------------------------- a random shipped-size model */

#define DIM 160
#define HID 480
#define K_IN 9
#define K_DW 7

typedef struct tens {
    char name[64];
    int ndim;
    int64_t shape[3];
    float *v;
} tens;

static tens T[128];
static int nt;

static void add(const char *name, int ndim, int64_t a, int64_t b, int64_t c, float scale,
                float fill)
{
    tens *t = &T[nt++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    t->shape[0] = a;
    t->shape[1] = b;
    t->shape[2] = c;
    size_t n = (size_t)a * (ndim > 1 ? b : 1) * (ndim > 2 ? c : 1);
    t->v = malloc(sizeof(float) * n);
    for (size_t i = 0; i < n; i++)
        t->v[i] = fill + scale * frand();
}

static void add_predictor(const char *p, int blocks, int heads)
{
    char k[64];
    snprintf(k, sizeof k, "%s.in_conv.weight", p);
    add(k, 3, DIM, VOC_MELS, K_IN, sqrtf(3.0f / (VOC_MELS * K_IN)), 0);
    snprintf(k, sizeof k, "%s.in_conv.bias", p);
    add(k, 1, DIM, 0, 0, 0.01f, 0);
    snprintf(k, sizeof k, "%s.in_norm.weight", p);
    add(k, 1, DIM, 0, 0, 0, 1);
    snprintf(k, sizeof k, "%s.in_norm.bias", p);
    add(k, 1, DIM, 0, 0, 0, 0);
    for (int i = 0; i < blocks; i++) {
        snprintf(k, sizeof k, "%s.blocks.%d.dw.weight", p, i);
        add(k, 3, DIM, 1, K_DW, sqrtf(3.0f / K_DW), 0);
        snprintf(k, sizeof k, "%s.blocks.%d.dw.bias", p, i);
        add(k, 1, DIM, 0, 0, 0.01f, 0);
        snprintf(k, sizeof k, "%s.blocks.%d.norm.weight", p, i);
        add(k, 1, DIM, 0, 0, 0, 1);
        snprintf(k, sizeof k, "%s.blocks.%d.norm.bias", p, i);
        add(k, 1, DIM, 0, 0, 0, 0);
        snprintf(k, sizeof k, "%s.blocks.%d.pw1.weight", p, i);
        add(k, 2, HID, DIM, 0, sqrtf(3.0f / DIM), 0);
        snprintf(k, sizeof k, "%s.blocks.%d.pw1.bias", p, i);
        add(k, 1, HID, 0, 0, 0.01f, 0);
        snprintf(k, sizeof k, "%s.blocks.%d.pw2.weight", p, i);
        add(k, 2, DIM, HID, 0, sqrtf(3.0f / HID) / blocks, 0);
        snprintf(k, sizeof k, "%s.blocks.%d.pw2.bias", p, i);
        add(k, 1, DIM, 0, 0, 0.01f, 0);
    }
    snprintf(k, sizeof k, "%s.out_norm.weight", p);
    add(k, 1, DIM, 0, 0, 0, 1);
    snprintf(k, sizeof k, "%s.out_norm.bias", p);
    add(k, 1, DIM, 0, 0, 0, 0);
    for (int j = 0; j < heads; j++) {
        snprintf(k, sizeof k, "%s.heads.%d.weight", p, j);
        add(k, 2, VOC_BINS, DIM, 0, sqrtf(3.0f / DIM), 0);
        snprintf(k, sizeof k, "%s.heads.%d.bias", p, j);
        add(k, 1, VOC_BINS, 0, 0, 0.01f, heads == 1 ? -5.0f : 0);
    }
}

static void put32(unsigned char **p, uint32_t v) { memcpy(*p, &v, 4), *p += 4; }
static void put64(unsigned char **p, uint64_t v) { memcpy(*p, &v, 8), *p += 8; }
static size_t align64(size_t n) { return (n + 63) / 64 * 64; }

/* The .osw bytes (format of nn/weights.h) of the tensors above. */
static unsigned char *build_osw(size_t *len)
{
    static const char *meta[][2] = {
        {"kind", "vocoder"}, {"arch", "apnet_convnext_v1"}, {"sample_rate", "16000"},
        {"n_fft", "320"}, {"win", "320"}, {"hop", "80"}, {"window", "hann"}, {"n_mels", "80"},
        {"mel_n_fft", "512"}, {"fmin", "0"}, {"fmax", "8000"}, {"mel_scale", "slaney"},
        {"mel_norm", "slaney"}, {"magnitude", "amplitude"}, {"log", "ln"},
        {"log_floor", "1e-05"}, {"dim", "160"}, {"hidden", "480"}, {"amp_blocks", "3"},
        {"pha_blocks", "4"}, {"kernel_in", "9"}, {"kernel_dw", "7"}, {"lookahead", "4"},
        {"ln_eps", "1e-06"}, {"in_offset", "11.512925464970229"}, {"in_scale", "0.2"},
        {"logamp_max", "8.0"}, {"phase", "diff"}, {"phase_tol_db", "50.0"},
        {"rtisi_lookahead", "3"}, {"rtisi_iters", "6"}, {"mel_fix_db", "12.0"}, /* as models/vocoder-16k.osw */
    };
    const int nm = sizeof meta / sizeof meta[0];
    size_t head = 64, data = 0;
    for (int i = 0; i < nm; i++)
        head += 8 + strlen(meta[i][0]) + strlen(meta[i][1]);
    size_t off[128];
    for (int i = 0; i < nt; i++) {
        head += 4 + strlen(T[i].name) + 8 + 8 * (size_t)T[i].ndim + 8;
        size_t n = (size_t)T[i].shape[0] * (T[i].ndim > 1 ? T[i].shape[1] : 1) *
                   (T[i].ndim > 2 ? T[i].shape[2] : 1);
        off[i] = data;
        data = align64(data + 4 * n);
    }
    size_t doff = align64(head);
    *len = doff + data + 4;
    unsigned char *b = calloc(1, *len), *p = b;
    memcpy(p, "OSCINEW", 8);
    p += 8;
    put32(&p, OSW_VERSION);
    put32(&p, 0);
    put64(&p, head);
    put64(&p, doff);
    put64(&p, data);
    put32(&p, (uint32_t)nm);
    put32(&p, (uint32_t)nt);
    p = b + 64;
    for (int i = 0; i < nm; i++)
        for (int j = 0; j < 2; j++) {
            put32(&p, (uint32_t)strlen(meta[i][j]));
            memcpy(p, meta[i][j], strlen(meta[i][j]));
            p += strlen(meta[i][j]);
        }
    for (int i = 0; i < nt; i++) {
        put32(&p, (uint32_t)strlen(T[i].name));
        memcpy(p, T[i].name, strlen(T[i].name));
        p += strlen(T[i].name);
        put32(&p, OSW_F32);
        put32(&p, (uint32_t)T[i].ndim);
        for (int d = 0; d < T[i].ndim; d++)
            put64(&p, (uint64_t)T[i].shape[d]);
        put64(&p, off[i]);
        size_t n = (size_t)T[i].shape[0] * (T[i].ndim > 1 ? T[i].shape[1] : 1) *
                   (T[i].ndim > 2 ? T[i].shape[2] : 1);
        memcpy(b + doff + off[i], T[i].v, 4 * n);
    }
    uint32_t crc = osw_crc32(0, b, *len - 4);
    memcpy(b + *len - 4, &crc, 4);
    return b;
}

/* ------------------------------------------------------------ timings */

static float *x, *mel;
static size_t frames;

static double time_front_end(void)
{
    vocoder_mel *fe;
    if (vocoder_mel_create(&fe))
        exit(1);
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        vocoder_mel_buffer(fe, x, N, mel);
        best = fmin(best, now() - t0);
    }
    vocoder_mel_destroy(fe);
    return best;
}

/* Network + synthesis (iSTFT, with the model's RTISI-LA, or with the file
 * synthesis' longer one) over all frames, chunk frames per call, and the
 * synthesis' flush. */
static double time_vocoder(const osw_file *w, int chunk, int file, float *y)
{
    vocoder_net *v;
    if (vocoder_net_create(&v, w, chunk)) {
        fprintf(stderr, "bench: %s\n", oscine_last_error());
        exit(1);
    }
    vocoder_syn *syn;
    if (file ? vocoder_syn_create_file(&syn, v) : vocoder_syn_create(&syn, v))
        exit(1);
    float *fr = malloc(sizeof(float) * (size_t)(chunk + VOC_MAX_LOOKAHEAD) * VOC_FRAME);
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        vocoder_net_reset(v);
        vocoder_syn_reset(syn);
        size_t out = 0;
        double t0 = now();
        for (size_t f = 0;; f += (size_t)chunk) {
            int last = f >= frames;
            int k = last ? vocoder_net_drain(v, fr)
                         : vocoder_net_process(v, mel + f * VOC_MELS,
                                               (int)(frames - f < (size_t)chunk ? frames - f : (size_t)chunk), fr);
            for (int j = 0; j < k; j++, out++)
                vocoder_syn_frame(syn, fr + (size_t)j * VOC_FRAME, y + out * VOC_HOP);
            if (last)
                break;
        }
        for (int j = 0; j < vocoder_syn_lookahead(syn); j++, out++)
            vocoder_syn_frame(syn, NULL, y + out * VOC_HOP);
        best = fmin(best, now() - t0);
    }
    free(fr);
    vocoder_syn_destroy(syn);
    vocoder_net_destroy(v);
    return best;
}

static double time_stage(const char *model, float *y)
{
    oscine_model_path mp = {"resynth", model};
    oscine_chain_config cfg = {.stages = "resynth", .sample_rate = VOC_RATE, .channels = 1,
                               .models = &mp, .nmodels = 1, .low_latency = 1};
    oscine_chain *c;
    if (oscine_chain_create(&c, &cfg)) {
        fprintf(stderr, "bench: %s\n", oscine_last_error());
        exit(1);
    }
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        oscine_chain_reset(c);
        double t0 = now();
        for (size_t pos = 0; pos + 256 <= N; pos += 256) {
            const float *in[1] = {x + pos};
            float *out[1] = {y + pos};
            oscine_chain_process(c, in, out, 256);
        }
        best = fmin(best, now() - t0);
    }
    oscine_chain_destroy(c);
    return best;
}

/* Pseudo-inverse of the mel bank: P = M^T (M M^T)^-1, (GL_BINS, 80), computed
 * in double, returned as float for the product. */
static float *mel_pinv(void)
{
    mel_bank *mb;
    if (mel_create(&mb, VOC_RATE, GL_NFFT, VOC_MELS, VOC_FMIN, VOC_FMAX))
        exit(1);
    const int B = VOC_MELS;
    double *G = calloc((size_t)B * B, sizeof(double)), *P = calloc((size_t)GL_BINS * B, sizeof(double));
    for (int a = 0; a < B; a++)
        for (int b = 0; b < B; b++) {
            double s = 0;
            for (int k = 0; k < GL_BINS; k++)
                s += (double)mel_weight(mb, a, k) * mel_weight(mb, b, k);
            G[a * B + b] = s;
        }
    /* Cholesky G = L L^T in place (lower), then P^T = G^-1 M column by column. */
    for (int j = 0; j < B; j++) {
        double d = G[j * B + j];
        for (int k = 0; k < j; k++)
            d -= G[j * B + k] * G[j * B + k];
        G[j * B + j] = sqrt(d);
        for (int i = j + 1; i < B; i++) {
            double s = G[i * B + j];
            for (int k = 0; k < j; k++)
                s -= G[i * B + k] * G[j * B + k];
            G[i * B + j] = s / G[j * B + j];
        }
    }
    double z[VOC_MELS];
    for (int k = 0; k < GL_BINS; k++) {
        for (int i = 0; i < B; i++) { /* L z = m_k */
            double s = mel_weight(mb, i, k);
            for (int j = 0; j < i; j++)
                s -= G[i * B + j] * z[j];
            z[i] = s / G[i * B + i];
        }
        for (int i = B - 1; i >= 0; i--) { /* L^T p = z */
            double s = z[i];
            for (int j = i + 1; j < B; j++)
                s -= G[j * B + i] * z[j];
            z[i] = s / G[i * B + i];
        }
        for (int i = 0; i < B; i++)
            P[(size_t)k * B + i] = z[i];
    }
    free(G);
    mel_destroy(mb);
    float *Pf = malloc(sizeof(float) * (size_t)GL_BINS * B);
    for (size_t i = 0; i < (size_t)GL_BINS * B; i++)
        Pf[i] = (float)P[i];
    free(P);
    return Pf;
}

/* Griffin-Lim from the mel, as fast as the algorithm allows: the magnitude
 * once, as one matrix product (exp of each mel value once, then
 * max(0, exp(mel) P^T) by sgemm), then per iteration one iSTFT, one STFT
 * (FFTW, the project's stft) and one pass of projection over the bins.
 * momentum 0 is the plain algorithm, 0.99 the fast one (librosa's default:
 * the new estimate minus momentum / (1 + momentum) of the previous one). */
static double time_griffin_lim(const float *P, float *y, float momentum)
{
    stft *s;
    stft_config sc = {GL_NFFT, VOC_WIN, VOC_HOP, STFT_WIN_HANN};
    if (stft_create(&s, &sc))
        exit(1);
    size_t F = stft_frames_for(s, N); /* = frames */
    size_t nb = F * GL_BINS;
    float *e = malloc(sizeof(float) * F * VOC_MELS), *mag = malloc(sizeof(float) * nb);
    float *spec = malloc(sizeof(float) * 2 * nb), *reb = malloc(sizeof(float) * 2 * nb);
    float *prev = malloc(sizeof(float) * 2 * nb);
    const float a = momentum / (1 + momentum);
    double best = 1e9;
    for (int r = 0; r < ROUNDS; r++) {
        double t0 = now();
        for (size_t i = 0; i < F * VOC_MELS; i++) /* magnitude from the mel */
            e[i] = expf(mel[i]);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)F, GL_BINS, VOC_MELS, 1.0f, e,
                    VOC_MELS, P, VOC_MELS, 0.0f, mag, GL_BINS); /* (F, 257) */
        for (size_t i = 0; i < nb; i++)
            mag[i] = mag[i] > 0 ? mag[i] : 0.0f;
        rng = 12345;
        for (size_t i = 0; i < nb; i++) {
            float ph = 3.14159265f * frand();
            spec[2 * i] = mag[i] * cosf(ph);
            spec[2 * i + 1] = mag[i] * sinf(ph);
        }
        memset(prev, 0, sizeof(float) * 2 * nb);
        for (int it = 0; it < GL_ITERS; it++) {
            stft_synthesize_buffer(s, spec, N, y);
            stft_analyze_buffer(s, y, N, reb);
            if (a > 0) {
                for (size_t i = 0; i < nb; i++) {
                    float re = reb[2 * i] - a * prev[2 * i], im = reb[2 * i + 1] - a * prev[2 * i + 1];
                    float g = mag[i] / (sqrtf(re * re + im * im) + 1e-16f);
                    spec[2 * i] = re * g;
                    spec[2 * i + 1] = im * g;
                }
                float *t = prev; /* this iteration's estimate is the next one's previous */
                prev = reb;
                reb = t;
            } else {
                for (size_t i = 0; i < nb; i++) {
                    float re = reb[2 * i], im = reb[2 * i + 1];
                    float g = mag[i] / (sqrtf(re * re + im * im) + 1e-16f);
                    spec[2 * i] = re * g;
                    spec[2 * i + 1] = im * g;
                }
            }
        }
        stft_synthesize_buffer(s, spec, N, y);
        best = fmin(best, now() - t0);
    }
    stft_destroy(s);
    free(e);
    free(mag);
    free(spec);
    free(reb);
    free(prev);
    return best;
}

static const char *find_trained(char *buf, size_t cap)
{
    const char *env = getenv("OSCINE_MODEL_PATH");
    const char *dirs[2] = {env, "models"};
    for (int i = 0; i < 2; i++) {
        if (!dirs[i] || !dirs[i][0])
            continue;
        snprintf(buf, cap, "%s/vocoder-16k.osw", dirs[i]);
        if (access(buf, R_OK) == 0)
            return buf;
    }
    return NULL;
}

int main(int argc, char **argv)
{
    (void)argc;
    bench_blas_rerun(argv);
    x = malloc(sizeof(float) * N);
    /* room for the look-aheads' hops: RTISI-LA and the file synthesis' mel refinement */
    float *y = malloc(sizeof(float) * (N + (size_t)(4 + 16 + 6 * VOC_MAX_REFINE) * VOC_HOP));
    for (size_t i = 0; i < N; i++) { /* a voice-like tone: 120-220 Hz glide, harmonics, breath */
        double t = (double)i / VOC_RATE, f0 = 170 + 50 * sin(2 * M_PI * 0.3 * t);
        static double ph;
        ph += 2 * M_PI * f0 / VOC_RATE;
        double v = 0;
        for (int k = 1; k <= 30 && k * f0 < 7800; k++)
            v += sin(k * ph) / k;
        x[i] = (float)(0.2 * v * (0.6 + 0.4 * sin(2 * M_PI * 3 * t)) + 0.01 * frand());
    }
    frames = vocoder_mel_frames_for(N);
    mel = malloc(sizeof(float) * frames * VOC_MELS);

    add_predictor("amp", 3, 1);
    add_predictor("pha", 4, 4);
    size_t len;
    unsigned char *bytes = build_osw(&len);
    char tmp[] = "/tmp/bench-vocoder-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0 || write(fd, bytes, len) != (ssize_t)len)
        return 1;
    close(fd);
    osw_file *w;
    if (osw_open_memory(&w, bytes, len, "random shipped-size vocoder")) {
        fprintf(stderr, "bench: %s\n", oscine_last_error());
        return 1;
    }
    vocoder_net *probe;
    vocoder_net_create(&probe, w, 1);
    long params = vocoder_net_params(probe), macs = vocoder_net_macs(probe);
    vocoder_net_destroy(probe);

    printf("vocoder: %d s of speech-like audio at 16 kHz, one thread, best of %d "
           "(RTF = CPU time / audio time)\n", SECONDS, ROUNDS);
    printf("network: %ld parameters, %.2f M MAC/frame = %.0f M MAC/s (200 frames/s), "
           "lookahead 4 frames (20 ms) + synthesis 3 frames (15 ms)\n", params, macs / 1e6, macs * 200 / 1e6);
    float *P = mel_pinv();
    double tfe = time_front_end();
    double tgl = time_griffin_lim(P, y, 0.0f);
    double tfgl = time_griffin_lim(P, y, 0.99f);
    double ts = time_vocoder(w, 1, 0, y);
    double tb = time_vocoder(w, 64, 1, y);
    double tst = time_stage(tmp, y);
    free(P);
    const char *fmt = "%-52s RTF %.5f   %6.3f x fast Griffin-Lim's time\n";
    printf(fmt, "mel front end (oscine mel)", tfe / SECONDS, tfe / tfgl);
    printf(fmt, "vocoder streaming, frame by frame (live)", ts / SECONDS, ts / tfgl);
    printf(fmt, "oscine vocode: 64 frames/call, RTISI 8x16 + mel x40", tb / SECONDS, tb / tfgl);
    printf(fmt, "resynth stage, live chain (front end + net + synth.)", tst / SECONDS, tst / tfgl);
    printf(fmt, "Griffin-Lim, mel pseudo-inverse + 100 iterations", tgl / SECONDS, tgl / tfgl);
    printf("%-52s RTF %.5f   (baseline)\n", "fast Griffin-Lim (momentum 0.99), 100 iterations",
           tfgl / SECONDS);
    char buf[4096];
    const char *trained = find_trained(buf, sizeof buf);
    osw_file *tw;
    if (trained && osw_open(&tw, trained) == 0) {
        double tt = time_vocoder(tw, 1, 0, y);
        printf(fmt, "trained model, streaming frame by frame", tt / SECONDS, tt / tfgl);
        osw_close(tw);
    }
    printf("< 1: faster than fast Griffin-Lim (offline, 100 iterations, from the same mel); "
           "> 1: slower.\n");
    osw_close(w);
    unlink(tmp);
    free(bytes);
    for (int i = 0; i < nt; i++)
        free(T[i].v);
    free(x);
    free(y);
    free(mel);
    return 0;
}
