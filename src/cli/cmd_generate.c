/* cmd_generate.c - `oscine generate OUT`: deterministic test signals for the
 * demo and the tests (no audio data needs to ship with the project). */
#include "cli.h"

#include "io/audiofile.h"
#include "oscine.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum { SIG_SINE, SIG_SWEEP, SIG_NOISE, SIG_VOICE_NOISE, SIG_IMPULSE } signal_kind;

static double rnd(uint64_t *s) /* uniform [-1, 1) */
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * (2.0 / 9007199254740992.0) - 1.0;
}

/* A voice-like source: glottal-ish harmonics of a gliding f0 with falling
 * spectral tilt and two formant bumps, gated into syllables, plus noise
 * 15 dB below. Sounds like a hummed voice in a fan's hiss. */
static void voice_noise(float *x, int64_t n, int rate, uint64_t *seed)
{
    double phase = 0;
    for (int64_t i = 0; i < n; i++) {
        double t = (double)i / rate;
        double f0 = 150 + 40 * sin(2 * M_PI * 0.7 * t) + 6 * sin(2 * M_PI * 5.5 * t);
        phase += 2 * M_PI * f0 / rate;
        if (phase > 2 * M_PI * 1e6)
            phase = fmod(phase, 2 * M_PI);
        double v = 0;
        for (int h = 1; h * f0 < rate * 0.45 && h <= 40; h++) {
            double fh = h * f0;
            double formant = 1.0 + 3.0 * exp(-pow((fh - 700) / 250, 2)) +
                             2.0 * exp(-pow((fh - 1800) / 350, 2));
            v += sin(h * phase) * formant / h;
        }
        double syll = 0.5 - 0.5 * cos(2 * M_PI * 3.0 * t);
        syll = syll * syll;
        x[i] = (float)(0.25 * v * syll + 0.05 * rnd(seed));
    }
}

