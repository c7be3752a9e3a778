/* test_nn.c - the nn layers (src/nn) against PyTorch and against plain C.
 *
 * Golden tests: each tests/fixtures/nn/NAME.osw (tools/make_fixtures.py) holds a
 * layer's weights, its config as metadata, an input and PyTorch's output.
 * Every fixture runs in each kernel mode (our loops, OpenBLAS, automatic)
 * and three ways - the whole sequence in one call, frame by frame, and in
 * chunks of 3 - each followed by drain; each must match PyTorch with a
 * normalised MSE below 1e-10, and the streamed runs must equal the whole run
 * (bit for bit with our loops). The worst error per fixture is printed.
 * Then: larger random shapes against naive C loops (they reach OpenBLAS in
 * automatic mode), argument and weights-file errors, reset, and a check that
 * process, drain and reset never call malloc. Run from the repository root. */
#include "util/util.h"

#include "nn/kernels.h"
#include "nn/nn.h"
#include "nn/weights.h"
#include "oscine.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXDIR "tests/fixtures/nn/"
#define TOL 1e-10

#include "util/count_alloc.h"

/* ------------------------------------------------------------ helpers */

static double nmse_or_inf(const float *ref, const float *got, size_t n)
{
    double e = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)got[i] - ref[i];
        e += d * d;
        r += (double)ref[i] * ref[i];
    }
    if (e == 0)
        return 0;
    return r > 0 ? e / r : INFINITY;
}

static int meta_int(const osw_file *w, const char *key)
{
    const char *v = osw_meta(w, key);
    return v ? atoi(v) : 0;
}

/* A tensor of the fixture, whatever its shape; *count its elements,
 * *frames its first dimension. */
static const float *tensor(const osw_file *w, const char *name, size_t *count, int *frames)
{
    int i = osw_tensor_find(w, name);
    if (i < 0)
        return NULL;
    const char *nm;
    int nd;
    const int64_t *shape;
    assert_int_equal(osw_tensor_info(w, i, &nm, &nd, &shape), 0);
    const float *d;
    assert_int_equal(osw_get_f32(w, name, nd, shape, &d), 0);
    size_t n = 1;
    for (int k = 0; k < nd; k++)
        n *= (size_t)shape[k];
    if (count)
        *count = n;
    if (frames)
        *frames = nd ? (int)shape[0] : 1;
    return d;
}

/* A fixture and one run of its layer: which layer, the input and the
 * expected output. */
typedef struct fx {
    osw_file *w;
    const char *name;
    int T;                   /* input frames */
    const float *x, *xi;     /* input [T][in_frame] (xi: complex) */
    const float *y, *yi;     /* expected [out_frames][out_frame] */
    size_t in_frame, out_frame;
    int out_frames;
} fx;

/* Runs the fixture's layer on its input in calls of `chunk` frames (then
 * drain) and writes the output; returns frames written. */
typedef int (*runner)(const fx *f, int chunk, float *yr, float *yi, size_t cap);

/* ---------------------------------------------------------- runners */

static nn_conv_config conv_cfg(const osw_file *w, int max_frames)
{
    nn_conv_config c = {
        .dims = meta_int(w, "dims"), .in_ch = meta_int(w, "in_ch"),
        .out_ch = meta_int(w, "out_ch"), .groups = meta_int(w, "groups"),
        .freq = meta_int(w, "freq"), .kf = meta_int(w, "kf"), .sf = meta_int(w, "sf"),
        .df = meta_int(w, "df"), .pf_lo = meta_int(w, "pf_lo"), .pf_hi = meta_int(w, "pf_hi"),
        .pad_mode = (nn_pad_mode)meta_int(w, "pad_mode"), .kt = meta_int(w, "kt"),
        .st = meta_int(w, "st"), .dt = meta_int(w, "dt"), .pt_left = meta_int(w, "pt_left"),
        .pt_right = meta_int(w, "pt_right"), .bias = meta_int(w, "bias"),
        .max_frames = max_frames,
    };
    return c;
}

static int run_conv(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    nn_conv_config c = conv_cfg(f->w, chunk);
    nn_conv *l;
    int cplx = f->xi != NULL;
    int e = cplx ? nn_cconv_load(&l, &c, f->w, "layer.conv_re", "layer.conv_im")
                 : nn_conv_load(&l, &c, f->w, "layer");
    if (e) {
        print_error("%s: %s\n", f->name, oscine_last_error());
        return e;
    }
    size_t of = (size_t)c.out_ch * nn_conv_out_freq(l);
    assert_int_equal(of, f->out_frame);
    int got = 0;
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        assert_true((size_t)(got + nn_conv_max_out(l, n)) * of <= cap);
        int m = cplx ? nn_conv_process_c(l, f->x + t * f->in_frame, f->xi + t * f->in_frame, n,
                                         yr + got * of, yi + got * of)
                     : nn_conv_process(l, f->x + t * f->in_frame, n, yr + got * of);
        assert_true(m >= 0);
        got += m;
    }
    assert_true((size_t)(got + nn_conv_max_out(l, c.pt_right)) * of <= cap);
    got += cplx ? nn_conv_drain_c(l, yr + got * of, yi + got * of) : nn_conv_drain(l, yr + got * of);
    nn_conv_destroy(l);
    return got;
}

static int run_convt(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    const osw_file *w = f->w;
    nn_convt_config c = {
        .dims = meta_int(w, "dims"), .in_ch = meta_int(w, "in_ch"),
        .out_ch = meta_int(w, "out_ch"), .groups = meta_int(w, "groups"),
        .freq = meta_int(w, "freq"), .kf = meta_int(w, "kf"), .sf = meta_int(w, "sf"),
        .df = meta_int(w, "df"), .pf = meta_int(w, "pf"), .opf = meta_int(w, "opf"),
        .kt = meta_int(w, "kt"), .st = meta_int(w, "st"), .dt = meta_int(w, "dt"),
        .pt = meta_int(w, "pt"), .opt = meta_int(w, "opt"), .bias = meta_int(w, "bias"),
        .max_frames = chunk,
    };
    nn_convt *l;
    int cplx = f->xi != NULL;
    int e = cplx ? nn_cconvt_load(&l, &c, w, "layer.tconv_re", "layer.tconv_im")
                 : nn_convt_load(&l, &c, w, "layer");
    if (e) {
        print_error("%s: %s\n", f->name, oscine_last_error());
        return e;
    }
    size_t of = (size_t)c.out_ch * nn_convt_out_freq(l);
    assert_int_equal(of, f->out_frame);
    int got = 0;
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        assert_true((size_t)(got + nn_convt_max_out(l, n)) * of <= cap);
        int m = cplx ? nn_convt_process_c(l, f->x + t * f->in_frame, f->xi + t * f->in_frame, n,
                                          yr + got * of, yi + got * of)
                     : nn_convt_process(l, f->x + t * f->in_frame, n, yr + got * of);
        assert_true(m >= 0);
        got += m;
    }
    assert_true((size_t)(got + c.kt * c.dt + c.opt) * of <= cap);
    got += cplx ? nn_convt_drain_c(l, yr + got * of, yi + got * of) : nn_convt_drain(l, yr + got * of);
    nn_convt_destroy(l);
    return got;
}

