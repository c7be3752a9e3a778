/* cmd_features.c - `oscine features IN OUT.csv [--hop-ms 10]`: the DDSP
 * conditioning features of a sound file, the same ones the live synth sees.
 *
 * IN is mixed to mono and resampled to 16 kHz (libsoxr, high quality); the
 * pitch tracker (YIN, dsp/pitch.h) and the A-weighted loudness (dsp/loudness.h,
 * n_fft 512) run on it with one hop. Frame i describes the signal at time
 * i * hop / 16000 s: each tracker's window is centred there (the signal is
 * zero before 0 and after its end), as DDSP's padding='center'. There are
 * ceil(samples at 16 kHz / hop) frames. The CSV is written to a temporary
 * file beside OUT and renamed when complete.
 */
#include "cli.h"

#include "dsp/loudness.h"
#include "dsp/pitch.h"
#include "dsp/resample.h"
#include "io/audiofile.h"
#include "oscine.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FEAT_RATE 16000
#define BLOCK 4096

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

/* One tracker's view of the 16 kHz stream: `pad` zeros in front so that its
 * window centre (latency samples before the newest sample) lands on
 * multiples of the hop. After m hops the centre is at m * hop - latency - pad,
 * a multiple of hop; outputs centred before time 0 are dropped. */
typedef struct feed {
    int hop, fill, skip;
    int64_t done;        /* frames stored */
    float *buf;          /* (hop) */
} feed;

typedef struct features {
    pitch *pt;
    loudness *ld;
    feed fp, fl;
    int64_t nframes;
    float *f0, *conf, *loud; /* (nframes) */
} features;

static int feed_init(feed *f, int hop, int latency)
{
    f->hop = hop;
    int pad = (hop - latency % hop) % hop;
    f->skip = (latency + pad) / hop - 1; /* latency > 0, so this is >= 0 */
    f->fill = pad; /* the zeros in front are already in buf */
    f->done = 0;
    f->buf = calloc((size_t)hop, sizeof(float));
    return f->buf ? 0 : -1;
}

static void run_pitch(features *s)
{
    pitch_frame pf;
    pitch_process(s->pt, s->fp.buf, &pf);
    if (s->fp.skip > 0) {
        s->fp.skip--;
    } else if (s->fp.done < s->nframes) {
        s->f0[s->fp.done] = pf.f0_hz;
        s->conf[s->fp.done] = pf.confidence;
        s->fp.done++;
    }
}

static void run_loud(features *s)
{
    float db = loudness_process(s->ld, s->fl.buf);
    if (s->fl.skip > 0)
        s->fl.skip--;
    else if (s->fl.done < s->nframes)
        s->loud[s->fl.done++] = db;
}

/* x == NULL pushes n zeros. */
static void push(features *s, feed *f, const float *x, int n, void (*run)(features *))
{
    while (n > 0) {
        int c = f->hop - f->fill < n ? f->hop - f->fill : n;
        if (x)
            memcpy(f->buf + f->fill, x, sizeof(float) * (size_t)c);
        else
            memset(f->buf + f->fill, 0, sizeof(float) * (size_t)c);
        f->fill += c;
        n -= c;
        if (x)
            x += c;
        if (f->fill == f->hop) {
            run(s);
            f->fill = 0;
        }
    }
}

static void push_both(features *s, const float *x, int n)
{
    push(s, &s->fp, x, n, run_pitch);
    push(s, &s->fl, x, n, run_loud);
}

static void features_free(features *s)
{
    pitch_destroy(s->pt);
    loudness_destroy(s->ld);
    free(s->fp.buf);
    free(s->fl.buf);
    free(s->f0);
    free(s->conf);
    free(s->loud);
}

