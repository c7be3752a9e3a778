/* test_weights.c - the .osw reader (src/nn/weights.c) and `oscine model`.
 *
 * Reads tests/fixtures/weights/small.osw (written by
 * tools/make_weights_fixture.py; its names and values are known here) and
 * corrupts copies of its bytes field by field. Most corruptions are
 * re-sealed with a fresh CRC so they reach the check they aim at instead of
 * stopping at the checksum. Run from the repository root. */
#include "util/util.h"

#include "nn/weights.h"
#include "oscine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURE "tests/fixtures/weights/small.osw"
#define NAME "mem/small.osw" /* the name corrupt copies are opened under */

static uint8_t *fixture;
static size_t fixture_len;

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const uint8_t *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}

static void wr64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}

static int setup(void **state)
{
    fixture = read_file_bytes(FIXTURE, &fixture_len);
    assert_true(fixture_len > 64);
    return 0;
}

static int teardown(void **state)
{
    free(fixture);
    return 0;
}

/* A fresh copy of the fixture, with room for `extra` more bytes. */
static uint8_t *copy(size_t extra)
{
    uint8_t *b = malloc(fixture_len + extra);
    assert_non_null(b);
    memcpy(b, fixture, fixture_len);
    return b;
}

/* Write a fresh CRC into the last 4 bytes. */
static void reseal(uint8_t *b, size_t len)
{
    wr32(b + len - 4, osw_crc32(0, b, len - 4));
}

/* Open len bytes; expect code `want`, and when it fails a message naming the
 * file and containing each of the NULL-terminated substrings. */
static void expect_open(const uint8_t *b, size_t len, int want, ...)
{
    osw_file *w = (osw_file *)1;
    int err = osw_open_memory(&w, b, len, NAME);
    if (err != want)
        fail_msg("expected %d (%s), got %d: %s", want, oscine_strerror(want), err,
                 oscine_last_error());
    if (want == 0) {
        assert_non_null(w);
        osw_close(w);
        return;
    }
    assert_null(w);
    const char *msg = oscine_last_error();
    if (!strstr(msg, "'" NAME "'"))
        fail_msg("message does not name the file: %s", msg);
    va_list ap;
    va_start(ap, want);
    const char *s;
    while ((s = va_arg(ap, const char *)))
        if (!strstr(msg, s))
            fail_msg("message lacks '%s': %s", s, msg);
    va_end(ap);
}

/* Byte offsets of a tensor table entry's fields, found by walking the
 * header as the spec lays it out. */
typedef struct entry {
    size_t name_len, name, dtype, ndim, shape, offset;
} entry;

static size_t skip_meta(const uint8_t *b)
{
    size_t p = 64;
    uint32_t nmeta = rd32(b + 40);
    for (uint32_t i = 0; i < nmeta; i++) {
        p += 4 + rd32(b + p);
        p += 4 + rd32(b + p);
    }
    return p;
}

/* Offset of metadata key `key`'s length field. */
static size_t find_meta(const uint8_t *b, const char *key)
{
    size_t p = 64;
    uint32_t nmeta = rd32(b + 40);
    for (uint32_t i = 0; i < nmeta; i++) {
        uint32_t n = rd32(b + p);
        if (n == strlen(key) && !memcmp(b + p + 4, key, n))
            return p;
        p += 4 + n;
        p += 4 + rd32(b + p);
    }
    fail_msg("metadata %s not in fixture", key);
    return 0;
}

static entry find_tensor(const uint8_t *b, const char *name)
{
    size_t p = skip_meta(b);
    uint32_t nt = rd32(b + 44);
    for (uint32_t i = 0; i < nt; i++) {
        entry e;
        e.name_len = p;
        e.name = p + 4;
        uint32_t n = rd32(b + p);
        e.dtype = e.name + n;
        e.ndim = e.dtype + 4;
        e.shape = e.ndim + 4;
        e.offset = e.shape + 8 * rd32(b + e.ndim);
        if (n == strlen(name) && !memcmp(b + e.name, name, n))
            return e;
        p = e.offset + 8;
    }
    fail_msg("tensor %s not in fixture", name);
    entry none = {0};
    return none;
}

/* ---------------------------------------------------------- valid file */

