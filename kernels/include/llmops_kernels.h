/* llmops compute kernels: the one public header for the CPU and CUDA twins.
 *
 * Naming: every kernel exists as a CPU reference and a CUDA version with the
 * same name after a backend prefix and the same argument order, e.g.
 * cpu_matmul_forward() in kernels/cpu/matmul.c and cuda_matmul_forward() in
 * kernels/cuda/matmul.cu. The CUDA version takes device pointers and one extra
 * last argument, the cudaStream_t to launch on passed as `void *stream` (NULL
 * is the legacy default stream), so this header stays plain C.
 *
 * Errors: shapes are the caller's contract for the CPU kernels, which return
 * void. The CUDA launchers return an llm_err: LLM_OK once the work is queued
 * on the stream, LLM_EINVAL for a bad shape or a NULL pointer (nothing is
 * launched), LLM_EINTERNAL when CUDA or cuBLAS report a failure. A failure
 * records a detail (naming the launcher and the CUDA error string) that
 * llm_last_error() returns; launchers never print. Launches are asynchronous:
 * an error from the kernel's execution shows up at a later synchronisation.
 *
 * Tensors are dense, row-major fp32 and each comment gives its shape in the
 * style of llm.c: (B,T,C) is batch, time (sequence position), channels.
 *
 * The whole header is extern "C" so the .cu files and C++ tests can include it;
 * C++ code must include llm_err.h only through this header (or inside its own
 * extern "C" block), since llm_err.h has no C++ guards of its own. */
#ifndef LLMOPS_KERNELS_H
#define LLMOPS_KERNELS_H

#ifdef __cplusplus
extern "C" {
#endif

#include "llm_err.h"

/* ---- CPU reference kernels (kernels/cpu/) ---- */

/* out (B,T,OC) = inp (B,T,C) . weight (OC,C)^T + bias (OC).
 * bias may be NULL (no bias). out must not overlap inp, weight or bias; its
 * previous contents are never read. All of B, T, C, OC must be >= 1 and
 * B*T must fit in an int. Uses OpenBLAS cblas_sgemm (fp32 accumulation). */
void cpu_matmul_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
			int T, int C, int OC);

/* out (N) = inp1 (N) + inp2 (N), N >= 0. out may be the same pointer as inp1
 * and/or inp2 but must not overlap them otherwise. */
void cpu_residual_forward(float *out, const float *inp1, const float *inp2, int N);

/* ---- CUDA kernels (kernels/cuda/); device pointers, async on stream ---- */

/* out (B,T,OC) = inp (B,T,C) . weight (OC,C)^T + bias (OC), fp32 cuBLAS SGEMM
 * (no TF32) followed by a bias-add kernel; bias may be NULL. Returns LLM_EINVAL
 * unless B, T, C, OC >= 1, B*T fits in an int and out, inp, weight are
 * non-NULL. The first call creates one process-wide cuBLAS handle on the
 * device current at that time; calls are serialised on it by a mutex so any
 * thread may call, but every later call must run with that same device
 * current (otherwise LLM_EUNSUPPORTED). out must not overlap the inputs. */
llm_err cuda_matmul_forward(float *out, const float *inp, const float *weight, const float *bias,
			    int B, int T, int C, int OC, void *stream);

/* out (N) = inp1 (N) + inp2 (N). N == 0 queues nothing. Returns LLM_EINVAL if
 * N < 0 or a pointer is NULL. out may be the same pointer as inp1 and/or inp2
 * but must not overlap them otherwise. */
llm_err cuda_residual_forward(float *out, const float *inp1, const float *inp2, int N,
			      void *stream);

/* Destroys the process-wide cuBLAS handle if one was created (the next
 * cuda_matmul_forward() creates a new one). Call it with no kernel calls in
 * flight on other threads, and before cudaDeviceReset(); calling it when no
 * handle exists is a no-op. */
void cuda_kernels_free(void);

#ifdef __cplusplus
}
#endif

#endif