static int run_linear(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    nn_linear_config c = { .in = meta_int(f->w, "in"), .out = meta_int(f->w, "out"),
                           .bias = meta_int(f->w, "bias"), .max_frames = chunk };
    nn_linear *l;
    if (nn_linear_load(&l, &c, f->w, "layer"))
        return -1;
    assert_true((size_t)f->T * c.out <= cap);
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        assert_int_equal(nn_linear_process(l, f->x + t * f->in_frame, n, yr + (size_t)t * c.out), n);
    }
    nn_linear_destroy(l);
    return f->T;
}

/* A stack of GRU or LSTM layers ("layers" in the metadata). */
static int run_rnn(const fx *f, int chunk, float *yr, float *yi, size_t cap, int lstm)
{
    int layers = meta_int(f->w, "layers"), H = meta_int(f->w, "hidden");
    void *l[4];
    float *buf = calloc((size_t)chunk * H, sizeof(float));
    assert_true(layers >= 1 && layers <= 4 && buf);
    for (int k = 0; k < layers; k++) {
        nn_rnn_config c = { .input = k ? H : meta_int(f->w, "input"), .hidden = H,
                            .bias = meta_int(f->w, "bias"), .layer = k, .max_frames = chunk };
        int e = lstm ? nn_lstm_load((nn_lstm **)&l[k], &c, f->w, "layer")
                     : nn_gru_load((nn_gru **)&l[k], &c, f->w, "layer");
        if (e) {
            print_error("%s: %s\n", f->name, oscine_last_error());
            return e;
        }
    }
    assert_true((size_t)f->T * H <= cap);
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        const float *in = f->x + t * f->in_frame;
        for (int k = 0; k < layers; k++) {
            float *out = k == layers - 1 ? yr + (size_t)t * H : buf;
            int m = lstm ? nn_lstm_process(l[k], in, n, out) : nn_gru_process(l[k], in, n, out);
            assert_int_equal(m, n);
            in = out;
        }
    }
    for (int k = 0; k < layers; k++)
        lstm ? nn_lstm_destroy(l[k]) : nn_gru_destroy(l[k]);
    free(buf);
    return f->T;
}

static int run_gru(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    return run_rnn(f, chunk, yr, yi, cap, 0);
}

static int run_lstm(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    return run_rnn(f, chunk, yr, yi, cap, 1);
}

static int run_fsmn(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    const osw_file *w = f->w;
    nn_fsmn_config c = { .axis = (nn_fsmn_axis)meta_int(w, "axis"), .dim = meta_int(w, "dim"),
                         .hidden = meta_int(w, "hidden"), .lorder = meta_int(w, "lorder"),
                         .rorder = meta_int(w, "rorder"), .dilation = meta_int(w, "dilation"),
                         .seq = meta_int(w, "seq"), .max_frames = chunk };
    nn_fsmn *l;
    int cplx = f->xi != NULL;
    int e = cplx ? nn_cfsmn_load(&l, &c, w, "layer.fsmn_re_L1", "layer.fsmn_im_L1")
                 : nn_fsmn_load(&l, &c, w, "layer");
    if (e) {
        print_error("%s: %s\n", f->name, oscine_last_error());
        return e;
    }
    size_t of = f->out_frame;
    int got = 0;
    assert_true((size_t)(f->T + c.rorder * (c.dilation ? c.dilation : 1)) * of <= cap);
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        int m = cplx ? nn_fsmn_process_c(l, f->x + t * f->in_frame, f->xi + t * f->in_frame, n,
                                         yr + got * of, yi + got * of)
                     : nn_fsmn_process(l, f->x + t * f->in_frame, n, yr + got * of);
        assert_true(m >= 0);
        got += m;
    }
    got += cplx ? nn_fsmn_drain_c(l, yr + got * of, yi + got * of) : nn_fsmn_drain(l, yr + got * of);
    nn_fsmn_destroy(l);
    return got;
}

static int run_layernorm(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    nn_layernorm_config c = { .dim = meta_int(f->w, "dim"),
                              .eps = (float)atof(osw_meta(f->w, "eps")),
                              .affine = meta_int(f->w, "affine") };
    nn_layernorm *l;
    if (nn_layernorm_load(&l, &c, f->w, "layer"))
        return -1;
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        nn_layernorm_process(l, f->x + t * f->in_frame, n, yr + (size_t)t * c.dim);
    }
    nn_layernorm_destroy(l);
    return f->T;
}

/* The denoiser's convention (tools/denoise): complex weights "<layer>.wr",
 * ".wi" and a complex bias ".br", ".bi" on channels stacked [real | imag],
 * run as real layers with nn_complex_block weights. */
static float *block_of(const osw_file *w, const char *re, const char *im, int rows, int cols,
                       int transposed)
{
    size_t n;
    const float *a = tensor(w, re, &n, NULL), *b = tensor(w, im, NULL, NULL);
    assert_true(a && b && n == (size_t)rows * cols);
    float *out = malloc(4 * n * sizeof(float));
    assert_non_null(out);
    nn_complex_block(out, a, b, rows, cols, transposed);
    return out;
}

static float *stack_of(const osw_file *w, const char *re, const char *im, int n)
{
    float *out = malloc(2 * (size_t)n * sizeof(float));
    size_t m;
    const float *a = tensor(w, re, &m, NULL), *b = tensor(w, im, NULL, NULL);
    assert_true(out && a && b && m == (size_t)n);
    memcpy(out, a, n * sizeof(float));
    memcpy(out + n, b, n * sizeof(float));
    return out;
}

static int run_dn_conv(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    nn_conv_config c = conv_cfg(f->w, chunk);
    int cin = meta_int(f->w, "cin"), cout = meta_int(f->w, "cout");
    float *wb = block_of(f->w, "layer.wr", "layer.wi", cout, cin * c.kf * c.kt, 0);
    float *b = stack_of(f->w, "layer.br", "layer.bi", cout);
    nn_conv *l;
    assert_int_equal(nn_conv_create(&l, &c, wb, b), 0);
    free(wb);
    free(b);
    size_t of = (size_t)c.out_ch * nn_conv_out_freq(l);
    assert_int_equal(of, f->out_frame);
    int got = 0;
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        assert_true((size_t)(got + n) * of <= cap);
        got += nn_conv_process(l, f->x + t * f->in_frame, n, yr + got * of);
    }
    nn_conv_destroy(l);
    return got;
}

static int run_dn_convt(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    const osw_file *w = f->w;
    nn_convt_config c = { .dims = 2, .in_ch = meta_int(w, "in_ch"), .out_ch = meta_int(w, "out_ch"),
                          .freq = meta_int(w, "freq"), .kf = meta_int(w, "kf"),
                          .sf = meta_int(w, "sf"), .pf = meta_int(w, "pf"), .kt = meta_int(w, "kt"),
                          .bias = 1, .max_frames = chunk };
    int cin = meta_int(w, "cin"), cout = meta_int(w, "cout");
    float *wb = block_of(w, "layer.wr", "layer.wi", cin, cout * c.kf * c.kt, 1);
    float *b = stack_of(w, "layer.br", "layer.bi", cout);
    nn_convt *l;
    assert_int_equal(nn_convt_create(&l, &c, wb, b), 0);
    free(wb);
    free(b);
    size_t of = (size_t)c.out_ch * nn_convt_out_freq(l);
    assert_int_equal(of, f->out_frame);
    int got = 0;
    /* the denoiser keeps the first T frames: no drain */
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        assert_true((size_t)(got + nn_convt_max_out(l, n)) * of <= cap);
        got += nn_convt_process(l, f->x + t * f->in_frame, n, yr + got * of);
    }
    nn_convt_destroy(l);
    return got;
}