static void test_valid_file(void **state)
{
    osw_file *w = NULL;
    int err = osw_open(&w, FIXTURE);
    if (err)
        fail_msg("%s", oscine_last_error());
    assert_string_equal(osw_path(w), FIXTURE);

    /* tools/osw.py wrote the version field: the two constants agree. */
    assert_int_equal(rd32(fixture + 8), OSW_VERSION);
    assert_int_equal(osw_format_version(w), OSW_VERSION);
    assert_memory_equal(fixture, OSW_MAGIC, 8);

    assert_int_equal(osw_meta_count(w), 9);
    assert_string_equal(osw_meta(w, "kind"), "test");
    assert_string_equal(osw_meta(w, "sample_rate"), "16000");
    assert_string_equal(osw_meta(w, "metrics"), "{}");
    assert_null(osw_meta(w, "absent"));
    assert_null(osw_meta(w, ""));
    const char *k, *v;
    assert_int_equal(osw_meta_at(w, 0, &k, &v), 0);
    assert_string_equal(k, "kind");
    assert_string_equal(v, "test");
    assert_int_equal(osw_meta_at(w, 8, &k, &v), 0);
    assert_string_equal(k, "metrics");
    assert_int_equal(osw_expect_meta(w, "kind", "test"), 0);

    static const char *const names[] = {"enc.0.weight", "enc.0.bias", "dec.0.weight",
                                        "gain", "half", "steps"};
    static const int ndims[] = {3, 1, 2, 0, 1, 1};
    static const int dtypes[] = {OSW_F32, OSW_F32, OSW_F32, OSW_F32, OSW_F16, OSW_I32};
    assert_int_equal(osw_tensor_count(w), 6);
    for (int i = 0; i < 6; i++) {
        const char *n;
        int nd;
        const int64_t *sh;
        assert_int_equal(osw_tensor_info(w, i, &n, &nd, &sh), 0);
        assert_string_equal(n, names[i]);
        assert_int_equal(nd, ndims[i]);
        assert_non_null(sh);
        assert_int_equal(osw_tensor_dtype(w, i), dtypes[i]);
        assert_int_equal(osw_tensor_find(w, names[i]), i);
    }
    assert_int_equal(osw_tensor_find(w, "nope"), -1);

    const float *d;
    const int64_t s_enc[] = {4, 2, 3};
    assert_int_equal(osw_get_f32(w, "enc.0.weight", 3, s_enc, &d), 0);
    assert_int_equal((uintptr_t)d % 64, 0);
    for (int i = 0; i < 24; i++)
        assert_true(d[i] == 0.25f * (float)i - 1.0f);
    const int64_t s_bias[] = {4};
    assert_int_equal(osw_get_f32(w, "enc.0.bias", 1, s_bias, &d), 0);
    assert_int_equal((uintptr_t)d % 64, 0);
    assert_true(d[0] == 0.5f && d[1] == -0.5f && d[2] == 1.5f && d[3] == -1.5f);
    const int64_t s_dec[] = {3, 5};
    assert_int_equal(osw_get_f32(w, "dec.0.weight", 2, s_dec, &d), 0);
    for (int i = 0; i < 15; i++)
        assert_true(d[i] == (float)(i - 7));
    assert_int_equal(osw_get_f32(w, "gain", 0, NULL, &d), 0);
    assert_true(d[0] == 0.75f);
    osw_close(w);
}

/* Corner cases written by osw.py: 8 dimensions, zero-size tensors (one at
 * the very end of the data section), UTF-8 names, odd metadata values. */
static void test_edge_file(void **state)
{
    osw_file *w = NULL;
    if (osw_open(&w, "tests/fixtures/weights/edge.osw"))
        fail_msg("%s", oscine_last_error());
    assert_string_equal(osw_meta(w, "kind"), "edge");
    assert_string_equal(osw_meta(w, "empty"), "");
    assert_string_equal(osw_meta(w, "training_command"),
                        "python3 train.py \\\n  --epochs 3\t# two lines");
    assert_string_equal(osw_meta(w, "\xc3\xbcnicode"), "w\xc3\xa4rt");
    assert_int_equal(osw_tensor_count(w), 4);
    const float *d;
    const int64_t s8[] = {2, 1, 3, 1, 1, 2, 1, 2};
    assert_int_equal(osw_get_f32(w, "eight.d", 8, s8, &d), 0);
    for (int i = 0; i < 24; i++)
        assert_true(d[i] == (float)i);
    const int64_t s30[] = {3, 0}, s0[] = {0}, s17[] = {17};
    assert_int_equal(osw_get_f32(w, "none", 2, s30, &d), 0);
    assert_int_equal(osw_get_f32(w, "last.empty", 1, s0, &d), 0);
    assert_int_equal(osw_get_f32(w, "b\xc3\xa9ta.\xcf\x89", 1, s17, &d), 0);
    assert_true(d[0] == -0.5f && d[16] == -0.5f);
    osw_close(w);

    assert_int_equal(osw_open(&w, "tests/fixtures/weights/empty.osw"), 0);
    assert_int_equal(osw_meta_count(w), 0);
    assert_int_equal(osw_tensor_count(w), 0);
    assert_null(osw_meta(w, "kind"));
    assert_int_equal(osw_tensor_find(w, "x"), -1);
    assert_int_equal(osw_expect_meta(w, "kind", "denoise"), OSCINE_E_W_MISSING);
    osw_close(w);
}

static void test_open_memory_copies(void **state)
{
    uint8_t *b = copy(0);
    osw_file *w = NULL;
    assert_int_equal(osw_open_memory(&w, b, fixture_len, NULL), 0);
    assert_string_equal(osw_path(w), "<memory>");
    memset(b, 0xAA, fixture_len); /* the reader keeps its own copy */
    free(b);
    const float *d;
    const int64_t s[] = {4};
    assert_int_equal(osw_get_f32(w, "enc.0.bias", 1, s, &d), 0);
    assert_int_equal((uintptr_t)d % 64, 0);
    assert_true(d[2] == 1.5f);
    osw_close(w);
}