/* Write the CSV beside out_path, then put it in place. */
static int write_csv(const features *s, const char *out_path, int hop)
{
    out_tmp tmp;
    int fd = out_tmp_create(&tmp, out_path);
    if (fd < 0)
        return cli_fail_lib(fd == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, fd, NULL);
    FILE *fo = fdopen(fd, "w");
    if (!fo) {
        int e = errno;
        close(fd);
        out_tmp_discard(&tmp);
        return cli_fail(EXIT_RUNTIME, "output '%s': %s", out_path, strerror(e));
    }
    fputs("time_s,f0_hz,confidence,loudness_db\n", fo);
    for (int64_t i = 0; i < s->nframes; i++)
        fprintf(fo, "%.6f,%.3f,%.4f,%.3f\n", (double)i * hop / FEAT_RATE, (double)s->f0[i],
                (double)s->conf[i], (double)s->loud[i]);
    int bad = ferror(fo);
    int e = errno;
    if (fclose(fo))
        bad = 1, e = errno;
    if (bad) {
        out_tmp_discard(&tmp);
        return cli_fail(EXIT_RUNTIME, "output '%s': write failed: %s", out_path, strerror(e));
    }
    if ((e = out_tmp_commit(&tmp)))
        return cli_fail(EXIT_RUNTIME, "output '%s': %s", out_path, strerror(e));
    return EXIT_OK;
}

