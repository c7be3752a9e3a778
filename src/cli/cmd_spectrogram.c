/* cmd_spectrogram.c - `oscine spectrogram OUT.png IN [IN2 ...]`: one
 * log-magnitude spectrogram panel per input, stacked top to bottom, as a PNG.
 *
 * Every panel shares one time axis (the longest input fills the width) and
 * one frequency axis (0 .. --max-hz, default the highest Nyquist among the
 * inputs), and one colour scale: the loudest pixel of all panels is the top
 * of the scale and --db-range below it is black, so a denoised file drawn
 * under its noisy input shows what was removed. Time outside an input and
 * frequencies above its Nyquist are drawn grey.
 *
 * The input is read in hops through the project's STFT (periodic Hann window
 * of about 32 ms, a power of two: 512 at 16 kHz, 2048 at 44.1/48 kHz, hop a
 * quarter of it, smaller for short files so every column gets a frame), so
 * memory does not grow with the file's length. Channels are averaged. A
 * pixel holds the largest power of the frames and bins that fall in it.
 * Unless --no-axes, each panel gets a title above it (--titles, else the
 * file's name) and a frequency scale (kHz) on the left, and the last a time
 * scale (seconds) below, drawn with a built-in 5 x 7 pixel font. */
#include "cli.h"

#include "io/audiofile.h"

#include "dsp/stft.h"
#include "oscine.h"

#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <png.h>
#include <sndfile.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_INPUTS 16
#define SEPARATOR 2 /* pixel rows between panels */

static const unsigned char BACKGROUND[3] = {64, 64, 64};
static const unsigned char SEPARATOR_RGB[3] = {255, 255, 255};

/* matplotlib's "magma" colour map (CC0), 17 points from 0 to 1. */
static const unsigned char MAGMA[17][3] = {
    {0, 0, 4},       {10, 8, 34},     {29, 17, 71},    {54, 16, 107},   {81, 18, 124},
    {106, 28, 129},  {131, 38, 129},  {156, 46, 127},  {183, 55, 121},  {208, 65, 111},
    {231, 82, 99},   {245, 107, 92},  {252, 137, 97},  {254, 167, 114}, {254, 196, 136},
    {253, 226, 163}, {252, 253, 191},
};

typedef struct panel {
    const char *path;
    const char *title; /* drawn above the panel: --titles, else the file's name */
    int rate, channels;
    int64_t frames;
    int cols;  /* columns this input's duration covers */
    float *pw; /* (width x height) column-major: largest power, or -1 = no data */
} panel;

static void colour(float v, unsigned char *rgb)
{
    if (!(v > 0)) /* also NaN */
        v = 0;
    if (v > 1)
        v = 1;
    float x = v * 16;
    int i = (int)x;
    if (i > 15)
        i = 15;
    float t = x - (float)i;
    for (int k = 0; k < 3; k++)
        rgb[k] = (unsigned char)lrintf(MAGMA[i][k] + t * (MAGMA[i + 1][k] - MAGMA[i][k]));
}

static int has_png_extension(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    return dot && (!slash || dot > slash) && !strcasecmp(dot + 1, "png");
}

