/* act.c - activations in place, with PyTorch's exact definitions. */
#include <math.h>

#include "nn/nn.h"

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
    for (size_t i = 0; i < count; i++)
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
