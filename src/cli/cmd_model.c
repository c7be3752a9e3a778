/* cmd_model.c - `oscine model PATH`: check a .osw weights file and print
 * its metadata and tensor table. */
#include "cli.h"

#include "nn/weights.h"
#include "oscine.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

/* Metadata is free text from the file: show control bytes escaped so a
 * value cannot rewrite the terminal or break the layout. */
static void put_escaped(const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\\')
            fputs("\\\\", stdout);
        else if (c < 0x20 || c == 0x7f)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

/* Terminal columns put_escaped(s) takes (UTF-8 continuation bytes take none). */
static int width(const char *s)
{
    int n = 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\n' || c == '\t' || c == '\\')
            n += 2;
        else if (c < 0x20 || c == 0x7f)
            n += 4;
        else if ((c & 0xc0) != 0x80)
            n++;
    }
    return n;
}

static int shape_str(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t j = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < ndim && j < size; d++)
        j += (size_t)snprintf(buf + j, size - j, "%s%lld", d ? ", " : "", (long long)shape[d]);
    if (j < size)
        j += (size_t)snprintf(buf + j, size - j, "]");
    return (int)(j < size ? j : size - 1);
}

int cmd_model(int argc, char **argv)
{
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] == '-' && argv[i][1])
            return cli_fail(EXIT_USAGE, "model: unknown option '%s' (usage: oscine model PATH)",
                            argv[i]);
        if (path)
            return cli_fail(EXIT_USAGE, "model: one file at a time (usage: oscine model PATH)");
        path = argv[i];
    }
    if (!path)
        return cli_fail(EXIT_USAGE, "model: no file given (usage: oscine model PATH)");

    osw_file *w = NULL;
    int err = osw_open(&w, path);
    if (err)
        return cli_fail_lib(EXIT_RUNTIME, err, NULL);

    struct stat st;
    long long size = stat(path, &st) ? -1 : (long long)st.st_size;
    printf("file      %s (%lld bytes, format version %u)\n", path, size,
           osw_format_version(w));

    int nmeta = osw_meta_count(w), kw = 4;
    for (int i = 0; i < nmeta; i++) {
        const char *k;
        osw_meta_at(w, i, &k, NULL);
        if (width(k) > kw)
            kw = width(k);
    }
    printf("metadata  %d %s\n", nmeta, nmeta == 1 ? "entry" : "entries");
    for (int i = 0; i < nmeta; i++) {
        const char *k, *v;
        osw_meta_at(w, i, &k, &v);
        printf("  ");
        put_escaped(k);
        printf("%*s  ", kw - width(k), "");
        put_escaped(v);
        putchar('\n');
    }

    int nt = osw_tensor_count(w), nw = 4, sw = 5;
    char sh[256];
    for (int i = 0; i < nt; i++) {
        const char *n;
        int nd;
        const int64_t *s;
        osw_tensor_info(w, i, &n, &nd, &s);
        if (width(n) > nw)
            nw = width(n);
        int l = shape_str(sh, sizeof sh, nd, s);
        if (l > sw)
            sw = l;
    }
    printf("tensors   %d\n", nt);
    printf("  %-*s  dtype  %-*s  %12s\n", nw, "name", sw, "shape", "params");
    /* The reader refused any shape whose byte size overflows, so these
     * products and sums fit in 64 bits. */
    uint64_t total = 0, bytes = 0;
    for (int i = 0; i < nt; i++) {
        const char *n;
        int nd;
        const int64_t *s;
        osw_tensor_info(w, i, &n, &nd, &s);
        int dt = osw_tensor_dtype(w, i);
        uint64_t count = 1;
        for (int d = 0; d < nd; d++)
            count *= (uint64_t)s[d];
        total += count;
        bytes += count * osw_dtype_size(dt);
        shape_str(sh, sizeof sh, nd, s);
        printf("  ");
        put_escaped(n);
        printf("%*s  %-5s  %-*s  %12llu\n", nw - width(n), "", osw_dtype_name(dt), sw, sh,
               (unsigned long long)count);
    }
    printf("total     %d %s, %llu parameters, %llu bytes of tensor data\n", nt,
           nt == 1 ? "tensor" : "tensors", (unsigned long long)total,
           (unsigned long long)bytes);
    /* what a model would refuse on load: NaN or infinity in an f32 tensor */
    for (int i = 0; i < nt; i++) {
        const char *n;
        int nd;
        const int64_t *s;
        const float *d;
        osw_tensor_info(w, i, &n, &nd, &s);
        if (osw_tensor_dtype(w, i) == OSW_F32 && (err = osw_get_f32(w, n, nd, s, &d))) {
            osw_close(w);
            return cli_fail_lib(EXIT_RUNTIME, err, NULL);
        }
    }
    printf("valid     magic, version, sizes, crc32, strings, shapes, offsets and finite "
           "values checked\n");
    osw_close(w);
    return EXIT_OK;
}
