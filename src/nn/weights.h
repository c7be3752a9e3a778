/* weights.h - the .osw weights file: one file per trained model, mapped
 * read-only and checked field by field before any model sees a tensor.
 *
 * Format version 1. All integers little-endian; offsets in bytes.
 *
 *   offset  size  field
 *   0       8     magic "OSCINEW\0"
 *   8       4     u32 version         1 (OSW_VERSION); readers refuse others
 *   12      4     u32 flags           0 (reserved)
 *   16      8     u64 header_size     bytes 0 .. end of the tensor table, >= 64
 *   24      8     u64 data_offset     start of the data section: a multiple of
 *                                     64, >= header_size (zero padding between)
 *   32      8     u64 data_size       bytes in the data section
 *   40      4     u32 meta_count      metadata entries
 *   44      4     u32 tensor_count    tensor entries
 *   48      16    reserved            zero
 *   64      ...   metadata, meta_count times:
 *                   u32 key_len (1..OSW_MAX_KEY), key bytes,
 *                   u32 value_len (0..OSW_MAX_VALUE), value bytes
 *                 (UTF-8, no NUL byte, no terminator; keys unique)
 *           ...   tensor table, tensor_count times:
 *                   u32 name_len (1..OSW_MAX_NAME), name bytes (unique),
 *                   u32 dtype (osw_dtype), u32 ndim (0..OSW_MAX_DIMS),
 *                   i64 shape[ndim] (each >= 0, outermost first, row-major),
 *                   u64 offset (from data_offset; a multiple of 64)
 *                 the table ends exactly at header_size
 *   data_offset   data_size bytes: each tensor's elements, row-major,
 *                 little-endian, at its offset, inside the section
 *   end - 4 4     u32 crc32           CRC-32 (IEEE, as zlib.crc32) of every
 *                                     byte before it
 *
 *   file size == data_offset + data_size + 4 exactly.
 *
 * Metadata keys in use (free-form; models check what they need with
 * osw_expect_meta): kind ("denoise", "resynth", "ddsp", ...), sample_rate,
 * n_fft, hop, win, n_mels, fmin, fmax, training_data, training_command,
 * commit, metrics. Values are text: numbers in decimal.
 *
 * The reader checks, in this order, and fails with a distinct code and a
 * message naming the file and the field or tensor at fault:
 *   OSCINE_E_W_MAGIC      first 8 bytes (or all, if fewer) differ from the magic
 *   OSCINE_E_W_TRUNCATED  shorter than the 64-byte fixed header
 *   OSCINE_E_W_VERSION    version outside 1..OSW_VERSION
 *   OSCINE_E_W_HEADER     flags/reserved not zero, header_size < 64 or >
 *                         data_offset
 *   OSCINE_E_W_OFFSET     data_offset not a multiple of 64
 *   OSCINE_E_W_TRUNCATED  file shorter than data_offset + data_size + 4
 *   OSCINE_E_W_HEADER     file longer than that
 *   OSCINE_E_W_CRC        checksum mismatch (any damaged byte)
 *   then the tables, entry by entry (nothing allocated before a count is
 *   checked against the bytes that must hold it):
 *   OSCINE_E_W_HEADER     a count or string length that runs past
 *                         header_size or over its limit, NUL in a string
 *   OSCINE_E_W_DTYPE      unknown dtype code
 *   OSCINE_E_W_SHAPE      ndim > OSW_MAX_DIMS, negative dimension, element
 *                         count or byte size overflowing 64 bits at any step
 *   OSCINE_E_W_OFFSET     tensor offset not a multiple of 64, or offset +
 *                         size past the end of the data section
 *   OSCINE_E_W_HEADER     tables not ending at header_size; duplicate key
 *                         or tensor name
 * Opening also fails with OSCINE_E_IO (cannot open/map, not a regular file)
 * or OSCINE_E_NOMEM. When a model asks (osw_get_f32, osw_expect_meta):
 *   OSCINE_E_W_MISSING    no such tensor or metadata key
 *   OSCINE_E_W_DTYPE      the tensor is not f32
 *   OSCINE_E_W_SHAPE      ndim or a dimension differs from what the model needs
 *   OSCINE_E_W_MODEL      metadata value differs (weights for another model)
 *   OSCINE_E_W_VALUE      the tensor holds NaN or infinity (a file written
 *                         from a diverged training run: its CRC is right)
 *
 * Writer: tools/osw.py (write_osw); docs/weights.md has the same spec.
 *
 * Ownership: an osw_file owns its mapping and every string and pointer it
 * hands out; all stay valid until osw_close. Models point into it: the
 * float pointers from osw_get_f32 are used in place (read-only, 64-byte
 * aligned, shared by every processor built from the file), so the file must
 * outlive every model and processor built from it - close it after
 * destroying them. A model that needs another layout (transposed, padded)
 * copies at create time and owns its copy; it still documents whether it
 * keeps any pointer into the file.
 *
 * Threads: osw_open, osw_open_memory and osw_close are control-thread calls
 * (they allocate, map and read the whole file to check its CRC). An open
 * osw_file is immutable: the accessors may be called from any thread; the
 * ones that can fail (osw_get_f32, osw_expect_meta) format an error message
 * and so belong on a control or worker thread.
 *
 * Replacing a weights file: write a new file and rename it over the old
 * (tools/osw.py does), never rewrite in place - a mapping of a file that is
 * truncated under it faults on access.
 *
 * Host: little-endian only (tensor data is used in place).
 */
