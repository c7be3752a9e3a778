/* nn.h - the neural network layers oscine's models are built from, in
 * streaming form: convolutions (1-D, 2-D, transposed, complex), linear, GRU,
 * LSTM, FSMN memory blocks, layer norm and activations. No audio knowledge.
 *
 * Data layout
 *   float32 throughout. Time is the streaming axis and the outermost one:
 *   a sequence of T frames is T frames one after another (time-major).
 *   - 1-D layers (conv and convt with dims = 1, linear, GRU, LSTM, FSMN
 *     along time, layer norm): a frame is C channels, a sequence [T][C].
 *     PyTorch's Conv1d tensor [1, C, T] is its transpose; batch_first
 *     Linear/GRU tensors [1, T, C] are the same memory.
 *   - 2-D layers (conv and convt with dims = 2, FSMN along frequency): a
 *     frame is [C][F] (channels, then F frequency bins contiguous), a
 *     sequence [T][C][F]. It is PyTorch's [1, C, F, T] (FRCRN's [B, C, D, T])
 *     with time moved outermost; kernels, strides, dilations and paddings are
 *     given as (frequency, time) like PyTorch's (kernel_size[0], [1]).
 *   - complex tensors: two arrays of the same layout, real and imaginary.
 *
 * Weights and ownership
 *   Every layer has two constructors: *_create takes the tensors as float
 *   arrays in PyTorch's layout (state_dict order), *_load reads them from an
 *   .osw file by their state_dict names under a prefix ("<prefix>.weight",
 *   "<prefix>.bias"; names per layer below) and checks every shape. Both COPY
 *   the weights into memory the layer owns, repacked for its kernels: the
 *   caller may free the arrays or osw_close() the file as soon as create
 *   returns, and one file can be swapped for another without touching live
 *   layers. All memory is taken in create; process never allocates.
 *   Batch norm is folded into the preceding convolution's weight and bias when
 *   the weights are exported (tools/osw.py fold_batchnorm); the C side only
 *   sees a convolution with a bias.
 *
 * Streaming contract (layers with state along time)
 *   process(l, x, n, y) takes the next n frames (1 <= n <= cfg.max_frames)
 *   and writes the output frames that became ready, returning their count.
 *   Any split of a stream into calls gives the same output as one call (in
 *   NN_KERNEL_OWN mode bit for bit; otherwise OpenBLAS may round batches
 *   differently, within float precision).
 *   - Causal layers (conv with pad_left = (k-1)*dilation, FSMN with rorder 0,
 *     GRU, LSTM, linear) return n: output frame t depends on inputs <= t.
 *   - A layer that looks ahead L frames (nn_*_latency) returns nothing for its
 *     first L input frames; output frame t is then written by the call that
 *     takes input frame t + L.
 *   - A time stride s returns one frame per s inputs; a transposed time
 *     stride s returns s frames per input.
 *   - drain(l, y) ends the stream: it writes the frames that the right-hand
 *     padding of the whole-sequence (PyTorch) computation still owes and
 *     returns their count; reset before streaming again. Together, process
 *     over the whole input then drain give exactly PyTorch's output.
 *   - reset(l) zeroes the state as at create (silence before the stream).
 *   State is per layer object: one object per audio channel.
 *
 * Threads: *_create, *_load, *_destroy: control. process, drain, reset:
 * audio (no allocation, no locks, no I/O). Every function returns 0 (or a
 * count) or a negative OSCINE_E_* code with detail via oscine_last_error().
 */
#ifndef OSCINE_NN_H
#define OSCINE_NN_H

#include <stddef.h>
#include <stdint.h>

#include "nn/weights.h"

/* Padding along frequency (the non-streaming axis of 2-D layers). Along time
 * only zeros exist: a stream's past starts as silence. */
typedef enum nn_pad_mode {
    NN_PAD_ZEROS = 0,
    NN_PAD_REFLECT,
    NN_PAD_REPLICATE,
    NN_PAD_CIRCULAR,
    NN_PAD_MODE_COUNT
} nn_pad_mode;