static int run_dn_fsmn(const fx *f, int chunk, float *yr, float *yi, size_t cap)
{
    const osw_file *w = f->w;
    int C = meta_int(w, "c"), H = meta_int(w, "h");
    nn_fsmn_config c = { .axis = (nn_fsmn_axis)meta_int(w, "axis"), .dim = 2 * C, .hidden = 2 * H,
                         .lorder = meta_int(w, "lorder"), .rorder = meta_int(w, "rorder"),
                         .dilation = meta_int(w, "dilation"), .seq = meta_int(w, "seq"),
                         .max_frames = chunk };
    int taps = c.lorder + c.rorder;
    float *w1 = block_of(w, "layer.l1.wr", "layer.l1.wi", H, C, 0);
    float *b1 = stack_of(w, "layer.l1.br", "layer.l1.bi", H);
    float *wp = block_of(w, "layer.l2.wr", "layer.l2.wi", C, H, 0);
    float *wm = stack_of(w, "layer.mem", "layer.mem", C * taps); /* shared by re and im */
    nn_fsmn *l;
    assert_int_equal(nn_fsmn_create(&l, &c, w1, b1, wp, wm), 0);
    free(w1);
    free(b1);
    free(wp);
    free(wm);
    size_t of = f->out_frame;
    int got = 0;
    for (int t = 0; t < f->T; t += chunk) {
        int n = f->T - t < chunk ? f->T - t : chunk;
        assert_true((size_t)(got + n) * of <= cap);
        got += nn_fsmn_process(l, f->x + t * f->in_frame, n, yr + got * of);
    }
    got += nn_fsmn_drain(l, yr + got * of);
    nn_fsmn_destroy(l);
    return got;
}

static const struct {
    const char *type;
    runner run;
} runners[] = {
    { "dn_conv", run_dn_conv }, { "dn_convt", run_dn_convt }, { "dn_fsmn", run_dn_fsmn },
    { "conv", run_conv },   { "cconv", run_conv }, { "convt", run_convt },
    { "cconvt", run_convt }, { "linear", run_linear }, { "gru", run_gru },
    { "lstm", run_lstm },   { "fsmn", run_fsmn },  { "cfsmn", run_fsmn },
    { "layernorm", run_layernorm },
};

/* ------------------------------------------------------ golden tests */

static void golden(void **state)
{
    const char *name = *state;
    char path[256];
    snprintf(path, sizeof path, FIXDIR "%s.osw", name);
    fx f = { .name = name };
    if (osw_open(&f.w, path))
        fail_msg("%s: %s (run `make fixtures`?)", path, oscine_last_error());
    const char *type = osw_meta(f.w, "type");
    assert_non_null(type);
    runner run = NULL;
    for (size_t i = 0; i < sizeof runners / sizeof *runners; i++)
        if (!strcmp(runners[i].type, type))
            run = runners[i].run;
    assert_non_null(run);

    size_t nin, nout;
    f.x = tensor(f.w, "input", &nin, &f.T);
    f.y = tensor(f.w, "output", &nout, &f.out_frames);
    f.xi = tensor(f.w, "input_im", NULL, NULL);
    f.yi = tensor(f.w, "output_im", NULL, NULL);
    assert_non_null(f.x);
    assert_non_null(f.y);
    assert_int_equal(f.T, meta_int(f.w, "frames"));
    f.in_frame = nin / f.T;
    f.out_frame = nout / f.out_frames;

    size_t cap = nout + 64 * f.out_frame;
    float *got = calloc(cap, sizeof(float)), *got_i = calloc(cap, sizeof(float));
    float *whole = calloc(cap, sizeof(float)), *whole_i = calloc(cap, sizeof(float));
    assert_true(got && got_i && whole && whole_i);

    static const nn_kernel_mode modes[] = { NN_KERNEL_OWN, NN_KERNEL_BLAS, NN_KERNEL_AUTO };
    static const char *mode_names[] = { "own", "blas", "auto" };
    double worst = 0;
    for (int mi = 0; mi < 3; mi++) {
        nn_kernel_set(modes[mi]);
        int chunks[3] = { f.T, 1, 3 };
        for (int ci = 0; ci < 3; ci++) {
            float *yr = ci ? got : whole, *yi = ci ? got_i : whole_i;
            int n = run(&f, chunks[ci], yr, yi, cap);
            if (n != f.out_frames)
                fail_msg("%s (%s, chunk %d): %d output frames, PyTorch has %d", name,
                         mode_names[mi], chunks[ci], n, f.out_frames);
            double e = nmse_or_inf(f.y, yr, nout);
            if (f.yi)
                e = fmax(e, nmse_or_inf(f.yi, yi, nout));
            if (!(e < TOL))
                fail_msg("%s (%s, chunk %d): nmse %.3g against PyTorch", name, mode_names[mi],
                         chunks[ci], e);
            worst = fmax(worst, e);
            if (ci == 0)
                continue;
            if (modes[mi] == NN_KERNEL_OWN) {
                if (memcmp(whole, got, nout * sizeof(float)) ||
                    (f.yi && memcmp(whole_i, got_i, nout * sizeof(float))))
                    fail_msg("%s (own, chunk %d): streamed output differs from the whole run",
                             name, chunks[ci]);
            } else {
                double d = fmax(nmse_or_inf(whole, got, nout), f.yi ? nmse_or_inf(whole_i, got_i, nout) : 0);
                if (!(d < 1e-12))
                    fail_msg("%s (%s, chunk %d): streamed differs from whole by nmse %.3g",
                             name, mode_names[mi], chunks[ci], d);
            }
        }
    }
    nn_kernel_set(NN_KERNEL_AUTO);
    print_message("    %-28s worst nmse %.2e (%d -> %d frames)\n", name, worst, f.T,
                  f.out_frames);
    free(got);
    free(got_i);
    free(whole);
    free(whole_i);
    osw_close(f.w);
}

