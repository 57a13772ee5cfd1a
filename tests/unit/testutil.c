#include "testutil.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

char *rn_t_tmpdir(const char *prefix)
{
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    char *p = malloc(strlen(base) + strlen(prefix) + 16);
    if (!p)
        abort();
    sprintf(p, "%s/%s-XXXXXX", base, prefix);
    if (!mkdtemp(p)) {
        perror(p);
        abort();
    }
    return p;
}

static int rm_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    return remove(path);
}

int rn_t_rmtree(const char *path)
{
    return nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int64_t rn_t_file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (int64_t)st.st_size : -1;
}

uint64_t rn_t_seed(const char *what)
{
    const char *env = getenv("RUNNEL_TEST_SEED");
    uint64_t seed = env ? strtoull(env, NULL, 0) : (uint64_t)time(NULL);
    /* Printed up front: a sanitizer abort skips the failure message that would carry it. */
    fprintf(stderr, "%s: seed=%llu (replay: RUNNEL_TEST_SEED=%llu)\n", what,
            (unsigned long long)seed, (unsigned long long)seed);
    return seed;
}

uint64_t rn_t_rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

size_t rn_t_rng_below(uint64_t *s, size_t n)
{
    return n ? (size_t)(rn_t_rng(s) % n) : 0;
}