int cmd_features(int argc, char **argv)
{
    const char *pos[2];
    int npos = 0;
    float hop_ms = 10;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--hop-ms")) {
            if (!v || cli_parse_float(v, &hop_ms) || hop_ms < 1 || hop_ms > 100)
                return cli_fail(EXIT_USAGE, "--hop-ms '%s': give 1..100 ms", v ? v : "");
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "features: unknown flag '%s' (see 'oscine help "
                            "features')", a);
        } else if (npos < 2) {
            pos[npos++] = a;
        } else {
            return cli_fail(EXIT_USAGE, "features: unexpected argument '%s'", a);
        }
    }
    if (npos != 2)
        return cli_fail(EXIT_USAGE, "features: need IN and OUT.csv (see 'oscine help "
                        "features')");
    double hop_d = hop_ms * FEAT_RATE / 1000.0;
    int hop = (int)lround(hop_d);
    if (fabs(hop_d - hop) > 1e-3)
        return cli_fail(EXIT_USAGE, "--hop-ms %g: not a whole number of samples at 16 kHz "
                        "(use a multiple of 0.0625 ms, e.g. 4, 10 or 20)", (double)hop_ms);
    const char *in_path = pos[0], *out_path = pos[1];
    char out_real[4096];
    int te = out_target_check(in_path, out_path, out_real, sizeof out_real);
    if (te)
        return cli_fail_lib(te == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, te, NULL);

    /* in_open gives the same messages as `process` for a missing,
     * unreadable or non-audio input */
    in_file in;
    int e = in_open(&in, in_path);
    if (e) {
        in_close(&in);
        return cli_fail_lib(EXIT_RUNTIME, e, NULL);
    }
    const SF_INFO si = in.info;
    const char *why = NULL;
    char whyb[160];
    if (si.frames <= 0)
        why = "contains no audio";
    else if (si.channels > OSCINE_MAX_CHANNELS)
        snprintf(whyb, sizeof whyb, "%d channels; oscine handles 1..%d", si.channels,
                 OSCINE_MAX_CHANNELS), why = whyb;
    else if (si.samplerate < 8000 || si.samplerate > 192000)
        snprintf(whyb, sizeof whyb, "sample rate %d Hz; oscine handles 8000..192000",
                 si.samplerate), why = whyb;
    if (why) {
        in_close(&in);
        return cli_fail(EXIT_RUNTIME, "input '%s': %s", in_path, why);
    }
    SNDFILE *sf = in.sf;
    const int ch = si.channels, rate = si.samplerate;
    int64_t n16 = (int64_t)llround((double)si.frames * FEAT_RATE / rate);

    features st = {0}, *s = &st;
    resampler *rs = NULL;
    float *ibuf = NULL, *mono = NULL, *rbuf = NULL;
    int code = EXIT_RUNTIME;
    pitch_config pc = {.sample_rate = FEAT_RATE, .hop = hop};
    loudness_config lc = {.sample_rate = FEAT_RATE, .n_fft = 512, .hop = hop};
    if ((e = pitch_create(&s->pt, &pc)) || (e = loudness_create(&s->ld, &lc))) {
        cli_fail_lib(EXIT_RUNTIME, e, "features");
        goto done;
    }
    s->nframes = (n16 + hop - 1) / hop;
    if (s->nframes < 1)
        s->nframes = 1;
    s->f0 = calloc((size_t)s->nframes, sizeof(float));
    s->conf = calloc((size_t)s->nframes, sizeof(float));
    s->loud = calloc((size_t)s->nframes, sizeof(float));
    ibuf = malloc(sizeof(float) * BLOCK * (size_t)ch);
    mono = malloc(sizeof(float) * BLOCK);
    if (!s->f0 || !s->conf || !s->loud || !ibuf || !mono ||
        feed_init(&s->fp, hop, pitch_latency(s->pt)) ||
        feed_init(&s->fl, hop, loudness_latency(s->ld))) {
        cli_fail(EXIT_RUNTIME, "input '%s': out of memory", in_path);
        goto done;
    }
    if (rate != FEAT_RATE) {
        if ((e = resampler_create(&rs, rate, FEAT_RATE, 0, BLOCK))) {
            cli_fail_lib(EXIT_RUNTIME, e, in_path);
            goto done;
        }
        rbuf = malloc(sizeof(float) * (size_t)resampler_max_out(rs));
        if (!rbuf) {
            cli_fail(EXIT_RUNTIME, "input '%s': out of memory", in_path);
            goto done;
        }
    }

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    int64_t read_total = 0, fed = 0;
    for (;;) {
        if (stop_requested) {
            cli_fail(EXIT_RUNTIME, "output '%s' not written: interrupted", out_path);
            goto done;
        }
        sf_count_t got = sf_readf_float(sf, ibuf, BLOCK);
        if (got <= 0)
            break;
        read_total += got;
        for (sf_count_t i = 0; i < got; i++) {
            float m = 0;
            for (int c = 0; c < ch; c++)
                m += ibuf[i * ch + c];
            mono[i] = m / (float)ch;
        }
        const float *y = mono;
        int ny = (int)got;
        if (rs) {
            ny = resampler_process(rs, mono, (int)got, rbuf);
            if (ny < 0) {
                cli_fail_lib(EXIT_RUNTIME, ny, in_path);
                goto done;
            }
            y = rbuf;
        }
        if (fed + ny > n16)
            ny = (int)(n16 - fed);
        push_both(s, y, ny);
        fed += ny;
    }
    /* a file that stops decoding early: the frames that came are analysed */
    if (read_total < si.frames) {
        if (read_total == 0) {
            cli_fail(EXIT_RUNTIME, "input '%s': no frame of the %lld its header promises "
                     "can be read (%s)", in_path, (long long)si.frames, sf_strerror(sf));
            goto done;
        }
        in.missing += si.frames - read_total;
        n16 = (int64_t)llround((double)read_total * FEAT_RATE / rate);
        s->nframes = (n16 + hop - 1) / hop > 0 ? (n16 + hop - 1) / hop : 1;
    }
    while (rs && fed < n16) {
        int ny = resampler_process(rs, NULL, 0, rbuf);
        if (ny < 0) {
            cli_fail_lib(EXIT_RUNTIME, ny, in_path);
            goto done;
        }
        if (ny == 0)
            break;
        if (fed + ny > n16)
            ny = (int)(n16 - fed);
        push_both(s, rbuf, ny);
        fed += ny;
    }
    /* zeros after the end until every frame's window has been seen */
    while (s->fp.done < s->nframes)
        push(s, &s->fp, NULL, hop, run_pitch);
    while (s->fl.done < s->nframes)
        push(s, &s->fl, NULL, hop, run_loud);
    code = write_csv(s, out_real, hop);
    if (!code)
        cli_warn_cut(in_path, in.missing, read_total);

done:
    in_close(&in);
    resampler_destroy(rs);
    features_free(s);
    free(ibuf);
    free(mono);
    free(rbuf);
    return code;
}