static void test_crc32(void **state)
{
    assert_int_equal(osw_crc32(0, "123456789", 9), 0xCBF43926u);
    assert_int_equal(osw_crc32(0, "", 0), 0);
    uint32_t c = osw_crc32(0, "1234", 4);
    assert_int_equal(osw_crc32(c, "56789", 5), 0xCBF43926u);
    /* the fixture's stored CRC is the CRC of everything before it */
    assert_int_equal(osw_crc32(0, fixture, fixture_len - 4), rd32(fixture + fixture_len - 4));
}

static void test_accessors_bad_args(void **state)
{
    osw_file *w = NULL;
    assert_int_equal(osw_open(&w, FIXTURE), 0);
    const char *k;
    assert_int_equal(osw_meta_at(w, -1, &k, NULL), OSCINE_E_ARG);
    assert_int_equal(osw_meta_at(w, 9, &k, NULL), OSCINE_E_ARG);
    assert_int_equal(osw_tensor_info(w, 6, NULL, NULL, NULL), OSCINE_E_ARG);
    assert_int_equal(osw_tensor_info(w, -1, NULL, NULL, NULL), OSCINE_E_ARG);
    assert_int_equal(osw_tensor_dtype(w, 6), OSCINE_E_ARG);
    const float *d = (const float *)1;
    assert_int_equal(osw_get_f32(w, "gain", OSW_MAX_DIMS + 1, NULL, &d), OSCINE_E_ARG);
    assert_null(d);
    assert_int_equal(osw_get_f32(w, "enc.0.bias", 1, NULL, &d), OSCINE_E_ARG);
    assert_int_equal(osw_expect_meta(w, NULL, "x"), OSCINE_E_ARG);
    osw_close(w);
    assert_int_equal(osw_meta_count(NULL), 0);
    assert_int_equal(osw_tensor_count(NULL), 0);
    assert_null(osw_meta(NULL, "kind"));
    osw_close(NULL);
    assert_string_equal(osw_dtype_name(OSW_F32), "f32");
    assert_string_equal(osw_dtype_name(99), "?");
    assert_int_equal(osw_dtype_size(OSW_F16), 2);
    assert_int_equal(osw_dtype_size(-1), 0);
}

/* ------------------------------------------------ asking for the wrong thing */

static void expect_get(const osw_file *w, const char *name, int ndim, const int64_t *shape,
                       int want, const char *s1, const char *s2)
{
    const float *d = (const float *)1;
    assert_int_equal(osw_get_f32(w, name, ndim, shape, &d), want);
    assert_null(d);
    const char *msg = oscine_last_error();
    if (!strstr(msg, "'" FIXTURE "'") || !strstr(msg, name) || (s1 && !strstr(msg, s1)) ||
        (s2 && !strstr(msg, s2)))
        fail_msg("message lacks file, '%s', '%s' or '%s': %s", name, s1 ? s1 : "",
                 s2 ? s2 : "", msg);
}

static void test_missing_tensor(void **state)
{
    osw_file *w = NULL;
    assert_int_equal(osw_open(&w, FIXTURE), 0);
    const int64_t s[] = {4};
    expect_get(w, "enc.1.weight", 1, s, OSCINE_E_W_MISSING, "not found", NULL);
    expect_get(w, "", 1, s, OSCINE_E_W_MISSING, "not found", NULL);
    osw_close(w);
}

static void test_wrong_shape_request(void **state)
{
    osw_file *w = NULL;
    assert_int_equal(osw_open(&w, FIXTURE), 0);
    const int64_t s1[] = {4, 3, 2}, s2[] = {4, 6}, s3[] = {4, 2, 3, 1};
    expect_get(w, "enc.0.weight", 3, s1, OSCINE_E_W_SHAPE, "[4, 2, 3]", "[4, 3, 2]");
    expect_get(w, "enc.0.weight", 2, s2, OSCINE_E_W_SHAPE, "[4, 2, 3]", "expected [4, 6]");
    expect_get(w, "enc.0.weight", 4, s3, OSCINE_E_W_SHAPE, "[4, 2, 3]", "[4, 2, 3, 1]");
    expect_get(w, "gain", 1, s2, OSCINE_E_W_SHAPE, "shape []", "expected [4]");
    osw_close(w);
}

