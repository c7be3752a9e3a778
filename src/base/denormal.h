/* denormal.h - flush denormals to zero on the calling thread for the span of
 * a processing call, restoring the caller's mode afterwards (hosts may rely
 * on theirs). Thread: audio. */
#ifndef OSCINE_BASE_DENORMAL_H
#define OSCINE_BASE_DENORMAL_H

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
typedef unsigned int fp_mode;
static inline fp_mode denormals_off(void)
{
    fp_mode old = _mm_getcsr();
    _mm_setcsr(old | 0x8040); /* FTZ | DAZ */
    return old;
}
static inline void denormals_restore(fp_mode old) { _mm_setcsr(old); }
#elif defined(__aarch64__)
typedef unsigned long fp_mode;
static inline fp_mode denormals_off(void)
{
    fp_mode old;
    __asm__ volatile("mrs %0, fpcr" : "=r"(old));
    __asm__ volatile("msr fpcr, %0" ::"r"(old | (1UL << 24)));
    return old;
}
static inline void denormals_restore(fp_mode old) { __asm__ volatile("msr fpcr, %0" ::"r"(old)); }
#else
typedef int fp_mode;
static inline fp_mode denormals_off(void) { return 0; }
static inline void denormals_restore(fp_mode old) { (void)old; }
#endif

#endif
