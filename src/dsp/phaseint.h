/* phaseint.h - phase from its time and frequency differences, frame by frame
 * (the integration of RTPGHI: Prusa and Holighaus, "Phase vocoder done right",
 * 2017). The vocoder's phase-difference heads feed it; it could as well take
 * differences estimated from a magnitude (PGHI).
 *
 * Each frame: a max-heap of coefficients ordered by log-amplitude is seeded
 * with the previous frame's significant coefficients. Popping one of the
 * previous frame carries its phase forward in time (+ dt) to the same bin of
 * this frame; popping one of this frame carries its phase along frequency to
 * its neighbours (+ df[k] to k + 1, - df[k - 1] to k - 1). Significant: within
 * tol_db of the frame's largest coefficient. A significant coefficient the heap
 * cannot reach starts again from the previous frame (in the first frame, from
 * 0); the others simply advance by dt. Loud partials so keep their phase
 * running in time, and each frame's other coefficients take the phase
 * relations around them. Ties go to the lower bin, then to the previous frame:
 * the order, and so the result, is exactly that of integrate_phase() in
 * tools/vocoder/model.py. */
#ifndef OSCINE_DSP_PHASEINT_H
#define OSCINE_DSP_PHASEINT_H

typedef struct phaseint phaseint;

/* bins: coefficients per frame (2..4096); tol_db > 0. Thread: control. */
int phaseint_create(phaseint **out, int bins, double tol_db);
void phaseint_destroy(phaseint *p);

/* Before the next stream's first frame. Thread: audio. */
void phaseint_reset(phaseint *p);

/* One frame. logamp: log-amplitudes (any base; tol_db is converted for the
 * natural log); dt[k]: phase advance of bin k since the previous frame; df[k]:
 * phase of bin k + 1 minus bin k (df[bins - 1] unused). phase: out, in
 * [-pi, pi). No allocation. NaN inputs give no loop and no crash (their bins
 * just advance). Thread: audio. */
void phaseint_frame(phaseint *p, const float *logamp, const float *dt, const float *df, float *phase);

#endif