static void write_file(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

/* A well-formed file (right CRC: written from a run that diverged) whose
 * tensor holds NaN or infinity is refused by name when a model asks for it,
 * instead of making every output silent. */
static void test_nonfinite_tensor(void **state)
{
    osw_file *w = NULL;
    assert_int_equal(osw_open(&w, FIXTURE), 0);
    const int64_t s[] = {4, 2, 3};
    const float *d;
    assert_int_equal(osw_get_f32(w, "enc.0.weight", 3, s, &d), 0);
    float head[6];
    memcpy(head, d, sizeof head);
    osw_close(w);
    const float bad[2] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        uint8_t *b = copy(0);
        uint8_t *at = memmem(b, fixture_len, head, sizeof head);
        assert_non_null(at);
        memcpy(at + 5 * sizeof(float), &bad[k], sizeof(float)); /* element 5 */
        reseal(b, fixture_len);
        assert_int_equal(osw_open_memory(&w, b, fixture_len, "nan.osw"), 0);
        assert_int_equal(osw_get_f32(w, "enc.0.weight", 3, s, &d), OSCINE_E_W_VALUE);
        const char *msg = oscine_last_error();
        if (!strstr(msg, "nan.osw") || !strstr(msg, "enc.0.weight") ||
            !strstr(msg, k ? "infinity at element 5" : "NaN at element 5"))
            fail_msg("message: %s", msg);
        assert_string_equal(oscine_strerror(OSCINE_E_W_VALUE), "weights hold NaN or infinity");
        osw_close(w);
        if (k == 0) { /* `oscine model` checks the values too */
            const char *dir = tmpdir_make();
            char path[256], out[8192], err[1024];
            snprintf(path, sizeof path, "%s/nan.osw", dir);
            write_file(path, b, fixture_len);
            assert_int_equal(run_oscine(out, sizeof out, err, sizeof err, "model", path, NULL), 1);
            assert_non_null(strstr(err, "enc.0.weight': NaN at element 5"));
            tmpdir_remove(dir);
        }
        free(b);
    }
}

static void test_wrong_dtype_request(void **state)
{
    osw_file *w = NULL;
    assert_int_equal(osw_open(&w, FIXTURE), 0);
    const int64_t s2[] = {2}, s3[] = {3};
    expect_get(w, "steps", 1, s2, OSCINE_E_W_DTYPE, "dtype i32", "f32");
    expect_get(w, "half", 1, s3, OSCINE_E_W_DTYPE, "dtype f16", "f32");
    osw_close(w);
}

static void test_expect_meta(void **state)
{
    osw_file *w = NULL;
    assert_int_equal(osw_open(&w, FIXTURE), 0);
    assert_int_equal(osw_expect_meta(w, "kind", "denoise"), OSCINE_E_W_MODEL);
    const char *m = oscine_last_error();
    assert_non_null(strstr(m, "'" FIXTURE "'"));
    assert_non_null(strstr(m, "'kind' is 'test', expected 'denoise'"));
    assert_int_equal(osw_expect_meta(w, "sample_rate", "48000"), OSCINE_E_W_MODEL);
    assert_int_equal(osw_expect_meta(w, "n_bands", "4"), OSCINE_E_W_MISSING);
    m = oscine_last_error();
    assert_non_null(strstr(m, "'" FIXTURE "'"));
    assert_non_null(strstr(m, "'n_bands' missing"));
    osw_close(w);
}

/* The metadata number readers the model loaders share. */
static void test_meta_numbers(void **state)
{
    osw_file *w = NULL;
    const char *path = "tests/fixtures/denoise/small.osw";
    assert_int_equal(osw_open(&w, path), 0);
    int v = 0, n = 0, list[4];
    float f = 0, def = -7;
    assert_int_equal(osw_meta_int(w, "sample_rate", 8000, 48000, &v), 0);
    assert_int_equal(v, 16000);
    assert_int_equal(osw_meta_int(w, "sample_rate", 1, 100, &v), OSCINE_E_W_MODEL);
    assert_non_null(strstr(oscine_last_error(), "'sample_rate' = '16000', need an integer 1..100"));
    assert_non_null(strstr(oscine_last_error(), path));
    assert_int_equal(osw_meta_int(w, "window", 0, 10, &v), OSCINE_E_W_MODEL);
    assert_int_equal(osw_meta_int(w, "channels", 0, 10, &v), OSCINE_E_W_MODEL); /* "4,6,8" */
    assert_int_equal(osw_meta_int(w, "nope", 0, 10, &v), OSCINE_E_W_MISSING);
    assert_non_null(strstr(oscine_last_error(), "'nope' missing"));
    assert_int_equal(v, 16000); /* untouched by the failures */

    assert_int_equal(osw_meta_float(w, "leaky_slope", NULL, &f), 0);
    assert_float_equal(f, 0.2f, 0);
    assert_int_equal(osw_meta_float(w, "nope", &def, &f), 0);
    assert_float_equal(f, -7, 0);
    assert_int_equal(osw_meta_float(w, "nope", NULL, &f), OSCINE_E_W_MISSING);
    assert_int_equal(osw_meta_float(w, "window", NULL, &f), OSCINE_E_W_MODEL);
    assert_non_null(strstr(oscine_last_error(), "'window' = 'sqrt_hann', need a finite number"));
    assert_int_equal(osw_meta_float(w, "channels", &def, &f), OSCINE_E_W_MODEL);

    assert_int_equal(osw_meta_int_list(w, "channels", 1, 4096, list, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(list[0], 4);
    assert_int_equal(list[2], 8);
    assert_int_equal(osw_meta_int_list(w, "kernel_freq", 1, 4096, list, 1, &n), 0);
    assert_int_equal(n, 1);
    assert_int_equal(osw_meta_int_list(w, "channels", 1, 4096, list, 2, &n), OSCINE_E_W_MODEL);
    assert_non_null(strstr(oscine_last_error(), "up to 2 comma-separated integers 1..4096"));
    assert_int_equal(osw_meta_int_list(w, "channels", 5, 4096, list, 4, &n), OSCINE_E_W_MODEL);
    assert_int_equal(osw_meta_int_list(w, "window", 1, 4096, list, 4, &n), OSCINE_E_W_MODEL);
    assert_int_equal(osw_meta_int_list(w, "nope", 1, 4096, list, 4, &n), OSCINE_E_W_MISSING);
    osw_close(w);
}

/* ------------------------------------------------------- corrupt files */

static void test_truncated(void **state)
{
    size_t header_size = (size_t)rd64(fixture + 16), data_offset = (size_t)rd64(fixture + 24);
    const size_t lens[] = {0, 1, 4, 7, 8, 12, 20, 63, 64, 100, header_size - 1, header_size,
                           data_offset, data_offset + 10, fixture_len - 5, fixture_len - 4,
                           fixture_len - 1};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        uint8_t *b = copy(0);
        /* reseal where a CRC slot still fits, so only the length is wrong */
        if (lens[i] >= 68)
            reseal(b, lens[i]);
        expect_open(b, lens[i], OSCINE_E_W_TRUNCATED, "bytes", NULL);
        free(b);
    }
}

static void test_wrong_magic(void **state)
{
    uint8_t *b = copy(0);
    b[0] = 'X';
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_MAGIC, "not an oscine weights file", "XSCINEW",
                NULL);
    memcpy(b, "RIFF\x24\0\0\0", 8); /* a WAV file by mistake */
    expect_open(b, fixture_len, OSCINE_E_W_MAGIC, "starts with 'RIFF", NULL);
    expect_open(b, 3, OSCINE_E_W_MAGIC, "RIF", NULL); /* short and wrong: magic */
    b[7] = 1;
    memcpy(b, "OSCINEW", 7); /* the terminating NUL counts */
    expect_open(b, fixture_len, OSCINE_E_W_MAGIC, NULL);
    free(b);
}

