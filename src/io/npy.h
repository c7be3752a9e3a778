/* npy.h - NumPy .npy files of float arrays (1-D or 2-D), for mel spectrograms
 * exchanged with other tools (`oscine mel`, `oscine vocode`).
 *
 * Format (numpy.lib.format): magic "\x93NUMPY", u8 major, u8 minor, header
 * length (u16 LE for version 1.0, u32 LE for 2.0 and 3.0), then an ASCII
 * (3.0: UTF-8) Python dict literal ending in '\n', e.g.
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (412, 80), }
 * padded with spaces so the data starts at a multiple of 64 (16 in old
 * files), then the elements.
 *
 * The reader is strict and refuses, with OSCINE_E_FORMAT and a message naming
 * the file and the field: a wrong magic, a version other than 1.0/2.0/3.0, a
 * header running past the file or not ending in '\n', a dict that is not
 * exactly the three keys above (each once), a dtype other than little-endian
 * float32 '<f4' or float64 '<f8' (converted to float32), a shape that is not
 * a tuple of one or two non-negative integers, an element count or byte size
 * that overflows, and a data section that is shorter OR longer than the
 * shape says. fortran_order True is accepted and converted to row-major.
 * Values are not checked (NaN/Inf are the caller's business). OSCINE_E_IO
 * when the file cannot be opened or read.
 *
 * The writer emits version 1.0, '<f4', fortran_order False, data aligned to
 * 64 bytes, through a temporary file beside the path renamed into place.
 *
 * Thread: control (they allocate and do I/O).
 */
#ifndef OSCINE_IO_NPY_H
#define OSCINE_IO_NPY_H

#include <stddef.h>
#include <stdint.h>

#define NPY_MAX_BYTES ((int64_t)1 << 32) /* 4 GiB of data: more is refused */

typedef struct npy_array {
    int ndim;          /* 1 or 2 */
    int64_t shape[2];  /* shape[1] is 1 for 1-D arrays */
    float *data;       /* row-major, shape[0] * shape[1] values; npy_free */
} npy_array;

/* Read path into out (zeroed on failure). */
int npy_read_f32(const char *path, npy_array *out);

/* Parse len bytes already in memory; name is used in messages. */
int npy_parse_f32(const void *buf, size_t len, const char *name, npy_array *out);

void npy_free(npy_array *a);

/* Write ndim (1 or 2) dimensions of float32 data to path. */
int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape);

#endif
