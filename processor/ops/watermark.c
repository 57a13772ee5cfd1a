#include "ops/watermark.h"

#include <stdlib.h>

typedef struct part {
    int64_t max_ts;       /* RN_WM_NONE until the first event */
    int64_t last_seen_ms; /* processing time of the last tick that found it active */
    bool seen;            /* delivered something since the last tick (no clock per record) */
    bool idle;
    bool finished;
} part_t;

struct rn_wm {
    size_t n;
    part_t *parts;
    int64_t delay_ms;
    int64_t idle_timeout_ms;
    const rn_clock_t *clock;
    int64_t job;          /* monotonic */
    int64_t min_active;   /* min partition watermark over active partitions (cached) */
};

static int64_t part_wm(const rn_wm_t *wm, const part_t *p)
{
    if (p->max_ts == RN_WM_NONE)
        return RN_WM_NONE;
    if (p->max_ts < INT64_MIN + wm->delay_ms + 1)
        return RN_WM_NONE + 1;
    return p->max_ts - wm->delay_ms;
}

static void recompute(rn_wm_t *wm)
{
    bool any = false;
    int64_t min = INT64_MAX;
    for (size_t i = 0; i < wm->n; i++) {
        const part_t *p = &wm->parts[i];
        if (p->idle || p->finished)
            continue;
        int64_t w = part_wm(wm, p);
        if (w < min)
            min = w;
        any = true;
    }
    wm->min_active = any ? min : RN_WM_NONE;
    if (any && min > wm->job)
        wm->job = min;
}

rn_err_t rn_wm_new(size_t npartitions, int64_t delay_ms, int64_t idle_timeout_ms,
                   const rn_clock_t *clock, rn_wm_t **out)
{
    rn_wm_t *wm = calloc(1, sizeof *wm);
    if (!wm || !(wm->parts = calloc(npartitions ? npartitions : 1, sizeof *wm->parts))) {
        free(wm);
        return RN_ERR_NOMEM;
    }
    wm->n = npartitions;
    wm->delay_ms = delay_ms;
    wm->idle_timeout_ms = idle_timeout_ms;
    wm->clock = clock;
    wm->job = RN_WM_NONE;
    int64_t now = rn_clock_wall_ms(clock);
    for (size_t i = 0; i < npartitions; i++) {
        wm->parts[i].max_ts = RN_WM_NONE;
        wm->parts[i].last_seen_ms = now;
    }
    recompute(wm);
    *out = wm;
    return RN_OK;
}

void rn_wm_free(rn_wm_t *wm)
{
    if (wm) {
        free(wm->parts);
        free(wm);
    }
}

static void activate(part_t *p, bool *changed)
{
    p->seen = true;
    if (p->idle) {
        p->idle = false;
        *changed = true;
    }
}

int64_t rn_wm_observe(rn_wm_t *wm, size_t i, int64_t ts)
{
    part_t *p = &wm->parts[i];
    bool changed = false;
    activate(p, &changed);
    if (p->finished) {
        p->finished = false;
        changed = true;
    }
    if (ts > p->max_ts) {
        int64_t before = part_wm(wm, p);
        p->max_ts = ts;
        /* Only the partition holding the minimum can raise it. */
        if (before <= wm->min_active)
            changed = true;
    }
    if (changed)
        recompute(wm);
    return wm->job;
}

void rn_wm_touch(rn_wm_t *wm, size_t i)
{
    bool changed = false;
    activate(&wm->parts[i], &changed);
    if (changed)
        recompute(wm);
}

void rn_wm_finish(rn_wm_t *wm, size_t i)
{
    wm->parts[i].finished = true;
    recompute(wm);
}

int64_t rn_wm_tick(rn_wm_t *wm)
{
    if (wm->idle_timeout_ms >= 0) {
        int64_t now = rn_clock_wall_ms(wm->clock);
        for (size_t i = 0; i < wm->n; i++) {
            part_t *p = &wm->parts[i];
            if (p->seen) {
                p->seen = false;
                p->last_seen_ms = now;
            }
            if (!p->idle && now - p->last_seen_ms >= wm->idle_timeout_ms)
                p->idle = true;
        }
    }
    recompute(wm);
    return wm->job;
}

int64_t rn_wm_current(const rn_wm_t *wm)
{
    return wm->job;
}

bool rn_wm_idle(const rn_wm_t *wm, size_t p)
{
    return wm->parts[p].idle;
}

size_t rn_wm_partitions(const rn_wm_t *wm)
{
    return wm->n;
}

int64_t rn_wm_max_ts(const rn_wm_t *wm, size_t p)
{
    return wm->parts[p].max_ts;
}

void rn_wm_restore(rn_wm_t *wm, size_t p, int64_t max_ts)
{
    wm->parts[p].max_ts = max_ts;
    recompute(wm);
}

void rn_wm_restore_job(rn_wm_t *wm, int64_t watermark)
{
    if (watermark > wm->job)
        wm->job = watermark;
}