static void test_version(void **state)
{
    uint8_t *b = copy(0);
    wr32(b + 8, OSW_VERSION + 1);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_VERSION, "version 2", "reads 1..1", NULL);
    wr32(b + 8, 0);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_VERSION, "version 0", NULL);
    wr32(b + 8, 0xFFFFFFFFu);
    expect_open(b, fixture_len, OSCINE_E_W_VERSION, "version 4294967295", NULL);
    free(b);
}

static void test_crc_mismatch(void **state)
{
    size_t data_offset = (size_t)rd64(fixture + 24);
    uint8_t *b = copy(0);
    b[data_offset + 5] ^= 0x10; /* a data byte */
    expect_open(b, fixture_len, OSCINE_E_W_CRC, "crc32", "damaged", NULL);
    free(b);
    b = copy(0);
    b[find_meta(b, "kind") + 8 + 4 + 1] ^= 1; /* a byte of a metadata value */
    expect_open(b, fixture_len, OSCINE_E_W_CRC, "crc32", NULL);
    free(b);
    b = copy(0);
    b[fixture_len - 1] ^= 0x80; /* the stored CRC itself */
    expect_open(b, fixture_len, OSCINE_E_W_CRC, "crc32", NULL);
    free(b);
}

/* Set a u32 / u64 field, reseal, expect code and substrings. */
static void field32(size_t at, uint32_t v, int want, const char *s1, const char *s2)
{
    uint8_t *b = copy(0);
    wr32(b + at, v);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, want, s1, s2, NULL);
    free(b);
}

static void field64(size_t at, uint64_t v, int want, const char *s1, const char *s2)
{
    uint8_t *b = copy(0);
    wr64(b + at, v);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, want, s1, s2, NULL);
    free(b);
}

static void test_header_fields(void **state)
{
    uint64_t header_size = rd64(fixture + 16), data_offset = rd64(fixture + 24);
    uint64_t data_size = rd64(fixture + 32);
    field32(12, 1, OSCINE_E_W_HEADER, "flags", NULL);
    field32(52, 7, OSCINE_E_W_HEADER, "reserved byte 52", NULL);
    field64(16, 10, OSCINE_E_W_HEADER, "header_size 10", NULL);
    field64(16, data_offset + 64, OSCINE_E_W_HEADER, "header_size", "past data_offset");
    field64(16, header_size + 1, OSCINE_E_W_HEADER, "tables end", "header_size");
    field64(24, data_offset + 4, OSCINE_E_W_OFFSET, "data_offset", "multiple of 64");
    field64(24, data_offset + 64, OSCINE_E_W_TRUNCATED, "data_offset", NULL);
    field64(24, UINT64_MAX - 63, OSCINE_E_W_TRUNCATED, "data_offset", NULL);
    field64(32, data_size + 1, OSCINE_E_W_TRUNCATED, "data_size", NULL);
    field64(32, UINT64_MAX, OSCINE_E_W_TRUNCATED, "data_size", NULL);
    field64(32, data_size - 64, OSCINE_E_W_HEADER, "trailing", NULL);
    field32(40, 0xFFFFFFFFu, OSCINE_E_W_HEADER, "meta_count 4294967295", NULL);
    field32(44, 0xFFFFFFFFu, OSCINE_E_W_HEADER, "tensor_count 4294967295", NULL);
    field32(44, 7, OSCINE_E_W_HEADER, "tensor 6 name", "past header_size");
    field32(44, 5, OSCINE_E_W_HEADER, "tables end", NULL);

    /* bytes appended after the CRC slot (and resealed) */
    uint8_t *b = copy(64);
    memset(b + fixture_len, 0, 64);
    reseal(b, fixture_len + 64);
    expect_open(b, fixture_len + 64, OSCINE_E_W_HEADER, "trailing", NULL);
    free(b);
}

