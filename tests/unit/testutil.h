/*
 * testutil.h - small pieces every unit test needs: temporary directories, file sizes, and a
 * seeded random generator whose seed is printed so any failure can be replayed
 * (RUNNEL_TEST_SEED=n).
 */
#ifndef RN_TESTUTIL_H
#define RN_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* A fresh directory "$TMPDIR/prefix-XXXXXX" (TMPDIR defaults to /tmp); abort()s on failure. */
char *rn_t_tmpdir(const char *prefix);
/* Removes path and everything below it; 0 on success. */
int rn_t_rmtree(const char *path);
/* Size of the file at path, or -1. */
int64_t rn_t_file_size(const char *path);
/* RUNNEL_TEST_SEED when set, else the time; printed once with the test's name. */
uint64_t rn_t_seed(const char *what);
/* splitmix64: the next value of the stream in *state. */
uint64_t rn_t_rng(uint64_t *state);
/* Uniform in [0, n); 0 when n is 0. */
size_t rn_t_rng_below(uint64_t *state, size_t n);

#endif
