/* GPU checks for the CUDA kernels; `make test-cuda`, run where a GPU is expected.
 *
 * Each CUDA launcher is compared with its CPU twin (kernels/cpu/) on the same
 * seeded inputs and then timed; a single-rank NCCL all-reduce must return its
 * input unchanged; the launchers must reject bad arguments with LLM_EINVAL.
 * Prints one line per check ("PASS ..." or "FAIL ...") and finally exactly
 * "N passed, M failed"; exits 1 on any failure, and also when there is no CUDA
 * device (this program only runs where one is expected).
 *
 * Tolerances. Residual: bitwise equal, as both sides do one correctly rounded
 * fp32 add per element. Matmul: |gpu - cpu| <= atol + rtol * |cpu| with
 * atol = rtol = 1e-4 * sqrt(max(C, 64) / 64), i.e. 1e-4 up to C = 64 and 3.5e-4
 * for C = 768. Both sides accumulate C fp32 products in different orders, an
 * error that grows about like sqrt(C); on the C = 768 case below OpenBLAS and
 * a sequential fp32 loop differ by at most ~5e-5. TF32 (10-bit mantissa)
 * errors on that case are ~1e-2 and fail the check, as they should. */
#include <cuda_runtime.h>
#include <nccl.h>

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llmops_kernels.h"
#include "harness.h"

/* (a) residual vs cpu_residual_forward: separate out on the legacy default
 * stream, then out == inp1 in place; then timed. */
static void check_residual(int N)
{
	float *a = rnd_host(N, 11), *b = rnd_host(N, 12);
	float *want = (float *)xmalloc(N * sizeof(*want));
	float *da = dev_copy(a, N), *db = dev_copy(b, N), *dout = dev_nan(N);
	float *got, ms;
	size_t bad;
	llm_err err;

	cpu_residual_forward(want, a, b, N);
	err = cuda_residual_forward(dout, da, db, N, NULL);
	got = host_copy(dout, N);
	bad = count_unequal(got, want, N);
	free(got);
	report(err == LLM_OK && bad == 0, "residual N=%d: %zu of %d differ from CPU bitwise%s", N,
	       bad, N, detail(err));

	err = cuda_residual_forward(da, da, db, N, NULL);
	got = host_copy(da, N);
	bad = count_unequal(got, want, N);
	free(got);
	report(err == LLM_OK && bad == 0, "residual N=%d in place (out == inp1): %zu differ%s", N,
	       bad, detail(err));

	ms = time_ms(NULL, &err, [&] { return cuda_residual_forward(dout, da, db, N, NULL); });
	report(err == LLM_OK, "residual N=%d timing: %.4f ms, %.0f GB/s%s", N, ms,
	       3.0 * N * sizeof(float) / (ms * 1e-3) / 1e9, detail(err));

	CUDA_CHECK(cudaFree(dout));
	CUDA_CHECK(cudaFree(db));
	CUDA_CHECK(cudaFree(da));
	free(want);
	free(b);
	free(a);
}

struct mm_case {
	int B, T, C, OC;
	bool bias;
};

/* Compares got with want at the tolerance in the file comment; returns the
 * number of elements outside it (NaN counts) and the worst |diff| / tol. */
static size_t compare_tol(const float *got, const float *want, size_t n, int C, double *worst)
{
	double tol = 1e-4 * sqrt((C > 64 ? C : 64) / 64.0);
	size_t bad = 0;

	*worst = 0.0;
	for (size_t i = 0; i < n; i++) {
		double diff = fabs((double)got[i] - want[i]);
		double lim = tol + tol * fabs(want[i]);

		if (!(diff <= lim))
			bad++;
		if (diff / lim > *worst)
			*worst = diff / lim;
	}
	return bad;
}

/* (b) cuda_matmul_forward vs cpu_matmul_forward on stream s, then timed */
static void check_matmul(const struct mm_case *c, cudaStream_t s)
{
	size_t BT = (size_t)c->B * c->T, nout = BT * c->OC;
	float *inp = rnd_host(BT * c->C, 21), *w = rnd_host((size_t)c->OC * c->C, 22);
	float *bias = rnd_host(c->OC, 23), *want = (float *)xmalloc(nout * sizeof(*want));
	float *dinp = dev_copy(inp, BT * c->C), *dw = dev_copy(w, (size_t)c->OC * c->C);
	float *dbias = c->bias ? dev_copy(bias, c->OC) : NULL, *dout = dev_nan(nout);
	float *got, ms;
	double worst;
	size_t bad;
	llm_err err, terr;

	cpu_matmul_forward(want, inp, w, c->bias ? bias : NULL, c->B, c->T, c->C, c->OC);
	err = cuda_matmul_forward(dout, dinp, dw, dbias, c->B, c->T, c->C, c->OC, s);
	got = host_copy(dout, nout);
	bad = compare_tol(got, want, nout, c->C, &worst);
	free(got);
	ms = time_ms(s, &terr, [&] {
		return cuda_matmul_forward(dout, dinp, dw, dbias, c->B, c->T, c->C, c->OC, s);
	});
	report(err == LLM_OK && terr == LLM_OK && bad == 0,
	       "matmul B=%d T=%d C=%d OC=%d %s: %zu of %zu outside tol, worst %.3f of tol; "
	       "%.4f ms, %.2f TFLOP/s%s",
	       c->B, c->T, c->C, c->OC, c->bias ? "bias" : "no bias", bad, nout, worst, ms,
	       2.0 * BT * c->C * c->OC / (ms * 1e-3) / 1e12, detail(err ? err : terr));

	CUDA_CHECK(cudaFree(dout));
	CUDA_CHECK(cudaFree(dbias));
	CUDA_CHECK(cudaFree(dw));
	CUDA_CHECK(cudaFree(dinp));
	free(want);
	free(bias);
	free(w);
	free(inp);
}