#ifndef OSCINE_NN_WEIGHTS_H
#define OSCINE_NN_WEIGHTS_H

#include <stddef.h>
#include <stdint.h>

#define OSW_VERSION 1             /* tools/osw.py has the same number */
#define OSW_MAGIC "OSCINEW"       /* 7 characters + NUL = 8 bytes */
#define OSW_FIXED_HEADER 64       /* bytes before the metadata */
#define OSW_ALIGN 64              /* data_offset and tensor offsets */
#define OSW_MAX_DIMS 8
#define OSW_MAX_KEY 256           /* bytes in a metadata key */
#define OSW_MAX_VALUE 65536       /* bytes in a metadata value */
#define OSW_MAX_NAME 256          /* bytes in a tensor name */

typedef enum osw_dtype {
    OSW_F32 = 0,  /* IEEE binary32 */
    OSW_F16 = 1,  /* IEEE binary16 (reserved: readable, no model uses it yet) */
    OSW_I32 = 2,  /* two's complement int32 (reserved, as f16) */
    OSW_DTYPE_COUNT
} osw_dtype;

typedef struct osw_file osw_file; /* opaque; owns the mapping */

/* Map and check the file at path. On failure *out is NULL and the code is
 * OSCINE_E_IO (cannot open/map, not a regular file) or an OSCINE_E_W_* code,
 * with the detail in oscine_last_error(). Thread: control. */
int osw_open(osw_file **out, const char *path);

/* Check len bytes at data as a weights file. Copies them into a 64-byte
 * aligned buffer it owns, so the caller may free data at once. name is used
 * in messages and by osw_path (NULL: "<memory>"). For tests and fuzzing.
 * Thread: control. */
int osw_open_memory(osw_file **out, const void *data, size_t len, const char *name);

/* Unmap/free. NULL is allowed. Thread: control. */
void osw_close(osw_file *w);

/* The path (or name) it was opened with. Thread: any. */
const char *osw_path(const osw_file *w);

/* The format version field of the file (1..OSW_VERSION). Thread: any. */
uint32_t osw_format_version(const osw_file *w);

/* Metadata value for key, NULL if absent. Thread: any. */
const char *osw_meta(const osw_file *w, const char *key);

/* Metadata in file order: i in 0..count-1; 0 or OSCINE_E_ARG for a bad i.
 * Thread: any. */
int osw_meta_count(const osw_file *w);
int osw_meta_at(const osw_file *w, int i, const char **key, const char **value);

/* Tensors in file order: i in 0..count-1; 0 or OSCINE_E_ARG for a bad i.
 * *shape points at ndim dimensions (NULL-safe outputs). Thread: any. */
int osw_tensor_count(const osw_file *w);
int osw_tensor_info(const osw_file *w, int i, const char **name, int *ndim,
                    const int64_t **shape);

/* dtype (osw_dtype) of tensor i, or OSCINE_E_ARG for a bad i. Thread: any. */
int osw_tensor_dtype(const osw_file *w, int i);

/* Index of the tensor called name, or -1. Thread: any. */
int osw_tensor_find(const osw_file *w, const char *name);

/* "f32", "f16", "i32"; "?" for other codes. Bytes per element, 0 if unknown.
 * Thread: any. */
const char *osw_dtype_name(int dtype);
size_t osw_dtype_size(int dtype);

/* Look up a f32 tensor by name and check its shape (ndim and every dim):
 * OSCINE_E_W_MISSING, OSCINE_E_W_DTYPE or OSCINE_E_W_SHAPE with a message
 * naming file, tensor, expected vs found. data points into the mapping
 * (valid until osw_close, 64-byte aligned). Thread: control. */
int osw_get_f32(const osw_file *w, const char *name, int ndim, const int64_t *shape,
                const float **data);

/* Require metadata key equal to value (e.g. "kind" == "denoise"):
 * OSCINE_E_W_MISSING / OSCINE_E_W_MODEL. Thread: control. */
int osw_expect_meta(const osw_file *w, const char *key, const char *value);

/* Numbers from the metadata, for the model loaders. osw_meta_int: an
 * integer in lo..hi. osw_meta_float: a finite number; when def is not NULL
 * the key is optional and *def stands in. osw_meta_int_list: up to max
 * comma-separated integers in lo..hi ("16,32,64"), their count in *n.
 * OSCINE_E_W_MISSING for a missing key, OSCINE_E_W_MODEL for a value that
 * is not what the model can take, with the file, key and value in the
 * message. Thread: control. */
int osw_meta_int(const osw_file *w, const char *key, long lo, long hi, int *v);
int osw_meta_float(const osw_file *w, const char *key, const float *def, float *v);
int osw_meta_int_list(const osw_file *w, const char *key, long lo, long hi, int *v, int max,
                      int *n);

/* CRC-32 (IEEE 802.3, reflected, as zlib's crc32): start with crc = 0 and
 * chain calls over consecutive pieces. Thread: any. */
uint32_t osw_crc32(uint32_t crc, const void *p, size_t n);

#endif
