#include "util/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct rn_arena_block {
    rn_arena_block_t *next;
    size_t pad; /* keeps data 16-byte aligned */
    _Alignas(16) unsigned char data[];
};

#define ARENA_BLOCK 8192

void *rn_arena_alloc(rn_arena_t *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    if (size == 0)
        size = 16;
    if (!a->head || a->cap - a->used < size) {
        size_t cap = size > ARENA_BLOCK ? size : ARENA_BLOCK;
        rn_arena_block_t *b = malloc(sizeof *b + cap);
        if (!b)
            return NULL;
        b->next = a->head;
        a->head = b;
        a->used = 0;
        a->cap = cap;
    }
    void *p = a->head->data + a->used;
    a->used += size;
    memset(p, 0, size);
    return p;
}

char *rn_arena_strndup(rn_arena_t *a, const char *s, size_t len)
{
    char *p = rn_arena_alloc(a, len + 1);
    if (!p)
        return NULL;
    memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *rn_arena_strdup(rn_arena_t *a, const char *s)
{
    return rn_arena_strndup(a, s, strlen(s));
}

void rn_arena_free(rn_arena_t *a)
{
    rn_arena_block_t *b = a->head;
    while (b) {
        rn_arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->used = a->cap = 0;
}
