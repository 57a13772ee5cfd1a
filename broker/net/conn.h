/*
 * conn.h - internal to broker/net: the server, connection and response structs shared by
 * server.c (accept, read, decode, lifecycle) and resp.c (response building and writing).
 */
#ifndef RN_BROKER_CONN_H
#define RN_BROKER_CONN_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "buf.h"
#include "frame.h"
#include "server.h"

typedef struct rn_conn rn_conn_t;

struct rn_srv {
    uv_loop_t *loop;
    rn_srv_opts_t opts;
    rn_srv_request_cb cb;
    void *cb_ctx;
    int listen_fd;
    uv_poll_t listen_poll;
    bool listening;
    char address[80];
    uint16_t port;
    rn_conn_t *conns;           /* every open connection (doubly linked) */
    uint32_t nconns;
    uint64_t next_id;
    int burst;                  /* > 0: writes wait for rn_srv_burst_end */
    rn_conn_t *dirty;           /* connections with output to write at burst end */
    uv_timer_t tasks_timer;     /* runs deferred resumes and closes on the next loop turn */
    uv_timer_t accept_timer;    /* resumes accepting after running out of file descriptors */
    rn_conn_t *tasks;
    bool draining;
    bool freeing;
    int open_handles;           /* listen_poll, tasks_timer, accept_timer: freed when all closed */
    uint8_t *rbuf;              /* shared read buffer (one loop thread) */
    size_t rbuf_cap;
    int64_t last_io_ns;         /* rn_now_ns() of the latest recv that brought bytes */
};

enum chunk_kind { CHUNK_MEM, CHUNK_FILE };

struct chunk {
    enum chunk_kind kind;
    int fd;                     /* CHUNK_FILE */
    uint64_t pos;               /* CHUNK_MEM: offset in resp->buf; CHUNK_FILE: file position */
    size_t len;
};

struct rn_resp {
    rn_resp_t *next;
    rn_conn_t *conn;
    Runnel__Request *req;
    uint32_t cid;
    int32_t api;                /* the request's ApiKey; -1 when it could not be decoded */
    int64_t start_ns;           /* when it was decoded (request latency) */
    bool done;
    rn_buf_t buf;
    struct chunk *chunks;
    uint32_t nchunks, cap;
    struct chunk inline_chunks[2];
    void (*cancel)(void *arg);
    void *cancel_arg;
};

struct rn_conn {
    rn_srv_t *srv;
    rn_conn_t *prev, *next;     /* in srv->conns */
    rn_conn_t *next_dirty;
    rn_conn_t *next_task;
    int fd;
    uv_poll_t poll;
    int events;                 /* events the poll handle watches now */
    uint64_t id;
    char peer[64];
    rn_frame_dec_t *dec;
    rn_buf_t stash;             /* bytes read but not yet decoded (paused at the in-flight cap) */
    size_t stash_pos;
    rn_resp_t *head, *tail;     /* responses in request order */
    uint32_t nresp;
    uint32_t chunk_idx;         /* write progress inside head */
    size_t chunk_off;
    bool reading;               /* false for good after EOF, an error, a bad frame or drain */
    bool paused;                /* at the in-flight cap */
    bool want_write;            /* the socket was full: wait for UV_WRITABLE */
    bool close_when_drained;
    bool dead;                  /* closing: no more I/O */
    bool in_dirty, in_tasks, task_close, task_resume;
    bool in_read;               /* inside the read callback: writes wait for its end */
};

/* resp.c */
rn_resp_t *rn_resp_new(rn_conn_t *c, Runnel__Request *req, uint32_t cid);
void rn_resp_free(rn_resp_t *r);
/* Writes what can be written now; schedules close or resume as the queue drains. */
void rn_conn_flush(rn_conn_t *c);
/* Marks c to be flushed at the end of the current burst (or flushes now). */
void rn_conn_kick(rn_conn_t *c);

/* server.c */
void rn_conn_update_poll(rn_conn_t *c);
void rn_conn_schedule(rn_conn_t *c, bool close, bool resume);

#endif