static void test_offset_past_end(void **state)
{
    uint64_t data_size = rd64(fixture + 32);
    entry e = find_tensor(fixture, "enc.0.weight");
    field64(e.offset, data_size + 64, OSCINE_E_W_OFFSET, "tensor 'enc.0.weight'",
            "past end of data");
    field64(e.offset, data_size - 64, OSCINE_E_W_OFFSET, "tensor 'enc.0.weight'",
            "+ 96 bytes past end of data"); /* starts inside, ends outside */
    field64(e.offset, UINT64_MAX & ~(uint64_t)63, OSCINE_E_W_OFFSET, "tensor 'enc.0.weight'",
            "past end of data");
    e = find_tensor(fixture, "steps");
    field64(e.offset, data_size, OSCINE_E_W_OFFSET, "tensor 'steps'", "past end of data");
}

static void test_misaligned_offset(void **state)
{
    entry e = find_tensor(fixture, "dec.0.weight");
    uint64_t off = rd64(fixture + e.offset);
    field64(e.offset, off + 4, OSCINE_E_W_OFFSET, "tensor 'dec.0.weight'", "multiple of 64");
    field64(e.offset, off + 1, OSCINE_E_W_OFFSET, "tensor 'dec.0.weight'", "multiple of 64");
}

static void test_absurd_shapes(void **state)
{
    entry e = find_tensor(fixture, "enc.0.weight");
    /* ndim 1000 and 2^32-1: refused before reading a shape */
    field32(e.ndim, 1000, OSCINE_E_W_SHAPE, "tensor 'enc.0.weight'", "ndim 1000");
    field32(e.ndim, 0xFFFFFFFFu, OSCINE_E_W_SHAPE, "tensor 'enc.0.weight'", "ndim 4294967295");
    field32(e.ndim, OSW_MAX_DIMS + 1, OSCINE_E_W_SHAPE, "ndim 9", NULL);

    /* element count overflowing 64 bits */
    uint8_t *b = copy(0);
    wr64(b + e.shape, (uint64_t)1 << 62);
    wr64(b + e.shape + 8, (uint64_t)1 << 62);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_SHAPE, "tensor 'enc.0.weight'", "overflows", NULL);
    free(b);
    /* count (3 * 2^62) fits, bytes (count * 4) do not */
    field64(e.shape, (uint64_t)1 << 61, OSCINE_E_W_SHAPE, "tensor 'enc.0.weight'",
            "overflows");
    /* overflow hidden behind a later zero dimension is still refused */
    b = copy(0);
    wr64(b + e.shape, (uint64_t)1 << 62);
    wr64(b + e.shape + 8, (uint64_t)1 << 62);
    wr64(b + e.shape + 16, 0);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_SHAPE, "overflows", NULL);
    free(b);
    /* negative dimension */
    field64(e.shape + 8, (uint64_t)-2, OSCINE_E_W_SHAPE, "tensor 'enc.0.weight'",
            "dimension 1 is -2");
    field64(e.shape, (uint64_t)INT64_MIN, OSCINE_E_W_SHAPE, "dimension 0", NULL);
    /* large but representable: the data is not there */
    field64(e.shape, (uint64_t)1 << 40, OSCINE_E_W_OFFSET, "tensor 'enc.0.weight'",
            "past end of data");
    /* a bigger shape than the bytes stored before the next tensor still fits
     * the section only if it ends inside it */
    field64(e.shape, 5, 0, NULL, NULL);  /* 120 bytes: inside the 128-byte slot */
    field64(e.shape, 1000, OSCINE_E_W_OFFSET, "tensor 'enc.0.weight'", "past end of data");
}