/* Fill p->pw: width x height pixels over 0..tmax seconds and 0..fmax Hz. */
static int analyse(panel *p, int width, int height, double tmax, double fmax)
{
    SF_INFO si;
    memset(&si, 0, sizeof si);
    SNDFILE *sf = sf_open(p->path, SFM_READ, &si);
    if (!sf)
        return cli_fail(EXIT_RUNTIME, "input '%s': %s", p->path, sf_strerror(NULL));

    const int rate = si.samplerate, ch = si.channels;
    int n_fft = 16;
    while (n_fft < 0.032 * rate && n_fft < 65536)
        n_fft *= 2;
    int hop = n_fft / 4;
    if (p->cols > 0 && p->frames / p->cols < hop)
        hop = p->frames / p->cols > 1 ? (int)(p->frames / p->cols) : 1;

    stft *st = NULL;
    stft_config cfg = {.n_fft = n_fft, .win_len = n_fft, .hop = hop, .window = STFT_WIN_HANN};
    int e = stft_create(&st, &cfg);
    if (e) {
        sf_close(sf);
        return cli_fail_lib(EXIT_RUNTIME, e, p->path);
    }
    const int bins = stft_bins(st);
    const float *wa = stft_analysis_window(st);
    double wsum = 0;
    for (int i = 0; i < n_fft; i++)
        wsum += wa[i];
    /* A full-scale sine reads 0 dB. */
    const double norm = 4.0 / (wsum * wsum);

    float *ib = malloc(sizeof(float) * (size_t)hop * (size_t)ch);
    float *mono = malloc(sizeof(float) * (size_t)hop);
    float *spec = malloc(sizeof(float) * 2 * (size_t)bins);
    int *b0 = malloc(sizeof(int) * (size_t)height), *b1 = malloc(sizeof(int) * (size_t)height);
    int *filled = calloc((size_t)width, sizeof(int));
    int ret = EXIT_OK;
    if (!ib || !mono || !spec || !b0 || !b1 || !filled) {
        ret = cli_fail(EXIT_RUNTIME, "spectrogram: out of memory");
        goto done;
    }
    for (size_t i = 0; i < (size_t)width * (size_t)height; i++)
        p->pw[i] = -1;

    /* Row r (0 at the top) covers [lo, hi) Hz; it takes the bins whose centre
     * lies there, or the nearest bin when the rows are finer than the bins. */
    const double binw = (double)rate / n_fft;
    for (int r = 0; r < height; r++) {
        double lo = (height - 1 - r) * fmax / height, hi = (height - r) * fmax / height;
        if (lo >= rate / 2.0) {
            b0[r] = b1[r] = -1;
            continue;
        }
        int a = (int)ceil(lo / binw), b = (int)ceil(hi / binw) - 1;
        if (b < a)
            a = b = (int)lround((lo + hi) / 2 / binw);
        b0[r] = a < bins ? a : bins - 1;
        b1[r] = b < bins ? b : bins - 1;
    }

    int64_t got = 0, fr = 0;
    int eof = 0;
    for (;; fr++) {
        /* The frame ending at sample (fr + 1) * hop is centred half a window
         * earlier; after the end of the file, zero hops until that centre has
         * passed the last sample. */
        int64_t centre = (fr + 1) * (int64_t)hop - n_fft / 2;
        sf_count_t n = 0;
        if (!eof) {
            n = sf_readf_float(sf, ib, hop);
            if (n < hop) {
                eof = 1;
                if (sf_error(sf)) {
                    ret = cli_fail(EXIT_RUNTIME, "input '%s': read failed: %s", p->path,
                                   sf_strerror(sf));
                    goto done;
                }
            }
            got += n;
        } else if (centre >= got) {
            break;
        }
        for (sf_count_t i = 0; i < hop; i++) {
            float v = 0;
            if (i < n) {
                for (int c = 0; c < ch; c++)
                    v += ib[i * ch + c];
                v /= (float)ch;
            }
            mono[i] = v;
        }
        stft_analyze(st, mono, spec);
        if (centre < 0 || (eof && centre >= got))
            continue;
        int col = (int)((double)centre / rate / tmax * width);
        if (col >= width)
            col = width - 1;
        float *px = p->pw + (size_t)col * (size_t)height;
        filled[col] = 1;
        for (int r = 0; r < height; r++) {
            if (b0[r] < 0)
                continue;
            double m = 0;
            for (int b = b0[r]; b <= b1[r]; b++) {
                double re = spec[2 * b], im = spec[2 * b + 1];
                double pw = (re * re + im * im) * norm;
                if (pw > m)
                    m = pw;
            }
            if (m > px[r])
                px[r] = (float)m;
        }
    }
    /* Columns no frame fell in (short inputs): the nearest filled one before,
     * else after. */
    int cols = p->cols < width ? p->cols : width;
    for (int c = 0; c < cols; c++) {
        if (filled[c])
            continue;
        int src = -1;
        for (int d = c - 1; d >= 0 && src < 0; d--)
            if (filled[d])
                src = d;
        for (int d = c + 1; d < cols && src < 0; d++)
            if (filled[d])
                src = d;
        if (src >= 0)
            memcpy(p->pw + (size_t)c * height, p->pw + (size_t)src * height,
                   sizeof(float) * (size_t)height);
    }
    /* A filled column stays marked -1 above Nyquist; a column made from
     * silence holds 0 power, drawn black. */
done:
    free(ib);
    free(mono);
    free(spec);
    free(b0);
    free(b1);
    free(filled);
    stft_destroy(st);
    sf_close(sf);
    return ret;
}