/* ------------------------------------------------------- convolution */

/* Conv1d / Conv2d, real or complex, streaming along time.
 * Weight "<prefix>.weight": dims 1: [out_ch][in_ch/groups][kt];
 * dims 2: [out_ch][in_ch/groups][kf][kt]. Bias "<prefix>.bias": [out_ch].
 * A field left 0 takes its default: kernels, strides, dilations, groups,
 * freq and max_frames default to 1. */
typedef struct nn_conv_config {
    int dims;          /* 1: Conv1d (freq = kf = 1), 2: Conv2d */
    int in_ch, out_ch, groups;
    int freq;          /* input bins F per channel (dims 2) */
    int kf, sf, df;    /* frequency kernel, stride, dilation */
    int pf_lo, pf_hi;  /* frequency padding below bin 0 and above bin F-1 */
    nn_pad_mode pad_mode; /* frequency padding values */
    int kt, st, dt;    /* time kernel, stride, dilation */
    int pt_left;       /* zero frames before the stream, 0..(kt-1)*dt:
                          (kt-1)*dt is causal, less looks ahead */
    int pt_right;      /* zero frames after the stream (emitted by drain) */
    int bias;          /* 1: the layer has a bias */
    int max_frames;    /* most input frames per process call */
} nn_conv_config;

/* PyTorch's symmetric padding p along time is pt_left = pt_right = p. */

typedef struct nn_conv nn_conv;

int nn_conv_create(nn_conv **out, const nn_conv_config *cfg, const float *weight,
                   const float *bias);
int nn_conv_load(nn_conv **out, const nn_conv_config *cfg, const osw_file *w,
                 const char *prefix);

/* Complex convolution (FRCRN's ComplexConv2d): two real convolutions of the
 * same geometry, re and im, applied to (xr, xi):
 *   yr = re(xr) - im(xi),  yi = re(xi) + im(xr)
 * each with its bias, so the biases enter as (b_re - b_im, b_re + b_im).
 * load reads "<prefix_re>.weight/.bias" and "<prefix_im>.weight/.bias"
 * (FRCRN: "<layer>.conv_re", "<layer>.conv_im"). */
int nn_cconv_create(nn_conv **out, const nn_conv_config *cfg, const float *w_re,
                    const float *b_re, const float *w_im, const float *b_im);
int nn_cconv_load(nn_conv **out, const nn_conv_config *cfg, const osw_file *w,
                  const char *prefix_re, const char *prefix_im);

/* x: n frames [n][in_ch][freq]; y: room for nn_conv_max_out(l, n) frames of
 * [out_ch][nn_conv_out_freq(l)]. Returns frames written. drain writes at
 * most nn_conv_max_out(l, pt_right) frames. */
int nn_conv_process(nn_conv *l, const float *x, int n, float *y);
int nn_conv_process_c(nn_conv *l, const float *xr, const float *xi, int n, float *yr,
                      float *yi);
int nn_conv_drain(nn_conv *l, float *y);
int nn_conv_drain_c(nn_conv *l, float *yr, float *yi);
void nn_conv_reset(nn_conv *l);
void nn_conv_destroy(nn_conv *l);
int nn_conv_out_freq(const nn_conv *l);
int nn_conv_latency(const nn_conv *l);     /* input frames before the first output */
int nn_conv_max_out(const nn_conv *l, int n);

/* ------------------------------------------------ transposed convolution */

/* ConvTranspose1d / ConvTranspose2d, real or complex, streaming along time.
 * Weight "<prefix>.weight": dims 1: [in_ch][out_ch/groups][kt];
 * dims 2: [in_ch][out_ch/groups][kf][kt]. Bias [out_ch]. Output bins:
 * (freq-1)*sf - 2*pf + df*(kf-1) + opf + 1, as PyTorch. Time: pt frames are
 * cropped at the start and end, opt frames added at the end; the kernel's
 * tail must cover them: (kt-1)*dt + opt + 1 >= st + pt. */
