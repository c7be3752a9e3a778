/* test_fileio.c - files through `oscine process`: every readable format and
 * sample type, bit-exact passthrough, resampled output, dither, and every
 * bad-input case (exit code, message, no output left behind). */
#include "util/util.h"

#include "io/audiofile.h"
#include "io/npy.h"
#include "nn/kernels.h"
#include "oscine.h"

#include <limits.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <signal.h>
#include <string.h>
#include <dirent.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char out[8192], err[8192];

/* Write n frames of a deterministic multichannel signal with libsndfile. */
static void make_file(const char *path, int format, int rate, int ch, sf_count_t n)
{
    SF_INFO info = {.samplerate = rate, .channels = ch, .format = format};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf)
        fail_msg("cannot write %s: %s", path, sf_strerror(NULL));
    float *x = malloc(sizeof(float) * (size_t)(n * ch));
    uint64_t s = 42;
    for (sf_count_t i = 0; i < n; i++)
        for (int c = 0; c < ch; c++)
            x[i * ch + c] = (float)(0.3 * sin(2 * M_PI * (220.0 + 110 * c) * i / rate) +
                                    0.05 * urand(&s));
    sf_writef_float(sf, x, n);
    sf_close(sf);
    free(x);
}

/* Read a whole file as int32 (full scale) or float. */
static void *read_all(const char *path, SF_INFO *info, int as_int)
{
    memset(info, 0, sizeof *info);
    SNDFILE *sf = sf_open(path, SFM_READ, info);
    if (!sf)
        fail_msg("cannot read %s: %s", path, sf_strerror(NULL));
    size_t n = (size_t)(info->frames * info->channels);
    void *buf = malloc((n ? n : 1) * 4);
    if (as_int)
        sf_readf_int(sf, buf, info->frames);
    else
        sf_readf_float(sf, buf, info->frames);
    sf_close(sf);
    return buf;
}

static void test_formats(void **state)
{
    const char *d = tmpdir_make();
    const struct {
        int format, rate, ch;
        const char *ext, *outext;
        int exact;
    } cases[] = {
        {SF_FORMAT_WAV | SF_FORMAT_PCM_16, 8000, 1, "wav", "wav", 1},
        {SF_FORMAT_WAV | SF_FORMAT_PCM_24, 96000, 2, "wav", "wav", 1},
        {SF_FORMAT_WAV | SF_FORMAT_PCM_32, 22050, 1, "wav", "wav", 0},
        {SF_FORMAT_WAV | SF_FORMAT_FLOAT, 192000, 2, "wav", "wav", 1},
        {SF_FORMAT_WAV | SF_FORMAT_PCM_16, 48000, 8, "wav", "wav", 1},
        {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, "flac", "flac", 1},
        {SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 44100, 6, "flac", "flac", 1},
        {SF_FORMAT_AIFF | SF_FORMAT_PCM_16, 32000, 2, "aiff", "wav", 1},
        {SF_FORMAT_AIFF | SF_FORMAT_PCM_24, 88200, 1, "aiff", "flac", 1},
        {SF_FORMAT_OGG | SF_FORMAT_VORBIS, 44100, 2, "ogg", "wav", 0},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char in[256], o[256];
        snprintf(in, sizeof in, "%s/in%zu.%s", d, k, cases[k].ext);
        snprintf(o, sizeof o, "%s/out%zu.%s", d, k, cases[k].outext);
        make_file(in, cases[k].format, cases[k].rate, cases[k].ch, cases[k].rate / 2 + 77);
        int rc = run_oscine(out, sizeof out, err, sizeof err, "process", in, o, "--quiet", NULL);
        if (rc != 0)
            fail_msg("case %zu (%s): exit %d: %s", k, in, rc, err);
        SF_INFO a, b;
        float *x = read_all(in, &a, 0), *y = read_all(o, &b, 0);
        assert_int_equal(b.samplerate, a.samplerate);
        assert_int_equal(b.channels, a.channels);
        assert_int_equal(b.frames, a.frames);
        size_t n = (size_t)(a.frames * a.channels);
        double worst = 0;
        for (size_t i = 0; i < n; i++)
            worst = fmax(worst, fabs((double)x[i] - y[i]));
        /* Unchanged samples come back exactly; 32-bit integers and lossy
         * input pass through float, so within 24-bit precision. */
        if (cases[k].exact ? worst != 0 : worst > 1.0 / (1 << 22))
            fail_msg("case %zu: max difference %g", k, worst);
        /* The sample type is kept where the container allows. */
        if ((cases[k].format & SF_FORMAT_TYPEMASK) != SF_FORMAT_OGG &&
            !strcmp(cases[k].ext, cases[k].outext))
            assert_int_equal(b.format & SF_FORMAT_SUBMASK, cases[k].format & SF_FORMAT_SUBMASK);
        free(x);
        free(y);
    }
    tmpdir_remove(d);
}

/* The acceptance case: stereo 24-bit 44.1 kHz FLAC, bit-identical. */
static void test_flac24_bit_identical(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o[256];
    snprintf(in, sizeof in, "%s/in.flac", d);
    snprintf(o, sizeof o, "%s/out.flac", d);
    make_file(in, SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 44100, 2, 44100 * 3 + 1234);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o,
                                "--chain", "passthrough", NULL), 0);
    SF_INFO a, b;
    int *x = read_all(in, &a, 1), *y = read_all(o, &b, 1);
    assert_int_equal(b.format, SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
    assert_int_equal(b.frames, a.frames);
    assert_memory_equal(x, y, sizeof(int) * (size_t)(a.frames * 2));
    free(x);
    free(y);
    /* With a chain that has latency (hop 441), compensated: still exact. */
    const char *addr[1] = {"/gain/db"};
    float val[1] = {-6};
    oscine_file_job job = {.in_path = in, .out_path = o, .stages = "gain", .set_addr = addr,
                           .set_value = val, .nset = 1, .hop = 441, .dither = 1};
    assert_int_equal(oscine_file_process(&job), 0);
    float *xf = read_all(in, &a, 0), *yf = read_all(o, &b, 0);
    assert_int_equal(b.frames, a.frames);
    double e = 0;
    for (size_t i = 0; i < (size_t)a.frames * 2; i++)
        e = fmax(e, fabs(xf[i] * pow(10, -6 / 20.0) - yf[i]));
    if (e > 1.0 / (1 << 23)) /* float gain, then rounding to 24 bits */
        fail_msg("hop 441: max error %g (LSB %g)", e, 1.0 / (1 << 23));
    free(xf);
    free(yf);
    /* Stages at 16 kHz (resampled both ways), latency compensated: the
     * output lines up with the input (band-limited content, < 7 kHz). */
    job.nset = 0;
    job.hop = 160;
    job.internal_rate = 16000;
    assert_int_equal(oscine_file_process(&job), 0);
    xf = read_all(in, &a, 0);
    yf = read_all(o, &b, 0);
    assert_int_equal(b.frames, a.frames);
    /* Channel 0: 220 Hz sine (0.3) + white noise (0.05); only the noise
     * above 7.3 kHz is removed, so the error is that part of the noise. */
    double dot = 0, ref = 0;
    for (sf_count_t i = 4410; i < a.frames - 4410; i++) {
        double s = 0.3 * sin(2 * M_PI * 220.0 * i / 44100);
        dot += yf[i * 2] * s;
        ref += s * s;
    }
    assert_float_equal(dot / ref, 1.0, 0.002);
    free(xf);
    free(yf);
    tmpdir_remove(d);
}

static void test_rate_conversion(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o[256];
    snprintf(in, sizeof in, "%s/in.wav", d);
    snprintf(o, sizeof o, "%s/out.flac", d);
    const sf_count_t n = 44100 * 2 + 17;
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 44100, 2, n);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o,
                                "--rate", "16000", NULL), 0);
    SF_INFO b;
    float *y = read_all(o, &b, 0);
    assert_int_equal(b.samplerate, 16000);
    assert_int_equal(b.frames, llround(n * 16000.0 / 44100));
    assert_int_equal(b.format, SF_FORMAT_FLAC | SF_FORMAT_PCM_24); /* float -> FLAC: 24 */
    /* Channel 0 is a 220 Hz sine of amplitude 0.3 plus small noise: the
     * resampled one lines up with a 220 Hz sine at the new rate. */
    double dot = 0, ref = 0;
    for (sf_count_t i = 1000; i < b.frames - 1000; i++) {
        double s = 0.3 * sin(2 * M_PI * 220.0 * i / 16000);
        dot += y[i * 2] * s;
        ref += s * s;
    }
    assert_float_equal(dot / ref, 1.0, 0.01);
    free(y);
    tmpdir_remove(d);
}

