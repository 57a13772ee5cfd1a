/*
 * arena.h - allocations that live as long as one response being built (protobuf-c messages,
 * their arrays and strings) and are freed together after packing.
 */
#ifndef RN_BROKER_ARENA_H
#define RN_BROKER_ARENA_H

#include <stddef.h>

typedef struct rn_arena {
    void **ptrs;
    size_t n, cap;
    int failed;      /* an allocation failed: the caller answers with an error instead */
} rn_arena_t;

#define RN_ARENA_INIT {NULL, 0, 0, 0}

/* Zeroed memory of n * size bytes; NULL (and a->failed set) when out of memory. */
void *rn_arena_calloc(rn_arena_t *a, size_t n, size_t size);
/* A copy of s in the arena; "" when out of memory (a->failed set). */
char *rn_arena_strdup(rn_arena_t *a, const char *s);
void rn_arena_free(rn_arena_t *a);

#endif