/* (c) single-rank NCCL all-reduce (sum): the result must equal the input */
static void check_nccl_allreduce(cudaStream_t s)
{
	const size_t n = (1 << 20) + 5;
	float *h = rnd_host(n, 31), *dsend = dev_copy(h, n), *drecv = dev_nan(n);
	float *got = NULL;
	size_t bad = n;
	ncclComm_t comm;
	ncclResult_t r;
	int dev, ver = 0;

	CUDA_CHECK(cudaGetDevice(&dev));
	ncclGetVersion(&ver);
	r = ncclCommInitAll(&comm, 1, &dev);
	if (r == ncclSuccess) {
		r = ncclAllReduce(dsend, drecv, n, ncclFloat, ncclSum, comm, s);
		if (r == ncclSuccess) {
			got = host_copy(drecv, n);
			bad = count_unequal(got, h, n);
		}
		ncclCommDestroy(comm);
	}
	report(r == ncclSuccess && bad == 0,
	       "nccl all-reduce sum, 1 rank, %zu floats (NCCL %d.%d.%d): %zu differ from input: %s",
	       n, ver / 10000, ver / 100 % 100, ver % 100, bad, ncclGetErrorString(r));
	free(got);
	CUDA_CHECK(cudaFree(drecv));
	CUDA_CHECK(cudaFree(dsend));
	free(h);
}

/* One rejection: got must be LLM_EINVAL; called with the launcher's result
 * as argument, so llm_last_error() still holds that launcher's detail. */
static void expect_einval(const char *what, llm_err got)
{
	report(got == LLM_EINVAL, "rejects %s: %s (%s)", what, llm_errname(got), llm_last_error());
}

/* (d) bad shapes and NULL pointers give LLM_EINVAL and queue no work */
static void check_rejects(void)
{
	float *d = dev_nan(16), *got;
	size_t untouched = 0;
	llm_err zero;

	expect_einval("residual N=-1", cuda_residual_forward(d, d, d, -1, NULL));
	expect_einval("residual out=NULL", cuda_residual_forward(NULL, d, d, 16, NULL));
	expect_einval("residual inp1=NULL", cuda_residual_forward(d, NULL, d, 16, NULL));
	expect_einval("residual inp2=NULL", cuda_residual_forward(d, d, NULL, 16, NULL));
	expect_einval("matmul out=NULL", cuda_matmul_forward(NULL, d, d, d, 1, 2, 2, 2, NULL));
	expect_einval("matmul inp=NULL", cuda_matmul_forward(d, NULL, d, d, 1, 2, 2, 2, NULL));
	expect_einval("matmul weight=NULL", cuda_matmul_forward(d, d, NULL, d, 1, 2, 2, 2, NULL));
	expect_einval("matmul B=0", cuda_matmul_forward(d, d, d, d, 0, 2, 2, 2, NULL));
	expect_einval("matmul T=-3", cuda_matmul_forward(d, d, d, d, 1, -3, 2, 2, NULL));
	expect_einval("matmul C=0", cuda_matmul_forward(d, d, d, d, 1, 2, 0, 2, NULL));
	expect_einval("matmul OC=-1", cuda_matmul_forward(d, d, d, d, 1, 2, 2, -1, NULL));
	expect_einval("matmul B*T > INT_MAX",
		      cuda_matmul_forward(d, d, d, d, 65536, 65536, 1, 1, NULL));

	zero = cuda_residual_forward(d, d, d, 0, NULL);
	got = host_copy(d, 16);
	for (int i = 0; i < 16; i++)
		untouched += isnan(got[i]) != 0;
	report(zero == LLM_OK && untouched == 16,
	       "residual N=0 and rejected calls write nothing: %s, %zu of 16 untouched%s",
	       llm_errname(zero), untouched, detail(zero));
	free(got);
	CUDA_CHECK(cudaFree(d));
}

int main(void)
{
	static const struct mm_case mm_cases[] = {
		{1, 1, 1, 1, true},   {2, 7, 33, 65, true},	{2, 7, 33, 65, false},
		{3, 5, 17, 9, false}, {4, 64, 768, 2304, true},
	};
	struct cudaDeviceProp prop;
	cudaStream_t s;
	int ndev = 0, drv = 0, rt = 0;
	cudaError_t err = cudaGetDeviceCount(&ndev);

	if (err != cudaSuccess || ndev == 0) {
		printf("no CUDA device: %s\n",
		       err != cudaSuccess ? cudaGetErrorString(err) : "device count is 0");
		printf("0 passed, 1 failed\n");
		return 1;
	}
	CUDA_CHECK(cudaGetDeviceProperties(&prop, 0));
	CUDA_CHECK(cudaDriverGetVersion(&drv));
	CUDA_CHECK(cudaRuntimeGetVersion(&rt));
	printf("device 0 of %d: %s, sm_%d%d, %.1f GiB; driver CUDA %d.%d, runtime %d.%d\n", ndev,
	       prop.name, prop.major, prop.minor, prop.totalGlobalMem / 1073741824.0, drv / 1000,
	       drv % 1000 / 10, rt / 1000, rt % 1000 / 10);
	query_peaks(0);
	CUDA_CHECK(cudaStreamCreate(&s));

	check_residual((1 << 20) + 3);
	check_residual(1);
	for (size_t i = 0; i < sizeof(mm_cases) / sizeof(mm_cases[0]); i++)
		check_matmul(&mm_cases[i], s);
	check_nccl_allreduce(s);
	check_rejects();

	cuda_kernels_free();
	CUDA_CHECK(cudaStreamDestroy(s));
	printf("%d passed, %d failed\n", npassed, nfailed);
	return nfailed ? 1 : 0;
}
