#include "err.h"

#include <stddef.h>

struct err_desc {
    int value;
    bool retriable;
    const char *name;
    const char *msg;
};

static const struct err_desc err_table[] = {
#define RN_ERR_ROW_(name, value, retriable, msg) {value, retriable, #name, msg},
    RN_ERR_LIST(RN_ERR_ROW_)
#undef RN_ERR_ROW_
};

static const struct err_desc *err_find(int err)
{
    for (size_t i = 0; i < sizeof(err_table) / sizeof(err_table[0]); i++) {
        if (err_table[i].value == err)
            return &err_table[i];
    }
    return NULL;
}

const char *rn_err_str(rn_err_t err)
{
    const struct err_desc *d = err_find((int)err);
    return d ? d->msg : "unknown error code";
}

const char *rn_err_name(rn_err_t err)
{
    const struct err_desc *d = err_find((int)err);
    return d ? d->name : "UNKNOWN";
}

bool rn_err_retriable(rn_err_t err)
{
    const struct err_desc *d = err_find((int)err);
    return d && d->retriable;
}

bool rn_err_known(int err)
{
    return err_find(err) != NULL;
}
