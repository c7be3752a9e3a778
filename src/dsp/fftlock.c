/* fftlock.c - see fftlock.h. */
#include "dsp/fftlock.h"

#include <pthread.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

void fft_plan_lock(void) { pthread_mutex_lock(&lock); }
void fft_plan_unlock(void) { pthread_mutex_unlock(&lock); }
