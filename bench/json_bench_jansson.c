/* Part of runnel-json-bench (json_decode_bench.c): the jansson decoder, in its own file because
 * jansson and json-c declare the same names. */
#include <stdint.h>
#include <stddef.h>

#include "ops/value.h"
#include "json_bench.h"
#include <jansson.h>

size_t run_jansson(const corpus_t *c, double *sum)
{
    size_t ok = 0;
    for (size_t i = 0; i < c->n; i++) {
        json_error_t e;
        json_t *o = json_loadb(c->data + c->off[i], c->len[i], 0, &e);
        if (!o)
            continue;
        json_t *u = json_object_get(o, "user_id"), *a = json_object_get(o, "action");
        json_t *v = json_object_get(o, "value"), *t = json_object_get(o, "timestamp");
        if (json_is_string(u) && json_is_string(a) && json_is_number(v) && t) {
            int64_t ms = 0;
            if (json_is_integer(t))
                ms = json_integer_value(t);
            else if (json_is_string(t))
                rn_ts_parse(json_string_value(t), json_string_length(t), &ms);
            *sum += json_number_value(v) + (double)(ms % 1000) + json_string_length(u) +
                    json_string_length(a);
            ok++;
        }
        json_decref(o);
    }
    return ok;
}

