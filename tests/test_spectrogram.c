/* test_spectrogram.c - `oscine spectrogram`: a valid PNG of the right size,
 * a sine drawn at its frequency, stacked panels on one time axis, and every
 * bad-input case (exit code, message naming the file, nothing left behind). */
#include "util/util.h"

#include <math.h>
#include <png.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char out[8192], err[8192];

/* A sine of freq Hz at amplitude amp, n frames, mono 16-bit WAV. */
static void make_sine(const char *path, int rate, double freq, double amp, sf_count_t n)
{
    SF_INFO info = {.samplerate = rate, .channels = 1, .format = SF_FORMAT_WAV | SF_FORMAT_PCM_16};
    SNDFILE *sf = sf_open(path, SFM_WRITE, &info);
    if (!sf)
        fail_msg("cannot write %s: %s", path, sf_strerror(NULL));
    float *x = malloc(sizeof(float) * (size_t)(n ? n : 1));
    for (sf_count_t i = 0; i < n; i++)
        x[i] = (float)(amp * sin(2 * M_PI * freq * (double)i / rate));
    sf_writef_float(sf, x, n);
    sf_close(sf);
    free(x);
}

/* The PNG's 8-byte signature, then the whole image as 8-bit RGB. */
static unsigned char *read_png(const char *path, unsigned *w, unsigned *h)
{
    unsigned char sig[8];
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fread(sig, 1, 8, f), 8);
    fclose(f);
    assert_int_equal(png_sig_cmp(sig, 0, 8), 0);

    png_image im;
    memset(&im, 0, sizeof im);
    im.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&im, path))
        fail_msg("%s: %s", path, im.message);
    /* What the file itself says, before any conversion. */
    assert_int_equal(im.format, PNG_FORMAT_RGB);
    im.format = PNG_FORMAT_RGB;
    unsigned char *px = malloc(PNG_IMAGE_SIZE(im));
    assert_non_null(px);
    if (!png_image_finish_read(&im, NULL, px, 0, NULL))
        fail_msg("%s: %s", path, im.message);
    *w = im.width;
    *h = im.height;
    return px;
}

static int lum(const unsigned char *px, unsigned w, unsigned row, unsigned col)
{
    const unsigned char *p = px + 3 * ((size_t)row * w + col);
    return p[0] + p[1] + p[2];
}

static int is_grey(const unsigned char *px, unsigned w, unsigned row, unsigned col)
{
    const unsigned char *p = px + 3 * ((size_t)row * w + col);
    return p[0] == 64 && p[1] == 64 && p[2] == 64;
}

static void test_sine_panel(void **state)
{
    const char *d = tmpdir_make();
    char in[256], png[256];
    snprintf(in, sizeof in, "%s/sine.wav", d);
    snprintf(png, sizeof png, "%s/sine.png", d);
    make_sine(in, 16000, 1000, 0.1, 32000);
    int rc = run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, in, "--width",
                        "200", "--height", "100", "--max-hz", "8000", "--no-axes", NULL);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
    unsigned w, h;
    unsigned char *px = read_png(png, &w, &h);
    assert_int_equal(w, 200);
    assert_int_equal(h, 100);
    /* Row r covers [(99 - r) * 80, (100 - r) * 80) Hz: 1000 Hz is row 87. */
    for (unsigned col = 10; col < 190; col += 30) {
        unsigned best = 0;
        for (unsigned r = 1; r < h; r++)
            if (lum(px, w, r, col) > lum(px, w, best, col))
                best = r;
        assert_true(best >= 86 && best <= 88);
        assert_true(lum(px, w, best, col) > 650); /* top of the scale (252, 253, 191) */
        assert_true(lum(px, w, 5, col) < 60);     /* 7.6 kHz: 80 dB down, near black */
    }
    free(px);
    /* Only the PNG is left: no temporary. */
    assert_int_equal(dir_count(d), 2);
    tmpdir_remove(d);
}

