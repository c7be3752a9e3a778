/* chainrt.h - chain calls beyond the public API, most for the audio thread. */
#ifndef OSCINE_ENGINE_CHAINRT_H
#define OSCINE_ENGINE_CHAINRT_H

#include "oscine.h"

/* Set a parameter by address with no error text (the control thread has
 * validated it already): 0, or OSCINE_E_PARAM / OSCINE_E_RANGE silently.
 * Thread: audio (or any: an atomic store). */
int chain_set_rt(oscine_chain *c, const char *address, float value);

/* Deliver an event (engine/stage.h, stage_event) to every channel of the
 * stage named in address, e.g. "/synth/note_on" with {69, 0.8}; a compound
 * setting sets its parameters instead. chain_event_rt: no error text
 * (OSCINE_E_PARAM / OSCINE_E_RANGE silently), for the audio thread;
 * chain_event: the same with a message, for a caller that also runs
 * oscine_chain_process (the CLI). Thread: the one that runs process. */
int chain_event_rt(oscine_chain *c, const char *address, const float *args, int nargs);
int chain_event(oscine_chain *c, const char *address, const float *args, int nargs);

/* Hand what from's stages have going on to the same stages in to (see
 * stage_class.carry): the live engine calls it when to replaces from.
 * Thread: audio. */
void chain_carry(const oscine_chain *from, oscine_chain *to);

/* The first "vad" meter in the chain, or -1 when no stage has one.
 * Thread: any. */
float chain_vad(const oscine_chain *c);

/* Is spec a valid chain (known stages, none twice, not too many)? 0 or
 * OSCINE_E_STAGE with the message oscine_chain_create would give; builds
 * nothing, loads no model. Thread: control. */
int chain_spec_check(const char *spec);

#endif