static void test_dither(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o1[256], o2[256];
    snprintf(in, sizeof in, "%s/in.wav", d);
    snprintf(o1, sizeof o1, "%s/dither.wav", d);
    snprintf(o2, sizeof o2, "%s/plain.wav", d);
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, 48000);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o1,
                                "--bits", "16", NULL), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o2,
                                "--bits", "16", "--no-dither", NULL), 0);
    SF_INFO a, b, c;
    float *x = read_all(in, &a, 0);
    int *yd = read_all(o1, &b, 1), *yp = read_all(o2, &c, 1);
    assert_int_equal(b.format & SF_FORMAT_SUBMASK, SF_FORMAT_PCM_16);
    /* Without dither: plain rounding. With TPDF dither: error variance
     * 1/12 + 1/6 = 1/4 LSB^2 and no correlation with the signal. */
    double var = 0, mean = 0;
    for (sf_count_t i = 0; i < a.frames; i++) {
        long q = lrint(x[i] * 32768.0);
        assert_int_equal(yp[i] >> 16, q);
        double e = (yd[i] >> 16) - x[i] * 32768.0;
        var += e * e;
        mean += e;
    }
    var /= (double)a.frames;
    mean /= (double)a.frames;
    assert_float_equal(var, 0.25, 0.03);
    assert_float_equal(mean, 0.0, 0.02);
    free(x);
    free(yd);
    free(yp);
    /* 16-bit in, 16-bit out with gain: not a reduction, so no dither. */
    char in16[256], g[256];
    snprintf(in16, sizeof in16, "%s/in16.wav", d);
    snprintf(g, sizeof g, "%s/gain.wav", d);
    make_file(in16, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 16000);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in16, g,
                                "--chain", "gain", "--set", "/gain/db", "-6", NULL), 0);
    x = read_all(in16, &a, 0);
    yp = read_all(g, &b, 1);
    for (sf_count_t i = 0; i < a.frames; i++)
        assert_int_equal(yp[i] >> 16, lrint(x[i] * powf(10, -6 / 20.0f) * 32768.0));
    free(x);
    free(yp);
    tmpdir_remove(d);
}

/* Each bad input: exit code, a message naming the culprit, nothing left. */
static void expect_fail(const char *dir, int code, const char *needle, ...)
{
    int before = dir_count(dir);
    va_list ap;
    va_start(ap, needle);
    const char *args[16];
    int n = 0;
    while (n < 15 && (args[n] = va_arg(ap, const char *)))
        n++;
    va_end(ap);
    args[n] = NULL;
    int rc = run_oscine(out, sizeof out, err, sizeof err, args[0], args[1], args[2], args[3],
                        args[4], args[5], args[6], args[7], args[8], args[9], args[10], NULL);
    if (rc != code || !strstr(err, needle))
        fail_msg("%s %s %s: exit %d (want %d), stderr '%s' (want '%s')", args[0],
                 args[1] ? args[1] : "", args[2] ? args[2] : "", rc, code, err, needle);
    /* One line, prefixed. */
    assert_int_equal(strncmp(err, "oscine: ", 8), 0);
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    assert_int_equal(dir_count(dir), before);
}

static void test_bad_input(void **state)
{
    const char *d = tmpdir_make();
    char good[256], o[256], corrupt[256], empty[256], nine[256], missing[256], nodir[256];
    snprintf(good, sizeof good, "%s/good.wav", d);
    snprintf(o, sizeof o, "%s/out.wav", d);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.wav", d);
    snprintf(empty, sizeof empty, "%s/empty.wav", d);
    snprintf(nine, sizeof nine, "%s/nine.wav", d);
    snprintf(missing, sizeof missing, "%s/missing.wav", d);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/out.wav", d);
    make_file(good, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 16000);
    make_file(empty, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 0);
    make_file(nine, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 9, 1000);
    FILE *f = fopen(corrupt, "wb");
    fputs("RIFF\x24\x00\x00\x00WAVEjunkjunkjunkjunkjunkjunk", f);
    fclose(f);

    expect_fail(d, 1, "missing.wav", "process", missing, o, NULL);
    expect_fail(d, 1, "corrupt.wav", "process", corrupt, o, NULL);
    expect_fail(d, 1, "is a directory", "process", d, o, NULL);
    expect_fail(d, 1, "no audio", "process", empty, o, NULL);
    expect_fail(d, 1, "9 channels", "process", nine, o, NULL);
    expect_fail(d, 2, "unknown stage 'nope'", "process", good, o, "--chain", "nope", NULL);
    expect_fail(d, 2, "/gain/volume", "process", good, o, "--chain", "gain", "--set",
                "/gain/volume", "1", NULL);
    expect_fail(d, 2, "out of range", "process", good, o, "--chain", "gain", "--set",
                "/gain/db", "100", NULL);
    expect_fail(d, 2, "'abc'", "process", good, o, "--set", "/gain/db", "abc", NULL);
    expect_fail(d, 2, "'0x10'", "process", good, o, "--set", "/gain/db", "0x10", NULL); /* not +16 dB */
    expect_fail(d, 2, "'1e39' is beyond the range of a float", "process", good, o, "--set",
                "/gain/db", "1e39", NULL);
    expect_fail(d, 2, "'1e39': beyond the range of a float", "denoise", good, o, "--mix", "1e39",
                NULL);
    expect_fail(d, 2, "'--frobnicate'", "process", good, o, "--frobnicate", NULL);
    expect_fail(d, 2, "--rate", "process", good, o, "--rate", "1000", NULL);
    expect_fail(d, 2, "--format", "process", good, o, "--format", "mp3", NULL);
    expect_fail(d, 2, "--bits", "process", good, o, "--bits", "12", NULL);
    expect_fail(d, 2, "need IN and OUT", "process", good, NULL);
    /* the output's name and flags are the user's: usage errors (2), found
     * before the input is read (the missing input is not what is named) */
    expect_fail(d, 2, "WAV or FLAC", "process", good, "x.ogg", NULL);
    expect_fail(d, 2, "WAV or FLAC", "process", missing, "x.mp3", NULL);
    expect_fail(d, 2, "FLAC stores 16 or 24 bits, not float", "process", good, "x.flac",
                "--bits", "float", NULL);
    expect_fail(d, 2, "WAV or FLAC", "generate", "x.mp3", NULL);
    expect_fail(d, 2, "less than one sample", "generate", o, "--seconds", "1e-9", NULL);
    expect_fail(d, 2, "impulse is at 0.1 s", "generate", o, "--signal", "impulse", "--seconds",
                "0.05", NULL);
    expect_fail(d, 2, "WAV or FLAC", "denoise", good, "x.ogg", NULL);
    expect_fail(d, 1, "no/such/dir", "process", good, nodir, NULL);
    expect_fail(d, 2, "is the input", "process", good, good, NULL);
    expect_fail(d, 2, "unknown command", "frobnicate", NULL);
    expect_fail(d, 1, "missing.wav", "info", missing, NULL);
    expect_fail(d, 2, "unknown flag '--bogus'", "info", "--bogus", good, NULL);
    expect_fail(d, 2, "not standard output", "mel", good, "-", NULL);
    expect_fail(d, 2, "not standard output", "process", good, "-", NULL);
    /* An existing output is left untouched when a job fails. */
    f = fopen(o, "wb");
    fputs("precious", f);
    fclose(f);
    expect_fail(d, 1, "corrupt.wav", "process", corrupt, o, NULL);
    char buf[16] = "";
    f = fopen(o, "rb");
    assert_non_null(fgets(buf, sizeof buf, f));
    fclose(f);
    assert_string_equal(buf, "precious");
    tmpdir_remove(d);
}

