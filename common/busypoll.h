/*
 * busypoll.h - running a libuv loop that polls instead of sleeping right after socket activity
 * (the io.busy.poll.us setting of librunnel and of runnel-broker).
 *
 * On a virtual machine, waking a thread whose vCPU went idle costs tens of microseconds (the
 * host has to schedule the vCPU again); a loop that keeps polling is already running when the
 * next request or answer arrives. Each poll is epoll with a zero timeout, followed by
 * sched_yield(), so a thread waiting for this CPU goes first and the polling mostly takes time
 * nobody else wants. Once poll_ns has passed without activity the loop sleeps in epoll as
 * usual, so an idle process costs nothing.
 *
 * @locality: the loop's own thread.
 */
#ifndef RN_COMMON_BUSYPOLL_H
#define RN_COMMON_BUSYPOLL_H

#include <stdint.h>
#include <uv.h>

/*
 * Runs loop until it has no more active handles, as uv_run(loop, UV_RUN_DEFAULT) does, except
 * that while rn_now_ns() - last_io_ns(ctx) < poll_ns it polls (UV_RUN_NOWAIT + sched_yield)
 * rather than blocking. last_io_ns returns the monotonic ns (rn_now_ns) of the latest socket
 * activity the caller tracks, 0 for none. poll_ns <= 0 is plain uv_run(UV_RUN_DEFAULT).
 */
void rn_busypoll_run(uv_loop_t *loop, int64_t poll_ns, int64_t (*last_io_ns)(void *ctx),
                         void *ctx);

#endif
