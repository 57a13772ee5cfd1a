/* Part of runnel-json-bench (json_decode_bench.c): the json-c decoder, in its own file because
 * jansson and json-c declare the same names. */
#include <stdint.h>
#include <stddef.h>

#include "ops/value.h"
#include "json_bench.h"
#include <json-c/json.h>

size_t run_jsonc(const corpus_t *c, double *sum)
{
    size_t ok = 0;
    json_tokener *tok = json_tokener_new();
    for (size_t i = 0; i < c->n; i++) {
        json_tokener_reset(tok);
        json_object *o = json_tokener_parse_ex(tok, c->data + c->off[i], (int)c->len[i]);
        if (!o)
            continue;
        json_object *u, *a, *v, *t;
        if (json_object_object_get_ex(o, "user_id", &u) && json_object_object_get_ex(o, "action", &a) &&
            json_object_object_get_ex(o, "value", &v) && json_object_object_get_ex(o, "timestamp", &t)) {
            int64_t ms = 0;
            if (json_object_is_type(t, json_type_int))
                ms = json_object_get_int64(t);
            else if (json_object_is_type(t, json_type_string))
                rn_ts_parse(json_object_get_string(t), (size_t)json_object_get_string_len(t), &ms);
            *sum += json_object_get_double(v) + (double)(ms % 1000) + json_object_get_string_len(u) +
                    json_object_get_string_len(a);
            ok++;
        }
        json_object_put(o);
    }
    json_tokener_free(tok);
    return ok;
}