static void test_bad_string_lengths(void **state)
{
    size_t kind = find_meta(fixture, "kind");
    field32(kind, 0xFFFFFFFFu, OSCINE_E_W_HEADER, "metadata 0 key", "length 4294967295");
    field32(kind, 0, OSCINE_E_W_HEADER, "metadata 0 key", "length 0");
    field32(kind, OSW_MAX_KEY + 1, OSCINE_E_W_HEADER, "metadata 0 key", "outside 1..256");
    field32(kind, 200, OSCINE_E_W_HEADER, "metadata", NULL); /* shifts the parse */
    field32(kind + 8, 0xFFFFFFFFu, OSCINE_E_W_HEADER, "metadata 'kind' value",
            "length 4294967295");
    field32(kind + 8, 1000, OSCINE_E_W_HEADER, "metadata 'kind' value", "past header_size");
    size_t commit = find_meta(fixture, "commit");
    field32(commit + 4 + 6, 0x7FFFFFFFu, OSCINE_E_W_HEADER, "metadata 'commit' value",
            "outside 0..65536");

    entry e = find_tensor(fixture, "enc.0.weight");
    field32(e.name_len, 0xFFFFFFFFu, OSCINE_E_W_HEADER, "tensor 0 name", "length 4294967295");
    field32(e.name_len, 0, OSCINE_E_W_HEADER, "tensor 0 name", "length 0");
    field32(e.name_len, 5000, OSCINE_E_W_HEADER, "tensor 0 name", NULL);

    /* NUL inside a name or key */
    uint8_t *b = copy(0);
    b[e.name + 3] = 0;
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_HEADER, "tensor 0 name 'enc?0.weight'", "NUL",
                NULL);
    free(b);
    b = copy(0);
    b[kind + 5] = 0;
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_HEADER, "metadata 0 key", "NUL", NULL);
    free(b);
    /* control bytes in a name are shown as '?', never raw */
    b = copy(0);
    b[e.name + 3] = '\n';
    wr32(b + e.ndim, 99);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_SHAPE, "tensor 'enc?0.weight'", NULL);
    free(b);
}

static void test_bad_dtype(void **state)
{
    entry e = find_tensor(fixture, "enc.0.bias");
    field32(e.dtype, 7, OSCINE_E_W_DTYPE, "tensor 'enc.0.bias'", "unknown dtype code 7");
    field32(e.dtype, OSW_DTYPE_COUNT, OSCINE_E_W_DTYPE, "tensor 'enc.0.bias'", "dtype");
    field32(e.dtype, 0x80000000u, OSCINE_E_W_DTYPE, "tensor 'enc.0.bias'", "dtype");
    /* a valid other dtype changes the byte size: f16 of [4] fits, so the file
     * opens and asking for f32 is refused */
    uint8_t *b = copy(0);
    wr32(b + e.dtype, OSW_F16);
    reseal(b, fixture_len);
    osw_file *w = NULL;
    assert_int_equal(osw_open_memory(&w, b, fixture_len, NAME), 0);
    const int64_t s[] = {4};
    const float *d;
    assert_int_equal(osw_get_f32(w, "enc.0.bias", 1, s, &d), OSCINE_E_W_DTYPE);
    assert_non_null(strstr(oscine_last_error(), "'" NAME "'"));
    osw_close(w);
    free(b);
}

static void test_duplicate_names(void **state)
{
    uint8_t *b = copy(0);
    entry e = find_tensor(fixture, "dec.0.weight");
    memcpy(b + e.name, "enc", 3);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_HEADER, "tensor 'enc.0.weight'", "duplicate",
                NULL);
    free(b);
    b = copy(0);
    size_t m = find_meta(fixture, "n_mels");
    memcpy(b + m + 4, "commit", 6);
    reseal(b, fixture_len);
    expect_open(b, fixture_len, OSCINE_E_W_HEADER, "metadata 'commit'", "duplicate", NULL);
    free(b);
}

/* Every truncation and every single-bit flip, resealed or not: an error or
 * a file whose every entry can be walked, never a crash (ASan watches). */
static volatile float sink;

static void test_sweep(void **state)
{
    for (size_t n = 0; n < fixture_len; n++)
        assert_int_not_equal(osw_open_memory(&(osw_file *){NULL}, fixture, n, NAME), 0);
    uint8_t *b = copy(0);
    int opened = 0;
    for (size_t i = 0; i < fixture_len; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(b, fixture, fixture_len);
            b[i] ^= (uint8_t)(1 << bit);
            osw_file *w = NULL;
            assert_int_not_equal(osw_open_memory(&w, b, fixture_len, NAME), 0);
            if (i >= fixture_len - 4)
                continue;
            reseal(b, fixture_len);
            if (osw_open_memory(&w, b, fixture_len, NAME))
                continue;
            opened++;
            for (int t = 0; t < osw_tensor_count(w); t++) {
                const char *name;
                int nd;
                const int64_t *sh;
                assert_int_equal(osw_tensor_info(w, t, &name, &nd, &sh), 0);
                const float *d;
                if (osw_tensor_dtype(w, t) == OSW_F32 &&
                    osw_get_f32(w, name, nd, sh, &d) == 0) {
                    int64_t n = 1;
                    for (int k = 0; k < nd; k++)
                        n *= sh[k];
                    for (int64_t k = 0; k < n && k < 4096; k++)
                        sink += d[k]; /* read it all: ASan checks the bounds */
                }
            }
            for (int m = 0; m < osw_meta_count(w); m++) {
                const char *k, *v;
                assert_int_equal(osw_meta_at(w, m, &k, &v), 0);
                assert_true(strlen(k) > 0 && strlen(v) <= OSW_MAX_VALUE);
            }
            osw_close(w);
        }
    /* flips in padding, names and values leave valid files */
    assert_true(opened > 0);
    free(b);
}

