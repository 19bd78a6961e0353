/* Helpers shared by the benchmark programs (C and CUDA C++). */
#ifndef BENCH_H
#define BENCH_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "llm_err.h"

/* Seconds on the monotonic clock. */
static inline double bench_now_s(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Exits with "<prog>: <what>: <error name>: <detail>" when err is set. */
static inline void bench_check(const char *prog, llm_err err, const char *what)
{
	if (!err)
		return;
	fprintf(stderr, "%s: %s: %s: %s\n", prog, what, llm_errname(err), llm_last_error());
	exit(1);
}

#endif