typedef struct png_out {
    char path[4096], tmp[4096];
    FILE *f;
} png_out;

static int png_open_tmp(png_out *o, const char *path)
{
    memset(o, 0, sizeof *o);
    int fd = out_tmp_create(o->tmp, sizeof o->tmp, path);
    if (fd < 0)
        return cli_fail_lib(fd == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, fd, NULL);
    snprintf(o->path, sizeof o->path, "%s", path);
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        int e = errno;
        close(fd);
        out_tmp_discard(o->tmp);
        o->tmp[0] = 0;
        return cli_fail(EXIT_RUNTIME, "output '%s': %s", path, strerror(e));
    }
    return EXIT_OK;
}

static void png_error_fn(png_structp png, png_const_charp msg)
{
    char *why = png_get_error_ptr(png);
    snprintf(why, 256, "%s", msg);
    png_longjmp(png, 1);
}

static void png_warning_fn(png_structp png, png_const_charp msg)
{
    (void)png;
    (void)msg;
}

/* ---- text: a 5 x 7 pixel font of printable ASCII (32 .. 126), one row per
 * byte, bit 4 leftmost; anything else is drawn as '?'. */
static const unsigned char FONT[95][7] = {
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00}, /* space */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x00, 0x04}, /* ! */
    {0x0A, 0x0A, 0x0A, 0x00, 0x00, 0x00, 0x00}, /* " */
    {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}, /* # */
    {0x04, 0x0F, 0x14, 0x0E, 0x05, 0x1E, 0x04}, /* $ */
    {0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03}, /* % */
    {0x0C, 0x12, 0x14, 0x08, 0x15, 0x12, 0x0D}, /* & */
    {0x04, 0x04, 0x08, 0x00, 0x00, 0x00, 0x00}, /* ' */
    {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}, /* ( */
    {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}, /* ) */
    {0x00, 0x04, 0x15, 0x0E, 0x15, 0x04, 0x00}, /* * */
    {0x00, 0x04, 0x04, 0x1F, 0x04, 0x04, 0x00}, /* + */
    {0x00, 0x00, 0x00, 0x00, 0x0C, 0x04, 0x08}, /* , */
    {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}, /* - */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C}, /* . */
    {0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x00}, /* / */
    {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}, /* 0 */
    {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* 1 */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}, /* 2 */
    {0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E}, /* 3 */
    {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}, /* 4 */
    {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}, /* 5 */
    {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}, /* 6 */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}, /* 7 */
    {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}, /* 8 */
    {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}, /* 9 */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00}, /* : */
    {0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x04, 0x08}, /* ; */
    {0x02, 0x04, 0x08, 0x10, 0x08, 0x04, 0x02}, /* < */
    {0x00, 0x00, 0x1F, 0x00, 0x1F, 0x00, 0x00}, /* = */
    {0x08, 0x04, 0x02, 0x01, 0x02, 0x04, 0x08}, /* > */
    {0x0E, 0x11, 0x01, 0x02, 0x04, 0x00, 0x04}, /* ? */
    {0x0E, 0x11, 0x01, 0x0D, 0x15, 0x15, 0x0E}, /* @ */
    {0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11}, /* A */
    {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}, /* B */
    {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}, /* C */
    {0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C}, /* D */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}, /* E */
    {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}, /* F */
    {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}, /* G */
    {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}, /* H */
    {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* I */
    {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}, /* J */
    {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}, /* K */
    {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}, /* L */
    {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}, /* M */
    {0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11}, /* N */
    {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, /* O */
    {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}, /* P */
    {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}, /* Q */
    {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}, /* R */
    {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}, /* S */
    {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, /* T */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}, /* U */
    {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}, /* V */
    {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}, /* W */
    {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}, /* X */
    {0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04}, /* Y */
    {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}, /* Z */
    {0x0E, 0x08, 0x08, 0x08, 0x08, 0x08, 0x0E}, /* [ */
    {0x00, 0x10, 0x08, 0x04, 0x02, 0x01, 0x00}, /* backslash */
    {0x0E, 0x02, 0x02, 0x02, 0x02, 0x02, 0x0E}, /* ] */
    {0x04, 0x0A, 0x11, 0x00, 0x00, 0x00, 0x00}, /* ^ */
    {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x1F}, /* _ */
    {0x08, 0x04, 0x02, 0x00, 0x00, 0x00, 0x00}, /* ` */
    {0x00, 0x00, 0x0E, 0x01, 0x0F, 0x11, 0x0F}, /* a */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x1E}, /* b */
    {0x00, 0x00, 0x0E, 0x10, 0x10, 0x11, 0x0E}, /* c */
    {0x01, 0x01, 0x0D, 0x13, 0x11, 0x11, 0x0F}, /* d */
    {0x00, 0x00, 0x0E, 0x11, 0x1F, 0x10, 0x0E}, /* e */
    {0x06, 0x09, 0x08, 0x1C, 0x08, 0x08, 0x08}, /* f */
    {0x00, 0x0F, 0x11, 0x11, 0x0F, 0x01, 0x0E}, /* g */
    {0x10, 0x10, 0x16, 0x19, 0x11, 0x11, 0x11}, /* h */
    {0x04, 0x00, 0x0C, 0x04, 0x04, 0x04, 0x0E}, /* i */
    {0x02, 0x00, 0x06, 0x02, 0x02, 0x12, 0x0C}, /* j */
    {0x10, 0x10, 0x12, 0x14, 0x18, 0x14, 0x12}, /* k */
    {0x0C, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}, /* l */
    {0x00, 0x00, 0x1A, 0x15, 0x15, 0x11, 0x11}, /* m */
    {0x00, 0x00, 0x16, 0x19, 0x11, 0x11, 0x11}, /* n */
    {0x00, 0x00, 0x0E, 0x11, 0x11, 0x11, 0x0E}, /* o */
    {0x00, 0x00, 0x1E, 0x11, 0x1E, 0x10, 0x10}, /* p */
    {0x00, 0x00, 0x0D, 0x13, 0x0F, 0x01, 0x01}, /* q */
    {0x00, 0x00, 0x16, 0x19, 0x10, 0x10, 0x10}, /* r */
    {0x00, 0x00, 0x0F, 0x10, 0x0E, 0x01, 0x1E}, /* s */
    {0x08, 0x08, 0x1C, 0x08, 0x08, 0x09, 0x06}, /* t */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x13, 0x0D}, /* u */
    {0x00, 0x00, 0x11, 0x11, 0x11, 0x0A, 0x04}, /* v */
    {0x00, 0x00, 0x11, 0x11, 0x15, 0x15, 0x0A}, /* w */
    {0x00, 0x00, 0x11, 0x0A, 0x04, 0x0A, 0x11}, /* x */
    {0x00, 0x00, 0x11, 0x11, 0x0F, 0x01, 0x0E}, /* y */
    {0x00, 0x00, 0x1F, 0x02, 0x04, 0x08, 0x1F}, /* z */
    {0x02, 0x04, 0x04, 0x08, 0x04, 0x04, 0x02}, /* { */
    {0x04, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}, /* | */
    {0x08, 0x04, 0x04, 0x02, 0x04, 0x04, 0x08}, /* } */
    {0x00, 0x00, 0x08, 0x15, 0x02, 0x00, 0x00}, /* ~ */
};
#define GLYPH_W 5
#define GLYPH_H 7
#define ADVANCE 6
#define TITLE_SCALE 2 /* titles at twice the size of the tick labels */