static void test_io_errors(void **state)
{
    osw_file *w = (osw_file *)1;
    assert_int_equal(osw_open(&w, "tests/fixtures/weights/absent.osw"), OSCINE_E_IO);
    assert_null(w);
    assert_non_null(strstr(oscine_last_error(), "'tests/fixtures/weights/absent.osw'"));
    assert_int_equal(osw_open(&w, "tests/fixtures/weights"), OSCINE_E_IO);
    assert_non_null(strstr(oscine_last_error(), "not a regular file"));

    const char *dir = tmpdir_make();
    assert_non_null(dir);
    char path[256];
    snprintf(path, sizeof path, "%s/empty.osw", dir);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(osw_open(&w, path), OSCINE_E_W_TRUNCATED);
    assert_non_null(strstr(oscine_last_error(), path));
    tmpdir_remove(dir);
}

/* ------------------------------------------------------------ the CLI */


static void test_cli_model_valid(void **state)
{
    char out[8192], err[1024];
    int rc = run_oscine(out, sizeof out, err, sizeof err, "model", FIXTURE, NULL);
    if (rc != 0)
        fail_msg("exit %d: %s", rc, err);
    static const char *const want[] = {
        "enc.0.weight", "enc.0.bias", "dec.0.weight", "gain", "half", "steps",
        "kind", "test", "sample_rate", "16000", "[4, 2, 3]", "f16", "i32",
        "6 tensors", "49 parameters", "valid"};
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        if (!strstr(out, want[i]))
            fail_msg("output lacks '%s':\n%s", want[i], out);
}

static void test_cli_model_invalid(void **state)
{
    char out[4096], err[1024];
    const char *dir = tmpdir_make();
    assert_non_null(dir);
    char path[256];
    snprintf(path, sizeof path, "%s/bad.osw", dir);
    uint8_t *b = copy(0);
    entry e = find_tensor(fixture, "enc.0.weight");
    wr64(b + e.offset, 4); /* misaligned */
    reseal(b, fixture_len);
    write_file(path, b, fixture_len);
    free(b);
    int rc = run_oscine(out, sizeof out, err, sizeof err, "model", path, NULL);
    assert_int_equal(rc, 1);
    assert_true(!strncmp(err, "oscine: ", 8));
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "enc.0.weight"));
    int lines = 0;
    for (const char *c = err; *c; c++)
        lines += *c == '\n';
    assert_int_equal(lines, 1);

    snprintf(path, sizeof path, "%s/short.osw", dir);
    write_file(path, fixture, 100);
    rc = run_oscine(out, sizeof out, err, sizeof err, "model", path, NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "bytes"));

    rc = run_oscine(out, sizeof out, err, sizeof err, "model", "absent/none.osw", NULL);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(err, "absent/none.osw"));
    tmpdir_remove(dir);
}

static void test_cli_model_usage(void **state)
{
    char err[1024];
    assert_int_equal(run_oscine(NULL, 0, err, sizeof err, "model", NULL), 2);
    assert_non_null(strstr(err, "usage"));
    assert_int_equal(run_oscine(NULL, 0, err, sizeof err, "model", FIXTURE, FIXTURE, NULL), 2);
    assert_int_equal(run_oscine(NULL, 0, err, sizeof err, "model", "--frobnicate", NULL), 2);
    char out[4096];
    assert_int_equal(run_oscine(out, sizeof out, NULL, 0, "help", "model", NULL), 0);
    assert_non_null(strstr(out, "oscine model"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_file),
        cmocka_unit_test(test_edge_file),
        cmocka_unit_test(test_open_memory_copies),
        cmocka_unit_test(test_crc32),
        cmocka_unit_test(test_accessors_bad_args),
        cmocka_unit_test(test_missing_tensor),
        cmocka_unit_test(test_wrong_shape_request),
        cmocka_unit_test(test_nonfinite_tensor),
        cmocka_unit_test(test_wrong_dtype_request),
        cmocka_unit_test(test_expect_meta),
        cmocka_unit_test(test_meta_numbers),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_magic),
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_crc_mismatch),
        cmocka_unit_test(test_header_fields),
        cmocka_unit_test(test_offset_past_end),
        cmocka_unit_test(test_misaligned_offset),
        cmocka_unit_test(test_absurd_shapes),
        cmocka_unit_test(test_bad_string_lengths),
        cmocka_unit_test(test_bad_dtype),
        cmocka_unit_test(test_duplicate_names),
        cmocka_unit_test(test_sweep),
        cmocka_unit_test(test_io_errors),
        cmocka_unit_test(test_cli_model_valid),
        cmocka_unit_test(test_cli_model_invalid),
        cmocka_unit_test(test_cli_model_usage),
    };
    return cmocka_run_group_tests_name("weights", tests, setup, teardown);
}
