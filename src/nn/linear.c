/* linear.c - torch.nn.Linear per frame: y = x W^T + b. One frame is a
 * matrix-vector product (memory-bound on the weights); a batch of frames is
 * one frames x weights product. Weights are copied at create. */
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/nn.h"

struct nn_linear {
    nn_linear_config c;
    float *w; /* [out][in] */
    float *b; /* [out] or NULL */
};

int nn_linear_create(nn_linear **out, const nn_linear_config *cfg, const float *weight,
                     const float *bias)
{
    *out = NULL;
    nn_linear_config c = *cfg;
    if (!c.max_frames)
        c.max_frames = 1;
    int e;
    if ((e = nn_check_dim("linear", "in", c.in, 1)) || (e = nn_check_dim("linear", "out", c.out, 1)) ||
        (e = nn_check_dim("linear", "max_frames", c.max_frames, 1)))
        return e;
    if (!weight || (c.bias && !bias))
        return err_set(OSCINE_E_ARG, "linear: weight or bias array is NULL");
    size_t wn;
    if (nn_mul_size((size_t)c.in, (size_t)c.out, &wn))
        return err_set(OSCINE_E_ARG, "linear: sizes overflow");
    nn_linear *l = calloc(1, sizeof *l);
    if (!l || !(l->w = nn_falloc(wn)) || (c.bias && !(l->b = nn_falloc((size_t)c.out)))) {
        nn_linear_destroy(l);
        return err_set(OSCINE_E_NOMEM, "linear %d -> %d", c.in, c.out);
    }
    l->c = c;
    memcpy(l->w, weight, wn * sizeof(float));
    if (c.bias)
        memcpy(l->b, bias, (size_t)c.out * sizeof(float));
    nn_blas_init();
    *out = l;
    return 0;
}

int nn_linear_load(nn_linear **out, const nn_linear_config *cfg, const osw_file *w,
                   const char *prefix)
{
    const float *wt, *b = NULL;
    int64_t ws[2] = { cfg->out, cfg->in }, bs[1] = { cfg->out };
    *out = NULL;
    int e = nn_fetch(w, prefix, "weight", 2, ws, &wt);
    if (!e && cfg->bias)
        e = nn_fetch(w, prefix, "bias", 1, bs, &b);
    return e ? e : nn_linear_create(out, cfg, wt, b);
}

int nn_linear_process(const nn_linear *l, const float *x, int n, float *y)
{
    const nn_linear_config *c = &l->c;
    if (n < 1 || n > c->max_frames)
        return err_set(OSCINE_E_ARG, "linear: %d frames (1..%d)", n, c->max_frames);
    if (n == 1)
        nn_gemv(c->out, c->in, l->w, c->in, x, y, 0);
    else
        nn_gemm_nt(n, c->out, c->in, x, c->in, l->w, c->in, y, c->out, 0);
    if (l->b)
        for (int t = 0; t < n; t++) {
            float *restrict v = y + (size_t)t * c->out;
            for (int o = 0; o < c->out; o++)
                v[o] += l->b[o];
        }
    return n;
}

void nn_linear_destroy(nn_linear *l)
{
    if (!l)
        return;
    nn_ffree(l->w);
    nn_ffree(l->b);
    free(l);
}