/* Layout with axes: each panel has its title in a strip above it; the
 * frequency labels sit in the left margin, the time labels below the last
 * panel, "kHz" in the left margin of the first title strip, "s" to the right
 * of the time axis. */
enum { AX_LEFT = 40, AX_RIGHT = 12, AX_BOTTOM = 14, TITLE_H = TITLE_SCALE * GLYPH_H + 6 };
static const unsigned char MARGIN_RGB[3] = {16, 16, 16};
static const unsigned char INK_RGB[3] = {224, 224, 224};

typedef struct canvas {
    int w, h;
    unsigned char *px; /* w x h x RGB, row-major */
} canvas;

static void put(canvas *c, int x, int y, const unsigned char rgb[3])
{
    if (x >= 0 && x < c->w && y >= 0 && y < c->h)
        memcpy(c->px + 3 * ((size_t)y * (size_t)c->w + (size_t)x), rgb, 3);
}

static int text_width(const char *t, int scale)
{
    int n = (int)strlen(t);
    return n ? (n * ADVANCE - 1) * scale : 0;
}

/* Draw t with its top-left corner at (x, y), each font pixel a scale x scale
 * square. */
static void text(canvas *c, int x, int y, const char *t, int scale)
{
    for (; *t; t++, x += ADVANCE * scale) {
        unsigned char ch = (unsigned char)*t;
        const unsigned char *rows = FONT[(ch >= 32 && ch < 127 ? ch : '?') - 32];
        for (int r = 0; r < GLYPH_H * scale; r++)
            for (int b = 0; b < GLYPH_W * scale; b++)
                if (rows[r / scale] & (0x10 >> (b / scale)))
                    put(c, x + b, y + r, INK_RGB);
    }
}

