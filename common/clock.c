#include "clock.h"

#include <time.h>

static int64_t sys_wall_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t rn_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int64_t sys_mono_ns(void *ctx)
{
    (void)ctx;
    return rn_now_ns();
}

static const rn_clock_t system_clock = {sys_wall_ms, sys_mono_ns, NULL};

const rn_clock_t *rn_clock_system(void)
{
    return &system_clock;
}

static int64_t manual_wall_ms(void *ctx)
{
    return ((rn_clock_manual_t *)ctx)->now_ms;
}

static int64_t manual_mono_ns(void *ctx)
{
    return ((rn_clock_manual_t *)ctx)->now_ms * 1000000;
}

void rn_clock_manual_init(rn_clock_manual_t *m, int64_t start_ms)
{
    m->clock.wall_ms = manual_wall_ms;
    m->clock.mono_ns = manual_mono_ns;
    m->clock.ctx = m;
    m->now_ms = start_ms;
}