typedef struct nn_convt_config {
    int dims;
    int in_ch, out_ch, groups;
    int freq;
    int kf, sf, df, pf, opf;   /* frequency kernel, stride, dilation, padding, output_padding */
    int kt, st, dt, pt, opt;   /* time: the same */
    int bias;
    int max_frames;
} nn_convt_config;

typedef struct nn_convt nn_convt;

int nn_convt_create(nn_convt **out, const nn_convt_config *cfg, const float *weight,
                    const float *bias);
int nn_convt_load(nn_convt **out, const nn_convt_config *cfg, const osw_file *w,
                  const char *prefix);
/* Complex (FRCRN's ComplexConvTranspose2d, "<layer>.tconv_re"/".tconv_im"). */
int nn_cconvt_create(nn_convt **out, const nn_convt_config *cfg, const float *w_re,
                     const float *b_re, const float *w_im, const float *b_im);
int nn_cconvt_load(nn_convt **out, const nn_convt_config *cfg, const osw_file *w,
                   const char *prefix_re, const char *prefix_im);

/* y: room for nn_convt_max_out(l, n) frames of [out_ch][nn_convt_out_freq(l)]. */
int nn_convt_process(nn_convt *l, const float *x, int n, float *y);
int nn_convt_process_c(nn_convt *l, const float *xr, const float *xi, int n, float *yr,
                       float *yi);
/* Writes the (kt-1)*dt + opt + 1 - st - pt tail frames (fewer if the start
 * crop is not yet used up). */
int nn_convt_drain(nn_convt *l, float *y);
int nn_convt_drain_c(nn_convt *l, float *yr, float *yi);
void nn_convt_reset(nn_convt *l);
void nn_convt_destroy(nn_convt *l);
int nn_convt_out_freq(const nn_convt *l);
int nn_convt_max_out(const nn_convt *l, int n);

/* ------------------------------------------------------------ linear */

/* y = x W^T + b per frame. "<prefix>.weight" [out][in], "<prefix>.bias" [out]. */
typedef struct nn_linear_config {
    int in, out, bias, max_frames;
} nn_linear_config;

typedef struct nn_linear nn_linear;

int nn_linear_create(nn_linear **out, const nn_linear_config *cfg, const float *weight,
                     const float *bias);
int nn_linear_load(nn_linear **out, const nn_linear_config *cfg, const osw_file *w,
                   const char *prefix);
/* x [n][in] -> y [n][out]; y must not overlap x. Returns n. Thread: audio. */
int nn_linear_process(const nn_linear *l, const float *x, int n, float *y);
void nn_linear_destroy(nn_linear *l);

/* --------------------------------------------------------- recurrent */

/* One layer of torch.nn.GRU / torch.nn.LSTM (unidirectional, batch_first or
 * not: one sequence), PyTorch's gate order and equations:
 *   GRU:  r = s(Wir x + bir + Whr h + bhr)   z = s(Wiz x + biz + Whz h + bhz)
 *         n = tanh(Win x + bin + r * (Whn h + bhn))   h' = (1 - z) * n + z * h
 *   LSTM: i, f, g, o = s, s, tanh, s of (Wi x + bi + Wh h + bh) in that order
 *         c' = f * c + i * g   h' = o * tanh(c')
 * Tensors "<prefix>.weight_ih_l<layer>" [G*hidden][input],
 * ".weight_hh_l<layer>" [G*hidden][hidden], ".bias_ih_l<layer>",
 * ".bias_hh_l<layer>" [G*hidden] with G = 3 (GRU) or 4 (LSTM). Stacked
 * layers are separate objects (layer = 0, 1, ...). The state starts at 0. */
typedef struct nn_rnn_config {
    int input, hidden;
    int bias;          /* 1: bias_ih and bias_hh present (PyTorch default) */
    int layer;         /* which _l<layer> tensors to load */
    int max_frames;
} nn_rnn_config;

