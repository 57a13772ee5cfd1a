/* arena.c - a list of allocations freed together. */
#include "arena.h"

#include <stdlib.h>
#include <string.h>

void *rn_arena_calloc(rn_arena_t *a, size_t n, size_t size)
{
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 32;
        void **p = realloc(a->ptrs, cap * sizeof *p);
        if (!p) {
            a->failed = 1;
            return NULL;
        }
        a->ptrs = p;
        a->cap = cap;
    }
    void *m = calloc(n ? n : 1, size ? size : 1);
    if (!m) {
        a->failed = 1;
        return NULL;
    }
    a->ptrs[a->n++] = m;
    return m;
}

char *rn_arena_strdup(rn_arena_t *a, const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = rn_arena_calloc(a, len, 1);
    if (!p)
        return (char *)"";
    memcpy(p, s, len);
    return p;
}

void rn_arena_free(rn_arena_t *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ptrs[i]);
    free(a->ptrs);
    a->ptrs = NULL;
    a->n = a->cap = 0;
    a->failed = 0;
}
