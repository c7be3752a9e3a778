/* rnn.c - one layer of torch.nn.GRU / torch.nn.LSTM, one step per frame.
 *
 * The input projections of all frames of a call are one frames x weights
 * product; the recurrent product is one matrix-vector product per frame
 * (it depends on the previous frame's state, so it cannot be batched).
 * Gate order and arithmetic follow PyTorch's CPU cells (ATen RNN.cpp):
 * GRU h' = (h - n) * z + n, LSTM c' = f*c + i*g, h' = o*tanh(c').
 * Weights are copied at create. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/nn.h"

typedef struct rnn {
    nn_rnn_config c;
    int gates;     /* 3 GRU, 4 LSTM */
    float *wih;    /* [gates*H][I] */
    float *whh;    /* [gates*H][H] */
    float *bih;    /* [gates*H] (zeros without bias) */
    float *bhh;    /* [gates*H] */
    float *gi;     /* [max_frames][gates*H] input projections */
    float *gh;     /* [gates*H] recurrent projection */
    float *h, *cell; /* [H] state (cell: LSTM only) */
} rnn;

struct nn_gru {
    rnn r;
};
struct nn_lstm {
    rnn r;
};

static inline float sigm(float x)
{
    return 1.0f / (1.0f + expf(-x));
}

static void rnn_free(rnn *r)
{
    nn_ffree(r->wih);
    nn_ffree(r->whh);
    nn_ffree(r->bih);
    nn_ffree(r->bhh);
    nn_ffree(r->gi);
    nn_ffree(r->gh);
    nn_ffree(r->h);
    nn_ffree(r->cell);
}

static int rnn_init(rnn *r, const nn_rnn_config *cfg, int gates, const float *w_ih,
                    const float *w_hh, const float *b_ih, const float *b_hh)
{
    const char *what = gates == 3 ? "gru" : "lstm";
    nn_rnn_config c = *cfg;
    if (!c.max_frames)
        c.max_frames = 1;
    int e;
    if ((e = nn_check_dim(what, "input", c.input, 1)) || (e = nn_check_dim(what, "hidden", c.hidden, 1)) ||
        (e = nn_check_dim(what, "max_frames", c.max_frames, 1)) ||
        (e = nn_check_dim(what, "layer", c.layer, 0)))
        return e;
    if (!w_ih || !w_hh || (c.bias && (!b_ih || !b_hh)))
        return err_set(OSCINE_E_ARG, "%s: weight or bias array is NULL", what);
    size_t G = (size_t)gates * c.hidden, ni, nh, ng;
    if (nn_mul_size(G, (size_t)c.input, &ni) || nn_mul_size(G, (size_t)c.hidden, &nh) ||
        nn_mul_size(G, (size_t)c.max_frames, &ng))
        return err_set(OSCINE_E_ARG, "%s: sizes overflow", what);
    memset(r, 0, sizeof *r);
    r->c = c;
    r->gates = gates;
    r->wih = nn_falloc(ni);
    r->whh = nn_falloc(nh);
    r->bih = nn_falloc(G);
    r->bhh = nn_falloc(G);
    r->gi = nn_falloc(ng);
    r->gh = nn_falloc(G);
    r->h = nn_falloc((size_t)c.hidden);
    if (gates == 4)
        r->cell = nn_falloc((size_t)c.hidden);
    if (!r->wih || !r->whh || !r->bih || !r->bhh || !r->gi || !r->gh || !r->h ||
        (gates == 4 && !r->cell)) {
        rnn_free(r);
        return err_set(OSCINE_E_NOMEM, "%s %d -> %d", what, c.input, c.hidden);
    }
    memcpy(r->wih, w_ih, ni * sizeof(float));
    memcpy(r->whh, w_hh, nh * sizeof(float));
    if (c.bias) {
        memcpy(r->bih, b_ih, G * sizeof(float));
        memcpy(r->bhh, b_hh, G * sizeof(float));
    }
    nn_blas_init();
    return 0;
}

static int rnn_fetch(const nn_rnn_config *c, int gates, const osw_file *w, const char *prefix,
                     const float **wih, const float **whh, const float **bih,
                     const float **bhh)
{
    char n[4][32];
    snprintf(n[0], sizeof n[0], "weight_ih_l%d", c->layer);
    snprintf(n[1], sizeof n[1], "weight_hh_l%d", c->layer);
    snprintf(n[2], sizeof n[2], "bias_ih_l%d", c->layer);
    snprintf(n[3], sizeof n[3], "bias_hh_l%d", c->layer);
    int64_t G = (int64_t)gates * c->hidden;
    int64_t si[2] = { G, c->input }, sh[2] = { G, c->hidden }, sb[1] = { G };
    *bih = *bhh = NULL;
    int e = nn_fetch(w, prefix, n[0], 2, si, wih);
    if (!e)
        e = nn_fetch(w, prefix, n[1], 2, sh, whh);
    if (!e && c->bias)
        e = nn_fetch(w, prefix, n[2], 1, sb, bih);
    if (!e && c->bias)
        e = nn_fetch(w, prefix, n[3], 1, sb, bhh);
    return e;
}

