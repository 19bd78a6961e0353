/* CUDA matmul (fully connected layer forward), fp32 via cuBLAS.
 *
 * cublasSgemm in CUBLAS_DEFAULT_MATH (true fp32, no TF32) followed by a small
 * bias-add kernel; a later change moves this to cuBLASLt bf16 with a fused
 * bias epilogue, as llm.c does.
 *
 * Design limit: one process-wide cuBLAS handle, created lazily on the device
 * current at the first call. A handle belongs to one device, so every call must
 * run with that device current (checked: LLM_EUNSUPPORTED otherwise). cuBLAS
 * allows a handle to be used by one host thread at a time; a mutex serialises
 * the set-stream + SGEMM pair so any thread may call, at the cost of launches
 * from several threads queueing on the lock (the GEMM itself runs async).
 * Other files reach the same handle through cuda_cublas_acquire() and
 * cuda_cublas_release() (cuda_common.h).
 *
 * Backward: two SGEMMs with beta = 1 (accumulate) and a deterministic
 * column-sum kernel for dbias (no atomics). */
#include <climits>
#include <mutex>

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "llmops_kernels.h"
#include "cuda_common.h"

/* gridDim.y limit; more rows are folded into the kernel's row loop */
#define BIAS_MAX_GRID_Y 65535

static std::mutex handle_lock; /* guards the three below */
static cublasHandle_t handle;  /* NULL until the first matmul */
static int handle_device;      /* device the handle was created on */

/* ---- kernels ---- */

/* out (BT,OC) += bias (OC), the same bias row added to each of the BT rows.
 * grid.x covers OC, grid.y strides over the rows; unsigned indices, since
 * col and row + gridDim.y may pass INT_MAX. */
static __global__ void add_bias_kernel(float *out, const float *bias, int BT, int OC)
{
	unsigned col = blockIdx.x * blockDim.x + threadIdx.x;
	float b;

	if (col >= (unsigned)OC)
		return;
	b = bias[col];
	for (unsigned row = blockIdx.y; row < (unsigned)BT; row += gridDim.y)
		out[(size_t)row * OC + col] += b;
}

/* dbias (OC) += column sums of dout (BT,OC). Block (32, 32): threadIdx.x
 * picks the column, threadIdx.y strides over rows; the 32 partial sums are
 * then added in a fixed order, so the result is deterministic. */
static __global__ void __launch_bounds__(1024)
	dbias_kernel(float *dbias, const float *dout, int BT, int OC)
{
	__shared__ float part[32][33];
	int col = blockIdx.x * 32 + threadIdx.x;
	float acc = 0.0f;

	if (col < OC)
		for (int row = threadIdx.y; row < BT; row += 32)
			acc += dout[(size_t)row * OC + col];
	part[threadIdx.y][threadIdx.x] = acc;
	__syncthreads();
	if (threadIdx.y != 0 || col >= OC)
		return;
	for (int y = 1; y < 32; y++)
		acc += part[y][threadIdx.x];
	dbias[col] += acc;
}

/* ---- launchers ---- */

llm_err cuda_cublas_fail(const char *fn, const char *what, cublasStatus_t st)
{
	return llm_fail(LLM_EINTERNAL, "%s: %s: %s (%s)", fn, what, cublasGetStatusName(st),
			cublasGetStatusString(st));
}

/* Creates the handle on device dev if there is none; caller holds handle_lock. */
static llm_err ensure_handle_locked(const char *fn, int dev)
{
	cublasStatus_t st;

	if (handle) {
		if (handle_device == dev)
			return LLM_OK;
		return llm_fail(LLM_EUNSUPPORTED,
				"%s: cuBLAS handle is on device %d, called on device %d", fn,
				handle_device, dev);
	}
	st = cublasCreate(&handle);
	if (st != CUBLAS_STATUS_SUCCESS) {
		handle = NULL;
		return cuda_cublas_fail(fn, "cublasCreate", st);
	}
	st = cublasSetMathMode(handle, CUBLAS_DEFAULT_MATH);
	if (st != CUBLAS_STATUS_SUCCESS) {
		cublasDestroy(handle);
		handle = NULL;
		return cuda_cublas_fail(fn, "cublasSetMathMode", st);
	}
	handle_device = dev;
	return LLM_OK;
}

llm_err cuda_cublas_acquire(const char *fn, cudaStream_t stream, cublasHandle_t *h)
{
	cublasStatus_t st;
	llm_err err;
	int dev;
	cudaError_t cerr = cudaGetDevice(&dev);

	if (cerr != cudaSuccess)
		return cuda_fail(fn, "cudaGetDevice", cerr);
	handle_lock.lock();
	err = ensure_handle_locked(fn, dev);
	if (err)
		goto out_unlock;
	st = cublasSetStream(handle, stream);
	if (st != CUBLAS_STATUS_SUCCESS) {
		err = cuda_cublas_fail(fn, "cublasSetStream", st);
		goto out_unlock;
	}
	*h = handle;
	return LLM_OK;
out_unlock:
	handle_lock.unlock();
	return err;
}

