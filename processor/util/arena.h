/*
 * arena.h - a bump allocator for things that live and die together (the AST and plan of a
 * job, strings of a lexer). Blocks are malloc'd as needed and freed in one call.
 */
#ifndef RN_ARENA_H
#define RN_ARENA_H

#include <stddef.h>

typedef struct rn_arena_block rn_arena_block_t;

typedef struct rn_arena {
    rn_arena_block_t *head;
    size_t used;  /* bytes used in head */
    size_t cap;   /* bytes available in head */
} rn_arena_t;

#define RN_ARENA_INIT {NULL, 0, 0}

/* Zeroed, 16-byte aligned memory, or NULL when out of memory. Lives until rn_arena_free. */
void *rn_arena_alloc(rn_arena_t *a, size_t size);
/* A NUL-terminated copy of s[0..len). */
char *rn_arena_strndup(rn_arena_t *a, const char *s, size_t len);
char *rn_arena_strdup(rn_arena_t *a, const char *s);
void rn_arena_free(rn_arena_t *a);

#endif
