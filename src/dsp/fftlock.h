/* fftlock.h - one process-wide lock around FFTW's planner.
 *
 * FFTW's planner (fftwf_plan_*, fftwf_destroy_plan) keeps global state and is
 * not thread-safe; executing a plan is. Every dsp object that plans takes
 * this lock so objects created on different control threads (the CLI, the
 * worker that builds a new chain) never plan at the same time.
 */
#ifndef OSCINE_DSP_FFTLOCK_H
#define OSCINE_DSP_FFTLOCK_H

/* Thread: control. Never on the audio thread (it may block). */
void fft_plan_lock(void);
void fft_plan_unlock(void);

#endif
