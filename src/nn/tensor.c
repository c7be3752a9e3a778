/* tensor.c - reading layer tensors from a weights file by name, and the
 * real block form of complex weights. */
#include <stdio.h>
#include <string.h>

#include "base/error.h"
#include "nn/internal.h"
#include "nn/kernels.h"
#include "nn/nn.h"

int nn_fetch(const osw_file *w, const char *prefix, const char *suffix, int ndim,
             const int64_t *shape, const float **data)
{
    char name[OSW_MAX_NAME + 1];
    int len;
    *data = NULL;
    if (!w)
        return err_set(OSCINE_E_ARG, "no weights file for tensor '%s'", suffix);
    if (prefix && prefix[0])
        len = snprintf(name, sizeof name, "%s.%s", prefix, suffix);
    else
        len = snprintf(name, sizeof name, "%s", suffix);
    if (len < 0 || (size_t)len >= sizeof name)
        return err_set(OSCINE_E_ARG, "tensor name '%s.%s' longer than %d bytes",
                       prefix ? prefix : "", suffix, OSW_MAX_NAME);
    return osw_get_f32(w, name, ndim, shape, data);
}

int nn_tensor_load(float **out, const osw_file *w, const char *name, int ndim,
                   const int64_t *shape)
{
    const float *src;
    size_t n = 1;
    *out = NULL;
    int e = nn_fetch(w, NULL, name, ndim, shape, &src);
    if (e)
        return e;
    for (int i = 0; i < ndim; i++)
        if (nn_mul_size(n, (size_t)shape[i], &n))
            return err_set(OSCINE_E_W_SHAPE, "tensor '%s': size overflows", name);
    if (!(*out = nn_falloc(n)))
        return err_set(OSCINE_E_NOMEM, "tensor '%s' (%zu floats)", name, n);
    memcpy(*out, src, n * sizeof(float));
    return 0;
}

void nn_tensor_free(float *p)
{
    nn_ffree(p);
}

void nn_complex_block(float *out, const float *wr, const float *wi, int rows, int cols,
                      int transposed)
{
    size_t R = (size_t)rows, C = (size_t)cols, W = 2 * C;
    float s = transposed ? -1.0f : 1.0f; /* sign of wi below the diagonal */
    for (size_t r = 0; r < R; r++)
        for (size_t c = 0; c < C; c++) {
            float a = wr[r * C + c], b = wi[r * C + c];
            out[r * W + c] = a;
            out[r * W + C + c] = -s * b;
            out[(R + r) * W + c] = s * b;
            out[(R + r) * W + C + c] = a;
        }
}