static void golden_activations(void **state)
{
    osw_file *w;
    assert_int_equal(osw_open(&w, FIXDIR "activations.osw"), 0);
    size_t n;
    const float *x = tensor(w, "input", &n, NULL);
    int C = meta_int(w, "channels"), inner = meta_int(w, "inner");
    float *v = malloc(n * sizeof(float));
    float *a1, *ac;
    int64_t s1[1] = { 1 }, sc[1] = { C };
    assert_int_equal(nn_tensor_load(&a1, w, "prelu1.weight", 1, s1), 0);
    assert_int_equal(nn_tensor_load(&ac, w, "prelu_c.weight", 1, sc), 0);
    const char *names[] = { "relu", "leaky_relu", "tanh", "sigmoid", "gelu", "softplus",
                            "softplus_b2_t5", "prelu1", "prelu_2d", "prelu_1d" };
    for (int i = 0; i < 10; i++) {
        memcpy(v, x, n * sizeof(float));
        switch (i) {
        case 0: nn_relu(v, n); break;
        case 1: nn_leaky_relu(v, n, 0.2f); break;
        case 2: nn_tanh(v, n); break;
        case 3: nn_sigmoid(v, n); break;
        case 4: nn_gelu(v, n); break;
        case 5: nn_softplus(v, n, 1.0f, 20.0f); break;
        case 6: nn_softplus(v, n, 2.0f, 5.0f); break;
        case 7: nn_prelu(v, n, C, inner, a1, 1); break;
        case 8: nn_prelu(v, n, C, inner, ac, C); break;
        case 9: nn_prelu(v, n, C, 1, ac, C); break;
        }
        size_t m;
        const float *ref = tensor(w, names[i], &m, NULL);
        assert_int_equal(m, n);
        double e = nmse_or_inf(ref, v, n);
        print_message("    %-28s nmse %.2e\n", names[i], e);
        if (!(e < TOL))
            fail_msg("activation %s: nmse %.3g against PyTorch", names[i], e);
    }
    nn_tensor_free(a1);
    nn_tensor_free(ac);
    free(v);
    osw_close(w);
}

/* GELU takes erf four values at a time where libmvec is there (nn/act.c):
 * every length 0..13 (the scalar tail included), values from -10 to 10 and
 * the extremes, against the formula in double precision. */
static void gelu_lengths(void **state)
{
    float v[13];
    for (int n = 0; n <= 13; n++) {
        for (int i = 0; i < n; i++)
            v[i] = -10.0f + 20.0f * (float)((i * 7 + n * 3) % 13) / 12.0f + 0.01f * (float)n;
        if (n > 2)
            v[1] = 1e-30f, v[2] = -3e38f;
        float x[13];
        memcpy(x, v, sizeof x);
        nn_gelu(v, (size_t)n);
        for (int i = 0; i < n; i++) {
            double want = 0.5 * x[i] * (1.0 + erf(x[i] / sqrt(2.0)));
            double tol = 2e-7 * (fabs(want) > 1 ? fabs(want) : 1);
            if (!(fabs(v[i] - want) <= tol))
                fail_msg("gelu(%g) = %.9g, want %.9g (length %d, index %d)", x[i], v[i], want, n, i);
        }
    }
    float nan[5] = {0.5f, NAN, 0.5f, 0.5f, NAN};
    nn_gelu(nan, 5);
    assert_true(isnan(nan[1]) && isnan(nan[4]) && !isnan(nan[0]) && !isnan(nan[2]));
}

/* ------------------------------------------- against naive C loops */

static float *rand_array(size_t n, uint64_t *seed, float scale)
{
    float *p = malloc(n * sizeof(float));
    assert_non_null(p);
    for (size_t i = 0; i < n; i++)
        p[i] = urand(seed) * scale;
    return p;
}

/* Conv2d (dims 1 when F == 1 and kf == 1) by definition: output frame j of
 * the zero-padded time axis, double accumulation, zero frequency padding. */
static void naive_conv(const nn_conv_config *c, int T, const float *x, const float *w,
                       const float *b, float *y, int Fout)
{
    int cig = c->in_ch / c->groups, cog = c->out_ch / c->groups;
    int nout = (c->pt_left + T + c->pt_right - (c->kt - 1) * c->dt - 1) / c->st + 1;
    for (int j = 0; j < nout; j++)
        for (int o = 0; o < c->out_ch; o++)
            for (int fo = 0; fo < Fout; fo++) {
                int g = o / cog;
                double s = b ? b[o] : 0;
                for (int ci = 0; ci < cig; ci++)
                    for (int kf = 0; kf < c->kf; kf++)
                        for (int kt = 0; kt < c->kt; kt++) {
                            int t = j * c->st + kt * c->dt - c->pt_left;
                            int fi = fo * c->sf + kf * c->df - c->pf_lo;
                            if (t < 0 || t >= T || fi < 0 || fi >= c->freq)
                                continue;
                            s += (double)w[(((size_t)o * cig + ci) * c->kf + kf) * c->kt + kt] *
                                 x[((size_t)t * c->in_ch + g * cig + ci) * c->freq + fi];
                        }
                y[((size_t)j * c->out_ch + o) * Fout + fo] = (float)s;
            }
}

static void check_conv_naive(const nn_conv_config *c, int T, const char *what)
{
    assert_true(c->groups && c->freq && c->kf && c->sf && c->df && c->st && c->dt);
    uint64_t seed = 42;
    int cig = c->in_ch / c->groups;
    size_t wn = (size_t)c->out_ch * cig * c->kf * c->kt;
    float *w = rand_array(wn, &seed, 0.1f), *b = rand_array((size_t)c->out_ch, &seed, 1);
    float *x = rand_array((size_t)T * c->in_ch * c->freq, &seed, 1);
    nn_conv *l;
    assert_int_equal(nn_conv_create(&l, c, w, b), 0);
    int Fout = nn_conv_out_freq(l);
    size_t of = (size_t)c->out_ch * Fout, cap = (size_t)(T + c->pt_right + 1) * of;
    float *ref = calloc(cap, sizeof(float)), *got = calloc(cap, sizeof(float));
    naive_conv(c, T, x, w, b, ref, Fout);
    for (int mode = NN_KERNEL_AUTO; mode <= NN_KERNEL_BLAS; mode++) {
        nn_kernel_set((nn_kernel_mode)mode);
        nn_conv_reset(l);
        int n = 0;
        for (int t = 0; t < T; t += c->max_frames) {
            int k = T - t < c->max_frames ? T - t : c->max_frames;
            n += nn_conv_process(l, x + (size_t)t * c->in_ch * c->freq, k, got + n * of);
        }
        n += nn_conv_drain(l, got + n * of);
        int expect = (c->pt_left + T + c->pt_right - (c->kt - 1) * c->dt - 1) / c->st + 1;
        assert_int_equal(n, expect);
        double e = nmse_or_inf(ref, got, (size_t)n * of);
        print_message("    %-28s mode %d nmse %.2e\n", what, mode, e);
        assert_true(e < TOL);
    }
    nn_kernel_set(NN_KERNEL_AUTO);
    nn_conv_destroy(l);
    free(w);
    free(b);
    free(x);
    free(ref);
    free(got);
}

