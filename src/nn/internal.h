/* internal.h - helpers shared by the nn layer files: argument checks,
 * frequency padding and fetching a layer's tensors from a weights file.
 * Private to src/nn. */
#ifndef OSCINE_NN_INTERNAL_H
#define OSCINE_NN_INTERNAL_H

#include <stdint.h>

#include "nn/nn.h"

/* OSCINE_E_ARG with "what: field = v out of range" unless lo <= v <= 2^24. */
int nn_check_dim(const char *what, const char *field, int v, int lo);

/* Source index for position i of a row of n values padded by mode, or -1
 * for a zero (NN_PAD_ZEROS outside 0..n-1). */
int nn_pad_index(int i, int n, nn_pad_mode mode);

/* dst[0 .. lo+n+hi) = src[0 .. n) padded lo before and hi after. */
void nn_pad_row(float *dst, const float *src, int n, int lo, int hi, nn_pad_mode mode);

/* The bias of a real (planes 1: b = b_re) or complex (planes 2) conv. A
 * complex conv is FRCRN's pair of real convs, real = conv_re(x_re) -
 * conv_im(x_im) and imaginary = conv_re(x_im) + conv_im(x_re), each with
 * its bias: b[o] = b_re - b_im, b[out_ch + o] = b_re + b_im. */
void nn_fold_bias(float *b, int out_ch, int planes, const float *b_re, const float *b_im);

/* osw_get_f32 of "<prefix>.<suffix>" (just suffix when prefix is NULL or
 * empty); on failure the message names the tensor. Thread: control. */
int nn_fetch(const osw_file *w, const char *prefix, const char *suffix, int ndim,
             const int64_t *shape, const float **data);

/* A conv's (transposed: convt's) weight and bias by PyTorch's shapes. */
int nn_conv_fetch(const nn_conv_config *cfg, int transposed, const osw_file *w,
                  const char *prefix, const float **weight, const float **bias);

#endif