static void test_stacked_and_defaults(void **state)
{
    const char *d = tmpdir_make();
    char a[256], b[256], c[256], png[256];
    snprintf(a, sizeof a, "%s/a.wav", d);
    snprintf(b, sizeof b, "%s/b.wav", d);
    snprintf(c, sizeof c, "%s/c.wav", d);
    snprintf(png, sizeof png, "%s/out.PNG", d);
    make_sine(a, 16000, 500, 0.3, 32000);  /* 2 s */
    make_sine(b, 8000, 300, 0.3, 8000);    /* 1 s, Nyquist 4 kHz */
    make_sine(c, 16000, 500, 0.3, 0);      /* empty */
    /* An existing file is replaced. */
    FILE *f = fopen(png, "w");
    fputs("not a png", f);
    fclose(f);
    int rc = run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, a, b, c,
                        "--no-axes", NULL);
    assert_int_equal(rc, 0);
    unsigned w, h;
    unsigned char *px = read_png(png, &w, &h);
    assert_int_equal(w, 1200);
    assert_int_equal(h, 3 * 240 + 2 * 2);
    /* Separator rows between the panels are white. */
    assert_int_equal(lum(px, w, 240, 600), 3 * 255);
    assert_int_equal(lum(px, w, 241, 600), 3 * 255);
    /* Second panel (rows 242..481): 1 s of 2 fills the left half; above its
     * Nyquist (the top half of the panel) and after its end it is grey. */
    assert_true(is_grey(px, w, 242 + 200, 1000));
    assert_true(is_grey(px, w, 242 + 10, 300));
    assert_false(is_grey(px, w, 242 + 200, 300));
    assert_false(is_grey(px, w, 242 + 200, 590));
    assert_true(is_grey(px, w, 242 + 200, 610));
    /* Third panel: empty input, all grey. */
    assert_true(is_grey(px, w, 484 + 120, 0));
    assert_true(is_grey(px, w, 484 + 120, 600));
    free(px);
    assert_int_equal(dir_count(d), 4);
    tmpdir_remove(d);
}

/* Axes (the default): the panels are the same pixels as without them,
 * each under a title strip of 20 rows, inside margins of 40 px left, 12
 * right and 14 below; the left margin carries a tick and a label at every kHz
 * (8 kHz over 240 rows: steps of 1 kHz), the bottom one a tick every 0.5 s
 * (4 s over 1200 px) and nothing else is drawn in the margins' corners. */
static void test_axes(void **state)
{
    const char *d = tmpdir_make();
    char in[256], bare[256], ax[256];
    snprintf(in, sizeof in, "%s/in.wav", d);
    snprintf(bare, sizeof bare, "%s/bare.png", d);
    snprintf(ax, sizeof ax, "%s/axes.png", d);
    make_sine(in, 16000, 1000, 0.3, 64000);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", bare, in, in,
                                "--no-axes", NULL), 0);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", ax, in, in, NULL),
                     0);
    unsigned bw, bh, w, h;
    unsigned char *b = read_png(bare, &bw, &bh);
    unsigned char *px = read_png(ax, &w, &h);
    assert_int_equal(bw, 1200);
    assert_int_equal(bh, 2 * 240 + 2);
    assert_int_equal(w, bw + 40 + 12);
    assert_int_equal(h, 2 * (20 + 240) + 14);
    for (unsigned p = 0; p < 2; p++)
        for (unsigned r = 0; r < 240; r++)
            if (memcmp(b + 3 * (size_t)(p * 242 + r) * bw,
                       px + 3 * ((size_t)(20 + p * 260 + r) * w + 40), 3 * (size_t)bw))
                fail_msg("panel %u row %u differs from the bare image", p, r);
    /* frequency ticks: the 3 px left of the panel at the row of k kHz
     * (row 239 - floor(k * 30)), for k = 0..8, in both panels */
    for (int p = 0; p < 2; p++)
        for (int k = 0; k <= 8; k++) {
            int r = 239 - (int)floor(k * 30.0);
            if (r < 0)
                r = 0;
            unsigned row = 20 + (unsigned)p * 260 + (unsigned)r;
            if (lum(px, w, row, 38) < 600)
                fail_msg("no tick for %d kHz in panel %d (row %u)", k, p, row);
        }
    /* time ticks under the panels: every 0.5 s = 150 px, 0..4 s */
    for (int k = 0; k <= 8; k++) {
        unsigned col = 40 + (unsigned)(k * 150 > 1199 ? 1199 : k * 150);
        if (lum(px, w, 520 + 1, col) < 600)
            fail_msg("no tick at %g s (column %u)", k * 0.5, col);
    }
    /* the margins hold only ink and their own colour; the labels are there:
     * frequency labels left of each panel, time labels below the last */
    unsigned ink = 0, ink_left = 0, ink_below = 0;
    for (unsigned r = 0; r < h; r++)
        for (unsigned c = 0; c < w; c++) {
            if (c >= 40 && c < 40 + bw && ((r >= 20 && r < 260) || (r >= 280 && r < 520)))
                continue;
            int l = lum(px, w, r, c);
            if (l != 3 * 16 && l != 3 * 224)
                fail_msg("margin pixel (%u, %u) has luminance %d", r, c, l);
            ink += l == 3 * 224;
            ink_left += l == 3 * 224 && c < 35 && r >= 20;
            ink_below += l == 3 * 224 && r >= 524;
        }
    assert_true(ink > 400);
    assert_true(ink_left > 150);  /* 18 labels "0".."8" */
    assert_true(ink_below > 100); /* 9 labels "0.0".."4.0" and "s" */
    assert_int_equal(lum(px, w, h - 1, 0), 3 * 16); /* bottom-left corner: empty */
    free(b);
    free(px);
    tmpdir_remove(d);
}