static void conv_vs_naive(void **state)
{
    /* the denoiser's encoder shape (real part), frame by frame */
    nn_conv_config a = { .dims = 2, .in_ch = 16, .out_ch = 32, .groups = 1, .freq = 40,
                         .kf = 5, .sf = 2, .df = 1, .pf_lo = 2, .pf_hi = 2, .kt = 2, .st = 1,
                         .dt = 1, .pt_left = 1, .bias = 1, .max_frames = 1 };
    check_conv_naive(&a, 6, "conv2d 16->32 F40 (5,2)");
    /* the vocoder's conv1d, 20-frame batches, dilated, looking ahead */
    nn_conv_config b = { .dims = 1, .in_ch = 64, .out_ch = 64, .groups = 1, .freq = 1,
                         .kf = 1, .sf = 1, .df = 1, .kt = 7, .st = 1, .dt = 3, .pt_left = 9,
                         .pt_right = 9, .bias = 1, .max_frames = 20 };
    check_conv_naive(&b, 45, "conv1d 64 k7 d3 same");
    /* grouped conv1d, strided */
    nn_conv_config d = { .dims = 1, .in_ch = 32, .out_ch = 48, .groups = 4, .freq = 1,
                         .kf = 1, .sf = 1, .df = 1, .kt = 4, .st = 2, .dt = 1, .pt_left = 3,
                         .bias = 1, .max_frames = 16 };
    check_conv_naive(&d, 40, "conv1d grouped strided");
    /* depthwise (computed without the gather): the vocoder's ConvNeXt shape,
     * frame by frame, and a 2-D one strided in time and frequency, dilated */
    nn_conv_config e = { .dims = 1, .in_ch = 160, .out_ch = 160, .groups = 160, .freq = 1,
                         .kf = 1, .sf = 1, .df = 1, .kt = 7, .st = 1, .dt = 1, .pt_left = 6,
                         .bias = 1, .max_frames = 1 };
    check_conv_naive(&e, 20, "conv1d depthwise 160 k7 causal");
    nn_conv_config f = { .dims = 2, .in_ch = 6, .out_ch = 6, .groups = 6, .freq = 17,
                         .kf = 3, .sf = 2, .df = 2, .pf_lo = 2, .pf_hi = 1, .kt = 3, .st = 2,
                         .dt = 2, .pt_left = 2, .pt_right = 1, .bias = 1, .max_frames = 5 };
    check_conv_naive(&f, 23, "conv2d depthwise strided dilated");
}

static void gru_vs_naive(void **state)
{
    enum { I = 40, H = 64, T = 30 };
    uint64_t seed = 7;
    float *wih = rand_array(3 * H * I, &seed, 0.2f), *whh = rand_array(3 * H * H, &seed, 0.2f);
    float *bih = rand_array(3 * H, &seed, 0.5f), *bhh = rand_array(3 * H, &seed, 0.5f);
    float *x = rand_array(T * I, &seed, 1);
    double h[H] = { 0 }, ref[T][H];
    for (int t = 0; t < T; t++) {
        double a[3 * H], c[3 * H], hn[H];
        for (int k = 0; k < 3 * H; k++) {
            a[k] = bih[k];
            c[k] = bhh[k];
            for (int i = 0; i < I; i++)
                a[k] += (double)wih[k * I + i] * x[t * I + i];
            for (int i = 0; i < H; i++)
                c[k] += (double)whh[k * H + i] * h[i];
        }
        for (int k = 0; k < H; k++) {
            double r = 1 / (1 + exp(-(a[k] + c[k])));
            double z = 1 / (1 + exp(-(a[H + k] + c[H + k])));
            double n = tanh(a[2 * H + k] + r * c[2 * H + k]);
            hn[k] = (1 - z) * n + z * h[k];
        }
        for (int k = 0; k < H; k++)
            ref[t][k] = h[k] = hn[k];
    }
    float reff[T * H], got[T * H];
    for (int i = 0; i < T * H; i++)
        reff[i] = (float)ref[i / H][i % H];
    for (int mode = NN_KERNEL_AUTO; mode <= NN_KERNEL_BLAS; mode++) {
        nn_kernel_set((nn_kernel_mode)mode);
        nn_rnn_config c = { .input = I, .hidden = H, .bias = 1, .max_frames = T };
        nn_gru *l;
        assert_int_equal(nn_gru_create(&l, &c, wih, whh, bih, bhh), 0);
        assert_int_equal(nn_gru_process(l, x, T, got), T);
        double e = nmse_or_inf(reff, got, T * H);
        print_message("    %-28s mode %d nmse %.2e\n", "gru 40->64", mode, e);
        assert_true(e < TOL);
        nn_gru_destroy(l);
    }
    nn_kernel_set(NN_KERNEL_AUTO);
    free(wih);
    free(whh);
    free(bih);
    free(bhh);
    free(x);
}

static void kernels_vs_naive(void **state)
{
    /* odd sizes around the lane width and the 2 x 4 blocks */
    int sizes[][3] = { { 1, 1, 1 }, { 3, 5, 17 }, { 7, 33, 15 }, { 40, 64, 640 }, { 100, 96, 300 } };
    uint64_t seed = 3;
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++) {
        int M = sizes[s][0], N = sizes[s][1], K = sizes[s][2];
        float *A = rand_array((size_t)M * K, &seed, 1), *B = rand_array((size_t)N * K, &seed, 1);
        float *C = calloc((size_t)M * N, sizeof(float)), *R = calloc((size_t)M * N, sizeof(float));
        for (int mode = NN_KERNEL_OWN; mode <= NN_KERNEL_BLAS; mode++)
            for (int acc = 0; acc < 2; acc++) {
                nn_kernel_set((nn_kernel_mode)mode);
                for (int m = 0; m < M; m++)
                    for (int n = 0; n < N; n++) {
                        double b = 0;
                        for (int k = 0; k < K; k++)
                            b += (double)A[m * K + k] * B[n * K + k];
                        R[m * N + n] = (float)(b + (acc ? 0.5 : 0));
                        C[m * N + n] = acc ? 0.5f : 99.0f;
                    }
                nn_gemm_nt(M, N, K, A, K, B, K, C, N, acc);
                assert_true(nmse_or_inf(R, C, (size_t)M * N) < TOL);
                /* gemv: B's rows against A's first row */
                for (int n = 0; n < N; n++)
                    C[n] = acc ? 0.5f : 99.0f;
                nn_gemv(N, K, B, K, A, C, acc);
                for (int n = 0; n < N; n++)
                    assert_true(fabsf(C[n] - R[n]) <= 1e-4f * (1 + fabsf(R[n])));
            }
        nn_kernel_set(NN_KERNEL_AUTO);
        free(A);
        free(B);
        free(C);
        free(R);
    }
}

/* A complex conv on split planes (nn_cconv, no bias) equals the real conv
 * with nn_complex_block weights on stacked planes; likewise transposed. */