int cmd_generate(int argc, char **argv)
{
    const char *out = NULL;
    signal_kind kind = SIG_VOICE_NOISE;
    float seconds = 5, freq = 440, level = -20;
    long rate = 16000, channels = 1, seed = 1;
    oscine_sample_type samples = OSCINE_SAMPLES_PCM16;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        const char *want = "";
        if (!strcmp(a, "--signal") && v) {
            if (!strcmp(v, "sine")) kind = SIG_SINE;
            else if (!strcmp(v, "sweep")) kind = SIG_SWEEP;
            else if (!strcmp(v, "noise")) kind = SIG_NOISE;
            else if (!strcmp(v, "voice-noise")) kind = SIG_VOICE_NOISE;
            else if (!strcmp(v, "impulse")) kind = SIG_IMPULSE;
            else return cli_fail(EXIT_USAGE, "--signal '%s': use sine, sweep, noise, "
                                 "voice-noise or impulse", v);
            i++;
        } else if (!strcmp(a, "--seconds") && v) {
            bad = cli_parse_float(v, &seconds) || seconds <= 0 || seconds > 36000;
            want = "give seconds above 0, at most 36000";
            i++;
        } else if (!strcmp(a, "--freq") && v) {
            bad = cli_parse_float(v, &freq) || freq <= 0;
            want = "give Hz above 0, below half the rate";
            i++;
        } else if (!strcmp(a, "--level") && v) {
            bad = cli_parse_float(v, &level) || level > 0;
            want = "give dBFS at most 0";
            i++;
        } else if (!strcmp(a, "--rate") && v) {
            bad = cli_parse_int(v, 8000, 192000, &rate);
            want = "give 8000..192000 Hz";
            i++;
        } else if (!strcmp(a, "--channels") && v) {
            bad = cli_parse_int(v, 1, OSCINE_MAX_CHANNELS, &channels);
            want = "give 1..8";
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            bad = cli_parse_int(v, 0, 1L << 30, &seed);
            want = "give 0..1073741824";
            i++;
        } else if (!strcmp(a, "--bits") && v) {
            if (!strcmp(v, "16")) samples = OSCINE_SAMPLES_PCM16;
            else if (!strcmp(v, "24")) samples = OSCINE_SAMPLES_PCM24;
            else if (!strcmp(v, "32")) samples = OSCINE_SAMPLES_PCM32;
            else if (!strcmp(v, "float")) samples = OSCINE_SAMPLES_FLOAT;
            else bad = 1;
            want = "use 16, 24, 32 or float";
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "generate: unknown flag or missing value '%s'", a);
        } else if (!out) {
            out = a;
        } else {
            return cli_fail(EXIT_USAGE, "generate: unexpected argument '%s'", a);
        }
        if (bad)
            return cli_fail(EXIT_USAGE, "generate: bad value for %s: '%s' (%s)", a, v, want);
    }
    if (!out)
        return cli_fail(EXIT_USAGE, "generate: need OUT (see 'oscine help generate')");
    if (kind == SIG_SINE && freq >= rate / 2.0)
        return cli_fail(EXIT_USAGE, "generate: --freq %g Hz is above Nyquist", (double)freq);

    int64_t n = (int64_t)llround((double)seconds * rate);
    if (n < 1)
        return cli_fail(EXIT_USAGE, "--seconds %g: less than one sample at %ld Hz", (double)seconds,
                        rate);
    if (kind == SIG_IMPULSE && n <= (int64_t)(0.1 * rate))
        return cli_fail(EXIT_USAGE, "--seconds %g: the impulse is at 0.1 s; give more than 0.1",
                        (double)seconds);
    float *mono = malloc(sizeof(float) * (size_t)n);
    float *inter = malloc(sizeof(float) * (size_t)n * (size_t)channels);
    if (!mono || !inter) {
        free(mono);
        free(inter);
        return cli_fail(EXIT_RUNTIME, "generate: out of memory");
    }
    uint64_t s = (uint64_t)seed * 0x9E3779B97F4A7C15ULL + 1;
    double amp = pow(10.0, level / 20.0);
    if (kind == SIG_VOICE_NOISE) {
        voice_noise(mono, n, (int)rate, &s);
        double peak = 1e-9;
        for (int64_t i = 0; i < n; i++)
            peak = fmax(peak, fabs(mono[i]));
        for (int64_t i = 0; i < n; i++)
            mono[i] = (float)(mono[i] / peak * amp);
    } else {
        double f1 = 20, f2 = 0.45 * rate, T = (double)n / rate, k = log(f2 / f1);
        for (int64_t i = 0; i < n; i++) {
            double t = (double)i / rate, v;
            switch (kind) {
            case SIG_SINE: v = sin(2 * M_PI * freq * t); break;
            case SIG_SWEEP: v = sin(2 * M_PI * f1 * T / k * (exp(t / T * k) - 1)); break;
            case SIG_NOISE: v = rnd(&s); break;
            default: v = i == (int64_t)(0.1 * rate) ? 1.0 : 0.0; break;
            }
            mono[i] = (float)(v * amp);
        }
    }
    /* Channels differ slightly (a tiny delay each), so channel mix-ups show. */
    for (int64_t i = 0; i < n; i++)
        for (int c = 0; c < channels; c++)
            inter[i * channels + c] = i >= c ? mono[i - c] : 0.0f;
    free(mono);

    int fmt, bits;
    out_file o;
    char out_real[4096];
    int e = out_target_check(NULL, out, out_real, sizeof out_real);
    if (!e)
        e = choose_output_format(out, OSCINE_FORMAT_SAME, samples, SF_FORMAT_FLOAT, &fmt, &bits);
    if (!e)
        e = out_open(&o, out_real, fmt, (int)rate, (int)channels, 1, n);
    if (!e) {
        e = out_write(&o, inter, (int)n);
        e = out_close(&o, e == 0) ? -1 : e;
    }
    free(inter);
    if (e)
        return cli_fail_lib(e == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, e, NULL);
    if (!cli_quiet)
        fprintf(stderr, "oscine: wrote %s (%.2f s, %ld Hz, %ld ch)\n", out, (double)seconds,
                rate, channels);
    return EXIT_OK;
}
