/*
 * busypoll.c - see busypoll.h.
 */
#include "busypoll.h"

#include <sched.h>
#include <stdbool.h>

#include "clock.h"

void rn_busypoll_run(uv_loop_t *loop, int64_t poll_ns, int64_t (*last_io_ns)(void *ctx),
                         void *ctx)
{
    if (poll_ns <= 0) {
        uv_run(loop, UV_RUN_DEFAULT);
        return;
    }
    for (;;) {
        bool recent = rn_now_ns() - last_io_ns(ctx) < poll_ns;
        if (!uv_run(loop, recent ? UV_RUN_NOWAIT : UV_RUN_ONCE))
            return;
        if (recent)
            sched_yield();
    }
}