static void complex_block_equals_cconv(void **state)
{
    enum { CI = 3, CO = 2, KF = 3, KT = 2, F = 7, T = 5 };
    uint64_t seed = 9;
    size_t wn = (size_t)CO * CI * KF * KT;
    float *wr = rand_array(wn, &seed, 0.5f), *wi = rand_array(wn, &seed, 0.5f);
    float *xr = rand_array(T * CI * F, &seed, 1), *xi = rand_array(T * CI * F, &seed, 1);
    float blk[4 * CO * CI * KF * KT], xs[T * 2 * CI * F];
    for (int t = 0; t < T; t++) {
        memcpy(xs + (t * 2 + 0) * CI * F, xr + t * CI * F, CI * F * sizeof(float));
        memcpy(xs + (t * 2 + 1) * CI * F, xi + t * CI * F, CI * F * sizeof(float));
    }
    nn_conv_config c = { .dims = 2, .in_ch = CI, .out_ch = CO, .freq = F, .kf = KF, .sf = 2,
                         .pf_lo = 1, .pf_hi = 1, .kt = KT, .pt_left = 1, .max_frames = T };
    nn_conv *a, *b;
    assert_int_equal(nn_cconv_create(&a, &c, wr, NULL, wi, NULL), 0);
    nn_complex_block(blk, wr, wi, CO, CI * KF * KT, 0);
    c.in_ch = 2 * CI;
    c.out_ch = 2 * CO;
    assert_int_equal(nn_conv_create(&b, &c, blk, NULL), 0);
    int Fo = nn_conv_out_freq(a);
    float yr[T * CO * F], yi[T * CO * F], ys[T * 2 * CO * F];
    assert_int_equal(nn_conv_process_c(a, xr, xi, T, yr, yi), T);
    assert_int_equal(nn_conv_process(b, xs, T, ys), T);
    for (int t = 0; t < T; t++) {
        assert_true(nmse_or_inf(yr + t * CO * Fo, ys + (t * 2 + 0) * CO * Fo, CO * Fo) < 1e-12);
        assert_true(nmse_or_inf(yi + t * CO * Fo, ys + (t * 2 + 1) * CO * Fo, CO * Fo) < 1e-12);
    }
    nn_conv_destroy(a);
    nn_conv_destroy(b);

    /* transposed: weights [in][out][kf][kt] */
    nn_convt_config tc = { .dims = 2, .in_ch = CO, .out_ch = CI, .freq = F, .kf = KF, .sf = 2,
                           .pf = 1, .kt = KT, .max_frames = T };
    nn_convt *ta, *tb;
    assert_int_equal(nn_cconvt_create(&ta, &tc, wr, NULL, wi, NULL), 0);
    nn_complex_block(blk, wr, wi, CO, CI * KF * KT, 1);
    tc.in_ch = 2 * CO;
    tc.out_ch = 2 * CI;
    assert_int_equal(nn_convt_create(&tb, &tc, blk, NULL), 0);
    int To = nn_convt_out_freq(ta);
    float *zr = calloc((size_t)T * CI * To, sizeof(float)), *zi = calloc((size_t)T * CI * To, sizeof(float));
    float *zs = calloc((size_t)T * 2 * CI * To, sizeof(float));
    /* input: the first CO channels of xr, xi, stacked (x2) and split (x2r, x2i) */
    float *x2 = calloc((size_t)T * 2 * CO * F, sizeof(float));
    for (int t = 0; t < T; t++) {
        memcpy(x2 + (t * 2 + 0) * CO * F, xr + t * CI * F, CO * F * sizeof(float));
        memcpy(x2 + (t * 2 + 1) * CO * F, xi + t * CI * F, CO * F * sizeof(float));
    }
    float *x2r = calloc((size_t)T * CO * F, sizeof(float)), *x2i = calloc((size_t)T * CO * F, sizeof(float));
    for (int t = 0; t < T; t++) {
        memcpy(x2r + t * CO * F, xr + t * CI * F, CO * F * sizeof(float));
        memcpy(x2i + t * CO * F, xi + t * CI * F, CO * F * sizeof(float));
    }
    assert_int_equal(nn_convt_process_c(ta, x2r, x2i, T, zr, zi), T);
    assert_int_equal(nn_convt_process(tb, x2, T, zs), T);
    for (int t = 0; t < T; t++) {
        assert_true(nmse_or_inf(zr + t * CI * To, zs + (t * 2 + 0) * CI * To, CI * To) < 1e-12);
        assert_true(nmse_or_inf(zi + t * CI * To, zs + (t * 2 + 1) * CI * To, CI * To) < 1e-12);
    }
    nn_convt_destroy(ta);
    nn_convt_destroy(tb);
    free(wr);
    free(wi);
    free(xr);
    free(xi);
    free(zr);
    free(zi);
    free(zs);
    free(x2);
    free(x2r);
    free(x2i);
}

/* ----------------------------------------------------------- errors */

static void bad_configs(void **state)
{
    float w[64] = { 0 };
    nn_conv *l = (nn_conv *)&l;
    nn_conv_config c = { .dims = 2, .in_ch = 3, .out_ch = 4, .groups = 2, .freq = 8, .kf = 3,
                         .kt = 2, .bias = 0 };
    assert_int_equal(nn_conv_create(&l, &c, w, NULL), OSCINE_E_ARG);
    assert_null(l);
    assert_non_null(strstr(oscine_last_error(), "groups"));
    c.groups = 1;
    c.pt_left = 2; /* more than (kt-1)*dt */
    assert_int_equal(nn_conv_create(&l, &c, w, NULL), OSCINE_E_ARG);
    assert_non_null(strstr(oscine_last_error(), "pt_left"));
    c.pt_left = 1;
    c.pad_mode = NN_PAD_REFLECT;
    c.pf_lo = 8;
    assert_int_equal(nn_conv_create(&l, &c, w, NULL), OSCINE_E_ARG);
    c.pad_mode = NN_PAD_ZEROS;
    c.pf_lo = 0;
    c.freq = 2; /* kernel 3 bins wider than 2 */
    assert_int_equal(nn_conv_create(&l, &c, w, NULL), OSCINE_E_ARG);
    c.freq = 8;
    c.in_ch = -1;
    assert_int_equal(nn_conv_create(&l, &c, w, NULL), OSCINE_E_ARG);
    assert_non_null(strstr(oscine_last_error(), "in_ch"));
    c.in_ch = 3;
    assert_int_equal(nn_conv_create(&l, &c, NULL, NULL), OSCINE_E_ARG);

    nn_convt *t;
    nn_convt_config tc = { .dims = 1, .in_ch = 2, .out_ch = 2, .kt = 2, .st = 3 };
    assert_int_equal(nn_convt_create(&t, &tc, w, NULL), OSCINE_E_ARG); /* stride past tail */
    tc.st = 1;
    tc.opt = 1; /* output padding not below stride or dilation */
    assert_int_equal(nn_convt_create(&t, &tc, w, NULL), OSCINE_E_ARG);

    nn_fsmn *f;
    nn_fsmn_config fc = { .axis = NN_FSMN_TIME, .dim = 4, .hidden = 4, .lorder = 0 };
    assert_int_equal(nn_fsmn_create(&f, &fc, w, w, w, w), OSCINE_E_ARG);

    /* process: frame count and real/complex mismatch */
    c = (nn_conv_config){ .dims = 1, .in_ch = 2, .out_ch = 2, .kt = 2, .pt_left = 1,
                          .max_frames = 2 };
    assert_int_equal(nn_conv_create(&l, &c, w, NULL), 0);
    float x[8] = { 0 }, y[8];
    assert_int_equal(nn_conv_process(l, x, 3, y), OSCINE_E_ARG);
    assert_int_equal(nn_conv_process(l, x, 0, y), OSCINE_E_ARG);
    assert_int_equal(nn_conv_process_c(l, x, x, 1, y, y), OSCINE_E_ARG);
    nn_conv_destroy(l);
}