/* What a job met reaches the user: NaN and infinity in a float input come
 * out as silence around them (the rest untouched) with a warning naming the
 * input, output that clips at 16 bits gets a warning with the count, -q
 * keeps both quiet, and the library's report carries the same numbers. */
static void test_warnings_and_report(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o[256];
    snprintf(in, sizeof in, "%s/nan.wav", d);
    snprintf(o, sizeof o, "%s/out.wav", d);
    enum { N = 16000 };
    static float x[N];
    for (int i = 0; i < N; i++)
        x[i] = 0.5f * sinf(2 * (float)M_PI * 440 * i / 16000.0f);
    x[4000] = NAN;
    x[9000] = INFINITY;
    x[9001] = -INFINITY; /* next to another, in the same block: still counted */
    SF_INFO si = {.samplerate = 16000, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *sf = sf_open(in, SFM_WRITE, &si);
    assert_non_null(sf);
    sf_writef_float(sf, x, N);
    sf_close(sf);

    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o, NULL), 0);
    assert_non_null(strstr(err, "nan.wav': 3 samples of NaN or infinity"));
    SF_INFO info;
    float *y = read_all(o, &info, 0);
    assert_int_equal(info.frames, N);
    for (int i = 0; i < N; i++) {
        float want = i == 4000 || i == 9000 || i == 9001 ? 0.0f : x[i];
        if (y[i] != want)
            fail_msg("sample %d: %g, want %g", i, (double)y[i], (double)want);
    }
    free(y);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o, "-q", NULL), 0);
    assert_string_equal(err, "");
    /* without -q, a summary of what was written */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o, "--chain",
                                "gain", "--bits", "24", NULL), 0);
    assert_non_null(strstr(err, "out.wav (1.00 s, 16000 Hz, 1 ch, WAV PCM_24; chain gain, "
                                "latency 0 samples compensated)"));

    /* +12 dB on a 0.5 sine into 16 bits: every sample above 0.25 clips */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o, "--chain",
                                "gain", "--set", "/gain/db", "12", "--bits", "16", NULL), 0);
    assert_non_null(strstr(err, "samples clipped at full scale"));
    long clipped = strtol(strstr(err, "out.wav': ") + 10, NULL, 10);
    assert_true(clipped > N / 2 && clipped < N);

    oscine_file_report rep;
    memset(&rep, 0xff, sizeof rep);
    const char *addr[] = {"/gain/db"};
    const float val[] = {12};
    oscine_file_job job = {.in_path = in, .out_path = o, .stages = "gain", .set_addr = addr,
                           .set_value = val, .nset = 1, .samples = OSCINE_SAMPLES_PCM16,
                           .report = &rep};
    assert_int_equal(oscine_file_process(&job), 0);
    assert_int_equal(rep.frames_in, N);
    assert_int_equal(rep.frames_out, N);
    assert_int_equal(rep.clipped, clipped);
    assert_int_equal(rep.nonfinite, 3);
    assert_int_equal(rep.latency, 0);
    assert_int_equal(rep.frames_missing, 0);
    /* a WAV cut off mid-write: what is there is processed, with a warning
     * that says how much the header promised beyond it */
    char cut[256];
    snprintf(cut, sizeof cut, "%s/cut.wav", d);
    make_file(cut, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 16000);
    assert_int_equal(truncate(cut, 44 + 2 * 1000), 0); /* 1000 of 16000 frames */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", cut, o, NULL), 0);
    assert_non_null(strstr(err, "cut.wav' is cut short: its header promises 15000 more frames"));
    job.in_path = cut;
    job.nset = 0;
    assert_int_equal(oscine_file_process(&job), 0);
    assert_int_equal(rep.frames_in, 1000);
    assert_int_equal(rep.frames_missing, 15000);
    tmpdir_remove(d);
}

static int cancel_at_half(void *user, int64_t done, int64_t total)
{
    *(int *)user += 1;
    return done * 2 >= total;
}

/* A job cancelled part-way (Ctrl-C in the CLI) leaves no file behind. */
static void test_interrupted(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o[256];
    snprintf(in, sizeof in, "%s/in.wav", d);
    snprintf(o, sizeof o, "%s/out.wav", d);
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 16000 * 10);
    int calls = 0;
    oscine_file_job job = {.in_path = in, .out_path = o, .stages = "gain",
                           .progress = cancel_at_half, .progress_user = &calls};
    assert_int_equal(oscine_file_process(&job), OSCINE_E_INTERRUPTED);
    assert_true(calls > 1);
    assert_non_null(strstr(oscine_last_error(), "out.wav"));
    assert_int_equal(dir_count(d), 1); /* just the input */
    tmpdir_remove(d);
}

/* Where the output goes: the input under another name is refused before
 * anything is written (by device and inode), a symbolic link stays a link
 * and its target gets the file, a folder, pipe or dangling link is refused
 * with its name, and a long but legal name works. */
static void test_output_targets(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o[256], t[256], l[600];
    snprintf(in, sizeof in, "%s/in.wav", d);
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1600);
    size_t n0;
    uint8_t *orig = read_file_bytes(in, &n0);
    /* the input by another spelling, for every command that writes */
    snprintf(o, sizeof o, "%s/./in.wav", d);
    const char *cmds[][4] = {{"process", in, o, NULL}, {"mel", in, o, NULL},
                             {"features", in, o, NULL}, {"denoise", in, o, NULL}};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, cmds[i][0], cmds[i][1],
                                    cmds[i][2], NULL), 2);
        assert_non_null(strstr(err, "is the input file"));
    }
    snprintf(l, sizeof l, "%s/link.wav", d);
    assert_int_equal(symlink("in.wav", l), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", l, in, NULL), 2);
    size_t n1;
    uint8_t *now = read_file_bytes(in, &n1);
    assert_int_equal(n1, n0);
    assert_memory_equal(now, orig, n0);
    free(now);
    free(orig);
    /* a link as the output: written through, still a link */
    snprintf(t, sizeof t, "%s/target.wav", d);
    make_file(t, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 10);
    snprintf(o, sizeof o, "%s/out.wav", d);
    assert_int_equal(symlink("target.wav", o), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o, "-q", NULL), 0);
    struct stat st;
    assert_int_equal(lstat(o, &st), 0);
    assert_true(S_ISLNK(st.st_mode));
    SF_INFO si;
    free(read_all(t, &si, 0));
    assert_int_equal(si.frames, 1600);
    /* refused before any work, named */
    snprintf(o, sizeof o, "%s/adir.wav", d);
    assert_int_equal(mkdir(o, 0755), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, o, NULL), 1);
    assert_non_null(strstr(err, "adir.wav': is a folder"));
    rmdir(o);
    snprintf(o, sizeof o, "%s/fifo.wav", d);
    assert_int_equal(mkfifo(o, 0644), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "mel", in, o, NULL), 1);
    assert_non_null(strstr(err, "fifo.wav': not a regular file"));
    assert_int_equal(lstat(o, &st), 0);
    assert_true(S_ISFIFO(st.st_mode));
    unlink(o);
    snprintf(o, sizeof o, "%s/dangling.wav", d);
    assert_int_equal(symlink("nowhere.wav", o), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "generate", o, NULL), 1);
    assert_non_null(strstr(err, "a symbolic link to a missing file"));
    unlink(o);
    unlink(l);
    unlink(t);
    /* a 250-byte name (legal: 255) leaves room for the temporary's */
    char name[251];
    memset(name, 'x', 246);
    memcpy(name + 246, ".wav", 5);
    snprintf(l, sizeof l, "%s/%s", d, name);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", in, l, "-q", NULL), 0);
    assert_true(path_exists(l));
    unlink(l);
    snprintf(o, sizeof o, "%s/out.wav", d);
    unlink(o);
    assert_int_equal(dir_count(d), 1); /* just the input: no temporaries left */
    tmpdir_remove(d);
}

/* Does process pid hold a file of dir open, other than `except`? The
 * output's temporary: "DIR/#INODE (deleted)" when unnamed (O_TMPFILE),
 * "DIR/.out.wav.oscine-PID-XXXXXX" when named. */
