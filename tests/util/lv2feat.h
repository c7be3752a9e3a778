/* lv2feat.h - what a test LV2 host hands a plugin: URID map and unmap, a
 * log that collects into lv2t_log_text, and a one-key state store. Header
 * only from LV2 (no lilv), so it links into every test. */
#ifndef OSCINE_TEST_LV2FEAT_H
#define OSCINE_TEST_LV2FEAT_H

#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>

#include <stddef.h>
#include <stdint.h>

LV2_URID lv2t_map_uri(LV2_URID_Map_Handle h, const char *uri);
const char *lv2t_unmap_uri(LV2_URID_Unmap_Handle h, LV2_URID u);

extern char lv2t_log_text[4096]; /* what plugins logged (clear it yourself) */
extern LV2_URID_Map lv2t_map;
extern LV2_URID_Unmap lv2t_unmap;
extern const LV2_Feature lv2t_f_map, lv2t_f_unmap, lv2t_f_log;
extern const LV2_Feature *lv2t_features[]; /* map, unmap, log, NULL */

/* One state entry: LV2_State_Store/Retrieve functions keep it in a kv. */
typedef struct kv {
    uint32_t key, type, flags;
    size_t size;
    char value[512];
    int stored;
} kv;

LV2_State_Status lv2t_store(LV2_State_Handle h, uint32_t key, const void *value, size_t size,
                            uint32_t type, uint32_t flags);
const void *lv2t_retrieve(LV2_State_Handle h, uint32_t key, size_t *size, uint32_t *type,
                          uint32_t *flags);
/* urn:oscine:model = str, of type type_uri */
kv lv2t_state_value(const char *str, const char *type_uri);

#endif
