/* error.h - error detail for every layer: set a thread-local message next to
 * the OSCINE_E_* code a function returns. Below all layers (dsp, nn, ...). */
#ifndef OSCINE_BASE_ERROR_H
#define OSCINE_BASE_ERROR_H

#include "oscine.h"

/* Record the detail text for the failure being returned and return err, so
 * callers write `return err_set(OSCINE_E_IO, "file '%s': %s", p, why);`.
 * Thread: any (control threads in practice: it formats text). */
int err_set(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix the current detail, e.g. with the file name a lower layer did not
 * know. Returns err. Thread: any. */
int err_prefix(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Forget the detail. Thread: any. */
void err_clear(void);

#endif