static int holds_file_in(pid_t pid, const char *dir, const char *except)
{
    char fds[64];
    snprintf(fds, sizeof fds, "/proc/%d/fd", (int)pid);
    DIR *dp = opendir(fds);
    if (!dp)
        return 0;
    int found = 0;
    size_t dl = strlen(dir);
    for (struct dirent *e; !found && (e = readdir(dp));) {
        char l[512], t[PATH_MAX];
        snprintf(l, sizeof l, "%s/%s", fds, e->d_name);
        ssize_t n = readlink(l, t, sizeof t - 1);
        if (n <= 0)
            continue;
        t[n] = 0;
        found = !strncmp(t, dir, dl) && t[dl] == '/' && strcmp(t, except);
    }
    closedir(dp);
    return found;
}

/* The name of the one hidden temporary of out.wav in dir (into name), or 0. */
static int find_hidden(const char *dir, char *name, size_t len)
{
    DIR *dp = opendir(dir);
    int n = 0;
    for (struct dirent *e; dp && (e = readdir(dp));)
        if (!strncmp(e->d_name, ".out.wav.oscine-", 16)) {
            snprintf(name, len, "%s/%s", dir, e->d_name);
            n++;
        }
    if (dp)
        closedir(dp);
    return n;
}

/* Start `resynth in o` (long enough to be caught writing), wait until it
 * holds its output's temporary open, send sig, and return how it ended. */
static int kill_while_writing(const char *d, const char *in, const char *o, int sig, int named,
                              pid_t *who)
{
    const char *bin = getenv("OSCINE_BIN") ? getenv("OSCINE_BIN") : "build/oscine";
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (named)
            setenv("OSCINE_NO_O_TMPFILE", "1", 1);
        else
            unsetenv("OSCINE_NO_O_TMPFILE");
        freopen("/dev/null", "w", stderr);
        execl(bin, bin, "resynth", in, o, "-q", (char *)NULL);
        _exit(127);
    }
    int seen = 0;
    for (int w = 0; w < 1000 && !seen; w++) {
        usleep(10000);
        seen = holds_file_in(pid, d, in);
    }
    assert_true(seen);
    usleep(50000); /* some of it written */
    kill(pid, sig);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (who)
        *who = pid;
    return status;
}

/* A command killed while it writes leaves nothing: the temporary is unnamed
 * (O_TMPFILE), so not even SIGKILL leaves it behind; the signals the command
 * catches (INT: an error exit with a message; HUP, QUIT: death by the
 * signal) clean up either scheme. Where the filesystem has no O_TMPFILE (here
 * forced with OSCINE_NO_O_TMPFILE=1) a SIGKILL leaves a hidden temporary,
 * which the next write to that output deletes once its process is gone and
 * a minute has passed (not one whose process lives, nor a fresh one). */
static void test_killed_leaves_no_temporary(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o[256];
    snprintf(in, sizeof in, "%s/in.wav", d);
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 48000, 1, 48000 * 120);
    snprintf(o, sizeof o, "%s/out.wav", d);
    const int sigs[] = {SIGKILL, SIGHUP, SIGQUIT, SIGINT};
    for (int named = 0; named < 2; named++)
        for (int k = 0; k < 4; k++) {
            if (named && sigs[k] == SIGKILL)
                continue; /* below */
            int status = kill_while_writing(d, in, o, sigs[k], named, NULL);
            if (sigs[k] == SIGINT) /* handled: an error exit with a message */
                assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 1);
            else
                assert_true(WIFSIGNALED(status) && WTERMSIG(status) == sigs[k]);
            if (dir_count(d) != 1)
                fail_msg("%s temporary, signal %d: %d files left", named ? "named" : "unnamed",
                         sigs[k], dir_count(d) - 1);
        }
    /* the named scheme and SIGKILL */
    pid_t dead;
    int status = kill_while_writing(d, in, o, SIGKILL, 1, &dead);
    assert_true(WIFSIGNALED(status));
    char left[512], alive[512], fresh[512];
    assert_int_equal(find_hidden(d, left, sizeof left), 1);
    struct timeval old[2] = {{time(NULL) - 120, 0}, {time(NULL) - 120, 0}};
    snprintf(alive, sizeof alive, "%s/.out.wav.oscine-%d-abcdef", d, (int)getpid());
    snprintf(fresh, sizeof fresh, "%s/.out.wav.oscine-%d-ghijkl", d, (int)dead);
    fclose(fopen(alive, "w"));
    fclose(fopen(fresh, "w"));
    assert_int_equal(utimes(left, old), 0);
    assert_int_equal(utimes(alive, old), 0);
    char small[256];
    snprintf(small, sizeof small, "%s/small.wav", d);
    make_file(small, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1600);
    setenv("OSCINE_NO_O_TMPFILE", "1", 1);
    int rc = run_oscine(out, sizeof out, err, sizeof err, "process", small, o, "-q", NULL);
    unsetenv("OSCINE_NO_O_TMPFILE");
    assert_int_equal(rc, 0);
    assert_false(path_exists(left));
    assert_true(path_exists(alive));
    assert_true(path_exists(fresh));
    assert_true(path_exists(o));
    assert_int_equal(dir_count(d), 5); /* in, small, out, and the two kept */
    tmpdir_remove(d);
}

/* An output that replaces a file keeps that file's mode, and (as root) its
 * owner and group, in both temporary schemes and for every kind of output
 * (sound, .npy, .csv, .png); the replacement is a new file put in place in
 * one step (a new inode), never the old one rewritten. A new file gets 0666
 * less the umask. */
static void test_replace_keeps_mode_and_owner(void **state)
{
    const char *d = tmpdir_make();
    char in[256], o[256];
    snprintf(in, sizeof in, "%s/in.wav", d);
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1600);
    const int root = geteuid() == 0;
    if (!root)
        print_message("not root: the owner and group are not checked, only the mode\n");
    const char *outs[][2] = {{"process", "out.wav"}, {"mel", "out.npy"},
                             {"features", "out.csv"}, {"spectrogram", "out.png"}};
    for (int named = 0; named < 2; named++)
        for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
            if (named)
                setenv("OSCINE_NO_O_TMPFILE", "1", 1);
            snprintf(o, sizeof o, "%s/%s", d, outs[k][1]);
            FILE *f = fopen(o, "w");
            fputs("precious", f);
            fclose(f);
            assert_int_equal(chmod(o, 0604), 0);
            if (root)
                assert_int_equal(chown(o, 65534, 65534), 0);
            struct stat a, b;
            assert_int_equal(stat(o, &a), 0);
            int rc = !strcmp(outs[k][0], "spectrogram")
                         ? run_oscine(out, sizeof out, err, sizeof err, outs[k][0], o, in,
                                      "--width", "32", "--height", "16", NULL)
                         : run_oscine(out, sizeof out, err, sizeof err, outs[k][0], in, o,
                                      "-q", NULL);
            if (rc)
                fail_msg("%s: exit %d: %s", outs[k][0], rc, err);
            assert_int_equal(stat(o, &b), 0);
            if ((b.st_mode & 07777) != 0604 || (root && (b.st_uid != 65534 || b.st_gid != 65534)))
                fail_msg("%s (%s temporary): mode %o owner %d:%d, want 604 65534:65534",
                         outs[k][1], named ? "named" : "unnamed", (unsigned)(b.st_mode & 07777),
                         (int)b.st_uid, (int)b.st_gid);
            assert_true(b.st_ino != a.st_ino);
            assert_true(b.st_size > 8);
            /* a new file: 0666 less the umask */
            unlink(o);
            mode_t um = umask(027);
            rc = !strcmp(outs[k][0], "spectrogram")
                     ? run_oscine(out, sizeof out, err, sizeof err, outs[k][0], o, in, "--width",
                                  "32", "--height", "16", NULL)
                     : run_oscine(out, sizeof out, err, sizeof err, outs[k][0], in, o, "-q", NULL);
            umask(um);
            assert_int_equal(rc, 0);
            assert_int_equal(stat(o, &b), 0);
            assert_int_equal(b.st_mode & 07777, 0640);
            unlink(o);
            unsetenv("OSCINE_NO_O_TMPFILE");
        }
    assert_int_equal(dir_count(d), 1);
    tmpdir_remove(d);
}

/* A WAV whose data may pass 4 GiB is written as RF64 (the decision, on the
 * frame count, at its edges), FLAC refuses more than its 36-bit count, and
 * out_open starts such a file as RF64 that comes out a plain WAV when
 * smaller. Writing 4 GiB for real is left out of `make test` (time and
 * disk). */