typedef struct nn_gru nn_gru;
typedef struct nn_lstm nn_lstm;

int nn_gru_create(nn_gru **out, const nn_rnn_config *cfg, const float *w_ih,
                  const float *w_hh, const float *b_ih, const float *b_hh);
int nn_gru_load(nn_gru **out, const nn_rnn_config *cfg, const osw_file *w, const char *prefix);
/* x [n][input] -> y [n][hidden], the state h after each frame. Returns n. */
int nn_gru_process(nn_gru *l, const float *x, int n, float *y);
void nn_gru_reset(nn_gru *l);
void nn_gru_destroy(nn_gru *l);

int nn_lstm_create(nn_lstm **out, const nn_rnn_config *cfg, const float *w_ih,
                   const float *w_hh, const float *b_ih, const float *b_hh);
int nn_lstm_load(nn_lstm **out, const nn_rnn_config *cfg, const osw_file *w,
                 const char *prefix);
int nn_lstm_process(nn_lstm *l, const float *x, int n, float *y);
void nn_lstm_reset(nn_lstm *l);
void nn_lstm_destroy(nn_lstm *l);

/* -------------------------------------------------------------- FSMN */

/* FSMN block (FRCRN's UniDeepFsmn, with an optional look-ahead and a
 * dilated memory), on a sequence of vectors of dim features:
 *   h = relu(W1 x + b1)          "<prefix>.linear.weight" [hidden][dim], ".linear.bias"
 *   p = Wp h                      "<prefix>.project.weight" [dim][hidden]
 *   m[s] = sum_k w[k] * p[s + (k - lorder + 1) * dilation], k = 0 .. lorder+rorder-1,
 *          depthwise per feature  "<prefix>.conv1.weight" [dim][1][lorder+rorder][1]
 *   y = x + p + m
 * (lorder taps of memory including the present, rorder future taps; p is
 * zero outside the sequence.) Two axes:
 *   NN_FSMN_TIME: the sequence is the stream: frames [T][dim], state along
 *                 time, look-ahead latency rorder*dilation frames.
 *   NN_FSMN_FREQ: each frame [dim][seq] (2-D layout: dim channels, seq bins)
 *                 is a whole sequence along frequency (FRCRN's
 *                 ComplexUniDeepFsmn_L1); no state, returns n. */
typedef enum nn_fsmn_axis { NN_FSMN_TIME = 0, NN_FSMN_FREQ, NN_FSMN_AXIS_COUNT } nn_fsmn_axis;

typedef struct nn_fsmn_config {
    nn_fsmn_axis axis;
    int dim, hidden;
    int lorder, rorder;
    int dilation;      /* steps between memory taps (0: 1) */
    int seq;           /* NN_FSMN_FREQ: bins per frame */
    int max_frames;
} nn_fsmn_config;

typedef struct nn_fsmn nn_fsmn;

/* Weights: w1 [hidden][dim], b1 [hidden], wp [dim][hidden],
 * wm [dim][lorder+rorder] (conv1.weight squeezed). */
int nn_fsmn_create(nn_fsmn **out, const nn_fsmn_config *cfg, const float *w1, const float *b1,
                   const float *wp, const float *wm);
int nn_fsmn_load(nn_fsmn **out, const nn_fsmn_config *cfg, const osw_file *w,
                 const char *prefix);

/* A complex layer whose features are stacked [real | imaginary] (as oscine's
 * denoiser lays out its channels) is one real layer with the block matrix
 * of its complex weight W = wr + j wi:
 *   transposed = 0: out = [[wr, -wi], [wi, wr]]  (rows x cols complex ->
 *                   2 rows x 2 cols real): Linear [out][in], Conv weight
 *                   [out][in*kf*kt] (cols = in*kf*kt), FSMN linear/project;
 *   transposed = 1: out = [[wr, wi], [-wi, wr]]: ConvTranspose weight
 *                   [in][out*kf*kt] (rows = in, cols = out*kf*kt).
 * out holds 4*rows*cols floats; a complex bias br + j bi becomes [br, bi].
 * Thread: any. */
