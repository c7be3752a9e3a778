/* blas_rerun.h - a benchmark measures what the oscine command runs: where
 * OpenBLAS loaded a kernel set older than the CPU's (nn/kernels.h), run again
 * with OPENBLAS_CORETYPE set, as src/cli/main.c does. Prints the set in use. */
#ifndef OSCINE_BENCH_BLAS_RERUN_H
#define OSCINE_BENCH_BLAS_RERUN_H

#include "nn/kernels.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static inline void bench_blas_rerun(char **argv)
{
    const char *core = nn_blas_better_coretype();
    if (core && !getenv("OPENBLAS_CORETYPE") && !setenv("OPENBLAS_CORETYPE", core, 1)) {
        execv("/proc/self/exe", argv);
        unsetenv("OPENBLAS_CORETYPE");
    }
    const char *better = nn_blas_better_coretype();
    printf("OpenBLAS kernels: %s%s%s\n", nn_blas_corename(), better ? ", older than this CPU's " : "",
           better ? better : "");
}

#endif