static void test_large_wav_is_rf64(void **state)
{
    const int64_t max16 = (int64_t)(OUT_WAV_MAX_DATA / 2);
    int f;
    assert_int_equal(out_container_for("o.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, max16, &f), 0);
    assert_int_equal(f, SF_FORMAT_WAV | SF_FORMAT_PCM_16);
    assert_int_equal(out_container_for("o.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, max16 + 1, &f), 0);
    assert_int_equal(f, SF_FORMAT_RF64 | SF_FORMAT_PCM_16);
    /* 6000 s of 192 kHz stereo 16-bit: 4.6e9 bytes, which a plain WAV's
     * header wraps to 407 s */
    assert_int_equal(out_container_for("o.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 2,
                                       6000LL * 192000, &f), 0);
    assert_int_equal(f, SF_FORMAT_RF64 | SF_FORMAT_PCM_16);
    /* 6000 s of 48 kHz stereo float: 2.3e9 bytes, a WAV still */
    assert_int_equal(out_container_for("o.wav", SF_FORMAT_WAV | SF_FORMAT_FLOAT, 2,
                                       6000LL * 48000, &f), 0);
    assert_int_equal(f, SF_FORMAT_WAV | SF_FORMAT_FLOAT);
    assert_int_equal(out_container_for("o.wav", SF_FORMAT_WAV | SF_FORMAT_PCM_16, 1, -1, &f), 0);
    assert_int_equal(f, SF_FORMAT_RF64 | SF_FORMAT_PCM_16); /* unknown: may be large */
    assert_int_equal(out_container_for("o.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 8,
                                       ((int64_t)1 << 36) - 1, &f), 0);
    assert_int_equal(f, SF_FORMAT_FLAC | SF_FORMAT_PCM_24);
    assert_int_equal(out_container_for("o.flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 1,
                                       (int64_t)1 << 36, &f), OSCINE_E_UNSUPPORTED);
    assert_non_null(strstr(oscine_last_error(), "'o.flac'"));

    const char *d = tmpdir_make();
    char o[256];
    snprintf(o, sizeof o, "%s/big.wav", d);
    out_file of;
    assert_int_equal(out_open(&of, o, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 0,
                              3000000000LL), 0);
    SF_INFO cur;
    sf_command(of.sf, SFC_GET_CURRENT_SF_INFO, &cur, sizeof cur);
    assert_int_equal(cur.format & SF_FORMAT_TYPEMASK, SF_FORMAT_RF64);
    float x[100] = {0.25f};
    assert_int_equal(out_write(&of, x, 100), 0);
    assert_int_equal(out_close(&of, 1), 0);
    SF_INFO back;
    float *y = read_all(o, &back, 0);
    assert_int_equal(back.frames, 100);
    assert_int_equal(y[0], 0.25f);
    free(y);
    assert_int_equal(back.format & SF_FORMAT_TYPEMASK, SF_FORMAT_WAVEX); /* downgraded */
    tmpdir_remove(d);
}

/* A copy of a FLAC file with STREAMINFO's 36-bit total sample count set. */
static void flac_with_total(const char *from, const char *to, uint64_t total)
{
    size_t n;
    uint8_t *b = read_file_bytes(from, &n);
    assert_true(n > 26 && !memcmp(b, "fLaC", 4));
    b[21] = (uint8_t)((b[21] & 0xF0) | ((total >> 32) & 0x0F));
    for (int i = 0; i < 4; i++)
        b[22 + i] = (uint8_t)(total >> (24 - 8 * i));
    FILE *f = fopen(to, "wb");
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
    free(b);
}

/* The frames libsndfile can decode from a file, read to its end. */
static long long decodable(const char *path)
{
    SF_INFO si = {0};
    SNDFILE *sf = sf_open(path, SFM_READ, &si);
    assert_non_null(sf);
    float buf[4096];
    long long n = 0;
    sf_count_t got;
    while ((got = sf_readf_float(sf, buf, 4096 / si.channels)) > 0)
        n += got;
    sf_close(sf);
    return n;
}

/* Files cut off mid-write, in every container with a header that promises
 * a length: what is there is processed, with a warning that counts what
 * the header promised beyond it (AIFF and W64 used to pass with no word; a
 * FLAC cut after its first frames was refused whole; libsndfile refuses a
 * cut CAF outright, as malformed). The other commands
 * that read sound files say the same. A FLAC cut inside its first frame has
 * nothing to decode: refused, naming the header's count. */
static void test_cut_inputs(void **state)
{
    const char *d = tmpdir_make();
    char full[256], cut[256], o[256];
    snprintf(o, sizeof o, "%s/out.wav", d);
    const struct {
        int format;
        const char *ext;
    } cases[] = {
        {SF_FORMAT_AIFF | SF_FORMAT_PCM_16, "aiff"}, {SF_FORMAT_W64 | SF_FORMAT_PCM_16, "w64"},
        {SF_FORMAT_RF64 | SF_FORMAT_PCM_24, "rf64"},
        {SF_FORMAT_WAV | SF_FORMAT_FLOAT, "wav"},    {SF_FORMAT_FLAC | SF_FORMAT_PCM_16, "flac"},
    };
    const int N = 48000;
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        snprintf(full, sizeof full, "%s/full.%s", d, cases[k].ext);
        snprintf(cut, sizeof cut, "%s/cut.%s", d, cases[k].ext);
        make_file(full, cases[k].format, 16000, 1, N);
        size_t n;
        uint8_t *b = read_file_bytes(full, &n);
        FILE *f = fopen(cut, "wb");
        fwrite(b, 1, n / 2 + 3, f); /* half, and a part of a sample */
        fclose(f);
        free(b);
        long long held = decodable(cut);
        if (held <= 0 || held >= N)
            fail_msg("%s: %lld frames decodable", cut, held);
        int rc = run_oscine(out, sizeof out, err, sizeof err, "process", cut, o, NULL);
        if (rc)
            fail_msg("%s: exit %d: %s", cut, rc, err);
        char want[160];
        snprintf(want, sizeof want, "cut.%s' is cut short: its header promises %lld more frames",
                 cases[k].ext, N - held);
        if (!strstr(err, want))
            fail_msg("%s: stderr '%s', want '%s'", cut, err, want);
        SF_INFO si;
        free(read_all(o, &si, 0));
        assert_int_equal(si.frames, held);
        /* the other readers */
        const char *cmds[][4] = {{"info", cut, NULL, NULL}, {"mel", cut, "o.npy", NULL},
                                 {"features", cut, "o.csv", NULL},
                                 {"spectrogram", "o.png", cut, NULL}};
        for (size_t c = 0; c < sizeof cmds / sizeof cmds[0]; c++) {
            char op[256];
            const char *a1 = cmds[c][1], *a2 = cmds[c][2];
            if (a2 && a2[0] == 'o') {
                snprintf(op, sizeof op, "%s/%s", d, a2);
                a2 = op;
            } else if (a1[0] == 'o') {
                snprintf(op, sizeof op, "%s/%s", d, a1);
                a1 = op;
            }
            rc = run_oscine(out, sizeof out, err, sizeof err, cmds[c][0], a1, a2, NULL);
            if (rc || !strstr(err, want))
                fail_msg("%s %s: exit %d, stderr '%s', want '%s'", cmds[c][0], cut, rc, err, want);
        }
        unlink(o);
    }
    /* a FLAC of 4800 frames cut at 83 %: its one 4096-frame block is gone */
    snprintf(full, sizeof full, "%s/short.flac", d);
    make_file(full, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, 4800);
    size_t n;
    uint8_t *b = read_file_bytes(full, &n);
    FILE *f = fopen(full, "wb");
    fwrite(b, 1, n * 83 / 100, f);
    fclose(f);
    free(b);
    int before = dir_count(d);
    expect_fail(d, 1, "short.flac': its header promises 4800 frames and none of them can be "
                "read", "process", full, o, NULL);
    assert_int_equal(dir_count(d), before);
    tmpdir_remove(d);
}

/* Headers that lie: a WAV with sample rate 0 is named so by every reader
 * (libsndfile's words were "Internal error : SF_INFO struct incomplete."); a
 * FLAC claiming 2^36 - 1 or 10^9 frames holds 48000: `mel` (once out of
 * memory) and `spectrogram` (once a PNG 62,500 s long) use what is there and
 * say so, and the PNG is the one of the honest file; a FLAC written without
 * its length (0: unknown, as from a stream) is read whole, with no warning. */
static void test_lying_headers(void **state)
{
    const char *d = tmpdir_make();
    char good[256], bad[256], o[256];
    snprintf(good, sizeof good, "%s/good.wav", d);
    snprintf(bad, sizeof bad, "%s/rate0.wav", d);
    snprintf(o, sizeof o, "%s/o.npy", d);
    make_file(good, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 4800);
    size_t n;
    uint8_t *b = read_file_bytes(good, &n);
    memset(b + 24, 0, 8); /* sample rate and bytes per second */
    FILE *f = fopen(bad, "wb");
    fwrite(b, 1, n, f);
    fclose(f);
    free(b);
    const char *msg = "rate0.wav': its header gives a sample rate of 0 Hz";
    expect_fail(d, 1, msg, "info", bad, NULL);
    expect_fail(d, 1, msg, "process", bad, "x.wav", NULL);
    expect_fail(d, 1, msg, "mel", bad, o, NULL);
    expect_fail(d, 1, msg, "features", bad, "x.csv", NULL);
    expect_fail(d, 1, msg, "spectrogram", "x.png", bad, NULL);
    expect_fail(d, 1, msg, "resynth", bad, "x.wav", NULL);

    char honest[256], d1[256], d2[256];
    snprintf(honest, sizeof honest, "%s/honest.flac", d);
    make_file(honest, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, 16000, 1, 48000);
    snprintf(d1, sizeof d1, "%s/a", d);
    snprintf(d2, sizeof d2, "%s/b", d);
    mkdir(d1, 0755);
    mkdir(d2, 0755);
    const uint64_t claims[] = {((uint64_t)1 << 36) - 1, 1000000000, 0};
    char path[300], png1[300], png2[300];
    snprintf(path, sizeof path, "%s/x.flac", d1);
    flac_with_total(honest, path, 48000);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", "o.png", "x.flac",
                                NULL), 1); /* (in the test's folder: no x.flac) */
    char build[PATH_MAX], repo[PATH_MAX];
    assert_int_equal(build_repo_dirs(build, repo), 0);
    sh_dir_set(d);
    assert_int_equal(sh("cd %s && %s/oscine spectrogram o.png x.flac --width 200 --height 32",
                        d1, build), 0);
    snprintf(png1, sizeof png1, "%s/o.png", d1);
    for (size_t k = 0; k < sizeof claims / sizeof claims[0]; k++) {
        snprintf(path, sizeof path, "%s/x.flac", d2);
        flac_with_total(honest, path, claims[k]);
        char want[128] = "";
        if (claims[k])
            snprintf(want, sizeof want, "x.flac' is cut short: its header promises %llu more "
                     "frames", (unsigned long long)(claims[k] - 48000));
        assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "mel", path, o, NULL), 0);
        assert_true(claims[k] ? strstr(err, want) != NULL : strstr(err, "warning") == NULL);
        npy_array a;
        assert_int_equal(npy_read_f32(o, &a), 0);
        assert_int_equal(a.shape[0], (48000 + 240 + 79) / 80);
        npy_free(&a);
        assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "info", path, NULL), 0);
        assert_non_null(strstr(out, "frames:   48000\n"));
        int rc = sh("cd %s && %s/oscine spectrogram o.png x.flac --width 200 --height 32", d2,
                    build);
        assert_int_equal(rc, 0);
        assert_true(claims[k] ? strstr(sh_out, want) != NULL : strstr(sh_out, "warning") == NULL);
        snprintf(png2, sizeof png2, "%s/o.png", d2);
        size_t n1, n2;
        uint8_t *p1 = read_file_bytes(png1, &n1), *p2 = read_file_bytes(png2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(p1, p2, n1);
        free(p1);
        free(p2);
        assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "process", path,
                                    "/dev/null/x.wav", NULL), 1); /* no crash, named */
    }
    tmpdir_remove(d);
}

