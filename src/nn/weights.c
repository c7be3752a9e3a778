/* weights.c - the .osw reader: map the file, check every field against the
 * file length before use (format and rules in weights.h), then hand out
 * pointers into the mapping. A bad file is an error code and a message
 * naming the file and the field or tensor, never a crash. */
#include "nn/weights.h"

#include "base/error.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "weights.c: tensor data is used in place, so only little-endian hosts are supported"
#endif

typedef struct osw_meta_entry {
    const char *key;   /* NUL-terminated copies in osw_file.strings */
    const char *value;
} osw_meta_entry;

typedef struct osw_tensor {
    const char *name;
    int index;                     /* position in the file's table */
    int dtype;                     /* osw_dtype */
    int ndim;
    int64_t shape[OSW_MAX_DIMS];   /* (ndim) */
    uint64_t offset;               /* from the data section's start */
    uint64_t nbytes;
    const unsigned char *data;     /* into the mapping */
} osw_tensor;

struct osw_file {
    char *path;
    const unsigned char *base;     /* (len) the whole file, read-only */
    size_t len;
    int mapped;                    /* 1: munmap base; 0: free it */
    uint32_t version;
    int nmeta, ntensor;
    osw_meta_entry *meta;          /* (nmeta) file order */
    osw_meta_entry **meta_sorted;  /* (nmeta) by key, for lookup */
    osw_tensor *tensors;           /* (ntensor) file order */
    osw_tensor **sorted;           /* (ntensor) by name, for lookup */
    char *strings;                 /* every key, value and name, NUL-terminated */
};