void cuda_cublas_release(void)
{
	handle_lock.unlock();
}

/* out (BT,OC) = inp (BT,C) . weight (OC,C)^T, row-major. cuBLAS is column-major:
 * read that way the buffers hold weight^T (C x OC), inp^T (C x BT) and out^T
 * (OC x BT), and out^T = weight . inp^T, so A = weight with op T, B = inp with
 * op N, m = OC, n = BT, k = C (the same call as llm.c's fp32 matmul_forward). */
static llm_err sgemm(float *out, const float *inp, const float *weight, int BT, int C, int OC,
		     cudaStream_t stream)
{
	const float alpha = 1.0f, beta = 0.0f;
	cublasHandle_t h;
	cublasStatus_t st;
	llm_err err = cuda_cublas_acquire("cuda_matmul_forward", stream, &h);

	if (err)
		return err;
	st = cublasSgemm(h, CUBLAS_OP_T, CUBLAS_OP_N, OC, BT, C, &alpha, weight, C, inp, C, &beta,
			 out, OC);
	cuda_cublas_release();
	if (st != CUBLAS_STATUS_SUCCESS)
		return cuda_cublas_fail("cuda_matmul_forward", "cublasSgemm", st);
	return LLM_OK;
}

llm_err cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
			    int B, int T, int C, int OC, void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	long long BT = (long long)B * T;
	llm_err err;
	dim3 grid;

	if (!out || !inp || !weight || B < 1 || T < 1 || C < 1 || OC < 1 || BT > INT_MAX)
		return llm_fail(LLM_EINVAL,
				"cuda_matmul_forward: B=%d T=%d C=%d OC=%d out=%p inp=%p "
				"weight=%p",
				B, T, C, OC, (void *)out, (const void *)inp, (const void *)weight);
	err = sgemm(out, inp, weight, (int)BT, C, OC, s);
	if (err || !bias)
		return err;
	grid.x = (unsigned)ceil_div((size_t)OC, LLMOPS_BLOCK);
	grid.y = BT < BIAS_MAX_GRID_Y ? (unsigned)BT : BIAS_MAX_GRID_Y;
	add_bias_kernel<<<grid, LLMOPS_BLOCK, 0, s>>>(out, bias, (int)BT, OC);
	return cuda_check_launch("cuda_matmul_forward", "add_bias_kernel");
}

/* Column-major reading as in sgemm(): dinp^T (C x BT) += weight^T (C x OC) .
 * dout^T (OC x BT) is (N, N, m = C, n = BT, k = OC); dweight^T (C x OC) +=
 * inp^T (C x BT) . dout (BT x OC) is (N, T, m = C, n = OC, k = BT). */
static llm_err sgemm_backward(float *dinp, float *dweight, const float *dout, const float *inp,
			      const float *weight, int BT, int C, int OC, cudaStream_t stream)
{
	const char *fn = "cuda_matmul_backward";
	const float one = 1.0f;
	cublasHandle_t h;
	cublasStatus_t st = CUBLAS_STATUS_SUCCESS;
	llm_err err = cuda_cublas_acquire(fn, stream, &h);

	if (err)
		return err;
	if (dinp)
		st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_N, C, BT, OC, &one, weight, C, dout, OC,
				 &one, dinp, C);
	if (st == CUBLAS_STATUS_SUCCESS && dweight)
		st = cublasSgemm(h, CUBLAS_OP_N, CUBLAS_OP_T, C, OC, BT, &one, inp, C, dout, OC,
				 &one, dweight, C);
	cuda_cublas_release();
	if (st != CUBLAS_STATUS_SUCCESS)
		return cuda_cublas_fail(fn, "cublasSgemm", st);
	return LLM_OK;
}

llm_err cuda_matmul_backward(float *dinp, float *dweight, float *dbias, const float *dout,
			     const float *inp, const float *weight, int B, int T, int C, int OC,
			     void *stream)
{
	cudaStream_t s = (cudaStream_t)stream;
	long long BT = (long long)B * T;
	llm_err err;

	if (!dout || (dinp && !weight) || (dweight && !inp) || B < 1 || T < 1 || C < 1 || OC < 1 ||
	    BT > INT_MAX)
		return llm_fail(LLM_EINVAL,
				"cuda_matmul_backward: B=%d T=%d C=%d OC=%d dout=%p inp=%p "
				"weight=%p",
				B, T, C, OC, (const void *)dout, (const void *)inp,
				(const void *)weight);
	if (dinp || dweight) {
		err = sgemm_backward(dinp, dweight, dout, inp, weight, (int)BT, C, OC, s);
		if (err)
			return err;
	}
	if (!dbias)
		return LLM_OK;
	dbias_kernel<<<(unsigned)ceil_div((size_t)OC, 32), dim3(32, 32), 0, s>>>(dbias, dout,
										 (int)BT, OC);
	return cuda_check_launch("cuda_matmul_backward", "dbias_kernel");
}

void cuda_kernels_free(void)
{
	std::lock_guard<std::mutex> guard(handle_lock);

	if (!handle)
		return;
	cublasDestroy(handle);
	handle = NULL;
}