/* A FIFO, a terminal-like or other character device, given as an input, a
 * score, a mel (.npy), a --model or to `oscine model`, is refused at once
 * (each used to wait forever for a writer). */
static void test_non_regular_inputs(void **state)
{
    const char *d = tmpdir_make();
    char fifo[256], good[256], build[PATH_MAX], repo[PATH_MAX];
    snprintf(fifo, sizeof fifo, "%s/fifo.wav", d);
    snprintf(good, sizeof good, "%s/good.wav", d);
    assert_int_equal(mkfifo(fifo, 0644), 0);
    make_file(good, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1600);
    assert_int_equal(build_repo_dirs(build, repo), 0);
    sh_dir_set(d);
    const char *cmds[] = {
        "info F",
        "process F D/o.wav",
        "denoise F D/o.wav",
        "mel F D/o.npy",
        "features F D/o.csv",
        "spectrogram D/o.png F",
        "vocode F D/o.wav",
        "synth F D/o.wav",
        "model F",
        "denoise G D/o.wav --model F",
        "resynth G D/o.wav --model F",
        "info /dev/zero",
        "model /dev/zero",
        "vocode /dev/zero D/o.wav",
    };
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        char c[512] = "";
        for (const char *p = cmds[k]; *p; p++) {
            size_t l = strlen(c);
            if (*p == 'F' && (p[1] == ' ' || !p[1]))
                snprintf(c + l, sizeof c - l, "%s", fifo);
            else if (*p == 'G' && p[1] == ' ')
                snprintf(c + l, sizeof c - l, "%s", good);
            else if (*p == 'D' && p[1] == '/')
                snprintf(c + l, sizeof c - l, "%s", d);
            else
                snprintf(c + l, sizeof c - l, "%c", *p);
        }
        int rc = sh("timeout 20 %s/oscine %s", build, c);
        if (rc != 1 || !strstr(sh_out, "not a regular file"))
            fail_msg("oscine %s: exit %d (124: it blocked), output '%s'", c, rc, sh_out);
    }
    assert_int_equal(dir_count(d), 3); /* fifo, good, cmd.log */
    tmpdir_remove(d);
}

/* test_write_failures' tmpfs, unmounted even when the test failed. */
static char small_mount[256];

static int unmount_small(void **state)
{
    if (small_mount[0]) {
        sh("umount %s", small_mount);
        rmdir(small_mount);
        small_mount[0] = 0; /* its folder is left to tmpdir_remove, or to /tmp */
    }
    return 0;
}

/* A write that fails says why: a full disk is "No space left on device"
 * for every output (FLAC said "problem with initialization of the flac
 * decoder", PNG "Write Error"); as root, a 64 KiB tmpfs is mounted for it,
 * else that part is skipped. A file over `ulimit -f` is "File too large"
 * (oscine used to die of SIGXFSZ). No output or temporary is left. */