void nn_complex_block(float *out, const float *wr, const float *wi, int rows, int cols,
                      int transposed);

/* Complex FSMN (FRCRN's ComplexUniDeepFsmn_L1 along frequency and one layer
 * of ComplexUniDeepFsmn along time): two FSMN blocks re and im as above,
 *   yr = re(xr) - im(xi),  yi = re(xi) + im(xr)
 * (each block adds its own input back, as FRCRN does). load reads
 * "<prefix_re>.*" and "<prefix_im>.*" (FRCRN: "fsmn_re_L1", "fsmn_im_L1"). */
int nn_cfsmn_create(nn_fsmn **out, const nn_fsmn_config *cfg, const float *const re[4],
                    const float *const im[4]);
int nn_cfsmn_load(nn_fsmn **out, const nn_fsmn_config *cfg, const osw_file *w,
                  const char *prefix_re, const char *prefix_im);

/* x [n][dim] (TIME) or [n][dim][seq] (FREQ) -> y, same layout, room for n
 * frames; drain writes rorder*dilation frames (TIME; FREQ: none). */
int nn_fsmn_process(nn_fsmn *l, const float *x, int n, float *y);
int nn_fsmn_process_c(nn_fsmn *l, const float *xr, const float *xi, int n, float *yr,
                      float *yi);
int nn_fsmn_drain(nn_fsmn *l, float *y);
int nn_fsmn_drain_c(nn_fsmn *l, float *yr, float *yi);
void nn_fsmn_reset(nn_fsmn *l);
void nn_fsmn_destroy(nn_fsmn *l);
int nn_fsmn_latency(const nn_fsmn *l);     /* rorder*dilation along time, else 0 */

/* ------------------------------------------------------------- norms */

/* torch.nn.LayerNorm(dim, eps) over each frame's dim values (the last axis):
 * "<prefix>.weight" and ".bias" [dim] when affine. */
typedef struct nn_layernorm_config {
    int dim;
    float eps;         /* 0: 1e-5, PyTorch's default */
    int affine;
} nn_layernorm_config;

typedef struct nn_layernorm nn_layernorm;

int nn_layernorm_create(nn_layernorm **out, const nn_layernorm_config *cfg,
                        const float *weight, const float *bias);
int nn_layernorm_load(nn_layernorm **out, const nn_layernorm_config *cfg, const osw_file *w,
                      const char *prefix);
/* x [n][dim] -> y (may be x). Returns n. */
int nn_layernorm_process(const nn_layernorm *l, const float *x, int n, float *y);
void nn_layernorm_destroy(nn_layernorm *l);

/* ------------------------------------------------------- activations */

/* In place on count floats. Thread: any. Exactly PyTorch's definitions:
 * GELU is the erf form (approximate='none'); softplus is
 * log1p(exp(beta x)) / beta, x itself where beta x > threshold. */
void nn_relu(float *x, size_t count);
void nn_leaky_relu(float *x, size_t count, float slope);
void nn_tanh(float *x, size_t count);
void nn_sigmoid(float *x, size_t count);
void nn_gelu(float *x, size_t count);
void nn_softplus(float *x, size_t count, float beta, float threshold);

/* PReLU on count floats laid out [..][channels][inner]: alpha[c] for
 * channel c when nalpha == channels, alpha[0] for all when nalpha == 1.
 * 1-D frames [T][C]: channels C, inner 1. 2-D frames [C][F]: inner F. */
void nn_prelu(float *x, size_t count, int channels, int inner, const float *alpha,
              int nalpha);

/* Copy one tensor of the file into a new 64-byte aligned array (free with
 * nn_tensor_free): small parameters such as PReLU's alpha. Thread: control. */
int nn_tensor_load(float **out, const osw_file *w, const char *name, int ndim,
                   const int64_t *shape);
void nn_tensor_free(float *p);

#endif