static const uint32_t crc_table[256] = {
    0x00000000u, 0x77073096u, 0xee0e612cu, 0x990951bau, 0x076dc419u, 0x706af48fu,
    0xe963a535u, 0x9e6495a3u, 0x0edb8832u, 0x79dcb8a4u, 0xe0d5e91eu, 0x97d2d988u,
    0x09b64c2bu, 0x7eb17cbdu, 0xe7b82d07u, 0x90bf1d91u, 0x1db71064u, 0x6ab020f2u,
    0xf3b97148u, 0x84be41deu, 0x1adad47du, 0x6ddde4ebu, 0xf4d4b551u, 0x83d385c7u,
    0x136c9856u, 0x646ba8c0u, 0xfd62f97au, 0x8a65c9ecu, 0x14015c4fu, 0x63066cd9u,
    0xfa0f3d63u, 0x8d080df5u, 0x3b6e20c8u, 0x4c69105eu, 0xd56041e4u, 0xa2677172u,
    0x3c03e4d1u, 0x4b04d447u, 0xd20d85fdu, 0xa50ab56bu, 0x35b5a8fau, 0x42b2986cu,
    0xdbbbc9d6u, 0xacbcf940u, 0x32d86ce3u, 0x45df5c75u, 0xdcd60dcfu, 0xabd13d59u,
    0x26d930acu, 0x51de003au, 0xc8d75180u, 0xbfd06116u, 0x21b4f4b5u, 0x56b3c423u,
    0xcfba9599u, 0xb8bda50fu, 0x2802b89eu, 0x5f058808u, 0xc60cd9b2u, 0xb10be924u,
    0x2f6f7c87u, 0x58684c11u, 0xc1611dabu, 0xb6662d3du, 0x76dc4190u, 0x01db7106u,
    0x98d220bcu, 0xefd5102au, 0x71b18589u, 0x06b6b51fu, 0x9fbfe4a5u, 0xe8b8d433u,
    0x7807c9a2u, 0x0f00f934u, 0x9609a88eu, 0xe10e9818u, 0x7f6a0dbbu, 0x086d3d2du,
    0x91646c97u, 0xe6635c01u, 0x6b6b51f4u, 0x1c6c6162u, 0x856530d8u, 0xf262004eu,
    0x6c0695edu, 0x1b01a57bu, 0x8208f4c1u, 0xf50fc457u, 0x65b0d9c6u, 0x12b7e950u,
    0x8bbeb8eau, 0xfcb9887cu, 0x62dd1ddfu, 0x15da2d49u, 0x8cd37cf3u, 0xfbd44c65u,
    0x4db26158u, 0x3ab551ceu, 0xa3bc0074u, 0xd4bb30e2u, 0x4adfa541u, 0x3dd895d7u,
    0xa4d1c46du, 0xd3d6f4fbu, 0x4369e96au, 0x346ed9fcu, 0xad678846u, 0xda60b8d0u,
    0x44042d73u, 0x33031de5u, 0xaa0a4c5fu, 0xdd0d7cc9u, 0x5005713cu, 0x270241aau,
    0xbe0b1010u, 0xc90c2086u, 0x5768b525u, 0x206f85b3u, 0xb966d409u, 0xce61e49fu,
    0x5edef90eu, 0x29d9c998u, 0xb0d09822u, 0xc7d7a8b4u, 0x59b33d17u, 0x2eb40d81u,
    0xb7bd5c3bu, 0xc0ba6cadu, 0xedb88320u, 0x9abfb3b6u, 0x03b6e20cu, 0x74b1d29au,
    0xead54739u, 0x9dd277afu, 0x04db2615u, 0x73dc1683u, 0xe3630b12u, 0x94643b84u,
    0x0d6d6a3eu, 0x7a6a5aa8u, 0xe40ecf0bu, 0x9309ff9du, 0x0a00ae27u, 0x7d079eb1u,
    0xf00f9344u, 0x8708a3d2u, 0x1e01f268u, 0x6906c2feu, 0xf762575du, 0x806567cbu,
    0x196c3671u, 0x6e6b06e7u, 0xfed41b76u, 0x89d32be0u, 0x10da7a5au, 0x67dd4accu,
    0xf9b9df6fu, 0x8ebeeff9u, 0x17b7be43u, 0x60b08ed5u, 0xd6d6a3e8u, 0xa1d1937eu,
    0x38d8c2c4u, 0x4fdff252u, 0xd1bb67f1u, 0xa6bc5767u, 0x3fb506ddu, 0x48b2364bu,
    0xd80d2bdau, 0xaf0a1b4cu, 0x36034af6u, 0x41047a60u, 0xdf60efc3u, 0xa867df55u,
    0x316e8eefu, 0x4669be79u, 0xcb61b38cu, 0xbc66831au, 0x256fd2a0u, 0x5268e236u,
    0xcc0c7795u, 0xbb0b4703u, 0x220216b9u, 0x5505262fu, 0xc5ba3bbeu, 0xb2bd0b28u,
    0x2bb45a92u, 0x5cb36a04u, 0xc2d7ffa7u, 0xb5d0cf31u, 0x2cd99e8bu, 0x5bdeae1du,
    0x9b64c2b0u, 0xec63f226u, 0x756aa39cu, 0x026d930au, 0x9c0906a9u, 0xeb0e363fu,
    0x72076785u, 0x05005713u, 0x95bf4a82u, 0xe2b87a14u, 0x7bb12baeu, 0x0cb61b38u,
    0x92d28e9bu, 0xe5d5be0du, 0x7cdcefb7u, 0x0bdbdf21u, 0x86d3d2d4u, 0xf1d4e242u,
    0x68ddb3f8u, 0x1fda836eu, 0x81be16cdu, 0xf6b9265bu, 0x6fb077e1u, 0x18b74777u,
    0x88085ae6u, 0xff0f6a70u, 0x66063bcau, 0x11010b5cu, 0x8f659effu, 0xf862ae69u,
    0x616bffd3u, 0x166ccf45u, 0xa00ae278u, 0xd70dd2eeu, 0x4e048354u, 0x3903b3c2u,
    0xa7672661u, 0xd06016f7u, 0x4969474du, 0x3e6e77dbu, 0xaed16a4au, 0xd9d65adcu,
    0x40df0b66u, 0x37d83bf0u, 0xa9bcae53u, 0xdebb9ec5u, 0x47b2cf7fu, 0x30b5ffe9u,
    0xbdbdf21cu, 0xcabac28au, 0x53b39330u, 0x24b4a3a6u, 0xbad03605u, 0xcdd70693u,
    0x54de5729u, 0x23d967bfu, 0xb3667a2eu, 0xc4614ab8u, 0x5d681b02u, 0x2a6f2b94u,
    0xb40bbe37u, 0xc30c8ea1u, 0x5a05df1bu, 0x2d02ef8du,
};

