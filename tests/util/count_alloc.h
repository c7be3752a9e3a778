/* count_alloc.h - counts calls to the malloc family while `counting` is set,
 * for the whole test process (OpenBLAS and the other shared libraries
 * included): the no-allocation tests set it around process() calls and
 * expect `allocations` to stay 0. Include it in exactly one file of a test
 * program. The executable's definitions take the place of libc's for every
 * library; under AddressSanitizer its interceptors stay in charge, nothing is
 * defined here and COUNT_MALLOC is 0 (those tests skip). */
#ifndef OSCINE_TEST_COUNT_ALLOC_H
#define OSCINE_TEST_COUNT_ALLOC_H

#include <stddef.h>

#if defined(__SANITIZE_ADDRESS__)
#define COUNT_MALLOC 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COUNT_MALLOC 0
#endif
#endif
#ifndef COUNT_MALLOC
#define COUNT_MALLOC 1
#endif

static volatile int counting;
static volatile long allocations;

#if COUNT_MALLOC
/* Default visibility: the tests are built with -fvisibility=hidden, and a
 * hidden malloc would not take the place of libc's for shared libraries. */
#define EXPORT __attribute__((visibility("default")))
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

EXPORT void *malloc(size_t n)
{
    allocations += counting;
    return __libc_malloc(n);
}

EXPORT void *calloc(size_t a, size_t b)
{
    allocations += counting;
    return __libc_calloc(a, b);
}

EXPORT void *realloc(void *p, size_t n)
{
    allocations += counting;
    return __libc_realloc(p, n);
}

EXPORT void *aligned_alloc(size_t align, size_t n)
{
    allocations += counting;
    return __libc_memalign(align, n);
}

EXPORT void *memalign(size_t align, size_t n)
{
    allocations += counting;
    return __libc_memalign(align, n);
}

EXPORT int posix_memalign(void **out, size_t align, size_t n)
{
    allocations += counting;
    void *p = __libc_memalign(align, n);
    if (!p)
        return 12; /* ENOMEM */
    *out = p;
    return 0;
}

EXPORT void free(void *p) { __libc_free(p); }
#endif

#endif