/* t shortened to fit max_w pixels at scale: its end replaced by "...". */
static void fit_text(char *dst, size_t cap, const char *t, int max_w, int scale)
{
    long fit = (max_w / scale + 1) / ADVANCE; /* characters that fit */
    size_t n = strlen(t);
    if (fit < 0)
        fit = 0;
    if ((long)n <= fit)
        snprintf(dst, cap, "%s", t);
    else if (fit >= 4)
        snprintf(dst, cap, "%.*s...", (int)(fit - 3), t);
    else
        snprintf(dst, cap, "%.*s", (int)fit, t);
}

/* The tick spacing: the smallest 1, 2 or 5 x 10^k that puts at most
 * max_ticks intervals on span. */
static double nice_step(double span, int max_ticks)
{
    if (max_ticks < 1)
        max_ticks = 1;
    double raw = span / max_ticks, p = pow(10, floor(log10(raw)));
    for (int i = 0; i < 4; i++, p *= 10)
        for (int k = 0; k < 3; k++) {
            double m = (double[]){1, 2, 5}[k] * p;
            if (m >= raw * (1 - 1e-9))
                return m;
        }
    return raw;
}

/* k * step written with as many decimals as step needs ("0.5", "12", "0.02"). */
static void tick_label(char *buf, size_t len, double step, int k)
{
    int dec = 0;
    while (dec < 6 && fabs(step * pow(10, dec) - round(step * pow(10, dec))) > 1e-6)
        dec++;
    snprintf(buf, len, "%.*f", dec, k * step);
}

/* Top row of panel i: without axes the panels are stacked with SEPARATOR
 * white rows between them; with axes each sits under its title strip. */
static int panel_top(int i, int height, int axes)
{
    return axes ? TITLE_H + i * (TITLE_H + height) : i * (height + SEPARATOR);
}

