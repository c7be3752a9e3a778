/* synth_lv2.h - the "oscine synth" LV2 descriptor, listed by oscine_lv2.c's
 * lv2_descriptor beside the denoisers. */
#ifndef OSCINE_LV2_SYNTH_H
#define OSCINE_LV2_SYNTH_H

#include <lv2/core/lv2.h>

const LV2_Descriptor *oscine_synth_descriptor(void);

#endif
