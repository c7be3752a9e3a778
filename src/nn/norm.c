/* norm.c - layer norm over each frame. (Batch norm has no C code: it is
 * folded into the preceding convolution when weights are exported.) */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/error.h"
#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/nn.h"

struct nn_layernorm {
    nn_layernorm_config c;
    float *w, *b; /* [dim] each, or NULL */
};

int nn_layernorm_create(nn_layernorm **out, const nn_layernorm_config *cfg,
                        const float *weight, const float *bias)
{
    *out = NULL;
    int e = nn_check_dim("layernorm", "dim", cfg->dim, 1);
    if (e)
        return e;
    if (!(cfg->eps >= 0.0f) || !isfinite(cfg->eps))
        return err_set(OSCINE_E_ARG, "layernorm: eps %g", (double)cfg->eps);
    if (cfg->affine && (!weight || !bias))
        return err_set(OSCINE_E_ARG, "layernorm: weight or bias array is NULL");
    nn_layernorm *l = calloc(1, sizeof *l);
    if (!l || (cfg->affine && (!(l->w = nn_falloc((size_t)cfg->dim)) ||
                               !(l->b = nn_falloc((size_t)cfg->dim))))) {
        nn_layernorm_destroy(l);
        return err_set(OSCINE_E_NOMEM, "layernorm of %d", cfg->dim);
    }
    l->c = *cfg;
    if (l->c.eps == 0.0f)
        l->c.eps = 1e-5f;
    if (cfg->affine) {
        memcpy(l->w, weight, (size_t)cfg->dim * sizeof(float));
        memcpy(l->b, bias, (size_t)cfg->dim * sizeof(float));
    }
    *out = l;
    return 0;
}

int nn_layernorm_load(nn_layernorm **out, const nn_layernorm_config *cfg, const osw_file *w,
                      const char *prefix)
{
    const float *wt = NULL, *b = NULL;
    int64_t s[1] = { cfg->dim };
    *out = NULL;
    int e = 0;
    if (cfg->affine && !(e = nn_fetch(w, prefix, "weight", 1, s, &wt)))
        e = nn_fetch(w, prefix, "bias", 1, s, &b);
    return e ? e : nn_layernorm_create(out, cfg, wt, b);
}

int nn_layernorm_process(const nn_layernorm *l, const float *x, int n, float *y)
{
    int D = l->c.dim;
    for (int t = 0; t < n; t++) {
        const float *v = x + (size_t)t * D;
        float *o = y + (size_t)t * D;
        double s = 0, ss = 0;
        for (int i = 0; i < D; i++)
            s += v[i];
        double mean = s / D;
        for (int i = 0; i < D; i++) {
            double d = v[i] - mean;
            ss += d * d;
        }
        float inv = (float)(1.0 / sqrt(ss / D + l->c.eps));
        float m = (float)mean;
        if (l->w)
            for (int i = 0; i < D; i++)
                o[i] = (v[i] - m) * inv * l->w[i] + l->b[i];
        else
            for (int i = 0; i < D; i++)
                o[i] = (v[i] - m) * inv;
    }
    return n;
}

void nn_layernorm_destroy(nn_layernorm *l)
{
    if (!l)
        return;
    nn_ffree(l->w);
    nn_ffree(l->b);
    free(l);
}