static void bad_weights(void **state)
{
    osw_file *w;
    assert_int_equal(osw_open(&w, FIXDIR "conv2d_frcrn.osw"), 0);
    nn_conv_config c = conv_cfg(w, 1);
    nn_conv *l;
    c.out_ch++; /* the file's weight has one output channel less */
    assert_int_equal(nn_conv_load(&l, &c, w, "layer"), OSCINE_E_W_SHAPE);
    assert_null(l);
    assert_non_null(strstr(oscine_last_error(), "layer.weight"));
    c.out_ch--;
    assert_int_equal(nn_conv_load(&l, &c, w, "nothere"), OSCINE_E_W_MISSING);
    assert_non_null(strstr(oscine_last_error(), "nothere.weight"));
    assert_int_equal(nn_cconv_load(&l, &c, w, "layer", "layer.conv_im"), OSCINE_E_W_MISSING);
    nn_gru *g;
    nn_rnn_config rc = { .input = 3, .hidden = 4, .bias = 1 };
    assert_int_equal(nn_gru_load(&g, &rc, w, "layer"), OSCINE_E_W_MISSING);
    assert_non_null(strstr(oscine_last_error(), "layer.weight_ih_l0"));
    /* the weights are copied: the layer outlives the file */
    assert_int_equal(nn_conv_load(&l, &c, w, "layer"), 0);
    size_t nin;
    int T;
    const float *x = tensor(w, "input", &nin, &T);
    float *xin = malloc(nin * sizeof(float));
    memcpy(xin, x, nin * sizeof(float));
    osw_close(w);
    float y[4 * 8];
    assert_int_equal(nn_conv_process(l, xin, 1, y), 1);
    nn_conv_destroy(l);
    free(xin);
}

static void reset_restarts(void **state)
{
    enum { T = 12 };
    uint64_t seed = 11;
    float *w = rand_array(8 * 4 * 3, &seed, 0.3f), *x = rand_array(T * 4, &seed, 1);
    nn_conv_config c = { .dims = 1, .in_ch = 4, .out_ch = 8, .kt = 3, .dt = 2, .pt_left = 4,
                         .max_frames = T };
    nn_conv *l;
    assert_int_equal(nn_conv_create(&l, &c, w, NULL), 0);
    float a[T * 8], b[T * 8];
    assert_int_equal(nn_conv_process(l, x, T, a), T);
    nn_conv_reset(l);
    assert_int_equal(nn_conv_process(l, x, T, b), T);
    assert_memory_equal(a, b, sizeof a);

    nn_rnn_config rc = { .input = 4, .hidden = 8, .max_frames = T };
    float *wi = rand_array(4 * 8 * 4, &seed, 0.3f), *wh = rand_array(4 * 8 * 8, &seed, 0.3f);
    nn_lstm *m;
    assert_int_equal(nn_lstm_create(&m, &rc, wi, wh, NULL, NULL), 0);
    assert_int_equal(nn_lstm_process(m, x, T, a), T);
    nn_lstm_reset(m);
    assert_int_equal(nn_lstm_process(m, x, T, b), T);
    assert_memory_equal(a, b, sizeof a);
    nn_lstm_destroy(m);
    nn_conv_destroy(l);
    free(w);
    free(x);
    free(wi);
    free(wh);
}

/* Every layer kind, for the no-allocation test. */
typedef struct all_layers {
    nn_conv *c1, *c2;
    nn_convt *t1, *t2;
    nn_linear *li;
    nn_gru *g;
    nn_lstm *ls;
    nn_fsmn *f1, *f2;
    nn_layernorm *ln;
    float *x, *y, *y2;
} all_layers;

enum { NA_T = 16 };

static void *run_all(void *p)
{
    all_layers *a = p;
    float *x = a->x, *y = a->y, *y2 = a->y2;
    for (int rep = 0; rep < 3; rep++) {
        nn_conv_process(a->c1, x, NA_T, y);
        nn_conv_process(a->c1, x, 1, y);
        nn_conv_drain(a->c1, y);
        nn_conv_reset(a->c1);
        nn_conv_process_c(a->c2, x, x, 2, y, y2);
        nn_conv_drain_c(a->c2, y, y2);
        nn_conv_reset(a->c2);
        nn_convt_process_c(a->t1, x, x, 2, y, y2);
        nn_convt_drain_c(a->t1, y, y2);
        nn_convt_reset(a->t1);
        nn_convt_process(a->t2, x, NA_T, y);
        nn_convt_drain(a->t2, y);
        nn_linear_process(a->li, x, NA_T, y);
        nn_linear_process(a->li, x, 1, y);
        nn_gru_process(a->g, x, NA_T, y);
        nn_gru_process(a->g, x, 1, y);
        nn_gru_reset(a->g);
        nn_lstm_process(a->ls, x, NA_T, y);
        nn_lstm_reset(a->ls);
        nn_fsmn_process(a->f1, x, NA_T, y);
        nn_fsmn_process(a->f1, x, 1, y);
        nn_fsmn_drain(a->f1, y);
        nn_fsmn_reset(a->f1);
        nn_fsmn_process_c(a->f2, x, x, 2, y, y2);
        nn_layernorm_process(a->ln, x, NA_T, y);
        nn_gelu(y, 100);
        nn_softplus(y, 100, 1, 20);
    }
    return NULL;
}

/* run_all with the malloc counter on, from its own thread. */
static void *run_all_counted(void *p)
{
    allocations = 0;
    counting = 1;
    run_all(p);
    counting = 0;
    return NULL;
}

/* process, drain and reset of every layer kind take no memory, with our
 * loops and with OpenBLAS (after nn_blas_init in create), on a thread that
 * has never called OpenBLAS before, as an audio thread would be. */