static void test_write_failures(void **state)
{
    const char *d = tmpdir_make();
    char in[256], mnt[256], build[PATH_MAX], repo[PATH_MAX];
    snprintf(in, sizeof in, "%s/in.wav", d);
    snprintf(mnt, sizeof mnt, "%s/small", d);
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 16000 * 4);
    assert_int_equal(build_repo_dirs(build, repo), 0);
    sh_dir_set(d);
    mkdir(mnt, 0755);
    const char *outs[][2] = {{"process", "o.flac"}, {"process", "o.wav"}, {"mel", "o.npy"},
                             {"features", "o.csv"}, {"spectrogram", "o.png"},
                             {"generate", "g.flac"}, {"vocode", "v.flac"}};
    char npy[256];
    snprintf(npy, sizeof npy, "%s/in.npy", d);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "mel", in, npy, NULL), 0);
    int mounted = geteuid() == 0 && sh("mount -t tmpfs -o size=64k tmpfs %s", mnt) == 0;
    if (mounted)
        snprintf(small_mount, sizeof small_mount, "%s", mnt);
    if (!mounted)
        print_message("SKIP: full disk (needs root and a tmpfs mount): %s", sh_out);
    for (int full = mounted ? 0 : 1; full < 2; full++) {
        if (!full)
            assert_int_equal(sh("dd if=/dev/zero of=%s/fill bs=4k count=64", mnt), 1);
        for (size_t k = 0; k < sizeof outs / sizeof outs[0]; k++) {
            const char *cmd = outs[k][0];
            char target[300];
            snprintf(target, sizeof target, "%s/%s", full ? d : mnt, outs[k][1]);
            const char *lim = full ? "ulimit -f 64 && " : "";
            const char *src = !strcmp(cmd, "vocode") ? npy : in;
            int rc = !strcmp(cmd, "spectrogram")
                         ? sh("%s%s/oscine spectrogram %s %s --width 1500 --height 600", lim,
                              build, target, in)
                     : !strcmp(cmd, "generate")
                         ? sh("%s%s/oscine generate %s --seconds 10 --signal noise", lim, build,
                              target)
                         : sh("%s%s/oscine %s %s %s%s", lim, build, cmd, src, target,
                              !strcmp(cmd, "features") ? " --hop-ms 1"
                              : !strcmp(cmd, "vocode") ? " --rtisi 0,0 --refine 0" : "");
            const char *want = full ? "File too large" : "No space left on device";
            if (rc != 1 || !strstr(sh_out, want) || !strstr(sh_out, target))
                fail_msg("%s to %s: exit %d, '%s' (want '%s')", cmd, target, rc, sh_out, want);
            assert_false(path_exists(target));
        }
        assert_int_equal(dir_count(full ? d : mnt), full ? 4 : 1); /* in, in.npy, small, log */
    }
    unmount_small(NULL);
    tmpdir_remove(d);
}


/* A command whose standard output cannot be written (`> /dev/full`) exits
 * 1 with the reason, where info, model and stages used to exit 0. */
static void test_stdout_failure(void **state)
{
    const char *d = tmpdir_make();
    char in[256], build[PATH_MAX], repo[PATH_MAX];
    snprintf(in, sizeof in, "%s/in.wav", d);
    make_file(in, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1600);
    assert_int_equal(build_repo_dirs(build, repo), 0);
    sh_dir_set(d);
    char model[PATH_MAX + 64];
    snprintf(model, sizeof model, "model %s/tests/fixtures/weights/small.osw", repo);
    char info[300];
    snprintf(info, sizeof info, "info %s", in);
    const char *cmds[] = {info, model, "stages", "help", "help process", "help osc", "--version"};
    for (size_t k = 0; k < sizeof cmds / sizeof cmds[0]; k++) {
        assert_int_equal(sh("%s/oscine %s > /dev/null", build, cmds[k]), 0);
        int rc = sh("%s/oscine %s > /dev/full", build, cmds[k]);
        if (rc != 1 || strcmp(sh_out, "oscine: standard output: No space left on device\n"))
            fail_msg("oscine %s > /dev/full: exit %d, '%s'", cmds[k], rc, sh_out);
    }
    tmpdir_remove(d);
}

/* Exit codes as the README states them: flag values of `run` are usage
 * errors (2), found before any audio device or socket is opened (one line,
 * no audio server chatter); an empty chain or --model is a usage error for
 * every command. */
static void test_flag_exit_codes(void **state)
{
    const char *d = tmpdir_make();
    char good[256], o[256], score[256];
    snprintf(good, sizeof good, "%s/good.wav", d);
    snprintf(o, sizeof o, "%s/o.wav", d);
    snprintf(score, sizeof score, "%s/s.score", d);
    make_file(good, SF_FORMAT_WAV | SF_FORMAT_PCM_16, 16000, 1, 1600);
    FILE *f = fopen(score, "w");
    fputs("0 /synth/note_on 60 0.5\n", f);
    fclose(f);
    expect_fail(d, 2, "unknown stage 'nosuch'", "run", "--chain", "nosuch", NULL);
    expect_fail(d, 2, "--chain '': give at least one stage", "run", "--chain", "", NULL);
    expect_fail(d, 2, "empty stage name", "run", "--chain", "gain,", NULL);
    expect_fail(d, 2, "--preset '': give a preset name or a file", "run", "--preset", "", NULL);
    expect_fail(d, 2, "--osc-host '::1::': not an IP address", "run", "--osc-host", "::1::", NULL);
    expect_fail(d, 2, "--osc-host 'a b'", "run", "--osc-host", "a b", NULL);
    expect_fail(d, 2, "--model ''", "run", "--model", "", NULL);
    expect_fail(d, 2, "--chain '': give at least one stage", "process", good, o, "--chain", "",
                NULL);
    expect_fail(d, 2, "--model needs", "synth", score, o, "--model", "", NULL);
    expect_fail(d, 2, "--model needs", "process", good, o, "--model", "", NULL);
    expect_fail(d, 2, "--model needs", "process", good, o, "--model", "denoise=", NULL);
    expect_fail(d, 2, "--model needs", "denoise", good, o, "--model", "", NULL);
    expect_fail(d, 2, "--model needs", "resynth", good, o, "--model", "", NULL);
    expect_fail(d, 2, "--model needs", "transfer", good, o, "--model", "", NULL);
    expect_fail(d, 2, "--model needs", "vocode", good, o, "--model", "", NULL);
    tmpdir_remove(d);
}

/* A mel in another scale than the vocoder's natural log is refused, naming
 * the scale it looks like (a log10 mel used to be vocoded, without a word,
 * into loud distortion); --mel-scale log10 or db converts it, giving what the
 * natural-log mel gives. (On the real mels of the dev set the rule refuses
 * none and catches every conversion: docs/mel.md.) */
static void test_mel_scales(void **state)
{
    const char *d = tmpdir_make();
    char wav[256], ln[256], other[256], o1[256], o2[256];
    snprintf(wav, sizeof wav, "%s/v.wav", d);
    snprintf(ln, sizeof ln, "%s/ln.npy", d);
    snprintf(other, sizeof other, "%s/other.npy", d);
    snprintf(o1, sizeof o1, "%s/a.wav", d);
    snprintf(o2, sizeof o2, "%s/b.wav", d);
    const char *model = "tests/fixtures/vocoder/small.osw";
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "generate", wav, "--seconds",
                                "0.5", "-q", NULL), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "mel", wav, ln, "-q", NULL), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "vocode", ln, o1, "--model",
                                model, "--bits", "float", "--refine", "0", NULL), 0);
    assert_null(strstr(err, "warning"));
    size_t n1;
    float *y1 = sound_read_mono(o1, 16000, &n1);
    npy_array a;
    assert_int_equal(npy_read_f32(ln, &a), 0);
    const size_t n = (size_t)(a.shape[0] * a.shape[1]);
    float *v = malloc(sizeof(float) * n);
    const struct {
        const char *flag, *named;
        double mul; /* value = mul * ln, or exp for linear */
    } scales[] = {{"log10", "log10", 1 / M_LN10}, {"db", "dB", 20 / M_LN10}, {NULL, "linear (not logarithmic)", 0}};
    for (size_t k = 0; k < sizeof scales / sizeof scales[0]; k++) {
        for (size_t i = 0; i < n; i++)
            v[i] = scales[k].mul ? (float)(a.data[i] * scales[k].mul) : expf(a.data[i]);
        assert_int_equal(npy_write_f32(other, v, 2, a.shape), 0);
        char want[64];
        snprintf(want, sizeof want, "look like a %s mel", scales[k].named);
        expect_fail(d, 1, want, "vocode", other, o2, "--model", model, NULL);
        if (!scales[k].flag)
            continue;
        assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "vocode", other, o2,
                                    "--model", model, "--bits", "float", "--refine", "0",
                                    "--mel-scale", scales[k].flag, NULL), 0);
        size_t n2;
        float *y2 = sound_read_mono(o2, 16000, &n2);
        assert_int_equal(n2, n1);
        double e = err_db(y1, y2, n1);
        print_message("--mel-scale %s: %.1f dB from the natural-log mel's output\n",
                      scales[k].flag, e);
        assert_true(e < -60);
        free(y2);
        unlink(o2);
    }
    /* told it is ln, it is taken as ln (the user knows better than the guess) */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "vocode", other, o2, "--model",
                                model, "--mel-scale", "ln", "-q", NULL), 0);
    unlink(o2);
    expect_fail(d, 2, "--mel-scale 'log2'", "vocode", ln, o2, "--mel-scale", "log2", NULL);
    free(v);
    free(y1);
    npy_free(&a);
    tmpdir_remove(d);
}