uint32_t osw_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *s = p;
    crc = ~crc;
    while (n--)
        crc = crc_table[(crc ^ *s++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int fail(const osw_file *w, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(const osw_file *w, int err, const char *fmt, ...)
{
    char msg[384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return err_set(err, "weights '%s': %s", w->path, msg);
}

/* A name from the file, fit for a message: control bytes as '?', long
 * names cut with "...". */
static const char *printable(char *buf, size_t size, const unsigned char *s, size_t n)
{
    size_t i = 0, j = 0;
    for (; i < n && j + 4 < size; i++)
        buf[j++] = (s[i] < 0x20 || s[i] == 0x7f) ? '?' : (char)s[i];
    if (i < n) {
        memcpy(buf + j, "...", 3);
        j += 3;
    }
    buf[j] = 0;
    return buf;
}

const char *osw_dtype_name(int dtype)
{
    switch (dtype) {
    case OSW_F32: return "f32";
    case OSW_F16: return "f16";
    case OSW_I32: return "i32";
    default: return "?";
    }
}

size_t osw_dtype_size(int dtype)
{
    switch (dtype) {
    case OSW_F32: return 4;
    case OSW_F16: return 2;
    case OSW_I32: return 4;
    default: return 0;
    }
}

/* "[4, 2, 3]" */
static const char *shape_text(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t j = 0;
    j += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && j < size; i++)
        j += (size_t)snprintf(buf + j, size - j, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (j < size)
        snprintf(buf + j, size - j, "]");
    return buf;
}

/* ------------------------------------------------------------ checking */

/* A cursor over the variable part of the header, bounded by header_size. */
typedef struct cursor {
    const unsigned char *base;
    uint64_t pos, end;
} cursor;

static int take(cursor *c, uint64_t n, const unsigned char **p)
{
    if (n > c->end - c->pos)
        return -1;
    *p = c->base + c->pos;
    c->pos += n;
    return 0;
}

/* One length-prefixed string into *dst (copied, NUL-terminated, advancing
 * *dst). what names it in messages ("metadata key 3", "tensor 2 name"). */
static int take_string(osw_file *w, cursor *c, const char *what, uint32_t lo, uint32_t hi,
                       char **dst, const char **out, const unsigned char **raw,
                       uint32_t *rawlen)
{
    const unsigned char *p;
    uint64_t at = c->pos;
    if (take(c, 4, &p))
        return fail(w, OSCINE_E_W_HEADER, "%s: length field at byte %llu runs past "
                    "header_size (%llu)", what, (unsigned long long)at,
                    (unsigned long long)c->end);
    uint32_t n = rd32(p);
    if (n < lo || n > hi)
        return fail(w, OSCINE_E_W_HEADER, "%s: length %u at byte %llu outside %u..%u",
                    what, n, (unsigned long long)at, lo, hi);
    if (take(c, n, &p))
        return fail(w, OSCINE_E_W_HEADER, "%s: length %u at byte %llu runs past "
                    "header_size (%llu)", what, n, (unsigned long long)at,
                    (unsigned long long)c->end);
    if (memchr(p, 0, n)) {
        char pb[80];
        return fail(w, OSCINE_E_W_HEADER, "%s '%s': contains a NUL byte", what,
                    printable(pb, sizeof pb, p, n));
    }
    memcpy(*dst, p, n);
    (*dst)[n] = 0;
    *out = *dst;
    *dst += n + 1;
    if (raw)
        *raw = p;
    if (rawlen)
        *rawlen = n;
    return 0;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp((*(osw_meta_entry *const *)a)->key, (*(osw_meta_entry *const *)b)->key);
}

static int cmp_tensor(const void *a, const void *b)
{
    const osw_tensor *x = *(osw_tensor *const *)a, *y = *(osw_tensor *const *)b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->index > y->index) - (x->index < y->index);
}

/* Fixed header, sizes against the file length, CRC. */
static int check_frame(osw_file *w, uint64_t *header_size, uint64_t *data_offset,
                       uint64_t *data_size, uint32_t *nmeta, uint32_t *ntensor)
{
    const unsigned char *b = w->base;
    uint64_t len = w->len;
    size_t m = len < 8 ? (size_t)len : 8;
    if (memcmp(b, OSW_MAGIC, m)) {
        char pb[40];
        return fail(w, OSCINE_E_W_MAGIC, "not an oscine weights file (starts with '%s', "
                    "expected 'OSCINEW')", printable(pb, sizeof pb, b, m));
    }
    if (len < OSW_FIXED_HEADER)
        return fail(w, OSCINE_E_W_TRUNCATED, "file is %llu bytes, shorter than the %d-byte "
                    "fixed header", (unsigned long long)len, OSW_FIXED_HEADER);
    w->version = rd32(b + 8);
    if (w->version < 1 || w->version > OSW_VERSION)
        return fail(w, OSCINE_E_W_VERSION, "version %u, this build reads 1..%d "
                    "(written by a newer oscine?)", w->version, OSW_VERSION);
    uint32_t flags = rd32(b + 12);
    if (flags)
        return fail(w, OSCINE_E_W_HEADER, "flags 0x%x, expected 0", flags);
    for (int i = 48; i < 64; i++)
        if (b[i])
            return fail(w, OSCINE_E_W_HEADER, "reserved byte %d is 0x%02x, expected 0", i,
                        b[i]);
    *header_size = rd64(b + 16);
    *data_offset = rd64(b + 24);
    *data_size = rd64(b + 32);
    *nmeta = rd32(b + 40);
    *ntensor = rd32(b + 44);
    if (*header_size < OSW_FIXED_HEADER)
        return fail(w, OSCINE_E_W_HEADER, "header_size %llu, less than %d",
                    (unsigned long long)*header_size, OSW_FIXED_HEADER);
    if (*header_size > *data_offset)
        return fail(w, OSCINE_E_W_HEADER, "header_size %llu past data_offset %llu",
                    (unsigned long long)*header_size, (unsigned long long)*data_offset);
    if (*data_offset % OSW_ALIGN)
        return fail(w, OSCINE_E_W_OFFSET, "data_offset %llu not a multiple of %d",
                    (unsigned long long)*data_offset, OSW_ALIGN);
    if (*data_offset > len || *data_size > len - *data_offset ||
        len - *data_offset - *data_size < 4)
        return fail(w, OSCINE_E_W_TRUNCATED, "file is %llu bytes, its header says "
                    "data_offset %llu + data_size %llu + 4 (crc)", (unsigned long long)len,
                    (unsigned long long)*data_offset, (unsigned long long)*data_size);
    if (len - *data_offset - *data_size != 4)
        return fail(w, OSCINE_E_W_HEADER, "file is %llu bytes, its header says %llu "
                    "(data_offset %llu + data_size %llu + 4): trailing bytes",
                    (unsigned long long)len,
                    (unsigned long long)(*data_offset + *data_size + 4),
                    (unsigned long long)*data_offset, (unsigned long long)*data_size);
    uint32_t stored = rd32(b + len - 4);
    uint32_t crc = osw_crc32(0, b, (size_t)len - 4);
    if (crc != stored)
        return fail(w, OSCINE_E_W_CRC, "crc32 0x%08x, stored 0x%08x: the file is damaged",
                    crc, stored);
    return 0;
}

static int check_tensor(osw_file *w, cursor *c, int i, char **strs, uint64_t data_offset,
                        uint64_t data_size)
{
    osw_tensor *t = &w->tensors[i];
    const unsigned char *p, *raw;
    uint32_t rawlen;
    char what[48], pb[80];
    snprintf(what, sizeof what, "tensor %d name", i);
    t->index = i;
    int err = take_string(w, c, what, 1, OSW_MAX_NAME, strs, &t->name, &raw, &rawlen);
    if (err)
        return err;
    const char *nm = printable(pb, sizeof pb, raw, rawlen);
    if (take(c, 8, &p))
        return fail(w, OSCINE_E_W_HEADER, "tensor '%s': dtype and ndim run past "
                    "header_size (%llu)", nm, (unsigned long long)c->end);
    uint32_t dtype = rd32(p), ndim = rd32(p + 4);
    if (dtype >= OSW_DTYPE_COUNT)
        return fail(w, OSCINE_E_W_DTYPE, "tensor '%s': unknown dtype code %u", nm, dtype);
    if (ndim > OSW_MAX_DIMS)
        return fail(w, OSCINE_E_W_SHAPE, "tensor '%s': ndim %u, at most %d", nm, ndim,
                    OSW_MAX_DIMS);
    t->dtype = (int)dtype;
    t->ndim = (int)ndim;
    if (take(c, 8 * (uint64_t)ndim + 8, &p))
        return fail(w, OSCINE_E_W_HEADER, "tensor '%s': shape and offset run past "
                    "header_size (%llu)", nm, (unsigned long long)c->end);
    uint64_t count = 1;
    int overflow = 0;
    for (int d = 0; d < t->ndim; d++) {
        t->shape[d] = (int64_t)rd64(p + 8 * d);
        if (t->shape[d] < 0)
            return fail(w, OSCINE_E_W_SHAPE, "tensor '%s': dimension %d is %lld", nm, d,
                        (long long)t->shape[d]);
        overflow |= __builtin_mul_overflow(count, (uint64_t)t->shape[d], &count);
    }
    uint64_t nbytes;
    overflow |= __builtin_mul_overflow(count, (uint64_t)osw_dtype_size(t->dtype), &nbytes);
    if (overflow || nbytes > SIZE_MAX) {
        char sb[200];
        return fail(w, OSCINE_E_W_SHAPE, "tensor '%s': shape %s overflows", nm,
                    shape_text(sb, sizeof sb, t->ndim, t->shape));
    }
    t->offset = rd64(p + 8 * ndim);
    t->nbytes = nbytes;
    if (t->offset % OSW_ALIGN)
        return fail(w, OSCINE_E_W_OFFSET, "tensor '%s': offset %llu not a multiple of %d",
                    nm, (unsigned long long)t->offset, OSW_ALIGN);
    if (t->offset > data_size || nbytes > data_size - t->offset)
        return fail(w, OSCINE_E_W_OFFSET, "tensor '%s': offset %llu + %llu bytes past end "
                    "of data (%llu)", nm, (unsigned long long)t->offset,
                    (unsigned long long)nbytes, (unsigned long long)data_size);
    t->data = w->base + data_offset + t->offset;
    return 0;
}

static int check_tables(osw_file *w, uint64_t header_size, uint64_t data_offset,
                        uint64_t data_size, uint32_t nmeta, uint32_t ntensor)
{
    /* Counts against the room they need (a key: 4 + 1 + 4 bytes; a tensor:
     * 4 + 1 + 4 + 4 + 8) before allocating anything for them. */
    uint64_t room = header_size - OSW_FIXED_HEADER;
    if (nmeta > room / 9)
        return fail(w, OSCINE_E_W_HEADER, "meta_count %u cannot fit in header_size %llu",
                    nmeta, (unsigned long long)header_size);
    if (ntensor > (room - 9 * (uint64_t)nmeta) / 21)
        return fail(w, OSCINE_E_W_HEADER, "tensor_count %u cannot fit in header_size %llu "
                    "with %u metadata entries", ntensor, (unsigned long long)header_size,
                    nmeta);
    w->nmeta = (int)nmeta;
    w->ntensor = (int)ntensor;
    /* Strings: at most the header's bytes plus one NUL per string. */
    size_t nstr = (size_t)room + 2 * (size_t)nmeta + (size_t)ntensor + 1;
    w->strings = malloc(nstr);
    w->meta = calloc(nmeta ? nmeta : 1, sizeof *w->meta);
    w->meta_sorted = calloc(nmeta ? nmeta : 1, sizeof *w->meta_sorted);
    w->tensors = calloc(ntensor ? ntensor : 1, sizeof *w->tensors);
    w->sorted = calloc(ntensor ? ntensor : 1, sizeof *w->sorted);
    if (!w->strings || !w->meta || !w->meta_sorted || !w->tensors || !w->sorted)
        return fail(w, OSCINE_E_NOMEM, "no memory for %u metadata entries and %u tensors",
                    nmeta, ntensor);

    cursor c = {w->base, OSW_FIXED_HEADER, header_size};
    char *strs = w->strings;
    char what[128];
    for (int i = 0; i < w->nmeta; i++) {
        osw_meta_entry *e = &w->meta[i];
        snprintf(what, sizeof what, "metadata %d key", i);
        int err = take_string(w, &c, what, 1, OSW_MAX_KEY, &strs, &e->key, NULL, NULL);
        if (err)
            return err;
        char pb[80];
        snprintf(what, sizeof what, "metadata '%s' value",
                 printable(pb, sizeof pb, (const unsigned char *)e->key, strlen(e->key)));
        err = take_string(w, &c, what, 0, OSW_MAX_VALUE, &strs, &e->value, NULL, NULL);
        if (err)
            return err;
        w->meta_sorted[i] = e;
    }
    for (int i = 0; i < w->ntensor; i++) {
        int err = check_tensor(w, &c, i, &strs, data_offset, data_size);
        if (err)
            return err;
        w->sorted[i] = &w->tensors[i];
    }
    if (c.pos != header_size)
        return fail(w, OSCINE_E_W_HEADER, "tables end at byte %llu, header_size says %llu",
                    (unsigned long long)c.pos, (unsigned long long)header_size);

    char pb[80];
    qsort(w->meta_sorted, nmeta, sizeof *w->meta_sorted, cmp_meta);
    for (int i = 1; i < w->nmeta; i++)
        if (!strcmp(w->meta_sorted[i - 1]->key, w->meta_sorted[i]->key)) {
            const char *k = w->meta_sorted[i]->key;
            return fail(w, OSCINE_E_W_HEADER, "metadata '%s': duplicate key",
                        printable(pb, sizeof pb, (const unsigned char *)k, strlen(k)));
        }
    qsort(w->sorted, ntensor, sizeof *w->sorted, cmp_tensor);
    for (int i = 1; i < w->ntensor; i++)
        if (!strcmp(w->sorted[i - 1]->name, w->sorted[i]->name)) {
            const char *k = w->sorted[i]->name;
            return fail(w, OSCINE_E_W_HEADER, "tensor '%s': duplicate name (entries %d and %d)",
                        printable(pb, sizeof pb, (const unsigned char *)k, strlen(k)),
                        w->sorted[i - 1]->index, w->sorted[i]->index);
        }
    return 0;
}

static int check(osw_file *w)
{
    /* zeroed: gcc cannot see that every failure path returns nonzero */
    uint64_t header_size = 0, data_offset = 0, data_size = 0;
    uint32_t nmeta = 0, ntensor = 0;
    int err = check_frame(w, &header_size, &data_offset, &data_size, &nmeta, &ntensor);
    if (err)
        return err;
    return check_tables(w, header_size, data_offset, data_size, nmeta, ntensor);
}

/* ------------------------------------------------------------ open/close */

static osw_file *file_new(const char *path)
{
    osw_file *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->path = strdup(path);
    if (!w->path) {
        free(w);
        return NULL;
    }
    return w;
}

void osw_close(osw_file *w)
{
    if (!w)
        return;
    if (w->mapped)
        munmap((void *)w->base, w->len);
    else
        free((void *)w->base);
    free(w->strings);
    free(w->meta);
    free(w->meta_sorted);
    free(w->tensors);
    free(w->sorted);
    free(w->path);
    free(w);
}

static int finish(osw_file **out, osw_file *w)
{
    int err = check(w);
    if (err) {
        osw_close(w);
        return err;
    }
    *out = w;
    return 0;
}

int osw_open_memory(osw_file **out, const void *data, size_t len, const char *name)
{
    if (!out)
        return err_set(OSCINE_E_ARG, "osw_open_memory: out is NULL");
    *out = NULL;
    if (!data && len)
        return err_set(OSCINE_E_ARG, "osw_open_memory: data is NULL");
    osw_file *w = file_new(name ? name : "<memory>");
    void *copy = NULL;
    /* An aligned private copy: the caller's buffer may be freed or be
     * misaligned for floats, and the tensors must be 64-byte aligned. */
    if (!w || posix_memalign(&copy, OSW_ALIGN, len ? len : 1)) {
        osw_close(w);
        return err_set(OSCINE_E_NOMEM, "weights '%s': no memory for %zu bytes",
                       name ? name : "<memory>", len);
    }
    if (len)
        memcpy(copy, data, len);
    w->base = copy;
    w->len = len;
    return finish(out, w);
}

int osw_open(osw_file **out, const char *path)
{
    if (!out || !path)
        return err_set(OSCINE_E_ARG, "osw_open: NULL argument");
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not block */
    if (fd < 0)
        return err_set(OSCINE_E_IO, "weights '%s': cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        int e = errno;
        close(fd);
        return err_set(OSCINE_E_IO, "weights '%s': cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(OSCINE_E_IO, "weights '%s': not a regular file", path);
    }
    if ((uint64_t)st.st_size > SIZE_MAX) {
        close(fd);
        return err_set(OSCINE_E_IO, "weights '%s': too large to map", path);
    }
    if (st.st_size == 0) { /* mmap refuses 0 bytes; check an empty copy instead */
        close(fd);
        return osw_open_memory(out, "", 0, path);
    }
    osw_file *w = file_new(path);
    if (!w) {
        close(fd);
        return err_set(OSCINE_E_NOMEM, "weights '%s': no memory", path);
    }
    int flags = MAP_PRIVATE;
#ifdef MAP_POPULATE
    flags |= MAP_POPULATE; /* the CRC reads every page anyway */
#endif
    void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, flags, fd, 0);
    int e = errno;
    close(fd);
    if (p == MAP_FAILED) {
        osw_close(w);
        return err_set(OSCINE_E_IO, "weights '%s': cannot map: %s", path, strerror(e));
    }
    w->base = p;
    w->len = (size_t)st.st_size;
    w->mapped = 1;
    return finish(out, w);
}

/* ------------------------------------------------------------ accessors */

const char *osw_path(const osw_file *w)
{
    return w ? w->path : NULL;
}

uint32_t osw_format_version(const osw_file *w)
{
    return w ? w->version : 0;
}

int osw_meta_count(const osw_file *w)
{
    return w ? w->nmeta : 0;
}

int osw_meta_at(const osw_file *w, int i, const char **key, const char **value)
{
    if (!w || i < 0 || i >= w->nmeta)
        return OSCINE_E_ARG;
    if (key)
        *key = w->meta[i].key;
    if (value)
        *value = w->meta[i].value;
    return 0;
}

const char *osw_meta(const osw_file *w, const char *key)
{
    if (!w || !key)
        return NULL;
    size_t lo = 0, hi = (size_t)w->nmeta;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(key, w->meta_sorted[mid]->key);
        if (!r)
            return w->meta_sorted[mid]->value;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

int osw_tensor_count(const osw_file *w)
{
    return w ? w->ntensor : 0;
}

int osw_tensor_info(const osw_file *w, int i, const char **name, int *ndim,
                    const int64_t **shape)
{
    if (!w || i < 0 || i >= w->ntensor)
        return OSCINE_E_ARG;
    const osw_tensor *t = &w->tensors[i];
    if (name)
        *name = t->name;
    if (ndim)
        *ndim = t->ndim;
    if (shape)
        *shape = t->shape;
    return 0;
}

int osw_tensor_dtype(const osw_file *w, int i)
{
    if (!w || i < 0 || i >= w->ntensor)
        return OSCINE_E_ARG;
    return w->tensors[i].dtype;
}

int osw_tensor_find(const osw_file *w, const char *name)
{
    if (!w || !name)
        return -1;
    size_t lo = 0, hi = (size_t)w->ntensor;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int r = strcmp(name, w->sorted[mid]->name);
        if (!r)
            return w->sorted[mid]->index;
        if (r < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return -1;
}

int osw_get_f32(const osw_file *w, const char *name, int ndim, const int64_t *shape,
                const float **data)
{
    if (data)
        *data = NULL;
    if (!w || !name || !data || ndim < 0 || ndim > OSW_MAX_DIMS || (ndim && !shape))
        return err_set(OSCINE_E_ARG, "osw_get_f32: bad argument (tensor '%s', ndim %d)",
                       name ? name : "(null)", ndim);
    int i = osw_tensor_find(w, name);
    if (i < 0)
        return fail(w, OSCINE_E_W_MISSING, "tensor '%s' not found (%d tensors)", name,
                    w->ntensor);
    const osw_tensor *t = &w->tensors[i];
    if (t->dtype != OSW_F32)
        return fail(w, OSCINE_E_W_DTYPE, "tensor '%s': dtype %s, expected f32", name,
                    osw_dtype_name(t->dtype));
    int same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++)
        same = t->shape[d] == shape[d];
    if (!same) {
        char want[200], got[200];
        return fail(w, OSCINE_E_W_SHAPE, "tensor '%s': shape %s, expected %s", name,
                    shape_text(got, sizeof got, t->ndim, t->shape),
                    shape_text(want, sizeof want, ndim, shape));
    }
    const float *f = (const float *)(const void *)t->data;
    size_t n = (size_t)(t->nbytes / sizeof(float));
    for (size_t k = 0; k < n; k++)
        if (!isfinite(f[k]))
            return fail(w, OSCINE_E_W_VALUE, "tensor '%s': %s at element %zu (of %zu)", name,
                        isnan(f[k]) ? "NaN" : "infinity", k, n);
    *data = f;
    return 0;
}

/* The value of key, or NULL with OSCINE_E_W_MISSING set. */
static const char *meta_needed(const osw_file *w, const char *key)
{
    const char *s = osw_meta(w, key);
    if (!s)
        fail(w, OSCINE_E_W_MISSING, "metadata '%s' missing", key);
    return s;
}

static int meta_bad(const osw_file *w, const char *key, const char *s, const char *need)
{
    char pb[80];
    return fail(w, OSCINE_E_W_MODEL, "metadata '%s' = '%s', need %s", key,
                printable(pb, sizeof pb, (const unsigned char *)s, strlen(s)), need);
}

int osw_meta_int(const osw_file *w, const char *key, long lo, long hi, int *v)
{
    const char *s = meta_needed(w, key);
    if (!s)
        return OSCINE_E_W_MISSING;
    char *end, need[80];
    errno = 0;
    long x = strtol(s, &end, 10);
    if (end == s || *end || errno || x < lo || x > hi) {
        snprintf(need, sizeof need, "an integer %ld..%ld", lo, hi);
        return meta_bad(w, key, s, need);
    }
    *v = (int)x;
    return 0;
}

int osw_meta_float(const osw_file *w, const char *key, const float *def, float *v)
{
    const char *s = osw_meta(w, key);
    if (!s && def) {
        *v = *def;
        return 0;
    }
    if (!s && !meta_needed(w, key))
        return OSCINE_E_W_MISSING;
    char *end;
    double x = strtod(s, &end);
    if (end == s || *end || !isfinite(x) || fabs(x) > FLT_MAX)
        return meta_bad(w, key, s, "a finite number");
    *v = (float)x;
    return 0;
}

int osw_meta_int_list(const osw_file *w, const char *key, long lo, long hi, int *v, int max,
                      int *n)
{
    *n = 0;
    const char *s = meta_needed(w, key);
    if (!s)
        return OSCINE_E_W_MISSING;
    char need[96];
    snprintf(need, sizeof need, "up to %d comma-separated integers %ld..%ld", max, lo, hi);
    const char *p = s;
    while (*p) {
        char *end;
        errno = 0;
        long x = strtol(p, &end, 10);
        if (end == p || errno || x < lo || x > hi || *n == max || (*end && *end != ','))
            return meta_bad(w, key, s, need);
        v[(*n)++] = (int)x;
        p = *end ? end + 1 : end;
        if (*end && !*p) /* a trailing comma */
            return meta_bad(w, key, s, need);
    }
    if (!*n)
        return meta_bad(w, key, s, need);
    return 0;
}

int osw_expect_meta(const osw_file *w, const char *key, const char *value)
{
    if (!w || !key || !value)
        return err_set(OSCINE_E_ARG, "osw_expect_meta: NULL argument");
    const char *v = osw_meta(w, key);
    if (!v)
        return fail(w, OSCINE_E_W_MISSING, "metadata '%s' missing (expected '%s')", key,
                    value);
    if (strcmp(v, value)) {
        char pb[80];
        return fail(w, OSCINE_E_W_MODEL, "metadata '%s' is '%s', expected '%s'", key,
                    printable(pb, sizeof pb, (const unsigned char *)v, strlen(v)), value);
    }
    return 0;
}
