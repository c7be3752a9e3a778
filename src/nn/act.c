/* act.c - activations in place, with PyTorch's exact definitions. */
#include <math.h>

#include "nn/nn.h"

#ifdef OSCINE_HAVE_MVEC
#include <emmintrin.h>
/* glibc's libmvec: erff of four floats (vector ABI 'b', SSE2 registers; an
 * IFUNC picks its SSE4/AVX2/AVX-512 code for the CPU), within 4 ulp like erff. */
__m128 _ZGVbN4v_erff(__m128 x);
#endif

void nn_relu(float *restrict x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        x[i] = x[i] > 0.0f ? x[i] : 0.0f;
}

void nn_leaky_relu(float *restrict x, size_t count, float slope)
{
    for (size_t i = 0; i < count; i++)
        x[i] = x[i] > 0.0f ? x[i] : x[i] * slope;
}

void nn_tanh(float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        x[i] = tanhf(x[i]);
}

void nn_sigmoid(float *x, size_t count)
{
    for (size_t i = 0; i < count; i++)
        x[i] = 1.0f / (1.0f + expf(-x[i]));
}

void nn_gelu(float *x, size_t count)
{
    size_t i = 0;
#ifdef OSCINE_HAVE_MVEC
    const __m128 s = _mm_set1_ps((float)M_SQRT1_2), half = _mm_set1_ps(0.5f), one = _mm_set1_ps(1.0f);
    for (; i + 4 <= count; i += 4) {
        const __m128 v = _mm_loadu_ps(x + i);
        const __m128 e = _ZGVbN4v_erff(_mm_mul_ps(v, s));
        _mm_storeu_ps(x + i, _mm_mul_ps(_mm_mul_ps(half, v), _mm_add_ps(one, e)));
    }
#endif
    for (; i < count; i++)
        x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * (float)M_SQRT1_2));
}

void nn_softplus(float *x, size_t count, float beta, float threshold)
{
    for (size_t i = 0; i < count; i++) {
        float bx = beta * x[i];
        if (bx <= threshold)
            x[i] = log1pf(expf(bx)) / beta;
    }
}

void nn_prelu(float *restrict x, size_t count, int channels, int inner,
              const float *restrict alpha, int nalpha)
{
    size_t frame = (size_t)channels * inner;
    if (nalpha == 1 || frame == 0) {
        float a = alpha[0];
        for (size_t i = 0; i < count; i++)
            x[i] = x[i] > 0.0f ? x[i] : a * x[i];
        return;
    }
    for (size_t f = 0; f + frame <= count; f += frame)
        for (int c = 0; c < channels; c++) {
            float a = alpha[c];
            float *restrict v = x + f + (size_t)c * inner;
            for (int i = 0; i < inner; i++)
                v[i] = v[i] > 0.0f ? v[i] : a * v[i];
        }
}
