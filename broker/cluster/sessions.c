/* sessions.c - broker sessions of the active controller, clock injected (see sessions.h). */
#include "sessions.h"

#include <stdlib.h>

struct session {
    int32_t id;
    uint64_t epoch;
    int64_t deadline_ms;
    bool reported;                 /* rn_sess_expired returned it since its last heartbeat */
};

struct rn_sess {
    uint32_t timeout_ms;
    size_t n;
    struct session v[RN_SESS_MAX];
};

rn_sess_t *rn_sess_new(uint32_t timeout_ms)
{
    rn_sess_t *s = calloc(1, sizeof *s);
    if (s)
        s->timeout_ms = timeout_ms;
    return s;
}

void rn_sess_free(rn_sess_t *s)
{
    free(s);
}

void rn_sess_clear(rn_sess_t *s)
{
    s->n = 0;
}

static struct session *find(const rn_sess_t *s, int32_t id)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].id == id)
            return (struct session *)&s->v[i];
    return NULL;
}

rn_err_t rn_sess_track(rn_sess_t *s, int32_t id, uint64_t epoch, int64_t now_ms)
{
    struct session *x = find(s, id);
    if (!x) {
        if (s->n == RN_SESS_MAX)
            return RN_ERR_NO_SPACE;
        x = &s->v[s->n++];
        x->id = id;
    }
    x->epoch = epoch;
    x->deadline_ms = now_ms + s->timeout_ms;
    x->reported = false;
    return RN_OK;
}

void rn_sess_forget(rn_sess_t *s, int32_t id)
{
    struct session *x = find(s, id);
    if (x)
        *x = s->v[--s->n];
}

rn_err_t rn_sess_heartbeat(rn_sess_t *s, int32_t id, uint64_t epoch, int64_t now_ms)
{
    struct session *x = find(s, id);
    if (!x)
        return RN_ERR_NOT_FOUND;
    if (x->epoch != epoch)
        return RN_ERR_STALE_BROKER_EPOCH;
    x->deadline_ms = now_ms + s->timeout_ms;
    x->reported = false;
    return RN_OK;
}

size_t rn_sess_expired(rn_sess_t *s, int64_t now_ms, int32_t *ids, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < s->n && n < cap; i++) {
        struct session *x = &s->v[i];
        if (x->reported || x->deadline_ms > now_ms)
            continue;
        x->reported = true;
        ids[n++] = x->id;
    }
    return n;
}

bool rn_sess_alive(const rn_sess_t *s, int32_t id, int64_t now_ms)
{
    const struct session *x = find(s, id);
    return x && x->deadline_ms > now_ms;
}

uint64_t rn_sess_epoch(const rn_sess_t *s, int32_t id)
{
    const struct session *x = find(s, id);
    return x ? x->epoch : 0;
}

size_t rn_sess_count(const rn_sess_t *s)
{
    return s->n;
}