/* The ink of the title strip above panel p (rows 260 p .. 260 p + 19,
 * columns 40 .. 40 + width - 1): a copy, its count and its rightmost
 * column. */
typedef struct strip {
    unsigned char *px;
    unsigned ink;
    int right;
} strip;

static strip title_strip(const unsigned char *px, unsigned w, unsigned width, unsigned p)
{
    strip s = {malloc((size_t)20 * width), 0, -1};
    for (unsigned r = 0; r < 20; r++)
        for (unsigned c = 0; c < width; c++) {
            int l = lum(px, w, 260 * p + r, 40 + c);
            if (l != 3 * 16 && l != 3 * 224)
                fail_msg("title strip %u pixel (%u, %u) has luminance %d", p, r, c, l);
            s.px[r * width + c] = l == 3 * 224;
            s.ink += l == 3 * 224;
            if (l == 3 * 224 && (int)c > s.right)
                s.right = (int)c;
        }
    return s;
}

/* Titles: one per panel, in the strip above it, drawn twice the size of the
 * tick labels (12 px per character); different words draw differently, the
 * same word the same; the default is the file's name; a title wider than
 * the panel is cut to it; --titles needs one per input. */
static void test_titles(void **state)
{
    const char *d = tmpdir_make();
    char a[256], b[256], png[256], png2[256], png3[256], png4[256];
    snprintf(a, sizeof a, "%s/a.wav", d);
    snprintf(b, sizeof b, "%s/b.wav", d);
    snprintf(png, sizeof png, "%s/t.png", d);
    snprintf(png2, sizeof png2, "%s/t2.png", d);
    snprintf(png3, sizeof png3, "%s/t3.png", d);
    snprintf(png4, sizeof png4, "%s/t4.png", d);
    make_sine(a, 16000, 1000, 0.3, 16000);
    make_sine(b, 16000, 1000, 0.3, 16000); /* the same sound: only the titles differ */
    const char *W = "400";
    unsigned w, h;

    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, a, b,
                                "--width", W, "--titles", "input,denoised", NULL), 0);
    unsigned char *px = read_png(png, &w, &h);
    assert_int_equal(w, 400 + 52);
    assert_int_equal(h, 2 * 260 + 14);
    strip in = title_strip(px, w, 400, 0), dn = title_strip(px, w, 400, 1);
    assert_true(in.ink > 100 && dn.ink > 100);
    assert_memory_not_equal(in.px, dn.px, 20 * 400);
    /* "input": 5 characters end at 5 * 12 - 2 = 58 px; "denoised": 8 at 94 */
    assert_true(in.right > 48 && in.right <= 58);
    assert_true(dn.right > 84 && dn.right <= 94);
    free(px);

    /* the same title twice: the same pixels */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png2, a, b,
                                "--width", W, "--titles", "input,input", NULL), 0);
    px = read_png(png2, &w, &h);
    strip in2 = title_strip(px, w, 400, 0), in3 = title_strip(px, w, 400, 1);
    assert_memory_equal(in2.px, in.px, 20 * 400);
    assert_memory_equal(in3.px, in.px, 20 * 400);
    free(px);

    /* default: the files' names, as if given */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png3, a, b,
                                "--width", W, NULL), 0);
    px = read_png(png3, &w, &h);
    strip fa = title_strip(px, w, 400, 0), fb = title_strip(px, w, 400, 1);
    free(px);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png4, a, b,
                                "--width", W, "--titles", "a.wav,b.wav", NULL), 0);
    px = read_png(png4, &w, &h);
    strip ga = title_strip(px, w, 400, 0), gb = title_strip(px, w, 400, 1);
    free(px);
    assert_memory_equal(fa.px, ga.px, 20 * 400);
    assert_memory_equal(fb.px, gb.px, 20 * 400);
    assert_memory_not_equal(fa.px, fb.px, 20 * 400);

    /* a title longer than the panel stays inside it */
    char longt[512];
    memset(longt, 'W', 300);
    strcpy(longt + 300, ",x");
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png4, a, b,
                                "--width", W, "--titles", longt, NULL), 0);
    px = read_png(png4, &w, &h);
    strip lt = title_strip(px, w, 400, 0);
    assert_true(lt.right >= 380 && lt.right < 400);
    free(px);

    /* one title per input, else a usage error and nothing written */
    assert_int_equal(dir_count(d), 6);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, a, b,
                                "--titles", "input", NULL), 2);
    assert_non_null(strstr(err, "--titles"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, a,
                                "--titles", "x,y,z", NULL), 2);
    assert_non_null(strstr(err, "--titles"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, a,
                                "--titles", NULL), 2);
    assert_int_equal(dir_count(d), 6);
    strip *all[] = {&in, &dn, &in2, &in3, &fa, &fb, &ga, &gb, &lt};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        free(all[i]->px);
    tmpdir_remove(d);
}