/* gi = x W_ih^T + b_ih for n frames. */
static int rnn_inputs(rnn *r, const float *x, int n)
{
    int G = r->gates * r->c.hidden, I = r->c.input;
    if (n < 1 || n > r->c.max_frames)
        return err_set(OSCINE_E_ARG, "rnn: %d frames (1..%d)", n, r->c.max_frames);
    if (n == 1)
        nn_gemv(G, I, r->wih, I, x, r->gi, 0);
    else
        nn_gemm_nt(n, G, I, x, I, r->wih, I, r->gi, G, 0);
    for (int t = 0; t < n; t++) {
        float *restrict g = r->gi + (size_t)t * G;
        for (int k = 0; k < G; k++)
            g[k] += r->bih[k];
    }
    return 0;
}

/* gh = W_hh h + b_hh */
static void rnn_recur(rnn *r)
{
    int G = r->gates * r->c.hidden, H = r->c.hidden;
    nn_gemv(G, H, r->whh, H, r->h, r->gh, 0);
    for (int k = 0; k < G; k++)
        r->gh[k] += r->bhh[k];
}

/* ---------------------------------------------------------------- GRU */

int nn_gru_create(nn_gru **out, const nn_rnn_config *cfg, const float *w_ih,
                  const float *w_hh, const float *b_ih, const float *b_hh)
{
    *out = NULL;
    nn_gru *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(OSCINE_E_NOMEM, "gru");
    int e = rnn_init(&l->r, cfg, 3, w_ih, w_hh, b_ih, b_hh);
    if (e) {
        free(l);
        return e;
    }
    *out = l;
    return 0;
}

int nn_gru_load(nn_gru **out, const nn_rnn_config *cfg, const osw_file *w, const char *prefix)
{
    const float *a, *b, *c, *d;
    *out = NULL;
    int e = rnn_fetch(cfg, 3, w, prefix, &a, &b, &c, &d);
    return e ? e : nn_gru_create(out, cfg, a, b, c, d);
}

int nn_gru_process(nn_gru *l, const float *x, int n, float *y)
{
    rnn *r = &l->r;
    int H = r->c.hidden, e = rnn_inputs(r, x, n);
    if (e)
        return e;
    for (int t = 0; t < n; t++) {
        const float *gi = r->gi + (size_t)t * 3 * H;
        float *gh = r->gh, *h = r->h;
        rnn_recur(r);
        for (int k = 0; k < H; k++) {
            float rg = sigm(gi[k] + gh[k]);
            float z = sigm(gi[H + k] + gh[H + k]);
            float nv = tanhf(gi[2 * H + k] + rg * gh[2 * H + k]);
            h[k] = (h[k] - nv) * z + nv;
        }
        memcpy(y + (size_t)t * H, h, (size_t)H * sizeof(float));
    }
    return n;
}

void nn_gru_reset(nn_gru *l)
{
    memset(l->r.h, 0, (size_t)l->r.c.hidden * sizeof(float));
}

void nn_gru_destroy(nn_gru *l)
{
    if (!l)
        return;
    rnn_free(&l->r);
    free(l);
}

/* --------------------------------------------------------------- LSTM */

int nn_lstm_create(nn_lstm **out, const nn_rnn_config *cfg, const float *w_ih,
                   const float *w_hh, const float *b_ih, const float *b_hh)
{
    *out = NULL;
    nn_lstm *l = calloc(1, sizeof *l);
    if (!l)
        return err_set(OSCINE_E_NOMEM, "lstm");
    int e = rnn_init(&l->r, cfg, 4, w_ih, w_hh, b_ih, b_hh);
    if (e) {
        free(l);
        return e;
    }
    *out = l;
    return 0;
}

int nn_lstm_load(nn_lstm **out, const nn_rnn_config *cfg, const osw_file *w,
                 const char *prefix)
{
    const float *a, *b, *c, *d;
    *out = NULL;
    int e = rnn_fetch(cfg, 4, w, prefix, &a, &b, &c, &d);
    return e ? e : nn_lstm_create(out, cfg, a, b, c, d);
}

int nn_lstm_process(nn_lstm *l, const float *x, int n, float *y)
{
    rnn *r = &l->r;
    int H = r->c.hidden, e = rnn_inputs(r, x, n);
    if (e)
        return e;
    for (int t = 0; t < n; t++) {
        const float *gi = r->gi + (size_t)t * 4 * H;
        float *gh = r->gh, *h = r->h, *cs = r->cell;
        rnn_recur(r);
        for (int k = 0; k < H; k++) {
            float ig = sigm(gi[k] + gh[k]);
            float fg = sigm(gi[H + k] + gh[H + k]);
            float gg = tanhf(gi[2 * H + k] + gh[2 * H + k]);
            float og = sigm(gi[3 * H + k] + gh[3 * H + k]);
            cs[k] = fg * cs[k] + ig * gg;
            h[k] = og * tanhf(cs[k]);
        }
        memcpy(y + (size_t)t * H, h, (size_t)H * sizeof(float));
    }
    return n;
}

void nn_lstm_reset(nn_lstm *l)
{
    memset(l->r.h, 0, (size_t)l->r.c.hidden * sizeof(float));
    memset(l->r.cell, 0, (size_t)l->r.c.hidden * sizeof(float));
}

void nn_lstm_destroy(nn_lstm *l)
{
    if (!l)
        return;
    rnn_free(&l->r);
    free(l);
}
