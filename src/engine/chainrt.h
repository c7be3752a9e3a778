/* chainrt.h - chain calls for the audio thread beyond the public API. */
#ifndef OSCINE_ENGINE_CHAINRT_H
#define OSCINE_ENGINE_CHAINRT_H

#include "oscine.h"

/* Set a parameter by address with no error text (the control thread has
 * validated it already): 0, or OSCINE_E_PARAM / OSCINE_E_RANGE silently.
 * Thread: audio (or any: an atomic store). */
int chain_set_rt(oscine_chain *c, const char *address, float value);

/* The first "vad" meter in the chain, or -1 when no stage has one.
 * Thread: any. */
float chain_vad(const oscine_chain *c);

#endif