static void test_info_help_version(void **state)
{
    const char *d = tmpdir_make();
    char p[256];
    snprintf(p, sizeof p, "%s/x.flac", d);
    make_file(p, SF_FORMAT_FLAC | SF_FORMAT_PCM_24, 44100, 2, 88200);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "info", p, NULL), 0);
    /* the container's short name, whole (libsndfile's long name for FLAC used
     * to be cut off by the 32-byte field) */
    assert_non_null(strstr(out, "format:   FLAC, PCM_24\n"));
    oscine_file_info fi;
    assert_int_equal(oscine_file_info_get(p, &fi), 0);
    assert_string_equal(fi.container, "FLAC");
    snprintf(p, sizeof p, "%s/x.wav", d);
    make_file(p, SF_FORMAT_WAV | SF_FORMAT_FLOAT, 16000, 1, 100);
    assert_int_equal(oscine_file_info_get(p, &fi), 0);
    assert_string_equal(fi.container, "WAV");
    assert_string_equal(fi.samples, "FLOAT");
    snprintf(p, sizeof p, "%s/x.flac", d);
    assert_non_null(strstr(out, "44100 Hz"));
    assert_non_null(strstr(out, "channels: 2"));
    assert_non_null(strstr(out, "2.000 s"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "--version", NULL), 0);
    assert_non_null(strstr(out, OSCINE_VERSION_STRING));
    /* The command runs on the best OpenBLAS kernel set this CPU has: where
     * OpenBLAS loaded an older one it ran itself again with OPENBLAS_CORETYPE
     * set (src/cli/main.c); one the user sets is kept and the better named. */
    char *env = getenv("OPENBLAS_CORETYPE") ? strdup(getenv("OPENBLAS_CORETYPE")) : NULL;
    unsetenv("OPENBLAS_CORETYPE");
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "--version", NULL), 0);
    char core[64] = "";
    const char *k = strstr(out, "OpenBLAS kernels: ");
    assert_non_null(k);
    assert_int_equal(sscanf(k, "OpenBLAS kernels: %63[A-Za-z0-9]", core), 1);
    print_message("oscine --version: OpenBLAS kernels %s (loaded here: %s, CPU level %d)\n", core,
                  nn_blas_corename(), nn_cpu_level());
    assert_null(nn_blas_coretype_for(core, nn_cpu_level()));
    assert_null(strstr(out, "this CPU runs"));
    setenv("OPENBLAS_CORETYPE", "Prescott", 1);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "--version", NULL), 0);
    assert_non_null(strstr(out, "OpenBLAS kernels: Prescott"));
    const char *want = nn_blas_coretype_for("Prescott", nn_cpu_level());
    if (want) {
        char hint[96];
        snprintf(hint, sizeof hint, "this CPU runs %s", want);
        assert_non_null(strstr(out, hint));
    }
    if (env)
        setenv("OPENBLAS_CORETYPE", env, 1);
    else
        unsetenv("OPENBLAS_CORETYPE");
    free(env);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "help", "process", NULL), 0);
    assert_non_null(strstr(out, "--chain"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "stages", NULL), 0);
    assert_non_null(strstr(out, "/gain/db"));
    /* generate writes what it says. */
    snprintf(p, sizeof p, "%s/g.wav", d);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "generate", p, "--signal",
                                "sine", "--seconds", "1.5", "--rate", "22050", "--channels",
                                "3", "--level", "-6", "--bits", "24", NULL), 0);
    SF_INFO info;
    float *y = read_all(p, &info, 0);
    assert_int_equal(info.samplerate, 22050);
    assert_int_equal(info.channels, 3);
    assert_int_equal(info.frames, 33075);
    float peak = 0;
    for (sf_count_t i = 0; i < info.frames * 3; i++)
        peak = fmaxf(peak, fabsf(y[i]));
    assert_float_equal(peak, powf(10, -6 / 20.0f), 1e-3);
    free(y);
    assert_non_null(strstr(err, "wrote"));
    /* -q and --quiet mean the same to every file command, in any position:
     * the summary line goes, the file is still written; the daemon has
     * --log-level instead and rejects -q as an unknown flag (not as a flag
     * missing its value). */
    remove(p);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "generate", "-q", p, "--seconds",
                                "0.5", NULL), 0);
    assert_string_equal(err, "");
    assert_true(path_exists(p));
    char npy[256];
    snprintf(npy, sizeof npy, "%s/g.npy", d);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "mel", p, npy, "--quiet", NULL), 0);
    assert_string_equal(err, "");
    assert_true(path_exists(npy));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "-q", NULL), 2);
    assert_non_null(strstr(err, "unknown flag '-q'"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "run", "--buffer", NULL), 2);
    assert_non_null(strstr(err, "--buffer needs a value"));
    tmpdir_remove(d);
}

/* The uninstalled build finds the models and presets of its source tree from
 * any folder (the folder above build/ has models/), and a copy of the binary
 * with no models/ above it says where it looked. */
static void test_bundled_files_found(void **state)
{
    char build[PATH_MAX], repo[PATH_MAX], tmp[PATH_MAX];
    assert_int_equal(host_test_setup(build, repo, tmp, sizeof tmp), 0);
    const char *env = "env -u OSCINE_MODEL_PATH -u OSCINE_PRESET_PATH -u XDG_CONFIG_HOME";
    assert_int_equal(sh("cd %s && %s/oscine generate in.wav --signal voice-noise --seconds 1",
                        tmp, build), 0);
    assert_int_equal(sh("cd %s && %s HOME=%s %s%s/oscine denoise in.wav out.wav --quiet", tmp,
                        env, tmp, host_env, build), 0);
    assert_true(path_exists(tpath("out.wav")));
    assert_int_equal(sh("cd %s && %s HOME=%s %s%s/oscine mel in.wav in.npy && %s HOME=%s %s%s/oscine "
                        "vocode in.npy voc.wav --quiet", tmp, env, tmp, host_env, build, env, tmp,
                        host_env, build), 0);
    assert_true(path_exists(tpath("voc.wav")));
    /* the preset is found (the run then stops at the missing device) */
    sh("cd %s && %s HOME=%s %s%s/oscine run --preset voice-call --input none --output "
       "no-such-device-here", tmp, env, tmp, host_env, build);
    assert_null(strstr(sh_out, "not found in the preset folders"));
    assert_non_null(strstr(sh_out, "no-such-device-here"));
    /* a copy with no models/ above it: a clear error, no output */
    assert_int_equal(sh("mkdir -p %s/bin && cp %s/oscine %s/bin/", tmp, build, tmp), 0);
    assert_int_equal(sh("cd %s && %s HOME=%s %s%s/bin/oscine denoise in.wav out2.wav --quiet",
                        tmp, env, tmp, host_env, tmp), 1);
    assert_non_null(strstr(sh_out, "model 'denoise-16k.osw' not found in $OSCINE_MODEL_PATH, "
                                   "./models or"));
    assert_false(path_exists(tpath("out2.wav")));
    tmpdir_remove(tmp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formats),
        cmocka_unit_test(test_flac24_bit_identical),
        cmocka_unit_test(test_rate_conversion),
        cmocka_unit_test(test_dither),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_warnings_and_report),
        cmocka_unit_test(test_interrupted),
        cmocka_unit_test(test_output_targets),
        cmocka_unit_test(test_killed_leaves_no_temporary),
        cmocka_unit_test(test_replace_keeps_mode_and_owner),
        cmocka_unit_test(test_large_wav_is_rf64),
        cmocka_unit_test(test_cut_inputs),
        cmocka_unit_test(test_lying_headers),
        cmocka_unit_test(test_non_regular_inputs),
        cmocka_unit_test_teardown(test_write_failures, unmount_small),
        cmocka_unit_test(test_stdout_failure),
        cmocka_unit_test(test_flag_exit_codes),
        cmocka_unit_test(test_mel_scales),
        cmocka_unit_test(test_info_help_version),
        cmocka_unit_test(test_bundled_files_found),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