/* The panels (and, with axes, their titles and scales) into c. */
static void draw(canvas *c, const panel *ps, int np, int width, int height, float top_db,
                 float range_db, int axes, double tmax, double fmax)
{
    const int x0 = axes ? AX_LEFT : 0;
    for (size_t i = 0; i < (size_t)c->w * (size_t)c->h; i++)
        memcpy(c->px + 3 * i, axes ? MARGIN_RGB : SEPARATOR_RGB, 3);
    const float floor_db = top_db - range_db;
    for (int i = 0; i < np; i++) {
        const int y0 = panel_top(i, height, axes);
        for (int r = 0; r < height; r++)
            for (int x = 0; x < width; x++) {
                float pw = ps[i].pw[(size_t)x * height + r];
                unsigned char rgb[3];
                if (pw < 0) {
                    memcpy(rgb, BACKGROUND, 3);
                } else {
                    float db = pw > 1e-30f ? 10 * log10f(pw) : -300;
                    colour((db - floor_db) / range_db, rgb);
                }
                put(c, x0 + x, y0 + r, rgb);
            }
    }
    if (!axes)
        return;
    char lab[1024];
    /* titles: left-aligned over each panel, shortened to its width */
    for (int i = 0; i < np; i++) {
        fit_text(lab, sizeof lab, ps[i].title, width, TITLE_SCALE);
        text(c, x0, panel_top(i, height, axes) - TITLE_H + 3, lab, TITLE_SCALE);
    }
    /* frequency: ticks at least ~28 pixels apart, labels in kHz */
    const double fk = fmax / 1000, fstep = nice_step(fk, height / 28);
    text(c, 2, TITLE_H - GLYPH_H - 3, "kHz", 1);
    for (int i = 0; i < np; i++) {
        const int y0 = panel_top(i, height, axes);
        for (int k = 0; k * fstep <= fk * (1 + 1e-9); k++) {
            int r = height - 1 - (int)floor(k * fstep / fk * height);
            if (r < 0)
                r = 0;
            for (int d = 1; d <= 3; d++)
                put(c, x0 - d, y0 + r, INK_RGB);
            tick_label(lab, sizeof lab, fstep, k);
            int ty = y0 + r - GLYPH_H / 2;
            if (ty < y0)
                ty = y0;
            if (ty > y0 + height - GLYPH_H)
                ty = y0 + height - GLYPH_H;
            text(c, x0 - 5 - text_width(lab, 1), ty, lab, 1);
        }
    }
    /* time: ticks at least ~70 pixels apart, labels in seconds */
    const int yb = panel_top(np - 1, height, axes) + height;
    const double tstep = nice_step(tmax, width / 70);
    for (int k = 0; k * tstep <= tmax * (1 + 1e-9); k++) {
        int x = (int)lround(k * tstep / tmax * width);
        if (x > width - 1)
            x = width - 1;
        for (int d = 0; d < 3; d++)
            put(c, x0 + x, yb + d, INK_RGB);
        tick_label(lab, sizeof lab, tstep, k);
        int tx = x0 + x - text_width(lab, 1) / 2;
        if (tx < x0 - 2)
            tx = x0 - 2;
        if (tx + text_width(lab, 1) > x0 + width + 1)
            tx = x0 + width + 1 - text_width(lab, 1);
        text(c, tx, yb + 5, lab, 1);
    }
    text(c, x0 + width + 4, yb + 5, "s", 1);
}

/* Write the drawn image; the caller renames or removes the file. */
static int write_png(png_out *o, const canvas *c, const char *title)
{
    char why[256] = "";
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, why, png_error_fn,
                                              png_warning_fn);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!png || !info) {
        png_destroy_write_struct(&png, NULL);
        return cli_fail(EXIT_RUNTIME, "output '%s': libpng: out of memory", o->path);
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return cli_fail(EXIT_RUNTIME, "output '%s': writing the PNG failed: %s", o->path,
                        why[0] ? why : strerror(errno));
    }
    png_init_io(png, o->f);
    png_set_IHDR(png, info, (png_uint_32)c->w, (png_uint_32)c->h, 8, PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    char software[64];
    snprintf(software, sizeof software, "oscine %s", oscine_version());
    png_text text_chunks[2] = {
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "Software", .text = software},
        {.compression = PNG_TEXT_COMPRESSION_NONE, .key = "Title", .text = (char *)title},
    };
    png_set_text(png, info, text_chunks, 2);
    png_write_info(png, info);
    for (int y = 0; y < c->h; y++)
        png_write_row(png, c->px + 3 * (size_t)y * (size_t)c->w);
    png_write_end(png, info);
    png_destroy_write_struct(&png, &info);
    return EXIT_OK;
}

