/* npy.c - strict NumPy .npy reader and writer for float arrays (see npy.h). */
#include "io/npy.h"

#include "base/error.h"
#include "io/audiofile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const unsigned char MAGIC[6] = {0x93, 'N', 'U', 'M', 'P', 'Y'};

/* A tiny cursor over the header dict text. */
typedef struct cur {
    const char *p, *end;
} cur;

static void skip_ws(cur *c)
{
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t'))
        c->p++;
}

static int eat(cur *c, char ch)
{
    skip_ws(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* A quoted key or value ('...' or "..."), at most cap-1 characters. */
static int quoted(cur *c, char *out, size_t cap)
{
    skip_ws(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    char q = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != q) {
        if (n + 1 >= cap || *c->p == '\\')
            return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = 0;
    return 0;
}

static int word(cur *c, const char *w)
{
    skip_ws(c);
    size_t n = strlen(w);
    if ((size_t)(c->end - c->p) >= n && !memcmp(c->p, w, n)) {
        c->p += n;
        return 1;
    }
    return 0;
}

/* A non-negative integer of at most 18 digits. */
static int integer(cur *c, int64_t *v)
{
    skip_ws(c);
    int64_t x = 0;
    int digits = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        if (++digits > 18)
            return -1;
        x = x * 10 + (*c->p++ - '0');
    }
    if (!digits)
        return -1;
    if (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) /* Python 2 longs */
        c->p++;
    *v = x;
    return 0;
}

static int bad(const char *name, const char *what)
{
    return err_set(OSCINE_E_FORMAT, "npy '%s': %s", name, what);
}

int npy_parse_f32(const void *buf, size_t len, const char *name, npy_array *out)
{
    const unsigned char *b = buf;
    memset(out, 0, sizeof *out);
    if (!name)
        name = "<memory>";
    if (len < 10 || memcmp(b, MAGIC, sizeof MAGIC))
        return bad(name, "not a NumPy .npy file (bad magic)");
    int major = b[6], minor = b[7];
    size_t hlen, hstart;
    if (major == 1 && minor == 0) {
        hlen = (size_t)b[8] | (size_t)b[9] << 8;
        hstart = 10;
    } else if ((major == 2 || major == 3) && minor == 0) {
        if (len < 12)
            return bad(name, "truncated header");
        hlen = (size_t)b[8] | (size_t)b[9] << 8 | (size_t)b[10] << 16 | (size_t)b[11] << 24;
        hstart = 12;
    } else {
        char m[64];
        snprintf(m, sizeof m, "format version %d.%d (this reader reads 1.0, 2.0, 3.0)", major,
                 minor);
        return bad(name, m);
    }
    if (hlen > len - hstart)
        return bad(name, "header runs past the end of the file");
    if (hlen == 0 || b[hstart + hlen - 1] != '\n')
        return bad(name, "header does not end in a newline");
    for (size_t i = 0; i < hlen; i++)
        if (b[hstart + i] == 0 || b[hstart + i] > 0x7e)
            return bad(name, "header is not printable ASCII");

    cur c = {(const char *)b + hstart, (const char *)b + hstart + hlen - 1};
    int have_descr = 0, have_order = 0, have_shape = 0, fortran = 0, ndim = 0, f64 = 0;
    int64_t shape[2] = {0, 1};
    if (!eat(&c, '{'))
        return bad(name, "header is not a dict");
    for (;;) {
        char key[32];
        if (eat(&c, '}'))
            break;
        if (quoted(&c, key, sizeof key) || !eat(&c, ':'))
            return bad(name, "header dict malformed");
        if (!strcmp(key, "descr")) {
            char d[16];
            if (have_descr++ || quoted(&c, d, sizeof d))
                return bad(name, "'descr' malformed or repeated");
            if (!strcmp(d, "<f4"))
                f64 = 0;
            else if (!strcmp(d, "<f8"))
                f64 = 1;
            else {
                char m[96];
                snprintf(m, sizeof m, "dtype '%s' not supported (need float32 '<f4' or "
                         "float64 '<f8', little-endian)", d);
                return bad(name, m);
            }
        } else if (!strcmp(key, "fortran_order")) {
            if (have_order++)
                return bad(name, "'fortran_order' repeated");
            if (word(&c, "True"))
                fortran = 1;
            else if (word(&c, "False"))
                fortran = 0;
            else
                return bad(name, "'fortran_order' is not True or False");
        } else if (!strcmp(key, "shape")) {
            if (have_shape++ || !eat(&c, '('))
                return bad(name, "'shape' malformed or repeated");
            while (!eat(&c, ')')) {
                int64_t v;
                if (ndim == 2)
                    return bad(name, "shape has more than 2 dimensions");
                if (integer(&c, &v))
                    return bad(name, "shape is not a tuple of non-negative integers");
                shape[ndim++] = v;
                if (!eat(&c, ',')) {
                    if (!eat(&c, ')'))
                        return bad(name, "shape tuple malformed");
                    break;
                }
            }
            if (ndim == 0)
                return bad(name, "shape () is a scalar, not an array");
        } else {
            char m[80];
            snprintf(m, sizeof m, "unexpected header key '%s'", key);
            return bad(name, m);
        }
        if (!eat(&c, ',')) {
            if (!eat(&c, '}'))
                return bad(name, "header dict malformed");
            break;
        }
    }
    skip_ws(&c);
    if (c.p != c.end)
        return bad(name, "text after the header dict");
    if (!have_descr || !have_order || !have_shape)
        return bad(name, "header lacks 'descr', 'fortran_order' or 'shape'");

    size_t item = f64 ? 8 : 4;
    int64_t count = shape[0];
    if (shape[1] && count > INT64_MAX / shape[1])
        return bad(name, "shape overflows");
    count *= shape[1];
    if (count > NPY_MAX_BYTES / (int64_t)item)
        return bad(name, "array too large");
    size_t data = hstart + hlen, need = (size_t)count * item;
    if (len - data < need) {
        char m[128];
        snprintf(m, sizeof m, "truncated: shape needs %zu data bytes, the file has %zu", need,
                 len - data);
        return bad(name, m);
    }
    if (len - data > need) {
        char m[128];
        snprintf(m, sizeof m, "%zu bytes after the data the shape describes", len - data - need);
        return bad(name, m);
    }
    float *v = malloc(count ? (size_t)count * sizeof(float) : 1);
    if (!v)
        return err_set(OSCINE_E_NOMEM, "npy '%s': out of memory", name);
    const unsigned char *src = b + data;
    int64_t rows = shape[0], cols = shape[1];
    for (int64_t i = 0; i < count; i++) {
        /* fortran order: element i is (i % rows, i / rows) */
        int64_t dst = fortran && ndim == 2 ? (i % rows) * cols + i / rows : i;
        if (f64) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            v[dst] = (float)d;
        } else {
            memcpy(&v[dst], src + 4 * i, 4);
        }
    }
    out->ndim = ndim;
    out->shape[0] = shape[0];
    out->shape[1] = ndim == 2 ? shape[1] : 1;
    out->data = v;
    return 0;
}

int npy_read_f32(const char *path, npy_array *out)
{
    memset(out, 0, sizeof *out);
    /* without blocking: a FIFO would otherwise wait for a writer */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return err_set(OSCINE_E_IO, "npy '%s': %s", path, strerror(errno));
    struct stat st = {0};
    FILE *f = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) || !(f = fdopen(fd, "rb"))) {
        close(fd);
        return err_set(OSCINE_E_IO, "npy '%s': %s", path,
                       S_ISDIR(st.st_mode) ? "is a directory"
                                           : "not a regular file (a pipe or device)");
    }
    if (st.st_size > NPY_MAX_BYTES + 65536) {
        fclose(f);
        return err_set(OSCINE_E_FORMAT, "npy '%s': array too large", path);
    }
    size_t n = (size_t)st.st_size;
    unsigned char *buf = malloc(n ? n : 1);
    if (!buf) {
        fclose(f);
        return err_set(OSCINE_E_NOMEM, "npy '%s': out of memory", path);
    }
    size_t got = fread(buf, 1, n, f);
    int rerr = ferror(f);
    fclose(f);
    int e;
    if (got != n || rerr)
        e = err_set(OSCINE_E_IO, "npy '%s': read error", path);
    else
        e = npy_parse_f32(buf, n, path, out);
    free(buf);
    return e;
}