static void no_allocation(void **state)
{
    if (!COUNT_MALLOC)
        skip();
    /* the counter sees malloc, also from inside a shared library */
    allocations = 0;
    counting = 1;
    char *volatile probe = strdup("probe");
    counting = 0;
    free(probe);
    assert_int_equal(allocations, 1);

    uint64_t seed = 5;
    float *w = rand_array(1 << 16, &seed, 0.1f);
    all_layers a = { .x = rand_array(1 << 14, &seed, 1), .y = calloc(1 << 16, sizeof(float)),
                     .y2 = calloc(1 << 16, sizeof(float)) };
    nn_conv_config cc1 = { .dims = 1, .in_ch = 32, .out_ch = 32, .kt = 3, .pt_left = 1,
                           .pt_right = 1, .bias = 1, .max_frames = NA_T };
    nn_conv_config cc2 = { .dims = 2, .in_ch = 8, .out_ch = 16, .freq = 20, .kf = 5, .sf = 2,
                           .pf_lo = 2, .pf_hi = 2, .kt = 2, .pt_left = 1, .bias = 1,
                           .max_frames = 2 };
    nn_convt_config tc1 = { .dims = 2, .in_ch = 16, .out_ch = 8, .freq = 10, .kf = 5, .sf = 2,
                            .pf = 2, .opf = 1, .kt = 2, .bias = 1, .max_frames = 2 };
    nn_convt_config tc2 = { .dims = 1, .in_ch = 16, .out_ch = 8, .kt = 4, .st = 2, .pt = 1,
                            .bias = 1, .max_frames = NA_T };
    nn_linear_config lc = { .in = 64, .out = 96, .bias = 1, .max_frames = NA_T };
    nn_rnn_config rc = { .input = 32, .hidden = 48, .bias = 1, .max_frames = NA_T };
    nn_fsmn_config f1c = { .axis = NN_FSMN_TIME, .dim = 32, .hidden = 40, .lorder = 5,
                           .rorder = 2, .max_frames = NA_T };
    nn_fsmn_config f2c = { .axis = NN_FSMN_FREQ, .dim = 8, .hidden = 12, .lorder = 5,
                           .seq = 20, .max_frames = 2 };
    nn_layernorm_config nc = { .dim = 32, .affine = 1 };
    const float *ws[4] = { w, w, w, w };
    for (int mode = NN_KERNEL_AUTO; mode <= NN_KERNEL_BLAS; mode++) {
        nn_kernel_set((nn_kernel_mode)mode);
        assert_int_equal(nn_conv_create(&a.c1, &cc1, w, w), 0);
        assert_int_equal(nn_cconv_create(&a.c2, &cc2, w, w, w, w), 0);
        assert_int_equal(nn_cconvt_create(&a.t1, &tc1, w, w, w, w), 0);
        assert_int_equal(nn_convt_create(&a.t2, &tc2, w, w), 0);
        assert_int_equal(nn_linear_create(&a.li, &lc, w, w), 0);
        assert_int_equal(nn_gru_create(&a.g, &rc, w, w, w, w), 0);
        assert_int_equal(nn_lstm_create(&a.ls, &rc, w, w, w, w), 0);
        assert_int_equal(nn_fsmn_create(&a.f1, &f1c, w, w, w, w), 0);
        assert_int_equal(nn_cfsmn_create(&a.f2, &f2c, ws, ws), 0);
        assert_int_equal(nn_layernorm_create(&a.ln, &nc, w, w), 0);

        /* a fresh thread (the audio thread's first call), then this one */
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, run_all_counted, &a), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        long fresh = allocations;
        run_all_counted(&a);
        if (fresh || allocations)
            fail_msg("kernel mode %d: %ld + %ld allocations in process/drain/reset", mode,
                     fresh, (long)allocations);

        nn_conv_destroy(a.c1);
        nn_conv_destroy(a.c2);
        nn_convt_destroy(a.t1);
        nn_convt_destroy(a.t2);
        nn_linear_destroy(a.li);
        nn_gru_destroy(a.g);
        nn_lstm_destroy(a.ls);
        nn_fsmn_destroy(a.f1);
        nn_fsmn_destroy(a.f2);
        nn_layernorm_destroy(a.ln);
    }
    nn_kernel_set(NN_KERNEL_AUTO);
    free(w);
    free(a.x);
    free(a.y);
    free(a.y2);
}

/* ---------------------------------------------------------------- main */

static const char *const fixtures[] = {
    "conv1d_causal", "conv1d_same_grouped", "conv1d_stride", "conv1d_depthwise",
    "conv1d_wide", "conv1d_bnfold", "conv2d_frcrn", "conv2d_reflect_dil",
    "conv2d_depthwise_replicate", "conv2d_grouped_circular", "cconv2d_frcrn",
    "cconv2d_grouped_lookahead", "cconv1d_causal", "convt1d_stride", "convt1d_grouped_dil",
    "convt2d_frcrn", "convt2d_grouped_stride", "cconvt2d_frcrn", "linear_small",
    "linear_nobias", "gru_small", "gru_two_layers", "gru_nobias", "lstm_small", "fsmn_time",
    "fsmn_time_lookahead", "fsmn_time_dilated", "cfsmn_time", "fsmn_freq", "cfsmn_freq",
    "dn_cconv2d", "dn_cconvt2d", "dn_cfsmn_freq", "dn_cfsmn_time", "layernorm",
};

/* OpenBLAS's kernel set: which OPENBLAS_CORETYPE a CPU of each level gets
 * over each set OpenBLAS may have loaded, and the process's own answer; the
 * AUTO choice follows it (our loops for the products they win when OpenBLAS
 * runs an older set than the CPU's, OpenBLAS for all of them otherwise). */
static void blas_coretype(void **state)
{
    static const struct {
        const char *loaded;
        int level;
        const char *want;
    } cases[] = {
        {"Prescott", 5, "Cooperlake"}, {"Prescott", 4, "SkylakeX"}, {"Prescott", 3, "Haswell"},
        {"Prescott", 1, NULL},         {"Prescott", 0, NULL},        {"Nehalem", 4, "SkylakeX"},
        {"Sandybridge", 3, "Haswell"}, {"Haswell", 5, "Cooperlake"}, {"Haswell", 3, NULL},
        {"Zen", 3, NULL},              {"Zen", 5, "Cooperlake"},     {"SkylakeX", 4, NULL},
        {"SkylakeX", 5, "Cooperlake"}, {"Cooperlake", 5, NULL},      {"SapphireRapids", 5, NULL},
        {"SomethingNew", 5, NULL},     {NULL, 5, NULL},              {"Prescott", 6, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *got = nn_blas_coretype_for(cases[i].loaded, cases[i].level);
        if (cases[i].want)
            assert_non_null(got), assert_string_equal(got, cases[i].want);
        else
            assert_null(got);
    }
    const char *better = nn_blas_better_coretype();
    assert_true(better == nn_blas_coretype_for(nn_blas_corename(), nn_cpu_level()));
    assert_int_equal(nn_blas_is_generic(), better != NULL);
    print_message("OpenBLAS kernels %s, CPU level %d%s%s\n", nn_blas_corename(), nn_cpu_level(),
                  better ? ": older than the CPU's " : "", better ? better : "");
    nn_kernel_set(NN_KERNEL_AUTO);
    /* gemv 160 x 480 and sgemm with inner dimension 480: ours when generic;
     * gemv 16 x 16 and sgemm with inner dimension 40: OpenBLAS's either way */
    assert_int_equal(nn_kernel_use_blas_gemv(160, 480), !better);
    assert_int_equal(nn_kernel_use_blas(8, 160, 480), !better);
    assert_int_equal(nn_kernel_use_blas_gemv(16, 16), 1);
    assert_int_equal(nn_kernel_use_blas(10, 8, 40), 1);
    nn_kernel_set(NN_KERNEL_OWN);
    assert_int_equal(nn_kernel_use_blas(8, 160, 480), 0);
    nn_kernel_set(NN_KERNEL_BLAS);
    assert_int_equal(nn_kernel_use_blas_gemv(160, 480), 1);
    nn_kernel_set(NN_KERNEL_AUTO);
}

#define NFIX (sizeof fixtures / sizeof *fixtures)

int main(void)
{
    static const struct CMUnitTest more[] = {
        cmocka_unit_test(golden_activations), cmocka_unit_test(gelu_lengths),
        cmocka_unit_test(kernels_vs_naive),
        cmocka_unit_test(conv_vs_naive),      cmocka_unit_test(gru_vs_naive),
        cmocka_unit_test(complex_block_equals_cconv),
        cmocka_unit_test(bad_configs),        cmocka_unit_test(bad_weights),
        cmocka_unit_test(reset_restarts),     cmocka_unit_test(no_allocation),
        cmocka_unit_test(blas_coretype),
    };
    struct CMUnitTest tests[NFIX + sizeof more / sizeof *more];
    size_t n = 0;
    for (size_t i = 0; i < NFIX; i++) {
        struct CMUnitTest t = { fixtures[i], golden, NULL, NULL, (void *)fixtures[i] };
        tests[n++] = t;
    }
    for (size_t i = 0; i < sizeof more / sizeof *more; i++)
        tests[n++] = more[i];
    return _cmocka_run_group_tests("nn", tests, n, NULL, NULL);
}