int cmd_spectrogram(int argc, char **argv)
{
    const char *out = NULL;
    panel ps[MAX_INPUTS];
    int np = 0;
    float max_hz = 0, range = 80;
    long width = 1200, height = 240;
    int axes = 1, have_titles = 0;
    char titles[4096];
    memset(ps, 0, sizeof ps);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        int bad = 0;
        if (!strcmp(a, "--max-hz") && v) {
            bad = cli_parse_float(v, &max_hz) || max_hz <= 0 || max_hz > 1e6f;
            i++;
        } else if (!strcmp(a, "--db-range") && v) {
            bad = cli_parse_float(v, &range) || range < 10 || range > 200;
            i++;
        } else if (!strcmp(a, "--width") && v) {
            bad = cli_parse_int(v, 16, 8192, &width);
            i++;
        } else if (!strcmp(a, "--height") && v) {
            bad = cli_parse_int(v, 16, 2048, &height);
            i++;
        } else if (!strcmp(a, "--no-axes")) {
            axes = 0;
        } else if (!strcmp(a, "--titles") && v) {
            if (strlen(v) >= sizeof titles)
                return cli_fail(EXIT_USAGE, "spectrogram: --titles: longer than %zu characters",
                                sizeof titles - 1);
            snprintf(titles, sizeof titles, "%s", v);
            have_titles = 1;
            i++;
        } else if (a[0] == '-' && a[1]) {
            return cli_fail(EXIT_USAGE, "spectrogram: unknown flag or missing value '%s'", a);
        } else if (!out) {
            out = a;
        } else if (np == MAX_INPUTS) {
            return cli_fail(EXIT_USAGE, "spectrogram: at most %d inputs", MAX_INPUTS);
        } else {
            ps[np++].path = a;
        }
        if (bad)
            return cli_fail(EXIT_USAGE, "spectrogram: bad value for %s: '%s' (%s)", a, v,
                            !strcmp(a, "--max-hz")     ? "Hz above 0"
                            : !strcmp(a, "--db-range") ? "10..200 dB"
                            : !strcmp(a, "--width")    ? "16..8192 pixels"
                                                       : "16..2048 pixels per panel");
    }
    if (!out || !np)
        return cli_fail(EXIT_USAGE, "spectrogram: need OUT.png and at least one IN (see "
                        "'oscine help spectrogram')");
    if (!has_png_extension(out))
        return cli_fail(EXIT_USAGE, "output '%s': oscine spectrogram writes PNG; name it .png",
                        out);
    /* Titles: --titles splits at commas, one per input; else the file names. */
    for (int i = 0; i < np; i++) {
        const char *slash = strrchr(ps[i].path, '/');
        ps[i].title = slash && slash[1] ? slash + 1 : ps[i].path;
    }
    if (have_titles) {
        int nt = 0;
        for (char *t = titles, *comma;; t = comma + 1) {
            comma = strchr(t, ',');
            if (comma)
                *comma = 0;
            if (nt < np)
                ps[nt].title = t;
            nt++;
            if (!comma)
                break;
        }
        if (nt != np)
            return cli_fail(EXIT_USAGE, "spectrogram: --titles has %d title%s for %d input%s "
                            "(one per input, separated by commas)", nt, nt == 1 ? "" : "s", np,
                            np == 1 ? "" : "s");
    }

    /* Check the output and every input before writing anything. */
    char out_real[4096];
    for (int i = 0; i < np; i++) {
        int te = out_target_check(ps[i].path, out, out_real, sizeof out_real);
        if (te)
            return cli_fail_lib(te == OSCINE_E_ARG ? EXIT_USAGE : EXIT_RUNTIME, te, NULL);
    }
    double tmax = 0, nyq = 0;
    for (int i = 0; i < np; i++) {
        oscine_file_info fi;
        int e = oscine_file_info_get(ps[i].path, &fi);
        if (e)
            return cli_fail_lib(EXIT_RUNTIME, e, NULL);
        ps[i].rate = fi.sample_rate;
        ps[i].channels = fi.channels;
        ps[i].frames = fi.frames > 0 ? fi.frames : 0;
        if (fi.sample_rate <= 0)
            return cli_fail(EXIT_RUNTIME, "input '%s': no sample rate", ps[i].path);
        double s = (double)ps[i].frames / fi.sample_rate;
        if (s > tmax)
            tmax = s;
        if (fi.sample_rate / 2.0 > nyq)
            nyq = fi.sample_rate / 2.0;
    }
    if (tmax <= 0)
        tmax = 1; /* all empty: grey panels */
    double fmax = max_hz > 0 ? max_hz : nyq;

    int ret = EXIT_OK;
    for (int i = 0; i < np && !ret; i++) {
        double s = (double)ps[i].frames / ps[i].rate;
        ps[i].cols = ps[i].frames > 0 ? (int)ceil(s / tmax * (double)width - 1e-9) : 0;
        if (ps[i].frames > 0 && ps[i].cols < 1)
            ps[i].cols = 1;
        ps[i].pw = malloc(sizeof(float) * (size_t)width * (size_t)height);
        if (!ps[i].pw)
            ret = cli_fail(EXIT_RUNTIME, "spectrogram: out of memory");
        else
            ret = analyse(&ps[i], (int)width, (int)height, tmax, fmax);
    }

    if (!ret) {
        float top = -300;
        for (int i = 0; i < np; i++)
            for (size_t k = 0; k < (size_t)width * (size_t)height; k++) {
                float pw = ps[i].pw[k];
                if (pw > 1e-30f && 10 * log10f(pw) > top)
                    top = 10 * log10f(pw);
            }
        char title[1024];
        size_t n = 0;
        title[0] = 0;
        for (int i = 0; i < np && n < sizeof title; i++)
            n += (size_t)snprintf(title + n, sizeof title - n, "%s%s", i ? " | " : "",
                                  ps[i].title);
        canvas cv = {.w = (int)width + (axes ? AX_LEFT + AX_RIGHT : 0),
                     .h = axes ? panel_top(np, (int)height, axes) - TITLE_H + AX_BOTTOM
                               : panel_top(np, (int)height, axes) - SEPARATOR};
        cv.px = malloc((size_t)cv.w * (size_t)cv.h * 3);
        png_out o;
        ret = cv.px ? png_open_tmp(&o, out_real)
                    : cli_fail(EXIT_RUNTIME, "spectrogram: out of memory");
        if (!ret) {
            draw(&cv, ps, np, (int)width, (int)height, top, range, axes, tmax, fmax);
            ret = write_png(&o, &cv, title);
            if (!ret && (fflush(o.f) || fsync(fileno(o.f))))
                ret = cli_fail(EXIT_RUNTIME, "output '%s': %s", out, strerror(errno));
            if (fclose(o.f) && !ret)
                ret = cli_fail(EXIT_RUNTIME, "output '%s': %s", out, strerror(errno));
            int re;
            if (ret)
                out_tmp_discard(o.tmp);
            else if ((re = out_tmp_commit(o.tmp, out_real)))
                ret = cli_fail(EXIT_RUNTIME, "output '%s': cannot rename the finished file "
                               "into place: %s", out, strerror(re));
        }
        free(cv.px);
    }
    for (int i = 0; i < np; i++)
        free(ps[i].pw);
    return ret;
}