void npy_free(npy_array *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

int npy_write_f32(const char *path, const float *data, int ndim, const int64_t *shape)
{
    if (ndim < 1 || ndim > 2 || shape[0] < 0 || (ndim == 2 && shape[1] < 0))
        return err_set(OSCINE_E_ARG, "npy '%s': bad shape", path);
    char dict[128];
    int dl;
    if (ndim == 1)
        dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld,), }",
                      (long long)shape[0]);
    else
        dl = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (%lld, %lld), }",
                      (long long)shape[0], (long long)shape[1]);
    size_t total = 10 + (size_t)dl + 1;
    size_t padded = (total + 63) / 64 * 64;
    size_t hlen = padded - 10;
    unsigned char head[192];
    memcpy(head, MAGIC, 6);
    head[6] = 1;
    head[7] = 0;
    head[8] = (unsigned char)(hlen & 0xff);
    head[9] = (unsigned char)(hlen >> 8);
    memcpy(head + 10, dict, (size_t)dl);
    memset(head + 10 + dl, ' ', hlen - (size_t)dl - 1);
    head[padded - 1] = '\n';

    out_tmp tmp;
    int fd = out_tmp_create(&tmp, path);
    if (fd < 0)
        return fd;
    FILE *f = fdopen(fd, "wb");
    if (!f) {
        int en = errno;
        close(fd);
        out_tmp_discard(&tmp);
        return err_set(OSCINE_E_IO, "npy '%s': %s", path, strerror(en));
    }
    size_t count = (size_t)shape[0] * (ndim == 2 ? (size_t)shape[1] : 1);
    int ok = fwrite(head, 1, padded, f) == padded && fwrite(data, sizeof(float), count, f) == count;
    int en = ok ? 0 : errno;
    if (fclose(f) && ok) {
        ok = 0;
        en = errno;
    }
    if (!ok)
        out_tmp_discard(&tmp);
    else if (!(en = out_tmp_commit(&tmp)))
        return 0;
    return err_set(OSCINE_E_IO, "npy '%s': write failed: %s", path, strerror(en));
}