static void test_errors(void **state)
{
    const char *d = tmpdir_make();
    char in[256], png[256], bad[256], missing[256], nodir[256], jpg[256];
    snprintf(in, sizeof in, "%s/in.wav", d);
    snprintf(png, sizeof png, "%s/out.png", d);
    snprintf(bad, sizeof bad, "%s/bad.wav", d);
    snprintf(missing, sizeof missing, "%s/missing.wav", d);
    snprintf(nodir, sizeof nodir, "%s/no/such/dir/out.png", d);
    snprintf(jpg, sizeof jpg, "%s/out.jpg", d);
    make_sine(in, 16000, 440, 0.1, 1600);
    FILE *f = fopen(bad, "w");
    fputs("this is not audio at all, just text that is long enough to not be a header", f);
    fclose(f);

    /* Usage errors: 2. */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", NULL), 2);
    assert_non_null(strstr(err, "spectrogram"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, NULL), 2);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", jpg, in, NULL), 2);
    assert_non_null(strstr(err, jpg));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, in,
                                "--db-range", "5", NULL), 2);
    assert_non_null(strstr(err, "--db-range"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, in,
                                "--max-hz", "-1", NULL), 2);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, in,
                                "--width", NULL), 2);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, in,
                                "--colour", "red", NULL), 2);
    assert_non_null(strstr(err, "--colour"));

    /* Runtime errors: 1, one line naming the file. */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, in,
                                missing, NULL), 1);
    assert_non_null(strstr(err, missing));
    assert_non_null(strchr(err, '\n'));
    assert_ptr_equal(strchr(err, '\n'), err + strlen(err) - 1);
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, bad, NULL), 1);
    assert_non_null(strstr(err, bad));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", png, d, NULL), 1);
    assert_non_null(strstr(err, "directory"));
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "spectrogram", nodir, in, NULL), 1);
    assert_non_null(strstr(err, nodir));

    /* Nothing was written: only in.wav and bad.wav are there. */
    assert_int_equal(dir_count(d), 2);

    /* Help lists it. */
    assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "help", "spectrogram", NULL), 0);
    assert_non_null(strstr(out, "--db-range"));
    tmpdir_remove(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sine_panel),
        cmocka_unit_test(test_stacked_and_defaults),
        cmocka_unit_test(test_axes),
        cmocka_unit_test(test_titles),
        cmocka_unit_test(test_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
