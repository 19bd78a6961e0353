/* Shared harness of the CUDA test programs in tests/cuda/ (header-only, one
 * copy per program): PASS/FAIL lines and counters, fail-fast CUDA checks,
 * seeded random inputs, device buffers, tolerance comparison and timing.
 * Every program prints one line per check and finally exactly
 * "N passed, M failed". */
#ifndef LLMOPS_TEST_CUDA_HARNESS_H
#define LLMOPS_TEST_CUDA_HARNESS_H

#include <cuda_runtime.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmops_kernels.h"

#define TIMING_REPS 20

static int npassed, nfailed;

/* Prints one check line and counts it. */
static inline void report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static inline void report(bool ok, const char *fmt, ...)
{
	va_list ap;

	fputs(ok ? "PASS " : "FAIL ", stdout);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
	if (ok)
		npassed++;
	else
		nfailed++;
}

/* A harness failure (allocation, copy, sync) ends the run as one more failure. */
static inline void die(const char *file, int line, const char *what, const char *why)
{
	report(false, "%s:%d: %s: %s", file, line, what, why);
	printf("%d passed, %d failed\n", npassed, nfailed);
	exit(1);
}

#define CUDA_CHECK(call)                                                          \
	do {                                                                      \
		cudaError_t err_ = (call);                                        \
		if (err_ != cudaSuccess)                                          \
			die(__FILE__, __LINE__, #call, cudaGetErrorString(err_)); \
	} while (0)

static inline void *xmalloc(size_t bytes)
{
	void *p = malloc(bytes);

	if (!p)
		die(__FILE__, __LINE__, "malloc", "out of memory");
	return p;
}

/* n deterministic floats, uniform in [-1, 1), from xorshift64 seeded by seed */
static inline float *rnd_host(size_t n, uint64_t seed)
{
	float *a = (float *)xmalloc(n * sizeof(*a));

	for (size_t i = 0; i < n; i++) {
		seed ^= seed << 13;
		seed ^= seed >> 7;
		seed ^= seed << 17;
		a[i] = (float)(seed >> 40) * (1.0f / (1 << 23)) - 1.0f;
	}
	return a;
}

/* device buffer of n floats, every byte 0xff (a NaN) so unwritten output shows */
static inline float *dev_nan(size_t n)
{
	float *d;

	CUDA_CHECK(cudaMalloc(&d, n * sizeof(*d)));
	CUDA_CHECK(cudaMemset(d, 0xff, n * sizeof(*d)));
	return d;
}

static inline float *dev_copy(const float *h, size_t n)
{
	float *d;

	CUDA_CHECK(cudaMalloc(&d, n * sizeof(*d)));
	CUDA_CHECK(cudaMemcpy(d, h, n * sizeof(*d), cudaMemcpyHostToDevice));
	return d;
}

/* synchronises the device first, so errors from queued work surface here */
static inline float *host_copy(const float *d, size_t n)
{
	float *h = (float *)xmalloc(n * sizeof(*h));

	CUDA_CHECK(cudaDeviceSynchronize());
	CUDA_CHECK(cudaMemcpy(h, d, n * sizeof(*h), cudaMemcpyDeviceToHost));
	return h;
}

/* Mean milliseconds per call of launch() over TIMING_REPS calls after one
 * warm-up call; *err receives the first launch failure, if any. */
template <typename F> static float time_ms(cudaStream_t s, llm_err *err, F launch)
{
	cudaEvent_t start, stop;
	float ms;

	*err = launch();
	CUDA_CHECK(cudaEventCreate(&start));
	CUDA_CHECK(cudaEventCreate(&stop));
	CUDA_CHECK(cudaEventRecord(start, s));
	for (int i = 0; i < TIMING_REPS && *err == LLM_OK; i++)
		*err = launch();
	CUDA_CHECK(cudaEventRecord(stop, s));
	CUDA_CHECK(cudaEventSynchronize(stop));
	CUDA_CHECK(cudaEventElapsedTime(&ms, start, stop));
	CUDA_CHECK(cudaEventDestroy(start));
	CUDA_CHECK(cudaEventDestroy(stop));
	return ms / TIMING_REPS;
}

/* "" on success, else "; LLM_EXXX: detail" (valid until the next call) */
static inline const char *detail(llm_err err)
{
	static char buf[1200];

	if (err == LLM_OK)
		return "";
	snprintf(buf, sizeof(buf), "; %s: %s", llm_errname(err), llm_last_error());
	return buf;
}

/* number of elements whose bits differ */
static inline size_t count_unequal(const float *a, const float *b, size_t n)
{
	size_t bad = 0;

	for (size_t i = 0; i < n; i++)
		bad += memcmp(&a[i], &b[i], sizeof(a[i])) != 0;
	return bad;
}

/* device copy of n elements of any type */
template <typename T> static T *dev_copy_of(const T *h, size_t n)
{
	T *d;

	CUDA_CHECK(cudaMalloc(&d, (n ? n : 1) * sizeof(*d)));
	if (n)
		CUDA_CHECK(cudaMemcpy(d, h, n * sizeof(*d), cudaMemcpyHostToDevice));
	return d;
}

/* host copy of n elements of any type, after a device synchronisation */
template <typename T> static T *host_copy_of(const T *d, size_t n)
{
	T *h = (T *)xmalloc((n ? n : 1) * sizeof(*h));

	CUDA_CHECK(cudaDeviceSynchronize());
	if (n)
		CUDA_CHECK(cudaMemcpy(h, d, n * sizeof(*h), cudaMemcpyDeviceToHost));
	return h;
}

/* Elements of got (device, n) outside atol + rtol * |want| (NaN counts
 * unless both are NaN, equal values always pass); *worst receives the largest |diff| / limit. */
static inline size_t count_outside(const float *dgot, const float *want, size_t n, double atol,
				   double rtol, double *worst)
{
	float *got = host_copy_of(dgot, n);
	size_t bad = 0;

	*worst = 0.0;
	for (size_t i = 0; i < n; i++) {
		double diff = fabs((double)got[i] - want[i]);
		double lim = atol + rtol * fabs(want[i]);

		if ((isnan(got[i]) && isnan(want[i])) || got[i] == want[i])
			continue; /* equal infinities too (e.g. lse of a row with no key) */
		if (!(diff <= lim))
			bad++;
		if (diff / lim > *worst || isnan(diff))
			*worst = isnan(diff) ? INFINITY : diff / lim;
	}
	free(got);
	return bad;
}

/* One tolerance check line: "name: bad of n outside atol+rtol|ref|, worst". */
static inline void check_close(const char *name, const float *dgot, const float *want, size_t n,
			       double atol, double rtol, llm_err err)
{
	double worst;
	size_t bad = count_outside(dgot, want, n, atol, rtol, &worst);

	report(err == LLM_OK && bad == 0,
	       "%s: %zu of %zu outside %.1e + %.1e*|ref|, worst %.3f of tol%s", name, bad, n, atol,
	       rtol, worst, detail(err));
}

/* Quick mode (LLMOPS_CUDA_QUICK=1, used under compute-sanitizer): small
 * cases only and no timing. */
static inline bool quick(void)
{
	const char *q = getenv("LLMOPS_CUDA_QUICK");

	return q && strcmp(q, "1") == 0;
}

/* Nominal device peaks from cudaDeviceGetAttribute (CUDA 13 dropped
 * cudaDeviceProp.memoryClockRate, memoryBusWidth and clockRate): DRAM GB/s =
 * 2 (double data rate) * memory clock * bus width / 8, and fp32 TFLOP/s =
 * SMs * 128 fp32 lanes (sm_90) * 2 * SM clock. Both come from the reported
 * clocks, good for a fraction-of-peak figure. bench/bench_cuda_kernels.cu
 * uses them too. */
struct device_peaks {
	double dram_gbs, fp32_tflops;
	int mem_khz, bus_bits, sm_khz, sms;
};

static inline struct device_peaks device_peaks_of(int dev)
{
	struct device_peaks p = {};

	CUDA_CHECK(cudaDeviceGetAttribute(&p.mem_khz, cudaDevAttrMemoryClockRate, dev));
	CUDA_CHECK(cudaDeviceGetAttribute(&p.bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev));
	CUDA_CHECK(cudaDeviceGetAttribute(&p.sm_khz, cudaDevAttrClockRate, dev));
	CUDA_CHECK(cudaDeviceGetAttribute(&p.sms, cudaDevAttrMultiProcessorCount, dev));
	p.dram_gbs = 2.0 * p.mem_khz * 1e3 * (p.bus_bits / 8.0) / 1e9;
	p.fp32_tflops = (double)p.sms * 128 * 2 * p.sm_khz * 1e3 / 1e12;
	return p;
}

/* The peaks of the timing lines below, set by query_peaks(). */
static double peak_gbs, peak_tflops;

static inline void query_peaks(int dev)
{
	struct device_peaks p = device_peaks_of(dev);

	peak_gbs = p.dram_gbs;
	peak_tflops = p.fp32_tflops;
	printf("peaks: %.0f GB/s DRAM (%d kHz x %d bits), %.1f fp32 TFLOP/s (%d SMs at %d kHz)\n",
	       peak_gbs, p.mem_khz, p.bus_bits, peak_tflops, p.sms, p.sm_khz);
}

/* One timing line: mean ms over TIMING_REPS calls of launch, the achieved
 * GB/s for `bytes` moved per call and, when flops > 0, the TFLOP/s, each
 * with its fraction of the device peak. */
template <typename F> static void timing(const char *name, double bytes, double flops, F launch)
{
	llm_err err;
	float ms;

	if (quick())
		return;
	ms = time_ms(NULL, &err, launch);
	double gbs = bytes / (ms * 1e-3) / 1e9, tf = flops / (ms * 1e-3) / 1e12;
	if (flops > 0)
		report(err == LLM_OK,
		       "%s timing: %.4f ms, %.0f GB/s (%.0f%% of peak), %.2f TFLOP/s "
		       "(%.0f%% of fp32 peak)%s",
		       name, ms, gbs, 100.0 * gbs / peak_gbs, tf, 100.0 * tf / peak_tflops,
		       detail(err));
	else
		report(err == LLM_OK, "%s timing: %.4f ms, %.0f GB/s (%.0f%% of peak)%s", name, ms,
		       gbs, 100.0 * gbs / peak_gbs, detail(err));
}

#endif
