/* error.c - fixed texts for error codes and the thread-local detail. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char detail[512];

static const char *const texts[OSCINE_E_COUNT] = {
    [0] = "success",
    [-OSCINE_E_NOMEM] = "out of memory",
    [-OSCINE_E_ARG] = "invalid argument",
    [-OSCINE_E_IO] = "input/output error",
    [-OSCINE_E_FORMAT] = "unreadable or corrupt audio file",
    [-OSCINE_E_UNSUPPORTED] = "unsupported",
    [-OSCINE_E_EMPTY] = "no audio",
    [-OSCINE_E_STAGE] = "unknown stage or bad chain",
    [-OSCINE_E_PARAM] = "unknown parameter",
    [-OSCINE_E_RANGE] = "value out of range",
    [-OSCINE_E_INTERRUPTED] = "interrupted",
    [-OSCINE_E_RESAMPLE] = "resampler failure",
    [-OSCINE_E_W_TRUNCATED] = "weights file truncated",
    [-OSCINE_E_W_MAGIC] = "not an oscine weights file",
    [-OSCINE_E_W_VERSION] = "unsupported weights format version",
    [-OSCINE_E_W_CRC] = "weights checksum mismatch",
    [-OSCINE_E_W_OFFSET] = "weights tensor offset out of bounds",
    [-OSCINE_E_W_SHAPE] = "weights tensor shape invalid or unexpected",
    [-OSCINE_E_W_MISSING] = "weights entry missing",
    [-OSCINE_E_W_DTYPE] = "weights dtype invalid or unexpected",
    [-OSCINE_E_W_HEADER] = "weights header malformed",
    [-OSCINE_E_W_MODEL] = "weights are for another model",
    [-OSCINE_E_W_VALUE] = "weights hold NaN or infinity",
};

OSCINE_API const char *oscine_strerror(int err)
{
    if (err > 0 || err <= -OSCINE_E_COUNT || !texts[-err])
        return "unknown error";
    return texts[-err];
}

OSCINE_API const char *oscine_last_error(void)
{
    return detail;
}

OSCINE_API const char *oscine_version(void)
{
    return OSCINE_VERSION_STRING;
}

int err_set(int err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return err;
}

int err_prefix(int err, const char *fmt, ...)
{
    char old[sizeof detail];
    char pre[256];
    va_list ap;
    memcpy(old, detail, sizeof old);
    va_start(ap, fmt);
    vsnprintf(pre, sizeof pre, fmt, ap);
    va_end(ap);
    /* Precisions bound the output: a long detail is cut, never overrun. */
    if (old[0])
        snprintf(detail, sizeof detail, "%.200s: %.300s", pre, old);
    else
        snprintf(detail, sizeof detail, "%.200s: %.300s", pre, oscine_strerror(err));
    return err;
}

void err_clear(void)
{
    detail[0] = 0;
}
