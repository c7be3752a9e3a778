/* lv2feat.c - see lv2feat.h. */
#include "lv2feat.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *urids[256];
static int nurids;

LV2_URID lv2t_map_uri(LV2_URID_Map_Handle h, const char *uri)
{
    for (int i = 0; i < nurids; i++)
        if (!strcmp(urids[i], uri))
            return (LV2_URID)i + 1;
    if (nurids == 256)
        return 0; /* LV2's "no mapping" */
    urids[nurids] = strdup(uri);
    return (LV2_URID)++nurids;
}

const char *lv2t_unmap_uri(LV2_URID_Unmap_Handle h, LV2_URID u)
{
    return u >= 1 && u <= (LV2_URID)nurids ? urids[u - 1] : NULL;
}

char lv2t_log_text[4096];

static int log_vprintf(LV2_Log_Handle h, LV2_URID type, const char *fmt, va_list ap)
{
    size_t n = strlen(lv2t_log_text);
    return vsnprintf(lv2t_log_text + n, sizeof lv2t_log_text - n, fmt, ap);
}

static int log_printf(LV2_Log_Handle h, LV2_URID type, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int r = log_vprintf(h, type, fmt, ap);
    va_end(ap);
    return r;
}

LV2_URID_Map lv2t_map = {NULL, lv2t_map_uri};
LV2_URID_Unmap lv2t_unmap = {NULL, lv2t_unmap_uri};
static LV2_Log_Log logger = {NULL, log_printf, log_vprintf};
const LV2_Feature lv2t_f_map = {LV2_URID__map, &lv2t_map};
const LV2_Feature lv2t_f_unmap = {LV2_URID__unmap, &lv2t_unmap};
const LV2_Feature lv2t_f_log = {LV2_LOG__log, &logger};
const LV2_Feature *lv2t_features[] = {&lv2t_f_map, &lv2t_f_unmap, &lv2t_f_log, NULL};

LV2_State_Status lv2t_store(LV2_State_Handle h, uint32_t key, const void *value, size_t size,
                            uint32_t type, uint32_t flags)
{
    kv *s = h;
    if (size > sizeof s->value)
        return LV2_STATE_ERR_NO_SPACE;
    s->key = key;
    s->type = type;
    s->flags = flags;
    s->size = size;
    memcpy(s->value, value, size);
    s->stored = 1;
    return LV2_STATE_SUCCESS;
}

const void *lv2t_retrieve(LV2_State_Handle h, uint32_t key, size_t *size, uint32_t *type,
                          uint32_t *flags)
{
    kv *s = h;
    if (!s->stored || key != s->key)
        return NULL;
    *size = s->size;
    *type = s->type;
    *flags = s->flags;
    return s->value;
}

kv lv2t_state_value(const char *str, const char *type_uri)
{
    kv s = {lv2t_map_uri(NULL, "urn:oscine:model"), lv2t_map_uri(NULL, type_uri),
            LV2_STATE_IS_POD | LV2_STATE_IS_PORTABLE, strlen(str) + 1, "", 1};
    snprintf(s.value, sizeof s.value, "%s", str);
    return s;
}
