/* fuzz_weights.c - libFuzzer entry for the .osw reader (`make fuzz`).
 *
 * Each input is opened twice: as given (mostly stopped by the CRC), and
 * re-sealed with a fresh CRC so mutations reach the table parser. Whatever
 * opens is walked completely - every metadata entry, every tensor looked up
 * by name and every data byte read - so ASan/UBSan see any pointer the
 * reader lets out of bounds. Invariants broken are reported by trapping. */
#include "nn/weights.h"
#include "oscine.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static void walk(const osw_file *w)
{
    int nm = osw_meta_count(w);
    for (int i = 0; i < nm; i++) {
        const char *k, *v;
        CHECK(osw_meta_at(w, i, &k, &v) == 0);
        CHECK(k[0] && strlen(k) <= OSW_MAX_KEY && strlen(v) <= OSW_MAX_VALUE);
        CHECK(osw_meta(w, k) == v); /* keys are unique */
        CHECK(osw_expect_meta(w, k, v) == 0);
    }
    CHECK(osw_meta_at(w, nm, NULL, NULL) == OSCINE_E_ARG);
    int nt = osw_tensor_count(w);
    for (int i = 0; i < nt; i++) {
        const char *name;
        int nd;
        const int64_t *sh;
        CHECK(osw_tensor_info(w, i, &name, &nd, &sh) == 0);
        CHECK(name[0] && strlen(name) <= OSW_MAX_NAME && nd >= 0 && nd <= OSW_MAX_DIMS);
        CHECK(osw_tensor_find(w, name) == i); /* names are unique */
        int dt = osw_tensor_dtype(w, i);
        CHECK(dt >= 0 && dt < OSW_DTYPE_COUNT);
        const float *d;
        int err = osw_get_f32(w, name, nd, sh, &d);
        if (dt != OSW_F32) {
            CHECK(err == OSCINE_E_W_DTYPE && !d);
            continue;
        }
        if (err == OSCINE_E_W_VALUE) { /* NaN or infinity somewhere in it */
            CHECK(!d);
            continue;
        }
        CHECK(err == 0 && ((uintptr_t)d & (OSW_ALIGN - 1)) == 0);
        uint64_t n = 1;
        for (int k = 0; k < nd; k++)
            n *= (uint64_t)sh[k];
        const volatile unsigned char *b = (const void *)d;
        unsigned s = 0;
        for (uint64_t k = 0; k < n * 4; k++) /* every byte: ASan checks the bounds */
            s += b[k];
        (void)s;
        if (nd > 0) { /* a wrong shape is refused with a message */
            int64_t other[OSW_MAX_DIMS];
            memcpy(other, sh, sizeof other[0] * (size_t)nd);
            other[0]++;
            CHECK(osw_get_f32(w, name, nd, other, &d) == OSCINE_E_W_SHAPE && !d);
        }
    }
    CHECK(osw_tensor_info(w, nt, NULL, NULL, NULL) == OSCINE_E_ARG);
}

static void one(const uint8_t *data, size_t size)
{
    osw_file *w = NULL;
    int err = osw_open_memory(&w, data, size, "fuzz.osw");
    if (err) {
        CHECK(!w && err < 0 && oscine_last_error()[0]);
        return;
    }
    walk(w);
    osw_close(w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    one(data, size);
    if (size >= OSW_FIXED_HEADER + 4) {
        uint8_t *b = malloc(size);
        if (!b)
            return 0;
        memcpy(b, data, size);
        uint32_t c = osw_crc32(0, b, size - 4);
        for (int i = 0; i < 4; i++)
            b[size - 4 + i] = (uint8_t)(c >> 8 * i);
        one(b, size);
        free(b);
    }
    return 0;
}
